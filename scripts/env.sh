# Sourced by the scripts: a Python virtual environment with the moto server
# and cfn-lint (from PyPI), outside the repository and reused between runs.
GANTRY_VENV="${GANTRY_VENV:-$HOME/.cache/gantry-venv}"
if [ ! -x "$GANTRY_VENV/bin/moto_server" ] || [ ! -x "$GANTRY_VENV/bin/cfn-lint" ]; then
  echo "==> installing moto[server] and cfn-lint into $GANTRY_VENV" >&2
  python3 -m venv "$GANTRY_VENV"
  "$GANTRY_VENV/bin/python" -m pip install --quiet --upgrade pip
  "$GANTRY_VENV/bin/python" -m pip install --quiet 'moto[server]>=5.1' 'cfn-lint>=1' 'jsonpath-ng>=1.16'
fi
export PATH="$GANTRY_VENV/bin:$PATH"
