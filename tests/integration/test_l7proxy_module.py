# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""palisade.ebpf.l7proxy on the real kernel with the real HAProxy.

Makes its own network namespace ``palmod-l7-<pid>``, a scratch bpffs directory
``/sys/fs/bpf/palisade/palmod-l7-<pid>`` holding a pinned SOCKMAP at the path the
datapath would pin ``proxy_sockets`` (created here with libbpf through bcc),
and a temporary proxy directory with a minimal haproxy.cfg of the role's
shape. The module's code runs inside the namespace (nsenter, because
``ip netns exec`` would remount /sys and hide bpffs) with /usr/bin/python3;
two tests run the real module through ansible.

Independent checks: ``ss -tlne`` for the listener's inode and cookie
(``sk:``), ``bpftool map lookup`` for the sockmap's slot 0, HTTP requests in
the namespace, the stats socket for the runtime maps. Every process (by pid),
the namespace (by name) and the pin (by path) are removed at the end.
"""

from __future__ import absolute_import, division, print_function

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import time

import pytest

from ansible_collections.palisade.ebpf.plugins.module_utils._datapath import maps as dp_maps
from ansible_collections.palisade.ebpf.plugins.module_utils._datapath.state import pack_ipcache
from ansible_collections.palisade.ebpf.plugins.module_utils._procfs import alive, children
from tests.support.kernel import TARGET_PYTHON, sh, target_has

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.path.join(ROOT, "collections")
HAPROXY = "/usr/sbin/haproxy"
NETNS = "palmod-l7-%d" % os.getpid()
BPF_PARENT = "/sys/fs/bpf/palisade"
BPFFS_DIR = os.path.join(BPF_PARENT, NETNS)
PORT = 15031


pytestmark = [
    pytest.mark.bcc,
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.exists(HAPROXY), reason="needs %s (apt-get install haproxy)" % HAPROXY),
    pytest.mark.skipif(not (shutil.which("nsenter") and shutil.which("ip") and shutil.which("ss")), reason="needs nsenter, ip, ss"),
    pytest.mark.skipif(shutil.which("bpftool") is None, reason="needs bpftool"),
    pytest.mark.skipif(not target_has("bcc"), reason="%s lacks bcc" % TARGET_PYTHON),
    pytest.mark.skipif(not os.path.ismount("/sys/fs/bpf"), reason="bpffs is not mounted at /sys/fs/bpf"),
    pytest.mark.skipif("proxy_sockets" not in dp_maps.MAPS_BY_NAME, reason="maps.py has no proxy_sockets map yet"),
]

CONFIG = """\
global
    master-worker
    pidfile {dir}/haproxy.pid
    stats socket {dir}/haproxy.sock mode 600 level admin expose-fd listeners
    maxconn 1024
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend l7_ingress
    bind 127.0.0.1:{port} transparent
    http-request set-var(txn.src_id) src,map_ip_int({dir}/identities.map,0)
    http-request set-var(txn.ep) str(10.1.1.10),map_ip({dir}/endpoints.map,none)
    http-request set-var(txn.rule) var(txn.ep),map_str({dir}/rules.map,none)
    http-request return status 200 content-type text/plain lf-string "{marker} id=%[var(txn.src_id)] rule=%[var(txn.rule)]\\n"
"""

# Creates the sockmap like the datapath (u32 -> u64, 1 entry) and pins it.
MAKE_SOCKMAP = r"""
import ctypes as ct, sys
from bcc import libbcc
lib = libbcc.lib
lib.bpf_map_create.restype = ct.c_int
lib.bpf_map_create.argtypes = [ct.c_int, ct.c_char_p, ct.c_uint32, ct.c_uint32, ct.c_uint32, ct.c_void_p]
lib.bpf_obj_pin.argtypes = [ct.c_int, ct.c_char_p]
fd = lib.bpf_map_create(15, b"pal_proxy_socks", 4, 8, 1, None)
assert fd >= 0, "bpf_map_create: %d" % fd
ret = lib.bpf_obj_pin(fd, sys.argv[1].encode())
assert ret == 0, "bpf_obj_pin: %d" % ret
"""

# Runs the module's work (process.run) in this process: params as JSON in
# argv[1], check mode in argv[2]; prints the result (or the failure) as JSON.
DRIVER = r"""
import json, sys
sys.path.insert(0, sys.argv[3])
from ansible_collections.palisade.ebpf.plugins.module_utils._l7proxy import process
from ansible_collections.palisade.ebpf.plugins.module_utils._datapath.errors import DatapathError
try:
    out = process.run(json.loads(sys.argv[1]), sys.argv[2] == "1")
    out["failed"] = False
except DatapathError as exc:
    out = {"failed": True, "msg": str(exc), "details": exc.details}
print(json.dumps(out))
"""

# New connection per request for argv[1] seconds; prints "ok bad {errors}".
LOAD = r"""
import socket, sys, time, json
end = time.time() + float(sys.argv[1]); ok = bad = 0; errs = {}
while time.time() < end:
    try:
        s = socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=2)
        s.sendall(b"GET / HTTP/1.0\r\n\r\n"); d = b""
        while True:
            c = s.recv(4096)
            if not c: break
            d += c
        s.close()
        if d.startswith(b"HTTP/1.1 200"): ok += 1
        else: bad += 1; errs[repr(d[:20])] = errs.get(repr(d[:20]), 0) + 1
    except OSError as e:
        bad += 1; errs[repr(e)] = errs.get(repr(e), 0) + 1
print(json.dumps([ok, bad, errs]), flush=True)
"""

MAP_FILES = ("identities.map", "endpoints.map", "rules.map")
IPCACHE = [["10.1.1.10/32", 70001], ["10.1.1.11/32", 70002], ["10.2.0.0/16", 16777217], ["127.0.0.1/32", 4242]]
MAPS = {"endpoints": {"10.1.1.10": "p1"}, "rules": {"p1": "r-allow", "p2": "r-deny"}}


def in_netns(*args):
    return ["nsenter", "--net=/run/netns/" + NETNS] + list(args)


def sizes(summary):
    return dict((name, m["entries"]) for name, m in summary["maps"].items())


class Proxy(object):
    """HAProxy in the namespace, driven by the module's code.

    Each test starts from ``stopped()`` or ``started()``, whatever the tests
    before it left.
    """

    def __init__(self, directory):
        self.dir = str(directory)
        self.pin = os.path.join(BPFFS_DIR, "maps", dp_maps.MAPS_BY_NAME["proxy_sockets"].pin_name({}))
        self.netns = None
        self.made_parent = False
        self.pids_seen = set()
        self.marker = "v1"

    # -- setup / teardown ---------------------------------------------------------------
    def create(self, make_netns):
        self.netns = make_netns(NETNS)
        if not os.path.isdir(BPF_PARENT):
            os.mkdir(BPF_PARENT)
            self.made_parent = True
        os.makedirs(os.path.dirname(self.pin))
        sh(TARGET_PYTHON, "-c", MAKE_SOCKMAP, self.pin)
        self.stopped()
        sh(HAPROXY, "-c", "-q", "-f", self.config)

    def stopped(self):
        """No HAProxy, and the directory as the role leaves it before the
        first run: haproxy.cfg (marker v1) and empty map files."""
        files = sorted(os.listdir(self.dir))
        if self.master() is not None or (files and files != sorted(("haproxy.cfg",) + MAP_FILES)) \
                or any(os.path.getsize(os.path.join(self.dir, name)) for name in MAP_FILES if name in files):
            self.run(state="absent")
        self.write_config(marker="v1")
        for name in MAP_FILES:
            open(os.path.join(self.dir, name), "w").close()

    def started(self, marker=None):
        """HAProxy running, converged on the default parameters; the
        configuration's marker changed to ``marker`` first if one is given."""
        if marker is not None and marker != self.marker:
            self.write_config(marker=marker)
        self.run()

    def destroy(self):
        pids = set(self.pids_seen)
        master = self.master()
        if master:
            pids.add(master)
        for pid in list(pids):
            pids.update(children(pid))
        for pid in sorted(pids):
            if alive(pid) and self._is_ours(pid):
                os.kill(pid, signal.SIGKILL)
        if os.path.isdir(BPFFS_DIR):
            shutil.rmtree(BPFFS_DIR, ignore_errors=True)
        if self.made_parent:
            try:
                os.rmdir(BPF_PARENT)
            except OSError:
                pass

    def _is_ours(self, pid):
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                return self.config.encode() in f.read()
        except (IOError, OSError):
            return False

    @property
    def config(self):
        return os.path.join(self.dir, "haproxy.cfg")

    def write_config(self, marker=None):
        self.marker = marker or self.marker
        with open(self.config, "w") as f:
            f.write(CONFIG.format(dir=self.dir, port=PORT, marker=self.marker))

    # -- running the module ------------------------------------------------------------------
    def params(self, **kwargs):
        params = {"state": "present", "dir": self.dir, "port": PORT, "maps": MAPS, "ipcache_packed": pack_ipcache(IPCACHE),
                  "bpffs_dir": BPFFS_DIR, "service_manager": "process", "unit": "palisade-l7proxy", "haproxy_bin": HAPROXY}
        params.update(kwargs)
        return params

    def run(self, check=False, expect_failure=False, **kwargs):
        proc = subprocess.run(in_netns(TARGET_PYTHON, "-c", DRIVER, json.dumps(self.params(**kwargs)), "1" if check else "0",
                                       COLLECTIONS), capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        result = json.loads(proc.stdout)
        assert result["failed"] == expect_failure, result
        if result.get("pid"):
            self.pids_seen.add(result["pid"])
        return result

    def run_ansible(self, check=False, diff=False, **kwargs):
        rc, result, output = self.netns.module("l7proxy", self.params(**kwargs), check=check, diff=diff)
        assert rc == 0 and not result["failed"], output
        return result, output

    # -- observing -------------------------------------------------------------------------
    def master(self):
        try:
            with open(os.path.join(self.dir, "haproxy.pid")) as f:
                pid = int(f.read().split()[0])
        except (IOError, OSError, ValueError, IndexError):
            return None
        return pid if alive(pid) and self._is_ours(pid) else None

    def listener(self):
        """(inode, cookie) of the LISTEN socket on 127.0.0.1:PORT per ss, or None."""
        out = sh(*in_netns("ss", "-Htlne", "sport = :%d" % PORT))
        match = re.search(r"127\.0\.0\.1:%d\b.*\bino:(\d+)\b.*\bsk:([0-9a-f]+)" % PORT, out)
        return (int(match.group(1)), int(match.group(2), 16)) if match else None

    def slot0(self):
        """The cookie in sockmap slot 0, or None when empty."""
        proc = subprocess.run(["bpftool", "-j", "map", "lookup", "pinned", self.pin, "key", "0", "0", "0", "0"],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            # ENOENT: bpftool -j prints null (plain: "Error: ... not found")
            assert proc.stdout.strip() == "null" or "not found" in proc.stderr, proc.stdout + proc.stderr
            return None
        value = json.loads(proc.stdout)["value"]
        return struct.unpack("<Q", bytes(int(b, 16) for b in value))[0]

    def cli(self, command):
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(5)
        sock.connect(os.path.join(self.dir, "haproxy.sock"))
        sock.sendall(command.encode() + b"\n")
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        sock.close()
        return data.decode()

    def runtime_map(self, name):
        out = {}
        for line in self.cli("show map %s/%s.map" % (self.dir, name)).splitlines():
            if line.startswith("0x"):
                parts = line.split(" ", 2)
                out[parts[1]] = parts[2]
        return out

    def worker(self):
        return int(re.search(r"^Pid: (\d+)", self.cli("show info"), re.M).group(1))

    def get(self):
        out = sh(*in_netns("curl", "-s", "-m", "3", "http://127.0.0.1:%d/" % PORT))
        return out.strip()

    def snapshot(self):
        files = {}
        for name in sorted(os.listdir(self.dir)):
            path = os.path.join(self.dir, name)
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    files[name] = f.read()
        return {"files": files, "master": self.master(), "worker": self.worker() if self.master() else None,
                "listener": self.listener(), "slot0": self.slot0(),
                "rules": self.runtime_map("rules") if self.master() else None}


@pytest.fixture(scope="module")
def proxy(tmp_path_factory, module_netns_factory):
    proxy = Proxy(tmp_path_factory.mktemp("l7proxy"))
    try:
        proxy.create(module_netns_factory)
        yield proxy
    finally:
        proxy.destroy()


def test_missing_pin_fails_before_anything(proxy):
    proxy.stopped()
    result = proxy.run(expect_failure=True, bpffs_dir=os.path.join(BPFFS_DIR, "nothing"))
    assert "run palisade.ebpf.datapath" in result["msg"] and "\n" not in result["msg"]
    assert proxy.master() is None
    assert not os.path.getsize(os.path.join(proxy.dir, "rules.map"))


def test_check_mode_before_start(proxy):
    proxy.stopped()
    before = proxy.snapshot()
    result = proxy.run(check=True)
    assert result["changed"] and result["started"] and result["registered"]
    assert "+ start haproxy" in result["changes"]
    assert result["before"]["running"] is False and result["before"]["registered"] is False
    assert result["after"]["running"] is True and result["after"]["registered"] is True
    assert sizes(result["after"]) == {"endpoints": 1, "identities": 4, "rules": 2}
    assert proxy.snapshot() == before


def test_first_run_starts_and_registers(proxy):
    proxy.stopped()
    result = proxy.run()
    assert result["changed"] and result["started"] and result["registered"] and not result["reloaded"]
    # the map files existed empty (the role's shape): filled, not created
    assert result["changes"][:3] == ["~ map endpoints: +1", "~ map identities: +4", "~ map rules: +2"], result["changes"]
    assert "+ start haproxy" in result["changes"]
    assert "+ register listener 127.0.0.1:%d in the proxy socket map" % PORT in result["changes"]
    assert result["pid"] == proxy.master()
    inode, cookie = proxy.listener()
    assert proxy.slot0() == cookie
    assert sizes(result["before"]) == {"endpoints": 0, "identities": 0, "rules": 0}  # the role's empty files
    assert result["after"] == {"running": True, "pid": proxy.master(), "config": result["after"]["config"],
                               "maps": result["after"]["maps"], "registered": True, "tcp_early_demux": "0"}
    assert sizes(result["after"]) == {"endpoints": 1, "identities": 4, "rules": 2}
    for name in ("endpoints", "identities", "rules"):
        with open(os.path.join(proxy.dir, name + ".map"), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest().startswith(result["after"]["maps"][name]["sha256"])
    with open(proxy.config, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest().startswith(result["after"]["config"])
    assert result["listener"]["inode"] == inode and result["listener"]["cookie"] == cookie
    with open(os.path.join(proxy.dir, "identities.map")) as f:
        assert f.read() == "10.1.1.10 70001\n10.1.1.11 70002\n10.2.0.0/16 16777217\n127.0.0.1 4242\n"
    with open(os.path.join(proxy.dir, "rules.map")) as f:
        assert f.read() == "p1 r-allow\np2 r-deny\n"
    assert proxy.get() == "v1 id=4242 rule=r-allow"
    assert sh(*in_netns("cat", "/proc/sys/net/ipv4/tcp_early_demux")).strip() == "0"


def test_second_run_changes_nothing(proxy):
    proxy.started()
    before = proxy.snapshot()
    result = proxy.run()
    assert not result["changed"] and result["changes"] == [], result["changes"]
    assert not (result["started"] or result["reloaded"] or result["registered"]) and result["map_writes"] == 0
    assert result["before"] == result["after"] and result["after"]["registered"] is True
    assert proxy.snapshot() == before


def test_module_through_ansible_unchanged_and_check_diff(proxy):
    proxy.started()
    result, output = proxy.run_ansible()
    assert result["changed"] is False and result["changes"] == [], output
    before = proxy.snapshot()
    maps = {"endpoints": MAPS["endpoints"], "rules": {"p1": "r-other", "p3": "r-new"}}
    result, output = proxy.run_ansible(check=True, diff=True, maps=maps)
    assert result["changed"] is True, output
    assert "~ map rules: +1 ~1 -1" in result["changes"] and "~ runtime map rules: +1 ~1 -1" in result["changes"], result["changes"]
    assert "~ map rules: +1 ~1 -1" in output  # the diff's prepared text
    # its before/after: only the rules map differs (same size, other content)
    assert result["before"]["maps"]["rules"]["entries"] == result["after"]["maps"]["rules"]["entries"] == 2
    assert "-map rules: 2 entries, sha256 %s" % result["before"]["maps"]["rules"]["sha256"] in output
    assert "+map rules: 2 entries, sha256 %s" % result["after"]["maps"]["rules"]["sha256"] in output
    assert "-map identities" not in output and "-map endpoints" not in output
    assert proxy.snapshot() == before
    # gathered: the map files as the module wrote them, in the form of its maps option
    result, output = proxy.run_ansible(state="gathered")
    assert result["changed"] is False and "changes" not in result, output
    assert result["gathered"] == {"maps": dict(MAPS, identities={"10.1.1.10": "70001", "10.1.1.11": "70002",
                                                                 "10.2.0.0/16": "16777217", "127.0.0.1": "4242"})}


def test_runtime_map_change_without_reload(proxy):
    proxy.started(marker="v1")
    worker = proxy.worker()
    maps = {"endpoints": MAPS["endpoints"], "rules": {"p1": "r-other", "p3": "r-new"}}
    result = proxy.run(maps=maps)
    assert result["changes"] == ["~ map rules: +1 ~1 -1", "~ runtime map rules: +1 ~1 -1"], result["changes"]
    assert not result["reloaded"] and not result["started"] and result["map_writes"] == 4
    assert proxy.worker() == worker
    assert proxy.runtime_map("rules") == {"p1": "r-other", "p3": "r-new"}
    assert proxy.get() == "v1 id=4242 rule=r-other"
    assert not proxy.run(maps=maps)["changed"]
    assert proxy.run()["changed"]  # back to MAPS
    assert proxy.runtime_map("rules") == MAPS["rules"]


def test_runtime_drift_is_repaired(proxy):
    proxy.started(marker="v1")
    proxy.cli("set map %s/rules.map p1 hand-made" % proxy.dir)
    proxy.cli("add map %s/endpoints.map 10.9.9.9 stray" % proxy.dir)
    assert proxy.get() == "v1 id=4242 rule=hand-made"
    result = proxy.run()
    assert result["changes"] == ["~ runtime map endpoints: -1", "~ runtime map rules: ~1"], result["changes"]
    assert proxy.runtime_map("rules") == MAPS["rules"] and proxy.runtime_map("endpoints") == MAPS["endpoints"]
    assert proxy.get() == "v1 id=4242 rule=r-allow"
    assert not proxy.run()["changed"]


def test_config_change_reloads_keeping_listener(proxy):
    proxy.started(marker="v1")
    master, worker = proxy.master(), proxy.worker()
    inode, cookie = proxy.listener()
    assert proxy.slot0() == cookie
    proxy.write_config(marker="v2")
    load = subprocess.Popen(in_netns(TARGET_PYTHON, "-c", LOAD, "3", str(PORT)), stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.8)
        result = proxy.run()
    finally:
        out, _err = load.communicate(timeout=20)
    ok, bad, errors = json.loads(out)
    print("requests during the reload: %d ok, %d failed" % (ok, bad))
    assert result["changes"] == ["~ reload haproxy (configuration changed)"], result["changes"]
    assert result["reloaded"] and not result["started"] and not result["registered"]
    assert proxy.master() == master and proxy.worker() != worker
    assert proxy.listener() == (inode, cookie)     # the same socket survived the reload
    assert proxy.slot0() == cookie                 # so the sockmap entry is still valid
    assert ok > 100 and bad == 0, (ok, bad, errors)  # no refused or failed request during the reload
    assert proxy.get() == "v2 id=4242 rule=r-allow"
    assert not proxy.run()["changed"]


def test_killed_haproxy_is_restarted_and_registered_again(proxy):
    proxy.started(marker="v2")
    master = proxy.master()
    old = proxy.listener()
    pids = [master] + children(master)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    deadline = time.time() + 5
    while any(alive(pid) for pid in pids) and time.time() < deadline:
        time.sleep(0.05)
    assert proxy.listener() is None
    assert proxy.slot0() is None  # the kernel drops a closed socket from the sockmap
    result = proxy.run()
    assert result["started"] and result["registered"] and not result["reloaded"], result
    assert result["changes"] == ["+ start haproxy", "+ register listener 127.0.0.1:%d in the proxy socket map" % PORT]
    new = proxy.listener()
    assert new is not None and new != old and proxy.slot0() == new[1]
    assert proxy.get() == "v2 id=4242 rule=r-allow"
    assert not proxy.run()["changed"]


def test_large_runtime_difference_reloads(proxy):
    proxy.started()
    worker = proxy.worker()
    inode, cookie = proxy.listener()
    rows = IPCACHE + [["10.50.%d.%d/32" % (i // 250, i % 250 + 1), 80000 + i] for i in range(1200)]
    result = proxy.run(ipcache_packed=pack_ipcache(rows))
    assert result["changes"] == ["~ map identities: +1200", "~ reload haproxy (1200 runtime map changes, more than 1000)"]
    assert result["reloaded"] and proxy.worker() != worker and proxy.listener() == (inode, cookie)
    assert len(proxy.runtime_map("identities")) == 1204
    assert not proxy.run(ipcache_packed=pack_ipcache(rows))["changed"]
    assert proxy.run()["changes"] == ["~ map identities: -1200", "~ reload haproxy (1200 runtime map changes, more than 1000)"]


def test_invalid_config_is_not_reloaded(proxy):
    proxy.started()
    master, worker, listener = proxy.master(), proxy.worker(), proxy.listener()
    with open(proxy.config) as f:
        good = f.read()
    with open(proxy.config, "a") as f:
        f.write("frontend broken\n    no-such-keyword here\n")
    try:
        result = proxy.run(expect_failure=True)
        assert "haproxy.cfg is not valid" in result["msg"], result
        assert (proxy.master(), proxy.worker(), proxy.listener()) == (master, worker, listener)
    finally:
        with open(proxy.config, "w") as f:
            f.write(good)
    assert not proxy.run()["changed"]  # the recorded configuration is the good one


def test_absent_stops_and_cleans_up(proxy):
    proxy.started()
    master = proxy.master()
    pids = [master] + children(master)
    before = proxy.snapshot()
    check = proxy.run(check=True, state="absent")
    assert check["changed"] and "- stop haproxy" in check["changes"]
    assert proxy.snapshot() == before
    result = proxy.run(state="absent")
    assert result["changed"] and result["changes"][0] == "- stop haproxy", result["changes"]
    assert not any(alive(pid) for pid in pids)
    assert proxy.listener() is None and proxy.slot0() is None
    assert sorted(os.listdir(proxy.dir)) == ["haproxy.cfg"]
    again = proxy.run(state="absent")
    assert not again["changed"] and again["changes"] == []


def test_start_failure_reports_haproxy_output(proxy):
    proxy.stopped()
    code = ("import socket, time; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
            "s.bind(('127.0.0.1', %d)); s.listen(); print('ready', flush=True); time.sleep(60)" % PORT)
    blocker = subprocess.Popen(in_netns(TARGET_PYTHON, "-c", code), stdout=subprocess.PIPE, text=True)
    try:
        assert blocker.stdout.readline().strip() == "ready"
        result = proxy.run(expect_failure=True)
        assert result["msg"].startswith("HAProxy failed to start"), result
        assert "cannot bind" in (result["details"] or "") or "Address already in use" in (result["details"] or ""), result
        assert proxy.master() is None
    finally:
        blocker.kill()
        blocker.wait()
    assert proxy.run(state="absent")["changed"]  # the map files and state written before the failure
    assert sorted(os.listdir(proxy.dir)) == ["haproxy.cfg"]
