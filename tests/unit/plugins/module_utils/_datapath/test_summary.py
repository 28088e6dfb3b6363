# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The datapath module's before/after summary (module_utils/_datapath/summary.py)."""

from __future__ import absolute_import, division, print_function

from ansible_collections.palisade.ebpf.plugins.module_utils._datapath import summary, tc

DIGEST = "3f1c9a0d2b7e4c11"


def test_only_the_collections_filters_count_as_attached():
    filters = {
        7: {"ingress": {"name": tc.filter_name("from_endpoint", DIGEST), "prog_id": 11, "owned": True},
            "egress": {"name": tc.filter_name("to_endpoint", DIGEST), "prog_id": 12, "owned": True}},
        9: {"ingress": {"name": "someone-else", "prog_id": 13, "owned": False}},
        12: {"ingress": {"name": tc.filter_name("from_network", DIGEST), "prog_id": 14, "owned": True}},
    }
    attached = summary.attached_from_filters(filters, {7: "lxc1", 9: "eth9"})
    assert attached == {
        "lxc1": {"ingress": "from_endpoint:" + DIGEST, "egress": "to_endpoint:" + DIGEST},
        "ifindex 12": {"ingress": "from_network:" + DIGEST},
    }


def test_lines_are_one_per_item_in_a_fixed_order():
    item = summary.summary([DIGEST], ["policy-43117f0a", "endpoints-7724f1f7"],
                           {"lxc1": {"ingress": "from_endpoint:" + DIGEST, "egress": "to_endpoint:" + DIGEST}},
                           [summary.SK_LOOKUP], {"policy": 2, "endpoints": 1})
    assert summary.lines(item) == [
        "program " + DIGEST,
        "map endpoints-7724f1f7",
        "map policy-43117f0a",
        "tc egress of lxc1: to_endpoint:" + DIGEST,
        "tc ingress of lxc1: from_endpoint:" + DIGEST,
        "L7 steering: sk_lookup",
        "entries of endpoints: 1",
        "entries of policy: 2",
    ]


def test_nothing_is_an_empty_summary_with_no_lines():
    assert summary.summary() == {"programs": [], "maps": [], "attached": {}, "steering": [], "entries": {}}
    assert summary.lines(summary.summary()) == []
