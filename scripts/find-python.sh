#!/usr/bin/env bash
# Print the path of a Python >= 3.12 interpreter, or explain how to get one and exit 1.
# PyMC 6 and ArviZ 1.x need Python 3.12+; on 3.11 pip silently installs the legacy PyMC 5 / ArviZ 0.x.
set -u
ok() { "$1" -c 'import sys, venv; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }
cands=()
[ -n "${PYTHON:-}" ] && cands+=("$PYTHON")
for v in 3.12 3.13; do cands+=("python$v"); done
if command -v pyenv >/dev/null 2>&1; then
  root=$(pyenv root 2>/dev/null)
  # prefer 3.12 (the measured stack in ../shared/pymc_notes.md), then newer
  for d in $(ls -d "$root"/versions/3.12* 2>/dev/null | sort -V -r) $(ls -d "$root"/versions/3.1[3-9]* 2>/dev/null | sort -V); do
    for exe in "$d"/bin/python3.1[2-9] "$d"/bin/python3; do [ -x "$exe" ] && cands+=("$exe"); done
  done
fi
for d in $(ls -d "$HOME"/.pyenv/versions/3.12* "$HOME"/.pyenv/versions/3.1[3-9]* 2>/dev/null); do cands+=("$d/bin/python3"); done
cands+=(python3 python /usr/local/bin/python3.12 /usr/bin/python3.12)
for c in "${cands[@]}"; do
  exe=$(command -v "$c" 2>/dev/null) || continue
  if ok "$exe"; then echo "$exe"; exit 0; fi
done
cat >&2 <<'MSG'
bayes-dcpt needs Python >= 3.12 (PyMC 6 and ArviZ 1.x require it) and none was found.
Install one, for example `pyenv install 3.12` or your system's python3.12 package,
or point to it with `make PYTHON=/path/to/python3.12 ...`.
MSG
exit 1
