#!/usr/bin/env bash
# Print the path of a Python >= 3.12 interpreter, or explain and exit 1.
# Order: $PYTHON, python3.13 / python3.12 on PATH, then pyenv versions (3.12 first: widest wheel support).
ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }
if [ -n "${PYTHON:-}" ] && ok "$PYTHON"; then command -v "$PYTHON"; exit 0; fi
for c in python3.13 python3.12 python3; do
  if command -v "$c" >/dev/null 2>&1 && ok "$c"; then
    # pyenv shims exist for every version but fail unless that version is active: resolve the real path
    "$c" -c 'import sys; print(sys.executable)'; exit 0
  fi
done
if command -v pyenv >/dev/null 2>&1; then
  for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.(1[2-9]|[2-9][0-9])(\.[0-9]+)?$' | sort -t. -k2,2n -k3,3nr); do
    p=$(PYENV_VERSION="$v" pyenv which python 2>/dev/null) && ok "$p" && { echo "$p"; exit 0; }
  done
fi
echo "error: hte_mrt needs Python >= 3.12, and none was found (tried \$PYTHON, python3.13, python3.12, python3 and pyenv)." >&2
echo "       Install one (e.g. 'pyenv install 3.12') or run: make PYTHON=/path/to/python3.12 test" >&2
exit 1
