# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark P3 - compile once versus configure-and-load per endpoint (run as root):

    .venv/bin/python bench/p3_compile.py [--quick] [--out JSON] [--doc MD]

1. compile: the real rendering (bpf/ with default settings) through bcc
   (clang), then the verifier load of both programs, then, as the
   reconciler does it, compile + load + pin (programs.compile_and_pin);
   each repeated in a fresh bpffs directory;
2. per endpoint, program cached: the reconciler (module_utils entry point,
   /usr/bin/python3) configuring 100 endpoints on a host whose rendering is
   pinned (config map write + two tc filters attached by fd each), then
   adding endpoint 101; between repetitions a reconcile with no endpoints
   detaches everything again. The compiler never runs in step 2 (checked).

The controller and host halves share bench/p2_p4_lib.py with P2 and P4.
"""

from __future__ import absolute_import, division, print_function

import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import p2_p4_lib as lib  # noqa: E402  pylint: disable=wrong-import-position

HEADING = "## P3 — compile once, configure per endpoint"
GOAL_MS = 5.0
FULL = {"endpoints": 100, "compile_reps": 3, "config_reps": 5}
QUICK = {"endpoints": 5, "compile_reps": 1, "config_reps": 1}


def host(job):
    from bcc import BPF  # pylint: disable=import-outside-toplevel
    from pyroute2 import IPRoute  # pylint: disable=import-outside-toplevel
    from ansible_collections.palisade.ebpf.plugins.module_utils._datapath import programs, reconcile  # pylint: disable=import-outside-toplevel

    cfg = job["cfg"]
    with open(job["source"]) as handle:
        source = handle.read()
    res = {"compile": [], "compile_and_pin": [], "configure": [], "add_one": []}
    for rep in range(cfg["compile_reps"]):
        os.makedirs(job["bpffs"] + "/main/maps")
        t0 = time.perf_counter()
        bpf = BPF(text=source)
        t1 = time.perf_counter()
        for name in programs.PROGRAMS:
            bpf.load_func(name, BPF.SCHED_CLS)
        t2 = time.perf_counter()
        bpf.cleanup()
        shutil.rmtree(job["bpffs"] + "/main", ignore_errors=True)
        t3 = time.perf_counter()
        loaded = programs.compile_and_pin(source, job["bpffs"] + "/main", programs.source_hash(source))
        t4 = time.perf_counter()
        loaded.close()
        res["compile"].append({"clang_s": t1 - t0, "verifier_load_s": t2 - t1, "total_s": t2 - t0})
        res["compile_and_pin"].append(t4 - t3)
        if rep + 1 < cfg["compile_reps"]:
            shutil.rmtree(job["bpffs"] + "/main", ignore_errors=True)

    def state(count):
        eps, ipc = [], [["0.0.0.0/0", 2]]
        for i in range(count):
            ip = "10.50.%d.%d" % (i // 250, i % 250 + 1)
            eps.append({"key": "bench/ep%d" % i, "ifname": "lxb%d" % i, "ipv4": ip, "identity": 1000 + i, "policy": "web"})
            ipc.append([ip + "/32", 1000 + i])
        pol = {"web": {"ingress": {"enforced": True, "entries": [[0, 6, 80, 80, "allow"], [1001, 6, 443, 443, "allow"]]}}}
        return {"bpffs_dir": job["bpffs"] + "/main", "ipcache": ipc, "endpoints": eps, "policies": pol}

    def reconcile_to(count):
        return reconcile.Reconciler(state(count), {}, source, False, IPRoute).present()

    n = cfg["endpoints"]
    for dummy in range(cfg["config_reps"]):
        empty = reconcile_to(0)
        assert not empty["program"]["compiled"], empty
        bulk = reconcile_to(n)
        one = reconcile_to(n + 1)
        assert not bulk["program"]["compiled"] and not one["program"]["compiled"]
        assert bulk["attachments"]["attached"] == 2 * n and one["attachments"]["attached"] == 2, (bulk, one)
        res["configure"].append({"map_writes_s": bulk["timings"]["map_writes"], "tc_s": bulk["timings"]["tc"],
                                 "total_s": bulk["timings"]["total"], "writes": bulk["writes"]})
        res["add_one"].append({"map_writes_s": one["timings"]["map_writes"], "tc_s": one["timings"]["tc"],
                               "total_s": one["timings"]["total"], "writes": one["writes"]})
    reconcile_to(0)
    return res


def summarise(res, cfg):
    med = lib.median
    n = cfg["endpoints"]
    comp = {k: med([c[k] for c in res["compile"]]) for k in ("clang_s", "verifier_load_s", "total_s")}
    comp["compile_and_pin_s"] = med(res["compile_and_pin"])
    per_ep_ms = [(c["map_writes_s"] + c["tc_s"]) / n * 1000 for c in res["configure"]]
    per_ep_total_ms = [c["total_s"] / n * 1000 for c in res["configure"]]
    add_work_ms = [(c["map_writes_s"] + c["tc_s"]) * 1000 for c in res["add_one"]]
    add_total_ms = [c["total_s"] * 1000 for c in res["add_one"]]
    return {
        "compile": comp,
        "per_endpoint_ms": {"median": med(per_ep_ms), "min": min(per_ep_ms), "max": max(per_ep_ms)},
        "per_endpoint_incl_observe_ms": {"median": med(per_ep_total_ms), "min": min(per_ep_total_ms)},
        "add_one_work_ms": {"median": med(add_work_ms), "min": min(add_work_ms), "max": max(add_work_ms)},
        "add_one_total_ms": {"median": med(add_total_ms), "min": min(add_total_ms), "max": max(add_total_ms)},
        "bulk_map_writes_ms": med([c["map_writes_s"] * 1000 for c in res["configure"]]),
        "bulk_tc_ms": med([c["tc_s"] * 1000 for c in res["configure"]]),
    }


def render_doc(res, cfg, out):
    s, n = res["summary"], cfg["endpoints"]
    per = s["per_endpoint_ms"]
    add = s["add_one_work_ms"]
    worst = max(per["median"], add["median"])
    met = worst <= GOAL_MS
    c = s["compile"]
    lines = [HEADING, "",
             "Compile time of the host's rendering versus the per-endpoint configure-and-load time with the program "
             "cached (issue 4, item 7, P3). In-process timings of the module_utils reconciler under /usr/bin/python3 "
             "(the managed host's interpreter), without Ansible's start-up per task.", "",
             lib.facts_line(res, "bench/p3_compile.py", out).rstrip("\n"),
             "- Compile: median of %d, each in a fresh bpffs directory; configure: median (min–max) of %d "
             "repetitions of {reconcile to 0 endpoints, to %d, to %d} in a scratch netns with veth pairs."
             % (cfg["compile_reps"], cfg["config_reps"], n, n + 1), "",
             "### Goal", "", "| goal | result |", "|---|---|",
             "| configure and load one endpoint ≤ 5 ms (program cached) | %s |" % lib.verdict(
                 met, "%.2f ms per endpoint in a batch of %d, %.2f ms for endpoint %d added alone; %.0f× under the "
                 "LPC 2019 figure (~40 ms)" % (per["median"], n, add["median"], n + 1, 40.0 / max(worst, 1e-6))),
             "", "| step | this datapath | LPC 2019 (Cilium) |", "|---|---|---|",
             "| compile: bcc/clang of the rendering | %.0f ms | ~800 ms |" % (c["clang_s"] * 1000),
             "| load: verifier, both programs | %.0f ms | — |" % (c["verifier_load_s"] * 1000),
             "| compile + load + pin (`programs.compile_and_pin`, what a first run does) | %.0f ms | — |"
             % (c["compile_and_pin_s"] * 1000),
             "| per endpoint, batch of %d: config write + two tc filters (cached program) | %.2f ms (%.2f–%.2f) | ~40 ms |"
             % (n, per["median"], per["min"], per["max"]),
             "| — of which map writes / tc, whole batch | %.2f ms / %.1f ms | |" % (s["bulk_map_writes_ms"], s["bulk_tc_ms"]),
             "| per endpoint, batch of %d, whole reconcile run / %d (observe, plan, write, attach) | %.2f ms | |"
             % (n, n, s["per_endpoint_incl_observe_ms"]["median"]),
             "| endpoint %d added alone: its writes + tc | %.2f ms (%.2f–%.2f) | |" % (n + 1, add["median"], add["min"], add["max"]),
             "| endpoint %d added alone: the whole reconcile run | %.0f ms (%.0f–%.0f) | |"
             % (n + 1, s["add_one_total_ms"]["median"], s["add_one_total_ms"]["min"], s["add_one_total_ms"]["max"]),
             "", "The compiler never runs when an endpoint is added (the pinned program is reused; checked on every "
             "repetition). Load-time specialisation per endpoint, Cilium's way, would cost at least the verifier "
             "load above for every endpoint. The whole run of adding one endpoint is dominated by observing the "
             "host (reading every reconciled map and the tc filters of all interfaces), not by the endpoint; P2 "
             "measures that with a 60,000-entry ipcache."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    run = lib.start(argv, __doc__.splitlines()[0], "P3", "p3_compile", QUICK, FULL, host)
    if run is None:
        return 0
    args, cfg, out, doc, res = run.args, run.cfg, run.out, run.doc, run.res
    with lib.Scratch("palbench-p3") as scratch:
        source = scratch.write("main.c", lib.render({}, scratch.bpffs + "/main"))
        batch = []
        for i in range(cfg["endpoints"] + 1):
            batch += ["link add lxb%d type veth peer name lxp%d" % (i, i), "link set lxb%d up" % i, "link set lxp%d up" % i]
        scratch.ip_batch(scratch.netns, batch)
        res["raw"] = scratch.host(os.path.abspath(__file__), {"cfg": cfg, "source": source, "bpffs": scratch.bpffs})
    res["summary"] = s = summarise(res["raw"], cfg)
    worst = max(s["per_endpoint_ms"]["median"], s["add_one_work_ms"]["median"])
    res["goals"] = {"per_endpoint_ms": {"goal": GOAL_MS, "value": worst, "met": worst <= GOAL_MS}}
    print("compile (clang) %.0f ms, verifier load %.0f ms, compile+load+pin %.0f ms" % (
        s["compile"]["clang_s"] * 1000, s["compile"]["verifier_load_s"] * 1000, s["compile"]["compile_and_pin_s"] * 1000))
    print("per endpoint (batch of %d) %.2f ms; endpoint %d alone %.2f ms (whole run %.0f ms); goal <= %.0f ms: %s" % (
        cfg["endpoints"], s["per_endpoint_ms"]["median"], cfg["endpoints"] + 1, s["add_one_work_ms"]["median"],
        s["add_one_total_ms"]["median"], GOAL_MS, "met" if worst <= GOAL_MS else "MISSED"))
    lib.publish(res, out, doc, HEADING, lambda results: render_doc(results, cfg, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
