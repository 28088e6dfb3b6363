# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Security identities: numbers derived from label sets.

Every host must agree on them in every run, ``--limit`` included, without
talking to the others, so a number depends only on its own label set
(docs/policy-engine.md, "Identity numbers"): ``sha256`` of the canonical
label string folded into [256, 2^32-1]. The rare collision is resolved by
rehashing with a ``#n`` suffix, in lexicographic order of the colliding
label strings, and reported.

Three kinds of identities exist:

- reserved (fixed numbers 1-8: host, world, remote-node, ...);
- endpoint identities, one per distinct set of identity labels;
- CIDR identities, one per prefix the policies mention (CIDR peers, KNP
  ipBlocks and their excepts), labelled ``cidr:<p>`` for every prefix that
  contains it plus ``reserved:world``. 0.0.0.0/0 is world itself.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
from collections import namedtuple

from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import ir, labels as labels_mod

ANY = 0  # "any peer" in policy entries; never an identity
RESERVED = (
    ("host", 1), ("world", 2), ("unmanaged", 3), ("health", 4), ("init", 5),
    ("remote-node", 6), ("kube-apiserver", 7), ("ingress", 8),
)
HOST = 1
WORLD = 2
REMOTE_NODE = 6
FIRST_DERIVED = 256
LAST_DERIVED = 2 ** 32 - 1

KIND_RESERVED = "reserved"
KIND_ENDPOINT = "endpoint"
KIND_CIDR = "cidr"

# An identity: its number, kind, label set (frozenset of labels), canonical
# label string, and for CIDR identities the prefix as (network int, length).
Identity = namedtuple("Identity", "number kind labels text prefix")

# A resolved hash collision: ``text`` got ``number`` on rehash ``attempt``
# because ``holder`` (lexicographically first) kept the plain hash.
Collision = namedtuple("Collision", "text number attempt holder")

# Keys every endpoint identity gets from the system; an inventory label with
# one of these keys cannot override them (as the Kubernetes API server and
# Cilium set them, whatever the pod says).
_SYSTEM_KEYS = (ir.LABEL_NAMESPACE, ir.LABEL_CLUSTER)


def hash_number(text):
    """The plain hash of a label string, in [256, 2^32-1]."""
    value = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:4], "big")
    return FIRST_DERIVED + value % (LAST_DERIVED - FIRST_DERIVED + 1)


def allocate(texts):
    """Numbers for label strings: ``({text: number}, [Collision])``.

    Deterministic for a given set of strings: each string keeps its plain
    hash unless a lexicographically smaller string has the same hash; then it
    takes the first of ``hash(text + "#1")``, ``"#2"``, ... that no string
    holds as its plain hash and no earlier rehash took.
    """
    texts = sorted(set(texts))
    groups = {}
    for text in texts:
        groups.setdefault(hash_number(text), []).append(text)
    numbers = {}
    collisions = []
    taken = set(groups)
    for number, group in sorted(groups.items(), key=lambda item: item[1][0]):
        numbers[group[0]] = number
        for text in group[1:]:
            attempt = 0
            while True:
                attempt += 1
                candidate = hash_number("%s#%d" % (text, attempt))
                if candidate not in taken:
                    break
            taken.add(candidate)
            numbers[text] = candidate
            collisions.append(Collision(text, candidate, attempt, group[0]))
    return numbers, collisions


# --- label sets ------------------------------------------------------------

def endpoint_labels(labels, namespace, namespace_labels):
    """Identity labels of an endpoint: its inventory labels (source k8s), its
    namespace, the cluster, and its namespace's labels under
    ``io.cilium.k8s.namespace.labels.``."""
    result = set()
    for key, value in labels.items():
        if key in _SYSTEM_KEYS or key.startswith(ir.LABEL_NAMESPACE_LABELS):
            continue
        result.add((ir.SOURCE_K8S, key, value))
    result.add((ir.SOURCE_K8S, ir.LABEL_NAMESPACE, namespace))
    result.add((ir.SOURCE_K8S, ir.LABEL_CLUSTER, ir.CLUSTER_NAME))
    for key, value in namespace_labels.items():
        result.add((ir.SOURCE_K8S, ir.LABEL_NAMESPACE_LABELS + key, value))
    return frozenset(result)


def reserved_labels(name):
    return frozenset([(ir.SOURCE_RESERVED, name, "")])


# --- IPv4 prefixes as (network int, prefix length) --------------------------

def parse_prefix(text):
    """``"10.0.0.0/8"`` -> ``(0x0a000000, 8)``; host bits must be zero."""
    address, dummy, length = text.partition("/")
    length = int(length) if length else 32
    octets = address.split(".")
    if len(octets) != 4 or not 0 <= length <= 32:
        raise ValueError("%r is not an IPv4 prefix" % (text,))
    value = 0
    for octet in octets:
        part = int(octet)
        if not 0 <= part <= 255:
            raise ValueError("%r is not an IPv4 prefix" % (text,))
        value = value << 8 | part
    if value & ~_mask(length) & 0xFFFFFFFF:
        raise ValueError("%r has host bits set" % (text,))
    return value, length


def parse_address(text):
    return parse_prefix(text + "/32")[0] if "/" not in text else parse_prefix(text)[0]


def _mask(length):
    return (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF if length else 0


def format_address(value):
    return "%d.%d.%d.%d" % (value >> 24, value >> 16 & 255, value >> 8 & 255, value & 255)


def format_prefix(prefix):
    return "%s/%d" % (format_address(prefix[0]), prefix[1])


def prefix_contains(outer, inner):
    """Is prefix ``inner`` (network, length) inside prefix ``outer``?"""
    return outer[1] <= inner[1] and (inner[0] & _mask(outer[1])) == outer[0]


def address_in(prefix, address):
    return (address & _mask(prefix[1])) == prefix[0]


def prefix_range(prefix):
    """First and last address of a prefix, as ints."""
    return prefix[0], prefix[0] | (~_mask(prefix[1]) & 0xFFFFFFFF)


def cidr_labels(prefix):
    """Labels of the CIDR identity of ``prefix``: ``cidr:<p>`` for ``prefix``
    and every shorter prefix containing it, and ``reserved:world``."""
    network, length = prefix
    result = {(ir.SOURCE_RESERVED, "world", "")}
    for shorter in range(length, -1, -1):
        result.add((ir.SOURCE_CIDR, format_prefix((network & _mask(shorter), shorter)), ""))
    return frozenset(result)


# --- the table ---------------------------------------------------------------

def parse_label_string(text):
    """The label set behind a canonical label string (inverse of
    labels.label_string: label keys and values never contain ':', '=' or ';')."""
    result = []
    for part in text.split(";"):
        if part:
            source, dummy, rest = part.partition(":")
            key, dummy, value = rest.partition("=")
            result.append((source, key, value))
    return frozenset(result)


class IdentityTable:
    """Every identity of one run: number -> (kind, label string, prefix),
    with label sets parsed from the label string on demand (a table loaded
    from the persistent cache never needs most of them)."""

    def __init__(self):
        self.rows = {}           # number -> (kind, text or None, prefix or None)
        self.by_text = {}
        self.by_prefix = {}      # (network, length) -> number, CIDR identities and world
        self.endpoint_numbers = set()
        self.cidr_numbers = set()
        self.collisions = []
        self._labels = {}
        for name, number in RESERVED:
            self.rows[number] = (KIND_RESERVED, None, None)
            self._labels[number] = reserved_labels(name)
        self.by_prefix[(0, 0)] = WORLD

    def __contains__(self, number):
        return number in self.rows

    def __len__(self):
        return len(self.rows)

    def numbers(self):
        return self.rows.keys()

    def kind(self, number):
        return self.rows[number][0]

    def text(self, number):
        return self.rows[number][1]

    def prefix(self, number):
        return self.rows[number][2]

    def labels(self, number):
        found = self._labels.get(number)
        if found is None:
            found = self._labels[number] = parse_label_string(self.rows[number][1])
        return found

    def identity(self, number):
        kind, text, prefix = self.rows[number]
        return Identity(number, kind, self.labels(number), text, prefix)

    def _add(self, number, kind, text, prefix, label_set=None):
        self.rows[number] = (kind, text, prefix)
        if label_set is not None:
            self._labels[number] = label_set
        self.by_text[text] = number
        if kind == KIND_ENDPOINT:
            self.endpoint_numbers.add(number)
        elif kind == KIND_CIDR:
            self.cidr_numbers.add(number)
            self.by_prefix[prefix] = number

    def _remove(self, number):
        identity = self.identity(number)
        del self.rows[number]
        self._labels.pop(number, None)
        self.by_text.pop(identity.text, None)
        self.endpoint_numbers.discard(number)
        if identity.kind == KIND_CIDR:
            self.cidr_numbers.discard(number)
            self.by_prefix.pop(identity.prefix, None)
        return identity

    @classmethod
    def build(cls, endpoint_label_sets, prefixes):
        """The table for these endpoint label sets and CIDR prefixes
        ((network, length) pairs; /0 is world and gets no identity of its own)."""
        table = cls()
        candidates = {}
        for label_set in endpoint_label_sets:
            candidates[labels_mod.label_string(label_set)] = (KIND_ENDPOINT, label_set, None)
        for prefix in prefixes:
            if prefix[1] == 0:
                continue
            label_set = cidr_labels(prefix)
            candidates[labels_mod.label_string(label_set)] = (KIND_CIDR, label_set, prefix)
        numbers, table.collisions = allocate(candidates)
        for text, (kind, label_set, prefix) in candidates.items():
            table._add(numbers[text], kind, text, prefix, label_set)
        return table

    @classmethod
    def restore(cls, rows, collisions):
        """A table from ``export()`` data."""
        table = cls()
        for number, (kind, text, prefix) in rows.items():
            table._add(number, kind, text, prefix)
        table.collisions = [Collision(*c) for c in collisions]
        return table

    def export(self):
        """Plain data for the persistent cache: derived identities only."""
        rows = {n: row for n, row in self.rows.items() if row[0] != KIND_RESERVED}
        return rows, [tuple(c) for c in self.collisions]

    def text_collides(self, text):
        """Would adding or removing ``text`` change another identity's number?
        True when its plain hash is held by an identity other than its own,
        or when it took part in a resolved collision."""
        row = self.rows.get(hash_number(text))
        if row is not None and row[1] != text:
            return True
        return any(text in (c.text, c.holder) for c in self.collisions)

    def update(self, added, removed):
        """Apply label-set changes in place, when no collision is involved.

        ``added``: {text: (kind, label_set, prefix)}; ``removed``: texts.
        Returns ``(added identities, removed identities)``, or None when a
        collision makes a full rebuild necessary (numbers could move).
        """
        fresh = [text for text in added if text not in self.by_text]
        if len({hash_number(text) for text in fresh}) < len(fresh):
            return None
        if any(self.text_collides(text) for text in fresh) or any(self.text_collides(text) for text in removed):
            return None
        gone = [self._remove(self.by_text[text]) for text in removed if text in self.by_text]
        new = []
        for text in sorted(fresh):
            kind, label_set, prefix = added[text]
            number = hash_number(text)
            self._add(number, kind, text, prefix, label_set)
            new.append(self.identity(number))
        return new, gone

    def describe(self, number):
        """Short human description: reserved name, CIDR, or endpoint labels."""
        if number == ANY:
            return "any"
        if number not in self.rows:
            return "unknown identity %d" % number
        kind = self.kind(number)
        if kind == KIND_RESERVED:
            return "reserved:%s" % next(iter(self.labels(number)))[1]
        if kind == KIND_CIDR:
            return "cidr:%s" % format_prefix(self.prefix(number))
        return labels_mod.format_labels(self.labels(number))
