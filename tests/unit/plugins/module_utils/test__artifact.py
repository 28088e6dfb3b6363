"""Versioned artifacts a host keeps (plugins/module_utils/_artifact.py):
deltas, the copy on disk, and what a host does with each kind of transfer."""

import json
import os

import pytest

from ansible_collections.palisade.ebpf.plugins.module_utils import _artifact as artifact
from ansible_collections.palisade.ebpf.plugins.module_utils._datapath.state import pack_ipcache, unpack_ipcache

V1 = {"ipcache": {"10.1.1.10/32": 300, "10.1.1.11/32": 301, "0.0.0.0/0": 2}}
V2 = {"ipcache": {"10.1.1.10/32": 300, "10.1.1.11/32": 999, "10.1.1.12/32": 302, "0.0.0.0/0": 2}}
V3 = {"ipcache": {"10.1.1.10/32": 300, "0.0.0.0/0": 2}}
UNPACK = {"ipcache": lambda text: dict(unpack_ipcache(text))}
SECTIONS = ("ipcache",)


def test_the_version_is_the_content_and_ignores_key_order():
    reordered = {"ipcache": dict(reversed(list(V1["ipcache"].items())))}
    assert artifact.version(V1) == artifact.version(reordered) != artifact.version(V2)
    assert len(artifact.version(V1)) == 64


def test_a_delta_carries_only_what_changed_and_patches_old_into_new():
    delta = artifact.diff(V1, V2)
    assert delta == {"ipcache": {"set": {"10.1.1.11/32": 999, "10.1.1.12/32": 302}, "remove": []}}
    assert artifact.patch(V1, delta) == V2
    assert artifact.diff(V2, V3) == {"ipcache": {"set": {}, "remove": ["10.1.1.11/32", "10.1.1.12/32"]}}
    assert artifact.patch(V2, artifact.diff(V2, V3)) == V3
    assert artifact.diff(V1, V1) == {}
    assert V1["ipcache"]["10.1.1.11/32"] == 301  # the input is not changed


def test_a_malformed_delta_is_refused():
    with pytest.raises(artifact.ArtifactError, match="expected {set: mapping, remove: list}"):
        artifact.patch(V1, {"ipcache": {"set": []}})
    with pytest.raises(artifact.ArtifactError, match="names section 'routes'"):
        artifact.patch(V1, {"routes": {"set": {}, "remove": []}}, SECTIONS)


def test_the_copy_kept_is_one_version_written_whole(tmp_path):
    copies = artifact.LocalCopies(str(tmp_path / "state"))
    assert copies.read("fleet") == (None, "no copy of fleet in %s" % (tmp_path / "state"))
    first = copies.write("fleet", V1)
    assert copies.read("fleet") == (first, V1)
    second = copies.write("fleet", V2)
    assert copies.read("fleet") == (second, V2)
    assert os.listdir(str(tmp_path / "state")) == ["fleet-%s.json" % second]
    assert copies.remove() == [str(tmp_path / "state" / ("fleet-%s.json" % second))]
    assert not (tmp_path / "state").exists()


def test_a_damaged_copy_is_not_used(tmp_path):
    copies = artifact.LocalCopies(str(tmp_path))
    held = copies.write("fleet", V1)
    path = tmp_path / ("fleet-%s.json" % held)
    path.write_text(json.dumps({"ipcache": {"10.1.1.10/32": 666}}))
    held_now, reason = copies.read("fleet")
    assert held_now is None and "is damaged" in reason
    path.write_text("{not json")
    assert "cannot be read" in copies.read("fleet")[1]


def test_resolve_keeps_a_current_copy_and_applies_the_delta_from_the_version_held(tmp_path):
    copies = artifact.LocalCopies(str(tmp_path))
    v1, v2, v3 = (artifact.version(d) for d in (V1, V2, V3))
    copies.write("fleet", V1)
    assert artifact.resolve("fleet", {"version": v1}, copies) == (V1, "kept")
    transfer = {"version": v3, "deltas": {v2: artifact.diff(V2, V3), v1: artifact.diff(V1, V3)}}
    assert artifact.resolve("fleet", transfer, copies, sections=SECTIONS) == (V3, "delta")


def test_resolve_says_stale_when_the_host_cannot_build_the_version(tmp_path):
    copies = artifact.LocalCopies(str(tmp_path))
    v1, v2, v3 = (artifact.version(d) for d in (V1, V2, V3))
    with pytest.raises(artifact.Stale, match="no copy of fleet"):  # a new host
        artifact.resolve("fleet", {"version": v2, "deltas": {}}, copies)
    copies.write("fleet", V1)
    with pytest.raises(artifact.Stale, match="no delta was sent"):  # it missed more versions than the deltas cover
        artifact.resolve("fleet", {"version": v3, "deltas": {v2: artifact.diff(V2, V3)}}, copies)
    with pytest.raises(artifact.Stale, match="did not give version"):  # a delta that does not add up
        artifact.resolve("fleet", {"version": v3, "deltas": {v1: artifact.diff(V1, V2)}}, copies)


def test_a_full_document_is_checked_against_its_version(tmp_path):
    copies = artifact.LocalCopies(str(tmp_path))
    v2 = artifact.version(V2)
    packed = pack_ipcache(sorted(V2["ipcache"].items()))
    assert artifact.resolve("fleet", {"version": v2, "packed": {"ipcache": packed}}, copies, UNPACK, SECTIONS) == (V2, "full")
    assert artifact.resolve("fleet", {"version": v2, "full": V2}, copies) == (V2, "full")
    with pytest.raises(artifact.ArtifactError, match="is version .* not the .* it names"):
        artifact.resolve("fleet", {"version": v2, "full": V1}, copies)
    with pytest.raises(artifact.ArtifactError, match="cannot come packed"):
        artifact.resolve("fleet", {"version": v2, "packed": {"ipcache": packed}}, copies)
    with pytest.raises(artifact.ArtifactError, match="expected {version: <sha256>"):
        artifact.resolve("fleet", {"version": "latest"}, copies)
