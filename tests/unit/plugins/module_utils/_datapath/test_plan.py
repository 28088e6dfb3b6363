# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The map reconcile plan (module_utils/_datapath/plan.py), pure Python.

- Executing a plan write by write never allows a packet that neither the old
  nor the new state allows, and ends in the new state.
- Its lines name policies, identities, protocols and ports.
- The L7 redirect's part of the desired state: which endpoints are flagged
  as needing the proxy, and the IP table's local ifindex.
"""

from __future__ import absolute_import, division, print_function

import copy
import random
import socket
import struct

import pytest

from ansible_collections.palisade.ebpf.plugins.module_utils._datapath import (
    abi,
    plan as dp_plan,
    state as dp_state,
)
from tests.support.datapath_oracle import decode_policy_map, evaluate, probes, random_policy, simulate

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
    cfg = abi.from_bytes(abi.EndpointConfig, kernel["endpoints"][abi.to_bytes(abi.EndpointKey(ifindex=IFINDEX))])
    nodes = decode_policy_map(kernel["policy"], cfg.policy_id)
    view = {}
    for direction in (abi.DIR_INGRESS, abi.DIR_EGRESS):
        enforce_bit = abi.EP_F_ENFORCE_EGRESS if direction == abi.DIR_EGRESS else abi.EP_F_ENFORCE_INGRESS
        view[direction] = (nodes[direction], (cfg.levels[direction * 2], cfg.levels[direction * 2 + 1]),
                           bool(cfg.flags & enforce_bit), bool(cfg.policy_id))
    return view


def kernel_verdict(view, direction, identity, proto, port):
    """bpf/lib/policy.h.j2 plus the enforcement check, on simulated maps."""
    nodes, masks, enforced, has_policy = view[direction]
    if not has_policy:
        return "allow"
    return simulate(nodes, enforced, identity, proto, port, masks=masks)


def allowed(verdict):
    return verdict in ("allow", "redirect")


def run_plan(old_state, new_state, ids, checks):
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


def reference(state, name, direction, identity, proto, port):
    if name is None:
        return "allow"
    pol = state["policies"][name][abi.DIR_NAMES[direction]]
    return evaluate(pol["entries"], pol["enforced"], identity, proto, port)


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
        for direction in (abi.DIR_INGRESS, abi.DIR_EGRESS):
            for identity, proto, port in pkt:
                expected[(direction, identity, proto, port)] = (
                    allowed(reference(old_state, old_name, direction, identity, proto, port))
                    or allowed(reference(new_state, new_name, direction, identity, proto, port)))

        def checks(kernel):
            view = kernel_view(kernel)
            for direction in (abi.DIR_INGRESS, abi.DIR_EGRESS):
                for identity, proto, port in pkt:
                    now = kernel_verdict(view, direction, identity, proto, port)
                    if allowed(now):
                        assert expected[(direction, identity, proto, port)], \
                            (old_pols, new_pols, direction, identity, proto, port)

        run_plan(old_state, new_state, ids, checks)


def test_stale_nodes_shadowing_a_new_deny_go_first():
    # Old: peer 300 may reach tcp/80 but any peer is denied it (denied).
    # New: peer 300 is denied all of TCP, any peer may reach tcp/80 (denied).
    # Were the stale 300:tcp/80 allow kept until the other stale nodes go, it
    # would hide the new 300:tcp/* deny once 0:tcp/80 turns into an allow.
    old = {"p1": {"ingress": {"enforced": True, "entries": [[300, 6, 80, 80, "allow"], [0, 6, 80, 80, "deny"]]}}}
    new = {"p1": {"ingress": {"enforced": True, "entries": [[300, 6, 0, 65535, "deny"], [0, 6, 80, 80, "allow"]]}}}
    ids = dp_state.policy_ids(["p1"])

    def checks(kernel):
        assert kernel_verdict(kernel_view(kernel), abi.DIR_INGRESS, 300, 6, 80) not in ("allow", "redirect")

    ops = run_plan(desired(old, "p1"), desired(new, "p1"), ids, checks)
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


# --- the L7 redirect -------------------------------------------------------------
CLIENT, WEB = 300, 400


def l7_state(web_ingress, client_egress=()):
    raw = {
        "bpffs_dir": "/sys/fs/bpf/test",
        "ipcache": [["10.0.0.1/32", CLIENT], ["10.0.0.2/32", WEB], ["10.9.0.0/16", 16777217]],
        "endpoints": [
            {"key": "default/client", "ifname": "lxcc", "ipv4": "10.0.0.1", "identity": CLIENT, "policy": "client"},
            {"key": "default/web", "ifname": "lxcw", "ipv4": "10.0.0.2", "identity": WEB, "policy": "web"},
        ],
        "policies": {
            "web": {"ingress": {"enforced": True, "entries": [list(e) for e in web_ingress]},
                    "egress": {"enforced": False, "entries": []}},
            "client": {"ingress": {"enforced": False, "entries": []},
                       "egress": {"enforced": bool(client_egress), "entries": [list(e) for e in client_egress]}},
        },
    }
    return dp_state.validate(raw)


def configs(st, links=None):
    links = links or {"lxcc": 7, "lxcw": 8}
    ids = dp_state.policy_ids(st["policies"])
    dummy, masks = dp_plan.want_policies(st, ids)
    endpoints, dummy_missing = dp_plan.want_endpoints(st, links, ids, masks)
    return dict((abi.from_bytes(abi.EndpointKey, k).ifindex, abi.from_bytes(abi.EndpointConfig, v))
                for k, v in endpoints.items())


def test_an_endpoint_whose_policy_redirects_is_flagged_per_direction():
    cfg = configs(l7_state([(CLIENT, 6, 80, 80, "redirect")], [(WEB, 6, 80, 80, "redirect")]))
    assert cfg[8].flags & abi.EP_F_L7_INGRESS and not cfg[8].flags & abi.EP_F_L7_EGRESS
    assert cfg[7].flags & abi.EP_F_L7_EGRESS and not cfg[7].flags & abi.EP_F_L7_INGRESS


def test_an_l4_allow_on_the_same_port_cancels_the_flag():
    # Cilium's merge: an L4-only allow at the same level wildcards L7, so nothing is redirected.
    cfg = configs(l7_state([(CLIENT, 6, 80, 80, "redirect"), (CLIENT, 6, 80, 80, "allow")]))
    assert not cfg[8].flags & (abi.EP_F_L7_INGRESS | abi.EP_F_L7_EGRESS)
    # A broader allow does not: the exact-port redirect is more specific.
    cfg = configs(l7_state([(CLIENT, 6, 80, 80, "redirect"), (CLIENT, 6, 0, 65535, "allow")]))
    assert cfg[8].flags & abi.EP_F_L7_INGRESS


def test_local_endpoints_carry_their_ifindex_in_the_ip_table():
    host, prefix = dp_plan.want_ipcache(l7_state([]), {"lxcc": 7, "lxcw": 8})
    value = dict((socket.inet_ntoa(k), struct.unpack("=II", v)) for k, v in host.items())
    assert value == {"10.0.0.1": (CLIENT, 7), "10.0.0.2": (WEB, 8)}
    assert all(struct.unpack("=II", v)[1] == 0 for v in prefix.values())
    # An endpoint whose interface is missing is not local (yet): no ifindex.
    host, dummy = dp_plan.want_ipcache(l7_state([]), {"lxcc": 7})
    assert struct.unpack("=II", host[socket.inet_aton("10.0.0.2")]) == (WEB, 0)
