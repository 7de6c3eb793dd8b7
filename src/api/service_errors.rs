//! The one place where each service's typed refusal becomes a wire error: REST handlers,
//! MCP tools and the socket handshakes all convert through these `From` impls, so a rule
//! refuses with the same status, code and message on every edge. Internal failures go through
//! [`ApiError::internal`]: logged with their cause, answered generically.

use axum::http::StatusCode;

use crate::error::{ApiError, ErrorCode};
use crate::sms::{SendError, SmsError};
use crate::subscriptions::{AuthError, RecoveryError, SubscriptionError, WaitlistError};
use crate::voice::VoiceError;

const WALLET_WARNING: &str = "Your wallet address is your account identity. If you lose access to this wallet, you \
    cannot recover your subscription. Do not use ephemeral wallets.";

/// 503 `pool_exhausted`, with the contract's hints.
pub fn pool_exhausted() -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::PoolExhausted, "No phone numbers currently available.")
        .with_extra("check_availability", "/sms/availability".into())
        .with_extra("join_waitlist", "/sms/waitlist".into())
        .with_extra("available", 0.into())
}

fn no_active_subscription(message: &str) -> ApiError {
    ApiError::new(StatusCode::PAYMENT_REQUIRED, ErrorCode::NoActiveSubscription, message)
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Unauthorized => ApiError::unauthorized(),
            AuthError::Corrupt { .. } | AuthError::Store(_) => ApiError::internal(&err),
        }
    }
}

impl From<WaitlistError> for ApiError {
    fn from(err: WaitlistError) -> Self {
        match err {
            WaitlistError::InvalidEmail => {
                ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidEmail, err.to_string())
            }
            WaitlistError::Store(e) => ApiError::internal(&e),
        }
    }
}

impl From<SubscriptionError> for ApiError {
    fn from(err: SubscriptionError) -> Self {
        match err {
            SubscriptionError::PoolExhausted => pool_exhausted(),
            SubscriptionError::NotE164(_) => ApiError::invalid_request(err.to_string()),
            SubscriptionError::Store(e) => ApiError::internal(&e),
        }
    }
}

impl From<RecoveryError> for ApiError {
    fn from(err: RecoveryError) -> Self {
        match err {
            RecoveryError::BadRequest(m) => ApiError::invalid_request(m),
            RecoveryError::BadNonce => ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthorized,
                "nonce unknown, already used, or expired; request a new one",
            ),
            RecoveryError::SignatureMismatch => ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::SignatureMismatch,
                "signature did not recover the claimed wallet",
            ),
            RecoveryError::NoSubscription => {
                no_active_subscription("no active subscription for this wallet; subscribe with POST /sms/subscribe")
                    .with_extra("warning", WALLET_WARNING.into())
            }
            RecoveryError::Store(e) => ApiError::internal(&e),
        }
    }
}

impl From<SmsError> for ApiError {
    fn from(err: SmsError) -> Self {
        match err {
            SmsError::BadDirection | SmsError::BadTimeRange | SmsError::BadSender => {
                ApiError::invalid_request(err.to_string())
            }
            SmsError::Store(e) => ApiError::internal(&e),
        }
    }
}

impl From<SendError> for ApiError {
    fn from(err: SendError) -> Self {
        match err {
            SendError::BadDestination(_) | SendError::EmptyBody | SendError::BodyTooLong { .. } => {
                ApiError::invalid_request(err.to_string())
            }
            SendError::NotActive => no_active_subscription(&err.to_string()),
            SendError::Store(e) => ApiError::internal(&e),
        }
    }
}

impl From<VoiceError> for ApiError {
    fn from(err: VoiceError) -> Self {
        match err {
            VoiceError::BadNumber { .. }
            | VoiceError::SelfCall
            | VoiceError::BadDirection
            | VoiceError::BadSipUri(_)
            | VoiceError::SipUnsupported => ApiError::invalid_request(err.to_string()),
            VoiceError::NotActive => no_active_subscription(&err.to_string()),
            VoiceError::Forbidden => {
                ApiError::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, "phone_number not owned by this token")
            }
            VoiceError::Busy => ApiError::new(StatusCode::CONFLICT, ErrorCode::Conflict, "number is busy"),
            VoiceError::AlreadyStreaming => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::Conflict, "this call's stream is already open")
            }
            VoiceError::Unavailable => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::PhoneNodeUnavailable,
                "the voice network is unavailable; retry shortly",
            ),
            VoiceError::NotFound => ApiError::not_found("no such call, or it has ended"),
            VoiceError::Store(e) => ApiError::internal(&e),
        }
    }
}
