# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The datapath's two artifacts on a host (module_utils/_artifact.py):
``fleet``, the fleet's IP table, and ``host``, the host's own endpoints,
the versions of the flat policy objects they use, identity labels and IP
table rows. palisade.ebpf.datapath builds
its desired state from them and keeps what it applied in its state
directory; palisade.ebpf.l7proxy reads the IP table from there too, so the
table crosses the wire once per change, not once per module."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.palisade.ebpf.plugins.module_utils import _artifact as artifact
from ansible_collections.palisade.ebpf.plugins.module_utils import _naming as naming
from ansible_collections.palisade.ebpf.plugins.module_utils._datapath.state import unpack_ipcache

SECTIONS = {"fleet": ("ipcache",), "host": ("endpoints", "policies", "identities", "overrides")}


# --- policies ---------------------------------------------------------------------
# The host artifact names each policy by its flat object's version; the
# objects, shared by many hosts and large at fleet size, are kept apart
# (ObjectCopies) and travel once per host. A policy's reference digests
# everything it depends on, so a policy that gains one peer is a new object
# with nearly the rows of the old one: it travels as the rows added to and
# removed from the object the same endpoint used before.

POLICY_DIR = "policies"


def _rows(entries):
    return set(tuple(row) for row in entries)


def policy_diff(old, new):
    return dict((direction, {"enforced": new[direction]["enforced"],
                             "add": sorted(_rows(new[direction]["entries"]) - _rows(old[direction]["entries"])),
                             "remove": sorted(_rows(old[direction]["entries"]) - _rows(new[direction]["entries"]))})
                for direction in new)


def policy_patch(old, change):
    """The policy ``policy_diff`` described; entries sorted as the controller sorts them."""
    out = {}
    for direction, how in change.items():
        rows = (_rows(old[direction]["entries"]) - _rows(how["remove"])) | _rows(how["add"])
        out[direction] = {"enforced": how["enforced"], "entries": [list(row) for row in sorted(rows)]}
    return out


def policy_copies(state_dir):
    return artifact.ObjectCopies(os.path.join(state_dir, POLICY_DIR))


def resolve_policies(document, sent, copies):
    """({reference: flat policy}, {version: object new to this host}, [missing
    versions]) for the host artifact ``document``: each object from the
    host's copies, or from ``sent`` ({version: {"full": object} or {"from":
    version, "patch": policy_diff}}), checked against its version."""
    policies, new, missing = {}, {}, []
    for ref, name in sorted((document.get("policies") or {}).items()):
        found = new.get(name) or copies.get(name)
        if found is None:
            how = sent.get(name) if isinstance(sent, dict) else None
            try:
                if isinstance(how, dict) and "full" in how:
                    found = how["full"]
                elif isinstance(how, dict) and "from" in how:
                    base = new.get(how["from"]) or copies.get(how["from"])
                    found = policy_patch(base, how["patch"]) if base is not None else None
            except (KeyError, TypeError, ValueError, AttributeError):
                found = None
            if found is None or artifact.version(found) != name:
                missing.append(name)
                continue
            new[name] = found
        policies[ref] = found
    return policies, new, sorted(set(missing))


def default_state_dir(bpffs_dir):
    """Beside the host's L7 proxy directory: the default bpffs directory is
    named <prefix>-<host>, like the proxy directory's parent (_naming.py)."""
    return os.path.join(naming.STATE_ROOT, os.path.basename(bpffs_dir.rstrip("/")), "datapath")


def resolve_artifacts(transfers, copies):
    """({name: document}, {name: how}, [(name, stale reason)]) from the
    transfers the controller sent (_artifact.resolve)."""
    documents, how, stale = {}, {}, []
    unpack = {"ipcache": lambda text: dict(unpack_ipcache(text, "artifacts.fleet.packed.ipcache"))}
    for name in sorted(SECTIONS):
        if name not in transfers:
            raise artifact.ArtifactError("artifacts: %s is missing" % name)
        try:
            documents[name], how[name] = artifact.resolve(name, transfers[name], copies, unpack, SECTIONS[name])
        except artifact.Stale as exc:
            stale.append((name, str(exc)))
    return documents, how, stale


class Resolved:
    """What a host makes of the controller's transfers (resolve)."""

    def __init__(self, documents, how, stale, policies=None, new_objects=None, missing=()):
        self.documents, self.how, self.policies, self.new_objects = documents, how, policies, new_objects or {}
        self.missing = list(missing)
        self.stale = [name for name, dummy in stale] + (["objects"] if self.missing else [])
        self.reasons = [reason for dummy, reason in stale] + (
            ["%d policy objects missing" % len(self.missing)] if self.missing else [])

    def state(self):
        return state_from(self.documents, self.policies)

    def keep(self, copies, object_copies):
        """Keep what was applied: new objects, changed artifacts, and only
        the objects the host artifact names."""
        for name in sorted(self.new_objects):
            object_copies.put(self.new_objects[name])
        for name in sorted(self.documents):
            if self.how[name] != "kept":
                copies.write(name, self.documents[name])
        if self.new_objects or self.how["host"] != "kept":
            object_copies.keep(set(self.documents["host"]["policies"].values()))


def resolve(transfers, copies, object_copies):
    """The artifacts and policy objects from ``transfers`` and what the host
    keeps; ``.stale`` lists what it cannot build (then nothing else is set)."""
    documents, how, stale = resolve_artifacts(transfers, copies)
    if stale:
        return Resolved(documents, how, stale)
    policies, new_objects, missing = resolve_policies(documents["host"], transfers.get("objects") or {}, object_copies)
    return Resolved(documents, how, [], policies, new_objects, missing)


def ip_table(documents):
    """{prefix: identity}: the fleet's table with the host's own rows, which win."""
    table = dict(documents["fleet"].get("ipcache") or {})
    table.update(documents["host"].get("overrides") or {})
    return table


def state_from(documents, policies):
    """The datapath's desired state (state.py) from the two artifacts and
    the policies the host artifact names (resolve_policies)."""
    host = documents["host"]
    return {
        "ipcache": [[prefix, identity] for prefix, identity in ip_table(documents).items()],
        "endpoints": [host["endpoints"][key] for key in sorted(host.get("endpoints") or {})],
        "policies": policies,
        "identities": host.get("identities") or {},
    }


def applied_ip_table(directory, versions):
    """The IP table the datapath applied, from the copies it kept in
    ``directory``, when they are at ``versions`` ({fleet: V, host: H});
    otherwise (None, why)."""
    copies = artifact.LocalCopies(directory)
    documents = {}
    for name in sorted(SECTIONS):
        held, document = copies.read(name)
        if held is None:
            return None, document
        if held != versions.get(name):
            return None, "the datapath's %s artifact in %s is version %s, not %s" % (
                name, directory, held[:12], str(versions.get(name))[:12])
        documents[name] = document
    return ip_table(documents), None


def remove_state_dir(directory):
    """The copies, and the directory's parent when that is left empty and
    directly under naming.STATE_ROOT (the per-host directory)."""
    removed = artifact.LocalCopies(directory).remove()
    parent = os.path.dirname(directory.rstrip("/"))
    if os.path.dirname(parent) == naming.STATE_ROOT:
        try:
            os.rmdir(parent)
        except OSError:
            pass
    return removed
