//! `SessionManager`: the registry of sessions, their supervisors, and the shared event stream.
//!
//! The registry is a `std::sync::Mutex<HashMap>`: it is touched on create/get/delete only (not per
//! message), the lock is never held across an `.await`, and it avoids a dependency; a sharded map
//! (DashMap) would only pay off with very hot lookups from many threads.
//!
//! Each session is one tokio task: its supervisor loop wraps the actor future in
//! `catch_unwind`, so a panicking session (a bug, a poisoned state) is rebuilt from the store and
//! restarted after a full-jitter backoff while every other session keeps running. Doing this inside
//! the task (instead of awaiting a second task's `JoinHandle`) keeps the command channel alive
//! across restarts and costs one task per session instead of two.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use tokio::sync::{broadcast, mpsc, watch};
use zapin_signal_store::{DeviceId, Store};

use crate::backoff::Backoff;
use crate::command::{Command, SessionHandle, SessionStatus};
use crate::config::EngineConfig;
use crate::error::EngineError;
use crate::events::{ConnectionState, Event, InstanceId};
use crate::keys;
use crate::messaging::{ReceivedMessage, inbox};
use crate::session::{Session, SessionContext};

/// Options of [`SessionManager::create`].
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// Push name sent at registration and in `<presence>`.
    pub push_name: Option<String>,
    /// Connect right away (an unpaired session then starts emitting QR codes).
    pub start: bool,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    config: Arc<EngineConfig>,
    events: broadcast::Sender<Event>,
    sessions: Mutex<HashMap<InstanceId, SessionHandle>>,
    /// `EngineConfig::max_concurrent_handshakes` as a semaphore shared by every session.
    handshakes: Option<Arc<tokio::sync::Semaphore>>,
    proxies: Arc<crate::proxy::ProxyTable>,
}

/// Cheap to clone; all clones share the sessions.
#[derive(Debug, Clone)]
pub struct SessionManager {
    inner: Arc<Inner>,
}

fn device_id(id: &InstanceId) -> Result<DeviceId, EngineError> {
    Ok(DeviceId::new(id.as_str())?)
}

impl SessionManager {
    pub fn new(store: Store, config: EngineConfig) -> Self {
        let (events, _) = broadcast::channel(config.event_buffer.max(1));
        let handshakes = (config.max_concurrent_handshakes > 0).then(|| {
            Arc::new(tokio::sync::Semaphore::new(
                config.max_concurrent_handshakes,
            ))
        });
        Self {
            inner: Arc::new(Inner {
                store,
                config: Arc::new(config),
                events,
                sessions: Mutex::new(HashMap::new()),
                handshakes,
                proxies: Arc::default(),
            }),
        }
    }

    /// Every session's events. Subscribe before starting sessions to see their first events.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, HashMap<InstanceId, SessionHandle>> {
        self.inner
            .sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn get(&self, id: &InstanceId) -> Option<SessionHandle> {
        self.registry().get(id).cloned()
    }

    fn require(&self, id: &InstanceId) -> Result<SessionHandle, EngineError> {
        self.get(id)
            .ok_or_else(|| EngineError::NotFound(id.clone()))
    }

    /// Sets (or with `None` removes) the proxy instance `id` connects through. It applies from
    /// the session's next connection on; an instance that does not exist yet gets it when it is
    /// created or loaded, so set proxies before [`SessionManager::load_all`].
    pub fn set_proxy(&self, id: &InstanceId, proxy: Option<crate::proxy::ProxyConfig>) {
        self.inner.proxies.set(id.clone(), proxy);
    }

    pub fn state(&self, id: &InstanceId) -> Option<ConnectionState> {
        self.get(id).map(|h| h.state())
    }

    pub fn instances(&self) -> Vec<InstanceId> {
        let mut ids: Vec<_> = self.registry().keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Creates a session: new credentials in the store unless the store already has this device
    /// (then it is adopted as it is).
    pub async fn create(
        &self,
        id: impl Into<InstanceId>,
        options: CreateOptions,
    ) -> Result<SessionHandle, EngineError> {
        let id = id.into();
        if self.get(&id).is_some() {
            return Err(EngineError::AlreadyExists(id));
        }
        let device = device_id(&id)?;
        if self.inner.store.load_credentials(&device).await?.is_none() {
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed).map_err(|_| EngineError::Random)?;
            let mut rng =
                <chacha20::ChaCha20Rng as chacha20::rand_core::SeedableRng>::from_seed(seed);
            let mut creds = keys::new_credentials(&mut rng, unix_now());
            creds.push_name = options.push_name.clone();
            self.inner.store.create_device(&device, &creds).await?;
        }
        self.spawn(id, device, options.start).await
    }

    /// Brings back every device in the store (at startup). Paired devices connect right away,
    /// with their stored credentials and no QR; unpaired ones wait for `start`.
    pub async fn load_all(&self) -> Result<Vec<InstanceId>, EngineError> {
        let mut loaded = Vec::new();
        for device in self.inner.store.list_devices().await? {
            let id = InstanceId::new(device.as_str());
            if self.get(&id).is_some() {
                continue;
            }
            let paired = self
                .inner
                .store
                .load_credentials(&device)
                .await?
                .is_some_and(|c| c.account.is_some());
            self.spawn(id.clone(), device, paired).await?;
            loaded.push(id);
        }
        Ok(loaded)
    }

    async fn spawn(
        &self,
        id: InstanceId,
        device: DeviceId,
        start: bool,
    ) -> Result<SessionHandle, EngineError> {
        let (status_tx, status_rx) = watch::channel(SessionStatus {
            state: ConnectionState::Close,
            running: start,
            jid: None,
            last_error: None,
        });
        let ctx = SessionContext {
            instance: id.clone(),
            device,
            store: self.inner.store.clone(),
            config: self.inner.config.clone(),
            events: self.inner.events.clone(),
            status: status_tx,
            handshakes: self.inner.handshakes.clone(),
            proxies: self.inner.proxies.clone(),
        };
        // Load once here so that a missing or unreadable device fails `create` itself.
        let session = Session::load(ctx.clone()).await?;
        let (tx, rx) = mpsc::channel(self.inner.config.command_buffer.max(1));
        let handle = SessionHandle {
            instance: id.clone(),
            commands: tx,
            status: status_rx,
        };
        {
            let mut registry = self.registry();
            if registry.contains_key(&id) {
                return Err(EngineError::AlreadyExists(id));
            }
            registry.insert(id, handle.clone());
        }
        tokio::spawn(supervise(ctx, session, rx));
        Ok(handle)
    }

    pub async fn start(&self, id: &InstanceId) -> Result<(), EngineError> {
        self.require(id)?.connect().await
    }

    pub async fn stop(&self, id: &InstanceId) -> Result<(), EngineError> {
        self.require(id)?.stop().await
    }

    pub async fn logout(&self, id: &InstanceId) -> Result<(), EngineError> {
        self.require(id)?.logout().await
    }

    /// Stops the session, removes it from the registry and deletes everything it stored.
    pub async fn delete(&self, id: &InstanceId) -> Result<(), EngineError> {
        let handle = self.require(id)?;
        // A session that is already gone is fine: only its data is left to remove.
        let _ = handle.shutdown().await;
        self.registry().remove(id);
        self.inner.store.delete_device(&device_id(id)?).await?;
        Ok(())
    }

    /// Messages of `id` that were decrypted and acknowledged but whose consumer has not yet
    /// confirmed them with [`SessionManager::confirm_received`], oldest first: a crash (or a
    /// subscriber that lagged behind the event stream) came between the two. Surface them again
    /// at start-up before the sessions run, and after a lag; deduplicate by message id. A row that
    /// cannot be read back is logged and left in place, never dropped.
    pub async fn pending_received(
        &self,
        id: &InstanceId,
    ) -> Result<Vec<ReceivedMessage>, EngineError> {
        let entries = self.inner.store.load_inbox(&device_id(id)?).await?;
        let mut out = Vec::with_capacity(entries.len());
        for entry in &entries {
            match inbox::message_of(entry) {
                Ok(m) => out.push(m),
                Err(e) => {
                    tracing::error!(instance = %id, id = %entry.id, "unreadable inbox entry kept: {e}")
                }
            }
        }
        Ok(out)
    }

    /// Every device in the store that has unconfirmed messages (see
    /// [`SessionManager::pending_received`]), registered or not.
    pub async fn instances_with_pending(&self) -> Result<Vec<InstanceId>, EngineError> {
        let mut out = Vec::new();
        for device in self.inner.store.list_devices().await? {
            if self.inner.store.count_inbox(&device).await? > 0 {
                out.push(InstanceId::new(device.as_str()));
            }
        }
        Ok(out)
    }

    /// The consumer of [`EventKind::MessageUpsert`](crate::EventKind::MessageUpsert) has stored
    /// these messages of `id` durably: the engine may forget them (one transaction). Confirming
    /// one that is not pending is a no-op, so a replayed message can be confirmed again.
    pub async fn confirm_received(
        &self,
        id: &InstanceId,
        messages: &[&ReceivedMessage],
    ) -> Result<(), EngineError> {
        let names: Vec<_> = messages.iter().map(|m| inbox::name_of(m)).collect();
        self.inner
            .store
            .delete_inbox(&device_id(id)?, &names)
            .await?;
        Ok(())
    }

    /// Stops every session and waits for their actors to end (credentials are kept).
    pub async fn shutdown(&self) {
        let handles: Vec<_> = self.registry().drain().map(|(_, h)| h).collect();
        for h in handles {
            let _ = h.shutdown().await;
        }
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Runs a session; on panic, rebuilds it from the store and restarts it after a backoff.
async fn supervise(ctx: SessionContext, session: Session, mut commands: mpsc::Receiver<Command>) {
    let mut session = Some(session);
    let mut restarts = Backoff::default();
    loop {
        let mut current = match session.take() {
            Some(s) => s,
            None => match Session::load(ctx.clone()).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(instance = %ctx.instance, "cannot reload session after a panic: {e}");
                    ctx.status.send_modify(|s| {
                        s.state = ConnectionState::Close;
                        s.running = false;
                    });
                    return;
                }
            },
        };
        let run = AssertUnwindSafe(current.run(&mut commands))
            .catch_unwind()
            .await;
        match run {
            Ok(()) => return,
            Err(_) => {
                drop(current);
                let delay = restarts.next_delay(&ctx.config.backoff, random_u64());
                tracing::error!(instance = %ctx.instance, ?delay, "session panicked; restarting");
                ctx.status
                    .send_modify(|s| s.state = ConnectionState::Connecting);
                tokio::time::sleep(delay).await;
            }
        }
    }
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    u64::from_le_bytes(b)
}
