# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Datapath policy compilation and the map reconcile plan (pure Python).

- The kernel representation (nodes + level masks, probed as
  bpf/lib/policy.h.j2 does) answers exactly what docs/policy-engine.md's
  "Evaluation of one packet" says, for random policies.
- Executing a plan write by write never allows a packet that neither the old
  nor the new state allows, and ends in the new state.
"""

from __future__ import absolute_import, division, print_function

import copy
import random

import pytest

from ansible_collections.palisade.ebpf.plugins.module_utils._datapath import (
    maps,
    plan as dp_plan,
    policy as dp_policy,
    state as dp_state,
)

IDS = (0, 300, 301)
PROBE_PORTS = (0, 8, 22, 53, 80, 443, 1023, 1024, 1500, 2047, 2048, 3000, 8080, 65535)


def random_entry(rnd):
    proto = rnd.choice((0, 1, 6, 6, 17, 132))
    r = rnd.random()
    if r < 0.2:
        low, high = 0, 65535
    elif r < 0.6:
        low = rnd.choice((80, 443, 8, 0, 1024, 53))
        high = low
    else:
        low = rnd.randint(0, 2000)
        high = low + rnd.randint(0, 3000)
    if proto == 1 and (low, high) != (0, 65535):
        low, high = min(low, 255), min(high, 255)
    return (rnd.choice(IDS), proto, low, high, rnd.choice(("allow", "allow", "deny", "redirect")))


def probes(rnd, count=30):
    out = []
    for dummy in range(count):
        proto = rnd.choice((1, 6, 17, 132, 47))
        port = rnd.choice(PROBE_PORTS + (rnd.randint(0, 65535),))
        if proto == 1:
            port &= 0xFF
        if proto == 47:
            port = 0
        out.append((rnd.choice((300, 301, 999)), proto, port))
    return out


# --- compilation -------------------------------------------------------------------
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
    assert dp_policy.simulate(nodes, True, 300, 6, 80) == "deny"          # deny wins
    assert dp_policy.simulate(nodes, True, 300, 6, 81) == "allow"
    assert dp_policy.simulate(nodes, True, 301, 6, 81) is None             # default deny
    assert dp_policy.simulate(nodes, False, 301, 6, 81) == "allow"         # not enforced: open
    # The most specific L4 match decides between allow and redirect, and an
    # L4-only allow on the same port cancels L7.
    entries = [(300, 6, 80, 80, "redirect"), (0, 6, 0, 65535, "allow")]
    nodes = dp_policy.compile_direction(entries)
    assert dp_policy.simulate(nodes, True, 300, 6, 80) == "redirect"
    entries.append((0, 6, 80, 80, "allow"))
    nodes = dp_policy.compile_direction(entries)
    assert dp_policy.simulate(nodes, True, 300, 6, 80) == "allow"


def test_nodes_under_a_deny_are_pruned():
    nodes = dp_policy.compile_direction([(300, 6, 0, 65535, "deny"), (300, 6, 80, 80, "allow")])
    assert nodes == {(300, 8, 6, 0): (maps.POL_F_DENY, 0)}


@pytest.mark.parametrize("seed", range(4))
def test_kernel_representation_matches_reference_semantics(seed):
    rnd = random.Random(seed)
    for dummy in range(400):
        entries = [random_entry(rnd) for dummy in range(rnd.randint(0, 7))]
        nodes = dp_policy.compile_direction(entries)
        enforced = rnd.random() < 0.5
        for identity, proto, port in probes(rnd):
            assert dp_policy.simulate(nodes, enforced, identity, proto, port) == \
                dp_policy.evaluate(entries, enforced, identity, proto, port), (entries, identity, proto, port)


def test_describe_l4():
    assert dp_policy.describe_l4((0, 0, 0)) == "any protocol"
    assert dp_policy.describe_l4((8, 6, 0)) == "tcp/*"
    assert dp_policy.describe_l4((24, 6, 80)) == "tcp/80"
    assert dp_policy.describe_l4((14, 17, 0)) == "udp/0-1023"
    assert dp_policy.describe_l4((24, 1, 8)) == "icmp type 8"


# --- reconcile order -----------------------------------------------------------------
IFINDEX = 7


def desired(policies, endpoint_policy):
    raw = {
        "bpffs_dir": "/sys/fs/bpf/test",
        "ipcache": [["10.0.0.1/32", 300]],
        "endpoints": [{"key": "default/a", "ifname": "lxca", "ipv4": "10.0.0.1", "identity": 300, "policy": endpoint_policy}],
        "policies": policies,
    }
    return dp_state.validate(raw)


def want_maps(state, ids):
    entries, masks = dp_plan.want_policies(state, ids)
    endpoints, missing = dp_plan.want_endpoints(state, {"lxca": IFINDEX}, ids, masks)
    assert not missing
    host, prefix = dp_plan.want_ipcache(state)
    return {"policy": entries, "endpoints": endpoints, "ipcache_host": host, "ipcache_prefix": prefix}


def kernel_view(kernel):
    """Decode the simulated maps once: direction -> (nodes, masks, enforced, has policy)."""
    cfg = maps.from_bytes(maps.EndpointConfig, kernel["endpoints"][maps.to_bytes(maps.EndpointKey(ifindex=IFINDEX))])
    view = {}
    for direction in (maps.DIR_INGRESS, maps.DIR_EGRESS):
        enforce_bit = maps.EP_F_ENFORCE_EGRESS if direction == maps.DIR_EGRESS else maps.EP_F_ENFORCE_INGRESS
        view[direction] = ({}, (cfg.levels[direction * 2], cfg.levels[direction * 2 + 1]), bool(cfg.flags & enforce_bit),
                           bool(cfg.policy_id))
    for key, value in kernel["policy"].items():
        pid, kdir, ident, prefix = dp_policy.decode_key(key)
        if pid == cfg.policy_id:
            view[kdir][0][(ident,) + prefix] = dp_policy.decode_value(value)
    return view


def kernel_verdict(view, direction, identity, proto, port):
    """bpf/lib/policy.h.j2 plus the enforcement check, on simulated maps."""
    nodes, masks, enforced, has_policy = view[direction]
    if not has_policy:
        return "allow"
    return dp_policy.simulate(nodes, enforced, identity, proto, port, masks=masks)


def allowed(verdict):
    return verdict in ("allow", "redirect")


def run_plan(old_state, new_state, ids, rnd, checks):
    have = want_maps(old_state, ids)
    want = want_maps(new_state, ids)
    namer = dp_plan.Namer(new_state, ids, {"lxca": IFINDEX})
    ops = dp_plan.plan(want, have, namer)
    kernel = copy.deepcopy(have)
    checks(kernel)
    for op in ops:
        if op.value is None:
            del kernel[op.map][op.key]
        else:
            kernel[op.map][op.key] = op.value
        checks(kernel)
    assert kernel == want
    assert dp_plan.plan(want, kernel, namer) == []
    return ops


def random_policy(rnd):
    return dict((d, {"enforced": rnd.random() < 0.6, "entries": [list(random_entry(rnd)) for dummy in range(rnd.randint(0, 6))]})
                for d in ("ingress", "egress"))


def reference(state, name, direction, identity, proto, port):
    if name is None:
        return "allow"
    pol = state["policies"][name][maps.DIR_NAMES[direction]]
    return dp_policy.evaluate(pol["entries"], pol["enforced"], identity, proto, port)


@pytest.mark.parametrize("seed", range(4))
def test_reconcile_never_opens_up(seed):
    rnd = random.Random(100 + seed)
    for dummy in range(60):
        switch = rnd.random() < 0.3
        old_pols = {"p1": random_policy(rnd), "p2": random_policy(rnd)}
        new_pols = {"p1": random_policy(rnd) if rnd.random() < 0.8 else old_pols["p1"], "p2": old_pols["p2"]}
        old_name = "p1"
        new_name = "p2" if switch else "p1"
        old_state = desired(old_pols, old_name)
        new_state = desired(new_pols, new_name)
        ids = dp_state.policy_ids(["p1", "p2"])
        pkt = probes(rnd, 25)

        expected = {}
        for direction in (maps.DIR_INGRESS, maps.DIR_EGRESS):
            for identity, proto, port in pkt:
                expected[(direction, identity, proto, port)] = (
                    allowed(reference(old_state, old_name, direction, identity, proto, port))
                    or allowed(reference(new_state, new_name, direction, identity, proto, port)))

        def checks(kernel):
            view = kernel_view(kernel)
            for direction in (maps.DIR_INGRESS, maps.DIR_EGRESS):
                for identity, proto, port in pkt:
                    now = kernel_verdict(view, direction, identity, proto, port)
                    if allowed(now):
                        assert expected[(direction, identity, proto, port)], \
                            (old_pols, new_pols, direction, identity, proto, port)

        run_plan(old_state, new_state, ids, rnd, checks)


def test_stale_nodes_shadowing_a_new_deny_go_first():
    # Old: peer 300 may reach tcp/80 but any peer is denied it (denied).
    # New: peer 300 is denied all of TCP, any peer may reach tcp/80 (denied).
    # Were the stale 300:tcp/80 allow kept until the other stale nodes go, it
    # would hide the new 300:tcp/* deny once 0:tcp/80 turns into an allow.
    old = {"p1": {"ingress": {"enforced": True, "entries": [[300, 6, 80, 80, "allow"], [0, 6, 80, 80, "deny"]]}}}
    new = {"p1": {"ingress": {"enforced": True, "entries": [[300, 6, 0, 65535, "deny"], [0, 6, 80, 80, "allow"]]}}}
    ids = dp_state.policy_ids(["p1"])

    def checks(kernel):
        assert kernel_verdict(kernel_view(kernel), maps.DIR_INGRESS, 300, 6, 80) not in ("allow", "redirect")

    ops = run_plan(desired(old, "p1"), desired(new, "p1"), ids, None, checks)
    assert [op.phase for op in ops if op.map == "policy"] == ["policy-deny", "policy-shadowed", "policy-allow"]


def test_second_plan_is_empty_and_lines_are_human():
    pols = {"web": {"ingress": {"enforced": True, "entries": [[300, 6, 80, 80, "allow"]]}}}
    state = dp_state.validate({
        "bpffs_dir": "/sys/fs/bpf/t", "ipcache": [["10.0.0.1/32", 300], ["0.0.0.0/0", 2]],
        "endpoints": [{"key": "default/a", "ifname": "lxca", "ipv4": "10.0.0.1", "identity": 300, "policy": "web"}],
        "policies": pols, "identities": {"300": "k8s:app=a"},
    })
    ids = dp_state.policy_ids(["web"])
    want = want_maps(state, ids)
    namer = dp_plan.Namer(state, ids, {"lxca": IFINDEX})
    empty = {"policy": {}, "endpoints": {}, "ipcache_host": {}, "ipcache_prefix": {}}
    lines = [op.line for op in dp_plan.plan(want, empty, namer) if op.line]
    assert "+ policy web ingress: from 300 (k8s:app=a) tcp/80: allow" in lines
    assert "+ ipcache 10.0.0.1/32: identity 300 (k8s:app=a)" in lines
    assert "+ ipcache 0.0.0.0/0: identity 2" in lines
    assert "+ endpoint default/a (lxca, ifindex 7): 10.0.0.1 identity 300 (k8s:app=a), policy web, enforce ingress" in lines
    assert dp_plan.plan(want, want, namer) == []


def test_capacity_is_checked_before_writing():
    ops = [dp_plan.Op("policy-allow", "policy", b"k%d" % i, b"v") for i in range(5)]
    dp_plan.check_capacity(ops, {"policy": {b"old": b"v"}}, {"policy": 6})
    with pytest.raises(Exception) as exc:
        dp_plan.check_capacity(ops, {"policy": {b"old": b"v", b"old2": b"v"}}, {"policy": 6})
    assert "raise settings.policy_max" in str(exc.value) and "Nothing was changed" in str(exc.value)


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
    from ansible_collections.palisade.ebpf.plugins.module_utils._datapath.state import (
        StateError,
        pack_ipcache,
        unpack_ipcache,
    )
    rows = [["0.0.0.0/0", 2], ["10.1.1.10/32", 4132448162], ["192.0.2.11", 1], ["203.0.113.0/24", 16777217]]
    packed = pack_ipcache(rows)
    assert unpack_ipcache(packed) == [["0.0.0.0/0", 2], ["10.1.1.10/32", 4132448162], ["192.0.2.11/32", 1],
                                      ["203.0.113.0/24", 16777217]]
    with pytest.raises(StateError, match="ipcache_packed: not valid base64"):
        unpack_ipcache("not base64!")
    with pytest.raises(StateError, match="is not a whole number of 9-byte records"):
        unpack_ipcache(packed[:-4])


def test_packed_tables_concatenate_and_a_later_row_wins():
    shared = dp_state.pack_ipcache([["10.1.1.10/32", 300], ["192.0.2.11/32", 6], ["192.0.2.12/32", 6]])
    own = dp_state.pack_ipcache([["192.0.2.11/32", 1]])
    rows = dp_state.unpack_ipcache(shared + own)
    assert rows == [["10.1.1.10/32", 300], ["192.0.2.11/32", 1], ["192.0.2.12/32", 6]]
    assert dp_state.validate({"bpffs_dir": "/sys/fs/bpf/palisade/x", "ipcache": rows})["ipcache"]["192.0.2.11/32"] == 1
    assert dp_state.unpack_ipcache("") == []
