"""Endpoint plumbing: plans and their writes from observed state alone, and
the Plumber's netlink requests against a fake socket (nothing reaches a kernel)."""

import pytest

from ansible_collections.palisade.ebpf.plugins.module_utils import _endpoint as ep
from ansible_collections.palisade.ebpf.plugins.module_utils._routing import netlink
from tests.support.netlink_fakes import route_msg

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
    assert plan == ["create_veth", "set_alias", "host_link_up", "host_ipv6_off", "peer_lo_up", "peer_link_up",
                    "peer_ipv6_off", "peer_addr", "peer_neigh", "peer_gateway_route", "peer_default_route", "host_route"]


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


# ---------------------------------------------------------------------------
# Steps: the writes and their changes lines
# ---------------------------------------------------------------------------


def lines(want, have):
    return [step.line for step in ep.endpoint_steps(want, have, ep.plan_endpoint(want, have))]


def test_fresh_endpoint_writes_in_order():
    want = ep.want_endpoint(EP, "pal")
    ns, ifname = "pal-e-default-deathstar-1", want["ifname"]
    assert lines(want, {"link": None, "netns_exists": False, "lo_up": False, "peer": None}) == [
        "+ netns %s" % ns,
        "+ veth %s <-> %s:eth0" % (ifname, ns),
        "~ link %s alias palisade:default/deathstar-1" % ifname,
        "~ link %s up" % ifname,
        "~ sysctl net.ipv6.conf.%s.disable_ipv6=1" % ifname,
        "~ %s: link lo up" % ns,
        "~ %s: link eth0 up" % ns,
        "~ %s: sysctl net.ipv6.conf.eth0.disable_ipv6=1" % ns,
        "+ %s: address 10.1.1.10/32 dev eth0" % ns,
        "+ %s: neighbour 169.254.1.1 lladdr %s dev eth0 permanent" % (ns, want["host_mac"]),
        "+ %s: route 169.254.1.1/32 dev eth0 scope link table main" % ns,
        "+ %s: route default via 169.254.1.1 dev eth0 table main" % ns,
        "+ route 10.1.1.10/32 dev %s scope link table main" % ifname,
    ]


def test_new_address_rewrites_the_peer_routes_in_place():
    want = ep.want_endpoint(EP, "pal")
    have = converged(want)
    have["peer"]["addrs"] = ["10.1.1.99/32"]
    ns = want["netns"]
    assert lines(want, have) == [
        "- %s: address 10.1.1.99/32 dev eth0" % ns,
        "+ %s: address 10.1.1.10/32 dev eth0" % ns,
        "~ %s: route 169.254.1.1/32 dev eth0 scope link table main" % ns,
        "~ %s: route default via 169.254.1.1 dev eth0 table main" % ns,
    ]


def test_host_route_through_another_interface_is_replaced():
    want = ep.want_endpoint(EP, "pal")
    have = converged(want)
    have["host_route"] = "lxcother"
    assert lines(want, have) == ["~ route 10.1.1.10/32 dev %s scope link table main" % want["ifname"]]


def test_release_of_an_adopted_interface_removes_its_owned_routes_first():
    tap_route = {"dst": "10.1.1.11/32", "dev": "tap0", "table": 254, "type": "unicast", "scope": "link", "gateway": None,
                 "src": None, "metric": 0, "onlink": False, "tos": 0, "multipath": None, "protocol": 201}
    steps = ep.purge_steps(("release_adopted", "tap0", "default/vm"), {"tap0": [tap_route]})
    assert [s.line for s in steps] == ["- route 10.1.1.11/32 dev tap0 scope link table main",
                                       "~ link tap0 alias removed (default/vm released)"]
    assert [s.line for s in ep.purge_steps(("delete_link", "lxcaaaa", "default/gone"), {})] == ["- link lxcaaaa (default/gone)"]


# ---------------------------------------------------------------------------
# Plumber against a fake pyroute2
# ---------------------------------------------------------------------------

needs_pyroute2 = pytest.mark.skipif(not netlink.HAS_PYROUTE2, reason="pyroute2 not installed")


class FakeIPRoute(object):
    """Records what the Plumber asks of pyroute2; routes are dumped from ``routes``."""

    indexes = {"lo": 1, "eth0": 2, "tap0": 8}
    calls = []  # shared by every socket of one test, in order, with the namespace it was opened in
    netns = [None]
    routes = []

    def __init__(self):
        self.where = FakeIPRoute.netns[-1]

    def link_lookup(self, ifname):
        return [self.indexes.get(ifname, 7)]

    def link(self, command, **kwargs):
        self.calls.append((self.where, "link", command, kwargs))

    def addr(self, command, **kwargs):
        self.calls.append((self.where, "addr", command, kwargs))

    def neigh(self, command, **kwargs):
        self.calls.append((self.where, "neigh", command, kwargs))

    def nlm_request(self, msg, msg_type, msg_flags):
        if msg_flags & 0x300 == 0x300:  # NLM_F_DUMP
            return iter(self.routes)
        attrs = dict((a[0], a[1]) for a in msg["attrs"])
        self.calls.append((self.where, "route", msg_type, {
            "dst": "%s/%d" % (attrs.get("RTA_DST", "0.0.0.0"), msg["dst_len"]), "gateway": attrs.get("RTA_GATEWAY"),
            "oif": attrs.get("RTA_OIF"), "proto": msg["proto"], "scope": msg["scope"], "table": attrs["RTA_TABLE"],
            "replace": bool(msg_flags & 0x100)}))
        return iter(())

    def close(self):
        pass


class FakeNetns(object):
    @staticmethod
    def pushns(name):
        FakeIPRoute.netns.append(name)

    @staticmethod
    def popns():
        FakeIPRoute.netns.pop()

    @staticmethod
    def create(name):
        FakeIPRoute.calls.append((None, "netns", "create", {"name": name}))


@pytest.fixture
def fake_pyroute2(monkeypatch):
    FakeIPRoute.calls = []
    FakeIPRoute.netns = [None]
    FakeIPRoute.routes = []
    monkeypatch.setattr(ep, "disable_ipv6", lambda ifname: FakeIPRoute.calls.append((FakeIPRoute.netns[-1], "sysctl", ifname, {})))
    return FakeIPRoute


@needs_pyroute2
def test_plumber_writes_routes_through_the_routing_backend(fake_pyroute2):
    want = ep.want_endpoint(EP, "pal")
    have = {"link": None, "netns_exists": True, "lo_up": True, "peer": None, "ipv6_supported": False}
    plumber = ep.Plumber(FakeIPRoute, FakeNetns, route_protocol=201)
    plumber.apply(want, ep.endpoint_steps(want, have, ep.plan_endpoint(want, have)))
    routes = [(c[0], c[3]) for c in fake_pyroute2.calls if c[1] == "route"]
    ns = want["netns"]
    # Host route: proto 201, scope link, main table, through the endpoint's interface; replace.
    # Peer routes: inside the endpoint's netns, proto static as always.
    assert routes == [
        (ns, {"dst": "169.254.1.1/32", "gateway": None, "oif": 2, "proto": 4, "scope": 253, "table": 254, "replace": True}),
        (ns, {"dst": "0.0.0.0/0", "gateway": "169.254.1.1", "oif": 2, "proto": 4, "scope": 0, "table": 254, "replace": True}),
        (None, {"dst": "10.1.1.10/32", "gateway": None, "oif": 7, "proto": 201, "scope": 253, "table": 254, "replace": True}),
    ]
    # Everything inside the endpoint happens in its namespace, in one visit.
    inside = [c for c in fake_pyroute2.calls if c[0] == ns]
    assert [c[1] for c in inside] == ["link", "addr", "neigh", "route", "route"]  # eth0 up, address, gateway, routes
    assert fake_pyroute2.netns == [None]


@needs_pyroute2
def test_plumber_reads_owned_host_routes_in_normal_form(fake_pyroute2):
    fake_pyroute2.routes = [
        route_msg("10.1.1.10/32", oif=7, scope=253),
        route_msg("10.1.1.11/32", oif=8, scope=253, proto=4),    # not ours
        route_msg("10.1.2.0/24", gateway="192.0.2.12", oif=2),   # ours, not a host route
        route_msg("10.1.1.12/32", oif=8, scope=253, table=100),  # another table
    ]
    plumber = ep.Plumber(FakeIPRoute, FakeNetns, route_protocol=201)
    links = {"lxcd96b5160": {"index": 7}, "eth0": {"index": 2}, "tap0": {"index": 8}}
    by_dev = plumber.owned_host_routes(links)
    assert sorted(by_dev) == ["eth0", "lxcd96b5160"]
    assert plumber.host_routes(by_dev) == {"10.1.1.10": "lxcd96b5160"}


@needs_pyroute2
def test_plumber_release_deletes_the_exact_owned_route(fake_pyroute2):
    plumber = ep.Plumber(FakeIPRoute, FakeNetns, route_protocol=201)
    fake_pyroute2.routes = [route_msg("10.1.1.11/32", oif=8, scope=253)]
    by_dev = plumber.owned_host_routes({"tap0": {"index": 8}})
    plumber.purge(ep.purge_steps(("release_adopted", "tap0", "default/vm"), by_dev))
    assert [(c[1], c[3]) for c in fake_pyroute2.calls] == [
        ("route", {"dst": "10.1.1.11/32", "gateway": None, "oif": 8, "proto": 201, "scope": 253, "table": 254, "replace": False}),
        ("link", {"index": 8, "ifalias": ""}),
    ]


# ---------------------------------------------------------------------------
# run(): the module's result
# ---------------------------------------------------------------------------


class FakePlumber(object):
    """Observed state as plain data; what would be written is recorded."""

    def __init__(self, links, routes_by_dev, haves, peers=None):
        self.links, self.routes_by_dev, self.haves, self.peers = links, routes_by_dev, haves, peers or {}
        self.done = []

    def host_links(self):
        return self.links

    def owned_host_routes(self, links):
        return self.routes_by_dev

    host_routes = staticmethod(ep.Plumber.host_routes)

    def observe(self, want, links, host_routes):
        return self.haves[want["key"]]

    def observe_peer(self, netns):
        return {"peer": self.peers.get(netns)}

    def apply(self, want, steps):
        self.done.extend(s.line for s in steps)

    def purge(self, steps):
        self.done.extend(s.line for s in steps)

    def set_ip_forward(self):
        self.done.append("ip_forward")


def host_route_of(ipv4, dev):
    return {"dst": ipv4 + "/32", "dev": dev, "gateway": None, "table": 254, "protocol": 201, "scope": "link", "type": "unicast",
            "src": None, "metric": 0, "onlink": False, "tos": 0, "multipath": None}


def fleet_host():
    kept = ep.want_endpoint(EP, "pal")
    fresh = ep.want_endpoint({"name": "cache", "ipv4": "10.1.1.20", "labels": {"app": "cache"}}, "pal")
    gone = ep.want_endpoint({"name": "gone", "ipv4": "10.1.1.30"}, "pal")
    links = {
        kept["ifname"]: {"ifname": kept["ifname"], "index": 7, "alias": kept["alias"]},
        gone["ifname"]: {"ifname": gone["ifname"], "index": 9, "alias": gone["alias"]},
        "eth0": {"ifname": "eth0", "index": 2, "alias": None},
    }
    routes = {kept["ifname"]: [host_route_of("10.1.1.10", kept["ifname"])], gone["ifname"]: [host_route_of("10.1.1.30", gone["ifname"])]}
    bare = {"link": None, "netns_exists": True, "lo_up": True, "peer": None, "ipv6_supported": False}
    haves = {kept["key"]: converged(kept), fresh["key"]: bare}
    peers = {gone["netns"]: {"mac": ep.naming.endpoint_macs({"name": "gone"})[0]}}
    return FakePlumber(links, routes, haves, peers), kept, fresh, gone


@pytest.mark.parametrize("check_mode", [True, False])
def test_run_reports_endpoints_as_entries_and_the_writes_as_changes(monkeypatch, check_mode):
    monkeypatch.setattr(ep, "read_sysctl", lambda path: "1")
    plumber, kept, fresh, gone = fleet_host()
    result = ep.run(plumber, [EP, {"name": "cache", "ipv4": "10.1.1.20", "labels": {"app": "cache"}}], prefix="pal",
                    check_mode=check_mode)
    assert result["changed"] is True
    assert result["before"] == [
        {"name": "deathstar-1", "namespace": "default", "ipv4": "10.1.1.10", "labels": {"org": "empire"}, "netns": kept["netns"]},
        {"name": "gone", "namespace": "default", "ipv4": "10.1.1.30", "netns": gone["netns"]},
    ]
    assert result["after"] == [
        {"name": "cache", "namespace": "default", "ipv4": "10.1.1.20", "labels": {"app": "cache"}, "netns": fresh["netns"]},
        {"name": "deathstar-1", "namespace": "default", "ipv4": "10.1.1.10", "labels": {"org": "empire"}, "netns": kept["netns"]},
    ]
    assert result["changes"][0] == "+ veth %s <-> %s:eth0" % (fresh["ifname"], fresh["netns"])
    assert result["changes"][-1] == "- link %s (default/gone)" % gone["ifname"]
    assert plumber.done == ([] if check_mode else result["changes"])
    # The --diff text: one line per endpoint, the converged one unchanged.
    assert result["diff"]["before"].splitlines()[0] == ep.describe(kept)
    assert ("default/cache 10.1.1.20/32 %s <-> %s:eth0 [app=cache]" % (fresh["ifname"], fresh["netns"])) in result["diff"]["after"]
    assert result["endpoints"][0]["key"] == "default/deathstar-1"


def test_run_converged_changes_nothing(monkeypatch):
    monkeypatch.setattr(ep, "read_sysctl", lambda path: "1")
    plumber, kept, fresh, gone = fleet_host()
    result = ep.run(plumber, [EP], purge=False, prefix="pal")
    assert result["changed"] is False and result["changes"] == [] and plumber.done == []
    assert result["before"] == result["after"]  # without purge, the unlisted endpoint stays


def test_run_missing_adopted_interface_fails_before_any_write(monkeypatch):
    monkeypatch.setattr(ep, "read_sysctl", lambda path: "0")
    plumber, kept, fresh, gone = fleet_host()
    adopted = dict(EP, name="vm", interface="tap9")
    plumber.haves["default/vm"] = {"link": None}
    for check_mode in (True, False):
        with pytest.raises(ep.EndpointError, match="endpoint default/vm: interface tap9 does not exist on this host"):
            ep.run(plumber, [adopted], prefix="pal", check_mode=check_mode)
    assert plumber.done == []


def test_run_gathered_reads_without_writing(monkeypatch):
    plumber, kept, fresh, gone = fleet_host()
    plumber.peers[kept["netns"]] = {"mac": kept["mac"]}
    result = ep.run(plumber, [], prefix="pal", state="gathered")
    assert result == {"changed": False, "gathered": [
        {"name": "deathstar-1", "namespace": "default", "ipv4": "10.1.1.10", "netns": kept["netns"]},
        {"name": "gone", "namespace": "default", "ipv4": "10.1.1.30", "netns": gone["netns"]},
    ]}
    assert plumber.done == []
    with pytest.raises(ep.EndpointError, match="state=gathered only reads"):
        ep.run(plumber, [EP], state="gathered")
