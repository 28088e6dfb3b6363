# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for module_utils/routing.py: no root, no kernel.

Kernel state is fabricated as netlink-like dicts ({'family', 'dst_len', ...,
'attrs': [(name, value), ...]}), the shape pyroute2 messages have, and a fake
backend records every write so that check mode and ordering can be asserted.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno

import pytest

from ansible_collections.palisade.ebpf.plugins.module_utils import _routing as rt
from ansible_collections.palisade.ebpf.plugins.module_utils._defaults import ROUTE_PROTOCOL

P = ROUTE_PROTOCOL
LINKS = {1: {"name": "lo", "up": True}, 2: {"name": "eth0", "up": True}, 3: {"name": "eth1", "up": False}}
IFNAMES = dict((i, v["name"]) for i, v in LINKS.items())
ADDRESSES = {"127.0.0.1", "192.0.2.11"}


# ---------------------------------------------------------------------------
# Fabricated kernel messages
# ---------------------------------------------------------------------------


def route_msg(dst, table=254, proto=P, gateway=None, oif=None, metric=None, scope=0, rtype=1, prefsrc=None, flags=0, tos=0,
              multipath=None):
    addr, dummy, plen = dst.partition("/")
    attrs = [("RTA_TABLE", table)]
    if int(plen or 32):
        attrs.append(("RTA_DST", addr))
    if metric is not None:
        attrs.append(("RTA_PRIORITY", metric))
    if gateway:
        attrs.append(("RTA_GATEWAY", gateway))
    if oif:
        attrs.append(("RTA_OIF", oif))
    if prefsrc:
        attrs.append(("RTA_PREFSRC", prefsrc))
    if multipath:
        attrs.append(("RTA_MULTIPATH", multipath))
    return {"family": 2, "dst_len": int(plen or 32), "src_len": 0, "tos": tos, "table": table if table < 256 else 252,
            "proto": proto, "scope": scope, "type": rtype, "flags": flags, "attrs": attrs}


def rule_msg(priority, table=None, proto=P, action=1, fwmark=None, fwmask=None, src=None, dst=None, iif=None, oif=None,
             flags=0, extra=()):
    attrs = []
    if table is not None:
        attrs.append(("FRA_TABLE", table))
    attrs.append(("FRA_SUPPRESS_PREFIXLEN", 0xFFFFFFFF))
    attrs.append(("FRA_PROTOCOL", proto))
    if iif:
        attrs.append(("FRA_IIFNAME", iif))
    if oif:
        attrs.append(("FRA_OIFNAME", oif))
    if priority:
        attrs.append(("FRA_PRIORITY", priority))
    if fwmark:
        attrs.append(("FRA_FWMARK", fwmark))
    if fwmask is not None:
        attrs.append(("FRA_FWMASK", fwmask))
    src_len = dst_len = 0
    if src:
        addr, dummy, plen = src.partition("/")
        attrs.append(("FRA_SRC", addr))
        src_len = int(plen)
    if dst:
        addr, dummy, plen = dst.partition("/")
        attrs.append(("FRA_DST", addr))
        dst_len = int(plen)
    attrs.extend(extra)
    return {"family": 2, "dst_len": dst_len, "src_len": src_len, "tos": 0,
            "table": (table if table is not None and table < 256 else (252 if table else 0)),
            "action": action, "flags": flags, "attrs": attrs}


def kernel_default_rules():
    return [rule_msg(0, table=255, proto=2), rule_msg(32766, table=254, proto=2), rule_msg(32767, table=253, proto=2)]


def parsed_routes(*msgs):
    return [rt.parse_route_msg(m, IFNAMES) for m in msgs]


class FakeBackend(object):
    """A tiny kernel: routes/rules as netlink-like dicts, writes recorded in order."""

    def __init__(self, routes=(), rules=(), links=None, addresses=None):
        self.routes = list(routes)
        self.rules = list(rules)
        self.link_table = dict(LINKS if links is None else links)
        self.addresses = set(ADDRESSES if addresses is None else addresses)
        self.writes = []
        self.fail_on = {}  # (op, label) -> errno

    def links(self):
        return self.link_table

    def ipv4_addresses(self):
        return self.addresses

    def dump_routes(self):
        return list(self.routes)

    def dump_rules(self):
        return list(self.rules)

    def _maybe_fail(self, op, label):
        code = self.fail_on.get((op, label))
        if code:
            raise rt.NetlinkFailure(code, "fake failure")

    def _names(self):
        return dict((i, v["name"]) for i, v in self.link_table.items())

    def add_route(self, route, protocol, oif, replace=False):
        label = rt.format_route(route)
        self.writes.append(("replace_route" if replace else "add_route", label))
        self._maybe_fail("add_route", label)
        msg = route_msg(route["dst"], table=route["table"], proto=protocol, gateway=route["gateway"],
                        oif=oif or (2 if route["gateway"] and not route["dev"] else None),
                        metric=route["metric"] or None, scope=rt.SCOPES[route["scope"]], rtype=rt.ROUTE_TYPES[route["type"]],
                        prefsrc=route["src"], flags=rt.RTNH_F_ONLINK if route["onlink"] else 0)
        key = rt.route_key(route)
        for index, old in enumerate(self.routes):
            if rt.route_key(rt.parse_route_msg(old, self._names())) == key:
                if replace:
                    self.routes[index] = msg
                    return
                raise rt.NetlinkFailure(errno.EEXIST, "File exists")
        self.routes.append(msg)

    def delete_route(self, route, protocol, oif):
        label = rt.format_route(route)
        self.writes.append(("delete_route", label))
        self._maybe_fail("delete_route", label)
        for index, old in enumerate(self.routes):
            parsed = rt.parse_route_msg(old, self._names())
            wanted = dict(route, protocol=protocol)
            wanted.pop("delegated", None)  # read_routes' mark, not a kernel attribute
            if parsed == wanted:
                del self.routes[index]
                return
        raise rt.NetlinkFailure(errno.ESRCH, "No such process")

    def add_rule(self, rule, protocol):
        label = rt.format_rule(rule)
        self.writes.append(("add_rule", label))
        self._maybe_fail("add_rule", label)
        self.rules.append(rule_msg(rule["priority"], table=rule["table"], proto=protocol, action=rt.RULE_ACTIONS[rule["action"]],
                                   fwmark=rule["fwmark"], fwmask=rule["fwmask"], src=rule["src"], dst=rule["dst"],
                                   iif=rule["iif"], oif=rule["oif"]))
        self.rules.sort(key=lambda m: rt.parse_rule_msg(m)["priority"])  # stable: appended after equal priorities

    def delete_rule(self, rule, protocol):
        label = rt.format_rule(rule)
        self.writes.append(("delete_rule", label))
        self._maybe_fail("delete_rule", label)
        for index, old in enumerate(self.rules):
            if rt.parse_rule_msg(old) == dict(rule, protocol=protocol):
                del self.rules[index]
                return
        raise rt.NetlinkFailure(errno.ENOENT, "No such file or directory")


# ---------------------------------------------------------------------------
# Tables and helpers
# ---------------------------------------------------------------------------


def test_parse_rt_tables_and_labels():
    names = rt.parse_rt_tables("# comment\n255\tlocal\n254 main  # trailing\n2004 l7proxy\nbogus line\n0x10 hex\n")
    assert names == {"local": 255, "main": 254, "l7proxy": 2004, "hex": 16}
    assert rt.parse_table("l7proxy", names) == 2004
    assert rt.parse_table("2004") == 2004
    assert rt.parse_table(100) == 100
    assert rt.table_label(254) == "main"
    assert rt.table_label(2004, names) == "l7proxy"
    assert rt.table_label(7) == "7"


@pytest.mark.parametrize("value", ["nosuch", 0, 252, 2 ** 32, True, None])
def test_parse_table_rejects(value):
    with pytest.raises(rt.RoutingError):
        rt.parse_table(value, where="routes[0].table")


@pytest.mark.parametrize("value", [0, 2, 4, 256, "x"])
def test_protocol_must_be_dedicated(value):
    with pytest.raises(rt.RoutingError, match="protocol"):
        rt.validate_protocol(value)
    assert rt.validate_protocol(201) == 201


# ---------------------------------------------------------------------------
# Route normalisation
# ---------------------------------------------------------------------------


def test_normalize_bare_address_is_host_route_with_link_scope():
    route = rt.normalize_route({"dst": "192.0.2.12", "dev": "eth0"})
    assert route["dst"] == "192.0.2.12/32"
    assert route["table"] == 254 and route["metric"] == 0
    assert route["scope"] == "link"  # as ip-route picks for a route without gateway
    assert route["type"] == "unicast" and route["gateway"] is None


def test_normalize_defaults_by_type():
    assert rt.normalize_route({"dst": "10.1.2.0/24", "gateway": "192.0.2.12"})["scope"] == "universe"
    local = rt.normalize_route({"dst": "0.0.0.0/0", "type": "local", "dev": "lo", "table": 2004})
    assert (local["scope"], local["table"], local["dst"]) == ("host", 2004, "0.0.0.0/0")
    assert rt.normalize_route({"dst": "default", "type": "blackhole"})["dst"] == "0.0.0.0/0"


def test_normalize_priority_alias_and_ansible_none_fields():
    spec = {"dst": "10.0.0.0/8", "gateway": "192.0.2.1", "dev": None, "table": "main", "scope": None, "metric": None,
            "priority": 50, "onlink": False, "src": None, "type": "unicast"}
    assert rt.normalize_route(spec)["metric"] == 50


@pytest.mark.parametrize("spec,message", [
    ({"dst": "10.1.2.3/24", "dev": "eth0"}, "host bits set; the prefix is 10.1.2.0/24"),
    ({"dst": "2001:db8::/32", "dev": "eth0"}, "IPv6"),
    ({"dst": "10.1.2.0/24"}, "needs a gateway, a dev, or both"),
    ({"dst": "10.1.2.0/24", "gateway": "192.0.2.1", "onlink": True}, "onlink needs both a gateway and a dev"),
    ({"dst": "10.1.2.0/24", "gateway": "192.0.2.1", "scope": "link"}, "scope link cannot have a gateway"),
    ({"dst": "10.1.2.0/24", "type": "blackhole", "dev": "eth0"}, "a blackhole route takes no dev"),
    ({"dst": "10.1.2.0/24", "type": "local"}, "a local route needs dev"),
    ({"dst": "10.1.2.0/24", "gateway": "not-an-ip"}, "not an IP address"),
    ({"dst": "10.1.2.0/24", "dev": "a-name-that-is-too-long"}, "not a valid interface name"),
    ({"dst": "10.1.2.0/24", "dev": "eth0", "color": "red"}, "unsupported option"),
    ({"dst": "10.1.2.0/24", "dev": "eth0", "metric": -1}, "out of range"),
])
def test_normalize_route_errors_name_the_entry(spec, message):
    with pytest.raises(rt.RoutingError) as info:
        rt.normalize_routes([{"dst": "10.9.9.0/24", "dev": "eth0"}, spec])
    assert "routes[1]" in str(info.value)
    assert message in str(info.value)


def test_normalize_duplicate_identity():
    specs = [{"dst": "10.1.2.0/24", "dev": "eth0"}, {"dst": "10.1.2.0/24", "gateway": "192.0.2.1"}]
    with pytest.raises(rt.RoutingError, match=r"routes\[0\] and routes\[1\] both define 10.1.2.0/24 table main"):
        rt.normalize_routes(specs)
    # Another metric or table is another route.
    assert len(rt.normalize_routes([specs[0], dict(specs[1], metric=10), dict(specs[1], table=100)])) == 3
    # For removal only the identity counts and repeating it is harmless.
    assert len(rt.normalize_routes(specs, state="absent")) == 1


def test_absent_needs_only_identity():
    route = rt.normalize_route({"dst": "10.1.2.0/24", "onlink": True}, state="absent")
    assert rt.route_key(route) == (254, "10.1.2.0/24", 0, 0)


def test_format_route():
    route = rt.normalize_route({"dst": "10.1.2.0/24", "gateway": "192.0.2.12", "dev": "eth0"})
    assert rt.format_route(route) == "10.1.2.0/24 via 192.0.2.12 dev eth0 table main"
    route = rt.normalize_route({"dst": "0.0.0.0/0", "type": "local", "dev": "lo", "table": 2004})
    assert rt.format_route(route) == "local default dev lo scope host table 2004"
    route = rt.normalize_route({"dst": "10.1.3.0/24", "gateway": "192.0.2.13", "dev": "eth0", "onlink": True,
                                "metric": 20, "src": "192.0.2.11"})
    assert rt.format_route(route) == "10.1.3.0/24 via 192.0.2.13 dev eth0 src 192.0.2.11 metric 20 onlink table main"
    assert rt.format_route_key((254, "0.0.0.0/0", 0, 5)) == "default table main metric 5"


# ---------------------------------------------------------------------------
# Route parsing
# ---------------------------------------------------------------------------


def test_parse_route_gateway_route():
    route = rt.parse_route_msg(route_msg("10.1.2.0/24", gateway="192.0.2.12", oif=2, metric=5), IFNAMES)
    assert route == {"table": 254, "dst": "10.1.2.0/24", "tos": 0, "metric": 5, "type": "unicast",
                     "gateway": "192.0.2.12", "dev": "eth0", "scope": "universe", "src": None, "onlink": False,
                     "protocol": P, "multipath": None}


def test_parse_route_default_large_table_flags():
    # No RTA_DST for 0/0; rtm_table is RT_TABLE_COMPAT when the id is > 255.
    msg = route_msg("0.0.0.0/0", table=2004, rtype=2, scope=254, oif=1, proto=P)
    route = rt.parse_route_msg(msg, IFNAMES)
    assert (route["dst"], route["table"], route["type"], route["scope"], route["dev"]) == ("0.0.0.0/0", 2004, "local", "host", "lo")
    # ONLINK is configuration, LINKDOWN (0x10) is state and must not count.
    route = rt.parse_route_msg(route_msg("10.1.3.0/24", gateway="192.0.2.13", oif=2, flags=0x4 | 0x10), IFNAMES)
    assert route["onlink"] is True
    route = rt.parse_route_msg(route_msg("10.1.3.0/24", gateway="192.0.2.13", oif=2, flags=0x10), IFNAMES)
    assert route["onlink"] is False


def test_parse_route_multipath_and_unknown_ifindex():
    hops = [{"flags": 0, "hops": 0, "oif": 2, "attrs": [("RTA_GATEWAY", "192.0.2.5")]},
            {"flags": 0, "hops": 1, "oif": 9, "attrs": [("RTA_GATEWAY", "192.0.2.6")]}]
    route = rt.parse_route_msg(route_msg("10.9.7.0/24", multipath=hops), IFNAMES)
    assert route["multipath"] == [{"gateway": "192.0.2.5", "dev": "eth0", "weight": 1},
                                  {"gateway": "192.0.2.6", "dev": "if9", "weight": 2}]
    assert rt.format_route(route) == "10.9.7.0/24 nexthop via 192.0.2.5 dev eth0 nexthop via 192.0.2.6 dev if9 weight 2 table main"
    wanted = rt.normalize_route({"dst": "10.9.7.0/24", "gateway": "192.0.2.5", "dev": "eth0"})
    assert not rt.route_matches(wanted, route)


def test_parse_route_skips_other_families():
    msg = route_msg("10.0.0.0/8", oif=2)
    msg["family"] = 10
    assert rt.parse_route_msg(msg, IFNAMES) is None


def test_route_matches_without_dev_accepts_kernel_choice():
    have = rt.parse_route_msg(route_msg("10.1.2.0/24", gateway="192.0.2.12", oif=2), IFNAMES)
    assert rt.route_matches(rt.normalize_route({"dst": "10.1.2.0/24", "gateway": "192.0.2.12"}), have)
    assert not rt.route_matches(rt.normalize_route({"dst": "10.1.2.0/24", "gateway": "192.0.2.12", "dev": "eth1"}), have)
    assert not rt.route_matches(rt.normalize_route({"dst": "10.1.2.0/24", "gateway": "192.0.2.99"}), have)
    assert not rt.route_matches(rt.normalize_route({"dst": "10.1.2.0/24", "gateway": "192.0.2.12", "src": "192.0.2.11"}), have)


# ---------------------------------------------------------------------------
# Route planning
# ---------------------------------------------------------------------------


def want(*specs, **kw):
    return rt.normalize_routes(list(specs), kw.get("state", "present"))


def labels(routes):
    return [rt.format_route(r) for r in routes]


def test_plan_add_into_empty_table_orders_link_routes_first():
    wanted = want({"dst": "10.1.2.0/24", "gateway": "192.0.2.12", "dev": "eth0"}, {"dst": "192.0.2.12", "dev": "eth0"})
    plan = rt.plan_routes(wanted, [], protocol=P)
    assert [(i["op"], rt.format_route(i["route"])) for i in plan["install"]] == [
        ("add", "192.0.2.12/32 dev eth0 scope link table main"),
        ("add", "10.1.2.0/24 via 192.0.2.12 dev eth0 table main"),
    ]
    assert plan["remove"] == [] and plan["before"] == []
    assert labels(plan["after"]) == ["10.1.2.0/24 via 192.0.2.12 dev eth0 table main", "192.0.2.12/32 dev eth0 scope link table main"]


def test_plan_noop_when_in_place():
    current = parsed_routes(route_msg("10.1.2.0/24", gateway="192.0.2.12", oif=2))
    plan = rt.plan_routes(want({"dst": "10.1.2.0/24", "gateway": "192.0.2.12", "dev": "eth0"}), current, protocol=P)
    assert plan["install"] == [] and plan["remove"] == []
    assert plan["before"] == plan["after"]


def test_plan_replace_changed_attributes():
    current = parsed_routes(route_msg("10.1.2.0/24", gateway="192.0.2.12", oif=2))
    plan = rt.plan_routes(want({"dst": "10.1.2.0/24", "gateway": "192.0.2.13", "dev": "eth0"}), current, protocol=P)
    assert [(i["op"], rt.format_route(i["route"]), rt.format_route(i["old"])) for i in plan["install"]] == [
        ("replace", "10.1.2.0/24 via 192.0.2.13 dev eth0 table main", "10.1.2.0/24 via 192.0.2.12 dev eth0 table main")]
    assert plan["remove"] == []
    assert labels(plan["before"]) == ["10.1.2.0/24 via 192.0.2.12 dev eth0 table main"]
    assert labels(plan["after"]) == ["10.1.2.0/24 via 192.0.2.13 dev eth0 table main"]


def test_plan_metric_is_identity_not_attribute():
    current = parsed_routes(route_msg("10.1.2.0/24", gateway="192.0.2.12", oif=2, metric=10))
    plan = rt.plan_routes(want({"dst": "10.1.2.0/24", "gateway": "192.0.2.12", "dev": "eth0"}), current, protocol=P, purge=True)
    assert [i["op"] for i in plan["install"]] == ["add"]
    assert labels(plan["remove"]) == ["10.1.2.0/24 via 192.0.2.12 dev eth0 metric 10 table main"]


def test_plan_foreign_route_with_same_key_is_a_conflict():
    current = parsed_routes(route_msg("10.1.2.0/24", gateway="192.0.2.99", oif=2, proto=4))
    with pytest.raises(rt.RoutingError) as info:
        rt.plan_routes(want({"dst": "10.1.2.0/24", "gateway": "192.0.2.12", "dev": "eth0"}), current, protocol=P)
    message = str(info.value)
    assert "nothing was changed" in message
    assert "10.1.2.0/24 via 192.0.2.99 dev eth0 table main" in message
    assert "static (4)" in message and "protocol 201" in message


def test_plan_conflicts_are_all_reported_at_once():
    current = parsed_routes(route_msg("10.1.2.0/24", oif=2, proto=4, scope=253), route_msg("10.1.3.0/24", oif=2, proto=16, scope=253))
    with pytest.raises(rt.RoutingError) as info:
        rt.plan_routes(want({"dst": "10.1.2.0/24", "dev": "eth0"}, {"dst": "10.1.3.0/24", "dev": "eth0"}), current, protocol=P)
    assert "static (4)" in str(info.value) and "dhcp (16)" in str(info.value)


def test_plan_purge_removes_only_owned_in_tables_in_scope():
    current = parsed_routes(
        route_msg("192.0.2.0/24", oif=2, proto=2, scope=253, prefsrc="192.0.2.11"),  # kernel's connected route
        route_msg("10.1.9.0/24", gateway="192.0.2.19", oif=2),  # ours, stale
        route_msg("10.1.2.0/24", gateway="192.0.2.12", oif=2),  # ours, wanted
        route_msg("10.5.0.0/16", gateway="192.0.2.1", oif=2, proto=4),  # administrator's
        route_msg("10.1.8.0/24", gateway="192.0.2.18", oif=2, table=100),  # ours, other table
    )
    wanted = want({"dst": "10.1.2.0/24", "gateway": "192.0.2.12", "dev": "eth0"})
    plan = rt.plan_routes(wanted, current, purge=True, protocol=P)
    assert plan["install"] == []
    assert labels(plan["remove"]) == ["10.1.9.0/24 via 192.0.2.19 dev eth0 table main"]
    assert plan["tables"] == [254]
    # Without purge the stale route stays.
    assert rt.plan_routes(wanted, current, purge=False, protocol=P)["remove"] == []
    # 'tables' widens the scope.
    plan = rt.plan_routes(wanted, current, purge=True, protocol=P, tables=[100])
    assert labels(plan["remove"]) == ["10.1.9.0/24 via 192.0.2.19 dev eth0 table main", "10.1.8.0/24 via 192.0.2.18 dev eth0 table 100"]


def test_plan_purge_with_empty_list_and_tables():
    current = parsed_routes(route_msg("0.0.0.0/0", table=2004, rtype=2, scope=254, oif=1),
                            route_msg("10.1.9.0/24", gateway="192.0.2.19", oif=2))
    plan = rt.plan_routes([], current, purge=True, protocol=P, tables=[2004])
    assert labels(plan["remove"]) == ["local default dev lo scope host table 2004"]
    assert rt.plan_routes([], current, purge=True, protocol=P)["remove"] == []  # no table in scope


def test_plan_absent_removes_owned_and_warns_on_foreign():
    current = parsed_routes(route_msg("10.1.2.0/24", gateway="192.0.2.12", oif=2),
                            route_msg("10.1.3.0/24", gateway="192.0.2.13", oif=2, proto=4))
    plan = rt.plan_routes(want({"dst": "10.1.2.0/24"}, {"dst": "10.1.3.0/24"}, {"dst": "10.1.4.0/24"}, state="absent"),
                          current, state="absent", protocol=P)
    assert labels(plan["remove"]) == ["10.1.2.0/24 via 192.0.2.12 dev eth0 table main"]
    assert plan["install"] == []
    assert len(plan["warnings"]) == 1 and "10.1.3.0/24" in plan["warnings"][0] and "static (4)" in plan["warnings"][0]


def test_plan_owned_duplicates_under_one_key():
    current = parsed_routes(route_msg("10.1.2.0/24", gateway="192.0.2.12", oif=2),
                            route_msg("10.1.2.0/24", gateway="192.0.2.13", oif=2))
    plan = rt.plan_routes(want({"dst": "10.1.2.0/24", "gateway": "192.0.2.13", "dev": "eth0"}), current, protocol=P)
    assert plan["install"] == []
    assert labels(plan["remove"]) == ["10.1.2.0/24 via 192.0.2.12 dev eth0 table main"]
    plan = rt.plan_routes(want({"dst": "10.1.2.0/24", "gateway": "192.0.2.14", "dev": "eth0"}), current, protocol=P)
    assert [i["op"] for i in plan["install"]] == ["replace"]
    assert labels(plan["remove"]) == ["10.1.2.0/24 via 192.0.2.13 dev eth0 table main"]


# ---------------------------------------------------------------------------
# Route reconcile (with a fake backend)
# ---------------------------------------------------------------------------

WANTED_ROUTES = [
    {"dst": "10.1.2.0/24", "gateway": "192.0.2.12", "dev": "eth0"},
    {"dst": "192.0.2.12", "dev": "eth0"},
]


def test_reconcile_routes_check_mode_writes_nothing():
    backend = FakeBackend(routes=[route_msg("10.1.9.0/24", gateway="192.0.2.19", oif=2)])
    before = list(backend.routes)
    result = rt.reconcile_routes(backend, WANTED_ROUTES, purge=True, check_mode=True)
    assert backend.writes == [] and backend.routes == before
    assert result["changed"] is True
    assert result["added"] == ["192.0.2.12/32 dev eth0 scope link table main", "10.1.2.0/24 via 192.0.2.12 dev eth0 table main"]
    assert result["removed"] == ["10.1.9.0/24 via 192.0.2.19 dev eth0 table main"]
    assert result["diff"]["before"] == "10.1.9.0/24 via 192.0.2.19 dev eth0 table main\n"
    assert result["diff"]["after"] == ("10.1.2.0/24 via 192.0.2.12 dev eth0 table main\n"
                                       "192.0.2.12/32 dev eth0 scope link table main\n")
    assert result["diff"]["before_header"] == "owned routes (protocol 201) in table main"


def test_reconcile_routes_applies_installs_before_removals_then_is_idempotent():
    backend = FakeBackend(routes=[route_msg("10.1.9.0/24", gateway="192.0.2.19", oif=2),
                                  route_msg("10.1.3.0/24", gateway="192.0.2.12", oif=2)])
    wanted = WANTED_ROUTES + [{"dst": "10.1.3.0/24", "gateway": "192.0.2.13", "dev": "eth0", "onlink": True}]
    result = rt.reconcile_routes(backend, wanted, purge=True)
    assert backend.writes == [
        ("add_route", "192.0.2.12/32 dev eth0 scope link table main"),
        ("add_route", "10.1.2.0/24 via 192.0.2.12 dev eth0 table main"),
        ("replace_route", "10.1.3.0/24 via 192.0.2.13 dev eth0 onlink table main"),
        ("delete_route", "10.1.9.0/24 via 192.0.2.19 dev eth0 table main"),
    ]
    assert result["changed"] and result["replaced"] == ["10.1.3.0/24 via 192.0.2.13 dev eth0 onlink table main"]
    assert "10.1.9.0/24" not in result["diff"]["after"]
    backend.writes = []
    again = rt.reconcile_routes(backend, wanted, purge=True)
    assert again["changed"] is False and backend.writes == []
    assert again["added"] == again["removed"] == again["replaced"] == []
    assert again["diff"]["before"] == again["diff"]["after"] == result["diff"]["after"]


@pytest.mark.parametrize("spec,message", [
    ({"dst": "10.1.5.0/24", "dev": "nosuch0"}, "interface nosuch0 does not exist"),
    ({"dst": "10.1.5.0/24", "dev": "eth1"}, "interface eth1 is down"),
    ({"dst": "10.1.5.0/24", "dev": "eth0", "src": "198.51.100.1"}, "src 198.51.100.1 is not an address of this host"),
])
def test_reconcile_routes_validates_host_before_any_write(spec, message):
    backend = FakeBackend()
    with pytest.raises(rt.RoutingError) as info:
        rt.reconcile_routes(backend, WANTED_ROUTES + [spec])
    assert message in str(info.value) and "nothing was changed" in str(info.value)
    assert backend.writes == []


def test_reconcile_routes_check_mode_still_fails_on_missing_dev_and_conflicts():
    backend = FakeBackend()
    with pytest.raises(rt.RoutingError, match="nosuch0 does not exist"):
        rt.reconcile_routes(backend, [{"dst": "10.1.5.0/24", "dev": "nosuch0"}], check_mode=True)
    backend = FakeBackend(routes=[route_msg("10.1.2.0/24", gateway="192.0.2.99", oif=2, proto=4)])
    with pytest.raises(rt.RoutingError, match="static"):
        rt.reconcile_routes(backend, WANTED_ROUTES, check_mode=True)
    assert backend.writes == []


def test_reconcile_routes_partial_failure_says_what_was_applied():
    backend = FakeBackend(routes=[route_msg("10.1.9.0/24", gateway="192.0.2.19", oif=2)])
    backend.fail_on[("add_route", "10.1.2.0/24 via 192.0.2.12 dev eth0 table main")] = errno.ENETUNREACH
    with pytest.raises(rt.RoutingError) as info:
        rt.reconcile_routes(backend, WANTED_ROUTES, purge=True)
    message = str(info.value)
    assert message.startswith("failed to add route 10.1.2.0/24 via 192.0.2.12 dev eth0 table main: [Errno %d]" % errno.ENETUNREACH)
    assert "onlink" in message  # the hint
    assert "Already applied: added 192.0.2.12/32 dev eth0 scope link table main." in message
    # Nothing was removed: removals come after all installs.
    assert ("delete_route", "10.1.9.0/24 via 192.0.2.19 dev eth0 table main") not in backend.writes


def test_reconcile_routes_delete_of_vanished_route_is_fine():
    backend = FakeBackend(routes=[route_msg("10.1.9.0/24", gateway="192.0.2.19", oif=2)])
    original_delete = backend.delete_route

    def delete_vanished(route, protocol, oif):
        original_delete(route, protocol, oif)
        raise rt.NetlinkFailure(errno.ESRCH, "No such process")  # someone else deleted it first

    backend.delete_route = delete_vanished
    result = rt.reconcile_routes(backend, [], purge=True, tables=["main"])
    assert result["removed"] == ["10.1.9.0/24 via 192.0.2.19 dev eth0 table main"]
    assert backend.routes == []


def test_reconcile_routes_verifies_the_kernel_afterwards():
    backend = FakeBackend()
    backend.add_route = lambda route, protocol, oif, replace=False: None  # a kernel that silently ignores us
    with pytest.raises(rt.RoutingError, match="kernel still differs .* 10.1.2.0/24 via 192.0.2.12"):
        rt.reconcile_routes(backend, WANTED_ROUTES)


def test_reconcile_routes_absent():
    backend = FakeBackend(routes=[route_msg("10.1.2.0/24", gateway="192.0.2.12", oif=2),
                                  route_msg("10.1.3.0/24", gateway="192.0.2.13", oif=2, proto=4)])
    result = rt.reconcile_routes(backend, [{"dst": "10.1.2.0/24"}, {"dst": "10.1.3.0/24"}], state="absent")
    assert result["removed"] == ["10.1.2.0/24 via 192.0.2.12 dev eth0 table main"]
    assert len(result["warnings"]) == 1
    assert len(backend.routes) == 1
    assert rt.reconcile_routes(backend, [{"dst": "10.1.2.0/24"}], state="absent")["changed"] is False


# ---------------------------------------------------------------------------
# Rules
# ---------------------------------------------------------------------------


def test_normalize_rule_fwmark_forms():
    base = {"priority": 9, "table": 2004}
    for spec in ({"fwmark": "0x200/0xf00"}, {"fwmark": "0x200", "fwmask": "0xf00"}, {"fwmark": 512, "fwmask": 3840}):
        rule = rt.normalize_rule(dict(base, **spec))
        assert (rule["fwmark"], rule["fwmask"], rule["table"]) == (0x200, 0xF00, 2004)
    assert rt.normalize_rule(dict(base, fwmark="0x10"))["fwmask"] == 0xFFFFFFFF
    assert rt.normalize_rule(dict(base, fwmark="0/0xf00"))["fwmark"] == 0
    rule = rt.normalize_rule({"priority": 100, "table": "main", "src": "10.1.1.0/24", "dst": "0.0.0.0/0", "iif": "eth0"})
    assert (rule["src"], rule["dst"], rule["iif"], rule["table"]) == ("10.1.1.0/24", None, "eth0", 254)


@pytest.mark.parametrize("spec,message", [
    ({"table": 5}, "priority is required"),
    ({"priority": 9}, "table is required with action to_tbl"),
    ({"priority": 9, "action": "blackhole", "table": 5}, "table only applies to action to_tbl"),
    ({"priority": 9, "table": 5, "fwmark": "0x200", "fwmask": "0x100"}, "can never match"),
    ({"priority": 9, "table": 5, "fwmark": "0x200/0xf00", "fwmask": "0xff00"}, "two different masks"),
    ({"priority": 9, "table": 5, "fwmask": "0xf00"}, "fwmask needs fwmark"),
    ({"priority": 9, "table": 5, "fwmark": 0}, "fwmark 0 needs an explicit fwmask"),
    ({"priority": 9, "table": 5, "fwmark": "0x200", "fwmask": 0}, "fwmask 0 matches every packet"),
    ({"priority": 9, "table": 5, "fwmark": "nope"}, "is not a number"),
    ({"priority": 9, "table": 5, "src": "10.1.1.1/24"}, "host bits"),
    ({"priority": 9, "action": "goto"}, "not one of"),
])
def test_normalize_rule_errors(spec, message):
    with pytest.raises(rt.RoutingError) as info:
        rt.normalize_rules([spec])
    assert message in str(info.value) and "rules[0]" in str(info.value)


def test_normalize_rules_duplicate_priority():
    with pytest.raises(rt.RoutingError, match=r"rules\[0\] and rules\[1\] both use priority 9"):
        rt.normalize_rules([{"priority": 9, "table": 5}, {"priority": 9, "table": 6}])
    assert len(rt.normalize_rules([{"priority": 9}, {"priority": 9}], state="absent")) == 1


def test_parse_rule_messages():
    rule = rt.parse_rule_msg(rule_msg(9, table=2004, fwmark=0x200, fwmask=0xF00, iif="eth0"))
    assert rule == {"priority": 9, "action": "to_tbl", "table": 2004, "fwmark": 0x200, "fwmask": 0xF00, "src": None,
                    "dst": None, "iif": "eth0", "oif": None, "invert": False, "tos": 0, "extras": {}, "protocol": P}
    assert rt.format_rule(rule) == "9: from all fwmark 0x200/0xf00 iif eth0 lookup 2004"
    # 'fwmark 0/0xf00' comes back as a mask alone; priority 0 has no FRA_PRIORITY.
    rule = rt.parse_rule_msg(rule_msg(0, table=5, fwmask=0xF00, src="10.0.0.0/8", proto=0))
    assert (rule["priority"], rule["fwmark"], rule["fwmask"], rule["src"], rule["protocol"]) == (0, 0, 0xF00, "10.0.0.0/8", 0)
    assert rt.format_rule(rule) == "0: from 10.0.0.0/8 fwmark 0x0/0xf00 lookup 5"
    # Unmanaged attributes are kept (and shown) so such a rule never equals a wanted one.
    rule = rt.parse_rule_msg(rule_msg(20, table=5, flags=rt.FIB_RULE_INVERT,
                                      extra=[("FRA_IP_PROTO", 6), ("FRA_DPORT_RANGE", {"start": 80, "end": 81})]))
    assert rule["invert"] is True and rule["extras"] == {"ipproto": 6, "dport": "80-81"}
    assert rt.format_rule(rule) == "20: not from all dport 80-81 ipproto 6 lookup 5"
    assert not rt.rule_matches(rt.normalize_rule({"priority": 20, "table": 5}), rule)
    # Other actions carry no table.
    rule = rt.parse_rule_msg(rule_msg(30, action=6))
    assert rule["table"] is None and rt.format_rule(rule) == "30: from all blackhole"


def test_plan_rules_add_replace_purge():
    current = [rt.parse_rule_msg(m) for m in kernel_default_rules() + [
        rule_msg(9, table=2004, fwmark=0x200, fwmask=0xF00),
        rule_msg(50, table=100),
        rule_msg(60, table=101, proto=4),
    ]]
    current.sort(key=lambda r: r["priority"])
    wanted = rt.normalize_rules([{"priority": 9, "table": 2005, "fwmark": "0x200/0xf00"}, {"priority": 10, "table": "main", "src": "10.1.1.0/24"}])
    plan = rt.plan_rules(wanted, current, purge=True, protocol=P)
    assert [(i["op"], rt.format_rule(i["route"])) for i in plan["install"]] == [
        ("replace", "9: from all fwmark 0x200/0xf00 lookup 2005"), ("add", "10: from 10.1.1.0/24 lookup main")]
    # The replaced rule is deleted (after the add), but reported as replaced, not removed.
    assert [rt.format_rule(r) for r in plan["remove"]] == ["9: from all fwmark 0x200/0xf00 lookup 2004", "50: from all lookup 100"]
    assert [rt.format_rule(r) for r in plan["remove_reported"]] == ["50: from all lookup 100"]
    assert [rt.format_rule(r) for r in plan["after"]] == ["9: from all fwmark 0x200/0xf00 lookup 2005", "10: from 10.1.1.0/24 lookup main"]


def test_plan_rules_conflict_with_kernel_default_rule():
    current = [rt.parse_rule_msg(m) for m in kernel_default_rules()]
    with pytest.raises(rt.RoutingError) as info:
        rt.plan_rules(rt.normalize_rules([{"priority": 32766, "table": 100}]), current, protocol=P)
    assert "priority 32766" in str(info.value) and "'32766: from all lookup main'" in str(info.value)
    assert "kernel (2)" in str(info.value)


def test_plan_rules_duplicates_keep_last_equal():
    current = [rt.parse_rule_msg(m) for m in [rule_msg(9, table=5), rule_msg(9, table=2004), rule_msg(9, table=2004)]]
    plan = rt.plan_rules(rt.normalize_rules([{"priority": 9, "table": 2004}]), current, protocol=P)
    assert plan["install"] == []
    assert [id(r) for r in plan["remove"]] == [id(current[0]), id(current[1])]


def test_reconcile_rules_check_mode_and_apply_order():
    backend = FakeBackend(rules=kernel_default_rules() + [rule_msg(9, table=2004, fwmark=0x200, fwmask=0xF00), rule_msg(50, table=100)])
    backend.rules.sort(key=lambda m: rt.parse_rule_msg(m)["priority"])
    wanted = [{"priority": 9, "fwmark": "0x200", "fwmask": "0xf00", "table": 2005}]
    check = rt.reconcile_rules(backend, wanted, purge=True, check_mode=True)
    assert backend.writes == []
    assert check["changed"] and check["replaced"] == ["9: from all fwmark 0x200/0xf00 lookup 2005"]
    assert check["removed"] == ["50: from all lookup 100"]
    assert check["diff"]["before"] == "9: from all fwmark 0x200/0xf00 lookup 2004\n50: from all lookup 100\n"
    assert check["diff"]["after"] == "9: from all fwmark 0x200/0xf00 lookup 2005\n"

    result = rt.reconcile_rules(backend, wanted, purge=True)
    # Make before break: the new rule exists before the old one goes.
    assert backend.writes == [("add_rule", "9: from all fwmark 0x200/0xf00 lookup 2005"),
                              ("delete_rule", "9: from all fwmark 0x200/0xf00 lookup 2004"),
                              ("delete_rule", "50: from all lookup 100")]
    assert {k: result[k] for k in ("changed", "added", "replaced", "removed")} == {k: check[k] for k in ("changed", "added", "replaced", "removed")}
    assert result["diff"] == check["diff"]
    backend.writes = []
    assert rt.reconcile_rules(backend, wanted, purge=True)["changed"] is False and backend.writes == []
    # The kernel's own rules were never touched.
    assert [rt.parse_rule_msg(m)["priority"] for m in backend.rules] == [0, 9, 32766, 32767]


def test_reconcile_rules_absent_and_failure_message():
    backend = FakeBackend(rules=kernel_default_rules() + [rule_msg(9, table=2004)])
    result = rt.reconcile_rules(backend, [{"priority": 9}, {"priority": 32766}], state="absent")
    assert result["removed"] == ["9: from all lookup 2004"]
    assert "32766: from all lookup main" in result["warnings"][0]
    backend = FakeBackend(rules=kernel_default_rules())
    backend.fail_on[("add_rule", "9: from all lookup 2004")] = errno.EPERM
    with pytest.raises(rt.RoutingError, match=r"failed to add rule '9: from all lookup 2004': .*CAP_NET_ADMIN.*Already applied: nothing"):
        rt.reconcile_rules(backend, [{"priority": 9, "table": 2004}])


# ---------------------------------------------------------------------------
# Netlink request encoding (pyroute2 message objects, nothing sent)
# ---------------------------------------------------------------------------


def _attrs(msg):
    return dict((a[0], a[1]) for a in msg["attrs"])


@pytest.mark.skipif(not rt.HAS_PYROUTE2, reason="pyroute2 not installed")
def test_route_request_encoding():
    route = rt.normalize_route({"dst": "0.0.0.0/0", "type": "local", "dev": "lo", "table": 2004})
    msg = rt.NetlinkBackend._route_msg(route, P, 1)
    assert (msg["table"], msg["proto"], msg["type"], msg["scope"], msg["dst_len"]) == (252, P, 2, 254, 0)
    assert _attrs(msg) == {"RTA_TABLE": 2004, "RTA_PRIORITY": 0, "RTA_OIF": 1}
    route = rt.normalize_route({"dst": "10.1.3.0/24", "gateway": "192.0.2.13", "dev": "eth0", "onlink": True})
    msg = rt.NetlinkBackend._route_msg(route, P, 2)
    assert msg["flags"] == rt.RTNH_F_ONLINK and msg["table"] == 254
    assert _attrs(msg)["RTA_DST"] == "10.1.3.0" and _attrs(msg)["RTA_GATEWAY"] == "192.0.2.13"
    msg.encode()  # pyroute2 accepts every field


@pytest.mark.skipif(not rt.HAS_PYROUTE2, reason="pyroute2 not installed")
def test_rule_request_encoding():
    rule = rt.normalize_rule({"priority": 0, "table": 2004, "fwmark": "0x200/0xf00", "src": "10.1.0.0/16"})
    msg = rt.NetlinkBackend._rule_msg(rule, P)
    attrs = _attrs(msg)
    # FRA_PRIORITY is sent even for 0, so the kernel neither picks nor wildcards it.
    assert attrs["FRA_PRIORITY"] == 0 and attrs["FRA_PROTOCOL"] == P and attrs["FRA_TABLE"] == 2004
    assert (attrs["FRA_FWMARK"], attrs["FRA_FWMASK"], attrs["FRA_SRC"], msg["src_len"], msg["table"]) == (0x200, 0xF00, "10.1.0.0", 16, 252)
    msg.encode()


def test_purge_leaves_routes_through_endpoint_interfaces_to_the_endpoint_module():
    links = dict(LINKS)
    links[7] = {"name": "lxc1234abcd", "up": True, "alias": "palisade:default/web"}
    links[8] = {"name": "tap0", "up": True, "alias": "palisade-adopted:default/vm"}
    backend = FakeBackend(routes=[
        route_msg("10.1.1.10/32", oif=7, scope=253),
        route_msg("10.1.1.11/32", oif=8, scope=253),
        route_msg("10.1.2.0/24", gateway="192.0.2.12", oif=2),
    ], links=links)
    result = rt.reconcile_routes(backend, [], purge=True, tables=["main"])
    assert result["removed"] == ["10.1.2.0/24 via 192.0.2.12 dev eth0 table main"]
    assert "lxc1234abcd" not in result["diff"]["before"]
    remaining = [rt.parse_route_msg(m, {7: "lxc1234abcd", 8: "tap0", 2: "eth0"})["dst"] for m in backend.routes]
    assert remaining == ["10.1.1.10/32", "10.1.1.11/32"]
