#!/usr/bin/env bash
# Voice load through the SIP trunk bridge: starts a SIPp echo trunk (tests/peers/sip/uas_echo.xml
# with -rtp_echo, -m CALLS), `target/release/agentline serve` pointed at it on a fresh SQLite
# database, imports CALLS numbers with POST /admin/numbers, runs the harness (CALLS echo calls
# for SECONDS; the far end is SIPp, every call's RTP is echoed back to its own port), prints
# SIPp's own statistics, and stops both.
# usage: tools/voice-load/sip-run.sh CALLS SECONDS [harness options, e.g. --json --ramp-ms 0]
# Environment:
#   VOICE_LOAD_NICE=-10          server, SIPp and harness at that niceness (as run.sh; re-runs
#                                itself in a new session and sets its autogroup's nice too)
#   VOICE_LOAD_JITTER_MS=20      AGENTLINE_RTP_JITTER_MS of the server (the default)
#   VOICE_LOAD_SIP_TRANSPORT=udp udp or tcp (the trunk URI's ;transport= and SIPp's -t u1/t1)
#   VOICE_LOAD_CODEC=PCMU        PCMU: tests/peers/sip/uas_echo.xml; G722: the same answering
#                                PT 9 (tools/voice-load/sip/uas_echo_g722.xml)
#   VOICE_LOAD_PORT=18430, VOICE_LOAD_SIP_PORT=15060 (server), VOICE_LOAD_SIPP_PORT=15090,
#   VOICE_LOAD_SIPP_MEDIA=16000, VOICE_LOAD_RTP_PORTS=32000-33999 (server, one port per call)
#   VOICE_LOAD_SERVER_LOG=FILE keeps the server's log (VOICE_LOAD_LOG=warn: its AGENTLINE_LOG),
#   VOICE_LOAD_SIPP_DIR=DIR keeps SIPp's files, VOICE_LOAD_SIPP_ARGS adds to its command line.
#   VOICE_LOAD_PEER_RMEM=BYTES   sets net.core.rmem_default for the run (restored after): SIPp's
#                                single echo socket keeps the kernel default buffer (208 KB, ~7 ms
#                                of 500 calls' RTP) and drops when its thread is late; the server's
#                                RTP sockets see a packet per call per 20 ms and do not need it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=common.sh
. "$here/common.sh"
enter_priority_group "$@"
calls=${1:?usage: sip-run.sh CALLS SECONDS [harness options]}
secs=${2:?usage: sip-run.sh CALLS SECONDS [harness options]}
shift 2
port=${VOICE_LOAD_PORT:-18430}
sip_port=${VOICE_LOAD_SIP_PORT:-15060}
sipp_port=${VOICE_LOAD_SIPP_PORT:-15090}
sipp_media=${VOICE_LOAD_SIPP_MEDIA:-16000}
rtp_ports=${VOICE_LOAD_RTP_PORTS:-32000-33999}
jitter=${VOICE_LOAD_JITTER_MS:-20}
transport=${VOICE_LOAD_SIP_TRANSPORT:-udp}
codec=${VOICE_LOAD_CODEC:-PCMU}
key=voice-load-admin-key-0123456789
rmem_before=
if [ -n "${VOICE_LOAD_PEER_RMEM:-}" ] && [ -w /proc/sys/net/core/rmem_default ]; then
  rmem_before=$(cat /proc/sys/net/core/rmem_default)
  echo "$VOICE_LOAD_PEER_RMEM" > /proc/sys/net/core/rmem_default
  echo "sip-run.sh: net.core.rmem_default $rmem_before -> $VOICE_LOAD_PEER_RMEM for this run" >&2
fi
case "$transport" in
  udp) tflag=u1; tparam= ;;
  tcp) tflag=t1; tparam=";transport=tcp" ;;
  *) echo "sip-run.sh: VOICE_LOAD_SIP_TRANSPORT is udp or tcp" >&2; exit 2 ;;
esac
case "$codec" in
  PCMU) scenario=$root/tests/peers/sip/uas_echo.xml; codecs=G722,PCMU,PCMA ;;
  G722) scenario=$here/sip/uas_echo_g722.xml; codecs=G722,PCMU,PCMA ;;
  *) echo "sip-run.sh: VOICE_LOAD_CODEC is PCMU or G722" >&2; exit 2 ;;
esac

if [ ! -x "$root/target/release/agentline" ]; then
  echo "sip-run.sh: building the server (release)" >&2
  (cd "$root" && cargo build --release --locked)
fi
(cd "$here" && cargo build --release --locked --quiet)
ulimit -n "$(ulimit -Hn)"

dir=$(mktemp -d)
sipp_dir=${VOICE_LOAD_SIPP_DIR:-$dir/sipp}
mkdir -p "$sipp_dir"
# SIPp answers every INVITE (100, 180, 200 with SDP), echoes every RTP packet reaching its one
# media port back to where it came from, and exits after CALLS calls (or on SIGUSR1).
(cd "$sipp_dir" && exec nice -n "$prio" sipp -sf "$scenario" -t "$tflag" -rtp_echo \
  -i 127.0.0.1 -mi 127.0.0.1 -p "$sipp_port" -mp "$sipp_media" -cp $((sipp_port + 1)) \
  -m "$calls" -max_socket 65000 -timeout $((secs + 300))s -nostdin \
  -trace_err -trace_screen -trace_stat -fd 1 ${VOICE_LOAD_SIPP_ARGS:-} >"$sipp_dir/stdout" 2>&1) &
sipp_pid=$!
for _ in $(seq 1 50); do
  grep -q ":$(printf '%04X' "$sipp_port") " /proc/net/udp /proc/net/tcp 2>/dev/null && break
  sleep 0.1
done

AGENTLINE_LISTEN=127.0.0.1:$port AGENTLINE_DATABASE_URL="sqlite://$dir/voice.db" AGENTLINE_ADMIN_KEY=$key \
  AGENTLINE_LOG=${VOICE_LOAD_LOG:-warn} AGENTLINE_SIP_TRUNK="sip:127.0.0.1:$sipp_port$tparam" AGENTLINE_SIP_LISTEN=127.0.0.1:$sip_port \
  AGENTLINE_RTP_PORTS=$rtp_ports AGENTLINE_RTP_JITTER_MS=$jitter AGENTLINE_SIP_CODECS=$codecs \
  nice -n "$prio" "$root/target/release/agentline" serve 2>"$dir/server.log" &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  kill -USR1 "$sipp_pid" 2>/dev/null || true
  for _ in $(seq 1 30); do kill -0 "$sipp_pid" 2>/dev/null || break; sleep 0.1; done
  kill "$sipp_pid" 2>/dev/null || true
  wait "$sipp_pid" 2>/dev/null || true
  if [ -n "${VOICE_LOAD_SERVER_LOG:-}" ]; then cp "$dir/server.log" "$VOICE_LOAD_SERVER_LOG"; fi
  if [ -n "$rmem_before" ]; then echo "$rmem_before" > /proc/sys/net/core/rmem_default; fi
  rm -rf "$dir"
}
trap cleanup EXIT
wait_for_server sip-run.sh

# The pool: CALLS numbers +1202555XXXX from 0100 (10,000 per request at most).
python3 - "$calls" >"$dir/numbers.json" <<'EOF'
import json, sys
n = int(sys.argv[1])
print(json.dumps({"numbers": ["+1202%07d" % (5550100 + i) for i in range(n)]}))
EOF
curl -sf -X POST "http://127.0.0.1:$port/admin/numbers" -H "authorization: Bearer $key" \
  -H 'content-type: application/json' --data-binary @"$dir/numbers.json" >&2 || {
  echo "sip-run.sh: importing numbers failed" >&2; exit 1; }
echo >&2

status=0
nice -n "$prio" "$here/target/release/voice-load" --base "http://127.0.0.1:$port" --admin-key "$key" \
  --calls "$calls" --seconds "$secs" --server-pid "$pid" --peer-pid "sipp=$sipp_pid" \
  --udp-ports "server_sip=$sip_port" --udp-ports "server_rtp=${rtp_ports}" \
  --udp-ports "sipp_sip=$sipp_port" --udp-ports "sipp_media=$sipp_media-$((sipp_media + 2))" "$@" || status=$?

# SIPp exits by itself once its CALLS calls have ended; give it a moment, then soft-exit it.
for _ in $(seq 1 50); do kill -0 "$sipp_pid" 2>/dev/null || break; sleep 0.1; done
kill -USR1 "$sipp_pid" 2>/dev/null || true
sipp_rc=0; wait "$sipp_pid" || sipp_rc=$?
screen=$(ls "$sipp_dir"/*_screen.log 2>/dev/null | head -1 || true)
if [ -n "$screen" ]; then
  echo "sip-run.sh: SIPp exit code $sipp_rc; its final statistics:" >&2
  # The first screen: calls, dead-call messages, socket errors, and per message the counts,
  # retransmissions, timeouts and unexpected messages; then the successful/failed counters.
  sed -n '/Scenario Screen/,/ms\] Pause/p' "$screen" | grep -vE '^-|^ *$' | head -20 >&2 || true
  grep -m2 -E "Successful call|Failed call" "$screen" | sed -E 's/ +\| +/ | /g; s/ +$//' >&2 || true
else
  echo "sip-run.sh: SIPp exit code $sipp_rc (no screen log)" >&2
fi
errs=$(ls "$sipp_dir"/*_errors.log 2>/dev/null | head -1 || true)
if [ -n "$errs" ] && [ -s "$errs" ]; then
  echo "sip-run.sh: SIPp error log ($(wc -l <"$errs") lines), the most frequent:" >&2
  grep -oE '^[0-9-]+.[0-9:.]+.[0-9.]+: [^:]*' "$errs" | sed -E 's/^[^ ]+ [^:]+:[^:]+: //; s/[0-9a-f]{16}@[0-9.]+/…/g' \
    | sort | uniq -c | sort -rn | head -5 >&2 || true
fi
summarize_server_log sip-run.sh "$status"
exit "$status"
