"""The collection builds into an installable tarball whose plugins all document themselves."""

import glob
import os
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(REPO, ".venv", "bin")
MODULES = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(REPO, "plugins", "modules", "*.py")))


def run(*cmd, cwd=REPO, **env):
    full_env = dict(os.environ, **env)
    full_env.pop("ANSIBLE_CONFIG", None)  # the checkout's config points at the checkout
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env, cwd=cwd, check=False)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    build = run(os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(out))
    assert build.returncode == 0, build.stderr
    tarball = glob.glob(str(out / "palisade-ebpf-*.tar.gz"))
    assert len(tarball) == 1
    dest = out / "installed"
    inst = run(os.path.join(BIN, "ansible-galaxy"), "collection", "install", "-p", str(dest), tarball[0],
               ANSIBLE_COLLECTIONS_PATH=str(dest))
    assert inst.returncode == 0 and "installed successfully" in inst.stdout, inst.stdout + inst.stderr
    return dest


def test_tarball_carries_no_local_state(installed):
    root = installed / "ansible_collections" / "palisade" / "ebpf"
    assert (root / "MANIFEST.json").exists()
    for junk in (".venv", "collections", ".pytest_cache", "tests/output", "tools"):
        assert not (root / junk).exists(), junk


@pytest.mark.parametrize("module", MODULES)
def test_every_module_is_documented(installed, module):
    doc = run(os.path.join(BIN, "ansible-doc"), "palisade.ebpf." + module, ANSIBLE_COLLECTIONS_PATH=str(installed), cwd="/")
    assert doc.returncode == 0, doc.stderr
    assert "palisade.ebpf." + module in doc.stdout and "EXAMPLES" in doc.stdout


def test_connection_plugin_is_documented(installed):
    doc = run(os.path.join(BIN, "ansible-doc"), "-t", "connection", "palisade.ebpf.netns",
              ANSIBLE_COLLECTIONS_PATH=str(installed), cwd="/")
    assert doc.returncode == 0 and "nsenter" in doc.stdout, doc.stderr
