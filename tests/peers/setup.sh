#!/usr/bin/env bash
# Idempotent installer for the test peers (tests/peers). Safe to call from many tests at once.
#  - npm ci in tests/peers, unless node_modules already matches package-lock.json
#  - pip install --target tests/peers/.pydeps -r requirements.txt, unless already done for the
#    same requirements.txt + Python version
# Prints one line on success; on failure prints the installer's log to stderr and exits non-zero.
# Needs: node >= 20 + npm, python3 (3.11) + pip. No global installs. Env: PYTHON (default python3).
set -euo pipefail

DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY="${PYTHON:-python3}"
cd "$DIR"

hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

# Serialize concurrent callers (cargo runs tests in parallel).
exec 9>"${TMPDIR:-/tmp}/agentline-peers-setup.$(echo "$DIR" | sha256sum | cut -c1-16).lock"
if command -v flock >/dev/null 2>&1; then
  flock 9
fi

LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT
fail() {
  echo "tests/peers/setup.sh: $1 failed:" >&2
  cat "$LOG" >&2
  exit 1
}

did=()

# --- npm ---------------------------------------------------------------
npm_hash="$(hash_of package-lock.json; node --version)"
npm_stamp="node_modules/.agentline-setup-hash"
if [[ ! -f "$npm_stamp" || "$(cat "$npm_stamp")" != "$npm_hash" ]]; then
  npm ci --no-audit --no-fund --loglevel=error >"$LOG" 2>&1 || fail "npm ci"
  echo "$npm_hash" >"$npm_stamp"
  did+=("npm ci")
fi

# --- pip ---------------------------------------------------------------
py_ver="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
pip_hash="$( (cat requirements.txt; echo "$py_ver") | sha256sum | cut -d' ' -f1)"
pip_stamp=".pydeps/.agentline-setup-hash"
if [[ ! -f "$pip_stamp" || "$(cat "$pip_stamp")" != "$pip_hash" ]]; then
  tmp=".pydeps.tmp.$$"
  rm -rf "$tmp"
  PIP_DISABLE_PIP_VERSION_CHECK=1 "$PY" -m pip install --quiet --no-warn-script-location \
    --target "$tmp" -r requirements.txt >"$LOG" 2>&1 || { rm -rf "$tmp"; fail "pip install"; }
  echo "$pip_hash" >"$tmp/.agentline-setup-hash"
  rm -rf .pydeps
  mv "$tmp" .pydeps
  did+=("pip install")
fi

anvil="$DIR/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
[[ -x "$anvil" ]] || { echo "tests/peers/setup.sh: anvil binary missing at $anvil" >&2; exit 1; }

if ((${#did[@]})); then
  echo "tests/peers: ready (${did[*]})"
else
  echo "tests/peers: ready (up to date)"
fi
