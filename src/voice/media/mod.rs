//! One call's media pipeline between the agent's WebSocket (16 kHz mono s16le, 20 ms frames) and
//! the network (G.711, 8 kHz, RTP): the pieces, each pure or on its own thread, none reading a
//! clock. The call's task owns one of each and drives them from its 20 ms tick:
//!
//! ```text
//! agent WS -binary-> Reframer -> PlayoutBuffer -pop/tick-> Downsampler -> G.711 encode -> RTP out
//! agent WS <-640 B-- Upsampler <- G.711 decode <-pop/tick- JitterBuffer <-insert- RTP in
//!                    both sides, once per tick -> Recorder (WAV, on its own thread)
//! ```
//!
//! [`frame`] owns the frame sizes and re-framing; [`playout`] the bounded agent->network queue with
//! `mark`/`clear`; [`resample`] 8k<->16k (rubato `Fft`); [`jitter`] inbound reordering;
//! [`recorder`] optional WAV recording; [`goertzel`] tone measurement, for tests and DTMF-style
//! checks.
//!
//! What this module must not do: own sockets or timers, or know SIP. G.711 and RTP packets are
//! `telco::rtp`'s; the session that connects the two sides is `voice`'s.

pub mod frame;
pub mod goertzel;
pub mod jitter;
pub mod playout;
pub mod recorder;
pub mod resample;
