# shellcheck shell=bash
# Source me (`. scripts/env.sh`) to get the environment `make` gives its
# recipes: the project venv's tools first on PATH, and ansible reading this
# checkout's collection through collections/ansible_collections/palisade/ebpf.
_palisade_root=$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd -P)
case ":$PATH:" in
    *":$_palisade_root/.venv/bin:"*) ;;
    *) PATH="$_palisade_root/.venv/bin:$PATH" ;;
esac
export PATH
export ANSIBLE_COLLECTIONS_PATH="$_palisade_root/collections"
export ANSIBLE_CONFIG="$_palisade_root/ansible.cfg"
unset _palisade_root
