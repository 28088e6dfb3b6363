# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""HAProxy rendering of the L7 proxy's rules (controller side).

``build_ruleset`` turns one list of canonical HTTP rules (``_want``, which
decides which rules apply to which peer) into named ACLs and per-rule
conditions and header mutations for the frontend; ``hap_quote`` and
``map_text`` write words and map files HAProxy reads back unchanged.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

# Cilium's path regex is matched against the request target's path as
# Envoy's :path sees it, query string included; trace matches the probe's
# whole path the same way. HAProxy's ``pathq`` is that value.
PATH_FETCH = "pathq"

# Header mismatch actions that change the request (LOG only records it).
MUTATING_MISMATCH = ("ADD", "DELETE", "REPLACE")

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


def build_ruleset(rid, canonical):
    """Ruleset ``rid`` for HAProxy from canonical rules (``_want.canonical_rules``):
    ``id``, ``acls`` ([{name, criterion}]), ``rules`` ([{condition,
    mutations, mutation_conditions}]); an empty condition matches every
    request."""
    builder = _RulesetBuilder(rid)
    rules = [builder.rule(rule) for rule in canonical]
    if not rules:
        rules = [{"condition": "", "mutations": [], "mutation_conditions": []}]  # http: [] = allow all
    return {"id": rid, "acls": builder.acls, "rules": rules}


def map_text(entries):
    """A HAProxy map file's text: one sorted "key value" line per entry."""
    lines = []
    for key in sorted(entries, key=str):
        key_text, value_text = str(key), str(entries[key])
        if not key_text or any(c.isspace() for c in key_text) or "\n" in value_text or "\r" in value_text:
            raise ValueError("map entry %r -> %r cannot be written to a HAProxy map" % (key, entries[key]))
        lines.append("%s %s\n" % (key_text, value_text))
    return "".join(lines)
