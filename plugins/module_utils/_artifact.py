# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Versioned artifacts a host keeps between runs, so that a run ships only
what changed (docs/fleet-scale.md, "What a run ships").

An artifact is a document of sections, each a mapping of string keys to
plain JSON values::

    {"ipcache": {"10.1.1.10/32": 123456789, ...}}                 # the fleet's IP table
    {"endpoints": {...}, "policies": {...}, "identities": {...}, "overrides": {...}}   # one host's own

Its version is the SHA-256 of its canonical JSON, computed alike on the
controller (which names its store objects the same way) and on the host.
The host keeps the last version it applied as ``<name>-<version>.json`` in
its state directory and checks the content against the name before using
it, so a damaged copy is never applied.

What the controller sends for one artifact (``transfer``):

- ``{"version": V}``: the host should hold V already;
- ``{"version": V, "deltas": {B: delta, ...}}``: the change from each of a
  few earlier versions B, of which the host uses the one it holds;
- ``{"version": V, "full": document}`` (sections may come ``packed``
  instead: IP tables as palisade's packed string, far cheaper for Ansible
  to carry than 60,000 JSON pairs).

A host that holds neither V nor any B answers "stale" and the controller
sends the full document; the version of the result is checked either way.
Large values many hosts share (the datapath's flat policies) are kept apart
as content-addressed objects (``ObjectCopies``) that a document names by
version.
Pure Python, no Ansible: the host side runs inside the module.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import re
import tempfile

_VERSION = re.compile(r"^[0-9a-f]{64}$")


class Stale(Exception):
    """The host cannot build the version it was sent: it needs the full document."""


class ArtifactError(ValueError):
    """A transfer is malformed or does not produce the version it names."""


def canonical(value):
    """The bytes a document is versioned (and a store object named) by."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode("utf-8")


def version(document):
    return hashlib.sha256(canonical(document)).hexdigest()


def diff(old, new):
    """The delta that turns ``old`` into ``new``:
    {section: {"set": {key: value}, "remove": [key, ...]}} for the sections
    that differ (a section missing on one side counts as empty)."""
    delta = {}
    for section in sorted(set(old) | set(new)):
        before, after = old.get(section) or {}, new.get(section) or {}
        if before == after:
            continue
        delta[section] = {"set": dict((k, v) for k, v in after.items() if k not in before or before[k] != v),
                          "remove": sorted(k for k in before if k not in after)}
    return delta


def patch(document, delta, sections=None):
    """``document`` with ``delta`` applied (a new document; the input is not
    changed). ArtifactError when the delta is not one."""
    if not isinstance(delta, dict):
        raise ArtifactError("a delta is a mapping of sections, not %r" % type(delta).__name__)
    out = dict(document)
    for section, change in delta.items():
        if not isinstance(change, dict) or not isinstance(change.get("set", {}), dict) \
                or not isinstance(change.get("remove", []), list):
            raise ArtifactError("delta of section %r: expected {set: mapping, remove: list}" % (section,))
        if sections is not None and section not in sections:
            raise ArtifactError("delta names section %r, expected one of %s" % (section, ", ".join(sections)))
        merged = dict(out.get(section) or {})
        for key in change.get("remove", []):
            merged.pop(key, None)
        merged.update(change.get("set", {}))
        out[section] = merged
    return out


def write_atomic(path, data):
    """``data`` to ``path`` through a temporary file and a rename: a reader
    sees the old content or the new, never part of it."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class ObjectCopies:
    """Content-addressed objects a host keeps in ``directory`` (``<version>.json``),
    which a document names by version: large values many hosts share."""

    def __init__(self, directory):
        self.directory = directory

    def get(self, name):
        """The object ``name``, or None when it is missing or damaged."""
        if not isinstance(name, str) or not _VERSION.match(name):
            return None
        try:
            with open(os.path.join(self.directory, name + ".json"), "rb") as handle:
                value = json.loads(handle.read().decode("utf-8"))
        except (IOError, OSError, ValueError):
            return None
        return value if version(value) == name else None

    def put(self, value):
        name = version(value)
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        path = os.path.join(self.directory, name + ".json")
        if not os.path.exists(path):
            write_atomic(path, canonical(value))
        return name

    def keep(self, names):
        """Remove every object but ``names``."""
        try:
            entries = os.listdir(self.directory)
        except OSError:
            return
        for entry in entries:
            if entry.endswith(".json") and entry[:-5] not in names:
                os.unlink(os.path.join(self.directory, entry))


class LocalCopies:
    """The artifacts a host keeps in ``directory``: one version per name."""

    def __init__(self, directory):
        self.directory = directory

    def _versions(self, name):
        try:
            entries = os.listdir(self.directory)
        except OSError:
            return []
        prefix = name + "-"
        return sorted(e[len(prefix):-5] for e in entries
                      if e.startswith(prefix) and e.endswith(".json") and _VERSION.match(e[len(prefix):-5]))

    def read(self, name):
        """(version, document) of the copy held, or (None, reason) when there
        is none or it is damaged."""
        versions = self._versions(name)
        if not versions:
            return None, "no copy of %s in %s" % (name, self.directory)
        held = versions[-1]
        path = os.path.join(self.directory, "%s-%s.json" % (name, held))
        try:
            with open(path, "rb") as handle:
                data = handle.read()
            document = json.loads(data.decode("utf-8"))
        except (IOError, OSError, ValueError) as exc:
            return None, "the copy %s cannot be read (%s)" % (path, exc)
        if not isinstance(document, dict) or version(document) != held:
            return None, "the copy %s is damaged (its content is not the version it is named by)" % path
        return held, document

    def write(self, name, document):
        """Keep ``document`` as the copy of ``name`` (atomically), dropping
        older versions; its version."""
        held = version(document)
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        path = os.path.join(self.directory, "%s-%s.json" % (name, held))
        if not os.path.exists(path):
            write_atomic(path, canonical(document))
        for other in self._versions(name):
            if other != held:
                os.unlink(os.path.join(self.directory, "%s-%s.json" % (name, other)))
        return held

    def remove(self):
        """Remove every copy and object and the directory; the paths removed."""
        removed = []
        for dirpath, dirnames, filenames in os.walk(self.directory, topdown=False):
            for entry in sorted(filenames):
                os.unlink(os.path.join(dirpath, entry))
                removed.append(os.path.join(dirpath, entry))
            try:
                os.rmdir(dirpath)
            except OSError:
                pass
        return removed


def resolve(name, transfer, copies, unpack=None, sections=None):
    """The document ``transfer`` (see the module docstring) stands for, from
    what it carries and the copy ``copies`` holds. Returns (document, how):
    how is "kept" (the copy was current), "delta" or "full". Raises Stale
    when the host needs the full document, ArtifactError when the transfer
    is malformed or its result is not the version it names. ``unpack``:
    {section: function(text) -> mapping} for ``packed`` sections."""
    if not isinstance(transfer, dict) or not isinstance(transfer.get("version"), str) \
            or not _VERSION.match(transfer["version"]):
        raise ArtifactError("%s: expected {version: <sha256>, ...}, got %r" % (name, transfer))
    wanted = transfer["version"]
    if "full" in transfer or "packed" in transfer:
        document = dict(transfer.get("full") or {})
        for section, text in (transfer.get("packed") or {}).items():
            if unpack is None or section not in unpack:
                raise ArtifactError("%s: section %r cannot come packed" % (name, section))
            document[section] = unpack[section](text)
        how = "full"
    else:
        held, document = copies.read(name)
        if held is None:
            raise Stale(document)
        if held == wanted:
            return document, "kept"
        deltas = transfer.get("deltas") or {}
        if held not in deltas:
            raise Stale("%s: the copy held is version %s, for which no delta was sent" % (name, held[:12]))
        try:
            document = patch(document, deltas[held], sections)
        except (ArtifactError, KeyError, TypeError, ValueError) as exc:
            raise Stale("%s: the delta from %s does not apply (%s)" % (name, held[:12], exc))
        how = "delta"
    if sections is not None and set(document) - set(sections):
        raise ArtifactError("%s: unexpected sections %s" % (name, ", ".join(sorted(set(document) - set(sections)))))
    got = version(document)
    if got != wanted:
        if how == "delta":
            raise Stale("%s: the delta from %s did not give version %s" % (name, held[:12], wanted[:12]))
        raise ArtifactError("%s: the document sent is version %s, not the %s it names" % (name, got[:12], wanted[:12]))
    return document, how
