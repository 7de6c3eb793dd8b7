//! SMPP 3.4 for talking to a carrier's SMSC as an ESME. The codecs are pure (bytes in, values
//! out, every peer-supplied length bounded): [`gsm7`] (alphabets), [`segments`] (splitting
//! outbound text into `submit_sm` parts). The PDU codec and the session (bind, window,
//! enquire_link, reconnect) that implements [`crate::telco::SmsNetwork`] arrive with them.

pub mod gsm7;
pub mod pdu;
pub mod segments;
