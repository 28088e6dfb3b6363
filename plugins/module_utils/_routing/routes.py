# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The normal form of a route: from the user's spec, from a kernel message,
to one line of text, and back to the module's input schema.

    {'table': int, 'dst': 'a.b.c.d/n', 'tos': int, 'metric': int,
     'type': str, 'gateway': str|None, 'dev': str|None, 'scope': str,
     'src': str|None, 'onlink': bool, 'multipath': list|None,
     'protocol': int|None}

Identity (the kernel's FIB alias key): (table, dst, tos, metric). The kernel
keeps several routes under one key only when asked to append/prepend; a
replace (NLM_F_REPLACE) rewrites the first of them in place.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.palisade.ebpf.plugins.module_utils._routing import fields
from ansible_collections.palisade.ebpf.plugins.module_utils._routing import names as nm
from ansible_collections.palisade.ebpf.plugins.module_utils._routing.errors import RoutingError
from ansible_collections.palisade.ebpf.plugins.module_utils._routing.family import IPV4

RTNH_F_ONLINK = 0x4

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


def _dst_text(dst):
    return "default" if dst.endswith("/0") else dst


def format_route_key(key, table_names=None):
    table, dst, tos, metric = key
    text = "%s table %s" % (_dst_text(dst), nm.table_label(table, table_names))
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
    words.append(_dst_text(route["dst"]))
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
    words.append("table %s" % nm.table_label(route["table"], table_names))
    return " ".join(words)


def normalize_route(spec, table_names=None, where="route", state="present", family=IPV4):
    """One user entry -> normalised route; RoutingError names the entry and field.

    With state=absent only the identity (dst, table, metric) matters, so the
    other fields are not validated against each other.
    """
    if not isinstance(spec, dict):
        raise RoutingError("%s: expected a dict, got %r" % (where, spec))
    fields.reject_unknown_keys(spec, ROUTE_OPTIONS + tuple(ROUTE_OPTION_ALIASES), where)
    spec = dict(spec)
    for alias, canonical in ROUTE_OPTION_ALIASES.items():
        if spec.get(canonical) is None and spec.get(alias) is not None:
            spec[canonical] = spec[alias]
    if spec.get("dst") in (None, ""):
        raise RoutingError("%s: dst is required" % where)
    route = {
        "dst": family.prefix(spec["dst"], "%s.dst" % where),
        "table": nm.parse_table(spec.get("table") if spec.get("table") is not None else "main", table_names,
                                "%s.table" % where),
        "metric": fields.uint(spec.get("metric") or 0, "%s.metric" % where),
        "tos": 0,
        "protocol": None,
        "multipath": None,
    }
    if state == "absent":
        route.update(type="unicast", gateway=None, dev=None, scope="universe", src=None, onlink=False)
        return route

    route_type = spec.get("type") or "unicast"
    if route_type not in nm.ROUTE_TYPES:
        raise RoutingError("%s.type: %r is not one of %s" % (where, route_type, ", ".join(sorted(nm.ROUTE_TYPES))))
    gateway = family.address(spec["gateway"], "%s.gateway" % where) if spec.get("gateway") else None
    dev = fields.ifname(spec["dev"], "%s.dev" % where) if spec.get("dev") else None
    src = family.address(spec["src"], "%s.src" % where) if spec.get("src") else None
    onlink = bool(spec.get("onlink"))
    name = "%s (%s)" % (where, route["dst"])

    if route_type in nm.NEXTHOPLESS_TYPES:
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
    if scope not in nm.SCOPES or scope == "nowhere":
        raise RoutingError("%s.scope: %r is not one of universe, site, link, host" % (where, scope))
    if gateway and nm.SCOPES[scope] >= nm.SCOPES["link"]:
        raise RoutingError(
            "%s: scope %s cannot have a gateway (a route via %s is scope universe; "
            "the gateway itself must be reachable by a link route or marked onlink)" % (name, scope, gateway)
        )
    route.update(type=route_type, gateway=gateway, dev=dev, scope=scope, src=src, onlink=onlink)
    return route


def normalize_routes(specs, state="present", table_names=None, family=IPV4):
    """All entries; two present entries with one identity are an error (which would win?)."""
    routes = []
    seen = {}
    for index, spec in enumerate(specs or []):
        where = "routes[%d]" % index
        route = normalize_route(spec, table_names, where, state, family)
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


def check_routes_against_host(routes, links, addresses, family=IPV4):
    """Host-dependent validation, before the first write.

    ``links`` is {ifindex: {'name': str, 'up': bool}}, ``addresses`` the set
    of this host's addresses of the routes' family.
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
        if src and src not in addresses and not (route["type"] == "local" and route["dst"] == family.host_prefix(src)):
            problems.append("%s: src %s is not an address of this host (the kernel rejects it as prefsrc)" % (label, src))
    if problems:
        raise RoutingError("cannot apply the routes, nothing was changed:\n  " + "\n  ".join(problems))


def _ifname_of(index, ifnames):
    if not index:
        return None
    return ifnames.get(index, "if%d" % index)


def parse_route_msg(msg, ifnames=None, family=IPV4):
    """One RTM_NEWROUTE message (pyroute2 or a dict shaped like it) -> normalised route.

    ``ifnames`` maps ifindex -> name. Returns None for another family.
    """
    ifnames = ifnames or {}
    if msg.get("family", family.number) != family.number:
        return None
    attrs = fields.attr_map(msg)
    dst_len = msg.get("dst_len", 0)
    dst_addr = attrs.get("RTA_DST") or family.any_address
    table = attrs.get("RTA_TABLE", msg.get("table"))
    oif = attrs.get("RTA_OIF")
    flags = msg.get("flags", 0) or 0
    route = {
        "table": table,
        "dst": "%s/%d" % (dst_addr, dst_len),
        "tos": msg.get("tos", 0) or 0,
        "metric": attrs.get("RTA_PRIORITY", 0) or 0,
        "type": nm.route_type_name(msg.get("type")),
        "gateway": attrs.get("RTA_GATEWAY"),
        "dev": _ifname_of(oif, ifnames),
        "scope": nm.scope_name(msg.get("scope", 0)),
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
            hop_attrs = fields.attr_map(hop)
            route["multipath"].append({
                "gateway": hop_attrs.get("RTA_GATEWAY"),
                "dev": _ifname_of(hop.get("oif"), ifnames),
                "weight": (hop.get("hops", 0) or 0) + 1,
            })
    return route


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


def route_sort_key(route, family=IPV4):
    return (route["table"], family.sort_key(route["dst"]), route.get("tos", 0), route["metric"], format_route(route))


def route_entry(route, table_names=None):
    """A normalised route in ip_route's input schema (what ``routes`` takes).

    Owned routes made outside the module may carry what the module cannot
    set: their ``tos`` and ``multipath`` next hops are kept so nothing is
    hidden.
    """
    entry = {
        "dst": route["dst"],
        "table": nm.table_value(route["table"], table_names),
        "type": route["type"],
        "scope": route["scope"],
        "metric": route["metric"],
        "onlink": route["onlink"],
    }
    for field in ("gateway", "dev", "src"):
        if route.get(field):
            entry[field] = route[field]
    if route.get("tos"):
        entry["tos"] = route["tos"]
    if route.get("multipath"):
        entry["multipath"] = [dict(hop) for hop in route["multipath"]]
    return entry
