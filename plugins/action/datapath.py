# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of palisade.ebpf.datapath: render the eBPF C of bpf/ from
the host's settings (jinja2 lives on the controller, not on managed hosts),
then run the module on the host with the rendered source.

With ``fleet`` (fleet_state's registered result), the host's desired state
goes as versioned artifacts (plugin_utils/_transfer.py): versions, deltas
and new policy objects first, and the rendering's hash instead of its
source; what the host answers it lacks goes whole on the next attempt. A host whose state did
not change receives a few hundred bytes."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible.plugins.action import ActionBase

from ansible_collections.palisade.ebpf.plugins.module_utils._datapath.programs import source_hash
from ansible_collections.palisade.ebpf.plugins.module_utils._datapath.settings import SettingsError

MODULE = "palisade.ebpf.datapath"


class ActionModule(ActionBase):

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        bpffs_dir = args.get("bpffs_dir")
        if args.get("state", "present") == "present" and not args.get("source") and isinstance(bpffs_dir, str):
            from ansible_collections.palisade.ebpf.plugins.plugin_utils._render import datapath as datapath_render  # pylint: disable=import-outside-toplevel
            settings = args.get("settings") or {}
            if not isinstance(settings, dict):
                result.update(failed=True, msg="settings: expected a mapping, got %r" % (settings,))
                return result
            try:
                args["source"] = datapath_render.render(settings, bpffs_dir.rstrip("/"))
            except SettingsError as exc:
                result.update(failed=True, msg=str(exc))
                return result
        fleet = args.pop("fleet", None)
        if fleet is None or args.get("state", "present") != "present":
            result.update(self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars))
            return result
        result.update(self._run_with_artifacts(args, fleet, task_vars))
        return result

    def _run_with_artifacts(self, args, fleet, task_vars):
        from ansible_collections.palisade.ebpf.plugins.plugin_utils._transfer import datapath_transfers  # pylint: disable=import-outside-toplevel
        host = task_vars.get("inventory_hostname")
        given = [key for key in ("ipcache", "ipcache_packed", "endpoints", "policies", "identities") if args.get(key)]
        if given:
            return {"failed": True, "msg": "fleet replaces %s: give one or the other" % ", ".join(given)}
        if not isinstance(fleet, dict) or not isinstance(fleet.get("hosts"), dict) or "store" not in fleet:
            return {"failed": True, "msg": "fleet: expected palisade.ebpf.fleet_state's registered result"}
        if host not in fleet["hosts"]:
            return {"failed": True, "msg": "fleet: %s is not a host of this fleet_state result" % host}
        source = args.pop("source")
        full, objects, send_source, sent, attempts = set(), set(), False, 0, 0
        while True:
            try:
                args["artifacts"] = datapath_transfers(fleet, host, full, sorted(objects))
            except ValueError as exc:
                return {"failed": True, "msg": str(exc)}
            if send_source:
                args["source"] = source
                args.pop("source_hash", None)
            else:
                args["source_hash"] = source_hash(source)
            sent += len(json.dumps(args, separators=(",", ":")))
            attempts += 1
            result = self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars)
            stale = result.get("stale") or []
            if result.get("failed") or not stale:
                break
            again = set(name for name in stale if name not in ("program", "objects")) - full
            missing = set(result.get("missing_objects") or []) - objects
            progress = bool(again or missing) or ("program" in stale and not send_source)
            if not progress:
                result.update(failed=True, msg="the host could not build its state even from full documents: %s"
                              % result.get("msg"))
                break
            send_source = send_source or "program" in stale
            full |= again
            objects |= missing
        result.setdefault("transfer", {}).update(bytes=sent, attempts=attempts)
        return result
