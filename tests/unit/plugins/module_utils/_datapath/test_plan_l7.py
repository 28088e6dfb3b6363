"""Pure parts of the L7 redirect in the datapath's desired state: which
endpoints are flagged as needing the proxy, the IP table's local ifindex,
and the uplinks' validation."""

import socket
import struct

import pytest

from ansible_collections.palisade.ebpf.plugins.module_utils._datapath import maps, plan as dp_plan, state as dp_state

CLIENT, WEB = 300, 400


def state(web_ingress, client_egress=(), uplinks=None):
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
    if uplinks is not None:
        raw["uplinks"] = uplinks
    return dp_state.validate(raw)


def configs(st, links=None):
    links = links or {"lxcc": 7, "lxcw": 8}
    ids = dp_state.policy_ids(st["policies"])
    dummy, masks = dp_plan.want_policies(st, ids)
    endpoints, dummy_missing = dp_plan.want_endpoints(st, links, ids, masks)
    return dict((maps.from_bytes(maps.EndpointKey, k).ifindex, maps.from_bytes(maps.EndpointConfig, v))
                for k, v in endpoints.items())


def test_an_endpoint_whose_policy_redirects_is_flagged_per_direction():
    cfg = configs(state([(CLIENT, 6, 80, 80, "redirect")], [(WEB, 6, 80, 80, "redirect")]))
    assert cfg[8].flags & maps.EP_F_L7_INGRESS and not cfg[8].flags & maps.EP_F_L7_EGRESS
    assert cfg[7].flags & maps.EP_F_L7_EGRESS and not cfg[7].flags & maps.EP_F_L7_INGRESS


def test_an_l4_allow_on_the_same_port_cancels_the_flag():
    # Cilium's merge: an L4-only allow at the same level wildcards L7, so nothing is redirected.
    cfg = configs(state([(CLIENT, 6, 80, 80, "redirect"), (CLIENT, 6, 80, 80, "allow")]))
    assert not cfg[8].flags & (maps.EP_F_L7_INGRESS | maps.EP_F_L7_EGRESS)
    # A broader allow does not: the exact-port redirect is more specific.
    cfg = configs(state([(CLIENT, 6, 80, 80, "redirect"), (CLIENT, 6, 0, 65535, "allow")]))
    assert cfg[8].flags & maps.EP_F_L7_INGRESS


def test_local_endpoints_carry_their_ifindex_in_the_ip_table():
    host, prefix = dp_plan.want_ipcache(state([]), {"lxcc": 7, "lxcw": 8})
    value = dict((socket.inet_ntoa(k), struct.unpack("=II", v)) for k, v in host.items())
    assert value == {"10.0.0.1": (CLIENT, 7), "10.0.0.2": (WEB, 8)}
    assert all(struct.unpack("=II", v)[1] == 0 for v in prefix.values())
    # An endpoint whose interface is missing is not local (yet): no ifindex.
    host, dummy = dp_plan.want_ipcache(state([]), {"lxcc": 7})
    assert struct.unpack("=II", host[socket.inet_aton("10.0.0.2")]) == (WEB, 0)


def test_uplinks_are_validated_and_deduplicated():
    assert state([], uplinks=["eth1", "eth0", "eth1"])["uplinks"] == ["eth0", "eth1"]
    assert state([])["uplinks"] == []
    with pytest.raises(dp_state.StateError, match=r"uplinks\[0\]: lxcw is the interface of endpoints\[1\]"):
        state([], uplinks=["lxcw"])
    with pytest.raises(dp_state.StateError, match=r"uplinks\[1\]: expected an interface name"):
        state([], uplinks=["eth0", "x" * 16])
