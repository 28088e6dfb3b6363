"""Policy documents -> IR: every construct of the three kinds with the exact
IR expected, each validation with its error, and canonical form under
reordering. Examples follow Cilium's and Kubernetes' documentation."""

import copy
import random
import textwrap

import pytest
import yaml

from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import ir, parse
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy.ir import (
    HeaderMatch,
    HTTPRule,
    ICMPSpec,
    PeerCIDR,
    PeerEntity,
    PeerIPBlock,
    PeerRule,
    PeerSelector,
    PortSpec,
    Requirement,
    Rule,
    Selector,
)
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy.parse_common import canon_key, one_line
from tests.support.paths import REPO

NSKEY = ir.LABEL_NAMESPACE
NSLABELS = ir.LABEL_NAMESPACE_LABELS


def Rq(source, key, op, *values):
    return Requirement(source, key, op, tuple(values))


def any_(key, value):
    return Rq("any", key, "In", value)


def k8s(key, value):
    return Rq("k8s", key, "In", value)


def ns(name):
    return k8s(NSKEY, name)


NS_EXISTS = Rq("k8s", NSKEY, "Exists")


def sel(*reqs):
    return Selector(tuple(sorted(set(reqs), key=canon_key)))


def peers(*items):
    return tuple(sorted(set(items), key=canon_key))


def load(text):
    return yaml.safe_load(textwrap.dedent(text))


def parse_one(text, origin="p.yaml#0"):
    return parse.parse_documents([(origin, load(text) if isinstance(text, str) else text)])


def parse_single(text, origin="p.yaml#0"):
    rules = parse_one(text, origin)
    assert len(rules) == 1
    return rules[0]


def cnp(spec, name="p", namespace="default"):
    doc = {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": name}, "spec": spec}
    if namespace:
        doc["metadata"]["namespace"] = namespace
    return doc


def ccnp(spec, name="p"):
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumClusterwideNetworkPolicy", "metadata": {"name": name}, "spec": spec}


def knp(spec, name="p", namespace="default"):
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def _warm_memo(docs):
    parsed = {}
    for item in docs:
        one = parse.ParseMemo()
        try:
            parse.parse_documents([item], memo=one)
        except ir.PolicyError:
            continue
        parsed.update(one.parsed)
    return parse.ParseMemo(parsed)


def error_of(doc, origin="p.yaml#0"):
    docs = doc if isinstance(doc, list) else [(origin, doc)]
    with pytest.raises(ir.PolicyError) as info:
        parse.parse_documents(docs)
    err = info.value
    text = str(err)
    # A memo of earlier runs (every document that parses on its own) changes nothing.
    with pytest.raises(ir.PolicyError) as memoized:
        parse.parse_documents(docs, memo=_warm_memo(docs))
    assert str(memoized.value) == text
    assert len(text.splitlines()) == 1, text
    assert any(text.startswith(one_line(o) + ":") for o, dummy in docs), text
    return err


# --- Cilium's Star Wars getting-started examples --------------------------

STARWARS_L3L4 = """
    apiVersion: "cilium.io/v2"
    kind: CiliumNetworkPolicy
    metadata:
      name: "rule1"
    spec:
      description: "L3-L4 policy to restrict deathstar access to empire ships only"
      endpointSelector:
        matchLabels:
          org: empire
          class: deathstar
      ingress:
      - fromEndpoints:
        - matchLabels:
            org: empire
        toPorts:
        - ports:
          - port: "80"
            protocol: TCP
"""

STARWARS_SUBJECT = Selector((any_("class", "deathstar"), any_("org", "empire"), ns("default")))
EMPIRE = PeerSelector(Selector((any_("org", "empire"), ns("default"))))


def test_starwars_l3_l4():
    rule = parse_single(STARWARS_L3L4, "policies/starwars.yaml#1")
    assert rule == Rule(
        name="default/rule1",
        kind="CiliumNetworkPolicy",
        origin="policies/starwars.yaml#1",
        subject=STARWARS_SUBJECT,
        ingress=(PeerRule(peers=(EMPIRE,), requires=(), ports=(PortSpec("TCP", 80, None),), icmps=None, http=None),),
        egress=(),
        ingress_deny=(),
        egress_deny=(),
        enforce_ingress=True,
        enforce_egress=False,
    )


def test_starwars_l7_request_landing():
    doc = load(STARWARS_L3L4)
    doc["spec"]["ingress"][0]["toPorts"][0]["rules"] = {"http": [{"method": "POST", "path": "/v1/request-landing"}]}
    rule = parse_single(doc)
    assert rule.ingress == (PeerRule(
        peers=(EMPIRE,), requires=(), ports=(PortSpec("TCP", 80, None),), icmps=None,
        http=(HTTPRule(method="POST", path="/v1/request-landing", host=None, headers=(), header_matches=()),),
    ),)
    assert rule.enforce_ingress and not rule.enforce_egress


def test_demo_inventory_policy_file():
    from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import files as policy_files
    import os
    import yaml
    demo = os.path.join(REPO, "inventories", "demo")
    with open(os.path.join(demo, "group_vars", "all.yml")) as f:
        globs = yaml.safe_load(f)["palisade_policy_files"]
    docs = policy_files.documents_from_files(globs, demo)  # relative globs start at the inventory
    rules = parse.parse_documents(docs)
    assert [r.name for r in rules] == ["default/rule1"]
    assert rules[0].origin == "../../examples/starwars/policies/starwars.yaml#0"
    assert rules[0].ingress[0].http[0].method == "POST"


# --- CNP / CCNP constructs -----------------------------------------------

def test_specs_list_gives_one_rule_per_spec():
    doc = cnp(None)
    del doc["spec"]
    doc["specs"] = [
        {"endpointSelector": {"matchLabels": {"app": "b"}}, "egress": [{"toEndpoints": [{}]}]},
        {"endpointSelector": {"matchLabels": {"app": "a"}}, "ingress": [{}]},
    ]
    rules = parse_one(doc, "f.yaml#3")
    assert [r.origin for r in rules] == ["f.yaml#3.specs[0]", "f.yaml#3.specs[1]"]
    assert {r.name for r in rules} == {"default/p"}
    assert rules[0].subject == sel(any_("app", "b"), ns("default"))
    assert rules[0].egress == (PeerRule((PeerSelector(sel(ns("default"))),), (), None, None, None),)
    assert rules[0].enforce_egress and not rules[0].enforce_ingress
    # spec and specs together: spec first
    doc["spec"] = {"endpointSelector": {}, "ingress": [{}]}
    rules = parse_one(doc, "f.yaml#3")
    assert [r.origin for r in rules] == ["f.yaml#3", "f.yaml#3.specs[0]", "f.yaml#3.specs[1]"]


def test_namespace_defaults_and_scoping_of_subject_peers_and_requires():
    rule = parse_single(cnp({
        "endpointSelector": {"matchLabels": {"k8s:app": "web"}},
        "ingress": [{
            "fromEndpoints": [
                {"matchLabels": {"app": "a"}},
                {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "other", "app": "b"}},
                {"matchLabels": {"io.kubernetes.pod.namespace": "third"}},
                {"matchLabels": {"reserved:host": ""}},
                {"matchLabels": {"io.cilium.k8s.namespace.labels.team": "x"}},
            ],
            "fromRequires": [{"matchLabels": {"env": "prod"}}],
        }],
    }, namespace=None))
    assert rule.name == "default/p"
    assert rule.subject == sel(k8s("app", "web"), ns("default"))
    assert rule.ingress == (PeerRule(
        peers=peers(
            PeerSelector(sel(any_("app", "a"), ns("default"))),
            PeerSelector(sel(any_("app", "b"), ns("other"))),
            PeerSelector(sel(any_(NSKEY, "third"))),
            PeerSelector(sel(Rq("reserved", "host", "In", ""))),
            PeerSelector(sel(any_(NSLABELS + "team", "x"), ns("default"))),
        ),
        requires=(sel(any_("env", "prod"), ns("default")),),
        ports=None, icmps=None, http=None,
    ),)


def test_ccnp_scoping():
    rule = parse_single(ccnp({
        "endpointSelector": {},
        "egress": [{"toEndpoints": [{}, {"matchLabels": {"app": "db"}}, {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "kube-system"}}]}],
        "egressDeny": [{"toRequires": [{"matchExpressions": [{"key": "tier", "operator": "Exists"}]}]}],
    }))
    assert rule.name == "p" and rule.kind == "CiliumClusterwideNetworkPolicy"
    assert rule.subject == Selector(())
    assert rule.egress == (PeerRule(peers(
        PeerSelector(sel(NS_EXISTS)),
        PeerSelector(sel(any_("app", "db"), NS_EXISTS)),
        PeerSelector(sel(ns("kube-system"))),
    ), (), None, None, None),)
    assert rule.egress_deny == (PeerRule((), (sel(Rq("any", "tier", "Exists"), NS_EXISTS),), None, None, None),)
    assert rule.enforce_egress and not rule.enforce_ingress


def test_reserved_init_subject_leaves_selectors_unscoped():
    rule = parse_single(cnp({"endpointSelector": {"matchLabels": {"reserved:init": ""}},
                             "egress": [{"toEndpoints": [{"matchLabels": {"app": "dns"}}]}]}))
    assert rule.subject == sel(Rq("reserved", "init", "In", ""))
    assert rule.egress[0].peers == (PeerSelector(sel(any_("app", "dns"))),)


def test_match_expressions_and_match_labels_are_one_requirement_form():
    a = parse_single(cnp({"endpointSelector": {"matchLabels": {"app": "x", "v": 2}}, "ingress": [{}]}))
    b = parse_single(cnp({"endpointSelector": {"matchExpressions": [
        {"key": "v", "operator": "In", "values": ["2", "2"]},
        {"key": "app", "operator": "In", "values": ["x"]},
    ]}, "ingress": [{}]}))
    assert a.subject == b.subject == sel(any_("app", "x"), any_("v", "2"), ns("default"))
    c = parse_single(cnp({"endpointSelector": {"matchExpressions": [
        {"key": "k8s:tier", "operator": "NotIn", "values": ["b", "a"]},
        {"key": "gone", "operator": "DoesNotExist"},
        {"key": "any:here", "operator": "Exists", "values": []},
    ]}, "ingress": [{}]}))
    assert c.subject == sel(Rq("k8s", "tier", "NotIn", "a", "b"), Rq("any", "gone", "DoesNotExist"),
                            Rq("any", "here", "Exists"), ns("default"))


def test_entities():
    rule = parse_single(cnp({"endpointSelector": {}, "egress": [
        {"toEntities": ["world", "cluster", "world"]},
        {"toEntities": ["all", "host", "remote-node", "kube-apiserver", "health", "init", "ingress", "unmanaged",
                        "world-ipv4", "world-ipv6", "none"]},
    ]}))
    assert rule.egress == tuple(sorted([
        PeerRule(peers(PeerEntity("cluster"), PeerEntity("world")), (), None, None, None),
        PeerRule(peers(*[PeerEntity(e) for e in (
            "all", "host", "remote-node", "kube-apiserver", "health", "init", "ingress", "unmanaged", "world-ipv4",
            "world-ipv6", "none")]), (), None, None, None),
    ], key=canon_key))


def test_cidr_rules():
    rule = parse_single(cnp({"endpointSelector": {}, "egress": [
        {"toCIDR": ["192.0.2.7", "10.1.2.3/8", "10.0.0.0/8"]},
        {"toCIDRSet": [{"cidr": "172.16.0.0/12", "except": ["172.16.9.0/24", "172.16.1.0/24", "172.16.1.0/24"]},
                       {"cidr": "0.0.0.0/0"}]},
    ]}))
    assert rule.egress == tuple(sorted([
        PeerRule((PeerCIDR("10.0.0.0/8", ()), PeerCIDR("192.0.2.7/32", ())), (), None, None, None),
        PeerRule((PeerCIDR("0.0.0.0/0", ()), PeerCIDR("172.16.0.0/12", ("172.16.1.0/24", "172.16.9.0/24"))),
                 (), None, None, None),
    ], key=canon_key))
    ing = parse_single(cnp({"endpointSelector": {}, "ingress": [{"fromCIDR": ["10.0.0.0/8"], "toPorts": [{"ports": [{"port": 53, "protocol": "UDP"}]}]}]}))
    assert ing.ingress == (PeerRule((PeerCIDR("10.0.0.0/8", ()),), (), (PortSpec("UDP", 53, None),), None, None),)


def test_ports_names_ranges_protocols():
    rule = parse_single(cnp({"endpointSelector": {}, "ingress": [{"toPorts": [{"ports": [
        {"port": "HTTP-Alt"},
        {"port": 8080, "endPort": 8090, "protocol": "TCP"},
        {"port": "9000", "endPort": 9000, "protocol": "UDP"},
        {"port": "0", "protocol": "SCTP"},
        {"port": "443", "endPort": 0, "protocol": "ANY"},
    ]}]}]}))
    assert rule.ingress == (PeerRule(None, (), (
        PortSpec("ANY", 443, None),
        PortSpec("ANY", "http-alt", None),
        PortSpec("SCTP", 0, None),
        PortSpec("TCP", 8080, 8090),
        PortSpec("UDP", 9000, None),
    ), None, None),)


def test_each_to_ports_entry_is_its_own_peer_rule():
    rule = parse_single(cnp({"endpointSelector": {}, "ingress": [{
        "fromEntities": ["world"],
        "toPorts": [
            {"ports": [{"port": "80", "protocol": "TCP"}], "rules": {"http": [{"path": "/public"}]}},
            {"ports": [{"port": "443", "protocol": "TCP"}]},
        ],
    }]}))
    world = (PeerEntity("world"),)
    assert rule.ingress == (
        PeerRule(world, (), (PortSpec("TCP", 80, None),), None, (HTTPRule(None, "/public", None, (), ()),)),
        PeerRule(world, (), (PortSpec("TCP", 443, None),), None, None),
    )


def test_http_rules_canonical():
    rule = parse_single(cnp({"endpointSelector": {}, "ingress": [{"toPorts": [{"ports": [{"port": "http", "protocol": "TCP"}], "rules": {"http": [
        {"method": "GET", "path": "/a/.*", "host": "^api\\.example\\.com$",
         "headers": ["X-Token:  abc ", "X-Present", "Accept: text/html"],
         "headerMatches": [{"name": "X-B", "value": "2", "mismatch": "LOG"}, {"name": "X-A", "value": "1"},
                           {"name": "X-C", "value": ""}]},
        {"method": "", "path": None},
        {"method": "GET", "path": "/a/.*", "host": "^api\\.example\\.com$",
         "headers": ["Accept: text/html", "X-Present", "X-Token: abc"],
         "headerMatches": [{"name": "X-A", "value": "1", "mismatch": ""}, {"name": "X-C"},
                           {"name": "X-B", "value": "2", "mismatch": "LOG"}]},
    ]}}]}]}))
    assert rule.ingress[0].http == (
        HTTPRule(None, None, None, (), ()),
        HTTPRule("GET", "/a/.*", "^api\\.example\\.com$", ("Accept: text/html", "X-Present", "X-Token: abc"),
                 (HeaderMatch("X-A", "1", ""), HeaderMatch("X-B", "2", "LOG"), HeaderMatch("X-C", None, ""))),
    )
    assert rule.ingress[0].ports == (PortSpec("TCP", "http", None),)


def test_http_empty_list_is_l7_without_restriction():
    rule = parse_single(cnp({"endpointSelector": {}, "ingress": [{"toPorts": [
        {"ports": [{"port": "80", "protocol": "TCP"}], "rules": {"http": []}},
        {"ports": [{"port": "81", "protocol": "TCP"}], "rules": {}},
    ]}]}))
    assert [(pr.ports[0].port, pr.http) for pr in rule.ingress] == [
        (80, (HTTPRule(None, None, None, (), ()),)), (81, None)]


def test_icmps():
    rule = parse_single(cnp({"endpointSelector": {}, "ingress": [{"fromEntities": ["cluster"], "icmps": [
        {"fields": [{"type": 8, "family": "IPv4"}, {"type": "EchoReply"}]},
        {"fields": [{"type": "3"}, {"type": "Echo"}]},
    ]}], "egressDeny": [{"icmps": [{"fields": [{"type": "TimeExceeded"}]}]}]}))
    assert rule.ingress == (PeerRule((PeerEntity("cluster"),), (), None,
                                     (ICMPSpec("IPv4", 0), ICMPSpec("IPv4", 3), ICMPSpec("IPv4", 8)), None),)
    assert rule.egress_deny == (PeerRule(None, (), None, (ICMPSpec("IPv4", 11),), None),)
    assert rule.enforce_egress and rule.enforce_ingress


def test_deny_rules_and_default_deny():
    rule = parse_single(cnp({"endpointSelector": {}, "ingressDeny": [
        {"fromEntities": ["world"]},
        {"fromEndpoints": [{"matchLabels": {"app": "bad"}}], "toPorts": [{"ports": [{"port": "22", "protocol": "TCP"}]}]},
    ]}))
    assert rule.ingress == ()
    assert rule.ingress_deny == tuple(sorted([
        PeerRule((PeerEntity("world"),), (), None, None, None),
        PeerRule((PeerSelector(sel(any_("app", "bad"), ns("default"))),), (), (PortSpec("TCP", 22, None),), None, None),
    ], key=canon_key))
    assert rule.enforce_ingress is True and rule.enforce_egress is False


@pytest.mark.parametrize("flags,expect", [
    (None, (True, True)),
    ({"ingress": False}, (False, True)),
    ({"egress": False, "ingress": True}, (True, False)),
    ({"ingress": None, "egress": False}, (True, False)),
    ({}, (True, True)),
])
def test_enable_default_deny(flags, expect):
    spec = {"endpointSelector": {}, "ingress": [{"fromEntities": ["world"]}], "egress": [{"toEntities": ["world"]}]}
    if flags is not None:
        spec["enableDefaultDeny"] = flags
    rule = parse_single(cnp(spec))
    assert (rule.enforce_ingress, rule.enforce_egress) == expect


def test_default_deny_true_without_rules_in_that_direction_does_nothing():
    rule = parse_single(cnp({"endpointSelector": {}, "ingress": [{}], "enableDefaultDeny": {"egress": True}}))
    assert (rule.enforce_ingress, rule.enforce_egress) == (True, False)


def test_empty_forms():
    # ingress: [{}] -> enforce, allow nothing
    rule = parse_single(cnp({"endpointSelector": {}, "ingress": [{}]}))
    assert rule.ingress == (PeerRule((), (), None, None, None),) and rule.enforce_ingress
    # fromEndpoints: [] selects nothing, even with ports
    rule = parse_single(cnp({"endpointSelector": {}, "ingress": [{"fromEndpoints": [], "toPorts": [{"ports": [{"port": "80"}]}]}]}))
    assert rule.ingress == (PeerRule((), (), (PortSpec("ANY", 80, None),), None, None),)
    # ports without L3 -> L3 wildcard
    rule = parse_single(cnp({"endpointSelector": {}, "ingress": [{"toPorts": [{"ports": [{"port": "80"}]}]}]}))
    assert rule.ingress == (PeerRule(None, (), (PortSpec("ANY", 80, None),), None, None),)
    # fromEndpoints: [{}] -> every endpoint of the namespace
    rule = parse_single(cnp({"endpointSelector": {}, "ingress": [{"fromEndpoints": [{}]}]}))
    assert rule.ingress == (PeerRule((PeerSelector(sel(ns("default"))),), (), None, None, None),)
    # null sections are absent sections; empty lists are no rules
    rule = parse_single(cnp({"endpointSelector": {}, "ingress": None, "egress": [], "egressDeny": [{}]}))
    assert rule.ingress == () and rule.egress == () and not rule.enforce_ingress and rule.enforce_egress


def test_metadata_labels_annotations_status_and_rule_labels_are_accepted():
    doc = cnp({"endpointSelector": {}, "ingress": [{}], "description": "x",
               "labels": [{"key": "owner", "value": "me", "source": "unspec"}]})
    doc["metadata"].update({"labels": {"team": "a"}, "annotations": {"example.com/note": "free text: ok"},
                            "uid": "1234", "resourceVersion": "9", "creationTimestamp": None})
    doc["status"] = {"conditions": []}
    assert parse_single(doc).name == "default/p"


# --- Kubernetes NetworkPolicy ----------------------------------------------

K8S_DOCS_EXAMPLE = """
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata:
      name: test-network-policy
      namespace: default
    spec:
      podSelector:
        matchLabels:
          role: db
      policyTypes:
      - Ingress
      - Egress
      ingress:
      - from:
        - ipBlock:
            cidr: 172.17.0.0/16
            except:
            - 172.17.1.0/24
        - namespaceSelector:
            matchLabels:
              project: myproject
        - podSelector:
            matchLabels:
              role: frontend
        ports:
        - protocol: TCP
          port: 6379
      egress:
      - to:
        - ipBlock:
            cidr: 10.0.0.0/24
        ports:
        - protocol: TCP
          port: 5978
"""


def test_knp_kubernetes_documentation_example():
    rule = parse_single(K8S_DOCS_EXAMPLE, "np.yaml#0")
    assert rule == Rule(
        name="default/test-network-policy",
        kind="NetworkPolicy",
        origin="np.yaml#0",
        subject=sel(k8s("role", "db"), ns("default")),
        ingress=(PeerRule(
            peers=peers(
                PeerIPBlock("172.17.0.0/16", ("172.17.1.0/24",)),
                PeerSelector(sel(k8s(NSLABELS + "project", "myproject"), NS_EXISTS)),
                PeerSelector(sel(k8s("role", "frontend"), ns("default"))),
            ),
            requires=(), ports=(PortSpec("TCP", 6379, None),), icmps=None, http=None),),
        egress=(PeerRule((PeerIPBlock("10.0.0.0/24", ()),), (), (PortSpec("TCP", 5978, None),), None, None),),
        ingress_deny=(),
        egress_deny=(),
        enforce_ingress=True,
        enforce_egress=True,
    )


def test_knp_pod_and_namespace_selector_together_is_one_and_selector():
    rule = parse_single(knp({"podSelector": {}, "ingress": [{"from": [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "x"}},
         "podSelector": {"matchExpressions": [{"key": "pod", "operator": "In", "values": ["a", "b"]}]}},
        {"namespaceSelector": {}},
    ]}]}, namespace="y"))
    assert rule.subject == sel(ns("y"))
    assert rule.ingress == (PeerRule(peers(
        PeerSelector(sel(k8s(NSLABELS + "kubernetes.io/metadata.name", "x"), Rq("k8s", "pod", "In", "a", "b"), NS_EXISTS)),
        PeerSelector(sel(NS_EXISTS)),
    ), (), None, None, None),)


def test_knp_empty_forms_and_policy_types():
    # ingress: [{}] allows everything; default policyTypes: Ingress only
    rule = parse_single(knp({"podSelector": {}, "ingress": [{}]}))
    assert rule.ingress == (PeerRule(None, (), None, None, None),)
    assert (rule.enforce_ingress, rule.enforce_egress) == (True, False)
    # from: [] and ports: [] are "all" as well
    rule = parse_single(knp({"podSelector": {}, "ingress": [{"from": [], "ports": []}]}))
    assert rule.ingress == (PeerRule(None, (), None, None, None),)
    # no ingress section: deny all ingress
    rule = parse_single(knp({"podSelector": {}}))
    assert rule.ingress == () and rule.enforce_ingress and not rule.enforce_egress
    # egress rules turn on Egress by default; an empty egress list does not
    rule = parse_single(knp({"podSelector": {}, "egress": [{}]}))
    assert (rule.enforce_ingress, rule.enforce_egress) == (True, True)
    assert rule.egress == (PeerRule(None, (), None, None, None),)
    rule = parse_single(knp({"podSelector": {}, "egress": []}))
    assert (rule.enforce_ingress, rule.enforce_egress) == (True, False)
    # explicit Egress only: ingress rules are ignored, egress [] denies all
    rule = parse_single(knp({"podSelector": {}, "policyTypes": ["Egress"], "ingress": [{}]}))
    assert (rule.ingress, rule.egress, rule.enforce_ingress, rule.enforce_egress) == ((), (), False, True)
    # policyTypes: [] is the default
    rule = parse_single(knp({"podSelector": {}, "policyTypes": [], "egress": [{}]}))
    assert (rule.enforce_ingress, rule.enforce_egress) == (True, True)


def test_knp_ports():
    rule = parse_single(knp({"podSelector": {}, "ingress": [{"ports": [
        {"port": 80},
        {"protocol": "UDP"},
        {"port": "dns-tcp", "protocol": "TCP"},
        {"port": 32000, "endPort": 32768, "protocol": "SCTP"},
        {"port": 53, "endPort": 53, "protocol": "UDP"},
    ]}]}))
    assert rule.ingress[0].ports == (
        PortSpec("SCTP", 32000, 32768),
        PortSpec("TCP", 80, None),
        PortSpec("TCP", "dns-tcp", None),
        PortSpec("UDP", 0, None),
        PortSpec("UDP", 53, None),
    )


def test_knp_ipblock_is_not_a_cidr_peer():
    rule = parse_single(knp({"podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]}]}))
    assert rule.egress[0].peers == (PeerIPBlock("0.0.0.0/0", ("10.0.0.0/8",)),)


# --- many documents -------------------------------------------------------

def test_rules_are_ordered_by_kind_and_name_not_document_order():
    docs = [
        ("a#0", knp({"podSelector": {}}, name="z")),
        ("a#1", cnp({"endpointSelector": {}, "ingress": [{}]}, name="b")),
        ("a#2", ccnp({"endpointSelector": {}, "ingress": [{}]}, name="c")),
        ("a#3", cnp({"endpointSelector": {}, "ingress": [{}]}, name="a", namespace="x")),
        ("a#4", knp({"podSelector": {}}, name="z", namespace="other")),
    ]
    names = [(r.kind, r.name) for r in parse.parse_documents(docs)]
    assert names == [("CiliumClusterwideNetworkPolicy", "c"), ("CiliumNetworkPolicy", "default/b"),
                     ("CiliumNetworkPolicy", "x/a"), ("NetworkPolicy", "default/z"), ("NetworkPolicy", "other/z")]
    assert parse.parse_documents(list(reversed(docs))) == parse.parse_documents(docs)


def test_same_name_in_different_kinds_or_namespaces_is_fine():
    docs = [("a#0", cnp({"endpointSelector": {}, "ingress": [{}]})),
            ("a#1", knp({"podSelector": {}})),
            ("a#2", cnp({"endpointSelector": {}, "ingress": [{}]}, namespace="x")),
            ("a#3", ccnp({"endpointSelector": {}, "ingress": [{}]}))]
    assert len(parse.parse_documents(docs)) == 4


def test_duplicate_policy_names_both_origins():
    doc = cnp({"endpointSelector": {}, "ingress": [{}]})
    err = error_of([("one.yaml#0", doc), ("palisade_policies[2]", copy.deepcopy(doc))])
    assert str(err).startswith("palisade_policies[2]: CiliumNetworkPolicy default/p: metadata.name:")
    assert "one.yaml#0" in str(err)
    # the default namespace is the same namespace
    doc2 = copy.deepcopy(doc)
    del doc2["metadata"]["namespace"]
    assert "one.yaml#0" in str(error_of([("one.yaml#0", doc), ("two.yaml#0", doc2)]))


def test_parse_document_single():
    rules = parse.parse_documents([("x#0", load(STARWARS_L3L4))])
    assert rules[0].origin == "x#0"


# --- equivalence under reordering -----------------------------------------

def _shuffled(value, rng):
    if isinstance(value, dict):
        items = [(k, _shuffled(v, rng)) for k, v in value.items()]
        rng.shuffle(items)
        return dict(items)
    if isinstance(value, list):
        items = [_shuffled(v, rng) for v in value]
        rng.shuffle(items)
        return items
    return value


EQUIVALENCE_DOCS = [
    load(STARWARS_L3L4),
    load(K8S_DOCS_EXAMPLE),
    cnp({"endpointSelector": {"matchLabels": {"a": "1", "b": "2"}, "matchExpressions": [
        {"key": "c", "operator": "In", "values": ["3", "4", "5"]}, {"key": "d", "operator": "Exists"}]},
        "ingress": [
            {"fromEndpoints": [{"matchLabels": {"x": "1"}}, {"matchLabels": {"y": "2"}}, {}],
             "fromRequires": [{"matchLabels": {"r": "1"}}, {"matchLabels": {"s": "2"}}],
             "toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}, {"port": "81", "protocol": "TCP"}],
                          "rules": {"http": [{"method": "GET", "headers": ["A: 1", "B"]}, {"path": "/x"}]}},
                         {"ports": [{"port": "53", "protocol": "UDP"}, {"port": "53", "protocol": "TCP"}]}]},
            {"fromCIDRSet": [{"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16", "10.2.0.0/16"]}, {"cidr": "192.0.2.0/24"}]},
            {"fromEntities": ["world", "host", "remote-node"]},
            {"icmps": [{"fields": [{"type": 8}, {"type": 0}]}, {"fields": [{"type": 3}]}]}],
        "egressDeny": [{"toCIDR": ["1.1.1.1", "8.8.8.8/32"]}, {"toEntities": ["world"]}]}),
    knp({"podSelector": {"matchLabels": {"app": "x"}}, "policyTypes": ["Egress", "Ingress"],
         "ingress": [{"from": [{"podSelector": {}}, {"namespaceSelector": {"matchLabels": {"a": "b"}}}],
                      "ports": [{"port": 80}, {"port": 443}, {"protocol": "UDP", "port": 53}]}, {}],
         "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.9.0.0/16", "10.8.0.0/16"]}}]}]}),
]


@pytest.mark.parametrize("seed", range(20))
def test_reordering_lists_and_keys_does_not_change_the_ir(seed):
    rng = random.Random(seed)
    docs = [("d#%d" % i, d) for i, d in enumerate(EQUIVALENCE_DOCS)]
    expected = parse.parse_documents(docs)
    shuffled = [(o, _shuffled(d, rng)) for o, d in docs]
    rng.shuffle(shuffled)
    assert parse.parse_documents(shuffled) == expected


def test_parse_memo_parses_only_new_documents_to_the_same_rules():
    docs = [("d#%d" % i, d) for i, d in enumerate(EQUIVALENCE_DOCS)]
    memo = parse.ParseMemo()
    expected = parse.parse_documents(docs, memo=memo)
    assert memo.changed and len(memo.parsed) == len(docs) and expected == parse.parse_documents(docs)
    assert parse.parse_documents(list(reversed(docs)), memo=memo) == expected and not memo.changed
    changed = copy.deepcopy(docs)
    changed[0][1]["metadata"]["name"] = "renamed"
    assert parse.parse_documents(changed, memo=memo) == parse.parse_documents(changed)
    assert memo.changed and len(memo.parsed) == len(docs)   # the old form of d#0 is forgotten


def test_rules_are_hashable():
    rules = parse.parse_documents([("d#%d" % i, d) for i, d in enumerate(EQUIVALENCE_DOCS)])
    assert len({hash(r) for r in rules}) == len(rules)


# --- bad input: one test per validation -----------------------------------

def _sp(**extra):
    spec = {"endpointSelector": {}, "ingress": [{}]}
    spec.update(extra)
    return spec


def _ing(rule):
    return cnp({"endpointSelector": {}, "ingress": [rule]})


def _port(port, rules=None, deny=False):
    pr = {"ports": [port]}
    if rules is not None:
        pr["rules"] = rules
    return cnp({"endpointSelector": {}, "ingressDeny" if deny else "ingress": [{"toPorts": [pr]}]})


def _http(rule, port=None):
    return _port(port or {"port": "80", "protocol": "TCP"}, {"http": [rule]})


def _with(doc, path, value):
    doc = copy.deepcopy(doc)
    node = doc
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return doc


_DELETE = object()
BASE = cnp(_sp())

BAD = [
    # documents
    ("not-a-mapping", [("p.yaml#0", ["a", "list"])], "document", "must be a mapping"),
    ("no-kind", _with(BASE, ["kind"], _DELETE), "kind", "required"),
    ("unknown-kind", _with(BASE, ["kind"], "Pod"), "kind", "not a supported kind"),
    ("wrong-api", _with(BASE, ["apiVersion"], "cilium.io/v1"), "apiVersion", "must be cilium.io/v2"),
    ("knp-api", _with(knp({"podSelector": {}}), ["apiVersion"], "networking.k8s.io/v1beta1"), "apiVersion", "networking.k8s.io/v1"),
    ("no-metadata", _with(BASE, ["metadata"], _DELETE), "metadata", "required"),
    ("no-name", _with(BASE, ["metadata", "name"], _DELETE), "metadata.name", "required"),
    ("bad-name", _with(BASE, ["metadata", "name"], "Rule_1"), "metadata.name", "DNS-1123"),
    ("long-name", _with(BASE, ["metadata", "name"], "a" * 254), "metadata.name", "DNS-1123"),
    ("bad-namespace", _with(BASE, ["metadata", "namespace"], "a.b"), "metadata.namespace", "DNS-1123 label"),
    ("ccnp-namespace", _with(ccnp(_sp()), ["metadata", "namespace"], "x"), "metadata.namespace", "not namespaced"),
    ("unknown-metadata", _with(BASE, ["metadata", "nmae"], "x"), "metadata.nmae", "unknown field"),
    ("bad-metadata-label", _with(BASE, ["metadata", "labels"], {"a": "b c"}), "metadata.labels.a", "label value"),
    ("unknown-top", _with(BASE, ["sepc"], {}), "sepc", 'did you mean "spec"'),
    ("specs-in-knp", _with(knp({"podSelector": {}}), ["specs"], []), "specs", "unknown field"),
    ("no-spec", _with(BASE, ["spec"], _DELETE), "spec", "needs spec or a non-empty specs"),
    ("specs-not-list", _with(_with(BASE, ["spec"], _DELETE), ["specs"], {"a": 1}), "specs", "must be a list"),
    ("spec-not-mapping", _with(BASE, ["spec"], "x"), "spec", "must be a mapping"),
    ("specs-bad-item", _with(BASE, ["specs"], [{"endpointSelector": {}}]), "specs[0]", "at least one of ingress"),
    # spec level
    ("no-endpoint-selector", cnp({"ingress": [{}]}), "spec.endpointSelector", "required"),
    ("node-selector", cnp({"nodeSelector": {}, "ingress": [{}]}), "spec.nodeSelector", "not supported by palisade.ebpf (host policies)"),
    ("no-sections", cnp({"endpointSelector": {}}), "spec", "at least one of ingress"),
    ("empty-sections", cnp({"endpointSelector": {}, "ingress": [], "egress": []}), "spec", "at least one of ingress"),
    ("unknown-spec-field", cnp(_sp(ingres=[])), "spec.ingres", 'did you mean "ingress"'),
    ("section-not-list", cnp({"endpointSelector": {}, "egress": {"toEntities": ["world"]}}), "spec.egress", "must be a list"),
    ("default-deny-not-bool", cnp(_sp(enableDefaultDeny={"ingress": "no"})), "spec.enableDefaultDeny.ingress", "true or false"),
    ("default-deny-unknown", cnp(_sp(enableDefaultDeny={"in": True})), "spec.enableDefaultDeny.in", "unknown field"),
    ("description-not-string", cnp(_sp(description=["x"])), "spec.description", "must be a string"),
    ("rule-labels", cnp(_sp(labels=[{"value": "x"}])), "spec.labels[0].key", "required"),
    ("subject-other-namespace", cnp({"endpointSelector": {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "x"}}, "ingress": [{}]}),
     "spec.endpointSelector", "only in its own namespace"),
    # selectors
    ("selector-unknown-field", _ing({"fromEndpoints": [{"matchLabel": {"a": "b"}}]}), "spec.ingress[0].fromEndpoints[0].matchLabel", "did you mean"),
    ("selector-bad-operator", _ing({"fromEndpoints": [{"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["b"]}]}]}),
     "spec.ingress[0].fromEndpoints[0].matchExpressions[0].operator", "not a valid selector operator"),
    ("selector-in-no-values", _ing({"fromEndpoints": [{"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}]}),
     "spec.ingress[0].fromEndpoints[0].matchExpressions[0].values", "at least one value"),
    ("selector-exists-values", _ing({"fromEndpoints": [{"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}]}),
     "spec.ingress[0].fromEndpoints[0].matchExpressions[0].values", "must be empty"),
    ("selector-no-key", _ing({"fromEndpoints": [{"matchExpressions": [{"operator": "Exists"}]}]}),
     "spec.ingress[0].fromEndpoints[0].matchExpressions[0].key", "required"),
    ("selector-bad-key", _ing({"fromEndpoints": [{"matchLabels": {"-a": "b"}}]}), "spec.ingress[0].fromEndpoints[0].matchLabels.-a", "not a valid label key"),
    ("selector-bad-prefix", _ing({"fromEndpoints": [{"matchLabels": {"Example.com/a": "b"}}]}),
     "spec.ingress[0].fromEndpoints[0].matchLabels.Example.com/a", "prefix"),
    ("selector-bad-value", _ing({"fromEndpoints": [{"matchLabels": {"a": "b/c"}}]}),
     "spec.ingress[0].fromEndpoints[0].matchLabels.a", "not a valid label value"),
    ("selector-long-value", _ing({"fromEndpoints": [{"matchLabels": {"a": "b" * 64}}]}),
     "spec.ingress[0].fromEndpoints[0].matchLabels.a", "not a valid label value"),
    ("selector-bool-value", _ing({"fromEndpoints": [{"matchLabels": {"a": True}}]}), "spec.ingress[0].fromEndpoints[0].matchLabels.a", "must be strings"),
    ("selector-source", _ing({"fromEndpoints": [{"matchLabels": {"container:a": "b"}}]}),
     "spec.ingress[0].fromEndpoints[0].matchLabels.container:a", 'label source "container"'),
    ("selector-reserved", _ing({"fromEndpoints": [{"matchLabels": {"reserved:everything": ""}}]}),
     "spec.ingress[0].fromEndpoints[0].matchLabels.reserved:everything", "not a reserved label"),
    ("selector-null-item", _ing({"fromEndpoints": [None]}), "spec.ingress[0].fromEndpoints[0]", "must be a mapping"),
    ("requires-bad", _ing({"fromRequires": [{"matchLabels": "a=b"}]}), "spec.ingress[0].fromRequires[0].matchLabels", "must be a mapping"),
    # peers
    ("unknown-peer-field", _ing({"fromEndpoint": [{}]}), "spec.ingress[0].fromEndpoint", 'did you mean "fromEndpoints"'),
    ("wrong-direction-field", _ing({"toEndpoints": [{}]}), "spec.ingress[0].toEndpoints", "belongs in egress rules"),
    ("entity", _ing({"fromEntities": ["world", "internet"]}), "spec.ingress[0].fromEntities[1]", "not an entity"),
    ("mixed-l3", _ing({"fromEndpoints": [{}], "fromCIDR": ["10.0.0.0/8"]}), "spec.ingress[0]", "combining fromEndpoints and fromCIDR"),
    ("mixed-l3-entities", _ing({"fromEntities": ["world"], "fromCIDRSet": [{"cidr": "10.0.0.0/8"}]}), "spec.ingress[0]", "combining"),
    ("cidr-bad", _ing({"fromCIDR": ["10.0.0.0/33"]}), "spec.ingress[0].fromCIDR[0]", "not a valid CIDR"),
    ("cidr-junk", _ing({"fromCIDR": ["ten"]}), "spec.ingress[0].fromCIDR[0]", "not a valid CIDR"),
    ("cidr-not-string", _ing({"fromCIDR": [10]}), "spec.ingress[0].fromCIDR[0]", "must be an IPv4 CIDR"),
    ("cidr-ipv6", _ing({"fromCIDR": ["2001:db8::/32"]}), "spec.ingress[0].fromCIDR[0]", "IPv6 is not supported"),
    ("cidrset-no-cidr", _ing({"fromCIDRSet": [{"except": ["10.0.0.0/8"]}]}), "spec.ingress[0].fromCIDRSet[0].cidr", "required"),
    ("cidrset-bare-ip", _ing({"fromCIDRSet": [{"cidr": "10.0.0.1"}]}), "spec.ingress[0].fromCIDRSet[0].cidr", "not a CIDR"),
    ("cidrset-except-outside", _ing({"fromCIDRSet": [{"cidr": "10.0.0.0/8", "except": ["11.0.0.0/16"]}]}),
     "spec.ingress[0].fromCIDRSet[0].except[0]", "not inside"),
    ("cidrset-except-wider", _ing({"fromCIDRSet": [{"cidr": "10.0.0.0/16", "except": ["10.0.0.0/8"]}]}),
     "spec.ingress[0].fromCIDRSet[0].except[0]", "not inside"),
    ("cidrset-group", _ing({"fromCIDRSet": [{"cidrGroupRef": "x"}]}), "spec.ingress[0].fromCIDRSet[0].cidrGroupRef", "not supported by palisade.ebpf"),
    # unsupported Cilium features
    ("toFQDNs", cnp({"endpointSelector": {}, "egress": [{"toFQDNs": [{"matchName": "x.com"}]}]}),
     "spec.egress[0].toFQDNs", '"toFQDNs" is not supported by palisade.ebpf'),
    ("toServices", cnp({"endpointSelector": {}, "egress": [{"toServices": [{}]}]}), "spec.egress[0].toServices", "not supported by palisade.ebpf"),
    ("toGroups", cnp({"endpointSelector": {}, "egress": [{"toGroups": [{}]}]}), "spec.egress[0].toGroups", "not supported by palisade.ebpf"),
    ("toNodes", cnp({"endpointSelector": {}, "egress": [{"toNodes": [{}]}]}), "spec.egress[0].toNodes", "not supported by palisade.ebpf"),
    ("fromNodes", _ing({"fromNodes": [{}]}), "spec.ingress[0].fromNodes", "not supported by palisade.ebpf"),
    ("fromGroups", _ing({"fromGroups": [{}]}), "spec.ingress[0].fromGroups", "not supported by palisade.ebpf"),
    ("authentication", _ing({"authentication": {"mode": "required"}}), "spec.ingress[0].authentication", "not supported by palisade.ebpf"),
    ("authentication-deny", cnp({"endpointSelector": {}, "ingressDeny": [{"authentication": {}}]}),
     "spec.ingressDeny[0].authentication", "not allowed in ingressDeny"),
    ("fqdn-deny", cnp({"endpointSelector": {}, "egressDeny": [{"toFQDNs": []}]}), "spec.egressDeny[0].toFQDNs", "not allowed in egressDeny"),
    ("dns-rules", _port({"port": "53", "protocol": "UDP"}, {"dns": [{"matchPattern": "*"}]}),
     "spec.ingress[0].toPorts[0].rules.dns", "not supported by palisade.ebpf"),
    ("kafka-rules", _port({"port": "9092", "protocol": "TCP"}, {"kafka": [{}]}), "spec.ingress[0].toPorts[0].rules.kafka", "not supported"),
    ("l7proto", _port({"port": "9092", "protocol": "TCP"}, {"l7proto": "x", "l7": [{}]}), "spec.ingress[0].toPorts[0].rules.l7", "not supported"),
    ("terminatingTLS", _ing({"toPorts": [{"ports": [{"port": "443"}], "terminatingTLS": {}}]}), "spec.ingress[0].toPorts[0].terminatingTLS", "not supported"),
    ("originatingTLS", _ing({"toPorts": [{"ports": [{"port": "443"}], "originatingTLS": {}}]}), "spec.ingress[0].toPorts[0].originatingTLS", "not supported"),
    ("serverNames", _ing({"toPorts": [{"ports": [{"port": "443"}], "serverNames": ["a"]}]}), "spec.ingress[0].toPorts[0].serverNames", "not supported"),
    ("listener", _ing({"toPorts": [{"ports": [{"port": "443"}], "listener": {}}]}), "spec.ingress[0].toPorts[0].listener", "not supported"),
    ("header-secret", _http({"headerMatches": [{"name": "a", "secret": {"name": "s"}}]}),
     "spec.ingress[0].toPorts[0].rules.http[0].headerMatches[0].secret", "not supported"),
    ("log", cnp(_sp(log={"value": "x"})), "spec.log", "not supported"),
    # ports
    ("port-too-big", _port({"port": "99999", "protocol": "TCP"}), "spec.ingress[0].toPorts[0].ports[0].port", '"99999" is not a valid port'),
    ("port-int-too-big", _port({"port": 65536}), "spec.ingress[0].toPorts[0].ports[0].port", "65536 is not a valid port"),
    ("port-negative", _port({"port": -1}), "spec.ingress[0].toPorts[0].ports[0].port", "not a valid port"),
    ("port-leading-zero", _port({"port": "080"}), "spec.ingress[0].toPorts[0].ports[0].port", "not a valid port"),
    ("port-bad-name", _port({"port": "http_alt"}), "spec.ingress[0].toPorts[0].ports[0].port", "not a valid port"),
    ("port-long-name", _port({"port": "a-very-long-port-name"}), "spec.ingress[0].toPorts[0].ports[0].port", "not a valid port"),
    ("port-bool", _port({"port": True}), "spec.ingress[0].toPorts[0].ports[0].port", "not a valid port"),
    ("port-float", _port({"port": 80.0}), "spec.ingress[0].toPorts[0].ports[0].port", "not a valid port"),
    ("port-missing", _port({"protocol": "TCP"}), "spec.ingress[0].toPorts[0].ports[0].port", "required"),
    ("port-unknown-field", _port({"port": "80", "proto": "TCP"}), "spec.ingress[0].toPorts[0].ports[0].proto", 'did you mean "protocol"'),
    ("protocol-lower", _port({"port": "80", "protocol": "tcp"}), "spec.ingress[0].toPorts[0].ports[0].protocol", "not a valid protocol"),
    ("protocol-icmp", _port({"port": "8", "protocol": "ICMP"}), "spec.ingress[0].toPorts[0].ports[0].protocol", "icmps"),
    ("end-port-below", _port({"port": "90", "endPort": 80}), "spec.ingress[0].toPorts[0].ports[0].endPort", "less than port"),
    ("end-port-named", _port({"port": "http", "endPort": 90}), "spec.ingress[0].toPorts[0].ports[0].endPort", "numeric port"),
    ("end-port-zero-port", _port({"port": "0", "endPort": 90}), "spec.ingress[0].toPorts[0].ports[0].endPort", "port 0"),
    ("end-port-range", _port({"port": "80", "endPort": 70000}), "spec.ingress[0].toPorts[0].ports[0].endPort", "not a valid endPort"),
    ("end-port-string", _port({"port": "80", "endPort": "90"}), "spec.ingress[0].toPorts[0].ports[0].endPort", "not a valid endPort"),
    ("too-many-ports", _ing({"toPorts": [{"ports": [{"port": str(p)} for p in range(1, 42)]}]}), "spec.ingress[0].toPorts[0].ports", "at most 40"),
    ("to-ports-no-ports", _ing({"toPorts": [{"rules": {"http": [{}]}}]}), "spec.ingress[0].toPorts[0].ports", "at least one port"),
    ("to-ports-not-list", _ing({"toPorts": {"ports": []}}), "spec.ingress[0].toPorts", "must be a list"),
    # L7
    ("l7-in-deny", _port({"port": "80", "protocol": "TCP"}, {"http": [{}]}, deny=True), "spec.ingressDeny[0].toPorts[0].rules", "not allowed in ingressDeny"),
    ("l7-udp", _http({}, {"port": "80", "protocol": "UDP"}), "spec.ingress[0].toPorts[0].ports[0].protocol", "need protocol TCP"),
    ("l7-any", _http({}, {"port": "80"}), "spec.ingress[0].toPorts[0].ports[0].protocol", "no protocol means ANY"),
    ("l7-range", _http({}, {"port": "80", "endPort": 90, "protocol": "TCP"}), "spec.ingress[0].toPorts[0].ports[0].endPort", "port range"),
    ("l7-port-zero", _http({}, {"port": "0", "protocol": "TCP"}), "spec.ingress[0].toPorts[0].ports[0].port", "port 0"),
    ("http-not-list", _port({"port": "80", "protocol": "TCP"}, {"http": {"path": "/"}}), "spec.ingress[0].toPorts[0].rules.http", "must be a list"),
    ("http-unknown-field", _http({"url": "/"}), "spec.ingress[0].toPorts[0].rules.http[0].url", "unknown field"),
    ("regex-invalid", _http({"path": "/((a"}), "spec.ingress[0].toPorts[0].rules.http[0].path", "not a valid regular expression"),
    ("regex-bad-escape", _http({"method": "\\q"}), "spec.ingress[0].toPorts[0].rules.http[0].method", "not a valid regular expression"),
    ("regex-lookahead", _http({"path": "/(?=admin)"}), "spec.ingress[0].toPorts[0].rules.http[0].path", "lookahead"),
    ("regex-lookbehind", _http({"host": "(?<!x)y"}), "spec.ingress[0].toPorts[0].rules.http[0].host", "lookbehind"),
    ("regex-backref", _http({"path": "/(a)\\1"}), "spec.ingress[0].toPorts[0].rules.http[0].path", "backreference"),
    ("regex-possessive", _http({"path": "/a*+"}), "spec.ingress[0].toPorts[0].rules.http[0].path", "possessive"),
    ("regex-atomic", _http({"path": "/(?>a)"}), "spec.ingress[0].toPorts[0].rules.http[0].path", "atomic"),
    ("regex-not-string", _http({"method": 5}), "spec.ingress[0].toPorts[0].rules.http[0].method", "must be a regular expression"),
    ("header-bad", _http({"headers": [": x"]}), "spec.ingress[0].toPorts[0].rules.http[0].headers[0]", "valid header name"),
    ("header-empty", _http({"headers": [""]}), "spec.ingress[0].toPorts[0].rules.http[0].headers[0]", "must not be empty"),
    ("header-match-no-name", _http({"headerMatches": [{"value": "x"}]}), "spec.ingress[0].toPorts[0].rules.http[0].headerMatches[0].name", "required"),
    ("header-match-mismatch", _http({"headerMatches": [{"name": "a", "mismatch": "DROP"}]}),
     "spec.ingress[0].toPorts[0].rules.http[0].headerMatches[0].mismatch", "not a valid mismatch action"),
    # ICMP
    ("icmp-with-ports", _ing({"icmps": [{"fields": [{"type": 8}]}], "toPorts": [{"ports": [{"port": "80"}]}]}), "spec.ingress[0]", "icmps and toPorts"),
    ("icmp-ipv6", _ing({"icmps": [{"fields": [{"type": 128, "family": "IPv6"}]}]}), "spec.ingress[0].icmps[0].fields[0].family", "ICMPv6 is not supported"),
    ("icmp-family", _ing({"icmps": [{"fields": [{"type": 8, "family": "ipv4"}]}]}), "spec.ingress[0].icmps[0].fields[0].family", "not a valid family"),
    ("icmp-type-range", _ing({"icmps": [{"fields": [{"type": 256}]}]}), "spec.ingress[0].icmps[0].fields[0].type", "not a valid ICMP type"),
    ("icmp-type-name", _ing({"icmps": [{"fields": [{"type": "Ping"}]}]}), "spec.ingress[0].icmps[0].fields[0].type", "not a valid ICMP type"),
    ("icmp-v6-name", _ing({"icmps": [{"fields": [{"type": "NeighborSolicitation"}]}]}), "spec.ingress[0].icmps[0].fields[0].type", "ICMPv6 type"),
    ("icmp-no-type", _ing({"icmps": [{"fields": [{"family": "IPv4"}]}]}), "spec.ingress[0].icmps[0].fields[0].type", "required"),
    ("icmp-no-fields", _ing({"icmps": [{}]}), "spec.ingress[0].icmps[0].fields", "at least one ICMP type"),
    ("icmp-too-many", _ing({"icmps": [{"fields": [{"type": t} for t in range(41)]}]}), "spec.ingress[0].icmps[0].fields", "at most 40"),
    # Kubernetes NetworkPolicy
    ("knp-no-spec", _with(knp({}), ["spec"], _DELETE), "spec", "required"),
    ("knp-no-pod-selector", knp({"ingress": [{}]}), "spec.podSelector", "required"),
    ("knp-unknown", knp({"podSelector": {}, "ingressDeny": []}), "spec.ingressDeny", "unknown field"),
    ("knp-empty-peer", knp({"podSelector": {}, "ingress": [{"from": [{}]}]}), "spec.ingress[0].from[0]", "must specify a peer"),
    ("knp-ipblock-and-selector", knp({"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}]}),
     "spec.ingress[0].from[0]", "ipBlock cannot be combined"),
    ("knp-ipblock-no-cidr", knp({"podSelector": {}, "ingress": [{"from": [{"ipBlock": {}}]}]}), "spec.ingress[0].from[0].ipBlock.cidr", "required"),
    ("knp-ipblock-host-bits", knp({"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.1/8"}}]}]}),
     "spec.ingress[0].from[0].ipBlock.cidr", 'did you mean "10.0.0.0/8"'),
    ("knp-ipblock-except-equal", knp({"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.0.0.0/8"]}}]}]}),
     "spec.ingress[0].from[0].ipBlock.except[0]", "strict subset"),
    ("knp-ipv6", knp({"podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": "::/0"}}]}]}), "spec.egress[0].to[0].ipBlock.cidr", "IPv6"),
    ("knp-port-string-number", knp({"podSelector": {}, "ingress": [{"ports": [{"port": "80"}]}]}), "spec.ingress[0].ports[0].port", "unquoted"),
    ("knp-port-zero", knp({"podSelector": {}, "ingress": [{"ports": [{"port": 0}]}]}), "spec.ingress[0].ports[0].port", "1-65535"),
    ("knp-port-upper-name", knp({"podSelector": {}, "ingress": [{"ports": [{"port": "HTTP"}]}]}), "spec.ingress[0].ports[0].port", "lower case"),
    ("knp-protocol-any", knp({"podSelector": {}, "ingress": [{"ports": [{"port": 80, "protocol": "ANY"}]}]}),
     "spec.ingress[0].ports[0].protocol", "not a valid protocol"),
    ("knp-endport-no-port", knp({"podSelector": {}, "ingress": [{"ports": [{"endPort": 90}]}]}), "spec.ingress[0].ports[0].endPort", "needs port"),
    ("knp-endport-named", knp({"podSelector": {}, "ingress": [{"ports": [{"port": "http", "endPort": 90}]}]}),
     "spec.ingress[0].ports[0].endPort", "numeric port"),
    ("knp-endport-below", knp({"podSelector": {}, "ingress": [{"ports": [{"port": 90, "endPort": 80}]}]}),
     "spec.ingress[0].ports[0].endPort", "less than port"),
    ("knp-policy-type", knp({"podSelector": {}, "policyTypes": ["ingress"]}), "spec.policyTypes[0]", "not a policy type"),
    ("knp-policy-types-3", knp({"podSelector": {}, "policyTypes": ["Ingress", "Egress", "Ingress"]}), "spec.policyTypes", "more than two"),
    ("knp-from-in-egress", knp({"podSelector": {}, "egress": [{"from": []}]}), "spec.egress[0].from", 'under "to"'),
    ("knp-source-prefix", knp({"podSelector": {"matchLabels": {"k8s:app": "x"}}}), "spec.podSelector.matchLabels.k8s:app", "not a valid label key"),
    ("knp-ns-selector-bad", knp({"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}]}]}),
     "spec.ingress[0].from[0].namespaceSelector.matchExpressions[0].values", "at least one value"),
]


@pytest.mark.parametrize("doc,field,fragment", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input(doc, field, fragment):
    err = error_of(doc)
    assert err.field == field, str(err)
    assert fragment in str(err), str(err)
    assert err.origin == "p.yaml#0"


def test_error_names_kind_and_policy():
    err = error_of(_port({"port": "99999", "protocol": "TCP"}), "policies/starwars.yaml#1")
    assert str(err) == ('policies/starwars.yaml#1: CiliumNetworkPolicy default/p: spec.ingress[0].toPorts[0].ports[0].port: '
                        '"99999" is not a valid port (1-65535, 0 for every port, or an IANA service name)')
    assert (err.kind, err.name) == ("CiliumNetworkPolicy", "default/p")
    err = error_of(_with(ccnp(_sp()), ["spec", "ingress"], [{"fromEntities": ["x"]}]))
    assert str(err).startswith("p.yaml#0: CiliumClusterwideNetworkPolicy p: spec.ingress[0].fromEntities[0]: ")


def test_error_in_specs_names_the_spec():
    doc = _with(BASE, ["specs"], [{"endpointSelector": {}, "ingress": [{}]}, {"endpointSelector": {}, "egress": [{"toEntities": ["x"]}]}])
    assert error_of(doc).field == "specs[1].egress[0].toEntities[0]"


def test_error_messages_stay_on_one_line_with_hostile_keys_and_values():
    doc = _ing({"fromEndpoints": [{"matchLabels": {"a\nb\u2028c": "x"}}]})
    err = error_of([("weird\nfile.yaml#0", doc)])
    assert "\n" not in str(err) and len(str(err).splitlines()) == 1
    err = error_of(_port({"port": "x" * 500 + "\r\n"}))
    assert len(str(err)) < 400


def test_mixed_l3_kinds_when_allowed_are_ored_peers(monkeypatch):
    from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import parse_cilium
    monkeypatch.setattr(parse_cilium, "ALLOW_MIXED_L3", True)
    rule = parse_single(_ing({"fromEndpoints": [{}], "fromCIDR": ["10.0.0.0/8"], "fromEntities": ["host"]}))
    assert rule.ingress == (PeerRule(peers(PeerSelector(sel(ns("default"))), PeerCIDR("10.0.0.0/8", ()), PeerEntity("host")),
                                     (), None, None, None),)
