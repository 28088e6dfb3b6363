# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared machinery of the datapath benchmarks P2 (bench/p2_reconcile.py),
P3 (bench/p3_compile.py) and P4 (bench/p4_packet.py).

Every one of them has two halves:

- the controller half runs in the venv (jinja2): renders the programs with
  the collection's action-plugin code, makes a scratch network namespace
  (names carry the pid), runs the host half in it, writes the results and
  the docs section, and removes the namespaces and the bpffs directory by
  name whatever happens;
- the host half runs with /usr/bin/python3 (bcc, pyroute2, the managed
  host's interpreter) inside the scratch namespace and prints one JSON line.

Nothing here touches the root namespace's interfaces or firewall.
"""

from __future__ import absolute_import, division, print_function

import datetime
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
DOC = os.path.join(ROOT, "docs", "benchmarks.md")
HOST_PYTHON = "/usr/bin/python3"
BPFFS = "/sys/fs/bpf"
for _path in (os.path.join(ROOT, "collections"), HERE):
    if _path not in sys.path:
        sys.path.insert(0, _path)


# --- controller half ---------------------------------------------------------

def render(settings, bpffs_dir):
    from ansible_collections.palisade.ebpf.plugins.plugin_utils._render import datapath as datapath_render  # pylint: disable=import-outside-toplevel
    return datapath_render.render(settings, bpffs_dir)


class Run(object):
    """What a benchmark's main() needs once its arguments are read."""

    def __init__(self, args, cfg, out, doc, res):
        self.args, self.cfg, self.out, self.doc, self.res = args, cfg, out, doc, res


def start(argv, description, benchmark, name, quick, full, host_run):
    """The shared command line of P2-P4. ``--host`` runs ``host_run(job)`` (the
    half inside the scratch namespace) and returns None; otherwise a Run with
    the configuration, output paths and the result skeleton."""
    import argparse  # pylint: disable=import-outside-toplevel
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out")
    p.add_argument("--doc")
    p.add_argument("--host")
    args = p.parse_args(argv)
    if args.host:
        print(json.dumps(host_run(host_job())))
        return None
    need_root(name)
    cfg = quick if args.quick else full
    short = benchmark.lower()
    out = args.out or os.path.join(RESULTS, "%s-quick.json" % short if args.quick else "%s.json" % short)
    doc = args.doc or (None if args.quick else DOC)
    res = {"benchmark": benchmark, "date": now(), "machine": machine(), "code": code_version(),
           "config": cfg, "quick": args.quick}
    return Run(args, cfg, out, doc, res)


def fleet_main(argv, description, short, heading, run, render, extra=None):
    """The shared command line of the controller-side fleet benchmarks (P8,
    P9): the reference fleet (--quick: 50 hosts), ``run(spec)`` -> figures,
    published with ``render``."""
    import argparse  # pylint: disable=import-outside-toplevel
    from tools import fleetgen  # pylint: disable=import-outside-toplevel
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="50 hosts, docs untouched")
    p.add_argument("--out", help="raw figures (default bench/results/%s.json, --quick: %s-quick.json)" % (short, short))
    p.add_argument("--doc", help="markdown file whose section is rewritten (default docs/benchmarks.md; --quick: none)")
    args = p.parse_args(argv)
    spec = fleetgen.scaled(3000, seed=1) if args.quick else fleetgen.REFERENCE
    results = {"date": now(), "machine": machine(), "git_head": code_version()["git_head"]}
    results.update(extra or {})
    results.update(run(spec))
    out = args.out or os.path.join(RESULTS, "%s-quick.json" % short if args.quick else "%s.json" % short)
    publish(results, out, args.doc or (None if args.quick else DOC), heading, render)
    return 0


def need_root(name):
    if os.geteuid() != 0:
        sys.stderr.write("%s: needs root (network namespaces, bpffs, BPF_PROG_TEST_RUN)\n" % name)
        sys.exit(77)
    if not os.path.exists(HOST_PYTHON):
        sys.stderr.write("%s: %s missing\n" % (name, HOST_PYTHON))
        sys.exit(77)


class Scratch(object):
    """Scratch netns (+ optional extra ones), a bpffs subdirectory and a temp
    directory, all named <tag>-<pid>; removed by name on exit."""

    def __init__(self, tag):
        self.tag = "%s-%d" % (tag, os.getpid())
        self.netns = self.tag
        self.extra_netns = []
        self.bpffs = os.path.join(BPFFS, self.tag)
        self.tmp = None

    def __enter__(self):
        self.tmp = tempfile.mkdtemp(prefix=self.tag + "-")
        subprocess.run(["ip", "netns", "add", self.netns], check=True)
        self.ip_batch(self.netns, ["link set lo up"])
        return self

    def add_netns(self, name):
        subprocess.run(["ip", "netns", "add", name], check=True)
        self.extra_netns.append(name)
        return name

    @staticmethod
    def ip_batch(netns, lines):
        if lines:
            subprocess.run(["ip", "-n", netns, "-batch", "-"], input="\n".join(lines) + "\n", text=True, check=True)

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as handle:
            handle.write(text)
        return path

    def host(self, script, job, netns=None, timeout=3600):
        """Run ``script --host <job.json>`` with /usr/bin/python3 in the netns; its last stdout line is JSON."""
        path = self.write("job-%d.json" % len(os.listdir(self.tmp)), json.dumps(job))
        # nsenter, not `ip netns exec`: the latter remounts /sys, hiding the bpffs.
        cmd = ["nsenter", "--net=/run/netns/" + (netns or self.netns), HOST_PYTHON, script, "--host", path]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode != 0:
            raise RuntimeError("host half failed (%d):\n%s%s" % (proc.returncode, proc.stdout[-4000:], proc.stderr[-4000:]))
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def __exit__(self, *exc):
        for name in [self.netns] + self.extra_netns:
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        shutil.rmtree(self.bpffs, ignore_errors=True)
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
        lock_base = "/run/lock" if os.path.isdir("/run/lock") else "/tmp"
        for sub in ("", "/a", "/main", "/newflow", "/est", "/floor"):
            digest = hashlib.sha256((self.bpffs + sub).encode("utf-8")).hexdigest()[:12]
            try:
                os.unlink(os.path.join(lock_base, "palisade-datapath-%s.lock" % digest))
            except OSError:
                pass
        return False


def machine():
    model = "unknown"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    host_py = subprocess.run([HOST_PYTHON, "-c", "import platform, bcc; print(platform.python_version()); "
                              "print(getattr(bcc, '__version__', '?'))"], capture_output=True, text=True, check=False)
    lines = host_py.stdout.split()
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "kernel": platform.release(),
        "host_python": lines[0] if lines else None,
        "bcc": lines[1] if len(lines) > 1 else None,
        "loadavg": os.getloadavg()[0],
    }


def code_version():
    paths = [os.path.join(ROOT, "bpf")] + [os.path.join(ROOT, "plugins", "module_utils", "_datapath")]
    digest = hashlib.sha256()
    for base in paths:
        for dirpath, _dirs, files in sorted(os.walk(base)):
            for name in sorted(files):
                if name.endswith((".py", ".j2", ".h")):
                    path = os.path.join(dirpath, name)
                    with open(path, "rb") as handle:
                        digest.update(os.path.relpath(path, ROOT).encode() + b"\0" + handle.read() + b"\0")
    head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    return {"git_head": head.stdout.strip() or None, "datapath_sha256": digest.hexdigest()[:16]}


def facts_line(results, script, out):
    m, c = results["machine"], results["code"]
    return ("- Machine: %d CPUs (`nproc`), %s, kernel %s, host Python %s, bcc %s; 1-minute load average at the start %.1f\n"
            "- Date: %s; code: git %s, datapath sources (bpf/, module_utils/_datapath/) sha256 %s\n"
            "- Command: `make bench` → `.venv/bin/python %s` (raw figures: `%s`)\n"
            % (m["nproc"], m["cpu_model"], m["kernel"], m["host_python"], m["bcc"], m["loadavg"], results["date"],
               c["git_head"], c["datapath_sha256"], script, os.path.relpath(out, ROOT)))


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def save(results, out):
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as handle:
        json.dump(results, handle, indent=2, sort_keys=False)
        handle.write("\n")


def publish(results, out, doc, heading, render):
    """The end of every benchmark: the raw figures to ``out``; with a doc,
    its section rewritten from ``render(results)``."""
    save(results, out)
    if doc:
        write_section(doc, heading, render(results))


def write_section(path, heading, section):
    """Replace the section starting with ``heading`` ('## P<n> — ...', up to
    the next '## ') or insert it after the last of the sections P1..P<n-1>
    present (the P1 section, written by bench/p1_policy.py, is left as it is)."""
    number = int(heading.split()[1][1:])
    after = tuple("## P%d " % i for i in range(1, number))
    text = "# Benchmarks\n\nFigures written by `make bench` (bench/run.sh).\n"
    if os.path.exists(path):
        with open(path) as handle:
            text = handle.read()
    start = text.find(heading)
    if start >= 0:
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + section.rstrip("\n") + "\n" + (text[end:] if end >= 0 else "")
    else:
        pos = -1
        for other in after:
            found = text.find(other)
            if found >= 0:
                nxt = text.find("\n## ", found + len(other))
                pos = max(pos, nxt if nxt >= 0 else len(text))
        if pos < 0 or pos >= len(text):
            text = text.rstrip("\n") + "\n\n" + section
        else:
            text = text[:pos].rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n" + text[pos:]
    with open(path, "w") as handle:
        handle.write(text.rstrip("\n") + "\n")


def median(values):
    return statistics.median(values)


def verdict(met, text):
    return ("**met** — " if met else "**missed** — ") + text


# --- host half helpers (/usr/bin/python3) -----------------------------------

def host_job():
    with open(sys.argv[sys.argv.index("--host") + 1]) as handle:
        return json.load(handle)


def tcp_packet(src, dst, sport, dport, flags=0x02):
    import socket  # pylint: disable=import-outside-toplevel
    import struct  # pylint: disable=import-outside-toplevel
    eth = b"\x0e" * 6 + b"\x0a" * 6 + b"\x08\x00"
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 1, 0, 64, 6, 0, socket.inet_aton(src), socket.inet_aton(dst))
    tcp = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 0x50, flags, 65535, 0, 0)
    return eth + ip + tcp


class TestRun(object):
    """BPF_PROG_TEST_RUN through bcc's libbpf (bpf_prog_test_run_opts)."""

    def __init__(self):
        import ctypes as ct  # pylint: disable=import-outside-toplevel
        from bcc import libbcc  # pylint: disable=import-outside-toplevel

        class Opts(ct.Structure):
            _fields_ = [("sz", ct.c_size_t), ("data_in", ct.c_void_p), ("data_out", ct.c_void_p),
                        ("data_size_in", ct.c_uint32), ("data_size_out", ct.c_uint32), ("ctx_in", ct.c_void_p),
                        ("ctx_out", ct.c_void_p), ("ctx_size_in", ct.c_uint32), ("ctx_size_out", ct.c_uint32),
                        ("retval", ct.c_uint32), ("repeat", ct.c_int), ("duration", ct.c_uint32), ("flags", ct.c_uint32),
                        ("cpu", ct.c_uint32), ("batch_size", ct.c_uint32)]
        self.ct = ct
        self.Opts = Opts
        self.lib = libbcc.lib
        self.lib.bpf_prog_test_run_opts.argtypes = [ct.c_int, ct.POINTER(Opts)]

    def __call__(self, fd, packet, ifindex, repeat, runs=5):
        """[ns per repetition of each run], retval; struct __sk_buff up to ifindex (offset 40)."""
        import struct  # pylint: disable=import-outside-toplevel
        ct = self.ct
        ctx_size = 44
        data = ct.create_string_buffer(packet, len(packet))
        ctx = ct.create_string_buffer(ctx_size)
        struct.pack_into("=I", ctx, 40, ifindex)
        out, retval = [], None
        for dummy in range(runs):
            opts = self.Opts(sz=ct.sizeof(self.Opts), data_in=ct.cast(data, ct.c_void_p), data_size_in=len(packet),
                             ctx_in=ct.cast(ctx, ct.c_void_p), ctx_size_in=ctx_size, repeat=repeat)
            ret = self.lib.bpf_prog_test_run_opts(fd, ct.byref(opts))
            if ret != 0:
                raise RuntimeError("BPF_PROG_TEST_RUN failed: %d" % ret)
            out.append(opts.duration)
            retval = opts.retval
        return out, retval
