# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rule repository: rules compiled once, indexed by subject identity.

Compiling a rule turns each of its peer rules into *terms*: one selection
key (or the wildcard) with the L4 entries it allows or denies, in the
numeric form policy entries use. Terms are what the distiller combines; the
selection behind each key comes from the selector cache, so a term never
holds identities itself and stays valid when identities change.

Each rule has a content digest (its origin excluded: moving a document in a
file does not change it), which orders rules deterministically whatever the
document order and keys the persistent cache.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import io
import pickle
from collections import namedtuple
from itertools import compress

from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import ir
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import selectorcache as sc

INGRESS = "ingress"
EGRESS = "egress"
DIRECTIONS = (INGRESS, EGRESS)

PROTOCOL_NUMBERS = {"TCP": 6, "UDP": 17, "SCTP": 132, "ICMP": 1}
PROTOCOL_NAMES = {0: "any", 1: "ICMP", 6: "TCP", 17: "UDP", 132: "SCTP"}
ANY_L4 = (6, 17, 132)  # protocol ANY: TCP, UDP and SCTP (not ICMP), as Cilium expands it
PORT_MIN, PORT_MAX = 0, 65535

# One term of a compiled rule.
#   key       selection key (selectorcache) or WILDCARD
#   scoped    the key is an endpoint selector, so *Requires apply to it
#   l4        tuple of (protocol, lo, hi): numeric ports, ICMP types, or
#             (0, 0, 65535) for "all L4"
#   named     tuple of (port name, protocol number or 0 for ANY): named
#             ports, resolved per subject (ingress) or per peer (egress)
#   deny      a deny term
#   http      tuple of ir.HTTPRule, or None
#   name      the rule's display name
Term = namedtuple("Term", "key scoped l4 named deny http name")

# A compiled rule: ``ingress``/``egress`` are DirectionRules. It keeps no
# reference to the ir.Rule, so that it can be cached between runs.
CompiledRule = namedtuple("CompiledRule", "digest name kind subject_key ingress egress")

# What one rule says about one direction of its subjects.
#   enforce        turns on default deny there
#   terms          tuple of Term
#   requires       selection keys ANDed into scoped allow terms of every rule
#                  selecting the same subject (fromRequires/toRequires)
#   deny_requires  the same for scoped deny terms
DirectionRules = namedtuple("DirectionRules", "enforce terms requires deny_requires")


def rule_digest(rule):
    """Content digest of a rule, its origin left out. The pickler runs in
    fast mode (no memo), so equal content gives equal bytes whatever
    objects the parser happened to share."""
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=4)
    pickler.fast = True
    pickler.dump(rule._replace(origin=""))
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def _l4(peer_rule):
    """Numeric (protocol, lo, hi) and named (name, protocol) ports of a peer rule."""
    numeric, named = [], []
    if peer_rule.ports is None and peer_rule.icmps is None:
        return ((0, PORT_MIN, PORT_MAX),), ()
    for spec in peer_rule.ports or ():
        protocols = ANY_L4 if spec.protocol == "ANY" else (PROTOCOL_NUMBERS[spec.protocol],)
        if isinstance(spec.port, str):
            # endPort is ignored for named ports (Cilium api/l4.go).
            for protocol in (0,) if spec.protocol == "ANY" else protocols:
                named.append((spec.port, protocol))
            continue
        if spec.port == 0:
            lo, hi = PORT_MIN, PORT_MAX
        else:
            lo, hi = spec.port, spec.end_port if spec.end_port else spec.port
        for protocol in protocols:
            numeric.append((protocol, lo, hi))
    for icmp in peer_rule.icmps or ():
        if icmp.family == "IPv4":  # single stack: IPv6 ICMP never matches
            numeric.append((PROTOCOL_NUMBERS["ICMP"], icmp.icmp_type, icmp.icmp_type))
    return tuple(sorted(set(numeric))), tuple(sorted(set(named)))


def _terms(peer_rules, deny, name):
    terms = []
    for peer_rule in peer_rules:
        numeric, named = _l4(peer_rule)
        if not numeric and not named:
            continue
        http = tuple(peer_rule.http) if peer_rule.http and not deny else None
        if peer_rule.peers is None:
            keys = [(sc.WILDCARD, False)]
        else:
            keys = [(sc.peer_key(p), isinstance(p, ir.PeerSelector)) for p in peer_rule.peers]
        for key, scoped in keys:
            terms.append(Term(key, scoped, numeric, named, deny, http, name))
    return terms


def _requires(peer_rules):
    return tuple(sorted({("selector", s) for pr in peer_rules for s in pr.requires or ()}, key=repr))


def compile_rule(rule, digest=None):
    ingress = DirectionRules(
        bool(rule.enforce_ingress),
        tuple(_terms(rule.ingress, False, rule.name) + _terms(rule.ingress_deny, True, rule.name)),
        _requires(rule.ingress), _requires(rule.ingress_deny))
    egress = DirectionRules(
        bool(rule.enforce_egress),
        tuple(_terms(rule.egress, False, rule.name) + _terms(rule.egress_deny, True, rule.name)),
        _requires(rule.egress), _requires(rule.egress_deny))
    return CompiledRule(digest or rule_digest(rule), rule.name, rule.kind, ("selector", rule.subject), ingress, egress)


def direction_matters(direction_rules):
    return bool(direction_rules.enforce or direction_rules.terms or direction_rules.requires
                or direction_rules.deny_requires)


class Repository:
    """Compiled rules in a deterministic order, and the subjects of each.

    ``compiled`` maps rule digest -> CompiledRule and may be carried over
    from an earlier run, so unchanged rules are not compiled again. Equal
    rules (same content, origin aside) are kept once.
    """

    def __init__(self, rules, compiled=None):
        compiled = compiled if compiled is not None else {}
        fresh = {}
        for rule in rules:
            digest = rule_digest(rule)
            entry = compiled.get(digest)
            if entry is None:
                entry = compile_rule(rule, digest)
            fresh[digest] = entry
        self._compiled = fresh
        self._compiled_blob = None
        # Deterministic order whatever the document order: by name, then content.
        ordered = sorted(fresh.values(), key=lambda c: (c.name, c.digest))
        self.digests = [c.digest for c in ordered]
        self._matters = {
            INGRESS: [direction_matters(c.ingress) for c in ordered],
            EGRESS: [direction_matters(c.egress) for c in ordered],
        }
        # Rules whose ingress uses named ports: their subjects' port maps matter.
        self.named_ingress = {c.digest: any(t.named for t in c.ingress.terms) for c in ordered}
        self.subject_keys = [c.subject_key for c in ordered]
        self.cache = None

    @property
    def compiled(self):
        """{digest: CompiledRule}; from the persistent cache, unpickled on first use."""
        if self._compiled is None:
            self._compiled = pickle.loads(self._compiled_blob)
            self._compiled_blob = None
        return self._compiled

    @property
    def rules(self):
        """The compiled rules, in order."""
        compiled = self.compiled
        return [compiled[d] for d in self.digests]

    def export(self):
        """Plain data for the persistent cache (compiled rules as a nested pickle)."""
        blob = self._compiled_blob if self._compiled is None else pickle.dumps(self._compiled, protocol=4)
        return (self.digests, self._matters, self.named_ingress, [sc.plain(k) for k in self.subject_keys], blob)

    @classmethod
    def restore(cls, data):
        repository = cls.__new__(cls)
        repository.digests, repository._matters, repository.named_ingress, repository.subject_keys, \
            repository._compiled_blob = data
        repository._compiled = None
        repository.cache = None
        return repository

    def attach(self, cache):
        """Evaluate every rule's subject and peers in ``cache`` (registering
        the rule as their user, so that selection changes map back to it)."""
        self.cache = cache
        for c in self.rules:
            self.register(c)

    def register(self, compiled_rule):
        digest = compiled_rule.digest
        self.cache.selection(compiled_rule.subject_key, ("subject", digest))
        for direction in DIRECTIONS:
            for term in getattr(compiled_rule, direction).terms:
                if term.key is not sc.WILDCARD:
                    self.cache.selection(term.key, ("peer", digest))

    def unregister(self, compiled_rule):
        digest = compiled_rule.digest
        self.cache.remove_user(compiled_rule.subject_key, ("subject", digest))
        for direction in DIRECTIONS:
            for term in getattr(compiled_rule, direction).terms:
                if term.key is not sc.WILDCARD:
                    self.cache.remove_user(term.key, ("peer", digest))

    def relevant(self, direction, positions):
        """Digests of the rules at ``positions`` that say something about
        ``direction`` (rules, enforcement or requirements there)."""
        matters = self._matters[direction]
        return tuple(compress(map(self.digests.__getitem__, positions), map(matters.__getitem__, positions)))

    def positions_for(self, number):
        """Positions of the rules selecting endpoint identity ``number``."""
        contains = self.cache.contains
        return [i for i, key in enumerate(self.subject_keys) if contains(key, number)]

    def rules_by_identity(self):
        """{endpoint identity: [rule positions selecting it]} in rule order."""
        endpoints = self.cache.table.endpoint_numbers
        result = {}
        for position, key in enumerate(self.subject_keys):
            for number in self.cache.selection(key):
                if number in endpoints:
                    result.setdefault(number, []).append(position)
        return result
