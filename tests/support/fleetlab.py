"""Helpers for integration tests: a lab fleet on this machine, playbook runs,
and read-only views of kernel state inside the lab's namespaces.

Every lab uses its own prefix, so its namespaces, links, routes and processes
are recognisably the test's and are removed by name in teardown.
"""

import json
import os
import re
import subprocess

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(REPO, ".venv", "bin")
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)", re.M)


class Run(object):
    def __init__(self, proc):
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr
        self.recap = {m.group(1): {"ok": int(m.group(2)), "changed": int(m.group(3)), "unreachable": int(m.group(4)),
                                   "failed": int(m.group(5))} for m in RECAP.finditer(self.out)}

    def changed(self, host=None):
        if host:
            return self.recap[host]["changed"]
        return sum(h["changed"] for h in self.recap.values())

    def __repr__(self):
        return "rc=%s\n--- stdout\n%s\n--- stderr\n%s" % (self.rc, self.out[-6000:], self.err[-3000:])


def env():
    e = dict(os.environ)
    e.update(
        ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, "collections"),
        ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_HOST_KEY_CHECKING="False",
        PATH=BIN + os.pathsep + e.get("PATH", ""),
    )
    return e


TARGET_PYTHON = "/usr/bin/python3"   # the modules' interpreter on a host: it has bcc and pyroute2


def target_has(module):
    """Whether the target interpreter can import ``module``."""
    try:
        return subprocess.run([TARGET_PYTHON, "-c", "import %s" % module], capture_output=True, check=False).returncode == 0
    except OSError:
        return False


def run_module(netns_path, module, args, check=False, diff=False, interpreter=TARGET_PYTHON, extra_env=None):
    """palisade.ebpf.<module> run ad hoc inside the network namespace at
    ``netns_path`` -> (rc, result, output). ``result`` is the module's result
    as the default callback prints it; that callback drops 'failed', which is
    put back from the FAILED! status."""
    cmd = ["nsenter", "--net=" + netns_path, os.path.join(BIN, "ansible"), "localhost", "-i", "localhost,", "-c", "local",
           "-e", "ansible_python_interpreter=" + interpreter, "-m", "palisade.ebpf." + module, "-a", json.dumps(args)]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    run_env = env()
    run_env.update(ANSIBLE_STDOUT_CALLBACK="default", ANSIBLE_CALLBACK_RESULT_FORMAT="json",
                   ANSIBLE_DEPRECATION_WARNINGS="0", **(extra_env or {}))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=run_env, cwd="/", check=False)
    output = proc.stdout + proc.stderr
    match = re.search(r"^localhost \| (SUCCESS|CHANGED|FAILED!) => ", output, re.M)
    assert match, "no result in ansible output (rc=%d):\n%s" % (proc.returncode, output)
    result = json.JSONDecoder().raw_decode(output[match.end():])[0]
    result["failed"] = match.group(1) == "FAILED!"
    return proc.returncode, result, output


def playbook(name, inventory, *args, check=True):
    cmd = [os.path.join(BIN, "ansible-playbook"), "-i", inventory, os.path.join(REPO, "playbooks", name)] + list(args)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env(), cwd=REPO, timeout=900, check=False)
    run = Run(proc)
    if check:
        assert run.rc == 0, run
    return run


class Lab(object):
    """A lab fleet: an inventory file plus present/absent through lab.yml."""

    def __init__(self, tmpdir, prefix, hosts, namespaces=None, policies=None):
        self.dir = str(tmpdir)
        self.prefix = prefix
        self.hosts = hosts
        self.inventory = os.path.join(self.dir, "hosts.yml")
        self.extra = {"palisade_lab_prefix": prefix, "palisade_namespaces": namespaces or {"default": {"labels": {}}},
                      "palisade_policies": policies or []}
        self.write()

    @property
    def state_dir(self):
        return "/var/lib/palisade-lab/%s" % self.prefix

    def write(self):
        hosts = {}
        for name, spec in self.hosts.items():
            hv = dict(spec)
            if hv.get("ansible_connection") == "ssh":
                hv.setdefault("ansible_host", hv["palisade_node"]["ipv4"])
                hv.setdefault("ansible_user", "root")
                hv.setdefault("ansible_ssh_private_key_file", os.path.join(self.state_dir, "id_ed25519"))
                hv.setdefault("ansible_ssh_common_args", "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null")
            else:
                hv.setdefault("ansible_connection", "palisade.ebpf.netns")
            hv.setdefault("ansible_python_interpreter", "/usr/bin/python3")
            hosts[name] = hv
        doc = {"all": {"vars": self.extra, "hosts": hosts}}
        with open(self.inventory, "w") as f:
            yaml.safe_dump(doc, f, sort_keys=False)

    def endpoints(self):
        for host, spec in self.hosts.items():
            for ep in spec.get("palisade_endpoints") or []:
                yield host, ep

    def endpoint(self, name):
        for host, ep in self.endpoints():
            if ep["name"] == name:
                return host, ep
        raise KeyError(name)

    def host_netns(self, host):
        return "%s-h-%s" % (self.prefix, host)

    def up(self):
        return playbook("lab.yml", self.inventory, "-e", "lab_state=present")

    def down(self):
        return playbook("lab.yml", self.inventory, "-e", "lab_state=absent")

    def site(self, *args, check=True):
        return playbook("site.yml", self.inventory, *args, check=check)

    def probe(self, probes, timeout=1.5):
        """Run verify.yml with explicit probes; return verdicts in order."""
        path = os.path.join(self.dir, "probes.json")
        with open(path, "w") as f:
            json.dump({"palisade_probes": probes, "palisade_probe_timeout": timeout}, f)
        run = playbook("verify.yml", self.inventory, "-e", "@" + path, "-v")
        return verdicts_from(run.out, probes)

    def trace(self, probes):
        """policy_trace verdicts for ``probes`` (computed, no traffic), in order."""
        path = os.path.join(self.dir, "trace.json")
        with open(path, "w") as f:
            json.dump({"palisade_probes": probes}, f)
        run = playbook("trace.yml", self.inventory, "-e", "@" + path, "-v")
        for match in re.finditer(r"^ok: \[localhost\] => (\{.*\})$", run.out, re.M):
            data = json.loads(match.group(1))
            if isinstance(data.get("results"), list) and all("l4" in r for r in data["results"]):
                return [r["verdict"] for r in data["results"]]
        raise AssertionError("no policy_trace results in:\n%s" % run.out[-3000:])


def verdicts_from(out, probes):
    """Pick each probe's result out of verbose playbook output (-v prints results as JSON)."""
    found = {}
    for match in re.finditer(r"^(?:ok|changed): \[(\S+)\] => (\{.*\})$", out, re.M):
        try:
            data = json.loads(match.group(2))
        except ValueError:
            continue
        for result in data.get("results") or []:
            if isinstance(result, dict) and "verdict" in result:
                found[(result["from"], result["to"], int(result["port"]), result["protocol"])] = result["verdict"]
    out_list = []
    for p in probes:
        src = p["from"] if "/" in p["from"] else "default/" + p["from"]
        out_list.append(found.get((src, p["to"], int(p["port"]), p.get("protocol", "TCP"))))
    return out_list


def sh(*cmd):
    """Read-only inspection of kernel state (tests only; modules never shell out)."""
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def netns_list():
    return sorted(line.split()[0] for line in sh("ip", "netns", "list").splitlines() if line.strip())


def snapshot(lab):
    """Links, addresses, routes and neighbours of every namespace of the lab."""
    state = {}
    for ns in netns_list():
        if ns.startswith(lab.prefix + "-"):
            state[ns] = {
                "links": sh("ip", "-n", ns, "-o", "link", "show"),
                "addrs": sh("ip", "-n", ns, "-o", "addr", "show"),
                "routes": sh("ip", "-n", ns, "route", "show", "table", "all"),
                "neigh": sh("ip", "-n", ns, "neigh", "show", "nud", "permanent"),
            }
    return state
