# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The datapath's desired state for one host: a documented plain-dict schema
and its validator. The policy engine produces it; palisade.ebpf.datapath
consumes it.

Schema::

    {
      "bpffs_dir": "/sys/fs/bpf/palisade",   # absolute, on a bpf filesystem; one per host
      "ipcache": [                           # the whole fleet: prefix -> identity
        ["10.1.1.10/32", 123456789],         # an endpoint (a bare address means /32)
        ["192.0.2.11/32", 1],                # this node (host) ...
        ["192.0.2.12/32", 6],                # ... other nodes (remote-node)
        ["203.0.113.0/24", 16777217],        # a policy CIDR identity
        ["0.0.0.0/0", 2],                    # world
      ],
      "endpoints": [                         # this host's endpoints
        {"key": "default/deathstar-1",       # namespace/name, for humans
         "ifname": "lxcd96b5160",            # host-side interface (exists on the host)
         "ipv4": "10.1.1.10",                # its only allowed source address
         "identity": 123456789,
         "policy": "p1"},                    # a key of "policies", or null: no policy
      ],
      "policies": {                          # by name; endpoints with equal policy share one
        "p1": {
          "ingress": {"enforced": true,      # default deny in this direction
                      "entries": [[peer_identity, proto, port_lo, port_hi, verdict], ...]},
          "egress": {"enforced": false, "entries": []},   # a missing direction = this
        },
      },
      "identities": {"123456789": "k8s:class=deathstar,k8s:org=empire"},   # optional, for diffs
    }

Entries: ``peer_identity`` 0 = any peer; ``proto`` 0 = any, 1 ICMP, 6 TCP,
17 UDP, 132 SCTP; ``port_lo``..``port_hi`` the destination ports, both
included, 0..65535 = every port (ICMP: the type, 0..255, and 0..255 or
0..65535 = every type); a range with proto 0 other than every port stands for
the same range on TCP, UDP and SCTP; ``verdict`` allow | deny | redirect
(allowed at L4, the L7 proxy applies HTTP rules; passes for now, counted
separately). Evaluation: docs/policy-engine.md, "Evaluation of one packet".

Identities are unsigned 32-bit numbers; 0 is not a valid identity of an
address or an endpoint (it means "any peer" in entries).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import hashlib
import re
import socket
import struct

PROTOCOLS = {0: "any", 1: "icmp", 6: "tcp", 17: "udp", 132: "sctp"}
_OCTET = r"(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_PREFIX = re.compile(r"^%s\.%s\.%s\.%s(?:/(3[0-2]|[12]?\d))?$" % ((_OCTET,) * 4))
VERDICTS = ("allow", "deny", "redirect")
DIRECTIONS = ("ingress", "egress")
U32_MAX = 0xFFFFFFFF


class StateError(ValueError):
    """Invalid desired state; the message names the field path."""


IPCACHE_RECORD = struct.Struct("!IBI")  # address, prefix length, identity


def pack_ipcache(rows):
    """[[prefix, identity], ...] -> one base64 string of 9-byte records.

    A 60,000-entry table as a list costs Ansible seconds per host to template
    and pass as module arguments; one string costs next to nothing.
    """
    out = bytearray()
    for prefix, identity in rows:
        address, _slash, length = str(prefix).partition("/")
        out += IPCACHE_RECORD.pack(struct.unpack("!I", socket.inet_aton(address))[0], int(length or 32), int(identity))
    return base64.b64encode(bytes(out)).decode("ascii")


def unpack_ipcache(text, path="ipcache_packed"):
    """The inverse of pack_ipcache; StateError naming ``path`` when malformed.

    A prefix packed more than once takes its last identity (in the place of
    its first): the controller sends the fleet-wide table once and a host's
    own rows after it, and packed strings concatenate (a record is 12 base64
    characters, never padded)."""
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, TypeError, UnicodeError) as exc:
        raise StateError("%s: not valid base64 (%s)" % (path, exc))
    if len(data) % IPCACHE_RECORD.size:
        raise StateError("%s: %d bytes is not a whole number of %d-byte records" % (path, len(data), IPCACHE_RECORD.size))
    table = {}
    for address, length, identity in IPCACHE_RECORD.iter_unpack(data):
        table["%s/%d" % (socket.inet_ntoa(struct.pack("!I", address)), length)] = identity
    return [[prefix, identity] for prefix, identity in table.items()]


def _fail(path, message):
    raise StateError("%s: %s" % (path, message))


def _int(value, path, low, high):
    if type(value) is int and low <= value <= high:  # pylint: disable=unidiomatic-typecheck
        return value  # the common case, fast: 60,000 ipcache entries per run
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            value = int(str(value), 10)
        except (TypeError, ValueError):
            _fail(path, "expected an integer, got %r" % (value,))
    if value < low or value > high:
        _fail(path, "%d is outside %d..%d" % (value, low, high))
    return value


def parse_ipv4(value, path):
    if not isinstance(value, str):
        _fail(path, "expected an IPv4 address, got %r" % (value,))
    try:
        packed = socket.inet_aton(value)
    except (OSError, socket.error):
        _fail(path, "%r is not an IPv4 address" % value)
    if socket.inet_ntoa(packed) != value:
        _fail(path, "%r is not a dotted-quad IPv4 address" % value)
    return value


def parse_prefix(value, path):
    """'a.b.c.d/len' (or a bare address, /32) -> (network address, length)."""
    match = _PREFIX.match(value) if isinstance(value, str) else None
    if match is None:
        # The slow path only to say precisely what is wrong.
        if not isinstance(value, str):
            _fail(path, "expected an IPv4 prefix, got %r" % (value,))
        addr, sep, length = value.partition("/")
        parse_ipv4(addr, path)
        _int(length, path, 0, 32)
        _fail(path, "%r is not an IPv4 prefix" % value)
    addr = value.partition("/")[0]
    plen = int(match.group(5)) if match.group(5) is not None else 32
    if plen == 32:
        return addr, 32
    num = struct.unpack("!I", socket.inet_aton(addr))[0]
    mask = (U32_MAX << (32 - plen)) & U32_MAX if plen else 0
    if num & ~mask & U32_MAX:
        _fail(path, "%s has host bits set (the network is %s/%d)"
              % (value, socket.inet_ntoa(struct.pack("!I", num & mask)), plen))
    return addr, plen


def _entry(raw, path):
    if not isinstance(raw, (list, tuple)) or len(raw) != 5:
        _fail(path, "expected [peer_identity, proto, port_lo, port_hi, verdict], got %r" % (raw,))
    peer = _int(raw[0], path + "[0]", 0, U32_MAX)
    proto = _int(raw[1], path + "[1]", 0, 255)
    if proto not in PROTOCOLS:
        _fail(path + "[1]", "protocol %d is not one of %s" % (proto, ", ".join("%d (%s)" % kv for kv in sorted(PROTOCOLS.items()))))
    low = _int(raw[2], path + "[2]", 0, 65535)
    high = _int(raw[3], path + "[3]", 0, 65535)
    if low > high:
        _fail(path, "port_lo %d is above port_hi %d" % (low, high))
    if proto == 1:
        if (low, high) in ((0, 255), (0, 65535)):
            low, high = 0, 65535  # every ICMP type
        elif high > 255:
            _fail(path, "ICMP types are 0..255, got %d..%d" % (low, high))
    verdict = raw[4]
    if verdict not in VERDICTS:
        _fail(path + "[4]", "verdict must be one of %s, got %r" % (", ".join(VERDICTS), verdict))
    return (peer, proto, low, high, verdict)


def _direction(raw, path):
    if raw is None:
        return {"enforced": False, "entries": []}
    if not isinstance(raw, dict):
        _fail(path, "expected a mapping with enforced and entries")
    unknown = set(raw) - set(("enforced", "entries"))
    if unknown:
        _fail(path, "unknown keys %s" % ", ".join(sorted(unknown)))
    enforced = raw.get("enforced", False)
    if not isinstance(enforced, bool):
        _fail(path + ".enforced", "expected true or false, got %r" % (enforced,))
    entries = raw.get("entries") or []
    if not isinstance(entries, list):
        _fail(path + ".entries", "expected a list")
    seen = set()
    out = []
    for i, item in enumerate(entries):
        entry = _entry(item, "%s.entries[%d]" % (path, i))
        if entry not in seen:  # duplicates are harmless; keep the first
            seen.add(entry)
            out.append(entry)
    return {"enforced": enforced, "entries": out}


def validate(raw):
    """Validated, normalised desired state (see the module docstring)."""
    if not isinstance(raw, dict):
        _fail("state", "expected a mapping")
    bpffs_dir = raw.get("bpffs_dir")
    if not isinstance(bpffs_dir, str) or not bpffs_dir.startswith("/") or bpffs_dir.rstrip("/") in ("", "/sys/fs/bpf"):
        _fail("bpffs_dir", "expected an absolute directory below the bpffs mount (e.g. /sys/fs/bpf/palisade), got %r" % (bpffs_dir,))
    if ".." in bpffs_dir.split("/"):
        _fail("bpffs_dir", "must not contain '..'")

    ipcache = {}
    for i, item in enumerate(raw.get("ipcache") or []):
        path = "ipcache[%d]" % i
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            _fail(path, "expected [prefix, identity], got %r" % (item,))
        addr, plen = parse_prefix(item[0], path + "[0]")
        identity = _int(item[1], path + "[1]", 1, U32_MAX)
        key = "%s/%d" % (addr, plen)
        if ipcache.get(key, identity) != identity:
            _fail(path, "%s maps to both %d and %d" % (key, ipcache[key], identity))
        ipcache[key] = identity

    policies = {}
    raw_policies = raw.get("policies") or {}
    if not isinstance(raw_policies, dict):
        _fail("policies", "expected a mapping of name -> policy")
    for name, pol in sorted(raw_policies.items()):
        path = "policies.%s" % name
        if not isinstance(name, str) or not name:
            _fail("policies", "policy names must be non-empty strings, got %r" % (name,))
        if not isinstance(pol, dict):
            _fail(path, "expected a mapping with ingress and egress")
        unknown = set(pol) - set(DIRECTIONS)
        if unknown:
            _fail(path, "unknown keys %s (expected ingress, egress)" % ", ".join(sorted(unknown)))
        policies[name] = dict((d, _direction(pol.get(d), "%s.%s" % (path, d))) for d in DIRECTIONS)

    endpoints = []
    by_ifname, by_addr, by_key = {}, {}, {}
    for i, ep in enumerate(raw.get("endpoints") or []):
        path = "endpoints[%d]" % i
        if not isinstance(ep, dict):
            _fail(path, "expected a mapping")
        unknown = set(ep) - set(("key", "ifname", "ipv4", "identity", "policy"))
        if unknown:
            _fail(path, "unknown keys %s" % ", ".join(sorted(unknown)))
        key = ep.get("key")
        if not isinstance(key, str) or not key:
            _fail(path + ".key", "expected namespace/name")
        ifname = ep.get("ifname")
        if not isinstance(ifname, str) or not 0 < len(ifname) <= 15 or "/" in ifname:
            _fail(path + ".ifname", "expected an interface name of 1-15 characters, got %r" % (ifname,))
        ipv4 = parse_ipv4(ep.get("ipv4"), path + ".ipv4")
        identity = _int(ep.get("identity"), path + ".identity", 1, U32_MAX)
        policy = ep.get("policy")
        if policy is not None and policy not in policies:
            _fail(path + ".policy", "no policy named %r in policies" % (policy,))
        for index, value, what in ((by_ifname, ifname, "ifname"), (by_addr, ipv4, "ipv4"), (by_key, key, "key")):
            if value in index:
                _fail(path + "." + what, "%s is also used by endpoints[%d]" % (value, index[value]))
            index[value] = i
        endpoints.append({"key": key, "ifname": ifname, "ipv4": ipv4, "identity": identity, "policy": policy})

    uplinks = []
    for i, name in enumerate(raw.get("uplinks") or []):
        if not isinstance(name, str) or not 0 < len(name) <= 15 or "/" in name:
            _fail("uplinks[%d]" % i, "expected an interface name of 1-15 characters, got %r" % (name,))
        if name in by_ifname:
            _fail("uplinks[%d]" % i, "%s is the interface of endpoints[%d]" % (name, by_ifname[name]))
        if name not in uplinks:
            uplinks.append(name)

    identities = {}
    for ident, text in (raw.get("identities") or {}).items():
        identities[_int(ident, "identities", 0, U32_MAX)] = str(text)

    return {
        "bpffs_dir": bpffs_dir.rstrip("/"),
        "ipcache": ipcache,
        "endpoints": sorted(endpoints, key=lambda e: e["key"]),
        "policies": policies,
        "identities": identities,
        "uplinks": sorted(uplinks),
    }


def policy_ids(names):
    """Stable numeric ids for policy names: 32 bits of sha256(name), never 0.

    An id depends only on its name (and, on a collision, on the colliding
    names, rehashed with '#1', '#2', ... in sorted order), so unrelated
    policies keep their ids and their kernel entries across runs.
    """
    ids = {}
    taken = {}
    for name in sorted(names):
        salt = 0
        while True:
            text = name if not salt else "%s#%d" % (name, salt)
            value = struct.unpack(">I", hashlib.sha256(text.encode("utf-8")).digest()[:4])[0]
            if value and value not in taken:
                break
            salt += 1
        ids[name] = value
        taken[value] = name
    return ids
