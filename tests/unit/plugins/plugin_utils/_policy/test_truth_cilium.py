# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Truth tables: Cilium's documented policy examples.

Each test rewrites one example of the Cilium documentation (docs.cilium.io,
sources under cilium/cilium Documentation/ and examples/) as policy YAML plus
a small inventory, and states the verdicts the documentation gives (or that
follow from the semantics it documents). The page and section are cited on
each test. ``docs/`` below means https://docs.cilium.io/en/stable/.

Outcomes (see policy_harness.OUTCOMES): ``allow``, ``deny`` (dropped at L4),
``l7-allow`` / ``l7-deny`` (redirected to the proxy; the HTTP request matched
/ did not match), ``pass`` (redirected port, probe without HTTP: connected).
"""

from __future__ import annotations

import glob
import os

import pytest
import yaml

from tests.support.policy_harness import Lab, check, ep, http, probe
from tests.support.paths import REPO

ROOT = REPO
DEMO = os.path.join(ROOT, "inventories", "demo")
STARWARS = os.path.join(ROOT, "examples", "starwars")  # the demo's policy files and probes

NODES = {"node1": "172.16.0.11", "node2": "172.16.0.12"}
WORLD = "203.0.113.7"  # an address outside the fleet: identity world

HTTP80 = [{"name": "http", "port": 80, "protocol": "TCP"}]


def lab(endpoints, policies=None, namespaces=None):
    return Lab(endpoints, policies, namespaces=namespaces, nodes=NODES)


# ============================================================ Star Wars demo
# docs/gettingstarted/demo/ ("Getting Started with the Star Wars Demo"):
# examples/minikube/http-sw-app.yaml, sw_l3_l4_policy.yaml, sw_l3_l4_l7_policy.yaml.

def starwars():
    return [
        ep("default/deathstar", "10.1.1.10", {"org": "empire", "class": "deathstar"}, host="node1", ports=HTTP80),
        ep("default/tiefighter", "10.1.1.20", {"org": "empire", "class": "tiefighter"}, host="node1"),
        ep("default/xwing", "10.1.2.10", {"org": "alliance", "class": "xwing"}, host="node2"),
    ]


SW_L3_L4 = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: rule1
spec:
  description: L3-L4 policy to restrict deathstar access to empire ships only
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

SW_L7 = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: rule1
spec:
  description: L7 policy to restrict access to specific HTTP call
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
          rules:
            http:
              - method: POST
                path: /v1/request-landing
"""


def test_starwars_without_policy_every_ship_lands():
    # docs/gettingstarted/demo/ "Check Current Access": no policy, both ships land.
    check(lab(starwars()), [
        (probe("default/tiefighter", "default/deathstar", 80), "allow"),
        (probe("default/xwing", "default/deathstar", 80), "allow"),
        (probe("default/xwing", "default/deathstar", 80, http=http("POST", "/v1/request-landing")), "allow"),
    ])


def test_starwars_l3_l4_policy():
    # docs/gettingstarted/demo/ "Apply an L3/L4 Policy": org=empire may reach
    # class=deathstar on 80/TCP; the xwing (org=alliance) is dropped.
    check(lab(starwars(), SW_L3_L4), [
        (probe("default/tiefighter", "default/deathstar", 80), "allow"),
        (probe("default/xwing", "default/deathstar", 80), "deny"),
        (probe("default/tiefighter", "10.1.1.10", 80), "allow"),           # by address
        (probe("default/tiefighter", "default/deathstar", "http"), "allow"),  # by port name
        (probe("default/tiefighter", "default/deathstar", 8080), "deny"),  # only 80 is allowed
        (probe("default/tiefighter", "default/deathstar", 80, "UDP"), "deny"),
        (probe(WORLD, "default/deathstar", 80), "deny"),
        # the policy selects only the deathstar, and only its ingress
        (probe("default/xwing", "default/tiefighter", 80), "allow"),
        (probe("default/deathstar", "default/xwing", 80), "allow"),
    ], policies_for={0: ["default/rule1"]})


def test_starwars_l7_policy():
    # docs/gettingstarted/demo/ "Apply and Test HTTP-aware L7 Policy": only
    # POST /v1/request-landing; PUT /v1/exhaust-port gets "Access denied" (403).
    check(lab(starwars(), SW_L7), [
        (probe("default/tiefighter", "default/deathstar", 80, http=http("POST", "/v1/request-landing")), "l7-allow"),
        (probe("default/tiefighter", "default/deathstar", 80, http=http("PUT", "/v1/exhaust-port")), "l7-deny"),
        (probe("default/tiefighter", "default/deathstar", 80, http=http("GET", "/v1/request-landing")), "l7-deny"),
        # path and method are regexes matched against the whole value
        (probe("default/tiefighter", "default/deathstar", 80, http=http("POST", "/v1/request-landing/x")), "l7-deny"),
        (probe("default/tiefighter", "default/deathstar", 80, http=http("POSTX", "/v1/request-landing")), "l7-deny"),
        (probe("default/xwing", "default/deathstar", 80, http=http("POST", "/v1/request-landing")), "deny"),
        (probe("default/tiefighter", "default/deathstar", 8080), "deny"),
    ], policies_for={0: ["default/rule1"], 1: ["default/rule1"]})


def test_starwars_l7_port_accepts_connections_without_http():
    # A TCP probe without an HTTP request to the redirected port: connected.
    check(lab(starwars(), SW_L7), [
        (probe("default/tiefighter", "default/deathstar", 80), "pass"),
        (probe("default/tiefighter", "default/deathstar", "http"), "pass"),
    ])


def test_starwars_deny_all_ingress_with_empty_rule():
    # examples/minikube/sw_deny_policy.yaml ("empire-default-deny"):
    # ``ingress: [{}]`` in a CNP puts the selected endpoints into default deny
    # and allows nothing (docs/policy-engine.md "Empty forms").
    policy = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: empire-default-deny
spec:
  description: Default-deny ingress policy for the empire
  endpointSelector:
    matchLabels:
      org: empire
  ingress:
    - {}
"""
    check(lab(starwars(), policy), [
        (probe("default/tiefighter", "default/deathstar", 80), "deny"),
        (probe("default/xwing", "default/deathstar", 80), "deny"),
        (probe("default/xwing", "default/tiefighter", 80), "deny"),
        (probe("default/deathstar", "default/xwing", 80), "allow"),  # alliance is not selected
        (probe("default/tiefighter", WORLD, 443), "allow"),          # egress untouched
    ])


# ------------------------------------------- the demo inventory's probes
# The real demo inventory (inventories/demo): three hosts, deathstar-1 and
# deathstar-2 (both serving the named port http=80), tiefighter, xwing.

def _demo_inventory():
    with open(os.path.join(DEMO, "hosts.yml")) as f:
        inv = yaml.safe_load(f)
    hosts = inv["all"]["children"]["palisade_nodes"]["hosts"]
    with open(os.path.join(DEMO, "group_vars", "all.yml")) as f:
        group = yaml.safe_load(f)
    return hosts, group.get("palisade_namespaces")


def _demo_lab(policies):
    hosts, namespaces = _demo_inventory()
    return Lab.from_inventory(hosts, policies, namespaces)


def test_demo_inventory_star_wars_l3_l4():
    check(_demo_lab(SW_L3_L4), [
        (probe("default/tiefighter", "10.1.1.10", 80), "allow"),
        (probe("default/xwing", "10.1.1.10", 80), "deny"),
        (probe("default/tiefighter", "default/deathstar-1", 80), "allow"),
        (probe("default/tiefighter", "10.1.2.10", "http"), "allow"),  # deathstar-2, named port
        (probe("default/xwing", "10.1.2.10", 80), "deny"),
        (probe("10.1.3.10", "10.1.1.10", 80), "deny"),       # the xwing, named by its address
        (probe("10.1.1.20", "10.1.2.10", 80), "allow"),      # the tiefighter
    ])


def test_demo_inventory_star_wars_l7():
    check(_demo_lab(SW_L7), [
        (probe("default/tiefighter", "10.1.1.10", 80, http=http("POST", "/v1/request-landing")), "l7-allow"),
        (probe("default/tiefighter", "10.1.1.10", 80, http=http("PUT", "/v1/exhaust-port")), "l7-deny"),
        (probe("default/tiefighter", "10.1.2.10", 80, http=http("PUT", "/v1/exhaust-port")), "l7-deny"),
        (probe("default/xwing", "10.1.1.10", 80), "deny"),
        (probe("default/xwing", "10.1.2.10", 80, http=http("POST", "/v1/request-landing")), "deny"),
    ])


def _shipped_demo():
    """The demo inventory's own policy files and probes (probes.yml), the way
    playbooks/trace.yml runs them, with each probe's Star Wars verdict."""
    hosts, namespaces = _demo_inventory()
    files = sorted(glob.glob(os.path.join(STARWARS, "policies", "*.yaml")))
    assert files, "the demo inventory ships no policy file"
    policies = []
    for path in files:
        with open(path) as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
        policies.extend(("%s#%d" % (path, i), d) for i, d in enumerate(docs))
    with open(os.path.join(STARWARS, "probes.yml")) as f:
        probes = yaml.safe_load(f)["palisade_probes"]
    lab_ = Lab.from_inventory(hosts, policies, namespaces)

    deathstars = {"10.1.1.10", "10.1.2.10", "default/deathstar-1", "default/deathstar-2"}

    def expected(p):
        ship = p["from"].split("/")[-1]
        assert p["to"] in deathstars, "no expectation for probe %r: extend this test" % (p,)
        if ship == "xwing":
            return "deny"
        assert ship == "tiefighter", "no expectation for probe %r: extend this test" % (p,)
        h = p.get("http")
        if not h:
            return "pass"
        return "l7-allow" if (h.get("method"), h.get("path")) == ("POST", "/v1/request-landing") else "l7-deny"

    return lab_, [(dict(p), expected(p)) for p in probes]


def test_demo_inventory_as_shipped():
    lab_, table = _shipped_demo()
    assert {row[1] for row in table} >= {"l7-allow", "l7-deny", "deny"}, "the demo probes lost a Star Wars verdict"
    check(lab_, [row for row in table if row[1] != "pass"])


def test_demo_inventory_as_shipped_probes_without_http():
    lab_, table = _shipped_demo()
    rows = [row for row in table if row[1] == "pass"]
    assert rows, "probes.yml has no probe without http any more; drop this test"
    check(lab_, rows)


# ============================================================ L3: endpoints
# docs/security/policy/language/ -> "Layer 3 Examples" (layer3.rst),
# "Endpoints based".

def l3_endpoints():
    return [
        ep("default/frontend", "10.1.1.1", {"role": "frontend"}, host="node1"),
        ep("default/backend", "10.1.2.1", {"role": "backend"}, host="node2"),
        ep("default/other", "10.1.1.2", {"role": "other"}, host="node1"),
        ep("ns2/frontend", "10.1.2.2", {"role": "frontend"}, host="node2"),
    ]


def test_l3_simple_ingress_allow():
    # layer3.rst "Simple Ingress Allow" (examples/policies/l3/simple/l3.yaml):
    # role=frontend -> role=backend, on every port and protocol; the CNP's
    # fromEndpoints is scoped to the policy's namespace ("Namespaces" in
    # kubernetes.rst), so ns2's frontend is not allowed.
    policy = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: l3-rule
spec:
  endpointSelector:
    matchLabels:
      role: backend
  ingress:
    - fromEndpoints:
        - matchLabels:
            role: frontend
"""
    check(lab(l3_endpoints(), policy), [
        (probe("default/frontend", "default/backend", 80), "allow"),
        (probe("default/frontend", "default/backend", 5432), "allow"),
        (probe("default/frontend", "default/backend", 53, "UDP"), "allow"),
        (probe("default/frontend", "default/backend", 9, "SCTP"), "allow"),
        (probe("default/other", "default/backend", 80), "deny"),
        (probe("ns2/frontend", "default/backend", 80), "deny"),
        (probe(WORLD, "default/backend", 80), "deny"),
        (probe("default/backend", "default/frontend", 80), "allow"),
    ], policies_for={0: ["default/l3-rule"]})


def test_l3_simple_egress_allow():
    # layer3.rst "Simple Egress Allow" (examples/policies/l3/simple/l3_egress.yaml).
    policy = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: l3-egress-rule
spec:
  endpointSelector:
    matchLabels:
      role: frontend
  egress:
    - toEndpoints:
        - matchLabels:
            role: backend
"""
    check(lab(l3_endpoints(), policy), [
        (probe("default/frontend", "default/backend", 80), "allow"),
        (probe("default/frontend", "default/backend", 53, "UDP"), "allow"),
        (probe("default/frontend", "default/other", 80), "deny"),
        (probe("default/frontend", WORLD, 443), "deny"),
        (probe("default/other", "default/backend", 80), "allow"),
        # ns2/frontend is not in the policy's namespace: not selected
        (probe("ns2/frontend", "default/other", 80), "allow"),
    ])


def test_l3_allow_all_endpoints_is_namespace_scoped():
    # layer3.rst "Ingress Allow All Endpoints" and "Egress Allow All Endpoints"
    # (examples/policies/l3/ingress-allow-all, egress-allow-all): an empty
    # EndpointSelector selects all endpoints -- "based on the
    # CiliumNetworkPolicy namespace", so not other namespaces, and not world.
    policies = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: allow-all-to-victim
spec:
  endpointSelector:
    matchLabels:
      role: backend
  ingress:
    - fromEndpoints:
        - matchLabels: {}
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: allow-all-from-frontend
spec:
  endpointSelector:
    matchLabels:
      role: frontend
  egress:
    - toEndpoints:
        - {}
"""
    check(lab(l3_endpoints(), policies), [
        (probe("default/other", "default/backend", 80), "allow"),
        (probe("default/frontend", "default/backend", 80), "allow"),
        (probe("ns2/frontend", "default/backend", 80), "deny"),
        (probe(WORLD, "default/backend", 80), "deny"),
        (probe("default/frontend", "default/other", 8080), "allow"),
        (probe("default/frontend", "ns2/frontend", 80), "deny"),
        (probe("default/frontend", WORLD, 80), "deny"),
    ])


# ------------------------------------------------------------------ requires
# layer3.rst "Additional Label Requirements" (examples/policies/l3/requires/
# requires.yaml and endpoints.yaml; deprecated in 1.17, removed in 1.19).

REQUIRES = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: requires-rule
specs:
  - description: For endpoints with env=prod, only allow if source also has label env=prod
    endpointSelector:
      matchLabels:
        env: prod
    ingress:
      - fromRequires:
          - matchLabels:
              env: prod
"""

REQUIRES_ENDPOINTS = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: l3-rule
specs:
  - description: For endpoints with env=prod, allow if source also has label role=frontend
    endpointSelector:
      matchLabels:
        env: prod
    ingress:
      - fromEndpoints:
          - matchLabels:
              role: frontend
"""


def requires_endpoints():
    return [
        ep("default/prod-db", "10.1.1.1", {"env": "prod", "role": "db"}, host="node1"),
        ep("default/prod-frontend", "10.1.1.2", {"env": "prod", "role": "frontend"}, host="node1"),
        ep("default/dev-frontend", "10.1.2.1", {"env": "dev", "role": "frontend"}, host="node2"),
        ep("default/prod-other", "10.1.2.2", {"env": "prod", "role": "other"}, host="node2"),
        ep("default/dev-db", "10.1.2.3", {"env": "dev", "role": "db"}, host="node2"),
    ]


def test_requires_alone_grants_nothing():
    # "This fromRequires rule doesn't allow anything on its own"; the rule still
    # has an ingress section, so env=prod endpoints are in default deny.
    check(lab(requires_endpoints(), REQUIRES), [
        (probe("default/prod-frontend", "default/prod-db", 80), "deny"),
        (probe("default/dev-frontend", "default/prod-db", 80), "deny"),
        (probe("default/dev-frontend", "default/dev-db", 80), "allow"),
    ])


def test_requires_is_anded_into_other_rules():
    # "... the endpoint with label env=prod will become accessible from
    # endpoints that have both labels env=prod and role=frontend."
    check(lab(requires_endpoints(), [REQUIRES, REQUIRES_ENDPOINTS]), [
        (probe("default/prod-frontend", "default/prod-db", 80), "allow"),
        (probe("default/dev-frontend", "default/prod-db", 80), "deny"),
        (probe("default/prod-other", "default/prod-db", 80), "deny"),
        (probe("default/prod-frontend", "default/prod-other", 80), "allow"),
        (probe("default/dev-frontend", "default/dev-db", 80), "allow"),
    ])


# ================================================================== entities
# layer3.rst "Entities based" (examples/policies/l3/entities/*.yaml). Node
# addresses: the destination's own node is ``host``, other nodes are
# ``remote-node`` (docs/policy-engine.md "Identity numbers").

def entity_endpoints():
    return [
        ep("default/public", "10.1.1.1", {"role": "public"}, host="node1"),
        ep("default/dev", "10.1.1.2", {"env": "dev"}, host="node1"),
        ep("default/client", "10.1.2.1", {"role": "client"}, host="node2"),
        ep("other/client", "10.1.2.2", {"role": "client"}, host="node2"),
    ]


def test_entity_world():
    # "Access to/from outside cluster" (world.yaml): world reaches role=public;
    # cluster peers do not.
    policy = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: from-world-to-role-public
spec:
  endpointSelector:
    matchLabels:
      role: public
  ingress:
    - fromEntities:
        - world
"""
    check(lab(entity_endpoints(), policy), [
        (probe(WORLD, "default/public", 80), "allow"),
        (probe("198.51.100.200", "default/public", 53, "UDP"), "allow"),
        (probe("default/client", "default/public", 80), "deny"),
        (probe(NODES["node2"], "default/public", 80), "deny"),  # remote-node is not world
    ])


def test_entity_host():
    # "Access to/from local host" (host.yaml): env=dev may reach the host that
    # serves it -- not other nodes, pods or world.
    policy = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: dev-to-host
spec:
  endpointSelector:
    matchLabels:
      env: dev
  egress:
    - toEntities:
        - host
"""
    check(lab(entity_endpoints(), policy), [
        (probe("default/dev", NODES["node1"], 10250), "allow"),
        (probe("default/dev", NODES["node2"], 10250), "deny"),
        (probe("default/dev", "default/public", 80), "deny"),
        (probe("default/dev", WORLD, 443), "deny"),
    ])


def test_entity_host_and_remote_node():
    # "Access to/from all nodes in the cluster" (nodes.yaml): host + remote-node.
    policy = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: to-dev-from-nodes-in-cluster
spec:
  endpointSelector:
    matchLabels:
      env: dev
  ingress:
    - fromEntities:
        - host
        - remote-node
"""
    check(lab(entity_endpoints(), policy), [
        (probe(NODES["node1"], "default/dev", 8080), "allow"),
        (probe(NODES["node2"], "default/dev", 8080), "allow"),
        (probe("default/client", "default/dev", 8080), "deny"),
        (probe(WORLD, "default/dev", 8080), "deny"),
    ])


def test_entity_cluster_and_all():
    # Entity list in layer3.rst: cluster = every endpoint of the cluster plus
    # host, remote-node, init, unmanaged...; all = cluster + world.
    policies = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: from-cluster
spec:
  endpointSelector:
    matchLabels:
      role: public
  ingress:
    - fromEntities: [cluster]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: from-all
spec:
  endpointSelector:
    matchLabels:
      env: dev
  ingress:
    - fromEntities: [all]
"""
    check(lab(entity_endpoints(), policies), [
        (probe("default/client", "default/public", 80), "allow"),
        (probe("other/client", "default/public", 80), "allow"),   # entities are not namespace-scoped
        (probe(NODES["node1"], "default/public", 80), "allow"),
        (probe(NODES["node2"], "default/public", 80), "allow"),
        (probe(WORLD, "default/public", 80), "deny"),
        (probe(WORLD, "default/dev", 80), "allow"),
        (probe("other/client", "default/dev", 81, "UDP"), "allow"),
        (probe(NODES["node2"], "default/dev", 80), "allow"),
    ])


# ====================================================================== CIDR
# layer3.rst "IP/CIDR based": CIDR rules apply to peers without an identity
# derived from endpoint labels; they do not select cluster endpoints, nor
# (by default, "Selecting nodes with CIDR / ipBlock") nodes.

def cidr_endpoints():
    return [
        ep("default/my-service", "10.1.1.1", {"app": "myService"}, host="node1"),
        ep("default/pod", "10.1.2.1", {"app": "other"}, host="node2"),
        ep("default/crawler", "10.1.1.2", {"role": "crawler"}, host="node1"),
    ]


CIDR_RULE = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: cidr-rule
spec:
  endpointSelector:
    matchLabels:
      app: myService
  egress:
    - toCIDR:
        - 20.1.1.1/32
    - toCIDRSet:
        - cidr: 10.0.0.0/8
          except:
            - 10.96.0.0/12
"""


def test_cidr_and_cidrset_with_except():
    # "Allow to external CIDR block" (examples/policies/l3/cidr/cidr.yaml).
    check(lab(cidr_endpoints(), CIDR_RULE), [
        (probe("default/my-service", "20.1.1.1", 443), "allow"),
        (probe("default/my-service", "20.1.1.2", 443), "deny"),
        (probe("default/my-service", "10.200.0.1", 80), "allow"),
        (probe("default/my-service", "10.96.0.10", 80), "deny"),      # inside the except
        (probe("default/my-service", "10.111.255.1", 80), "deny"),    # 10.96.0.0/12 ends at 10.111.255.255
        (probe("default/my-service", "10.112.0.1", 80), "allow"),
        (probe("default/my-service", WORLD, 80), "deny"),
    ])


def test_cnp_cidr_does_not_match_endpoints_but_knp_ipblock_does():
    # layer3.rst "IP/CIDR based": "CIDR rules do not apply to traffic where both
    # sides of the connection are ... managed by Cilium"; the pod 10.1.2.1 lies
    # inside 10.0.0.0/8 and is still denied. A Kubernetes NetworkPolicy ipBlock
    # is Kubernetes' semantics (its e2e suite expects pod IPs to match, see
    # test_truth_k8s_e2e.py ipblock-*), as docs/inventory.md requires.
    knp = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: ipblock
  namespace: default
spec:
  podSelector:
    matchLabels:
      app: myService
  policyTypes: [Egress]
  egress:
    - to:
        - ipBlock:
            cidr: 10.0.0.0/8
            except: [10.96.0.0/12]
"""
    check(lab(cidr_endpoints(), CIDR_RULE), [
        (probe("default/my-service", "default/pod", 80), "deny"),
        (probe("default/my-service", "10.1.2.1", 80), "deny"),
    ])
    check(lab(cidr_endpoints(), knp), [
        (probe("default/my-service", "default/pod", 80), "allow"),
        (probe("default/my-service", "10.200.0.1", 80), "allow"),
        (probe("default/my-service", "10.96.0.10", 80), "deny"),
        (probe("default/my-service", WORLD, 80), "deny"),
    ])


def test_cidr_does_not_select_nodes():
    # layer3.rst "Selecting nodes with CIDR / ipBlock": by default CIDR-based
    # selectors do not match nodes (policy-cidr-match-mode unset).
    policy = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: cidr-covering-nodes
spec:
  endpointSelector:
    matchLabels:
      app: myService
  egress:
    - toCIDR: [172.16.0.0/16]
"""
    check(lab(cidr_endpoints(), policy), [
        (probe("default/my-service", "172.16.9.9", 80), "allow"),
        (probe("default/my-service", NODES["node2"], 80), "deny"),
        (probe("default/my-service", NODES["node1"], 80), "deny"),
    ])
    # "Setting --policy-cidr-match-mode=nodes permits selecting the apiserver
    # via an ipBlock peer" -- without it, a KNP ipBlock does not select nodes
    # either (it does select endpoints, docs/inventory.md).
    knp = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: ipblock-covering-nodes
  namespace: default
spec:
  podSelector:
    matchLabels:
      app: myService
  policyTypes: [Egress]
  egress:
    - to:
        - ipBlock: {cidr: 172.16.0.0/16}
"""
    check(lab(cidr_endpoints(), knp), [
        (probe("default/my-service", "172.16.9.9", 80), "allow"),
        (probe("default/my-service", NODES["node2"], 80), "deny"),
    ])


def test_cidr_dependent_l4_rule():
    # layer4.rst "CIDR-dependent Layer 4 Rule" (cidr_l4_combined.yaml).
    policy = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: cidr-l4-rule
spec:
  endpointSelector:
    matchLabels:
      role: crawler
  egress:
    - toCIDR:
        - 192.0.2.0/24
      toPorts:
        - ports:
            - port: "80"
              protocol: TCP
"""
    check(lab(cidr_endpoints(), policy), [
        (probe("default/crawler", "192.0.2.5", 80), "allow"),
        (probe("default/crawler", "192.0.2.5", 443), "deny"),
        (probe("default/crawler", "192.0.2.5", 80, "UDP"), "deny"),
        (probe("default/crawler", "198.51.100.1", 80), "deny"),
        (probe("default/my-service", "192.0.2.5", 443), "allow"),  # not selected
    ])


def test_from_cidrset_with_except_on_ingress():
    # layer3.rst "Ingress": fromCIDRSet with an except list.
    policy = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: from-cidrset
spec:
  endpointSelector:
    matchLabels:
      app: myService
  ingress:
    - fromCIDRSet:
        - cidr: 203.0.113.0/24
          except: [203.0.113.128/25]
"""
    check(lab(cidr_endpoints(), policy), [
        (probe("203.0.113.7", "default/my-service", 80), "allow"),
        (probe("203.0.113.200", "default/my-service", 80), "deny"),
        (probe("198.51.100.1", "default/my-service", 80), "deny"),
        (probe("default/pod", "default/my-service", 80), "deny"),
    ])


def test_world_entity_covers_cidr_identities_other_policies_create():
    # layer3.rst entity "world": "Allowing to world is identical to allowing
    # to CIDR 0.0.0.0/0" -- also for addresses that another policy's CIDR
    # rule gives an identity of their own.
    policies = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: to-world
spec:
  endpointSelector:
    matchLabels:
      app: myService
  egress:
    - toEntities: [world]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: crawler-cidr
spec:
  endpointSelector:
    matchLabels:
      role: crawler
  egress:
    - toCIDR: [203.0.113.0/24]
    - toCIDRSet:
        - cidr: 0.0.0.0/0
          except: [198.51.100.0/24]
"""
    check(lab(cidr_endpoints(), policies), [
        (probe("default/my-service", "203.0.113.7", 443), "allow"),
        (probe("default/my-service", "198.51.100.1", 443), "allow"),
        (probe("default/my-service", "10.200.0.1", 443), "allow"),
        (probe("default/my-service", "default/pod", 443), "deny"),       # world is not the cluster
        (probe("default/my-service", NODES["node2"], 443), "deny"),
        (probe("default/crawler", "203.0.113.7", 443), "allow"),
        (probe("default/crawler", "198.51.100.1", 443), "deny"),
        (probe("default/crawler", "192.0.2.1", 443), "allow"),          # 0.0.0.0/0 minus the except
        (probe("default/crawler", "default/pod", 443), "deny"),         # CIDR rules never select endpoints
    ])


def test_cidr_except_with_overlapping_prefixes_of_other_policies():
    # layer3.rst toCIDRSet ("a list of subnets ... to which traffic should not
    # be allowed"), with prefixes from another policy that contain the except
    # (10.64.0.0/10 holds 10.96.0.0/12) or lie inside it (10.100.0.0/16):
    # each address is judged by the most specific prefix it falls in.
    policies = [CIDR_RULE, """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: crawler-prefixes
spec:
  endpointSelector:
    matchLabels:
      role: crawler
  egress:
    - toCIDR: [10.64.0.0/10, 10.100.0.0/16]
"""]
    check(lab(cidr_endpoints(), policies), [
        (probe("default/my-service", "10.65.0.1", 80), "allow"),    # in 10.64/10, outside the except
        (probe("default/my-service", "10.127.0.1", 80), "allow"),
        (probe("default/my-service", "10.96.0.1", 80), "deny"),     # in the except
        (probe("default/my-service", "10.100.0.5", 80), "deny"),    # in 10.100/16, inside the except
        (probe("default/crawler", "10.100.0.5", 80), "allow"),
        (probe("default/crawler", "10.96.0.1", 80), "allow"),       # 10.64/10 covers it for the crawler
        (probe("default/crawler", "10.200.0.1", 80), "deny"),
    ])


def test_cidr_deny_does_not_match_endpoints_or_nodes():
    # deny.rst + layer3.rst "IP/CIDR based": an egressDeny toCIDRSet denies
    # outside addresses only; cluster peers are not CIDR peers.
    policy = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: no-internet
spec:
  endpointSelector:
    matchLabels:
      app: myService
  egress:
    - toEntities: [all]
  egressDeny:
    - toCIDRSet:
        - cidr: 0.0.0.0/0
          except: [192.0.2.0/24]
"""
    check(lab(cidr_endpoints(), policy), [
        (probe("default/my-service", WORLD, 443), "deny"),
        (probe("default/my-service", "10.200.0.1", 443), "deny"),
        (probe("default/my-service", "192.0.2.1", 443), "allow"),
        (probe("default/my-service", "default/pod", 443), "allow"),
        (probe("default/my-service", NODES["node2"], 443), "allow"),
    ], policies_for={0: ["default/no-internet"]})


def test_knp_ipblock_selects_an_identity_only_when_all_its_endpoints_are_inside():
    # docs/policy-engine.md "CIDR peers": a KNP ipBlock selects an endpoint
    # identity when every endpoint carrying it lies inside the block (the
    # datapath keys on identities, not addresses); otherwise not, with a
    # warning. (Kubernetes would allow web-1 alone.)
    endpoints = cidr_endpoints() + [
        ep("default/web-1", "10.1.1.50", {"app": "web"}, host="node1"),
        ep("default/web-2", "10.1.2.50", {"app": "web"}, host="node2"),
    ]
    policy = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: to-node1-pods
  namespace: default
spec:
  podSelector:
    matchLabels:
      app: myService
  policyTypes: [Egress]
  egress:
    - to:
        - ipBlock: {cidr: 10.1.1.0/24}
"""
    lab_ = lab(endpoints, policy)
    check(lab_, [
        (probe("default/my-service", "default/crawler", 80), "allow"),   # 10.1.1.2, its identity is all inside
        (probe("default/my-service", "default/web-1", 80), "deny"),
        (probe("default/my-service", "default/web-2", 80), "deny"),
        (probe("default/my-service", "10.1.1.99", 80), "allow"),         # no endpoint: a CIDR peer
    ])
    assert any("10.1.1.0/24" in w for w in lab_.policy.warnings), lab_.policy.warnings


# ===================================================================== deny
# docs/security/policy/language/ "Deny Policies" (deny.rst): the table of
# allow and deny policies on a server, and the result for client -> server.
# The table's "ping" is ICMP, outside policy_trace's probe model; it stands
# for "traffic that only an L3 rule covers", probed here as UDP 7.

DENY_ALLOWS = {
    "L7": """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: allow-l7}
spec:
  endpointSelector: {matchLabels: {app: server}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: client}}]
      toPorts:
        - ports: [{port: "80", protocol: TCP}]
          rules:
            http: [{method: GET, path: /}]
""",
    "L4 80": """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: allow-l4-80}
spec:
  endpointSelector: {matchLabels: {app: server}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: client}}]
      toPorts:
        - ports: [{port: "80", protocol: TCP}]
""",
    "L4 81": """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: allow-l4-81}
spec:
  endpointSelector: {matchLabels: {app: server}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: client}}]
      toPorts:
        - ports: [{port: "81", protocol: TCP}]
""",
    "L3": """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: allow-l3}
spec:
  endpointSelector: {matchLabels: {app: server}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: client}}]
""",
}

DENY_DENIES = {
    "L4 80": """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: deny-l4-80}
spec:
  endpointSelector: {matchLabels: {app: server}}
  ingressDeny:
    - fromEndpoints: [{matchLabels: {app: client}}]
      toPorts:
        - ports: [{port: "80", protocol: TCP}]
""",
    "L3": """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: deny-l3}
spec:
  endpointSelector: {matchLabels: {app: server}}
  ingressDeny:
    - fromEndpoints: [{matchLabels: {app: client}}]
""",
}

# (allow policies, deny policies, curl server:81, curl server:80, ping server)
DENY_TABLE = [
    (("L7", "L4 80", "L4 81", "L3"), (), "allow", "allow", "allow"),
    (("L7", "L4 80", "L4 81", "L3"), ("L4 80",), "allow", "deny", "allow"),
    (("L7", "L4 80", "L4 81", "L3"), ("L3",), "deny", "deny", "deny"),
    (("L7", "L4 80", "L4 81", "L3"), ("L4 80", "L3"), "deny", "deny", "deny"),
    ((), ("L4 80",), "deny", "deny", "deny"),
]


@pytest.mark.parametrize("allows,denies,curl81,curl80,ping", DENY_TABLE,
                         ids=["column%d" % (i + 1) for i in range(len(DENY_TABLE))])
def test_deny_policy_table(allows, denies, curl81, curl80, ping):
    endpoints = [
        ep("default/client", "10.1.1.1", {"app": "client"}, host="node1"),
        ep("default/server", "10.1.2.1", {"app": "server"}, host="node2"),
    ]
    docs = [DENY_ALLOWS[a] for a in allows] + [DENY_DENIES[d] for d in denies]
    check(lab(endpoints, docs), [
        (probe("default/client", "default/server", 81, http=http("GET", "/")), curl81),
        # column 1: the L4-only allow on 80 cancels the L7 rule on 80 ("allow", not "l7-allow")
        (probe("default/client", "default/server", 80, http=http("GET", "/")), curl80),
        (probe("default/client", "default/server", 7, "UDP"), ping),
    ])


def test_ingress_deny_beats_ingress_allow_clusterwide():
    # deny.rst: "The following policy will deny ingress from world on all
    # namespaces on all Pods ... this policy is allowing traffic from everywhere
    # except from world" (examples/policies/l3/entities/from_world_deny.yaml).
    policy = """
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: external-lockdown
spec:
  endpointSelector: {}
  ingressDeny:
    - fromEntities:
        - world
  ingress:
    - fromEntities:
        - all
"""
    check(lab(entity_endpoints(), policy), [
        (probe(WORLD, "default/public", 80), "deny"),
        (probe(WORLD, "other/client", 443), "deny"),
        (probe("other/client", "default/public", 80), "allow"),
        (probe("default/client", "other/client", 80), "allow"),
        (probe(NODES["node2"], "default/public", 80), "allow"),
    ], policies_for={0: ["external-lockdown"]})


def test_egress_deny_beats_egress_allow():
    # layer3.rst "Simple Egress Deny" (examples/policies/l3/egress-deny/egress-deny.yaml).
    policy = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: deny-egress-example
spec:
  endpointSelector:
    matchLabels:
      role: frontend
  egress:
    - toEntities:
        - all
  egressDeny:
    - toEndpoints:
        - matchLabels:
            role: backend
"""
    check(lab(l3_endpoints(), policy), [
        (probe("default/frontend", "default/backend", 80), "deny"),
        (probe("default/frontend", "default/backend", 53, "UDP"), "deny"),
        (probe("default/frontend", "default/other", 80), "allow"),
        (probe("default/frontend", WORLD, 443), "allow"),
        (probe("default/other", "default/backend", 80), "allow"),
    ], policies_for={0: ["default/deny-egress-example"]})


def test_deny_beats_l7_allow():
    # deny.rst: an L3 deny blocks the peer whatever L3/L4/L7 allows exist
    # (table column 3); the request never reaches the proxy.
    endpoints = [
        ep("default/client", "10.1.1.1", {"app": "client"}, host="node1"),
        ep("default/server", "10.1.2.1", {"app": "server"}, host="node2"),
    ]
    check(lab(endpoints, [DENY_ALLOWS["L7"], DENY_DENIES["L3"]]), [
        (probe("default/client", "default/server", 80, http=http("GET", "/")), "deny"),
    ])


def test_deny_without_default_deny():
    # intro.rst "Endpoint default policy" + deny.rst: with enableDefaultDeny
    # ingress false a deny rule still denies, and nothing else is blocked.
    policy = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: block-other
spec:
  endpointSelector:
    matchLabels:
      role: backend
  enableDefaultDeny:
    ingress: false
  ingressDeny:
    - fromEndpoints:
        - matchLabels:
            role: other
"""
    check(lab(l3_endpoints(), policy), [
        (probe("default/other", "default/backend", 80), "deny"),
        (probe("default/frontend", "default/backend", 80), "allow"),
        (probe(WORLD, "default/backend", 80), "allow"),
    ])


def test_most_specific_port_match_decides_between_l7_and_a_range():
    # Policy map lookup (cilium bpf/lib/policy.h; port ranges as masked
    # prefixes, cilium PR #20633; precedence by L4 prefix length, PR #35150):
    # an exact-port L7 entry is more specific than an L4-only range covering
    # the same port, so port 80 stays redirected while 81-90 are plain.
    policy = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: mixed
spec:
  endpointSelector:
    matchLabels:
      app: service
  ingress:
    - fromEndpoints:
        - matchLabels:
            role: frontend
      toPorts:
        - ports:
            - port: "80"
              protocol: TCP
          rules:
            http:
              - method: GET
                path: /public
    - fromEndpoints:
        - matchLabels:
            role: frontend
      toPorts:
        - ports:
            - port: "80"
              endPort: 90
              protocol: TCP
"""
    check(lab(l7_endpoints(), policy), [
        (probe("default/frontend", "default/service", 80, http=http("GET", "/public")), "l7-allow"),
        (probe("default/frontend", "default/service", 80, http=http("PUT", "/x")), "l7-deny"),
        (probe("default/frontend", "default/service", 85, http=http("PUT", "/x")), "allow"),
        (probe("default/frontend", "default/service", 91), "deny"),
    ])


# ===================================================================== ports
# layer4.rst "Example Port Ranges" (examples/policies/l4/l4_port_range.yaml),
# "Labels-dependent Layer 4 rule" (l3_l4_combined.yaml).

def test_end_port_range():
    policy = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: l4-port-range-rule
spec:
  endpointSelector:
    matchLabels:
      app: myService
  egress:
    - toPorts:
        - ports:
            - port: "80"
              endPort: 444
              protocol: TCP
"""
    check(lab(cidr_endpoints(), policy), [
        (probe("default/my-service", WORLD, 80), "allow"),
        (probe("default/my-service", WORLD, 443), "allow"),
        (probe("default/my-service", WORLD, 444), "allow"),
        (probe("default/my-service", WORLD, 445), "deny"),
        (probe("default/my-service", WORLD, 79), "deny"),
        (probe("default/my-service", WORLD, 443, "UDP"), "deny"),
        (probe("default/my-service", "default/pod", 100), "allow"),  # "to any layer 3 destination"
        (probe("default/my-service", NODES["node1"], 443), "allow"),
    ])


def test_labels_dependent_l4_rule():
    # layer4.rst "Labels-dependent Layer 4 rule": frontend -> backend only on 80/TCP.
    policy = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: l4-rule
spec:
  endpointSelector:
    matchLabels:
      role: backend
  ingress:
    - fromEndpoints:
        - matchLabels:
            role: frontend
      toPorts:
        - ports:
            - port: "80"
              protocol: TCP
"""
    check(lab(l3_endpoints(), policy), [
        (probe("default/frontend", "default/backend", 80), "allow"),
        (probe("default/frontend", "default/backend", 443), "deny"),
        (probe("default/frontend", "default/backend", 80, "UDP"), "deny"),
        (probe("default/other", "default/backend", 80), "deny"),
    ])


def test_protocol_any_covers_tcp_udp_sctp():
    # layer4.rst PortProtocol: "Protocol is the L4 protocol. If omitted or
    # empty, any protocol matches."
    policy = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: port-53-any
spec:
  endpointSelector:
    matchLabels:
      role: backend
  ingress:
    - toPorts:
        - ports:
            - port: "53"
"""
    check(lab(l3_endpoints(), policy), [
        (probe("default/other", "default/backend", 53, "TCP"), "allow"),
        (probe("default/other", "default/backend", 53, "UDP"), "allow"),
        (probe("ns2/frontend", "default/backend", 53, "SCTP"), "allow"),
        (probe(WORLD, "default/backend", 53, "UDP"), "allow"),  # toPorts alone: any L3 peer
        (probe("default/other", "default/backend", 54, "UDP"), "deny"),
    ])


def test_named_ports_resolve_on_the_right_side():
    # layer4.rst PortProtocol: "Port can be an L4 port number, or a name";
    # named ports (cilium PR #11092) resolve against the endpoints that own the
    # port: the subject on ingress, the destination on egress. web-1 and web-2
    # share one identity but serve "http" on different numbers.
    endpoints = [
        ep("default/web-1", "10.1.1.1", {"app": "web"}, host="node1",
           ports=[{"name": "http", "port": 8080, "protocol": "TCP"}]),
        ep("default/web-2", "10.1.2.1", {"app": "web"}, host="node2",
           ports=[{"name": "http", "port": 9090, "protocol": "TCP"}]),
        ep("default/web-canary", "10.1.2.3", {"app": "web", "track": "canary"}, host="node2",
           ports=[{"name": "http", "port": 7070, "protocol": "TCP"}]),
        ep("default/client", "10.1.1.2", {"app": "client"}, host="node1"),
        ep("default/egress-client", "10.1.2.2", {"app": "egress-client"}, host="node2"),
    ]
    ingress = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: ingress-named
spec:
  endpointSelector:
    matchLabels:
      app: web
  ingress:
    - fromEndpoints:
        - matchLabels:
            app: client
      toPorts:
        - ports:
            - port: http
              protocol: TCP
"""
    egress = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: egress-named
spec:
  endpointSelector:
    matchLabels:
      app: egress-client
  egress:
    - toEndpoints:
        - matchLabels:
            app: web
      toPorts:
        - ports:
            - port: http
              protocol: TCP
"""
    check(lab(endpoints, ingress), [
        (probe("default/client", "default/web-1", 8080), "allow"),
        (probe("default/client", "default/web-1", 9090), "deny"),
        (probe("default/client", "default/web-2", 9090), "allow"),
        (probe("default/client", "default/web-2", 8080), "deny"),
        (probe("default/client", "default/web-2", "http"), "allow"),  # the probe names the port too
    ])
    # Egress: the datapath keys entries on the peer's identity, so the name
    # resolves to the numbers the destination identity's endpoints declare
    # (Cilium's NamedPortMultiMap.GetNamedPorts, "the port numbers for the
    # named port ... by numeric identity", pkg/policy/types): web-1 and web-2
    # share one identity and so both numbers; web-canary has its own.
    check(lab(endpoints, egress), [
        (probe("default/egress-client", "default/web-1", 8080), "allow"),
        (probe("default/egress-client", "default/web-2", 9090), "allow"),
        (probe("default/egress-client", "default/web-1", 9090), "allow"),
        (probe("default/egress-client", "default/web-canary", 7070), "allow"),
        (probe("default/egress-client", "default/web-canary", 8080), "deny"),
        (probe("default/egress-client", "default/web-1", 7070), "deny"),
        (probe("default/egress-client", "default/client", 8080), "deny"),
    ])


# ================================================================ namespaces
# kubernetes.rst "Namespaces" and "Clusterwide Policies".

def ns_endpoints():
    return [
        ep("ns1/a", "10.1.1.1", {"app": "a"}, host="node1"),
        ep("ns1/b", "10.1.1.2", {"app": "b"}, host="node1"),
        ep("ns2/a", "10.1.2.1", {"app": "a"}, host="node2"),
        ep("ns2/b", "10.1.2.2", {"app": "b"}, host="node2"),
        ep("ns3/a", "10.1.1.3", {"app": "a"}, host="node1"),
    ]


def test_enforce_namespace_boundaries():
    # kubernetes.rst "Example: Enforce namespace boundaries"
    # (examples/policies/kubernetes/namespace/isolate-namespaces.yaml).
    policies = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: isolate-ns1
  namespace: ns1
spec:
  endpointSelector:
    matchLabels: {}
  ingress:
    - fromEndpoints:
        - matchLabels: {}
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: isolate-ns1
  namespace: ns2
spec:
  endpointSelector:
    matchLabels: {}
  ingress:
    - fromEndpoints:
        - matchLabels: {}
"""
    check(lab(ns_endpoints(), policies), [
        (probe("ns1/a", "ns1/b", 80), "allow"),
        (probe("ns2/a", "ns2/b", 80), "allow"),
        (probe("ns2/a", "ns1/b", 80), "deny"),
        (probe("ns1/a", "ns2/b", 80), "deny"),
        (probe("ns3/a", "ns1/a", 80), "deny"),
        # "the pods can still communicate egress to anywhere unless the
        # destination is in either ns1 or ns2"
        (probe("ns1/a", "ns3/a", 80), "allow"),
        (probe("ns1/a", WORLD, 443), "allow"),
    ], policies_for={0: ["ns1/isolate-ns1"], 1: ["ns2/isolate-ns1"]})


def test_expose_pods_across_namespaces():
    # kubernetes.rst "Example: Expose pods across namespaces"
    # (namespace-policy.yaml): naming k8s:io.kubernetes.pod.namespace in
    # fromEndpoints replaces the policy's own namespace.
    endpoints = [
        ep("ns1/leia", "10.1.1.1", {"name": "leia"}, host="node1"),
        ep("ns1/luke", "10.1.1.2", {"name": "luke"}, host="node1"),
        ep("ns2/luke", "10.1.2.1", {"name": "luke"}, host="node2"),
        ep("ns2/vader", "10.1.2.2", {"name": "vader"}, host="node2"),
    ]
    policy = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: k8s-expose-across-namespace
  namespace: ns1
spec:
  endpointSelector:
    matchLabels:
      name: leia
  ingress:
    - fromEndpoints:
        - matchLabels:
            k8s:io.kubernetes.pod.namespace: ns2
            name: luke
"""
    check(lab(endpoints, policy), [
        (probe("ns2/luke", "ns1/leia", 80), "allow"),
        (probe("ns1/luke", "ns1/leia", 80), "deny"),
        (probe("ns2/vader", "ns1/leia", 80), "deny"),
    ])


def test_egress_to_kube_dns_in_kube_system():
    # kubernetes.rst "Example: Allow egress to kube-dns in kube-system
    # namespace" (kubedns-policy.yaml), created in namespace "public".
    endpoints = [
        ep("public/app", "10.1.1.1", {"app": "web"}, host="node1"),
        ep("public/other", "10.1.1.2", {"app": "other"}, host="node1"),
        ep("kube-system/coredns", "10.1.2.1", {"k8s-app": "kube-dns"}, host="node2"),
        ep("kube-system/metrics", "10.1.2.2", {"k8s-app": "metrics"}, host="node2"),
        ep("default/app", "10.1.2.3", {"app": "web"}, host="node2"),
    ]
    policy = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: allow-to-kubedns
  namespace: public
spec:
  endpointSelector:
    {}
  egress:
    - toEndpoints:
        - matchLabels:
            k8s:io.kubernetes.pod.namespace: kube-system
            k8s-app: kube-dns
      toPorts:
        - ports:
            - port: '53'
              protocol: UDP
"""
    check(lab(endpoints, policy), [
        (probe("public/app", "kube-system/coredns", 53, "UDP"), "allow"),
        (probe("public/other", "kube-system/coredns", 53, "UDP"), "allow"),
        (probe("public/app", "kube-system/coredns", 53, "TCP"), "deny"),
        (probe("public/app", "kube-system/metrics", 53, "UDP"), "deny"),
        (probe("public/app", "public/other", 80), "deny"),
        (probe("default/app", "kube-system/metrics", 8443), "allow"),  # other namespaces unaffected
    ])


def test_clusterwide_policy_selects_every_namespace():
    # kubernetes.rst "Clusterwide Policies" (clusterscope-policy.yaml): luke in
    # any namespace -> leia in any namespace.
    endpoints = [
        ep("ns1/leia", "10.1.1.1", {"name": "leia"}, host="node1"),
        ep("ns2/leia", "10.1.2.1", {"name": "leia"}, host="node2"),
        ep("ns1/luke", "10.1.1.2", {"name": "luke"}, host="node1"),
        ep("ns3/luke", "10.1.2.2", {"name": "luke"}, host="node2"),
        ep("ns2/vader", "10.1.2.3", {"name": "vader"}, host="node2"),
    ]
    policy = """
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: clusterwide-policy-example
spec:
  description: Policy for selective ingress allow to a pod from only a pod with given label
  endpointSelector:
    matchLabels:
      name: leia
  ingress:
    - fromEndpoints:
        - matchLabels:
            name: luke
"""
    check(lab(endpoints, policy), [
        (probe("ns1/luke", "ns1/leia", 80), "allow"),
        (probe("ns3/luke", "ns1/leia", 80), "allow"),
        (probe("ns1/luke", "ns2/leia", 80), "allow"),
        (probe("ns2/vader", "ns2/leia", 80), "deny"),
        (probe("ns1/leia", "ns3/luke", 80), "allow"),
    ], policies_for={0: ["clusterwide-policy-example"]})


def test_clusterwide_empty_from_endpoints_is_all_pods():
    # kubernetes.rst "Example: Allow all ingress to kube-dns"
    # (wildcard-from-endpoints.yaml): in a CCNP, fromEndpoints [{}] is every
    # Cilium-managed endpoint of the cluster, in every namespace.
    endpoints = [
        ep("kube-system/coredns", "10.1.2.1", {"k8s-app": "kube-dns"}, host="node2"),
        ep("ns1/a", "10.1.1.1", {"app": "a"}, host="node1"),
        ep("ns2/b", "10.1.1.2", {"app": "b"}, host="node1"),
    ]
    policy = """
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: wildcard-from-endpoints
spec:
  description: Policy for ingress allow to kube-dns from all Cilium managed endpoints in the cluster
  endpointSelector:
    matchLabels:
      k8s:io.kubernetes.pod.namespace: kube-system
      k8s-app: kube-dns
  ingress:
    - fromEndpoints:
        - {}
      toPorts:
        - ports:
            - port: "53"
              protocol: UDP
"""
    check(lab(endpoints, policy), [
        (probe("ns1/a", "kube-system/coredns", 53, "UDP"), "allow"),
        (probe("ns2/b", "kube-system/coredns", 53, "UDP"), "allow"),
        (probe("ns2/b", "kube-system/coredns", 53, "TCP"), "deny"),
        (probe(WORLD, "kube-system/coredns", 53, "UDP"), "deny"),
        (probe(NODES["node1"], "kube-system/coredns", 53, "UDP"), "deny"),  # remote-node: not an endpoint
    ])


def test_clusterwide_namespace_labels():
    # kubernetes.rst "Namespaces": io.cilium.k8s.namespace.labels in
    # fromEndpoints is honoured by CiliumClusterwideNetworkPolicy.
    endpoints = [
        ep("blue1/a", "10.1.1.1", {"app": "a"}, host="node1"),
        ep("blue2/a", "10.1.1.2", {"app": "a"}, host="node1"),
        ep("red/a", "10.1.2.1", {"app": "a"}, host="node2"),
        ep("db/db", "10.1.2.2", {"app": "db"}, host="node2"),
    ]
    namespaces = {"blue1": {"labels": {"team": "blue"}}, "blue2": {"labels": {"team": "blue"}},
                  "red": {"labels": {"team": "red"}}, "db": {"labels": {}}}
    policy = """
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: blue-team-to-db
spec:
  endpointSelector:
    matchLabels:
      app: db
  ingress:
    - fromEndpoints:
        - matchLabels:
            io.cilium.k8s.namespace.labels.team: blue
"""
    check(lab(endpoints, policy, namespaces), [
        (probe("blue1/a", "db/db", 5432), "allow"),
        (probe("blue2/a", "db/db", 5432), "allow"),
        (probe("red/a", "db/db", 5432), "deny"),
    ])


def test_cnp_namespace_labels_narrow_the_policy_namespace():
    # docs/policy-engine.md "Selectors": io.cilium.k8s.namespace.labels.* keys
    # work in a CNP too, where they can only narrow the policy's own namespace.
    # Upstream differs: kubernetes.rst "Namespaces" says CNP ignores them (only
    # CCNP honours them). With "ignored", ns3/tie below would be allowed.
    endpoints = [
        ep("ns1/rebel-base", "10.1.1.1", {"name": "rebel-base"}, host="node1"),
        ep("ns1/xwing", "10.1.1.2", {"name": "xwing"}, host="node1"),
        ep("ns2/xwing", "10.1.2.1", {"name": "xwing"}, host="node2"),
        ep("ns3/base", "10.1.2.2", {"name": "rebel-base"}, host="node2"),
        ep("ns3/tie", "10.1.2.3", {"name": "tie"}, host="node2"),
    ]
    namespaces = {"ns1": {"labels": {"faction": "alliance"}}, "ns2": {"labels": {"faction": "alliance"}},
                  "ns3": {"labels": {"faction": "empire"}}}
    policies = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: alliance-only
  namespace: ns1
spec:
  endpointSelector:
    matchLabels:
      name: rebel-base
  ingress:
    - fromEndpoints:
        - matchLabels:
            io.cilium.k8s.namespace.labels.faction: alliance
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: alliance-only
  namespace: ns3
spec:
  endpointSelector:
    matchLabels:
      name: rebel-base
  ingress:
    - fromEndpoints:
        - matchLabels:
            io.cilium.k8s.namespace.labels.faction: alliance
"""
    check(lab(endpoints, policies, namespaces), [
        (probe("ns1/xwing", "ns1/rebel-base", 80), "allow"),
        (probe("ns2/xwing", "ns1/rebel-base", 80), "deny"),   # CNP peers stay in the policy's namespace
        (probe("ns3/tie", "ns3/base", 80), "deny"),           # ns3 is not faction=alliance
        (probe("ns2/xwing", "ns3/base", 80), "deny"),
    ])


# ========================================================= enableDefaultDeny
# intro.rst "Endpoint default policy": rules with EnableDefaultDeny disabled
# are ignored when determining the default mode; the warning: it does not
# apply to layer-7 policy (cilium#38676).

def dns_endpoints():
    return [
        ep("default/app", "10.1.1.1", {"app": "web"}, host="node1"),
        ep("default/db", "10.1.1.2", {"app": "db"}, host="node1"),
        ep("kube-system/coredns", "10.1.2.1", {"k8s-app": "kube-dns"}, host="node2"),
    ]


INTERCEPT_DNS = """
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: intercept-all-dns
spec:
  endpointSelector:
    matchExpressions:
      - key: io.kubernetes.pod.namespace
        operator: NotIn
        values:
          - kube-system
      - key: k8s-app
        operator: NotIn
        values:
          - kube-dns
  enableDefaultDeny:
    egress: false
    ingress: false
  egress:
    - toEndpoints:
        - matchLabels:
            io.kubernetes.pod.namespace: kube-system
            k8s-app: kube-dns
      toPorts:
        - ports:
            - port: "53"
              protocol: TCP
            - port: "53"
              protocol: UDP
"""


def test_enable_default_deny_false_blocks_nothing():
    # intro.rst's example, without its DNS L7 rules (palisade enforces HTTP only).
    check(lab(dns_endpoints(), INTERCEPT_DNS), [
        (probe("default/app", "kube-system/coredns", 53, "UDP"), "allow"),
        (probe("default/app", "default/db", 5432), "allow"),
        (probe("default/app", WORLD, 443), "allow"),
        (probe(WORLD, "default/app", 80), "allow"),
    ])


def test_enable_default_deny_false_still_adds_its_allows():
    # With another rule enforcing egress on app, the non-enforcing policy's
    # allow to kube-dns still applies (rules are a union).
    restrict = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: app-to-db
spec:
  endpointSelector:
    matchLabels:
      app: web
  egress:
    - toEndpoints:
        - matchLabels:
            app: db
"""
    check(lab(dns_endpoints(), [INTERCEPT_DNS, restrict]), [
        (probe("default/app", "kube-system/coredns", 53, "UDP"), "allow"),
        (probe("default/app", "kube-system/coredns", 80), "deny"),
        (probe("default/app", "default/db", 5432), "allow"),
        (probe("default/app", WORLD, 443), "deny"),
        (probe("default/db", WORLD, 443), "allow"),  # db's egress is not enforced
    ])


def test_enable_default_deny_false_does_not_apply_to_l7():
    # intro.rst warning: "Adding a layer-7 rule that does not include a
    # layer-7 allow-all will cause drops, even when default-deny is explicitly
    # disabled." Other ports stay open.
    policy = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: l7-no-default-deny
spec:
  endpointSelector:
    matchLabels:
      app: web
  enableDefaultDeny:
    ingress: false
  ingress:
    - toPorts:
        - ports:
            - port: "80"
              protocol: TCP
          rules:
            http:
              - method: GET
                path: /public
"""
    check(lab(dns_endpoints(), policy), [
        (probe("default/db", "default/app", 80, http=http("GET", "/public")), "l7-allow"),
        (probe("default/db", "default/app", 80, http=http("GET", "/private")), "l7-deny"),
        (probe("default/db", "default/app", 8080), "allow"),
        (probe("default/db", "default/app", 80, "UDP"), "allow"),
    ])


# ==================================================================== L7
# layer7.rst: "If multiple toPorts rules with identical PortProtocol select an
# overlapping list of endpoints, then the layer 7 rules are combined together
# ... A layer 7 request is permitted if at least one of the rules matches";
# "If a layer 4 rule is specified in the policy, and a similar layer 4 rule
# with layer 7 rules is also specified, then the layer 7 portions of the
# latter rule will have no effect."

def l7_endpoints():
    return [
        ep("default/service", "10.1.1.1", {"app": "service"}, host="node1"),
        ep("default/frontend", "10.1.2.1", {"role": "frontend"}, host="node2"),
        ep("default/admin", "10.1.2.2", {"role": "admin"}, host="node2"),
        ep("default/prod", "10.1.1.2", {"env": "prod"}, host="node1"),
        ep("default/dev", "10.1.1.3", {"env": "dev"}, host="node1"),
    ]


def _http_rule(name, peer, method=None, path=None, l7=True):
    rules = ""
    if l7:
        rules = """
          rules:
            http:
              - method: %s
                path: %s""" % (method, path)
    return """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: %s
spec:
  endpointSelector:
    matchLabels:
      app: service
  ingress:
    - fromEndpoints:
        - matchLabels:
            role: %s
      toPorts:
        - ports:
            - port: "80"
              protocol: TCP%s
""" % (name, peer, rules)


def test_l7_rules_of_several_policies_are_a_union():
    docs = [_http_rule("get-public", "frontend", "GET", "/public"),
            _http_rule("post-submit", "frontend", "POST", "/submit")]
    check(lab(l7_endpoints(), docs), [
        (probe("default/frontend", "default/service", 80, http=http("GET", "/public")), "l7-allow"),
        (probe("default/frontend", "default/service", 80, http=http("POST", "/submit")), "l7-allow"),
        (probe("default/frontend", "default/service", 80, http=http("PUT", "/public")), "l7-deny"),
        (probe("default/admin", "default/service", 80, http=http("GET", "/public")), "deny"),
    ])


def test_l4_only_allow_cancels_l7_on_the_same_port_and_peer():
    docs = [_http_rule("get-public", "frontend", "GET", "/public"),
            _http_rule("l4-only", "frontend", l7=False)]
    check(lab(l7_endpoints(), docs), [
        (probe("default/frontend", "default/service", 80, http=http("PUT", "/anything")), "allow"),
        (probe("default/frontend", "default/service", 80, http=http("GET", "/public")), "allow"),
    ])


def test_l4_only_allow_for_another_peer_leaves_l7_in_place():
    docs = [_http_rule("get-public", "frontend", "GET", "/public"),
            _http_rule("admin-l4", "admin", l7=False)]
    check(lab(l7_endpoints(), docs), [
        (probe("default/frontend", "default/service", 80, http=http("PUT", "/anything")), "l7-deny"),
        (probe("default/frontend", "default/service", 80, http=http("GET", "/public")), "l7-allow"),
        (probe("default/admin", "default/service", 80, http=http("PUT", "/anything")), "allow"),
    ])


def test_l3_only_allow_does_not_cancel_l7_on_a_port():
    # layer7.rst "Allow GET /public" (examples/policies/l7/http/simple/l7.yaml):
    # an L3-only rule from env=prod plus a toPorts-only rule (any peer) with
    # GET /public on 80. Port 80 is governed by its L7 rule for every peer --
    # "requests to any other URL, or using another method, will be rejected";
    # env=prod keeps every other port through its L3 rule. (The page says the
    # GET is allowed "from the endpoints with the labels env=prod"; the YAML's
    # second rule has no fromEndpoints, so any peer may GET /public.)
    policy = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: rule1
spec:
  description: Allow HTTP GET /public from env=prod to app=service
  endpointSelector:
    matchLabels:
      app: service
  ingress:
    - fromEndpoints:
        - matchLabels:
            env: prod
    - toPorts:
        - ports:
            - port: "80"
              protocol: TCP
          rules:
            http:
              - method: GET
                path: /public
"""
    check(lab(l7_endpoints(), policy), [
        (probe("default/prod", "default/service", 80, http=http("GET", "/public")), "l7-allow"),
        (probe("default/prod", "default/service", 80, http=http("PUT", "/public")), "l7-deny"),
        (probe("default/prod", "default/service", 8080), "allow"),
        (probe("default/dev", "default/service", 80, http=http("GET", "/public")), "l7-allow"),
        (probe("default/dev", "default/service", 80, http=http("GET", "/private")), "l7-deny"),
        (probe("default/dev", "default/service", 8080), "deny"),
    ])


def test_http_method_path_and_headers():
    # layer7.rst "All GET /path1 and PUT /path2 when header set"
    # (examples/policies/l7/http/http.yaml; the example spells the key
    # ``HTTP``, which only Go's case-insensitive JSON decoding accepts -- the
    # CRD schema field is ``http``).
    policy = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: l7-rule
spec:
  endpointSelector:
    matchLabels:
      app: service
  ingress:
    - toPorts:
        - ports:
            - port: '80'
              protocol: TCP
          rules:
            http:
              - method: GET
                path: "/path1$"
              - method: PUT
                path: "/path2$"
                headers:
                  - 'X-My-Header: true'
"""
    check(lab(l7_endpoints(), policy), [
        (probe("default/frontend", "default/service", 80, http=http("GET", "/path1")), "l7-allow"),
        (probe("default/frontend", "default/service", 80, http=http("GET", "/path1/sub")), "l7-deny"),
        (probe("default/frontend", "default/service", 80, http=http("POST", "/path1")), "l7-deny"),
        (probe("default/frontend", "default/service", 80,
               http=http("PUT", "/path2", {"X-My-Header": "true"})), "l7-allow"),
        (probe("default/frontend", "default/service", 80, http=http("PUT", "/path2")), "l7-deny"),
        (probe("default/frontend", "default/service", 80,
               http=http("PUT", "/path2", {"X-My-Header": "false"})), "l7-deny"),
        (probe("default/frontend", "default/service", 80,
               http=http("GET", "/path2", {"X-My-Header": "true"})), "l7-deny"),
        (probe("default/frontend", "default/service", 81), "deny"),
    ])


def test_http_regexes_host_and_header_matches():
    # layer7.rst "HTTP": Path, Method and Host are extended POSIX regexes
    # (matched against the whole value); Headers must be present;
    # HeaderMatches with an empty mismatch action require the value.
    policy = r"""
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: l7-regex
spec:
  endpointSelector:
    matchLabels:
      app: service
  ingress:
    - fromEndpoints:
        - matchLabels:
            role: frontend
      toPorts:
        - ports:
            - port: "80"
              protocol: TCP
          rules:
            http:
              - method: "GET|HEAD"
                path: "/api/v[0-9]+/items/.*"
                host: "api\\.example\\.com"
              - method: DELETE
                path: "/admin/.*"
                headers: [X-Token]
              - method: POST
                path: /deploy
                headerMatches:
                  - name: X-Env
                    value: prod
"""
    api = {"Host": "api.example.com"}
    check(lab(l7_endpoints(), policy), [
        (probe("default/frontend", "default/service", 80, http=http("GET", "/api/v1/items/42", api)), "l7-allow"),
        (probe("default/frontend", "default/service", 80, http=http("HEAD", "/api/v12/items/", api)), "l7-allow"),
        (probe("default/frontend", "default/service", 80, http=http("GET", "/api/vX/items/1", api)), "l7-deny"),
        (probe("default/frontend", "default/service", 80, http=http("PUT", "/api/v1/items/1", api)), "l7-deny"),
        (probe("default/frontend", "default/service", 80,
               http=http("GET", "/api/v1/items/1", {"Host": "www.example.com"})), "l7-deny"),
        (probe("default/frontend", "default/service", 80,
               http=http("GET", "/api/v1/items/1", {"Host": "apixexample.com"})), "l7-deny"),
        (probe("default/frontend", "default/service", 80,
               http=http("DELETE", "/admin/users", {"X-Token": "abc"})), "l7-allow"),
        (probe("default/frontend", "default/service", 80, http=http("DELETE", "/admin/users")), "l7-deny"),
        (probe("default/frontend", "default/service", 80,
               http=http("POST", "/deploy", {"X-Env": "prod"})), "l7-allow"),
        (probe("default/frontend", "default/service", 80,
               http=http("POST", "/deploy", {"X-Env": "dev"})), "l7-deny"),
        (probe("default/frontend", "default/service", 80, http=http("POST", "/deploy")), "l7-deny"),
    ])


def test_l7_on_egress_and_on_both_sides():
    # layer7.rst: "Layer 7 policy rules are embedded into Layer 4 rules and
    # can be specified for ingress and egress." A request crosses the
    # client's egress proxy and then the server's ingress proxy: both must
    # allow it.
    egress = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: frontend-egress-l7
spec:
  endpointSelector:
    matchLabels:
      role: frontend
  egress:
    - toEndpoints:
        - matchLabels:
            app: service
      toPorts:
        - ports:
            - port: "80"
              protocol: TCP
          rules:
            http:
              - method: GET
                path: /a
              - method: GET
                path: /b
"""
    ingress = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: service-ingress-l7
spec:
  endpointSelector:
    matchLabels:
      app: service
  ingress:
    - toPorts:
        - ports:
            - port: "80"
              protocol: TCP
          rules:
            http:
              - method: GET
                path: /b
              - method: GET
                path: /c
"""
    check(lab(l7_endpoints(), egress), [
        (probe("default/frontend", "default/service", 80, http=http("GET", "/a")), "l7-allow"),
        (probe("default/frontend", "default/service", 80, http=http("GET", "/c")), "l7-deny"),
        (probe("default/frontend", "default/service", 81), "deny"),
        (probe("default/admin", "default/service", 80, http=http("GET", "/c")), "allow"),
    ], policies_for={1: ["default/frontend-egress-l7"]})
    check(lab(l7_endpoints(), [egress, ingress]), [
        (probe("default/frontend", "default/service", 80, http=http("GET", "/b")), "l7-allow"),
        (probe("default/frontend", "default/service", 80, http=http("GET", "/a")), "l7-deny"),
        (probe("default/frontend", "default/service", 80, http=http("GET", "/c")), "l7-deny"),
        (probe("default/admin", "default/service", 80, http=http("GET", "/c")), "l7-allow"),
    ], policies_for={1: ["default/service-ingress-l7"], 2: ["default/frontend-egress-l7"]})
