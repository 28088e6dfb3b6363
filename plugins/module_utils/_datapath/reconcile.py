# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reconcile one host's datapath (maps, programs, tc attachments) to its
desired state; the engine behind palisade.ebpf.datapath.

Order of a run (each step only when something differs):

1. observe: pinned maps and their entries, cached programs, tc filters;
   plan every write (plan.py) and check the maps can hold old + new;
2. compile the rendering if it is not cached (or its maps were replaced);
   a compile or verifier failure stops here with nothing changed;
3. map writes up to the new endpoint configs (plan.ORDER);
4. attach/replace the programs on every endpoint (atomic replace);
5. detach from interfaces that are no longer endpoints;
6. remove stale policy nodes, finish configs, remove stale endpoints and
   ipcache prefixes;
7. unpin programs and maps of earlier renderings/layouts.

Check mode runs step 1 only and reports the plan.

The result follows module_utils/_result.py: ``changes`` are the writes one
line each, ``before``/``after`` a summary (summary.py), ``after`` predicted
from the plan (every write either succeeds or the run fails).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import fcntl
import glob
import hashlib
import os
import platform
import re
import shutil
import time

from ansible_collections.palisade.ebpf.plugins.module_utils import _result
from ansible_collections.palisade.ebpf.plugins.module_utils._datapath import (
    bpfsys,
    maps,
    netns_link,
    plan as dp_plan,
    programs,
    settings as dp_settings,
    state as dp_state,
    summary as dp_summary,
    tc as dp_tc,
    tproxy as dp_tproxy,
)
from ansible_collections.palisade.ebpf.plugins.module_utils._datapath.errors import (
    DatapathError,
    MapFullError,
    missing_bpffs,
    missing_kernel_feature,
)

MIN_KERNEL = (5, 11)  # bpf_ktime_get_coarse_ns (5.11), BPF ring buffer (5.8); the rest is older


def preflight(bpffs_dir):
    """One-line errors for what this host lacks, before anything else."""
    bpfsys.lib()  # bcc (and its libbpf) importable
    match = re.match(r"(\d+)\.(\d+)", platform.release())
    if match and (int(match.group(1)), int(match.group(2))) < MIN_KERNEL:
        raise missing_kernel_feature("bpf_ktime_get_coarse_ns and BPF ring buffers", "Linux %d.%d or later" % MIN_KERNEL)
    probe = bpffs_dir
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not bpfsys.is_bpffs(probe):
        raise missing_bpffs(bpffs_dir)


class Lock(object):
    """One reconcile per bpffs directory at a time."""

    def __init__(self, bpffs_dir):
        base = "/run/lock" if os.path.isdir("/run/lock") else "/tmp"
        digest = hashlib.sha256(bpffs_dir.encode("utf-8")).hexdigest()[:12]
        self.path = os.path.join(base, "palisade-datapath-%s.lock" % digest)
        self.fd = None

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        return False


def map_path(bpffs_dir, spec, settings):
    return os.path.join(bpffs_dir, "maps", spec.pin_name(settings))


def _check_map(spec, settings, info, path):
    want = (spec.map_type, spec.key_size(), spec.value_size(), spec.max_entries(settings))
    have = (info["type"], info["key_size"], info["value_size"], info["max_entries"])
    if want != have:
        raise DatapathError("the map pinned at %s is not the one this datapath expects (type, key size, value size, "
                            "max entries: %s, expected %s); remove the pin and re-run" % (path, have, want))


class ProgramNotHeld(DatapathError):
    """The run must compile a rendering whose source was not sent (only its
    hash): the controller sends it on a second attempt."""


class Reconciler(object):

    def __init__(self, raw_state, raw_settings, source, check_mode, ipr_factory, source_hash=None):
        self.state = dp_state.validate(raw_state)
        self.settings = dp_settings.normalise(raw_settings)
        self.source = source
        self.source_hash = programs.source_hash(source) if source else source_hash
        self.check_mode = check_mode
        self.ipr_factory = ipr_factory
        self.bpffs_dir = self.state["bpffs_dir"]
        self.changes = []
        self.warnings = []
        self.writes = dict((name, 0) for name in maps.RECONCILED)
        self.attachments = {"attached": 0, "replaced": 0, "detached": 0}
        self.timings = {}

    # -- observation -----------------------------------------------------------
    def _open_maps(self):
        """{name: bpfsys.Map} for the wanted layouts that are pinned."""
        opened = {}
        for spec in maps.MAPS:
            if spec.name not in maps.RECONCILED:
                continue
            path = map_path(self.bpffs_dir, spec, self.settings)
            handle = bpfsys.Map.open(path, spec.key, spec.value)
            if handle is not None:
                _check_map(spec, self.settings, handle.info, path)
                opened[spec.name] = handle
        return opened

    def _pinned_map_ids(self):
        """ids of every wanted map, or None when one is not pinned."""
        ids = set()
        for spec in maps.MAPS:
            fd = bpfsys.obj_get(map_path(self.bpffs_dir, spec, self.settings))
            if fd is None:
                return None
            try:
                info = bpfsys.map_info(fd)
                _check_map(spec, self.settings, info, map_path(self.bpffs_dir, spec, self.settings))
                ids.add(info["id"])
            finally:
                bpfsys.close(fd)
        return ids

    def _pins(self):
        try:
            return sorted(os.listdir(os.path.join(self.bpffs_dir, "maps")))
        except OSError:
            return []

    def _stale_pins(self):
        wanted = set(spec.pin_name(self.settings) for spec in maps.MAPS)
        return [name for name in self._pins() if name not in wanted]

    # -- the run -----------------------------------------------------------------
    def present(self):
        started = time.time()
        preflight(self.bpffs_dir)
        with Lock(self.bpffs_dir):
            ipr = self.ipr_factory()
            try:
                return self._present(ipr, started)
            finally:
                ipr.close()

    def _present(self, ipr, started):
        tcx = dp_tc.TC(ipr)
        links = tcx.links()
        names = dict((index, name) for name, index in links.items())
        filters = tcx.all_filters()
        ids = dp_state.policy_ids(self.state["policies"])
        namer = dp_plan.Namer(self.state, ids, links)

        # Maps: want / have / diff.
        opened = self._open_maps()
        try:
            have = dict((name, handle.items()) for name, handle in opened.items())
            policy_entries, masks = dp_plan.want_policies(self.state, ids)
            endpoints, missing = dp_plan.want_endpoints(self.state, links, ids, masks)
            host, prefix = dp_plan.want_ipcache(self.state, links)
            want = {"policy": policy_entries, "endpoints": endpoints, "ipcache_host": host, "ipcache_prefix": prefix}
            self._missing_interfaces(missing)
            ops = dp_plan.plan(want, have, namer)
            dp_plan.check_capacity(ops, have, dict((s.name, s.max_entries(self.settings)) for s in maps.MAPS))
            self.timings["observe_maps"] = round(time.time() - started, 4)

            # Programs: the cache, and whether it is bound to today's maps.
            digest = self.source_hash
            loaded = programs.open_cached(self.bpffs_dir, digest)
            map_ids = self._pinned_map_ids()
            compile_reason = None
            if loaded is None:
                compile_reason = "not compiled yet" if not programs.cached_hashes(self.bpffs_dir) else "new rendering"
            elif map_ids is None or loaded.map_ids() != map_ids:
                compile_reason = "its maps were replaced"
                loaded.close()
                loaded = None
            missing_maps = [spec.pin_name(self.settings) for spec in maps.MAPS
                            if not os.path.exists(map_path(self.bpffs_dir, spec, self.settings))]
            if compile_reason and not self.source and not self.check_mode:
                raise ProgramNotHeld("rendering %s: %s on this host, and its source was not sent" % (digest, compile_reason))
            if compile_reason:
                self.changes.append("+ program %s: compile (%s)" % (digest, compile_reason))
            for name in missing_maps:
                self.changes.append("+ map %s: create" % name)

            # Attachments: tc, and the socket-steering program of the L7 redirect.
            wanted, attach, detach = self._plan_tc(filters, links, loaded, digest)
            l7, by_tproxy = self.settings["l7_redirect"], self.settings["l7_tproxy"]
            steering = netns_link.Steering(self.bpffs_dir, l7 and not by_tproxy,
                                           loaded.prog_id(netns_link.PROGRAM) if loaded is not None else None, digest)
            tproxy = dp_tproxy.Tproxy(l7 and by_tproxy, self.settings["l7_proxy_port"])
            stale_pins = self._stale_pins()
            stale_progs = [d for d in programs.cached_hashes(self.bpffs_dir) if d != digest]
            before = dp_summary.summary(
                programs.cached_hashes(self.bpffs_dir), self._pins(), dp_summary.attached_from_filters(filters, names),
                [how for how, there in ((dp_summary.SK_LOOKUP, steering.present), (dp_summary.TPROXY, tproxy.present))
                 if there],
                dict((name, len(entries)) for name, entries in have.items()))
            after = dp_summary.summary(
                [digest], [spec.pin_name(self.settings) for spec in maps.MAPS],
                self._attached_after(wanted, names, digest),
                [dp_summary.TPROXY if by_tproxy else dp_summary.SK_LOOKUP] if l7 else [],
                dict((name, len(entries)) for name, entries in want.items()))
            self.changes.extend(op.line for op in ops if op.line)
            for item in attach:
                self.changes.append(item["line"])
            for item in detach:
                self.changes.append(item["line"])
            if steering.line:
                self.changes.append(steering.line)
            else:
                steering = None
            if tproxy.line:
                self.changes.append(tproxy.line)
            else:
                tproxy = None
            for name in stale_pins:
                self.changes.append("- map %s: unpin (earlier layout)" % name)
            for name in stale_progs:
                self.changes.append("- program %s: unpin (earlier rendering)" % name)

            changed = bool(compile_reason or missing_maps or ops or attach or detach or steering or tproxy
                           or stale_pins or stale_progs)
            program = {"hash": digest, "compiled": False}
            if changed and not self.check_mode:
                self._apply(opened, ops, attach, detach, (steering, tproxy), loaded, digest, compile_reason, tcx,
                            program)
                programs.remove_stale(self.bpffs_dir, digest)
                for name in stale_pins:
                    os.unlink(os.path.join(self.bpffs_dir, "maps", name))
            elif loaded is not None:
                loaded.close()
        finally:
            for handle in opened.values():
                handle.close()
        if self.check_mode:
            for op in ops:
                self.writes[op.map] += 1
            self.attachments["attached"] = sum(1 for a in attach if a["kind"] == "attach")
            self.attachments["replaced"] = sum(1 for a in attach if a["kind"] == "replace")
            self.attachments["detached"] = len(detach)
        self.timings["total"] = round(time.time() - started, 4)
        return _result.summarised(
            changed, before, after, self.changes, dp_summary.header(self.bpffs_dir), dp_summary.lines,
            warnings=self.warnings, writes=self.writes, attachments=self.attachments, program=program,
            timings=self.timings, endpoints=len(self.state["endpoints"]))

    def _missing_interfaces(self, missing):
        for ep in missing:
            message = "endpoint %s: interface %s does not exist on this host (plumb it first: palisade.ebpf.endpoint)" % (
                ep["key"], ep["ifname"])
            if not self.check_mode:
                raise DatapathError(message + "; nothing was changed")
            self.warnings.append(message + "; it will be configured once it exists")
            self.changes.append("+ endpoint %s (%s): configure and attach once the interface exists" % (ep["key"], ep["ifname"]))

    def _plan_tc(self, present, links, loaded, digest):
        """Attachments wanted: both directions of every endpoint's interface,
        and, with the L7 redirect on, the ingress of every uplink; ``present``:
        the filters at our priority and handle (tc.TC.all_filters).
        Returns (wanted, attach, detach)."""
        wanted = {}  # (ifindex, direction) -> (program, where)
        for ep in self.state["endpoints"]:
            ifindex = links.get(ep["ifname"])
            if ifindex is None:
                continue
            for direction, program in dp_tc.ENDPOINT_PROGRAMS.items():
                wanted[(ifindex, direction)] = (program, "tc %s of %s (%s)" % (direction, ep["ifname"], ep["key"]))
        if self.settings["l7_redirect"]:
            for name in self.state["uplinks"]:
                ifindex = links.get(name)
                if ifindex is None:
                    raise DatapathError("uplink %s does not exist on this host; nothing was changed" % name)
                for direction, program in dp_tc.UPLINK_PROGRAMS.items():
                    wanted[(ifindex, direction)] = (program, "tc %s of uplink %s" % (direction, name))
        attach = []
        for (ifindex, direction), (program, where) in sorted(wanted.items()):
            have = present.get(ifindex, {}).get(direction)
            if have is not None and not have["owned"]:
                raise DatapathError(
                    "%s has a filter at priority %d handle 0x%x named %r that is not this collection's; "
                    "refusing to replace it (nothing was changed)" % (where, dp_tc.PRIORITY, dp_tc.HANDLE, have["name"]))
            want_id = loaded.prog_id(program) if loaded is not None else None
            item = {"ifindex": ifindex, "direction": direction, "program": program}
            if have is None:
                item.update(kind="attach", line="+ attach %s: %s %s" % (where, program, digest))
            elif want_id is None or have["prog_id"] != want_id or not have["name"].startswith(
                    dp_tc.filter_name(program, "")):
                item.update(kind="replace", line="~ replace %s: %s -> %s %s" % (where, have["name"], program, digest))
            else:
                continue
            attach.append(item)
        names = dict((v, k) for k, v in links.items())
        detach = []
        for ifindex, hooks in sorted(present.items()):
            for direction, info in sorted(hooks.items()):
                if not info["owned"] or (ifindex, direction) in wanted:
                    continue
                detach.append({"ifindex": ifindex, "direction": direction,
                               "line": "- detach tc %s of %s: %s" % (direction, names.get(ifindex, "ifindex %d" % ifindex),
                                                                     info["name"])})
        return wanted, attach, detach

    @staticmethod
    def _attached_after(wanted, names, digest):
        out = {}
        for (ifindex, direction), (program, dummy) in wanted.items():
            out.setdefault(dp_summary.interface_name(names, ifindex), {})[direction] = dp_summary.attached_program(
                dp_tc.filter_name(program, digest))
        return out

    # -- changes -------------------------------------------------------------------
    def _apply(self, opened, ops, attach, detach, redirect, loaded, digest, compile_reason, tcx, program):
        steering, tproxy = redirect
        os.makedirs(os.path.join(self.bpffs_dir, "maps"), exist_ok=True)
        if compile_reason:
            loaded = programs.compile_and_pin(self.source, self.bpffs_dir, digest)
            program["compiled"] = True
            self.timings["compile"] = round(loaded.compile_seconds, 4)
        try:
            handles = dict(opened)
            for spec in maps.MAPS:
                if spec.name in maps.RECONCILED and spec.name not in handles:
                    handles[spec.name] = bpfsys.Map(map_path(self.bpffs_dir, spec, self.settings), spec.key, spec.value)
            t0 = time.time()
            split = dp_plan.ORDER.index("attach")
            before = [op for op in ops if dp_plan.ORDER.index(op.phase) < split]
            after = [op for op in ops if dp_plan.ORDER.index(op.phase) > split]
            self._write(handles, before)
            t1 = time.time()
            # The TPROXY rule is in place before programs mark anything, and
            # goes only after they stopped (the sk_lookup link likewise).
            if tproxy is not None and tproxy.kind != "remove":
                tproxy.apply()
            for item in attach:
                name = dp_tc.filter_name(item["program"], digest)
                tcx.attach(item["ifindex"], item["direction"], loaded.fds[item["program"]], name)
                self.attachments["attached" if item["kind"] == "attach" else "replaced"] += 1
            if steering is not None:
                steering.apply(loaded.fds[netns_link.PROGRAM])
            for item in detach:
                tcx.detach(item["ifindex"], item["direction"])
                self.attachments["detached"] += 1
            if tproxy is not None and tproxy.kind == "remove":
                tproxy.apply()
            t2 = time.time()
            self._write(handles, after)
            self.timings["map_writes"] = round((t1 - t0) + (time.time() - t2), 4)
            self.timings["tc"] = round(t2 - t1, 4)
        finally:
            loaded.close()
            for name, handle in handles.items():
                if name not in opened:
                    handle.close()

    def _write(self, handles, ops):
        for op in ops:
            handle = handles[op.map]
            try:
                if op.value is None:
                    handle.delete(handle.key_cls.from_buffer_copy(op.key))
                else:
                    handle.update(handle.key_cls.from_buffer_copy(op.key), handle.value_cls.from_buffer_copy(op.value))
            except bpfsys.BpfError as exc:
                done = sum(self.writes.values())
                if exc.errno in (errno.E2BIG, errno.ENOMEM, errno.ENOSPC):
                    raise MapFullError("map %s is full (%s) after %d writes of this run; stale entries were not removed "
                                       "yet, so the previous policy stays enforced; raise settings.%s"
                                       % (op.map, exc, done, maps.MAPS_BY_NAME[op.map].size_setting))
                raise DatapathError("%s (after %d writes of this run; the next run converges)" % (exc, done))
            self.writes[op.map] += 1

    # -- state=absent ------------------------------------------------------------------
    def absent(self):
        preflight(self.bpffs_dir)
        lock = Lock(self.bpffs_dir)
        with lock:
            ipr = self.ipr_factory()
            try:
                tcx = dp_tc.TC(ipr)
                links = dict((v, k) for k, v in tcx.links().items())
                owned = tcx.owned_filters()
                before = dp_summary.summary(
                    programs.cached_hashes(self.bpffs_dir), self._pins(), dp_summary.attached_from_filters(owned, links),
                    [dp_summary.SK_LOOKUP] if os.path.lexists(netns_link.link_pin(self.bpffs_dir)) else [],
                    self._pinned_entries())
                for ifindex, hooks in sorted(owned.items()):
                    for direction in sorted(hooks):
                        self.changes.append("- detach tc %s of %s: %s"
                                            % (direction, links.get(ifindex, ifindex), hooks[direction]["name"]))
                        if not self.check_mode:
                            tcx.detach(ifindex, direction)
                        self.attachments["detached"] += 1
            finally:
                ipr.close()
            tproxy = dp_tproxy.Tproxy(False, 0)
            if tproxy.present:
                before["steering"] = sorted(before["steering"] + [dp_summary.TPROXY])
            if tproxy.line:
                self.changes.append(tproxy.line)
                if not self.check_mode:
                    tproxy.apply()
            pins = []
            for sub in ("links", "progs", "maps"):
                path = os.path.join(self.bpffs_dir, sub)
                if os.path.isdir(path):
                    pins.extend("%s/%s" % (sub, name) for name in sorted(os.listdir(path)))
            for pin in pins:
                self.changes.append("- unpin %s" % os.path.join(self.bpffs_dir, pin))
            exists = os.path.isdir(self.bpffs_dir)
            changed = bool(self.changes) or exists
            if exists:
                self.changes.append("- directory %s" % self.bpffs_dir)
            if exists and not self.check_mode:
                for sub in ("links", "progs", "maps"):
                    shutil.rmtree(os.path.join(self.bpffs_dir, sub), ignore_errors=True)
                try:
                    os.rmdir(self.bpffs_dir)
                except OSError as exc:
                    if exc.errno != errno.ENOENT:
                        self.warnings.append("left %s in place: %s" % (self.bpffs_dir, exc))
        if not self.check_mode and not os.path.exists(self.bpffs_dir):
            try:
                os.unlink(lock.path)
            except OSError:
                pass
        return _result.summarised(
            changed, before, dp_summary.summary(), self.changes, dp_summary.header(self.bpffs_dir), dp_summary.lines,
            warnings=self.warnings, writes=self.writes, attachments=self.attachments)

    def _pinned_entries(self):
        """Entries of the reconciled maps, over every pinned layout of each."""
        counts = {}
        for name in maps.RECONCILED:
            spec = maps.MAPS_BY_NAME[name]
            for path in sorted(glob.glob(os.path.join(self.bpffs_dir, "maps", "%s-*" % name))):
                handle = bpfsys.Map.open(path, spec.key, spec.value)
                if handle is None:
                    continue
                try:
                    counts[name] = counts.get(name, 0) + len(handle.items())
                finally:
                    handle.close()
        return counts
