# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for _routing/rules.py: the rule normal form, no kernel."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.palisade.ebpf.plugins.module_utils._routing import rules as ru
from ansible_collections.palisade.ebpf.plugins.module_utils._routing.errors import RoutingError
from tests.support.netlink_fakes import P, rule_msg


def test_normalize_rule_fwmark_forms():
    base = {"priority": 9, "table": 2004}
    for spec in ({"fwmark": "0x200/0xf00"}, {"fwmark": "0x200", "fwmask": "0xf00"}, {"fwmark": 512, "fwmask": 3840}):
        rule = ru.normalize_rule(dict(base, **spec))
        assert (rule["fwmark"], rule["fwmask"], rule["table"]) == (0x200, 0xF00, 2004)
    assert ru.normalize_rule(dict(base, fwmark="0x10"))["fwmask"] == 0xFFFFFFFF
    assert ru.normalize_rule(dict(base, fwmark="0/0xf00"))["fwmark"] == 0
    rule = ru.normalize_rule({"priority": 100, "table": "main", "src": "10.1.1.0/24", "dst": "0.0.0.0/0", "iif": "eth0"})
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
    with pytest.raises(RoutingError) as info:
        ru.normalize_rules([spec])
    assert message in str(info.value) and "rules[0]" in str(info.value)


def test_normalize_rules_duplicate_priority():
    with pytest.raises(RoutingError, match=r"rules\[0\] and rules\[1\] both use priority 9"):
        ru.normalize_rules([{"priority": 9, "table": 5}, {"priority": 9, "table": 6}])
    assert len(ru.normalize_rules([{"priority": 9}, {"priority": 9}], state="absent")) == 1


def test_parse_rule_messages():
    rule = ru.parse_rule_msg(rule_msg(9, table=2004, fwmark=0x200, fwmask=0xF00, iif="eth0"))
    assert rule == {"priority": 9, "action": "to_tbl", "table": 2004, "fwmark": 0x200, "fwmask": 0xF00, "src": None,
                    "dst": None, "iif": "eth0", "oif": None, "invert": False, "tos": 0, "extras": {}, "protocol": P}
    assert ru.format_rule(rule) == "9: from all fwmark 0x200/0xf00 iif eth0 lookup 2004"
    # 'fwmark 0/0xf00' comes back as a mask alone; priority 0 has no FRA_PRIORITY.
    rule = ru.parse_rule_msg(rule_msg(0, table=5, fwmask=0xF00, src="10.0.0.0/8", proto=0))
    assert (rule["priority"], rule["fwmark"], rule["fwmask"], rule["src"], rule["protocol"]) == (0, 0, 0xF00, "10.0.0.0/8", 0)
    assert ru.format_rule(rule) == "0: from 10.0.0.0/8 fwmark 0x0/0xf00 lookup 5"
    # Unmanaged attributes are kept (and shown) so such a rule never equals a wanted one.
    rule = ru.parse_rule_msg(rule_msg(20, table=5, flags=ru.FIB_RULE_INVERT,
                                      extra=[("FRA_IP_PROTO", 6), ("FRA_DPORT_RANGE", {"start": 80, "end": 81})]))
    assert rule["invert"] is True and rule["extras"] == {"ipproto": 6, "dport": "80-81"}
    assert ru.format_rule(rule) == "20: not from all dport 80-81 ipproto 6 lookup 5"
    assert not ru.rule_matches(ru.normalize_rule({"priority": 20, "table": 5}), rule)
    # Other actions carry no table.
    rule = ru.parse_rule_msg(rule_msg(30, action=6))
    assert rule["table"] is None and ru.format_rule(rule) == "30: from all blackhole"


@pytest.mark.parametrize("spec", [
    {"priority": 9, "fwmark": "0x200", "fwmask": "0xf00", "table": 2004},
    {"priority": 100, "src": "10.1.1.0/24", "iif": "eth0", "table": "main"},
    {"priority": 30, "action": "blackhole", "dst": "10.9.0.0/16", "oif": "eth1"},
    {"priority": 0, "fwmark": "0/0xf00", "table": 5},
])
def test_rule_entry_is_the_input_schema_and_round_trips(spec):
    rule = ru.normalize_rule(spec)
    entry = ru.rule_entry(rule)
    assert set(entry) <= set(ru.RULE_OPTIONS)
    assert ru.normalize_rule(entry) == rule


def test_rule_entry_keeps_what_the_module_cannot_set():
    rule = ru.parse_rule_msg(rule_msg(20, table=5, flags=ru.FIB_RULE_INVERT, extra=[("FRA_IP_PROTO", 6)]))
    assert ru.rule_entry(rule) == {"priority": 20, "action": "to_tbl", "table": 5, "invert": True, "extras": {"ipproto": 6}}
