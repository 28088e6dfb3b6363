# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of palisade.ebpf.datapath: render the eBPF C of bpf/ from
the host's settings (jinja2 lives on the controller, not on managed hosts),
then run the module on the host with the rendered source."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.plugins.action import ActionBase

from ansible_collections.palisade.ebpf.plugins.module_utils._datapath.settings import SettingsError


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
        result.update(self._execute_module(module_name="palisade.ebpf.datapath", module_args=args, task_vars=task_vars))
        return result
