# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Policy entries -> kernel policy nodes (module_utils/_datapath/policy.py).

The kernel representation (nodes + level masks, probed as
bpf/lib/policy.h.j2 does) answers exactly what docs/policy-engine.md's
"Evaluation of one packet" says, for random policies.
"""

from __future__ import absolute_import, division, print_function

import random

import pytest

from ansible_collections.palisade.ebpf.plugins.module_utils._datapath import abi, policy as dp_policy
from tests.support.datapath_oracle import evaluate, probes, random_entry, simulate


def test_port_blocks_cover_ranges_exactly():
    assert dp_policy.port_blocks(0, 65535) == [(8, 0)]
    assert dp_policy.port_blocks(80, 80) == [(24, 80)]
    assert len(dp_policy.port_blocks(1, 65535)) == 16
    assert len(dp_policy.port_blocks(1024, 65535)) == 6
    assert dp_policy.port_blocks(0, 1023) == [(14, 0)]
    rnd = random.Random(1)
    for dummy in range(300):
        low = rnd.randint(0, 65535)
        high = rnd.randint(low, 65535)
        covered = []
        for level, first in dp_policy.port_blocks(low, high):
            size = 1 << (24 - level)
            assert first % size == 0  # aligned
            covered.append((first, first + size - 1))
        covered.sort()
        assert covered[0][0] == low and covered[-1][1] == high
        assert all(a[1] + 1 == b[0] for a, b in zip(covered, covered[1:]))


def test_any_protocol_port_range_expands_to_port_protocols():
    prefixes = dp_policy.l4_prefixes(0, 80, 80)
    assert sorted(prefixes) == [(24, 6, 80), (24, 17, 80), (24, 132, 80)]
    assert dp_policy.l4_prefixes(0, 0, 65535) == [(0, 0, 0)]
    assert dp_policy.l4_prefixes(1, 0, 65535) == [(8, 1, 0)]


def test_documented_precedence_examples():
    entries = [(300, 6, 0, 65535, "allow"), (0, 6, 80, 80, "deny")]
    nodes = dp_policy.compile_direction(entries)
    assert simulate(nodes, True, 300, 6, 80) == "deny"          # deny wins
    assert simulate(nodes, True, 300, 6, 81) == "allow"
    assert simulate(nodes, True, 301, 6, 81) is None             # default deny
    assert simulate(nodes, False, 301, 6, 81) == "allow"         # not enforced: open
    # The most specific L4 match decides between allow and redirect, and an
    # L4-only allow on the same port cancels L7.
    entries = [(300, 6, 80, 80, "redirect"), (0, 6, 0, 65535, "allow")]
    nodes = dp_policy.compile_direction(entries)
    assert simulate(nodes, True, 300, 6, 80) == "redirect"
    entries.append((0, 6, 80, 80, "allow"))
    nodes = dp_policy.compile_direction(entries)
    assert simulate(nodes, True, 300, 6, 80) == "allow"


def test_nodes_under_a_deny_are_pruned():
    nodes = dp_policy.compile_direction([(300, 6, 0, 65535, "deny"), (300, 6, 80, 80, "allow")])
    assert nodes == {(300, 8, 6, 0): (abi.POL_F_DENY, 0)}


@pytest.mark.parametrize("seed", range(4))
def test_kernel_representation_matches_reference_semantics(seed):
    rnd = random.Random(seed)
    for dummy in range(400):
        entries = [random_entry(rnd) for dummy in range(rnd.randint(0, 7))]
        nodes = dp_policy.compile_direction(entries)
        enforced = rnd.random() < 0.5
        for identity, proto, port in probes(rnd):
            assert simulate(nodes, enforced, identity, proto, port) == \
                evaluate(entries, enforced, identity, proto, port), (entries, identity, proto, port)


def test_kernel_entries_decode_to_their_nodes():
    nodes = dp_policy.compile_direction([(300, 6, 80, 80, "allow"), (0, 17, 0, 1023, "redirect"), (301, 0, 0, 65535, "deny")])
    entries = dp_policy.kernel_entries(7, abi.DIR_EGRESS, nodes)
    decoded = {}
    for key, value in entries.items():
        pid, direction, identity, prefix = dp_policy.decode_key(key)
        assert (pid, direction) == (7, abi.DIR_EGRESS)
        decoded[(identity,) + prefix] = dp_policy.decode_value(value)
    assert decoded == nodes
    # the port is stored in network order: tcp/80 is 0x0050 on the wire
    key = [k for k in entries if dp_policy.decode_key(k)[2] == 300][0]
    assert key[-2:] == b"\x00\x50"


def test_level_masks_separate_specific_peers_from_any_peer():
    nodes = dp_policy.compile_direction([(300, 6, 80, 80, "allow"), (0, 6, 0, 1023, "allow"), (0, 0, 0, 65535, "deny")])
    peer, anyp = dp_policy.level_masks(nodes)
    assert peer == 1 << 24
    assert anyp == (1 << 0)  # the any-protocol deny covers (and prunes) the tcp/0-1023 allow


def test_describe_l4():
    assert dp_policy.describe_l4((0, 0, 0)) == "any protocol"
    assert dp_policy.describe_l4((8, 6, 0)) == "tcp/*"
    assert dp_policy.describe_l4((24, 6, 80)) == "tcp/80"
    assert dp_policy.describe_l4((14, 17, 0)) == "udp/0-1023"
    assert dp_policy.describe_l4((24, 1, 8)) == "icmp type 8"
    assert dp_policy.describe_l4((20, 1, 0)) == "icmp types 0-15"


def test_describe_value():
    assert dp_policy.describe_value((abi.POL_F_DENY, 0)) == "deny"
    assert dp_policy.describe_value((abi.POL_F_ALLOW, 24)) == "allow"
    assert dp_policy.describe_value((abi.POL_F_ALLOW | abi.POL_F_L7, 24)) == "redirect"
