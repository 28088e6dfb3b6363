# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the collection owns among the kernel's routes and rules.

An entry is owned when its protocol (rtm_protocol for routes, FRA_PROTOCOL
for rules) is the collection's. Only owned entries are ever replaced or
removed. Routes through an endpoint interface are owned by the endpoint
module (they live and die with the endpoint): ip_route marks them
``delegated`` and neither purges nor reports them.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.palisade.ebpf.plugins.module_utils._naming import ADOPTED_IFALIAS_PREFIX, IFALIAS_PREFIX
from ansible_collections.palisade.ebpf.plugins.module_utils._routing.errors import RoutingError

# Protocols 0-4 mean unspec, redirect, kernel, boot and static (administrator).
# Owning one of them would make ``purge`` delete the kernel's connected routes
# or an administrator's static ones, so a dedicated number is required.
MIN_OWNED_PROTOCOL = 5

ENDPOINT_ALIAS_PREFIXES = (IFALIAS_PREFIX, ADOPTED_IFALIAS_PREFIX)


def validate_protocol(protocol):
    try:
        protocol = int(protocol)
    except (TypeError, ValueError):
        raise RoutingError("protocol must be an integer, got %r" % (protocol,))
    if not MIN_OWNED_PROTOCOL <= protocol <= 255:
        raise RoutingError(
            "protocol %d cannot mark entries owned by this collection: it must be %d-255 "
            "(0-4 are unspec, redirect, kernel, boot and static, and purge would delete "
            "the kernel's or the administrator's entries)" % (protocol, MIN_OWNED_PROTOCOL)
        )
    return protocol


def is_owned(entry, protocol):
    return entry["protocol"] == protocol


def reported(entry, protocol):
    """Owned and not the endpoint module's: what diffs, gathered and purge cover."""
    return is_owned(entry, protocol) and not entry.get("delegated")


def endpoint_interfaces(links):
    """Names of interfaces that palisade.ebpf.endpoint manages (marked by their alias)."""
    return set(info["name"] for info in links.values()
               if (info.get("alias") or "").startswith(ENDPOINT_ALIAS_PREFIXES))


def mark_delegated(routes, links):
    """Mark the routes through endpoint interfaces (in place); return them."""
    delegated = endpoint_interfaces(links)
    for route in routes:
        route["delegated"] = route["dev"] in delegated
    return routes
