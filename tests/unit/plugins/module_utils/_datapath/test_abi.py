# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The datapath's kernel ABI (module_utils/_datapath/abi.py): the struct sizes
docs/datapath.md states, the reason codes operators read in counters and drop
events, and the network-order conversions."""

from __future__ import absolute_import, division, print_function

import ctypes as ct
import socket

import pytest

from ansible_collections.palisade.ebpf.plugins.module_utils._datapath import abi


@pytest.mark.parametrize("cls, size", [
    (abi.EndpointKey, 4), (abi.EndpointConfig, 32), (abi.IPCacheHostKey, 4), (abi.IPCachePrefixKey, 8),
    (abi.IPCacheValue, 8), (abi.PolicyKey, 12), (abi.PolicyValue, 8), (abi.CTKey, 20), (abi.CTEntry, 16),
    (abi.FragKey, 12), (abi.FragValue, 8), (abi.MetricsKey, 4), (abi.MetricsValue, 16), (abi.DropEvent, 40),
    (abi.L7FlowKey, 12), (abi.L7FlowValue, 8), (abi.SocketSlot, 4), (abi.SocketCookie, 8),
])
def test_struct_sizes(cls, size):
    assert ct.sizeof(cls) == size


def test_every_struct_the_templates_define_has_one_c_name():
    names = [name for name, dummy in abi.C_STRUCTS]
    classes = [cls for dummy, cls in abi.C_STRUCTS]
    assert len(set(names)) == len(names) and len(set(classes)) == len(classes)
    assert abi.DropEvent in classes and abi.PolicyKey in classes


def test_lpm_key_starts_with_the_prefix_length():
    # The kernel's LPM trie reads a u32 prefix length before the data.
    assert abi.IPCachePrefixKey.prefixlen.offset == 0 and abi.IPCachePrefixKey.addr.offset == 4


def test_reasons_are_unique_and_drops_are_the_cilium_range():
    assert len(set(abi.REASONS.values())) == len(abi.REASONS)
    assert abi.REASON_CODES["DROP_POLICY"] == 133 and abi.REASON_CODES["DROP_POLICY_DENY"] == 181
    drops = [name for code, name in abi.REASONS.items() if abi.is_drop(code)]
    assert all(name.startswith("DROP_") for name in drops)
    assert not abi.is_drop(abi.REASON_CODES["EVENTS_LOST"])
    assert not any(abi.is_drop(code) for code, name in abi.REASONS.items() if name.startswith("FORWARD_"))


def test_every_reason_and_direction_has_a_metrics_slot():
    top = max(abi.REASONS) * 2 + max(abi.DIR_NAMES)
    assert top < abi.METRICS_ENTRIES


def test_policy_key_direction_bit_leaves_room_for_every_level():
    assert max(abi.LEVELS) < abi.POLICY_DIR_EGRESS_BIT
    assert abi.LEVELS[0] == abi.LEVEL_ANY and abi.LEVELS[-1] == abi.LEVEL_EXACT


def test_addresses_and_ports_are_stored_in_network_order():
    value = abi.ip_to_u32("10.1.2.3")
    assert abi.to_bytes(abi.IPCacheHostKey(addr=value)) == socket.inet_aton("10.1.2.3")
    assert abi.u32_to_ip(value) == "10.1.2.3"
    port = abi.port_to_be16(8080)
    assert abi.to_bytes(abi.PolicyKey(port=port))[-2:] == b"\x1f\x90"
    assert abi.be16_to_port(port) == 8080


def test_structs_round_trip_through_bytes():
    cfg = abi.EndpointConfig(ipv4=abi.ip_to_u32("10.0.0.1"), identity=300, policy_id=7,
                             flags=abi.EP_F_ENFORCE_INGRESS | abi.EP_F_L7_INGRESS)
    cfg.levels[1] = 1 << 24
    back = abi.from_bytes(abi.EndpointConfig, abi.to_bytes(cfg))
    assert (back.identity, back.policy_id, back.flags, list(back.levels)) == (300, 7, 5, [0, 1 << 24, 0, 0])
