//! Pure audio: one call's media between the agent's side (16 kHz mono s16le, 20 ms frames) and the
//! network's codecs. A layer below `telco` and `voice`: `voice` drives these pieces from
//! its 20 ms tick, `telco` may name a [`Codec`] (SDP, RTP payload types). It imports neither.
//!
//! ```text
//! agent -binary-> frame::Reframer -> PlayoutBuffer -pop/tick-> Downsampler -> g711/g722 encode -> network
//! agent <-640 B-- Upsampler <- g711/g722 decode <-pop/tick- JitterBuffer <-insert- network
//! ```
//!
//! [`codec`] names the network codecs and their rates and payload types; [`g711`] and [`g722`]
//! convert code octets to and from linear samples (ITU-T G.711, G.722); [`frame`] owns the frame
//! sizes and re-framing; [`playout`] the bounded agent->network queue with `mark`/`clear`;
//! [`resample`] 8 kHz <-> 16 kHz (rubato `Fft`); [`jitter`] inbound reordering.
//!
//! What this module must not do: own sockets, threads or timers, read a clock, await, or know SIP
//! and RTP beyond payload type numbers and timestamp rates. Everything takes samples or octets and
//! fills the caller's buffers; the per-frame paths do not allocate. The RTP packets, DTMF events
//! and the UDP session are `telco::rtp`'s; writing a recording to disk is `voice::recorder`'s.

pub mod codec;
pub mod frame;
pub mod g711;
pub mod g722;
pub mod jitter;
pub mod playout;
pub mod resample;

/// Tone measurement for the unit tests: the file the integration tests share
/// (`tests/support/goertzel.rs`), compiled into test builds only.
#[cfg(test)]
#[path = "../../tests/support/goertzel.rs"]
pub(crate) mod goertzel;

pub use codec::Codec;
