# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Files and processes of the lab: state_dir, ssh keys, endpoint servers, sshd.

A process is the lab's only when the pid in one of its pid files runs a
command line that names that pid file (servers) or that host's generated
config (sshd).  Nothing is ever looked up or killed by name.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import fnmatch
import os
import shutil
import signal
import subprocess
import time

from ansible_collections.palisade.ebpf.plugins.module_utils import _procfs as procfs
from ansible_collections.palisade.ebpf.plugins.module_utils._lab import plan as lab
from ansible_collections.palisade.ebpf.plugins.module_utils._procfs import alive, cmdline, descendants, read_pidfile
from ansible_collections.palisade.ebpf.plugins.module_utils._lab.kernel import netns_inode, netns_path

START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
# The shell run inside the host namespace before sshd: a private mount
# namespace whose /sys is that network namespace's sysfs (so /sys/class/net
# lists its interfaces), with the machine's bpffs bound back at /sys/fs/bpf
# (mounting sysfs over /sys hides it).  Same recipe as the netns connection.
SYSFS_SHIM = (
    'set -e; k=$(mktemp -d /run/.nsbpf.XXXXXX); trap \'rmdir "$k" 2>/dev/null || true\' EXIT; '
    'mount --bind /sys/fs/bpf "$k"; mount -t sysfs sysfs /sys; mount --move "$k" /sys/fs/bpf; rmdir "$k"; '
    'trap - EXIT; exec "$0" "$@"'
)
# What a lab state_dir may contain; anything else and absent refuses to delete it.
STATE_FILES = (
    lab.RECORD_NAME, lab.SERVER_SCRIPT_NAME, lab.CLIENT_KEY_NAME, lab.CLIENT_KEY_NAME + ".pub",
    lab.HOST_KEY_NAME, lab.HOST_KEY_NAME + ".pub", lab.AUTHORIZED_KEYS_NAME,
    "server-*.pid", "server-*.log", "sshd-*.pid", "sshd-*.log", "sshd-*.conf", "*.tmp", ".*",
)


class LabRuntimeError(lab.LabError):
    """Something the lab tried to do failed; the message says what and why."""


# --- /proc -------------------------------------------------------------------------------

# --- identifying the lab's processes -------------------------------------------------------

def server_identity(pidfile):
    """(pid, parsed argv) of the server that owns ``pidfile``, or None."""
    pid = read_pidfile(pidfile)
    if pid is None:
        return None
    parsed = lab.parse_server_argv(cmdline(pid) or [])
    if parsed is None or parsed["pidfile"] != pidfile:
        return None
    return pid, parsed


def sshd_identity(pidfile, config):
    """pid of the sshd that owns ``pidfile`` and runs ``config``, or None.

    sshd rewrites its process title ("sshd: /usr/sbin/sshd -f CFG ... [listener]"),
    so the check is on the joined command line.
    """
    pid = read_pidfile(pidfile)
    if pid is None:
        return None
    argv = cmdline(pid)
    if not argv:
        return None
    words = " ".join(argv).split()
    if "-f" not in words or words[words.index("-f") + 1:words.index("-f") + 2] != [config]:
        return None
    if not any(os.path.basename(w).startswith("sshd") for w in words[:2]):
        return None
    return pid


def _netns_name_of(pid, names):
    inode = procfs.netns_inode(pid)
    for name in names:
        if inode is not None and netns_inode(name) == inode:
            return name
    return "(another namespace)"


def _read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def _sshd_listen(config_text):
    for line in (config_text or "").splitlines():
        words = line.split()
        if len(words) == 2 and words[0] == "ListenAddress":
            return words[1]
    return "?"


def observe(spec, record):
    """Lab objects on the filesystem and in the process table, as they are now."""
    objs = []
    if not os.path.isdir(spec.state_dir):
        return objs
    objs.append(lab.LabObject("state_dir", spec.state_dir))
    for path, role in ((spec.client_key, "client"), (spec.host_key, "sshd host key")):
        if os.path.isfile(path) and os.path.isfile(path + ".pub"):
            objs.append(lab.LabObject("keypair", path, {"role": role}))
    current = _read(spec.authorized_keys)
    if current is not None:
        pub = _read(spec.client_key + ".pub")
        source = os.path.basename(spec.client_key) + ".pub" if pub and current.strip() == pub.strip() else "(other keys)"
        objs.append(lab.LabObject("authorized_keys", spec.authorized_keys, {"source": source}))

    names = sorted(set(spec.netns_roles()) | set(record.get("netns", {})))
    for entry in sorted(os.listdir(spec.state_dir)):
        path = os.path.join(spec.state_dir, entry)
        if fnmatch.fnmatch(entry, "server-*.pid"):
            found = server_identity(path)
            if found is None:
                continue
            pid, parsed = found
            objs.append(lab.LabObject("server", parsed["endpoint"], {
                "netns": _netns_name_of(pid, names), "listen": parsed["listen"], "rev": parsed["rev"],
            }, {"pid": pid, "pidfile": path}))
        elif fnmatch.fnmatch(entry, "sshd-*.pid"):
            host = entry[len("sshd-"):-len(".pid")]
            config = os.path.join(spec.state_dir, "sshd-%s.conf" % host)
            pid = sshd_identity(path, config)
            if pid is None:
                continue
            text = _read(config)
            objs.append(lab.LabObject("sshd", host, {
                "netns": _netns_name_of(pid, names), "listen": _sshd_listen(text),
                "config": lab.short_hash(text) if text is not None else "?",
            }, {"pid": pid, "pidfile": path, "config_path": config}))
    return objs


# --- stopping and starting ---------------------------------------------------------------

def _signal_all(pids, sig):
    for pid in pids:
        try:
            os.kill(pid, sig)
        except OSError as exc:
            if exc.errno != errno.ESRCH:
                raise


def stop(pid, still_ours, what):
    """Stop a lab process and everything it started (e.g. sshd's sessions).

    ``still_ours()`` re-checks the pid's command line right before the kill,
    so a pid reused since observation is never signalled.
    """
    if not still_ours():
        return
    tree = [pid] + descendants(pid)
    _signal_all(tree, signal.SIGTERM)
    deadline = time.time() + STOP_TIMEOUT
    while time.time() < deadline and any(alive(p) for p in tree):
        time.sleep(0.05)
    left = [p for p in tree if alive(p)]
    if left:
        _signal_all(left, signal.SIGKILL)
        deadline = time.time() + STOP_TIMEOUT
        while time.time() < deadline and any(alive(p) for p in left):
            time.sleep(0.05)
        if any(alive(p) for p in left):
            raise LabRuntimeError("%s (pid %d) did not exit after SIGKILL" % (what, pid))


def _tail(path, lines=15):
    text = _read(path) or ""
    return "\n".join(text.splitlines()[-lines:])


def _remove(path):
    try:
        os.unlink(path)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise


def _write_private(path, text):
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.rename(tmp, path)


def _wait_for(predicate, timeout, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        result = predicate()
        if result:
            return result
        if proc is not None and proc.poll() is not None:
            return predicate()
        time.sleep(0.05)
    return predicate()


class HostOps(object):
    """Applies file and process actions.  ``bins`` maps tool name -> path."""

    def __init__(self, spec, bins):
        self.spec = spec
        self.bins = bins

    # -- files ----------------------------------------------------------------------
    def make_state_dir(self):
        parent = os.path.dirname(self.spec.state_dir)
        if not os.path.isdir(parent):
            os.makedirs(parent, 0o755)
        if not os.path.isdir(self.spec.state_dir):
            # Private keys live here; sshd's StrictModes also wants it closed.
            os.mkdir(self.spec.state_dir, 0o700)

    def remove_state_dir(self):
        path = self.spec.state_dir
        if not os.path.isdir(path):
            return
        strangers = [e for e in os.listdir(path) if not any(fnmatch.fnmatch(e, p) for p in STATE_FILES)]
        if strangers:
            raise LabRuntimeError(
                "refusing to remove %s: it holds files the lab did not create (%s); "
                "remove them or the directory yourself" % (path, ", ".join(sorted(strangers)[:5])))
        shutil.rmtree(path)

    def make_keypair(self, path, role):
        for stale in (path, path + ".pub"):
            _remove(stale)
        comment = "palisade-lab %s %s" % (self.spec.prefix, role)
        self._run([self.bins["ssh-keygen"], "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path],
                  "generating the ssh key %s" % path)

    def write_authorized_keys(self):
        pub = _read(self.spec.client_key + ".pub")
        if not pub:
            raise LabRuntimeError("cannot write %s: %s.pub is missing" % (self.spec.authorized_keys, self.spec.client_key))
        _write_private(self.spec.authorized_keys, pub if pub.endswith("\n") else pub + "\n")

    def _run(self, argv, what):
        try:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, timeout=60, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            raise LabRuntimeError("%s failed: %s" % (what, exc))
        if proc.returncode != 0:
            raise LabRuntimeError("%s failed (rc=%d): %s" % (
                what, proc.returncode, proc.stdout.decode("utf-8", "replace").strip()))
        return proc

    # -- endpoint servers -----------------------------------------------------------------
    def endpoint(self, key):
        for ep in self.spec.endpoints:
            if ep.key == key:
                return ep
        raise LabRuntimeError("internal error: no endpoint %s" % key)

    def stop_server(self, obj):
        pidfile = obj.meta["pidfile"]
        pid = obj.meta["pid"]
        stop(pid, lambda: (server_identity(pidfile) or (None,))[0] == pid,
             "the server of endpoint %s" % obj.ident[0])
        _remove(pidfile)

    def start_server(self, obj):
        spec = self.spec
        ep = self.endpoint(obj.ident[0])
        if not os.path.isfile(spec.server_script):
            raise LabRuntimeError(
                "the endpoint server script %s does not exist (the palisade.ebpf.lab role copies it there; "
                "when calling the module directly, pass server_script)" % spec.server_script)
        pidfile = spec.server_pidfile(ep)
        logfile = spec.server_log(ep)
        _remove(pidfile)
        argv = [self.bins["nsenter"], "--net=%s" % netns_path(ep.netns), "--"]
        argv += lab.server_argv(spec, ep, obj.attrs["listen"])
        # Detached: own session, no inherited descriptors (Ansible waits for
        # the module's stdout to close), output into its log file.
        with open(logfile, "ab") as log:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    close_fds=True, start_new_session=True, cwd="/")
        # nsenter execs the server, so the server's pid is proc.pid; the server
        # writes its pid file once every port is bound.
        if _wait_for(lambda: read_pidfile(pidfile) == proc.pid and alive(proc.pid), START_TIMEOUT, proc):
            return
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        else:
            proc.wait()
        raise LabRuntimeError("the server of endpoint %s did not start (see %s):\n%s" % (
            ep.key, logfile, _tail(logfile)))

    # -- sshd ------------------------------------------------------------------------------
    def host(self, name):
        for host in self.spec.hosts:
            if host.name == name:
                return host
        raise LabRuntimeError("internal error: no host %s" % name)

    def stop_sshd(self, obj):
        pidfile, pid, config = obj.meta["pidfile"], obj.meta["pid"], obj.meta["config_path"]
        stop(pid, lambda: sshd_identity(pidfile, config) == pid, "sshd of host %s" % obj.ident[0])
        _remove(pidfile)

    def start_sshd(self, obj):
        spec = self.spec
        host = self.host(obj.ident[0])
        config = spec.sshd_config_path(host)
        pidfile = spec.sshd_pidfile(host)
        logfile = spec.sshd_log(host)
        # sshd refuses to run without its privilege separation directory.
        if not os.path.isdir("/run/sshd"):
            os.makedirs("/run/sshd", 0o755)
        _write_private(config, lab.sshd_config(spec, host))
        self._run([self.bins["sshd"], "-t", "-f", config], "checking the sshd configuration %s" % config)
        _remove(pidfile)
        argv = [
            self.bins["nsenter"], "--net=%s" % netns_path(host.netns), "--",
            self.bins["unshare"], "--mount", "--propagation", "private",
            "/bin/sh", "-c", SYSFS_SHIM, self.bins["sshd"], "-f", config, "-E", logfile,
        ]
        # sshd daemonizes: the command returns once the listener forked, and
        # the listener writes PidFile after binding ListenAddress.
        with open(logfile, "ab") as log:
            try:
                proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                      close_fds=True, start_new_session=True, cwd="/", timeout=30, check=False)
            except (OSError, subprocess.SubprocessError) as exc:
                raise LabRuntimeError("starting sshd for host %s failed: %s" % (host.name, exc))
        if proc.returncode == 0 and _wait_for(lambda: sshd_identity(pidfile, config), START_TIMEOUT):
            return
        raise LabRuntimeError("sshd for host %s did not start (rc=%d, see %s):\n%s" % (
            host.name, proc.returncode, logfile, _tail(logfile)))

    # -- dispatch ---------------------------------------------------------------------------
    def apply(self, action):
        obj, op = action.obj, action.op
        kind = obj.kind
        if kind == "state_dir":
            if op == "delete":
                self.remove_state_dir()
            else:
                self.make_state_dir()
        elif kind == "keypair":
            if op != "delete":  # keys go with state_dir only
                self.make_keypair(obj.ident[0], obj.attrs["role"])
        elif kind == "authorized_keys":
            if op != "delete":
                self.write_authorized_keys()
        elif kind == "server":
            if op in ("delete", "restart") and action.old is not None:
                self.stop_server(action.old)
            if op != "delete":
                self.start_server(obj)
        elif kind == "sshd":
            if op in ("delete", "restart") and action.old is not None:
                self.stop_sshd(action.old)
            if op != "delete":
                self.start_sshd(obj)
        else:
            raise ValueError("not a file or process object: %s" % kind)
