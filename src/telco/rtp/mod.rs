//! RTP media for the SIP trunk: the wire formats, pure. [`packet`] parses and builds RTP packets
//! (RFC 3550) and RFC 4733 telephone-event payloads; [`g711`] converts PCMU/PCMA octets to and
//! from 16-bit linear samples (ITU-T G.711).
//! [`g722`] encodes and decodes 16 kHz wideband audio as G.722 at 64 kbit/s (payload type 9).
//! [`dtmf`] turns RFC 4733 telephone-event payloads into digits and digits into payloads, once each.
//! All take bytes, samples or digits and return values or fill the caller's buffers: no sockets,
//! no clocks, no allocation per packet.
//!
//! What this module must not do: pace, resample, reorder or conceal. The jitter buffer and the
//! 8 kHz <-> 16 kHz conversion live with the call's media pipeline (`voice::media`); the UDP
//! media session that owns the socket, SSRC, sequence numbers and timestamps is [`session`], the
//! one part of this module that does I/O.

pub mod dtmf;
pub mod g711;
pub mod g722;
pub mod packet;
pub mod session;
