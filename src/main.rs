//! The `agentline` command: `serve`, `migrate`, `numbers add|list|import`.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use agentline::config::Config;
use agentline::subscriptions::SubscriptionService;

/// mimalloc instead of glibc malloc: per-thread free lists without glibc's arena locking and
/// consolidation, which `perf` showed as 15 % of the server's CPU on the SMS path (see
/// docs/decisions/2026-11-23-allocator.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "agentline", version, about = "Phone numbers an autonomous agent buys for itself")]
struct Cli {
    /// TOML configuration file; every key can also be set as an AGENTLINE_* variable.
    #[arg(long, global = true, env = "AGENTLINE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service (migrates the database first).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage the number pool.
    Numbers {
        #[command(subcommand)]
        action: NumbersAction,
    },
}

#[derive(Subcommand)]
enum NumbersAction {
    /// Add E.164 numbers to the pool (duplicates are ignored).
    Add { numbers: Vec<String> },
    /// List the pool with each number's state and owner.
    List,
    /// Add the numbers in FILE: one per line (or first CSV column); blank lines and # comments skipped.
    Import { file: PathBuf },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let env: HashMap<String, String> = std::env::vars().filter(|(k, _)| k.starts_with("AGENTLINE_")).collect();
    let config = Config::load(cli.config.as_deref(), &env).context("loading configuration")?;
    agentline::app::check(&config).context("loading configuration")?;
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&config.log).context("invalid log filter")?)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run(cli.command, config))
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .with_context(|| format!("binding {}", config.listen))?;
            let app = agentline::App::build(config).await?;
            app.serve(listener, shutdown_signal()).await?;
        }
        Command::Migrate => {
            let store = agentline::app::connect_store(&config, 1).await?;
            store.migrate().await?;
            println!("migrations applied");
        }
        Command::Numbers { action } => {
            let store = agentline::app::connect_store(&config, 2).await?;
            store.migrate().await?;
            let service = SubscriptionService::new(
                store.clone(),
                config.subscriptions.clone(),
                agentline::app::payments_setup(&config)?,
                &config.service_name,
            );
            match action {
                NumbersAction::Add { numbers } => add(&service, numbers).await?,
                NumbersAction::Import { file } => {
                    let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
                    let numbers = text
                        .lines()
                        .map(|l| l.split(',').next().unwrap_or_default().trim())
                        .filter(|l| !l.is_empty() && !l.starts_with('#'))
                        .map(str::to_owned)
                        .collect();
                    add(&service, numbers).await?;
                }
                NumbersAction::List => {
                    for n in store.list_numbers().await? {
                        println!("{}\t{}\t{}", n.e164, n.state.as_str(), n.wallet.as_deref().unwrap_or("-"));
                    }
                }
            }
            store.close().await;
        }
    }
    Ok(())
}

async fn add(service: &SubscriptionService, numbers: Vec<String>) -> anyhow::Result<()> {
    let done = service.add_numbers(numbers, "cli").await?;
    println!("added {}, already present {}", done.added, done.already_present);
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
