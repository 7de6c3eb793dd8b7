//! One INVITE dialog's state machine (RFC 3261 §12, §13, §15; session timers of RFC 4028),
//! sans-IO: events and the time go in, [`Action`]s for the UA come out.
//!
//! Owns where a call stands and what it still owes the far end:
//!
//! - Caller (§13.2): [`State::Calling`] until the final answer. A provisional allows a CANCEL
//!   (§9.1); hanging up before one makes [`State::Cancelling`] with the CANCEL [`Cancel::Due`],
//!   sent on the first provisional. A 2xx confirms the dialog, or, when it crossed our CANCEL
//!   (§15), is ACKed by the UA and ended with BYE. A 3xx-6xx or the INVITE's timeout ends it.
//! - Callee (§13.3): [`State::Offered`] until we answer. After our 2xx, [`State::Accepted`]
//!   until its ACK; hanging up there only records the BYE, which goes when the ACK arrives
//!   (§15: the callee sends no BYE before the ACK), or when the 2xx's retransmissions time out.
//! - Both: [`State::Confirmed`] until a BYE either way. A re-INVITE of ours awaiting its final
//!   answer is state data, so that a crossing one from the far end is glare (§14.2, 491).
//! - Deadlines, all taken against the `now` passed in: the caller's give-up on an INVITE with no
//!   final answer, and the session timer (RFC 4028 §10): refresh at half the interval when we
//!   are the refresher, else BYE at the interval minus min(32 s, interval / 3).
//!
//! What this module must not do: build or parse messages, own a socket or a clock, or know the
//! media. The UA reads the messages, asks the dialog, and performs the [`Action`] it gets.

use std::time::{Duration, Instant};

use crate::telco::voice::HangupCause;

/// How long after a 491 a refresh is retried (§14.1: 2.1 s to 4 s for the UAC of the dialog).
pub const GLARE_RETRY: Duration = Duration::from_millis(2100);
/// How long after another failed refresh it is retried; the session is still up.
pub const REFRESH_RETRY: Duration = Duration::from_secs(10);
/// The most a session may run past its interval without a refresh (RFC 4028 §10).
const EXPIRY_GUARD: Duration = Duration::from_secs(32);

/// Which side of the INVITE we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Caller,
    Callee,
}

/// Our CANCEL, when we hung up before the final answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancel {
    /// No provisional yet (§9.1): sent when one comes.
    Due,
    Sent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Caller: INVITE sent, no final answer. `provisional`: one has come, a CANCEL may go.
    /// `ringing_told`: the agent heard about the ringing once, which is enough.
    Calling {
        provisional: bool,
        ringing_told: bool,
    },
    /// Callee: an INVITE offered, not answered finally.
    Offered,
    /// Caller: hung up before the final answer.
    Cancelling {
        cancel: Cancel,
    },
    /// Callee: our 2xx is out, its ACK not in. `bye_after_ack`: we hung up meanwhile.
    Accepted {
        bye_after_ack: bool,
    },
    /// `reinvite_pending`: our re-INVITE awaits its final answer.
    Confirmed {
        reinvite_pending: bool,
    },
    Terminated,
}

/// What happened to the dialog: messages the UA read, our own intents, the time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Caller: a 1xx to the INVITE.
    Provisional { code: u16 },
    /// Caller: the first 2xx to the INVITE (the UA has ACKed it).
    Success,
    /// Caller: a 3xx-6xx to the INVITE that the UA does not retry (the layer ACKed it).
    Failure { code: u16 },
    /// Caller: the INVITE transaction failed.
    InviteTimeout,
    /// Callee: our 2xx went out.
    Accepted,
    /// Callee: our 2xx was ACKed.
    Ack,
    /// Callee: the far end cancelled the INVITE before our final answer.
    RemoteCancel,
    /// Callee: the INVITE server transaction failed (no ACK for our 2xx, or no final answer).
    ServerTimeout,
    /// A BYE from the far end (the UA answered it).
    RemoteBye,
    /// The agent hung up (or the UA gave up).
    Hangup,
    /// Our session-refresh re-INVITE went out.
    RefreshSent { now: Instant },
    /// The final answer to our re-INVITE.
    RefreshAnswered { code: u16, now: Instant },
    /// The clock moved.
    Tick { now: Instant },
}

/// What the UA must do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send CANCEL for our INVITE.
    SendCancel,
    /// Send BYE in the dialog and forget it.
    SendBye,
    /// Callee: answer the offered INVITE with a final refusal, which ends the dialog.
    RefuseOffer,
    /// Caller: a provisional the agent should hear of (early media, or ringing once).
    Progress,
    /// Caller: the call is answered.
    Answered,
    /// Tell the agent the call ended and forget it.
    End { cause: HangupCause, sip_code: Option<u16> },
    /// Tell the agent the call ended, send BYE and forget it.
    EndWithBye { cause: HangupCause, sip_code: Option<u16> },
    /// Tell the agent the call ended, then hang up from our side ([`Event::Hangup`]).
    GiveUp { cause: HangupCause, sip_code: Option<u16> },
    /// Send a session-refresh re-INVITE, then report [`Event::RefreshSent`].
    Refresh,
}

/// RFC 4028 deadlines of a confirmed dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SessionTimer {
    interval: Duration,
    refresh_at: Option<Instant>,
    expire_at: Option<Instant>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    role: Role,
    state: State,
    session: Option<SessionTimer>,
    /// Caller: give up on an INVITE that gets no final answer.
    give_up_at: Option<Instant>,
}

impl Dialog {
    /// A call we place: the INVITE goes out at `now`, and is given up after `invite_timeout`.
    pub fn outgoing(now: Instant, invite_timeout: Duration) -> Self {
        Self {
            role: Role::Caller,
            state: State::Calling { provisional: false, ringing_told: false },
            session: None,
            give_up_at: Some(now + invite_timeout),
        }
    }

    /// A call offered to us.
    pub fn incoming() -> Self {
        Self { role: Role::Callee, state: State::Offered, session: None, give_up_at: None }
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Callee: the INVITE still waits for our answer (ring, answer, reject apply).
    pub fn is_offered(&self) -> bool {
        self.state == State::Offered
    }

    /// A BYE the far end sends ends an established call normally, an early one as cancelled.
    pub fn bye_cause(&self) -> HangupCause {
        match self.state {
            State::Confirmed { .. } | State::Accepted { .. } => HangupCause::Normal,
            _ => HangupCause::Cancelled,
        }
    }

    /// A re-INVITE from the far end may be taken: confirmed, and none of ours crossing it (§14.2).
    pub fn can_take_reinvite(&self) -> bool {
        self.state == State::Confirmed { reinvite_pending: false }
    }

    /// Caller: after [`Action::Progress`] without early media, whether to tell the agent it
    /// rings (once per call).
    pub fn take_ringing(&mut self) -> bool {
        match &mut self.state {
            State::Calling { ringing_told, .. } if !*ringing_told => {
                *ringing_told = true;
                true
            }
            _ => false,
        }
    }

    /// Arms the session timer (RFC 4028 §10) with the negotiated interval.
    pub fn arm_session(&mut self, now: Instant, interval: Duration, we_refresh: bool) {
        self.session = Some(if we_refresh {
            SessionTimer { interval, refresh_at: Some(now + interval / 2), expire_at: None }
        } else {
            let guard = (interval / 3).min(EXPIRY_GUARD);
            SessionTimer { interval, refresh_at: None, expire_at: Some(now + interval - guard) }
        });
    }

    /// No session timer: the far end did not ask for one.
    pub fn disarm_session(&mut self) {
        self.session = None;
    }

    pub fn session_interval(&self) -> Option<Duration> {
        self.session.map(|s| s.interval)
    }

    /// When we next refresh the session, if we are the refresher.
    pub fn refresh_at(&self) -> Option<Instant> {
        self.session.and_then(|s| s.refresh_at)
    }

    /// When the session dies without a refresh from the far end.
    pub fn expire_at(&self) -> Option<Instant> {
        self.session.and_then(|s| s.expire_at)
    }

    /// The earliest deadline for [`Event::Tick`].
    pub fn next_deadline(&self) -> Option<Instant> {
        [self.give_up_at, self.refresh_at(), self.expire_at()].into_iter().flatten().min()
    }

    /// Feeds one event; the action, if any, is for the UA to perform now.
    pub fn on_event(&mut self, event: Event) -> Option<Action> {
        use State as S;
        let (next, action) = match (self.state, event) {
            (S::Terminated, _) => return None,

            // ----- caller -----
            (S::Calling { ringing_told, .. }, Event::Provisional { code }) => {
                let action = (code != 100).then_some(Action::Progress);
                (S::Calling { provisional: true, ringing_told }, action)
            }
            (S::Cancelling { cancel: Cancel::Due }, Event::Provisional { .. }) => {
                (S::Cancelling { cancel: Cancel::Sent }, Some(Action::SendCancel))
            }
            (S::Calling { .. }, Event::Success) => {
                self.give_up_at = None;
                (S::Confirmed { reinvite_pending: false }, Some(Action::Answered))
            }
            (S::Cancelling { .. }, Event::Success) => {
                // §15: the 2xx crossed our CANCEL; the UA ACKed it, the call ends with BYE.
                self.give_up_at = None;
                (S::Terminated, Some(Action::SendBye))
            }
            (S::Calling { .. } | S::Cancelling { .. }, Event::Failure { code }) => {
                let cause =
                    if matches!(self.state, S::Cancelling { .. }) { HangupCause::Cancelled } else { cause_for(code) };
                (S::Terminated, Some(Action::End { cause, sip_code: Some(code) }))
            }
            (S::Calling { .. } | S::Cancelling { .. }, Event::InviteTimeout) => {
                (S::Terminated, Some(Action::End { cause: HangupCause::NoAnswer, sip_code: Some(408) }))
            }
            (S::Calling { provisional, .. }, Event::Hangup) => {
                self.give_up_at = None;
                if provisional {
                    (S::Cancelling { cancel: Cancel::Sent }, Some(Action::SendCancel))
                } else {
                    (S::Cancelling { cancel: Cancel::Due }, None)
                }
            }

            // ----- callee -----
            (S::Offered, Event::Accepted) => (S::Accepted { bye_after_ack: false }, None),
            (S::Offered, Event::Hangup) => (S::Offered, Some(Action::RefuseOffer)),
            (S::Offered, Event::RemoteCancel) => {
                (S::Terminated, Some(Action::End { cause: HangupCause::Cancelled, sip_code: Some(487) }))
            }
            (S::Offered, Event::ServerTimeout) => {
                (S::Terminated, Some(Action::End { cause: HangupCause::NoAnswer, sip_code: Some(408) }))
            }
            (S::Accepted { bye_after_ack }, Event::Ack) => {
                if bye_after_ack {
                    (S::Terminated, Some(Action::SendBye))
                } else {
                    (S::Confirmed { reinvite_pending: false }, None)
                }
            }
            (S::Accepted { .. }, Event::Hangup) => (S::Accepted { bye_after_ack: true }, None),
            (S::Accepted { .. }, Event::ServerTimeout) => {
                (S::Terminated, Some(Action::EndWithBye { cause: HangupCause::Failed, sip_code: Some(408) }))
            }

            // ----- both -----
            (_, Event::RemoteBye) => {
                let cause = self.bye_cause();
                (S::Terminated, Some(Action::End { cause, sip_code: None }))
            }
            (S::Confirmed { .. }, Event::Hangup) => (S::Terminated, Some(Action::SendBye)),
            (S::Confirmed { .. }, Event::RefreshSent { now }) => {
                if let Some(s) = &mut self.session {
                    s.refresh_at = Some(now + s.interval / 2);
                }
                (S::Confirmed { reinvite_pending: true }, None)
            }
            (S::Confirmed { .. }, Event::RefreshAnswered { code, now }) => match code {
                200..=299 => (S::Confirmed { reinvite_pending: false }, None),
                // The dialog is gone at the far end (RFC 4028 §10, RFC 3261 §12.2.1.2).
                408 | 481 => (S::Terminated, Some(Action::End { cause: HangupCause::Failed, sip_code: Some(code) })),
                _ => {
                    let retry = if code == 491 { GLARE_RETRY } else { REFRESH_RETRY };
                    if let Some(s) = &mut self.session {
                        s.refresh_at = Some(now + retry);
                    }
                    (S::Confirmed { reinvite_pending: false }, None)
                }
            },
            (state, Event::Tick { now }) => return self.on_tick(state, now),
            (state, _) => (state, None),
        };
        self.state = next;
        if next == S::Terminated {
            self.session = None;
            self.give_up_at = None;
        }
        action
    }

    fn on_tick(&mut self, state: State, now: Instant) -> Option<Action> {
        let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
        if due(self.give_up_at) {
            self.give_up_at = None;
            return matches!(state, State::Calling { .. })
                .then_some(Action::GiveUp { cause: HangupCause::NoAnswer, sip_code: Some(408) });
        }
        if due(self.expire_at()) {
            self.session = None;
            return Some(Action::GiveUp { cause: HangupCause::Failed, sip_code: Some(408) });
        }
        if due(self.refresh_at()) {
            if let Some(s) = &mut self.session {
                s.refresh_at = None;
            }
            return matches!(state, State::Confirmed { .. }).then_some(Action::Refresh);
        }
        None
    }
}

/// The cause the agent hears for a final failure to our INVITE.
pub fn cause_for(code: u16) -> HangupCause {
    match code {
        486 | 600 => HangupCause::Busy,
        408 | 480 => HangupCause::NoAnswer,
        487 => HangupCause::Cancelled,
        _ => HangupCause::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE_TIMEOUT: Duration = Duration::from_secs(60);

    fn calling() -> (Dialog, Instant) {
        let now = Instant::now();
        (Dialog::outgoing(now, INVITE_TIMEOUT), now)
    }

    fn confirmed_caller() -> (Dialog, Instant) {
        let (mut d, now) = calling();
        assert_eq!(d.on_event(Event::Success), Some(Action::Answered));
        (d, now)
    }

    #[test]
    fn caller_rings_once_then_is_answered_and_ends_with_bye() {
        let (mut d, _) = calling();
        assert_eq!(d.on_event(Event::Provisional { code: 100 }), None);
        assert_eq!(d.on_event(Event::Provisional { code: 180 }), Some(Action::Progress));
        assert!(d.take_ringing());
        assert_eq!(d.on_event(Event::Provisional { code: 180 }), Some(Action::Progress));
        assert!(!d.take_ringing(), "ringing is told once");
        assert_eq!(d.on_event(Event::Success), Some(Action::Answered));
        assert_eq!(d.state(), State::Confirmed { reinvite_pending: false });
        assert_eq!(d.next_deadline(), None, "no give-up once answered");
        assert_eq!(d.on_event(Event::Hangup), Some(Action::SendBye));
        assert_eq!(d.state(), State::Terminated);
        assert_eq!(d.on_event(Event::RemoteBye), None, "nothing after the end");
    }

    #[test]
    fn cancel_waits_for_a_provisional() {
        let (mut d, _) = calling();
        assert_eq!(d.on_event(Event::Hangup), None, "§9.1: no CANCEL before a provisional");
        assert_eq!(d.state(), State::Cancelling { cancel: Cancel::Due });
        assert_eq!(d.next_deadline(), None);
        assert_eq!(d.on_event(Event::Hangup), None, "a second hang-up changes nothing");
        assert_eq!(d.on_event(Event::Provisional { code: 100 }), Some(Action::SendCancel));
        assert_eq!(d.on_event(Event::Provisional { code: 180 }), None, "CANCEL goes once");
        assert_eq!(
            d.on_event(Event::Failure { code: 487 }),
            Some(Action::End { cause: HangupCause::Cancelled, sip_code: Some(487) })
        );
        assert_eq!(d.state(), State::Terminated);
    }

    #[test]
    fn cancel_after_a_provisional_goes_at_once() {
        let (mut d, _) = calling();
        d.on_event(Event::Provisional { code: 183 });
        assert_eq!(d.on_event(Event::Hangup), Some(Action::SendCancel));
        assert_eq!(d.state(), State::Cancelling { cancel: Cancel::Sent });
        assert!(!d.take_ringing());
    }

    #[test]
    fn a_200_crossing_our_cancel_ends_with_bye() {
        let (mut d, _) = calling();
        d.on_event(Event::Provisional { code: 180 });
        assert_eq!(d.on_event(Event::Hangup), Some(Action::SendCancel));
        assert_eq!(d.on_event(Event::Success), Some(Action::SendBye), "§15: ACK (by the UA), then BYE");
        assert_eq!(d.state(), State::Terminated);
    }

    #[test]
    fn final_failures_name_their_cause() {
        for (code, cause) in [
            (486, HangupCause::Busy),
            (600, HangupCause::Busy),
            (480, HangupCause::NoAnswer),
            (603, HangupCause::Failed),
            (404, HangupCause::Failed),
        ] {
            let (mut d, _) = calling();
            assert_eq!(d.on_event(Event::Failure { code }), Some(Action::End { cause, sip_code: Some(code) }));
        }
        let (mut d, _) = calling();
        assert_eq!(
            d.on_event(Event::InviteTimeout),
            Some(Action::End { cause: HangupCause::NoAnswer, sip_code: Some(408) })
        );
    }

    #[test]
    fn the_caller_gives_up_on_an_invite_never_answered() {
        let (mut d, now) = calling();
        assert_eq!(d.next_deadline(), Some(now + INVITE_TIMEOUT));
        assert_eq!(d.on_event(Event::Tick { now: now + INVITE_TIMEOUT / 2 }), None);
        assert_eq!(
            d.on_event(Event::Tick { now: now + INVITE_TIMEOUT }),
            Some(Action::GiveUp { cause: HangupCause::NoAnswer, sip_code: Some(408) })
        );
        assert_eq!(d.next_deadline(), None);
        assert_eq!(d.on_event(Event::Hangup), None, "then the hang-up: CANCEL due");
        assert_eq!(d.state(), State::Cancelling { cancel: Cancel::Due });
    }

    #[test]
    fn callee_answers_and_the_ack_confirms() {
        let mut d = Dialog::incoming();
        assert!(d.is_offered());
        assert_eq!(d.on_event(Event::Accepted), None);
        assert!(!d.is_offered());
        assert!(!d.can_take_reinvite(), "not before the ACK");
        assert_eq!(d.on_event(Event::Ack), None);
        assert!(d.can_take_reinvite());
        assert_eq!(d.bye_cause(), HangupCause::Normal);
        assert_eq!(d.on_event(Event::RemoteBye), Some(Action::End { cause: HangupCause::Normal, sip_code: None }));
    }

    #[test]
    fn callee_hanging_up_before_the_ack_byes_after_it() {
        let mut d = Dialog::incoming();
        d.on_event(Event::Accepted);
        assert_eq!(d.on_event(Event::Hangup), None, "§15: no BYE before the ACK");
        assert_eq!(d.state(), State::Accepted { bye_after_ack: true });
        assert_eq!(d.on_event(Event::Ack), Some(Action::SendBye));
        assert_eq!(d.state(), State::Terminated);
    }

    #[test]
    fn callee_without_an_ack_ends_with_bye() {
        let mut d = Dialog::incoming();
        d.on_event(Event::Accepted);
        assert_eq!(
            d.on_event(Event::ServerTimeout),
            Some(Action::EndWithBye { cause: HangupCause::Failed, sip_code: Some(408) })
        );
    }

    #[test]
    fn callee_refuses_is_cancelled_or_times_out() {
        let mut d = Dialog::incoming();
        assert_eq!(d.on_event(Event::Hangup), Some(Action::RefuseOffer));
        assert_eq!(d.bye_cause(), HangupCause::Cancelled, "a BYE before the answer");
        assert_eq!(
            d.on_event(Event::RemoteCancel),
            Some(Action::End { cause: HangupCause::Cancelled, sip_code: Some(487) })
        );
        let mut d = Dialog::incoming();
        assert_eq!(
            d.on_event(Event::ServerTimeout),
            Some(Action::End { cause: HangupCause::NoAnswer, sip_code: Some(408) })
        );
        let mut d = Dialog::incoming();
        d.on_event(Event::Accepted);
        assert_eq!(d.on_event(Event::RemoteCancel), None, "a CANCEL after our 2xx changes nothing");
    }

    #[test]
    fn we_refresh_at_half_the_interval() {
        let (mut d, now) = confirmed_caller();
        let interval = Duration::from_secs(90);
        d.arm_session(now, interval, true);
        assert_eq!((d.refresh_at(), d.expire_at()), (Some(now + interval / 2), None));
        assert_eq!(d.on_event(Event::Tick { now: now + interval / 4 }), None);
        let t = now + interval / 2;
        assert_eq!(d.on_event(Event::Tick { now: t }), Some(Action::Refresh));
        assert_eq!(d.refresh_at(), None);
        assert_eq!(d.on_event(Event::RefreshSent { now: t }), None);
        assert!(!d.can_take_reinvite(), "our re-INVITE is pending: a crossing one is glare");
        assert_eq!(d.refresh_at(), Some(t + interval / 2));
        assert_eq!(d.on_event(Event::RefreshAnswered { code: 200, now: t }), None);
        assert!(d.can_take_reinvite());
    }

    #[test]
    fn a_failed_refresh_is_retried_or_ends_the_call() {
        let (mut d, now) = confirmed_caller();
        d.arm_session(now, Duration::from_secs(90), true);
        d.on_event(Event::RefreshSent { now });
        assert_eq!(d.on_event(Event::RefreshAnswered { code: 491, now }), None);
        assert_eq!(d.refresh_at(), Some(now + GLARE_RETRY));
        d.on_event(Event::RefreshSent { now });
        assert_eq!(d.on_event(Event::RefreshAnswered { code: 500, now }), None);
        assert_eq!(d.refresh_at(), Some(now + REFRESH_RETRY));
        d.on_event(Event::RefreshSent { now });
        assert_eq!(
            d.on_event(Event::RefreshAnswered { code: 481, now }),
            Some(Action::End { cause: HangupCause::Failed, sip_code: Some(481) })
        );
        assert_eq!(d.next_deadline(), None);
    }

    #[test]
    fn a_session_never_refreshed_expires() {
        let mut d = Dialog::incoming();
        d.on_event(Event::Accepted);
        d.on_event(Event::Ack);
        let now = Instant::now();
        let interval = Duration::from_secs(1800);
        d.arm_session(now, interval, false);
        // RFC 4028 §10: interval - min(32 s, interval / 3).
        let expiry = now + interval - Duration::from_secs(32);
        assert_eq!((d.refresh_at(), d.expire_at()), (None, Some(expiry)));
        assert_eq!(d.on_event(Event::Tick { now: expiry - Duration::from_millis(1) }), None);
        assert_eq!(
            d.on_event(Event::Tick { now: expiry }),
            Some(Action::GiveUp { cause: HangupCause::Failed, sip_code: Some(408) })
        );
        assert_eq!(d.on_event(Event::Hangup), Some(Action::SendBye));
        // A short interval keeps a third of it.
        let mut d = Dialog::incoming();
        d.arm_session(now, Duration::from_secs(90), false);
        assert_eq!(d.expire_at(), Some(now + Duration::from_secs(60)));
        d.disarm_session();
        assert_eq!(d.next_deadline(), None);
    }
}
