//! SIP for the carrier trunk (RFC 3261), the pure layer: the wire formats and the arithmetic a
//! user agent needs before it can talk to a trunk.
//!
//! - [`message`]: SIP requests and responses over a byte buffer (RFC 3261 §7, §20, §25), stream
//!   framing by Content-Length (§18.3), URIs (§19.1, RFC 3966 `tel:`), the header accessors the
//!   UA reads (Via, From/To, CSeq, Contact, Route, Session-Expires of RFC 4028, …), and builders
//!   for the requests and responses it sends.
//! - [`sdp`]: session descriptions (RFC 8866, the subset a trunk uses) and the offer/answer rules
//!   of RFC 3264 for one audio stream of PCMU/PCMA/G.722 plus RFC 4733 telephone-event.
//! - [`digest`]: Digest authentication for 401/407 challenges (RFC 2617, RFC 7616).
//! - [`transaction`]: client and server transactions (§17, RFC 6026), sans-IO, `now` passed in.
//!
//! What this module must not do (yet): own a socket, resolve a name, read a clock, draw random
//! numbers, or keep state between messages. Branches, tags, Call-IDs and cnonces are passed in.
//!
//! Above the codecs: [`transaction`] (RFC 3261 §17, sans-IO: retransmissions and timers driven
//! by the caller's clock), [`transport`] (the UDP socket and TCP connections) and [`ua`] (the
//! user agent: dialogs, registration, session timers, the `VoiceNetwork` over the trunk).

pub mod dialog;
pub mod digest;
pub mod endpoint_policy;
pub mod message;
pub mod sdp;
pub mod transaction;
pub mod transport;
pub mod ua;
