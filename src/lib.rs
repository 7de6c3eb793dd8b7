//! agentline: phone numbers an autonomous agent buys for itself.
//!
//! This file is the module map and nothing else. Dependencies point down the layer table,
//! never up; `tests/layering.rs` reads the table below and fails the test suite when a
//! module imports (`use crate::…` or a `crate::…` path) from a layer above its own. A module
//! may import from its own layer and any layer below.
//!
//! | layer    | modules                                                 |
//! |----------|---------------------------------------------------------|
//! | leaf     | config, secret, future, ids, clock, e164, error, metrics, tasks, tls, test_rng |
//! | media    | media                                                   |
//! | codecs   | wallet, telco, payments                                 |
//! | store    | store, events                                           |
//! | services | subscriptions, sms, voice                               |
//! | edge     | api                                                     |
//! | root     | app                                                     |
//!
//! - leaf: plain types and helpers that import nothing of ours above them: the serde
//!   [`config`], [`secret::Secret`], [`future::BoxFuture`], the [`ids`], the [`clock`], [`e164`] numbers,
//!   the [`error`] envelope, [`metrics`], and [`tasks::TaskSet`], the one owner of spawned tasks.
//! - media: [`media`], pure audio (framing, G.711/G.722, resampling, jitter and playout);
//!   below the codecs because `telco`'s RTP and SDP carry its [`media::Codec`].
//! - codecs: [`wallet`] (pure Ethereum identity), [`telco`] (the phone network behind traits:
//!   SMPP, SIP, RTP and [`telco::sim`], the built-in simulator), [`payments`] (x402 wire types,
//!   pure verification, settlement backends).
//! - store: [`store`] (every SQL statement), [`events`] (in-process wake-ups).
//! - services: [`subscriptions`], [`sms`], [`voice`]: every rule lives in one of them.
//! - edge: [`api`]: REST, MCP and sockets; one service call per request, no rules.
//! - root: [`app`]: configuration -> each part's settings, build, serve, stop.
//!
//! [`App::build`] wires them from a [`Config`]; `main` and the integration tests both use it.

pub mod api;
pub mod app;
pub mod clock;
pub mod config;
pub mod e164;
pub mod error;
pub mod events;
pub mod future;
pub mod ids;
pub mod media;
pub mod metrics;
pub mod payments;
pub mod secret;
pub mod sms;
pub mod store;
pub mod subscriptions;
pub mod tasks;
pub mod telco;
#[cfg(test)]
mod test_rng;
pub mod tls;
pub mod voice;
pub mod wallet;

pub use app::{App, StartError};
pub use config::Config;
