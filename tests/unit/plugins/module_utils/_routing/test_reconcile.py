# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for _routing/reconcile.py: plan, apply, verify and the result, against a fake kernel."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno

import pytest

from ansible_collections.palisade.ebpf.plugins.module_utils._routing import reconcile as rc
from ansible_collections.palisade.ebpf.plugins.module_utils._routing import routes as rt
from ansible_collections.palisade.ebpf.plugins.module_utils._routing import rules as ru
from ansible_collections.palisade.ebpf.plugins.module_utils._routing.errors import NetlinkFailure, RoutingError
from tests.support.netlink_fakes import LINKS, P, FakeBackend, kernel_default_rules, parsed_routes, route_msg, rule_msg


def plan_routes(wanted, current, state="present", purge=False, protocol=P, tables=(), table_names=None):
    """The route plan over every parsed route of the kernel: the scope is the
    tables of the wanted routes plus ``tables`` (as reconcile_routes scopes it)."""
    kind = rc.RouteKind(table_names, set(tables or ()) | set(r["table"] for r in wanted))
    return rc.plan(kind, wanted, [r for r in current if kind.in_scope(r)], state, purge, protocol)


def plan_rules(wanted, current, state="present", purge=False, protocol=P, table_names=None):
    return rc.plan(rc.RuleKind(table_names), wanted, current, state, purge, protocol)


def want(*specs, **kw):
    return rt.normalize_routes(list(specs), kw.get("state", "present"))


def labels(routes):
    return [rt.format_route(r) for r in routes]


def test_plan_add_into_empty_table_orders_link_routes_first():
    wanted = want({"dst": "10.1.2.0/24", "gateway": "192.0.2.12", "dev": "eth0"}, {"dst": "192.0.2.12", "dev": "eth0"})
    plan = plan_routes(wanted, [], protocol=P)
    assert [(i.op, rt.format_route(i.entry)) for i in plan.install] == [
        ("add", "192.0.2.12/32 dev eth0 scope link table main"),
        ("add", "10.1.2.0/24 via 192.0.2.12 dev eth0 table main"),
    ]
    assert plan.remove == [] and plan.before == []
    assert labels(plan.after) == ["10.1.2.0/24 via 192.0.2.12 dev eth0 table main", "192.0.2.12/32 dev eth0 scope link table main"]


def test_plan_noop_when_in_place():
    current = parsed_routes(route_msg("10.1.2.0/24", gateway="192.0.2.12", oif=2))
    plan = plan_routes(want({"dst": "10.1.2.0/24", "gateway": "192.0.2.12", "dev": "eth0"}), current, protocol=P)
    assert plan.install == [] and plan.remove == []
    assert plan.before == plan.after


def test_plan_replace_changed_attributes():
    current = parsed_routes(route_msg("10.1.2.0/24", gateway="192.0.2.12", oif=2))
    plan = plan_routes(want({"dst": "10.1.2.0/24", "gateway": "192.0.2.13", "dev": "eth0"}), current, protocol=P)
    assert [(i.op, rt.format_route(i.entry), rt.format_route(i.old)) for i in plan.install] == [
        ("replace", "10.1.2.0/24 via 192.0.2.13 dev eth0 table main", "10.1.2.0/24 via 192.0.2.12 dev eth0 table main")]
    assert plan.remove == []
    assert labels(plan.before) == ["10.1.2.0/24 via 192.0.2.12 dev eth0 table main"]
    assert labels(plan.after) == ["10.1.2.0/24 via 192.0.2.13 dev eth0 table main"]


def test_plan_metric_is_identity_not_attribute():
    current = parsed_routes(route_msg("10.1.2.0/24", gateway="192.0.2.12", oif=2, metric=10))
    plan = plan_routes(want({"dst": "10.1.2.0/24", "gateway": "192.0.2.12", "dev": "eth0"}), current, protocol=P, purge=True)
    assert [i.op for i in plan.install] == ["add"]
    assert labels(plan.remove) == ["10.1.2.0/24 via 192.0.2.12 dev eth0 metric 10 table main"]


def test_plan_foreign_route_with_same_key_is_a_conflict():
    current = parsed_routes(route_msg("10.1.2.0/24", gateway="192.0.2.99", oif=2, proto=4))
    with pytest.raises(RoutingError) as info:
        plan_routes(want({"dst": "10.1.2.0/24", "gateway": "192.0.2.12", "dev": "eth0"}), current, protocol=P)
    message = str(info.value)
    assert "nothing was changed" in message
    assert "10.1.2.0/24 via 192.0.2.99 dev eth0 table main" in message
    assert "static (4)" in message and "protocol 201" in message


def test_plan_conflicts_are_all_reported_at_once():
    current = parsed_routes(route_msg("10.1.2.0/24", oif=2, proto=4, scope=253), route_msg("10.1.3.0/24", oif=2, proto=16, scope=253))
    with pytest.raises(RoutingError) as info:
        plan_routes(want({"dst": "10.1.2.0/24", "dev": "eth0"}, {"dst": "10.1.3.0/24", "dev": "eth0"}), current, protocol=P)
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
    plan = plan_routes(wanted, current, purge=True, protocol=P)
    assert plan.install == []
    assert labels(plan.remove) == ["10.1.9.0/24 via 192.0.2.19 dev eth0 table main"]
    # Without purge the stale route stays.
    assert plan_routes(wanted, current, purge=False, protocol=P).remove == []
    # 'tables' widens the scope.
    plan = plan_routes(wanted, current, purge=True, protocol=P, tables=[100])
    assert labels(plan.remove) == ["10.1.9.0/24 via 192.0.2.19 dev eth0 table main", "10.1.8.0/24 via 192.0.2.18 dev eth0 table 100"]


def test_plan_purge_with_empty_list_and_tables():
    current = parsed_routes(route_msg("0.0.0.0/0", table=2004, rtype=2, scope=254, oif=1),
                            route_msg("10.1.9.0/24", gateway="192.0.2.19", oif=2))
    plan = plan_routes([], current, purge=True, protocol=P, tables=[2004])
    assert labels(plan.remove) == ["local default dev lo scope host table 2004"]
    assert plan_routes([], current, purge=True, protocol=P).remove == []  # no table in scope


def test_plan_absent_removes_owned_and_warns_on_foreign():
    current = parsed_routes(route_msg("10.1.2.0/24", gateway="192.0.2.12", oif=2),
                            route_msg("10.1.3.0/24", gateway="192.0.2.13", oif=2, proto=4))
    plan = plan_routes(want({"dst": "10.1.2.0/24"}, {"dst": "10.1.3.0/24"}, {"dst": "10.1.4.0/24"}, state="absent"),
                       current, state="absent", protocol=P)
    assert labels(plan.remove) == ["10.1.2.0/24 via 192.0.2.12 dev eth0 table main"]
    assert plan.install == []
    assert len(plan.warnings) == 1 and "10.1.3.0/24" in plan.warnings[0] and "static (4)" in plan.warnings[0]


def test_plan_owned_duplicates_under_one_key():
    current = parsed_routes(route_msg("10.1.2.0/24", gateway="192.0.2.12", oif=2),
                            route_msg("10.1.2.0/24", gateway="192.0.2.13", oif=2))
    plan = plan_routes(want({"dst": "10.1.2.0/24", "gateway": "192.0.2.13", "dev": "eth0"}), current, protocol=P)
    assert plan.install == []
    assert labels(plan.remove) == ["10.1.2.0/24 via 192.0.2.12 dev eth0 table main"]
    plan = plan_routes(want({"dst": "10.1.2.0/24", "gateway": "192.0.2.14", "dev": "eth0"}), current, protocol=P)
    assert [i.op for i in plan.install] == ["replace"]
    assert labels(plan.remove) == ["10.1.2.0/24 via 192.0.2.13 dev eth0 table main"]


WANTED_ROUTES = [
    {"dst": "10.1.2.0/24", "gateway": "192.0.2.12", "dev": "eth0"},
    {"dst": "192.0.2.12", "dev": "eth0"},
]


def test_reconcile_routes_check_mode_writes_nothing():
    backend = FakeBackend(routes=[route_msg("10.1.9.0/24", gateway="192.0.2.19", oif=2)])
    before = list(backend.routes)
    result = rc.reconcile_routes(backend, WANTED_ROUTES, purge=True, check_mode=True)
    assert backend.writes == [] and backend.routes == before
    assert result["changed"] is True
    assert result["changes"] == ["+ 192.0.2.12/32 dev eth0 scope link table main",
                                 "+ 10.1.2.0/24 via 192.0.2.12 dev eth0 table main",
                                 "- 10.1.9.0/24 via 192.0.2.19 dev eth0 table main"]
    # before/after are routes as the module takes them, predicted in check mode.
    assert result["before"] == [{"dst": "10.1.9.0/24", "gateway": "192.0.2.19", "dev": "eth0", "table": "main",
                                 "type": "unicast", "scope": "universe", "metric": 0, "onlink": False}]
    assert [r["dst"] for r in result["after"]] == ["10.1.2.0/24", "192.0.2.12/32"]
    assert result["diff"]["before"] == "10.1.9.0/24 via 192.0.2.19 dev eth0 table main\n"
    assert result["diff"]["after"] == ("10.1.2.0/24 via 192.0.2.12 dev eth0 table main\n"
                                       "192.0.2.12/32 dev eth0 scope link table main\n")
    assert result["diff"]["before_header"] == "owned routes (protocol 201) in table main"


def test_reconcile_routes_applies_installs_before_removals_then_is_idempotent():
    backend = FakeBackend(routes=[route_msg("10.1.9.0/24", gateway="192.0.2.19", oif=2),
                                  route_msg("10.1.3.0/24", gateway="192.0.2.12", oif=2)])
    wanted = WANTED_ROUTES + [{"dst": "10.1.3.0/24", "gateway": "192.0.2.13", "dev": "eth0", "onlink": True}]
    result = rc.reconcile_routes(backend, wanted, purge=True)
    assert backend.writes == [
        ("add_route", "192.0.2.12/32 dev eth0 scope link table main"),
        ("add_route", "10.1.2.0/24 via 192.0.2.12 dev eth0 table main"),
        ("replace_route", "10.1.3.0/24 via 192.0.2.13 dev eth0 onlink table main"),
        ("delete_route", "10.1.9.0/24 via 192.0.2.19 dev eth0 table main"),
    ]
    assert result["changed"] and result["changes"] == [
        "+ 192.0.2.12/32 dev eth0 scope link table main",
        "+ 10.1.2.0/24 via 192.0.2.12 dev eth0 table main",
        "~ 10.1.3.0/24 via 192.0.2.13 dev eth0 onlink table main",
        "- 10.1.9.0/24 via 192.0.2.19 dev eth0 table main",
    ]
    assert "10.1.9.0/24" not in result["diff"]["after"]
    backend.writes = []
    again = rc.reconcile_routes(backend, wanted, purge=True)
    assert again["changed"] is False and backend.writes == []
    assert again["changes"] == []
    assert again["before"] == again["after"] == result["after"]
    assert again["diff"]["before"] == again["diff"]["after"] == result["diff"]["after"]


@pytest.mark.parametrize("spec,message", [
    ({"dst": "10.1.5.0/24", "dev": "nosuch0"}, "interface nosuch0 does not exist"),
    ({"dst": "10.1.5.0/24", "dev": "eth1"}, "interface eth1 is down"),
    ({"dst": "10.1.5.0/24", "dev": "eth0", "src": "198.51.100.1"}, "src 198.51.100.1 is not an address of this host"),
])
def test_reconcile_routes_validates_host_before_any_write(spec, message):
    backend = FakeBackend()
    with pytest.raises(RoutingError) as info:
        rc.reconcile_routes(backend, WANTED_ROUTES + [spec])
    assert message in str(info.value) and "nothing was changed" in str(info.value)
    assert backend.writes == []


def test_reconcile_routes_check_mode_still_fails_on_missing_dev_and_conflicts():
    backend = FakeBackend()
    with pytest.raises(RoutingError, match="nosuch0 does not exist"):
        rc.reconcile_routes(backend, [{"dst": "10.1.5.0/24", "dev": "nosuch0"}], check_mode=True)
    backend = FakeBackend(routes=[route_msg("10.1.2.0/24", gateway="192.0.2.99", oif=2, proto=4)])
    with pytest.raises(RoutingError, match="static"):
        rc.reconcile_routes(backend, WANTED_ROUTES, check_mode=True)
    assert backend.writes == []


def test_reconcile_routes_partial_failure_says_what_was_applied():
    backend = FakeBackend(routes=[route_msg("10.1.9.0/24", gateway="192.0.2.19", oif=2)])
    backend.fail_on[("add_route", "10.1.2.0/24 via 192.0.2.12 dev eth0 table main")] = errno.ENETUNREACH
    with pytest.raises(RoutingError) as info:
        rc.reconcile_routes(backend, WANTED_ROUTES, purge=True)
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
        raise NetlinkFailure(errno.ESRCH, "No such process")  # someone else deleted it first

    backend.delete_route = delete_vanished
    result = rc.reconcile_routes(backend, [], purge=True, tables=["main"])
    assert result["changes"] == ["- 10.1.9.0/24 via 192.0.2.19 dev eth0 table main"]
    assert backend.routes == []


def test_reconcile_routes_verifies_the_kernel_afterwards():
    backend = FakeBackend()
    backend.add_route = lambda route, protocol, oif, replace=False: None  # a kernel that silently ignores us
    with pytest.raises(RoutingError, match="kernel still differs .* 10.1.2.0/24 via 192.0.2.12"):
        rc.reconcile_routes(backend, WANTED_ROUTES)


def test_reconcile_routes_absent():
    backend = FakeBackend(routes=[route_msg("10.1.2.0/24", gateway="192.0.2.12", oif=2),
                                  route_msg("10.1.3.0/24", gateway="192.0.2.13", oif=2, proto=4)])
    result = rc.reconcile_routes(backend, [{"dst": "10.1.2.0/24"}, {"dst": "10.1.3.0/24"}], state="absent")
    assert result["changes"] == ["- 10.1.2.0/24 via 192.0.2.12 dev eth0 table main"]
    assert len(result["warnings"]) == 1
    assert len(backend.routes) == 1
    assert rc.reconcile_routes(backend, [{"dst": "10.1.2.0/24"}], state="absent")["changed"] is False


def test_purge_leaves_routes_through_endpoint_interfaces_to_the_endpoint_module():
    links = dict(LINKS)
    links[7] = {"name": "lxc1234abcd", "up": True, "alias": "palisade:default/web"}
    links[8] = {"name": "tap0", "up": True, "alias": "palisade-adopted:default/vm"}
    backend = FakeBackend(routes=[
        route_msg("10.1.1.10/32", oif=7, scope=253),
        route_msg("10.1.1.11/32", oif=8, scope=253),
        route_msg("10.1.2.0/24", gateway="192.0.2.12", oif=2),
    ], links=links)
    result = rc.reconcile_routes(backend, [], purge=True, tables=["main"])
    assert result["changes"] == ["- 10.1.2.0/24 via 192.0.2.12 dev eth0 table main"]
    assert "lxc1234abcd" not in result["diff"]["before"]
    assert [r["dst"] for r in result["before"]] == ["10.1.2.0/24"]
    remaining = [rt.parse_route_msg(m, {7: "lxc1234abcd", 8: "tap0", 2: "eth0"})["dst"] for m in backend.routes]
    assert remaining == ["10.1.1.10/32", "10.1.1.11/32"]


def test_plan_rules_add_replace_purge():
    current = [ru.parse_rule_msg(m) for m in kernel_default_rules() + [
        rule_msg(9, table=2004, fwmark=0x200, fwmask=0xF00),
        rule_msg(50, table=100),
        rule_msg(60, table=101, proto=4),
    ]]
    current.sort(key=lambda r: r["priority"])
    wanted = ru.normalize_rules([{"priority": 9, "table": 2005, "fwmark": "0x200/0xf00"}, {"priority": 10, "table": "main", "src": "10.1.1.0/24"}])
    plan = plan_rules(wanted, current, purge=True, protocol=P)
    assert [(i.op, ru.format_rule(i.entry)) for i in plan.install] == [
        ("replace", "9: from all fwmark 0x200/0xf00 lookup 2005"), ("add", "10: from 10.1.1.0/24 lookup main")]
    # No in-place replace for rules: the old rule is deleted after the add.
    assert [ru.format_rule(r) for r in plan.remove] == ["9: from all fwmark 0x200/0xf00 lookup 2004", "50: from all lookup 100"]
    assert [ru.format_rule(r) for r in plan.after] == ["9: from all fwmark 0x200/0xf00 lookup 2005", "10: from 10.1.1.0/24 lookup main"]


def test_plan_rules_conflict_with_kernel_default_rule():
    current = [ru.parse_rule_msg(m) for m in kernel_default_rules()]
    with pytest.raises(RoutingError) as info:
        plan_rules(ru.normalize_rules([{"priority": 32766, "table": 100}]), current, protocol=P)
    assert "priority 32766" in str(info.value) and "'32766: from all lookup main'" in str(info.value)
    assert "kernel (2)" in str(info.value)


def test_plan_rules_duplicates_keep_last_equal():
    current = [ru.parse_rule_msg(m) for m in [rule_msg(9, table=5), rule_msg(9, table=2004), rule_msg(9, table=2004)]]
    plan = plan_rules(ru.normalize_rules([{"priority": 9, "table": 2004}]), current, protocol=P)
    assert plan.install == []
    assert [id(r) for r in plan.remove] == [id(current[0]), id(current[1])]


def test_reconcile_rules_check_mode_and_apply_order():
    backend = FakeBackend(rules=kernel_default_rules() + [rule_msg(9, table=2004, fwmark=0x200, fwmask=0xF00), rule_msg(50, table=100)])
    backend.rules.sort(key=lambda m: ru.parse_rule_msg(m)["priority"])
    wanted = [{"priority": 9, "fwmark": "0x200", "fwmask": "0xf00", "table": 2005}]
    check = rc.reconcile_rules(backend, wanted, purge=True, check_mode=True)
    assert backend.writes == []
    assert check["changed"] and check["changes"] == ["+ 9: from all fwmark 0x200/0xf00 lookup 2005",
                                                     "- 9: from all fwmark 0x200/0xf00 lookup 2004",
                                                     "- 50: from all lookup 100"]
    assert check["before"] == [{"priority": 9, "action": "to_tbl", "table": 2004, "fwmark": "0x200", "fwmask": "0xf00"},
                               {"priority": 50, "action": "to_tbl", "table": 100}]
    assert check["after"] == [{"priority": 9, "action": "to_tbl", "table": 2005, "fwmark": "0x200", "fwmask": "0xf00"}]
    assert check["diff"]["before"] == "9: from all fwmark 0x200/0xf00 lookup 2004\n50: from all lookup 100\n"
    assert check["diff"]["after"] == "9: from all fwmark 0x200/0xf00 lookup 2005\n"

    result = rc.reconcile_rules(backend, wanted, purge=True)
    # Make before break: the new rule exists before the old one goes.
    assert backend.writes == [("add_rule", "9: from all fwmark 0x200/0xf00 lookup 2005"),
                              ("delete_rule", "9: from all fwmark 0x200/0xf00 lookup 2004"),
                              ("delete_rule", "50: from all lookup 100")]
    assert {k: result[k] for k in ("changed", "changes", "before", "after")} == {k: check[k] for k in ("changed", "changes", "before", "after")}
    assert result["diff"] == check["diff"]
    backend.writes = []
    assert rc.reconcile_rules(backend, wanted, purge=True)["changed"] is False and backend.writes == []
    # The kernel's own rules were never touched.
    assert [ru.parse_rule_msg(m)["priority"] for m in backend.rules] == [0, 9, 32766, 32767]


def test_reconcile_rules_absent_and_failure_message():
    backend = FakeBackend(rules=kernel_default_rules() + [rule_msg(9, table=2004)])
    result = rc.reconcile_rules(backend, [{"priority": 9}, {"priority": 32766}], state="absent")
    assert result["changes"] == ["- 9: from all lookup 2004"]
    assert "32766: from all lookup main" in result["warnings"][0]
    backend = FakeBackend(rules=kernel_default_rules())
    backend.fail_on[("add_rule", "9: from all lookup 2004")] = errno.EPERM
    with pytest.raises(RoutingError, match=r"failed to add rule '9: from all lookup 2004': .*CAP_NET_ADMIN.*Already applied: nothing"):
        rc.reconcile_rules(backend, [{"priority": 9, "table": 2004}])


# ---------------------------------------------------------------------------
# state: gathered
# ---------------------------------------------------------------------------


def test_gathered_routes_are_owned_entries_in_input_schema_and_nothing_is_written():
    links = dict(LINKS)
    links[7] = {"name": "lxc1234abcd", "up": True, "alias": "palisade:default/web"}
    backend = FakeBackend(routes=[
        route_msg("10.1.1.10/32", oif=7, scope=253),  # the endpoint module's
        route_msg("10.1.2.0/24", gateway="192.0.2.12", oif=2),
        route_msg("10.5.0.0/16", gateway="192.0.2.1", oif=2, proto=4),  # the administrator's
        route_msg("0.0.0.0/0", table=2004, rtype=2, scope=254, oif=1),
    ], links=links)
    result = rc.reconcile_routes(backend, None, state="gathered")
    assert result == {"changed": False, "gathered": [
        {"dst": "10.1.2.0/24", "gateway": "192.0.2.12", "dev": "eth0", "table": "main", "type": "unicast",
         "scope": "universe", "metric": 0, "onlink": False},
        {"dst": "0.0.0.0/0", "dev": "lo", "table": 2004, "type": "local", "scope": "host", "metric": 0, "onlink": False},
    ]}
    assert backend.writes == []
    only_2004 = rc.reconcile_routes(backend, [], state="gathered", tables=[2004])["gathered"]
    assert [r["table"] for r in only_2004] == [2004]
    # What gathered returns is what the module takes: feeding it back changes nothing.
    again = rc.reconcile_routes(backend, result["gathered"])
    assert again["changed"] is False and backend.writes == []


def test_gathered_rules_and_refusal_of_wanted_entries():
    backend = FakeBackend(rules=kernel_default_rules() + [rule_msg(9, table=2004, fwmark=0x200, fwmask=0xF00)])
    result = rc.reconcile_rules(backend, [], state="gathered")
    assert result == {"changed": False,
                      "gathered": [{"priority": 9, "action": "to_tbl", "table": 2004, "fwmark": "0x200", "fwmask": "0xf00"}]}
    assert rc.reconcile_rules(backend, result["gathered"])["changed"] is False and backend.writes == []
    with pytest.raises(RoutingError, match="state=gathered only reads the owned rules"):
        rc.reconcile_rules(backend, [{"priority": 9}], state="gathered")
    with pytest.raises(RoutingError, match="state=gathered only reads the owned routes"):
        rc.reconcile_routes(backend, [], state="gathered", purge=True)


# ---------------------------------------------------------------------------
# The skeleton itself, with a kind that is neither routes nor rules
# ---------------------------------------------------------------------------


class ToyKind(object):
    """Entries {'name', 'value', 'protocol'} identified by name; no in-place replace."""

    noun = "toy"
    nouns = "toys"
    replaces_in_place = False
    gone_errno = errno.ENOENT
    hints = {errno.EPERM: "needs root"}

    def key(self, entry):
        return entry["name"]

    def matches(self, want, have):
        return want["value"] == have["value"]

    keep = staticmethod(lambda matching: matching[0])

    def install_order(self, item):
        return 0

    def format(self, entry):
        return "%s=%s" % (entry["name"], entry["value"])

    def label(self, entry):
        return self.format(entry)

    def sort_key(self, entry):
        return entry["name"]

    def entry(self, entry):
        return {"name": entry["name"], "value": entry["value"]}

    def read(self, backend):
        return [dict(e) for e in backend.entries]

    def install(self, backend, item, protocol):
        backend.write("add", dict(item.entry, protocol=protocol))

    def remove(self, backend, entry, protocol):
        backend.write("delete", entry)

    install_verb = staticmethod(lambda op: "add toy")
    delete_verb = "delete toy"

    def conflict(self, want, other, protocol):
        return "%s is someone else's" % other["name"]

    def left_alone(self, entry, protocol):
        return "left %s alone" % entry["name"]

    def header(self, protocol):
        return "owned toys (protocol %d)" % protocol


class ToyBackend(object):
    def __init__(self, *entries):
        self.entries = list(entries)
        self.writes = []
        self.refuse = {}   # (op, name) -> errno
        self.ignore_adds = False

    def write(self, op, entry):
        self.writes.append((op, entry["name"], entry["value"]))
        code = self.refuse.get((op, entry["name"]))
        if code:
            raise NetlinkFailure(code, "refused")
        if op == "add" and not self.ignore_adds:
            self.entries.append(entry)
        elif op == "delete":
            self.entries = [e for e in self.entries if e != entry]


def toy(name, value, protocol=P):
    return {"name": name, "value": value, "protocol": protocol}


def test_skeleton_makes_before_it_breaks_and_reports_the_writes():
    backend = ToyBackend(toy("a", 1), toy("b", 1), toy("c", 1))
    result = rc.reconcile(ToyKind(), backend, [toy("a", 2, None), toy("b", 1, None), toy("d", 1, None)], purge=True, protocol=P)
    # Every add before any delete: the old 'a' goes only once the new one is there.
    assert backend.writes == [("add", "a", 2), ("add", "d", 1), ("delete", "a", 1), ("delete", "c", 1)]
    assert result["changes"] == ["+ a=2", "+ d=1", "- a=1", "- c=1"]
    assert result["before"] == [{"name": "a", "value": 1}, {"name": "b", "value": 1}, {"name": "c", "value": 1}]
    assert result["after"] == [{"name": "a", "value": 2}, {"name": "b", "value": 1}, {"name": "d", "value": 1}]
    assert result["diff"]["after"] == "a=2\nb=1\nd=1\n" and result["diff"]["before_header"] == "owned toys (protocol 201)"


def test_skeleton_conflicts_fail_before_any_write_even_with_other_work_to_do():
    backend = ToyBackend(toy("a", 1, protocol=4), toy("stale", 1))
    with pytest.raises(RoutingError, match="toy conflict, nothing was changed:\n  a is someone else's"):
        rc.reconcile(ToyKind(), backend, [toy("new", 1, None), toy("a", 2, None)], purge=True, protocol=P)
    assert backend.writes == []


def test_skeleton_verifies_after_apply():
    backend = ToyBackend()
    backend.ignore_adds = True  # a kernel that acknowledges and forgets
    with pytest.raises(RoutingError, match=r"toys were written but the kernel still differs .*: a=1 "):
        rc.reconcile(ToyKind(), backend, [toy("a", 1, None)], protocol=P)


def test_skeleton_failure_names_what_was_already_applied_and_stops():
    backend = ToyBackend(toy("old", 1))
    backend.refuse[("add", "b")] = errno.EPERM
    with pytest.raises(RoutingError) as info:
        rc.reconcile(ToyKind(), backend, [toy("a", 1, None), toy("b", 1, None)], purge=True, protocol=P)
    assert str(info.value) == ("failed to add toy b=1: [Errno %d] refused (needs root). Already applied: added a=1. "
                               "The next run picks up from the kernel's state." % errno.EPERM)
    assert ("delete", "old", 1) not in backend.writes


def test_skeleton_check_mode_predicts_without_writing():
    backend = ToyBackend(toy("a", 1))
    result = rc.reconcile(ToyKind(), backend, [toy("a", 2, None)], protocol=P, check_mode=True)
    assert backend.writes == [] and result["changed"] is True
    assert result["changes"] == ["+ a=2", "- a=1"] and result["after"] == [{"name": "a", "value": 2}]
