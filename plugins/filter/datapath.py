# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""datapath_state: a host's share of the fleet policy in palisade.ebpf.datapath's terms."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.palisade.ebpf.plugins.module_utils.datapath.from_share import datapath_state
from ansible_collections.palisade.ebpf.plugins.module_utils.naming import bpffs_dir


def _datapath_state(fleet_state, host, bpffs_dir, packed=True):
    """``fleet_state`` is palisade.ebpf.fleet_state's registered result; the IP
    table is packed into one string unless ``packed`` is false."""
    return datapath_state(fleet_state["hosts"][host], fleet_state["ipcache"], bpffs_dir, fleet_state.get("identities"),
                          packed=packed)


class FilterModule(object):

    def filters(self):
        return {"datapath_state": _datapath_state, "bpffs_dir": bpffs_dir}
