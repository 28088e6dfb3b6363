# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared pieces of the policy parser: error reporting, type checks, label
selectors, CIDRs, ports, HTTP regexes and the canonical ordering of IR tuples.

Every check raises ``ir.PolicyError`` through ``Doc.fail`` with a one-line
message; nothing here lets a Python exception of another type escape for any
input value (the fuzz tests hold it to that).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import difflib
import ipaddress
import json
import re
import warnings

from ansible_collections.palisade.ebpf.plugins.plugin_utils import _k8s_names as k8s
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import ir

# --- Kubernetes name and label syntax (apimachinery validation) ----------

# (the rules themselves: plugin_utils/_k8s_names.py, shared with the model)
# RFC 7230 token (HTTP header field names).
_HTTP_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")

LABEL_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")

# Cilium label sources a selector key may carry ("source:key"); a key without
# one matches any source.
SUPPORTED_SOURCES = (ir.SOURCE_ANY, ir.SOURCE_K8S, ir.SOURCE_RESERVED)
RESERVED_NAMES = (
    "host", "world", "world-ipv4", "world-ipv6", "unmanaged", "health", "init",
    "remote-node", "kube-apiserver", "ingress", "none",
)

# Characters str.splitlines() breaks on: none may reach a message.
_LINE_BREAKS = re.compile("[\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def _escape(match):
    code = ord(match.group())
    return ("\\x%02x" if code < 256 else "\\u%04x") % code


def one_line(text):
    """``text`` with every line-breaking character escaped."""
    return _LINE_BREAKS.sub(_escape, text)


def type_name(value):
    """The YAML-ish name of a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return "a %s" % type(value).__name__


def q(value, limit=80):
    """A scalar shown in a message: JSON-quoted, ASCII, one line, bounded."""
    if isinstance(value, (dict, list, tuple, set)):
        return type_name(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        try:
            text = json.dumps(value, ensure_ascii=True)
        except (TypeError, ValueError, OverflowError):
            text = repr(value)
    else:
        try:
            text = json.dumps(str(value), ensure_ascii=True)
        except Exception:  # pylint: disable=broad-except
            text = "a %s" % type(value).__name__
    if len(text) > limit:
        text = text[:limit - 3] + "..."
    return one_line(text)


_SIMPLE_KEY = re.compile(r"[A-Za-z0-9_.:/$-]+\Z")


def child(path, key):
    """``path`` extended by a mapping key, quoted when it is not plain."""
    if isinstance(key, str) and _SIMPLE_KEY.match(key):
        seg = key
    else:
        seg = "[%s]" % q(key, 40)
        return (path or "") + seg
    return "%s.%s" % (path, seg) if path else seg


def index(path, i):
    return "%s[%d]" % (path, i)


class Doc(object):
    """Error context of one document: origin, kind and display name."""

    def __init__(self, origin):
        self.origin = origin
        self.kind = None
        self.name = None

    def fail(self, field, message):
        raise ir.PolicyError(one_line(str(self.origin)), one_line(field or "document"), one_line(message),
                             self.kind, one_line(self.name) if self.name else None)

    # --- shapes ------------------------------------------------------

    def mapping(self, path, value, allowed, unsupported=None, misplaced=None):
        """Check that ``value`` is a mapping whose keys are all known.

        ``unsupported``: {key: reason} of real Cilium/Kubernetes fields this
        collection does not implement; ``misplaced``: {key: message} of real
        fields that are not valid at this place (e.g. L7 rules in deny rules).
        """
        if not isinstance(value, dict):
            self.fail(path, "must be a mapping, got %s" % type_name(value))
        for key in sorted(value, key=_key_order):
            if isinstance(key, str) and key in allowed:
                continue
            if unsupported and isinstance(key, str) and key in unsupported:
                self.fail(child(path, key), "%s is not supported by palisade.ebpf%s"
                          % (q(key), (" (%s)" % unsupported[key]) if unsupported[key] else ""))
            if misplaced and isinstance(key, str) and key in misplaced:
                self.fail(child(path, key), misplaced[key])
            hint = ""
            if isinstance(key, str):
                close = difflib.get_close_matches(key, list(allowed), n=1)
                if close:
                    hint = "; did you mean %s?" % q(close[0])
            if not hint:
                hint = "; expected one of: %s" % ", ".join(allowed) if allowed else "; no fields are allowed here"
            self.fail(child(path, key), "unknown field %s%s" % (q(key), hint))
        return value

    def list_of(self, path, value, allow_none=True):
        """A list, or [] for None when ``allow_none``."""
        if value is None and allow_none:
            return []
        if not isinstance(value, list):
            self.fail(path, "must be a list, got %s" % type_name(value))
        return value

    def string(self, path, value, what="a string", allow_empty=True):
        if not isinstance(value, str):
            self.fail(path, "must be %s, got %s" % (what, type_name(value)))
        if not allow_empty and not value:
            self.fail(path, "must not be empty")
        return value

    def boolean(self, path, value):
        if not isinstance(value, bool):
            self.fail(path, "must be true or false, got %s" % q(value))
        return value

    def integer(self, path, value, lo, hi, what):
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            self.fail(path, "%s is not a valid %s (an integer from %d to %d)" % (q(value), what, lo, hi))
        return value

    # --- names and labels ---------------------------------------------

    def dns_subdomain(self, path, value):
        self.string(path, value, allow_empty=False)
        if not k8s.is_dns_subdomain(value):
            self.fail(path, "%s is not a valid name (%s)" % (q(value), k8s.DNS_SUBDOMAIN_RULE))
        return value

    def dns_label(self, path, value):
        self.string(path, value, allow_empty=False)
        if not k8s.is_dns_label(value):
            self.fail(path, "%s is not a valid namespace (%s)" % (q(value), k8s.DNS_LABEL_RULE))
        return value

    def label_key(self, path, key):
        error = k8s.label_key_error(key, quote=q)
        if error:
            self.fail(path, error)
        return key

    def label_value(self, path, value):
        """A label value; integers and numbers are taken as their text
        (YAML ``version: 2``), as the inventory model does."""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            self.fail(path, "label values must be strings, got %s" % type_name(value))
        error = k8s.label_value_error(value, quote=q)
        if error:
            self.fail(path, error)
        return value


def _key_order(key):
    return (type(key).__name__, str(key))


# --- selectors ----------------------------------------------------------

SELECTOR_KEYS = ("matchLabels", "matchExpressions")
EXPRESSION_KEYS = ("key", "operator", "values")


def split_source(doc, path, key):
    """Cilium's "source:key" syntax: (source, key). No source means any."""
    if not isinstance(key, str):
        doc.fail(path, "label keys must be strings, got %s" % type_name(key))
    if ":" not in key:
        return ir.SOURCE_ANY, key
    source, rest = key.split(":", 1)
    if source not in SUPPORTED_SOURCES:
        doc.fail(path, "label source %s (in %s) is not supported by palisade.ebpf; use k8s:, any:, reserved: or no source"
                 % (q(source), q(key)))
    if source == ir.SOURCE_RESERVED and rest not in RESERVED_NAMES:
        doc.fail(path, "%s is not a reserved label; reserved labels are: %s" % (q(key), ", ".join(RESERVED_NAMES)))
    return source, rest


def parse_selector(doc, path, raw, cilium, key_prefix=""):
    """A LabelSelector as a list of ir.Requirement (unsorted, not yet scoped).

    ``cilium``: keys may carry a Cilium source prefix (CNP/CCNP); otherwise
    they are plain Kubernetes keys of source k8s (KNP). ``key_prefix`` is
    prepended to every key after validation (KNP namespaceSelector).
    """
    doc.mapping(path, raw, SELECTOR_KEYS)
    reqs = []

    def key_of(kpath, key):
        if cilium:
            source, name = split_source(doc, kpath, key)
        else:
            source, name = ir.SOURCE_K8S, key
        doc.label_key(kpath, name)
        return source, key_prefix + name

    labels = raw.get("matchLabels")
    if labels is not None:
        lpath = child(path, "matchLabels")
        if not isinstance(labels, dict):
            doc.fail(lpath, "must be a mapping of label keys to values, got %s" % type_name(labels))
        for key in sorted(labels, key=_key_order):
            kpath = child(lpath, key)
            source, name = key_of(kpath, key)
            value = doc.label_value(kpath, labels[key])
            reqs.append(ir.Requirement(source, name, "In", (value,)))
    exprs = raw.get("matchExpressions")
    epath = child(path, "matchExpressions")
    for i, expr in enumerate(doc.list_of(epath, exprs)):
        xpath = index(epath, i)
        doc.mapping(xpath, expr, EXPRESSION_KEYS)
        if "key" not in expr:
            doc.fail(child(xpath, "key"), "required")
        source, name = key_of(child(xpath, "key"), expr["key"])
        op = expr.get("operator")
        if op not in LABEL_OPERATORS:
            doc.fail(child(xpath, "operator"), "%s is not a valid selector operator (one of %s)"
                     % (q(op), ", ".join(LABEL_OPERATORS)))
        vpath = child(xpath, "values")
        raw_values = doc.list_of(vpath, expr.get("values"))
        values = tuple(sorted(set(doc.label_value(index(vpath, j), v) for j, v in enumerate(raw_values))))
        if op in ("In", "NotIn") and not values:
            doc.fail(vpath, "must list at least one value for operator %s" % op)
        if op in ("Exists", "DoesNotExist") and values:
            doc.fail(vpath, "must be empty for operator %s" % op)
        reqs.append(ir.Requirement(source, name, op, values))
    return reqs


def selector(reqs):
    return ir.Selector(canon(reqs))


def names_key(reqs, key, sources=(ir.SOURCE_K8S, ir.SOURCE_ANY)):
    """Does one of the requirements name ``key`` (from one of ``sources``)?"""
    return any(r.key == key and r.source in sources for r in reqs)


def uses_reserved(reqs):
    return any(r.source == ir.SOURCE_RESERVED for r in reqs)


def namespace_is(namespace):
    return ir.Requirement(ir.SOURCE_K8S, ir.LABEL_NAMESPACE, "In", (namespace,))


NAMESPACE_EXISTS = ir.Requirement(ir.SOURCE_K8S, ir.LABEL_NAMESPACE, "Exists", ())


# --- CIDRs --------------------------------------------------------------

def ipv4_prefix(doc, path, value, bare_ip=False, strict=False):
    """An IPv4 prefix in canonical text form ("10.0.0.0/8").

    ``bare_ip``: an address without a length is a /32 (Cilium fromCIDR).
    ``strict``: host bits set beyond the length are an error (Kubernetes)
    rather than masked away (Cilium).
    """
    doc.string(path, value, "an IPv4 CIDR like 10.0.0.0/8", allow_empty=False)
    text = value.strip()
    if "/" not in text and not bare_ip:
        doc.fail(path, "%s is not a CIDR (write it with a prefix length, like 10.0.0.0/8)" % q(value))
    if "/" in text and not text.split("/", 1)[1].isdigit():
        doc.fail(path, "%s is not a valid CIDR" % q(value))
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        doc.fail(path, "%s is not a valid CIDR (%s)" % (q(value), one_line(str(exc))))
    if net.version != 4:
        doc.fail(path, "%s: IPv6 is not supported by palisade.ebpf (IPv4 only)" % q(value))
    if strict:
        try:
            ipaddress.ip_network(text, strict=True)
        except ValueError:
            doc.fail(path, "%s has bits set beyond the prefix length (did you mean %s?)" % (q(value), q(str(net))))
    return net


def prefix_sort_key(net):
    return (int(net.network_address), net.prefixlen)


def excepts(doc, path, raw, net, strict_subset):
    """Sorted canonical except prefixes, each inside ``net``.

    ``strict_subset``: an except equal to the prefix is an error (Kubernetes);
    Cilium only requires containment.
    """
    out = set()
    for i, value in enumerate(doc.list_of(path, raw)):
        epath = index(path, i)
        ex = ipv4_prefix(doc, epath, value, strict=strict_subset)
        if ex.prefixlen < net.prefixlen or not ex.subnet_of(net):
            doc.fail(epath, "%s is not inside %s" % (q(value), q(str(net))))
        if strict_subset and ex.prefixlen == net.prefixlen:
            doc.fail(epath, "%s must be a strict subset of cidr %s, not all of it" % (q(value), q(str(net))))
        out.add(ex)
    return tuple(str(n) for n in sorted(out, key=prefix_sort_key))


# --- ports --------------------------------------------------------------

is_service_name = k8s.is_service_name


# --- HTTP ---------------------------------------------------------------

def http_regex(doc, path, value):
    """A method/path/host pattern: None when empty, else a string that both
    Python's ``re`` and POSIX extended regex/RE2 (what Cilium validates with)
    accept. Python-only constructs are rejected: they would not mean the
    same in the proxy."""
    if value is None:
        return None
    doc.string(path, value, "a regular expression (string)")
    if value == "":
        return None
    problem = non_posix_construct(value)
    if problem:
        doc.fail(path, "%s is not a POSIX extended regular expression: %s is not supported" % (q(value), problem))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            re.compile(value)
    except re.error as exc:
        doc.fail(path, "%s is not a valid regular expression: %s" % (q(value), one_line(str(exc))))
    except Exception as exc:  # pylint: disable=broad-except
        doc.fail(path, "%s is not a valid regular expression: %s" % (q(value), one_line(str(exc)) or type(exc).__name__))
    return value


_BOUNDED_REPEAT = re.compile(r"\{\d*(,\d*)?\}\Z")


def non_posix_construct(pattern):
    """The first construct in ``pattern`` that Python accepts but POSIX ERE
    and RE2 do not (backreferences, lookaround, atomic groups, possessive
    quantifiers, conditionals, comments), or None."""
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 < n and pattern[i + 1] in "123456789":
                return "a backreference (\\%s)" % pattern[i + 1]
            i += 2
            continue
        if c == "[":
            i = _skip_class(pattern, i)
            continue
        if c == "(" and pattern.startswith("(?", i):
            rest = pattern[i + 2:i + 4]
            for head, what in (("=", "a lookahead (?=...)"), ("!", "a negative lookahead (?!...)"),
                               ("<=", "a lookbehind (?<=...)"), ("<!", "a negative lookbehind (?<!...)"),
                               (">", "an atomic group (?>...)"), ("(", "a conditional (?(...)...)"),
                               ("#", "a comment (?#...)"), ("P=", "a named backreference (?P=...)")):
                if rest.startswith(head):
                    return what
        if c == "+" and i > 0:
            prev = pattern[i - 1]
            escaped = i > 1 and pattern[i - 2] == "\\"
            if not escaped and (prev in "*+?" or (prev == "}" and _BOUNDED_REPEAT.search(pattern[:i]))):
                return "a possessive quantifier (%s+)" % prev
        i += 1
    return None


def _skip_class(pattern, i):
    """Index just past the bracket expression starting at ``pattern[i]``."""
    n = len(pattern)
    j = i + 1
    if j < n and pattern[j] == "^":
        j += 1
    if j < n and pattern[j] == "]":
        j += 1
    while j < n:
        c = pattern[j]
        if c == "\\":
            j += 2
            continue
        if c == "[" and j + 1 < n and pattern[j + 1] in ":.=":
            end = pattern.find(pattern[j + 1] + "]", j + 2)
            if end != -1:
                j = end + 2
                continue
        if c == "]":
            return j + 1
        j += 1
    return n


def header_line(doc, path, value):
    """A ``headers`` entry as "Name: value" or "Name" (presence). Like Cilium,
    the name ends at the first space and may carry a trailing ':'."""
    doc.string(path, value, "a header line (\"Name: value\" or \"Name\")", allow_empty=False)
    text = value.strip()
    if " " in text:
        name, rest = text.split(" ", 1)
        rest = rest.strip()
    else:
        name, rest = text, ""
    name = name[:-1] if name.endswith(":") else name
    if not name or not _HTTP_TOKEN.match(name):
        doc.fail(path, "%s does not start with a valid header name (write \"Name: value\" or \"Name\")" % q(value))
    if any(ord(ch) < 32 and ch != "\t" or ord(ch) == 127 for ch in rest):
        doc.fail(path, "%s: header values must not contain control characters" % q(value))
    return "%s: %s" % (name, rest) if rest else name


def header_name(doc, path, value):
    doc.string(path, value, "a header name", allow_empty=False)
    if not _HTTP_TOKEN.match(value):
        doc.fail(path, "%s is not a valid header name" % q(value))
    return value


# --- canonical order ----------------------------------------------------

def canon_key(value):
    """Total order over IR values (None, bools, ints, strings, tuples)."""
    if value is None:
        return (0,)
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int):
        return (2, value)
    if isinstance(value, str):
        return (3, value)
    if isinstance(value, tuple):
        return (4, type(value).__name__, tuple(canon_key(v) for v in value))
    return (5, type(value).__name__, repr(value))


def canon(items):
    """Sorted tuple of the distinct ``items``."""
    return tuple(sorted(set(items), key=canon_key))
