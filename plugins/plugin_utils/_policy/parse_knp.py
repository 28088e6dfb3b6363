# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""networking.k8s.io/v1 NetworkPolicy to ir.Rule, validated as the
Kubernetes API server does, with Kubernetes' semantics applied:

- subject: podSelector in the policy's namespace.
- peers: ``podSelector`` alone is limited to the policy's namespace;
  ``namespaceSelector`` keys become ``io.cilium.k8s.namespace.labels.<k>``
  (plus Exists on the namespace label, so ``{}`` is every namespace); both
  together are one ANDed selector; ``ipBlock`` is a PeerIPBlock (which, unlike
  Cilium CIDR rules, also matches endpoint addresses).
- a missing or empty ``from``/``to`` is every peer (None), a missing or empty
  ``ports`` every port (None); a port entry without ``port`` is every port of
  its protocol (port 0). ``ingress: [{}]`` therefore allows everything.
- enforcement follows ``policyTypes`` (default Ingress, plus Egress when
  ``egress`` has rules); rules of a direction not in policyTypes are ignored,
  as Kubernetes does.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import ir
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy.parse_common import (
    NAMESPACE_EXISTS,
    canon,
    child,
    excepts,
    index,
    ipv4_prefix,
    is_service_name,
    namespace_is,
    parse_selector,
    q,
    selector,
    type_name,
)

SPEC_FIELDS = ("podSelector", "policyTypes", "ingress", "egress")
POLICY_TYPES = ("Ingress", "Egress")
PROTOCOLS = ("TCP", "UDP", "SCTP")

_DIGITS = re.compile(r"[0-9]+\Z")


def parse_rule(doc, raw, namespace, kind, origin):
    spec = raw.get("spec")
    if spec is None:
        doc.fail("spec", "required")
    doc.mapping("spec", spec, SPEC_FIELDS)
    if spec.get("podSelector") is None:
        doc.fail("spec.podSelector", "required: the pods this policy applies to ({} selects all pods of the namespace)")
    subject = parse_selector(doc, "spec.podSelector", spec["podSelector"], cilium=False)
    subject.append(namespace_is(namespace))

    rules = {}
    for section in ("ingress", "egress"):
        spath = child("spec", section)
        items = doc.list_of(spath, spec.get(section))
        rules[section] = canon(_rule(doc, index(spath, i), item, section, namespace) for i, item in enumerate(items))

    types = []
    tpath = "spec.policyTypes"
    for i, value in enumerate(doc.list_of(tpath, spec.get("policyTypes"))):
        if value not in POLICY_TYPES:
            doc.fail(index(tpath, i), "%s is not a policy type (Ingress or Egress)" % q(value))
        types.append(value)
    if len(types) > 2:
        doc.fail(tpath, "may not list more than two policy types")
    if not types:
        types = ["Ingress"] + (["Egress"] if rules["egress"] else [])
    enforce_ingress = "Ingress" in types
    enforce_egress = "Egress" in types
    return ir.Rule(
        name=doc.name, kind=kind, origin=origin, subject=selector(subject),
        ingress=rules["ingress"] if enforce_ingress else (),
        egress=rules["egress"] if enforce_egress else (),
        ingress_deny=(), egress_deny=(),
        enforce_ingress=enforce_ingress, enforce_egress=enforce_egress,
    )


def _rule(doc, path, raw, section, namespace):
    peer_field = "to" if section == "egress" else "from"
    wrong = "from" if section == "egress" else "to"
    doc.mapping(path, raw, (peer_field, "ports"),
                misplaced={wrong: "%s rules list peers under %s, not %s" % (section, q(peer_field), q(wrong))})
    ppath = child(path, peer_field)
    peers = [_peer(doc, index(ppath, i), item, namespace) for i, item in enumerate(doc.list_of(ppath, raw.get(peer_field)))]
    opath = child(path, "ports")
    ports = [_port(doc, index(opath, i), item) for i, item in enumerate(doc.list_of(opath, raw.get("ports")))]
    return ir.PeerRule(canon(peers) if peers else None, (), canon(ports) if ports else None, None, None)


def _peer(doc, path, raw, namespace):
    doc.mapping(path, raw, ("podSelector", "namespaceSelector", "ipBlock"))
    pods = raw.get("podSelector")
    namespaces = raw.get("namespaceSelector")
    block = raw.get("ipBlock")
    if block is not None:
        if pods is not None or namespaces is not None:
            doc.fail(path, "ipBlock cannot be combined with podSelector or namespaceSelector in one peer")
        bpath = child(path, "ipBlock")
        doc.mapping(bpath, block, ("cidr", "except"))
        cpath = child(bpath, "cidr")
        if block.get("cidr") is None:
            doc.fail(cpath, "required")
        net = ipv4_prefix(doc, cpath, block["cidr"], strict=True)
        return ir.PeerIPBlock(str(net), excepts(doc, child(bpath, "except"), block.get("except"), net, strict_subset=True))
    if pods is None and namespaces is None:
        doc.fail(path, "must specify a peer: podSelector, namespaceSelector or ipBlock")
    reqs = []
    if pods is not None:
        reqs.extend(parse_selector(doc, child(path, "podSelector"), pods, cilium=False))
    if namespaces is None:
        reqs.append(namespace_is(namespace))
    else:
        reqs.extend(parse_selector(doc, child(path, "namespaceSelector"), namespaces, cilium=False,
                                   key_prefix=ir.LABEL_NAMESPACE_LABELS))
        reqs.append(NAMESPACE_EXISTS)
    return ir.PeerSelector(selector(reqs))


def _port(doc, path, raw):
    doc.mapping(path, raw, ("protocol", "port", "endPort"))
    proto = raw.get("protocol")
    if proto is None:
        proto = "TCP"
    elif not isinstance(proto, str) or proto not in PROTOCOLS:
        doc.fail(child(path, "protocol"), "%s is not a valid protocol (one of %s)" % (q(proto), ", ".join(PROTOCOLS)))
    ppath = child(path, "port")
    port = raw.get("port")
    if port is None:
        port = 0  # every port of the protocol
    elif isinstance(port, bool) or not isinstance(port, (int, str)):
        doc.fail(ppath, "must be a port number or name, got %s" % type_name(port))
    elif isinstance(port, int):
        if not 1 <= port <= 65535:
            doc.fail(ppath, "%s is not a valid port (1-65535 or an IANA name)" % q(port))
    elif _DIGITS.match(port):
        doc.fail(ppath, "%s is not a valid port name; write port numbers unquoted in a NetworkPolicy" % q(port))
    elif not is_service_name(port, lower_case=True):
        doc.fail(ppath, "%s is not a valid port (1-65535 or an IANA name: at most 15 lower case letters, digits and '-')"
                 % q(port))
    end = raw.get("endPort")
    if end is not None:
        epath = child(path, "endPort")
        doc.integer(epath, end, 1, 65535, "endPort")
        if port == 0:
            doc.fail(epath, "endPort needs port to be set")
        if not isinstance(port, int):
            doc.fail(epath, "endPort needs a numeric port, not the named port %s" % q(port))
        if end < port:
            doc.fail(epath, "endPort %d is less than port %d" % (end, port))
        if end == port:
            end = None
    return ir.PortSpec(proto, port, end)
