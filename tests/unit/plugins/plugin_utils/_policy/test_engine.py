"""The fleet computation: host shares, the incremental path, the persistent
cache, and a few end-to-end runs through the parser."""

import copy
import json
import pickle
import random

import pytest

from ansible_collections.palisade.ebpf.plugins.plugin_utils import _shares as fleet_mod
from ansible_collections.palisade.ebpf.plugins.plugin_utils import _model as model
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import engine, ir, parse, persist
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import state as state_mod
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import trace

from tests.support.policy_ir import endpoint, http_rule, in_ns, landing_rule, peer_rule, port, rule, sel, starwars
from tools import fleetgen


def canonical(policy, fleet_model):
    """Everything hosts receive, as comparable text."""
    return {host: json.dumps(policy.host_share(host), sort_keys=True) for host in sorted(fleet_model["nodes"])}


def full(fleet_model, rules):
    return canonical(engine.compute(fleet_model, rules), fleet_model)


# --- host shares ------------------------------------------------------------------

def test_host_share_holds_own_endpoints_their_policies_and_the_ip_table():
    fleet_model = starwars()
    policy = engine.compute(fleet_model, [landing_rule()])
    share = policy.host_share("node1")
    deathstar = policy.endpoint("default/deathstar-1")["identity"]
    tiefighter = policy.endpoint("default/tiefighter")["identity"]
    assert [(e["name"], e["identity"]) for e in share["endpoints"]] == [("deathstar-1", deathstar),
                                                                        ("tiefighter", tiefighter)]
    refs = {e["policy"] for e in share["endpoints"]}
    assert set(share["policies"]) == refs and len(refs) == 2
    ingress = share["policies"][share["endpoints"][0]["policy"]]["ingress"]
    assert ingress["enforced"] and ingress["enforced_by"] == ["default/rule1"]
    (entry,) = ingress["entries"]
    assert list(entry["peers"]) == sorted([deathstar, tiefighter])
    (l4,) = entry["l4"]
    assert l4[:4] == (6, 80, 80, False) and l4[4][0]["method"] == "POST" and l4[5] == ("default/rule1",)
    table = dict(share["ipcache"], **share["ipcache_overrides"])
    assert table["192.0.2.11/32"] == 1 and table["192.0.2.12/32"] == 6 and table["0.0.0.0/0"] == 2
    assert table["10.1.2.10/32"] == deathstar and table["10.1.3.10/32"] == policy.endpoint("default/xwing")["identity"]
    assert policy.host_share("node2")["ipcache"] is share["ipcache"]  # one table for the fleet
    json.dumps(share)  # plain data all the way down


def test_fleet_host_shares_keep_their_fields_and_gain_the_policy():
    fleet_model = starwars()
    policy = engine.compute(fleet_model, [landing_rule()])
    plain = fleet_mod.host_shares(fleet_model)
    shares = fleet_mod.host_shares(fleet_model, policy=policy)
    for host, share in shares.items():
        assert share["routes"] == plain[host]["routes"] and share["node"] == plain[host]["node"]
        assert share["endpoints"] == plain[host]["endpoints"]  # plumbing is untouched by policy
        for enforced, endpoint in zip(share["enforcement"], share["endpoints"]):
            assert enforced["key"] == "%s/%s" % (endpoint["namespace"], endpoint["name"])
            assert enforced["ipv4"] == endpoint["ipv4"] and enforced["ifname"].startswith("lxc")
            assert enforced["identity"] == policy.endpoint(enforced["key"])["identity"]
            assert enforced["policy"] in share["policies"]
        assert share["ipcache_overrides"] == {"192.0.2.%d/32" % (10 + int(host[-1])): 1}


def test_trace_runs_end_to_end_from_policy_documents():
    documents = [("sw.yaml#0", {
        "apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": "rule1"},
        "spec": {"endpointSelector": {"matchLabels": {"org": "empire", "class": "deathstar"}},
                 "ingress": [{"fromEndpoints": [{"matchLabels": {"org": "empire"}}],
                              "toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}],
                                           "rules": {"http": [{"method": "POST", "path": "/v1/request-landing"}]}}]}]},
    }), ("knp.yaml#0", {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "xwing", "namespace": "default"},
        "spec": {"podSelector": {"matchLabels": {"class": "xwing"}}, "policyTypes": ["Egress"],
                 "egress": [{"to": [{"ipBlock": {"cidr": "10.1.0.0/16", "except": ["10.1.2.0/24"]}}]}]},
    })]
    policy = engine.compute(starwars(), parse.parse_documents(documents))
    results = trace.trace(policy, [
        {"from": "default/tiefighter", "to": "default/deathstar-2", "port": "http",
         "http": {"method": "POST", "path": "/v1/request-landing"}},
        {"from": "default/xwing", "to": "10.1.1.20", "port": 22},    # tiefighter: inside the ipBlock
        {"from": "default/xwing", "to": "10.1.2.10", "port": 80},    # in the except
    ])
    assert [r["verdict"] for r in results] == ["allow", "allow", "deny"]
    assert results[1]["policies"] == ["default/xwing"]


# --- the incremental path ----------------------------------------------------------

def _random_hostvars(rng, hosts=6, per_host=8):
    hostvars = {}
    for h in range(hosts):
        endpoints = []
        for i in range(per_host):
            endpoints.append(endpoint(
                "%s/e%d-%d" % (rng.choice(("ns-a", "ns-b")), h, i), "10.%d.0.%d" % (h, i + 1),
                {"app": "a%d" % rng.randrange(5), "tier": rng.choice(("web", "db"))},
                [("http", rng.choice((80, 8080)), "TCP")] if rng.random() < 0.6 else None))
        hostvars["node%d" % h] = {"palisade_node": {"ipv4": "192.0.2.%d" % (h + 1)}, "palisade_endpoints": endpoints}
    return hostvars


def _random_rules(rng, count=14):
    selectors = [sel(app="a%d" % a) for a in range(5)] + [in_ns("ns-a"), in_ns("ns-b", tier="db"), sel()]
    extra = [ir.PeerIPBlock("10.0.0.0/8", ("10.%d.0.0/16" % rng.randrange(6),)), "cluster", "world",
             ir.PeerCIDR("203.0.113.0/24", ()),
             ir.PeerCIDR("10.0.0.1/32", ())]  # an endpoint's address: the endpoint wins in the IP table
    rules = []
    for i in range(count):
        section = rng.choice(("ingress", "egress", "ingress_deny", "egress_deny"))
        chosen = rng.sample(selectors, 2) + ([rng.choice(extra)] if rng.random() < 0.4 else [])
        ports = rng.choice((None, [port(80)], [port("http")], [port(9000, "TCP", 9100)], [port(53, "ANY")]))
        http = None
        if section in ("ingress", "egress") and ports == [port(80)] and rng.random() < 0.5:
            http = [http_rule("GET", "/%d" % i)]
        rules.append(rule("r%02d" % i, rng.choice(selectors), **{section: [peer_rule(*chosen, ports=ports, http=http)]}))
    return rules


def _mutate(rng, hostvars, rules):
    """One random change of the kinds a fleet sees between runs."""
    hosts = sorted(hostvars)
    host = rng.choice(hosts)
    endpoints = hostvars[host]["palisade_endpoints"]
    kind = rng.choice(("labels-new", "labels-existing", "add", "remove", "ports", "node-address", "rules",
                       "add-host", "remove-host"))
    if kind == "labels-new" and endpoints:
        rng.choice(endpoints)["labels"]["version"] = "v%d" % rng.randrange(1000)
    elif kind == "labels-existing" and endpoints:
        rng.choice(endpoints)["labels"]["app"] = "a%d" % rng.randrange(5)
    elif kind == "add":
        used = {ep["ipv4"] for hv in hostvars.values() for ep in hv["palisade_endpoints"]}
        address = next(a for a in ("10.%s.1.%d" % (host[4:], i) for i in range(1, 255)) if a not in used)
        endpoints.append(endpoint("ns-a/new-%s" % address.replace(".", "-"), address, {"app": "a%d" % rng.randrange(6)}))
    elif kind == "remove" and endpoints:
        endpoints.pop(rng.randrange(len(endpoints)))
    elif kind == "ports" and endpoints:
        rng.choice(endpoints)["ports"] = [{"name": "http", "port": rng.choice((81, 8080)), "protocol": "TCP"}]
    elif kind == "node-address":
        hostvars[host]["palisade_node"]["ipv4"] = "192.0.2.%d" % (100 + hosts.index(host))
    elif kind == "rules":
        rules = list(rules)
        if rng.random() < 0.5 and rules:
            rules.pop(rng.randrange(len(rules)))
        else:
            rules.extend(_random_rules(rng, 1))
            rules[-1] = rules[-1]._replace(name="added-%d" % rng.randrange(10 ** 6))
    elif kind == "add-host":
        index = len(hosts) + 10
        hostvars["node%d" % index] = {"palisade_node": {"ipv4": "192.0.2.%d" % (50 + index)}, "palisade_endpoints": [
            endpoint("ns-b/h%d" % index, "10.%d.0.1" % index, {"app": "a1"})]}
    elif kind == "remove-host" and len(hosts) > 2:
        del hostvars[host]
    return rules


@pytest.mark.parametrize("seed", range(6))
def test_incremental_results_equal_a_full_computation(seed):
    rng = random.Random(seed)
    hostvars = _random_hostvars(rng)
    rules = _random_rules(rng)
    model_cache = model.ModelCache()
    fleet_model = model.load_fleet(copy.deepcopy(hostvars), cache=model_cache)
    state = engine.compute(fleet_model, rules).state
    for step in range(12):
        rules = _mutate(rng, hostvars, rules)
        # The model cache validates only the changed hosts, to the same model.
        fleet_model = model.load_fleet(copy.deepcopy(hostvars), cache=model_cache)
        assert fleet_model == model.load_fleet(copy.deepcopy(hostvars))
        if step % 3 == 0:
            # Every third step goes through the persistent form as well.
            state = persist.restore_state(pickle.loads(pickle.dumps(persist.export_state(state))))
        state = state_mod.update(state, fleet_model, rules)
        assert canonical(engine.FleetPolicy(fleet_model, state), fleet_model) == full(fleet_model, rules), \
            "seed %d step %d (%s)" % (seed, step, state.last_run)


@pytest.mark.parametrize("seed", range(3))
def test_runs_from_the_persistent_cache_with_the_model_cache_equal_a_full_computation(seed, tmp_path):
    rng = random.Random(seed)
    hostvars = _random_hostvars(rng)
    rules = _random_rules(rng)
    for step in range(8):
        cache = engine.PersistentCache(str(tmp_path), "fleet")  # each run starts from disk, as a play does
        fleet_model = model.load_fleet(copy.deepcopy(hostvars), cache=cache.model_cache())
        policy = engine.compute(fleet_model, rules, cache=cache)
        cache.save()
        assert canonical(policy, fleet_model) == full(fleet_model, rules), "seed %d step %d" % (seed, step)
        # The engine took the model cache's digests instead of fingerprinting the records.
        assert {h: s.fingerprint for h, s in policy.state.hosts.items()} == \
            {h: digest for h, (digest, dummy) in cache.model.hosts.items()}
        rules = _mutate(rng, hostvars, rules)


def test_one_label_change_recomputes_only_what_it_touches():
    rng = random.Random(11)
    hostvars = _random_hostvars(rng, hosts=10, per_host=10)
    rules = _random_rules(rng, 20)
    before = model.load_fleet(copy.deepcopy(hostvars))
    policy = engine.compute(before, rules)
    for host in before["nodes"]:
        policy.host_share(host)
    state = persist.restore_state(pickle.loads(pickle.dumps(persist.export_state(policy.state))))
    evaluations = state.cache.evaluations
    # Move one endpoint to another existing label set.
    moved = hostvars["node4"]["palisade_endpoints"][3]
    target = next(ep for ep in hostvars["node7"]["palisade_endpoints"] if ep["namespace"] == moved["namespace"]
                  and ep["labels"] != moved["labels"])
    moved["labels"] = dict(target["labels"])
    after = model.load_fleet(copy.deepcopy(hostvars))
    state = state_mod.update(state, after, rules)
    run = state.last_run
    assert run["mode"] == "incremental" and run["changed_hosts"] == ["node4"]
    assert run["new_identities"] == []
    assert state.cache.evaluations == evaluations          # no selector evaluated again
    assert run["subjects_recomputed"] <= 2                 # the moved endpoint's group, at most
    assert state.distiller.materializations == 0           # policies patched, none rebuilt
    assert canonical(engine.FleetPolicy(after, state), after) == full(after, rules)


def test_a_new_identity_patches_only_the_policies_whose_selections_gained_it():
    fleet_model = starwars()
    rules = [landing_rule(), rule("world", in_ns("default", org="alliance"), egress=[peer_rule("world")])]
    policy = engine.compute(fleet_model, rules)
    for host in fleet_model["nodes"]:
        policy.host_share(host)
    hostvars = {host: {"palisade_node": {"ipv4": node["ipv4"]}, "palisade_endpoints": [
        {k: ep[k] for k in ("name", "namespace", "labels", "ipv4", "ports")} for ep in node["endpoints"]]}
        for host, node in fleet_model["nodes"].items()}
    hostvars["node1"]["palisade_endpoints"][1]["labels"]["version"] = "2"   # tiefighter: new identity
    after = model.load_fleet(hostvars)
    state = state_mod.update(policy.state, after, rules)
    run = state.last_run
    assert len(run["new_identities"]) == 1 and len(run["removed_identities"]) == 1
    # The deathstars' ingress (empire peers) changed; the xwing's egress to world did not.
    assert run["policies_patched"] == 1
    assert canonical(engine.FleetPolicy(after, state), after) == full(after, rules)


def test_nothing_changed_means_nothing_recomputed(tmp_path):
    fleet_model = starwars()
    cache = engine.PersistentCache(str(tmp_path))
    first = engine.compute(fleet_model, [landing_rule()], cache=cache)
    assert first.stats["mode"] == "full" and cache.save()
    again = engine.PersistentCache(str(tmp_path))
    second = engine.compute(fleet_model, [landing_rule()], cache=again)
    assert again.loaded and second.stats["mode"] == "unchanged"
    assert not again.save()  # nothing to write
    assert canonical(second, fleet_model) == canonical(first, fleet_model)


def test_persistent_cache_survives_damage_and_other_versions(tmp_path):
    fleet_model = starwars()
    cache = engine.PersistentCache(str(tmp_path), "fleet")
    engine.compute(fleet_model, [landing_rule()], cache=cache)
    cache.save()
    assert (tmp_path / "policy-state-fleet.pickle").exists()
    (tmp_path / "policy-state-fleet.pickle").write_bytes(b"not a pickle")
    damaged = engine.PersistentCache(str(tmp_path), "fleet")
    policy = engine.compute(fleet_model, [landing_rule()], cache=damaged)
    assert not damaged.loaded and damaged.error and policy.stats["mode"] == "full"
    damaged.save()
    data = pickle.loads((tmp_path / "policy-state-fleet.pickle").read_bytes())
    data["format"] = -1
    (tmp_path / "policy-state-fleet.pickle").write_bytes(pickle.dumps(data))
    other = engine.PersistentCache(str(tmp_path), "fleet")
    assert engine.compute(fleet_model, [landing_rule()], cache=other).stats["mode"] == "full"
    assert "another version" in other.error


def test_a_cache_written_by_other_code_is_not_used(tmp_path):
    """An upgrade (or a move of the classes the cache pickles) must cost one
    full computation, never a failed run: the state written by other code is
    refused before any of its pickled objects is loaded."""
    fleet_model = starwars()
    cache = engine.PersistentCache(str(tmp_path), "fleet")
    engine.compute(fleet_model, [landing_rule()], cache=cache)
    cache.save()
    state_file = tmp_path / "policy-state-fleet.pickle"
    data = pickle.loads(state_file.read_bytes())
    assert data["code"] == persist._code_digest()  # pylint: disable=protected-access
    data["code"] = "written-by-another-version"
    # What an older layout left behind: a pickle naming a module that no longer exists.
    data["repository"] = b"cno.such.module\nGone\n."
    state_file.write_bytes(pickle.dumps(data))
    other = engine.PersistentCache(str(tmp_path), "fleet")
    policy = engine.compute(fleet_model, [landing_rule()], cache=other)
    assert not other.loaded and policy.stats["mode"] == "full"
    assert "another version" in other.error
    assert canonical(policy, fleet_model) == canonical(engine.compute(fleet_model, [landing_rule()]), fleet_model)


def test_generated_fleet_incremental_equals_full():
    """A small fleet from tools/fleetgen.py (every policy template,
    through the parser): one endpoint to a new identity, then to an
    existing one, each through the persistent cache."""
    generated = fleetgen.generate(fleetgen.FleetSpec(hosts=8, endpoints_per_host=15, identities=40, namespaces=3,
                                                     policies=3 * fleetgen.TEMPLATE_COUNT, seed=5))
    rules = parse.parse_documents(generated.policy_sources())
    fleet_model = model.load_fleet(generated.hostvars, generated.namespaces)
    state = engine.compute(fleet_model, rules).state
    for how in ("new-identity", "existing-identity"):
        fleetgen.change_one_endpoint(generated.hostvars, how)
        fleet_model = model.load_fleet(generated.hostvars, generated.namespaces)
        state = persist.restore_state(pickle.loads(pickle.dumps(persist.export_state(state))))
        state = state_mod.update(state, fleet_model, rules)
        assert state.last_run["mode"] == "incremental"
        assert canonical(engine.FleetPolicy(fleet_model, state), fleet_model) == full(fleet_model, rules), how
