# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark P5 - HTTP through the L7 proxy versus L3/L4 policy only (run as root):

    .venv/bin/python bench/p5_l7.py [--quick] [--out JSON] [--doc MD]

Builds its own one-host lab (tools/fleetlab.Lab, prefix
pb5<pid>) and deploys it with site.yml: endpoints `client`, `web-l7` and
`web-l4`. web-l7's ingress policy allows the client on ports 80 and 8080
with HTTP rules (so those connections go through the host's HAProxy);
web-l4's policy has the same shape without `rules` (L3/L4 only). Both paths
run the full eBPF policy datapath; only the L7 one goes through the proxy.

Load: ApacheBench (`ab`) inside the client's namespace, GET /public:
`-c 1` with a new connection per request and with keep-alive (`-k`), and the
same with `-c 8`. The lab's endpoint server (port 80) is timed with new
connections; its keep-alive behaviour (pitfall P10, docs/l7.md) is checked and
recorded. The other rows use the benchmark's own small server on port 8080
in both web endpoints (stdlib, HTTP/1.1, `Connection: keep-alive`, one write
per response, TCP_NODELAY, no logging), killed by pid at the end.

Rounds are interleaved (each round runs every case on both paths, the order
L4/L7 alternating between rounds); per case: median and min-max of req/s,
mean and p99 latency (ab -e), and the ratio L7/L4 as the median of the
per-round ratios. Before timing: GET /private through web-l7 is 403, through
web-l4 200; every timed L7 run must grow HAProxy's frontend req_tot (stats
socket) by its request count (ab -c C may add up to C - 1 abandoned ones)
and every L4 run leave it unchanged;
no run may have failed or non-2xx answers. The lab is torn down (lab.yml
absent) in a finally block.
"""

from __future__ import absolute_import, division, print_function

import copy
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import p2_p4_lib as lib  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.palisade.ebpf.plugins.module_utils._l7proxy import runtime  # noqa: E402  pylint: disable=wrong-import-position
from tools.fleetlab import Lab  # noqa: E402  pylint: disable=wrong-import-position

HEADING = "## P5 — HTTP through the L7 proxy"
GOALS = {"new": 0.50, "keepalive": 0.70}
FULL = {"rounds": 5, "n_new": 2000, "n_keepalive": 3000, "concurrency": [1, 8]}
QUICK = {"rounds": 1, "n_new": 100, "n_keepalive": 200, "concurrency": [1, 8]}

HOST = "n1"
CLIENT_IP, L7_IP, L4_IP = "10.75.1.10", "10.75.1.20", "10.75.1.30"
LAB_PORT, BENCH_PORT = 80, 8080
PATH = "/public"
WEB_PORT = [{"name": "http", "port": LAB_PORT, "protocol": "TCP"}]
HOSTS = {
    HOST: {
        "palisade_node": {"ipv4": "198.18.75.11", "pod_cidr": "10.75.1.0/24"},
        "palisade_endpoints": [
            {"name": "client", "labels": {"app": "client"}, "ipv4": CLIENT_IP},
            {"name": "web-l7", "labels": {"app": "web-l7"}, "ipv4": L7_IP, "ports": WEB_PORT},
            {"name": "web-l4", "labels": {"app": "web-l4"}, "ipv4": L4_IP, "ports": WEB_PORT},
        ],
    },
}
# A realistic rule set (Cilium's documented examples); the timed request
# matches the first rule, but HAProxy evaluates every rule of the ruleset.
HTTP_RULES = [
    {"method": "GET", "path": "/public"},
    {"method": "POST", "path": "/v1/request-landing"},
    {"method": "GET", "path": "/items/[0-9]+"},
    {"method": "GET", "path": "/vhost", "host": "web\\.example\\.com"},
    {"method": "GET", "path": "/secure", "headers": ["X-Token: open-sesame"]},
]

# (key, label, port, keep-alive, concurrency); the lab server is timed with new connections.
CASES = [
    ("lab-new-c1", "lab server :80, new connection per request, -c 1", LAB_PORT, False, 1),
    ("new-c1", "bench server :8080, new connection per request, -c 1", BENCH_PORT, False, 1),
    ("ka-c1", "bench server :8080, keep-alive, -c 1", BENCH_PORT, True, 1),
    ("new-c8", "bench server :8080, new connection per request, -c 8", BENCH_PORT, False, 8),
    ("ka-c8", "bench server :8080, keep-alive, -c 8", BENCH_PORT, True, 8),
]

BENCH_SERVER = r'''
import socket, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "palisade-p5"
    sys_version = ""
    wbufsize = -1                   # headers and body leave in one write
    disable_nagle_algorithm = True  # TCP_NODELAY

    def do_GET(self):
        body = ("palisade-p5 %s -> 200\n" % self.path).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Palisade-Client", self.client_address[0])
        self.send_header("Connection", "close" if self.close_connection else "keep-alive")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512

    def server_bind(self):  # no getfqdn() in an empty namespace
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(self.server_address)
        self.server_address = self.socket.getsockname()

    def handle_error(self, request, client_address):
        pass  # connections reset by the proxy or ab

Server(("0.0.0.0", int(sys.argv[1])), Handler).serve_forever()
'''


def policy(app, http):
    to_ports = {"ports": [{"port": str(LAB_PORT), "protocol": "TCP"}, {"port": str(BENCH_PORT), "protocol": "TCP"}]}
    if http:
        to_ports["rules"] = {"http": copy.deepcopy(http)}
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
            "metadata": {"name": app, "namespace": "default"},
            "spec": {"endpointSelector": {"matchLabels": {"app": app}},
                     "ingress": [{"fromEndpoints": [{"matchLabels": {"app": "client"}}], "toPorts": [to_ports]}]}}


class Bench(object):
    def __init__(self, prefix):
        self.prefix = prefix
        self.proxy_dir = "/var/lib/palisade/%s-%s/l7proxy" % (prefix, HOST)

    def netns(self, endpoint):
        return "%s-e-default-%s" % (self.prefix, endpoint)

    def in_ns(self, endpoint, cmd, timeout=120):
        return subprocess.run(["ip", "netns", "exec", self.netns(endpoint)] + cmd, capture_output=True, text=True,
                              timeout=timeout, check=False)

    def curl(self, url, extra=()):
        """(status, headers+body) of one request from the client."""
        proc = self.in_ns("client", ["curl", "-sS", "-i", "-m", "5", "-w", "\n%{http_code}"] + list(extra) + [url])
        text, _sep, code = proc.stdout.rpartition("\n")
        return (int(code) if code.isdigit() and code != "000" else None), text

    def req_tot(self):
        """Requests HAProxy's frontend has seen (stats socket)."""
        for row in runtime.show_stat(os.path.join(self.proxy_dir, "haproxy.sock")):
            if row.get("pxname") == "palisade_l7" and row.get("svname") == "FRONTEND":
                return int(row["req_tot"] or 0)
        raise RuntimeError("no palisade_l7 frontend in HAProxy's stats")

    def passive_opens(self, endpoint):
        """TCP connections the endpoint accepted so far (its namespace's /proc/net/snmp)."""
        lines = [l.split() for l in self.in_ns(endpoint, ["cat", "/proc/net/snmp"]).stdout.splitlines() if l.startswith("Tcp:")]
        return int(lines[1][lines[0].index("PassiveOpens")])

    def ab(self, ip, port, keepalive, concurrency, count, tmp):
        csv = os.path.join(tmp, "ab-percentiles.csv")
        cmd = ["ab", "-q", "-s", "10", "-n", str(count), "-c", str(concurrency), "-e", csv]
        if keepalive:
            cmd.append("-k")
        proc = self.in_ns("client", cmd + ["http://%s:%d%s" % (ip, port, PATH)], timeout=300)
        out = proc.stdout
        if proc.returncode != 0:
            raise RuntimeError("ab failed (%d): %s%s" % (proc.returncode, out[-2000:], proc.stderr[-2000:]))

        def field(name, cast=float, default=None):
            match = re.search(r"^%s:\s+([0-9.]+)" % re.escape(name), out, re.M)
            if match is None:
                if default is None:
                    raise RuntimeError("ab output without %r:\n%s" % (name, out))
                return default
            return cast(match.group(1))
        pct = {}
        with open(csv) as handle:
            for line in handle.read().splitlines()[1:]:
                p, ms = line.split(",")
                pct[int(float(p))] = float(ms)
        return {"rps": field("Requests per second"), "mean_ms": field("Time per request"),
                "p50_ms": pct[50], "p99_ms": pct[99], "complete": field("Complete requests", int),
                "failed": field("Failed requests", int), "non_2xx": field("Non-2xx responses", int, 0),
                "keepalive_requests": field("Keep-Alive requests", int, 0)}


def start_servers(bench):
    """The benchmark's own keep-alive-capable server on BENCH_PORT in both web endpoints."""
    procs = []
    for endpoint in ("web-l7", "web-l4"):
        procs.append(subprocess.Popen(["ip", "netns", "exec", bench.netns(endpoint), lib.HOST_PYTHON, "-c", BENCH_SERVER,
                                       str(BENCH_PORT)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    deadline = time.time() + 10
    for ip in (L7_IP, L4_IP):
        while bench.curl("http://%s:%d%s" % (ip, BENCH_PORT, PATH))[0] != 200:
            if time.time() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError("the benchmark server on %s:%d did not answer" % (ip, BENCH_PORT))
            time.sleep(0.2)
    return procs


def stop_servers(procs):
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def verify_paths(bench, log):
    """L7 path filters (403 for an unlisted path) and reaches the server with the
    client's address; L4 path passes anything; only the L7 path counts in HAProxy."""
    checks = {}
    for port in (LAB_PORT, BENCH_PORT):
        before = bench.req_tot()
        denied = bench.curl("http://%s:%d/private" % (L7_IP, port))
        allowed = bench.curl("http://%s:%d%s" % (L7_IP, port, PATH))
        grown = bench.req_tot() - before
        before = bench.req_tot()
        l4_private = bench.curl("http://%s:%d/private" % (L4_IP, port))
        l4_grown = bench.req_tot() - before
        client_seen = re.search(r"^x-palisade-client:\s*(\S+)", allowed[1], re.M | re.I)
        checks[str(port)] = {
            "l7_private_status": denied[0], "l7_private_body": denied[1].rsplit("\r\n\r\n", 1)[-1].strip(),
            "l7_public_status": allowed[0], "l7_client_seen": client_seen.group(1) if client_seen else None,
            "l7_req_tot_growth": grown, "l4_private_status": l4_private[0], "l4_req_tot_growth": l4_grown}
        c = checks[str(port)]
        ok = (c["l7_private_status"] == 403 and c["l7_public_status"] == 200 and c["l7_client_seen"] == CLIENT_IP
              and grown == 2 and c["l4_private_status"] == 200 and l4_grown == 0)
        log("port %d: L7 GET /private %s, GET %s %s (server saw %s), req_tot +%d; L4 GET /private %s, req_tot +%d"
            % (port, denied[0], PATH, allowed[0], c["l7_client_seen"], grown, l4_private[0], l4_grown))
        if not ok:
            raise RuntimeError("path check failed on port %d: %r" % (port, c))
    return checks


def lab_server_keepalive(bench, tmp, log):
    """Pitfall P10 on the lab's endpoint server, measured rather than assumed."""
    res = {}
    proc = bench.in_ns("client", ["ab", "-q", "-k", "-s", "3", "-n", "20", "-c", "1",
                                  "http://%s:%d%s" % (L4_IP, LAB_PORT, PATH)], timeout=30)
    res["ab_k_direct"] = {"rc": proc.returncode, "output": (proc.stdout + proc.stderr).strip().splitlines()[-1:]}
    config = os.path.join(tmp, "curl-urls.cfg")
    count = 40
    for name, ip in (("direct", L4_IP), ("proxy", L7_IP)):
        with open(config, "w") as handle:
            handle.write('url = "http://%s:%d%s"\n' % (ip, LAB_PORT, PATH) * count)
        started = time.time()
        out = bench.in_ns("client", ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{num_connects}\n", "-K", config],
                          timeout=60).stdout
        took = time.time() - started
        lines = [l.split() for l in out.splitlines() if l.strip() and l.split()[0].isdigit() and len(l.split()) == 2]
        res["curl_keepalive_" + name] = {"requests": count, "seconds": took, "rps": count / took,
                                         "connections": sum(int(l[1]) for l in lines),
                                         "ok": sum(1 for l in lines if l[0] == "200")}
    log("lab server :80 with keep-alive: `ab -k` exit %d (%s); curl keep-alive %.0f req/s direct, %.0f via the proxy"
        % (res["ab_k_direct"]["rc"], " ".join(res["ab_k_direct"]["output"]),
           res["curl_keepalive_direct"]["rps"], res["curl_keepalive_proxy"]["rps"]))
    return res


def measure(bench, cfg, tmp, log):
    runs = {key: {"l4": [], "l7": []} for key, _l, _p, _k, conc in CASES if conc in cfg["concurrency"]}
    for rnd in range(cfg["rounds"]):
        order = ("l4", "l7") if rnd % 2 == 0 else ("l7", "l4")
        for key, _label, port, keepalive, conc in CASES:
            if key not in runs:
                continue
            count = cfg["n_keepalive"] if keepalive else cfg["n_new"]
            for path in order:
                ip, server = (L7_IP, "web-l7") if path == "l7" else (L4_IP, "web-l4")
                tot, opens = bench.req_tot(), bench.passive_opens(server)
                res = bench.ab(ip, port, keepalive, conc, count, tmp)
                res["req_tot_growth"] = bench.req_tot() - tot
                res["server_connections"] = bench.passive_opens(server) - opens
                # With -c C, ab may start up to C - 1 requests past N that it
                # abandons when N completed; the proxy still sees them.
                low, high = (count, count + conc - 1) if path == "l7" else (0, 0)
                if res["complete"] != count or res["failed"] or res["non_2xx"] \
                        or not low <= res["req_tot_growth"] <= high:
                    raise RuntimeError("round %d %s %s: %r (req_tot should grow by %d to %d)"
                                       % (rnd, key, path, res, low, high))
                if keepalive and res["keepalive_requests"] != count:
                    raise RuntimeError("round %d %s %s: keep-alive not used: %r" % (rnd, key, path, res))
                runs[key][path].append(res)
            l4, l7 = runs[key]["l4"][-1], runs[key]["l7"][-1]
            log("round %d %-10s L4 %7.0f req/s  L7 %7.0f req/s  ratio %.2f  (L7 server connections %d)"
                % (rnd + 1, key, l4["rps"], l7["rps"], l7["rps"] / l4["rps"], l7["server_connections"]))
    return runs


def summarise(runs):
    out = {}
    for key, by_path in runs.items():
        entry = {}
        for path, rs in by_path.items():
            rps = [r["rps"] for r in rs]
            entry[path] = {"rps_median": lib.median(rps), "rps_min": min(rps), "rps_max": max(rps),
                           "mean_ms": lib.median([r["mean_ms"] for r in rs]),
                           "p99_ms": lib.median([r["p99_ms"] for r in rs]),
                           "server_connections_per_request": sum(r["server_connections"] for r in rs)
                           / float(sum(r["complete"] for r in rs))}
        ratios = [b["rps"] / a["rps"] for a, b in zip(by_path["l4"], by_path["l7"])]
        entry["ratio"] = {"median": lib.median(ratios), "min": min(ratios), "max": max(ratios), "rounds": ratios}
        out[key] = entry
    return out


def evaluate(summary):
    goals = {}
    for goal, key in (("new", "new-c1"), ("keepalive", "ka-c1")):
        value = summary[key]["ratio"]["median"]
        goals[goal] = {"goal": GOALS[goal], "case": key, "value": value, "met": value >= GOALS[goal]}
    lab_value = summary["lab-new-c1"]["ratio"]["median"]
    goals["new_lab_server"] = {"goal": GOALS["new"], "case": "lab-new-c1", "value": lab_value,
                               "met": lab_value >= GOALS["new"]}
    return goals


def versions():
    def first(cmd):
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        return ((proc.stdout or proc.stderr).strip().splitlines() or ["?"])[0]
    ab = re.search(r"Version (\S+)", first(["ab", "-V"]))
    return {"ab": "ApacheBench " + (ab.group(1) if ab else "?"), "haproxy": first(["haproxy", "-v"]), "curl": first(["curl", "--version"])}


def render_doc(res, cfg, out):
    s, g, ka = res["summary"], res["goals"], res["lab_server_keepalive"]

    def pct(x):
        return "%.0f%%" % (100 * x)
    lines = [HEADING, "",
             "HTTP requests per second and latency through the host's HAProxy (an L7 rule on the port) beside the "
             "same requests with L3/L4 policy only (P5), side by side in one run.", "",
             lib.facts_line(res, "bench/p5_l7.py", out).rstrip("\n"),
             "- Tools: %s; %s" % (res["versions"]["ab"], res["versions"]["haproxy"]),
             "- Lab (tools/fleetlab.Lab, deployed with site.yml): one host, endpoints `client`, `web-l7`, "
             "`web-l4`. web-l7's ingress policy allows the client on 80 and 8080 with %d HTTP rules (Cilium's "
             "documented examples: method + path, path regex, host, header); web-l4's is the same policy without "
             "`rules`. Both paths run the whole eBPF datapath (policy at the endpoints, conntrack); only the L7 one is "
             "steered into HAProxy, which forwards to the original destination from the client's address." % len(HTTP_RULES),
             "- Load: `ip netns exec <client> ab -n N -c C [-k] -e …` against `GET %s`, N = %s with a new connection "
             "per request and %s with keep-alive; %d interleaved rounds, each running every case on both paths "
             "(L4 first in odd rounds, L7 first in even ones). req/s: median (min–max) of the rounds; latency: median "
             "over the rounds of ab's mean and of its 99th percentile (`-e`); ratio: median (min–max) of the per-round "
             "ratios L7 / L4." % (PATH, "{:,}".format(cfg["n_new"]), "{:,}".format(cfg["n_keepalive"]), cfg["rounds"]),
             "- Checked in the run: before timing, `GET /private` through web-l7 gets HAProxy's 403 (`Access denied`) "
             "and `GET %s` a 200 from the server, which saw the client's own address; through web-l4 `GET /private` "
             "gets 200; every timed L7 run grew HAProxy's frontend `req_tot` (stats socket) by its request count "
             "(with -c 8, up to 7 more that ab abandons after N) and every L4 run left it unchanged; no run had failed or non-2xx answers; keep-alive runs had "
             "every request on a kept-alive connection." % PATH,
             "", "### Goals", "", "| goal | result |", "|---|---|",
             "| new connections: ≥ 50%% of direct req/s | %s; %s |" % (lib.verdict(
                 g["new"]["met"], "%s with the benchmark's server (-c 1; %s with -c 8)" % (
                     pct(g["new"]["value"]), pct(s["new-c8"]["ratio"]["median"]) if "new-c8" in s else "—")),
                 lib.verdict(g["new_lab_server"]["met"], "%s with the lab's endpoint server (-c 1)"
                             % pct(g["new_lab_server"]["value"]))),
             "| keep-alive: ≥ 70%% of direct req/s | %s |" % lib.verdict(
                 g["keepalive"]["met"], "%s (-c 1; %s with -c 8)" % (
                     pct(g["keepalive"]["value"]), pct(s["ka-c8"]["ratio"]["median"]) if "ka-c8" in s else "—")),
             "", "### Runs", "",
             "| case | L3/L4 only: req/s median (min–max) | mean / p99 ms | through the proxy: req/s median (min–max) "
             "| mean / p99 ms | ratio L7 / L4 median (min–max) | upstream connections per request (L7) |",
             "|---|---|---|---|---|---|---|"]
    for key, label, _port, _ka, _conc in CASES:
        if key not in s:
            continue
        a, b, r = s[key]["l4"], s[key]["l7"], s[key]["ratio"]
        lines.append("| %s | %s (%s–%s) | %.2f / %.2f | %s (%s–%s) | %.2f / %.2f | %.2f (%.2f–%.2f) | %.2f |" % (
            label, "{:,.0f}".format(a["rps_median"]), "{:,.0f}".format(a["rps_min"]), "{:,.0f}".format(a["rps_max"]),
            a["mean_ms"], a["p99_ms"], "{:,.0f}".format(b["rps_median"]), "{:,.0f}".format(b["rps_min"]),
            "{:,.0f}".format(b["rps_max"]), b["mean_ms"], b["p99_ms"], r["median"], r["min"], r["max"],
            b["server_connections_per_request"]))
    kc = s.get("ka-c1")
    lines += [
        "", "### Reading", "",
        "- Cost per request: with new connections the proxy adds %.2f ms to the mean (-c 1, benchmark server: %.2f → "
        "%.2f ms); with keep-alive %.2f ms (%.2f → %.2f ms)." % (
            s["new-c1"]["l7"]["mean_ms"] - s["new-c1"]["l4"]["mean_ms"], s["new-c1"]["l4"]["mean_ms"],
            s["new-c1"]["l7"]["mean_ms"], kc["l7"]["mean_ms"] - kc["l4"]["mean_ms"], kc["l4"]["mean_ms"],
            kc["l7"]["mean_ms"]),
        "- Upstream connections: the last column counts the connections the web-l7 server accepted per request "
        "(its namespace's `TcpPassiveOpens`): one per request with new connections, one per client connection with "
        "keep-alive. The backend has `http-reuse never`: a server connection carries the client's address and "
        "belongs to its session. With HAProxy's default (`safe`) an earlier run of this benchmark measured one new "
        "server connection per request for keep-alive clients once idle connections of closed sessions had been "
        "pooled, and a keep-alive ratio of 19%.",
        "- Comparison: the bare HAProxy measured when the mechanism was chosen (its own "
        "server, 2,000 sequential GETs) kept 52%% of direct req/s with new connections and 72–78%% with keep-alive; "
        "Cilium with Envoy keeps roughly 11–14%% of req/s in published tests. Here: %s with new connections, %s with "
        "keep-alive (-c 1)." % (pct(g["new"]["value"]), pct(g["keepalive"]["value"])),
        "- The lab's endpoint server (roles/lab/files/palisade_lab_server.py) answers keep-alive requests in one "
        "write, with a `Connection: keep-alive` token for HTTP/1.0 clients (pitfall P10), checked in the run: `ab -k` "
        "against it directly %s; curl with keep-alive gets %.0f req/s directly and %.0f through the proxy (%d "
        "requests each). The timed keep-alive rows use the benchmark's own server on 8080 (stdlib "
        "`ThreadingHTTPServer`, HTTP/1.1, one write per answer, TCP_NODELAY, no request log), started in both web "
        "endpoints for the run and killed by pid, as do the other 8080 rows." % (
            "timed out (ab exit %d, `-s 3`)" % ka["ab_k_direct"]["rc"] if ka["ab_k_direct"]["rc"] else "worked",
            ka["curl_keepalive_direct"]["rps"], ka["curl_keepalive_proxy"]["rps"],
            ka["curl_keepalive_direct"]["requests"]),
        "- Caveats: ab, the server, HAProxy (2 threads) and the softirq work share the machine's %d vCPUs, and a "
        "single-process Python server caps the direct path (a faster server would make the direct path faster and "
        "the ratio lower; the shared CPUs make the proxy path compete with the server and the ratio lower too), so "
        "treat the ratios as rough. `ab` speaks HTTP/1.0 (keep-alive by `Connection: keep-alive`). The machine is "
        "noisy (other work ran beside this run: 1-minute load average %.1f at its start, and the per-round ratios "
        "spread widely): compare the two paths within a round, not runs across days." % (
            res["machine"]["nproc"], res["machine"]["loadavg"]),
    ]
    return "\n".join(lines) + "\n"


def main(argv=None):
    run = lib.start(argv, __doc__.splitlines()[0], "P5", "p5_l7", QUICK, FULL, lambda job: None)
    if run is None:
        return 0
    cfg, out, doc, res = run.cfg, run.out, run.doc, run.res
    for tool in ("ab", "curl", "haproxy"):
        if shutil.which(tool) is None:
            sys.stderr.write("p5_l7: %s missing (scripts/setup.sh installs it)\n" % tool)
            return 77

    def log(text):
        print(text, flush=True)

    prefix = "pb5%d" % (os.getpid() % 10000)
    tmp = tempfile.mkdtemp(prefix="palbench-p5-")
    res["versions"] = versions()
    res["lab"] = {"prefix": prefix, "hosts": HOSTS, "http_rules": HTTP_RULES}
    lab = Lab(tmp, prefix, copy.deepcopy(HOSTS), policies=[policy("web-l7", HTTP_RULES), policy("web-l4", None)])
    bench = Bench(prefix)
    servers = []
    t0 = time.time()
    try:
        lab.up()
        lab.site()
        log("lab %s up and deployed in %.0f s" % (prefix, time.time() - t0))
        servers = start_servers(bench)
        res["checks"] = verify_paths(bench, log)
        res["lab_server_keepalive"] = lab_server_keepalive(bench, tmp, log)
        t1 = time.time()
        res["runs"] = measure(bench, cfg, tmp, log)
        res["seconds_timed"] = time.time() - t1
    finally:
        stop_servers(servers)
        down = lab.down()
        shutil.rmtree(tmp, ignore_errors=True)
        left = [ns for ns in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                                            check=False).stdout.split() if ns.startswith(prefix + "-")]
        log("lab %s down (rc %d)%s" % (prefix, down.rc, "; namespaces left: %s" % left if left else ""))
    res["summary"] = summarise(res["runs"])
    res["goals"] = evaluate(res["summary"])
    for name, goal in res["goals"].items():
        verdict = "met" if goal["met"] else "MISSED"
        log("goal %-15s %s (L7/L4 %.2f, goal %.2f, %s)" % (name, verdict, goal["value"], goal["goal"], goal["case"]))
    lib.publish(res, out, doc, HEADING, lambda results: render_doc(results, cfg, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
