# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for _routing/routes.py: the route normal form, no kernel."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.palisade.ebpf.plugins.module_utils._routing import routes as rt
from ansible_collections.palisade.ebpf.plugins.module_utils._routing.errors import RoutingError
from tests.support.netlink_fakes import IFNAMES, P, route_msg


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
    with pytest.raises(RoutingError) as info:
        rt.normalize_routes([{"dst": "10.9.9.0/24", "dev": "eth0"}, spec])
    assert "routes[1]" in str(info.value)
    assert message in str(info.value)


def test_normalize_duplicate_identity():
    specs = [{"dst": "10.1.2.0/24", "dev": "eth0"}, {"dst": "10.1.2.0/24", "gateway": "192.0.2.1"}]
    with pytest.raises(RoutingError, match=r"routes\[0\] and routes\[1\] both define 10.1.2.0/24 table main"):
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


@pytest.mark.parametrize("spec", [
    {"dst": "10.1.2.0/24", "gateway": "192.0.2.12", "dev": "eth0"},
    {"dst": "192.0.2.12", "dev": "eth0"},
    {"dst": "0.0.0.0/0", "type": "local", "dev": "lo", "table": 2004},
    {"dst": "10.1.3.0/24", "gateway": "192.0.2.13", "dev": "eth0", "onlink": True, "metric": 20, "src": "192.0.2.11"},
    {"dst": "10.9.0.0/16", "type": "blackhole", "table": "local"},
])
def test_route_entry_is_the_input_schema_and_round_trips(spec):
    route = rt.normalize_route(spec)
    entry = rt.route_entry(route)
    assert set(entry) <= set(rt.ROUTE_OPTIONS)
    assert rt.normalize_route(entry) == route


def test_route_entry_keeps_what_the_module_cannot_set():
    hops = [{"flags": 0, "hops": 0, "oif": 2, "attrs": [("RTA_GATEWAY", "192.0.2.5")]}]
    route = rt.parse_route_msg(route_msg("10.9.7.0/24", multipath=hops, tos=0x10), IFNAMES)
    entry = rt.route_entry(route)
    assert entry["tos"] == 0x10 and entry["multipath"] == [{"gateway": "192.0.2.5", "dev": "eth0", "weight": 1}]
