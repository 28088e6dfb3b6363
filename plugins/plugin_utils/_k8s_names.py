# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes name and label syntax, as the API server validates it: the one
copy the inventory model (_model.py) and the policy parser
(_policy/parse_common.py) share, so an endpoint's labels and a selector's
keys are held to the same rules."""

from __future__ import annotations

import re

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?\Z")
# IANA service names (RFC 6335 5.1): letters, digits, '-', at least one letter,
# no leading/trailing '-' and no '--'.
_SVC_NAME = re.compile(r"[A-Za-z0-9]+(-[A-Za-z0-9]+)*\Z")
_HAS_LETTER = re.compile(r"[A-Za-z]")

DNS_LABEL_RULE = "DNS-1123 label: lower case letters, digits and '-', at most 63 characters"
DNS_SUBDOMAIN_RULE = ("DNS-1123 subdomain: lower case letters, digits, '-' and '.', at most 253 characters, "
                      "starting and ending with a letter or digit")
LABEL_VALUE_RULE = "at most 63 characters: letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
PORT_NAME_RULE = "IANA service name: at most 15 lower case letters, digits and '-', with a letter, no '--'"


def is_dns_label(text):
    """A namespace name."""
    return isinstance(text, str) and len(text) <= 63 and _DNS_LABEL.match(text) is not None


def is_dns_subdomain(text):
    """An object (endpoint, pod) name."""
    return isinstance(text, str) and len(text) <= 253 and _DNS_SUBDOMAIN.match(text) is not None


def is_label_value(text):
    return isinstance(text, str) and (not text or (len(text) <= 63 and _LABEL_NAME.match(text) is not None))


def is_service_name(text, lower_case=False):
    """An IANA service name (a named port); Kubernetes also wants it lower case."""
    return (isinstance(text, str) and len(text) <= 15 and _SVC_NAME.match(text) is not None
            and _HAS_LETTER.search(text) is not None and (not lower_case or text == text.lower()))


def label_key_error(key, quote=repr):
    """Why ``key`` is not a Kubernetes label key (a qualified name), or None.
    ``quote`` shows the key in the message."""
    if not isinstance(key, str):
        return "label keys must be strings, got %s" % type(key).__name__
    if not key:
        return "label keys must not be empty"
    parts = key.split("/")
    if len(parts) > 2:
        return "%s is not a valid label key (at most one '/')" % quote(key)
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix or not is_dns_subdomain(prefix):
            return "%s is not a valid label key (the prefix before '/' must be a DNS subdomain)" % quote(key)
    if not name or len(name) > 63 or not _LABEL_NAME.match(name):
        return ("%s is not a valid label key (the name must be at most 63 characters: letters, digits, '-', '_' "
                "and '.', starting and ending with a letter or digit)" % quote(key))
    return None


def label_value_error(value, quote=repr):
    """Why ``value`` is not a Kubernetes label value, or None."""
    if not isinstance(value, str):
        return "label values must be strings, got %s" % type(value).__name__
    if not is_label_value(value):
        return "%s is not a valid label value (%s)" % (quote(value), LABEL_VALUE_RULE)
    return None
