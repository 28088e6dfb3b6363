"""Label sets and selector matching (docs/policy-engine.md, "Selectors")."""

import itertools
import random

import pytest

from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import identity, ir, labels
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import selectorcache as sc

from tests.support.policy_ir import req, sel

WEB = frozenset({("k8s", "app", "web"), ("k8s", "tier", "front"), ("k8s", ir.LABEL_NAMESPACE, "x")})
DB = frozenset({("k8s", "app", "db"), ("k8s", ir.LABEL_NAMESPACE, "x")})
OTHER_SOURCE = frozenset({("container", "app", "web")})
HOST = identity.reserved_labels("host")
WORLD = identity.reserved_labels("world")
CIDR = identity.cidr_labels(identity.parse_prefix("10.0.0.0/8"))


def matching(selector, *sets):
    return [labels.matches(selector, labels.LabelView(s)) for s in sets]


def test_source_any_matches_every_source_a_named_source_only_itself():
    assert matching(sel(app="web"), WEB, OTHER_SOURCE) == [True, True]
    assert matching(sel(req("app", "In", "web", source="k8s")), WEB, OTHER_SOURCE) == [True, False]
    assert matching(sel(req("app", "In", "web", source="container")), WEB, OTHER_SOURCE) == [False, True]


def test_reserved_labels_match_only_with_their_source():
    host = sel(req("host", "In", "", source="reserved"))
    assert matching(host, HOST, WORLD, WEB) == [True, False, False]
    # CIDR identities carry reserved:world, so a world selector finds them too.
    world = sel(req("world", "In", "", source="reserved"))
    assert matching(world, WORLD, CIDR, HOST) == [True, True, False]


def test_operators_follow_kubernetes_absent_keys_included():
    assert matching(sel(req("tier", "Exists")), WEB, DB) == [True, False]
    assert matching(sel(req("tier", "DoesNotExist")), WEB, DB) == [False, True]
    assert matching(sel(req("tier", "NotIn", "front")), WEB, DB) == [False, True]
    assert matching(sel(req("app", "In", "db", "web")), WEB, DB) == [True, True]


def test_empty_selector_selects_endpoints_only():
    assert matching(ir.Selector(()), WEB, DB, HOST, WORLD, CIDR) == [True, True, False, False, False]


def test_unknown_operator_is_an_error_both_ways():
    bad = sel(req("app", "Like", "w"))
    with pytest.raises(ValueError):
        labels.matches(bad, labels.LabelView(WEB))
    index = labels.LabelIndex()
    index.add(300, WEB)
    with pytest.raises(ValueError):
        index.select(bad)


def test_label_string_is_canonical_and_parses_back():
    text = labels.label_string(WEB)
    assert text == "k8s:app=web;k8s:io.kubernetes.pod.namespace=x;k8s:tier=front;"
    assert labels.label_string(set(reversed(sorted(WEB)))) == text
    assert identity.parse_label_string(text) == WEB
    assert identity.parse_label_string(labels.label_string(CIDR)) == CIDR
    assert labels.format_labels(HOST) == "reserved:host"


def test_index_selection_equals_matching_each_label_set():
    """LabelIndex.select (set algebra) and matches (one label set) agree on
    random selectors over random label sets."""
    rng = random.Random(7)
    keys, values = ("app", "tier", "env"), ("a", "b", "c", "")
    sets = {}
    for number in range(256, 356):
        chosen = {("k8s", k, rng.choice(values)) for k in keys if rng.random() < 0.7}
        if rng.random() < 0.2:
            chosen.add(("container", "app", rng.choice(values)))
        sets[number] = frozenset(chosen)
    sets[1], sets[2] = HOST, WORLD
    index = labels.LabelIndex()
    for number, label_set in sets.items():
        index.add(number, label_set)
    ops = ("In", "NotIn", "Exists", "DoesNotExist")
    for dummy in range(300):
        requirements = []
        for dummy2 in range(rng.randrange(0, 3)):
            op = rng.choice(ops)
            vals = rng.sample(values, 2) if op in ("In", "NotIn") else []
            requirements.append(req(rng.choice(keys), op, *vals, source=rng.choice(("any", "k8s", "container"))))
        selector = sel(*requirements)
        expected = {n for n, s in sets.items() if labels.matches(selector, labels.LabelView(s))}
        assert index.select(selector) == expected, selector
        # The plain-tuple form (as the persistent cache stores keys) is the same selector.
        assert index.select(sc.plain(selector)) == expected


def test_index_removal_forgets_the_identity():
    index = labels.LabelIndex()
    index.add(300, WEB)
    index.add(301, DB)
    index.remove(300, WEB)
    assert index.select(sel(req(ir.LABEL_NAMESPACE, "In", "x"))) == {301}
    assert index.select(ir.Selector(())) == {301}
    assert not any(300 in members for members in itertools.chain(index.exact.values(), index.keyed.values()))
