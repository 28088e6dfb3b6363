# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host-level datapath settings: what the eBPF templates are rendered with.

Settings are per host (a host var), not per endpoint: changing one changes the
rendering, hence the program hash, hence one compile on that host. Per-endpoint
values never appear here; they live in maps keyed by ifindex (see maps.py).

Map sizes are part of each map's layout id (maps.py), so a size change makes a
new map next to the old one, filled before the new programs are attached.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.palisade.ebpf.plugins.module_utils._defaults import L7_PROXY_PORT

# name -> (default, kind, minimum, maximum). kind: "int" or "bool".
SPEC = {
    # map sizes (entries)
    "endpoints_max": (1024, "int", 1, 65536),
    "ipcache_hosts_max": (131072, "int", 16, 1 << 24),
    "ipcache_prefixes_max": (16384, "int", 16, 1 << 24),
    "policy_max": (262144, "int", 16, 1 << 24),
    "ct_max": (262144, "int", 1024, 1 << 24),
    "frag_max": (8192, "int", 64, 1 << 20),
    "l7_flows_max": (65536, "int", 1024, 1 << 22),
    # ring buffer for drop events, in bytes: a power of two, at least one page
    "events_bytes": (262144, "int", 4096, 1 << 28),
    # conntrack lifetimes, seconds
    "ct_timeout_tcp": (21600, "int", 10, 604800),
    "ct_timeout_tcp_syn": (60, "int", 1, 3600),
    "ct_timeout_tcp_close": (10, "int", 1, 3600),
    "ct_timeout_other": (60, "int", 1, 86400),
    # features
    "icmp_related": (True, "bool", None, None),
    "ipv4_fragments": (True, "bool", None, None),
    "ct_create": (True, "bool", None, None),
    # L7: flows whose policy has HTTP rules are handed to the local proxy's
    # transparent listener (palisade.ebpf.l7proxy) on this port
    "l7_redirect": (False, "bool", None, None),
    "l7_proxy_port": (L7_PROXY_PORT, "int", 1, 65535),
    # steer redirected flows with an nftables TPROXY rule instead of the
    # sk_lookup program (the netfilter fallback; needs python3-nftables)
    "l7_tproxy": (False, "bool", None, None),
    # test only: render a program the verifier rejects
    "inject_verifier_error": (False, "bool", None, None),
}


class SettingsError(ValueError):
    pass


def defaults():
    return dict((name, spec[0]) for name, spec in SPEC.items())


def normalise(settings):
    """Settings with defaults filled in; SettingsError names the bad key."""
    out = defaults()
    for name, value in (settings or {}).items():
        if value is None:
            continue
        if name not in SPEC:
            raise SettingsError("settings.%s: unknown setting (known: %s)" % (name, ", ".join(sorted(SPEC))))
        default, kind, low, high = SPEC[name]
        if kind == "bool":
            if not isinstance(value, bool):
                raise SettingsError("settings.%s: expected true or false, got %r" % (name, value))
        else:
            if isinstance(value, bool) or not isinstance(value, int):
                try:
                    value = int(str(value), 0)
                except ValueError:
                    raise SettingsError("settings.%s: expected an integer, got %r" % (name, value))
            if value < low or value > high:
                raise SettingsError("settings.%s: %d is outside %d..%d" % (name, value, low, high))
        out[name] = value
    ring = out["events_bytes"]
    if ring & (ring - 1):
        raise SettingsError("settings.events_bytes: %d is not a power of two" % ring)
    return out
