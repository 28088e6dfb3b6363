# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host's L7 proxy (HAProxy 2.6, master-worker): its process, its map
files and runtime maps, its listener in the datapath's sockmap.

present, each step only when something differs:

1. map files, written atomically;
2. the process: started when not running; reloaded (SIGUSR2 to the master)
   when haproxy.cfg's sha256 differs from the one recorded at the last
   (re)load. In master-worker mode HAProxy 2.6 re-executes itself with
   ``-x sockpair@<fd>`` and takes the listening sockets over from the old
   worker: the listener's inode, and so the sockmap entry, survive the
   reload (verified by tests/integration/test_l7proxy_module.py);
3. runtime maps (``show map`` vs. desired; ``add/set/del map``), unless the
   process was just (re)loaded from the files; more than RELOAD_ABOVE
   changes reload instead;
4. the listener registered in slot 0 of the proxy sockmap (sockmap.py);
5. ``net.ipv4.tcp_early_demux=0`` in this network namespace.

absent stops the process (soft stop, then SIGTERM), clears slot 0 and
removes the files the module wrote; haproxy.cfg belongs to the role.
gathered reads the map files the module wrote back, in its input schema.

Results follow module_utils/_result.py: ``changes`` one line per change,
``before``/``after`` a summary (summary.py).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import re
import signal
import subprocess
import tempfile
import time

from ansible_collections.palisade.ebpf.plugins.module_utils import _result
from ansible_collections.palisade.ebpf.plugins.module_utils._datapath import artifacts as dp_artifacts
from ansible_collections.palisade.ebpf.plugins.module_utils._datapath.state import StateError, unpack_ipcache
from ansible_collections.palisade.ebpf.plugins.module_utils._defaults import L7_PROXY_PORT, L7_PROXY_UNIT
from ansible_collections.palisade.ebpf.plugins.module_utils._procfs import alive, children, cmdline, read_pidfile
from ansible_collections.palisade.ebpf.plugins.module_utils._l7proxy import runtime, sockmap, summary as l7_summary
from ansible_collections.palisade.ebpf.plugins.module_utils._l7proxy.runtime import L7ProxyError

STATE_NAME = "l7proxy.state"
RELOAD_ABOVE = 1000          # runtime map changes above which a reload is cheaper
READY_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0
EARLY_DEMUX = "/proc/sys/net/ipv4/tcp_early_demux"
LISTEN_ADDR = "127.0.0.1"


# --- processes ----------------------------------------------------------------------------
def is_haproxy_with(pid, config):
    """pid is a live HAProxy started with ``-f config``."""
    if not pid or not alive(pid):
        return False
    argv = cmdline(pid)
    if not argv or not os.path.basename(argv[0]).startswith("haproxy"):
        return False
    real = os.path.realpath(config)
    for i, arg in enumerate(argv[:-1]):
        if arg == "-f" and os.path.realpath(argv[i + 1]) == real:
            return True
    return False


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def config_pidfile(config):
    """The ``pidfile`` the configuration declares, or None."""
    text = runtime.read_file(config) or ""
    match = re.search(r"^\s*pidfile\s+(\S+)", text, re.M)
    if not match:
        return None
    path = match.group(1)
    return path if os.path.isabs(path) else os.path.join(os.path.dirname(config), path)


def _tail(text, lines=15):
    return "\n".join((text or "").strip().splitlines()[-lines:])


class Service(object):
    """HAProxy run by this module (service_manager=process)."""

    def __init__(self, directory, haproxy_bin, port):
        self.dir = directory
        self.config = os.path.join(directory, runtime.CONFIG_NAME)
        self.sock = os.path.join(directory, runtime.SOCKET_NAME)
        self.declared_pidfile = config_pidfile(self.config)
        self.pidfile = self.declared_pidfile or os.path.join(directory, runtime.PID_NAME)
        self.haproxy_bin = haproxy_bin
        self.port = port

    # -- observing ----------------------------------------------------------------------
    def master_pid(self):
        pid = read_pidfile(self.pidfile)
        return pid if is_haproxy_with(pid, self.config) else None

    def worker_pid(self):
        try:
            return int(runtime.show_info(self.sock, timeout=2.0).get("Pid", 0)) or None
        except (L7ProxyError, ValueError):
            return None

    def pids(self):
        """Pids that may hold the listener: the worker answering the stats
        socket first, then the master's other children, then the master."""
        master = self.master_pid()
        out = []
        worker = self.worker_pid()
        if worker:
            out.append(worker)
        if master:
            out.extend(p for p in children(master) if p not in out)
            out.append(master)
        return out

    def _run(self, argv, timeout=60):
        """(rc, combined output); stdout/stderr go to a file, not a pipe, so a
        daemon that kept them open cannot make us wait."""
        with tempfile.TemporaryFile() as out:
            try:
                proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                      cwd=self.dir, timeout=timeout, check=False)
            except OSError as exc:
                raise L7ProxyError("cannot run %s: %s" % (argv[0], exc))
            except subprocess.TimeoutExpired:
                raise L7ProxyError("%s did not return within %ds" % (" ".join(argv), timeout))
            out.seek(0)
            return proc.returncode, out.read().decode("utf-8", "replace")

    def check_config(self):
        rc, output = self._run([self.haproxy_bin, "-c", "-q", "-f", self.config])
        if rc != 0:
            raise L7ProxyError("%s is not valid: %s" % (self.config, _tail(output, 1) or "rc=%d" % rc),
                               details=_tail(output, 40))

    def wait_ready(self, old_worker=None, output="", what="start"):
        """Wait until a worker other than old_worker answers on the stats socket
        and the listener exists; returns the master pid."""
        deadline = time.time() + READY_TIMEOUT
        master = worker = None
        while time.time() < deadline:
            master = self.master_pid()
            worker = self.worker_pid() if master else None
            if master and worker and worker != old_worker and sockmap.listener_inode(self.port) is not None:
                return master
            time.sleep(0.05)
        listener = "present" if sockmap.listener_inode(self.port) else "missing"
        raise L7ProxyError(
            "HAProxy did not become ready after %s within %.0fs (master %s, worker %s answering %s, listener on "
            "%s:%d %s)" % (what, READY_TIMEOUT, master or "not running", worker or "none", self.sock, LISTEN_ADDR,
                           self.port, listener),
            details=_tail(output, 40))

    # -- changing ----------------------------------------------------------------------
    def start(self):
        argv = [self.haproxy_bin, "-W", "-D", "-f", self.config]
        if not self.declared_pidfile:
            # The configuration has no pidfile: give one (both at once makes
            # HAProxy log "'pidfile' already specified" on every start).
            argv += ["-p", self.pidfile]
        rc, output = self._run(argv)
        if rc != 0:
            raise L7ProxyError("HAProxy failed to start (rc=%d): %s" % (rc, _tail(output, 1)), details=_tail(output, 40))
        return self.wait_ready(output=output)

    def reload(self):
        """Hitless reload: SIGUSR2 to the master. HAProxy 2.6's master re-executes
        itself with -x sockpair@ and the new worker takes the listening sockets
        over from the old one (same socket, same inode, no refused connection)."""
        self.check_config()
        master = self.master_pid()
        if master is None:
            raise L7ProxyError("HAProxy is not running: cannot reload")
        old_worker = self.worker_pid()
        os.kill(master, signal.SIGUSR2)
        return self.wait_ready(old_worker=old_worker, what="reload")

    def stop(self):
        """Soft stop (SIGUSR1: stop listening, finish connections), then SIGTERM,
        then SIGKILL, each to the master (and its workers) by pid."""
        master = self.master_pid()
        if master is None:
            return False
        workers = children(master)
        for sig in (signal.SIGUSR1, signal.SIGTERM, signal.SIGKILL):
            targets = [master] if sig != signal.SIGKILL else [master] + workers
            for pid in targets:
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
            deadline = time.time() + STOP_TIMEOUT
            while time.time() < deadline and any(alive(p) for p in [master] + workers):
                time.sleep(0.05)
            if not any(alive(p) for p in [master] + workers):
                return True
        raise L7ProxyError("HAProxy (master %s) did not stop" % master)


class SystemdService(Service):
    """HAProxy run by a systemd unit the role installed (service_manager=systemd)."""

    def __init__(self, directory, haproxy_bin, port, unit):
        super(SystemdService, self).__init__(directory, haproxy_bin, port)
        self.unit = unit

    def _systemctl(self, *args):
        rc, output = self._run(["systemctl"] + list(args))
        return rc, output.strip()

    def master_pid(self):
        rc, output = self._systemctl("is-active", "--quiet", self.unit)
        if rc != 0:
            return None
        rc, output = self._systemctl("show", "-p", "MainPID", "--value", self.unit)
        try:
            return int(output) or None
        except ValueError:
            return None

    def _do(self, verb):
        rc, output = self._systemctl(verb, self.unit)
        if rc != 0:
            raise L7ProxyError("systemctl %s %s failed: %s" % (verb, self.unit, _tail(output, 1)), details=output)

    def start(self):
        self._do("start")
        return self.wait_ready()

    def reload(self):
        self.check_config()
        old_worker = self.worker_pid()
        self._do("reload")
        return self.wait_ready(old_worker=old_worker, what="reload")

    def stop(self):
        if self.master_pid() is None:
            return False
        self._do("stop")
        return True


def make_service(params):
    manager = params.get("service_manager") or "auto"
    if manager == "auto":
        manager = "systemd" if os.path.isdir("/run/systemd/system") else "process"
    if manager == "systemd":
        return SystemdService(params["dir"], params["haproxy_bin"], params["port"], params.get("unit") or L7_PROXY_UNIT)
    return Service(params["dir"], params["haproxy_bin"], params["port"])


# --- the reconciler --------------------------------------------------------------------------
class Reconciler(object):
    """present() / absent() -> the module's result (module_utils/_result.py:
    before, after, changes, warnings; and pid, started, reloaded, registered,
    map_writes, listener); gathered() -> the map files in the input schema."""

    def __init__(self, params, check_mode=False):
        self.params = params
        self.check = check_mode
        self.dir = params["dir"]
        self.port = int(params.get("port") or L7_PROXY_PORT)
        self.service = make_service(dict(params, port=self.port))
        self.state_path = os.path.join(self.dir, STATE_NAME)
        self.map_pin = sockmap.pin_path(params["bpffs_dir"]) if params.get("bpffs_dir") else None
        self.changes = []
        self.warnings = []
        self.result = {"pid": None, "started": False, "reloaded": False, "registered": False, "map_writes": 0}

    # -- state file -------------------------------------------------------------------------
    def load_state(self):
        text = runtime.read_file(self.state_path)
        try:
            return json.loads(text) if text else {}
        except ValueError:
            return {}

    def save_state(self, state):
        runtime.write_atomic(self.state_path, json.dumps(state, sort_keys=True, indent=1) + "\n", mode=0o600)

    # -- desired maps -----------------------------------------------------------------------
    def wanted_maps(self):
        wanted = {}
        for name, entries in sorted((self.params.get("maps") or {}).items()):
            if not isinstance(entries, dict):
                raise L7ProxyError("maps.%s: expected a dict of key -> value" % name)
            wanted[name] = runtime.check_entries(name, entries)
        versions = self.params.get("ipcache_version")
        if versions is not None:
            if self.params.get("ipcache_packed") is not None:
                raise L7ProxyError("ipcache_packed and ipcache_version both give identities.map: give one")
            if runtime.IDENTITIES in wanted:
                raise L7ProxyError("maps.%s and ipcache_version both give identities.map: give one" % runtime.IDENTITIES)
            directory = self.params.get("datapath_state_dir") or dp_artifacts.default_state_dir(self.params["bpffs_dir"])
            table, why = dp_artifacts.applied_ip_table(directory, versions)
            if table is not None:
                wanted[runtime.IDENTITIES] = runtime.ipcache_entries(table.items())
            elif self.check:  # the datapath's check run did not apply it
                self.warnings.append("identities.map follows the IP table once the datapath applies it (%s)" % why)
            else:
                raise L7ProxyError("identities.map: %s; the datapath applies this run's IP table first (the datapath "
                                   "role, before this one)" % why)
        packed = self.params.get("ipcache_packed")
        if packed is not None:
            if runtime.IDENTITIES in wanted:
                raise L7ProxyError("maps.%s and ipcache_packed both give identities.map: give one" % runtime.IDENTITIES)
            try:
                rows = unpack_ipcache(packed) if packed else []
            except StateError as exc:
                raise L7ProxyError(str(exc))
            wanted[runtime.IDENTITIES] = runtime.ipcache_entries(rows)
        return wanted

    def map_texts(self, names):
        """{name: text} of the map files that exist among names."""
        out = {}
        for name in sorted(names):
            text = runtime.read_file(runtime.map_path(self.dir, name))
            if text is not None:
                out[name] = text
        return out

    def current_maps(self, names):
        """{name: {key: value}} of the map files that exist among names."""
        return dict((name, runtime.parse_map_text(text)) for name, text in self.map_texts(names).items())

    def _finish(self, before, after):
        return _result.summarised(bool(self.changes), before, after, self.changes, l7_summary.header(self.dir),
                                  l7_summary.lines, warnings=self.warnings, **self.result)

    # -- gathered ---------------------------------------------------------------------------
    def gathered(self):
        """The map files this module wrote (what HAProxy loads; every present
        run brings its runtime maps in line with them), as ``maps``."""
        names = self.load_state().get("maps") or []
        return _result.gathered({"maps": self.current_maps(names)})

    # -- present ----------------------------------------------------------------------------
    def present(self):
        config = self.service.config
        if not os.path.isfile(config):
            if not self.check:
                raise L7ProxyError("%s does not exist: the proxy's role templates it before this module runs" % config)
            # Check mode on a new host: the template task reported the file without writing it.
            self.warnings.append("%s is not written yet (check mode); HAProxy would be started with it" % config)
        wanted = self.wanted_maps()
        if self.map_pin is None:
            raise L7ProxyError("bpffs_dir is required with state=present")
        pin_exists = os.path.exists(self.map_pin)
        if not pin_exists:
            if not self.check:
                raise sockmap.missing_pin(self.map_pin)  # before anything is changed
            self.warnings.append("the proxy socket map %s is not pinned yet (datapath not deployed)" % self.map_pin)

        state = self.load_state()
        # Every map file this module wrote, for absent to remove.
        names = sorted(set(state.get("maps") or []) | set(wanted))
        texts = self.map_texts(names)
        current = dict((name, runtime.parse_map_text(text)) for name, text in texts.items())
        master = self.service.master_pid()
        demux = self.early_demux_value()
        files = dict((name, l7_summary.map_file(len(current[name]), texts[name])) for name in texts)
        before = l7_summary.summary(master is not None, master, state.get("config_sha256") if master else None,
                                    files, tcp_early_demux=demux)

        self.write_map_files(wanted, texts, current)
        digest = sha256_file(config) if os.path.isfile(config) else None
        started = reloaded = False
        if master is None:
            self.changes.append("+ start haproxy")
            if not self.check:
                master = self.service.start()
            started = True
        elif state.get("config_sha256") != digest:
            why = "configuration changed" if state.get("config_sha256") else "configuration not recorded"
            self.changes.append("~ reload haproxy (%s)" % why)
            if not self.check:
                master = self.service.reload()
            reloaded = True
        else:
            reloaded = self.sync_runtime(wanted)
        if (started or reloaded) and not self.check:
            self.save_state({"config_sha256": digest, "master_pid": master, "maps": names})
        elif not self.check and names != state.get("maps"):
            state["maps"] = names  # bookkeeping only, not a change by itself
            self.save_state(state)
        self.result.update(pid=master, started=started, reloaded=reloaded)

        before["registered"] = not self.register(started, pin_exists)
        self.early_demux(demux)
        loaded = digest if (started or reloaded) else state.get("config_sha256")
        files.update((name, l7_summary.map_file(len(entries), runtime.render_map(entries)))
                     for name, entries in wanted.items())
        after = l7_summary.summary(True, master, loaded, files, registered=True,
                                   tcp_early_demux="0" if demux is not None else None)
        return self._finish(before, after)

    def write_map_files(self, wanted, texts, current):
        """Write the map files whose text differs; ``texts`` and ``current``:
        the text and the entries of the files that exist."""
        for name in sorted(wanted):
            path = runtime.map_path(self.dir, name)
            text = runtime.render_map(wanted[name])
            current_text = texts.get(name)
            if current_text == text:
                continue
            if current_text is None:
                self.changes.append("+ map %s: %d entries" % (name, len(wanted[name])))
            else:
                added, changed, removed = runtime.count_diff(current.get(name, {}), wanted[name])
                self.changes.append("~ map %s: %s" % (name, runtime.describe_counts(len(added), len(changed), len(removed))))
            if not self.check:
                runtime.write_atomic(path, text)
            self.result["map_writes"] += 1

    def sync_runtime(self, wanted):
        """Bring the running worker's maps in line; True when it reloaded instead."""
        sock = self.service.sock
        refs = runtime.map_refs(sock)
        plan = []
        total = 0
        for name in sorted(wanted):
            ref = refs.get(os.path.realpath(runtime.map_path(self.dir, name)))
            if ref is None:
                continue  # the configuration does not use this map (or only as an ACL)
            commands, counts = runtime.runtime_commands(ref, runtime.show_map(sock, ref), wanted[name])
            if commands:
                plan.append((name, commands, counts))
                total += len(commands)
        if not plan:
            return False
        if total > RELOAD_ABOVE:
            self.changes.append("~ reload haproxy (%d runtime map changes, more than %d)" % (total, RELOAD_ABOVE))
            if not self.check:
                self.service.reload()
            return True
        for name, commands, counts in plan:
            self.changes.append("~ runtime map %s: %s" % (name, runtime.describe_counts(*counts)))
            if not self.check:
                runtime.apply_commands(sock, commands)
            self.result["map_writes"] += sum(counts)
        return False

    def register(self, started, pin_exists):
        """Put the listener in slot 0; True when that was (or would be) a change."""
        line = "+ register listener %s:%d in the proxy socket map" % (LISTEN_ADDR, self.port)
        if self.check and (started or not pin_exists):
            self.changes.append(line)
            self.result["registered"] = True
            return True
        listener = sockmap.find_listener(self.port, self.service.pids())
        if listener is None:
            raise L7ProxyError("HAProxy (master %s) holds no TCP listener on %s:%d in this network namespace: check "
                               "the bind line of %s" % (self.result["pid"], LISTEN_ADDR, self.port, self.service.config))
        changed, cookie = sockmap.reconcile(self.map_pin, listener, self.check)
        self.result["listener"] = {"inode": listener.inode, "cookie": cookie, "holder_pid": listener.pid}
        if changed:
            self.changes.append(line)
            self.result["registered"] = True
        return changed

    @staticmethod
    def early_demux_value():
        """The sysctl's value, or None when this kernel has none."""
        return (runtime.read_file(EARLY_DEMUX) or "").strip() or None

    def early_demux(self, current):
        # Pitfall P5 of the L7 spike: after a flow went through the proxy, this
        # namespace holds a TIME_WAIT socket for its tuple. Once policy stops
        # redirecting it (L7 rule removed, proxy disabled), a new SYN with the
        # same tuple is forwarded, early demux attaches the TIME_WAIT socket to
        # the skb and ip_forward() drops it: a blackhole for up to 60 s. Without
        # early demux the forward path never sees the proxy's socket.
        if current in (None, "0"):
            return
        self.changes.append("~ sysctl net.ipv4.tcp_early_demux: %s -> 0" % current)
        if not self.check:
            with open(EARLY_DEMUX, "w") as f:
                f.write("0\n")

    # -- absent -----------------------------------------------------------------------------
    def absent(self):
        state = self.load_state()
        names = set(state.get("maps") or []) | set((self.params.get("maps") or {}).keys())
        if self.params.get("ipcache_packed") is not None or self.params.get("ipcache_version") is not None:
            names.add(runtime.IDENTITIES)
        master = self.service.master_pid()
        demux = self.early_demux_value()
        files = dict((name, l7_summary.map_file(len(runtime.parse_map_text(text)), text))
                     for name, text in self.map_texts(names).items())
        before = l7_summary.summary(master is not None, master, state.get("config_sha256") if master else None,
                                    files, tcp_early_demux=demux)
        if master is not None:
            self.changes.append("- stop haproxy")
            if not self.check:
                self.service.stop()
        if self.map_pin is not None and sockmap.unregister(self.map_pin, self.check):
            before["registered"] = True
            self.changes.append("- unregister the proxy listener from the proxy socket map")
        for name in sorted(names):
            self._remove(runtime.map_path(self.dir, name), "map %s" % name)
        self._remove(self.state_path, "state file")
        if not self.check and self.service.master_pid() is None:
            # HAProxy's own leftovers once it is gone (a killed master leaves
            # them): not reported, the role owns the directory.
            for path in (self.service.pidfile, self.service.sock):
                if os.path.dirname(os.path.abspath(path)) == os.path.abspath(self.dir) and os.path.lexists(path):
                    os.unlink(path)
        return self._finish(before, l7_summary.summary(tcp_early_demux=demux))

    def _remove(self, path, what):
        if os.path.lexists(path):
            self.changes.append("- remove %s (%s)" % (what, path))
            if not self.check:
                os.unlink(path)


def run(params, check_mode=False):
    """The module's work: present, absent or gathered per params["state"]."""
    rec = Reconciler(params, check_mode)
    state = params.get("state", "present")
    if state == "absent":
        return rec.absent()
    if state == "gathered":
        return rec.gathered()
    return rec.present()
