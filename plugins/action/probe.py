# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of palisade.ebpf.probe: resolve names from the inventory.

The node only knows its own endpoints; the destination's named ports live in
other hosts' variables, so they are resolved here before the module runs.
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase


def _named_ports(task_vars):
    """IPv4 -> {port name: port number} over every endpoint of the inventory."""
    table = {}
    hostvars = task_vars.get("hostvars", {})
    for host in task_vars.get("groups", {}).get("all", []):
        for ep in hostvars[host].get("palisade_endpoints") or []:
            if isinstance(ep, dict) and ep.get("ipv4"):
                table[ep["ipv4"]] = {p.get("name"): p.get("port") for p in ep.get("ports") or [] if p.get("name")}
    return table


class ActionModule(ActionBase):

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = dict(self._task.args)
        probes = [dict(p) for p in args.get("probes") or []]
        ports = None
        for index, probe in enumerate(probes):
            port = probe.get("port")
            if isinstance(port, str) and not port.isdigit():
                if ports is None:
                    ports = _named_ports(task_vars)
                number = ports.get(probe.get("to"), {}).get(port)
                if number is None:
                    raise AnsibleActionFail("probes[%d].port: no endpoint at %s declares a port named %r"
                                            % (index, probe.get("to"), port))
                probe["port"] = number
        args["probes"] = probes
        if not args.get("endpoints"):
            args["endpoints"] = [
                {k: ep.get(k) for k in ("name", "namespace", "netns")}
                for ep in task_vars.get("palisade_endpoints") or []
            ]
        if not args.get("lab_prefix") and task_vars.get("palisade_lab_prefix"):
            args["lab_prefix"] = task_vars["palisade_lab_prefix"]
        result.update(self._execute_module(module_name="palisade.ebpf.probe", module_args=args, task_vars=task_vars))
        return result
