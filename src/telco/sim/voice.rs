//! Simulated voice: a call between two of our numbers is offered to the callee as an incoming
//! call and bridged leg to leg (media channels cross-wired, G.711 frames passed through untouched,
//! signalling relayed by one task); a call to any other number rings for `answer_delay` and is
//! answered by an echo callee that sends every frame (and every DTMF digit) straight back.
//! Audio is G.711 µ-law at 8 kHz, exactly as on a trunk, so the agent-side pipeline (resampling,
//! jitter buffer, framing) is exercised as it is in production.
//!
//! Each call's relay or echo task belongs to the network's call set, joined by the task
//! [`SimVoice::start`] hands back once `stop` turns true (the calls have drained by then).

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::OnNet;
use crate::e164::E164;
use crate::future::BoxFuture;
use crate::tasks::TaskSet;
use crate::telco::LinkState;
use crate::telco::voice::{
    Codec, DialError, EVENT_QUEUE, HangupCause, IncomingCall, Leg, LegCommand, LegEvent, MEDIA_QUEUE, MediaFrame,
    Refusal, VoiceNetwork,
};

/// How long the stopped network waits for its calls' tasks (they end with their legs) before
/// aborting them.
const CALLS_DRAIN: Duration = Duration::from_secs(2);

pub struct SimVoice {
    incoming: mpsc::Sender<IncomingCall>,
    on_net: OnNet,
    answer_delay: Duration,
    /// One relay (on-net) or echo task per call.
    calls: TaskSet,
}

impl SimVoice {
    /// The network, and the task that joins its calls' tasks once `stop` turns true.
    pub fn start(
        incoming: mpsc::Sender<IncomingCall>,
        on_net: OnNet,
        answer_delay: Duration,
        mut stop: watch::Receiver<bool>,
    ) -> (Self, JoinHandle<()>) {
        let calls = TaskSet::new("sim calls");
        let owner = calls.clone();
        let joiner = tokio::spawn(async move {
            // A dropped sender means stop as well.
            let _ = stop.wait_for(|stopped| *stopped).await;
            owner.join_within(CALLS_DRAIN).await;
        });
        (Self { incoming, on_net, answer_delay, calls }, joiner)
    }
}

/// The network's ends of one leg.
struct Far {
    events: mpsc::Sender<LegEvent>,
    commands: mpsc::Receiver<LegCommand>,
}

/// A leg whose media are the given channel ends, and the network's ends of its signalling.
fn leg(media_in: mpsc::Receiver<MediaFrame>, media_out: mpsc::Sender<MediaFrame>) -> (Leg, Far) {
    let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
    let (commands, commands_rx) = mpsc::channel(EVENT_QUEUE);
    let leg = Leg { codec: Codec::Pcmu, events, commands, media_in, media_out, jitter_frames: 1 };
    (leg, Far { events: events_tx, commands: commands_rx })
}

impl VoiceNetwork for SimVoice {
    fn name(&self) -> &'static str {
        "sim"
    }

    fn dial(&self, from: E164, to: E164) -> BoxFuture<'_, Result<Leg, DialError>> {
        Box::pin(async move {
            if self.incoming.is_closed() {
                return Err(DialError::Unavailable);
            }
            if (self.on_net)(&to) {
                // Cross-wired media: what the caller sends is what the callee receives.
                let (a_out, b_in) = mpsc::channel(MEDIA_QUEUE);
                let (b_out, a_in) = mpsc::channel(MEDIA_QUEUE);
                let (caller, caller_far) = leg(a_in, a_out);
                let (callee, callee_far) = leg(b_in, b_out);
                let offer = IncomingCall { from: from.into_string(), to, leg: callee };
                self.calls
                    .spawn(bridge(self.incoming.clone(), offer, caller_far, callee_far))
                    .map_err(|_| DialError::Unavailable)?;
                Ok(caller)
            } else {
                let (to_caller, media_in) = mpsc::channel(MEDIA_QUEUE);
                let (media_out, from_caller) = mpsc::channel(MEDIA_QUEUE);
                let (caller, far) = leg(media_in, media_out);
                self.calls
                    .spawn(echo(far, from_caller, to_caller, self.answer_delay))
                    .map_err(|_| DialError::Unavailable)?;
                Ok(caller)
            }
        })
    }

    fn link_state(&self) -> LinkState {
        if self.incoming.is_closed() {
            LinkState::Down { reason: "voice service stopped".to_owned() }
        } else {
            LinkState::Up
        }
    }
}

/// Relays signalling between two of our own numbers until either side hangs up.
async fn bridge(incoming: mpsc::Sender<IncomingCall>, offer: IncomingCall, mut caller: Far, mut callee: Far) {
    if incoming.send(offer).await.is_err() {
        let _ = caller.events.send(LegEvent::Hangup { cause: HangupCause::Failed, sip_code: Some(503) }).await;
        return;
    }
    let mut answered = false;
    loop {
        tokio::select! {
            cmd = callee.commands.recv() => match cmd {
                Some(LegCommand::Ring) => {
                    let _ = caller.events.send(LegEvent::Ringing).await;
                }
                Some(LegCommand::Answer) => {
                    answered = true;
                    let _ = caller.events.send(LegEvent::Answered).await;
                }
                Some(LegCommand::Reject(refusal)) => {
                    let (cause, code) = match refusal {
                        Refusal::Busy => (HangupCause::Busy, 486),
                        Refusal::NotFound => (HangupCause::Failed, 404),
                        Refusal::NoAnswer => (HangupCause::NoAnswer, 480),
                    };
                    let _ = caller.events.send(LegEvent::Hangup { cause, sip_code: Some(code) }).await;
                    return;
                }
                Some(LegCommand::SendDtmf(digit)) => {
                    let _ = caller.events.send(LegEvent::Dtmf { digit, duration_ms: 100 }).await;
                }
                Some(LegCommand::Hangup) | None => {
                    let cause = if answered { HangupCause::Normal } else { HangupCause::Failed };
                    let _ = caller.events.send(LegEvent::Hangup { cause, sip_code: None }).await;
                    return;
                }
            },
            cmd = caller.commands.recv() => match cmd {
                Some(LegCommand::SendDtmf(digit)) => {
                    let _ = callee.events.send(LegEvent::Dtmf { digit, duration_ms: 100 }).await;
                }
                Some(LegCommand::Hangup) | None => {
                    let cause = if answered { HangupCause::Normal } else { HangupCause::Cancelled };
                    let _ = callee.events.send(LegEvent::Hangup { cause, sip_code: None }).await;
                    return;
                }
                Some(_) => {}
            },
        }
    }
}

/// The echo callee: rings, answers after `answer_delay`, then returns every frame and digit.
async fn echo(
    mut far: Far,
    mut from_caller: mpsc::Receiver<MediaFrame>,
    to_caller: mpsc::Sender<MediaFrame>,
    answer_delay: Duration,
) {
    let _ = far.events.send(LegEvent::Ringing).await;
    tokio::select! {
        _ = tokio::time::sleep(answer_delay) => {}
        cmd = far.commands.recv() => {
            if matches!(cmd, Some(LegCommand::Hangup) | None) {
                return;
            }
        }
    }
    if far.events.send(LegEvent::Answered).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            frame = from_caller.recv() => match frame {
                // A caller that cannot keep up loses the newest frame, as a network would.
                Some(frame) => drop(to_caller.try_send(frame)),
                None => return,
            },
            cmd = far.commands.recv() => match cmd {
                Some(LegCommand::SendDtmf(digit)) => {
                    let _ = far.events.send(LegEvent::Dtmf { digit, duration_ms: 100 }).await;
                }
                Some(LegCommand::Hangup) | None => return,
                Some(_) => {}
            },
        }
    }
}
