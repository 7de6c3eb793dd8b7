#!/usr/bin/env bash
# baresip 1.0.0 (Debian baresip-core) as a loopback-only SIP peer for the integration tests.
#
#   baresip.sh DIR PORT CTRL_PORT TONE_WAV [RTP_PORTS]
#
# Writes DIR/config, DIR/accounts and DIR/contacts, creates DIR/rec, then execs baresip in the
# foreground (`baresip -f DIR`), so the caller's process handle is baresip itself: kill it to stop.
#  - DIR        config directory (created); recordings go to DIR/rec (sndfile: dump-*-enc.wav is
#               what baresip sent, dump-*-dec.wav what it received, both 8 kHz mono S16LE here).
#  - PORT       SIP on 127.0.0.1:PORT, UDP and TCP (sip_listen); net_interface 127.0.0.1.
#  - CTRL_PORT  ctrl_tcp on 127.0.0.1:CTRL_PORT (netstring-framed JSON commands and events).
#  - TONE_WAV   audio source (aufile): a WAV, 8 kHz mono S16LE. When it ends, baresip ends
#               the call ("end of file"), so make it longer than any call.
#  - RTP_PORTS  optional "MIN-MAX" RTP range (default 20000-29999; baresip tries 64 ports
#               from a random start, so parallel instances may share a range).
# Environment (all optional):
#  - BARESIP_USER        account user part (default "bob"): the account is <sip:USER@127.0.0.1:PORT>
#  - BARESIP_AUTH_USER   digest username (default: BARESIP_USER)
#  - BARESIP_PASS        digest password used when challenged with 401/407 (default "secret")
#  - BARESIP_ANSWERMODE  auto | manual | early (default auto: every incoming call is answered)
#  - BARESIP_CODECS      account audio_codecs (default "PCMU,PCMA"; G722 is loaded when present)
set -euo pipefail

if (($# < 4)); then
  echo "usage: $0 DIR PORT CTRL_PORT TONE_WAV [RTP_PORTS]" >&2
  exit 2
fi
dir="$1" port="$2" ctrl="$3" tone="$4" rtp="${5:-20000-29999}"
user="${BARESIP_USER:-bob}"
auth_user="${BARESIP_AUTH_USER:-$user}"
pass="${BARESIP_PASS:-secret}"
answermode="${BARESIP_ANSWERMODE:-auto}"
codecs="${BARESIP_CODECS:-PCMU,PCMA}"
modules=/usr/lib/baresip/modules

command -v baresip >/dev/null || { echo "$0: baresip is not installed (tests/peers/setup.sh)" >&2; exit 1; }
[[ -f "$tone" ]] || { echo "$0: no such WAV: $tone" >&2; exit 1; }
mkdir -p "$dir/rec"
tone="$(cd "$(dirname "$tone")" && pwd)/$(basename "$tone")"
dir="$(cd "$dir" && pwd)"

g722=""
[[ -f "$modules/g722.so" ]] && g722="module			g722.so"

cat >"$dir/config" <<CFG
poll_method		epoll
sip_listen		127.0.0.1:$port
net_interface		127.0.0.1
audio_player		aubridge,nil
audio_source		aufile,$tone
audio_alert		aubridge,nil
ausrc_srate		8000
auplay_srate		8000
ausrc_channels		1
auplay_channels		1
rtp_ports		$rtp
jitter_buffer_delay	5-10
module_path		$modules
module			g711.so
$g722
module			aufile.so
module			aubridge.so
module			sndfile.so
snd_path		$dir/rec
module_tmp		uuid.so
module_tmp		account.so
module_app		menu.so
module_app		ctrl_tcp.so
ctrl_tcp_listen		127.0.0.1:$ctrl
CFG

echo "<sip:$user@127.0.0.1:$port>;auth_user=$auth_user;auth_pass=$pass;regint=0;answermode=$answermode;audio_codecs=$codecs" >"$dir/accounts"
: >"$dir/contacts"

exec baresip -f "$dir" </dev/null
