# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One lab run (module_utils/_lab/reconcile.py) without root: its result
(module_utils/_result.py), the record of what it created, and the lock that
serialises runs. The kernel and process observers are replaced by a fixed
view of the lab, and runs are in check mode, so nothing is touched."""

import fcntl
import os

import pytest

from ansible_collections.palisade.ebpf.plugins.module_utils._lab import plan as lab
from ansible_collections.palisade.ebpf.plugins.module_utils._lab import reconcile as lab_exec
from tests.support.lab_specs import copies, desired, find, make_spec


class NoKernel(object):
    def close(self):
        pass


@pytest.fixture
def observed(monkeypatch):
    """The objects the observers report (set the list's contents)."""
    seen = []
    monkeypatch.setattr(lab_exec.lab_kernel, "Kernel", NoKernel)
    monkeypatch.setattr(lab_exec.lab_kernel, "observe", lambda kernel, spec, record: list(seen))
    monkeypatch.setattr(lab_exec.lab_host, "observe", lambda spec, record: [])
    return seen


def run(spec, state="present"):
    return lab_exec.reconcile(spec, state, True, {})


def test_a_converged_lab_reports_no_change_and_the_same_objects(tmp_path, observed):
    spec = make_spec(state_dir=str(tmp_path / "pal"))
    observed.extend(copies(desired(spec)))
    result = run(spec)
    assert result["changed"] is False and result["changes"] == []
    assert result["before"] == result["after"] == lab.describe_all(desired(spec))
    assert result["diff"]["before"] == result["diff"]["after"] == "".join(line + "\n" for line in result["after"])
    assert result["diff"]["before_header"] == "lab pal"
    assert result["ssh_private_key"] == os.path.join(str(tmp_path / "pal"), "id_ed25519")


def test_drift_shows_in_before_after_and_changes(tmp_path, observed):
    spec = make_spec(state_dir=str(tmp_path / "pal"))
    seen = copies(desired(spec))
    find(seen, "sysctl", "pal-h-node1").attrs["value"] = "0"
    observed.extend(seen)
    result = run(spec)
    assert result["changed"] is True
    assert result["changes"] == ["~ update sysctl pal-h-node1: net.ipv4.ip_forward = 1"]
    assert "sysctl pal-h-node1: net.ipv4.ip_forward = 0" in result["before"]
    assert "sysctl pal-h-node1: net.ipv4.ip_forward = 1" in result["after"]
    assert "sysctl pal-h-node1: net.ipv4.ip_forward = 0" not in result["after"]


def test_absent_lists_what_goes_and_leaves_nothing(tmp_path, observed):
    spec = make_spec(state_dir=str(tmp_path / "pal"))
    observed.extend(copies(desired(spec)))
    result = run(spec, "absent")
    assert result["changed"] is True and result["after"] == []
    assert "- netns pal-fabric (fabric)" in result["changes"]
    assert all(line.startswith("- ") for line in result["changes"])
    assert len(result["before"]) == len(desired(spec))


def test_warnings_travel_in_the_result(tmp_path, observed):
    spec = make_spec(state_dir=str(tmp_path / "pal"), protocols=("TCP", "UDP"))
    observed.extend(copies(desired(spec)))
    result = run(spec)
    assert result["warnings"] == [
        "endpoint kube/dns: port 3868/SCTP is not served: the running kernel does not support SCTP"]


def test_script_revision_tags_the_content(tmp_path):
    script = tmp_path / "server.py"
    script.write_text("print(1)\n")
    rev = lab_exec.script_rev(str(script))
    assert rev == lab.short_hash("print(1)\n") and len(rev) == 12
    assert lab_exec.script_rev(str(tmp_path / "missing.py")) == "missing"


def test_kernel_protocols_include_tcp_and_udp():
    assert {"TCP", "UDP"} <= set(lab_exec.kernel_protocols())


def test_record_marks_adopted_namespaces_as_not_created():
    spec = make_spec()
    objs = desired(spec)
    seen = [lab.LabObject("netns", "dns-ns", {"role": "endpoint kube/dns"}, {"keep": True})]
    record = lab_exec._next_record(spec, {"netns": {}}, objs, seen, created={"pal-fabric"})
    assert record["netns"]["dns-ns"] == {"role": "endpoint kube/dns", "created": False}
    assert record["netns"]["pal-fabric"]["created"] is True
    assert record["netns"]["pal-h-node1"]["created"] is True
    assert record["prefix"] == "pal"


def test_lab_runs_sharing_a_state_root_are_serialised(tmp_path, monkeypatch):
    monkeypatch.setattr(lab_exec, "LOCK_TIMEOUT", 0.3)
    spec = make_spec(state_dir=str(tmp_path / "pal"))
    other = os.open(str(tmp_path), os.O_RDONLY)  # another run's open of the state root
    try:
        with lab_exec.lab_lock(spec):
            with pytest.raises(OSError):
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # released on exit, so the other run gets it ...
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # ... and while it holds it, this one gives up with a clear message
        with pytest.raises(lab.LabError, match="another lab run has held the lock"):
            with lab_exec.lab_lock(spec):
                pass
    finally:
        os.close(other)
    # no state root yet: nothing to lock, and nothing is created
    with lab_exec.lab_lock(make_spec(state_dir=str(tmp_path / "missing" / "pal"))):
        pass
    assert not (tmp_path / "missing").exists()
