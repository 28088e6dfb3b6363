# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The datapath's two artifacts on a host (module_utils/_artifact.py):
``fleet``, the fleet's IP table, and ``host``, the host's own endpoints,
policies, identity labels and IP table rows. palisade.ebpf.datapath builds
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


# --- policies sent as changes to the policy an endpoint used before ---------------
# A policy's name is a digest of everything it depends on, so a policy that
# gains one peer is a new name with nearly the rows of the old one; sent as
# a set of rows added and removed to the old one, it costs the change, not
# the policy.

def _rows(entries):
    return set(tuple(row) for row in entries)


def policy_bases(old, new):
    """{new policy name: the old policy an endpoint used before it}."""
    bases = {}
    old_endpoints, old_policies = old.get("endpoints") or {}, old.get("policies") or {}
    for key, endpoint in sorted((new.get("endpoints") or {}).items()):
        before = old_endpoints.get(key) or {}
        name, base = endpoint.get("policy"), before.get("policy")
        if name and base and name not in old_policies and base in old_policies:
            bases.setdefault(name, base)
    return bases


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


DERIVE = {"policies": (policy_bases, policy_diff)}  # the controller's side (diff)
DERIVED = {"policies": policy_patch}  # the host's side (patch)


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
            documents[name], how[name] = artifact.resolve(name, transfers[name], copies, unpack, SECTIONS[name], DERIVED)
        except artifact.Stale as exc:
            stale.append((name, str(exc)))
    return documents, how, stale


def ip_table(documents):
    """{prefix: identity}: the fleet's table with the host's own rows, which win."""
    table = dict(documents["fleet"].get("ipcache") or {})
    table.update(documents["host"].get("overrides") or {})
    return table


def state_from(documents):
    """The datapath's desired state (state.py) from the two artifacts."""
    host = documents["host"]
    return {
        "ipcache": [[prefix, identity] for prefix, identity in ip_table(documents).items()],
        "endpoints": [host["endpoints"][key] for key in sorted(host.get("endpoints") or {})],
        "policies": host.get("policies") or {},
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
