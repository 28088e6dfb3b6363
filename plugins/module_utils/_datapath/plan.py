# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Want / have / diff for the reconciled maps, as an ordered list of writes.

Pure: entries are {key bytes: value bytes}; the kernel is read and written by
reconcile.py. Only entries that differ are written, and the order keeps
enforcement from opening up at any point of a run (see ORDER):

- deny nodes first, then the older nodes they would shadow are removed;
- allow nodes next; only then are stale allows removed, and stale denies last;
- an endpoint switches to a new policy id in one write, after that policy's
  nodes exist; one keeping its policy first gets the union of old and new
  level masks and the stricter enforcement, and the final values after the
  stale nodes are gone (permissive flag changes right after the new allows);
- stale ipcache prefixes and endpoint configs go at the very end, after the
  programs of removed endpoints are detached.

A run is therefore safe to interrupt anywhere: the next one diffs again.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import socket
import struct

from ansible_collections.palisade.ebpf.plugins.module_utils._datapath import abi, maps, policy as dp_policy
from ansible_collections.palisade.ebpf.plugins.module_utils._datapath.errors import MapFullError

# Phases in execution order. "attach" and "detach" are tc work (tc.py),
# interleaved here so that map writes around them are ordered with them.
ORDER = (
    "config-transition",   # union of level masks, stricter enforcement
    "policy-deny",         # new or changed deny nodes
    "policy-shadowed",     # stale nodes below a new deny node
    "policy-allow",        # new or changed allow/redirect nodes
    "ipcache-write",
    "config-write",        # new endpoints, policy switches, permissive flags
    "attach",
    "detach",
    "policy-remove-allow",
    "policy-remove-deny",
    "config-final",        # final level masks
    "config-remove",       # endpoints that are gone
    "ipcache-remove",
)


class Op(object):
    __slots__ = ("phase", "map", "key", "value", "line")

    def __init__(self, phase, map_name, key, value, line=None):
        self.phase = phase
        self.map = map_name
        self.key = key
        self.value = value  # None: delete
        self.line = line    # human diff line, or None for an intermediate step


# --- want ---------------------------------------------------------------------
def want_ipcache(state, ifindexes=None):
    """Key/value bytes built directly (the layouts of IPCacheHostKey,
    IPCachePrefixKey and IPCacheValue in abi.py): a run may carry 60,000.
    This host's endpoints carry their interface's ifindex (``ifindexes``:
    ifname -> ifindex), so that a packet's destination says whose ingress
    policy applies before the packet is routed (the L7 redirect)."""
    host, prefix = {}, {}
    pack_value = struct.Struct("=II").pack
    pack_plen = struct.Struct("=I").pack
    aton = socket.inet_aton
    for text, identity in state["ipcache"].items():
        addr, plen = text.split("/")
        if plen == "32":
            host[aton(addr)] = pack_value(identity, 0)
        else:
            prefix[pack_plen(int(plen)) + aton(addr)] = pack_value(identity, 0)
    for ep in state["endpoints"]:
        index = (ifindexes or {}).get(ep["ifname"])
        if index is not None:
            host[aton(ep["ipv4"])] = pack_value(ep["identity"], index)
    return host, prefix


def want_policies(state, ids):
    """Nodes of every policy some endpoint uses -> (entries, masks by policy id)."""
    used = sorted(set(ep["policy"] for ep in state["endpoints"] if ep["policy"]))
    entries, masks = {}, {}
    for name in used:
        pid = ids[name]
        masks[pid] = {}
        for dname, direction in sorted(abi.DIRECTIONS.items()):
            nodes = dp_policy.compile_direction(state["policies"][name][dname]["entries"])
            masks[pid][direction] = dp_policy.level_masks(nodes)
            masks[pid][("l7", direction)] = any(flags & abi.POL_F_L7 for flags, dummy in nodes.values())
            entries.update(dp_policy.kernel_entries(pid, direction, nodes))
    return entries, masks


def endpoint_config(ep, ids, masks, policies):
    cfg = abi.EndpointConfig(ipv4=abi.ip_to_u32(ep["ipv4"]), identity=ep["identity"])
    if ep["policy"]:
        pid = ids[ep["policy"]]
        pol = policies[ep["policy"]]
        cfg.policy_id = pid
        if pol["ingress"]["enforced"]:
            cfg.flags |= abi.EP_F_ENFORCE_INGRESS
        if pol["egress"]["enforced"]:
            cfg.flags |= abi.EP_F_ENFORCE_EGRESS
        if masks[pid].get(("l7", abi.DIR_INGRESS)):
            cfg.flags |= abi.EP_F_L7_INGRESS
        if masks[pid].get(("l7", abi.DIR_EGRESS)):
            cfg.flags |= abi.EP_F_L7_EGRESS
        for direction in (abi.DIR_INGRESS, abi.DIR_EGRESS):
            peer, anyp = masks[pid][direction]
            cfg.levels[direction * 2] = peer
            cfg.levels[direction * 2 + 1] = anyp
    return cfg


def want_endpoints(state, ifindexes, ids, masks):
    """{key: value} for endpoints whose interface exists; and the ones missing."""
    out, missing = {}, []
    for ep in state["endpoints"]:
        index = ifindexes.get(ep["ifname"])
        if index is None:
            missing.append(ep)
            continue
        key = abi.to_bytes(abi.EndpointKey(ifindex=index))
        out[key] = abi.to_bytes(endpoint_config(ep, ids, masks, state["policies"]))
    return out, missing


# --- describing entries ----------------------------------------------------------
class Namer(object):
    """Human names for numbers: policies, identities, endpoints."""

    def __init__(self, state, ids, ifindexes):
        self.policies = dict((pid, name) for name, pid in ids.items())
        self.identities = state.get("identities") or {}
        self.endpoints = {}
        for ep in state["endpoints"]:
            if ep["ifname"] in ifindexes:
                self.endpoints[ifindexes[ep["ifname"]]] = ep

    def policy(self, pid):
        if not pid:
            return "none"
        return self.policies.get(pid, "#%d (no longer wanted)" % pid)

    def identity(self, ident):
        if ident == 0:
            return "any peer"
        text = self.identities.get(ident)
        return "%d (%s)" % (ident, text) if text else str(ident)

    def endpoint(self, ifindex):
        ep = self.endpoints.get(ifindex)
        if ep:
            return "%s (%s, ifindex %d)" % (ep["key"], ep["ifname"], ifindex)
        return "ifindex %d" % ifindex


def describe_policy(namer, key, value):
    pid, direction, identity, prefix = dp_policy.decode_key(key)
    head = "policy %s %s: %s %s %s" % (namer.policy(pid), abi.DIR_NAMES[direction],
                                       "from" if direction == abi.DIR_INGRESS else "to",
                                       namer.identity(identity), dp_policy.describe_l4(prefix))
    return head, dp_policy.describe_value(dp_policy.decode_value(value)) if value is not None else None


def _prefix_text(map_name, key):
    if map_name == "ipcache_host":
        return "%s/32" % abi.u32_to_ip(abi.from_bytes(abi.IPCacheHostKey, key).addr)
    k = abi.from_bytes(abi.IPCachePrefixKey, key)
    return "%s/%d" % (abi.u32_to_ip(k.addr), k.prefixlen)


def describe_ipcache(namer, map_name, key, value):
    head = "ipcache %s" % _prefix_text(map_name, key)
    if value is None:
        return head, None
    return head, "identity %s" % namer.identity(abi.from_bytes(abi.IPCacheValue, value).identity)


def _enforce_text(flags):
    parts = [name for bit, name in ((abi.EP_F_ENFORCE_INGRESS, "ingress"), (abi.EP_F_ENFORCE_EGRESS, "egress")) if flags & bit]
    return ",".join(parts) or "none"


def describe_config(namer, key, value):
    head = "endpoint %s" % namer.endpoint(abi.from_bytes(abi.EndpointKey, key).ifindex)
    if value is None:
        return head, None
    cfg = abi.from_bytes(abi.EndpointConfig, value)
    return head, "%s identity %s, policy %s, enforce %s" % (
        abi.u32_to_ip(cfg.ipv4), namer.identity(cfg.identity), namer.policy(cfg.policy_id), _enforce_text(cfg.flags))


def describe(namer, map_name, key, value):
    """(what the entry is, what it says) in human terms."""
    if map_name == "policy":
        return describe_policy(namer, key, value)
    if map_name.startswith("ipcache"):
        return describe_ipcache(namer, map_name, key, value)
    return describe_config(namer, key, value)


def _line(sign, namer, map_name, key, value, old=None):
    head, detail = describe(namer, map_name, key, old if sign == "-" else value)
    if sign == "~":
        detail = "%s -> %s" % (describe(namer, map_name, key, old)[1], detail)
    return "%s %s: %s" % (sign, head, detail) if detail else "%s %s" % (sign, head)


# --- diff -------------------------------------------------------------------------
def _is_deny(value):
    return bool(value) and (bytearray(value)[0] & abi.POL_F_DENY) != 0


def _shadowed_by_deny(key, want):
    """True when a wanted deny node covers this (stale) node of the same trie."""
    pid, direction, identity, prefix = dp_policy.decode_key(key)
    dir_bit = abi.POLICY_DIR_EGRESS_BIT if direction == abi.DIR_EGRESS else 0
    for level in abi.LEVELS:
        if level >= prefix[0]:
            break
        anc = dp_policy.ancestor(prefix, level)
        akey = abi.to_bytes(abi.PolicyKey(policy_id=pid, identity=identity, dir_level=dir_bit | anc[0],
                                          proto=anc[1], port=abi.port_to_be16(anc[2])))
        if _is_deny(want.get(akey)):
            return True
    return False


def _to_write(want, have):
    """(key, value, old value or None) of each entry that differs, in key order."""
    get = have.get
    return [(key, want[key], get(key)) for key in sorted(want) if get(key) != want[key]]


def _to_remove(want, have):
    """(key, old value) of each entry no longer wanted, in key order."""
    return [(key, have[key]) for key in sorted(have) if key not in want]


def plan_policy(want, have, namer):
    ops = []
    for key, value, old in _to_write(want, have):
        phase = "policy-deny" if _is_deny(value) else "policy-allow"
        ops.append(Op(phase, "policy", key, value, _line("+" if old is None else "~", namer, "policy", key, value, old)))
    for key, old in _to_remove(want, have):
        if _shadowed_by_deny(key, want):
            phase = "policy-shadowed"
        elif _is_deny(old):
            phase = "policy-remove-deny"
        else:
            phase = "policy-remove-allow"
        ops.append(Op(phase, "policy", key, None, _line("-", namer, "policy", key, None, old)))
    return ops


def plan_simple(map_name, want, have, namer, write_phase, remove_phase):
    ops = []
    for key, value, old in _to_write(want, have):
        ops.append(Op(write_phase, map_name, key, value, _line("+" if old is None else "~", namer, map_name, key, value, old)))
    for key, old in _to_remove(want, have):
        ops.append(Op(remove_phase, map_name, key, None, _line("-", namer, map_name, key, None, old)))
    return ops


def plan_endpoints(want, have, namer):
    ops = []
    for key, value, old in _to_write(want, have):
        line = _line("+" if old is None else "~", namer, "endpoints", key, value, old)
        if old is None:
            ops.append(Op("config-write", "endpoints", key, value, line))
            continue
        new_cfg = abi.from_bytes(abi.EndpointConfig, value)
        old_cfg = abi.from_bytes(abi.EndpointConfig, old)
        if new_cfg.policy_id != old_cfg.policy_id:
            # A different policy id: its nodes are written by then; switch in one write.
            ops.append(Op("config-write", "endpoints", key, value, line))
            continue
        # Same policy, changing nodes: probe the union of old and new levels
        # while both sets of nodes exist, enforce the stricter flags until the
        # new allows are in place.
        transition = abi.from_bytes(abi.EndpointConfig, value)
        for i in range(4):
            transition.levels[i] = new_cfg.levels[i] | old_cfg.levels[i]
        transition.flags = new_cfg.flags | old_cfg.flags
        steps = [("config-transition", abi.to_bytes(transition))]
        relaxed = abi.from_bytes(abi.EndpointConfig, abi.to_bytes(transition))
        relaxed.flags = new_cfg.flags
        steps.append(("config-write", abi.to_bytes(relaxed)))
        steps.append(("config-final", value))
        current = old
        written = []
        for phase, step in steps:
            if step != current:
                written.append(Op(phase, "endpoints", key, step))
                current = step
        written[-1].line = line  # the diff shows the change once
        ops.extend(written)
    for key, old in _to_remove(want, have):
        ops.append(Op("config-remove", "endpoints", key, None, _line("-", namer, "endpoints", key, None, old)))
    return ops


def check_capacity(ops, have, specs_settings):
    """Fail before any write when a map cannot hold old and new entries at once.

    ``specs_settings``: {map name: max_entries}. New entries are written
    before stale ones are removed, so the peak is have + new keys.
    """
    added = {}
    for op in ops:
        if op.value is not None and op.key not in have.get(op.map, {}):
            added.setdefault(op.map, set()).add(op.key)
    for name, keys in sorted(added.items()):
        limit = specs_settings[name]
        peak = len(have.get(name, {})) + len(keys)
        if peak > limit:
            setting = maps.MAPS_BY_NAME[name].size_setting
            raise MapFullError(
                "map %s is too small: %d entries now + %d new = %d while switching (new entries are written "
                "before stale ones are removed), max_entries is %d; raise settings.%s. Nothing was changed."
                % (name, len(have.get(name, {})), len(keys), peak, limit, setting))


def plan(want, have, namer):
    """All map writes, in execution order. want/have: {map name: {key: value}}."""
    ops = []
    ops.extend(plan_endpoints(want["endpoints"], have.get("endpoints", {}), namer))
    ops.extend(plan_policy(want["policy"], have.get("policy", {}), namer))
    ops.extend(plan_simple("ipcache_host", want["ipcache_host"], have.get("ipcache_host", {}), namer,
                           "ipcache-write", "ipcache-remove"))
    ops.extend(plan_simple("ipcache_prefix", want["ipcache_prefix"], have.get("ipcache_prefix", {}), namer,
                           "ipcache-write", "ipcache-remove"))
    rank = dict((phase, i) for i, phase in enumerate(ORDER))
    # Stable sort: within a phase, the order above (sorted keys) is kept;
    # stale policy nodes go shortest prefix first (see docs/datapath.md).
    return sorted(ops, key=lambda op: (rank[op.phase], _removal_rank(op)))


def _removal_rank(op):
    if op.map == "policy" and op.value is None:
        return dp_policy.decode_key(op.key)[3][0]
    return 0
