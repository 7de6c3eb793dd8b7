//! One call's task: owns the network [`Leg`], the agent's stream once attached, and the media
//! pipeline between them, and persists the call's state changes.
//!
//! Every 20 ms (a tokio interval on the monotonic clock, bursting to catch up rather than skipping,
//! so the frame count stays exact) the task moves one frame each way: network frames that arrived
//! are put in the jitter buffer and one comes out, is decoded and upsampled to 16 kHz and goes to
//! the agent as exactly 640 bytes (silence when there is nothing); one frame of the agent's
//! playout buffer is downsampled, encoded and sent to the network, and marks it completes are
//! acknowledged. Network frames are read only on the tick, so a call costs one wake-up per 20 ms
//! plus one per agent message. Nothing here blocks or holds a lock across an await.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, MissedTickBehavior};

use super::ending::{EndReason, Ending, FinalState, StreamClose};
use super::recorder::{Recorder, RecordingLayout};
use super::{Inner, presence_event};
use crate::clock;
use crate::ids::CallId;
use crate::media::Codec;
use crate::media::frame::{self, FRAME_BYTES, FRAME_SAMPLES, NARROWBAND_FRAME_SAMPLES, Reframer};
use crate::media::g711::Law;
use crate::media::g722::{G722Decoder, G722Encoder};
use crate::media::jitter::{JitterBuffer, JitterConfig, Pop};
use crate::media::playout::PlayoutBuffer;
use crate::media::resample::{Downsampler, Upsampler};
use crate::store::CallWrite;
use crate::telco::rtp::stream::RtpStream;
use crate::telco::voice::{G711_FRAME, HangupCause, Leg, LegCommand, LegEvent, MediaFrame, Refusal};

/// Longest mark name accepted.
const MAX_MARK_NAME: usize = 128;
/// Frames queued towards an agent's socket at most (1 s); beyond it frames are dropped and counted.
pub const TO_AGENT_QUEUE: usize = 50;

/// What the task sends towards the agent's socket.
#[derive(Debug)]
pub enum ToAgent {
    Audio(Bytes),
    Text(String),
    /// Close with this close frame, after everything queued before it.
    Close(StreamClose),
}

/// What arrives from the agent's socket. The channel closing means the socket closed.
#[derive(Debug)]
pub enum FromAgent {
    Audio(Bytes),
    Text(String),
}

/// The agent's stream socket, as channels (the HTTP edge pumps the real socket).
#[derive(Debug)]
pub struct StreamIo {
    pub to_agent: mpsc::Sender<ToAgent>,
    pub from_agent: mpsc::Receiver<FromAgent>,
}

#[derive(Debug)]
pub enum Control {
    Attach(StreamIo),
    Hangup,
}

pub use crate::store::CallDirection as Direction;

/// Where a call stands; the stored `state` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Initiated,
    Ringing,
    InProgress,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Initiated => "initiated",
            Self::Ringing => "ringing",
            Self::InProgress => "in_progress",
        }
    }
}

/// What `dial` answers with: the first progress of the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialProgress {
    Ringing,
    Answered,
    Ended(Ending),
}

pub(super) struct CallTask {
    pub inner: Arc<Inner>,
    pub call_id: CallId,
    pub number: String,
    pub peer: String,
    pub direction: Direction,
    pub state: State,
    pub leg: Leg,
    pub control: mpsc::Receiver<Control>,
    pub dial_reply: Option<oneshot::Sender<DialProgress>>,
    /// Until when an offered (inbound) or dialled call may ring before it ends `no_answer`.
    pub ring_deadline: Instant,
    pub shutdown: watch::Receiver<bool>,
    /// The agent is a SIP endpoint (`callback_sip_uri`, `inbound_sip_uri`) rather than a
    /// WebSocket: its own leg, bridged frame by frame through the 16 kHz pipeline.
    pub sip_agent: Option<Leg>,
}

/// The media of an agent reached over SIP: its leg's media, once the agent has answered.
struct SipAgentMedia {
    answered: bool,
    media: LegMedia,
}

/// One network leg's audio at our edge: its jitter buffer and codec in, its codec out, 16 kHz on
/// our side (G.711 through the resamplers, G.722 as it is).
struct LegMedia {
    coder: Coder,
    jitter: JitterBuffer,
    jitter_target: usize,
    up: Upsampler,
    down: Downsampler,
    /// Our outgoing stream towards the leg: its SSRC, sequence numbers and timestamps, kept once.
    stream: RtpStream,
    narrow: [i16; NARROWBAND_FRAME_SAMPLES],
    /// The leg's audio of this tick at 16 kHz (silence when nothing arrived).
    wide: [i16; FRAME_SAMPLES],
}

impl LegMedia {
    fn new(leg: &Leg) -> Self {
        Self::with(leg.codec, leg.jitter_frames, RtpStream::random())
    }

    fn with(codec: Codec, jitter_frames: usize, stream: RtpStream) -> Self {
        let jitter_target = jitter_frames.clamp(1, 8);
        Self {
            coder: Coder::new(codec),
            jitter: JitterBuffer::new(JitterConfig { target_depth: jitter_target }).unwrap_or_else(|_| {
                JitterBuffer::new(JitterConfig::default()).expect("invariant: default depth is valid")
            }),
            jitter_target,
            up: Upsampler::new(),
            down: Downsampler::new(),
            stream,
            narrow: [0; NARROWBAND_FRAME_SAMPLES],
            wide: [0; FRAME_SAMPLES],
        }
    }

    /// Takes the frames that arrived and decodes this tick's into `wide`. A burst (the far end
    /// catching up after a stall) must not become permanent delay: at most two frames beyond the
    /// target depth are kept, the oldest dropped; returns how many were. Frames carry their
    /// stream's SSRC, so a new stream mid-call (a transfer, a media server taking over) restarts
    /// the jitter buffer instead of waiting behind the old stream's sequence numbers.
    fn receive(&mut self, media_in: &mut mpsc::Receiver<MediaFrame>) -> usize {
        while let Ok(f) = media_in.try_recv() {
            self.jitter.insert(f.ssrc, f.seq, f.timestamp, &f.payload);
        }
        let mut shed = 0;
        while self.jitter.depth() > self.jitter_target + 2 {
            let _ = self.jitter.pop();
            shed += 1;
        }
        let payload = match self.jitter.pop() {
            Pop::Frame { payload, .. } if payload.len() == G711_FRAME => Some(payload),
            _ => None,
        };
        match &mut self.coder {
            Coder::G711(law) => {
                match payload {
                    Some(payload) => {
                        law.decode(payload, &mut self.narrow);
                    }
                    None => self.narrow = [0; NARROWBAND_FRAME_SAMPLES],
                }
                // The upsampler runs on silence too, so its state stays continuous.
                self.up.process(&self.narrow, &mut self.wide);
            }
            Coder::G722 { dec, .. } => match payload {
                Some(payload) => {
                    dec.decode(payload, &mut self.wide);
                }
                None => self.wide = [0; FRAME_SAMPLES],
            },
        }
        shed
    }

    /// 20 ms of 16 kHz audio as the leg's next frame.
    fn encode(&mut self, pcm: &[i16; FRAME_SAMPLES]) -> MediaFrame {
        let mut payload = [0u8; G711_FRAME];
        match &mut self.coder {
            Coder::G711(law) => {
                self.down.process(pcm, &mut self.narrow);
                law.encode(&self.narrow, &mut payload);
            }
            Coder::G722 { enc, .. } => {
                enc.encode(pcm, &mut payload);
            }
        }
        // 160 RTP clock units per 20 ms, G.722 included (its RTP clock is 8000 Hz too).
        let stamp = self.stream.next_packet(NARROWBAND_FRAME_SAMPLES as u32);
        MediaFrame { ssrc: stamp.ssrc, seq: stamp.sequence_number, timestamp: stamp.timestamp, payload }
    }
}

/// The audio state of one call.
struct Media {
    /// The network leg's side.
    net: LegMedia,
    reframer: Reframer,
    playout: PlayoutBuffer,
    to_network: [i16; FRAME_SAMPLES],
    scratch: [i16; FRAME_SAMPLES],
    /// Optional WAV recording, written on its own thread.
    recorder: Option<Recorder>,
}

/// The network codec: G.711 at 8 kHz goes through the resamplers; G.722 carries 16 kHz audio
/// and needs none.
enum Coder {
    G711(Law),
    G722 { enc: Box<G722Encoder>, dec: Box<G722Decoder> },
}

impl Coder {
    fn new(codec: Codec) -> Self {
        match codec {
            Codec::Pcmu => Self::G711(Law::Ulaw),
            Codec::Pcma => Self::G711(Law::Alaw),
            Codec::G722 => Self::G722 { enc: Box::new(G722Encoder::new()), dec: Box::new(G722Decoder::new()) },
        }
    }
}

#[derive(Deserialize)]
struct AgentCommand {
    event: String,
    name: Option<String>,
    digits: Option<String>,
}

impl CallTask {
    pub async fn run(mut self) {
        let mut media = Media {
            net: LegMedia::new(&self.leg),
            reframer: Reframer::default(),
            playout: PlayoutBuffer::default(),
            to_network: [0; FRAME_SAMPLES],
            scratch: [0; FRAME_SAMPLES],
            recorder: self.inner.recordings.as_ref().and_then(|dir| {
                let path = dir.join(format!("{}.wav", self.call_id));
                Recorder::start(&path, RecordingLayout::Stereo)
                    .inspect_err(|err| tracing::warn!(call_id = %self.call_id, error = %err, "recording not started"))
                    .ok()
            }),
        };
        let mut tick = tokio::time::interval(Duration::from_millis(frame::FRAME_MS as u64));
        tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
        let mut stream: Option<StreamIo> = None;
        let mut sip_agent =
            self.sip_agent.as_ref().map(|leg| SipAgentMedia { answered: false, media: LegMedia::new(leg) });
        let ending = loop {
            let ringing = self.state != State::InProgress;
            tokio::select! {
                _ = tick.tick() => {
                    // The agent's messages are taken on the tick, not as they come: one wake-up
                    // per call per 20 ms instead of one more per message; a `clear` still acts
                    // before the next frame leaves, and a closed socket hangs up within a tick.
                    match self.drain_agent(&mut media, &mut stream) {
                        AgentInput::Open => {}
                        AgentInput::HangupAsked => break self.local_hangup(),
                        AgentInput::Closed => {
                            stream = None;
                            break self.local_hangup();
                        }
                    }
                    self.on_tick(&mut media, stream.as_ref());
                    if let Some(a) = &mut sip_agent {
                        self.bridge_sip_agent(a, &mut media);
                    }
                }
                event = recv_leg_event(&mut self.sip_agent) => {
                    if let (Some(event), Some(a)) = (event, sip_agent.as_mut())
                        && let Some(ending) = self.on_sip_agent_event(event, a).await
                    {
                        break ending;
                    }
                }
                event = self.leg.events.recv() => match event {
                    Some(event) => {
                        if let Some(ending) = self.on_leg_event(event, &mut media, stream.as_ref()).await {
                            break ending;
                        }
                    }
                    None => break Ending::FAILED,
                },
                control = self.control.recv() => match control {
                    Some(Control::Attach(io)) => {
                        if stream.is_some() {
                            let _ = io.to_agent.try_send(ToAgent::Close(StreamClose::AlreadyStreaming));
                            continue;
                        }
                        self.on_attach(&io).await;
                        stream = Some(io);
                    }
                    Some(Control::Hangup) | None => break self.local_hangup(),
                },
                _ = tokio::time::sleep_until(self.ring_deadline), if ringing => {
                    let ending = Ending::new(FinalState::NoAnswer, EndReason::NoAnswer).with_sip_code(Some(480));
                    let command = match self.direction {
                        Direction::Inbound => LegCommand::Reject(Refusal::NoAnswer),
                        Direction::Outbound => LegCommand::Hangup,
                    };
                    let _ = self.leg.commands.try_send(command);
                    break ending;
                }
                _ = self.shutdown.changed() => {
                    let _ = self.leg.commands.try_send(LegCommand::Hangup);
                    break Ending::FAILED;
                }
            }
        };
        if let Some(agent) = self.sip_agent.take() {
            // The call is over: CANCEL or BYE towards the agent's endpoint (dropping the leg
            // would do it too).
            let _ = agent.commands.try_send(LegCommand::Hangup);
        }
        if let Some(recorder) = media.recorder.take() {
            // Finalizing writes the header: blocking I/O, off the async threads.
            let call_id = self.call_id.clone();
            let finished = tokio::task::spawn_blocking(move || {
                if let Err(err) = recorder.finish() {
                    tracing::warn!(%call_id, error = %err, "recording not finalized");
                }
            });
            let _ = finished.await;
        }
        self.finish(ending, stream).await;
    }

    fn on_tick(&mut self, m: &mut Media, stream: Option<&StreamIo>) {
        let started = std::time::Instant::now();
        // Network -> agent.
        let shed = m.net.receive(&mut self.leg.media_in);
        if shed > 0 {
            self.inner.metrics.voice_frames_shed.inc_by(shed as u64);
        }
        if let Some(s) = stream {
            let mut bytes = vec![0u8; FRAME_BYTES];
            frame::samples_to_s16le(&m.net.wide, &mut bytes);
            if s.to_agent.try_send(ToAgent::Audio(Bytes::from(bytes))).is_err() {
                self.inner.metrics.voice_frames_dropped.inc();
            }
        }
        // Agent -> network.
        let played = m.playout.pop(&mut m.to_network);
        if let Some(s) = stream {
            for mark in played.marks {
                let _ = s.to_agent.try_send(ToAgent::Text(json!({"event": "mark", "name": mark.name}).to_string()));
            }
        } else {
            drop(played);
        }
        if self.state == State::InProgress {
            let frame = m.net.encode(&m.to_network);
            // A far end that cannot keep up loses this frame, as on a real network.
            let _ = self.leg.media_out.try_send(frame);
            if let Some(recorder) = &mut m.recorder {
                // Never blocks: a full queue drops the frame and the file keeps its timing.
                let _ = recorder.write(&m.net.wide, &m.to_network);
            }
        }
        self.inner.metrics.voice_tick.observe(started.elapsed().as_secs_f64());
    }

    async fn on_attach(&mut self, io: &StreamIo) {
        let (from, to) = match self.direction {
            Direction::Outbound => (&self.number, &self.peer),
            Direction::Inbound => (&self.peer, &self.number),
        };
        let codec = json!({"codec": self.leg.codec.name(), "sample_rate": self.leg.codec.sample_rate_hz()});
        let answering = self.direction == Direction::Inbound && self.state != State::InProgress;
        let state = if answering { State::InProgress } else { self.state };
        let connected = json!({
            "event": "connected",
            "version": 1,
            "call_id": self.call_id,
            "direction": self.direction.as_str(),
            "from": from,
            "to": to,
            "format": {"encoding": "pcm_s16le", "sample_rate": 16000, "channels": 1, "frame_ms": 20, "frame_bytes": 640},
            "upstream": codec,
            "state": state.as_str(),
        });
        let _ = io.to_agent.try_send(ToAgent::Text(connected.to_string()));
        if answering {
            // Opening the stream answers an offered call.
            let _ = self.leg.commands.send(LegCommand::Answer).await;
            self.answered().await;
            let _ = io.to_agent.try_send(ToAgent::Text(r#"{"event":"answered"}"#.to_owned()));
        } else if self.state == State::Ringing {
            let _ = io.to_agent.try_send(ToAgent::Text(r#"{"event":"ringing"}"#.to_owned()));
        } else if self.state == State::InProgress {
            let _ = io.to_agent.try_send(ToAgent::Text(r#"{"event":"answered"}"#.to_owned()));
        }
    }

    async fn answered(&mut self) {
        self.state = State::InProgress;
        let write = CallWrite::Answered { call_id: self.call_id.clone(), at_ms: clock::now_ms() };
        if let Err(err) = self.inner.writer.call(write).await {
            tracing::warn!(call_id = %self.call_id, error = %err, "call answer not recorded");
        }
    }

    async fn on_leg_event(&mut self, event: LegEvent, m: &mut Media, stream: Option<&StreamIo>) -> Option<Ending> {
        let say = |text: String| {
            if let Some(s) = stream {
                let _ = s.to_agent.try_send(ToAgent::Text(text));
            }
        };
        match event {
            LegEvent::Ringing | LegEvent::EarlyMedia => {
                if self.state == State::Initiated {
                    self.state = State::Ringing;
                    let write = CallWrite::Ringing { call_id: self.call_id.clone() };
                    if let Err(err) = self.inner.writer.call(write).await {
                        tracing::warn!(call_id = %self.call_id, error = %err, "call ringing not recorded");
                    }
                    say(r#"{"event":"ringing"}"#.to_owned());
                }
                if let Some(reply) = self.dial_reply.take() {
                    let _ = reply.send(DialProgress::Ringing);
                }
            }
            LegEvent::Answered => {
                if self.state != State::InProgress {
                    self.answered().await;
                    say(r#"{"event":"answered"}"#.to_owned());
                }
                if let Some(reply) = self.dial_reply.take() {
                    let _ = reply.send(DialProgress::Answered);
                }
            }
            LegEvent::Dtmf { digit, duration_ms } => {
                if let Some(agent) = &self.sip_agent {
                    let _ = agent.commands.try_send(LegCommand::SendDtmf(digit));
                }
                say(json!({"event": "dtmf", "digit": digit.to_string(), "duration_ms": duration_ms}).to_string());
            }
            LegEvent::CodecChanged(codec) => {
                m.net.coder = Coder::new(codec);
                self.leg.codec = codec;
                say(json!({"event": "upstream", "codec": codec.name(), "sample_rate": codec.sample_rate_hz()})
                    .to_string());
            }
            LegEvent::Hangup { cause, sip_code } => {
                let ending = match (self.state, cause) {
                    (State::InProgress, HangupCause::Failed) => Ending::FAILED,
                    (State::InProgress, _) => Ending::new(FinalState::Completed, EndReason::RemoteHangup),
                    (_, HangupCause::Busy) => Ending::new(FinalState::Busy, EndReason::Busy),
                    (_, HangupCause::NoAnswer) => Ending::new(FinalState::NoAnswer, EndReason::NoAnswer),
                    (_, HangupCause::Cancelled) => Ending::new(FinalState::Cancelled, EndReason::Cancelled),
                    (_, HangupCause::Failed | HangupCause::Normal) => Ending::FAILED,
                };
                return Some(ending.with_sip_code(sip_code));
            }
        }
        None
    }

    /// This side hangs up: the network is told, and the call ends by the state it was in.
    fn local_hangup(&mut self) -> Ending {
        match (self.state, self.direction) {
            (State::InProgress, _) => {
                let _ = self.leg.commands.try_send(LegCommand::Hangup);
                Ending::new(FinalState::Completed, EndReason::LocalHangup)
            }
            (_, Direction::Outbound) => {
                let _ = self.leg.commands.try_send(LegCommand::Hangup);
                Ending::new(FinalState::Cancelled, EndReason::Cancelled)
            }
            (_, Direction::Inbound) => {
                let _ = self.leg.commands.try_send(LegCommand::Reject(Refusal::Busy));
                Ending::new(FinalState::Cancelled, EndReason::LocalHangup)
            }
        }
    }

    /// Handles every message the agent sent since the last tick, in order.
    fn drain_agent(&mut self, m: &mut Media, stream: &mut Option<StreamIo>) -> AgentInput {
        loop {
            let Some(s) = stream.as_mut() else { return AgentInput::Open };
            match s.from_agent.try_recv() {
                Ok(msg) => {
                    if self.on_agent(msg, m, stream.as_ref()) {
                        return AgentInput::HangupAsked;
                    }
                }
                Err(mpsc::error::TryRecvError::Empty) => return AgentInput::Open,
                Err(mpsc::error::TryRecvError::Disconnected) => return AgentInput::Closed,
            }
        }
    }

    /// Handles one agent message; `true` when the agent asked to hang up.
    fn on_agent(&mut self, msg: FromAgent, m: &mut Media, stream: Option<&StreamIo>) -> bool {
        let Some(s) = stream else { return false };
        let say = |text: String| {
            let _ = s.to_agent.try_send(ToAgent::Text(text));
        };
        let error = |code: &str, message: &str| json!({"event": "error", "code": code, "message": message}).to_string();
        match msg {
            FromAgent::Audio(bytes) => {
                let mut rejected = 0usize;
                let playout = &mut m.playout;
                let scratch = &mut m.scratch;
                let pushed = m.reframer.push(&bytes, |f| {
                    frame::frame_to_samples(f, scratch);
                    if let Err(overflow) = playout.push(&scratch[..]) {
                        rejected += overflow.rejected;
                    }
                });
                if pushed.is_err() {
                    say(error("odd_length", "binary frames must hold whole 16-bit samples (an even number of bytes)"));
                }
                if rejected > 0 {
                    let dropped_ms = rejected / 16;
                    let text = json!({"event": "error", "code": "playout_overflow", "dropped_ms": dropped_ms,
                        "message": "more than 120 s of audio queued; the excess was dropped"});
                    say(text.to_string());
                }
            }
            FromAgent::Text(text) => {
                let Ok(cmd) = serde_json::from_str::<AgentCommand>(&text) else {
                    say(error("bad_message", "text frames must be JSON objects with an \"event\""));
                    return false;
                };
                match cmd.event.as_str() {
                    "mark" => {
                        let Some(name) = cmd.name.filter(|n| !n.is_empty() && n.chars().count() <= MAX_MARK_NAME)
                        else {
                            say(error("bad_message", "mark needs a name of 1 to 128 characters"));
                            return false;
                        };
                        // A partial frame before the mark is played (padded), so the mark means
                        // "everything written before it".
                        if let Some(f) = m.reframer.flush_padded() {
                            frame::frame_to_samples(&f, &mut m.scratch);
                            let _ = m.playout.push(&m.scratch[..]);
                        }
                        if m.playout.mark(name).is_err() {
                            say(error("too_many_marks", "too many marks are waiting to be played"));
                        }
                    }
                    "clear" => {
                        m.reframer.clear();
                        m.net.down.reset();
                        let cleared = m.playout.clear();
                        let dropped_ms = cleared.dropped_samples / 16;
                        let marks: Vec<String> = cleared.marks.map(|mk| mk.name).collect();
                        say(json!({"event": "cleared", "dropped_ms": dropped_ms}).to_string());
                        for name in marks {
                            say(json!({"event": "mark", "name": name, "cleared": true}).to_string());
                        }
                    }
                    "dtmf" => {
                        let digits = cmd.digits.unwrap_or_default();
                        let valid = !digits.is_empty()
                            && digits.len() <= 32
                            && digits.chars().all(|c| c.is_ascii_digit() || "*#ABCDabcd".contains(c));
                        if !valid {
                            say(error("bad_message", "dtmf needs digits: 1 to 32 of 0-9 * # A-D"));
                            return false;
                        }
                        for d in digits.chars() {
                            let _ = self.leg.commands.try_send(LegCommand::SendDtmf(d.to_ascii_uppercase()));
                        }
                    }
                    "hangup" => return true,
                    _ => say(error("unknown_event", "unknown event; see docs/voice-protocol.md")),
                }
            }
        }
        false
    }

    /// One tick of the SIP agent's media: the far end's audio of this tick (already at 16 kHz in
    /// `m.net.wide`) goes to the agent in its codec; the agent's audio goes into the playout buffer,
    /// from which the next tick sends it to the far end, as a WebSocket agent's would.
    fn bridge_sip_agent(&mut self, a: &mut SipAgentMedia, m: &mut Media) {
        let Some(agent) = &mut self.sip_agent else { return };
        a.media.receive(&mut agent.media_in);
        if a.answered {
            // Overflow cannot persist: one frame in, one frame out per tick.
            let _ = m.playout.push(&a.media.wide);
            let _ = agent.media_out.try_send(a.media.encode(&m.net.wide));
        }
    }

    /// Signalling from the agent's SIP endpoint.
    async fn on_sip_agent_event(&mut self, event: LegEvent, a: &mut SipAgentMedia) -> Option<Ending> {
        match event {
            LegEvent::Ringing | LegEvent::EarlyMedia => None,
            LegEvent::Answered => {
                a.answered = true;
                if self.direction == Direction::Inbound && self.state != State::InProgress {
                    // The agent took the call: answer the caller.
                    let _ = self.leg.commands.send(LegCommand::Answer).await;
                    self.answered().await;
                }
                None
            }
            LegEvent::Dtmf { digit, .. } => {
                let _ = self.leg.commands.try_send(LegCommand::SendDtmf(digit));
                None
            }
            LegEvent::CodecChanged(codec) => {
                a.media.coder = Coder::new(codec);
                None
            }
            LegEvent::Hangup { sip_code, .. } => {
                if a.answered || self.state == State::InProgress {
                    return Some(self.local_hangup());
                }
                // The agent's endpoint refused or never answered.
                let ending = match self.direction {
                    Direction::Outbound => {
                        let _ = self.leg.commands.try_send(LegCommand::Hangup);
                        Ending::FAILED
                    }
                    Direction::Inbound => {
                        let _ = self.leg.commands.try_send(LegCommand::Reject(Refusal::Busy));
                        Ending::new(FinalState::Busy, EndReason::Busy)
                    }
                };
                Some(ending.with_sip_code(sip_code))
            }
        }
    }

    async fn finish(mut self, ending: Ending, stream: Option<StreamIo>) {
        let now = clock::now_ms();
        let write = CallWrite::End {
            call_id: self.call_id.clone(),
            state: ending.state.into(),
            reason: ending.reason,
            sip_code: ending.sip_code.map(i64::from),
            at_ms: now,
        };
        if let Err(err) = self.inner.writer.call(write).await {
            tracing::warn!(call_id = %self.call_id, error = %err, "call end not recorded");
        }
        if let Some(s) = stream {
            let mut hangup = json!({"event": "hangup", "reason": ending.reason.as_str()});
            if let Some(code) = ending.sip_code {
                hangup["sip_code"] = code.into();
            }
            let _ = s.to_agent.send(ToAgent::Text(hangup.to_string())).await;
            let _ = s.to_agent.send(ToAgent::Close(StreamClose::Ended(ending.reason))).await;
        }
        if let Some(reply) = self.dial_reply.take() {
            let _ = reply.send(DialProgress::Ended(ending));
        }
        self.inner.ended(&self.call_id, &self.number, presence_event_ended(&self.call_id, ending.reason.as_str()));
    }
}

fn presence_event_ended(call_id: &CallId, reason: &str) -> String {
    presence_event(json!({"event": "ended", "call_id": call_id, "reason": reason}))
}

/// The next event of the SIP agent's leg; pending forever without one.
async fn recv_leg_event(leg: &mut Option<Leg>) -> Option<LegEvent> {
    match leg {
        // A leg whose events end is gone: that is a hang-up of the agent's side.
        Some(l) => {
            Some(l.events.recv().await.unwrap_or(LegEvent::Hangup { cause: HangupCause::Failed, sip_code: None }))
        }
        None => std::future::pending().await,
    }
}

/// What the agent's socket said since the last tick.
enum AgentInput {
    Open,
    HangupAsked,
    /// The agent closed its socket: that is a hang-up.
    Closed,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 20 ms of a 500 Hz tone at 8 kHz in µ-law.
    fn tone_frame() -> [u8; G711_FRAME] {
        let samples: [i16; NARROWBAND_FRAME_SAMPLES] =
            std::array::from_fn(|i| (8000.0 * (2.0 * std::f64::consts::PI * 500.0 * i as f64 / 8000.0).sin()) as i16);
        let mut codes = [0u8; G711_FRAME];
        Law::Ulaw.encode(&samples, &mut codes);
        codes
    }

    fn energy(samples: &[i16]) -> i64 {
        samples.iter().map(|&s| i64::from(s).pow(2)).sum()
    }

    /// A far end whose stream changes mid-call (new SSRC, its sequence numbers just behind the old
    /// stream's, which the old stream's numbering would call late) is heard at once: the leg's
    /// jitter buffer restarts on the new SSRC instead of dropping its packets as late.
    #[test]
    fn a_new_ssrc_mid_call_restarts_the_jitter_buffer() {
        let mut leg = LegMedia::with(Codec::Pcmu, 1, RtpStream::new(1, 0, 0));
        let (tx, mut rx) = mpsc::channel(8);
        // The old stream: silence, seq 1000.., played one per tick.
        for i in 0..5u16 {
            let frame = MediaFrame { ssrc: 0xAAAA, seq: 1000 + i, timestamp: 160 * u32::from(i), payload: [0xFF; 160] };
            tx.try_send(frame).expect("queued");
            leg.receive(&mut rx);
            assert_eq!(energy(&leg.wide), 0, "silence while the old stream plays");
        }
        // The new stream: a tone, seq 990.. (behind the old stream's 1004), another SSRC.
        let mut heard = 0;
        for i in 0..3u16 {
            let frame = MediaFrame {
                ssrc: 0xBBBB,
                seq: 990 + i,
                timestamp: 90_000 + 160 * u32::from(i),
                payload: tone_frame(),
            };
            tx.try_send(frame).expect("queued");
            leg.receive(&mut rx);
            heard += energy(&leg.wide);
        }
        assert!(heard > 0, "the new stream's first packets are played, not dropped as late");
        let stats = leg.jitter.stats();
        assert_eq!((stats.resets, stats.late), (1, 0), "{stats:?}");
    }

    #[test]
    fn outgoing_frames_are_numbered_by_the_legs_stream() {
        let mut leg = LegMedia::with(Codec::Pcma, 1, RtpStream::new(0x1234, u16::MAX, 8000));
        let silence = [0i16; FRAME_SAMPLES];
        let first = leg.encode(&silence);
        let second = leg.encode(&silence);
        assert_eq!((first.ssrc, first.seq, first.timestamp), (0x1234, u16::MAX, 8000));
        assert_eq!((second.ssrc, second.seq, second.timestamp), (0x1234, 0, 8160));
    }
}
