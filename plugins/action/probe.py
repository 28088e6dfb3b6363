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

from ansible_collections.palisade.ebpf.plugins.plugin_utils import _inventory as inventory_mod


def resolve_named_ports(probes, named_ports):
    """``probes`` with every named destination port replaced by its number;
    ``named_ports`` is a function returning {IPv4: {port name: number}},
    called only when a probe names a port. Raises ValueError naming the probe."""
    resolved = [dict(p) for p in probes or []]
    ports = None
    for index, probe in enumerate(resolved):
        port = probe.get("port")
        if isinstance(port, str) and not port.isdigit():
            if ports is None:
                ports = named_ports()
            number = ports.get(probe.get("to"), {}).get(port)
            if number is None:
                raise ValueError("probes[%d].port: no endpoint at %s declares a port named %r"
                                 % (index, probe.get("to"), port))
            probe["port"] = number
    return resolved


class ActionModule(ActionBase):

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = dict(self._task.args)
        try:
            args["probes"] = resolve_named_ports(args.get("probes"),
                                                 inventory_mod.Inventory.of_task(task_vars).named_ports)
        except ValueError as exc:
            raise AnsibleActionFail(str(exc)) from None
        if not args.get("endpoints"):
            args["endpoints"] = [
                {k: ep.get(k) for k in ("name", "namespace", "netns")}
                for ep in inventory_mod.task_endpoints(task_vars)
            ]
        if not args.get("lab_prefix") and inventory_mod.task_lab_prefix(task_vars):
            args["lab_prefix"] = inventory_mod.task_lab_prefix(task_vars)
        result.update(self._execute_module(module_name="palisade.ebpf.probe", module_args=args, task_vars=task_vars))
        return result
