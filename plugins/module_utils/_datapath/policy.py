# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Policy entries -> kernel policy nodes (bpf/lib/policy.h.j2 explains the lookup).

A node is (peer identity, L4 prefix) of one policy and direction. An L4
prefix is (level, proto, port): level 0 any protocol, 8 one protocol, 8+k an
aligned block of 2^(16-k) ports, 24 one port. The datapath finds, for the
peer's identity and for "any peer", the longest node covering the packet;
so each node's value merges every entry of that identity covering it (its
ancestors and itself): deny if any is a deny, else the level of the most
specific allow/redirect and whether all of those are redirects. A node whose
value equals what its nearest ancestor would answer is left out.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.palisade.ebpf.plugins.module_utils._datapath import abi

PORT_PROTOCOLS = (6, 17, 132)
PROTO_NAMES = {0: "any", 1: "icmp", 6: "tcp", 17: "udp", 132: "sctp"}


def port_mask(level):
    """Mask of the port bits a level keeps (host order)."""
    if level <= abi.LEVEL_PROTO:
        return 0
    return (0xFFFF0000 >> (level - abi.LEVEL_PROTO)) & 0xFFFF


def port_blocks(low, high):
    """Aligned blocks covering low..high: [(level, first port)]."""
    out = []
    while low <= high:
        size = (low & -low) if low else 65536
        while low + size - 1 > high:
            size >>= 1
        out.append((abi.LEVEL_EXACT - (size.bit_length() - 1), low))
        low += size
    return out


def l4_prefixes(proto, low, high):
    """The L4 prefixes of one entry's (proto, port range)."""
    if proto == 0:
        if (low, high) == (0, 65535):
            return [(abi.LEVEL_ANY, 0, 0)]
        return [(level, p, port) for p in PORT_PROTOCOLS for level, port in port_blocks(low, high)]
    return [(level, proto, port) for level, port in port_blocks(low, high)]


def ancestor(prefix, level):
    """The prefix at `level` containing `prefix` (level <= prefix's level)."""
    if level == abi.LEVEL_ANY:
        return (abi.LEVEL_ANY, 0, 0)
    return (level, prefix[1], prefix[2] & port_mask(level))


def _covering(prefix):
    """Every prefix containing this one, itself included, shortest first."""
    return [ancestor(prefix, level) for level in abi.LEVELS if level <= prefix[0]]


def merge(own, prefix):
    """(flags, allow_level) of a prefix from its covering entries' own flags.

    ``own``: prefix -> set of verdicts of the entries written at that prefix.
    """
    deny = False
    allow_level = None
    kinds = set()
    for anc in _covering(prefix):
        verdicts = own.get(anc)
        if not verdicts:
            continue
        if "deny" in verdicts:
            deny = True
        if "allow" in verdicts or "redirect" in verdicts:
            allow_level = anc[0]  # shortest first: the last one is the longest
            kinds = verdicts
    if deny:
        return (abi.POL_F_DENY, 0)
    if allow_level is None:
        return None
    flags = abi.POL_F_ALLOW
    if "allow" not in kinds:
        flags |= abi.POL_F_L7
    return (flags, allow_level)


def compile_direction(entries):
    """entries -> {(identity, level, proto, port): (flags, allow_level)}."""
    own_by_identity = {}
    for peer, proto, low, high, verdict in entries:
        own = own_by_identity.setdefault(peer, {})
        for prefix in l4_prefixes(proto, low, high):
            own.setdefault(prefix, set()).add(verdict)
    nodes = {}
    for identity, own in own_by_identity.items():
        for prefix in own:
            value = merge(own, prefix)
            parent = None
            for anc in reversed(_covering(prefix)[:-1]):
                if anc in own:
                    parent = merge(own, anc)
                    break
            if value is not None and value != parent:
                nodes[(identity,) + prefix] = value
    return nodes


def level_masks(nodes):
    """(levels used by specific peers, levels used by any-peer nodes) as bitmasks."""
    peer = anyp = 0
    for identity, level, _proto, _port in nodes:
        if identity:
            peer |= 1 << level
        else:
            anyp |= 1 << level
    return peer, anyp


def kernel_entries(policy_id, direction, nodes):
    """{PolicyKey bytes: PolicyValue bytes} for one policy direction."""
    dir_bit = abi.POLICY_DIR_EGRESS_BIT if direction == abi.DIR_EGRESS else 0
    out = {}
    for (identity, level, proto, port), (flags, allow_level) in nodes.items():
        key = abi.PolicyKey(policy_id=policy_id, identity=identity, dir_level=dir_bit | level,
                            proto=proto, port=abi.port_to_be16(port))
        value = abi.PolicyValue(flags=flags, allow_level=allow_level)
        out[abi.to_bytes(key)] = abi.to_bytes(value)
    return out


def decode_key(raw):
    """PolicyKey bytes -> (policy_id, direction, identity, (level, proto, port))."""
    key = abi.from_bytes(abi.PolicyKey, raw)
    direction = abi.DIR_EGRESS if key.dir_level & abi.POLICY_DIR_EGRESS_BIT else abi.DIR_INGRESS
    level = key.dir_level & 0x1F
    return key.policy_id, direction, key.identity, (level, key.proto, abi.be16_to_port(key.port))


def decode_value(raw):
    value = abi.from_bytes(abi.PolicyValue, raw)
    return value.flags, value.allow_level


def describe_l4(prefix):
    level, proto, port = prefix
    if level == abi.LEVEL_ANY:
        return "any protocol"
    name = PROTO_NAMES.get(proto, str(proto))
    if level == abi.LEVEL_PROTO:
        return "%s/*" % name
    if proto == 1:
        if level == abi.LEVEL_EXACT:
            return "icmp type %d" % port
        return "icmp types %d-%d" % (port, port + (1 << (abi.LEVEL_EXACT - level)) - 1)
    if level == abi.LEVEL_EXACT:
        return "%s/%d" % (name, port)
    return "%s/%d-%d" % (name, port, port + (1 << (abi.LEVEL_EXACT - level)) - 1)


def describe_value(value):
    flags, allow_level = value
    if flags & abi.POL_F_DENY:
        return "deny"
    word = "redirect" if flags & abi.POL_F_L7 else "allow"
    return word
