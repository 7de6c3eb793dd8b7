//! SMPP 3.4 PDU codec, pure: `&[u8]` in, typed [`Pdu`] out, and back. No sockets, no clocks, no
//! allocation sized by a peer before it is bounded.
//!
//! Implements SMPP v3.4 Issue 1.2: the PDU header and framing (§3.2), C-octet strings (§3.1),
//! bind and bind_resp (§4.1), unbind (§4.2), generic_nack (§4.3), submit_sm and submit_sm_resp
//! (§4.4), deliver_sm and deliver_sm_resp (§4.6), enquire_link (§4.11), the TLV layout (§3.2.2,
//! §5.3) and the field sizes of §5.2. Anything else (data_sm, query_sm, outbind, …) decodes to
//! [`PduError::UnknownCommand`], which the session answers with `generic_nack` + `ESME_RINVCMDID`.
//!
//! What this module must not do: read or write a socket, interpret a receipt's text, pack GSM
//! septets, or decide retries. The session owns the buffer and calls [`frame_len`] to turn "need
//! more bytes" into `Ok(None)`, then hands exactly one framed PDU to [`decode`].
//!
//! An `enquire_link` with sequence number 1, all four header fields big-endian:
//! `00 00 00 10  00 00 00 15  00 00 00 00  00 00 00 01`.
//!
//! Size: about 650 lines of codec and 480 of tests (a round trip per PDU, every bound, the
//! fuzz checks the corpus replay shares); one PDU table is easier to check against §4 whole.

use std::fmt;

/// Octets in the fixed header: command_length, command_id, command_status, sequence_number.
pub const HEADER_LEN: usize = 16;

/// Largest command_length accepted from a peer. A `submit_sm` carrying a full `message_payload`
/// TLV fits; anything bigger is garbage or an attack, and is refused before a buffer is sized.
pub const MAX_PDU_LEN: usize = 64 * 1024;

/// `sm_length` is one octet, and 3.4 §5.2.21 caps `short_message` at 254 octets.
pub const MAX_SHORT_MESSAGE_LEN: usize = 254;

// Field sizes from SMPP 3.4 §5.2, in octets *including* the terminating NUL.
const MAX_SYSTEM_ID: usize = 16;
const MAX_PASSWORD: usize = 9;
const MAX_SYSTEM_TYPE: usize = 13;
const MAX_ADDRESS_RANGE: usize = 41;
const MAX_SERVICE_TYPE: usize = 6;
const MAX_ADDR: usize = 21;
const MAX_MESSAGE_ID: usize = 65;
/// `schedule_delivery_time` and `validity_period` are either NULL or exactly 16 characters
/// (`YYMMDDhhmmsstnnp`, §7.1.1) plus the NUL.
const TIME_LEN: usize = 17;

/// A `command_id`. Responses are the request id with bit 31 set (§5.1.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CommandId(pub u32);

impl CommandId {
    pub const GENERIC_NACK: Self = Self(0x8000_0000);
    pub const BIND_RECEIVER: Self = Self(0x0000_0001);
    pub const BIND_RECEIVER_RESP: Self = Self(0x8000_0001);
    pub const BIND_TRANSMITTER: Self = Self(0x0000_0002);
    pub const BIND_TRANSMITTER_RESP: Self = Self(0x8000_0002);
    pub const SUBMIT_SM: Self = Self(0x0000_0004);
    pub const SUBMIT_SM_RESP: Self = Self(0x8000_0004);
    pub const DELIVER_SM: Self = Self(0x0000_0005);
    pub const DELIVER_SM_RESP: Self = Self(0x8000_0005);
    pub const UNBIND: Self = Self(0x0000_0006);
    pub const UNBIND_RESP: Self = Self(0x8000_0006);
    pub const BIND_TRANSCEIVER: Self = Self(0x0000_0009);
    pub const BIND_TRANSCEIVER_RESP: Self = Self(0x8000_0009);
    pub const ENQUIRE_LINK: Self = Self(0x0000_0015);
    pub const ENQUIRE_LINK_RESP: Self = Self(0x8000_0015);

    const RESPONSE_BIT: u32 = 0x8000_0000;

    /// True for every `*_resp` and for `generic_nack`.
    pub const fn is_response(self) -> bool {
        self.0 & Self::RESPONSE_BIT != 0
    }

    /// The id a reply to this request carries.
    pub const fn response(self) -> Self {
        Self(self.0 | Self::RESPONSE_BIT)
    }

    /// The spec name, for logs; `None` for ids this codec does not implement.
    pub const fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::GENERIC_NACK => "generic_nack",
            Self::BIND_RECEIVER => "bind_receiver",
            Self::BIND_RECEIVER_RESP => "bind_receiver_resp",
            Self::BIND_TRANSMITTER => "bind_transmitter",
            Self::BIND_TRANSMITTER_RESP => "bind_transmitter_resp",
            Self::SUBMIT_SM => "submit_sm",
            Self::SUBMIT_SM_RESP => "submit_sm_resp",
            Self::DELIVER_SM => "deliver_sm",
            Self::DELIVER_SM_RESP => "deliver_sm_resp",
            Self::UNBIND => "unbind",
            Self::UNBIND_RESP => "unbind_resp",
            Self::BIND_TRANSCEIVER => "bind_transceiver",
            Self::BIND_TRANSCEIVER_RESP => "bind_transceiver_resp",
            Self::ENQUIRE_LINK => "enquire_link",
            Self::ENQUIRE_LINK_RESP => "enquire_link_resp",
            _ => return None,
        })
    }
}

impl fmt::Display for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} ({:#010x})", self.0),
            None => write!(f, "{:#010x}", self.0),
        }
    }
}

/// `command_status` values (§5.1.3) the adapter acts on.
pub mod status {
    pub const ESME_ROK: u32 = 0x0000_0000;
    pub const ESME_RINVMSGLEN: u32 = 0x0000_0001;
    pub const ESME_RINVCMDLEN: u32 = 0x0000_0002;
    pub const ESME_RINVCMDID: u32 = 0x0000_0003;
    pub const ESME_RINVBNDSTS: u32 = 0x0000_0004;
    pub const ESME_RALYBND: u32 = 0x0000_0005;
    pub const ESME_RSYSERR: u32 = 0x0000_0008;
    pub const ESME_RINVSRCADR: u32 = 0x0000_000A;
    pub const ESME_RINVDSTADR: u32 = 0x0000_000B;
    pub const ESME_RBINDFAIL: u32 = 0x0000_000D;
    pub const ESME_RINVPASWD: u32 = 0x0000_000E;
    pub const ESME_RINVSYSID: u32 = 0x0000_000F;
    pub const ESME_RMSGQFUL: u32 = 0x0000_0014;
    pub const ESME_RTHROTTLED: u32 = 0x0000_0058;
    pub const ESME_RX_T_APPN: u32 = 0x0000_0064;
}

/// Optional parameter tags (§5.3.2) the adapter reads or writes. Unknown tags still decode.
pub mod tag {
    pub const RECEIPTED_MESSAGE_ID: u16 = 0x001E;
    pub const USER_MESSAGE_REFERENCE: u16 = 0x0204;
    pub const SAR_MSG_REF_NUM: u16 = 0x020C;
    pub const SAR_TOTAL_SEGMENTS: u16 = 0x020E;
    pub const SAR_SEGMENT_SEQNUM: u16 = 0x020F;
    pub const SC_INTERFACE_VERSION: u16 = 0x0210;
    pub const NETWORK_ERROR_CODE: u16 = 0x0423;
    pub const MESSAGE_PAYLOAD: u16 = 0x0424;
    pub const MESSAGE_STATE: u16 = 0x0427;
}

/// The four header fields (§3.2), as read off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub command_length: u32,
    pub command_id: CommandId,
    pub command_status: u32,
    pub sequence_number: u32,
}

impl Header {
    /// Reads the header at the start of `buf` without judging it, so that a session can still
    /// answer a PDU that [`decode`] rejects with a `generic_nack` echoing its sequence number.
    pub fn peek(buf: &[u8]) -> Result<Self, PduError> {
        let mut r = Reader::new(buf);
        Ok(Self {
            command_length: r.u32("command_length")?,
            command_id: CommandId(r.u32("command_id")?),
            command_status: r.u32("command_status")?,
            sequence_number: r.u32("sequence_number")?,
        })
    }
}

/// A TON/NPI/digits triple. An E.164 long code is `ton: 1, npi: 1, addr: "15551230000"` (no `+`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub ton: u8,
    pub npi: u8,
    pub addr: String,
}

/// One optional parameter: `tag(2) length(2) value(length)`, e.g. `04 27 00 01 02` is
/// `message_state = DELIVERED`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlv {
    pub tag: u16,
    pub value: Vec<u8>,
}

impl Tlv {
    /// The value of the first TLV with `tag`; a repeated tag is a peer bug, and first-wins is what
    /// other stacks do.
    pub fn find(tlvs: &[Tlv], tag: u16) -> Option<&[u8]> {
        tlvs.iter().find(|t| t.tag == tag).map(|t| t.value.as_slice())
    }
}

/// `bind_transmitter`, `bind_receiver` and `bind_transceiver` share this body (§4.1.1); the header's
/// command_id says which one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub system_id: String,
    pub password: String,
    pub system_type: String,
    /// 0x34 for SMPP 3.4.
    pub interface_version: u8,
    pub addr_ton: u8,
    pub addr_npi: u8,
    pub address_range: String,
}

/// The `submit_sm` body (§4.4.1). `deliver_sm` (§4.6.1) has the same layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitSm {
    pub service_type: String,
    pub source: Address,
    pub dest: Address,
    /// 0x00 for a plain MT; 0x40 when `short_message` starts with a UDH; 0x04 marks a receipt.
    pub esm_class: u8,
    pub protocol_id: u8,
    pub priority_flag: u8,
    /// Empty, or the 16-character `YYMMDDhhmmsstnnp` form.
    pub schedule_delivery_time: String,
    /// Empty, or the 16-character `YYMMDDhhmmsstnnp` form.
    pub validity_period: String,
    pub registered_delivery: u8,
    pub replace_if_present_flag: u8,
    pub data_coding: u8,
    pub sm_default_msg_id: u8,
    /// At most [`MAX_SHORT_MESSAGE_LEN`] octets; longer text goes in `message_payload` or is split.
    pub short_message: Vec<u8>,
    pub tlvs: Vec<Tlv>,
}

/// `deliver_sm` carries MO messages and delivery receipts in the `submit_sm` layout.
pub type DeliverSm = SubmitSm;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// Any of the three bind requests.
    Bind(Bind),
    /// Any of the three bind responses. With a non-zero status the SMSC usually sends no body at
    /// all (§4.1.2), which decodes as an empty `system_id` and no TLVs.
    BindResp {
        system_id: String,
        tlvs: Vec<Tlv>,
    },
    SubmitSm(SubmitSm),
    /// Empty `message_id` when the SMSC sent no body with an error status (§4.4.2).
    SubmitSmResp {
        message_id: String,
    },
    DeliverSm(DeliverSm),
    /// Its `message_id` is unused (§4.6.2): encoded as a single NUL, ignored on decode.
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    Unbind,
    UnbindResp,
    GenericNack,
}

/// One whole PDU. `command_length` is not stored: [`encode`] computes it and [`decode`] checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pdu {
    pub command_id: CommandId,
    pub command_status: u32,
    pub sequence_number: u32,
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PduError {
    #[error("command_length {len} is shorter than the {HEADER_LEN}-octet header")]
    CommandLengthTooSmall { len: usize },
    #[error("command_length {len} exceeds the limit of {max} octets")]
    CommandLengthTooLarge { len: usize, max: usize },
    #[error("command_length {header} does not match the {actual} octets given")]
    LengthMismatch { header: usize, actual: usize },
    #[error("command_id {id:#010x} is not implemented")]
    UnknownCommand { id: u32 },
    #[error("the body does not belong to command_id {command_id}")]
    BodyMismatch { command_id: CommandId },
    #[error("the PDU ends inside {field}")]
    Truncated { field: &'static str },
    #[error("{field} has no NUL terminator before the end of the PDU")]
    MissingNul { field: &'static str },
    #[error("{field} is longer than {max} octets including the NUL")]
    FieldTooLong { field: &'static str, max: usize },
    #[error("{field} contains a non-ASCII octet")]
    NotAscii { field: &'static str },
    #[error("{field} contains a NUL, which would end the C-octet string early")]
    InteriorNul { field: &'static str },
    #[error("{field} must be empty or 16 characters, not {len}")]
    BadTimeLength { field: &'static str, len: usize },
    #[error("short_message of {len} octets exceeds {MAX_SHORT_MESSAGE_LEN}")]
    ShortMessageTooLong { len: usize },
    #[error("TLV {tag:#06x} runs past the end of the PDU")]
    TlvTruncated { tag: u16 },
    #[error("TLV {tag:#06x} value of {len} octets does not fit its 16-bit length")]
    TlvTooLong { tag: u16, len: usize },
    #[error("{count} unexpected octets after the body")]
    TrailingBytes { count: usize },
}

/// Framing: `Ok(None)` = need more bytes; `Ok(Some(len))` = a whole PDU of `len` bytes is at the
/// start of `buf`. The length is judged as soon as its four octets are in, so a garbage stream is
/// refused without waiting for (or buffering) the bytes it claims to have.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, PduError> {
    let Some((len, _)) = buf.split_first_chunk::<4>() else {
        return Ok(None);
    };
    let len = checked_command_length(u32::from_be_bytes(*len))?;
    Ok((buf.len() >= len).then_some(len))
}

/// Decodes exactly one whole PDU, as framed by [`frame_len`].
pub fn decode(pdu: &[u8]) -> Result<Pdu, PduError> {
    let header = Header::peek(pdu)?;
    let declared = checked_command_length(header.command_length)?;
    if declared != pdu.len() {
        return Err(PduError::LengthMismatch { header: declared, actual: pdu.len() });
    }
    let mut r = Reader::new(pdu.get(HEADER_LEN..).unwrap_or_default());
    let id = header.command_id;
    let failed = header.command_status != status::ESME_ROK;
    let body = match id {
        CommandId::BIND_RECEIVER | CommandId::BIND_TRANSMITTER | CommandId::BIND_TRANSCEIVER => {
            Body::Bind(read_bind(&mut r)?)
        }
        CommandId::BIND_RECEIVER_RESP | CommandId::BIND_TRANSMITTER_RESP | CommandId::BIND_TRANSCEIVER_RESP => {
            if failed && r.is_empty() {
                Body::BindResp { system_id: String::new(), tlvs: Vec::new() }
            } else {
                let system_id = r.c_string("system_id", MAX_SYSTEM_ID)?;
                Body::BindResp { system_id, tlvs: read_tlvs(&mut r)? }
            }
        }
        CommandId::SUBMIT_SM => Body::SubmitSm(read_submit(&mut r)?),
        CommandId::DELIVER_SM => Body::DeliverSm(read_submit(&mut r)?),
        CommandId::SUBMIT_SM_RESP => {
            let message_id =
                if failed && r.is_empty() { String::new() } else { r.c_string("message_id", MAX_MESSAGE_ID)? };
            // SMPP 5.0 SMSCs may append TLVs here (§4.2.5); 3.4 has none we use, so check their
            // framing and drop them rather than fail a submit that succeeded.
            read_tlvs(&mut r)?;
            Body::SubmitSmResp { message_id }
        }
        CommandId::DELIVER_SM_RESP => {
            // message_id is unused; some stacks send only the header, so an empty body is fine.
            if !r.is_empty() {
                r.c_string("message_id", MAX_MESSAGE_ID)?;
                read_tlvs(&mut r)?;
            }
            Body::DeliverSmResp
        }
        CommandId::ENQUIRE_LINK => Body::EnquireLink,
        CommandId::ENQUIRE_LINK_RESP => Body::EnquireLinkResp,
        CommandId::UNBIND => Body::Unbind,
        CommandId::UNBIND_RESP => Body::UnbindResp,
        CommandId::GENERIC_NACK => Body::GenericNack,
        CommandId(other) => return Err(PduError::UnknownCommand { id: other }),
    };
    r.finish()?;
    Ok(Pdu { command_id: id, command_status: header.command_status, sequence_number: header.sequence_number, body })
}

/// Encodes one PDU, computing command_length. Over-long or malformed fields are refused, never
/// truncated: a silently shortened address or message is worse than an error at the caller.
pub fn encode(pdu: &Pdu) -> Result<Vec<u8>, PduError> {
    let id = pdu.command_id;
    let ok = pdu.command_status == status::ESME_ROK;
    let mismatch = PduError::BodyMismatch { command_id: id };
    let mut out = Vec::with_capacity(HEADER_LEN + 64);
    // command_length is patched in once the body is written.
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&id.0.to_be_bytes());
    out.extend_from_slice(&pdu.command_status.to_be_bytes());
    out.extend_from_slice(&pdu.sequence_number.to_be_bytes());
    match &pdu.body {
        Body::Bind(bind) => {
            if !matches!(id, CommandId::BIND_RECEIVER | CommandId::BIND_TRANSMITTER | CommandId::BIND_TRANSCEIVER) {
                return Err(mismatch);
            }
            write_bind(&mut out, bind)?;
        }
        Body::BindResp { system_id, tlvs } => {
            if !matches!(
                id,
                CommandId::BIND_RECEIVER_RESP | CommandId::BIND_TRANSMITTER_RESP | CommandId::BIND_TRANSCEIVER_RESP
            ) {
                return Err(mismatch);
            }
            // §4.1.2: no body with an error status. Only omitted when there is nothing to lose.
            if ok || !system_id.is_empty() || !tlvs.is_empty() {
                write_c_string(&mut out, "system_id", system_id, MAX_SYSTEM_ID)?;
                write_tlvs(&mut out, tlvs)?;
            }
        }
        Body::SubmitSm(sm) => {
            if id != CommandId::SUBMIT_SM {
                return Err(mismatch);
            }
            write_submit(&mut out, sm)?;
        }
        Body::DeliverSm(sm) => {
            if id != CommandId::DELIVER_SM {
                return Err(mismatch);
            }
            write_submit(&mut out, sm)?;
        }
        Body::SubmitSmResp { message_id } => {
            if id != CommandId::SUBMIT_SM_RESP {
                return Err(mismatch);
            }
            // §4.4.2: no body with an error status. Only omitted when there is nothing to lose.
            if ok || !message_id.is_empty() {
                write_c_string(&mut out, "message_id", message_id, MAX_MESSAGE_ID)?;
            }
        }
        Body::DeliverSmResp => {
            if id != CommandId::DELIVER_SM_RESP {
                return Err(mismatch);
            }
            out.push(0);
        }
        Body::EnquireLink => expect_id(id, CommandId::ENQUIRE_LINK)?,
        Body::EnquireLinkResp => expect_id(id, CommandId::ENQUIRE_LINK_RESP)?,
        Body::Unbind => expect_id(id, CommandId::UNBIND)?,
        Body::UnbindResp => expect_id(id, CommandId::UNBIND_RESP)?,
        Body::GenericNack => expect_id(id, CommandId::GENERIC_NACK)?,
    }
    let too_large = PduError::CommandLengthTooLarge { len: out.len(), max: MAX_PDU_LEN };
    if out.len() > MAX_PDU_LEN {
        return Err(too_large);
    }
    // Cannot fail after the check above (MAX_PDU_LEN < u32::MAX); mapped rather than unwrapped.
    let len = u32::try_from(out.len()).map_err(|_| too_large)?;
    out[..4].copy_from_slice(&len.to_be_bytes());
    Ok(out)
}

fn expect_id(id: CommandId, want: CommandId) -> Result<(), PduError> {
    if id == want { Ok(()) } else { Err(PduError::BodyMismatch { command_id: id }) }
}

/// Bounds a command_length read from a peer, before anything is sized by it.
fn checked_command_length(raw: u32) -> Result<usize, PduError> {
    // u32 → usize is lossless on every target this service builds for; saturate rather than panic.
    let len = usize::try_from(raw).unwrap_or(usize::MAX);
    if len < HEADER_LEN {
        return Err(PduError::CommandLengthTooSmall { len });
    }
    if len > MAX_PDU_LEN {
        return Err(PduError::CommandLengthTooLarge { len, max: MAX_PDU_LEN });
    }
    Ok(len)
}

fn read_bind(r: &mut Reader<'_>) -> Result<Bind, PduError> {
    Ok(Bind {
        system_id: r.c_string("system_id", MAX_SYSTEM_ID)?,
        password: r.c_string("password", MAX_PASSWORD)?,
        system_type: r.c_string("system_type", MAX_SYSTEM_TYPE)?,
        interface_version: r.u8("interface_version")?,
        addr_ton: r.u8("addr_ton")?,
        addr_npi: r.u8("addr_npi")?,
        address_range: r.c_string("address_range", MAX_ADDRESS_RANGE)?,
    })
}

fn write_bind(out: &mut Vec<u8>, b: &Bind) -> Result<(), PduError> {
    write_c_string(out, "system_id", &b.system_id, MAX_SYSTEM_ID)?;
    write_c_string(out, "password", &b.password, MAX_PASSWORD)?;
    write_c_string(out, "system_type", &b.system_type, MAX_SYSTEM_TYPE)?;
    out.extend_from_slice(&[b.interface_version, b.addr_ton, b.addr_npi]);
    write_c_string(out, "address_range", &b.address_range, MAX_ADDRESS_RANGE)
}

fn read_submit(r: &mut Reader<'_>) -> Result<SubmitSm, PduError> {
    let service_type = r.c_string("service_type", MAX_SERVICE_TYPE)?;
    let source = Address {
        ton: r.u8("source_addr_ton")?,
        npi: r.u8("source_addr_npi")?,
        addr: r.c_string("source_addr", MAX_ADDR)?,
    };
    let dest = Address {
        ton: r.u8("dest_addr_ton")?,
        npi: r.u8("dest_addr_npi")?,
        addr: r.c_string("destination_addr", MAX_ADDR)?,
    };
    let esm_class = r.u8("esm_class")?;
    let protocol_id = r.u8("protocol_id")?;
    let priority_flag = r.u8("priority_flag")?;
    let schedule_delivery_time = r.time("schedule_delivery_time")?;
    let validity_period = r.time("validity_period")?;
    let registered_delivery = r.u8("registered_delivery")?;
    let replace_if_present_flag = r.u8("replace_if_present_flag")?;
    let data_coding = r.u8("data_coding")?;
    let sm_default_msg_id = r.u8("sm_default_msg_id")?;
    let sm_length = usize::from(r.u8("sm_length")?);
    if sm_length > MAX_SHORT_MESSAGE_LEN {
        return Err(PduError::ShortMessageTooLong { len: sm_length });
    }
    let short_message = r.bytes(sm_length, "short_message")?.to_vec();
    let tlvs = read_tlvs(r)?;
    Ok(SubmitSm {
        service_type,
        source,
        dest,
        esm_class,
        protocol_id,
        priority_flag,
        schedule_delivery_time,
        validity_period,
        registered_delivery,
        replace_if_present_flag,
        data_coding,
        sm_default_msg_id,
        short_message,
        tlvs,
    })
}

fn write_submit(out: &mut Vec<u8>, sm: &SubmitSm) -> Result<(), PduError> {
    write_c_string(out, "service_type", &sm.service_type, MAX_SERVICE_TYPE)?;
    out.extend_from_slice(&[sm.source.ton, sm.source.npi]);
    write_c_string(out, "source_addr", &sm.source.addr, MAX_ADDR)?;
    out.extend_from_slice(&[sm.dest.ton, sm.dest.npi]);
    write_c_string(out, "destination_addr", &sm.dest.addr, MAX_ADDR)?;
    out.extend_from_slice(&[sm.esm_class, sm.protocol_id, sm.priority_flag]);
    write_time(out, "schedule_delivery_time", &sm.schedule_delivery_time)?;
    write_time(out, "validity_period", &sm.validity_period)?;
    out.extend_from_slice(&[sm.registered_delivery, sm.replace_if_present_flag, sm.data_coding, sm.sm_default_msg_id]);
    let len = sm.short_message.len();
    let sm_length = u8::try_from(len)
        .ok()
        .filter(|&n| usize::from(n) <= MAX_SHORT_MESSAGE_LEN)
        .ok_or(PduError::ShortMessageTooLong { len })?;
    out.push(sm_length);
    out.extend_from_slice(&sm.short_message);
    write_tlvs(out, &sm.tlvs)
}

/// Optional parameters run to the end of the PDU (§3.2.2); each is bounded by the PDU itself.
fn read_tlvs(r: &mut Reader<'_>) -> Result<Vec<Tlv>, PduError> {
    let mut tlvs = Vec::new();
    while !r.is_empty() {
        let tag = r.u16("tlv_tag")?;
        let len = r.u16("tlv_length").map_err(|_| PduError::TlvTruncated { tag })?;
        let value = r.bytes(usize::from(len), "tlv_value").map_err(|_| PduError::TlvTruncated { tag })?;
        tlvs.push(Tlv { tag, value: value.to_vec() });
    }
    Ok(tlvs)
}

fn write_tlvs(out: &mut Vec<u8>, tlvs: &[Tlv]) -> Result<(), PduError> {
    for tlv in tlvs {
        let len = tlv.value.len();
        let len16 = u16::try_from(len).map_err(|_| PduError::TlvTooLong { tag: tlv.tag, len })?;
        out.extend_from_slice(&tlv.tag.to_be_bytes());
        out.extend_from_slice(&len16.to_be_bytes());
        out.extend_from_slice(&tlv.value);
    }
    Ok(())
}

/// Writes a C-octet string (§3.1): ASCII, no interior NUL, at most `max` octets with the NUL.
fn write_c_string(out: &mut Vec<u8>, field: &'static str, s: &str, max: usize) -> Result<(), PduError> {
    if !s.is_ascii() {
        return Err(PduError::NotAscii { field });
    }
    if s.bytes().any(|b| b == 0) {
        return Err(PduError::InteriorNul { field });
    }
    if s.len() >= max {
        return Err(PduError::FieldTooLong { field, max });
    }
    out.extend_from_slice(s.as_bytes());
    out.push(0);
    Ok(())
}

fn write_time(out: &mut Vec<u8>, field: &'static str, s: &str) -> Result<(), PduError> {
    check_time_len(field, s)?;
    write_c_string(out, field, s, TIME_LEN)
}

fn check_time_len(field: &'static str, s: &str) -> Result<(), PduError> {
    if s.is_empty() || s.len() == TIME_LEN - 1 { Ok(()) } else { Err(PduError::BadTimeLength { field, len: s.len() }) }
}

/// A cursor over one PDU. Every read is checked against what is left, so nothing a peer sends can
/// index out of bounds or size an allocation beyond the (already bounded) PDU.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { rest: buf }
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, PduError> {
        let (&b, tail) = self.rest.split_first().ok_or(PduError::Truncated { field })?;
        self.rest = tail;
        Ok(b)
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, PduError> {
        let (b, tail) = self.rest.split_first_chunk::<2>().ok_or(PduError::Truncated { field })?;
        self.rest = tail;
        Ok(u16::from_be_bytes(*b))
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, PduError> {
        let (b, tail) = self.rest.split_first_chunk::<4>().ok_or(PduError::Truncated { field })?;
        self.rest = tail;
        Ok(u32::from_be_bytes(*b))
    }

    fn bytes(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], PduError> {
        let (head, tail) = self.rest.split_at_checked(n).ok_or(PduError::Truncated { field })?;
        self.rest = tail;
        Ok(head)
    }

    /// A C-octet string of at most `max` octets including the NUL. The NUL is only looked for
    /// within `max` octets, so an unterminated field costs a bounded scan.
    fn c_string(&mut self, field: &'static str, max: usize) -> Result<String, PduError> {
        let window = self.rest.get(..max).unwrap_or(self.rest);
        let Some(nul) = window.iter().position(|&b| b == 0) else {
            return Err(if self.rest.len() >= max {
                PduError::FieldTooLong { field, max }
            } else {
                PduError::MissingNul { field }
            });
        };
        let (text, tail) = self.rest.split_at(nul);
        if !text.is_ascii() {
            return Err(PduError::NotAscii { field });
        }
        // `tail` starts with the NUL found above; skip it.
        self.rest = tail.get(1..).unwrap_or_default();
        // ASCII was checked, so each octet is one char; no UTF-8 failure path to handle.
        Ok(text.iter().map(|&b| char::from(b)).collect())
    }

    /// `schedule_delivery_time` / `validity_period`: NULL or 16 characters (§7.1.1).
    fn time(&mut self, field: &'static str) -> Result<String, PduError> {
        let s = self.c_string(field, TIME_LEN)?;
        check_time_len(field, &s)?;
        Ok(s)
    }

    fn finish(self) -> Result<(), PduError> {
        if self.rest.is_empty() { Ok(()) } else { Err(PduError::TrailingBytes { count: self.rest.len() }) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a PDU by hand (not through `encode`) so tests can say exactly what is on the wire.
    fn raw(id: u32, status: u32, seq: u32, body: &[u8]) -> Vec<u8> {
        let len = u32::try_from(HEADER_LEN + body.len()).expect("test PDUs are small");
        let mut v = Vec::new();
        v.extend_from_slice(&len.to_be_bytes());
        v.extend_from_slice(&id.to_be_bytes());
        v.extend_from_slice(&status.to_be_bytes());
        v.extend_from_slice(&seq.to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    fn pdu(command_id: CommandId, command_status: u32, sequence_number: u32, body: Body) -> Pdu {
        Pdu { command_id, command_status, sequence_number, body }
    }

    fn submit() -> SubmitSm {
        SubmitSm {
            service_type: String::new(),
            source: Address { ton: 1, npi: 1, addr: "15551230000".into() },
            dest: Address { ton: 1, npi: 1, addr: "15557654321".into() },
            esm_class: 0,
            protocol_id: 0,
            priority_flag: 0,
            schedule_delivery_time: String::new(),
            validity_period: "000000001000000R".into(),
            registered_delivery: 1,
            replace_if_present_flag: 0,
            data_coding: 0,
            sm_default_msg_id: 0,
            short_message: b"Your code is 123456".to_vec(),
            tlvs: vec![Tlv { tag: tag::USER_MESSAGE_REFERENCE, value: vec![0x00, 0x07] }],
        }
    }

    fn bind() -> Bind {
        Bind {
            system_id: "agentline".into(),
            password: "secret12".into(),
            system_type: String::new(),
            interface_version: 0x34,
            addr_ton: 0,
            addr_npi: 0,
            address_range: String::new(),
        }
    }

    fn round_trip(p: &Pdu) {
        let bytes = encode(p).expect("encodes");
        assert_eq!(frame_len(&bytes), Ok(Some(bytes.len())));
        assert_eq!(&decode(&bytes).expect("decodes"), p);
    }

    #[test]
    fn round_trips_every_body() {
        let receipt = SubmitSm {
            esm_class: 0x04,
            registered_delivery: 0,
            validity_period: String::new(),
            short_message:
                b"id:abc123 sub:001 dlvrd:001 submit date:2608171200 done date:2608171201 stat:DELIVRD err:000".to_vec(),
            tlvs: vec![
                Tlv { tag: tag::RECEIPTED_MESSAGE_ID, value: b"abc123\0".to_vec() },
                Tlv { tag: tag::MESSAGE_STATE, value: vec![2] },
                Tlv { tag: 0x1401, value: vec![] }, // vendor-specific tag: kept, not rejected
            ],
            ..submit()
        };
        let cases = [
            pdu(CommandId::BIND_TRANSCEIVER, 0, 1, Body::Bind(bind())),
            pdu(CommandId::BIND_TRANSMITTER, 0, 2, Body::Bind(bind())),
            pdu(CommandId::BIND_RECEIVER, 0, 3, Body::Bind(bind())),
            pdu(
                CommandId::BIND_TRANSCEIVER_RESP,
                0,
                1,
                Body::BindResp {
                    system_id: "SMSC".into(),
                    tlvs: vec![Tlv { tag: tag::SC_INTERFACE_VERSION, value: vec![0x34] }],
                },
            ),
            pdu(
                CommandId::BIND_TRANSMITTER_RESP,
                status::ESME_RINVPASWD,
                2,
                Body::BindResp { system_id: String::new(), tlvs: vec![] },
            ),
            pdu(CommandId::SUBMIT_SM, 0, 4, Body::SubmitSm(submit())),
            pdu(CommandId::SUBMIT_SM_RESP, 0, 4, Body::SubmitSmResp { message_id: "0e999f21".into() }),
            pdu(
                CommandId::SUBMIT_SM_RESP,
                status::ESME_RTHROTTLED,
                5,
                Body::SubmitSmResp { message_id: String::new() },
            ),
            pdu(CommandId::DELIVER_SM, 0, 9, Body::DeliverSm(receipt)),
            pdu(CommandId::DELIVER_SM_RESP, 0, 9, Body::DeliverSmResp),
            pdu(CommandId::ENQUIRE_LINK, 0, 10, Body::EnquireLink),
            pdu(CommandId::ENQUIRE_LINK_RESP, 0, 10, Body::EnquireLinkResp),
            pdu(CommandId::UNBIND, 0, 11, Body::Unbind),
            pdu(CommandId::UNBIND_RESP, 0, 11, Body::UnbindResp),
            pdu(CommandId::GENERIC_NACK, status::ESME_RINVCMDID, 0, Body::GenericNack),
        ];
        for p in &cases {
            round_trip(p);
        }
    }

    #[test]
    fn golden_enquire_link() {
        let wire = [0, 0, 0, 0x10, 0, 0, 0, 0x15, 0, 0, 0, 0, 0, 0, 0, 0x01];
        let p = decode(&wire).expect("decodes");
        assert_eq!(p, pdu(CommandId::ENQUIRE_LINK, 0, 1, Body::EnquireLink));
        assert_eq!(encode(&p).expect("encodes"), wire);
    }

    #[test]
    fn golden_submit_sm() {
        #[rustfmt::skip]
        let wire: Vec<u8> = vec![
            0x00, 0x00, 0x00, 0x42,                   // command_length = 66
            0x00, 0x00, 0x00, 0x04,                   // submit_sm
            0x00, 0x00, 0x00, 0x00,                   // command_status
            0x00, 0x00, 0x00, 0x2A,                   // sequence_number = 42
            0x00,                                     // service_type ""
            0x01, 0x01,                               // source TON international, NPI E.164
            b'1', b'5', b'5', b'5', b'1', b'2', b'3', b'0', b'0', b'0', b'0', 0x00,
            0x01, 0x01,                               // dest TON, NPI
            b'1', b'5', b'5', b'5', b'7', b'6', b'5', b'4', b'3', b'2', b'1', 0x00,
            0x00, 0x00, 0x00,                         // esm_class, protocol_id, priority_flag
            0x00,                                     // schedule_delivery_time ""
            0x00,                                     // validity_period ""
            0x01,                                     // registered_delivery: final receipt
            0x00, 0x00, 0x00,                         // replace_if_present, data_coding, sm_default_msg_id
            0x05, b'h', b'e', b'l', b'l', b'o',       // sm_length, short_message
            0x02, 0x04, 0x00, 0x02, 0x00, 0x07,       // user_message_reference = 7
        ];
        assert_eq!(wire.len(), 0x42);
        let p = decode(&wire).expect("decodes");
        let Body::SubmitSm(sm) = &p.body else { panic!("not a submit_sm: {p:?}") };
        assert_eq!(p.sequence_number, 42);
        assert_eq!(sm.source, Address { ton: 1, npi: 1, addr: "15551230000".into() });
        assert_eq!(sm.dest.addr, "15557654321");
        assert_eq!(sm.registered_delivery, 1);
        assert_eq!(sm.short_message, b"hello");
        assert_eq!(Tlv::find(&sm.tlvs, tag::USER_MESSAGE_REFERENCE), Some(&[0x00, 0x07][..]));
        assert_eq!(Tlv::find(&sm.tlvs, tag::MESSAGE_PAYLOAD), None);
        assert_eq!(encode(&p).expect("encodes"), wire);
    }

    #[test]
    fn frame_len_waits_for_whole_pdus() {
        let link = encode(&pdu(CommandId::ENQUIRE_LINK, 0, 1, Body::EnquireLink)).expect("encodes");
        for n in 0..HEADER_LEN {
            assert_eq!(frame_len(&link[..n]), Ok(None), "prefix of {n} bytes");
        }
        assert_eq!(frame_len(&link), Ok(Some(16)));

        let mut partial = raw(CommandId::SUBMIT_SM.0, 0, 1, &[0; 84]);
        assert_eq!(partial.len(), 100);
        partial.truncate(50);
        assert_eq!(frame_len(&partial), Ok(None));

        let sm = encode(&pdu(CommandId::SUBMIT_SM, 0, 2, Body::SubmitSm(submit()))).expect("encodes");
        let mut stream = link.clone();
        stream.extend_from_slice(&sm);
        assert_eq!(frame_len(&stream), Ok(Some(16)));
        let rest = &stream[16..];
        assert_eq!(frame_len(rest), Ok(Some(sm.len())));
        assert_eq!(decode(&rest[..sm.len()]).expect("decodes").sequence_number, 2);
    }

    #[test]
    fn error_status_responses_may_have_no_body() {
        let p = decode(&raw(CommandId::BIND_TRANSCEIVER_RESP.0, status::ESME_RBINDFAIL, 1, &[])).expect("decodes");
        assert_eq!(p.body, Body::BindResp { system_id: String::new(), tlvs: vec![] });
        let p = decode(&raw(CommandId::SUBMIT_SM_RESP.0, status::ESME_RMSGQFUL, 2, &[])).expect("decodes");
        assert_eq!(p.body, Body::SubmitSmResp { message_id: String::new() });
        // An error with nothing to say is sent as a bare header, as §4.4.2 asks.
        assert_eq!(encode(&p).expect("encodes").len(), HEADER_LEN);
        // With status OK the body is required.
        assert_eq!(
            decode(&raw(CommandId::SUBMIT_SM_RESP.0, 0, 3, &[])),
            Err(PduError::MissingNul { field: "message_id" })
        );
        // deliver_sm_resp's message_id is unused, so a bare header is accepted either way.
        assert_eq!(decode(&raw(CommandId::DELIVER_SM_RESP.0, 0, 4, &[])).expect("decodes").body, Body::DeliverSmResp);
    }

    #[test]
    fn submit_sm_resp_tolerates_v5_tlvs() {
        let body = [b'7', 0, 0x00, 0x1D, 0x00, 0x02, b'x', 0];
        let p = decode(&raw(CommandId::SUBMIT_SM_RESP.0, 0, 1, &body)).expect("decodes");
        assert_eq!(p.body, Body::SubmitSmResp { message_id: "7".into() });
    }

    #[test]
    fn header_peek_keeps_the_sequence_number_of_a_rejected_pdu() {
        let wire = raw(0x0000_0103, 0, 77, &[]); // data_sm, not implemented
        assert_eq!(decode(&wire), Err(PduError::UnknownCommand { id: 0x103 }));
        assert_eq!(Header::peek(&wire).expect("header").sequence_number, 77);
        assert!(CommandId::GENERIC_NACK.is_response());
        assert_eq!(CommandId::SUBMIT_SM.response(), CommandId::SUBMIT_SM_RESP);
        assert_eq!(CommandId::DELIVER_SM.to_string(), "deliver_sm (0x00000005)");
    }

    // One negative test per error variant.

    #[test]
    fn err_command_length_too_small() {
        let wire = [0, 0, 0, 0x08, 0, 0, 0, 0x15];
        assert_eq!(frame_len(&wire), Err(PduError::CommandLengthTooSmall { len: 8 }));
        let mut short = raw(CommandId::ENQUIRE_LINK.0, 0, 1, &[]);
        short[3] = 0x0F;
        assert_eq!(decode(&short), Err(PduError::CommandLengthTooSmall { len: 15 }));
    }

    #[test]
    fn err_command_length_too_large() {
        let wire = [0x00, 0x01, 0x00, 0x01];
        assert_eq!(frame_len(&wire), Err(PduError::CommandLengthTooLarge { len: 0x1_0001, max: MAX_PDU_LEN }));
        let huge = [0xFF; 16];
        assert_eq!(decode(&huge), Err(PduError::CommandLengthTooLarge { len: 0xFFFF_FFFF, max: MAX_PDU_LEN }));
        let big =
            SubmitSm { tlvs: vec![Tlv { tag: tag::MESSAGE_PAYLOAD, value: vec![b'a'; u16::MAX.into()] }], ..submit() };
        assert!(matches!(
            encode(&pdu(CommandId::SUBMIT_SM, 0, 1, Body::SubmitSm(big))),
            Err(PduError::CommandLengthTooLarge { max: MAX_PDU_LEN, .. })
        ));
    }

    #[test]
    fn err_length_mismatch() {
        let mut wire = raw(CommandId::ENQUIRE_LINK.0, 0, 1, &[]);
        wire.push(0);
        assert_eq!(decode(&wire), Err(PduError::LengthMismatch { header: 16, actual: 17 }));
    }

    #[test]
    fn err_unknown_command() {
        assert_eq!(decode(&raw(0x0000_0021, 0, 1, &[])), Err(PduError::UnknownCommand { id: 0x21 }));
        let p = pdu(CommandId(0x21), 0, 1, Body::EnquireLink);
        assert_eq!(encode(&p), Err(PduError::BodyMismatch { command_id: CommandId(0x21) }));
    }

    #[test]
    fn err_body_mismatch() {
        let p = pdu(CommandId::SUBMIT_SM, 0, 1, Body::DeliverSm(submit()));
        assert_eq!(encode(&p), Err(PduError::BodyMismatch { command_id: CommandId::SUBMIT_SM }));
        let p = pdu(CommandId::BIND_TRANSCEIVER_RESP, 0, 1, Body::Bind(bind()));
        assert_eq!(encode(&p), Err(PduError::BodyMismatch { command_id: CommandId::BIND_TRANSCEIVER_RESP }));
    }

    #[test]
    fn err_truncated() {
        // service_type, then source TON, then the PDU ends.
        let wire = raw(CommandId::SUBMIT_SM.0, 0, 1, &[0, 1]);
        assert_eq!(decode(&wire), Err(PduError::Truncated { field: "source_addr_npi" }));
        // sm_length says 5, only 2 octets follow.
        let mut body = vec![0, 1, 1, b'1', 0, 1, 1, b'2', 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 5];
        body.extend_from_slice(b"hi");
        assert_eq!(
            decode(&raw(CommandId::SUBMIT_SM.0, 0, 1, &body)),
            Err(PduError::Truncated { field: "short_message" })
        );
        assert_eq!(decode(&[0, 0, 0, 0x10]), Err(PduError::Truncated { field: "command_id" }));
    }

    #[test]
    fn err_missing_nul() {
        let wire = raw(CommandId::BIND_TRANSCEIVER.0, 0, 1, b"abc");
        assert_eq!(decode(&wire), Err(PduError::MissingNul { field: "system_id" }));
    }

    #[test]
    fn err_field_too_long() {
        // 16 characters + NUL = 17 octets, one more than system_id allows.
        let mut body = b"abcdefghijklmnop\0".to_vec();
        body.extend_from_slice(b"\0\0\x34\0\0\0");
        assert_eq!(
            decode(&raw(CommandId::BIND_TRANSMITTER.0, 0, 1, &body)),
            Err(PduError::FieldTooLong { field: "system_id", max: 16 })
        );
        let long = Bind { password: "123456789".into(), ..bind() };
        assert_eq!(
            encode(&pdu(CommandId::BIND_TRANSMITTER, 0, 1, Body::Bind(long))),
            Err(PduError::FieldTooLong { field: "password", max: 9 })
        );
        let sm = SubmitSm { dest: Address { ton: 1, npi: 1, addr: "1".repeat(21) }, ..submit() };
        assert_eq!(
            encode(&pdu(CommandId::SUBMIT_SM, 0, 1, Body::SubmitSm(sm))),
            Err(PduError::FieldTooLong { field: "destination_addr", max: 21 })
        );
    }

    #[test]
    fn err_not_ascii() {
        let wire = raw(CommandId::BIND_TRANSCEIVER_RESP.0, 0, 1, b"SM\xC3\xA9\0");
        assert_eq!(decode(&wire), Err(PduError::NotAscii { field: "system_id" }));
        let b = Bind { system_id: "agentliné".into(), ..bind() };
        assert_eq!(
            encode(&pdu(CommandId::BIND_TRANSCEIVER, 0, 1, Body::Bind(b))),
            Err(PduError::NotAscii { field: "system_id" })
        );
    }

    #[test]
    fn err_interior_nul() {
        let sm = SubmitSm { source: Address { ton: 5, npi: 0, addr: "Agent\0line".into() }, ..submit() };
        assert_eq!(
            encode(&pdu(CommandId::SUBMIT_SM, 0, 1, Body::SubmitSm(sm))),
            Err(PduError::InteriorNul { field: "source_addr" })
        );
    }

    #[test]
    fn err_bad_time_length() {
        let sm = SubmitSm { validity_period: "1h".into(), ..submit() };
        assert_eq!(
            encode(&pdu(CommandId::SUBMIT_SM, 0, 1, Body::SubmitSm(sm))),
            Err(PduError::BadTimeLength { field: "validity_period", len: 2 })
        );
        let body = [0, 1, 1, b'1', 0, 1, 1, b'2', 0, 0, 0, 0, b'9', 0, 0, 1, 0, 0, 0, 0];
        assert_eq!(
            decode(&raw(CommandId::SUBMIT_SM.0, 0, 1, &body)),
            Err(PduError::BadTimeLength { field: "schedule_delivery_time", len: 1 })
        );
    }

    #[test]
    fn err_short_message_too_long() {
        let sm = SubmitSm { short_message: vec![b'a'; 255], ..submit() };
        assert_eq!(
            encode(&pdu(CommandId::SUBMIT_SM, 0, 1, Body::SubmitSm(sm))),
            Err(PduError::ShortMessageTooLong { len: 255 })
        );
        let mut body = vec![0, 1, 1, b'1', 0, 1, 1, b'2', 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0xFF];
        body.extend_from_slice(&[b'a'; 255]);
        assert_eq!(decode(&raw(CommandId::DELIVER_SM.0, 0, 1, &body)), Err(PduError::ShortMessageTooLong { len: 255 }));
    }

    #[test]
    fn err_tlv_truncated() {
        // message_state TLV declaring 10 octets with 1 present.
        let body = [0, 1, 1, b'1', 0, 1, 1, b'2', 0, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x04, 0x27, 0x00, 0x0A, 0x02];
        assert_eq!(
            decode(&raw(CommandId::DELIVER_SM.0, 0, 1, &body)),
            Err(PduError::TlvTruncated { tag: tag::MESSAGE_STATE })
        );
        // Tag present, length cut in half.
        let body = [b'S', 0, 0x02, 0x10, 0x00];
        assert_eq!(
            decode(&raw(CommandId::BIND_TRANSCEIVER_RESP.0, 0, 1, &body)),
            Err(PduError::TlvTruncated { tag: tag::SC_INTERFACE_VERSION })
        );
    }

    #[test]
    fn err_tlv_too_long() {
        let sm = SubmitSm {
            short_message: vec![],
            tlvs: vec![Tlv { tag: tag::MESSAGE_PAYLOAD, value: vec![b'a'; 70_000] }],
            ..submit()
        };
        assert_eq!(
            encode(&pdu(CommandId::SUBMIT_SM, 0, 1, Body::SubmitSm(sm))),
            Err(PduError::TlvTooLong { tag: tag::MESSAGE_PAYLOAD, len: 70_000 })
        );
    }

    #[test]
    fn err_trailing_bytes() {
        let wire = raw(CommandId::ENQUIRE_LINK.0, 0, 1, &[0]);
        assert_eq!(decode(&wire), Err(PduError::TrailingBytes { count: 1 }));
        let mut body = b"sys\0pw\0\0\x34\0\0\0".to_vec();
        body.extend_from_slice(&[1, 2]);
        assert_eq!(decode(&raw(CommandId::BIND_RECEIVER.0, 0, 1, &body)), Err(PduError::TrailingBytes { count: 2 }));
    }

    /// xorshift64*: deterministic, no dependency, good enough to shake a parser.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % u64::try_from(n).expect("small")).expect("small")
        }

        fn byte(&mut self) -> u8 {
            self.next().to_be_bytes()[0]
        }
    }

    /// What must hold for any input: no panic, framing stays in bounds, and anything that decodes
    /// re-encodes (within the size bound) to something that decodes to the same PDU.
    fn check(input: &[u8]) {
        if let Ok(Some(n)) = frame_len(input) {
            assert!((HEADER_LEN..=input.len().min(MAX_PDU_LEN)).contains(&n));
        }
        if let Ok(p) = decode(input) {
            let again = encode(&p).expect("a decoded PDU re-encodes");
            assert_eq!(decode(&again).expect("re-encoded PDU decodes"), p);
        }
    }

    #[test]
    fn pseudo_fuzz_never_panics() {
        let seeds: Vec<Vec<u8>> = [
            pdu(CommandId::SUBMIT_SM, 0, 1, Body::SubmitSm(submit())),
            pdu(CommandId::BIND_TRANSCEIVER, 0, 2, Body::Bind(bind())),
            pdu(
                CommandId::BIND_TRANSCEIVER_RESP,
                0,
                2,
                Body::BindResp {
                    system_id: "SMSC".into(),
                    tlvs: vec![Tlv { tag: tag::SC_INTERFACE_VERSION, value: vec![0x34] }],
                },
            ),
            pdu(CommandId::SUBMIT_SM_RESP, 0, 1, Body::SubmitSmResp { message_id: "abc".into() }),
            pdu(CommandId::DELIVER_SM_RESP, 0, 3, Body::DeliverSmResp),
            pdu(CommandId::ENQUIRE_LINK, 0, 4, Body::EnquireLink),
        ]
        .iter()
        .map(|p| encode(p).expect("seed encodes"))
        .collect();
        let ids = [0x1, 0x2, 0x4, 0x5, 0x6, 0x9, 0x15, 0x8000_0000, 0x8000_0001, 0x8000_0004, 0x8000_0005, 0x8000_0009];

        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut decoded = 0usize;
        for i in 0..20_000 {
            let input: Vec<u8> = match i % 4 {
                // Pure noise.
                0 => (0..rng.below(300)).map(|_| rng.byte()).collect(),
                // Noise behind a plausible header, so body parsers see it.
                1 => {
                    let body: Vec<u8> = (0..rng.below(284)).map(|_| rng.byte()).collect();
                    let status = if rng.below(2) == 0 { 0 } else { status::ESME_RSYSERR };
                    raw(ids[rng.below(ids.len())], status, 1, &body)
                }
                // A valid PDU with a few flipped bytes, command_length left as is.
                2 => {
                    let mut v = seeds[rng.below(seeds.len())].clone();
                    for _ in 0..=rng.below(4) {
                        let at = rng.below(v.len());
                        v[at] ^= rng.byte() | 1;
                    }
                    v
                }
                // A valid PDU truncated or extended, with command_length fixed up to match.
                _ => {
                    let mut v = seeds[rng.below(seeds.len())].clone();
                    if rng.below(2) == 0 {
                        v.truncate(HEADER_LEN + rng.below(v.len() - HEADER_LEN + 1));
                    } else {
                        v.extend((0..rng.below(40)).map(|_| rng.byte()));
                    }
                    let len = u32::try_from(v.len()).expect("small");
                    v[..4].copy_from_slice(&len.to_be_bytes());
                    v
                }
            };
            check(&input);
            for cut in [0, input.len() / 2, input.len().saturating_sub(1)] {
                check(&input[..cut]);
            }
            decoded += usize::from(decode(&input).is_ok());
        }
        // The generator must reach the success path too, or the property above proves nothing.
        assert!(decoded > 500, "only {decoded} inputs decoded");
    }
}
