# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deterministic names shared by the lab, the connection plugin and the modules.

Every rule here is a pure function of inventory data, so the controller, the
lab and each managed host derive the same names without talking to each other.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os

from ansible_collections.palisade.ebpf.plugins.module_utils._defaults import (
    BPFFS_ROOT,
    LAB_PREFIX as DEFAULT_LAB_PREFIX,
    STATE_ROOT,
)

IFNAME_MAX = 15  # IFNAMSIZ - 1
ENDPOINT_GATEWAY = "169.254.1.1"
ENDPOINT_PEER_IFNAME = "eth0"
IFALIAS_PREFIX = "palisade:"  # host-side interfaces the endpoint module created
ADOPTED_IFALIAS_PREFIX = "palisade-adopted:"  # existing interfaces it adopted


def lab_prefix(value=None):
    """The lab prefix: explicit value, else $PALISADE_LAB_PREFIX, else the default."""
    return value or os.environ.get("PALISADE_LAB_PREFIX") or DEFAULT_LAB_PREFIX


def host_netns(inventory_hostname, prefix=None):
    return "%s-h-%s" % (lab_prefix(prefix), inventory_hostname)


def fabric_netns(prefix=None):
    return "%s-fabric" % lab_prefix(prefix)


def bpffs_dir(inventory_hostname, prefix=None):
    """Default pin directory of a host: one per host and lab prefix, so lab
    hosts that share this machine's bpffs never share maps."""
    return "%s/%s-%s" % (BPFFS_ROOT, lab_prefix(prefix), inventory_hostname)


def proxy_dir(inventory_hostname, prefix=None):
    """Default directory of a host's L7 proxy (configuration, maps, pid file,
    control socket): one per host and lab prefix, like the bpffs directory."""
    return "%s/%s-%s/l7proxy" % (STATE_ROOT, lab_prefix(prefix), inventory_hostname)


def endpoint_key(endpoint):
    return "%s/%s" % (endpoint.get("namespace") or "default", endpoint["name"])


def endpoint_netns(endpoint, prefix=None):
    if endpoint.get("netns"):
        return endpoint["netns"]
    return "%s-e-%s-%s" % (lab_prefix(prefix), endpoint.get("namespace") or "default", endpoint["name"])


def _digest(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def endpoint_ifname(endpoint):
    """Host-side interface: the declared one, else 'lxc' + 8 hex digits (11 chars)."""
    if endpoint.get("interface"):
        return endpoint["interface"]
    return "lxc" + _digest(endpoint_key(endpoint))[:8]


def endpoint_macs(endpoint):
    """(endpoint-side MAC, host-side MAC), locally administered unicast."""
    digest = _digest("mac:" + endpoint_key(endpoint))
    tail = ":".join(digest[i:i + 2] for i in range(0, 10, 2))
    return "0a:%s" % tail, "0e:%s" % tail


def endpoint_ifalias(endpoint):
    return IFALIAS_PREFIX + endpoint_key(endpoint)
