# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host's share of the fleet policy (fleet.host_share) -> the datapath's
desired state (datapath/state.py). Pure; runs on the controller.

The engine groups entries by peer set and keeps HTTP rules and rule names;
the datapath wants one flat row per peer with a verdict: deny when the entry
denies, redirect when it carries HTTP rules (the L7 proxy judges requests),
allow otherwise. Precedence between overlapping rows is the datapath
planner's job (docs/policy-engine.md, "Evaluation of one packet").
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.palisade.ebpf.plugins.module_utils._datapath.state import pack_ipcache


def flat_entries(direction):
    rows = set()
    for group in direction.get("entries") or ():
        for protocol, lo, hi, deny, http, _names in group["l4"]:
            verdict = "deny" if deny else ("redirect" if http is not None else "allow")
            for peer in group["peers"]:
                rows.add((peer, protocol, lo, hi, verdict))
    return [list(row) for row in sorted(rows)]


def datapath_state(share, ipcache, bpffs_dir, identities=None, packed=False):
    """The datapath module's arguments for one host. With ``packed`` the IP
    table travels as ``ipcache_packed`` (one string) instead of a list."""
    table = dict(ipcache)
    table.update(share.get("ipcache_overrides") or {})
    policies = {}
    for ref, policy in (share.get("policies") or {}).items():
        policies[ref] = {
            direction: {"enforced": bool(policy[direction]["enforced"]), "entries": flat_entries(policy[direction])}
            for direction in ("ingress", "egress")
        }
    endpoints = [dict((k, ep[k]) for k in ("key", "ifname", "ipv4", "identity", "policy"))
                 for ep in share.get("enforcement") or ()]
    used = set(ep["identity"] for ep in endpoints)
    for policy in policies.values():
        for direction in policy.values():
            used.update(row[0] for row in direction["entries"])
    state = {
        "bpffs_dir": bpffs_dir,
        "ipcache": [[prefix, identity] for prefix, identity in sorted(table.items())],
        "endpoints": endpoints,
        "policies": policies,
    }
    if packed:
        state["ipcache_packed"] = pack_ipcache(state.pop("ipcache"))
    if identities:
        # Only the identities this host's diffs can mention, by label, not number.
        state["identities"] = dict((str(n), identities[str(n)]) for n in sorted(used) if str(n) in identities)
    return state
