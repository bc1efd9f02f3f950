//! The `zapin` binary: `serve`, `keys`, `sim` and `demo`.

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use zapin_gateway::config::LogFormat;
use zapin_gateway::keys::{KeyError, RotateError};
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
    /// Run the protocol-faithful WhatsApp server simulator with mock phones: WebSocket
    /// ws://LISTEN/ws/chat and the control API http://LISTEN/sim/.
    Sim(SimArgs),
    /// Run the simulator and the gateway together so you can pair and chat locally without
    /// WhatsApp: prints the API URL, the key and a curl walkthrough.
    Demo,
    /// Manage the master key that seals secrets at rest (ZAPIN_MASTER_KEY or
    /// ZAPIN_DATA_DIR/master.key).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Operator tasks on the database of this configuration (DATABASE_CONNECTION_URI or
    /// ZAPIN_DATA_DIR), with or without zapin serving.
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Dashboard users of a tenant.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Plans (as `POST /admin/plans` and `GET /admin/plans`).
    #[command(subcommand)]
    Plans(PlansCommand),
    /// Tenants (as `POST /admin/tenants` and `GET /admin/tenants`).
    #[command(subcommand)]
    Tenants(TenantsCommand),
    /// Tenant API keys (as `POST /admin/tenants/{id}/keys`).
    #[command(subcommand)]
    TenantKeys(TenantKeysCommand),
}

#[derive(Debug, Subcommand)]
enum PlansCommand {
    /// Create a plan from the JSON body `POST /admin/plans` takes, e.g.
    /// '{"name":"starter","quotas":{"message_send":{"day":100}},"price_cents":1900}'.
    Add {
        /// The plan as JSON.
        json: String,
    },
    /// Print every plan as a JSON array.
    List,
}

#[derive(Debug, Subcommand)]
enum TenantsCommand {
    /// Create a tenant on a plan; prints its id and its first API key (shown once).
    Add {
        #[arg(long)]
        name: String,
        #[arg(long)]
        plan: String,
    },
    /// Print every tenant as a JSON array.
    List,
}

#[derive(Debug, Subcommand)]
enum TenantKeysCommand {
    /// Issue another API key for a tenant; prints it (shown once).
    Add {
        /// The tenant's id.
        #[arg(long)]
        tenant: String,
    },
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// Add a dashboard user (e-mail and password) to a tenant. The password is read from
    /// --password-env, else from the first line of standard input; never from the command line,
    /// where other users of the machine could read it.
    Add(AddUserArgs),
}

#[derive(Debug, clap::Args)]
struct AddUserArgs {
    /// The tenant's id (as `POST /admin/tenants` answered it).
    #[arg(long)]
    tenant: String,
    /// The user's e-mail address (their sign-in name).
    #[arg(long)]
    email: String,
    /// Read the password from this environment variable instead of standard input.
    #[arg(long, value_name = "VAR")]
    password_env: Option<String>,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Re-seal every secret (signal store, instance tokens, webhook secrets) under a new master
    /// key, with zapin stopped. The new key replaces master.key; with ZAPIN_MASTER_KEY, pass it
    /// with --new-key-env or --new-key-file and set ZAPIN_MASTER_KEY to it afterwards. To
    /// rotate while serving, use POST /admin/keys/rotate instead.
    Rotate(RotateArgs),
    /// Print a new random master key (64 hex characters) on stdout.
    Generate,
}

#[derive(Debug, clap::Args)]
struct RotateArgs {
    /// Read the new key from this file (64 hex characters or base64; mode 0600).
    #[arg(long, value_name = "PATH", conflicts_with = "new_key_env")]
    new_key_file: Option<std::path::PathBuf>,
    /// Read the new key from this environment variable.
    #[arg(long, value_name = "VAR")]
    new_key_env: Option<String>,
}

#[derive(Debug, clap::Args)]
struct SimArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
    /// Derive every key and id from this seed (reproducible runs).
    #[arg(long)]
    seed: Option<u64>,
    /// Keep accounts, devices, prekeys and groups in DIR/state.json across restarts.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<std::path::PathBuf>,
    /// Lifetime of the first QR ref of a pair-device, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    qr_first_ttl: u64,
    /// Lifetime of each following QR ref, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 20)]
    qr_ttl: u64,
    /// Close connections silent for this long, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    idle_timeout: u64,
    /// Hostname handed out in media_conn (host or host:port of an HTTPS front onto this port;
    /// Baileys only speaks https to media hosts). Default: this port, plain http.
    #[arg(long, value_name = "HOST")]
    media_host: Option<String>,
    /// Cap on the total bytes of stored media blobs, in MiB (uploads beyond it get 413).
    #[arg(long, value_name = "MIB", default_value_t = 256)]
    media_max_total_mib: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve => serve(),
        Command::Sim(args) => sim(args),
        Command::Demo => demo(),
        Command::Keys(KeysCommand::Rotate(args)) => keys_rotate(args),
        Command::Keys(KeysCommand::Generate) => keys_generate(),
        Command::Admin(AdminCommand::Users(UsersCommand::Add(args))) => users_add(args),
        Command::Admin(other) => {
            let config = match Config::from_process_env() {
                Ok(config) => config,
                Err(err) => {
                    eprintln!("zapin: configuration error: {err}");
                    return ExitCode::from(EXIT_CONFIG);
                }
            };
            init_logging(&config);
            run_to_exit("zapin admin", run_admin(config, other))
        }
    }
}

/// `zapin admin plans|tenants|tenant-keys …`: the operator's admin API from the command line,
/// over the same directory, so an operator can bootstrap without curl. Keys are hashed under
/// the master key, which is checked against the data first, as `zapin serve` checks it.
async fn run_admin(mut config: Config, command: AdminCommand) -> anyhow::Result<()> {
    use zapin_gateway::db::Db;

    config
        .resolve_master_key()
        .context("loading the master key (ZAPIN_MASTER_KEY or ZAPIN_DATA_DIR/master.key)")?;
    let db = Db::open_unsealed(&config)
        .await
        .context("opening the database")?;
    let store = zapin_gateway::runtime::open_store(&config)
        .await
        .context("opening the signal store")?;
    sealed_data(&config, &db, &store)?.check_at_start().await?;
    let directory = zapin_gateway::tenancy::directory(&config, &db);
    let out = match command {
        AdminCommand::Plans(PlansCommand::Add { json }) => {
            let plan = zapin_tenancy::plan::Plan::from_json(json.as_bytes())
                .map_err(zapin_tenancy::TenancyError::from)?;
            directory.create_plan(&plan).await?;
            serde_json::to_value(&plan)?
        }
        AdminCommand::Plans(PlansCommand::List) => serde_json::to_value(directory.plans().await?)?,
        AdminCommand::Tenants(TenantsCommand::Add { name, plan }) => {
            let created = directory.create_tenant(&name, &plan).await?;
            serde_json::json!({
                "id": created.tenant.id,
                "name": created.tenant.name,
                "plan": created.tenant.plan,
                "suspended": created.tenant.suspended,
                "apiKey": created.key.expose(),
                "keyId": created.key_info.id,
            })
        }
        AdminCommand::Tenants(TenantsCommand::List) => {
            serde_json::to_value(directory.tenants().await?)?
        }
        AdminCommand::TenantKeys(TenantKeysCommand::Add { tenant }) => {
            if directory.tenant(&tenant).await?.is_none() {
                anyhow::bail!("no tenant {tenant:?}");
            }
            let (key, info) = directory.create_key(&tenant, None).await?;
            let mut doc = serde_json::to_value(&info)?;
            if let Some(obj) = doc.as_object_mut() {
                obj.insert("apiKey".to_owned(), key.expose().into());
            }
            doc
        }
        AdminCommand::Users(_) => anyhow::bail!("`zapin admin users` runs on its own"),
    };
    println!("{out}");
    store.close().await;
    db.close().await;
    Ok(())
}

fn users_add(args: AddUserArgs) -> ExitCode {
    let config = match Config::from_process_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("zapin: configuration error: {err}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    init_logging(&config);
    run_to_exit("zapin admin users add", run_users_add(config, args))
}

/// `zapin admin users add`: see [`UsersCommand::Add`].
async fn run_users_add(config: Config, args: AddUserArgs) -> anyhow::Result<()> {
    use zapin_gateway::db::Db;
    use zapin_tenancy::directory::Directory;

    let password = match &args.password_env {
        Some(var) => std::env::var(var).with_context(|| format!("{var} is not set"))?,
        None => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("reading the password from standard input")?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    let db = Db::open_unsealed(&config)
        .await
        .context("opening the database")?;
    let pool = zapin_gateway::tenancy::pool_of(&db);
    // Only the tenant's existence is read: the key hasher is never used here.
    let directory = Directory::new(
        pool.clone(),
        zapin_tenancy::apikey::KeyHasher::new(zeroize::Zeroizing::new([0u8; 32])),
    );
    if directory.tenant(&args.tenant).await?.is_none() {
        anyhow::bail!("no tenant {:?}", args.tenant);
    }
    let user = zapin_tenancy::users::Users::new(pool)
        .add(&args.tenant, &args.email, &password)
        .await?;
    println!("{}", serde_json::to_string(&user)?);
    db.close().await;
    Ok(())
}

fn demo() -> ExitCode {
    init_sim_logging();
    run_to_exit("zapin demo", run_demo())
}

/// The simulator, the gateway wired to it (fresh data directory, embedded SQLite), two phones
/// on the simulator and a webhook receiver that prints what it gets.
async fn run_demo() -> anyhow::Result<()> {
    use zapin_gateway::db::Db;

    let sim = zapin_sim::run(zapin_sim::SimConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..zapin_sim::SimConfig::default()
    })
    .await
    .context("starting the simulator")?;
    // A fresh directory each run: the simulator's accounts live in memory, so devices linked in
    // an earlier run could not log in again.
    let data_dir = std::env::temp_dir().join(format!("zapin-demo-{}", std::process::id()));
    let overrides = [
        ("ZAPIN_WA_WS_URL".to_owned(), sim.ws_url()),
        (
            "ZAPIN_WA_ROOT_PUBKEY".to_owned(),
            hex::encode(sim.root_public_key().0),
        ),
        ("ZAPIN_DATA_DIR".to_owned(), data_dir.display().to_string()),
    ];
    let replaced = [
        "ZAPIN_WA_WS_URL",
        "ZAPIN_WA_ROOT_PUBKEY",
        "ZAPIN_DATA_DIR",
        "DATABASE_CONNECTION_URI",
        "DATABASE_PROVIDER",
    ];
    let vars = std::env::vars()
        .filter(|(k, _)| !replaced.contains(&k.as_str()))
        .chain(overrides);
    let mut config = Config::from_env(vars).context("configuration")?;
    config
        .resolve_master_key()
        .context("loading the master key")?;

    let hooks = demo_webhook_receiver().await?;
    let client = reqwest::Client::new();
    let account = |name: &'static str| {
        let client = client.clone();
        let url = format!("{}/sim/accounts", sim.http_url());
        async move {
            let body: serde_json::Value = client
                .post(url)
                .json(&serde_json::json!({ "push_name": name }))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            anyhow::Ok(
                body["phone"]
                    .as_str()
                    .context("the simulator returned no phone")?
                    .to_owned(),
            )
        }
    };
    let owner = account("Demo Owner")
        .await
        .context("creating the demo owner phone")?;
    let friend = account("Demo Friend")
        .await
        .context("creating the demo friend phone")?;

    let db = Db::open(&config).await.context("opening the database")?;
    let addr = SocketAddr::new(config.listen_host, config.server_port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (SERVER_PORT / ZAPIN_LISTEN_HOST)"))?;
    let local = listener.local_addr().context("reading the bound address")?;
    let dispatchers = zapin_gateway::webhook::start_dispatchers(&db, &config)
        .context("starting the event dispatchers")?;
    let key = config.api_key.expose().to_owned();
    let state = AppState::new(config, db.clone());
    let engine = zapin_gateway::runtime::start(&state.config, &db, state.tokens.clone())
        .await
        .context("starting the WhatsApp engine")?;
    for dispatcher in dispatchers {
        engine.attach_dispatcher(dispatcher);
    }
    let state = state.with_engine(engine.clone());

    let shown = if local.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], local.port()))
    } else {
        local
    };
    let api = format!("http://{shown}");
    let simu = sim.http_url();
    println!(
        r#"zapin demo
  API:       {api}
  apikey:    {key}
  simulator: {simu}
  phones:    owner {owner} (scans the QR), friend {friend}
  webhooks:  {hooks} (printed below as they arrive)
  data:      {data}

1. Create an instance with a webhook, then connect to get the QR code:
   curl -s -X POST {api}/instance/create -H 'apikey: {key}' -H 'content-type: application/json' -d '{{"instanceName":"demo","integration":"WHATSAPP-BAILEYS","webhook":{{"url":"{hooks}","events":["QRCODE_UPDATED","CONNECTION_UPDATE","MESSAGES_UPSERT","MESSAGES_UPDATE","SEND_MESSAGE"]}}}}'
   curl -s {api}/instance/connect/demo -H 'apikey: {key}'

2. Scan it with the owner phone (paste the "code" field), then check the state:
   curl -s -X POST {simu}/sim/accounts/{owner}/scan -H 'content-type: application/json' -d '{{"qr":"<code>"}}'
   curl -s {api}/instance/connectionState/demo -H 'apikey: {key}'

3. Send a text to the friend, read it on the friend's phone, and let the friend reply:
   curl -s -X POST {api}/message/sendText/demo -H 'apikey: {key}' -H 'content-type: application/json' -d '{{"number":"{friend}","text":"hello from zapin"}}'
   curl -s {simu}/sim/accounts/{friend}/messages
   curl -s -X POST {simu}/sim/accounts/{friend}/messages -H 'content-type: application/json' -d '{{"to":"{owner}@s.whatsapp.net","text":"hi back"}}'
"#,
        data = data_dir.display(),
    );

    let served = axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .context("HTTP server failed");
    engine.shutdown().await;
    db.close().await;
    sim.shutdown().await.context("stopping the simulator")?;
    if let Err(err) = std::fs::remove_dir_all(&data_dir) {
        tracing::warn!("removing {}: {err}", data_dir.display());
    }
    served
}

/// A local HTTP endpoint that prints each webhook it receives (event and data) on stdout.
async fn demo_webhook_receiver() -> anyhow::Result<String> {
    use axum::body::Bytes;
    async fn hook(body: Bytes) -> axum::http::StatusCode {
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        println!(
            "webhook {} {}",
            value["event"].as_str().unwrap_or("?"),
            value["data"]
        );
        axum::http::StatusCode::OK
    }
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .context("binding the demo webhook receiver")?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let router = axum::Router::new()
        .route("/", axum::routing::post(hook))
        .route("/{*rest}", axum::routing::post(hook));
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(format!("http://{addr}/webhook"))
}

fn sim(args: SimArgs) -> ExitCode {
    init_sim_logging();
    run_to_exit("zapin sim", run_sim(args))
}

/// Runs a subcommand to completion on a fresh multi-threaded runtime; an error is logged and
/// printed as `<label>: <error chain>` and becomes exit code 1.
fn run_to_exit(label: &str, task: impl Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("zapin: cannot start the tokio runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(task) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // A key that does not match the data is a configuration error, reported as one line.
            let mismatch = err
                .downcast_ref::<KeyError>()
                .or_else(|| match err.downcast_ref::<RotateError>() {
                    Some(RotateError::Key(key)) => Some(key),
                    _ => None,
                })
                .filter(|key| key.is_mismatch());
            if let Some(key) = mismatch {
                eprintln!("{label}: {key}");
                return ExitCode::from(EXIT_CONFIG);
            }
            tracing::error!("{err:#}");
            eprintln!("{label}: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run_sim(args: SimArgs) -> anyhow::Result<()> {
    use std::time::Duration;
    let config = zapin_sim::SimConfig {
        listen: args.listen,
        seed: args.seed,
        state_dir: args.state_dir,
        qr_first_ttl: Duration::from_secs(args.qr_first_ttl),
        qr_ttl: Duration::from_secs(args.qr_ttl),
        idle_timeout: Duration::from_secs(args.idle_timeout.max(1)),
        media: zapin_sim::media::MediaConfig {
            host: args.media_host,
            max_total_bytes: args.media_max_total_mib.saturating_mul(1024 * 1024),
            ..zapin_sim::media::MediaConfig::default()
        },
        ..zapin_sim::SimConfig::default()
    };
    let sim = zapin_sim::run(config)
        .await
        .context("starting the simulator")?;
    let stop = shutdown_signal();
    // One stable stdout line for scripts and tests; everything else goes to the log on stderr.
    println!(
        "zapin sim listening on {} ws={} root={}",
        sim.http_url(),
        sim.ws_url(),
        hex::encode(sim.root_public_key().as_bytes())
    );
    stop.await;
    sim.shutdown().await.context("stopping the simulator")?;
    tracing::info!("stopped");
    Ok(())
}

/// The simulator logs at info unless `RUST_LOG` says otherwise.
fn init_sim_logging() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,zapin=info,zapin_sim=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
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
    run_to_exit("zapin", run_server(config))
}

async fn run_server(config: Config) -> anyhow::Result<()> {
    use zapin_gateway::db::Db;
    use zapin_gateway::keys::{DataLock, KeyService};

    if config.api_key_is_default {
        tracing::warn!(
            "AUTHENTICATION_API_KEY is not set: using Evolution's public default key; set it before exposing zapin"
        );
    }
    // One key for the whole process (signal store, instance tokens, webhook secrets):
    // ZAPIN_MASTER_KEY, else the key file in ZAPIN_DATA_DIR.
    let mut config = config;
    config
        .resolve_master_key()
        .context("loading the master key (ZAPIN_MASTER_KEY or ZAPIN_DATA_DIR/master.key)")?;
    // The databases first (migrations included), so a broken database fails before we announce;
    // then the key check, before anything is sealed or served.
    let db = Db::open_unsealed(&config)
        .await
        .context("opening the database")?;
    let lock = DataLock::shared(&config.data_dir, &db).await?;
    let store = zapin_gateway::runtime::open_store(&config)
        .await
        .context("opening the signal store")?;
    let data = sealed_data(&config, &db, &store)?;
    data.check_at_start().await?;
    db.seal_legacy(&config)
        .await
        .context("sealing plain-text secrets of an earlier version")?;
    tracing::info!(backend = db.backend_name(), key = %data.keys().get().fingerprint(), "database ready");

    let addr = SocketAddr::new(config.listen_host, config.server_port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (SERVER_PORT / ZAPIN_LISTEN_HOST)"))?;
    let local = listener.local_addr().context("reading the bound address")?;

    let dispatchers = zapin_gateway::webhook::start_dispatchers(&db, &config)
        .context("starting the event dispatchers")?;

    let stop = shutdown_signal();
    // One stable stdout line for scripts and tests; everything else goes to the log on stderr.
    println!("zapin listening on http://{local}");
    tracing::info!(url = %format!("http://{local}"), "serving");

    let state = AppState::new(config, db.clone()).with_keys(KeyService::new(data));
    let tenancy = zapin_gateway::tenancy::Tenancy::start(&state.config, &db)
        .await
        .context(
            "starting tenancy (quota counters: CACHE_REDIS_URI or the journal in ZAPIN_DATA_DIR)",
        )?;
    tracing::info!(counters = tenancy.counters, "quotas ready");
    let state = state.with_tenancy(tenancy.clone());
    let engine = zapin_gateway::runtime::start_with(
        store,
        zapin_gateway::runtime::engine_config(&state.config),
        &state.config,
        &db,
        state.tokens.clone(),
    )
    .await
    .context("starting the WhatsApp engine")?;
    for dispatcher in dispatchers {
        engine.attach_dispatcher(dispatcher);
    }
    let state = state.with_engine(engine.clone());

    let served = axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(stop)
    .await
    .context("HTTP server failed");
    // In-flight requests are done: stop the sessions (credentials stay for the next start),
    // the bridge and the dispatcher (what is left stays in the outbox), then close the pool.
    engine.shutdown().await;
    tenancy.shutdown().await;
    lock.release().await;
    db.close().await;
    tracing::info!("stopped");
    served
}

/// The process's sealed data and keyring, once [`Config::resolve_master_key`] ran.
fn sealed_data(
    config: &Config,
    db: &zapin_gateway::db::Db,
    store: &zapin_signal_store::Store,
) -> anyhow::Result<zapin_gateway::keys::SealedData> {
    let (Some(keys), Some(source)) = (config.keyring(), config.key_source.clone()) else {
        anyhow::bail!("the master key was not loaded");
    };
    Ok(zapin_gateway::keys::SealedData::new(
        db.clone(),
        store.clone(),
        keys,
        source,
    ))
}

fn keys_generate() -> ExitCode {
    match zapin_signal_store::MasterKey::generate() {
        Ok(key) => {
            println!("{}", hex::encode(key.expose()));
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("zapin keys generate: {err}");
            ExitCode::FAILURE
        }
    }
}

fn keys_rotate(args: RotateArgs) -> ExitCode {
    let config = match Config::from_process_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("zapin: configuration error: {err}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    init_logging(&config);
    run_to_exit("zapin keys rotate", run_keys_rotate(config, args))
}

/// `zapin keys rotate`: see [`KeysCommand::Rotate`] and `zapin_gateway::keys`.
async fn run_keys_rotate(mut config: Config, args: RotateArgs) -> anyhow::Result<()> {
    use zapin_gateway::db::Db;
    use zapin_gateway::keys::DataLock;
    use zapin_signal_store::{KeySource, MasterKey};

    config
        .resolve_master_key()
        .context("loading the master key (ZAPIN_MASTER_KEY or ZAPIN_DATA_DIR/master.key)")?;
    let new = match (&args.new_key_file, &args.new_key_env) {
        (Some(path), _) => MasterKey::load_file(path)?
            .with_context(|| format!("no key file at {}", path.display()))?,
        (None, Some(var)) => {
            let text = std::env::var(var).with_context(|| format!("{var} is not set"))?;
            MasterKey::parse(&text).with_context(|| format!("{var} is not a master key"))?
        }
        (None, None) if config.key_source == Some(KeySource::Env) => {
            return Err(RotateError::NeedNewKey.into());
        }
        (None, None) => MasterKey::generate()?,
    };
    let db = Db::open_unsealed(&config)
        .await
        .context("opening the database")?;
    let lock = DataLock::exclusive(&config.data_dir, &db).await?;
    let store = zapin_gateway::runtime::open_store(&config)
        .await
        .context("opening the signal store")?;
    let data = sealed_data(&config, &db, &store)?;
    let from = data.keys().get().fingerprint();
    let done = data.rotate_offline(&new).await?;
    for (database, report) in &done {
        println!("{database}: {} sealed values re-sealed", report.resealed);
    }
    match data.source() {
        KeySource::File(path) => println!(
            "master key rotated from {from} to {}: the new key is in {}",
            new.fingerprint(),
            path.display()
        ),
        KeySource::Env => println!(
            "master key rotated from {from} to {}: set ZAPIN_MASTER_KEY to the new key before starting zapin; the old key opens nothing any more",
            new.fingerprint()
        ),
    }
    lock.release().await;
    store.close().await;
    db.close().await;
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM so in-flight requests can finish. The handlers are
/// installed by this call, not when the future is first polled: call it before announcing the
/// address, or a SIGTERM sent right after the announcement finds no handler and kills the
/// process with the default action (a failed exit instead of a clean stop).
fn shutdown_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    let (interrupt, terminate) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        )
    };
    async move {
        #[cfg(unix)]
        {
            async fn recv(signal: std::io::Result<tokio::signal::unix::Signal>, name: &str) {
                match signal {
                    Ok(mut signal) => {
                        signal.recv().await;
                    }
                    Err(err) => {
                        tracing::error!("cannot listen for {name}: {err}");
                        std::future::pending::<()>().await;
                    }
                }
            }
            tokio::select! {
                () = recv(interrupt, "SIGINT") => tracing::info!("SIGINT received, shutting down"),
                () = recv(terminate, "SIGTERM") => tracing::info!("SIGTERM received, shutting down"),
            }
        }
        #[cfg(not(unix))]
        {
            if let Err(err) = tokio::signal::ctrl_c().await {
                tracing::error!("cannot listen for Ctrl-C: {err}");
                std::future::pending::<()>().await;
            }
            tracing::info!("Ctrl-C received, shutting down");
        }
    }
}

/// Logs go to stderr, as text or (`ZAPIN_LOG_FORMAT=json`) JSON lines. `LOG_LEVEL` sets
/// zapin's own verbosity; other crates stay at warn. `RUST_LOG`, when set, overrides both with a
/// full tracing filter.
fn init_logging(config: &Config) {
    let level = config.log_level.as_str();
    let default = format!(
        "warn,zapin={level},zapin_gateway={level},zapin_engine={level},zapin_protocol={level},\
         zapin_signal_store={level},zapin_compat_evolution={level},zapin_sim={level}"
    );
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        // One object per line; the request's span (its id, method and route) rides along.
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}
