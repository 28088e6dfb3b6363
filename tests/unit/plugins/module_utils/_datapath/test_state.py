# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The datapath's desired state (module_utils/_datapath/state.py): validation
names the offending field, policy ids are stable, the packed IP table round
trips."""

from __future__ import absolute_import, division, print_function

import pytest

from ansible_collections.palisade.ebpf.plugins.module_utils._datapath import state as dp_state


def with_uplinks(uplinks):
    raw = {
        "bpffs_dir": "/sys/fs/bpf/test",
        "ipcache": [["10.0.0.1/32", 300], ["10.0.0.2/32", 400]],
        "endpoints": [
            {"key": "default/client", "ifname": "lxcc", "ipv4": "10.0.0.1", "identity": 300, "policy": None},
            {"key": "default/web", "ifname": "lxcw", "ipv4": "10.0.0.2", "identity": 400, "policy": None},
        ],
        "policies": {},
    }
    if uplinks is not None:
        raw["uplinks"] = uplinks
    return dp_state.validate(raw)


def test_state_validation_names_the_field():
    base = {"bpffs_dir": "/sys/fs/bpf/t", "ipcache": [], "endpoints": [], "policies": {}}
    bad = [
        (dict(base, bpffs_dir="relative"), "bpffs_dir"),
        (dict(base, ipcache=[["10.0.0.1/24", 5]]), "ipcache[0][0]: 10.0.0.1/24 has host bits set"),
        (dict(base, ipcache=[["10.0.0.0/24", 0]]), "ipcache[0][1]"),
        (dict(base, policies={"p": {"ingress": {"enforced": True, "entries": [[0, 7, 0, 0, "allow"]]}}}),
         "policies.p.ingress.entries[0][1]: protocol 7"),
        (dict(base, policies={"p": {"ingress": {"entries": [[0, 6, 9, 8, "allow"]]}}}), "port_lo 9 is above port_hi 8"),
        (dict(base, policies={"p": {"ingress": {"entries": [[0, 1, 0, 300, "allow"]]}}}), "ICMP types are 0..255"),
        (dict(base, endpoints=[{"key": "a", "ifname": "x", "ipv4": "10.0.0.1", "identity": 5, "policy": "nope"}]),
         "endpoints[0].policy: no policy named 'nope'"),
        (dict(base, endpoints=[{"key": "a", "ifname": "x", "ipv4": "10.0.0.1", "identity": 5, "policy": None},
                               {"key": "b", "ifname": "x", "ipv4": "10.0.0.2", "identity": 5, "policy": None}]),
         "endpoints[1].ifname: x is also used by endpoints[0]"),
    ]
    for raw, message in bad:
        with pytest.raises(dp_state.StateError) as exc:
            dp_state.validate(raw)
        assert message in str(exc.value)


def test_policy_ids_are_stable_and_nonzero():
    ids = dp_state.policy_ids(["a", "b", "c"])
    more = dp_state.policy_ids(["c", "a", "b", "d"])
    assert all(ids[name] == more[name] for name in ids)  # unrelated names do not move ids
    assert all(ids.values()) and len(set(ids.values())) == 3


def test_packed_ipcache_round_trips_and_rejects_garbage():
    rows = [["0.0.0.0/0", 2], ["10.1.1.10/32", 4132448162], ["192.0.2.11", 1], ["203.0.113.0/24", 16777217]]
    packed = dp_state.pack_ipcache(rows)
    assert dp_state.unpack_ipcache(packed) == [["0.0.0.0/0", 2], ["10.1.1.10/32", 4132448162], ["192.0.2.11/32", 1],
                                               ["203.0.113.0/24", 16777217]]
    with pytest.raises(dp_state.StateError, match="ipcache_packed: not valid base64"):
        dp_state.unpack_ipcache("not base64!")
    with pytest.raises(dp_state.StateError, match="is not a whole number of 9-byte records"):
        dp_state.unpack_ipcache(packed[:-4])


def test_uplinks_are_validated_and_deduplicated():
    assert with_uplinks(["eth1", "eth0", "eth1"])["uplinks"] == ["eth0", "eth1"]
    assert with_uplinks(None)["uplinks"] == []
    with pytest.raises(dp_state.StateError, match=r"uplinks\[0\]: lxcw is the interface of endpoints\[1\]"):
        with_uplinks(["lxcw"])
    with pytest.raises(dp_state.StateError, match=r"uplinks\[1\]: expected an interface name"):
        with_uplinks(["eth0", "x" * 16])
