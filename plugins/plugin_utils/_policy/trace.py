# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verdicts for probes, computed from the distilled state.

This answers what the datapath would do with a packet, from the same
entries the hosts receive (docs/policy-engine.md, "Evaluation of one
packet"): per direction, any matching deny wins; otherwise the most specific
matching allows decide (an allow without HTTP rules among them lets the flow
through at L4, else it is redirected to the proxy with their HTTP rules
ORed); with no match, the direction's default-deny flag decides. A probe
passes the source endpoint's egress and the destination endpoint's ingress,
each evaluated on the host that enforces it (node addresses resolve to
``host`` there and to ``remote-node`` elsewhere).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
from collections import namedtuple

from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import identity as ident
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import repository as repo

PROBE_PROTOCOLS = ("TCP", "UDP", "SCTP")
PROBE_KEYS = ("from", "to", "port", "protocol", "http")
HTTP_KEYS = ("method", "path", "headers")
_ADDRESS_LIKE = re.compile(r"^[0-9.]+$")

ALLOW, DENY, REDIRECT = "allow", "deny", "redirect"

# The outcome of one direction: ``decision`` ALLOW, DENY or REDIRECT;
# ``names`` of the rules that decided; ``http`` the ORed HTTP rules when
# redirected; ``cause``: "deny-rule", "default-deny", "rule", "not-enforced".
DirectionVerdict = namedtuple("DirectionVerdict", "decision names http cause")


class TraceError(ValueError):
    """A probe that cannot be traced; the message is one line naming it."""


# --- L4 specificity ----------------------------------------------------------

def port_prefix_length(protocol, lo, hi, port):
    """How specific an entry's L4 match is for ``port``: 0 any protocol,
    8 protocol with every port, 8+k for the aligned block of the range's
    minimal decomposition that contains the port (k fixed bits), 24 an
    exact port. This is the LPM prefix length the datapath sees."""
    if protocol == 0:
        return 0
    start = lo
    while start <= hi:
        size = start & -start if start else 1 << 16
        while start + size - 1 > hi:
            size >>= 1
        if start <= port < start + size:
            return 8 + 16 - (size.bit_length() - 1)
        start += size
    return -1


def evaluate(policy, peer, protocol, port):
    """Evaluate one packet (peer identity, protocol number, port) against
    one DirectionPolicy."""
    peers = policy.peers
    matched = []
    for key in (peer, ident.ANY) if peer != ident.ANY else (ident.ANY,):
        for entry in peers.get(key, ()):
            entry_protocol, lo, hi = entry[0], entry[1], entry[2]
            if (entry_protocol == 0 or entry_protocol == protocol) and lo <= port <= hi:
                matched.append(entry)
    denies = [e for e in matched if e[3]]
    if denies:
        return DirectionVerdict(DENY, _names(denies), None, "deny-rule")
    if matched:
        ranked = [(port_prefix_length(e[0], e[1], e[2], port), e) for e in matched]
        best = max(rank for rank, dummy in ranked)
        top = [e for rank, e in ranked if rank == best]
        plain = [e for e in top if e[4] is None]
        if plain:
            return DirectionVerdict(ALLOW, _names(plain), None, "rule")
        rules = []
        for e in top:
            rules.extend(r for r in e[4] if r not in rules)
        return DirectionVerdict(REDIRECT, _names(top), tuple(rules), "rule")
    if policy.enforced:
        return DirectionVerdict(DENY, policy.enforced_by, None, "default-deny")
    return DirectionVerdict(ALLOW, (), None, "not-enforced")


def _names(entries):
    return tuple(sorted({name for e in entries for name in e[5]}))


# --- HTTP ----------------------------------------------------------------------

_REGEX_CACHE = {}


def _regex(pattern):
    found = _REGEX_CACHE.get(pattern)
    if found is None:
        found = _REGEX_CACHE[pattern] = re.compile(pattern)
    return found


def _full_match(pattern, value):
    return pattern is None or pattern == "" or _regex(pattern).fullmatch(value) is not None


def http_rule_matches(rule, request):
    """Does the request (method, path, host, headers: {lowercase name: value})
    satisfy one ir.HTTPRule? Regexes match the whole value; ``headers``
    entries "Name: value" require that value, "Name" presence;
    ``headerMatches`` deny only when their mismatch action is empty."""
    method, path, host, headers = request
    if not (_full_match(rule.method, method) and _full_match(rule.path, path) and _full_match(rule.host, host)):
        return False
    for line in rule.headers or ():
        name, sep, value = line.partition(":")
        have = headers.get(name.strip().lower())
        if have is None or (sep and have != value.strip()):
            return False
    for match in rule.header_matches or ():
        if match.mismatch:
            continue  # LOG, ADD, DELETE, REPLACE act on the request but never deny it
        have = headers.get(match.name.lower())
        if have is None or (match.value is not None and have != match.value):
            return False
    return True


def http_allows(rules, request):
    return any(http_rule_matches(rule, request) for rule in rules)


# --- probes --------------------------------------------------------------------

class _Side:
    """One end of a probe: an endpoint of the fleet or an outside address."""

    __slots__ = ("text", "address", "endpoint")

    def __init__(self, text, address, endpoint):
        self.text = text
        self.address = address
        self.endpoint = endpoint


def _side(fleet_policy, index, field, value):
    where = "probes[%d].%s" % (index, field)
    if not isinstance(value, str) or not value:
        raise TraceError("%s: must be 'namespace/name' of an endpoint or an IPv4 address, got %r" % (where, value))
    if _ADDRESS_LIKE.match(value):
        try:
            address = ident.parse_address(value)
        except ValueError:
            raise TraceError("%s: %r is not a valid IPv4 address" % (where, value))
        endpoint = fleet_policy.endpoint_at(address)
        return _Side(endpoint["key"] if endpoint else value, address, endpoint)
    key = value if "/" in value else "default/" + value
    endpoint = fleet_policy.endpoint(key)
    if endpoint is None:
        raise TraceError("%s: no endpoint %s in the inventory" % (where, key))
    return _Side(key, ident.parse_address(endpoint["ipv4"]), endpoint)


def _port(index, probe, destination):
    port = probe.get("port")
    protocol = probe.get("protocol")
    where = "probes[%d].port" % index
    if isinstance(port, bool) or port is None:
        raise TraceError("%s: is required (a port number or a named port of the destination)" % where)
    if isinstance(port, str) and port.isdigit():
        port = int(port)
    if isinstance(port, int):
        if not 1 <= port <= 65535:
            raise TraceError("%s: %d is not a port number (1-65535)" % (where, port))
        return port, protocol or "TCP"
    if not isinstance(port, str):
        raise TraceError("%s: must be a port number or name, got %r" % (where, port))
    if destination.endpoint is None:
        raise TraceError("%s: named port %r needs an endpoint as destination, not %s" % (where, port, destination.text))
    declared = [p for p in destination.endpoint.get("ports") or () if p.get("name") == port]
    if not declared:
        raise TraceError("%s: endpoint %s declares no port named %r" % (where, destination.text, port))
    if protocol:
        declared = [p for p in declared if p["protocol"] == protocol]
        if not declared:
            raise TraceError("%s: port %r of %s is not %s" % (where, port, destination.text, protocol))
    return declared[0]["port"], declared[0]["protocol"]


def _request(index, probe, destination, port):
    http = probe.get("http")
    if http is None:
        http = {}
    if not isinstance(http, dict):
        raise TraceError("probes[%d].http: must be a mapping with method, path, headers" % index)
    unknown = sorted(str(k) for k in http if k not in HTTP_KEYS + ("body",))
    if unknown:
        raise TraceError("probes[%d].http: unknown key(s) %s; allowed: %s" % (index, ", ".join(unknown), ", ".join(HTTP_KEYS)))
    headers = http.get("headers") or {}
    if not isinstance(headers, dict):
        raise TraceError("probes[%d].http.headers: must be a mapping of header names to values" % index)
    headers = {str(k).lower(): str(v) for k, v in headers.items()}
    # As the probe module sends it: Host is the destination address and port.
    host = headers.get("host") or "%s:%d" % (ident.format_address(destination.address), port)
    headers.setdefault("host", host)
    method = str(http.get("method") or "GET").upper()
    path = str(http.get("path") or "/")
    return (method, path, host, headers)


def _check_probe(index, probe):
    if not isinstance(probe, dict):
        raise TraceError("probes[%d]: must be a mapping with from, to, port" % index)
    unknown = sorted(str(k) for k in probe if k not in PROBE_KEYS)
    if unknown:
        raise TraceError("probes[%d]: unknown key(s) %s; allowed: %s" % (index, ", ".join(unknown), ", ".join(PROBE_KEYS)))
    for field in ("from", "to"):
        if field not in probe:
            raise TraceError("probes[%d].%s: is required" % (index, field))
    protocol = probe.get("protocol")
    if protocol is not None and protocol not in PROBE_PROTOCOLS:
        raise TraceError("probes[%d].protocol: must be one of %s, got %r" % (index, "|".join(PROBE_PROTOCOLS), protocol))


def _peer_text(fleet_policy, side, number):
    if side.endpoint is not None:
        return side.text
    return "%s (%s)" % (side.text, fleet_policy.table.describe(number))


def _phrase(fleet_policy, side, direction, verdict, flow, peer_text):
    """One direction's outcome as a phrase of the reason."""
    where = "%s %s" % (side.text, direction)
    names = ", ".join(verdict.names)
    towards = "to" if direction == repo.EGRESS else "from"
    if verdict.cause == "deny-rule":
        return "%s denies %s %s %s (deny rule of %s)" % (where, flow, towards, peer_text, names)
    if verdict.cause == "default-deny":
        return "%s: default deny (enforced by %s): no rule allows %s %s %s" % (where, names, flow, towards, peer_text)
    if verdict.cause == "not-enforced":
        return "%s: no policy enforces this direction" % where
    if verdict.decision == REDIRECT:
        return "%s sends %s %s %s to the L7 proxy (%s)" % (where, flow, towards, peer_text, names)
    return "%s allows %s %s %s (%s)" % (where, flow, towards, peer_text, names)


def trace_one(fleet_policy, index, probe):
    _check_probe(index, probe)
    source = _side(fleet_policy, index, "from", probe["from"])
    destination = _side(fleet_policy, index, "to", probe["to"])
    port, protocol_name = _port(index, probe, destination)
    protocol = repo.PROTOCOL_NUMBERS[protocol_name]
    flow = "%s/%d" % (protocol_name, port)

    steps = []  # (side, direction, verdict, peer text), in path order: egress first
    if source.endpoint is not None:
        peer = fleet_policy.lookup(source.endpoint["host"], destination.address)
        policy = fleet_policy.subject_policy(source.endpoint["key"]).egress
        steps.append((source, repo.EGRESS, evaluate(policy, peer, protocol, port),
                      _peer_text(fleet_policy, destination, peer)))
    if destination.endpoint is not None:
        peer = fleet_policy.lookup(destination.endpoint["host"], source.address)
        policy = fleet_policy.subject_policy(destination.endpoint["key"]).ingress
        steps.append((destination, repo.INGRESS, evaluate(policy, peer, protocol, port),
                      _peer_text(fleet_policy, source, peer)))

    phrases = [_phrase(fleet_policy, side, direction, verdict, flow, peer_text)
               for side, direction, verdict, peer_text in steps]
    denied = [(phrase, step) for phrase, step in zip(phrases, steps) if step[2].decision == DENY]
    if denied:
        phrase, step = denied[0]  # the first on the path drops the packet
        return {"verdict": "deny", "l4": "deny", "l7": None, "reason": phrase, "policies": list(step[2].names)}
    if not steps:
        return {"verdict": "allow", "l4": "allow", "l7": None,
                "reason": "neither %s nor %s is an endpoint of the fleet: no policy applies" % (source.text, destination.text),
                "policies": []}

    names = sorted({n for step in steps for n in step[2].names})
    redirected = [step for step in steps if step[2].decision == REDIRECT]
    if not redirected:
        return {"verdict": "allow", "l4": "allow", "l7": None, "reason": "; ".join(phrases), "policies": names}
    if probe.get("http") is None:
        # The proxy accepts the connection and judges requests, not
        # connections: without a request there is nothing for L7 to refuse,
        # which is also what the probe module sees (a TCP connect succeeds).
        return {"verdict": "allow", "l4": "allow", "l7": None,
                "reason": "%s; redirected to the L7 proxy, whose HTTP rules (%s) judge each request"
                % ("; ".join(phrases), ", ".join(sorted({n for step in redirected for n in step[2].names}))),
                "policies": names}
    request = _request(index, probe, destination, port)
    shown = "HTTP %s %s" % (request[0], request[1])
    refused = [step for step in redirected if not http_allows(step[2].http, request)]
    if refused:
        refusing = sorted({n for step in refused for n in step[2].names})
        return {"verdict": "deny", "l4": "allow", "l7": "deny",
                "reason": "%s; %s matches no HTTP rule of %s (403)" % ("; ".join(phrases), shown, ", ".join(refusing)),
                "policies": refusing}
    return {"verdict": "allow", "l4": "allow", "l7": "allow",
            "reason": "%s; %s matches an HTTP rule" % ("; ".join(phrases), shown), "policies": names}


def trace(fleet_policy, probes):
    """Results for ``probes`` (the policy_trace interface, docs/inventory.md), in order.
    Raises TraceError (one line, naming the probe) for a probe that cannot
    be traced: unknown endpoint, bad address, unknown named port."""
    if not isinstance(probes, (list, tuple)):
        raise TraceError("probes: must be a list")
    return [trace_one(fleet_policy, index, probe) for index, probe in enumerate(probes)]
