# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one reader of the inventory (controller side).

Every action and filter that needs the inventory reads it here: Ansible's
``hostvars`` and ``groups``, each host's raw ``palisade_node``,
``palisade_endpoints`` and ``palisade_lab_prefix``, and the task's own
``palisade_namespaces``, ``palisade_policies`` and ``palisade_policy_files``.
Nothing here validates (that is ``_model.load_fleet``); values are handed on
as the inventory gives them.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
from collections import namedtuple

from ansible_collections.palisade.ebpf.plugins.module_utils import _naming as naming
from ansible_collections.palisade.ebpf.plugins.plugin_utils import _fleet_file as fleet_file
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import files as policy_files

NODE_VAR = "palisade_node"
ENDPOINTS_VAR = "palisade_endpoints"
LAB_PREFIX_VAR = "palisade_lab_prefix"
NAMESPACES_VAR = "palisade_namespaces"
POLICIES_VAR = "palisade_policies"
POLICY_FILES_VAR = "palisade_policy_files"

# One endpoint as the inventory declares it: the host it lives on, its
# ``namespace/name`` (None when it has no name) and its raw mapping.
Endpoint = namedtuple("Endpoint", "host key data")


class Inventory:
    """``hosts`` (inventory hostnames) and their variables, read from
    ``hostvars`` (Ansible's, or any mapping of host -> variables)."""

    def __init__(self, hostvars, hosts):
        self._hostvars = hostvars
        self._read = {}  # host -> its variables: Ansible gathers them anew on every hostvars[host]
        self.hosts = list(hosts)

    @classmethod
    def of_task(cls, task_vars, hosts=None):
        """The inventory an action sees; ``hosts`` defaults to every host
        (``groups.all``), whatever ``--limit`` says."""
        return cls(task_vars.get("hostvars", {}), hosts or task_vars.get("groups", {}).get("all", []))

    def var(self, host, name):
        """``host``'s variable ``name``, or None.

        Read raw (Ansible's ``hostvars.raw_get``) and templated only when it
        holds a template: templating walks every value of a variable, which
        costs more than everything else the controller does at a thousand
        hosts (docs/fleet-scale.md). A template is rendered through
        ``hostvars[host]``, in that host's own context."""
        raw_get = getattr(self._hostvars, "raw_get", None)
        if raw_get is None:  # a plain mapping: its values are final
            variables = self._variables(host, self._hostvars.__getitem__)
        else:
            variables = self._variables(host, raw_get)
        if name in fleet_file.FILE_ONLY_VARS and variables.get(fleet_file.FILE_VAR):
            return fleet_file.host_var(variables[fleet_file.FILE_VAR], host, name)
        value = variables.get(name)
        if raw_get is not None and _has_template(value):
            return self._hostvars[host].get(name)
        return value

    def _variables(self, host, read):
        variables = self._read.get(host)
        if variables is None:
            variables = self._read[host] = read(host)
        return variables

    def raw_hosts(self):
        """{host: {palisade_node, palisade_endpoints}}, as ``load_fleet`` takes them."""
        return {host: {NODE_VAR: self.var(host, NODE_VAR), ENDPOINTS_VAR: self.var(host, ENDPOINTS_VAR)}
                for host in self.hosts}

    def lab_prefixes(self):
        """{host: palisade_lab_prefix or None}."""
        return {host: self.var(host, LAB_PREFIX_VAR) for host in self.hosts}

    def nodes(self):
        """{host: palisade_node} of the hosts that declare one."""
        found = {}
        for host in self.hosts:
            node = self.var(host, NODE_VAR)
            if node is not None:
                found[host] = node
        return found

    def endpoints(self, host=None):
        """Every endpoint (of ``host`` only, when given) as an Endpoint, in
        inventory order; entries that are not mappings are left out."""
        found = []
        for name in self.hosts if host is None else [host]:
            for data in self.var(name, ENDPOINTS_VAR) or []:
                if isinstance(data, dict):
                    found.append(Endpoint(name, naming.endpoint_key(data) if data.get("name") else None, data))
        return found

    def named_ports(self):
        """{endpoint IPv4: {port name: port number}} over every endpoint."""
        table = {}
        for endpoint in self.endpoints():
            data = endpoint.data
            if data.get("ipv4"):
                table[data["ipv4"]] = {p.get("name"): p.get("port") for p in data.get("ports") or [] if p.get("name")}
        return table


def _has_template(value):
    """True when ``value`` holds a string with Jinja syntax anywhere."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "{{" in item or "{%" in item or "{#" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.values())
            stack.extend(item)
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return False


# --- the task's own variables ------------------------------------------------------

def task_endpoints(task_vars):
    """The task host's own ``palisade_endpoints`` (play and role variables
    included), or, with a fleet file, the file's."""
    path = task_vars.get(fleet_file.FILE_VAR)
    if path and ENDPOINTS_VAR in fleet_file.FILE_ONLY_VARS:
        return fleet_file.host_var(path, task_vars.get("inventory_hostname"), ENDPOINTS_VAR) or []
    return task_vars.get(ENDPOINTS_VAR) or []


def task_lab_prefix(task_vars):
    return task_vars.get(LAB_PREFIX_VAR)


def namespaces(task_vars):
    """``palisade_namespaces``, or None."""
    return task_vars.get(NAMESPACES_VAR)


def policy_base_dir(task_vars, loader):
    """Where relative ``palisade_policy_files`` globs start: the inventory's
    directory (policies live beside the inventory that names them), else the
    playbook's directory."""
    inventory_dir = task_vars.get("inventory_dir")
    if inventory_dir:
        return inventory_dir
    for source in task_vars.get("ansible_inventory_sources") or []:
        if isinstance(source, str) and os.path.exists(source):
            return source if os.path.isdir(source) else os.path.dirname(os.path.abspath(source))
    return loader.get_basedir()


def policy_documents(task_vars, templar, loader):
    """The inventory's policy documents (``palisade_policies``, then the
    files of ``palisade_policy_files``), as a function that reads them when
    called: a run reads them only once the inventory is valid. Reading
    raises ir.PolicyError."""
    def read():
        policies = templar.template(task_vars.get(POLICIES_VAR))
        files = templar.template(task_vars.get(POLICY_FILES_VAR))
        return policy_files.load_policy_documents(policies, files, policy_base_dir(task_vars, loader))
    return read
