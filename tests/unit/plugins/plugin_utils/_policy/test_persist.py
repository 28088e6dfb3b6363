"""What guards the persistent caches (plugin_utils/_policy/persist.py): the
code digest covers every file the cached objects' code comes from."""

import inspect
import os
import sys

from ansible_collections.palisade.ebpf.plugins.plugin_utils import _model
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import persist

COLLECTION = "ansible_collections.palisade.ebpf."


def collection_modules_used_by(module):
    """The collection modules whose objects ``module`` holds at run time."""
    found = set()
    for value in vars(module).values():
        name = value.__name__ if inspect.ismodule(value) else getattr(value, "__module__", None)
        if isinstance(name, str) and name.startswith(COLLECTION) and name in sys.modules:
            found.add(sys.modules[name])
    return found


def test_the_digest_covers_the_policy_package_the_model_and_all_they_use():
    files = {os.path.realpath(path) for path in persist._code_files()}  # pylint: disable=protected-access
    package = os.path.dirname(os.path.realpath(persist.__file__))
    assert {os.path.join(package, n) for n in os.listdir(package) if n.endswith(".py")} <= files
    assert os.path.realpath(_model.__file__) in files
    # Whatever those modules use at run time is covered too (naming, defaults, ...).
    modules = [m for m in list(sys.modules.values())
               if getattr(m, "__file__", None) and os.path.realpath(m.__file__) in files]
    for module in modules:
        for used in collection_modules_used_by(module):
            assert os.path.realpath(used.__file__) in files, "%s uses %s" % (module.__name__, used.__name__)
    names = {os.path.basename(path) for path in files}
    assert {"_naming.py", "_defaults.py"} <= names
    assert "_want.py" not in names and "_fleet.py" not in names  # what the cache does not depend on


def test_imports_are_read_in_every_form():
    text = "\n".join([
        "from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import ir, labels as labels_mod",
        "from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy.parse_common import (  # why",
        "    Doc,",
        "    child,",
        ")",
        "import ansible_collections.palisade.ebpf.plugins.module_utils._naming as naming",
        "from os import path",
        "    from ansible_collections.palisade.ebpf.plugins.plugin_utils import _model  # noqa",
    ])
    base = COLLECTION + "plugins.plugin_utils."
    assert persist._imported_modules(text) == [  # pylint: disable=protected-access
        base + "_policy", base + "_policy.ir", base + "_policy.labels",
        base + "_policy.parse_common", base + "_policy.parse_common.Doc", base + "_policy.parse_common.child",
        COLLECTION + "plugins.module_utils._naming",
        base[:-1], base + "_model",
    ]
