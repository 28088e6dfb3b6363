# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a host's modules want, from its share of the fleet (``_shares``):
the one place that turns a share into palisade.ebpf.datapath's arguments
and into what the L7 proxy (palisade.ebpf.l7proxy and haproxy.cfg) needs.
Pure; runs on the controller.

The IP table: ``pack_shared_ipcache`` packs the fleet-wide table once per
run; a host's view is that string followed by its own rows
(``host_ipcache``), and the host-side decode (``unpack_ipcache``) lets a
later row win. Packed records are 9 bytes, 12 base64 characters without
padding, so packed strings concatenate.

The datapath: the engine groups entries by peer set and keeps HTTP rules
and rule names; the datapath wants one flat row per peer with a verdict:
deny when the entry denies, redirect when it carries HTTP rules (the L7
proxy judges requests), allow otherwise. Precedence between overlapping
rows is the datapath planner's job (docs/policy-engine.md, "Evaluation of
one packet").

The L7 proxy: three maps and a list of rulesets. The verdict for every
(policy, direction, port, peer) comes from trace.evaluate, the same function
policy_trace uses, so the proxy, the datapath and the trace agree on when
L7 applies and with which ORed rules. HAProxy reads the maps at runtime
(they change with identities, no reload) while the rulesets become frontend
lines (they change only when the HTTP rules themselves change). Ruleset ids
are digests of their content so an identity joining a selector leaves the
configuration untouched.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
from collections import namedtuple

from ansible_collections.palisade.ebpf.plugins.module_utils._datapath.state import pack_ipcache
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import trace
from ansible_collections.palisade.ebpf.plugins.plugin_utils._render.haproxy import build_ruleset
from ansible_collections.palisade.ebpf.plugins.plugin_utils._shares import remote_routes
from ansible_collections.palisade.ebpf.plugins.plugin_utils._store import ShareStore

PARTS = ("datapath", "l7proxy", "endpoints", "routes")
DIRECTIONS = (("ingress", "i"), ("egress", "e"))
TCP = 6
ANY_PROTOCOL = 0
ANY_PEER = 0
NO_L7 = "-"  # rules.map value: this peer is not redirected on this side
# L7 entries are single ports; a wider range would blow up the map, so refuse.
MAX_L7_PORTS_PER_ENTRY = 1024

# Shaped like policy.repository.DirectionPolicy where trace.evaluate looks.
ShareDirection = namedtuple("ShareDirection", "peers enforced enforced_by")


# --- the IP table ---------------------------------------------------------------

def pack_shared_ipcache(table):
    """The fleet-wide table ({prefix: identity}) packed, once per run."""
    return pack_ipcache(sorted(table.items()))


def host_ipcache(shared_packed, share):
    """``share``'s host's view of the IP table, packed: the fleet-wide table,
    then the host's own rows, which win on the host."""
    return shared_packed + pack_ipcache(sorted((share.get("ipcache_overrides") or {}).items()))


# --- the datapath -----------------------------------------------------------------

def flat_entries(direction):
    rows = set()
    for group in direction.get("entries") or ():
        for protocol, lo, hi, deny, http, _names in group["l4"]:
            verdict = "deny" if deny else ("redirect" if http is not None else "allow")
            for peer in group["peers"]:
                rows.add((peer, protocol, lo, hi, verdict))
    return [list(row) for row in sorted(rows)]


def flat_policy(output):
    """A policy (host-share form) as the datapath takes it: per direction,
    ``enforced`` and one flat row per peer with its verdict."""
    return dict((direction, {"enforced": bool(output[direction]["enforced"]), "entries": flat_entries(output[direction])})
                for direction in ("ingress", "egress"))


def policy_peers(flat):
    """The peer identities a flat policy's rows name."""
    return sorted(set(row[0] for direction in flat.values() for row in direction["entries"]))


def datapath_endpoints(share):
    return [dict((k, ep[k]) for k in ("key", "ifname", "ipv4", "identity", "policy"))
            for ep in share.get("enforcement") or ()]


def used_identities(identities, numbers):
    """The labels of ``numbers`` that fleet_state's ``identities`` knows."""
    identities = identities or {}
    return dict((str(n), identities[str(n)]) for n in sorted(set(numbers)) if str(n) in identities)


def datapath_want(share, ipcache_packed, identities=None):
    """palisade.ebpf.datapath's ``endpoints``, ``policies``, ``identities``
    and ``ipcache_packed`` for the host of ``share``; ``identities`` is
    fleet_state's (labels by number), of which the host gets only those its
    diffs can mention."""
    policies = dict((ref, flat_policy(policy)) for ref, policy in (share.get("policies") or {}).items())
    endpoints = datapath_endpoints(share)
    used = set(ep["identity"] for ep in endpoints)
    for policy in policies.values():
        used.update(policy_peers(policy))
    return {
        "endpoints": endpoints,
        "policies": policies,
        "identities": used_identities(identities, used),
        "ipcache_packed": ipcache_packed,
    }


# --- the L7 proxy: rules --------------------------------------------------------------

def _digest(value, length=8):
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:length]


def policy_key(ref):
    """A short map-safe token for a policy reference."""
    return "p" + _digest(str(ref))


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


# --- the L7 proxy: verdicts -------------------------------------------------------------

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


def _once(memo, key, compute):
    """``compute()`` once per key of ``memo``; a ValueError is kept as its
    text and raised again for everyone who asks for that key."""
    found = memo.get(key)
    if found is None:
        try:
            found = compute()
        except ValueError as exc:
            found = str(exc)
        memo[key] = found
    if isinstance(found, str):
        raise ValueError(found)
    return found


class ProxyWants:
    """``proxy_want`` for the hosts of one run: each distinct policy's map
    entries, and each ruleset, are computed once however many hosts use
    them (a failure too: it is raised again for every host that uses it)."""

    def __init__(self):
        self._policies = {}  # policy reference -> (rules.map entries, {ruleset id: canonical rules}) or error text
        self._rulesets = {}  # ruleset id -> build_ruleset(...) or error text

    def _policy(self, ref, output):
        def compute():
            rulesets = {}
            return policy_rules(ref, output, rulesets), rulesets
        return _once(self._policies, ref, compute)

    def _ruleset(self, rid, canonical):
        return _once(self._rulesets, rid, lambda: build_ruleset(rid, canonical))

    def want(self, share):
        """What HAProxy needs on the host of ``share`` (``_shares.host_share`` form):

        ``endpoints``: {local endpoint IPv4: policy key} for endpoints whose
        policy redirects something; ``rules``: {"<policy key>/<i|e>/<port>/<peer
        identity>": ruleset id | "-"}, where peer 0 is the value for peers
        without their own key and "-" says this peer is not redirected on that
        side; ``rulesets``: [haproxy.build_ruleset(...)] sorted by id.
        Raises ValueError for rules the proxy cannot apply."""
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
                entries, used = self._policy(ref, policies[ref])
                for rid, canonical in used.items():
                    if rulesets.setdefault(rid, canonical) != canonical:
                        raise ValueError("ruleset id %s names two different rule lists" % rid)
                by_ref[ref] = entries
                rules.update(entries)
            if by_ref[ref]:
                endpoints[endpoint["ipv4"]] = policy_key(ref)
        return {"endpoints": endpoints, "rules": rules,
                "rulesets": [self._ruleset(rid, rulesets[rid]) for rid in sorted(rulesets)]}

    def want_or_error(self, share):
        """``want``, or {"error": message}: the run goes on, and only a host
        that runs the proxy stops on it (see ``host_want``)."""
        try:
            return self.want(share)
        except ValueError as exc:
            return {"error": str(exc)}


def proxy_want(share):
    """What HAProxy needs on the host of ``share`` (see ProxyWants.want)."""
    return ProxyWants().want(share)


# --- a host's want, from fleet_state's result ---------------------------------------------

def _read(fleet_state, name):
    return ShareStore(fleet_state["store"]).get(name)


def host_want(fleet_state, host, part):
    """What ``host``'s module ``part`` wants, from palisade.ebpf.fleet_state's
    registered result, whose share store (_store.py) holds the host's share:
    ``datapath`` (datapath_want, the IP table packed in full; the datapath
    role ships the table as versioned artifacts instead, _transfer.py),
    ``l7proxy`` (ProxyWants.want plus ``ipcache_version``, the versions of
    the datapath's artifacts the proxy reads the IP table from on the host),
    ``endpoints`` (the endpoint module's endpoints) or ``routes`` (the
    direct routes to every other host's endpoints). Raises ValueError
    (_store.StoreError) when the store no longer holds what the result names."""
    if part not in PARTS:
        raise ValueError("want: the part is one of %s, not %r" % (", ".join(PARTS), part))
    if part == "routes":
        return remote_routes(_read(fleet_state, fleet_state["objects"]["routes"]), host)
    share = _read(fleet_state, fleet_state["hosts"][host]["share"])
    if part == "endpoints":
        return share["endpoints"]
    if part == "l7proxy":
        want = share["l7proxy"]
        if "error" in want:
            raise ValueError(want["error"])
        return dict(want, ipcache_version={"fleet": fleet_state["objects"]["fleet_table"],
                                           "host": fleet_state["hosts"][host]["datapath"][0]})
    share["policies"] = {ref: _read(fleet_state, name) for ref, name in share["policies"].items()}
    ipcache_packed = host_ipcache(_read(fleet_state, fleet_state["objects"]["ipcache_packed"]), share)
    return datapath_want(share, ipcache_packed, _read(fleet_state, fleet_state["objects"]["identities"]))
