# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Declarative IPv4 routes and policy-routing rules, reconciled over netlink.

Layout:

* pure functions over plain dicts: normalise what the user wants, parse what
  the kernel reports (netlink messages, or dicts shaped like them) into the
  same normalised form, and plan the difference as (add, replace, remove)
  operations. No kernel, no pyroute2, unit-testable as is;
* ``reconcile_routes()`` / ``reconcile_rules()``: read the kernel through a
  backend, plan, apply (unless check mode), verify, and build the result;
* ``NetlinkBackend``: the only part that talks to the kernel (pyroute2's
  IPRoute, raw rtmsg/fibmsg requests so that exactly the fields we mean are
  sent and nothing is defaulted behind our back).

Ownership: an entry is ours when its protocol (rtm_protocol for routes,
FRA_PROTOCOL for rules) equals ``protocol``. Only owned entries are ever
replaced or removed; an entry of another protocol that occupies a wanted
identity is a conflict and fails the run before anything is written.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import ipaddress
import os

try:
    from pyroute2 import IPRoute
    from pyroute2.netlink import NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST
    from pyroute2.netlink.exceptions import NetlinkError
    from pyroute2.netlink.rtnl import RTM_DELROUTE, RTM_DELRULE, RTM_GETROUTE, RTM_GETRULE, RTM_NEWROUTE, RTM_NEWRULE
    from pyroute2.netlink.rtnl.fibmsg import fibmsg
    from pyroute2.netlink.rtnl.rtmsg import rtmsg

    HAS_PYROUTE2 = True
    PYROUTE2_IMPORT_ERROR = None
except ImportError as exc:  # reported by the modules through missing_required_lib()
    HAS_PYROUTE2 = False
    PYROUTE2_IMPORT_ERROR = exc

from ansible_collections.palisade.ebpf.plugins.module_utils._defaults import ROUTE_PROTOCOL
from ansible_collections.palisade.ebpf.plugins.module_utils._naming import ADOPTED_IFALIAS_PREFIX, IFALIAS_PREFIX

PYROUTE2_REQUIREMENT = "pyroute2 (Debian: python3-pyroute2)"

AF_INET = 2
IFNAMSIZ = 16
IFF_UP = 0x1
UINT32_MAX = 0xFFFFFFFF
RT_TABLE_UNSPEC = 0
RT_TABLE_COMPAT = 252  # rtm_table/frh.table value when the real id is > 255 (in the TABLE attribute)
RTNH_F_ONLINK = 0x4
FIB_RULE_INVERT = 0x2

# Protocols 0-4 mean unspec, redirect, kernel, boot and static (administrator).
# Owning one of them would make ``purge`` delete the kernel's connected routes
# or an administrator's static ones, so a dedicated number is required.
MIN_OWNED_PROTOCOL = 5

WELL_KNOWN_TABLES = {"default": 253, "main": 254, "local": 255}
RT_TABLES_FILES = ("/usr/share/iproute2/rt_tables", "/etc/iproute2/rt_tables")
RT_TABLES_DIRS = ("/usr/share/iproute2/rt_tables.d", "/etc/iproute2/rt_tables.d")

ROUTE_TYPES = {"unicast": 1, "local": 2, "blackhole": 6, "unreachable": 7, "prohibit": 8, "throw": 9}
_ALL_ROUTE_TYPE_NAMES = {
    0: "unspec", 1: "unicast", 2: "local", 3: "broadcast", 4: "anycast", 5: "multicast",
    6: "blackhole", 7: "unreachable", 8: "prohibit", 9: "throw", 10: "nat", 11: "xresolve",
}
# Types that never forward to a next hop: no gateway, no device, no source.
NEXTHOPLESS_TYPES = ("blackhole", "unreachable", "prohibit", "throw")

SCOPES = {"universe": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255}
_SCOPE_NAMES = dict((v, k) for k, v in SCOPES.items())

RULE_ACTIONS = {"to_tbl": 1, "goto": 2, "nop": 3, "blackhole": 6, "unreachable": 7, "prohibit": 8}
_RULE_ACTION_NAMES = dict((v, k) for k, v in RULE_ACTIONS.items())
MANAGED_RULE_ACTIONS = ("to_tbl", "blackhole", "unreachable", "prohibit")

PROTOCOL_NAMES = {
    0: "unspec", 1: "redirect", 2: "kernel", 3: "boot", 4: "static", 8: "gated", 9: "ra",
    10: "mrt", 11: "zebra", 12: "bird", 13: "dnrouted", 14: "xorp", 15: "ntk", 16: "dhcp",
    17: "mrouted", 18: "keepalived", 42: "babel", 99: "openr", 186: "bgp", 187: "isis",
    188: "ospf", 189: "rip", 192: "eigrp",
}


class RoutingError(Exception):
    """A problem the operator has to act on; the message is shown as is."""


class NetlinkFailure(Exception):
    """A netlink request the kernel refused (errno + strerror), backend-neutral."""

    def __init__(self, code, message):
        super(NetlinkFailure, self).__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self):
        return "[Errno %s] %s" % (self.code, self.message)


# ---------------------------------------------------------------------------
# Small shared helpers
# ---------------------------------------------------------------------------


def protocol_label(proto):
    name = PROTOCOL_NAMES.get(proto)
    return "%s (%d)" % (name, proto) if name else str(proto)


def validate_protocol(protocol):
    try:
        protocol = int(protocol)
    except (TypeError, ValueError):
        raise RoutingError("protocol must be an integer, got %r" % (protocol,))
    if not MIN_OWNED_PROTOCOL <= protocol <= 255:
        raise RoutingError(
            "protocol %d cannot mark entries owned by this collection: it must be %d-255 "
            "(0-4 are unspec, redirect, kernel, boot and static, and purge would delete "
            "the kernel's or the administrator's entries)" % (protocol, MIN_OWNED_PROTOCOL)
        )
    return protocol


def parse_rt_tables(text):
    """Parse one rt_tables file ('<id> <name>' lines, '#' comments) into {name: id}."""
    names = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) < 2:
            continue
        try:
            table_id = int(fields[0], 0)
        except ValueError:
            continue
        names[fields[1]] = table_id
    return names


def load_table_names():
    """Table names of this host: the kernel's well-known ones plus iproute2's files."""
    names = dict(WELL_KNOWN_TABLES)
    paths = list(RT_TABLES_FILES)
    for directory in RT_TABLES_DIRS:
        if os.path.isdir(directory):
            paths.extend(os.path.join(directory, f) for f in sorted(os.listdir(directory)) if f.endswith(".conf"))
    for path in paths:
        try:
            with open(path) as handle:
                names.update(parse_rt_tables(handle.read()))
        except (IOError, OSError):
            continue  # a missing or unreadable file just contributes no names
    return names


def parse_table(value, table_names=None, where="table"):
    """A table given as number, numeric string or name -> its id (int)."""
    names = table_names if table_names is not None else WELL_KNOWN_TABLES
    if value is None or value == "":
        raise RoutingError("%s: a routing table is required" % where)
    if isinstance(value, bool):
        raise RoutingError("%s: %r is not a routing table" % (where, value))
    if isinstance(value, int):
        table_id = value
    else:
        text = str(value).strip()
        if text in names:
            table_id = names[text]
        else:
            try:
                table_id = int(text, 0)
            except ValueError:
                raise RoutingError(
                    "%s: unknown routing table %r (use a number, or one of: %s)"
                    % (where, text, ", ".join(sorted(names)))
                )
    if table_id in (RT_TABLE_UNSPEC, RT_TABLE_COMPAT) or not 0 < table_id <= UINT32_MAX:
        raise RoutingError("%s: table %d is reserved or out of range (1-%d, not 252)" % (where, table_id, UINT32_MAX))
    return table_id


def table_label(table_id, table_names=None):
    names = table_names if table_names is not None else WELL_KNOWN_TABLES
    for name in sorted(names):
        if names[name] == table_id:
            return name
    return str(table_id)


def _attr_map(msg):
    """Netlink attributes as {name: value}: first occurrence wins, as in the kernel.

    Works on pyroute2 messages (attrs are nla slots indexable as [0]/[1]) and
    on plain dicts with ``attrs`` as a list of (name, value) pairs.
    """
    out = {}
    for item in msg.get("attrs") or ():
        name, value = item[0], item[1]
        if name not in out:
            out[name] = value
    return out


def _ipv4_address(value, where):
    try:
        addr = ipaddress.ip_address(str(value).strip())
    except ValueError:
        raise RoutingError("%s: %r is not an IP address" % (where, value))
    if addr.version != 4:
        raise RoutingError("%s: %s is IPv6; only IPv4 is supported" % (where, addr))
    return str(addr)


def _ipv4_network(value, where):
    """'10.1.2.0/24' -> '10.1.2.0/24'; a bare address means /32; 'default' is 0.0.0.0/0."""
    text = str(value).strip()
    if text == "default":
        text = "0.0.0.0/0"
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        try:
            loose = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise RoutingError("%s: %r is not an IPv4 prefix (%s)" % (where, value, exc))
        raise RoutingError("%s: %s has host bits set; the prefix is %s" % (where, text, loose))
    if net.version != 4:
        raise RoutingError("%s: %s is IPv6; only IPv4 is supported" % (where, net))
    return str(net)


def _net_sort_key(prefix):
    if prefix is None:
        return (0, 0)
    net = ipaddress.ip_network(prefix)
    return (int(net.network_address), net.prefixlen)


def _ifname(value, where):
    name = str(value).strip()
    if not name or len(name) >= IFNAMSIZ or "/" in name or any(c.isspace() for c in name):
        raise RoutingError("%s: %r is not a valid interface name (1-15 characters, no '/' or spaces)" % (where, value))
    return name


def _uint(value, where, maximum=UINT32_MAX):
    if isinstance(value, bool):
        raise RoutingError("%s: %r is not a number" % (where, value))
    try:
        number = int(value, 0) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        raise RoutingError("%s: %r is not a number" % (where, value))
    if not 0 <= number <= maximum:
        raise RoutingError("%s: %d is out of range (0-%d)" % (where, number, maximum))
    return number


def _unknown_keys(spec, allowed, where):
    unknown = sorted(set(spec) - set(allowed))
    if unknown:
        raise RoutingError("%s: unsupported option(s) %s" % (where, ", ".join(unknown)))


# ---------------------------------------------------------------------------
# Routes: normalised form
# ---------------------------------------------------------------------------
#
# {'table': int, 'dst': 'a.b.c.d/n', 'tos': int, 'metric': int,
#  'type': str, 'gateway': str|None, 'dev': str|None, 'scope': str,
#  'src': str|None, 'onlink': bool, 'multipath': list|None,
#  'protocol': int|None}
#
# Identity (the kernel's FIB alias key): (table, dst, tos, metric). The kernel
# keeps several routes under one key only when asked to append/prepend; a
# replace (NLM_F_REPLACE) rewrites the first of them in place.

ROUTE_OPTIONS = ("dst", "gateway", "dev", "table", "scope", "metric", "onlink", "src", "type")
# Ansible keeps an alias's key next to the canonical one in validated sub-options.
ROUTE_OPTION_ALIASES = {"priority": "metric"}


def default_route_scope(route_type, gateway):
    """The scope iproute2 would pick, so that an unset scope compares equal to the kernel's."""
    if route_type == "local":
        return "host"
    if route_type == "unicast" and not gateway:
        return "link"
    return "universe"


def route_key(route):
    return (route["table"], route["dst"], route.get("tos", 0), route["metric"])


def format_route_key(key, table_names=None):
    table, dst, tos, metric = key
    text = "%s table %s" % ("default" if dst == "0.0.0.0/0" else dst, table_label(table, table_names))
    if metric:
        text += " metric %d" % metric
    if tos:
        text += " tos 0x%02x" % tos
    return text


def format_route(route, table_names=None):
    """One line, in ip-route(8) word order: '10.1.2.0/24 via 192.0.2.12 dev eth0 table main'."""
    words = []
    if route["type"] != "unicast":
        words.append(route["type"])
    words.append("default" if route["dst"] == "0.0.0.0/0" else route["dst"])
    if route.get("tos"):
        words.append("tos 0x%02x" % route["tos"])
    if route.get("multipath"):
        for hop in route["multipath"]:
            words.append("nexthop")
            if hop.get("gateway"):
                words.append("via %s" % hop["gateway"])
            if hop.get("dev"):
                words.append("dev %s" % hop["dev"])
            if hop.get("weight", 1) != 1:
                words.append("weight %d" % hop["weight"])
    if route.get("gateway"):
        words.append("via %s" % route["gateway"])
    if route.get("dev"):
        words.append("dev %s" % route["dev"])
    if route.get("scope", "universe") != "universe":
        words.append("scope %s" % route["scope"])
    if route.get("src"):
        words.append("src %s" % route["src"])
    if route.get("metric"):
        words.append("metric %d" % route["metric"])
    if route.get("onlink"):
        words.append("onlink")
    words.append("table %s" % table_label(route["table"], table_names))
    return " ".join(words)


def normalize_route(spec, table_names=None, where="route", state="present"):
    """One user entry -> normalised route; RoutingError names the entry and field.

    With state=absent only the identity (dst, table, metric) matters, so the
    other fields are not validated against each other.
    """
    if not isinstance(spec, dict):
        raise RoutingError("%s: expected a dict, got %r" % (where, spec))
    _unknown_keys(spec, ROUTE_OPTIONS + tuple(ROUTE_OPTION_ALIASES), where)
    spec = dict(spec)
    for alias, canonical in ROUTE_OPTION_ALIASES.items():
        if spec.get(canonical) is None and spec.get(alias) is not None:
            spec[canonical] = spec[alias]
    if spec.get("dst") in (None, ""):
        raise RoutingError("%s: dst is required" % where)
    route = {
        "dst": _ipv4_network(spec["dst"], "%s.dst" % where),
        "table": parse_table(spec.get("table") if spec.get("table") is not None else "main", table_names, "%s.table" % where),
        "metric": _uint(spec.get("metric") or 0, "%s.metric" % where),
        "tos": 0,
        "protocol": None,
        "multipath": None,
    }
    if state == "absent":
        route.update(type="unicast", gateway=None, dev=None, scope="universe", src=None, onlink=False)
        return route

    route_type = spec.get("type") or "unicast"
    if route_type not in ROUTE_TYPES:
        raise RoutingError("%s.type: %r is not one of %s" % (where, route_type, ", ".join(sorted(ROUTE_TYPES))))
    gateway = _ipv4_address(spec["gateway"], "%s.gateway" % where) if spec.get("gateway") else None
    dev = _ifname(spec["dev"], "%s.dev" % where) if spec.get("dev") else None
    src = _ipv4_address(spec["src"], "%s.src" % where) if spec.get("src") else None
    onlink = bool(spec.get("onlink"))
    name = "%s (%s)" % (where, route["dst"])

    if route_type in NEXTHOPLESS_TYPES:
        given = [k for k, v in (("gateway", gateway), ("dev", dev), ("src", src), ("onlink", onlink)) if v]
        if given:
            raise RoutingError("%s: a %s route takes no %s" % (name, route_type, ", ".join(given)))
    elif route_type == "local":
        if not dev:
            raise RoutingError("%s: a local route needs dev (usually lo)" % name)
        if gateway or onlink:
            raise RoutingError("%s: a local route delivers to this host and takes no gateway/onlink" % name)
    else:
        if not gateway and not dev:
            raise RoutingError("%s: a unicast route needs a gateway, a dev, or both" % name)
        if onlink and not (gateway and dev):
            raise RoutingError("%s: onlink needs both a gateway and a dev (the gateway is declared to be on that link)" % name)

    scope = spec.get("scope") or default_route_scope(route_type, gateway)
    if scope not in SCOPES or scope == "nowhere":
        raise RoutingError("%s.scope: %r is not one of universe, site, link, host" % (where, scope))
    if gateway and SCOPES[scope] >= SCOPES["link"]:
        raise RoutingError(
            "%s: scope %s cannot have a gateway (a route via %s is scope universe; "
            "the gateway itself must be reachable by a link route or marked onlink)" % (name, scope, gateway)
        )
    route.update(type=route_type, gateway=gateway, dev=dev, scope=scope, src=src, onlink=onlink)
    return route


def normalize_routes(specs, state="present", table_names=None):
    """All entries; two present entries with one identity are an error (which would win?)."""
    routes = []
    seen = {}
    for index, spec in enumerate(specs or []):
        where = "routes[%d]" % index
        route = normalize_route(spec, table_names, where, state)
        key = route_key(route)
        if key in seen:
            if state == "absent":
                continue
            raise RoutingError(
                "%s and %s both define %s; a route is identified by dst, table and metric, so only one can exist"
                % (seen[key], where, format_route_key(key, table_names))
            )
        seen[key] = where
        routes.append(route)
    return routes


def check_routes_against_host(routes, links, addresses):
    """Host-dependent validation, before the first write.

    ``links`` is {ifindex: {'name': str, 'up': bool}}, ``addresses`` the set
    of this host's IPv4 addresses.
    """
    by_name = dict((info["name"], info) for info in links.values())
    problems = []
    for route in routes:
        label = format_route(route)
        dev = route.get("dev")
        if dev is not None:
            if dev not in by_name:
                problems.append("%s: interface %s does not exist" % (label, dev))
            elif route["type"] == "unicast" and not by_name[dev]["up"]:
                # The kernel refuses next hops through an interface that is
                # administratively down ("Nexthop device is not up").
                problems.append("%s: interface %s is down; bring it up first" % (label, dev))
        src = route.get("src")
        if src and src not in addresses and not (route["type"] == "local" and route["dst"] == src + "/32"):
            problems.append("%s: src %s is not an address of this host (the kernel rejects it as prefsrc)" % (label, src))
    if problems:
        raise RoutingError("cannot apply the routes, nothing was changed:\n  " + "\n  ".join(problems))


def parse_route_msg(msg, ifnames=None):
    """One RTM_NEWROUTE message (pyroute2 or a dict shaped like it) -> normalised route.

    ``ifnames`` maps ifindex -> name. Returns None for what this module never
    manages (not IPv4, cloned/cache entries).
    """
    ifnames = ifnames or {}
    if msg.get("family", AF_INET) != AF_INET:
        return None
    attrs = _attr_map(msg)
    dst_len = msg.get("dst_len", 0)
    dst_addr = attrs.get("RTA_DST") or "0.0.0.0"
    table = attrs.get("RTA_TABLE", msg.get("table"))
    oif = attrs.get("RTA_OIF")
    flags = msg.get("flags", 0) or 0
    route = {
        "table": table,
        "dst": "%s/%d" % (dst_addr, dst_len),
        "tos": msg.get("tos", 0) or 0,
        "metric": attrs.get("RTA_PRIORITY", 0) or 0,
        "type": _ALL_ROUTE_TYPE_NAMES.get(msg.get("type"), "type-%s" % msg.get("type")),
        "gateway": attrs.get("RTA_GATEWAY"),
        "dev": _ifname_of(oif, ifnames),
        "scope": _SCOPE_NAMES.get(msg.get("scope", 0), str(msg.get("scope"))),
        "src": attrs.get("RTA_PREFSRC"),
        # rtm_flags carries the next hop's RTNH_F_* flags for single-path
        # routes; only ONLINK is configuration, the rest is state (linkdown...).
        "onlink": bool(flags & RTNH_F_ONLINK),
        "protocol": msg.get("proto", 0),
        "multipath": None,
    }
    hops = attrs.get("RTA_MULTIPATH")
    if hops:
        route["multipath"] = []
        for hop in hops:
            hop_attrs = _attr_map(hop)
            route["multipath"].append({
                "gateway": hop_attrs.get("RTA_GATEWAY"),
                "dev": _ifname_of(hop.get("oif"), ifnames),
                "weight": (hop.get("hops", 0) or 0) + 1,
            })
    return route


def _ifname_of(index, ifnames):
    if not index:
        return None
    return ifnames.get(index, "if%d" % index)


def route_matches(want, have):
    """Does the kernel's route ``have`` already implement ``want`` (same key assumed)?"""
    if have.get("multipath"):
        return False
    for field in ("type", "gateway", "scope", "src", "onlink"):
        if want[field] != have[field]:
            return False
    # Without a dev, a gateway route leaves the interface to the kernel, which
    # fills in the one that reaches the gateway: any dev is then fine.
    if want["dev"] is not None or not want["gateway"]:
        if want["dev"] != have["dev"]:
            return False
    return True


def _route_sort_key(route):
    return (route["table"], _net_sort_key(route["dst"]), route.get("tos", 0), route["metric"], format_route(route))


def plan_routes(wanted, current, state="present", purge=False, protocol=ROUTE_PROTOCOL, tables=(), table_names=None):
    """Diff wanted routes against the kernel's.

    ``current`` is the parsed kernel routes in dump order (the order matters
    for several routes under one key: the kernel replaces and deletes the
    first match). ``tables`` adds tables to the purge/diff scope beyond those
    of the listed routes.

    Returns {'install': [{'op': 'add'|'replace', 'route', 'old'}], 'remove':
    [route], 'warnings': [str], 'tables': [int], 'before': [route], 'after':
    [route]}; raises RoutingError on conflicts with routes that are not ours.
    """
    scope_tables = set(tables or ()) | set(r["table"] for r in wanted)
    in_scope = [r for r in current if r["table"] in scope_tables]
    by_key = {}
    for index, route in enumerate(in_scope):
        by_key.setdefault(route_key(route), []).append(index)

    install, remove_idx, warnings, conflicts = [], set(), [], []
    handled_keys = set()
    for want in wanted:
        key = route_key(want)
        handled_keys.add(key)
        existing = by_key.get(key, [])
        owned = [i for i in existing if in_scope[i]["protocol"] == protocol]
        foreign = [i for i in existing if in_scope[i]["protocol"] != protocol]
        if state == "absent":
            remove_idx.update(owned)
            for i in foreign:
                warnings.append(
                    "left %s alone: it has protocol %s, not %d, so it is not managed by this collection"
                    % (format_route(in_scope[i], table_names), protocol_label(in_scope[i]["protocol"]), protocol)
                )
            continue
        if foreign:
            other = in_scope[foreign[0]]
            conflicts.append(
                "%s: the kernel already has %s with protocol %s (this collection owns protocol %d); "
                "refusing to overwrite it. Remove it, or give the wanted route another metric or table."
                % (format_route(want, table_names), format_route(other, table_names), protocol_label(other["protocol"]), protocol)
            )
            continue
        if not owned:
            install.append({"op": "add", "route": want, "old": None})
            continue
        matching = [i for i in owned if route_matches(want, in_scope[i])]
        if matching:
            # Already in place; extra owned routes under the same key (only a
            # manual 'ip route append ... proto N' makes them) are dropped.
            remove_idx.update(i for i in owned if i != matching[0])
        else:
            # NLM_F_REPLACE rewrites the first route under the key in place:
            # one netlink write, no moment without a route.
            install.append({"op": "replace", "route": want, "old": in_scope[owned[0]]})
            remove_idx.update(owned[1:])
    if conflicts:
        raise RoutingError("route conflict, nothing was changed:\n  " + "\n  ".join(conflicts))

    if purge:
        for index, route in enumerate(in_scope):
            if route.get("delegated"):
                continue
            if route["protocol"] == protocol and (state == "absent" or route_key(route) not in handled_keys):
                remove_idx.add(index)

    # Routes without a gateway first: a gateway route needs the link route
    # that makes its gateway reachable, which may be in the same list.
    install.sort(key=lambda item: 1 if item["route"]["gateway"] else 0)
    remove = [in_scope[i] for i in sorted(remove_idx)]  # dump order: front-most match first

    owned_before = [r for r in in_scope if r["protocol"] == protocol and not r.get("delegated")]
    replaced_old = set(id(item["old"]) for item in install if item["old"] is not None)
    removed_ids = set(id(r) for r in remove)
    after = [r for r in owned_before if id(r) not in removed_ids and id(r) not in replaced_old]
    after.extend(item["route"] for item in install)
    return {
        "install": install,
        "remove": remove,
        "warnings": warnings,
        "tables": sorted(scope_tables),
        "before": sorted(owned_before, key=_route_sort_key),
        "after": sorted(after, key=_route_sort_key),
    }


# ---------------------------------------------------------------------------
# Rules: normalised form
# ---------------------------------------------------------------------------
#
# {'priority': int, 'action': str, 'table': int|None, 'fwmark': int|None,
#  'fwmask': int|None, 'src': prefix|None, 'dst': prefix|None,
#  'iif': str|None, 'oif': str|None, 'invert': bool, 'tos': int,
#  'extras': {name: value}, 'protocol': int|None}
#
# Identity: priority. The kernel allows several rules per priority; this
# module wants exactly one owned rule there.

RULE_OPTIONS = ("priority", "action", "table", "fwmark", "fwmask", "src", "dst", "iif", "oif")

# Rule attributes this module does not manage. A kernel rule carrying one is
# reported with it and never equals a wanted rule (which has none).
_RULE_EXTRA_ATTRS = (
    ("FRA_GOTO", "goto"),
    ("FRA_FLOW", "realms"),
    ("FRA_TUN_ID", "tun_id"),
    ("FRA_L3MDEV", "l3mdev"),
    ("FRA_IP_PROTO", "ipproto"),
    ("FRA_UID_RANGE", "uidrange"),
    ("FRA_SPORT_RANGE", "sport"),
    ("FRA_DPORT_RANGE", "dport"),
    ("FRA_SUPPRESS_PREFIXLEN", "suppress_prefixlength"),
    ("FRA_SUPPRESS_IFGROUP", "suppress_ifgroup"),
)
# The kernel reports these two with an all-ones value when unset.
_RULE_EXTRA_UNSET = {"suppress_prefixlength": UINT32_MAX, "suppress_ifgroup": UINT32_MAX}


def _parse_mark(value, where):
    """fwmark as int, '0x200', '512' or '0x200/0xf00' -> (mark, mask|None)."""
    if isinstance(value, str) and "/" in value:
        mark_text, mask_text = value.split("/", 1)
        return _uint(mark_text.strip(), where), _uint(mask_text.strip(), where)
    return _uint(value, where), None


def normalize_rule(spec, table_names=None, where="rule", state="present"):
    if not isinstance(spec, dict):
        raise RoutingError("%s: expected a dict, got %r" % (where, spec))
    _unknown_keys(spec, RULE_OPTIONS, where)
    if spec.get("priority") is None:
        raise RoutingError("%s: priority is required (it identifies the rule)" % where)
    rule = {
        "priority": _uint(spec["priority"], "%s.priority" % where),
        "action": "to_tbl", "table": None, "fwmark": None, "fwmask": None, "src": None, "dst": None,
        "iif": None, "oif": None, "invert": False, "tos": 0, "extras": {}, "protocol": None,
    }
    if state == "absent":
        return rule
    name = "%s (priority %d)" % (where, rule["priority"])

    action = spec.get("action") or "to_tbl"
    if action not in MANAGED_RULE_ACTIONS:
        raise RoutingError("%s.action: %r is not one of %s" % (where, action, ", ".join(MANAGED_RULE_ACTIONS)))
    rule["action"] = action
    if action == "to_tbl":
        if spec.get("table") in (None, ""):
            raise RoutingError("%s: table is required with action to_tbl (the table to look up)" % name)
        rule["table"] = parse_table(spec["table"], table_names, "%s.table" % where)
    elif spec.get("table") not in (None, ""):
        raise RoutingError("%s: table only applies to action to_tbl, not %s" % (name, action))

    if spec.get("fwmark") not in (None, ""):
        mark, mask = _parse_mark(spec["fwmark"], "%s.fwmark" % where)
        if spec.get("fwmask") not in (None, ""):
            given_mask = _uint(spec["fwmask"], "%s.fwmask" % where)
            if mask is not None and mask != given_mask:
                raise RoutingError("%s: fwmark %s and fwmask %s give two different masks" % (name, spec["fwmark"], spec["fwmask"]))
            mask = given_mask
        if mask is None:
            mask = UINT32_MAX  # what the kernel stores for a mark without a mask
        if mask == 0:
            raise RoutingError("%s: fwmask 0 matches every packet; leave fwmark out instead" % name)
        if mark & ~mask & UINT32_MAX:
            raise RoutingError("%s: fwmark 0x%x has bits outside fwmask 0x%x, so it can never match" % (name, mark, mask))
        if mark == 0 and spec.get("fwmask") in (None, "") and "/" not in str(spec["fwmark"]):
            raise RoutingError("%s: fwmark 0 needs an explicit fwmask (the kernel reads a bare 0 as 'no mark match')" % name)
        rule["fwmark"], rule["fwmask"] = mark, mask
    elif spec.get("fwmask") not in (None, ""):
        raise RoutingError("%s: fwmask needs fwmark" % name)

    for field in ("src", "dst"):
        if spec.get(field):
            prefix = _ipv4_network(spec[field], "%s.%s" % (where, field))
            rule[field] = None if prefix == "0.0.0.0/0" else prefix  # /0 is 'from all'
    for field in ("iif", "oif"):
        if spec.get(field):
            rule[field] = _ifname(spec[field], "%s.%s" % (where, field))
    return rule


def normalize_rules(specs, state="present", table_names=None):
    rules = []
    seen = {}
    for index, spec in enumerate(specs or []):
        where = "rules[%d]" % index
        rule = normalize_rule(spec, table_names, where, state)
        if rule["priority"] in seen:
            if state == "absent":
                continue
            raise RoutingError(
                "%s and %s both use priority %d; the priority identifies a rule, so only one can exist"
                % (seen[rule["priority"]], where, rule["priority"])
            )
        seen[rule["priority"]] = where
        rules.append(rule)
    return rules


def _range_text(value):
    if isinstance(value, dict):
        return "%s-%s" % (value.get("start"), value.get("end"))
    return str(value)


def parse_rule_msg(msg):
    """One RTM_NEWRULE message (pyroute2 or a dict shaped like it) -> normalised rule."""
    if msg.get("family", AF_INET) != AF_INET:
        return None
    attrs = _attr_map(msg)
    action = _RULE_ACTION_NAMES.get(msg.get("action"), "action-%s" % msg.get("action"))
    mark, mask = attrs.get("FRA_FWMARK"), attrs.get("FRA_FWMASK")
    if mark is None and mask:  # 'fwmark 0/0xf00' is dumped as a mask alone
        mark = 0
    if mark is not None and mask is None:
        mask = UINT32_MAX
    rule = {
        "priority": attrs.get("FRA_PRIORITY", 0) or 0,
        "action": action,
        "table": None,
        "fwmark": mark,
        "fwmask": mask if mark is not None else None,
        "src": "%s/%d" % (attrs["FRA_SRC"], msg.get("src_len", 0)) if attrs.get("FRA_SRC") and msg.get("src_len") else None,
        "dst": "%s/%d" % (attrs["FRA_DST"], msg.get("dst_len", 0)) if attrs.get("FRA_DST") and msg.get("dst_len") else None,
        "iif": attrs.get("FRA_IIFNAME") or None,
        "oif": attrs.get("FRA_OIFNAME") or None,
        "invert": bool((msg.get("flags", 0) or 0) & FIB_RULE_INVERT),
        "tos": msg.get("tos", 0) or 0,
        "extras": {},
        "protocol": attrs.get("FRA_PROTOCOL", 0) or 0,
    }
    if action == "to_tbl":
        rule["table"] = attrs.get("FRA_TABLE", msg.get("table"))
    for attr, key in _RULE_EXTRA_ATTRS:
        value = attrs.get(attr)
        if value is None or value == _RULE_EXTRA_UNSET.get(key):
            continue
        if attr.endswith("_RANGE"):
            value = _range_text(value)
        rule["extras"][key] = value
    return rule


_RULE_COMPARED = ("action", "table", "fwmark", "fwmask", "src", "dst", "iif", "oif", "invert", "tos", "extras")


def rule_matches(want, have):
    return all(want[field] == have[field] for field in _RULE_COMPARED)


def format_rule(rule, table_names=None):
    """One line, in ip-rule(8) style: '100: from all fwmark 0x200/0xf00 lookup 2004'."""
    words = ["%d:" % rule["priority"]]
    if rule.get("invert"):
        words.append("not")
    words.append("from %s" % (rule["src"] or "all"))
    if rule.get("dst"):
        words.append("to %s" % rule["dst"])
    if rule.get("tos"):
        words.append("tos 0x%02x" % rule["tos"])
    if rule.get("fwmark") is not None:
        if rule.get("fwmask") in (None, UINT32_MAX):
            words.append("fwmark 0x%x" % rule["fwmark"])
        else:
            words.append("fwmark 0x%x/0x%x" % (rule["fwmark"], rule["fwmask"]))
    if rule.get("iif"):
        words.append("iif %s" % rule["iif"])
    if rule.get("oif"):
        words.append("oif %s" % rule["oif"])
    for key in sorted(rule.get("extras") or {}):
        words.append("%s %s" % (key, rule["extras"][key]))
    if rule["action"] == "to_tbl":
        words.append("lookup %s" % table_label(rule["table"], table_names))
    else:
        words.append(rule["action"])
    return " ".join(words)


def _rule_sort_key(rule):
    return (rule["priority"], format_rule(rule))


def plan_rules(wanted, current, state="present", purge=False, protocol=ROUTE_PROTOCOL, table_names=None):
    """Diff wanted rules against the kernel's IPv4 rules (in dump order).

    Rules have no in-place replace, so a changed rule is added first and the
    old one deleted afterwards (make before break: the old rule keeps
    steering traffic until the new one is there). Returns the same shape as
    plan_routes().
    """
    by_prio = {}
    for index, rule in enumerate(current):
        by_prio.setdefault(rule["priority"], []).append(index)

    install, remove_idx, warnings, conflicts = [], set(), [], []
    handled = set()
    for want in wanted:
        prio = want["priority"]
        handled.add(prio)
        existing = by_prio.get(prio, [])
        owned = [i for i in existing if current[i]["protocol"] == protocol]
        foreign = [i for i in existing if current[i]["protocol"] != protocol]
        if state == "absent":
            remove_idx.update(owned)
            for i in foreign:
                warnings.append(
                    "left rule '%s' alone: it has protocol %s, not %d, so it is not managed by this collection"
                    % (format_rule(current[i], table_names), protocol_label(current[i]["protocol"]), protocol)
                )
            continue
        if foreign:
            other = current[foreign[0]]
            conflicts.append(
                "priority %d: the kernel already has rule '%s' with protocol %s (this collection owns protocol %d); "
                "refusing to add '%s' next to it. Remove that rule, or use another priority."
                % (prio, format_rule(other, table_names), protocol_label(other["protocol"]), protocol, format_rule(want, table_names))
            )
            continue
        if not owned:
            install.append({"op": "add", "route": want, "old": None})
            continue
        matching = [i for i in owned if rule_matches(want, current[i])]
        if matching:
            # Keep the last equal rule and delete the others front to back:
            # the kernel deletes the first rule matching the attributes given,
            # and every rule before the one being deleted is then either
            # already gone or not ours (skipped thanks to FRA_PROTOCOL).
            keep = matching[-1]
            remove_idx.update(i for i in owned if i != keep)
        else:
            install.append({"op": "replace", "route": want, "old": current[owned[0]]})
            remove_idx.update(owned)
    if conflicts:
        raise RoutingError("rule conflict, nothing was changed:\n  " + "\n  ".join(conflicts))

    if purge:
        for index, rule in enumerate(current):
            if rule["protocol"] == protocol and (state == "absent" or rule["priority"] not in handled):
                remove_idx.add(index)

    remove_all = [current[i] for i in sorted(remove_idx)]
    replaced_old = set(id(item["old"]) for item in install if item["old"] is not None)
    # The first old rule of a replaced priority is reported as 'replaced', not 'removed'.
    remove_reported = [r for r in remove_all if id(r) not in replaced_old]
    owned_before = [r for r in current if r["protocol"] == protocol]
    removed_ids = set(id(r) for r in remove_all)
    after = [r for r in owned_before if id(r) not in removed_ids]
    after.extend(item["route"] for item in install)
    return {
        "install": install,
        "remove": remove_all,
        "remove_reported": remove_reported,
        "warnings": warnings,
        "before": sorted(owned_before, key=_rule_sort_key),
        "after": sorted(after, key=_rule_sort_key),
    }


# ---------------------------------------------------------------------------
# Reconcile: read, plan, apply, verify
# ---------------------------------------------------------------------------

# errno -> what an operator should check, per operation kind.
_ROUTE_HINTS = {
    errno.ENETUNREACH: "the gateway is not reachable through a link route (in this table or main); "
                       "install the link route first, or set onlink: true if the gateway is on dev's link",
    errno.ENETDOWN: "the interface is down",
    errno.ENODEV: "the interface disappeared",
    errno.EEXIST: "a route with this key appeared meanwhile (another writer?); re-run to re-plan",
    errno.EINVAL: "the kernel rejected the combination of type, scope, gateway, dev and src",
    errno.EPERM: "changing routes needs CAP_NET_ADMIN (run as root / with become)",
    errno.ESRCH: "the route was already gone",
}
_RULE_HINTS = {
    errno.EEXIST: "an identical rule appeared meanwhile (another writer?); re-run to re-plan",
    errno.EINVAL: "the kernel rejected the combination of fields",
    errno.EPERM: "changing rules needs CAP_NET_ADMIN (run as root / with become)",
    errno.ENOENT: "the rule was already gone",
    errno.EAFNOSUPPORT: "policy routing is not available (kernel without CONFIG_IP_MULTIPLE_TABLES)",
}


def _diff(before, after, header, formatter, table_names):
    def text(entries):
        lines = [formatter(e, table_names) for e in entries]
        return "".join(line + "\n" for line in lines)

    return {"before": text(before), "after": text(after), "before_header": header, "after_header": header}


def _failure(kind, label, exc, hints, done):
    hint = hints.get(getattr(exc, "code", None))
    message = "failed to %s %s: %s" % (kind, label, exc)
    if hint:
        message += " (%s)" % hint
    applied = ["%s %s" % (what, ", ".join(items)) for what, items in done if items]
    message += ". Already applied: %s." % ("; ".join(applied) if applied else "nothing")
    message += " The next run picks up from the kernel's state."
    return RoutingError(message)


def _ifnames(links):
    return dict((index, info["name"]) for index, info in links.items())


ENDPOINT_ALIAS_PREFIXES = (IFALIAS_PREFIX, ADOPTED_IFALIAS_PREFIX)


def endpoint_interfaces(links):
    """Names of interfaces that palisade.ebpf.endpoint manages (marked by their alias)."""
    return set(info["name"] for info in links.values()
               if (info.get("alias") or "").startswith(ENDPOINT_ALIAS_PREFIXES))


def read_routes(backend, links=None):
    """Parsed kernel routes. Routes through an endpoint interface are marked
    ``delegated``: the endpoint module owns them (they live and die with the
    endpoint), so ip_route neither purges nor reports them."""
    links = links if links is not None else backend.links()
    ifnames = _ifnames(links)
    delegated = endpoint_interfaces(links)
    routes = []
    for msg in backend.dump_routes():
        route = parse_route_msg(msg, ifnames)
        if route is not None:
            route["delegated"] = route["dev"] in delegated
            routes.append(route)
    return routes


def reconcile_routes(backend, routes, state="present", purge=False, protocol=ROUTE_PROTOCOL, tables=None,
                     check_mode=False, table_names=None):
    """Make the kernel's routes match ``routes`` (user entries); return the module result."""
    protocol = validate_protocol(protocol)
    names = table_names if table_names is not None else WELL_KNOWN_TABLES
    wanted = normalize_routes(routes, state, names)
    extra_tables = [parse_table(t, names, "tables[%d]" % i) for i, t in enumerate(tables or [])]

    links = backend.links()
    if state == "present":
        check_routes_against_host(wanted, links, backend.ipv4_addresses())
    current = read_routes(backend, links)
    plan = plan_routes(wanted, current, state, purge, protocol, extra_tables, names)

    def label(route):
        return format_route(route, names)

    added = [label(i["route"]) for i in plan["install"] if i["op"] == "add"]
    replaced = [label(i["route"]) for i in plan["install"] if i["op"] == "replace"]
    removed = [label(r) for r in plan["remove"]]
    changed = bool(plan["install"] or plan["remove"])
    after = plan["after"]

    if changed and not check_mode:
        done_added, done_replaced, done_removed = [], [], []
        done = (("added", done_added), ("replaced", done_replaced), ("removed", done_removed))
        by_name = dict((info["name"], index) for index, info in links.items())
        for item in plan["install"]:
            route = item["route"]
            try:
                backend.add_route(route, protocol, by_name.get(route["dev"]), replace=item["op"] == "replace")
            except NetlinkFailure as exc:
                kind = "replace the existing route with" if item["op"] == "replace" else "add route"
                raise _failure(kind, label(route), exc, _ROUTE_HINTS, done)
            (done_replaced if item["op"] == "replace" else done_added).append(label(route))
        # Only now, with every new route in place, remove the old ones.
        for route in plan["remove"]:
            try:
                backend.delete_route(route, protocol, by_name.get(route["dev"]))
            except NetlinkFailure as exc:
                if exc.code != errno.ESRCH:  # already gone is what we wanted
                    raise _failure("delete route", label(route), exc, _ROUTE_HINTS, done)
            done_removed.append(label(route))

        # Verify: planning again against the kernel must find nothing to do.
        # This catches what a plan cannot foresee (a concurrent writer, a
        # kernel that matched a different duplicate on delete).
        current = read_routes(backend)
        again = plan_routes(wanted, current, state, purge, protocol, extra_tables, names)
        leftover = [label(i["route"]) for i in again["install"]] + [label(r) for r in again["remove"]]
        if leftover:
            raise RoutingError(
                "routes were written but the kernel still differs from the wanted state for: %s "
                "(another process changing routes at the same time?)" % "; ".join(leftover)
            )
        after = again["before"]

    if plan["tables"]:
        header = "owned routes (protocol %d) in table %s" % (protocol, ", ".join(table_label(t, names) for t in plan["tables"]))
    else:
        header = "owned routes (protocol %d): no table in scope" % protocol
    return {
        "changed": changed,
        "added": added,
        "replaced": replaced,
        "removed": removed,
        "warnings": plan["warnings"],
        "diff": _diff(plan["before"], after, header, format_route, names),
    }


def read_rules(backend):
    rules = []
    for msg in backend.dump_rules():
        rule = parse_rule_msg(msg)
        if rule is not None:
            rules.append(rule)
    return rules


def reconcile_rules(backend, rules, state="present", purge=False, protocol=ROUTE_PROTOCOL, check_mode=False,
                    table_names=None):
    """Make the kernel's IPv4 rules match ``rules`` (user entries); return the module result."""
    protocol = validate_protocol(protocol)
    names = table_names if table_names is not None else WELL_KNOWN_TABLES
    wanted = normalize_rules(rules, state, names)
    current = read_rules(backend)
    plan = plan_rules(wanted, current, state, purge, protocol, names)

    def label(rule):
        return format_rule(rule, names)

    added = [label(i["route"]) for i in plan["install"] if i["op"] == "add"]
    replaced = [label(i["route"]) for i in plan["install"] if i["op"] == "replace"]
    removed = [label(r) for r in plan["remove_reported"]]
    changed = bool(plan["install"] or plan["remove"])
    after = plan["after"]

    if changed and not check_mode:
        done_added, done_replaced, done_removed = [], [], []
        done = (("added", done_added), ("replaced", done_replaced), ("removed", done_removed))
        for item in plan["install"]:
            try:
                backend.add_rule(item["route"], protocol)
            except NetlinkFailure as exc:
                raise _failure("add rule", "'%s'" % label(item["route"]), exc, _RULE_HINTS, done)
            (done_replaced if item["op"] == "replace" else done_added).append(label(item["route"]))
        for rule in plan["remove"]:
            try:
                backend.delete_rule(rule, protocol)
            except NetlinkFailure as exc:
                if exc.code != errno.ENOENT:
                    raise _failure("delete rule", "'%s'" % label(rule), exc, _RULE_HINTS, done)
            done_removed.append(label(rule))

        current = read_rules(backend)
        again = plan_rules(wanted, current, state, purge, protocol, names)
        leftover = ["'%s'" % label(i["route"]) for i in again["install"]] + ["'%s'" % label(r) for r in again["remove"]]
        if leftover:
            raise RoutingError(
                "rules were written but the kernel still differs from the wanted state for: %s "
                "(another process changing rules at the same time?)" % "; ".join(leftover)
            )
        after = again["before"]

    header = "owned IPv4 rules (protocol %d)" % protocol
    return {
        "changed": changed,
        "added": added,
        "replaced": replaced,
        "removed": removed,
        "warnings": plan["warnings"],
        "diff": _diff(plan["before"], after, header, format_rule, names),
    }


# ---------------------------------------------------------------------------
# pyroute2 backend
# ---------------------------------------------------------------------------


class NetlinkBackend(object):
    """The kernel, through one rtnetlink socket of the current network namespace.

    Requests are built as raw rtmsg/fibmsg so that every field is the one the
    plan decided (pyroute2's IPRoute.route() would default proto to 'static',
    scope to universe, ...). Kernel refusals come out as NetlinkFailure.
    """

    def __init__(self, ipr=None):
        if not HAS_PYROUTE2:
            raise RoutingError("the %s Python library is required" % PYROUTE2_REQUIREMENT)
        self.ipr = ipr if ipr is not None else IPRoute()

    def close(self):
        self.ipr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _request(self, msg, msg_type, flags):
        try:
            return tuple(self.ipr.nlm_request(msg, msg_type=msg_type, msg_flags=flags))
        except NetlinkError as exc:
            raise NetlinkFailure(exc.code, os.strerror(exc.code) if exc.code else str(exc))

    # -- reads -----------------------------------------------------------

    def links(self):
        out = {}
        for link in self.ipr.get_links():
            out[link["index"]] = {"name": link.get_attr("IFLA_IFNAME"), "up": bool(link["flags"] & IFF_UP),
                                  "alias": link.get_attr("IFLA_IFALIAS")}
        return out

    def ipv4_addresses(self):
        return set(a.get_attr("IFA_ADDRESS") for a in self.ipr.get_addr(family=AF_INET))

    def dump_routes(self):
        msg = rtmsg()
        msg["family"] = AF_INET
        return self._request(msg, RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP)

    def dump_rules(self):
        msg = fibmsg()
        msg["family"] = AF_INET
        return self._request(msg, RTM_GETRULE, NLM_F_REQUEST | NLM_F_DUMP)

    # -- routes ----------------------------------------------------------

    @staticmethod
    def _route_msg(route, protocol, oif):
        net = ipaddress.ip_network(route["dst"])
        msg = rtmsg()
        msg["family"] = AF_INET
        msg["dst_len"] = net.prefixlen
        msg["src_len"] = 0
        msg["tos"] = route.get("tos", 0)
        msg["table"] = route["table"] if route["table"] < 256 else RT_TABLE_COMPAT
        msg["proto"] = protocol
        msg["scope"] = SCOPES.get(route["scope"], 0)
        msg["type"] = ROUTE_TYPES.get(route["type"], _type_code(route["type"]))
        msg["flags"] = RTNH_F_ONLINK if route.get("onlink") else 0
        attrs = [["RTA_TABLE", route["table"]], ["RTA_PRIORITY", route["metric"]]]
        if net.prefixlen:
            attrs.append(["RTA_DST", str(net.network_address)])
        if route.get("gateway"):
            attrs.append(["RTA_GATEWAY", route["gateway"]])
        if oif:
            attrs.append(["RTA_OIF", oif])
        if route.get("src"):
            attrs.append(["RTA_PREFSRC", route["src"]])
        msg["attrs"] = attrs
        return msg

    def add_route(self, route, protocol, oif, replace=False):
        # A plain add uses NLM_F_EXCL: if a route with this key appeared since
        # the dump (maybe not ours) the kernel refuses instead of shadowing it.
        flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | (NLM_F_REPLACE if replace else NLM_F_EXCL)
        self._request(self._route_msg(route, protocol, oif), RTM_NEWROUTE, flags)

    def delete_route(self, route, protocol, oif):
        # Everything we know about the route is sent so that the kernel deletes
        # this one and not another under the same key; the protocol alone
        # already rules out entries that are not ours.
        self._request(self._route_msg(route, protocol, oif), RTM_DELROUTE, NLM_F_REQUEST | NLM_F_ACK)

    # -- rules -----------------------------------------------------------

    @staticmethod
    def _rule_msg(rule, protocol):
        msg = fibmsg()
        msg["family"] = AF_INET
        msg["tos"] = rule.get("tos", 0)
        msg["action"] = RULE_ACTIONS.get(rule["action"], 0)
        msg["flags"] = FIB_RULE_INVERT if rule.get("invert") else 0
        table = rule.get("table") or 0
        msg["table"] = table if table < 256 else RT_TABLE_COMPAT
        # FRA_PRIORITY always, even 0: without it the kernel picks a priority
        # on add and matches any priority on delete.
        attrs = [["FRA_PRIORITY", rule["priority"]], ["FRA_PROTOCOL", protocol]]
        if table:
            attrs.append(["FRA_TABLE", table])
        if rule.get("fwmark") is not None:
            attrs.append(["FRA_FWMARK", rule["fwmark"]])
            attrs.append(["FRA_FWMASK", rule["fwmask"] if rule.get("fwmask") is not None else UINT32_MAX])
        for field, attr, length_key in (("src", "FRA_SRC", "src_len"), ("dst", "FRA_DST", "dst_len")):
            if rule.get(field):
                net = ipaddress.ip_network(rule[field])
                msg[length_key] = net.prefixlen
                attrs.append([attr, str(net.network_address)])
        if rule.get("iif"):
            attrs.append(["FRA_IIFNAME", rule["iif"]])
        if rule.get("oif"):
            attrs.append(["FRA_OIFNAME", rule["oif"]])
        # Unmanaged scalar attributes of a kernel rule being deleted: sending
        # them narrows the kernel's match to exactly that rule.
        extras = rule.get("extras") or {}
        for attr, key in _RULE_EXTRA_ATTRS:
            if key in extras and not attr.endswith("_RANGE"):
                attrs.append([attr, extras[key]])
        msg["attrs"] = attrs
        return msg

    def add_rule(self, rule, protocol):
        self._request(self._rule_msg(rule, protocol), RTM_NEWRULE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)

    def delete_rule(self, rule, protocol):
        self._request(self._rule_msg(rule, protocol), RTM_DELRULE, NLM_F_REQUEST | NLM_F_ACK)


def _type_code(name):
    for code, type_name in _ALL_ROUTE_TYPE_NAMES.items():
        if type_name == name:
            return code
    return 0
