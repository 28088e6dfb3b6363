"""Identities (docs/policy-engine.md, "Identity labels" and "Identity numbers")."""

import pytest

from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import engine, identity, ir, labels

from tests.support.policy_ir import endpoint, fleet, rule, sel, starwars


def test_endpoint_identity_labels_include_namespace_cluster_and_namespace_labels():
    got = identity.endpoint_labels({"app": "web"}, "x", {"kubernetes.io/metadata.name": "x", "team": "a"})
    assert got == {
        ("k8s", "app", "web"),
        ("k8s", ir.LABEL_NAMESPACE, "x"),
        ("k8s", ir.LABEL_CLUSTER, "default"),
        ("k8s", ir.LABEL_NAMESPACE_LABELS + "kubernetes.io/metadata.name", "x"),
        ("k8s", ir.LABEL_NAMESPACE_LABELS + "team", "a"),
    }


def test_pod_labels_cannot_override_system_labels():
    got = identity.endpoint_labels({ir.LABEL_NAMESPACE: "other", ir.LABEL_NAMESPACE_LABELS + "team": "b"}, "x", {})
    assert ("k8s", ir.LABEL_NAMESPACE, "x") in got
    assert ("k8s", ir.LABEL_NAMESPACE, "other") not in got
    assert all(not label[1].startswith(ir.LABEL_NAMESPACE_LABELS) for label in got)


def test_numbers_are_sha256_of_the_label_string_in_the_derived_range():
    text = labels.label_string(identity.endpoint_labels({"app": "web"}, "x", {}))
    number = identity.hash_number(text)
    assert identity.FIRST_DERIVED <= number <= identity.LAST_DERIVED
    numbers, collisions = identity.allocate([text])
    assert numbers == {text: number} and collisions == []


def test_reserved_identities_have_fixed_numbers():
    table = identity.IdentityTable()
    assert {table.describe(n) for n in range(1, 9)} == {
        "reserved:host", "reserved:world", "reserved:unmanaged", "reserved:health", "reserved:init",
        "reserved:remote-node", "reserved:kube-apiserver", "reserved:ingress"}
    assert table.by_prefix[(0, 0)] == identity.WORLD


def test_collisions_resolve_in_lexicographic_order_and_are_reported(monkeypatch):
    real = identity.hash_number

    def colliding(text):
        return 1000 if "#" not in text else real(text)  # every plain string collides

    monkeypatch.setattr(identity, "hash_number", colliding)
    numbers, collisions = identity.allocate(["b", "a", "c"])
    assert numbers["a"] == 1000  # the smallest keeps the plain hash
    assert numbers["b"] == real("b#1") and numbers["c"] == real("c#1")
    assert [(c.text, c.holder, c.attempt) for c in collisions] == [("b", "a", 1), ("c", "a", 1)]
    # Deterministic whatever the input order.
    assert identity.allocate(["c", "a", "b"]) == (numbers, collisions)


def test_a_rehash_that_collides_again_takes_the_next_suffix(monkeypatch):
    real = identity.hash_number
    table = {"a": 1000, "b": 1000, "b#1": 1000, "b#2": 2000}
    monkeypatch.setattr(identity, "hash_number", lambda text: table.get(text, real(text)))
    numbers, collisions = identity.allocate(["a", "b"])
    assert numbers == {"a": 1000, "b": 2000}
    assert collisions[0].attempt == 2


def test_cidr_identities_carry_every_containing_prefix_and_world():
    got = identity.cidr_labels(identity.parse_prefix("10.1.0.0/16"))
    cidrs = sorted(label[1] for label in got if label[0] == "cidr")
    assert len(cidrs) == 17 and "0.0.0.0/0" in cidrs and "10.0.0.0/8" in cidrs and "10.1.0.0/16" in cidrs
    assert ("reserved", "world", "") in got


def test_prefix_parsing_rejects_host_bits_and_garbage():
    assert identity.parse_prefix("10.0.0.0/8") == (0x0A000000, 8)
    for bad in ("10.0.0.1/8", "10.0.0/8", "10.0.0.256/32", "x/1", "10.0.0.0/33"):
        with pytest.raises(ValueError):
            identity.parse_prefix(bad)


def test_identities_do_not_move_when_unrelated_label_sets_come_and_go():
    base = starwars()
    before = _identities(base)
    bigger = fleet({
        "node1": ("192.0.2.11", [endpoint("default/deathstar-1", "10.1.1.10", {"org": "empire", "class": "deathstar"},
                                          [("http", 80, "TCP")]),
                                 endpoint("default/tiefighter", "10.1.1.20", {"org": "empire", "class": "tiefighter"}),
                                 endpoint("other/probe", "10.1.1.30", {"app": "probe"})]),
        "node3": ("192.0.2.13", [endpoint("default/xwing", "10.1.3.10", {"org": "alliance", "class": "xwing"})]),
    })
    after = _identities(bigger)
    assert {k: after[k] for k in before if k in after} == {k: v for k, v in before.items() if k in after}
    assert after["default/deathstar-1"] == before["default/deathstar-2"]


def test_identities_do_not_depend_on_which_hosts_are_in_the_play():
    # --limit changes the play's hosts, not the fleet; and a host's identities
    # are a function of its endpoints' labels alone.
    one = _identities(starwars())
    only_node3 = fleet({"node3": ("192.0.2.13", [endpoint("default/xwing", "10.1.3.10",
                                                          {"org": "alliance", "class": "xwing"})])})
    assert _identities(only_node3)["default/xwing"] == one["default/xwing"]


def test_policy_cidrs_get_identities_and_world_is_zero_prefix():
    cidr = ir.PeerCIDR("203.0.113.0/24", ("203.0.113.128/25",))
    policy = engine.compute(starwars(), [rule("r", sel(), egress=[
        ir.PeerRule((cidr, ir.PeerCIDR("0.0.0.0/0", ())), (), None, None, None)])])
    prefixes = {identity.format_prefix(p) for p in policy.table.by_prefix}
    assert prefixes == {"0.0.0.0/0", "203.0.113.0/24", "203.0.113.128/25"}
    assert policy.table.by_prefix[(0, 0)] == identity.WORLD


def test_table_update_refuses_when_a_collision_is_involved(monkeypatch):
    table = identity.IdentityTable.build([frozenset({("k8s", "a", "1")})], [])
    text = next(iter(table.by_text))
    monkeypatch.setattr(identity, "hash_number", lambda t: table.by_text[text])
    assert table.update({"k8s:a=2;": (identity.KIND_ENDPOINT, frozenset({("k8s", "a", "2")}), None)}, []) is None


def _identities(fleet_model):
    policy = engine.compute(fleet_model, [])
    return {key: policy.endpoint(key)["identity"] for key in (
        "%s/%s" % (ep["namespace"], ep["name"]) for node in fleet_model["nodes"].values() for ep in node["endpoints"])}
