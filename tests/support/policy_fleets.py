# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small generated fleets for the policy engine's property tests: three
hosts, endpoints from specs, and the probes every property is checked on.
Shared by the property tests and the subprocess they start to compare
results across interpreter hash seeds."""

from __future__ import annotations

from tests.support import policy_harness as harness
from tests.support.policy_harness import Lab, probe

HOSTS = ("node1", "node2", "node3")
NODE_IPS = {"node1": "172.16.0.11", "node2": "172.16.0.12", "node3": "172.16.0.13"}
WORLD = "203.0.113.9"
PORTS = (80, 443, 8080)
PROBE_PROTOCOLS = ("TCP", "UDP")


def endpoints_of(specs):
    result = []
    for i, s in enumerate(specs):
        result.append(harness.ep("%s/%s" % (s["namespace"], s["name"]), "10.9.%d.%d" % (i // 200, i % 200 + 1),
                                 s["labels"], host=s["host"], ports=s["ports"]))
    return result


def make_lab(specs, ns_labels, documents):
    return Lab(endpoints_of(specs), documents, namespaces=ns_labels, nodes=NODE_IPS)


def probes_for(specs, with_http=True):
    keys = ["%s/%s" % (s["namespace"], s["name"]) for s in specs]
    probes = []
    for src in keys:
        for dst in keys:
            if src == dst:
                continue
            for port in PORTS:
                for proto in PROBE_PROTOCOLS:
                    probes.append(probe(src, dst, port, proto))
            if with_http:
                probes.append(probe(src, dst, 80, http=harness.http("GET", "/public")))
                probes.append(probe(src, dst, 80, http=harness.http("POST", "/admin")))
    for key in keys:
        probes.append(probe(WORLD, key, 80))
        probes.append(probe(key, WORLD, 443))
        probes.append(probe(NODE_IPS["node2"], key, 8080))
    return probes


def identities(lab):
    """``namespace/name -> identity number`` as every host sees it."""
    result = {}
    for host in HOSTS:
        for key, number in harness.endpoint_identities(lab, host).items():
            assert result.setdefault(key, number) == number, "hosts disagree on the identity of %s" % key
    return result
