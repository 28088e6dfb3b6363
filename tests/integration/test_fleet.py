"""site.yml on a real lab fleet: plumbing, direct routing across hosts with
real packets, idempotence, check mode, diffs, drift repair, purge, bad input.

One lab for the module (three hosts: two reached through the netns
connection with a pod_cidr each, one over real SSH without a pod_cidr). In
file order the tests follow one another as an operator's successive runs
would; each also starts from the state it needs (``deployed()``), so that
any one of them runs alone.
"""

import copy
import os

import pytest

from tests.support.kernel import lab_snapshot as snapshot, run_module, sh

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: creates network namespaces")

PREFIX = "pft%d" % (os.getpid() % 100000)

HOSTS = {
    "alpha": {
        "palisade_node": {"ipv4": "198.51.100.11", "pod_cidr": "10.61.1.0/24"},
        "palisade_endpoints": [
            {"name": "web", "labels": {"app": "web"}, "ipv4": "10.61.1.10",
             "ports": [{"name": "http", "port": 80, "protocol": "TCP"}, {"name": "dns", "port": 53, "protocol": "UDP"}]},
            {"name": "client", "namespace": "shop", "labels": {"app": "client"}, "ipv4": "10.61.1.20"},
        ],
    },
    "beta": {
        "palisade_node": {"ipv4": "198.51.100.12", "pod_cidr": "10.61.2.0/24"},
        "palisade_endpoints": [
            {"name": "api", "labels": {"app": "api"}, "ipv4": "10.61.2.10", "ports": [{"port": 8080, "protocol": "TCP"}]},
        ],
    },
    "gamma": {
        "ansible_connection": "ssh",
        "palisade_node": {"ipv4": "198.51.100.13"},
        "palisade_endpoints": [
            {"name": "db", "labels": {"app": "db"}, "ipv4": "10.61.3.10", "ports": [{"port": 5432, "protocol": "TCP"}]},
        ],
    },
}


CACHE = {"name": "cache", "labels": {"app": "cache"}, "ipv4": "10.61.2.20"}


# The database takes connections only from the api, on its port; everything
# else in the fleet stays open (no other endpoint is selected by a policy).
POLICIES = [{
    "apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
    "metadata": {"name": "db-from-api", "namespace": "default"},
    "spec": {"endpointSelector": {"matchLabels": {"app": "db"}},
             "ingress": [{"fromEndpoints": [{"matchLabels": {"app": "api"}}],
                          "toPorts": [{"ports": [{"port": "5432", "protocol": "TCP"}]}]}]},
}]


@pytest.fixture(scope="module")
def lab(lab_factory):
    return lab_factory(PREFIX, HOSTS, policies=POLICIES)


def deployed(lab, hosts=None):
    """The lab deployed (site.yml unless the last run did that), with
    ``hosts`` as its inventory if given (lab.yml first: endpoints appear
    before site.yml plumbs them, as a runtime would start them)."""
    if hosts is not None and hosts != lab.hosts:
        lab.hosts = copy.deepcopy(hosts)
        lab.write()
        lab.up()
    lab.ensure_site()


def with_cache():
    hosts = copy.deepcopy(HOSTS)
    hosts["beta"]["palisade_endpoints"].append(dict(CACHE))
    return hosts


def all_pairs(lab):
    probes = []
    for _h, src in lab.endpoints():
        for _h2, dst in lab.endpoints():
            if dst is src:
                continue
            for port in dst.get("ports") or [{"port": 80, "protocol": "TCP"}]:
                probes.append({"from": "%s/%s" % (src.get("namespace", "default"), src["name"]),
                               "to": dst["ipv4"], "port": port["port"], "protocol": port["protocol"]})
    return probes


def test_first_run_plumbs_and_routes(lab):
    lab.ensure_fresh()
    run = lab.site()
    assert run.changed("alpha") >= 2 and run.changed("gamma") >= 2
    routes = sh("ip", "-n", lab.host_netns("alpha"), "route", "show", "proto", "201")
    assert "10.61.2.0/24 via 198.51.100.12" in routes
    assert "10.61.3.10 via 198.51.100.13" in routes  # gamma has no pod_cidr: one /32 per endpoint
    assert "10.61.1.10 dev lxc" in routes
    routes = sh("ip", "-n", lab.host_netns("gamma"), "route", "show", "proto", "201")
    assert "10.61.1.0/24 via 198.51.100.11" in routes and "10.61.2.0/24 via 198.51.100.12" in routes


def test_real_packets_obey_the_computed_policy_across_hosts(lab):
    deployed(lab, HOSTS)
    probes = all_pairs(lab)
    observed = lab.probe(probes)
    computed = lab.trace(probes)
    differ = [(p, c, o) for p, c, o in zip(probes, computed, observed) if c != o]
    assert differ == [], differ
    # Same host (alpha -> alpha), cross host (alpha -> beta), over SSH (gamma), and UDP are all covered,
    # and the policy really decides something both ways.
    assert {p["protocol"] for p in probes} == {"TCP", "UDP"}
    by_pair = {(p["from"], p["to"], p["port"]): v for p, v in zip(probes, observed)}
    assert by_pair[("default/api", "10.61.3.10", 5432)] == "allow"
    assert by_pair[("default/web", "10.61.3.10", 5432)] == "deny"
    assert by_pair[("shop/client", "10.61.3.10", 5432)] == "deny"
    assert by_pair[("shop/client", "10.61.2.10", 8080)] == "allow"


def test_probe_to_a_closed_port_is_denied(lab):
    deployed(lab)
    verdicts = lab.probe([{"from": "shop/client", "to": "10.61.2.10", "port": 9, "protocol": "TCP"},
                          {"from": "db", "to": "10.61.1.10", "port": 54, "protocol": "UDP"}])
    assert verdicts == ["deny", "deny"]


def test_second_run_changes_nothing(lab):
    deployed(lab)
    before = snapshot(lab)
    run = lab.site()
    assert run.changed() == 0, run
    assert snapshot(lab) == before


def test_gathered_reads_the_hosts_endpoints_and_routes_without_writing(lab):
    deployed(lab)
    before = snapshot(lab)
    alpha = "/run/netns/" + lab.host_netns("alpha")
    rc, result, output = run_module(alpha, "endpoint", {"state": "gathered", "lab_prefix": PREFIX})
    assert rc == 0 and result["changed"] is False, output
    assert result["gathered"] == [
        {"name": "web", "namespace": "default", "ipv4": "10.61.1.10", "netns": "%s-e-default-web" % PREFIX},
        {"name": "client", "namespace": "shop", "ipv4": "10.61.1.20", "netns": "%s-e-shop-client" % PREFIX},
    ]
    # The routes to the other hosts; the endpoints' own /32 routes are the endpoint module's.
    rc, result, output = run_module(alpha, "ip_route", {"state": "gathered", "tables": ["main"]})
    assert rc == 0 and result["changed"] is False, output
    assert [(r["dst"], r.get("gateway")) for r in result["gathered"]] == [
        ("10.61.2.0/24", "198.51.100.12"), ("10.61.3.10/32", "198.51.100.13")]
    assert snapshot(lab) == before


def test_limit_touches_only_the_limited_host_and_still_sees_the_fleet(lab):
    deployed(lab)
    run = lab.site("--limit", "beta")
    assert run.rc == 0 and sorted(run.recap) == ["beta"] and run.changed() == 0, run


def test_check_mode_reports_but_changes_nothing(lab):
    deployed(lab, HOSTS)
    lab.hosts["beta"]["palisade_endpoints"].append(dict(CACHE))
    lab.write()
    lab.up()  # the workload's namespace and server appear first, as a runtime would start them
    before = snapshot(lab)
    run = lab.site("--check", "--diff")
    # beta plumbs it; alpha and gamma only learn its address -> identity (no route: beta has a pod_cidr).
    assert run.changed("beta") >= 1 and run.changed("alpha") == 1 and run.changed("gamma") == 1
    assert "+default/cache 10.61.2.20/32" in run.out and "[app=cache]" in run.out
    # --diff also lists the writes themselves, one per line.
    assert "\n+ veth lxc" in run.out and "<-> %s-e-default-cache:eth0\n" % PREFIX in run.out
    assert "\n+ route 10.61.2.20/32 dev lxc" in run.out
    assert "+ ipcache 10.61.2.20/32: identity" in run.out and "k8s:app=cache" in run.out
    assert snapshot(lab) == before
    run = lab.site()
    assert run.changed("beta") >= 1
    assert lab.probe([{"from": "web", "to": "10.61.2.20", "port": 80}]) == ["allow"]


def test_drift_made_by_hand_is_repaired(lab):
    deployed(lab)
    alpha = lab.host_netns("alpha")
    sh("ip", "-n", alpha, "route", "del", "10.61.2.0/24")
    sh("ip", "-n", "%s-e-default-web" % PREFIX, "addr", "flush", "dev", "eth0")
    assert lab.probe([{"from": "shop/client", "to": "10.61.2.10", "port": 8080}]) == ["deny"]
    run = lab.site("--diff")
    assert run.changed("alpha") == 2, run
    assert "\n+ 10.61.2.0/24 via 198.51.100.12" in run.out  # the one route written again
    assert "\n+ %s-e-default-web: address 10.61.1.10/32 dev eth0\n" % PREFIX in run.out
    assert lab.probe([{"from": "shop/client", "to": "10.61.2.10", "port": 8080},
                      {"from": "api", "to": "10.61.1.10", "port": 80}]) == ["allow", "allow"]
    assert lab.site().changed() == 0


def test_removed_endpoint_is_purged_everywhere(lab):
    deployed(lab, with_cache())
    lab.hosts["gamma"]["palisade_endpoints"] = []
    lab.hosts["beta"]["palisade_endpoints"] = [e for e in lab.hosts["beta"]["palisade_endpoints"] if e["name"] != "cache"]
    lab.write()
    run = lab.site("--diff")
    # gamma: plumbing and datapath; alpha: the /32 route to db and db's ipcache entry.
    assert run.changed("gamma") == 2 and run.changed("alpha") == 2 and run.changed("beta") >= 1
    links = sh("ip", "-n", lab.host_netns("gamma"), "-o", "link", "show")
    assert "lxc" not in links
    routes = sh("ip", "-n", lab.host_netns("alpha"), "route", "show", "proto", "201")
    assert "10.61.3.10" not in routes
    assert lab.site().changed() == 0


def test_administrators_routes_are_left_alone(lab):
    deployed(lab)
    beta = lab.host_netns("beta")
    sh("ip", "-n", beta, "route", "add", "203.0.113.0/24", "via", "198.51.100.11", "proto", "static")
    try:
        assert lab.site().changed() == 0
        assert "203.0.113.0/24 via 198.51.100.11" in sh("ip", "-n", beta, "route", "show")
    finally:
        sh("ip", "-n", beta, "route", "del", "203.0.113.0/24")


@pytest.mark.parametrize("mutate, message", [
    (lambda h: h["beta"]["palisade_endpoints"][0].update(ipv4="10.61.9.10"),
     "inventory host 'beta': palisade_endpoints[0] (default/api): ipv4: 10.61.9.10 lies outside the host's pod_cidr 10.61.2.0/24"),
    (lambda h: h["alpha"]["palisade_endpoints"][0].update(interface="much-too-long-name"),
     "inventory host 'alpha': palisade_endpoints[0] (default/web): interface:"),
    (lambda h: h["beta"]["palisade_endpoints"].append({"name": "web", "ipv4": "10.61.2.99"}),
     "(default/web): name: endpoint default/web is also declared on host 'alpha'"),
    (lambda h: h["beta"]["palisade_node"].pop("ipv4"), "inventory host 'beta': palisade_node.ipv4: is required"),
])
def test_bad_inventory_fails_before_any_host_is_touched(lab, mutate, message):
    good = copy.deepcopy(lab.hosts)
    mutate(lab.hosts)
    lab.write()
    before = snapshot(lab)
    try:
        run = lab.site(check=False)
        assert run.rc != 0
        assert message in run.out, run
        assert "Traceback" not in run.out + run.err
        assert snapshot(lab) == before
    finally:
        lab.hosts = good
        lab.write()
