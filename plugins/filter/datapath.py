# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""datapath_state: a host's share of the fleet policy in palisade.ebpf.datapath's terms."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.palisade.ebpf.plugins.plugin_utils._want import datapath_state
from ansible_collections.palisade.ebpf.plugins.module_utils._datapath.state import pack_ipcache
from ansible_collections.palisade.ebpf.plugins.module_utils._naming import bpffs_dir, proxy_dir


def _datapath_state(fleet_state, host, bpffs_dir, packed=True):
    """``fleet_state`` is palisade.ebpf.fleet_state's registered result; the IP
    table is packed into one string unless ``packed`` is false."""
    return datapath_state(fleet_state["hosts"][host], fleet_state["ipcache"], bpffs_dir, fleet_state.get("identities"),
                          packed=packed)


def _ipcache_packed(fleet_state, host):
    """This host's view of the IP table, packed (as the datapath gets it)."""
    table = dict(fleet_state["ipcache"])
    table.update(fleet_state["hosts"][host].get("ipcache_overrides") or {})
    return pack_ipcache([[prefix, identity] for prefix, identity in sorted(table.items())])


class FilterModule(object):

    def filters(self):
        return {"datapath_state": _datapath_state, "bpffs_dir": bpffs_dir, "proxy_dir": proxy_dir,
                "ipcache_packed": _ipcache_packed}
