# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-subject policy: what one direction of one subject allows and denies.

A *subject* is an endpoint identity together with its named-port map (two
endpoints with one identity but different numbers behind a port name need
different ingress entries). Its policy in one direction depends only on the
rules selecting its identity in that direction, on the selections of their
peers and, for ingress named ports, on its port map. Subjects selected by
the same rules therefore share one ``DirectionPolicy`` object: the
distiller memoizes by that signature, so the work is per distinct rule
combination, not per endpoint or even per identity.

A DirectionPolicy is held in factorized form (terms: selection key + L4
block) and *materialized* on first use into ``groups``: {block: sorted array
of peer identities (0 = any)}, where a block is a tuple of L4 entries

    (protocol, lo, hi, deny, http, names)

protocol 0 = any (then lo..hi is 0..65535), 1 ICMP (lo = hi = ICMP type),
6 TCP, 17 UDP, 132 SCTP; ``http`` a tuple of ir.HTTPRule or None;
``names`` the sorted names of the rules that contributed. Peers that get
the same merged entries share one interned block, so memory is one 4-byte
array slot per (policy, peer) plus a few distinct blocks. ``peers`` gives
{peer: block}, ``entries()`` the flat ``(peer, protocol, lo, hi, deny, http,
names)``.

Merging entries with the same (peer, protocol, lo, hi, deny) unions their
names; for allows the HTTP rules are ORed, and an allow without HTTP rules
cancels the L7 restriction (Cilium: an L4-only allow wins over L7 on the same
port). Precedence between different entries (deny first, then the most
specific L4 match) is applied when a packet is evaluated: see trace.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import bisect
import hashlib
from array import array

from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import identity as ident
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import repository as repo
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import selectorcache as sc

# Selections up to this size are merged element by element; larger ones by
# set algebra. Element-wise work is Python-level, set algebra C-level.
_SMALL_SELECTION = 48
# Peers of a group are kept in sorted arrays of 32-bit identity numbers: a
# tenth of the memory of a list, and invisible to the cyclic garbage
# collector (which would otherwise walk millions of references per pass).
PEERS_TYPECODE = "I" if array("I").itemsize == 4 else "L"


def port_map_of(ports):
    """An endpoint's named ports as a hashable map: frozenset of
    (name, port, protocol number), unnamed ports left out."""
    return frozenset((p["name"], p["port"], repo.PROTOCOL_NUMBERS[p["protocol"]])
                     for p in ports or () if p.get("name"))


def resolve_named(named, port_map):
    """Numeric (protocol, port, port) for named ports against a port map."""
    found = []
    for name, protocol in named:
        for port_name, port, port_protocol in port_map:
            if port_name == name and protocol in (0, port_protocol):
                found.append((port_protocol, port, port))
    return found


class NamedPorts:
    """Named ports by endpoint identity, for egress named ports (resolved
    against the destination): each identity's port maps with the number of
    endpoints carrying each, so that endpoints can come and go."""

    def __init__(self):
        self.by_identity = {}   # number -> {port map: endpoint count}
        self.declared = {}      # port name -> set of identities declaring it
        self._unions = {}       # number -> union of its port maps (memo)
        self._digests = {}      # port name -> digest of its declarations (memo)

    def add(self, number, port_map, count=1):
        if not port_map:
            return
        maps = self.by_identity.setdefault(number, {})
        if port_map not in maps:
            self._forget(number, port_map)
        maps[port_map] = maps.get(port_map, 0) + count
        for name, dummy, dummy2 in port_map:
            self.declared.setdefault(name, set()).add(number)

    def remove(self, number, port_map, count=1):
        maps = self.by_identity.get(number)
        if not port_map or maps is None or port_map not in maps:
            return
        maps[port_map] -= count
        if maps[port_map] > 0:
            return
        del maps[port_map]
        if not maps:
            del self.by_identity[number]
        self._forget(number, port_map)
        left = {name for pm in maps for name, dummy, dummy2 in pm}
        for name, dummy, dummy2 in port_map:
            if name not in left:
                self.declared[name].discard(number)

    def _forget(self, number, port_map):
        self._unions.pop(number, None)
        for name, dummy, dummy2 in port_map:
            self._digests.pop(name, None)

    def union(self, number):
        """All (name, port, protocol) the identity's endpoints declare."""
        found = self._unions.get(number)
        if found is None:
            maps = self.by_identity.get(number)
            found = self._unions[number] = frozenset().union(*maps) if maps else frozenset()
        return found

    def digest(self, names):
        """Order-independent digest of what ``names`` resolve to, fleet-wide."""
        total = 0
        for name in names:
            found = self._digests.get(name)
            if found is None:
                found = 0
                for number in self.declared.get(name, ()):
                    for port_name, port, protocol in self.union(number):
                        if port_name == name:
                            found += sc.mix((number << 24) ^ (port << 8) ^ protocol)
                found = self._digests[name] = found & sc.MASK64
            total += sc.mix(found ^ hash_text(name))
        return total & sc.MASK64


def hash_text(text):
    """A stable 64-bit hash of a string (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest()[:8], "big")


class DirectionPolicy:
    """One direction of one subject's policy (see the module docstring).

    Materialized state is ``groups``: {block: sorted array of peers}, the
    peers that share one merged block. ``peers`` ({peer: block}) is derived
    from it on demand. ``patch`` moves single peers between groups when
    selections change, so a policy touched by an identity change is updated
    in time proportional to the change, not to its size.
    """

    __slots__ = ("direction", "signature", "enforced", "enforced_by", "terms", "named_terms",
                 "_groups", "_peers", "_ref", "distiller", "stored")

    def __init__(self, distiller, direction, signature, enforced, enforced_by, terms, named_terms):
        self.distiller = distiller
        self.direction = direction
        self.signature = signature
        self.enforced = enforced
        self.enforced_by = enforced_by
        self.terms = terms              # ((selection key or WILDCARD, block), ...)
        self.named_terms = named_terms  # ((selection key, egress Term with named ports), ...)
        self._groups = None
        self._peers = None
        self._ref = None
        self.stored = None              # persist.py: this policy's stored form, while still valid

    @property
    def materialized(self):
        return self._groups is not None

    @property
    def groups(self):
        """{block: sorted array of peers}, materialized on first use."""
        if self._groups is None:
            self._groups = {block: array(PEERS_TYPECODE, sorted(members))
                            for block, members in self.distiller.materialize(self).items()}
        return self._groups

    @property
    def peers(self):
        """{peer identity (0 = any): block}."""
        if self._peers is None:
            peers = {}
            for block, members in self.groups.items():
                peers.update(dict.fromkeys(members, block))
            self._peers = peers
        return self._peers

    def _block_of(self, peer):
        for block, members in self._groups.items():
            index = bisect.bisect_left(members, peer)
            if index < len(members) and members[index] == peer:
                return block
        return None

    def patch(self, changed):
        """Selections or named ports changed for the identities ``changed``:
        recompute their blocks and move them between groups."""
        self._ref = None
        if self._groups is None:
            return 0
        groups, peers = self._groups, self._peers
        moved = 0
        for peer in changed:
            old = peers.get(peer) if peers is not None else self._block_of(peer)
            new = self.distiller.peer_block(self, peer)
            if old is new:
                continue
            moved += 1
            self.stored = None
            if old is not None:
                members = groups[old]
                del members[bisect.bisect_left(members, peer)]
                if not members:
                    del groups[old]
                if peers is not None:
                    del peers[peer]
            if new is not None:
                members = groups.get(new)
                if members is None:
                    groups[new] = array(PEERS_TYPECODE, (peer,))
                else:
                    members.insert(bisect.bisect_left(members, peer), peer)
                if peers is not None:
                    peers[peer] = new
        return moved

    @property
    def ref(self):
        """Stable content reference: equal for equal inputs in every run."""
        if self._ref is None:
            self._ref = self.distiller.policy_ref(self)
        return self._ref

    def keys(self):
        keys = {key for key, dummy in self.terms if key is not sc.WILDCARD}
        keys.update(key for key, dummy in self.named_terms if key is not sc.WILDCARD)
        return keys

    def entries(self):
        """Flat entries ``(peer, protocol, lo, hi, deny, http, names)``, by peer."""
        peers = self.peers
        for peer in sorted(peers):
            for entry in peers[peer]:
                yield (peer,) + entry


class SubjectPolicy:
    """Both directions of one subject's policy."""

    __slots__ = ("ingress", "egress", "_ref", "_from")

    def __init__(self, ingress, egress):
        self.ingress = ingress
        self.egress = egress
        self._ref = None
        self._from = None

    @property
    def ref(self):
        """Reference of the pair; follows its directions' references."""
        parts = (self.ingress.ref, self.egress.ref)
        if parts != self._from:
            self._ref = hashlib.sha1(("%s/%s" % parts).encode("ascii")).hexdigest()[:16]
            self._from = parts
        return self._ref

    def direction(self, name):
        return self.ingress if name == repo.INGRESS else self.egress


class Distiller:
    """Builds and memoizes DirectionPolicy objects for one run."""

    def __init__(self, repository, cache, named_ports, port_maps):
        self.repository = repository
        self.cache = cache
        self.named_ports = named_ports
        self.port_maps = port_maps  # port map id -> port map
        self.policies = {}          # signature -> DirectionPolicy
        self.subjects = {}          # (identity, port map) -> SubjectPolicy
        self._blocks = {}           # interned blocks
        self._names = {}            # interned name tuples
        self._merged = {}           # sorted tuple of block ids -> merged block
        self._term_blocks = {}      # (rule digest, direction, term index, port map) -> block
        self.materializations = 0   # DirectionPolicy materializations (for tests and stats)
        self.built = 0              # DirectionPolicy objects built

    # --- interning ---------------------------------------------------------

    def intern_block(self, block):
        return self._blocks.setdefault(block, block)

    def intern_names(self, names):
        return self._names.setdefault(names, names)

    # --- building ----------------------------------------------------------

    def signature(self, direction, positions, port_map):
        """What a direction policy depends on, beyond selections: the
        rules (by digest) and, when an ingress rule uses named ports, the
        subject's port map."""
        relevant = self.repository.relevant(direction, positions)
        uses_names = direction == repo.INGRESS and any(self.repository.named_ingress[d] for d in relevant)
        return (direction, relevant, port_map if uses_names else None)

    def subject_policy(self, number, port_map_id, positions):
        """The SubjectPolicy of identity ``number`` with the named-port map
        ``port_map_id``, selected by the rules at ``positions``."""
        key = (number, port_map_id)
        port_map = self.port_maps[port_map_id]
        ingress = self.direction_policy(self.signature(repo.INGRESS, positions, port_map))
        egress = self.direction_policy(self.signature(repo.EGRESS, positions, port_map))
        found = self.subjects.get(key)
        if found is not None and found.ingress is ingress and found.egress is egress:
            return found
        found = self.subjects[key] = SubjectPolicy(ingress, egress)
        return found

    def live_policies(self):
        """The DirectionPolicy objects some subject uses."""
        seen = {}
        for subject in self.subjects.values():
            seen[id(subject.ingress)] = subject.ingress
            seen[id(subject.egress)] = subject.egress
        return list(seen.values())

    def direction_policy(self, signature):
        found = self.policies.get(signature)
        if found is None:
            found = self.policies[signature] = self._build(signature)
        return found

    def _build(self, signature):
        direction, digests, port_map = signature
        self.built += 1
        compiled = [self.repository.compiled[d] for d in digests]
        rules = [getattr(c, direction) for c in compiled]
        enforced_by = tuple(sorted({c.name for c, r in zip(compiled, rules) if r.enforce}))
        requires = tuple(sorted({k for r in rules for k in r.requires}, key=repr))
        deny_requires = tuple(sorted({k for r in rules for k in r.deny_requires}, key=repr))
        terms, named_terms = [], []
        for c, r in zip(compiled, rules):
            for index, term in enumerate(r.terms):
                key = term.key
                if term.scoped:
                    key = sc.and_key(key, deny_requires if term.deny else requires)
                if term.named and direction == repo.EGRESS:
                    named_terms.append((key, term))
                block = self._term_block(c.digest, direction, index, term,
                                         port_map if term.named and direction == repo.INGRESS else None)
                if block:
                    terms.append((key, block))
        return DirectionPolicy(self, direction, signature, bool(enforced_by), enforced_by,
                               tuple(terms), tuple(named_terms))

    def _term_block(self, digest, direction, index, term, port_map):
        memo_key = (digest, direction, index, port_map)
        found = self._term_blocks.get(memo_key)
        if found is None:
            l4 = list(term.l4)
            if port_map:
                l4.extend(resolve_named(term.named, port_map))
            names = self.intern_names((term.name,))
            found = self.intern_block(tuple(sorted({(p, lo, hi, term.deny, term.http, names) for p, lo, hi in l4},
                                                   key=_entry_order)))
            self._term_blocks[memo_key] = found
        return found

    # --- materializing -----------------------------------------------------

    def materialize(self, policy):
        """{block: set of peers} for a direction policy: the peers of all
        its terms, partitioned by the merged block that applies to them."""
        self.materializations += 1
        by_key = {}
        for key, block in policy.terms:
            by_key.setdefault(key, []).append(block)
        sets = []
        for key, blocks in by_key.items():
            members = frozenset((ident.ANY,)) if key is sc.WILDCARD else self.cache.selection(key)
            if members:
                sets.append((members, self.merge(blocks)))
        for key, term in policy.named_terms:
            sets.extend(self._egress_named(key, term))
        if not sets:
            return {}
        if len(sets) == 1:
            return {sets[0][1]: set(sets[0][0])}
        return self._partition(sets)

    def _named_block(self, term, number):
        resolved = resolve_named(term.named, self.named_ports.union(number))
        if not resolved:
            return None
        names = self.intern_names((term.name,))
        return self.intern_block(tuple((p, lo, hi, term.deny, term.http, names) for p, lo, hi in sorted(set(resolved))))

    def _egress_named(self, key, term):
        """Egress named ports resolve against each destination's ports:
        destinations are grouped by what the names resolve to for them."""
        candidates = set()
        for name, dummy in term.named:
            candidates.update(self.named_ports.declared.get(name, ()))
        selected = candidates if key is sc.WILDCARD else candidates & self.cache.selection(key)
        groups = {}
        for number in selected:
            block = self._named_block(term, number)
            if block is not None:
                groups.setdefault(block, set()).add(number)
        return [(frozenset(members), block) for block, members in groups.items()]

    def peer_block(self, policy, peer):
        """The merged block one peer gets from a policy, or None: the same
        answer ``materialize`` gives for it, computed for this peer alone."""
        blocks = []
        for key, block in policy.terms:
            if key is sc.WILDCARD:
                if peer == ident.ANY:
                    blocks.append(block)
            elif peer != ident.ANY and self.cache.contains(key, peer):
                blocks.append(block)
        if peer != ident.ANY:
            for key, term in policy.named_terms:
                if key is sc.WILDCARD or self.cache.contains(key, peer):
                    block = self._named_block(term, peer)
                    if block is not None:
                        blocks.append(block)
        return self.merge(blocks) if blocks else None

    def _partition(self, sets):
        """Partition the peers of several (selection, block) pairs by which
        pairs contain them; each part gets the merge of those blocks.

        Large selections are refined by set algebra (a few C-level set
        operations per part); small ones are added element by element."""
        big = sorted((i for i, (members, dummy) in enumerate(sets) if len(members) > _SMALL_SELECTION),
                     key=lambda i: -len(sets[i][0]))
        small = [i for i, (members, dummy) in enumerate(sets) if len(members) <= _SMALL_SELECTION]
        parts = []
        for i in big:
            remaining = sets[i][0]
            refined = []
            for part, signature in parts:
                if remaining:
                    common = part & remaining
                    if common:
                        if len(common) == len(part):
                            refined.append((part, signature + (i,)))
                        else:
                            refined.append((common, signature + (i,)))
                            refined.append((part - common, signature))
                        remaining = remaining - common
                        continue
                refined.append((part, signature))
            if remaining:
                refined.append((remaining, (i,)))
            parts = refined
        extra = {}
        for i in small:
            for peer in sets[i][0]:
                found = extra.get(peer)
                if found is None:
                    extra[peer] = [i]
                else:
                    found.append(i)
        groups = {}
        for part, signature in parts:
            if extra:
                moved = part.intersection(extra)
                if moved:
                    part = part - moved
                    for peer in moved:
                        block = self._merge_signature(sets, signature + tuple(extra.pop(peer)))
                        groups.setdefault(block, set()).add(peer)
            if part:
                block = self._merge_signature(sets, signature)
                members = groups.get(block)
                if members is None:
                    groups[block] = set(part)
                else:
                    members.update(part)
        for peer, signature in extra.items():
            block = self._merge_signature(sets, tuple(signature))
            groups.setdefault(block, set()).add(peer)
        return groups

    def _merge_signature(self, sets, signature):
        if len(signature) == 1:
            return sets[signature[0]][1]
        return self.merge([sets[i][1] for i in signature])

    def merge(self, blocks):
        """Merge blocks into one (see the module docstring); memoized."""
        if len(blocks) == 1:
            return blocks[0]
        memo_key = tuple(sorted(id(b) for b in blocks))
        found = self._merged.get(memo_key)
        if found is not None:
            return found
        merged = {}
        for block in blocks:
            for protocol, lo, hi, deny, http, names in block:
                key = (protocol, lo, hi, deny)
                current = merged.get(key)
                if current is None:
                    merged[key] = (http, names)
                else:
                    merged[key] = (_merge_http(current[0], http), _merge_names(current[1], names))
        found = self.intern_block(tuple(sorted(
            (k[0], k[1], k[2], k[3], http, self.intern_names(names)) for k, (http, names) in merged.items())))
        self._merged[memo_key] = found
        return found

    # --- references --------------------------------------------------------

    def policy_ref(self, policy):
        """Digest of everything a direction policy depends on: its
        signature (rules and, for ingress named ports, the port map), and
        the current content of the selection behind each of its terms, in
        term order (and of the named ports its egress terms resolve)."""
        direction, digests, port_map = policy.signature
        digest = self.cache.digest
        parts = [direction, ",".join(digests), repr(sorted(port_map)) if port_map else ""]
        parts.extend("-" if key is sc.WILDCARD else "%x" % digest(key) for key, dummy in policy.terms)
        parts.extend("-" if key is sc.WILDCARD else "%x" % digest(key) for key, dummy in policy.named_terms)
        if policy.named_terms:
            parts.append("%x" % self.named_ports.digest({n for dummy, t in policy.named_terms for n, dummy2 in t.named}))
        return hashlib.sha1("\n".join(parts).encode("utf-8")).hexdigest()[:16]


def _merge_http(left, right):
    if left is None or right is None:
        return None  # an L4-only allow cancels L7 restrictions on the same port
    return tuple(sorted(set(left) | set(right), key=repr))


def _merge_names(left, right):
    if left == right:
        return left
    return tuple(sorted(set(left) | set(right)))


def _entry_order(entry):
    return entry[:4]
