"""The probe filters (plugins/filter/probes.py) used by verify.yml and trace.yml."""

from ansible_collections.palisade.ebpf.plugins.filter.probes import (
    FilterModule,
    fleet_probe_matrix,
    host_endpoints,
    observed_table,
    probe_matrix,
    probes_from,
    reachability_matrix,
    verdict_table,
)

from tests.support.sample_inventory import HOSTS, HOSTVARS


def test_probe_matrix_covers_every_other_endpoint_and_port():
    probes = probe_matrix(HOSTVARS, HOSTS, "n2")
    assert probes == [
        {"from": "default/c", "to": "10.0.1.1", "port": 53, "protocol": "UDP"},
        {"from": "default/c", "to": "10.0.1.2", "port": 8080, "protocol": "TCP"},
    ]


def test_fleet_probe_matrix_is_every_hosts_probe_matrix():
    probes = fleet_probe_matrix(HOSTVARS, HOSTS)
    assert probes == sum((probe_matrix(HOSTVARS, HOSTS, host) for host in HOSTS), [])
    assert {p["from"] for p in probes} == {"default/a", "x/b", "default/c"}
    assert not any(p["from"] == "default/a" and p["to"] == "10.0.1.1" for p in probes)  # never to itself


def test_probes_from_keeps_only_this_hosts_sources():
    probes = [{"from": "a", "to": "10.0.2.1", "port": 80}, {"from": "default/c", "to": "10.0.1.1", "port": 53},
              {"from": "x/b", "to": "10.0.2.1", "port": 80}]
    assert probes_from(probes, HOSTVARS["n1"]["palisade_endpoints"]) == [probes[0], probes[2]]
    assert probes_from(probes, None) == []
    assert probes_from(probes, host_endpoints(HOSTVARS, "n1")) == [probes[0], probes[2]]


def test_host_endpoints_are_the_hosts_palisade_endpoints():
    assert host_endpoints(HOSTVARS, "n2") == [e for e in HOSTVARS["n2"]["palisade_endpoints"] if isinstance(e, dict)]
    assert host_endpoints({"n3": {}}, "n3") == []


def with_results(host, results):
    hostvars = dict(HOSTVARS)
    hostvars[host] = dict(HOSTVARS[host], palisade_probe={"results": results})
    return hostvars


def test_reachability_matrix_rows_and_columns():
    hostvars = with_results("n2", [
        {"from": "default/c", "to": "10.0.1.1", "port": 53, "protocol": "UDP", "verdict": "allow"},
        {"from": "default/c", "to": "10.0.1.2", "port": 80, "protocol": "TCP", "verdict": "deny"},
    ])
    lines = reachability_matrix(hostvars, ["n1", "n2"])
    assert lines[0].split() == ["from", "->", "to", "default/a:53/UDP", "x/b:80/TCP"]
    assert lines[1].split() == ["default/c", "allow", "deny"]


def test_observed_table_says_what_each_probe_saw():
    hostvars = with_results("n1", [
        {"from": "default/a", "to": "10.0.2.1", "port": 80, "verdict": "allow", "http_status": 200},
        {"from": "default/a", "to": "10.0.2.1", "port": 81, "verdict": "deny", "error": "timed out"},
    ])
    assert [line.split() for line in observed_table(hostvars, HOSTS)] == [
        ["default/a", "->", "10.0.2.1:80/TCP", "allow", "(HTTP", "200)"],
        ["default/a", "->", "10.0.2.1:81/TCP", "deny", "(timed", "out)"],
    ]


def test_verdict_table_shows_computed_and_observed():
    probes = [{"from": "default/tiefighter", "to": "10.1.1.10", "port": 80,
               "http": {"method": "PUT", "path": "/v1/exhaust-port"}}]
    results = [{"verdict": "deny", "l4": "allow", "l7": "deny", "reason": "no HTTP rule matches", "policies": ["default/rule1"]}]
    observed = [{"verdict": "deny", "http_status": 403, "connected": True}]
    (line,) = verdict_table(probes, results, observed)
    assert line.split() == ["default/tiefighter", "->", "10.1.1.10:80/TCP", "PUT", "/v1/exhaust-port", "deny", "(l4", "allow,",
                            "l7", "deny)", "observed", "deny", "(HTTP", "403)", "no", "HTTP", "rule", "matches"]


def test_registered_names():
    assert sorted(FilterModule().filters()) == ["fleet_probe_matrix", "host_endpoints", "observed_table", "probe_matrix",
                                                "probes_from", "reachability_matrix", "verdict_table"]
