//! What an SMSC's `deliver_sm` means: a delivery receipt for one of our submissions, or a mobile-
//! originated (MO) message or one part of it. Pure: a decoded PDU in, values out.
//!
//! - Receipts are recognised by `esm_class` bits 5-2 = 0001 (SMPP 3.4 §5.2.12), the only
//!   authoritative signal; a peer that forgets the bit is not second-guessed from the text,
//!   because an MO that happens to read `id:… stat:…` must never be swallowed. The carrier id comes
//!   from the `receipted_message_id` TLV first and the text's `id:` field second; the state from
//!   `message_state` first and `stat:` second; the error from `network_error_code`, else `err:`.
//! - Carrier ids are compared in a canonical form (trimmed, lower case, leading zeros dropped),
//!   and a receipt also names the id read in the other base (hex <-> decimal), because SMSCs
//!   answer `submit_sm_resp` in one and write receipts in the other.
//! - MO text is decoded by `data_coding`; concatenation comes from a UDH (8- or 16-bit reference)
//!   or from the SAR TLVs, and the header is stripped from the text.

use super::gsm7;
use super::pdu::{DeliverSm, Tlv, tag};

/// esm_class message type mask (bits 5-2) and the "SMSC delivery receipt" value.
const ESM_TYPE_MASK: u8 = 0x3C;
const ESM_TYPE_RECEIPT: u8 = 0x04;
/// esm_class bit: the short message starts with a user data header.
const ESM_UDHI: u8 = 0x40;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    Receipt(Receipt),
    Mo(MoPart),
}

/// A receipt's final (or intermediate) state, as the SMSC reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stat {
    Enroute,
    Delivered,
    Expired,
    Deleted,
    Undeliverable,
    Accepted,
    Unknown,
    Rejected,
}

impl Stat {
    fn from_message_state(v: u8) -> Option<Self> {
        Some(match v {
            0 | 1 => Self::Enroute, // SCHEDULED (v5), ENROUTE
            2 => Self::Delivered,
            3 => Self::Expired,
            4 => Self::Deleted,
            5 => Self::Undeliverable,
            6 => Self::Accepted,
            7 => Self::Unknown,
            8 => Self::Rejected,
            9 => Self::Deleted, // SKIPPED (v5): not delivered, not retryable
            _ => return None,
        })
    }

    fn from_text(s: &str) -> Option<Self> {
        Some(match s.to_ascii_uppercase().as_str() {
            "ENROUTE" | "SCHEDULED" => Self::Enroute,
            "DELIVRD" | "DELIVERED" => Self::Delivered,
            "EXPIRED" => Self::Expired,
            "DELETED" => Self::Deleted,
            "UNDELIV" | "UNDELIVERABLE" => Self::Undeliverable,
            "ACCEPTD" | "ACCEPTED" => Self::Accepted,
            "UNKNOWN" => Self::Unknown,
            "REJECTD" | "REJECTED" => Self::Rejected,
            _ => return None,
        })
    }

    /// Not final: the message is still on its way (ACCEPTD is "buffered" at the SMSC).
    pub fn is_intermediate(self) -> bool {
        matches!(self, Self::Enroute | Self::Accepted)
    }

    /// A failure another attempt may cure (the handset was off or out of coverage); a rejection
    /// or deletion would fail, and bill, again.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Expired | Self::Undeliverable | Self::Unknown)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// Canonical form of the receipted id (see [`canonical_id`]).
    pub carrier_id: String,
    /// The same id read in the other base, when it parses as one.
    pub alternate_id: Option<String>,
    pub stat: Stat,
    /// `network_error_code` (its 2-octet code) or the text's `err:` field.
    pub error_code: Option<u32>,
}

/// Where one part sits in a concatenated message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Concat {
    pub reference: u16,
    pub total: u8,
    /// 1-based.
    pub seq: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoPart {
    pub text: String,
    /// `None` for a single-part message (or a malformed header, delivered as it stands).
    pub concat: Option<Concat>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliverError {
    #[error("delivery receipt carries no message id")]
    ReceiptWithoutId,
    #[error("delivery receipt carries no recognisable state")]
    ReceiptWithoutState,
}

/// Classifies and decodes one `deliver_sm`.
pub fn interpret(sm: &DeliverSm) -> Result<Delivered, DeliverError> {
    if sm.esm_class & ESM_TYPE_MASK == ESM_TYPE_RECEIPT {
        return parse_receipt(sm).map(Delivered::Receipt);
    }
    Ok(Delivered::Mo(parse_mo(sm)))
}

fn parse_receipt(sm: &DeliverSm) -> Result<Receipt, DeliverError> {
    // The text is ASCII by convention whatever the data_coding claims; decode leniently.
    let text = gsm7::decode_short_message(sm.data_coding, &sm.short_message);
    // ASCII lower-casing keeps byte offsets: keys are found in `lower`, values read from `text`.
    let lower = text.to_ascii_lowercase();
    let field = |key: &str| text_field(&text, &lower, key);
    let tlv_id = Tlv::find(&sm.tlvs, tag::RECEIPTED_MESSAGE_ID)
        .map(|v| String::from_utf8_lossy(v.strip_suffix(&[0]).unwrap_or(v)).into_owned())
        .filter(|s| !s.trim().is_empty());
    let raw_id = tlv_id.or_else(|| field("id:")).ok_or(DeliverError::ReceiptWithoutId)?;
    let stat = Tlv::find(&sm.tlvs, tag::MESSAGE_STATE)
        .and_then(|v| v.first().copied())
        .and_then(Stat::from_message_state)
        .or_else(|| field("stat:").and_then(|s| Stat::from_text(&s)))
        .ok_or(DeliverError::ReceiptWithoutState)?;
    let error_code = Tlv::find(&sm.tlvs, tag::NETWORK_ERROR_CODE)
        .filter(|v| v.len() == 3)
        .map(|v| u32::from(u16::from_be_bytes([v[1], v[2]])))
        .or_else(|| field("err:").and_then(|s| s.parse().ok()))
        .filter(|&code| code != 0);
    Ok(Receipt { carrier_id: canonical_id(&raw_id), alternate_id: alternate_id(&raw_id), stat, error_code })
}

/// The value after `needle` (`key:`, lower case) in a receipt text, matched case-insensitively at a
/// word start; `lower` is `text` ASCII-lower-cased.
fn text_field(text: &str, lower: &str, needle: &str) -> Option<String> {
    let mut from = 0;
    while let Some(pos) = lower[from..].find(needle) {
        let at = from + pos;
        if at == 0 || lower.as_bytes()[at - 1].is_ascii_whitespace() {
            let value = &text[at + needle.len()..];
            let end = value.find(char::is_whitespace).unwrap_or(value.len());
            let value = &value[..end];
            return (!value.is_empty()).then(|| value.to_owned());
        }
        from = at + needle.len();
    }
    None
}

/// Canonical carrier id: trimmed, lower case, leading zeros dropped (an all-zero id stays "0").
pub fn canonical_id(raw: &str) -> String {
    let trimmed = raw.trim().trim_end_matches('\0').to_ascii_lowercase();
    let stripped = trimmed.trim_start_matches('0');
    if stripped.is_empty() && !trimmed.is_empty() { "0".to_owned() } else { stripped.to_owned() }
}

/// The id read in the other base: decimal digits also name the hex id of the same number, and
/// hex digits the decimal one. `None` when it is neither or too long for 128 bits.
pub fn alternate_id(raw: &str) -> Option<String> {
    let id = canonical_id(raw);
    if id.is_empty() || id.len() > 32 {
        return None;
    }
    let other = if id.bytes().all(|b| b.is_ascii_digit()) {
        format!("{:x}", id.parse::<u128>().ok()?)
    } else if id.bytes().all(|b| b.is_ascii_hexdigit()) {
        u128::from_str_radix(&id, 16).ok()?.to_string()
    } else {
        return None;
    };
    (other != id).then_some(other)
}

fn parse_mo(sm: &DeliverSm) -> MoPart {
    let mut payload: &[u8] = &sm.short_message;
    if payload.is_empty()
        && let Some(p) = Tlv::find(&sm.tlvs, tag::MESSAGE_PAYLOAD)
    {
        payload = p;
    }
    let mut concat = None;
    if sm.esm_class & ESM_UDHI != 0 {
        if let Some((udh_len, found)) = parse_udh(payload) {
            payload = &payload[udh_len..];
            concat = found;
        }
    } else {
        concat = sar(&sm.tlvs);
    }
    MoPart { text: gsm7::decode_short_message(sm.data_coding, payload), concat: concat.filter(valid_concat) }
}

fn valid_concat(c: &Concat) -> bool {
    c.total >= 1 && c.seq >= 1 && c.seq <= c.total
}

/// Reads a user data header: its total length (including the length octet) and the
/// concatenation element if there is one. `None` if the header runs past the payload.
fn parse_udh(payload: &[u8]) -> Option<(usize, Option<Concat>)> {
    let udhl = usize::from(*payload.first()?);
    let header = payload.get(1..1 + udhl)?;
    let mut concat = None;
    let mut rest = header;
    while let [iei, len, tail @ ..] = rest {
        let len = usize::from(*len);
        let data = tail.get(..len)?;
        match (iei, data) {
            (0x00, [r, total, seq]) => concat = Some(Concat { reference: u16::from(*r), total: *total, seq: *seq }),
            (0x08, [hi, lo, total, seq]) => {
                concat = Some(Concat { reference: u16::from_be_bytes([*hi, *lo]), total: *total, seq: *seq })
            }
            _ => {}
        }
        rest = &tail[len..];
    }
    Some((1 + udhl, concat))
}

fn sar(tlvs: &[Tlv]) -> Option<Concat> {
    let reference = match Tlv::find(tlvs, tag::SAR_MSG_REF_NUM)? {
        [hi, lo] => u16::from_be_bytes([*hi, *lo]),
        [lo] => u16::from(*lo),
        _ => return None,
    };
    let total = *Tlv::find(tlvs, tag::SAR_TOTAL_SEGMENTS)?.first()?;
    let seq = *Tlv::find(tlvs, tag::SAR_SEGMENT_SEQNUM)?.first()?;
    Some(Concat { reference, total, seq })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telco::smpp::pdu::Address;

    fn deliver(esm_class: u8, data_coding: u8, short_message: &[u8], tlvs: Vec<Tlv>) -> DeliverSm {
        DeliverSm {
            service_type: String::new(),
            source: Address { ton: 1, npi: 1, addr: "15550002222".into() },
            dest: Address { ton: 1, npi: 1, addr: "15550001111".into() },
            esm_class,
            protocol_id: 0,
            priority_flag: 0,
            schedule_delivery_time: String::new(),
            validity_period: String::new(),
            registered_delivery: 0,
            replace_if_present_flag: 0,
            data_coding,
            sm_default_msg_id: 0,
            short_message: short_message.to_vec(),
            tlvs,
        }
    }

    fn tlv(tag: u16, value: &[u8]) -> Tlv {
        Tlv { tag, value: value.to_vec() }
    }

    const TEXT: &[u8] = b"id:0000001A sub:001 dlvrd:001 submit date:2611221903 done date:2611221903 stat:DELIVRD err:000 text:Your code";

    #[test]
    fn receipt_prefers_tlvs() {
        let sm = deliver(
            0x04,
            0,
            b"id:99 stat:UNDELIV err:001",
            vec![
                tlv(tag::RECEIPTED_MESSAGE_ID, b"0000001A\0"),
                tlv(tag::MESSAGE_STATE, &[2]),
                tlv(tag::NETWORK_ERROR_CODE, &[3, 0, 0]),
            ],
        );
        let Ok(Delivered::Receipt(r)) = interpret(&sm) else { panic!("a receipt") };
        assert_eq!(r.carrier_id, "1a");
        assert_eq!(r.alternate_id.as_deref(), Some("26"));
        assert_eq!(r.stat, Stat::Delivered);
        assert_eq!(r.error_code, None);
    }

    #[test]
    fn receipt_falls_back_to_text() {
        let Ok(Delivered::Receipt(r)) = interpret(&deliver(0x04, 0, TEXT, vec![])) else { panic!("a receipt") };
        assert_eq!((r.carrier_id.as_str(), r.stat, r.error_code), ("1a", Stat::Delivered, None));
        let failed =
            b"ID:00A1 SUB:001 DLVRD:000 SUBMIT DATE:2611221903 DONE DATE:2611221903 STAT:undeliv ERR:075 TEXT:x";
        let Ok(Delivered::Receipt(r)) = interpret(&deliver(0x04, 0, failed, vec![])) else { panic!("a receipt") };
        assert_eq!((r.carrier_id.as_str(), r.stat, r.error_code), ("a1", Stat::Undeliverable, Some(75)));
        assert!(r.stat.is_retryable());
        // Jasmin's shape: no sub/dlvrd/text, a UUID id.
        let jasmin = b"id:0E999F21-28e1-423f submit date:2611221915 done date:2611221915 stat:REJECTD err:000";
        let Ok(Delivered::Receipt(r)) = interpret(&deliver(0x04, 0, jasmin, vec![])) else { panic!("a receipt") };
        assert_eq!((r.carrier_id.as_str(), r.alternate_id, r.stat), ("e999f21-28e1-423f", None, Stat::Rejected));
        assert!(!r.stat.is_retryable());
    }

    #[test]
    fn text_fields_match_at_word_starts_only() {
        // "submit date:" must not be read as "date"; "xid:" is not "id:".
        let sm = deliver(0x04, 0, b"xid:5 id:7 stat:ENROUTE", vec![]);
        let Ok(Delivered::Receipt(r)) = interpret(&sm) else { panic!("a receipt") };
        assert_eq!(r.carrier_id, "7");
        assert!(r.stat.is_intermediate());
    }

    #[test]
    fn receipts_without_id_or_state_are_errors() {
        assert_eq!(interpret(&deliver(0x04, 0, b"stat:DELIVRD", vec![])), Err(DeliverError::ReceiptWithoutId));
        assert_eq!(
            interpret(&deliver(0x04, 0, b"id:12 stat:WHATEVER", vec![])),
            Err(DeliverError::ReceiptWithoutState)
        );
        // An empty TLV id falls back to the text.
        let sm = deliver(0x04, 0, b"id:12 stat:DELIVRD", vec![tlv(tag::RECEIPTED_MESSAGE_ID, b"\0")]);
        assert!(matches!(interpret(&sm), Ok(Delivered::Receipt(Receipt { carrier_id, .. })) if carrier_id == "12"));
    }

    #[test]
    fn receipt_looking_mo_stays_an_mo() {
        let Ok(Delivered::Mo(mo)) = interpret(&deliver(0x00, 0, TEXT, vec![])) else { panic!("an MO") };
        assert!(mo.text.starts_with("id:0000001A"));
    }

    #[test]
    fn ids_are_canonical() {
        assert_eq!(canonical_id(" 0000001A\0"), "1a");
        assert_eq!(canonical_id("000"), "0");
        assert_eq!(canonical_id(""), "");
        assert_eq!(alternate_id("26"), Some("1a".into()));
        assert_eq!(alternate_id("0000001A"), Some("26".into()));
        assert_eq!(alternate_id("7"), None, "same in both bases");
        assert_eq!(alternate_id("xyz"), None);
        assert_eq!(alternate_id(&"f".repeat(40)), None);
    }

    #[test]
    fn mo_parts_from_udh_and_sar() {
        let mut udh8 = vec![0x05, 0x00, 0x03, 0x7F, 0x02, 0x01];
        udh8.extend_from_slice(&gsm7::encode("Hello €").expect("gsm"));
        let Ok(Delivered::Mo(mo)) = interpret(&deliver(0x40, 0, &udh8, vec![])) else { panic!("an MO") };
        assert_eq!(mo.text, "Hello €");
        assert_eq!(mo.concat, Some(Concat { reference: 0x7F, total: 2, seq: 1 }));

        let mut udh16 = vec![0x06, 0x08, 0x04, 0x12, 0x34, 0x03, 0x03];
        udh16.extend_from_slice(&gsm7::encode_ucs2("ж😀"));
        let Ok(Delivered::Mo(mo)) = interpret(&deliver(0x40, 8, &udh16, vec![])) else { panic!("an MO") };
        assert_eq!(mo.text, "ж😀");
        assert_eq!(mo.concat, Some(Concat { reference: 0x1234, total: 3, seq: 3 }));

        let sar = vec![
            tlv(tag::SAR_MSG_REF_NUM, &[0x00, 0x09]),
            tlv(tag::SAR_TOTAL_SEGMENTS, &[2]),
            tlv(tag::SAR_SEGMENT_SEQNUM, &[2]),
        ];
        let Ok(Delivered::Mo(mo)) = interpret(&deliver(0x00, 3, &[0xE9, 0x74, 0xE9], sar)) else { panic!("an MO") };
        assert_eq!(mo.text, "été");
        assert_eq!(mo.concat, Some(Concat { reference: 9, total: 2, seq: 2 }));
    }

    #[test]
    fn malformed_udh_is_delivered_as_it_stands() {
        // UDHL claims more than there is: the octets are kept as text.
        let Ok(Delivered::Mo(mo)) = interpret(&deliver(0x40, 0, &[0x09, 0x00, 0x41], vec![])) else { panic!("an MO") };
        assert_eq!(mo.concat, None);
        assert_eq!(mo.text.chars().count(), 3);
        // seq 0 or beyond total is not a usable concatenation.
        let Ok(Delivered::Mo(mo)) = interpret(&deliver(0x40, 0, &[5, 0, 3, 1, 2, 3, 0x41], vec![])) else {
            panic!("an MO")
        };
        assert_eq!((mo.text.as_str(), mo.concat), ("A", None));
    }

    #[test]
    fn message_payload_is_read_when_short_message_is_empty() {
        let sm = deliver(0x00, 0, b"", vec![tlv(tag::MESSAGE_PAYLOAD, &gsm7::encode("long text").expect("gsm"))]);
        let Ok(Delivered::Mo(mo)) = interpret(&sm) else { panic!("an MO") };
        assert_eq!(mo.text, "long text");
    }
}
