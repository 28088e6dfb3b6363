# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks of single values shared by the route and rule normal forms, and
the attribute view of a netlink message they both parse."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.palisade.ebpf.plugins.module_utils._routing.errors import RoutingError
from ansible_collections.palisade.ebpf.plugins.module_utils._routing.names import UINT32_MAX

IFNAMSIZ = 16


def ifname(value, where):
    name = str(value).strip()
    if not name or len(name) >= IFNAMSIZ or "/" in name or any(c.isspace() for c in name):
        raise RoutingError("%s: %r is not a valid interface name (1-15 characters, no '/' or spaces)" % (where, value))
    return name


def uint(value, where, maximum=UINT32_MAX):
    if isinstance(value, bool):
        raise RoutingError("%s: %r is not a number" % (where, value))
    try:
        number = int(value, 0) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        raise RoutingError("%s: %r is not a number" % (where, value))
    if not 0 <= number <= maximum:
        raise RoutingError("%s: %d is out of range (0-%d)" % (where, number, maximum))
    return number


def reject_unknown_keys(spec, allowed, where):
    unknown = sorted(set(spec) - set(allowed))
    if unknown:
        raise RoutingError("%s: unsupported option(s) %s" % (where, ", ".join(unknown)))


def attr_map(msg):
    """Netlink attributes as {name: value}: first occurrence wins, as in the kernel.

    Works on pyroute2 messages (attrs are nla slots indexable as [0]/[1]) and
    on plain dicts with ``attrs`` as a list of (name, value) pairs.
    """
    out = {}
    for item in msg.get("attrs") or ():
        name, value = item[0], item[1]
        if name not in out:
            out[name] = value
    return out
