# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark P9 - the bytes a run ships to each host's datapath and proxy:

    .venv/bin/python bench/p9_transfer.py [--quick] [--out JSON] [--doc MD]

The reference fleet (tools/fleetgen, 1,000 hosts x 60 endpoints, 1,000
policies; --quick: 50 hosts) goes through palisade.ebpf.fleet_state's
computation (plugin_utils/_fleet.py, with its cache and share store), then,
for a sample of hosts, through the datapath action plugin itself
(plugins/action/datapath.py) with the host's side in place of the module:
the artifact handling the module does (module_utils/_datapath/artifacts.py,
each host's copies in a directory of its own) and its program cache (a set
of compiled hashes). What is counted is the module arguments the action
plugin sends, as JSON, over every attempt, plus the L7 proxy's IP table
argument on hosts that run the proxy: what crosses the wire besides
Ansible's own module code, which is the same for every run.

"Before" is what the roles sent until issue 10 for the same state: the
host's datapath want with the whole IP table packed, and the rendered
source, every run; the proxy's table packed again on L7 hosts.

Runs: first (every host new), no-op, one endpoint's labels changed to a new
identity, then to an existing one (tools/fleetgen.change_one_endpoint).
"""

from __future__ import absolute_import, division, print_function

import json
import os
import shutil
import sys
import tempfile
import time
from types import SimpleNamespace

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "collections"))
import p2_p4_lib as lib  # noqa: E402  pylint: disable=wrong-import-position
from tools import fleetgen  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.palisade.ebpf.plugins.action.datapath import ActionModule  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.palisade.ebpf.plugins.module_utils import _artifact as artifact  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.palisade.ebpf.plugins.module_utils._datapath import artifacts as dp_artifacts  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.palisade.ebpf.plugins.module_utils._datapath.programs import source_hash  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.palisade.ebpf.plugins.plugin_utils import _fleet, _want  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.palisade.ebpf.plugins.plugin_utils._render import datapath as datapath_render  # noqa: E402  pylint: disable=wrong-import-position

HEADING = "## P9 — bytes shipped to each host per run"
GOALS = {"one_change_bytes": 10 * 1024}
SAMPLE = 20  # hosts followed through every run, spread over the fleet
BPFFS = "/sys/fs/bpf/palisade-p9"
SETTINGS = {"l7_redirect": True, "l7_proxy_port": 15001}


class Host:
    """One host's side of the datapath module: its kept copies and compiled renderings."""

    def __init__(self, name, directory):
        self.name = name
        self.copies = artifact.LocalCopies(directory)
        self.objects = dp_artifacts.policy_copies(directory)
        self.compiled = set()

    def run_task(self, state):
        """The datapath action plugin's task for this host; (bytes sent, attempts, how)."""
        task = SimpleNamespace(args={"bpffs_dir": BPFFS, "fleet": state, "settings": SETTINGS, "node_ipv4": "192.0.2.1"},
                               async_val=0, check_mode=False, action="palisade.ebpf.datapath")
        plugin = ActionModule(task, SimpleNamespace(_shell=SimpleNamespace(tmpdir="/nonexistent")), SimpleNamespace(),
                              SimpleNamespace(get_basedir=lambda: ROOT), SimpleNamespace(template=lambda v: v))

        def execute_module(module_name=None, module_args=None, task_vars=None):
            resolved = dp_artifacts.resolve(module_args["artifacts"], self.copies, self.objects)
            names = list(resolved.stale)
            held = source_hash(module_args["source"]) if module_args.get("source") else module_args["source_hash"]
            if held not in self.compiled and not module_args.get("source"):
                names.append("program")
            if names:
                return {"changed": False, "stale": names, "missing_objects": resolved.missing}
            self.compiled.add(held)
            resolved.keep(self.copies, self.objects)
            return {"changed": resolved.how != {"fleet": "kept", "host": "kept"}, "transfer": dict(resolved.how)}

        plugin._execute_module = execute_module  # pylint: disable=protected-access
        result = plugin.run(task_vars={"inventory_hostname": self.name})
        if result.get("failed"):
            raise RuntimeError("%s: %s" % (self.name, result.get("msg")))
        transfer = result["transfer"]
        return transfer["bytes"], transfer["attempts"], (transfer["fleet"], transfer["host"])


def before_bytes(state, host, source):
    """The module arguments the roles sent before: datapath want with the
    packed table and the source; the proxy's packed table on L7 hosts."""
    want = _want.host_want(state, host, "datapath")
    args = dict(want, bpffs_dir=BPFFS, settings=SETTINGS, node_ipv4="192.0.2.1", source=source)
    sent = len(json.dumps(args, separators=(",", ":")))
    if state["hosts"][host]["l7proxy"] == "some":
        sent += len(json.dumps(want["ipcache_packed"]))
    return sent


def after_proxy_bytes(state, host):
    if state["hosts"][host]["l7proxy"] != "some":
        return 0
    return len(json.dumps(_want.host_want(state, host, "l7proxy")["ipcache_version"], separators=(",", ":")))


def run(spec):
    fleet = fleetgen.generate(spec)
    names = sorted(fleet.hostvars)
    step = max(1, len(names) // SAMPLE)
    workdir = tempfile.mkdtemp(prefix="palisade-p9.")
    source = datapath_render.render(SETTINGS, BPFFS)
    try:
        changes = [("first run, every host new", None), ("no-op re-run", None),
                   ("one endpoint's labels changed to a new identity", "new-identity"),
                   ("one endpoint's labels changed to an existing identity", "existing-identity")]
        hostvars = json.loads(json.dumps(fleet.hostvars))
        changed = fleetgen.change_one_endpoint(json.loads(json.dumps(fleet.hostvars)), "new-identity")
        sample = sorted(set(names[::step][:SAMPLE]) | {changed["host"]})
        hosts = dict((name, Host(name, os.path.join(workdir, "hosts", name))) for name in sample)
        results = {"spec": {"hosts": spec.hosts, "endpoints_per_host": spec.endpoints_per_host,
                            "policies": spec.policies}, "sample": sample, "runs": []}
        for label, how in changes:
            if how is not None:
                hostvars = json.loads(json.dumps(fleet.hostvars))
                results.setdefault("changes", {})[how] = fleetgen.change_one_endpoint(hostvars, how)
            started = time.time()
            state, dummy = _fleet.fleet_state(hostvars, fleet.namespaces, fleet.policy_sources, {},
                                              cache_dir=os.path.join(workdir, "cache"))
            state = json.loads(json.dumps(state))
            computed = time.time() - started
            per_host = {}
            for name, host in hosts.items():
                sent, attempts, how_sent = host.run_task(state)
                per_host[name] = {"bytes": sent + after_proxy_bytes(state, name), "attempts": attempts,
                                  "how": list(how_sent), "before": before_bytes(state, name, source),
                                  "l7": state["hosts"][name]["l7proxy"] == "some",
                                  "host_changed": how_sent[1] != "kept"}
            row = {"run": label, "fleet_state_s": round(computed, 2), "hosts": per_host,
                   "table_entries": len(_want.host_want(state, sample[0], "datapath")["ipcache_packed"]) // 12}
            results["runs"].append(row)
            sizes = sorted(h["bytes"] for h in per_host.values())
            print("%-55s bytes per host: median %d, max %d (before: median %d)" % (
                label, lib.median(sizes), sizes[-1], lib.median([h["before"] for h in per_host.values()])), flush=True)
        return results
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _kb(value):
    return "%s B" % format(int(value), ",") if value < 10240 else "%s KB" % format(int(round(value / 1024.0)), ",")


def render(res):
    spec = res["spec"]
    m = res["machine"]
    lines = [HEADING, "",
             "Module arguments the datapath and L7 proxy tasks send to a host, as JSON, per run (issue 10, item 2), "
             "through the datapath action plugin itself with the module's artifact handling standing in for the host "
             "(`bench/p9_transfer.py`). Not counted: Ansible's own module code and connection, which do not change "
             "with the policy. \"Before\" is what the roles sent for the same state until issue 10: the host's "
             "datapath want with the whole IP table packed, and the rendered C source, on every run, and the packed "
             "table again for the L7 proxy.", "",
             "- Machine: %d CPUs, %s; date %s; code: git %s" % (m["nproc"], m["cpu_model"], res["date"], res["git_head"]),
             "- Command: `make bench` → `.venv/bin/python bench/p9_transfer.py` (raw figures: `bench/results/p9.json`)",
             "- Fleet (tools/fleetgen.py, seed 1): %s hosts × %s endpoints, %s policies; %d hosts followed (every %dth, "
             "and the changed endpoint's host), each with its own copies and program cache." % (
                 format(spec["hosts"], ","), spec["endpoints_per_host"], format(spec["policies"], ","),
                 len(res["sample"]), max(1, spec["hosts"] // SAMPLE)),
             "", "| run | before: median per host | now: median | now: max | hosts whose own artifact changed | "
                 "attempts (max) | fleet table | fleet_state |",
             "|---|---|---|---|---|---|---|---|"]
    for row in res["runs"]:
        hosts = list(row["hosts"].values())
        now = sorted(h["bytes"] for h in hosts)
        table = sorted(set(h["how"][0] for h in hosts))
        lines.append("| %s | %s | %s | %s | %d of %d | %d | %s | %.1f s |" % (
            row["run"], _kb(lib.median([h["before"] for h in hosts])), _kb(lib.median(now)), _kb(now[-1]),
            sum(1 for h in hosts if h["host_changed"]), len(hosts), max(h["attempts"] for h in hosts),
            ", ".join(table), row["fleet_state_s"]))
    one = [r for r in res["runs"] if "changed" in r["run"]]
    worst = max(h["bytes"] for r in one for h in r["hosts"].values())
    lines.extend(["", "| goal | result |", "|---|---|",
                  "| after one endpoint's change, bytes shipped per host ≤ 10 KB | %s |" % lib.verdict(
                      worst <= GOALS["one_change_bytes"], "at most %s per host in both one-change runs" % _kb(worst))])
    for how, change in sorted((res.get("changes") or {}).items()):
        lines.append("")
        lines.append("The %s change: `%s` on `%s`, labels `%s` → `%s`." % (
            how, change["endpoint"], change["host"], ",".join("%s=%s" % kv for kv in sorted(change["labels_before"].items())),
            ",".join("%s=%s" % kv for kv in sorted(change["labels_after"].items()))))
    return "\n".join(lines) + "\n"


def main(argv=None):
    return lib.fleet_main(argv, __doc__.splitlines()[0], "p9", HEADING, run, render, None)


if __name__ == "__main__":
    sys.exit(main())
