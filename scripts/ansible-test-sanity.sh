#!/usr/bin/env bash
# Run `ansible-test sanity` on this collection.
#
# ansible-test only runs from .../ansible_collections/<namespace>/<name> and
# rejects symlinked paths, while this repo root is the collection root. So the
# files git would ship (tracked, plus untracked ones not ignored) are copied
# into a temporary tree, tested there, and the tree is removed afterwards.
#
# Usage: scripts/ansible-test-sanity.sh [extra ansible-test sanity args]
#   e.g. scripts/ansible-test-sanity.sh --test pep8
# ANSIBLE_TEST_PYTHON overrides the Python version tested (default 3.11).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
ANSIBLE_TEST=$ROOT/.venv/bin/ansible-test
PYVER=${ANSIBLE_TEST_PYTHON:-3.11}

[ -x "$ANSIBLE_TEST" ] || { echo "sanity: $ANSIBLE_TEST missing; run make setup" >&2; exit 1; }

galaxy_field() { sed -n "s/^$1:[[:space:]]*\([A-Za-z0-9_]*\).*/\1/p" "$ROOT/galaxy.yml" | head -n1; }
NAMESPACE=$(galaxy_field namespace)
NAME=$(galaxy_field name)
if [ -z "$NAMESPACE" ] || [ -z "$NAME" ]; then
    echo "sanity: cannot read namespace/name from galaxy.yml" >&2
    exit 1
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/palisade-sanity.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
DEST=$TMP/ansible_collections/$NAMESPACE/$NAME
mkdir -p "$DEST"

cd "$ROOT"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # Skip tracked files deleted in the work tree, so uncommitted deletions count.
    git ls-files -z --cached --others --exclude-standard \
        | while IFS= read -r -d '' f; do
              if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
          done \
        | tar --null --no-recursion -T - -cf - \
        | tar -xf - -C "$DEST"
else
    # Not a git checkout (e.g. an unpacked tarball): everything but generated state.
    tar --exclude=./.git --exclude=./.venv --exclude=./collections --exclude=./tests/output \
        --exclude=./.ansible --exclude=./.cache --exclude=./.pytest_cache --exclude=./.hypothesis \
        --exclude='__pycache__' -cf - . | tar -xf - -C "$DEST"
fi
echo "sanity: testing a copy of $(find "$DEST" -type f | wc -l) files in $DEST"

# ansible-test configures ansible itself; the repo's settings (whose
# collections path leads back to this checkout, not the copy) must not leak in.
unset ANSIBLE_CONFIG ANSIBLE_COLLECTIONS_PATH ANSIBLE_COLLECTIONS_PATHS

cd "$DEST"
"$ANSIBLE_TEST" sanity --venv --python "$PYVER" "$@"
