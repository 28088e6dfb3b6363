# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark P1 - policy computation on the controller.

What one controller run does, timed stage by stage on a synthetic fleet
(tools/fleetgen.py):

    hostvars --model.load_fleet--> fleet --parse.parse_documents--> rules
    --engine.compute (+ persist.PersistentCache load/save)--> FleetPolicy
    --host_share(h) for every host--> shares

Measured:
  (a) full computation (no cache) for the reference fleet: wall time and the
      process's peak RSS;
  (b) one endpoint's labels changed, with the persistent cache warmed by the
      previous run, side by side with (a): absolute and as a ratio of (a);
      a no-op re-run with the warm cache as the floor of that path;
  (c) how the full (and incremental) time grows from 100 endpoints to the
      reference size, every proportion of the reference kept (fleetgen.scaled).

Every run is a fresh worker process (this file with --worker), so imports,
module-level caches and peak RSS never carry over from one run to the next;
each timing is repeated and the median and minimum are reported. Inputs are
generated once per configuration and handed to the workers as a pickle, so
the generator's own memory is not in the workers' peak RSS (the inputs
themselves are: the controller holds them too).

    python bench/p1_policy.py                  # full benchmark -> bench/results/p1.json + docs/benchmarks.md
    python bench/p1_policy.py --quick          # smoke configuration, seconds; no docs update
    python bench/p1_policy.py --profile        # cProfile of one full run at the reference size
    python bench/p1_policy.py --profile --profile-change new-identity   # ... of the run after one change
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import gc
import hashlib
import json
import math
import os
import pickle
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "collections"))

from tools import fleetgen  # noqa: E402  pylint: disable=wrong-import-position

GOALS = {"full_s": 10.0, "peak_rss_mib": 2048.0, "change_ratio": 0.02}
CHANGES = ("new-identity", "existing-identity")
CHANGE_TEXT = {
    "new-identity": "one endpoint's labels changed to a new identity",
    "existing-identity": "one endpoint's labels changed to an existing identity",
}
FULL_SIZES = (100, 1000, 5000, 20000)        # + the reference size
QUICK_SIZES = (100, 300)
QUICK_ENDPOINTS = 600
RESULTS = BENCH / "results"
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## P1 — policy computation"


# --- one controller run (inside a worker process) --------------------------

def _rss_mib():
    """Current resident set size of this process."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def _peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _digest(share):
    text = json.dumps(share, sort_keys=True, default=repr, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _modules():
    """model, parse, engine, persist: imported by workers only (and before
    any timer starts), never by the orchestrator."""
    # pylint: disable=import-outside-toplevel
    from ansible_collections.palisade.ebpf.plugins.plugin_utils import _model as model
    from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import engine, parse, persist
    return model, parse, engine, persist


def controller_run(fleet, cache_path=None):
    """One run of the controller's policy computation, timed per stage.

    Returns (stage seconds, FleetPolicy, fleet model). With ``cache_path`` the
    persistent cache (a directory) is loaded before and saved after the
    computation, and both count.
    """
    model, parse, engine, persist = _modules()
    stages = {}
    clock = time.perf_counter()

    def lap(name):
        nonlocal clock
        now = time.perf_counter()
        stages[name] = now - clock
        clock = now

    # As the fleet_state action does: the whole run with the cyclic collector
    # paused, and the cache's validated hosts and parsed documents reused.
    with engine.controller_run():
        cache = persist.PersistentCache(cache_path) if cache_path else None
        fleet_model = model.load_fleet(fleet.hostvars, fleet.namespaces,
                                       cache=cache.model_cache() if cache is not None else None)
        lap("load_fleet")
        rules = parse.parse_documents(fleet.policy_sources(), memo=cache.parse_memo() if cache is not None else None)
        lap("parse")
        if cache is not None:
            cache.state = cache.load()  # what compute() would load first; loaded here to time it apart
        lap("cache_load")
        policy = engine.compute(fleet_model, rules, cache=cache)
        lap("compute")
        if cache is not None:
            cache.save()
        lap("cache_save")
        for host in fleet_model["nodes"]:
            policy.host_share(host)
    lap("host_shares")  # resuming the collector included
    return stages, policy, fleet_model


def worker(job):
    """Run one job in this (fresh) process and return its measurements."""
    with open(job["inputs"], "rb") as f:
        fleet = pickle.load(f)
    change = fleetgen.change_one_endpoint(fleet.hostvars, job["change"]) if job.get("change") else None
    _modules()
    gc.collect()
    rss_inputs = _rss_mib()
    load_before = os.getloadavg()[0]
    cpu, wall = time.process_time(), time.perf_counter()
    stages, policy, fleet_model = controller_run(fleet, job.get("cache"))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    # The run leaves its objects to the next full collection (engine.controller_run):
    # what that one costs, reported apart (it is not part of the run's time).
    deferred_gc = time.perf_counter()
    gc.collect()
    deferred_gc = time.perf_counter() - deferred_gc
    result = {
        "wall_s": wall,
        "cpu_s": cpu,
        "stages_s": stages,
        "rss_inputs_mib": rss_inputs,
        "peak_rss_mib": _peak_rss_mib(),
        "peak_rss_children_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0,
        "loadavg_1min": max(load_before, os.getloadavg()[0]),
        "deferred_full_gc_s": deferred_gc,
        "change": change,
    }
    if job.get("digest_hosts"):
        hosts = sorted(fleet_model["nodes"])
        picked = sorted({hosts[0], hosts[-1], change["host"] if change else hosts[len(hosts) // 2]})
        result["digests"] = {h: _digest(policy.host_share(h)) for h in picked}
        share = policy.host_share(picked[0])
        result["share_json_bytes"] = len(json.dumps(share, default=repr, separators=(",", ":")))
    return result


# --- orchestration ---------------------------------------------------------

class Runner:
    """Starts worker processes and collects their results."""

    def __init__(self, workdir, timeout, log):
        self.workdir = Path(workdir)
        self.timeout = timeout
        self.log = log

    def inputs(self, spec):
        """Generate the fleet for ``spec`` once; workers load the pickle."""
        path = self.workdir / ("inputs-%d-%d.pickle" % (spec.endpoints, spec.seed))
        if not path.exists():
            fleet = fleetgen.generate(spec)
            with open(path, "wb") as f:
                pickle.dump(fleet, f, protocol=pickle.HIGHEST_PROTOCOL)
        return str(path)

    def run(self, label, **job):
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(job)]
        started = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout, check=False)
        if proc.returncode != 0:
            raise RuntimeError("worker %s failed (exit %d):\n%s" % (label, proc.returncode, proc.stderr[-4000:]))
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        warnings = [line for line in proc.stderr.splitlines() if line.strip()]
        if warnings:
            result["stderr_lines"] = len(warnings)
            result["stderr_sample"] = warnings[:3]
        self.log("  %-52s %8.3f s  peak %7.1f MiB  (process %.1f s)" % (
            label, result["wall_s"], result["peak_rss_mib"], time.perf_counter() - started))
        return result

    def warm_cache(self, inputs, name):
        """Run once with an empty cache; return (its result, the cache directory)."""
        directory = self.workdir / ("cache-" + name)
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir()
        result = self.run("%s endpoints: first run, empty cache" % name, inputs=inputs, cache=str(directory / "cache"))
        return result, directory

    def copy_cache(self, warm, name):
        """A private copy of the warm cache (a run updates the cache it is given)."""
        directory = self.workdir / ("cache-copy-" + name)
        shutil.rmtree(directory, ignore_errors=True)
        shutil.copytree(warm, directory)
        return str(directory / "cache")


def summarize(runs):
    """Median/min of the wall time, median of each stage, max of peak RSS."""
    walls = [r["wall_s"] for r in runs]
    stages = {k: statistics.median(r["stages_s"][k] for r in runs) for k in runs[0]["stages_s"]}
    return {
        "runs": len(runs),
        "median_s": statistics.median(walls),
        "min_s": min(walls),
        "max_s": max(walls),
        "cpu_median_s": statistics.median(r["cpu_s"] for r in runs),
        "loadavg_max": max(r["loadavg_1min"] for r in runs),
        "stages_median_s": stages,
        "deferred_full_gc_median_s": statistics.median(r.get("deferred_full_gc_s", 0.0) for r in runs),
        "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
        "rss_inputs_mib": statistics.median(r["rss_inputs_mib"] for r in runs),
        "wall_all_s": walls,
    }


def measure(runner, spec, reps, changes):
    """Full runs and, interleaved with them, incremental runs for ``changes``
    (each from a fresh copy of the cache the first run warmed), plus a no-op
    re-run; then a check that each incremental result equals a full
    computation of the changed inventory on sampled hosts."""
    name = "%d endpoints" % spec.endpoints
    runner.log("%s: %s" % (name, dataclasses.asdict(spec)))
    inputs = runner.inputs(spec)
    first, warm = runner.warm_cache(inputs, str(spec.endpoints))
    runs = {"full": [], "noop": []}
    runs.update({c: [] for c in changes})
    for rep in range(reps):
        runs["full"].append(runner.run("%s: full #%d" % (name, rep + 1), inputs=inputs))
        runs["noop"].append(runner.run("%s: no-op re-run #%d" % (name, rep + 1),
                                       inputs=inputs, cache=runner.copy_cache(warm, "noop")))
        for change in changes:
            last = rep == reps - 1
            runs[change].append(runner.run("%s: %s #%d" % (name, change, rep + 1), inputs=inputs, change=change,
                                           cache=runner.copy_cache(warm, change), digest_hosts=last))
    verification = {}
    for change in changes:
        reference = runner.run("%s: full, %s (check)" % (name, change), inputs=inputs, change=change, digest_hosts=True)
        incremental = runs[change][-1]
        verification[change] = {
            "hosts_compared": sorted(reference["digests"]),
            "equal": reference["digests"] == incremental["digests"],
        }
        runs.setdefault("share_json_bytes", reference.get("share_json_bytes"))
    full = summarize(runs["full"])
    result = {
        "spec": dataclasses.asdict(spec),
        "endpoints": spec.endpoints,
        "first_run_with_cache": {k: first[k] for k in ("wall_s", "cpu_s", "stages_s", "peak_rss_mib")},
        "full": full,
        "noop": summarize(runs["noop"]),
        "changes": {},
        "verification": verification,
        "one_host_share_json_bytes": runs.get("share_json_bytes"),
        "change_described": runs[changes[0]][0]["change"] if changes else None,
        "stderr_sample": runs["full"][0].get("stderr_sample"),
    }
    for change in changes:
        inc = summarize(runs[change])
        engine_stages = ("cache_load", "compute", "cache_save", "host_shares")
        inc["ratio_median"] = inc["median_s"] / full["median_s"]
        inc["ratio_min"] = inc["min_s"] / full["min_s"]
        inc["engine_only_ratio"] = (sum(inc["stages_median_s"][k] for k in engine_stages)
                                    / sum(full["stages_median_s"][k] for k in engine_stages))
        result["changes"][change] = inc
    return result


# --- report ----------------------------------------------------------------

def machine():
    model = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "memory_gib": round(mem_kib / 1024.0 / 1024.0, 1),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "kernel": platform.release(),
    }


def code_version():
    """Which code the figures are for: git HEAD, and a digest of the measured
    sources (the model and the policy engine) as they are in the work tree."""
    sources = [ROOT / "plugins" / "plugin_utils" / "_model.py"] + sorted((ROOT / "plugins" / "plugin_utils" / "_policy").glob("*.py"))
    digest = hashlib.sha256()
    for path in sources:
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--"] + [str(p) for p in sources],
                           capture_output=True, text=True, check=False)
    return {"git_head": head.stdout.strip() or None, "sources_modified_or_untracked": bool(dirty.stdout.strip()),
            "sources_sha256": digest.hexdigest()[:16]}


def goals(target):
    full, rss = target["full"]["median_s"], target["full"]["peak_rss_mib"]
    checks = {
        "full_s": {"goal": GOALS["full_s"], "value": full, "met": full <= GOALS["full_s"]},
        "peak_rss_mib": {"goal": GOALS["peak_rss_mib"], "value": rss, "met": rss <= GOALS["peak_rss_mib"]},
    }
    for change, inc in target["changes"].items():
        checks["change_ratio:" + change] = {"goal": GOALS["change_ratio"], "value": inc["ratio_median"],
                                            "met": inc["ratio_median"] <= GOALS["change_ratio"]}
    return checks


def _s(seconds):
    return "%.3f s" % seconds if seconds < 10 else "%.1f s" % seconds


def _verdict(check, unit):
    value, goal = check["value"], check["goal"]
    if unit == "%":
        text = "%.2f%% (goal ≤ %.0f%%)" % (100 * value, 100 * goal)
    elif unit == "MiB":
        text = "%.0f MiB (goal ≤ %.0f MiB)" % (value, goal)
    else:
        text = "%s (goal ≤ %s)" % (_s(value), _s(goal))
    factor = value / goal if goal else float("inf")
    if check["met"]:
        return "**met** — %s, %.0f%% of the budget" % (text, 100 * factor)
    return "**missed** — %s, %.1f× the goal" % (text, factor)


STAGES = ("load_fleet", "parse", "cache_load", "compute", "cache_save", "host_shares")


def render(results):
    """The docs/benchmarks.md section for these results."""
    m, t = results["machine"], results["target"]
    spec = t["spec"]
    checks = results["goals"]
    lines = [
        SECTION,
        "",
        "Controller-side policy computation (issue 3, item 8): inventory → `model.load_fleet` → "
        "`parse.parse_documents` → `engine.compute` → `host_share(h)` for every host.",
        "",
        "- Machine: %d CPUs (`nproc`), %s, %.0f GiB RAM, %s %s, kernel %s" % (
            m["nproc"], m["cpu_model"], m["memory_gib"], m["implementation"], m["python"], m["kernel"]),
        "- Date: %s; code: git %s%s, model + policy sources sha256 %s" % (
            results["date"], results["code"]["git_head"],
            " + uncommitted changes" if results["code"]["sources_modified_or_untracked"] else "", results["code"]["sources_sha256"]),
        "- Command: `make bench` → `%s` (raw figures: `%s`)" % (results["command"], results["raw"]),
        "- Fleet (tools/fleetgen.py, seed {}): {:,} hosts × {} endpoints = {:,} endpoints, {:,} endpoint identities, "
        "{} namespaces, {:,} policies ({}).".format(
            spec["seed"], spec["hosts"], spec["endpoints_per_host"], spec["hosts"] * spec["endpoints_per_host"],
            results["fleet_stats"]["identities"], spec["namespaces"], spec["policies"],
            ", ".join("%d %s" % (n, k) for k, n in results["fleet_stats"]["policy_kinds"].items())),
        "- Each figure: median (min) of %d runs, each in a fresh process; peak RSS is the largest `ru_maxrss` "
        "of those processes (the inputs held in memory, %.0f MiB, included)." % (t["full"]["runs"], t["full"]["rss_inputs_mib"]),
        "- Machine load: the 1-minute load average reached %.1f during the reference runs%s." % (
            t["full"]["loadavg_max"], " — above the CPU count: other work shared the machine, so the medians are "
            "inflated; the minimum is the better estimate" if t["full"]["loadavg_max"] > m["nproc"] else ""),
        "",
        "### Goals",
        "",
        "| goal | result |",
        "|---|---|",
        "| full computation ≤ 10 s | %s |" % _verdict(checks["full_s"], "s"),
        "| peak RSS ≤ 2 GiB | %s |" % _verdict(checks["peak_rss_mib"], "MiB"),
    ]
    for change in t["changes"]:
        lines.append("| %s ≤ 2%% of full | %s |" % (CHANGE_TEXT[change], _verdict(checks["change_ratio:" + change], "%")))
    lines += [
        "",
        "### Reference fleet: full run, re-runs with the persistent cache",
        "",
        "| run | wall median (min) | CPU median | ratio to full | " + " | ".join(STAGES) + " | peak RSS |",
        "|---|---|---|---|" + "---|" * len(STAGES) + "---|",
    ]

    def row(label, s, ratio):
        stages = " | ".join("%.3f" % s["stages_median_s"].get(k, 0.0) for k in STAGES)
        return "| %s | %s (%s) | %s | %s | %s | %.0f MiB |" % (
            label, _s(s["median_s"]), _s(s["min_s"]), _s(s["cpu_median_s"]), ratio, stages, s["peak_rss_mib"])

    lines.append(row("full, no cache", t["full"], "100%"))
    first = t["first_run_with_cache"]
    lines.append("| first run, empty cache (1 run) | %s | %s | %.0f%% | %s | %.0f MiB |" % (
        _s(first["wall_s"]), _s(first["cpu_s"]), 100 * first["wall_s"] / t["full"]["median_s"],
        " | ".join("%.3f" % first["stages_s"].get(k, 0.0) for k in STAGES), first["peak_rss_mib"]))
    lines.append(row("no-op re-run, warm cache", t["noop"], "%.2f%%" % (100 * t["noop"]["median_s"] / t["full"]["median_s"])))
    for change, inc in t["changes"].items():
        lines.append(row(CHANGE_TEXT[change], inc, "%.2f%% (of mins: %.2f%%; engine stages only: %.2f%%)" % (
            100 * inc["ratio_median"], 100 * inc["ratio_min"], 100 * inc["engine_only_ratio"])))
    verified = ", ".join("%s %s" % (c, "equal" if v["equal"] else "**DIFFERENT**") for c, v in t["verification"].items())
    lines += [
        "",
        "Stage columns are medians in seconds. The changed endpoint is `%s` on `%s`: labels %s → %s. "
        "Incremental shares compared with a full computation of the changed inventory (hosts %s): %s. "
        "One host's share serialized as JSON: %s bytes." % (
            t["change_described"]["endpoint"], t["change_described"]["host"],
            _labels(t["change_described"]["labels_before"]), _labels(t["change_described"]["labels_after"]),
            ", ".join(next(iter(t["verification"].values()))["hosts_compared"]), verified,
            "{:,}".format(t["one_host_share_json_bytes"] or 0)),
        "",
        "### Growth with fleet size",
        "",
        "Every proportion of the reference fleet is kept (60 endpoints per host, 12 endpoints per identity, "
        "one policy per 5 identities, 3,000 endpoints per namespace), with floors of 2 hosts, 10 identities, "
        "%d policies (one of each template) and 2 namespaces for the small fleets (`fleetgen.scaled`)." % fleetgen.TEMPLATE_COUNT,
        "",
        "| endpoints | hosts | identities | policies | full median (min) | µs per endpoint | one change (new identity) | ratio | peak RSS |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for point in results["scaling"]:
        s, full = point["spec"], point["full"]
        inc = point["changes"].get("new-identity")
        lines.append("| {:,} | {:,} | {:,} | {:,} | {} ({}) | {:.0f} | {} | {} | {:.0f} MiB |".format(
            point["endpoints"], s["hosts"], point["identities"], s["policies"], _s(full["median_s"]), _s(full["min_s"]),
            1e6 * full["median_s"] / point["endpoints"], _s(inc["median_s"]) if inc else "—",
            "%.1f%%" % (100 * inc["ratio_median"]) if inc else "—", full["peak_rss_mib"]))
    lines += ["", "### Reading", "", results.get("reading") or "_(to be written after the run)_", ""]
    return "\n".join(lines)


def _exponent(small, large, key=None):
    """k in time ~ n^k between two growth points (whole run, or one stage)."""
    t1 = small["full"]["stages_median_s"][key] if key else small["full"]["median_s"]
    t2 = large["full"]["stages_median_s"][key] if key else large["full"]["median_s"]
    if t1 <= 0 or t2 <= 0 or large["endpoints"] == small["endpoints"]:
        return None
    return math.log(t2 / t1) / math.log(large["endpoints"] / small["endpoints"])


def reading(results):
    """A paragraph stating what the numbers say, written from the numbers
    (so a re-run of `make bench` never leaves a stale reading behind)."""
    t = results["target"]
    full = t["full"]
    stages = full["stages_median_s"]
    total = sum(stages.values()) or 1.0
    order = sorted(stages, key=stages.get, reverse=True)
    parts = ["At %s endpoints the full run takes %s; %s" % (
        "{:,}".format(t["endpoints"]), _s(full["median_s"]),
        ", ".join("`%s` %.0f%% (%s)" % (k, 100 * stages[k] / total, _s(stages[k])) for k in order[:3] if stages[k] > 0))]
    points = results["scaling"]
    if len(points) >= 2:
        small, large = points[-2], points[-1]
        k = _exponent(small, large)
        big = large["full"]["stages_median_s"]
        # Stages growing faster than the fleet, the biggest (in seconds) first.
        steep = sorted(((big[s], s, _exponent(small, large, s)) for s in STAGES
                        if small["full"]["stages_median_s"].get(s, 0) > 0.005), reverse=True)
        steep = [(s, e, secs) for secs, s, e in steep if e is not None and e > 1.2]
        if k is not None:
            text = "from %s to %s endpoints the time grows ×%.1f for ×%.1f the fleet (≈ n^%.2f)" % (
                "{:,}".format(small["endpoints"]), "{:,}".format(large["endpoints"]),
                large["full"]["median_s"] / small["full"]["median_s"], large["endpoints"] / small["endpoints"], k)
            if steep:
                text += "; growing faster than the fleet: " + ", ".join(
                    "`%s` (≈ n^%.2f, %s)" % (s, e, _s(secs)) for s, e, secs in steep)
            elif k <= 1.15:
                text += ": linear"
            parts.append(text)
    parts.append("peak RSS is %.0f MiB (inputs %.0f MiB), %.1f KiB per endpoint" % (
        full["peak_rss_mib"], full["rss_inputs_mib"], 1024 * full["peak_rss_mib"] / t["endpoints"]))
    for change, inc in t["changes"].items():
        s = inc["stages_median_s"]
        parts.append("%s: %s = %.2f%% of full (load_fleet+parse %s, engine stages %s = %.2f%% of "
                     "the full run's engine stages)" % (
                         CHANGE_TEXT[change], _s(inc["median_s"]), 100 * inc["ratio_median"], _s(s["load_fleet"] + s["parse"]),
                         _s(sum(s[k] for k in STAGES[2:])), 100 * inc["engine_only_ratio"]))
    noop = t["noop"]
    floor = ", ".join("`%s` %.1f%%" % (k, 100 * noop["stages_median_s"][k] / full["median_s"]) for k in STAGES
                      if noop["stages_median_s"].get(k, 0) > 0.005 * full["median_s"])
    parts.append("a no-op re-run with the warm cache already costs %s = %.1f%% of full (%s): that is work every run "
                 "does whatever changed, so a change can cost no less; the %.0f%% goal (%s here) needs each of those "
                 "stages to cost in proportion to the change" % (
                     _s(noop["median_s"]), 100 * noop["median_s"] / full["median_s"], floor,
                     100 * GOALS["change_ratio"], _s(GOALS["change_ratio"] * full["median_s"])))
    bad = [c for c, v in t["verification"].items() if not v["equal"]]
    parts.append("incremental results %s a full recomputation on the sampled hosts" % (
        "DIFFER from (%s)" % ", ".join(bad) if bad else "equal"))
    missed = [name for name, check in results["goals"].items() if not check["met"]]
    parts.append("goals missed: %s" % ", ".join(missed) if missed else "all goals met")
    return "; ".join(parts) + "."


def _labels(labels):
    return "`%s`" % ",".join("%s=%s" % kv for kv in sorted(labels.items()))


def write_doc(path, section):
    """Replace the P1 section of ``path`` (up to the next '## ' heading), or append it."""
    path = Path(path)
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n\nFigures written by `make bench` (bench/run.sh).\n"
    start = text.find(SECTION)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(SECTION))
        text = text[:start] + section + (text[end + 1:] if end >= 0 else "")
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


# --- profile ---------------------------------------------------------------

def profile(spec, out, change=None, top=40):
    """cProfile one run in this process and write the hot spots to ``out``:
    a full run, or with ``change`` a run after that change with the cache
    warmed by an (unprofiled) run before it."""
    import cProfile  # pylint: disable=import-outside-toplevel
    import io  # pylint: disable=import-outside-toplevel
    import pstats  # pylint: disable=import-outside-toplevel

    fleet = fleetgen.generate(spec)
    _modules()
    with tempfile.TemporaryDirectory(prefix="palisade-p1-profile.") as workdir:
        cache = None
        if change:
            cache = os.path.join(workdir, "cache")
            controller_run(fleet, cache)
            fleetgen.change_one_endpoint(fleet.hostvars, change)
        gc.collect()
        profiler = cProfile.Profile()
        profiler.enable()
        stages = controller_run(fleet, cache)[0]
        profiler.disable()
    buf = io.StringIO()
    buf.write("P1 profile: %s, %s\nstages (s, under the profiler): %s\n\n" % (
        dataclasses.asdict(spec), "after change %s, warm cache" % change if change else "full run, no cache",
        json.dumps({k: round(v, 3) for k, v in stages.items()})))
    for key in ("tottime", "cumulative"):
        buf.write("=== top %d by %s ===\n" % (top, key))
        pstats.Stats(profiler, stream=buf).strip_dirs().sort_stats(key).print_stats(top)
    profiler.dump_stats(str(out) + ".pstats")
    Path(out).write_text(buf.getvalue(), encoding="utf-8")
    return stages


# --- command line ----------------------------------------------------------

def _parse_args(argv):
    p = argparse.ArgumentParser(description="Benchmark P1: policy computation on the controller.")
    p.add_argument("--quick", action="store_true", help="small smoke configuration (seconds); does not touch the docs")
    p.add_argument("--endpoints", type=int, help="reference fleet size (default 60000; --quick: %d)" % QUICK_ENDPOINTS)
    p.add_argument("--sizes", help="comma-separated fleet sizes for the growth table (default %s; --quick: %s)" % (
        ",".join(map(str, FULL_SIZES)), ",".join(map(str, QUICK_SIZES))))
    p.add_argument("--reps", type=int, help="repetitions per timing (default 5; --quick: 1)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", help="results JSON (default bench/results/p1.json; --quick: bench/results/p1-quick.json)")
    p.add_argument("--doc", help="markdown file whose P1 section is rewritten (default docs/benchmarks.md; --quick: none)")
    p.add_argument("--no-doc", action="store_true", help="do not write the markdown section")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds one worker may take")
    p.add_argument("--profile", action="store_true", help="cProfile one full run at the reference size and stop")
    p.add_argument("--profile-change", choices=CHANGES, help="with --profile: profile the run after this change, cache warm")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None):
    args = _parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0

    reps = args.reps or (1 if args.quick else 5)
    size = args.endpoints or (QUICK_ENDPOINTS if args.quick else fleetgen.REFERENCE.endpoints)
    sizes = [int(s) for s in args.sizes.split(",") if s] if args.sizes else list(QUICK_SIZES if args.quick else FULL_SIZES)
    sizes = [s for s in sizes if s < size]
    target_spec = (dataclasses.replace(fleetgen.REFERENCE, seed=args.seed) if size == fleetgen.REFERENCE.endpoints
                   else fleetgen.scaled(size, seed=args.seed))
    out = Path(args.out or RESULTS / ("p1-quick.json" if args.quick else "p1.json"))
    doc = None if args.no_doc else (args.doc or (None if args.quick else str(DOC)))

    def log(text):
        print(text, file=sys.stderr, flush=True)

    if args.profile:
        out.parent.mkdir(parents=True, exist_ok=True)
        report = out.with_name("p1-profile%s.txt" % ("-" + args.profile_change if args.profile_change else ""))
        stages = profile(target_spec, report, args.profile_change)
        log("profile (%s, %s): %s -> %s" % (dataclasses.asdict(target_spec), args.profile_change or "full run", stages, report))
        return 0

    started = time.time()
    with tempfile.TemporaryDirectory(prefix="palisade-p1.") as workdir:
        runner = Runner(workdir, args.timeout, log)
        scaling = []
        for n in sizes:
            point = measure(runner, fleetgen.scaled(n, seed=args.seed), reps, ("new-identity",))
            scaling.append(point)
        target = measure(runner, target_spec, reps, CHANGES)
        stats = fleetgen.generate(target_spec).stats

    for point in scaling + [target]:
        point["identities"] = min(point["spec"]["identities"], point["endpoints"])
    results = {
        "benchmark": "P1 policy computation",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join([".venv/bin/python", "bench/p1_policy.py"] + (sys.argv[1:] if argv is None else list(argv))),
        "machine": machine(),
        "code": code_version(),
        "goals": {},
        "fleet_stats": stats,
        "target": target,
        "scaling": scaling + [target],
        "duration_s": time.time() - started,
        "raw": os.path.relpath(out.resolve(), ROOT) if out.resolve().is_relative_to(ROOT) else str(out),
    }
    results["goals"] = goals(target)
    results["reading"] = reading(results)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    log("results: %s" % out)
    if doc:
        write_doc(doc, render(results))
        log("figures: %s (section '%s')" % (doc, SECTION))
    for name, check in results["goals"].items():
        unit = "%" if "ratio" in name else "MiB" if "rss" in name else "s"
        log("goal %-30s %s" % (name, _verdict(check, unit).replace("**", "")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
