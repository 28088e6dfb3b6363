# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""host_want: what a host's modules want, read from the share store that
palisade.ebpf.fleet_state's registered result names (plugin_utils/_want.py)::

    palisade_fleet | palisade.ebpf.host_want(inventory_hostname, 'datapath')
    palisade_fleet | palisade.ebpf.host_want(inventory_hostname, 'l7proxy')
    palisade_fleet | palisade.ebpf.host_want(inventory_hostname, 'endpoints')
    palisade_fleet | palisade.ebpf.host_want(inventory_hostname, 'routes')
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.palisade.ebpf.plugins.plugin_utils._want import host_want


class FilterModule(object):

    def filters(self):
        return {"host_want": host_want}
