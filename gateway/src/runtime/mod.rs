//! The WhatsApp engine behind the gateway: the signal store, the `SessionManager`, what the
//! routes need to know about live sessions, and the bridge from engine events to the database
//! and the webhook outbox ([`bridge`]).
//!
//! Engine sessions are keyed by the instance's database id (stable, unlike a name chosen by the
//! client), so the signal store's device id is that id too.

pub mod bridge;
pub mod content;
pub mod groups;
pub mod qr;
pub mod sends;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use zapin_compat_evolution::response::QrImage;
use zapin_engine::{
    BrowserInfo, ConnectionState, CreateOptions, EngineConfig, EngineError, InstanceId,
    SessionHandle, SessionManager,
};
use zapin_signal_store::{
    MasterKey, PostgresOptions, SharedKeyring, SqliteOptions, Store, StoreError,
};

use crate::config::{Config, Database};
use crate::db::Instance;

/// Why the engine could not be brought up.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("signal store: {0}")]
    Store(#[from] StoreError),
    #[error("master key: {0}")]
    MasterKey(#[from] zapin_signal_store::MasterKeyError),
    #[error("engine: {0}")]
    Engine(#[from] EngineError),
    #[error("database: {0}")]
    Db(#[from] crate::db::DbError),
}

/// What the gateway remembers about a live session besides the engine's own state: Evolution
/// reports the latest QR object and its count, which the engine only emits as events.
#[derive(Debug, Clone, Default)]
pub struct Live {
    pub qr: Option<QrImage>,
    pub count: u32,
    /// The phone number of a pairing-code connect; its code goes into every QR object.
    pub number: Option<String>,
    pub pairing_code: Option<String>,
    /// Own JID (no device suffix) once paired, and the push name learnt at pairing.
    pub wuid: Option<String>,
    pub profile_name: Option<String>,
    /// When the current QR stops being accepted by the server (the engine's rotation time).
    pub qr_expires_at: Option<std::time::SystemTime>,
}

/// A change of one instance that a watching dashboard shows at once: sent after the bridge
/// stored it, with the instance row as it then was.
#[derive(Debug, Clone)]
pub struct LiveUpdate {
    pub instance_id: String,
    pub instance_name: String,
    /// The stored `connection_status` (`open`, `connecting`, `close`).
    pub status: String,
    pub owner_jid: Option<String>,
    pub profile_name: Option<String>,
    pub what: LiveChange,
}

/// What changed in a [`LiveUpdate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveChange {
    /// A new QR code (the previous one is void), accepted until `expires_at`.
    Qr {
        code: String,
        expires_at: std::time::SystemTime,
    },
    /// The QR limit was reached: the session stopped showing codes.
    QrLimit,
    /// The 8-character code for pairing by phone number.
    PairingCode(String),
    /// The connection state (or the paired account) changed.
    State,
}

/// Dashboard updates buffered per watcher; one that falls further behind misses some (and is
/// told to reload).
const LIVE_BUFFER: usize = 256;

/// The engine and the gateway's per-session memory. One per process.
#[derive(Debug)]
pub struct EngineRuntime {
    manager: SessionManager,
    live: Mutex<HashMap<String, Live>>,
    /// Signalled whenever any session's QR object changes (connect waits on it).
    qr_changed: Notify,
    /// Stored changes the dashboard pushes to browsers ([`EngineRuntime::watch`]).
    updates: tokio::sync::broadcast::Sender<LiveUpdate>,
    /// Serialises session creation: create's background start and a quick connect must not
    /// both register the same device.
    creating: tokio::sync::Mutex<()>,
    /// Sends in flight (a request's or a resend's), so that recovery never sends a message that
    /// is being sent. An entry lives as long as its [`sends::SendClaim`]: the set holds at most
    /// the sends running at once.
    in_flight: Arc<sends::InFlight>,
    /// Asks the recovery task to resend an instance's unconfirmed sends.
    resend: Mutex<Option<tokio::sync::mpsc::UnboundedSender<String>>>,
    /// The bridge and dispatcher tasks, stopped by [`EngineRuntime::shutdown`].
    tasks: Mutex<Tasks>,
    /// The chatbot engine stored inbound messages are dispatched to (see [`crate::bots`]).
    bots: std::sync::OnceLock<zapin_bots::Engine>,
    /// Ids of the messages the chatbots sent lately, so their echoes never reach the bots.
    bot_sends: Mutex<std::collections::VecDeque<String>>,
}

/// How many recent chatbot send ids are remembered (see [`EngineRuntime::is_bot_send`]).
const BOT_SENDS_REMEMBERED: usize = 4096;

/// Background tasks that live as long as the runtime.
#[derive(Debug, Default)]
struct Tasks {
    bridge: Option<(
        tokio::sync::watch::Sender<bool>,
        tokio::task::JoinHandle<()>,
    )>,
    dispatchers: Vec<crate::webhook::DispatcherHandle>,
    /// The send recovery task ([`sends::run`]).
    recovery: Option<(
        tokio::sync::watch::Sender<bool>,
        tokio::task::JoinHandle<()>,
    )>,
}

/// Opens the signal store the configuration names: PostgreSQL when `DATABASE_CONNECTION_URI` is
/// postgres (the migrations are shared, so it is the gateway's own database), else
/// `signal-store.sqlite3` under `ZAPIN_DATA_DIR`. The master key is `ZAPIN_MASTER_KEY`, else the
/// key file in the data directory (created on first start).
pub async fn open_store(config: &Config) -> Result<Store, RuntimeError> {
    // The process's keyring, shared with the tokens and webhook secrets (an online rotation
    // switches them together).
    let keys = match config.keyring() {
        Some(keys) => keys,
        None => SharedKeyring::from(&MasterKey::resolve(None, &config.data_dir)?),
    };
    Ok(match &config.database {
        Database::Postgres(uri) => {
            Store::open_postgres(&PostgresOptions::new(uri.expose().to_owned()), keys).await?
        }
        Database::EmbeddedSqlite | Database::Sqlite(_) => {
            Store::open_sqlite(&SqliteOptions::new(&config.data_dir), keys).await?
        }
    })
}

/// The engine settings taken from the gateway configuration.
pub fn engine_config(config: &Config) -> EngineConfig {
    EngineConfig {
        ws_url: config.wa_ws_url.clone(),
        tls: config.wa_tls.clone(),
        trust_root: zapin_protocol::crypto::PublicKey(config.wa_root_pubkey),
        version: config.wa_version,
        qrcode_limit: config.qrcode_limit.max(1),
        event_buffer: config.event_buffer.max(1),
        browser: BrowserInfo {
            os: config.phone_client.clone(),
            browser: config.phone_name.clone(),
        },
        ..EngineConfig::default()
    }
}

/// `5511999999999:3@s.whatsapp.net` → `5511999999999@s.whatsapp.net`.
pub fn user_jid(device_jid: &str) -> String {
    match device_jid.split_once('@') {
        Some((user, server)) => {
            let user = user.split_once(':').map_or(user, |(u, _)| u);
            format!("{user}@{server}")
        }
        None => device_jid.to_owned(),
    }
}

impl EngineRuntime {
    pub fn new(manager: SessionManager) -> Arc<Self> {
        Arc::new(Self {
            manager,
            live: Mutex::new(HashMap::new()),
            qr_changed: Notify::new(),
            updates: tokio::sync::broadcast::channel(LIVE_BUFFER).0,
            creating: tokio::sync::Mutex::new(()),
            in_flight: Arc::default(),
            resend: Mutex::new(None),
            tasks: Mutex::new(Tasks::default()),
            bots: std::sync::OnceLock::new(),
            bot_sends: Mutex::default(),
        })
    }

    /// Attaches the chatbot engine (once; later calls are ignored).
    pub fn set_bots(&self, engine: zapin_bots::Engine) {
        let _ = self.bots.set(engine);
    }

    /// The chatbot engine, once attached.
    pub fn bots(&self) -> Option<&zapin_bots::Engine> {
        self.bots.get()
    }

    /// Remembers that the chatbots sent message `id`.
    pub fn note_bot_send(&self, id: &str) {
        let mut ids = self
            .bot_sends
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if ids.len() >= BOT_SENDS_REMEMBERED {
            ids.pop_front();
        }
        ids.push_back(id.to_owned());
    }

    /// Whether message `id` is one the chatbots sent.
    pub fn is_bot_send(&self, id: &str) -> bool {
        self.bot_sends
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .any(|i| i == id)
    }

    fn tasks(&self) -> std::sync::MutexGuard<'_, Tasks> {
        self.tasks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Hands an event dispatcher (one per transport) to the runtime so that
    /// [`Self::shutdown`] stops it after the last engine event is in the outbox.
    pub fn attach_dispatcher(&self, dispatcher: crate::webhook::DispatcherHandle) {
        self.tasks().dispatchers.push(dispatcher);
    }

    /// Stops everything in order: the sessions (credentials stay for the next start), then the
    /// bridge once it has stored every event the sessions emitted, then the dispatcher (what is
    /// undelivered stays in the outbox). Idempotent.
    pub async fn shutdown(&self) {
        self.manager.shutdown().await;
        let (bridge, dispatchers, recovery) = {
            let mut tasks = self.tasks();
            (
                tasks.bridge.take(),
                std::mem::take(&mut tasks.dispatchers),
                tasks.recovery.take(),
            )
        };
        self.resend
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some((stop, task)) = recovery {
            let _ = stop.send(true);
            if let Err(err) = task.await {
                tracing::error!("send recovery task failed: {err}");
            }
        }
        if let Some((stop, task)) = bridge {
            let _ = stop.send(true);
            if let Err(err) = task.await {
                tracing::error!("event bridge task failed: {err}");
            }
        }
        for dispatcher in dispatchers {
            dispatcher.shutdown().await;
        }
    }

    /// Claims the send of `key_id` for the caller until the claim is dropped; `None` when
    /// someone else is sending it.
    pub fn claim_send(&self, instance_id: &str, key_id: &str) -> Option<sends::SendClaim> {
        self.in_flight.claim(instance_id, key_id)
    }

    /// Sends in flight right now (the in-flight set never holds more).
    pub fn sends_in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Asks the recovery task to resend `instance_id`'s unconfirmed sends now if its session is
    /// open (else its next open does).
    pub(crate) fn request_resend(&self, instance_id: &str) {
        if let Some(tx) = self
            .resend
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .as_ref()
        {
            let _ = tx.send(instance_id.to_owned());
        }
    }

    pub fn manager(&self) -> &SessionManager {
        &self.manager
    }

    fn live_map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Live>> {
        self.live
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A copy of what the gateway remembers about `instance_id`.
    pub fn live(&self, instance_id: &str) -> Live {
        self.live_map()
            .get(instance_id)
            .cloned()
            .unwrap_or_default()
    }

    pub(crate) fn update_live(&self, instance_id: &str, f: impl FnOnce(&mut Live)) {
        f(self.live_map().entry(instance_id.to_owned()).or_default());
    }

    /// Every [`LiveUpdate`] from now on.
    pub fn watch(&self) -> tokio::sync::broadcast::Receiver<LiveUpdate> {
        self.updates.subscribe()
    }

    pub(crate) fn publish(&self, update: LiveUpdate) {
        // No watcher is not an error.
        let _ = self.updates.send(update);
    }

    pub(crate) fn notify_qr(&self) {
        self.qr_changed.notify_waiters();
    }

    pub fn session(&self, instance_id: &str) -> Option<SessionHandle> {
        self.manager.get(&InstanceId::new(instance_id))
    }

    /// The in-memory state Evolution reports: `None` when the session is not registered.
    pub fn state(&self, instance_id: &str) -> Option<ConnectionState> {
        self.session(instance_id).map(|h| h.state())
    }

    /// The registered session, creating it (fresh keys) if needed.
    pub async fn ensure_session(&self, instance: &Instance) -> Result<SessionHandle, EngineError> {
        if let Some(h) = self.session(&instance.id) {
            return Ok(h);
        }
        let _creating = self.creating.lock().await;
        if let Some(h) = self.session(&instance.id) {
            return Ok(h);
        }
        match self
            .manager
            .create(
                instance.id.as_str(),
                CreateOptions {
                    push_name: None,
                    start: false,
                },
            )
            .await
        {
            Err(EngineError::AlreadyExists(id)) => {
                self.manager.get(&id).ok_or(EngineError::NotFound(id))
            }
            other => other,
        }
    }

    /// Starts connecting (QR codes, or a pairing code for `number`). Resets the QR count, as a
    /// fresh Baileys socket does.
    pub async fn connect(
        &self,
        instance: &Instance,
        number: Option<&str>,
    ) -> Result<(), EngineError> {
        let handle = self.ensure_session(instance).await?;
        self.update_live(&instance.id, |l| {
            l.qr = None;
            l.count = 0;
            l.number = number.map(str::to_owned);
            l.pairing_code = None;
        });
        handle.connect().await?;
        if let Some(number) = number {
            let code = handle.request_pairing_code(number).await?;
            self.update_live(&instance.id, |l| {
                l.pairing_code = Some(code.clone());
                if let Some(qr) = &mut l.qr {
                    qr.pairing_code = Some(code);
                }
            });
            self.notify_qr();
        }
        Ok(())
    }

    /// Waits (at most `limit`) until `instance_id` has a QR object, and returns the latest.
    pub async fn wait_for_qr(&self, instance_id: &str, limit: Duration) -> Live {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let changed = self.qr_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let live = self.live(instance_id);
            let has_code =
                live.qr.is_some() && (live.number.is_none() || live.pairing_code.is_some());
            let open = self.state(instance_id) == Some(ConnectionState::Open);
            if has_code || open {
                return live;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return self.live(instance_id);
            }
        }
    }

    /// Logs out (the session stays registered, unpaired) and forgets the QR state.
    pub async fn logout(&self, instance_id: &str) -> Result<(), EngineError> {
        let result = self.manager.logout(&InstanceId::new(instance_id)).await;
        self.update_live(instance_id, |l| *l = Live::default());
        result
    }

    /// Stops and starts the session again (Evolution's restart).
    pub async fn restart(&self, instance: &Instance) -> Result<(), EngineError> {
        let handle = self.ensure_session(instance).await?;
        handle.stop().await?;
        handle.connect().await
    }

    /// Removes the session and its stored keys.
    pub async fn delete(&self, instance_id: &str) {
        let id = InstanceId::new(instance_id);
        if self.manager.get(&id).is_some() {
            let _ = self.manager.logout(&id).await;
            if let Err(err) = self.manager.delete(&id).await {
                tracing::warn!(instance = instance_id, "deleting the session: {err}");
            }
        }
        self.live_map().remove(instance_id);
    }
}

impl crate::http::InstanceRuntime for Arc<EngineRuntime> {
    fn instance_created(&self, instance: &Instance, qrcode: bool, number: Option<&str>) {
        let this = self.clone();
        let instance = instance.clone();
        let number = number.map(str::to_owned);
        tokio::spawn(async move {
            let result = if qrcode {
                this.connect(&instance, number.as_deref()).await
            } else {
                this.ensure_session(&instance).await.map(|_| ())
            };
            if let Err(err) = result {
                tracing::warn!(instance = %instance.name, "starting the session: {err}");
            }
        });
    }

    fn instance_deleted(&self, instance: &Instance) {
        let this = self.clone();
        let id = instance.id.clone();
        tokio::spawn(async move { this.delete(&id).await });
    }
}

/// Brings the engine up for `serve`/`demo`: opens the signal store, starts the event bridge,
/// then loads every stored device (linked ones reconnect without a QR). Returns the runtime to
/// put into [`crate::AppState`].
pub async fn start(
    config: &Config,
    db: &crate::db::Db,
    tokens: crate::http::TokenCipher,
) -> Result<Arc<EngineRuntime>, RuntimeError> {
    let store = open_store(config).await?;
    start_with(store, engine_config(config), config, db, tokens).await
}

/// [`start`] with an explicit store and engine configuration (tests shrink the timers).
pub async fn start_with(
    store: Store,
    engine: EngineConfig,
    config: &Config,
    db: &crate::db::Db,
    tokens: crate::http::TokenCipher,
) -> Result<Arc<EngineRuntime>, RuntimeError> {
    let manager = SessionManager::new(store, engine);
    let runtime = EngineRuntime::new(manager.clone());
    // Subscribe before loading so the first events of restored sessions are seen.
    let events = manager.subscribe();
    let bridge = bridge::Bridge {
        runtime: runtime.clone(),
        db: db.clone(),
        config: Arc::new(config.clone()),
        tokens,
    };
    let recovery_events = manager.subscribe();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(bridge.clone().run(events, stopped));
    runtime.tasks().bridge = Some((stop, task));
    let (resend_tx, resend_rx) = tokio::sync::mpsc::unbounded_channel();
    *runtime
        .resend
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(resend_tx);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(sends::run(bridge, recovery_events, resend_rx, stopped));
    runtime.tasks().recovery = Some((stop, task));
    // Each instance's proxy, before its session can connect.
    let secrets = crate::webhook::SecretCipher::with_keyring(config.keyring());
    for row in db.enabled_proxies().await? {
        let creds =
            crate::http::proxy_credentials(&secrets, &row.instance_id, row.secret.as_deref());
        let Some((username, password)) = creds else {
            tracing::error!(instance = %row.instance_id, "stored proxy credentials do not open: the session connects without its proxy");
            continue;
        };
        match crate::http::proxy_config(&row.protocol, &row.host, &row.port, &username, &password) {
            Some(proxy) => {
                manager.set_proxy(&InstanceId::new(row.instance_id.as_str()), Some(proxy))
            }
            None => tracing::error!(instance = %row.instance_id, "stored proxy is unusable"),
        }
    }
    let loaded = manager.load_all().await?;
    tracing::info!(sessions = loaded.len(), "engine sessions loaded");
    Ok(runtime)
}
