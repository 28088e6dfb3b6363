# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark P6 - site.yml on a 20-host lab, as a user runs it (run as root):

    .venv/bin/python bench/p6_lab_play.py [--quick] [--out JSON] [--doc MD]

Builds its own lab (tools/fleetlab.Lab, prefix pb6<pid>): 20 hosts (--quick:
4) reached through the netns connection, 10 endpoints each, three L3/L4
policies and one with HTTP rules whose endpoints live on a quarter of the
hosts, so those hosts run the L7 proxy. Timed with `ansible-playbook`
end to end, in the checkout's ansible.cfg (forks 10): the first deploy, a
no-op re-run, and one endpoint's labels changed to a new identity (with
lab.yml in between, as a runtime would relabel it). Per run: wall time,
`changed` per host, and the bytes the datapath task sent each host (its
``transfer`` result, read from the `-v` output). Real packets check the
deployment before the timed re-runs (verify.yml: an allowed and a denied
probe). The lab is torn down in a finally block (lab.yml absent).
"""

from __future__ import absolute_import, division, print_function

import copy
import json
import os
import re
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import p2_p4_lib as lib  # noqa: E402  pylint: disable=wrong-import-position
from tools.fleetlab import Lab  # noqa: E402  pylint: disable=wrong-import-position

HEADING = "## P6 — site.yml on a 20-host lab"
GOALS = {"first": 60.0, "noop": 20.0}
FULL = {"hosts": 20, "endpoints_per_host": 10}
QUICK = {"hosts": 4, "endpoints_per_host": 10}
APPS = ("web", "api", "db", "cache", "worker")
TRANSFER = re.compile(r'^(?:ok|changed): \[(\S+)\] => (\{.*"transfer".*\})$', re.M)


def hosts_for(cfg):
    hosts = {}
    for i in range(cfg["hosts"]):
        endpoints = []
        for j in range(cfg["endpoints_per_host"]):
            app = "shop" if j == 0 and i % 4 == 0 else APPS[(i + j) % len(APPS)]
            endpoints.append({"name": "e%02d-%02d" % (i, j), "labels": {"app": app, "track": "stable"},
                              "ipv4": "10.96.%d.%d" % (i, 10 + j), "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]})
        hosts["h%02d" % i] = {"palisade_node": {"ipv4": "198.18.6.%d" % (10 + i), "pod_cidr": "10.96.%d.0/24" % i},
                              "palisade_endpoints": endpoints}
    return hosts


def policy(name, app, peer, port, http=None):
    rule = {"fromEndpoints": [{"matchLabels": {"app": peer}}], "toPorts": [{"ports": [{"port": str(port), "protocol": "TCP"}]}]}
    if http:
        rule["toPorts"][0]["rules"] = {"http": http}
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": name, "namespace": "default"},
            "spec": {"endpointSelector": {"matchLabels": {"app": app}}, "ingress": [rule]}}


POLICIES = [policy("db-from-api", "db", "api", 80), policy("api-from-web", "api", "web", 80),
            policy("cache-from-worker", "cache", "worker", 80),
            policy("shop-l7", "shop", "web", 80, [{"method": "GET", "path": "/public"}])]


def timed(lab, log, label, *args):
    started = time.time()
    run = lab.site("-v", *args)
    wall = time.time() - started
    transfers = {}
    for match in TRANSFER.finditer(run.out):
        try:
            result = json.loads(match.group(2))
        except ValueError:
            continue
        if isinstance(result.get("transfer"), dict) and "bytes" in result["transfer"]:
            transfers[match.group(1)] = result["transfer"]
    changed = dict((host, r["changed"]) for host, r in run.recap.items())
    sizes = sorted(t["bytes"] for t in transfers.values())
    log("%-50s %6.1f s  changed on %d hosts  datapath bytes per host: median %s, max %s" % (
        label, wall, sum(1 for c in changed.values() if c), lib.median(sizes) if sizes else "-", sizes[-1] if sizes else "-"))
    return {"run": label, "wall_s": round(wall, 2), "changed": changed, "transfers": transfers}


def main(argv=None):
    run = lib.start(argv, __doc__.splitlines()[0], "P6", "p6_lab_play", QUICK, FULL, lambda job: None)
    if run is None:
        return 0
    cfg, out, doc, res = run.cfg, run.out, run.doc, run.res

    def log(text):
        print(text, flush=True)

    prefix = "pb6%d" % (os.getpid() % 10000)
    tmp = tempfile.mkdtemp(prefix="palbench-p6-")
    hosts = hosts_for(cfg)
    lab = Lab(tmp, prefix, copy.deepcopy(hosts), policies=POLICIES)
    l7_hosts = sorted(h for h, spec in hosts.items() if any(e["labels"]["app"] == "shop" for e in spec["palisade_endpoints"]))
    res["lab"] = {"prefix": prefix, "hosts": len(hosts), "endpoints": sum(len(h["palisade_endpoints"]) for h in hosts.values()),
                  "l7_hosts": l7_hosts}
    runs = []
    try:
        started = time.time()
        lab.up()
        res["lab_up_s"] = round(time.time() - started, 1)
        log("lab %s up (%d hosts, %d endpoints) in %.0f s" % (prefix, len(hosts), res["lab"]["endpoints"], res["lab_up_s"]))
        runs.append(timed(lab, log, "first deploy"))
        web, shop = "default/e01-%02d" % 4, "10.96.0.10"  # h01's web endpoint (app index (1+4)%5 = 0) and h00's shop
        assert hosts["h01"]["palisade_endpoints"][4]["labels"]["app"] == "web"
        verdicts = lab.probe([{"from": web, "to": shop, "port": 80, "protocol": "TCP"},
                              {"from": "default/e02-00", "to": shop, "port": 80, "protocol": "TCP"}])
        res["probes"] = verdicts
        if verdicts[0] != "allow" or verdicts[1] != "deny":
            raise RuntimeError("real packets: expected allow, deny; got %s" % verdicts)
        runs.append(timed(lab, log, "no-op re-run"))
        lab.hosts["h10" if "h10" in lab.hosts else "h01"]["palisade_endpoints"][3]["labels"]["track"] = "canary"
        lab.write()
        lab.up()
        runs.append(timed(lab, log, "one endpoint's labels changed (new identity)"))
    finally:
        down = lab.down(check=False)
        shutil.rmtree(tmp, ignore_errors=True)
        log("lab %s down (rc %d)" % (prefix, down.rc))
    res["runs"] = runs
    lib.publish(res, out, doc, HEADING, lambda results: render(results, out))
    return 0


def render(res, out):
    lab = res["lab"]
    lines = [HEADING, "",
             "`site.yml` on a lab of %d hosts × %d endpoints (%d endpoints; hosts %s run the L7 proxy), end to end with "
             "`ansible-playbook` in the checkout's ansible.cfg (forks 10), issue 10 item 5. The lab is built by `lab.yml` "
             "(not timed in the goals: %.0f s); hosts are network namespaces reached through the netns connection." % (
                 lab["hosts"], lab["endpoints"] // lab["hosts"], lab["endpoints"], ", ".join(lab["l7_hosts"]),
                 res["lab_up_s"]), ""]
    lines.append(lib.facts_line(res, "bench/p6_lab_play.py", out).rstrip("\n"))
    lines.append("- Real packets after the first deploy (verify.yml): web → shop:80 %s, db → shop:80 %s." % tuple(res["probes"]))
    lines.extend(["", "| run | wall | hosts changed | datapath bytes per host: median | max |", "|---|---|---|---|---|"])
    for run in res["runs"]:
        sizes = sorted(t["bytes"] for t in run["transfers"].values())
        lines.append("| %s | %.1f s | %d of %d | %s | %s |" % (
            run["run"], run["wall_s"], sum(1 for c in run["changed"].values() if c), len(run["changed"]),
            format(int(lib.median(sizes)), ",") + " B" if sizes else "—", format(sizes[-1], ",") + " B" if sizes else "—"))
    first, noop = res["runs"][0], res["runs"][1]
    lines.extend(["", "| goal | result |", "|---|---|",
                  "| first deploy ≤ %d s | %s |" % (
                      GOALS["first"], lib.verdict(first["wall_s"] <= GOALS["first"], "%.1f s" % first["wall_s"])),
                  "| no-op re-run ≤ %d s, changed=0 | %s |" % (GOALS["noop"], lib.verdict(
                      noop["wall_s"] <= GOALS["noop"] and not any(noop["changed"].values()),
                      "%.1f s, changed on %d hosts" % (noop["wall_s"], sum(1 for c in noop["changed"].values() if c))))])
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
