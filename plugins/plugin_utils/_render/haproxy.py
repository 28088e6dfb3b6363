# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the local HAProxy needs to enforce a host's HTTP rules.

``proxy_want(share)`` turns one host's policy share into three maps and a
list of rulesets (see docs in the function). The verdict for every
(policy, direction, port, peer) comes from trace.evaluate, the same function
policy_trace uses, so the proxy, the datapath and the trace agree on when
L7 applies and with which ORed rules.

HAProxy reads the maps at runtime (they change with identities, no reload)
while the rulesets become frontend lines (they change only when the HTTP
rules themselves change). Ruleset ids are digests of their content so an
identity joining a selector leaves the configuration untouched.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import re
from collections import namedtuple

from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import trace

DIRECTIONS = (("ingress", "i"), ("egress", "e"))
TCP = 6
ANY_PROTOCOL = 0
ANY_PEER = 0
NO_L7 = "-"  # rules.map value: this peer is not redirected on this side
# L7 entries are single ports; a wider range would blow up the map, so refuse.
MAX_L7_PORTS_PER_ENTRY = 1024

# Cilium's path regex is matched against the request target's path as
# Envoy's :path sees it, query string included; trace matches the probe's
# whole path the same way. HAProxy's ``pathq`` is that value.
PATH_FETCH = "pathq"

# Header mismatch actions that change the request (LOG only records it).
MUTATING_MISMATCH = ("ADD", "DELETE", "REPLACE")

# Shaped like policy.repository.DirectionPolicy where trace.evaluate looks.
ShareDirection = namedtuple("ShareDirection", "peers enforced enforced_by")

# HAProxy drops an empty word ('') from a header action; a log-format of a
# variable that is never set renders as the empty value Envoy would add.
EMPTY_HEADER_VALUE = "%[var(txn.palisade_unset)]"

# Characters that may stand in a HAProxy config word without quotes.
_BARE_WORD = re.compile(r"^[A-Za-z0-9_.,:/()@+=^*|~`&!-]+$")
# Header names go inside a sample fetch's parentheses: no quotes, commas,
# parentheses, backslashes or whitespace there.
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&*+.^_`|~-]+$")


def hap_quote(text):
    """``text`` as exactly one HAProxy configuration word: single quotes
    (nothing is special inside) unless it holds a single quote, then double
    quotes with backslash, double quote and dollar escaped."""
    if any(c in text for c in "\n\r\0"):
        raise ValueError("cannot write %r into the HAProxy configuration: line breaks and NUL are not allowed" % text)
    if "'" not in text:
        return "'%s'" % text
    return '"%s"' % text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")


def hap_word(text):
    """``text`` bare when it is safe unquoted, else quoted."""
    if _BARE_WORD.match(text) and text not in ("{", "}"):
        return text
    return hap_quote(text)


def _header_name(name):
    if not isinstance(name, str) or not _HEADER_NAME.match(name):
        raise ValueError("HTTP header name %r cannot be matched by the L7 proxy" % (name,))
    return name


def _digest(value, length=8):
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:length]


def policy_key(ref):
    """A short map-safe token for a policy reference."""
    return "p" + _digest(str(ref))


# --- rules ------------------------------------------------------------------------

def _field(rule, name):
    if isinstance(rule, dict):
        return rule.get(name)
    return getattr(rule, name, None)


def canonical_rule(rule):
    """One HTTP rule (share dict, list-ified dict or ir.HTTPRule) as a plain
    dict with empty parts as None/[]: equal rules compare and hash equal."""
    header_matches = []
    for match in _field(rule, "header_matches") or ():
        name, value, mismatch = (_field(match, "name"), _field(match, "value"), _field(match, "mismatch"))
        header_matches.append({"name": name, "value": value if value not in ("", None) else None,
                               "mismatch": (mismatch or "").upper()})
    return {"method": _field(rule, "method") or None, "path": _field(rule, "path") or None,
            "host": _field(rule, "host") or None,
            "headers": sorted(str(h) for h in _field(rule, "headers") or ()),
            "header_matches": header_matches}


def canonical_rules(rules):
    """The ORed rules of a redirect, deduplicated and in a fixed order."""
    by_text = {}
    for rule in rules:
        canonical = canonical_rule(rule)
        by_text[json.dumps(canonical, sort_keys=True)] = canonical
    return [by_text[text] for text in sorted(by_text)]


def ruleset_id(canonical):
    return "r" + _digest(json.dumps(canonical, sort_keys=True, separators=(",", ":")))


def _regex_criterion(fetch, pattern):
    # The policy's regex must match the whole value.
    return "%s -m reg %s" % (fetch, hap_quote("^(?:%s)$" % pattern))


def _equals_criterion(fetch, value):
    if value in ("{", "}"):
        # A bare brace would close the condition; a regex says the same thing.
        return "%s -m reg %s" % (fetch, hap_quote("^" + re.escape(value) + "$"))
    flags_end = " --" if value.startswith("-") else ""  # a leading '-' would read as a flag
    return "%s -m str%s %s" % (fetch, flags_end, hap_quote(value))


def _header_fetch(name):
    # fhdr: the whole value, commas included (hdr would split it).
    return hap_word("req.fhdr(%s)" % _header_name(name))


class _RulesetBuilder:
    """Named ACLs of one ruleset, shared by its rules."""

    def __init__(self, rid):
        self.rid = rid
        self.acls = []
        self._names = {}

    def acl(self, criterion):
        name = self._names.get(criterion)
        if name is None:
            name = self._names[criterion] = "%s_%d" % (self.rid, len(self.acls))
            self.acls.append({"name": name, "criterion": criterion})
        return name

    def rule(self, rule):
        required = []
        if rule["method"]:
            required.append(self.acl(_regex_criterion("method", rule["method"])))
        if rule["path"]:
            required.append(self.acl(_regex_criterion(PATH_FETCH, rule["path"])))
        if rule["host"]:
            required.append(self.acl(_regex_criterion("req.hdr(host)", rule["host"])))
        for line in rule["headers"]:
            name, sep, value = line.partition(":")
            fetch = _header_fetch(name.strip())
            if sep:
                required.append(self.acl(_equals_criterion(fetch, value.strip())))
            else:
                required.append(self.acl("%s -m found" % fetch))
        # Mutations run when the rule's method/path/host/headers match, like
        # Cilium's proxy, whatever its failing header matches say.
        base = list(required)
        mutations, mutation_conditions = [], []
        for match in rule["header_matches"]:
            action = match["mismatch"]
            if action and action not in MUTATING_MISMATCH:
                continue  # LOG: the request passes unchanged
            fetch = _header_fetch(match["name"])
            present = self.acl("%s -m found" % fetch)
            wanted = present if match["value"] is None else self.acl(_equals_criterion(fetch, match["value"]))
            if not action:
                required.append(wanted)
                continue
            # The new value is a log-format string in HAProxy: '%' is literal only doubled.
            new_value = hap_quote(match["value"].replace("%", "%%")) if match["value"] else EMPTY_HEADER_VALUE
            if action == "ADD":
                mutations.append("add-header %s %s" % (hap_word(match["name"]), new_value))
                mutation_conditions.append(" ".join(base + ["!" + wanted]))
            elif action == "REPLACE":
                mutations.append("set-header %s %s" % (hap_word(match["name"]), new_value))
                mutation_conditions.append(" ".join(base + ["!" + wanted]))
            elif match["value"] is not None:
                # DELETE of a present header with another value; a presence
                # match has nothing to delete.
                mutations.append("del-header %s" % hap_word(match["name"]))
                mutation_conditions.append(" ".join(base + [present, "!" + wanted]))
        return {"condition": " ".join(required), "mutations": mutations,
                "mutation_conditions": mutation_conditions}


def build_ruleset(canonical):
    """A ruleset for HAProxy from canonical rules: ``id``, ``acls`` ([{name,
    criterion}]), ``rules`` ([{condition, mutations, mutation_conditions}]);
    an empty condition matches every request."""
    rid = ruleset_id(canonical)
    builder = _RulesetBuilder(rid)
    rules = [builder.rule(rule) for rule in canonical]
    if not rules:
        rules = [{"condition": "", "mutations": [], "mutation_conditions": []}]  # http: [] = allow all
    return {"id": rid, "acls": builder.acls, "rules": rules}


# --- verdicts ------------------------------------------------------------------------

def _direction(output):
    peers = {}
    for entry in output.get("entries") or ():
        l4 = [tuple(e) for e in entry["l4"]]
        for peer in entry["peers"]:
            peers.setdefault(peer, []).extend(l4)
    return ShareDirection(peers, bool(output.get("enforced")), tuple(output.get("enforced_by") or ()))


def _l7_ports(direction):
    ports = set()
    for entries in direction.peers.values():
        for protocol, lo, hi, deny, http, dummy in entries:
            if http is None or deny or protocol not in (TCP, ANY_PROTOCOL):
                continue
            if hi - lo >= MAX_L7_PORTS_PER_ENTRY:
                raise ValueError("HTTP rules on ports %d-%d: the L7 proxy takes at most %d ports per rule"
                                 % (lo, hi, MAX_L7_PORTS_PER_ENTRY))
            ports.update(range(lo, hi + 1))
    return sorted(ports)


def _redirect_rules(direction, peer, port):
    verdict = trace.evaluate(direction, peer, TCP, port)
    if verdict.decision != trace.REDIRECT:
        return None
    return canonical_rules(verdict.http)


def policy_rules(ref, output, rulesets):
    """rules.map entries of one policy (host-share form); new rulesets are
    added to ``rulesets`` ({id: canonical rules})."""
    key = policy_key(ref)
    found = {}

    def remember(canonical):
        rid = ruleset_id(canonical)
        known = rulesets.setdefault(rid, canonical)
        if known != canonical:
            raise ValueError("ruleset id %s names two different rule lists" % rid)
        return rid

    for name, letter in DIRECTIONS:
        direction = _direction(output.get(name) or {})
        for port in _l7_ports(direction):
            prefix = "%s/%s/%d/" % (key, letter, port)
            fallback_rules = _redirect_rules(direction, ANY_PEER, port)
            fallback = remember(fallback_rules) if fallback_rules is not None else None
            if fallback is not None:
                found[prefix + "0"] = fallback
            for peer in sorted(p for p in direction.peers if p != ANY_PEER):
                peer_rules = _redirect_rules(direction, peer, port)
                value = remember(peer_rules) if peer_rules is not None else NO_L7
                if value == NO_L7 and fallback is None or value == fallback:
                    continue  # what the any-peer lookup already gives
                found[prefix + str(peer)] = value
    return found


def proxy_want(share):
    """What HAProxy needs on the host of ``share`` (fleet.host_share form):

    ``endpoints``: {local endpoint IPv4: policy key} for endpoints whose
    policy redirects something; ``rules``: {"<policy key>/<i|e>/<port>/<peer
    identity>": ruleset id | "-"}, where peer 0 is the value for peers
    without their own key and "-" says this peer is not redirected on that
    side; ``rulesets``: [build_ruleset(...)] sorted by id."""
    policies = share.get("policies") or {}
    rulesets, rules, endpoints, keys = {}, {}, {}, {}
    by_ref = {}
    for endpoint in share.get("enforcement") or ():
        ref = endpoint.get("policy")
        if ref is None:
            continue
        if ref not in by_ref:
            key = policy_key(ref)
            if keys.setdefault(key, ref) != ref:
                raise ValueError("policy references %s and %s share the key %s" % (keys[key], ref, key))
            by_ref[ref] = policy_rules(ref, policies[ref], rulesets)
            rules.update(by_ref[ref])
        if by_ref[ref]:
            endpoints[endpoint["ipv4"]] = policy_key(ref)
    return {"endpoints": endpoints, "rules": rules,
            "rulesets": [build_ruleset(rulesets[rid]) for rid in sorted(rulesets)]}


def map_text(entries):
    """A HAProxy map file's text: one sorted "key value" line per entry."""
    lines = []
    for key in sorted(entries, key=str):
        key_text, value_text = str(key), str(entries[key])
        if not key_text or any(c.isspace() for c in key_text) or "\n" in value_text or "\r" in value_text:
            raise ValueError("map entry %r -> %r cannot be written to a HAProxy map" % (key, entries[key]))
        lines.append("%s %s\n" % (key_text, value_text))
    return "".join(lines)
