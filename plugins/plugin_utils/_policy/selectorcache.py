# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The selector cache: every distinct peer evaluated once per run.

This is the memoization of the LPC 2019 talk (Cilium's SelectorCache): rules
that mention the same selector, entity, CIDR or ipBlock share one entry,
evaluated once against the identity set; its result (a frozenset of identity
numbers) is shared by every rule and subject that uses it. When identities
come and go, ``update`` checks only the changed identities against each
entry and reports which selections changed, so the caller can find the
affected rules (``users``) and policies, and recompute only those.

Selection keys are plain tagged tuples, never the ir peers themselves (ir
namedtuples of different kinds with equal fields compare equal):

    ("selector", ir.Selector)            label selector
    ("entity", name)                     entity other than "all"
    ("cidr", prefix, excepts)            CNP CIDR peer (world and CIDR identities)
    ("ipblock", prefix, excepts)         KNP ipBlock (also endpoint identities)
    ("and", key, key, ...)               intersection (peer selector AND *Requires)

A key built from ir objects and the same key as plain nested tuples (how the
persistent cache stores it) are equal and hash alike, so both work.

The wildcard peer ("all", a missing from/to) is not an entry: it is the
identity 0 of policy entries.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import bisect

from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import identity as ident
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import ir, labels

WILDCARD = None  # the peer key of "every peer"

# Entities by fixed identity numbers; world and cluster add whole kinds.
_ENTITY_NUMBERS = {
    "host": (ident.HOST,), "remote-node": (ident.REMOTE_NODE,), "health": (4,), "init": (5,),
    "unmanaged": (3,), "kube-apiserver": (7,), "ingress": (8,),
    "world": (ident.WORLD,), "world-ipv4": (ident.WORLD,), "world-ipv6": (), "none": (),
    "cluster": (ident.HOST, 3, 4, 5, ident.REMOTE_NODE),
}
_ENTITY_KINDS = {"world": ident.KIND_CIDR, "world-ipv4": ident.KIND_CIDR, "cluster": ident.KIND_ENDPOINT}
ENTITIES = frozenset(_ENTITY_NUMBERS) | {"all"}

MASK64 = (1 << 64) - 1


def mix(number):
    """splitmix64 of an identity number: the per-element hash of the
    order-independent selection digests (a sum of these, so that adding or
    removing one identity updates a digest in O(1))."""
    z = (number + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def peer_key(peer):
    """The selection key of an ir peer (WILDCARD for the entity ``all``)."""
    if isinstance(peer, ir.PeerSelector):
        return ("selector", peer.selector)
    if isinstance(peer, ir.PeerEntity):
        if peer.name == "all":
            return WILDCARD
        if peer.name not in _ENTITY_NUMBERS:
            raise ValueError("unknown entity %r" % (peer.name,))
        return ("entity", peer.name)
    if isinstance(peer, ir.PeerCIDR):
        return ("cidr", peer.prefix, tuple(peer.excepts))
    if isinstance(peer, ir.PeerIPBlock):
        return ("ipblock", peer.prefix, tuple(peer.excepts))
    raise TypeError("not a peer: %r" % (peer,))


def and_key(key, requirement_keys):
    """The key of ``key`` intersected with selector requirements."""
    if not requirement_keys:
        return key
    return ("and", key) + tuple(requirement_keys)


def plain(value):
    """A key (or any nest of tuples) as plain tuples: namedtuples dropped.
    Equal and hashing alike, but cheaper to store and load."""
    if isinstance(value, tuple):
        return tuple(plain(v) for v in value)
    return value


def selector_text(selector):
    """ir.selector_key for an ir.Selector or its plain form."""
    return "&".join("%s:%s %s %s" % (source, key, op, ",".join(values))
                    for source, key, op, values in selector[0]) or "{}"


def key_text(key):
    """Human-readable text of a selection key (``cilium-dbg policy selectors``)."""
    kind = key[0]
    if kind == "selector":
        return selector_text(key[1])
    if kind == "entity":
        return "entity:%s" % key[1]
    if kind in ("cidr", "ipblock"):
        text = "%s:%s" % ("cidr" if kind == "cidr" else "ipBlock", key[1])
        return text + (" except %s" % ",".join(key[2]) if key[2] else "")
    return " AND ".join(key_text(k) for k in key[1:])


def key_prefixes(key):
    """CIDR prefixes a key mentions (they get CIDR identities)."""
    if key is WILDCARD:
        return ()
    if key[0] in ("cidr", "ipblock"):
        return (key[1],) + tuple(key[2])
    if key[0] == "and":
        return tuple(p for k in key[1:] for p in key_prefixes(k))
    return ()


class AddressBook:
    """Endpoint addresses by identity, for KNP ipBlocks (which select an
    endpoint identity only when all its endpoints' addresses are inside):
    sorted (address, identity) pairs for ranges, and each identity's
    addresses for re-checking one identity."""

    def __init__(self, pairs=()):
        pairs = sorted(pairs)
        # Two parallel lists, so that an address range is a bisect slice.
        self.addresses = [a for a, dummy in pairs]
        self.numbers = [n for dummy, n in pairs]
        self.by_number = {}
        for address, number in pairs:
            self.by_number.setdefault(number, []).append(address)

    def add(self, address, number):
        index = bisect.bisect_left(self.addresses, address)
        self.addresses.insert(index, address)
        self.numbers.insert(index, number)
        self.by_number.setdefault(number, []).append(address)

    def remove(self, address, number):
        index = bisect.bisect_left(self.addresses, address)
        while index < len(self.addresses) and self.addresses[index] == address:
            if self.numbers[index] == number:
                del self.addresses[index]
                del self.numbers[index]
                break
            index += 1
        found = self.by_number.get(number)
        if found is not None and address in found:
            found.remove(address)
            if not found:
                del self.by_number[number]

    def numbers_in(self, first, last):
        """Identity numbers with an address in [first, last] (a list slice),
        and whether that range holds every address."""
        lo = bisect.bisect_left(self.addresses, first)
        hi = bisect.bisect_right(self.addresses, last)
        return self.numbers[lo:hi], lo == 0 and hi == len(self.addresses)


def _inside(outer, holes, prefix):
    """Is CIDR ``prefix`` inside ``outer`` and outside every hole?"""
    return ident.prefix_contains(outer, prefix) and not any(ident.prefix_contains(h, prefix) for h in holes)


class SelectorCache:
    """Selections of every distinct key against one identity table."""

    def __init__(self, table, addresses=None, mixes=None):
        self.table = table
        self.addresses = addresses if addresses is not None else AddressBook()
        self.selections = {}     # key -> frozenset of identity numbers
        self.packed = {}         # key -> sorted array of identity numbers (from the persistent cache)
        self.users = {}          # key -> set of opaque user tokens
        self.partial = {}        # ipblock key -> identities only partly inside (warned about)
        self.digests = {}        # key -> order-independent digest of its selection
        self.mixes = mixes if mixes is not None else {number: mix(number) for number in table.numbers()}
        self.evaluations = 0     # keys computed from scratch
        self.lookups = 0         # selection() calls
        self._index = None       # LabelIndex, built when a selector must be evaluated
        self._prefixes = {}      # CIDR text -> (network, length)

    @property
    def index(self):
        """The LabelIndex over every identity of the table (built lazily: a
        run that evaluates no new selector never needs it)."""
        if self._index is None:
            index = labels.LabelIndex()
            for number in self.table.numbers():
                index.add(number, self.table.labels(number))
            self._index = index
        return self._index

    # --- lookups ---------------------------------------------------------

    def selection(self, key, user=None):
        """The identities ``key`` selects; computed on first use, then shared."""
        self.lookups += 1
        if user is not None:
            self.users.setdefault(key, set()).add(user)
        found = self.selections.get(key)
        if found is None:
            packed = self.packed.pop(key, None)
            if packed is not None:
                found = self.selections[key] = frozenset(packed)
            else:
                found = self.selections[key] = self._evaluate(key)
                self.evaluations += 1
        return found

    def keys(self):
        """Every cached key, evaluated or still packed."""
        return list(self.selections) + list(self.packed)

    def size(self, key):
        found = self.selections.get(key)
        return len(found) if found is not None else len(self.packed[key])

    def contains(self, key, number):
        packed = self.packed.get(key)
        if packed is not None:
            index = bisect.bisect_left(packed, number)
            return index < len(packed) and packed[index] == number
        return number in self.selection(key)

    def digest(self, key):
        """Order-independent digest of a selection's content: the sum of
        ``mix`` over its members, plus its size; equal sets, equal digests."""
        found = self.digests.get(key)
        if found is None:
            members = self.selection(key)
            found = self.digests[key] = (sum(map(self.mixes.__getitem__, members))
                                         + len(members) * 0x9E3779B9) & MASK64
        return found

    def remove_user(self, key, user):
        users = self.users.get(key)
        if users is not None:
            users.discard(user)
            if not users:
                del self.users[key]

    def prune(self, keep):
        """Forget selections no rule uses and no key in ``keep`` needs."""
        needed = set(keep) | set(self.users)
        for key in list(needed):
            if key is not WILDCARD and key[0] == "and":
                needed.update(key[1:])
        for key in [k for k in self.keys() if k not in needed]:
            self.selections.pop(key, None)
            self.packed.pop(key, None)
            self.digests.pop(key, None)
            self.partial.pop(key, None)
        for number in [n for n in self.mixes if n not in self.table]:
            del self.mixes[number]

    def dump(self):
        """One line per entry: text, number of identities, number of users."""
        return [{"selector": key_text(key), "identities": self.size(key), "users": len(self.users.get(key, ()))}
                for key in sorted(self.keys(), key=key_text)]

    # --- evaluation ------------------------------------------------------

    def _prefix(self, text):
        found = self._prefixes.get(text)
        if found is None:
            found = self._prefixes[text] = ident.parse_prefix(text)
        return found

    def _evaluate(self, key):
        kind = key[0]
        if kind == "selector":
            return self.index.select(key[1])
        if kind == "entity":
            numbers = set(n for n in _ENTITY_NUMBERS[key[1]] if n in self.table)
            if key[1] in ("world", "world-ipv4"):
                numbers.update(self.table.cidr_numbers)
            elif key[1] == "cluster":
                numbers.update(self.table.endpoint_numbers)
            return frozenset(numbers)
        if kind == "cidr":
            return self._cidr(key[1], key[2])
        if kind == "ipblock":
            return self._ipblock(key)
        if kind == "and":
            parts = sorted((self.selection(k) for k in key[1:]), key=len)
            result = set(parts[0])
            for part in parts[1:]:
                result.intersection_update(part)
            return frozenset(result)
        raise ValueError("unknown selection key %r" % (key,))

    def _cidr(self, prefix, excepts):
        """World and CIDR identities inside ``prefix`` and outside every
        except: the identity an address resolves to (longest prefix in the
        IP table) is then inside exactly when the address is."""
        outer = self._prefix(prefix)
        holes = [self._prefix(e) for e in excepts]
        return frozenset(number for inner, number in self.table.by_prefix.items() if _inside(outer, holes, inner))

    def _ipblock(self, key):
        """CIDR semantics plus endpoint identities whose every endpoint
        address lies inside the prefix and outside the excepts."""
        dummy, prefix, excepts = key
        selected = set(self._cidr(prefix, excepts))
        first, last = ident.prefix_range(self._prefix(prefix))
        inside, everything = self.addresses.numbers_in(first, last)
        good = set(self.table.endpoint_numbers) if everything else set(inside)
        bad = set()
        if not everything:
            if first:
                bad.update(self.addresses.numbers_in(0, first - 1)[0])
            if last < 0xFFFFFFFF:
                bad.update(self.addresses.numbers_in(last + 1, 0xFFFFFFFF)[0])
        for hole in excepts:
            bad.update(self.addresses.numbers_in(*ident.prefix_range(self._prefix(hole)))[0])
        partial = good & bad
        if partial:
            self.partial[key] = frozenset(partial)
        else:
            self.partial.pop(key, None)
        selected.update(n for n in good - bad if n in self.table)
        return frozenset(selected)

    def _member(self, key, number, view):
        """Does ``key`` select identity ``number`` (labels in ``view``)?
        The one-identity counterpart of ``_evaluate``; "and" keys are
        handled by the caller."""
        kind = key[0]
        if kind == "selector":
            return labels.matches(key[1], view)
        identity_kind = self.table.kind(number)
        if kind == "entity":
            return number in _ENTITY_NUMBERS[key[1]] or _ENTITY_KINDS.get(key[1]) == identity_kind
        prefix = self.table.prefix(number) if identity_kind == ident.KIND_CIDR else (0, 0) if number == ident.WORLD \
            else None
        if prefix is not None:
            return _inside(self._prefix(key[1]), [self._prefix(e) for e in key[2]], prefix)
        if kind == "ipblock" and identity_kind == ident.KIND_ENDPOINT:
            return self._ipblock_member(key, number)
        return False

    def _ipblock_member(self, key, number):
        """An endpoint identity is inside an ipBlock when all its endpoints'
        addresses are; some but not all makes it partial (and not selected)."""
        addresses = self.addresses.by_number.get(number, ())
        outer = self._prefix(key[1])
        holes = [self._prefix(e) for e in key[2]]
        inside = [ident.address_in(outer, a) and not any(ident.address_in(h, a) for h in holes) for a in addresses]
        partial = set(self.partial.get(key, ()))
        partial.discard(number)
        if any(inside) and not all(inside):
            partial.add(number)
        if partial:
            self.partial[key] = frozenset(partial)
        else:
            self.partial.pop(key, None)
        return bool(inside) and all(inside)

    # --- incremental -----------------------------------------------------

    def update(self, added=(), removed=(), readdressed=()):
        """Identities were added to / removed from the table (already
        applied there); bring every cached selection up to date by checking
        only those identities. ``readdressed``: endpoint identities whose
        set of addresses changed (ipBlocks re-check them).

        Returns ``{key: (added numbers, removed numbers)}`` for the
        selections that changed.
        """
        removed_numbers = frozenset(i.number for i in removed)
        for identity in removed:
            if self._index is not None:
                self._index.remove(identity.number, identity.labels)
        for identity in added:
            if self._index is not None:
                self._index.add(identity.number, identity.labels)
            self.mixes[identity.number] = mix(identity.number)
        views = [(i.number, labels.LabelView(i.labels)) for i in added]
        added_numbers = frozenset(i.number for i in added)
        recheck = [n for n in readdressed if n in self.table and n not in added_numbers]
        changes = {}
        composite = []
        contains = self.contains
        for key in self.keys():
            kind = key[0]
            if kind == "and":
                composite.append(key)
                continue
            gained = {n for n, view in views if self._member(key, n, view)} if views else set()
            lost = {n for n in removed_numbers if contains(key, n)} if removed_numbers else set()
            if kind == "ipblock":
                for number in recheck:
                    inside = self._ipblock_member(key, number)
                    if inside != contains(key, number):
                        (gained if inside else lost).add(number)
                for number in removed_numbers:
                    self._drop_partial(key, number)
            if gained or lost:
                old = self.selection(key)
                self._replace(key, old, (old - lost) | gained, changes)
        for key in composite:
            if any(k in changes for k in key[1:]):
                old = self.selection(key)
                new = self._evaluate(key)
                if new != old:
                    self._replace(key, old, new, changes)
        return changes

    def _drop_partial(self, key, number):
        found = self.partial.get(key)
        if found is not None and number in found:
            found = found - {number}
            if found:
                self.partial[key] = found
            else:
                del self.partial[key]

    def _replace(self, key, old, new, changes):
        gained, lost = new - old, old - new
        self.selections[key] = new
        digest = self.digests.get(key)
        if digest is not None:
            digest += sum(map(self.mixes.__getitem__, gained)) - sum(map(self.mixes.__getitem__, lost))
            digest += (len(gained) - len(lost)) * 0x9E3779B9
            self.digests[key] = digest & MASK64
        changes[key] = (gained, lost)
