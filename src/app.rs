//! The composition root: turns the [`Config`] into each part's settings, builds the parts,
//! serves HTTP, and stops everything in order.
//!
//! The only module that knows every layer (see the table in `lib.rs`): it may import any of
//! them, and nothing imports it but `main` and the tests. What it owns:
//!
//! - the translators from configuration to settings ([`payments_setup`], [`smpp_setup`],
//!   [`sip_setup`]), each failing with a typed [`StartError`]; [`check`] runs them without
//!   starting anything, so a bad value stops `agentline` before it touches the database;
//! - [`App::build`]: connect, migrate, reconcile, start every background task;
//! - [`App::stop`]: the one shutdown order, joining every task it started.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::api;
use crate::config::{self, BindMode, CodecName, Config, SettlementBackend};
use crate::events::InboxHub;
use crate::metrics::Metrics;
use crate::payments::settlement::{Chain, ChainSetupError, Facilitator, Sandbox};
use crate::payments::terms::NetworkError;
use crate::payments::{self, Network, PaymentTerms};
use crate::sms::{self, SmsService, SmsTasks};
use crate::store::{self, MessageWriter, Store};
use crate::subscriptions::{self, SubscriptionService};
use crate::tasks::TaskSet;
use crate::telco::sim::SimNetwork;
use crate::telco::sip::sdp::Codec;
use crate::telco::sip::ua::Cidr;
use crate::telco::{self, sip, smpp};
use crate::voice;
use crate::wallet::{Address, AddressError};

/// How long shutdown waits for background tasks to finish their queued work.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Subscriptions(#[from] subscriptions::SubscriptionError),
    #[error("payments: {0}")]
    Network(#[from] NetworkError),
    #[error("payments: {key}: {source}")]
    Address { key: &'static str, source: AddressError },
    #[error("payments: asset must be set for network {network}")]
    NoAsset { network: String },
    #[error("payments: token_name must be set for this asset (its EIP-712 name())")]
    NoTokenName,
    #[error("payments: price must be a positive integer of atomic units")]
    Price,
    #[error("payments: relayer_key must be a 32-byte hex private key")]
    RelayerKey,
    #[error("payments: {needs}")]
    Incomplete { needs: &'static str },
    #[error("payments: {0}")]
    Chain(#[from] ChainSetupError),
    #[error("configuration: {0}")]
    Config(#[from] config::ConfigError),
    #[error("TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    /// The database cannot be reached or refused us (for PostgreSQL over TLS: the server's
    /// certificate against `sslrootcert` or `tls.ca_file`).
    #[error("database_url: {0}")]
    Database(#[source] store::StoreError),
    #[error("configuration: sip.carrier_networks: {reason}")]
    CarrierNetwork { reason: String },
    #[error("configuration: voice.recordings_dir {dir}: {source}")]
    RecordingsDir { dir: String, source: std::io::Error },
    #[error("SIP trunk: {0}")]
    Sip(#[source] std::io::Error),
    #[error("serving HTTP: {0}")]
    Io(#[from] std::io::Error),
}

/// Checks what `config` cannot check as a leaf (payment terms against the network's token
/// defaults, the relayer key, the SMPP and SIP settings) without starting anything.
pub fn check(config: &Config) -> Result<(), StartError> {
    payment_terms(config)?;
    if config.settlement == SettlementBackend::Chain
        && config.relayer_key.as_ref().and_then(|k| Chain::relayer(k.expose())).is_none()
    {
        return Err(StartError::RelayerKey);
    }
    smpp_setup(config)?;
    sip_setup(config)?;
    Ok(())
}

/// What a subscription costs and where the money goes, from the payment keys.
pub fn payment_terms(config: &Config) -> Result<PaymentTerms, StartError> {
    let network = Network::parse(&config.network)?;
    let defaults = network.default_usdc();
    let address = |key, text: &str| Address::parse(text).map_err(|source| StartError::Address { key, source });
    let asset = match (&config.asset, defaults) {
        (Some(a), _) => address("asset", a)?,
        (None, Some((usdc, _))) => address("asset", usdc)?,
        (None, None) => return Err(StartError::NoAsset { network: config.network.clone() }),
    };
    let token_name = match (&config.token_name, defaults) {
        (Some(n), _) => n.clone(),
        (None, Some((usdc, name))) if Address::parse(usdc).ok() == Some(asset) => name.to_owned(),
        _ => return Err(StartError::NoTokenName),
    };
    // The sandbox default payee: nothing is ever transferred to it.
    let pay_to = address("pay_to", config.pay_to.as_deref().unwrap_or("0x000000000000000000000000000000000000dEaD"))?;
    let price = payments::wire::parse_u256(&config.price).filter(|p| !p.is_zero()).ok_or(StartError::Price)?;
    Ok(PaymentTerms {
        network,
        asset,
        pay_to,
        price,
        token_name,
        token_version: config.token_version.clone(),
        max_timeout_secs: 300,
        resource_url: format!("{}/sms/subscribe", config.public_base_url()),
        description: format!(
            "One persistent phone number for {} days (SMS and voice), renewable with the same wallet.",
            config.subscriptions.plan_days
        ),
    })
}

/// The payment terms and the settlement backend the configuration selects.
pub fn payments_setup(config: &Config) -> Result<subscriptions::PaymentsSetup, StartError> {
    let terms = payment_terms(config)?;
    let receipt_timeout = Duration::from_secs(config.receipt_timeout_secs);
    let roots = crate::tls::TlsRoots::from_config(config.tls.ca_file.as_deref())?;
    let settlement: Arc<dyn payments::Settlement> = match config.settlement {
        SettlementBackend::Chain => {
            let (Some(rpc), Some(key)) = (&config.rpc_url, &config.relayer_key) else {
                return Err(StartError::Incomplete { needs: "chain settlement needs rpc_url and relayer_key" });
            };
            Arc::new(Chain::new(rpc, roots.http_client(None)?, key.expose(), terms.asset, receipt_timeout)?)
        }
        SettlementBackend::Facilitator => {
            let Some(url) = &config.facilitator_url else {
                return Err(StartError::Incomplete { needs: "facilitator settlement needs facilitator_url" });
            };
            Arc::new(Facilitator::new(url, terms.clone(), roots.http_client(Some(receipt_timeout))?))
        }
        SettlementBackend::None => Arc::new(Sandbox),
    };
    let contract_wallets = match config.rpc_url.as_deref() {
        Some(url) => payments::contract_wallets::ContractWallets::new(url, roots.http_client(None)?, receipt_timeout)
            .map(Arc::new),
        None => None,
    };
    Ok(subscriptions::PaymentsSetup { terms, settlement, contract_wallets })
}

/// `database_url` as the store connects to it: for PostgreSQL without `sslrootcert`,
/// `tls.ca_file` is the CA its certificate is checked against (`sslmode=verify-ca` or
/// `verify-full`; libpq's other `sslmode`s are honoured as written).
pub fn database_url(config: &Config) -> Result<String, StartError> {
    let url = &config.database_url;
    let postgres = url.starts_with("postgres:") || url.starts_with("postgresql:");
    let Some(ca_file) = config.tls.ca_file.as_deref().filter(|_| postgres) else { return Ok(url.clone()) };
    let mut parsed = reqwest::Url::parse(url)
        .map_err(|_| config::ConfigError::Value { key: "database_url", reason: config::ValueError::Host })?;
    if parsed.query_pairs().any(|(k, _)| matches!(&*k, "sslrootcert" | "ssl-root-cert" | "ssl-ca")) {
        return Ok(url.clone());
    }
    parsed.query_pairs_mut().append_pair("sslrootcert", ca_file);
    Ok(parsed.into())
}

/// Connects to [`database_url`]; a failure names `database_url`.
pub async fn connect_store(config: &Config, max_connections: u32) -> Result<Store, StartError> {
    Store::connect(&database_url(config)?, max_connections).await.map_err(StartError::Database)
}

/// The SMPP binds `smpp_url` and `[smpp]` describe, or `None` for the simulated network.
pub fn smpp_setup(config: &Config) -> Result<Option<smpp::SmppSettings>, StartError> {
    use smpp::{BindKind, SessionSettings, SmppSettings};
    let Some(url) = &config.smpp_url else { return Ok(None) };
    let target = config::SmppTarget::parse(url.expose())
        .map_err(|reason| config::ConfigError::Value { key: "smpp_url", reason })?;
    let tls = match target.tls {
        false => None,
        true => {
            let server_name = rustls::pki_types::ServerName::try_from(target.host.clone())
                .map_err(|_| config::ConfigError::Value { key: "smpp_url", reason: config::ValueError::Host })?;
            let roots = crate::tls::TlsRoots::from_config(config.tls.ca_file.as_deref())?;
            Some(smpp::session::SmppTls { config: roots.client_config(), server_name })
        }
    };
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
        tls: tls.clone(),
    };
    let kinds: &[BindKind] = match c.bind_mode {
        BindMode::Split => &[BindKind::Transmitter, BindKind::Receiver],
        BindMode::Transceiver => &[BindKind::Transceiver],
    };
    let sessions = (0..c.sessions).flat_map(|_| kinds.iter().map(|&k| session(k))).collect();
    Ok(Some(SmppSettings {
        sessions,
        throughput: (c.throughput > 0).then_some(c.throughput),
        throttle_pause: Duration::from_millis(c.throttle_pause_ms),
    }))
}

/// The SIP trunk `[sip]` and `[rtp]` describe, or `None` for the simulated voice network.
pub fn sip_setup(config: &Config) -> Result<Option<sip::ua::SipSettings>, StartError> {
    use config::ConfigError::{Rule, Value};
    let Some(trunk) = &config.sip.trunk else { return Ok(None) };
    let trunk = config::SipTrunk::parse(trunk.expose()).map_err(|reason| Value { key: "sip.trunk", reason })?;
    let c = &config.sip;
    let listen = c.listen.parse().map_err(|_| Rule { key: "sip.listen", rule: "must be IP:PORT" })?;
    let (public_ip, public_port) = match &c.public_addr {
        None => (None, None),
        Some(text) => match text.parse::<std::net::SocketAddr>() {
            Ok(addr) => (Some(addr.ip()), Some(addr.port())),
            Err(_) => (Some(text.parse().map_err(|_| Rule { key: "sip.public_addr", rule: "must be an IP" })?), None),
        },
    };
    let rtp_ports = config::parse_port_range(&config.rtp.ports).map_err(|reason| Value { key: "rtp.ports", reason })?;
    let codecs = config::parse_codecs(&c.codecs).map_err(|reason| Value { key: "sip.codecs", reason })?;
    let networks =
        config::parse_networks(&c.carrier_networks).map_err(|reason| Value { key: "sip.carrier_networks", reason })?;
    Ok(Some(sip::ua::SipSettings {
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
        codecs: codecs.into_iter().map(codec).collect(),
        jitter_frames: (config.rtp.jitter_ms / 20) as usize,
        allow_private_endpoints: c.allow_private_endpoints,
        carrier_networks: networks.into_iter().map(|n| Cidr { network: n.network, prefix: n.prefix }).collect(),
        timers: sip::transaction::Timers::default(),
    }))
}

/// The SDP codec a configured codec name stands for.
fn codec(name: CodecName) -> Codec {
    match name {
        CodecName::G722 => Codec::G722,
        CodecName::Pcmu => Codec::Pcmu,
        CodecName::Pcma => Codec::Pcma,
    }
}

/// The assembled service: state, router and the background tasks it owns.
pub struct App {
    state: api::AppState,
    /// Closed last, once every task that writes has ended.
    store: Store,
    shutdown: watch::Sender<bool>,
    sms_tasks: SmsTasks,
    writer_task: JoinHandle<()>,
    /// Stops the network's own tasks (SMPP binds), once the SMS service has drained.
    network_stop: watch::Sender<bool>,
    network_tasks: Vec<JoinHandle<()>>,
    voice_task: JoinHandle<()>,
    /// The app's own periodic work (the number recycler).
    tasks: TaskSet,
}

impl App {
    /// Connects and migrates the database, seeds the simulator's pool on first start, and
    /// starts the background tasks.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let store = connect_store(&config, config.database.max_connections).await?;
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
        if subscriptions.settlement_kind() == crate::payments::SettlementKind::Sandbox {
            tracing::info!("sandbox payments: signatures fully verified, nothing is settled (settlement = none)");
        } else if let Err(err) = subscriptions.probe_settlement(Duration::from_secs(5)).await {
            let endpoint = match subscriptions.settlement_kind() {
                crate::payments::SettlementKind::Facilitator => "facilitator_url",
                _ => "rpc_url",
            };
            tracing::error!(%endpoint, error = %err, "settlement endpoint does not answer: subscribes fail (402) until it does; /health/ready shows checks.settlement");
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
            std::fs::create_dir_all(dir).map_err(|e| StartError::RecordingsDir { dir: dir.clone(), source: e })?;
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
                        .map_err(StartError::Sip)?;
                tracing::info!(listen = %sip.local_addr(), "voice over the SIP trunk");
                network_tasks.extend(tasks);
                Arc::new(sip)
            }
            None => {
                let (sim, joiner) = telco::sim::voice::SimVoice::start(
                    incoming_tx,
                    on_net,
                    Duration::from_millis(config.sim.answer_delay_ms),
                    network_stop.subscribe(),
                );
                network_tasks.push(joiner);
                Arc::new(sim)
            }
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
        let tasks = TaskSet::new("app");
        tasks.spawn(subscriptions.clone().run_recycler(shutdown_rx)).expect("invariant: a new task set is open");

        let docs = api::render_documents(&public_url, &config.service_name, subscriptions.terms());
        let state = api::AppState::new(api::AppStateInner {
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
        Ok(Self { state, store, shutdown, sms_tasks, writer_task, network_stop, network_tasks, voice_task, tasks })
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

    /// Signals shutdown and joins every background task, in this order: the calls (they
    /// record how they ended), SMS (submissions and inbound commits), the networks (unbind),
    /// the app's own tasks, the purchase queue, and last the writer every part writes through.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let Self { state, store, sms_tasks, writer_task, network_stop, network_tasks, voice_task, tasks, .. } = self;
        let voice = state.voice.clone();
        let subscriptions = state.subscriptions.clone();
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
            tasks.join().await;
            subscriptions.shutdown().await;
            drop(subscriptions);
            let _ = writer_task.await;
        })
        .await;
        if joined.is_err() {
            tracing::warn!("background tasks did not finish within {DRAIN_TIMEOUT:?}");
        }
        store.close().await;
    }
}
