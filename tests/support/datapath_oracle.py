# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test oracles for the datapath's policy maps (pure Python, no kernel).

``evaluate`` states docs/policy-engine.md "Evaluation of one packet" directly
on a direction's raw entries; ``simulate`` answers what bpf/lib/policy.h.j2
answers from the compiled nodes and level masks. The unit tests hold the two
equal on random policies, and use ``simulate`` to judge every intermediate
state of a reconcile plan. ``random_entry``, ``random_policy`` and
``probes`` draw the random policies and packets they are compared on.

Verdicts: ``"deny"``, ``"allow"``, ``"redirect"``, or None (nothing matched
in an enforced direction: the default deny).
"""

from __future__ import absolute_import, division, print_function

from ansible_collections.palisade.ebpf.plugins.module_utils._datapath import abi, policy as dp_policy

PEERS = (0, 300, 301)
PROBE_PORTS = (0, 8, 22, 53, 80, 443, 1023, 1024, 1500, 2047, 2048, 3000, 8080, 65535)


def evaluate(entries, enforced, identity, proto, port):
    """The reference semantics, on raw ``[peer, proto, port_lo, port_hi,
    verdict]`` entries."""
    matching = []
    for peer, eproto, low, high, verdict in entries:
        if peer not in (0, identity):
            continue
        for level, pproto, pport in dp_policy.l4_prefixes(eproto, low, high):
            if level == abi.LEVEL_ANY or (pproto == proto and (port & dp_policy.port_mask(level)) == pport):
                matching.append((level, verdict))
    if any(verdict == "deny" for dummy, verdict in matching):
        return "deny"
    if not matching:
        return None if enforced else "allow"
    top = max(level for level, dummy in matching)
    kinds = set(verdict for level, verdict in matching if level == top)
    return "allow" if "allow" in kinds else "redirect"


def simulate(nodes, enforced, identity, proto, port, masks=None):
    """The kernel's lookup on compiled ``nodes`` ({(identity, level, proto,
    port): (flags, allow_level)}); ``masks``: the endpoint config's level
    masks (peer, any peer), by default the nodes' own."""
    peer_mask, any_mask = masks if masks is not None else dp_policy.level_masks(nodes)
    found = []
    for ident, mask in ((identity, peer_mask), (0, any_mask)):
        hit = None
        for level in sorted(abi.LEVELS, reverse=True):
            if not mask & (1 << level):
                continue
            prefix = dp_policy.ancestor((abi.LEVEL_EXACT, proto, port), level)
            hit = nodes.get((ident,) + prefix)
            if hit is not None:
                break
        found.append(hit)
    if any(hit and hit[0] & abi.POL_F_DENY for hit in found):
        return "deny"
    allows = [(hit[1], "redirect" if hit[0] & abi.POL_F_L7 else "allow")
              for hit in found if hit and hit[0] & abi.POL_F_ALLOW]
    if not allows:
        return None if enforced else "allow"
    top = max(level for level, dummy in allows)
    kinds = set(kind for level, kind in allows if level == top)
    return "allow" if "allow" in kinds else "redirect"


def decode_policy_map(entries, policy_id):
    """{PolicyKey bytes: PolicyValue bytes} -> {direction: nodes} of one policy."""
    out = {abi.DIR_INGRESS: {}, abi.DIR_EGRESS: {}}
    for key, value in entries.items():
        pid, direction, identity, prefix = dp_policy.decode_key(key)
        if pid == policy_id:
            out[direction][(identity,) + prefix] = dp_policy.decode_value(value)
    return out


# --- random policies and packets ---------------------------------------------------
def random_entry(rnd):
    """One ``(peer, proto, port_lo, port_hi, verdict)`` entry; single ports,
    ranges and everything, biased towards the cases that interact."""
    proto = rnd.choice((0, 1, 6, 6, 17, 132))
    draw = rnd.random()
    if draw < 0.2:
        low, high = 0, 65535
    elif draw < 0.6:
        low = rnd.choice((80, 443, 8, 0, 1024, 53))
        high = low
    else:
        low = rnd.randint(0, 2000)
        high = low + rnd.randint(0, 3000)
    if proto == 1 and (low, high) != (0, 65535):
        low, high = min(low, 255), min(high, 255)
    return (rnd.choice(PEERS), proto, low, high, rnd.choice(("allow", "allow", "deny", "redirect")))


def random_policy(rnd):
    """A policy of the datapath's state: both directions, random enforcement."""
    return dict((d, {"enforced": rnd.random() < 0.6,
                     "entries": [list(random_entry(rnd)) for dummy in range(rnd.randint(0, 6))]})
                for d in ("ingress", "egress"))


def probes(rnd, count=30):
    """``(peer identity, proto, port)`` packets; 999 is a peer no entry names,
    47 (GRE) a protocol without ports."""
    out = []
    for dummy in range(count):
        proto = rnd.choice((1, 6, 17, 132, 47))
        port = rnd.choice(PROBE_PORTS + (rnd.randint(0, 65535),))
        if proto == 1:
            port &= 0xFF
        if proto == 47:
            port = 0
        out.append((rnd.choice((300, 301, 999)), proto, port))
    return out
