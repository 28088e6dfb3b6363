# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A lab fleet on this machine, driven through the collection's playbooks:
lab.yml builds and removes it, site.yml deploys it, verify.yml and trace.yml
give real and computed verdicts. Used by the integration tests and by
benchmark P5 (bench/p5_l7.py).

Every lab uses its own prefix, so its namespaces, links, routes and
processes are recognisably its own and lab.yml removes them by name.
"""

import json
import os
import re
import subprocess

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(REPO, ".venv", "bin")
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)", re.M)


class Run(object):
    """One ansible-playbook run: exit code, output and the recap per host."""

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


def env(extra=None):
    """The environment of a playbook run: this checkout's collection and
    configuration, the venv's tools, plain output."""
    e = dict(os.environ)
    e.update(
        ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, "collections"),
        ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_HOST_KEY_CHECKING="False",
        PATH=BIN + os.pathsep + e.get("PATH", ""),
    )
    # The inventory names the lab's prefix; a prefix left in the caller's shell must not override it.
    e.pop("PALISADE_LAB_PREFIX", None)
    e.update(extra or {})
    return e


def playbook(name, inventory, *args, check=True, environment=None):
    cmd = [os.path.join(BIN, "ansible-playbook"), "-i", inventory, os.path.join(REPO, "playbooks", name)] + list(args)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env(environment), cwd=REPO, timeout=900, check=False)
    run = Run(proc)
    if check:
        assert run.rc == 0, run
    return run


def _check_mode(args):
    return "--check" in args or "-C" in args


def _limited(args):
    return any(a in ("-l", "--limit") or a.startswith("--limit=") for a in args)


class Lab(object):
    """A lab fleet: an inventory file plus present/absent through lab.yml.

    The lab remembers the inventory its last successful full site.yml run
    deployed, so that ``ensure_site()`` can skip a run that would change
    nothing, and whether site.yml ever changed its hosts, so that
    ``ensure_fresh()`` can give a test hosts nothing was deployed to. A
    caller that changes the hosts behind the lab's back (kills a process,
    deletes a route) and does not repair it calls ``invalidate()``.
    """

    def __init__(self, tmpdir, prefix, hosts, namespaces=None, policies=None, environment=None):
        self.dir = str(tmpdir)
        self.prefix = prefix
        self.hosts = hosts
        self.inventory = os.path.join(self.dir, "hosts.yml")
        self.extra = {"palisade_lab_prefix": prefix, "palisade_namespaces": namespaces or {"default": {"labels": {}}},
                      "palisade_policies": policies or []}
        self.environment = dict(environment or {})
        self.deployed = None      # inventory text of the last successful full site.yml run, if still true
        self.site_changed = False  # a site.yml run (not --check) may have changed the hosts since up()
        self.write()

    @property
    def state_dir(self):
        return "/var/lib/palisade-lab/%s" % self.prefix

    def document(self):
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
        return {"all": {"vars": self.extra, "hosts": hosts}}

    def text(self):
        return yaml.safe_dump(self.document(), sort_keys=False)

    def write(self):
        with open(self.inventory, "w") as f:
            f.write(self.text())

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

    def playbook(self, name, *args, check=True):
        return playbook(name, self.inventory, *args, check=check, environment=self.environment)

    def up(self, *args):
        return self.playbook("lab.yml", "-e", "lab_state=present", *args)

    def down(self, *args, check=True):
        run = self.playbook("lab.yml", "-e", "lab_state=absent", *args, check=check)
        if run.rc == 0 and not _check_mode(args):
            self.deployed, self.site_changed = None, False
        return run

    def site(self, *args, check=True):
        run = self.playbook("site.yml", *args, check=check)
        if not _check_mode(args):
            if run.rc == 0 and not _limited(args):
                self.deployed = self.text()
            elif run.changed() or not run.recap:
                self.deployed = None
            self.site_changed = self.site_changed or bool(run.changed()) or not run.recap
        return run

    def invalidate(self):
        """Forget that the hosts are deployed: the next ensure_site() runs site.yml."""
        self.deployed = None

    def ensure_site(self):
        """Deploy the current inventory unless the last site.yml run already did."""
        if self.deployed != self.text():
            return self.site()
        return None

    def ensure_fresh(self):
        """Hosts site.yml never changed: the lab rebuilt if a run changed them."""
        if self.site_changed:
            self.down()
            self.up()

    def probe(self, probes, timeout=1.5):
        """Run verify.yml with explicit probes; return verdicts in order."""
        path = os.path.join(self.dir, "probes.json")
        with open(path, "w") as f:
            json.dump({"palisade_probes": probes, "palisade_probe_timeout": timeout}, f)
        run = self.playbook("verify.yml", "-e", "@" + path, "-v")
        return verdicts_from(run.out, probes)

    def trace(self, probes):
        """policy_trace verdicts for ``probes`` (computed, no traffic), in order."""
        path = os.path.join(self.dir, "trace.json")
        with open(path, "w") as f:
            json.dump({"palisade_probes": probes}, f)
        run = self.playbook("trace.yml", "-e", "@" + path, "-v")
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
