"""What a host's modules want (plugin_utils/_want.py): the datapath's
flat entries, the L7 proxy's maps and rulesets (shares come from real
policies through the engine), the IP table both read, and host_want over
fleet_state's registered result."""

import json
import os
import re
from pathlib import Path

import pytest
import yaml

from ansible_collections.palisade.ebpf.plugins.module_utils._datapath import artifacts as dp_artifacts
from ansible_collections.palisade.ebpf.plugins.module_utils._datapath.state import unpack_ipcache
from ansible_collections.palisade.ebpf.plugins.plugin_utils import _fleet, _shares, _want
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import trace
from ansible_collections.palisade.ebpf.plugins.plugin_utils._store import ShareStore, StoreError
from ansible_collections.palisade.ebpf.plugins.plugin_utils._want import proxy_want

from tests.support import policy_harness as h
from tests.support.l7_policies import (
    DEATHSTAR,
    REMOTE_XWING,
    TIEFIGHTER,
    XWING,
    cnp,
    criteria,
    deathstar_ingress,
    identity,
    key_of,
    l4_port,
    l7_port,
    proxy_lookup,
    rule_criteria,
    share_of,
)
from tests.support.paths import REPO


# --- the L7 proxy ------------------------------------------------------------------

def test_starwars_example_redirects_empire_landing_requests_to_the_deathstar():
    policies = list(yaml.safe_load_all(Path(REPO, "examples/starwars/policies/starwars.yaml").read_text()))
    lab = h.Lab([DEATHSTAR, TIEFIGHTER, REMOTE_XWING], [p for p in policies if p])
    want = proxy_want(share_of(lab))
    deathstar = key_of(lab, "default/deathstar")
    assert want["endpoints"] == {"10.1.1.10": deathstar}  # the tiefighter's policy redirects nothing
    (rid,) = {r["id"] for r in want["rulesets"]}
    # Empire (tiefighter and the deathstar itself) gets the landing rule; the
    # xwing is dropped at L4, so the proxy has no entry for it.
    assert want["rules"] == {"%s/i/80/%d" % (deathstar, identity(lab, "default/tiefighter")): rid,
                             "%s/i/80/%d" % (deathstar, identity(lab, "default/deathstar")): rid}
    assert rule_criteria(want, rid) == [["method -m reg '^(?:POST)$'", "pathq -m reg '^(?:/v1/request-landing)$'"]]
    assert re.match(r"^r[0-9a-f]{8}$", rid) and re.match(r"^p[0-9a-f]{8}$", deathstar)


def test_any_peer_rule_specific_peer_rules_l4_cancel_and_the_dash_fallback():
    lab = h.Lab([DEATHSTAR, TIEFIGHTER, REMOTE_XWING], [deathstar_ingress(
        "l7-public",
        {"toPorts": l7_port(80, {"method": "GET", "path": "/public"})},             # any peer: GET /public
        {"fromEndpoints": [{"matchLabels": {"org": "alliance"}}], "toPorts": l4_port(80)},  # xwing: L4 only
        {"fromEndpoints": [{"matchLabels": {"class": "tiefighter"}}],
         "toPorts": l7_port(80, {"method": "POST", "path": "/v1/request-landing"})})])
    want = proxy_want(share_of(lab))
    pol = key_of(lab, "default/deathstar")
    tie, xwing = identity(lab, "default/tiefighter"), identity(lab, "default/xwing")
    public = want["rules"]["%s/i/80/0" % pol]
    both = want["rules"]["%s/i/80/%d" % (pol, tie)]
    assert want["rules"]["%s/i/80/%d" % (pol, xwing)] == "-"  # the L4-only allow cancels L7 for it
    assert len(want["rules"]) == 3  # the deathstar itself falls back to the any-peer entry
    assert rule_criteria(want, public) == [["method -m reg '^(?:GET)$'", "pathq -m reg '^(?:/public)$'"]]
    # Same port, same level: the tiefighter's rules are ORed with the any-peer rule.
    assert sorted(rule_criteria(want, both)) == [
        ["method -m reg '^(?:GET)$'", "pathq -m reg '^(?:/public)$'"],
        ["method -m reg '^(?:POST)$'", "pathq -m reg '^(?:/v1/request-landing)$'"]]
    assert [r["id"] for r in want["rulesets"]] == sorted([public, both])


def test_deny_rule_removes_l7_for_the_denied_peer_only():
    policies = [deathstar_ingress("l7-public", {"toPorts": l7_port(80, {"method": "GET", "path": "/public"})}),
                cnp("no-alliance", {"endpointSelector": {"matchLabels": {"class": "deathstar"}},
                                    "ingressDeny": [{"fromEndpoints": [{"matchLabels": {"org": "alliance"}}],
                                                     "toPorts": l4_port(80)}]})]
    lab = h.Lab([DEATHSTAR, TIEFIGHTER, REMOTE_XWING], policies)
    want = proxy_want(share_of(lab))
    pol = key_of(lab, "default/deathstar")
    assert want["rules"]["%s/i/80/%d" % (pol, identity(lab, "default/xwing"))] == "-"
    assert proxy_lookup(want, pol, "i", 80, identity(lab, "default/tiefighter")) == want["rules"]["%s/i/80/0" % pol]


def test_egress_l7_rule_is_keyed_by_the_destination_identity():
    lab = h.Lab([DEATHSTAR, TIEFIGHTER, REMOTE_XWING], [cnp("tie-egress", {
        "endpointSelector": {"matchLabels": {"class": "tiefighter"}},
        "egress": [{"toEndpoints": [{"matchLabels": {"class": "deathstar"}}],
                    "toPorts": l7_port(8080, {"method": "GET", "path": "/v1/.*", "host": "^deathstar\\.empire$"})}]})])
    want = proxy_want(share_of(lab))
    pol = key_of(lab, "default/tiefighter")
    assert want["endpoints"] == {"10.1.1.20": pol}
    assert len(want["rules"]) == 1
    key = next(iter(want["rules"]))
    assert key == "%s/e/8080/%d" % (pol, identity(lab, "default/deathstar"))
    assert rule_criteria(want, want["rules"][key]) == [[
        "method -m reg '^(?:GET)$'", "pathq -m reg '^(?:/v1/.*)$'", "req.hdr(host) -m reg '^(?:^deathstar\\.empire$)$'"]]


def test_headers_and_header_matches_become_criteria_and_mutations():
    lab = h.Lab([DEATHSTAR, TIEFIGHTER], [deathstar_ingress("headers", {"toPorts": l7_port(80, {
        "method": "GET", "path": "/",
        "headers": ["X-My-Header: true", "X-Present"],
        "headerMatches": [{"name": "X-Required", "value": "yes"},
                          {"name": "X-Logged", "value": "1", "mismatch": "LOG"},
                          {"name": "X-Added", "value": "a", "mismatch": "ADD"},
                          {"name": "X-Deleted", "value": "d", "mismatch": "DELETE"},
                          {"name": "X-Replaced", "value": "50%", "mismatch": "REPLACE"}]})})])
    want = proxy_want(share_of(lab))
    (rs,) = want["rulesets"]
    names = criteria(want, rs["id"])
    (rule,) = rs["rules"]
    required = sorted(names[w] for w in rule["condition"].split())
    assert required == ["method -m reg '^(?:GET)$'", "pathq -m reg '^(?:/)$'",
                        "req.fhdr(X-My-Header) -m str 'true'", "req.fhdr(X-Present) -m found",
                        "req.fhdr(X-Required) -m str 'yes'"]
    assert not any("X-Logged" in c for c in names.values())  # LOG neither denies nor changes anything
    spelled = {m: sorted(("!" if w.startswith("!") else "") + names[w.lstrip("!")] for w in c.split())
               for m, c in zip(rule["mutations"], rule["mutation_conditions"])}
    base = ["method -m reg '^(?:GET)$'", "pathq -m reg '^(?:/)$'",
            "req.fhdr(X-My-Header) -m str 'true'", "req.fhdr(X-Present) -m found"]
    assert spelled == {
        "add-header X-Added 'a'": sorted(base + ["!req.fhdr(X-Added) -m str 'a'"]),
        "del-header X-Deleted": sorted(base + ["req.fhdr(X-Deleted) -m found", "!req.fhdr(X-Deleted) -m str 'd'"]),
        "set-header X-Replaced '50%%'": sorted(base + ["!req.fhdr(X-Replaced) -m str '50%'"]),
    }


def test_empty_http_rules_proxy_and_allow_everything():
    lab = h.Lab([DEATHSTAR, TIEFIGHTER], [deathstar_ingress("all", {"toPorts": l7_port(80, {})})])
    want = proxy_want(share_of(lab))
    (rs,) = want["rulesets"]
    assert rs["rules"] == [{"condition": "", "mutations": [], "mutation_conditions": []}]
    assert set(want["rules"].values()) == {rs["id"]}


def test_lookup_with_fallback_gives_the_trace_verdict_for_every_peer():
    lab = h.Lab([DEATHSTAR, TIEFIGHTER, XWING], [
        deathstar_ingress("a", {"toPorts": l7_port(80, {"method": "GET", "path": "/public"})},
                          {"fromEndpoints": [{"matchLabels": {"org": "alliance"}}], "toPorts": l4_port(80)},
                          {"fromEndpoints": [{"matchLabels": {"org": "empire"}}],
                           "toPorts": l7_port(80, {"method": "PUT"}) + l7_port(81, {"path": "/x"})}),
        cnp("b", {"endpointSelector": {"matchLabels": {"org": "empire"}},
                  "egress": [{"toEndpoints": [{"matchLabels": {"org": "alliance"}}], "toPorts": l7_port(80, {})},
                             {"toPorts": l7_port(81, {"method": "HEAD"})}]})])
    want = proxy_want(share_of(lab))
    peers = [identity(lab, k) for k in ("default/deathstar", "default/tiefighter", "default/xwing")] + [2, 424242]
    checked = 0
    for key in ("default/deathstar", "default/tiefighter"):
        subject = lab.policy.subject_policy(key)
        for side, direction in (("i", subject.ingress), ("e", subject.egress)):
            for port in (80, 81, 82):
                for peer in peers:
                    verdict = trace.evaluate(direction, peer, 6, port)
                    got = proxy_lookup(want, key_of(lab, key), side, port, peer)
                    if verdict.decision == trace.REDIRECT:
                        assert got == _want.ruleset_id(_want.canonical_rules(verdict.http)), (key, side, port, peer)
                        checked += 1
                    else:
                        assert got is None, (key, side, port, peer, verdict)
    assert checked >= 10


def test_identity_churn_changes_maps_not_rulesets():
    policies = [deathstar_ingress("landing", {"fromEndpoints": [{"matchLabels": {"org": "empire"}}],
                                              "toPorts": l7_port(80, {"method": "POST", "path": "/v1/request-landing"})})]
    before = proxy_want(share_of(h.Lab([DEATHSTAR, TIEFIGHTER], policies)))
    shuttle = h.ep("default/shuttle", "10.1.1.40", {"org": "empire", "class": "shuttle"})
    other = h.ep("default/deathstar-2", "10.1.1.50", {"org": "empire", "class": "deathstar", "v": "2"})
    after_lab = h.Lab([DEATHSTAR, TIEFIGHTER, shuttle, other], policies)
    after = proxy_want(share_of(after_lab))
    assert after["rulesets"] == before["rulesets"]
    assert after["rules"] != before["rules"] and after["endpoints"] != before["endpoints"]
    assert "%s/i/80/%d" % (key_of(after_lab, "default/deathstar"), identity(after_lab, "default/shuttle")) in after["rules"]


def test_share_with_tuples_gives_the_same_result():
    lab = h.Lab([DEATHSTAR, TIEFIGHTER], [deathstar_ingress("h", {"toPorts": l7_port(80, {
        "path": "/a", "headerMatches": [{"name": "X-A", "mismatch": "ADD"}]})})])
    raw = _shares.host_share(lab.fleet, "node1", policy=lab.policy)
    assert proxy_want(raw) == proxy_want(json.loads(json.dumps(raw)))


def test_proxy_wants_compute_each_policy_once_and_give_every_host_what_proxy_want_gives(monkeypatch):
    lab = h.Lab([DEATHSTAR, TIEFIGHTER, REMOTE_XWING,
                 h.ep("default/deathstar-2", "10.1.2.20", {"org": "empire", "class": "deathstar"}, host="node2")],
                [deathstar_ingress("landing", {"fromEndpoints": [{"matchLabels": {"org": "empire"}}],
                                               "toPorts": l7_port(80, {"method": "POST", "path": "/v1/request-landing"})})])
    expected = {host: proxy_want(share_of(lab, host)) for host in ("node1", "node2")}
    calls = []
    real = _want.policy_rules
    monkeypatch.setattr(_want, "policy_rules", lambda *args: calls.append(args[0]) or real(*args))
    wants = _want.ProxyWants()
    got = {host: wants.want(share_of(lab, host)) for host in ("node1", "node2")}
    assert got == expected
    assert expected["node1"]["rulesets"] == expected["node2"]["rulesets"] != []
    refs = [{e["policy"] for e in share_of(lab, host)["enforcement"]} for host in ("node1", "node2")]
    assert refs[0] & refs[1]  # the deathstars share their policy ...
    assert sorted(calls) == sorted(refs[0] | refs[1])  # ... computed for the first host only
    assert got["node1"]["rulesets"][0] is got["node2"]["rulesets"][0]


def test_rules_the_proxy_cannot_apply_fail_the_hosts_that_use_them_only():
    lab = h.Lab([DEATHSTAR, TIEFIGHTER, REMOTE_XWING], [deathstar_ingress("quoted", {"toPorts": l7_port(80, {"headers": ["X'Ship"]})})])
    wants = _want.ProxyWants()
    with pytest.raises(ValueError, match="HTTP header name \"X'Ship\" cannot be matched by the L7 proxy"):
        wants.want(share_of(lab, "node1"))
    assert wants.want_or_error(share_of(lab, "node1")) == {
        "error": "HTTP header name \"X'Ship\" cannot be matched by the L7 proxy"}
    assert wants.want_or_error(share_of(lab, "node2")) == {"endpoints": {}, "rules": {}, "rulesets": []}


# --- the datapath --------------------------------------------------------------------

def test_datapath_want_flattens_entries_and_keeps_the_identities_its_diffs_name():
    share = {
        "enforcement": [{"key": "default/web", "ifname": "lxc1", "ipv4": "10.1.1.10", "identity": 300, "policy": "p"}],
        "policies": {"p": {
            "ingress": {"enforced": True, "enforced_by": ["default/r"], "entries": [
                {"peers": [301, 302], "l4": [[6, 80, 80, False, None, ["default/r"]],
                                             [6, 8080, 8080, False, [{"method": "GET"}], ["default/r"]]]},
                {"peers": [0], "l4": [[17, 53, 53, True, None, ["default/d"]]]}]},
            "egress": {"enforced": False, "enforced_by": [], "entries": []}}},
        "ipcache_overrides": {"192.0.2.11/32": 1},
    }
    want = _want.datapath_want(share, "packed", {"300": "k8s:app=web", "301": "k8s:app=db", "999": "k8s:app=unused"})
    assert want["policies"]["p"]["ingress"] == {"enforced": True, "entries": [
        [0, 17, 53, 53, "deny"], [301, 6, 80, 80, "allow"], [301, 6, 8080, 8080, "redirect"],
        [302, 6, 80, 80, "allow"], [302, 6, 8080, 8080, "redirect"]]}
    assert want["policies"]["p"]["egress"] == {"enforced": False, "entries": []}
    assert want["endpoints"] == share["enforcement"]
    assert want["identities"] == {"300": "k8s:app=web", "301": "k8s:app=db"}
    assert want["ipcache_packed"] == "packed"
    assert _want.datapath_want(share, "packed")["identities"] == {}


# --- the IP table and host_want ------------------------------------------------------------

def fleet_state_of(lab):
    """fleet_state's registered result for ``lab``, as a playbook sees it."""
    state, dummy = _fleet.fleet_state(lab.hostvars, lab.namespaces, lambda: lab.documents, {}, use_cache=False)
    return json.loads(json.dumps(state))


def test_a_host_view_of_the_ip_table_is_the_shared_one_then_its_own_rows():
    lab = h.Lab([DEATHSTAR, TIEFIGHTER, REMOTE_XWING], nodes={"node1": "192.0.2.11", "node2": "192.0.2.12"})
    shared = lab.policy.ipcache_shared()
    packed = _want.pack_shared_ipcache(shared)
    assert len(packed) == 12 * len(shared) and "=" not in packed  # records concatenate
    for host, own, other in (("node1", "192.0.2.11/32", "192.0.2.12/32"), ("node2", "192.0.2.12/32", "192.0.2.11/32")):
        view = dict(unpack_ipcache(_want.host_ipcache(packed, lab.host_share(host))))
        assert view == dict(shared, **{own: 1}) and view[other] == 6
    assert dict(unpack_ipcache(packed)) == shared


def test_host_want_gives_both_modules_the_same_ip_table():
    lab = h.Lab([DEATHSTAR, TIEFIGHTER, REMOTE_XWING], [deathstar_ingress(
        "landing", {"toPorts": l7_port(80, {"method": "POST", "path": "/v1/request-landing"})})],
        nodes={"node1": "192.0.2.11", "node2": "192.0.2.12"})
    state = fleet_state_of(lab)
    datapath = _want.host_want(state, "node1", "datapath")
    proxy = _want.host_want(state, "node1", "l7proxy")
    # The proxy reads the table from the datapath's artifacts on the host, at the versions fleet_state named.
    store = ShareStore(state["store"])
    assert proxy["ipcache_version"] == {"fleet": state["objects"]["fleet_table"], "host": state["hosts"]["node1"]["datapath"][0]}
    artifacts = dict((name, store.get(version)) for name, version in proxy["ipcache_version"].items())
    table = dict(unpack_ipcache(datapath["ipcache_packed"]))
    assert dp_artifacts.ip_table(artifacts) == table
    assert table["192.0.2.11/32"] == 1 and table["192.0.2.12/32"] == 6
    assert table["10.1.1.10/32"] == identity(lab, "default/deathstar")
    assert {k: v for k, v in proxy.items() if k != "ipcache_version"} == proxy_want(share_of(lab))
    identities = ShareStore(state["store"]).get(state["objects"]["identities"])
    assert datapath == _want.datapath_want(share_of(lab), datapath["ipcache_packed"], identities)
    assert _want.host_want(state, "node2", "l7proxy")["endpoints"] == {}
    with pytest.raises(ValueError, match="one of datapath, l7proxy, endpoints, routes, not 'proxy'"):
        _want.host_want(state, "node1", "proxy")


def test_host_want_gives_the_endpoint_and_route_modules_their_arguments():
    lab = h.Lab([DEATHSTAR, TIEFIGHTER, REMOTE_XWING], nodes={"node1": "192.0.2.11", "node2": "192.0.2.12"})
    state = fleet_state_of(lab)
    full = _shares.host_share(lab.fleet, "node1", policy=lab.policy)
    assert _want.host_want(state, "node1", "endpoints") == json.loads(json.dumps(full["endpoints"]))
    assert _want.host_want(state, "node1", "routes") == full["routes"] == [{"dst": "10.1.2.10/32", "gateway": "192.0.2.12"}]
    assert _want.host_want(state, "node2", "routes") == [{"dst": "10.1.1.10/32", "gateway": "192.0.2.11"},
                                                         {"dst": "10.1.1.20/32", "gateway": "192.0.2.11"}]


def test_host_want_says_when_the_store_lost_or_damaged_an_object():
    lab = h.Lab([DEATHSTAR, TIEFIGHTER], nodes={"node1": "192.0.2.11"})
    state = fleet_state_of(lab)
    path = os.path.join(state["store"], state["hosts"]["node1"]["share"] + ".json")
    with open(path, "ab") as handle:
        handle.write(b" ")
    with pytest.raises(StoreError, match="object %s is damaged" % state["hosts"]["node1"]["share"]):
        _want.host_want(state, "node1", "datapath")
    os.unlink(path)
    with pytest.raises(StoreError, match="is missing; run palisade.ebpf.fleet_state again"):
        _want.host_want(state, "node1", "endpoints")
    with pytest.raises(StoreError, match="is not an object name"):
        _want.host_want(dict(state, hosts={"node1": {"share": "../../etc/passwd"}}), "node1", "endpoints")


def test_host_want_raises_a_proxy_error_only_for_the_proxy():
    lab = h.Lab([DEATHSTAR, TIEFIGHTER], [deathstar_ingress("quoted", {"toPorts": l7_port(80, {"headers": ["X'Ship"]})})])
    state = fleet_state_of(lab)
    assert _want.host_want(state, "node1", "datapath")["endpoints"]
    with pytest.raises(ValueError, match="cannot be matched by the L7 proxy"):
        _want.host_want(state, "node1", "l7proxy")
