"""Endpoint plumbing plans: what would be done, from observed state alone."""

from ansible_collections.palisade.ebpf.plugins.module_utils import _endpoint as ep

EP = {"name": "deathstar-1", "namespace": "default", "ipv4": "10.1.1.10", "labels": {"org": "empire"}}


def converged(want):
    return {
        "link": {"kind": "veth", "mac": want["host_mac"], "alias": want["alias"], "up": True, "ipv6_off": True},
        "host_route": want["ifname"],
        "netns_exists": True,
        "lo_up": True,
        "peer": {"mac": want["mac"], "up": True, "ipv6_off": True, "addrs": ["10.1.1.10/32"], "neigh": want["host_mac"],
                 "routes": {"gateway": True, "default": ep.GATEWAY}},
    }


def kinds(plan):
    return [action[0] for action in plan]


def test_converged_endpoint_needs_nothing():
    want = ep.want_endpoint(EP, "pal")
    assert ep.plan_endpoint(want, converged(want)) == []


def test_fresh_endpoint_is_fully_plumbed():
    want = ep.want_endpoint(EP, "pal")
    plan = kinds(ep.plan_endpoint(want, {"link": None, "netns_exists": True, "lo_up": False, "peer": None}))
    assert plan == ["create_veth", "set_alias", "host_link_up", "peer_lo_up", "peer_link_up", "peer_ipv6_off",
                    "host_ipv6_off", "peer_addr", "peer_neigh", "peer_gateway_route", "peer_default_route", "host_route"]


def test_ipv6_is_turned_off_on_both_ends_unless_the_kernel_lacks_it():
    want = ep.want_endpoint(EP, "pal")
    have = converged(want)
    have["peer"]["ipv6_off"] = False
    assert kinds(ep.plan_endpoint(want, have)) == ["peer_ipv6_off"]
    fresh = {"link": None, "netns_exists": True, "lo_up": True, "peer": None, "ipv6_supported": False}
    assert "peer_ipv6_off" not in kinds(ep.plan_endpoint(want, fresh))


def test_missing_netns_is_created_first():
    want = ep.want_endpoint(EP, "pal")
    assert kinds(ep.plan_endpoint(want, {"netns_exists": False}))[:2] == ["create_netns", "create_veth"]


def test_drift_repairs_only_what_differs():
    want = ep.want_endpoint(EP, "pal")
    have = converged(want)
    have["peer"]["addrs"] = ["10.1.1.99/32"]
    have["host_route"] = None
    assert kinds(ep.plan_endpoint(want, have)) == ["peer_addr", "host_route"]


def test_half_plumbed_pair_is_rebuilt():
    want = ep.want_endpoint(EP, "pal")
    have = converged(want)
    have["peer"] = None  # the namespace was recreated and lost its end
    assert kinds(ep.plan_endpoint(want, have))[:2] == ["delete_link", "create_veth"]


def test_adopted_interface_gets_only_alias_and_route():
    want = ep.want_endpoint(dict(EP, interface="tap0"), "pal")
    assert want["netns"] is None and want["ifname"] == "tap0"
    assert kinds(ep.plan_endpoint(want, {"link": {"alias": None}})) == ["set_alias", "host_route"]
    assert kinds(ep.plan_endpoint(want, {"link": None})) == ["missing_interface"]


def test_purge_touches_only_owned_interfaces():
    links = [
        {"ifname": "lxcaaaa", "alias": "palisade:default/gone"},
        {"ifname": "lxcbbbb", "alias": "palisade:default/kept"},
        {"ifname": "tap0", "alias": "palisade-adopted:default/old"},
        {"ifname": "eth0", "alias": None},
        {"ifname": "vethadmin", "alias": "something else"},
    ]
    assert ep.plan_purge({"palisade:default/kept"}, links) == [
        ("delete_link", "lxcaaaa", "default/gone"),
        ("release_adopted", "tap0", "default/old"),
    ]


def test_describe_names_labels():
    want = ep.want_endpoint(EP, "pal")
    assert ep.describe(want) == "default/deathstar-1 10.1.1.10/32 %s <-> pal-e-default-deathstar-1:eth0 [org=empire]" % want["ifname"]
