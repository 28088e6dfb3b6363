"""Filters used by the lab role and verify.yml."""

from ansible_collections.palisade.ebpf.plugins.filter.lab import lab_inputs
from ansible_collections.palisade.ebpf.plugins.filter.probes import probe_matrix, probes_from, reachability_matrix

HOSTVARS = {
    "n1": {"ansible_connection": "palisade.ebpf.netns", "palisade_node": {"ipv4": "192.0.2.1"},
           "palisade_endpoints": [{"name": "a", "ipv4": "10.0.1.1", "ports": [{"port": 53, "protocol": "UDP"}]},
                                  {"name": "b", "namespace": "x", "ipv4": "10.0.1.2", "netns": "custom"}]},
    "n2": {"palisade_node": {"ipv4": "192.0.2.2"}, "palisade_endpoints": [{"name": "c", "ipv4": "10.0.2.1"}]},
    "other": {},
}


def test_lab_inputs_maps_transport_and_ports():
    inputs = lab_inputs(HOSTVARS, ["n1", "n2", "other"], "ssh")
    assert inputs["hosts"] == [{"name": "n1", "ipv4": "192.0.2.1", "ssh": False},
                               {"name": "n2", "ipv4": "192.0.2.2", "ssh": True}]
    assert inputs["endpoints"][0] == {"host": "n1", "name": "a", "namespace": "default",
                                      "ports": [{"port": 53, "protocol": "UDP"}]}
    assert inputs["endpoints"][1]["netns"] == "custom"


def test_probe_matrix_covers_every_other_endpoint_and_port():
    probes = probe_matrix(HOSTVARS, ["n1", "n2", "other"], "n2")
    assert probes == [
        {"from": "default/c", "to": "10.0.1.1", "port": 53, "protocol": "UDP"},
        {"from": "default/c", "to": "10.0.1.2", "port": 80, "protocol": "TCP"},
    ]


def test_probes_from_keeps_only_this_hosts_sources():
    probes = [{"from": "a", "to": "10.0.2.1", "port": 80}, {"from": "default/c", "to": "10.0.1.1", "port": 53}]
    assert probes_from(probes, HOSTVARS["n1"]["palisade_endpoints"]) == probes[:1]


def test_reachability_matrix_rows_and_columns():
    hostvars = dict(HOSTVARS)
    hostvars["n2"] = dict(HOSTVARS["n2"], palisade_probe={"results": [
        {"from": "default/c", "to": "10.0.1.1", "port": 53, "protocol": "UDP", "verdict": "allow"},
        {"from": "default/c", "to": "10.0.1.2", "port": 80, "protocol": "TCP", "verdict": "deny"},
    ]})
    lines = reachability_matrix(hostvars, ["n1", "n2"])
    assert lines[0].split() == ["from", "->", "to", "default/a:53/UDP", "x/b:80/TCP"]
    assert lines[1].split() == ["default/c", "allow", "deny"]


def test_verdict_table_shows_computed_and_observed():
    from ansible_collections.palisade.ebpf.plugins.filter.probes import verdict_table
    probes = [{"from": "default/tiefighter", "to": "10.1.1.10", "port": 80,
               "http": {"method": "PUT", "path": "/v1/exhaust-port"}}]
    results = [{"verdict": "deny", "l4": "allow", "l7": "deny", "reason": "no HTTP rule matches", "policies": ["default/rule1"]}]
    observed = [{"verdict": "deny", "http_status": 403, "connected": True}]
    (line,) = verdict_table(probes, results, observed)
    assert line.split() == ["default/tiefighter", "->", "10.1.1.10:80/TCP", "PUT", "/v1/exhaust-port", "deny", "(l4", "allow,",
                            "l7", "deny)", "observed", "deny", "(HTTP", "403)", "no", "HTTP", "rule", "matches"]
