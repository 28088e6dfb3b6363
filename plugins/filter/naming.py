# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""bpffs_dir, proxy_dir: a host's default directories (module_utils/_naming.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.palisade.ebpf.plugins.module_utils._naming import bpffs_dir, proxy_dir


class FilterModule(object):

    def filters(self):
        return {"bpffs_dir": bpffs_dir, "proxy_dir": proxy_dir}
