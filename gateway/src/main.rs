//! The `zapin` binary: `serve`, `sim` and `demo`.

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use zapin_gateway::{AppState, Config, app};

/// Exit status for a configuration error, distinct from runtime failures (1).
const EXIT_CONFIG: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "zapin",
    version,
    about = "zapin: a native WhatsApp Web multi-device engine with an Evolution API v2 compatible HTTP gateway",
    after_help = "Configuration comes from environment variables (Evolution API names such as SERVER_PORT and \
                  AUTHENTICATION_API_KEY, plus ZAPIN_*); see README.md for the full table."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP gateway on SERVER_PORT (default 8080). It answers GET / with Evolution's
    /// welcome document and GET /v1/health; the WhatsApp routes arrive with later issues.
    Serve,
    /// Run the protocol-faithful WhatsApp server simulator with mock phones (not available yet,
    /// issue #5).
    Sim,
    /// Run the simulator and the gateway together so you can pair and chat locally without
    /// WhatsApp (not available yet, issue #8).
    Demo,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve => serve(),
        Command::Sim => not_available("sim", 5),
        Command::Demo => not_available("demo", 8),
    }
}

/// Subcommands whose issue has not landed say so instead of pretending to work.
fn not_available(name: &str, issue: u32) -> ExitCode {
    eprintln!("zapin {name}: not available yet (issue #{issue})");
    ExitCode::FAILURE
}

fn serve() -> ExitCode {
    let config = match Config::from_process_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("zapin: configuration error: {err}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    init_logging(&config);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("zapin: cannot start the tokio runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run_server(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            eprintln!("zapin: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run_server(config: Config) -> anyhow::Result<()> {
    use zapin_gateway::db::Db;
    use zapin_gateway::webhook::{Dispatcher, DispatcherConfig};

    if config.api_key_is_default {
        tracing::warn!(
            "AUTHENTICATION_API_KEY is not set: using Evolution's public default key; set it before exposing zapin"
        );
    }
    if config.master_key.is_none() {
        tracing::warn!(
            "ZAPIN_MASTER_KEY is not set: instance tokens are stored in plain text in the database"
        );
    }
    // The database first (migrations included), so a broken database fails before we announce.
    let db = Db::open(&config).await.context("opening the database")?;
    tracing::info!(backend = db.backend_name(), "database ready");

    let addr = SocketAddr::new(config.listen_host, config.server_port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (SERVER_PORT / ZAPIN_LISTEN_HOST)"))?;
    let local = listener.local_addr().context("reading the bound address")?;

    let dispatcher = Dispatcher::new(db.clone(), DispatcherConfig::from_config(&config))
        .context("starting the webhook dispatcher")?
        .spawn();

    // One stable stdout line for scripts and tests; everything else goes to the log on stderr.
    println!("zapin listening on http://{local}");
    tracing::info!(url = %format!("http://{local}"), "serving");

    let served = axum::serve(listener, app(AppState::new(config, db.clone())))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("HTTP server failed");
    // In-flight requests are done: stop delivering (what is left stays in the outbox for the
    // next start), then close the pool.
    dispatcher.shutdown().await;
    db.close().await;
    tracing::info!("stopped");
    served
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM so in-flight requests can finish.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for Ctrl-C: {err}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!("cannot listen for SIGTERM: {err}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received, shutting down"),
        () = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}

/// Logs go to stderr. `LOG_LEVEL` sets zapin's own verbosity; other crates stay at warn.
/// `RUST_LOG`, when set, overrides both with a full tracing filter.
fn init_logging(config: &Config) {
    let level = config.log_level.as_str();
    let default = format!(
        "warn,zapin={level},zapin_gateway={level},zapin_engine={level},zapin_protocol={level},\
         zapin_signal_store={level},zapin_compat_evolution={level},zapin_sim={level}"
    );
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
