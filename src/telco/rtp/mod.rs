//! RTP for the SIP trunk. [`packet`] parses and builds RTP packets (RFC 3550) and RFC 4733
//! telephone-event payloads; [`dtmf`] turns telephone-event payloads into digits and digits into
//! payloads, once each; [`stream`] owns one outgoing stream's SSRC, sequence numbers and
//! timestamps. These are pure: bytes, digits or counters in, values out, no sockets, no clocks,
//! no allocation per packet.
//!
//! What this module must not do: code audio, pace, resample, reorder or conceal. The codecs
//! (G.711, G.722), the jitter buffer and the 8 kHz <-> 16 kHz conversion are `crate::media`'s;
//! the UDP media session that owns the socket is [`session`], the one part of this module that
//! does I/O, and it sends frames as the call's [`stream::RtpStream`] numbered them.

pub mod dtmf;
pub mod packet;
pub mod session;
pub mod stream;
