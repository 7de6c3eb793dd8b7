#!/usr/bin/env bash
# Runs every scenario in this directory against SIPp and baresip, over UDP and over TCP, on
# 127.0.0.1 only, and prints one line per case. Exit 0 iff all pass. No agentline needed.
#   bash tests/peers/sip/selftest.sh          # about 40 s
# Ports: SIP 25060-25090, media 16000-16100, ctrl 24444 (fixed: run one selftest at a time).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
W="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$W"' EXIT
cd "$W"
sox -n -r 8000 -c 1 -t ul tone.ul synth 10 sine 1000 vol 0.5
sox -n -r 8000 -c 1 -b 16 -e signed-integer in8k.wav synth 60 sine 440 vol 0.5
fails=0
ok() { echo "ok   $*"; }
ko() { echo "FAIL $*"; fails=$((fails + 1)); }
common=(-i 127.0.0.1 -mi 127.0.0.1 -ci 127.0.0.1 -nostdin -timeout 20s -timeout_error -trace_err -trace_logs)
wait_port() { # PROTO PORT
  for _ in $(seq 1 200); do
    if [[ $1 == tcp ]]; then ss -ltnH "sport = :$2" | grep -q . && return 0
    else ss -lunH "sport = :$2" | grep -q . && return 0; fi
    sleep 0.02
  done
  return 1
}
ctrl() { python3 "$HERE/bsctrl.py" 24444 "$@" >/dev/null; }

BARESIP_USER=bob "$HERE/baresip.sh" "$W/bs" 25060 24444 "$W/in8k.wav" >"$W/bs.log" 2>&1 &
for _ in $(seq 1 200); do grep -q 'baresip is ready' "$W/bs.log" && break; sleep 0.02; done

for tr in udp tcp; do
  t=u1; [[ $tr == tcp ]] && t=t1
  p=$([[ $tr == tcp ]] && echo 25070 || echo 25080)

  # uac_tone -> baresip (auto-answer)
  if sipp 127.0.0.1:25060 -sf "$HERE/uac_tone.xml" -t $t -s bob -set hold_ms 1500 -p $p -mp 16000 -cp 24001 -m 1 "${common[@]}" >out 2>&1
  then ok "$tr uac_tone -> baresip"; else ko "$tr uac_tone -> baresip"; fi

  # uac_tone -> baresip, baresip hangs up first
  sipp 127.0.0.1:25060 -sf "$HERE/uac_tone.xml" -t $t -s bob -set hold_ms 10000 -p $p -mp 16000 -cp 24001 -m 1 "${common[@]}" >out 2>&1 &
  sp=$!
  python3 "$HERE/bsctrl.py" 24444 listcalls --events 1.5 >/dev/null; ctrl hangup
  if wait $sp; then ok "$tr uac_tone -> baresip (far end BYE first)"; else ko "$tr uac_tone far-end BYE"; fi

  # uac_dtmf -> baresip
  if sipp 127.0.0.1:25060 -sf "$HERE/uac_dtmf.xml" -t $t -s bob -set hold_ms 1000 -p $p -mp 16004 -cp 24001 -m 1 "${common[@]}" >out 2>&1 &&
     grep -a -q "received event: '2' (end=1)" "$W/bs.log" && grep -a -q "received event: '3' (end=0)" "$W/bs.log"
  then ok "$tr uac_dtmf -> baresip (1, 2, 3 received)"; else ko "$tr uac_dtmf -> baresip"; fi

  # uac_expect_404 -> baresip (unknown user)
  if sipp 127.0.0.1:25060 -sf "$HERE/uac_expect_404.xml" -t $t -s nobody -p $p -mp 16008 -cp 24001 -m 1 "${common[@]}" >out 2>&1
  then ok "$tr uac_expect_404 -> baresip"; else ko "$tr uac_expect_404 -> baresip"; fi

  # uac_expect_486 -> uas_486
  sipp -sf "$HERE/uas_486.xml" -t $t -p 25085 -mp 16012 -cp 24002 -m 1 "${common[@]}" >uas.out 2>&1 &
  us=$!; wait_port $tr 25085
  if sipp 127.0.0.1:25085 -sf "$HERE/uac_expect_486.xml" -t $t -s agent -p $p -mp 16016 -cp 24001 -m 1 "${common[@]}" >out 2>&1 && wait $us
  then ok "$tr uac_expect_486 -> uas_486"; else ko "$tr uac_expect_486 -> uas_486"; fi

  # baresip -> uas_401_answer (digest ok), hangs up after 1.5 s
  sipp -sf "$HERE/uas_401_answer.xml" -t $t -set user bob -set pass secret -p 25086 -mp 16020 -cp 24002 -m 1 "${common[@]}" >uas.out 2>&1 &
  us=$!; wait_port $tr 25086
  uri="sip:service@127.0.0.1:25086"; [[ $tr == tcp ]] && uri="$uri;transport=tcp"
  python3 "$HERE/bsctrl.py" 24444 dial "$uri" --events 1.5 >/dev/null; ctrl hangup
  if wait $us && grep -q AUTH_OK uas_401_answer_*_logs.log; then ok "$tr baresip -> uas_401_answer (digest verified)"; else ko "$tr baresip -> uas_401_answer"; fi
  rm -f uas_401_answer_*

  # baresip -> uas_401_answer with the wrong password: 403, SIPp reports the call failed (exit 1)
  sipp -sf "$HERE/uas_401_answer.xml" -t $t -set user bob -set pass WRONG -p 25087 -mp 16024 -cp 24002 -m 1 "${common[@]}" >uas.out 2>&1 &
  us=$!; wait_port $tr 25087
  uri="sip:service@127.0.0.1:25087"; [[ $tr == tcp ]] && uri="$uri;transport=tcp"
  ctrl dial "$uri"
  rc=0; wait $us || rc=$?
  if [[ $rc == 1 ]] && grep -q AUTH_INVALID uas_401_answer_*_logs.log; then ok "$tr baresip wrong password -> 403"; else ko "$tr baresip wrong password (rc $rc)"; fi
  rm -f uas_401_answer_*

  # baresip -> uas_echo -rtp_echo
  sipp -sf "$HERE/uas_echo.xml" -t $t -rtp_echo -p 25088 -mp 16028 -cp 24002 -m 1 "${common[@]}" >uas.out 2>&1 &
  us=$!; wait_port $tr 25088
  uri="sip:echo@127.0.0.1:25088"; [[ $tr == tcp ]] && uri="$uri;transport=tcp"
  python3 "$HERE/bsctrl.py" 24444 dial "$uri" --events 1.5 >/dev/null; ctrl hangup
  if wait $us; then ok "$tr baresip -> uas_echo"; else ko "$tr baresip -> uas_echo"; fi

  # load: uac_tone x20 (10 at once, 10 cps) -> uas_echo -rtp_echo
  sipp -sf "$HERE/uas_echo.xml" -t $t -rtp_echo -p 25089 -mp 16032 -cp 24002 -m 20 "${common[@]}" >uas.out 2>&1 &
  us=$!; wait_port $tr 25089
  if sipp 127.0.0.1:25089 -sf "$HERE/uac_tone.xml" -t $t -s echo -set hold_ms 1000 -p $p -mp 16036 -cp 24001 -m 20 -l 10 -r 10 "${common[@]}" >out 2>&1 && wait $us
  then ok "$tr uac_tone x20 -> uas_echo"; else ko "$tr uac_tone x20 -> uas_echo"; fi
done

((fails == 0)) && echo "selftest: all passed" || { echo "selftest: $fails failed"; exit 1; }
