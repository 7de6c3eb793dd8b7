//! [`BoxFuture`]: the return type of object-safe async trait methods. Leaf: imports nothing
//! of ours, so every layer may name it.

use std::future::Future;
use std::pin::Pin;

/// A boxed `Send` future: the return type of object-safe async trait methods
/// (`SmsNetwork::submit`, `Settlement::settle`, `VoiceNetwork::dial`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
