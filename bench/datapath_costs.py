# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Datapath cost measurements behind docs/datapath.md (run as root):

    .venv/bin/python bench/datapath_costs.py [--json OUT]

1. compile once: bcc compile + load (verifier) + pin of the rendered programs;
2. configure per endpoint: the reconciler attaching N endpoints with the
   cached program (config write + two tc filters each), and one more;
3. per packet, BPF_PROG_TEST_RUN of the real programs (median of runs):
   harness floor (an empty program), a new flow's full verdict with a
   60,000-entry ipcache and 10 / 1,000 / 100,000 policy entries (and with
   four policy lookups), a denied flow, and an established flow (conntrack
   hit). New flows are measured with the ct_create setting off, so that
   every repetition is a conntrack miss; an LRU insert adds ~150-250 ns on
   the development VM (docs/datapath.md).

The renderings are made here (the venv has jinja2); the measuring half runs
with /usr/bin/python3 (bcc) inside a scratch network namespace with veth
pairs, against a scratch bpffs directory; both are removed at the end.
"""

from __future__ import absolute_import, division, print_function

import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "collections"))

ENDPOINTS = 100
IPCACHE = 60000
POLICY_SIZES = (10, 1000, 100000)
REPEAT = 1000000


# --- controller half ---------------------------------------------------------------
def controller(argv):
    from ansible_collections.palisade.ebpf.plugins.plugin_utils._render import datapath as datapath_render  # noqa: E402

    tag = "palbench-dp-%d" % os.getpid()
    tmp = tempfile.mkdtemp(prefix=tag + "-")
    netns = tag
    bpffs = "/sys/fs/bpf/" + tag
    try:
        sources = {
            "main": datapath_render.render({}, bpffs + "/main"),
            # ct_create off: every test-run repetition is a conntrack miss, i.e. a new flow.
            "newflow": datapath_render.render({"ct_create": False}, bpffs + "/newflow"),
            "est": datapath_render.render({}, bpffs + "/est"),
        }
        for name, text in sources.items():
            with open(os.path.join(tmp, name + ".c"), "w") as f:
                f.write(text)
        subprocess.run(["ip", "netns", "add", netns], check=True)
        batch = ["link set lo up"]
        for i in range(ENDPOINTS + 1):
            batch.append("link add lxb%d type veth peer name lxp%d" % (i, i))
            batch.append("link set lxb%d up" % i)
            batch.append("link set lxp%d up" % i)
        subprocess.run(["ip", "-n", netns, "-batch", "-"], input="\n".join(batch) + "\n", text=True, check=True)
        proc = subprocess.run(["nsenter", "--net=/run/netns/" + netns, "/usr/bin/python3", os.path.abspath(__file__),
                               "--measure", tmp, bpffs], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout + proc.stderr)
            return proc.returncode
        results = json.loads(proc.stdout.strip().splitlines()[-1])
        report(results)
        if len(argv) > 1 and argv[0] == "--json":
            with open(argv[1], "w") as f:
                json.dump(results, f, indent=2, sort_keys=True)
        return 0
    finally:
        subprocess.run(["ip", "netns", "del", netns], capture_output=True, check=False)
        shutil.rmtree(bpffs, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)


def report(r):
    print("compile once (bcc compile + verifier load of both programs + pin): %.0f ms" % (r["compile_s"] * 1000))
    print("  of which load (verifier): %.0f ms" % (r["load_s"] * 1000))
    print("configure %d endpoints (program cached): %.1f ms map writes + %.1f ms tc = %.2f ms per endpoint"
          % (r["endpoints"], r["bulk_map_ms"], r["bulk_tc_ms"], r["per_endpoint_ms"]))
    print("add endpoint %d to a configured host: whole reconcile %.0f ms (of which writes + tc %.2f ms), compiler not run: %s"
          % (r["endpoints"] + 1, r["add_one_total_ms"], r["add_one_work_ms"], not r["add_one_compiled"]))
    print("BPF_PROG_TEST_RUN, ns per packet (median of 5 x %d):" % REPEAT)
    print("  harness floor (empty program):      %d" % r["floor_ns"])
    for size in POLICY_SIZES:
        print("  new flow, %6d policy entries:    %d" % (size, r["new_flow_ns"][str(size)]))
    print("  new flow ratio 100k / 10:           %.2f" % (r["new_flow_ns"]["100000"] / float(r["new_flow_ns"]["10"])))
    print("  new flow, 100000 entries, 4 lookups: %d" % r["new_flow_4_lookups_ns"])
    print("  denied new flow (drop + event):     %d" % r["denied_ns"])
    print("  established (conntrack hit):        %d" % r["established_ns"])


# --- host half (/usr/bin/python3, bcc) ------------------------------------------------------
def measure(tmp, bpffs):
    import time

    from bcc import BPF
    from pyroute2 import IPRoute

    import p2_p4_lib as lib  # the shared BPF_PROG_TEST_RUN harness and packets
    from ansible_collections.palisade.ebpf.plugins.module_utils._datapath import abi, bpfsys, maps, programs, reconcile, settings

    harness = lib.TestRun()

    def test_run(fd, packet_bytes, ifindex, runs=5):
        durations, retval = harness(fd, packet_bytes, ifindex, REPEAT, runs)
        return sorted(durations)[len(durations) // 2], retval

    packet = lib.tcp_packet

    def read(name):
        with open(os.path.join(tmp, name + ".c")) as f:
            return f.read()

    results = {"endpoints": ENDPOINTS}
    ipr = IPRoute()
    links = dict((m.get_attr("IFLA_IFNAME"), m["index"]) for m in ipr.get_links())
    ipr.close()

    # 1. compile once.
    source = read("main")
    os.makedirs(bpffs + "/main/maps")
    t0 = time.time()
    bpf = BPF(text=source)
    t1 = time.time()
    for name in programs.PROGRAMS:
        bpf.load_func(name, BPF.SCHED_CLS)
    t2 = time.time()
    bpf.cleanup()
    shutil.rmtree(bpffs + "/main", ignore_errors=True)
    loaded = programs.compile_and_pin(source, bpffs + "/main", programs.source_hash(source))
    loaded.close()
    results["compile_s"] = t2 - t0
    results["load_s"] = t2 - t1

    # 2. configure per endpoint (program cached: the reconciler never compiles).
    def state(count, base):
        eps, ipc = [], [["0.0.0.0/0", 2]]
        for i in range(count):
            ip = "10.%d.%d.%d" % (base, i // 250, i % 250 + 1)
            eps.append({"key": "bench/ep%d" % i, "ifname": "lxb%d" % i, "ipv4": ip, "identity": 1000 + i, "policy": "web"})
            ipc.append([ip + "/32", 1000 + i])
        pol = {"web": {"ingress": {"enforced": True, "entries": [[0, 6, 80, 80, "allow"], [1001, 6, 443, 443, "allow"]]}}}
        return {"bpffs_dir": bpffs + "/main", "ipcache": ipc, "endpoints": eps, "policies": pol}

    rec = reconcile.Reconciler(state(ENDPOINTS, 50), {}, source, False, IPRoute)
    bulk = rec.present()
    assert not bulk["program"]["compiled"], bulk
    results["bulk_map_ms"] = bulk["timings"]["map_writes"] * 1000
    results["bulk_tc_ms"] = bulk["timings"]["tc"] * 1000
    results["per_endpoint_ms"] = (results["bulk_map_ms"] + results["bulk_tc_ms"]) / ENDPOINTS
    rec = reconcile.Reconciler(state(ENDPOINTS + 1, 50), {}, source, False, IPRoute)
    one = rec.present()
    results["add_one_total_ms"] = one["timings"]["total"] * 1000
    results["add_one_work_ms"] = (one["timings"]["map_writes"] + one["timings"]["tc"]) * 1000
    results["add_one_compiled"] = one["program"]["compiled"]
    results["add_one_writes"] = one["writes"]

    # 3. per packet.
    floor = BPF(text="int f(struct __sk_buff *skb) { return -1; }")
    ep_if = links["lxb%d" % ENDPOINTS]
    peer_ip, ep_ip = "10.60.0.5", "10.61.0.1"
    src = packet(peer_ip, ep_ip, 40000, 80)
    results["floor_ns"] = test_run(floor.load_func("f", BPF.SCHED_CLS).fd, src, ep_if)[0]

    def prepared(kind):
        text = read(kind)
        directory = bpffs + "/" + kind
        loaded = programs.compile_and_pin(text, directory, programs.source_hash(text))
        cfg = settings.normalise({"ct_create": kind != "newflow"})

        def handle(name):
            spec = maps.MAPS_BY_NAME[name]
            return bpfsys.Map(reconcile.map_path(directory, spec, cfg), spec.key, spec.value)
        host = handle("ipcache_host")
        for i in range(IPCACHE):
            ip = "10.%d.%d.%d" % (60 + i // 62500, (i // 250) % 250, i % 250 + 1)
            host.update(abi.IPCacheHostKey(addr=abi.ip_to_u32(ip)), abi.IPCacheValue(identity=1000 + i))
        return loaded, directory, handle

    def configure(handle, size):
        pol = handle("policy")
        ports = (80, 443, 8080, 53, 22, 3306, 5432, 6379, 9090, 8443)
        written = 0
        ident = 1004
        while written < size:
            for port in ports:
                if written == size:
                    break
                pol.update(abi.PolicyKey(policy_id=7, identity=ident, dir_level=abi.LEVEL_EXACT, proto=6,
                                         port=abi.port_to_be16(port)),
                           abi.PolicyValue(flags=abi.POL_F_ALLOW, allow_level=abi.LEVEL_EXACT))
                written += 1
            ident += 1
        cfg = abi.EndpointConfig(ipv4=abi.ip_to_u32(ep_ip), identity=99, policy_id=7, flags=abi.EP_F_ENFORCE_INGRESS)
        cfg.levels[0] = 1 << abi.LEVEL_EXACT
        handle("endpoints").update(abi.EndpointKey(ifindex=ep_if), cfg)

    loaded, directory, handle = prepared("newflow")
    results["new_flow_ns"] = {}
    for size in POLICY_SIZES:
        # `size` entries: identities 1004.., ten ports each; the probe comes
        # from 10.60.0.5 (identity 1004) to tcp/80, an entry at every size.
        pol = handle("policy")
        for k in list(pol.items()):
            pol.delete(abi.PolicyKey.from_buffer_copy(k))
        configure(handle, size)
        ns, verdict = test_run(loaded.fds["to_endpoint"], packet("10.60.0.5", ep_ip, 40000, 80), ep_if)
        assert verdict == 0xFFFFFFFF, verdict  # TC_ACT_UNSPEC: passed
        results["new_flow_ns"][str(size)] = ns

    # The same 100,000 entries plus any-peer nodes at other levels, so a new
    # flow probes the peer's chain (hit at 24) and the any-peer chain at
    # levels 24, 8 and 0 (three misses): four policy lookups.
    pol = handle("policy")
    for level, proto, port in ((abi.LEVEL_EXACT, 6, 22), (abi.LEVEL_PROTO, 17, 0), (abi.LEVEL_ANY, 0, 0)):
        pol.update(abi.PolicyKey(policy_id=7, identity=0, dir_level=level, proto=proto, port=abi.port_to_be16(port)),
                   abi.PolicyValue(flags=abi.POL_F_ALLOW, allow_level=level))
    cfg_map = handle("endpoints")
    cfg = abi.EndpointConfig.from_buffer_copy(cfg_map.lookup(abi.EndpointKey(ifindex=ep_if)))
    cfg.levels[1] = (1 << abi.LEVEL_EXACT) | (1 << abi.LEVEL_PROTO) | (1 << abi.LEVEL_ANY)
    cfg_map.update(abi.EndpointKey(ifindex=ep_if), cfg)
    results["new_flow_4_lookups_ns"] = test_run(loaded.fds["to_endpoint"], packet("10.60.0.5", ep_ip, 40000, 80), ep_if)[0]
    # A denied new flow: default deny, counted and reported (ring buffer event).
    # (The ring buffer fills up after a few thousand events; the rest of the
    # repetitions measure the lost-event path, which is the same work.)
    results["denied_ns"] = test_run(loaded.fds["to_endpoint"], packet("10.60.0.5", ep_ip, 40000, 81), ep_if)[0]
    loaded.close()

    loaded, directory, handle = prepared("est")
    configure(handle, 10)
    pkt = packet("10.60.0.5", ep_ip, 40000, 80)
    test_run(loaded.fds["to_endpoint"], pkt, ep_if, runs=1)  # creates the conntrack entry
    results["established_ns"] = test_run(loaded.fds["to_endpoint"], pkt, ep_if)[0]
    loaded.close()
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--measure":
        sys.exit(measure(sys.argv[2], sys.argv[3]))
    sys.exit(controller(sys.argv[1:]))
