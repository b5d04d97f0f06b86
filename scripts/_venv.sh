# Sourced by the two entry scripts: a virtual environment in .venv with the given requirements.
# It says what it is doing, installs with uv when the package index has it (else with pip, showing
# progress), and skips the install when the requirements have not changed since the last one.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "Python 3.11 or newer is needed (found $("$PYTHON" --version 2>&1))" >&2; exit 1; }

requirements=$1
# The requirements file and the ones it includes (-r), as one fingerprint.
fingerprint=$(cat "$requirements" $(sed -n 's/^-r[[:space:]]*//p' "$requirements") | sha256sum | cut -c1-16)
stamp=".venv/.installed-$(basename "$requirements")"
if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$fingerprint" ]; then
  return 0
fi

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $("$PYTHON" --version 2>&1)" >&2
  "$PYTHON" -m venv .venv
fi
if [ -x .venv/bin/uv ] || .venv/bin/python -m pip install --quiet --disable-pip-version-check uv >/dev/null 2>&1; then
  echo "==> installing $requirements with uv" >&2
  # uv reads no pip configuration: hand it pip's own (local wheel folders, constraints, extra indexes).
  mapfile -t pip_options < <(.venv/bin/python scripts/pip_options_for_uv.py)
  if ! VIRTUAL_ENV=.venv .venv/bin/uv pip install "${pip_options[@]}" -r "$requirements"; then
    echo "==> uv could not install them; trying pip" >&2
    .venv/bin/python -m pip install --disable-pip-version-check --progress-bar on -r "$requirements"
  fi
else
  echo "==> installing $requirements with pip (a first start takes a minute or two)" >&2
  .venv/bin/python -m pip install --disable-pip-version-check --progress-bar on -r "$requirements"
fi
echo "$fingerprint" > "$stamp"
