# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Offline stand-in for get-pip.py, used by ``ansible-test --venv``.

ansible-test bootstraps pip in each of its virtual environments by running
``get-pip-<version>.py`` from ci-files.testing.ansible.com, which this network
cannot reach. It first looks in ``~/.ansible/test/cache/get_pip_<version>.py``;
``scripts/setup.sh`` installs this file there.

It bootstraps the pip bundled with the interpreter (ensurepip), then lets that
pip install what ansible-test asked for (``pip==<version>`` and friends) from
the package index.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ensurepip
import os
import subprocess
import sys

# get-pip.py options that pip's own install command does not know.
GET_PIP_ONLY_OPTIONS = ("--no-setuptools", "--no-wheel")


def main():
    # ensurepip drops every PIP_* variable and points PIP_CONFIG_FILE at
    # /dev/null; that would hide the machine's pip configuration (its CA
    # bundle among it) from the install below, so restore the environment.
    saved = dict(os.environ)
    try:
        ensurepip.bootstrap(upgrade=True, default_pip=True)
    finally:
        os.environ.clear()
        os.environ.update(saved)

    args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY_OPTIONS]
    return subprocess.call([sys.executable, "-m", "pip", "install"] + args)


if __name__ == "__main__":
    sys.exit(main())
