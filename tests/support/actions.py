# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run an action plugin's ``run`` without a play: a task with ``args``,
a connection that needs no temporary directory, a templar that returns
values as they are, and ``_execute_module`` recorded instead of run."""

from types import SimpleNamespace


class Templar:
    def template(self, value):
        return value


class Loader:
    def __init__(self, basedir="/playbooks"):
        self.basedir = basedir

    def get_basedir(self):
        return self.basedir


def action(module_class, args, module_result=None):
    """An instance of ``module_class`` (an ActionModule) for a task with
    ``args``; ``executed`` lists the (module name, module args) it runs,
    each of which returns ``module_result``."""
    task = SimpleNamespace(args=dict(args), async_val=0, check_mode=False, action="palisade.ebpf.test")
    connection = SimpleNamespace(_shell=SimpleNamespace(tmpdir="/nonexistent"))
    plugin = module_class(task, connection, SimpleNamespace(), Loader(), Templar())
    plugin.executed = []

    def execute_module(module_name=None, module_args=None, task_vars=None):
        plugin.executed.append((module_name, module_args))
        return dict(module_result or {"changed": False})

    plugin._execute_module = execute_module  # pylint: disable=protected-access
    return plugin
