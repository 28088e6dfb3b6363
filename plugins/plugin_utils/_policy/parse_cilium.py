# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cilium.io/v2 CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy rules
(``spec`` and each of ``specs``) to ir.Rule, with Cilium's semantics applied:

- namespace scoping: a CNP subject gets ``k8s:io.kubernetes.pod.namespace``
  = the policy's namespace; peer and ``*Requires`` selectors get it too
  unless they name that key themselves or use a ``reserved:`` key. A CCNP
  adds nothing to its subject and ``Exists`` on that key to its peers.
- default deny: a direction is enforced when the rule has entries in it
  (allow or deny) and ``enableDefaultDeny`` does not say false.
- empty forms: a rule with no L3 field and no ports (``ingress: [{}]``)
  allows nothing (peers ``()``); a rule with ports or ICMP but no L3 field is
  an L3 wildcard (peers ``None``); an empty L3 list (``fromEndpoints: []``)
  selects nothing.
- one PeerRule per ``toPorts`` entry (each has its own L7 rules).
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
    header_line,
    header_name,
    http_regex,
    index,
    ipv4_prefix,
    is_service_name,
    names_key,
    namespace_is,
    parse_selector,
    q,
    selector,
    type_name,
    uses_reserved,
)

# Cilium rejects a rule that mixes L3 peer kinds ("combining FromEndpoints and
# FromCIDR is not supported yet", in every release up to the newest). The IR
# could express the union; flip this to accept such rules as ORed peers.
ALLOW_MIXED_L3 = False

MAX_PORTS = 40  # per toPorts entry (Cilium's PortRule limit)
MAX_ICMP_FIELDS = 40

ENTITIES = (
    "all", "world", "world-ipv4", "world-ipv6", "cluster", "host", "init", "ingress",
    "unmanaged", "remote-node", "health", "none", "kube-apiserver",
)
PROTOCOLS = ("TCP", "UDP", "SCTP", "ANY")
MISMATCH_ACTIONS = ("", "LOG", "ADD", "DELETE", "REPLACE")

# ICMP type names Cilium accepts (CamelCase, per family) and their numbers.
ICMPV4_TYPES = {
    "EchoReply": 0, "DestinationUnreachable": 3, "Redirect": 5, "Echo": 8, "EchoRequest": 8,
    "RouterAdvertisement": 9, "RouterSelection": 10, "TimeExceeded": 11, "ParameterProblem": 12,
    "Timestamp": 13, "TimestampReply": 14, "Photuris": 40, "ExtendedEchoRequest": 42, "ExtendedEchoReply": 43,
}
ICMPV6_TYPE_NAMES = (
    "PacketTooBig", "MulticastListenerQuery", "MulticastListenerReport", "MulticastListenerDone",
    "RouterSolicitation", "NeighborSolicitation", "NeighborAdvertisement", "RedirectMessage",
    "RouterRenumbering", "ICMPNodeInformationQuery", "ICMPNodeInformationResponse",
    "InverseNeighborDiscoverySolicitation", "InverseNeighborDiscoveryAdvertisement",
    "HomeAgentAddressDiscoveryRequest", "HomeAgentAddressDiscoveryReply", "MobilePrefixSolicitation",
    "MobilePrefixAdvertisement", "DuplicateAddressRequestCodeSuffix", "DuplicateAddressConfirmationCodeSuffix",
)

SPEC_FIELDS = ("endpointSelector", "ingress", "ingressDeny", "egress", "egressDeny",
               "enableDefaultDeny", "labels", "description")
SPEC_UNSUPPORTED = {
    "nodeSelector": "host policies",
    "log": "policy verdict logging",
}
SECTIONS = ("ingress", "ingressDeny", "egress", "egressDeny")

_INGRESS_UNSUPPORTED = {
    "fromGroups": "cloud provider groups",
    "fromNodes": "node selectors; use fromEntities host/remote-node",
}
_EGRESS_UNSUPPORTED = {
    "toFQDNs": "DNS-based egress needs the DNS proxy",
    "toServices": "Kubernetes services",
    "toGroups": "cloud provider groups",
    "toNodes": "node selectors; use toEntities host/remote-node",
}
_AUTH = {"authentication": "mutual authentication"}
_NOT_IN_DENY = "%s is not allowed in %s rules"

PORT_RULE_UNSUPPORTED = {
    "terminatingTLS": "TLS interception",
    "originatingTLS": "TLS origination",
    "serverNames": "SNI matching",
    "listener": "Envoy listeners",
}
L7_UNSUPPORTED = {
    "dns": "DNS proxy rules",
    "kafka": "Kafka rules",
    "l7proto": "generic L7 parsers",
    "l7": "generic L7 parsers",
}
CIDR_RULE_UNSUPPORTED = {
    "cidrGroupRef": "CiliumCIDRGroups",
    "cidrGroupSelector": "CiliumCIDRGroups",
}

_DIGITS = re.compile(r"[0-9]+\Z")


def parse_rules(doc, raw, namespace, kind, origin):
    """ir.Rules of one CNP/CCNP document, as [(position, Rule)] where
    position is -1 for ``spec`` and i for ``specs[i]``."""
    spec = raw.get("spec")
    specs = raw.get("specs")
    out = []
    if spec is not None:
        out.append((-1, _rule(doc, "spec", spec, namespace, kind, origin)))
    if specs is not None:
        for i, item in enumerate(doc.list_of("specs", specs)):
            out.append((i, _rule(doc, index("specs", i), item, namespace, kind, "%s.specs[%d]" % (origin, i))))
    if not out:
        doc.fail("spec", "required: a %s needs spec or a non-empty specs list" % kind)
    return out


def _rule(doc, path, raw, namespace, kind, origin):
    doc.mapping(path, raw, SPEC_FIELDS, SPEC_UNSUPPORTED)
    spath = child(path, "endpointSelector")
    if raw.get("endpointSelector") is None:
        doc.fail(spath, "required: the endpoints this rule applies to ({} selects all)")
    subject = parse_selector(doc, spath, raw["endpointSelector"], cilium=True)
    # Cilium leaves selectors of rules for initializing endpoints (which have
    # no labels yet, not even a namespace) unscoped.
    init_subject = names_key(subject, "init", (ir.SOURCE_RESERVED,))
    if namespace is not None and not init_subject:
        for req in subject:
            if (req.key == ir.LABEL_NAMESPACE and req.source in (ir.SOURCE_K8S, ir.SOURCE_ANY)
                    and req.op == "In" and namespace not in req.values):
                doc.fail(spath, "a CiliumNetworkPolicy applies only in its own namespace %s; remove the match on %s"
                         % (q(namespace), q(ir.LABEL_NAMESPACE)))
        subject.append(namespace_is(namespace))

    def scope(reqs):
        if init_subject or uses_reserved(reqs) or names_key(reqs, ir.LABEL_NAMESPACE):
            return reqs
        return reqs + [namespace_is(namespace) if namespace is not None else NAMESPACE_EXISTS]

    sections = {}
    for section in SECTIONS:
        sec_path = child(path, section)
        items = doc.list_of(sec_path, raw.get(section))
        rules = []
        for i, item in enumerate(items):
            rules.extend(_peer_rule(doc, index(sec_path, i), item, section, scope))
        sections[section] = (bool(items), canon(rules))
    if not any(given for given, dummy in sections.values()):
        doc.fail(path, "a rule needs at least one of ingress, ingressDeny, egress, egressDeny")

    default_deny = raw.get("enableDefaultDeny")
    dpath = child(path, "enableDefaultDeny")
    flags = {}
    if default_deny is not None:
        doc.mapping(dpath, default_deny, ("ingress", "egress"))
        for direction in ("ingress", "egress"):
            if default_deny.get(direction) is not None:
                flags[direction] = doc.boolean(child(dpath, direction), default_deny[direction])
    _labels(doc, child(path, "labels"), raw.get("labels"))
    if raw.get("description") is not None:
        doc.string(child(path, "description"), raw["description"])

    enforce_ingress = (sections["ingress"][0] or sections["ingressDeny"][0]) and flags.get("ingress") is not False
    enforce_egress = (sections["egress"][0] or sections["egressDeny"][0]) and flags.get("egress") is not False
    return ir.Rule(
        name=doc.name, kind=kind, origin=origin, subject=selector(subject),
        ingress=sections["ingress"][1], egress=sections["egress"][1],
        ingress_deny=sections["ingressDeny"][1], egress_deny=sections["egressDeny"][1],
        enforce_ingress=bool(enforce_ingress), enforce_egress=bool(enforce_egress),
    )


def _labels(doc, path, raw):
    """Rule ``labels`` (a Cilium LabelArray): checked, not used."""
    for i, item in enumerate(doc.list_of(path, raw)):
        ipath = index(path, i)
        doc.mapping(ipath, item, ("key", "value", "source"))
        if item.get("key") is None:
            doc.fail(child(ipath, "key"), "required")
        for field in ("key", "value", "source"):
            if item.get(field) is not None:
                doc.string(child(ipath, field), item[field])


def _peer_rule(doc, path, raw, section, scope):
    """The PeerRules of one ingress/ingressDeny/egress/egressDeny element."""
    egress = section.startswith("egress")
    deny = section.endswith("Deny")
    pfx = "to" if egress else "from"
    l3_fields = (pfx + "Endpoints", pfx + "CIDR", pfx + "CIDRSet", pfx + "Entities")
    allowed = l3_fields + (pfx + "Requires", "toPorts", "icmps")
    unsupported = dict(_EGRESS_UNSUPPORTED if egress else _INGRESS_UNSUPPORTED)
    misplaced = {}
    if deny:
        misplaced["authentication"] = _NOT_IN_DENY % (q("authentication"), section)
        if egress:
            misplaced["toFQDNs"] = _NOT_IN_DENY % (q("toFQDNs"), section)
            del unsupported["toFQDNs"]
    else:
        unsupported.update(_AUTH)
    # The other direction's peer fields are a common slip: say so.
    other = "from" if egress else "to"
    for field in ("Endpoints", "Requires", "CIDR", "CIDRSet", "Entities"):
        misplaced[other + field] = "%s belongs in %s rules; %s rules use %s" % (
            q(other + field), "ingress" if egress else "egress", section, q(pfx + field))
    doc.mapping(path, raw, allowed, unsupported, misplaced)

    peers = []
    l3_given = False
    non_empty = []
    for field in l3_fields:
        value = raw.get(field)
        if value is None:
            continue
        l3_given = True
        fpath = child(path, field)
        items = doc.list_of(fpath, value)
        if items:
            non_empty.append(field)
        for j, item in enumerate(items):
            ipath = index(fpath, j)
            if field.endswith("Endpoints"):
                peers.append(ir.PeerSelector(selector(scope(parse_selector(doc, ipath, item, cilium=True)))))
            elif field.endswith("CIDRSet"):
                peers.append(_cidr_rule(doc, ipath, item))
            elif field.endswith("CIDR"):
                peers.append(ir.PeerCIDR(str(ipv4_prefix(doc, ipath, item, bare_ip=True)), ()))
            else:
                peers.append(_entity(doc, ipath, item))
    if len(non_empty) > 1 and not ALLOW_MIXED_L3:
        doc.fail(path, "combining %s and %s in one rule is not supported by Cilium; write a separate rule for each"
                 % (non_empty[0], non_empty[1]))

    requires = []
    rpath = child(path, pfx + "Requires")
    for j, item in enumerate(doc.list_of(rpath, raw.get(pfx + "Requires"))):
        requires.append(selector(scope(parse_selector(doc, index(rpath, j), item, cilium=True))))
    requires = canon(requires)

    tpath = child(path, "toPorts")
    to_ports = doc.list_of(tpath, raw.get("toPorts"))
    cpath = child(path, "icmps")
    icmps = doc.list_of(cpath, raw.get("icmps"))
    if to_ports and icmps:
        doc.fail(path, "icmps and toPorts cannot be in the same rule (Cilium); write a separate rule for each")

    if l3_given:
        peers = canon(peers)
    elif to_ports or icmps:
        peers = None  # L4-only rule: every peer (Cilium's L3 wildcard)
    else:
        peers = ()  # an empty rule (or requirements only) allows nothing

    if to_ports:
        out = []
        for j, item in enumerate(to_ports):
            ports, http = _port_rule(doc, index(tpath, j), item, section)
            out.append(ir.PeerRule(peers, requires, ports, None, http))
        return out
    if icmps:
        return [ir.PeerRule(peers, requires, None, _icmps(doc, cpath, icmps), None)]
    return [ir.PeerRule(peers, requires, None, None, None)]


def _entity(doc, path, value):
    if not isinstance(value, str) or value not in ENTITIES:
        doc.fail(path, "%s is not an entity (one of %s)" % (q(value), ", ".join(ENTITIES)))
    return ir.PeerEntity(value)


def _cidr_rule(doc, path, raw):
    doc.mapping(path, raw, ("cidr", "except"), CIDR_RULE_UNSUPPORTED)
    cpath = child(path, "cidr")
    if raw.get("cidr") is None:
        doc.fail(cpath, "required")
    net = ipv4_prefix(doc, cpath, raw["cidr"])
    return ir.PeerCIDR(str(net), excepts(doc, child(path, "except"), raw.get("except"), net, strict_subset=False))


# --- ports, ICMP, L7 ----------------------------------------------------

def _port_rule(doc, path, raw, section):
    """(ports, http) of one toPorts element."""
    if section.endswith("Deny"):
        misplaced = dict((k, "%s is not allowed in %s rules (L7 and TLS need an allow rule)" % (q(k), section))
                         for k in ("rules",) + tuple(PORT_RULE_UNSUPPORTED))
        doc.mapping(path, raw, ("ports",), misplaced=misplaced)
    else:
        doc.mapping(path, raw, ("ports", "rules"), PORT_RULE_UNSUPPORTED)
    ppath = child(path, "ports")
    items = doc.list_of(ppath, raw.get("ports"))
    if not items:
        doc.fail(ppath, "required: list at least one port (a toPorts entry without ports allows nothing)")
    if len(items) > MAX_PORTS:
        doc.fail(ppath, "too many ports (%d); Cilium allows at most %d per toPorts entry" % (len(items), MAX_PORTS))
    specs = [_port(doc, index(ppath, j), item) for j, item in enumerate(items)]
    http = None
    if raw.get("rules") is not None:
        http = _l7(doc, child(path, "rules"), raw["rules"])
    if http is not None:
        for j, spec in enumerate(specs):
            jpath = index(ppath, j)
            if spec.protocol != "TCP":
                doc.fail(child(jpath, "protocol"), "HTTP rules need protocol TCP, got %s%s"
                         % (spec.protocol, " (no protocol means ANY)" if items[j].get("protocol") in (None, "") else ""))
            if spec.port == 0:
                doc.fail(child(jpath, "port"), "HTTP rules cannot apply to port 0 (all ports)")
            if spec.end_port is not None:
                doc.fail(child(jpath, "endPort"), "HTTP rules cannot apply to a port range")
    return canon(specs), http


def _port(doc, path, raw):
    doc.mapping(path, raw, ("port", "endPort", "protocol"))
    proto = raw.get("protocol")
    prpath = child(path, "protocol")
    if proto is None or proto == "":
        proto = "ANY"
    elif not isinstance(proto, str) or proto not in PROTOCOLS:
        if isinstance(proto, str) and proto.upper() in ("ICMP", "ICMPV6"):
            doc.fail(prpath, "%s is not a toPorts protocol here; write ICMP rules under icmps" % q(proto))
        doc.fail(prpath, "%s is not a valid protocol (one of %s)" % (q(proto), ", ".join(PROTOCOLS)))
    pt_path = child(path, "port")
    if raw.get("port") is None:
        doc.fail(pt_path, "required (\"0\" means every port)")
    port = cilium_port(doc, pt_path, raw["port"])
    end = raw.get("endPort")
    if end is not None:
        epath = child(path, "endPort")
        doc.integer(epath, end, 0, 65535, "endPort")
        if end == 0:
            end = None
        elif not isinstance(port, int):
            doc.fail(epath, "endPort needs a numeric port, not the named port %s" % q(port))
        elif port == 0:
            doc.fail(epath, "endPort needs a port from 1 to 65535 (port 0 means every port)")
        elif end < port:
            doc.fail(epath, "endPort %d is less than port %d" % (end, port))
        elif end == port:
            end = None
    return ir.PortSpec(proto, port, end)


def cilium_port(doc, path, value):
    """A Cilium port: 0-65535 (0 = every port) or an IANA service name
    (lower-cased, as Cilium compares them)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value <= 65535:
            return value
    elif isinstance(value, str):
        if _DIGITS.match(value):
            if (len(value) == 1 or value[0] != "0") and int(value) <= 65535:
                return int(value)
        elif is_service_name(value):
            return value.lower()
    doc.fail(path, "%s is not a valid port (1-65535, 0 for every port, or an IANA service name)" % q(value))
    return None


def _icmps(doc, path, items):
    specs = []
    for i, item in enumerate(items):
        ipath = index(path, i)
        doc.mapping(ipath, item, ("fields",))
        fpath = child(ipath, "fields")
        fields = doc.list_of(fpath, item.get("fields"))
        if not fields:
            doc.fail(fpath, "required: list at least one ICMP type")
        if len(fields) > MAX_ICMP_FIELDS:
            doc.fail(fpath, "too many types (%d); Cilium allows at most %d" % (len(fields), MAX_ICMP_FIELDS))
        for j, field in enumerate(fields):
            jpath = index(fpath, j)
            doc.mapping(jpath, field, ("family", "type"))
            family = field.get("family")
            if family == "IPv6":
                doc.fail(child(jpath, "family"), "ICMPv6 is not supported by palisade.ebpf (IPv4 only)")
            if family not in (None, "", "IPv4"):
                doc.fail(child(jpath, "family"), "%s is not a valid family (IPv4 or IPv6)" % q(family))
            specs.append(ir.ICMPSpec("IPv4", _icmp_type(doc, child(jpath, "type"), field.get("type"))))
    return canon(specs)


def _icmp_type(doc, path, value):
    if value is None:
        doc.fail(path, "required")
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 255:
        return value
    if isinstance(value, str):
        if _DIGITS.match(value) and int(value) <= 255 and (len(value) == 1 or value[0] != "0"):
            return int(value)
        if value in ICMPV4_TYPES:
            return ICMPV4_TYPES[value]
        if value in ICMPV6_TYPE_NAMES:
            doc.fail(path, "%s is an ICMPv6 type; ICMPv6 is not supported by palisade.ebpf (IPv4 only)" % q(value))
    doc.fail(path, "%s is not a valid ICMP type (0-255 or one of %s)" % (q(value), ", ".join(sorted(ICMPV4_TYPES))))
    return None


def _l7(doc, path, raw):
    """HTTP rules of a toPorts element: None (no L7) or a canonical tuple.
    ``http: []`` is L7 with no restriction (proxied, everything allowed),
    like ``http: [{}]``: Cilium gives the proxy no rules for it."""
    doc.mapping(path, raw, ("http",), L7_UNSUPPORTED)
    if raw.get("http") is None:
        return None
    hpath = child(path, "http")
    rules = [_http_rule(doc, index(hpath, i), item) for i, item in enumerate(doc.list_of(hpath, raw["http"]))]
    return canon(rules or [ir.HTTPRule(None, None, None, (), ())])


def _http_rule(doc, path, raw):
    doc.mapping(path, raw, ("method", "path", "host", "headers", "headerMatches"))
    method = http_regex(doc, child(path, "method"), raw.get("method"))
    url_path = http_regex(doc, child(path, "path"), raw.get("path"))
    host = http_regex(doc, child(path, "host"), raw.get("host"))
    hpath = child(path, "headers")
    headers = canon(header_line(doc, index(hpath, i), h) for i, h in enumerate(doc.list_of(hpath, raw.get("headers"))))
    mpath = child(path, "headerMatches")
    matches = canon(_header_match(doc, index(mpath, i), m) for i, m in enumerate(doc.list_of(mpath, raw.get("headerMatches"))))
    return ir.HTTPRule(method, url_path, host, headers, matches)


def _header_match(doc, path, raw):
    doc.mapping(path, raw, ("name", "value", "mismatch"), {"secret": "values from Kubernetes secrets"})
    npath = child(path, "name")
    if raw.get("name") is None:
        doc.fail(npath, "required")
    name = header_name(doc, npath, raw["name"])
    value = raw.get("value")
    if value is not None:
        doc.string(child(path, "value"), value)
        if any(ord(ch) < 32 and ch != "\t" or ord(ch) == 127 for ch in value):
            doc.fail(child(path, "value"), "header values must not contain control characters")
    mismatch = raw.get("mismatch")
    if mismatch is None:
        mismatch = ""
    if not isinstance(mismatch, str) or mismatch not in MISMATCH_ACTIONS:
        doc.fail(child(path, "mismatch"), "%s is not a valid mismatch action (LOG, ADD, DELETE, REPLACE, or empty to deny)"
                 % (q(mismatch) if isinstance(mismatch, str) else type_name(mismatch)))
    return ir.HeaderMatch(name, value or None, mismatch)
