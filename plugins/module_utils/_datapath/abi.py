# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The datapath's kernel ABI: what the rendered C and the Python on the host
must agree on, byte for byte.

- key/value structs (ctypes); the C templates (bpf/lib/*.h.j2) define the
  same structs, and the rendering asserts at compile time that every field
  sits at the offset given here (plugin_utils/_render/datapath.py);
- flags, directions, L4 levels and the reasons (forward and drop codes) the
  programs count and report; the rendering takes their values from here;
- address and port conversions between Python values and the structs'
  network-order fields.

Which maps exist, their sizes and pin names are in maps.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes as ct
import socket
import struct

# Bump when a field's meaning changes but the layout does not: it is part of
# every map's layout id (maps.py), so the maps are recreated.
ABI_VERSION = 1

# --- directions ---------------------------------------------------------------
# The endpoint's point of view: INGRESS = traffic entering the endpoint (tc
# egress of the host-side interface), EGRESS = traffic leaving it (tc ingress).
DIR_INGRESS = 0
DIR_EGRESS = 1
DIRECTIONS = {"ingress": DIR_INGRESS, "egress": DIR_EGRESS}
DIR_NAMES = {DIR_INGRESS: "ingress", DIR_EGRESS: "egress"}

# --- endpoint config flags ----------------------------------------------------
EP_F_ENFORCE_INGRESS = 1
EP_F_ENFORCE_EGRESS = 2
EP_F_L7_INGRESS = 4     # its ingress policy redirects some flows to the L7 proxy
EP_F_L7_EGRESS = 8      # its egress policy does

# --- policy ------------------------------------------------------------------
# L4 prefix levels (docs/policy-engine.md): 0 any protocol, 8 protocol only,
# 8+k the aligned block of 2^(16-k) ports, 24 one port (ICMP: one type).
LEVEL_ANY = 0
LEVEL_PROTO = 8
LEVEL_EXACT = 24
LEVELS = (LEVEL_ANY,) + tuple(range(LEVEL_PROTO, LEVEL_EXACT + 1))
POLICY_DIR_EGRESS_BIT = 0x80  # policy_key.dir_level: bit 7 direction, bits 0-4 level
POL_F_DENY = 1      # a deny entry covers this node (deny wins)
POL_F_ALLOW = 2     # an allow or redirect covers it, at allow_level
POL_F_L7 = 4        # every covering entry at allow_level is a redirect

# --- conntrack ------------------------------------------------------------------
CT_F_EGRESS = 1       # the endpoint opened the connection
CT_F_REDIRECT = 2     # the verdict was redirect (L7 proxy, later)
CT_F_SEEN_REPLY = 4   # a packet in the reply direction went through
CT_F_CLOSING = 8      # TCP FIN or RST seen
CT_F_PROXY = 16       # the L7 proxy's upstream leg: replies go to the local stack

# --- reasons: metrics index = reason * 2 + direction ---------------------------
# Forwarding reasons are small numbers; drop reasons reuse Cilium's codes so
# operators who know `cilium monitor` recognise them.
REASONS = {
    0: "FORWARD_NEW",            # new flow allowed by a policy entry
    1: "FORWARD_ESTABLISHED",    # conntrack: original direction of an allowed flow
    2: "FORWARD_REPLY",          # conntrack: reply direction
    3: "FORWARD_RELATED",        # ICMP error about a tracked flow
    4: "FORWARD_REDIRECT",       # allowed at L4, handed to the L7 proxy
    5: "FORWARD_NOT_ENFORCED",   # no entry matched and the direction is not enforced
    6: "FORWARD_ARP",            # ARP (source checked when leaving the endpoint)
    7: "FORWARD_FROM_PROXY",     # the L7 proxy's upstream leg, after the proxy allowed the request
    8: "FORWARD_TO_PROXY_SOCKET",  # a reply to the proxy's upstream leg, steered to the local stack
    132: "DROP_INVALID_SIP",     # spoofed source address
    133: "DROP_POLICY",          # default deny: the direction is enforced, nothing allowed it
    134: "DROP_INVALID",         # malformed packet
    139: "DROP_UNKNOWN_L3",      # not IPv4 or ARP
    155: "DROP_CT_CREATE_FAILED",
    157: "DROP_FRAG_NOSUPPORT",  # a fragment whose first fragment was not seen
    178: "DROP_PROXY_UNAVAILABLE",  # needs the L7 proxy, which is not running: refused with a TCP reset
    179: "DROP_L7_BYPASS",       # needs the L7 proxy but did not come through it (no redirect on its path)
    181: "DROP_POLICY_DENY",     # an explicit deny entry
    203: "DROP_EP_NOT_READY",    # the program runs on an interface without endpoint config
    255: "EVENTS_LOST",          # drop events the ring buffer had no room for (not packets)
}
REASON_CODES = dict((name, code) for code, name in REASONS.items())
# The metrics array's index space: reason (0..255) * 2 + direction.
METRICS_ENTRIES = 512


def is_drop(reason):
    return 128 <= reason < 255


# --- key / value structs (C: bpf/lib/*.h.j2) -------------------------------------
class EndpointKey(ct.Structure):
    _fields_ = [("ifindex", ct.c_uint32)]


class EndpointConfig(ct.Structure):
    _fields_ = [
        ("ipv4", ct.c_uint32),         # network byte order
        ("identity", ct.c_uint32),
        ("policy_id", ct.c_uint32),    # 0: no policy
        ("flags", ct.c_uint32),        # EP_F_*
        # bit l set: the policy has nodes at L4 level l; [dir * 2 + 0] for
        # nodes of specific peers, [dir * 2 + 1] for any-peer (identity 0) nodes
        ("levels", ct.c_uint32 * 4),
    ]


class IPCacheHostKey(ct.Structure):
    _fields_ = [("addr", ct.c_uint32)]


class IPCachePrefixKey(ct.Structure):
    _fields_ = [("prefixlen", ct.c_uint32), ("addr", ct.c_uint32)]


class IPCacheValue(ct.Structure):
    # local_ifindex: the host-side interface when the address is an endpoint
    # of this host (its ingress L7 redirect is decided before routing), else 0
    _fields_ = [("identity", ct.c_uint32), ("local_ifindex", ct.c_uint32)]


class PolicyKey(ct.Structure):
    _fields_ = [
        ("policy_id", ct.c_uint32),
        ("identity", ct.c_uint32),     # peer identity, 0 = any peer
        ("dir_level", ct.c_uint8),
        ("proto", ct.c_uint8),
        ("port", ct.c_uint16),         # network byte order, masked to the level
    ]


class PolicyValue(ct.Structure):
    _fields_ = [
        ("flags", ct.c_uint8),         # POL_F_*
        ("allow_level", ct.c_uint8),
        ("proxy_port", ct.c_uint16),   # L7 redirect, later (network byte order)
        ("cookie", ct.c_uint32),       # reserved
    ]


class CTKey(ct.Structure):
    _fields_ = [
        ("ifindex", ct.c_uint32),
        ("ep_addr", ct.c_uint32),
        ("peer_addr", ct.c_uint32),
        ("ep_port", ct.c_uint16),
        ("peer_port", ct.c_uint16),
        ("proto", ct.c_uint8),
        ("pad", ct.c_uint8 * 3),
    ]


class CTEntry(ct.Structure):
    _fields_ = [
        ("expires", ct.c_uint64),      # bpf_ktime_get_ns() deadline
        ("flags", ct.c_uint16),        # CT_F_*
        ("proxy_port", ct.c_uint16),   # redirected flows: the proxy's port (network order)
        ("peer_identity", ct.c_uint32),
    ]


class FragKey(ct.Structure):
    _fields_ = [
        ("saddr", ct.c_uint32),
        ("daddr", ct.c_uint32),
        ("id", ct.c_uint16),
        ("proto", ct.c_uint8),
        ("pad", ct.c_uint8),
    ]


class FragValue(ct.Structure):
    _fields_ = [
        ("sport", ct.c_uint16),
        ("dport", ct.c_uint16),
        ("policy_port", ct.c_uint16),
        ("kind", ct.c_uint8),
        ("pad", ct.c_uint8),
    ]


class L7FlowKey(ct.Structure):
    # A TCP flow handed to the proxy, as its SYN travels: the socket-steering
    # program (sk_lookup) sees the same four values.
    _fields_ = [
        ("saddr", ct.c_uint32),
        ("daddr", ct.c_uint32),
        ("sport", ct.c_uint16),        # network byte order
        ("dport", ct.c_uint16),        # network byte order
    ]


class L7FlowValue(ct.Structure):
    _fields_ = [
        ("ifindex", ct.c_uint32),      # where the flow was redirected (debugging)
        ("proxy_port", ct.c_uint16),   # network byte order
        ("pad", ct.c_uint16),
    ]


class SocketSlot(ct.Structure):
    _fields_ = [("slot", ct.c_uint32)]


class SocketCookie(ct.Structure):
    # a socket fd when written, the socket's cookie when read back
    _fields_ = [("cookie", ct.c_uint64)]


class MetricsKey(ct.Structure):
    _fields_ = [("index", ct.c_uint32)]


class MetricsValue(ct.Structure):
    _fields_ = [("packets", ct.c_uint64), ("bytes", ct.c_uint64)]


class DropEvent(ct.Structure):
    _fields_ = [
        ("ts", ct.c_uint64),           # bpf_ktime_get_ns()
        ("ifindex", ct.c_uint32),
        ("src_identity", ct.c_uint32),
        ("dst_identity", ct.c_uint32),
        ("saddr", ct.c_uint32),
        ("daddr", ct.c_uint32),
        ("sport", ct.c_uint16),        # network byte order; unknown L3: the ethertype
        ("dport", ct.c_uint16),        # network byte order; ICMP: the type
        ("proto", ct.c_uint8),
        ("reason", ct.c_uint8),
        ("dir", ct.c_uint8),
        ("pad", ct.c_uint8),
        ("len", ct.c_uint32),
    ]


# C struct name for each ctypes struct (the templates define them).
C_STRUCTS = [
    ("endpoint_key", EndpointKey), ("endpoint_config", EndpointConfig),
    ("ipcache_host_key", IPCacheHostKey), ("ipcache_prefix_key", IPCachePrefixKey),
    ("ipcache_value", IPCacheValue), ("policy_key", PolicyKey), ("policy_value", PolicyValue),
    ("ct_key", CTKey), ("ct_entry", CTEntry), ("frag_key", FragKey), ("frag_value", FragValue),
    ("metrics_key", MetricsKey), ("metrics_value", MetricsValue), ("drop_event", DropEvent),
    ("l7_flow_key", L7FlowKey), ("l7_flow_value", L7FlowValue),
]


# --- encoding helpers --------------------------------------------------------------
def ip_to_u32(ip):
    """Dotted quad -> u32 whose memory holds the address in network order."""
    return struct.unpack("=I", socket.inet_aton(ip))[0]


def u32_to_ip(value):
    return socket.inet_ntoa(struct.pack("=I", value))


def port_to_be16(port):
    return socket.htons(port)


def be16_to_port(value):
    return socket.ntohs(value)


def to_bytes(obj):
    return bytes(bytearray(obj))


def from_bytes(cls, data):
    return cls.from_buffer_copy(data)
