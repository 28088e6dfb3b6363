# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet file: a whole fleet's hosts, groups and variables in one JSON or
YAML file, read with ``json`` or libyaml (docs/fleet-scale.md).

The palisade.ebpf.fleet inventory plugin gives Ansible each host's small
variables and ``palisade_fleet_file``, the file's path; the endpoints, the
bulk of the file, never become Ansible variables (Ansible tags every value
it is given, at a cost that grows with the fleet): the collection's one
inventory reader (_inventory.py) takes them from here.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

import yaml

PLUGIN = "palisade.ebpf.fleet"
SUFFIXES = (".fleet.json", ".fleet.yml", ".fleet.yaml")
FILE_VAR = "palisade_fleet_file"
# Host variables the plugin keeps out of Ansible; readers take them from the file.
FILE_ONLY_VARS = ("palisade_endpoints",)


class FleetFileError(ValueError):
    """The fleet file cannot be read or is not one; the message names the file and the field."""


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_read_memo = {}  # path -> ((mtime_ns, size), data): one parse per process and version


def read(path, keep=True):
    """The fleet file's data, checked; FleetFileError otherwise. ``keep``:
    remember it for the next read in this process (the action plugin's
    worker reads each host's endpoints); the inventory plugin, in Ansible's
    main process, does not: every task's worker is a fork of that process,
    and a fork costs in proportion to its memory (docs/fleet-scale.md)."""
    try:
        stat = os.stat(path)
        key = (stat.st_mtime_ns, stat.st_size)
    except OSError as exc:
        raise FleetFileError("%s: cannot read the fleet file: %s" % (path, exc))
    known = _read_memo.get(path)
    if known is not None and known[0] == key:
        return known[1]
    data = _parse(path)
    _read_memo.clear()  # one fleet at a time is what a run uses
    if keep:
        _read_memo[path] = (key, data)
    return data


def _parse(path):
    try:
        with open(path, "rb") as handle:
            if path.endswith(".json"):
                data = json.load(handle)
            else:
                data = yaml.load(handle, Loader=_YAML_LOADER)  # nosec B506: a safe loader
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise FleetFileError("%s: cannot read the fleet file: %s" % (path, exc))
    if not isinstance(data, dict) or data.get("plugin") != PLUGIN:
        raise FleetFileError("%s: plugin: must be %s" % (path, PLUGIN))
    for field in ("vars", "groups", "hosts"):
        if not isinstance(data.get(field) or {}, dict):
            raise FleetFileError("%s: %s: must be a mapping" % (path, field))
    hosts = data.get("hosts") or {}
    for host, variables in hosts.items():
        if not isinstance(variables or {}, dict):
            raise FleetFileError("%s: hosts.%s: must be a mapping of variables" % (path, host))
    for group, members in (data.get("groups") or {}).items():
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise FleetFileError("%s: groups.%s: must be a list of host names" % (path, group))
        unknown = sorted(set(members) - set(hosts))
        if unknown:
            raise FleetFileError("%s: groups.%s: %s not in hosts" % (path, group, ", ".join(unknown[:5])))
    return data


def host_var(path, host, name):
    """``host``'s variable ``name`` as the fleet file at ``path`` gives it, or None."""
    return ((read(path).get("hosts") or {}).get(host) or {}).get(name)
