# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The policy intermediate representation: what the parser produces and the
engine consumes. Every policy kind (CNP, CCNP, KNP) is translated into these
few immutable shapes, with each kind's own semantics already applied
(namespace scoping, default-deny activation, KNP peers and ports), so the
engine never needs to know which kind a rule came from.

All classes are immutable and hashable: selectors and peers are memoization
keys (the selector cache), rules are compared by content between runs (the
persistent cache).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections import namedtuple

# --- labels -------------------------------------------------------------
#
# A label is (source, key, value). Endpoint labels from the inventory have
# source "k8s"; reserved identities carry ("reserved", name, ""); CIDR
# identities carry ("cidr", "10.0.0.0/8", "") for every prefix that contains
# them, plus ("reserved", "world", ""). A label set is a frozenset of labels.
SOURCE_ANY = "any"
SOURCE_K8S = "k8s"
SOURCE_RESERVED = "reserved"
SOURCE_CIDR = "cidr"

# Labels every endpoint identity carries besides its own (Cilium's names).
LABEL_NAMESPACE = "io.kubernetes.pod.namespace"
LABEL_NAMESPACE_LABELS = "io.cilium.k8s.namespace.labels."  # + namespace label key
LABEL_CLUSTER = "io.cilium.k8s.policy.cluster"
CLUSTER_NAME = "default"


# --- selectors ----------------------------------------------------------
#
# One requirement of a label selector. ``source`` is the label source the
# key was written with ("any" when none was given: it matches every source).
# ``op`` is one of In, NotIn, Exists, DoesNotExist; ``values`` a sorted
# tuple (matchLabels k: v becomes In (v,)).
Requirement = namedtuple("Requirement", "source key op values")

# A selector is a sorted tuple of requirements, ANDed; () selects every
# identity that has labels (Cilium's {} = all endpoints, not world).
# ``Selector.key`` (see selector_key) is its canonical memoization string.
Selector = namedtuple("Selector", "requirements")


def selector_key(selector):
    """Canonical text of a selector: equal selectors give equal keys."""
    return "&".join(
        "%s:%s %s %s" % (r.source, r.key, r.op, ",".join(r.values)) for r in selector.requirements
    ) or "{}"


# --- peers --------------------------------------------------------------
#
# What a rule's from*/to* section selects. ``peers`` of a PeerRule is either
# None (wildcard: every peer, world included: Cilium's L3 wildcard, KNP's
# missing from/to) or a tuple of these, ORed:
#   PeerSelector(selector)          endpoints/identities matching the selector
#   PeerEntity(name)                an entity: all, world, cluster, host, ...
#   PeerCIDR(prefix, excepts)       CNP fromCIDR/fromCIDRSet/toCIDR...: matches
#                                   only identities without labels of their
#                                   own (world, CIDR identities), never endpoints
#   PeerIPBlock(prefix, excepts)    KNP ipBlock: also matches endpoint
#                                   addresses inside prefix and outside excepts
# ``excepts`` is a sorted tuple of prefixes.
PeerSelector = namedtuple("PeerSelector", "selector")
PeerEntity = namedtuple("PeerEntity", "name")
PeerCIDR = namedtuple("PeerCIDR", "prefix excepts")
PeerIPBlock = namedtuple("PeerIPBlock", "prefix excepts")

# --- ports and L7 -------------------------------------------------------
#
# PortSpec: ``protocol`` TCP|UDP|SCTP|ANY (ANY = TCP+UDP+SCTP); ``port`` an
# int (0 = every port) or a port name (str, resolved by the engine against
# the destination's named ports); ``end_port`` an int >= port, or None.
PortSpec = namedtuple("PortSpec", "protocol port end_port")

# ICMP: ``family`` "IPv4"; ``icmp_type`` an int 0-255.
ICMPSpec = namedtuple("ICMPSpec", "family icmp_type")

# One HTTP rule of toPorts[].rules.http. method/path/host are POSIX extended
# regexes (None = any), validated by the parser. ``headers`` is a sorted
# tuple of required header lines "Name: value" or "Name" (presence);
# ``header_matches`` a sorted tuple of HeaderMatch.
HTTPRule = namedtuple("HTTPRule", "method path host headers header_matches")
HeaderMatch = namedtuple("HeaderMatch", "name value mismatch")

# --- rules --------------------------------------------------------------
#
# PeerRule: one element of ingress/egress/ingressDeny/egressDeny.
#   peers     None (wildcard) or tuple of Peer* (ORed); an empty tuple selects nothing
#   requires  tuple of Selector, ANDed into every PeerSelector of rules that
#             select the same subject (fromRequires/toRequires); usually ()
#   ports     None (all L4) or tuple of PortSpec
#   icmps     None or tuple of ICMPSpec (a PeerRule has ports or icmps, not both)
#   http      None (no L7) or tuple of HTTPRule (allow rules only; never with ranges)
PeerRule = namedtuple("PeerRule", "peers requires ports icmps http")

# Rule: one policy rule after its kind's semantics are applied. A CNP with
# ``specs`` gives one Rule per spec.
#   name        display name used in verdicts: "<namespace>/<name>" for
#               namespaced kinds, "<name>" for clusterwide ones
#   kind        "CiliumNetworkPolicy" | "CiliumClusterwideNetworkPolicy" | "NetworkPolicy"
#   origin      where it was written: "<file>#<document index>[.specs[i]]"
#               or "palisade_policies[<i>]"
#   subject     Selector of the endpoints the rule applies to (namespace
#               scoping already added for namespaced kinds)
#   ingress, egress, ingress_deny, egress_deny: tuples of PeerRule
#   enforce_ingress, enforce_egress: does this rule turn on default deny for
#               its subjects in that direction (CNP: it has rules there and
#               enableDefaultDeny does not say false; KNP: policyTypes)
Rule = namedtuple(
    "Rule",
    "name kind origin subject ingress egress ingress_deny egress_deny enforce_ingress enforce_egress",
)


class PolicyError(ValueError):
    """A policy document that is not valid. ``str()`` is the one-line message:
    '<origin>: <kind> <name>: <field path>: <what is wrong>'."""

    def __init__(self, origin, field, message, kind=None, name=None):
        self.origin = origin
        self.field = field
        self.kind = kind
        self.name = name
        what = " %s %s:" % (kind, name) if kind and name else ""
        super(PolicyError, self).__init__("%s:%s %s: %s" % (origin, what, field, message))
