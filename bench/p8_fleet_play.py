# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark P8 - the fleet computation through ansible-playbook, as a user pays it:

    .venv/bin/python bench/p8_fleet_play.py [--quick] [--out JSON] [--doc MD]

P1 times the computation alone; this times `ansible-playbook` on a play that
holds only the fleet role's task (palisade.ebpf.fleet_state, run_once,
registered), end to end: Ansible's start, inventory and variables, the
action, the registered result. The fleet is tools/fleetgen's reference
(1,000 hosts x 60 endpoints, 1,000 policies; --quick: 50 hosts) in two
layouts, side by side in one run:

- ``host_vars``: an inventory directory, one host_vars file per host (what
  `fleetgen --write` writes), Ansible's default configuration;
- ``fleet file``: one fleet file read by the palisade.ebpf.fleet inventory
  plugin (`fleetgen --write-fleet-file`), with the ansible.cfg that
  docs/fleet-scale.md recommends.

Policies are files beside the inventory in both. Each layout runs, with a
cache directory of its own: the first run (empty cache), a no-op re-run,
one endpoint's labels changed to a new identity, and the same endpoint
changed to an existing identity. Per run: wall time and peak RSS (the
largest process: ansible-playbook or its worker), and the objects the run
wrote to the share store. The layouts' runs are interleaved so that machine
load hits both alike.
"""

from __future__ import absolute_import, division, print_function

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)
import p2_p4_lib as lib  # noqa: E402  pylint: disable=wrong-import-position
from tools import fleetgen  # noqa: E402  pylint: disable=wrong-import-position

HEADING = "## P8 — the fleet computation through ansible-playbook"
GOALS = {"first": 30.0, "noop": 10.0, "rss_mib": 2048}
PLAY = """- name: Only the fleet computation
  hosts: all
  gather_facts: false
  roles:
    - role: palisade.ebpf.fleet
"""
RECOMMENDED_CFG = os.path.join(ROOT, "docs", "examples", "ansible-large-fleet.cfg")
CHANGED_HOST_INDEX = 0.5  # the host in the middle of the fleet
MEASURE = ("import resource, subprocess, sys, time\n"
           "t = time.monotonic(); p = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)\n"
           "w = time.monotonic() - t\n"
           "sys.stdout.write(p.stdout.decode('utf-8', 'replace'))\n"
           "print('P8-MEASURE %d %.3f %d' % (p.returncode, w, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n")


class Layout:
    """One inventory layout in its own directory, with its own cache."""

    def __init__(self, name, workdir, fleet, fleet_file):
        self.name = name
        self.dir = os.path.join(workdir, name.replace(" ", "_"))
        self.cache = os.path.join(self.dir, "cache")
        self.fleet_file = fleet_file
        if fleet_file:
            fleetgen.write_fleet_file(fleet, self.dir)
            self.inventory = os.path.join(self.dir, "fleet.fleet.json")
            self.config = RECOMMENDED_CFG
        else:
            fleetgen.write_inventory(fleet, self.dir)
            self.inventory = os.path.join(self.dir, "hosts.yml")
            self.config = os.path.join(self.dir, "ansible.cfg")
            with open(self.config, "w") as handle:
                handle.write("[defaults]\n")  # Ansible's defaults, nothing else
        self.play = os.path.join(self.dir, "play.yml")
        with open(self.play, "w") as handle:
            handle.write(PLAY)

    def set_labels(self, host, index, labels):
        """Give endpoint ``index`` of ``host`` these labels, as a user edits the inventory."""
        if self.fleet_file:
            with open(self.inventory) as handle:
                data = json.load(handle)
            data["hosts"][host]["palisade_endpoints"][index]["labels"] = labels
            with open(self.inventory, "w") as handle:
                json.dump(data, handle, separators=(",", ":"))
        else:
            import yaml  # pylint: disable=import-outside-toplevel
            path = os.path.join(self.dir, "host_vars", host + ".yml")
            with open(path) as handle:
                data = yaml.safe_load(handle)
            data["palisade_endpoints"][index]["labels"] = labels
            with open(path, "w") as handle:
                yaml.safe_dump(data, handle, default_flow_style=False, sort_keys=False, explicit_start=True)

    def run(self):
        env = dict(os.environ, ANSIBLE_CONFIG=self.config, XDG_CACHE_HOME=self.cache,
                   ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, "collections"))
        argv = [sys.executable, "-c", MEASURE, os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
                "-i", self.inventory, self.play, "-v"]
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=self.dir, check=False)
        out = proc.stdout.decode("utf-8", "replace")
        measured = re.search(r"^P8-MEASURE (\d+) ([\d.]+) (\d+)$", out, re.M)
        if not measured or measured.group(1) != "0":
            raise RuntimeError("%s: ansible-playbook failed:\n%s" % (self.name, out[-4000:]))
        written = re.search(r'"?objects_written"?: (\d+)', out)
        mode = re.search(r'"?policy_computation"?: "?(\w+)', out)
        return {"wall_s": float(measured.group(2)), "rss_mib": int(measured.group(3)) / 1024.0,
                "objects_written": int(written.group(1)) if written else None,
                "policy_computation": mode.group(1) if mode else None}


def run(spec):
    fleet = fleetgen.generate(spec)
    hosts = sorted(fleet.hostvars)
    host = hosts[int(len(hosts) * CHANGED_HOST_INDEX)]
    endpoint = fleet.hostvars[host]["palisade_endpoints"][0]
    original = dict(endpoint["labels"])
    others = [ep for h in hosts for ep in fleet.hostvars[h]["palisade_endpoints"] if ep["labels"] != original]
    existing = dict(others[0]["labels"])
    steps = [("first run, empty cache", None), ("no-op re-run", None),
             ("one endpoint's labels changed to a new identity", dict(original, version="v9-hotfix")),
             ("one endpoint's labels changed to an existing identity", existing)]
    workdir = tempfile.mkdtemp(prefix="palisade-p8.")
    try:
        layouts = [Layout("host_vars", workdir, fleet, False), Layout("fleet file", workdir, fleet, True)]
        results = {"spec": {"hosts": spec.hosts, "endpoints_per_host": spec.endpoints_per_host,
                            "policies": spec.policies, "identities": spec.identities},
                   "changed_endpoint": {"host": host, "key": "%s/%s" % (endpoint.get("namespace", "default"), endpoint["name"]),
                                        "labels": original, "new": steps[2][1], "existing": existing},
                   "steps": [name for name, dummy in steps], "layouts": {}}
        for step, (name, labels) in enumerate(steps):
            for layout in layouts if step % 2 == 0 else list(reversed(layouts)):
                if labels is not None:
                    layout.set_labels(host, 0, labels)
                started = time.time()
                figures = layout.run()
                print("%-12s %-55s %7.2f s  %6.0f MiB  objects %s  (%s)" % (
                    layout.name, name, figures["wall_s"], figures["rss_mib"], figures["objects_written"],
                    figures["policy_computation"]), flush=True)
                figures["started"] = started
                results["layouts"].setdefault(layout.name, []).append(figures)
        return results
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def render(res):
    spec = res["spec"]
    lines = [HEADING, "",
             "`ansible-playbook` on a play holding only the fleet role (palisade.ebpf.fleet_state, once, registered), "
             "end to end (issue 10, item 3). Two inventory layouts of the same fleet, their runs interleaved in one "
             "benchmark run: `host_vars` (one file per host, Ansible's default configuration) and `fleet file` (the "
             "palisade.ebpf.fleet inventory plugin, `docs/examples/ansible-large-fleet.cfg`). Each layout keeps its own "
             "cache.", ""]
    m = res["machine"]
    lines.append("- Machine: %d CPUs (`nproc`), %s, kernel %s; 1-minute load average at the start %.1f" % (
        m["nproc"], m["cpu_model"], m["kernel"], m["loadavg"]))
    lines.append("- Date: %s; code: git %s; Ansible %s" % (res["date"], res["git_head"], res["ansible"]))
    lines.append("- Command: `make bench` → `.venv/bin/python bench/p8_fleet_play.py` (raw figures: "
                 "`bench/results/p8.json`)")
    lines.append("- Fleet (tools/fleetgen.py, seed 1): %s hosts × %s endpoints, %s identities, %s policies (files "
                 "beside the inventory)." % (format(spec["hosts"], ","), spec["endpoints_per_host"],
                                             format(spec["identities"], ","), format(spec["policies"], ",")))
    change = res["changed_endpoint"]
    lines.append("- The changed endpoint: `%s` on `%s`." % (change["key"], change["host"]))
    lines.extend(["", "| run | host_vars: wall | peak RSS | fleet file: wall | peak RSS | objects written | ratio |",
                  "|---|---|---|---|---|---|---|"])
    hv, ff = res["layouts"]["host_vars"], res["layouts"]["fleet file"]
    for i, name in enumerate(res["steps"]):
        lines.append("| %s | %.2f s | %.0f MiB | %.2f s | %.0f MiB | %s | %.1f× faster |" % (
            name, hv[i]["wall_s"], hv[i]["rss_mib"], ff[i]["wall_s"], ff[i]["rss_mib"], ff[i]["objects_written"],
            hv[i]["wall_s"] / ff[i]["wall_s"]))
    lines.extend(["", "### Goals (fleet file layout)", "", "| goal | result |", "|---|---|"])
    first, noop = ff[0], ff[1]
    peak = max(r["rss_mib"] for r in ff)
    for label, value, goal, unit in (("first run ≤ 30 s", first["wall_s"], GOALS["first"], "s"),
                                     ("no-op re-run, warm cache ≤ 10 s", noop["wall_s"], GOALS["noop"], "s"),
                                     ("peak RSS ≤ 2 GiB", peak, GOALS["rss_mib"], "MiB")):
        verdict = "met" if value <= goal else "missed"
        lines.append("| %s | **%s** — %.2f %s (goal ≤ %s %s) |" % (label, verdict, value, unit, format(goal, "g"), unit))
    return "\n".join(lines) + "\n"


def main(argv=None):
    return lib.fleet_main(argv, __doc__.splitlines()[0], "p8", HEADING, run, render, {"ansible": _ansible_version()})


def _ansible_version():
    from ansible.release import __version__  # pylint: disable=import-outside-toplevel
    return __version__


if __name__ == "__main__":
    sys.exit(main())
