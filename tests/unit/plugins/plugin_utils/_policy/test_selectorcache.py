"""The selector cache: one evaluation per distinct peer, shared; incremental updates."""

from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import engine, identity, ir, labels
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import selectorcache as sc

from tests.support.policy_ir import endpoint, fleet, in_ns, peer_rule, port, req, rule, sel, starwars


def _policy(rules, fleet_model=None):
    return engine.compute(fleet_model or starwars(), rules)


def _numbers(policy, *keys):
    return {policy.endpoint(k)["identity"] for k in keys}


def test_each_distinct_selector_is_evaluated_once_and_shared():
    empire = in_ns("default", org="empire")
    rules = [rule("r%d" % i, in_ns("default", org="empire"), ingress=[peer_rule(empire, ports=[port(80 + i)])])
             for i in range(5)]
    policy = _policy(rules)
    cache = policy.cache
    # One subject selector and one peer selector, identical in all five rules.
    assert len(cache.keys()) == 1
    assert cache.evaluations == 1
    assert cache.lookups - cache.evaluations >= 9  # the other lookups were hits
    assert cache.users[("selector", empire)] == {("subject", d) for d in policy.state.repository.digests} | \
        {("peer", d) for d in policy.state.repository.digests}
    assert cache.dump() == [{"selector": sc.key_text(("selector", empire)), "identities": 2, "users": 10}]


def test_equal_selectors_from_different_objects_share_an_entry():
    one = in_ns("default", org="empire")
    two = ir.Selector(tuple(ir.Requirement(*r) for r in one.requirements))
    policy = _policy([rule("a", one), rule("b", two, ingress=[peer_rule(one)])])
    assert policy.cache.evaluations == 1


def test_entities():
    policy = _policy([])
    cache = policy.cache
    endpoints = set(policy.table.endpoint_numbers)
    assert cache.selection(("entity", "cluster")) == endpoints | {1, 3, 4, 5, 6}
    assert cache.selection(("entity", "world")) == {2}
    assert cache.selection(("entity", "host")) == {1}
    assert cache.selection(("entity", "remote-node")) == {6}
    assert cache.selection(("entity", "world-ipv6")) == frozenset()
    assert sc.peer_key(ir.PeerEntity("all")) is sc.WILDCARD


def test_cidr_peers_select_world_and_cidr_identities_never_endpoints():
    outer = ir.PeerCIDR("10.0.0.0/8", ("10.1.0.0/16",))
    policy = _policy([rule("r", in_ns("default"), egress=[peer_rule(outer, ir.PeerCIDR("0.0.0.0/0", ()))])])
    table = policy.table
    by_prefix = {identity.format_prefix(p): n for p, n in table.by_prefix.items()}
    assert policy.cache.selection(sc.peer_key(outer)) == {by_prefix["10.0.0.0/8"]}
    assert policy.cache.selection(("cidr", "0.0.0.0/0", ())) == set(by_prefix.values())
    # The deathstar lives in 10.1.1.10, inside 10/8: still not selected.
    assert not policy.cache.selection(sc.peer_key(outer)) & table.endpoint_numbers


def test_ipblock_selects_endpoint_identities_fully_inside_and_warns_about_partial_ones():
    deathstars = _numbers(_policy([]), "default/deathstar-1")
    block = ir.PeerIPBlock("10.1.0.0/16", ("10.1.2.0/24",))
    policy = _policy([rule("r", in_ns("default"), egress=[peer_rule(block)], kind="NetworkPolicy")])
    selected = policy.cache.selection(sc.peer_key(block))
    tiefighter = _numbers(policy, "default/tiefighter")
    # tiefighter (10.1.1.20) is inside; the deathstar identity has one endpoint
    # in the except (10.1.2.10), so it is not selected, and that is reported.
    assert tiefighter <= selected
    assert not deathstars & selected
    assert policy.cache.partial[sc.peer_key(block)] == deathstars
    assert any("only some endpoints" in w for w in policy.warnings)


def test_update_matches_only_new_identities_and_reports_changes():
    policy = _policy([rule("r", in_ns("default", org="empire"), ingress=[peer_rule(in_ns("default"))])])
    cache = policy.cache
    evaluations = cache.evaluations
    table = policy.table
    new_labels = identity.endpoint_labels({"org": "empire", "class": "bomber"}, "default",
                                          {"kubernetes.io/metadata.name": "default"})
    xwing = policy.endpoint("default/xwing")["identity"]
    added, removed = table.update({labels.label_string(new_labels): (identity.KIND_ENDPOINT, new_labels, None)},
                                  [table.text(xwing)])
    changes = cache.update(added, removed)
    bomber = added[0].number
    subject = ("selector", in_ns("default", org="empire"))
    peer = ("selector", in_ns("default"))
    assert changes[subject] == ({bomber}, set())
    assert changes[peer] == ({bomber}, {xwing})
    assert cache.evaluations == evaluations  # nothing re-evaluated from scratch
    cluster = cache.selection(("entity", "cluster"))
    assert bomber in cluster and xwing not in cluster


def test_selection_digests_are_order_independent_and_track_updates():
    policy = _policy([rule("r", sel(), ingress=[peer_rule("cluster")])])
    cache = policy.cache
    key = ("entity", "cluster")
    before = cache.digest(key)
    fresh = sc.SelectorCache(policy.table, cache.addresses)
    assert fresh.digest(key) == before
    xwing = policy.endpoint("default/xwing")["identity"]
    removed = policy.table.update({}, [policy.table.text(xwing)])[1]
    cache.update((), removed)
    assert cache.digest(key) != before
    assert cache.digest(key) == sc.SelectorCache(policy.table, cache.addresses).digest(key)


def test_requires_are_anded_into_endpoint_selectors_of_rules_selecting_the_same_subject():
    empire = in_ns("default", org="empire")
    fleet_model = fleet({"n": ("192.0.2.1", [
        endpoint("default/ds", "10.0.0.1", {"class": "deathstar", "org": "empire"}),
        endpoint("default/tf", "10.0.0.2", {"class": "tiefighter", "org": "empire"}),
        endpoint("default/xw", "10.0.0.3", {"class": "xwing", "org": "alliance"}),
    ])})
    ds = in_ns("default", **{"class": "deathstar"})
    rules = [rule("allow", ds, ingress=[peer_rule(in_ns("default"))]),
             rule("require", ds, ingress=[ir.PeerRule((), (empire,), None, None, None)])]
    policy = engine.compute(fleet_model, rules)
    subject = policy.subject_policy("default/ds")
    peers = set(subject.ingress.peers)
    assert peers == _numbers(policy, "default/ds", "default/tf")
    assert req(ir.LABEL_NAMESPACE, "In", "default", source="k8s") in empire.requirements
