#!/usr/bin/env bash
# Idempotent installer for the test peers (tests/peers). Safe to call from many tests at once.
#  - npm ci in tests/peers, unless node_modules already matches package-lock.json
#  - pip install --target tests/peers/.pydeps -r requirements.txt, unless already done for the
#    same requirements.txt + Python version
#  - apt-get install the SIP peers (sip-tester = SIPp 3.6.1, baresip-core 1.0.0, sox), curl, jq,
#    stunnel4 and openssl when any of them is missing (Debian 12; root, or sudo); see tests/peers/sip/README.md
# Prints one line on success; on failure prints the installer's log to stderr and exits non-zero.
# Needs: node >= 20 + npm, python3 (3.11) + pip, apt-get (Debian). npm/pip install nothing globally;
# the SIP peers are system packages. Env: PYTHON (default python3).
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

# --- apt: SIP peers (tests/peers/sip), curl + jq for the documented examples (tests/docs.rs),
# stunnel4 and openssl for the TLS fronts (tests/support/tls.rs)
sip_pkgs=(sip-tester baresip-core sox curl jq stunnel4 openssl)
sip_missing=()
for pkg in "${sip_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || sip_missing+=("$pkg")
done
if ((${#sip_missing[@]})); then
  as_root() { if [[ "$(id -u)" == 0 ]]; then "$@"; else sudo "$@"; fi; }
  as_root apt-get -o DPkg::Lock::Timeout=600 update >"$LOG" 2>&1 || fail "apt-get update"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y \
    --no-install-recommends "${sip_missing[@]}" >"$LOG" 2>&1 || fail "apt-get install ${sip_missing[*]}"
  did+=("apt-get install ${sip_missing[*]}")
fi
for bin in sipp baresip sox curl jq stunnel4 openssl; do
  command -v "$bin" >/dev/null 2>&1 || { echo "tests/peers/setup.sh: $bin missing after apt-get install" >&2; exit 1; }
done

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
