# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for _routing/ownership.py: which entries are the collection's."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.palisade.ebpf.plugins.module_utils._routing import ownership
from ansible_collections.palisade.ebpf.plugins.module_utils._routing.errors import RoutingError


@pytest.mark.parametrize("value", [0, 2, 4, 256, "x"])
def test_protocol_must_be_dedicated(value):
    with pytest.raises(RoutingError, match="protocol"):
        ownership.validate_protocol(value)
    assert ownership.validate_protocol(201) == 201


def test_routes_through_endpoint_interfaces_are_delegated():
    links = {2: {"name": "eth0", "alias": None}, 7: {"name": "lxc1234abcd", "alias": "palisade:default/web"},
             8: {"name": "tap0", "alias": "palisade-adopted:default/vm"}, 9: {"name": "veth9", "alias": "admin's"}}
    assert ownership.endpoint_interfaces(links) == {"lxc1234abcd", "tap0"}
    routes = [{"dev": "lxc1234abcd", "protocol": 201}, {"dev": "veth9", "protocol": 201}, {"dev": None, "protocol": 201}]
    ownership.mark_delegated(routes, links)
    assert [r["delegated"] for r in routes] == [True, False, False]
    assert [ownership.reported(r, 201) for r in routes] == [False, True, True]
    assert ownership.reported({"protocol": 4}, 201) is False
