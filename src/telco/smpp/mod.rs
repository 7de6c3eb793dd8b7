//! SMPP 3.4 for talking to a carrier's SMSC as an ESME. The codecs are pure (bytes in, values
//! out, every peer-supplied length bounded): [`pdu`] (framing and PDUs), [`gsm7`] (alphabets),
//! [`segments`] (splitting outbound text into `submit_sm` parts), [`deliver`] (what a
//! `deliver_sm` means: receipt or MO part). [`session`] owns one bind (window, enquire_link,
//! reconnect, unbind) and [`network`] implements [`crate::telco::SmsNetwork`] over them.

pub mod deliver;
pub mod gsm7;
pub mod network;
pub mod pdu;
pub mod segments;
pub mod session;

pub use network::{SmppNetwork, SmppSettings};
pub use session::{BindKind, SessionSettings};
