"""Verdicts for probes (docs/policy-engine.md, "Evaluation of one packet";
the policy_trace interface of docs/inventory.md)."""

import pytest

from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import engine, ir, trace

from tests.support.policy_ir import (
    endpoint, fleet, http_rule, in_ns, landing_rule, peer_rule, port, rule, sel, starwars,
)


def verdicts(policy, probes):
    return [(r["verdict"], r["l4"], r["l7"]) for r in trace.trace(policy, probes)]


def probe(frm, to, port_=80, protocol=None, http=None):
    p = {"from": frm, "to": to, "port": port_}
    if protocol:
        p["protocol"] = protocol
    if http is not None:
        p["http"] = http
    return p


def test_port_prefix_length_is_the_lpm_level():
    assert trace.port_prefix_length(0, 0, 65535, 80) == 0
    assert trace.port_prefix_length(6, 0, 65535, 80) == 8
    assert trace.port_prefix_length(6, 80, 80, 80) == 24
    assert trace.port_prefix_length(6, 64, 127, 80) == 18      # one aligned block of 64
    assert trace.port_prefix_length(6, 79, 81, 79) == 24       # 79..81 = 79, then the block 80-81
    assert trace.port_prefix_length(6, 79, 81, 80) == 23
    assert trace.port_prefix_length(6, 1, 65535, 80) == 18     # 64-127 inside 1..65535
    assert trace.port_prefix_length(6, 1024, 2047, 1500) == 14


def test_starwars_l3_l4_l7():
    policy = engine.compute(starwars(), [landing_rule()])
    landing = {"method": "POST", "path": "/v1/request-landing"}
    results = trace.trace(policy, [
        probe("default/tiefighter", "default/deathstar-1", http=landing),
        probe("default/tiefighter", "10.1.2.10", "http", http={"method": "PUT", "path": "/v1/exhaust-port"}),
        probe("default/xwing", "10.1.1.10"),
        probe("default/tiefighter", "default/deathstar-1"),   # no http: the proxy accepts the connection
        probe("default/deathstar-1", "default/xwing", 9999),  # nothing enforced on that path
    ])
    assert [(r["verdict"], r["l4"], r["l7"]) for r in results] == [
        ("allow", "allow", "allow"), ("deny", "allow", "deny"), ("deny", "deny", None),
        ("allow", "allow", None), ("allow", "allow", None)]
    assert results[0]["policies"] == ["default/rule1"]
    assert "default deny" in results[2]["reason"] and "default/rule1" in results[2]["reason"]
    assert "redirected to the L7 proxy" in results[3]["reason"] and "default/rule1" in results[3]["reason"]
    assert results[4]["policies"] == [] and "no policy enforces" in results[4]["reason"]


def test_deny_wins_over_every_allow_and_only_on_its_port():
    everything = peer_rule(in_ns("default"))
    policy = engine.compute(starwars(), [
        rule("allow-all", in_ns("default"), ingress=[everything]),
        rule("deny-80", in_ns("default", **{"class": "deathstar"}),
             ingress_deny=[peer_rule(in_ns("default", org="alliance"), ports=[port(80)])]),
    ])
    results = trace.trace(policy, [probe("default/xwing", "default/deathstar-1", 80),
                                   probe("default/xwing", "default/deathstar-1", 81),
                                   probe("default/tiefighter", "default/deathstar-1", 80)])
    assert [r["verdict"] for r in results] == ["deny", "allow", "allow"]
    assert results[0]["policies"] == ["deny-80"] and "deny rule" in results[0]["reason"]


def test_egress_is_checked_first_and_both_directions_must_allow():
    policy = engine.compute(starwars(), [
        rule("tf-egress", in_ns("default", **{"class": "tiefighter"}), egress=[peer_rule(in_ns("default"),
                                                                                         ports=[port(443)])]),
        rule("ds-ingress", in_ns("default", **{"class": "deathstar"}), ingress=[peer_rule(in_ns("default"))]),
    ])
    results = trace.trace(policy, [probe("default/tiefighter", "default/deathstar-1", 80),
                                   probe("default/tiefighter", "default/deathstar-1", 443)])
    assert results[0]["verdict"] == "deny" and results[0]["reason"].startswith("default/tiefighter egress")
    assert results[1]["verdict"] == "allow"
    assert results[1]["policies"] == ["ds-ingress", "tf-egress"]


def test_most_specific_l4_match_decides_between_l7_and_l4_only():
    get = http_rule("GET", "/ok")
    policy = engine.compute(starwars(), [
        rule("l7-on-80", in_ns("default", **{"class": "deathstar"}),
             ingress=[peer_rule(in_ns("default"), ports=[port(80)], http=[get])]),
        rule("all-tcp", in_ns("default", **{"class": "deathstar"}), ingress=[peer_rule(in_ns("default"),
                                                                                       ports=[port(0)])]),
    ])
    # Port 80: the exact-port L7 entry is more specific than "all TCP ports".
    assert verdicts(policy, [probe("default/xwing", "default/deathstar-1", 80, http={"path": "/ok"}),
                             probe("default/xwing", "default/deathstar-1", 80, http={"path": "/no"}),
                             probe("default/xwing", "default/deathstar-1", 81)]) == [
        ("allow", "allow", "allow"), ("deny", "allow", "deny"), ("allow", "allow", None)]
    # An L4-only allow on the same port cancels the L7 rule, whoever it allows.
    cancel = engine.compute(starwars(), [
        rule("l7-on-80", in_ns("default", **{"class": "deathstar"}),
             ingress=[peer_rule(in_ns("default", org="empire"), ports=[port(80)], http=[get])]),
        rule("any-80", in_ns("default", **{"class": "deathstar"}), ingress=[peer_rule(ports=[port(80)],
                                                                                      wildcard=True)]),
    ])
    assert verdicts(cancel, [probe("default/tiefighter", "default/deathstar-1", 80, http={"path": "/no"})]) == [
        ("allow", "allow", None)]


def test_l7_applies_where_the_direction_is_not_enforced():
    # Cilium #38676: enableDefaultDeny false does not switch off L7 rules.
    policy = engine.compute(starwars(), [rule(
        "l7", in_ns("default", **{"class": "deathstar"}),
        ingress=[peer_rule(in_ns("default"), ports=[port(80)], http=[http_rule("GET")])], enforce_ingress=False)])
    assert verdicts(policy, [probe("default/xwing", "default/deathstar-1", 80, http={"method": "POST"}),
                             probe("default/xwing", "default/deathstar-1", 22)]) == [
        ("deny", "allow", "deny"), ("allow", "allow", None)]


def test_http_matching_is_anchored_with_headers_and_header_matches():
    rules = [http_rule("GET|HEAD", "/api/v[0-9]+/.*", headers=["X-Tenant: acme", "X-Trace"]),
             http_rule(None, "/private", header_matches=[ir.HeaderMatch("X-Token", "s3cr3t", ""),
                                                         ir.HeaderMatch("X-Log", "1", "LOG")])]
    request = ("GET", "/api/v1/items", "h", {"x-tenant": "acme", "x-trace": "1"})
    assert trace.http_allows(rules, request)
    assert not trace.http_allows(rules, ("GET", "/api/v1/items", "h", {"x-tenant": "other", "x-trace": "1"}))
    assert not trace.http_allows(rules, ("GET", "/api/v1/items", "h", {"x-tenant": "acme"}))
    assert not trace.http_allows(rules, ("GETX", "/api/v1/items", "h", {"x-tenant": "acme", "x-trace": "1"}))
    assert not trace.http_allows(rules, ("GET", "x/api/v1/items", "h", {"x-tenant": "acme", "x-trace": "1"}))
    assert trace.http_allows(rules, ("POST", "/private", "h", {"x-token": "s3cr3t"}))
    assert not trace.http_allows(rules, ("POST", "/private", "h", {"x-token": "guess"}))


def test_http_host_defaults_to_destination_address_and_port():
    policy = engine.compute(starwars(), [rule(
        "host", in_ns("default", **{"class": "deathstar"}),
        ingress=[peer_rule(in_ns("default"), ports=[port(80)], http=[http_rule(host=r"10\.1\.1\.10:80")])])])
    assert verdicts(policy, [probe("default/xwing", "10.1.1.10", 80, http={}),
                             probe("default/xwing", "10.1.2.10", 80, http={}),
                             probe("default/xwing", "10.1.2.10", 80, http={"headers": {"Host": "10.1.1.10:80"}})]) \
        == [("allow", "allow", "allow"), ("deny", "allow", "deny"), ("allow", "allow", "allow")]


def test_addresses_resolve_on_the_enforcing_host():
    # node1's own address is "host" there, other nodes are "remote-node".
    policy = engine.compute(starwars(), [rule("from-host", in_ns("default", **{"class": "deathstar"}),
                                              ingress=[peer_rule("host")])])
    assert verdicts(policy, [probe("192.0.2.11", "default/deathstar-1"), probe("192.0.2.11", "default/deathstar-2"),
                             probe("192.0.2.12", "default/deathstar-2")]) == [
        ("allow", "allow", None), ("deny", "deny", None), ("allow", "allow", None)]
    assert "reserved:remote-node" in trace.trace(policy, [probe("192.0.2.11", "default/deathstar-2")])[0]["reason"]


def test_cidr_rules_follow_the_longest_prefix_of_the_ip_table():
    policy = engine.compute(starwars(), [rule("egress", in_ns("default", org="alliance"), egress=[
        peer_rule(ir.PeerCIDR("203.0.113.0/24", ("203.0.113.128/25",)), ports=[port(443)]),
        peer_rule("world", ports=[port(53, "UDP")])])])
    probes = [probe("default/xwing", "203.0.113.5", 443), probe("default/xwing", "203.0.113.200", 443),
              probe("default/xwing", "8.8.8.8", 53, "UDP"), probe("default/xwing", "10.1.1.10", 53, "UDP")]
    assert verdicts(policy, probes) == [
        ("allow", "allow", None), ("deny", "deny", None), ("allow", "allow", None), ("deny", "deny", None)]


def test_endpoint_addresses_are_the_endpoint():
    policy = engine.compute(starwars(), [landing_rule()])
    by_name = trace.trace(policy, [probe("default/xwing", "default/deathstar-2")])
    by_address = trace.trace(policy, [probe("10.1.3.10", "10.1.2.10")])
    assert by_name == by_address


@pytest.mark.parametrize("bad, message", [
    (probe("default/nobody", "default/xwing"), "probes[0].from: no endpoint default/nobody in the inventory"),
    (probe("default/xwing", "10.1.300.1"), "probes[0].to: '10.1.300.1' is not a valid IPv4 address"),
    (probe("default/xwing", "default/deathstar-1", "https"),
     "probes[0].port: endpoint default/deathstar-1 declares no port named 'https'"),
    (probe("default/xwing", "8.8.8.8", "http"), "probes[0].port: named port 'http' needs an endpoint as destination"),
    (probe("default/xwing", "default/deathstar-1", "http", "UDP"), "probes[0].port: port 'http' of"),
    (probe("default/xwing", "default/deathstar-1", 70000), "probes[0].port: 70000 is not a port number"),
    (probe("default/xwing", "default/deathstar-1", 80, "ICMP"), "probes[0].protocol: must be one of TCP|UDP|SCTP"),
    ({"from": "default/xwing", "to": "default/deathstar-1"}, "probes[0].port: is required"),
    ({"to": "default/xwing", "port": 1}, "probes[0].from: is required"),
    (dict(probe("default/xwing", "default/deathstar-1"), color="red"), "probes[0]: unknown key(s) color"),
])
def test_bad_probes_get_one_line_errors(bad, message):
    policy = engine.compute(starwars(), [])
    with pytest.raises(trace.TraceError) as err:
        trace.trace(policy, [bad])
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_bare_names_mean_the_default_namespace_and_named_ports_pick_their_protocol():
    other = fleet({"n": ("192.0.2.1", [endpoint("default/dns", "10.0.0.1", {"app": "dns"}, [("dns", 53, "UDP")]),
                                       endpoint("default/c", "10.0.0.2", {"app": "c"})])})
    policy = engine.compute(other, [rule("udp", sel(app="dns"), ingress=[peer_rule(sel(), ports=[port(53, "UDP")])])])
    assert verdicts(policy, [probe("c", "dns", "dns")]) == [("allow", "allow", None)]
