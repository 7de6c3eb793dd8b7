//! Builders for what a UA sends: requests from a [`RequestHead`] (§8.1.1), CANCEL (§9.1),
//! ACK for a non-2xx (§17.1.1.3) and for a 2xx (§13.2.2.4), responses (§8.2.6), and the
//! standard reason phrases (§21). Branches, tags and Call-IDs are passed in.

use super::*;

/// What a UA puts in a request it originates (§8.1.1). The caller (later the transaction and
/// dialog layers) supplies the branch, tags, Call-ID and CSeq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// The Request-URI: the remote target in a dialog.
    pub uri: Uri,
    /// Our Via, with a fresh branch starting with [`BRANCH_MAGIC`].
    pub via: Via,
    /// Us, with our tag.
    pub from: NameAddr,
    /// The peer, with its tag inside a dialog.
    pub to: NameAddr,
    pub call_id: String,
    pub cseq: u32,
    pub max_forwards: u8,
    /// The route set, in the order the request visits it (one Route line each).
    pub route: Vec<NameAddr>,
    pub contact: Option<NameAddr>,
}

impl Message {
    /// A request with the mandatory headers of §8.1.1 in the usual order: Via, Max-Forwards,
    /// Route, From, To, Call-ID, CSeq, Contact. No body.
    pub fn request(method: Method, head: &RequestHead) -> Result<Self, SipError> {
        if !head.via.branch().is_some_and(|b| b.starts_with(BRANCH_MAGIC) && b.len() > BRANCH_MAGIC.len()) {
            return Err(SipError::Unsendable { what: "a Via whose branch does not start with z9hG4bK" });
        }
        if head.from.tag().is_none() {
            return Err(SipError::Unsendable { what: "a From without a tag" });
        }
        if head.call_id.is_empty() || head.call_id.contains(char::is_whitespace) {
            return Err(SipError::Unsendable { what: "an empty Call-ID or one with whitespace" });
        }
        if head.cseq >= 1 << 31 {
            return Err(SipError::Unsendable { what: "a CSeq of 2^31 or more" });
        }
        let mut message = Self::new_request(method.clone(), head.uri.clone())?;
        let headers = &mut message.headers;
        headers.push("Via", &head.via.to_string())?;
        headers.push("Max-Forwards", &head.max_forwards.to_string())?;
        for route in &head.route {
            headers.push("Route", &route.to_string())?;
        }
        headers.push("From", &head.from.to_string())?;
        headers.push("To", &head.to.to_string())?;
        headers.push("Call-ID", &head.call_id)?;
        headers.push("CSeq", &format!("{} {method}", head.cseq))?;
        if let Some(contact) = &head.contact {
            headers.push("Contact", &contact.to_string())?;
        }
        Ok(message)
    }

    /// An INVITE; `sdp` is the offer, or `None` for a late offer (the answer's 200 carries it).
    pub fn invite(head: &RequestHead, sdp: Option<Vec<u8>>) -> Result<Self, SipError> {
        if head.contact.is_none() {
            return Err(SipError::Unsendable { what: "an INVITE without a Contact" });
        }
        let mut message = Self::request(Method::Invite, head)?;
        if let Some(sdp) = sdp {
            message.set_body("application/sdp", sdp)?;
        }
        Ok(message)
    }

    /// A BYE inside a dialog: the To must carry the peer's tag.
    pub fn bye(head: &RequestHead) -> Result<Self, SipError> {
        if head.to.tag().is_none() {
            return Err(SipError::Unsendable { what: "a BYE without the peer's To tag" });
        }
        Self::request(Method::Bye, head)
    }

    pub fn options(head: &RequestHead) -> Result<Self, SipError> {
        Self::request(Method::Options, head)
    }

    /// A REGISTER binding `head.contact` for `expires_secs` (0 removes the binding).
    pub fn register(head: &RequestHead, expires_secs: u32) -> Result<Self, SipError> {
        if head.contact.is_none() {
            return Err(SipError::Unsendable { what: "a REGISTER without a Contact" });
        }
        let mut message = Self::request(Method::Register, head)?;
        message.headers.push("Expires", &expires_secs.to_string())?;
        Ok(message)
    }

    /// The CANCEL of a pending INVITE (§9.1): same Request-URI, Call-ID, From, To and CSeq number,
    /// one Via equal to the INVITE's top Via (same branch), the INVITE's Route set.
    pub fn cancel(invite: &Self) -> Result<Self, SipError> {
        let number = invite.invite_cseq()?;
        let mut message = Self::new_request(Method::Cancel, invite.request_uri_or_err()?.clone())?;
        message.copy_top_via(invite)?;
        message.headers.push("Max-Forwards", &DEFAULT_MAX_FORWARDS.to_string())?;
        message.copy_all(invite, "Route")?;
        message.copy_one(invite, "From")?;
        message.copy_one(invite, "To")?;
        message.copy_one(invite, "Call-ID")?;
        message.headers.push("CSeq", &format!("{number} CANCEL"))?;
        Ok(message)
    }

    /// The ACK for a 3xx-6xx final response to `invite` (§17.1.1.3): part of the INVITE
    /// transaction, so the same branch, and the To of the response (with its tag).
    pub fn ack_non_2xx(invite: &Self, response: &Self) -> Result<Self, SipError> {
        let number = invite.invite_cseq()?;
        if response.status_code().is_none_or(|code| code < 300) {
            return Err(SipError::WrongMessage { expected: "a 3xx-6xx response" });
        }
        let mut message = Self::new_request(Method::Ack, invite.request_uri_or_err()?.clone())?;
        message.copy_top_via(invite)?;
        message.headers.push("Max-Forwards", &DEFAULT_MAX_FORWARDS.to_string())?;
        message.copy_all(invite, "Route")?;
        message.copy_one(invite, "From")?;
        message.copy_one(response, "To")?;
        message.copy_one(invite, "Call-ID")?;
        message.headers.push("CSeq", &format!("{number} ACK"))?;
        Ok(message)
    }

    /// The ACK for a 2xx to `invite` (§13.2.2.4): a new transaction (so `via` carries a new
    /// branch) sent to the 2xx's Contact through the route set, which is the 2xx's
    /// Record-Route reversed. It carries the INVITE's credentials, and `body` when the INVITE
    /// had no offer (the answer then goes here). Loose routing is assumed (every proxy in the
    /// route set puts `;lr` in its Record-Route, as RFC 3261 proxies do); the strict-routing
    /// rewrite of §12.2.1.1 is not done.
    pub fn ack_2xx(invite: &Self, response: &Self, via: &Via, body: Option<Vec<u8>>) -> Result<Self, SipError> {
        let number = invite.invite_cseq()?;
        if !response.status_code().is_some_and(|code| (200..300).contains(&code)) {
            return Err(SipError::WrongMessage { expected: "a 2xx response" });
        }
        let target = response.contact()?.into_iter().next().ok_or(SipError::MissingHeader { name: "Contact" })?;
        let mut message = Self::new_request(Method::Ack, target.uri)?;
        message.headers.push("Via", &via.to_string())?;
        message.headers.push("Max-Forwards", &DEFAULT_MAX_FORWARDS.to_string())?;
        for route in response.headers.list("Record-Route").into_iter().rev() {
            message.headers.push("Route", route)?;
        }
        message.copy_one(invite, "From")?;
        message.copy_one(response, "To")?;
        message.copy_one(invite, "Call-ID")?;
        message.headers.push("CSeq", &format!("{number} ACK"))?;
        message.copy_all(invite, "Authorization")?;
        message.copy_all(invite, "Proxy-Authorization")?;
        if let Some(body) = body {
            message.set_body("application/sdp", body)?;
        }
        Ok(message)
    }

    /// A response to `request` (§8.2.6.2): its Via lines, From, To, Call-ID and CSeq copied;
    /// `to_tag` added to the To unless it already has one (pass `None` for a 100 Trying);
    /// Record-Route copied into the 101-299 responses to an INVITE, which create a dialog
    /// (§12.1.1). Headers the response needs beyond these (Contact, …) are the caller's.
    pub fn response(request: &Self, code: u16, reason: &str, to_tag: Option<&str>) -> Result<Self, SipError> {
        let Some(method) = request.method() else {
            return Err(SipError::WrongMessage { expected: "a request" });
        };
        let mut message = Self::new_response(code, reason)?;
        if request.headers.get("Via").is_none() {
            return Err(SipError::MissingHeader { name: "Via" });
        }
        message.copy_all(request, "Via")?;
        message.copy_one(request, "From")?;
        let to = request.required("To")?;
        match to_tag {
            Some(tag) if request.to()?.tag().is_none() => {
                if tag.is_empty() || !tag.bytes().all(is_token_byte) {
                    return Err(SipError::Unsendable { what: "a To tag that is not a token" });
                }
                // Appending keeps the peer's exact To; `;tag` is a header parameter in both the
                // name-addr and the addr-spec form (§20.10).
                message.headers.push("To", &format!("{to};tag={tag}"))?;
            }
            _ => message.headers.push("To", to)?,
        }
        message.copy_one(request, "Call-ID")?;
        message.copy_one(request, "CSeq")?;
        if *method == Method::Invite && (101..300).contains(&code) {
            message.copy_all(request, "Record-Route")?;
        }
        Ok(message)
    }

    fn invite_cseq(&self) -> Result<u32, SipError> {
        if self.method() != Some(&Method::Invite) {
            return Err(SipError::WrongMessage { expected: "an INVITE request" });
        }
        Ok(self.cseq()?.0)
    }

    fn request_uri_or_err(&self) -> Result<&Uri, SipError> {
        self.request_uri().ok_or(SipError::WrongMessage { expected: "a request" })
    }

    fn copy_one(&mut self, from: &Self, name: &'static str) -> Result<(), SipError> {
        let value = from.required(name)?;
        self.headers.push(name, value)
    }

    fn copy_all(&mut self, from: &Self, name: &'static str) -> Result<(), SipError> {
        for value in from.headers.get_all(name) {
            self.headers.push(name, value)?;
        }
        Ok(())
    }

    fn copy_top_via(&mut self, from: &Self) -> Result<(), SipError> {
        let top = from.headers.list("Via").into_iter().next().ok_or(SipError::MissingHeader { name: "Via" })?;
        self.headers.push("Via", top)
    }
}

pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        422 => "Session Interval Too Small",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => "",
    }
}
