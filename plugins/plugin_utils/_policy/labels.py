# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Label sets and label selectors.

A label is ``(source, key, value)`` (see ir.py); a label set is a frozenset
of labels. Two ways to match a selector:

- ``matches(selector, LabelView(labels))``: one label set, used when a few
  identities appear or disappear (the incremental path);
- ``LabelIndex.select(selector)``: every identity at once, by set algebra over
  an inverted index (label -> identities), so a selector costs a handful of
  set operations instead of one match per identity.

Both implement the same semantics (docs/policy-engine.md, "Selectors"): a
requirement written with source ``any`` matches the key from every source;
``NotIn`` and ``DoesNotExist`` also match identities without the key (as in
Kubernetes); the empty selector ``{}`` selects every identity with ``k8s``
labels, that is every endpoint and nothing reserved or CIDR.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import ir


def label_text(label):
    """``source:key=value;``, one label as it appears in a label string."""
    return "%s:%s=%s;" % label


def label_string(labels):
    """The canonical text of a label set: its labels as ``source:key=value;``,
    sorted and concatenated. Identity numbers are derived from it, so it must
    never change for a given label set."""
    return "".join(sorted(label_text(label) for label in labels))


def format_labels(labels):
    """Human-readable label set for messages and --diff: ``k8s:app=web, ...``."""
    parts = []
    for source, key, value in sorted(labels):
        parts.append("%s:%s=%s" % (source, key, value) if value else "%s:%s" % (source, key))
    return ", ".join(parts)


class LabelView:
    """One label set, indexed for requirement checks: ``(source, key) ->
    value`` and ``key -> values`` for requirements written without a source."""

    __slots__ = ("by_source_key", "by_key")

    def __init__(self, labels):
        self.by_source_key = {}
        self.by_key = {}
        for source, key, value in labels:
            self.by_source_key[(source, key)] = value
            self.by_key.setdefault(key, set()).add(value)

    def values(self, source, key):
        if source == ir.SOURCE_ANY:
            return self.by_key.get(key, ())
        value = self.by_source_key.get((source, key))
        return () if value is None else (value,)


def requirement_matches(requirement, view):
    """One requirement ``(source, key, op, values)`` (an ir.Requirement or
    the plain tuple it compares equal to) against one label set."""
    source, key, op, wanted = requirement
    values = view.values(source, key)
    if op == "In":
        return any(v in wanted for v in values)
    if op == "NotIn":
        return not any(v in wanted for v in values)
    if op == "Exists":
        return bool(values)
    if op == "DoesNotExist":
        return not values
    raise ValueError("unknown selector operator %r" % (op,))


def matches(selector, view):
    """Does the label set behind ``view`` satisfy ``selector`` (an
    ir.Selector or the plain 1-tuple of requirements it compares equal to)?"""
    requirements = selector[0]
    if not requirements:
        return any(source == ir.SOURCE_K8S for source, dummy in view.by_source_key)
    return all(requirement_matches(r, view) for r in requirements)


_EMPTY = frozenset()


class LabelIndex:
    """Inverted index of identities by label, for whole-set selector matching.

    Sets held here are owned by the index: ``select`` never returns one of
    them, only new frozensets.
    """

    def __init__(self):
        self.exact = {}        # (source, key, value) -> set of identity numbers
        self.any_exact = {}    # (key, value) -> set
        self.keyed = {}        # (source, key) -> set
        self.any_keyed = {}    # key -> set
        self.all = set()
        self.k8s = set()       # identities with at least one k8s label (endpoints)

    def add(self, number, labels):
        self.all.add(number)
        for source, key, value in labels:
            self.exact.setdefault((source, key, value), set()).add(number)
            self.any_exact.setdefault((key, value), set()).add(number)
            self.keyed.setdefault((source, key), set()).add(number)
            self.any_keyed.setdefault(key, set()).add(number)
            if source == ir.SOURCE_K8S:
                self.k8s.add(number)

    def remove(self, number, labels):
        self.all.discard(number)
        self.k8s.discard(number)
        for source, key, value in labels:
            for table, index_key in ((self.exact, (source, key, value)), (self.any_exact, (key, value)),
                                     (self.keyed, (source, key)), (self.any_keyed, key)):
                members = table.get(index_key)
                if members is not None:
                    members.discard(number)
                    if not members:
                        del table[index_key]

    def _with_value(self, source, key, values):
        """Identities carrying the key with one of the values."""
        if source == ir.SOURCE_ANY:
            table, keys = self.any_exact, [(key, v) for v in values]
        else:
            table, keys = self.exact, [(source, key, v) for v in values]
        found = [table[k] for k in keys if k in table]
        if not found:
            return _EMPTY
        if len(found) == 1:
            return found[0]
        return set().union(*found)

    def _with_key(self, source, key):
        if source == ir.SOURCE_ANY:
            return self.any_keyed.get(key, _EMPTY)
        return self.keyed.get((source, key), _EMPTY)

    def select(self, selector):
        """Every identity number the selector matches, as a frozenset."""
        requirements = selector[0]
        if not requirements:
            return frozenset(self.k8s)
        positive, negative = [], []
        for source, key, op, values in requirements:
            if op == "In":
                positive.append(self._with_value(source, key, values))
            elif op == "Exists":
                positive.append(self._with_key(source, key))
            elif op == "NotIn":
                negative.append(self._with_value(source, key, values))
            elif op == "DoesNotExist":
                negative.append(self._with_key(source, key))
            else:
                raise ValueError("unknown selector operator %r" % (op,))
        if positive:
            positive.sort(key=len)
            result = set(positive[0])
            for members in positive[1:]:
                if not result:
                    break
                result.intersection_update(members)
        else:
            result = set(self.all)
        for members in negative:
            if not result:
                break
            result.difference_update(members)
        return frozenset(result)
