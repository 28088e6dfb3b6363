# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read what the datapath reports: counters per reason and direction, drop
events from the ring buffer, and the endpoint configs. Read-only except for
the ring buffer, whose events are consumed as they are read (a ring buffer
has one reader position; unread events stay until read or overwritten by
nothing: a full ring drops new events and counts them as EVENTS_LOST).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes as ct
import glob
import os

from ansible_collections.palisade.ebpf.plugins.module_utils._datapath import abi, bpfsys
from ansible_collections.palisade.ebpf.plugins.module_utils._datapath.errors import missing_bcc


def _pins(bpffs_dir, name):
    """Pinned maps called `name` (normally one; two while a layout changes)."""
    return sorted(glob.glob(os.path.join(bpffs_dir, "maps", "%s-*" % name)))


def counters(bpffs_dir):
    """[{reason, code, direction, packets, bytes}] with non-zero packets (or lost events)."""
    totals = {}
    for path in _pins(bpffs_dir, "metrics"):
        handle = bpfsys.Map(path, abi.MetricsKey, abi.MetricsValue, percpu=True)
        try:
            for raw_key, raw_value in handle.items().items():
                index = abi.from_bytes(abi.MetricsKey, raw_key).index
                summed = handle.percpu_sum(raw_value, ("packets", "bytes"))
                if summed["packets"] or summed["bytes"]:
                    slot = totals.setdefault(index, {"packets": 0, "bytes": 0})
                    slot["packets"] += summed["packets"]
                    slot["bytes"] += summed["bytes"]
        finally:
            handle.close()
    out = []
    for index, value in sorted(totals.items()):
        code, direction = divmod(index, 2)
        name = abi.REASONS.get(code, "REASON_%d" % code)
        out.append({
            "reason": name, "code": code, "drop": abi.is_drop(code),
            "direction": abi.DIR_NAMES[direction] if code != abi.REASON_CODES["EVENTS_LOST"] else None,
            "packets": value["packets"], "bytes": value["bytes"],
        })
    return out


def _event(raw, boot_offset):
    ev = abi.DropEvent.from_buffer_copy(raw[:ct.sizeof(abi.DropEvent)])
    proto = ev.proto
    out = {
        "time_ns": ev.ts,
        "reason": abi.REASONS.get(ev.reason, "REASON_%d" % ev.reason),
        "code": ev.reason,
        "direction": abi.DIR_NAMES.get(ev.dir, str(ev.dir)),
        "ifindex": ev.ifindex,
        "src": abi.u32_to_ip(ev.saddr),
        "dst": abi.u32_to_ip(ev.daddr),
        "src_identity": ev.src_identity,
        "dst_identity": ev.dst_identity,
        "proto": {1: "icmp", 6: "tcp", 17: "udp", 132: "sctp"}.get(proto, str(proto)),
        "length": ev.len,
    }
    if boot_offset is not None:
        out["time"] = round(boot_offset + ev.ts / 1e9, 6)
    if ev.reason == abi.REASON_CODES["DROP_UNKNOWN_L3"]:
        out["ethertype"] = "0x%04x" % abi.be16_to_port(ev.sport)
    elif proto == 1:
        out["icmp_type"] = abi.be16_to_port(ev.dport)
    elif proto in (6, 17, 132):
        out["sport"] = abi.be16_to_port(ev.sport)
        out["dport"] = abi.be16_to_port(ev.dport)
    return out


def _boot_offset():
    """Wall-clock seconds at monotonic zero (bpf_ktime_get_ns is CLOCK_MONOTONIC)."""
    try:
        import time  # pylint: disable=import-outside-toplevel
        return time.time() - time.clock_gettime(time.CLOCK_MONOTONIC)
    except (AttributeError, OSError):
        return None


def drop_events(bpffs_dir, limit):
    """Consume the drop events waiting in the ring buffer; return the last `limit`."""
    try:
        from bcc import libbcc  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise missing_bcc()
    offset = _boot_offset()
    events = []

    def collect(_ctx, data, size):
        events.append(_event(ct.string_at(data, size), offset))
        return 0

    callback = libbcc._RINGBUF_CB_TYPE(collect)  # pylint: disable=protected-access
    for path in _pins(bpffs_dir, "events"):
        fd = bpfsys.obj_get(path)
        if fd is None:
            continue
        ring = libbcc.lib.bpf_new_ringbuf(fd, callback, None)
        try:
            if ring:
                libbcc.lib.bpf_consume_ringbuf(ring)
        finally:
            if ring:
                libbcc.lib.bpf_free_ringbuf(ring)
            bpfsys.close(fd)
    events.sort(key=lambda e: e["time_ns"])
    return events[-limit:] if limit else []


def endpoint_configs(bpffs_dir):
    out = []
    for path in _pins(bpffs_dir, "endpoints"):
        handle = bpfsys.Map(path, abi.EndpointKey, abi.EndpointConfig)
        try:
            for raw_key, raw_value in sorted(handle.items().items()):
                cfg = abi.from_bytes(abi.EndpointConfig, raw_value)
                out.append({
                    "ifindex": abi.from_bytes(abi.EndpointKey, raw_key).ifindex,
                    "ipv4": abi.u32_to_ip(cfg.ipv4),
                    "identity": cfg.identity,
                    "policy_id": cfg.policy_id,
                    "enforce_ingress": bool(cfg.flags & abi.EP_F_ENFORCE_INGRESS),
                    "enforce_egress": bool(cfg.flags & abi.EP_F_ENFORCE_EGRESS),
                })
        finally:
            handle.close()
    return out
