//! agentline: phone numbers an autonomous agent buys for itself.
//!
//! Module map (dependencies point down, never up):
//!
//! - [`api`]: HTTP edge (axum): extractors, handlers, routing; no business rules.
//! - [`subscriptions`], [`sms`], [`voice`]: the domain services.
//! - [`store`] (every SQL statement), [`telco`] (the phone network behind traits; [`telco::sim`]
//!   is the built-in simulator), [`events`] (in-process wake-ups), [`wallet`] (pure Ethereum
//!   identity), [`metrics`].
//! - Leaves: [`config`], [`error`], [`e164`], [`clock`].
//!
//! [`App::build`] wires them from a [`Config`]; `main` and the integration tests both use it.

pub mod api;
pub mod clock;
pub mod config;
pub mod e164;
pub mod error;
pub mod events;
pub mod media;
pub mod metrics;
pub mod payments;
pub mod sms;
pub mod store;
pub mod subscriptions;
pub mod telco;
#[cfg(test)]
mod test_rng;
pub mod voice;
pub mod wallet;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use config::Config;

/// A boxed `Send` future: the return type of object-safe async trait methods
/// (`SmsNetwork::submit`, `Settlement::settle`).
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>;

use crate::events::InboxHub;
use crate::metrics::Metrics;
use crate::sms::{SmsService, SmsTasks};
use crate::store::{MessageWriter, Store};
use crate::subscriptions::SubscriptionService;
use crate::telco::sim::SimNetwork;

/// How long shutdown waits for background tasks to finish their queued work.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Subscriptions(#[from] subscriptions::SubscriptionError),
    #[error("payments: {0}")]
    Payments(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("serving HTTP: {0}")]
    Io(#[from] std::io::Error),
}

/// The payment terms and the settlement backend the configuration selects.
pub fn payments_setup(config: &Config) -> Result<subscriptions::PaymentsSetup, StartError> {
    use payments::settlement::{Chain, Facilitator, Sandbox};
    let terms = config.payment_terms().map_err(StartError::Payments)?;
    let receipt_timeout = Duration::from_secs(config.receipt_timeout_secs);
    let settlement: Arc<dyn payments::Settlement> = match config.settlement.as_str() {
        "chain" => {
            let (Some(rpc), Some(key)) = (&config.rpc_url, &config.relayer_key) else {
                return Err(StartError::Payments("chain settlement needs rpc_url and relayer_key".to_owned()));
            };
            Arc::new(
                Chain::new(rpc, key.expose(), terms.asset, receipt_timeout)
                    .map_err(|e| StartError::Payments(e.to_string()))?,
            )
        }
        "facilitator" => {
            let Some(url) = &config.facilitator_url else {
                return Err(StartError::Payments("facilitator settlement needs facilitator_url".to_owned()));
            };
            Arc::new(Facilitator::new(url, terms.clone(), receipt_timeout))
        }
        _ => Arc::new(Sandbox),
    };
    let contract_wallets = config
        .rpc_url
        .as_deref()
        .and_then(|url| payments::contract_wallets::ContractWallets::new(url, receipt_timeout))
        .map(Arc::new);
    Ok(subscriptions::PaymentsSetup { terms, settlement, contract_wallets })
}

/// The SMPP binds `smpp_url` and `[smpp]` describe, or `None` for the simulated network.
pub fn smpp_setup(config: &Config) -> Result<Option<telco::smpp::SmppSettings>, StartError> {
    use telco::smpp::{BindKind, SessionSettings, SmppSettings};
    let Some(url) = &config.smpp_url else { return Ok(None) };
    let target = config::SmppTarget::parse(url.expose()).map_err(StartError::Config)?;
    let c = &config.smpp;
    let session = |bind| SessionSettings {
        addr: target.addr.clone(),
        system_id: target.system_id.clone(),
        password: target.password.clone(),
        system_type: c.system_type.clone(),
        bind,
        window: c.window as usize,
        response_timeout: Duration::from_millis(c.response_timeout_ms),
        enquire_link_interval: Duration::from_secs(c.enquire_link_secs),
        reconnect_min: Duration::from_secs(1).min(Duration::from_secs(c.reconnect_max_secs)),
        reconnect_max: Duration::from_secs(c.reconnect_max_secs),
    };
    let kinds: &[BindKind] =
        if c.bind_mode == "split" { &[BindKind::Transmitter, BindKind::Receiver] } else { &[BindKind::Transceiver] };
    let sessions = (0..c.sessions).flat_map(|_| kinds.iter().map(|&k| session(k))).collect();
    Ok(Some(SmppSettings {
        sessions,
        throughput: (c.throughput > 0).then_some(c.throughput),
        throttle_pause: Duration::from_millis(c.throttle_pause_ms),
    }))
}

/// The SIP trunk `[sip]` and `[rtp]` describe, or `None` for the simulated voice network.
pub fn sip_setup(config: &Config) -> Result<Option<telco::sip::ua::SipSettings>, StartError> {
    let Some(trunk) = &config.sip.trunk else { return Ok(None) };
    let trunk = config::SipTrunk::parse(trunk.expose()).map_err(StartError::Config)?;
    let c = &config.sip;
    let listen = c.listen.parse().map_err(|_| StartError::Config("sip.listen must be IP:PORT".to_owned()))?;
    let (public_ip, public_port) = match &c.public_addr {
        None => (None, None),
        Some(text) => match text.parse::<std::net::SocketAddr>() {
            Ok(addr) => (Some(addr.ip()), Some(addr.port())),
            Err(_) => {
                (Some(text.parse().map_err(|_| StartError::Config("sip.public_addr must be an IP".to_owned()))?), None)
            }
        },
    };
    let rtp_ports = config::parse_port_range(&config.rtp.ports).map_err(StartError::Config)?;
    Ok(Some(telco::sip::ua::SipSettings {
        trunk_host: trunk.host,
        trunk_port: trunk.port,
        tcp: trunk.tcp,
        user: trunk.user,
        password: trunk.password.expose().to_owned(),
        listen,
        public_ip,
        public_port,
        register: c.register,
        register_expires: Duration::from_secs(c.register_expires_secs),
        session_expires: Duration::from_secs(c.session_expires_secs),
        invite_timeout: Duration::from_secs(c.invite_timeout_secs),
        rtp_ports,
        codecs: config::parse_codecs(&c.codecs).map_err(StartError::Config)?,
        jitter_frames: (config.rtp.jitter_ms / 20) as usize,
        allow_private_endpoints: c.allow_private_endpoints,
        carrier_networks: config::parse_networks(&c.carrier_networks).map_err(StartError::Config)?,
        timers: telco::sip::transaction::Timers::default(),
    }))
}

/// The assembled service: state, router and the background tasks it owns.
pub struct App {
    state: api::AppState,
    shutdown: watch::Sender<bool>,
    sms_tasks: SmsTasks,
    writer_task: JoinHandle<()>,
    /// Stops the network's own tasks (SMPP binds), once the SMS service has drained.
    network_stop: watch::Sender<bool>,
    network_tasks: Vec<JoinHandle<()>>,
    voice_task: JoinHandle<()>,
    recycler: JoinHandle<()>,
}

impl App {
    /// Connects and migrates the database, seeds the simulator's pool on first start, and
    /// starts the background tasks.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let store = Store::connect(&config.database_url, config.database.max_connections).await?;
        store.migrate().await?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let metrics = Arc::new(Metrics::default());
        let hub = Arc::new(InboxHub::default());
        let (writer, writer_task) = MessageWriter::spawn(store.clone(), metrics.writer.clone());

        let subscriptions = SubscriptionService::new(
            store.clone(),
            config.subscriptions.clone(),
            payments_setup(&config)?,
            &config.service_name,
        );
        match subscriptions.reconcile().await {
            Ok((0, 0)) => {}
            Ok((committed, failed)) => tracing::info!(committed, failed, "payments reconciled at start"),
            Err(err) => tracing::warn!(error = %err, "payment reconciliation at start failed"),
        }
        // Numbers whose grace or quarantine ended while the service was down are settled before
        // the first request; afterwards the recycler does it every minute.
        match subscriptions.recycle().await {
            Ok((0, 0)) => {}
            Ok((released, freed)) => tracing::info!(released, freed, "numbers recycled at start"),
            Err(err) => tracing::warn!(error = %err, "number recycling at start failed"),
        }
        if subscriptions.settlement_name() == "none" {
            tracing::info!("sandbox payments: signatures fully verified, nothing is settled (settlement = none)");
        }
        let smpp = smpp_setup(&config)?;
        let sip = sip_setup(&config)?;
        // No carrier configured: the simulated network, with its fictional pool. With a carrier
        // (for SMS or for voice) the pool holds only the numbers the operator imported.
        if smpp.is_none() && sip.is_none() {
            let seeded = subscriptions
                .seed_if_empty(&telco::sim::seed_numbers(&config.sim.number_prefix, config.sim.seed_numbers))
                .await?;
            if seeded > 0 {
                tracing::info!(count = seeded, "seeded the pool with simulator numbers");
            }
        }
        subscriptions.load_directory().await?;
        let (events_tx, events_rx) = mpsc::channel(telco::SMS_EVENT_QUEUE);
        let (network_stop, network_stop_rx) = watch::channel(false);
        let (network, mut network_tasks): (Arc<dyn telco::SmsNetwork>, Vec<JoinHandle<()>>) = match smpp {
            Some(settings) => {
                tracing::info!(binds = settings.sessions.len(), "SMS over SMPP");
                let (network, tasks) = telco::smpp::SmppNetwork::start(settings, events_tx, network_stop_rx);
                (network, tasks)
            }
            None => {
                let directory = subscriptions.directory();
                let on_net: telco::sim::OnNet = Arc::new(move |n| directory.contains(n.as_str()));
                let delay = Duration::from_millis(config.sim.delivery_delay_ms);
                let (sim, worker) = SimNetwork::new(events_tx, on_net, delay);
                (Arc::new(sim), vec![worker])
            }
        };
        let voice_writer = writer.clone();
        let (sms, sms_tasks) = SmsService::start(
            sms::SmsSettings { max_body_chars: config.limits.max_sms_chars },
            store.clone(),
            writer,
            network,
            events_rx,
            hub,
            metrics.clone(),
            shutdown_rx.clone(),
        );

        // Voice: over the SIP trunk when one is configured, else the simulated network.
        match voice::VoiceService::settle_interrupted(&store).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(count = n, "calls interrupted by the last stop marked failed"),
            Err(err) => tracing::warn!(error = %err, "settling interrupted calls failed"),
        }
        if let Some(dir) = &config.voice.recordings_dir {
            std::fs::create_dir_all(dir).map_err(|e| StartError::Config(format!("voice.recordings_dir {dir}: {e}")))?;
        }
        let public_url = config.public_base_url();
        let (incoming_tx, incoming_rx) = mpsc::channel(64);
        let directory = subscriptions.directory();
        let on_net: telco::sim::OnNet = Arc::new(move |n| directory.contains(n.as_str()));
        let voice_network: Arc<dyn telco::voice::VoiceNetwork> = match sip {
            Some(settings) => {
                // The SIP core outlives the calls: it stops with the networks, after voice drained.
                let (sip, tasks) =
                    telco::sip::ua::SipNetwork::start(settings, incoming_tx, on_net, network_stop.subscribe())
                        .await
                        .map_err(|e| StartError::Config(format!("SIP trunk: {e}")))?;
                tracing::info!(listen = %sip.local_addr(), "voice over the SIP trunk");
                network_tasks.extend(tasks);
                Arc::new(sip)
            }
            None => Arc::new(telco::sim::voice::SimVoice::new(
                incoming_tx,
                on_net,
                Duration::from_millis(config.sim.answer_delay_ms),
            )),
        };
        let (voice, voice_task) = voice::VoiceService::start(
            store.clone(),
            voice_writer,
            voice_network,
            incoming_rx,
            metrics.clone(),
            voice::VoiceSettings {
                ring_timeout: Duration::from_secs(config.voice.ring_timeout_secs),
                recordings: config.voice.recordings_dir.as_ref().map(std::path::PathBuf::from),
            },
            &public_url,
            shutdown_rx.clone(),
        );
        let recycler = tokio::spawn(subscriptions.clone().run_recycler(shutdown_rx));

        let docs = api::render_documents(&public_url, &config.service_name, subscriptions.terms());
        let state = api::AppState::new(api::AppStateInner {
            store,
            subscriptions,
            sms,
            voice,
            metrics,
            started: Instant::now(),
            admin_key_hash: config.admin_key.as_ref().map(|k| Sha256::digest(k.expose().as_bytes()).into()),
            mcp_shutdown: tokio_util::sync::CancellationToken::new(),
            public_host: public_url.split_once("://").map(|(_, rest)| rest.trim_end_matches('/').to_owned()),
            openapi: docs.openapi.clone().into(),
            docs: Arc::new(docs),
            llms_txt: api::render_llms_txt(&public_url, &config.service_name).into(),
            limits: Arc::new(config.limits.clone()),
        });
        Ok(Self { state, shutdown, sms_tasks, writer_task, network_stop, network_tasks, voice_task, recycler })
    }

    pub fn router(&self) -> axum::Router {
        api::router(self.state.clone())
    }

    /// Serves HTTP on `listener` until `signal` completes, then shuts down gracefully: open
    /// long-polls are answered, queued writes are committed, background tasks are joined.
    pub async fn serve(
        self,
        listener: TcpListener,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let addr = listener.local_addr()?;
        tracing::info!("listening on http://{addr}");
        let shutdown = self.shutdown.clone();
        let mcp = self.state.mcp_shutdown.clone();
        // No Nagle: streamed answers (MCP's SSE events, WebSocket audio frames) are many small
        // writes, and Nagle + delayed ACK would hold each one back ~40 ms.
        use axum::serve::ListenerExt;
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, self.router())
            .with_graceful_shutdown(async move {
                signal.await;
                tracing::info!("shutting down");
                let _ = shutdown.send(true);
                mcp.cancel();
            })
            .await?;
        self.stop().await;
        Ok(())
    }

    /// Signals shutdown and joins every background task.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let Self { state, sms_tasks, writer_task, network_stop, network_tasks, voice_task, recycler, .. } = self;
        let store = state.store.clone();
        let voice = state.voice.clone();
        drop(state);
        let joined = tokio::time::timeout(DRAIN_TIMEOUT, async {
            let _ = voice_task.await;
            // Calls end on the shutdown signal and record how; let them.
            voice.drain().await;
            // The voice service holds a writer handle: the writer ends once every handle is gone.
            drop(voice);
            sms_tasks.join().await;
            // Submissions and inbound commits are done: now the binds may unbind.
            let _ = network_stop.send(true);
            for task in network_tasks {
                let _ = task.await;
            }
            let _ = recycler.await;
            let _ = writer_task.await;
        })
        .await;
        if joined.is_err() {
            tracing::warn!("background tasks did not finish within {DRAIN_TIMEOUT:?}");
        }
        store.close().await;
    }
}
