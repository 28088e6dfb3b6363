# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for _routing/names.py: name tables and rt_tables files."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.palisade.ebpf.plugins.module_utils._routing import names as nm
from ansible_collections.palisade.ebpf.plugins.module_utils._routing.errors import RoutingError


def test_parse_rt_tables_and_labels():
    names = nm.parse_rt_tables("# comment\n255\tlocal\n254 main  # trailing\n2004 l7proxy\nbogus line\n0x10 hex\n")
    assert names == {"local": 255, "main": 254, "l7proxy": 2004, "hex": 16}
    assert nm.parse_table("l7proxy", names) == 2004
    assert nm.parse_table("2004") == 2004
    assert nm.parse_table(100) == 100
    assert nm.table_label(254) == "main"
    assert nm.table_label(2004, names) == "l7proxy"
    assert nm.table_label(7) == "7"


@pytest.mark.parametrize("value", ["nosuch", 0, 252, 2 ** 32, True, None])
def test_parse_table_rejects(value):
    with pytest.raises(RoutingError):
        nm.parse_table(value, where="routes[0].table")


def test_protocol_names_both_ways():
    assert nm.protocol_name(4) == "static" and nm.protocol_name(201) == "201"
    assert nm.protocol_number("static") == 4 and nm.protocol_number(201) == 201
    assert nm.protocol_label(16) == "dhcp (16)" and nm.protocol_label(201) == "201"


def test_table_value_is_what_the_modules_take():
    assert nm.table_value(254) == "main"
    assert nm.table_value(2004) == 2004
    assert nm.table_value(2004, {"l7proxy": 2004}) == "l7proxy"


def test_scope_and_type_names():
    assert nm.scope_name(253) == "link" and nm.scope_name(0) == "universe" and nm.scope_name(7) == "7"
    assert nm.route_type_name(3) == "broadcast" and nm.route_type_code("broadcast") == 3
    assert nm.rule_action_name(1) == "to_tbl" and nm.rule_action_name(42) == "action-42"
