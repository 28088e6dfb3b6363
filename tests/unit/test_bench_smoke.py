"""Benchmark smoke test: the fleet generator's output is valid inventory and
valid policy, and the P1 runner completes at a tiny size with every field
the report is built from, so `make bench` cannot silently rot."""

import dataclasses
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from ansible_collections.palisade.ebpf.plugins.plugin_utils import _model as model
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import ir, parse

ROOT = Path(__file__).resolve().parents[2]


def _load_fleetgen():
    spec = importlib.util.spec_from_file_location("fleetgen", ROOT / "bench" / "fleetgen.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


fleetgen = _load_fleetgen()
SMALL = fleetgen.FleetSpec(hosts=6, endpoints_per_host=20, identities=40, namespaces=3,
                           policies=2 * fleetgen.TEMPLATE_COUNT, seed=7)


def test_generator_is_deterministic_and_sized():
    one, two = fleetgen.generate(SMALL), fleetgen.generate(SMALL)
    assert one.hostvars == two.hostvars and one.documents == two.documents and one.namespaces == two.namespaces
    other = fleetgen.generate(dataclasses.replace(SMALL, seed=8))
    assert other.documents != one.documents
    assert one.stats["endpoints"] == 120 and one.stats["identities"] == 40
    assert one.stats["policies"] == len(one.documents) == 2 * fleetgen.TEMPLATE_COUNT
    assert set(one.stats["policy_kinds"]) == {"CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy", "NetworkPolicy"}
    assert len(one.stats["policy_templates"]) == fleetgen.TEMPLATE_COUNT  # every template used


def test_scaled_keeps_proportions():
    ref = fleetgen.REFERENCE
    assert (ref.hosts, ref.endpoints, ref.identities, ref.policies) == (1000, 60000, 5000, 1000)
    half = fleetgen.scaled(30000)
    assert (half.hosts, half.endpoints_per_host, half.identities, half.policies) == (500, 60, 2500, 500)
    tiny = fleetgen.scaled(100)
    assert tiny.endpoints == 100 and tiny.policies == fleetgen.TEMPLATE_COUNT and tiny.identities <= tiny.endpoints


def test_generated_inventory_and_policies_are_valid():
    fleet = fleetgen.generate(SMALL)
    loaded = model.load_fleet(fleet.hostvars, fleet.namespaces)
    assert sum(len(n["endpoints"]) for n in loaded["nodes"].values()) == 120
    rules = parse.parse_documents(fleet.policy_sources())
    assert all(isinstance(rule, ir.Rule) for rule in rules)
    assert len(rules) >= len(fleet.documents)  # specs lists give one rule per spec
    kinds = {rule.kind for rule in rules}
    assert kinds == {"CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy", "NetworkPolicy"}
    # The features the benchmark claims to exercise reach the IR.
    peer_rules = [pr for rule in rules for section in (rule.ingress, rule.egress, rule.ingress_deny, rule.egress_deny)
                  for pr in section]
    peers = [p for pr in peer_rules for p in (pr.peers or ())]
    ports = [port for pr in peer_rules for port in (pr.ports or ())]
    assert any(isinstance(p, ir.PeerCIDR) and p.excepts for p in peers)
    assert any(isinstance(p, ir.PeerIPBlock) and p.excepts for p in peers)
    assert any(isinstance(p, ir.PeerEntity) for p in peers)
    assert any(pr.http for pr in peer_rules)
    assert any(pr.icmps for pr in peer_rules)
    assert any(port.end_port for port in ports)
    assert any(isinstance(port.port, str) for port in ports)
    assert {port.protocol for port in ports} >= {"TCP", "UDP", "SCTP"}
    assert any(rule.ingress_deny for rule in rules) and any(rule.egress_deny for rule in rules)


def test_change_one_endpoint():
    fleet = fleetgen.generate(SMALL)
    change = fleetgen.change_one_endpoint(fleet.hostvars, "new-identity")
    assert change["labels_before"] != change["labels_after"]
    model.load_fleet(fleet.hostvars, fleet.namespaces)  # still valid


def test_p1_runner_quick(tmp_path):
    out, doc = tmp_path / "p1.json", tmp_path / "benchmarks.md"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "p1_policy.py"), "--quick", "--endpoints", "120", "--sizes", "40",
         "--out", str(out), "--doc", str(doc)],
        capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())
    assert {"machine", "date", "command", "goals", "target", "scaling", "reading"} <= set(results)
    assert results["machine"]["nproc"] >= 1 and results["machine"]["python"]
    target = results["target"]
    for run in ("full", "noop"):
        assert target[run]["median_s"] > 0 and target[run]["min_s"] <= target[run]["median_s"]
        assert target[run]["peak_rss_mib"] > 0
        assert set(target[run]["stages_median_s"]) == {"load_fleet", "parse", "cache_load", "compute", "cache_save", "host_shares"}
    assert set(target["changes"]) == {"new-identity", "existing-identity"}
    for change in target["changes"].values():
        assert change["ratio_median"] > 0 and change["engine_only_ratio"] > 0
    assert all(v["equal"] for v in target["verification"].values()), target["verification"]
    assert [p["endpoints"] for p in results["scaling"]] == [40, 120]
    assert {"full_s", "peak_rss_mib", "change_ratio:new-identity", "change_ratio:existing-identity"} == set(results["goals"])
    text = doc.read_text()
    assert "## P1 — policy computation" in text and "| full, no cache |" in text


# --- P2-P4 (datapath): root only; quick mode, results and docs to tmp_path ------------

def _datapath_bench_ready():
    import os  # pylint: disable=import-outside-toplevel
    import shutil  # pylint: disable=import-outside-toplevel
    if os.geteuid() != 0:
        return "needs root (network namespaces, bpffs, BPF_PROG_TEST_RUN)"
    if not os.path.exists("/usr/bin/python3") or subprocess.run(
            ["/usr/bin/python3", "-c", "import bcc, pyroute2"], capture_output=True, check=False).returncode:
        return "needs /usr/bin/python3 with bcc and pyroute2"
    if not os.path.isdir("/sys/fs/bpf") or not shutil.which("ip") or not shutil.which("nsenter"):
        return "needs bpffs, ip and nsenter"
    return None


def _run_datapath_bench(tmp_path, script):
    import pytest  # pylint: disable=import-outside-toplevel
    reason = _datapath_bench_ready()
    if reason:
        pytest.skip(reason)
    out, doc = tmp_path / "out.json", tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## P1 — policy computation\n\nkept\n")
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / script), "--quick", "--out", str(out), "--doc", str(doc)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stdout[-3000:] + stderr[-3000:]
    # Scratch names carry the benchmark's pid; all of them are gone.
    tag = "-%d" % proc.pid
    leftovers = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout.split()
    assert not [n for n in leftovers if n.startswith("palbench-") and tag in n], leftovers
    assert not [n for n in Path("/sys/fs/bpf").iterdir() if n.name.startswith("palbench-") and n.name.endswith(tag)]
    text = doc.read_text()
    assert "## P1 — policy computation\n\nkept" in text  # the P1 section is left as it is
    return json.loads(out.read_text()), text


def test_p2_reconcile_quick(tmp_path):
    res, text = _run_datapath_bench(tmp_path, "p2_reconcile.py")
    assert res["noop"]["writes_max"] == 0 and res["noop"]["attachments_max"] == 0 and not res["noop"]["changed_any"]
    assert res["change"]["writes"] == res["change"]["expected"] == res["change"]["kernel_delta"]
    assert set(res["goals"]) == {"noop_writes", "noop_s", "delta"}
    assert "## P2 — datapath reconcile" in text


def test_p3_compile_quick(tmp_path):
    res, text = _run_datapath_bench(tmp_path, "p3_compile.py")
    s = res["summary"]
    assert s["compile"]["clang_s"] > 0 and s["per_endpoint_ms"]["median"] > 0 and s["add_one_work_ms"]["median"] > 0
    assert "## P3 — compile once" in text


def test_p4_packet_quick(tmp_path):
    import pytest  # pylint: disable=import-outside-toplevel
    import shutil  # pylint: disable=import-outside-toplevel
    if not (shutil.which("iptables") and shutil.which("nft")):
        pytest.skip("needs iptables and nft")
    res, text = _run_datapath_bench(tmp_path, "p4_packet.py")
    assert res["bpf"]["floor"]["median_ns"] > 0
    assert all(v["median_ns"] > 0 for v in res["bpf"]["new_flow"].values())
    assert set(res["goals"]) == {"new_flow_ns", "ratio", "established_ns", "vs_chain", "vs_set"}
    # The uplink's from_network: each case ran and passed the packet (asserted in the bench).
    assert set(res["bpf"]["uplink"]) == {"elsewhere", "l4_endpoint", "l7_established"}
    assert all(v["median_ns"] > 0 for v in res["bpf"]["uplink"].values())
    assert "### The uplink on hosts that run the L7 proxy" in text
    for kind in ("iptables", "nftables"):
        assert set(res["fw"][kind]) == {str(n) for n in res["config"]["fw_rules"]}
    assert "## P4 — per-packet cost" in text and text.index("## P1") < text.index("## P4")
