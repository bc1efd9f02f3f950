//! The session actor: one task per WhatsApp device that owns its socket, its Noise transport, its
//! credentials and its timers, and is driven by [`Command`]s and server nodes.
//!
//! Life of a session: `run` loops over connection attempts while the session is "running";
//! each attempt is `connect_and_serve`, whose [`Outcome`] decides what comes next
//! (wa-protocol.md §10, `disconnect.rs`): reconnect now (515, QR refs exhausted), reconnect after a
//! full-jitter backoff (5xx, lost socket, refused, handshake failure), stop (440 conflict,
//! permanent failures, QR limit), or log out (401 & co: credentials cleared).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chacha20::ChaCha20Rng;
use chacha20::rand_core::SeedableRng;
use rand_core::Rng;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::{Instant, sleep_until, timeout};
use zapin_protocol::binary::Node;
use zapin_protocol::crypto::{KeyPair, PublicKey};
use zapin_protocol::jid::{Jid, Server};
use zapin_protocol::signal::LocalIdentity;
use zapin_signal_store::{
    Account, Address, DeviceCredentials, DeviceId, IdentityRecord, Secret32, Store, Trust,
};

use crate::backoff::Backoff;
use crate::command::{
    Command, GroupInfo, NumberCheck, OutgoingMessage, SendOptions, SessionStatus,
};
use crate::config::EngineConfig;
use crate::disconnect::{DisconnectReason, NextStep};
use crate::error::EngineError;
use crate::events::{ConnectionState, Event, EventKind, InstanceId, LogoutReason};
use crate::keepalive::{Keepalive, KeepaliveAction};
use crate::keys;
use crate::link_code;
use crate::messaging::directory::Directory;
use crate::messaging::{
    Exchange, ExchangeError, Limits, Me, MessagingError, Messenger, content, groups, ids, presence,
    receipts, usync,
};
use crate::pairing;
use crate::payload;
use crate::socket::{ConnError, Connection};

/// What the supervisor needs to (re)build a session after a panic.
#[derive(Debug, Clone)]
pub(crate) struct SessionContext {
    pub instance: InstanceId,
    pub device: DeviceId,
    pub store: Store,
    pub config: Arc<EngineConfig>,
    pub events: broadcast::Sender<Event>,
    pub status: watch::Sender<SessionStatus>,
    /// Shared by every session of a manager: `EngineConfig::max_concurrent_handshakes` slots.
    pub handshakes: Option<Arc<tokio::sync::Semaphore>>,
}

/// Evolution's `statusReason` for a refused (QR limit) session.
const STATUS_REFUSED: u16 = 428;
const STATUS_OK: u16 = 200;

/// How one connection (or the wait before the next) ended.
#[derive(Debug)]
enum Outcome {
    ReconnectNow,
    Retry {
        status: u16,
        reason: String,
        penalty: u32,
    },
    /// Stop, keep credentials.
    Stop {
        status: u16,
        reason: String,
    },
    /// Credentials revoked by the server.
    Revoked {
        code: u16,
    },
    /// The QR limit was reached.
    Refused,
    /// `stop()` was called.
    UserStop(oneshot::Sender<Result<(), EngineError>>),
    /// `logout()` was called.
    UserLogout(oneshot::Sender<Result<(), EngineError>>),
    /// The actor must end (`delete`, `shutdown`, or the manager is gone).
    Exit(Option<oneshot::Sender<Result<(), EngineError>>>),
}

/// What an IQ we sent is waiting for.
#[derive(Debug)]
enum Pending {
    Ping,
    PreKeyCount,
    PreKeyUpload,
    Active,
    Digest,
    LinkHello(oneshot::Sender<Result<String, EngineError>>),
    LinkFinish,
    Logout,
}

/// Phone-code pairing in progress.
struct LinkCode {
    code: String,
    phone: String,
    ephemeral: KeyPair,
}

/// QR codes of the current `pair-device`.
struct QrRotation {
    refs: VecDeque<String>,
    first: bool,
    deadline: Instant,
}

/// Per-connection state.
struct Conn {
    keepalive: Keepalive,
    pending: HashMap<String, (Instant, Pending)>,
    qr: Option<QrRotation>,
    /// Set at `<success>`.
    opened_at: Option<Instant>,
    registration: bool,
    pair_device_seen: bool,
    active_sent: bool,
    digest_reupload_done: bool,
    /// Nodes that arrived while a messaging call waited for an IQ answer; handled next.
    deferred: VecDeque<Node>,
}

enum Step {
    Continue,
    End(Outcome),
}

pub(crate) struct Session {
    ctx: SessionContext,
    creds: DeviceCredentials,
    rng: ChaCha20Rng,
    backoff: Backoff,
    running: bool,
    qr_count: u32,
    iq_counter: u64,
    iq_prefix: u32,
    pending_code: Option<(String, oneshot::Sender<Result<String, EngineError>>)>,
    link: Option<LinkCode>,
    /// Messaging state of a paired device (caches survive reconnects).
    messenger: Option<Messenger>,
    /// Contacts and chats seen in this run (for their events).
    directory: Directory,
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn os_rng() -> Result<ChaCha20Rng, EngineError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|_| EngineError::Random)?;
    Ok(ChaCha20Rng::from_seed(seed))
}

fn valid_phone(phone: &str) -> bool {
    (7..=15).contains(&phone.len()) && phone.bytes().all(|b| b.is_ascii_digit())
}

fn own_jid(creds: &DeviceCredentials) -> Option<String> {
    creds.account.as_ref().map(|a| a.device_jid.clone())
}

impl Session {
    pub(crate) async fn load(ctx: SessionContext) -> Result<Self, EngineError> {
        let creds = ctx
            .store
            .load_credentials(&ctx.device)
            .await?
            .ok_or_else(|| EngineError::NotFound(ctx.instance.clone()))?;
        let mut rng = os_rng()?;
        let iq_prefix = rng.next_u32();
        let running = ctx.status.borrow().running;
        let jid = own_jid(&creds);
        ctx.status.send_modify(|s| s.jid = jid);
        Ok(Session {
            ctx,
            creds,
            rng,
            backoff: Backoff::default(),
            running,
            qr_count: 0,
            iq_counter: 0,
            iq_prefix,
            pending_code: None,
            link: None,
            messenger: None,
            directory: Directory::default(),
        }
        .with_messenger())
    }

    /// (Re)creates the messenger from the stored account; `None` while unpaired.
    fn with_messenger(mut self) -> Self {
        self.messenger = make_messenger(&self.ctx, &self.creds);
        self
    }

    fn paired(&self) -> bool {
        self.creds.account.is_some()
    }

    fn emit(&self, kind: EventKind) {
        // No subscriber is not an error.
        let _ = self.ctx.events.send(Event {
            instance: self.ctx.instance.clone(),
            kind,
        });
    }

    /// Publishes a state change (event + watch). Repeated identical states are not re-emitted.
    fn set_state(&self, state: ConnectionState, status: u16, reason: Option<String>) {
        let changed = self.ctx.status.borrow().state != state;
        let running = self.running;
        self.ctx.status.send_modify(|s| {
            s.state = state;
            s.running = running;
        });
        if changed || state == ConnectionState::Refused {
            tracing::info!(instance = %self.ctx.instance, state = state.as_str(), status, ?reason, "connection");
            self.emit(EventKind::Connection {
                state,
                status,
                reason,
            });
        }
    }

    fn set_running(&mut self, running: bool) {
        self.running = running;
        self.ctx.status.send_modify(|s| s.running = running);
    }

    fn next_iq_id(&mut self) -> String {
        self.iq_counter += 1;
        format!("{:08x}.{}", self.iq_prefix, self.iq_counter)
    }

    /// The actor's body. Returns when the session must end.
    pub(crate) async fn run(&mut self, commands: &mut mpsc::Receiver<Command>) {
        loop {
            if !self.running {
                match commands.recv().await {
                    None => return,
                    Some(cmd) => {
                        if let Some(exit) = self.idle_command(cmd).await {
                            let _ = exit.map(|r| r.send(Ok(())));
                            return;
                        }
                    }
                }
                continue;
            }
            self.set_state(ConnectionState::Connecting, STATUS_OK, None);
            let outcome = self.connect_and_serve(commands).await;
            if !matches!(outcome, Outcome::ReconnectNow)
                && let Some((_, reply)) = self.pending_code.take()
            {
                // A phone-code request waits for a registration connection; this one failed.
                let _ = reply.send(Err(EngineError::NotConnected));
            }
            let outcome = match outcome {
                Outcome::Retry {
                    status,
                    reason,
                    penalty,
                } => {
                    self.backoff.penalize(penalty);
                    let delay = self
                        .backoff
                        .next_delay(&self.ctx.config.backoff, self.rng.next_u64());
                    tracing::info!(instance = %self.ctx.instance, ?delay, status, %reason, "reconnecting after backoff");
                    self.ctx
                        .status
                        .send_modify(|s| s.last_error = Some(format!("{status}: {reason}")));
                    self.set_state(ConnectionState::Connecting, status, Some(reason));
                    self.wait(commands, delay).await
                }
                other => other,
            };
            if self.finish(outcome).await {
                return;
            }
        }
    }

    /// Applies an outcome. Returns true when the actor must end.
    async fn finish(&mut self, outcome: Outcome) -> bool {
        match outcome {
            Outcome::ReconnectNow | Outcome::Retry { .. } => false,
            Outcome::Stop { status, reason } => {
                self.set_running(false);
                self.set_state(ConnectionState::Close, status, Some(reason));
                false
            }
            Outcome::Revoked { code } => {
                let result = self.clear_credentials().await;
                if let Err(e) = result {
                    tracing::error!(instance = %self.ctx.instance, "clearing credentials failed: {e}");
                }
                self.set_running(false);
                self.emit(EventKind::LoggedOut {
                    reason: LogoutReason::Revoked { code },
                });
                self.set_state(ConnectionState::Close, code, Some("logged out".into()));
                false
            }
            Outcome::Refused => {
                self.qr_count = 0;
                self.set_running(false);
                self.emit(EventKind::QrLimitReached);
                self.set_state(
                    ConnectionState::Refused,
                    STATUS_REFUSED,
                    Some("QR code limit reached".into()),
                );
                self.set_state(ConnectionState::Close, STATUS_REFUSED, None);
                false
            }
            Outcome::UserStop(reply) => {
                self.set_running(false);
                self.set_state(ConnectionState::Close, STATUS_OK, Some("stopped".into()));
                let _ = reply.send(Ok(()));
                false
            }
            Outcome::UserLogout(reply) => {
                let result = self.clear_credentials().await;
                self.set_running(false);
                if result.is_ok() {
                    self.emit(EventKind::LoggedOut {
                        reason: LogoutReason::UserInitiated,
                    });
                }
                self.set_state(ConnectionState::Close, 401, Some("logged out".into()));
                let _ = reply.send(result);
                false
            }
            Outcome::Exit(reply) => {
                self.set_running(false);
                self.set_state(ConnectionState::Close, STATUS_OK, Some("shut down".into()));
                if let Some(r) = reply {
                    let _ = r.send(Ok(()));
                }
                true
            }
        }
    }

    /// Replaces the credentials by fresh, unpaired ones (and drops every Signal row).
    async fn clear_credentials(&mut self) -> Result<(), EngineError> {
        let fresh = keys::new_credentials(&mut self.rng, now_unix());
        self.ctx.store.delete_device(&self.ctx.device).await?;
        self.ctx
            .store
            .create_device(&self.ctx.device, &fresh)
            .await?;
        self.creds = fresh;
        self.qr_count = 0;
        self.link = None;
        self.messenger = None;
        self.directory = Directory::default();
        self.ctx.status.send_modify(|s| s.jid = None);
        Ok(())
    }

    /// A command while not connected. Returns `Some` when the actor must exit.
    async fn idle_command(
        &mut self,
        cmd: Command,
    ) -> Option<Option<oneshot::Sender<Result<(), EngineError>>>> {
        match cmd {
            Command::Connect { reply } => {
                self.set_running(true);
                self.backoff = Backoff::default();
                let _ = reply.send(Ok(()));
            }
            Command::Stop { reply } => {
                let _ = reply.send(Ok(()));
            }
            Command::Logout { reply } => {
                let was_paired = self.paired();
                let result = self.clear_credentials().await;
                if result.is_ok() && was_paired {
                    self.emit(EventKind::LoggedOut {
                        reason: LogoutReason::UserInitiated,
                    });
                }
                let _ = reply.send(result);
            }
            Command::RequestPairingCode { phone, reply } => {
                if self.queue_pairing_code(phone, reply) {
                    self.set_running(true);
                }
            }
            Command::Shutdown { reply } => return Some(Some(reply)),
            other => self.messaging_command(other),
        }
        None
    }

    /// Validates and queues a pairing-code request (answered here when invalid). Returns whether
    /// it was queued.
    fn queue_pairing_code(
        &mut self,
        phone: String,
        reply: oneshot::Sender<Result<String, EngineError>>,
    ) -> bool {
        if self.paired() {
            let _ = reply.send(Err(EngineError::AlreadyPaired));
            return false;
        }
        if !valid_phone(&phone) {
            let _ = reply.send(Err(EngineError::InvalidPhone(phone)));
            return false;
        }
        if let Some((_, old)) = self.pending_code.take() {
            let _ = old.send(Err(EngineError::SessionGone));
        }
        self.pending_code = Some((phone, reply));
        true
    }

    /// Messaging commands while no connection is open.
    fn messaging_command(&mut self, cmd: Command) {
        match cmd {
            Command::SendMessage { reply, .. } => {
                let _ = reply.send(Err(EngineError::NotConnected));
            }
            Command::SendPresence { reply, .. } | Command::MarkRead { reply, .. } => {
                let _ = reply.send(Err(EngineError::NotConnected));
            }
            Command::CheckNumbers { reply, .. } => {
                let _ = reply.send(Err(EngineError::NotConnected));
            }
            Command::GroupInfo { reply, .. } => {
                let _ = reply.send(Err(EngineError::NotConnected));
            }
            Command::SubscribePresence { reply, .. } | Command::SendChatPresence { reply, .. } => {
                let _ = reply.send(Err(EngineError::NotConnected));
            }
            Command::InjectPanic => {
                panic!("injected panic (test hook)");
            }
            // Lifecycle commands never reach here.
            Command::Connect { reply }
            | Command::Stop { reply }
            | Command::Logout { reply }
            | Command::Shutdown { reply } => {
                let _ = reply.send(Err(EngineError::Unsupported("internal routing")));
            }
            Command::RequestPairingCode { reply, .. } => {
                let _ = reply.send(Err(EngineError::Unsupported("internal routing")));
            }
        }
    }

    /// A command while no connection is up (backoff wait, handshake). `Some` ends the wait;
    /// `Connect` answers `ReconnectNow`, which the handshake wait ignores.
    fn offline_command(&mut self, cmd: Command) -> Option<Outcome> {
        match cmd {
            Command::Connect { reply } => {
                let _ = reply.send(Ok(()));
                Some(Outcome::ReconnectNow)
            }
            Command::Stop { reply } => Some(Outcome::UserStop(reply)),
            Command::Logout { reply } => Some(Outcome::UserLogout(reply)),
            Command::Shutdown { reply } => Some(Outcome::Exit(Some(reply))),
            Command::RequestPairingCode { phone, reply } => {
                self.queue_pairing_code(phone, reply);
                None
            }
            other => {
                self.messaging_command(other);
                None
            }
        }
    }

    /// Waits `delay` before a reconnect while still obeying commands.
    async fn wait(&mut self, commands: &mut mpsc::Receiver<Command>, delay: Duration) -> Outcome {
        let until = Instant::now() + delay;
        loop {
            tokio::select! {
                _ = sleep_until(until) => return Outcome::ReconnectNow,
                cmd = commands.recv() => {
                    let Some(cmd) = cmd else { return Outcome::Exit(None) };
                    if let Some(outcome) = self.offline_command(cmd) {
                        return outcome;
                    }
                }
            }
        }
    }

    async fn connect_and_serve(&mut self, commands: &mut mpsc::Receiver<Command>) -> Outcome {
        let config = self.ctx.config.clone();
        let registration = !self.paired();
        let client_payload = match &self.creds.account {
            None => payload::registration_payload(&config, &self.creds),
            Some(account) => {
                let Some((user, device)) = login_identity(&account.device_jid) else {
                    return Outcome::Stop {
                        status: 500,
                        reason: format!("stored device JID {:?} is unusable", account.device_jid),
                    };
                };
                payload::login_payload(&config, user, device, self.creds.push_name.as_deref())
            }
        };
        let noise = keys::key_pair(&self.creds.noise_key);
        let ephemeral = KeyPair::generate(&mut self.rng);
        let routing = self.creds.routing_info.clone();
        let handshakes = self.ctx.handshakes.clone();
        // Handshake concurrency limit: hold a slot for connect + handshake only; the wait for a
        // slot is outside `connect_timeout` so a queue of reconnects does not time out.
        let opening = async {
            let _slot = match &handshakes {
                Some(sem) => sem.acquire().await.ok(),
                None => None,
            };
            timeout(
                config.connect_timeout,
                Connection::open(
                    &config,
                    noise,
                    ephemeral,
                    routing.as_deref(),
                    &client_payload,
                    now_unix(),
                ),
            )
            .await
        };
        tokio::pin!(opening);
        // Commands still work while the handshake runs (a stop must not wait for it).
        let opened = loop {
            tokio::select! {
                r = &mut opening => break r,
                cmd = commands.recv() => {
                    let Some(cmd) = cmd else { return Outcome::Exit(None) };
                    match self.offline_command(cmd) {
                        None | Some(Outcome::ReconnectNow) => {}
                        Some(outcome) => return outcome,
                    }
                }
            }
        };
        let mut conn = match opened {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => {
                return Outcome::Retry {
                    status: 408,
                    reason: format!("connect failed: {e}"),
                    penalty: 0,
                };
            }
            Err(_) => {
                return Outcome::Retry {
                    status: 408,
                    reason: "connect timed out".into(),
                    penalty: 0,
                };
            }
        };
        let started = Instant::now();
        let mut cx = Conn {
            keepalive: Keepalive::new(config.keepalive_interval, config.keepalive_timeout, started),
            pending: HashMap::new(),
            qr: None,
            opened_at: None,
            registration,
            pair_device_seen: false,
            active_sent: false,
            digest_reupload_done: false,
            deferred: VecDeque::new(),
        };
        let outcome = self.serve(&mut conn, &mut cx, commands).await;
        let uptime = cx.opened_at.map_or(Duration::ZERO, |t| t.elapsed());
        self.backoff.on_connection_closed(&config.backoff, uptime);
        for (_, (_, pending)) in cx.pending.drain() {
            if let Pending::LinkHello(reply) = pending {
                let _ = reply.send(Err(EngineError::NotConnected));
            }
        }
        if !matches!(outcome, Outcome::ReconnectNow) {
            // A phone-code flow does not survive its connection (the server forgets the ref).
            self.link = None;
        }
        conn.close().await;
        outcome
    }

    async fn serve(
        &mut self,
        conn: &mut Connection,
        cx: &mut Conn,
        commands: &mut mpsc::Receiver<Command>,
    ) -> Outcome {
        loop {
            while let Some(node) = cx.deferred.pop_front() {
                if let Step::End(outcome) = self.handle_node(conn, cx, node).await {
                    return outcome;
                }
            }
            let keepalive_at = cx.keepalive.deadline();
            let qr_at = cx.qr.as_ref().map(|q| q.deadline);
            let iq_at = cx.pending.values().map(|(t, _)| *t).min();
            let step = tokio::select! {
                message = conn.next_message() => {
                    match conn.decode(message) {
                        Ok(nodes) => {
                            cx.keepalive.on_inbound(Instant::now());
                            let mut step = Step::Continue;
                            for node in nodes {
                                step = self.handle_node(conn, cx, node).await;
                                if matches!(step, Step::End(_)) {
                                    break;
                                }
                            }
                            step
                        }
                        Err(e) => Step::End(lost(e)),
                    }
                }
                cmd = commands.recv() => {
                    match cmd {
                        None => Step::End(Outcome::Exit(None)),
                        Some(cmd) => self.connected_command(conn, cx, cmd).await,
                    }
                }
                _ = sleep_until(keepalive_at) => {
                    match cx.keepalive.poll(Instant::now()) {
                        KeepaliveAction::Wait => Step::Continue,
                        KeepaliveAction::SendPing => {
                            let id = self.next_iq_id();
                            let node = keys::ping_iq(&id);
                            self.track(cx, id, Pending::Ping);
                            self.send(conn, &node).await
                        }
                        KeepaliveAction::Dead => Step::End(Outcome::Retry {
                            status: 408,
                            reason: "keepalive: no data from the server".into(),
                            penalty: 0,
                        }),
                    }
                }
                _ = sleep_until(qr_at.unwrap_or(keepalive_at)), if qr_at.is_some() => {
                    self.show_next_qr(cx)
                }
                _ = sleep_until(iq_at.unwrap_or(keepalive_at)), if iq_at.is_some() => {
                    self.expire_iqs(cx);
                    Step::Continue
                }
            };
            if let Step::End(outcome) = step {
                return outcome;
            }
        }
    }

    fn track(&self, cx: &mut Conn, id: String, pending: Pending) {
        let deadline = Instant::now() + self.ctx.config.iq_timeout;
        cx.pending.insert(id, (deadline, pending));
    }

    fn expire_iqs(&self, cx: &mut Conn) {
        let now = Instant::now();
        let expired: Vec<String> = cx
            .pending
            .iter()
            .filter(|(_, (t, _))| *t <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            if let Some((_, pending)) = cx.pending.remove(&id) {
                tracing::warn!(instance = %self.ctx.instance, %id, ?pending, "IQ timed out");
                if let Pending::LinkHello(reply) = pending {
                    let _ = reply.send(Err(EngineError::Timeout));
                }
            }
        }
    }

    async fn send(&self, conn: &mut Connection, node: &Node) -> Step {
        match conn.send(node).await {
            Ok(()) => Step::Continue,
            Err(e) => Step::End(lost(e)),
        }
    }

    async fn connected_command(
        &mut self,
        conn: &mut Connection,
        cx: &mut Conn,
        cmd: Command,
    ) -> Step {
        match cmd {
            Command::Connect { reply } => {
                let _ = reply.send(Ok(()));
                Step::Continue
            }
            Command::Stop { reply } => Step::End(Outcome::UserStop(reply)),
            Command::Shutdown { reply } => Step::End(Outcome::Exit(Some(reply))),
            Command::Logout { reply } => {
                if let Some(jid) = own_jid(&self.creds).filter(|_| cx.opened_at.is_some()) {
                    // Tell the server; the answer does not matter, the credentials go either way.
                    let id = self.next_iq_id();
                    let node = keys::iq(
                        &id,
                        "set",
                        "md",
                        vec![
                            Node::new("remove-companion-device")
                                .attr("jid", jid)
                                .attr("reason", "user_initiated"),
                        ],
                    );
                    self.track(cx, id, Pending::Logout);
                    let _ = conn.send(&node).await;
                }
                Step::End(Outcome::UserLogout(reply))
            }
            Command::RequestPairingCode { phone, reply } => {
                if self.queue_pairing_code(phone, reply) && cx.registration && cx.pair_device_seen {
                    return self.start_link_code(conn, cx).await;
                }
                Step::Continue
            }
            Command::SendMessage { to, message, reply } => {
                let (result, step) = self.send_message(conn, cx, &to, message).await;
                let _ = reply.send(result);
                step
            }
            Command::SendPresence { available, reply } if cx.opened_at.is_some() => {
                let node = if available {
                    let name = self.creds.push_name.clone().unwrap_or_default();
                    presence::available(&name)
                } else {
                    presence::unavailable()
                };
                let step = self.send(conn, &node).await;
                let _ = reply.send(step_result(&step));
                step
            }
            Command::SubscribePresence { jid, reply } if cx.opened_at.is_some() => {
                let node = match parse_jid(&jid) {
                    Ok(j) if !j.is_group() && !j.is_broadcast() => presence::subscribe(&j),
                    _ => {
                        let _ = reply.send(Err(EngineError::InvalidJid(jid)));
                        return Step::Continue;
                    }
                };
                let step = self.send(conn, &node).await;
                let _ = reply.send(step_result(&step));
                step
            }
            Command::SendChatPresence { to, state, reply } if cx.opened_at.is_some() => {
                let chat = match parse_jid(&to) {
                    Ok(j) if !j.is_broadcast() => j,
                    _ => {
                        let _ = reply.send(Err(EngineError::InvalidJid(to)));
                        return Step::Continue;
                    }
                };
                let step = self.send(conn, &presence::chatstate(&chat, state)).await;
                let _ = reply.send(step_result(&step));
                step
            }
            Command::CheckNumbers { numbers, reply } if cx.opened_at.is_some() => {
                let result = self.check_numbers(conn, cx, &numbers).await;
                let _ = reply.send(result);
                Step::Continue
            }
            Command::GroupInfo { group, reply } if cx.opened_at.is_some() => {
                let result = self.group_info(conn, cx, &group).await;
                let _ = reply.send(result);
                Step::Continue
            }
            Command::MarkRead {
                chat,
                participant,
                ids,
                reply,
            } if cx.opened_at.is_some() => {
                let chat = match parse_jid(&chat) {
                    Ok(j) => j,
                    Err(e) => {
                        let _ = reply.send(Err(e));
                        return Step::Continue;
                    }
                };
                let participant = match participant.as_deref().map(parse_jid).transpose() {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = reply.send(Err(e));
                        return Step::Continue;
                    }
                };
                let Some(node) =
                    receipts::read_receipt(&chat, participant.as_ref(), &ids, now_unix(), "read")
                else {
                    let _ = reply.send(Ok(()));
                    return Step::Continue;
                };
                let step = self.send(conn, &node).await;
                let _ = reply.send(step_result(&step));
                step
            }
            other => {
                self.messaging_command(other);
                Step::Continue
            }
        }
    }

    /// One usync contact query for `numbers` (already normalized and bounded by the handle).
    /// LIDs it reveals feed the messenger's PN → LID map.
    async fn check_numbers(
        &mut self,
        conn: &mut Connection,
        cx: &mut Conn,
        numbers: &[String],
    ) -> Result<Vec<NumberCheck>, EngineError> {
        let sid = self.next_iq_id();
        let mut exchange = ConnExchange::new(
            conn,
            cx,
            &mut self.iq_counter,
            self.iq_prefix,
            self.ctx.config.iq_timeout,
        );
        let answer = exchange
            .query(usync::contact_query(numbers, &sid))
            .await
            .map_err(MessagingError::from)?;
        let entries = usync::parse_contact_result(&answer)?;
        if let Some(m) = self.messenger.as_mut() {
            for e in &entries {
                if let Some(lid) = &e.lid {
                    m.learn_lid(&e.jid, lid);
                }
            }
        }
        Ok(entries
            .into_iter()
            .map(|e| NumberCheck {
                number: e.number,
                exists: e.exists,
                jid: e.jid,
                lid: e.lid,
            })
            .collect())
    }

    /// [`crate::SessionHandle::group_info`]: a 404/403 answer means no such group for us.
    async fn group_info(
        &mut self,
        conn: &mut Connection,
        cx: &mut Conn,
        group: &str,
    ) -> Result<Option<GroupInfo>, EngineError> {
        let jid = match parse_jid(group) {
            Ok(j) if j.is_group() => j,
            _ => return Err(EngineError::InvalidJid(group.to_owned())),
        };
        let Some(messenger) = self.messenger.as_mut() else {
            return Err(EngineError::NotConnected);
        };
        let mut exchange = ConnExchange::new(
            conn,
            cx,
            &mut self.iq_counter,
            self.iq_prefix,
            self.ctx.config.iq_timeout,
        );
        match messenger.group_metadata(&mut exchange, &jid).await {
            Ok(meta) => Ok(Some(GroupInfo {
                jid: meta.jid,
                subject: meta.subject,
                members: meta.members,
            })),
            Err(MessagingError::Iq {
                code: 403 | 404, ..
            }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Encrypts and writes a message to a user; answers its id.
    async fn send_message(
        &mut self,
        conn: &mut Connection,
        cx: &mut Conn,
        to: &str,
        message: Box<OutgoingMessage>,
    ) -> (Result<String, EngineError>, Step) {
        if cx.opened_at.is_none() {
            return (Err(EngineError::NotConnected), Step::Continue);
        }
        let to = match parse_jid(to) {
            Ok(j) => j,
            Err(e) => return (Err(e), Step::Continue),
        };
        if to.is_broadcast() {
            return (
                Err(EngineError::Unsupported("broadcast and status sends")),
                Step::Continue,
            );
        }
        let Some(messenger) = self.messenger.as_mut() else {
            return (Err(EngineError::NotConnected), Step::Continue);
        };
        let OutgoingMessage::Text { text, options } = *message;
        let (quoted, mut mentions) = match resolve_options(&to, &messenger.me().pn, &options) {
            Ok(r) => r,
            Err(e) => return (Err(e), Step::Continue),
        };
        let id = match options.id.clone() {
            Some(id) => id,
            None => ids::message_id(now_unix(), &messenger.me().pn.user, &mut self.rng),
        };
        let mut exchange = ConnExchange::new(
            conn,
            cx,
            &mut self.iq_counter,
            self.iq_prefix,
            self.ctx.config.iq_timeout,
        );
        let mut subject = None;
        let sent = if to.is_group() {
            match messenger.group_metadata(&mut exchange, &to).await {
                Ok(meta) => {
                    subject = meta.subject.clone();
                    if options.mention_everyone {
                        for member in &meta.members {
                            if !mentions.contains(member) {
                                mentions.push(member.clone());
                            }
                        }
                    }
                    let content = content::prepare_text(&to, &text, quoted.as_ref(), &mentions);
                    messenger
                        .send_group(
                            &mut exchange,
                            &to,
                            &meta.members,
                            meta.mode,
                            &content,
                            &id,
                            &mut self.rng,
                        )
                        .await
                }
                Err(e) => Err(e),
            }
        } else {
            let content = content::prepare_text(&to, &text, quoted.as_ref(), &mentions);
            messenger
                .send_direct(&mut exchange, &to, &content, &id, &mut self.rng)
                .await
        };
        match sent {
            Ok(sent) => {
                crate::crashpoint::hit("send.encrypted");
                let step = self.send(conn, &sent.stanza).await;
                if matches!(step, Step::Continue) {
                    crate::crashpoint::hit("send.written");
                }
                if step_result(&step).is_err() && to.is_group() {
                    // Never delivered: the next send must distribute the sender key again.
                    messenger_forget_shares(self.messenger.as_mut(), &to);
                }
                if step_result(&step).is_ok()
                    && let Some(chat) = self.directory.chat(&to, subject.as_deref())
                {
                    self.emit(EventKind::Chats(vec![chat]));
                }
                let result = match step {
                    Step::Continue => Ok(id),
                    Step::End(_) => Err(EngineError::WriteInterrupted),
                };
                (result, step)
            }
            Err(e) => (Err(e.into()), Step::Continue),
        }
    }

    async fn on_message(&mut self, conn: &mut Connection, node: &Node) -> Step {
        let Some(messenger) = self.messenger.as_mut() else {
            return self.send(conn, &receipts::ack_for(node, None)).await;
        };
        match messenger.receive(node, &mut self.rng).await {
            Ok(received) => {
                for reply in &received.replies {
                    if let Step::End(o) = self.send(conn, reply).await {
                        return Step::End(o);
                    }
                }
                if let Some(message) = received.message {
                    let subject = if message.key.remote_jid.is_group() {
                        self.messenger
                            .as_mut()
                            .and_then(|m| m.cached_group_subject(&message.key.remote_jid))
                    } else {
                        None
                    };
                    let (chat, contact) = self.directory.observe(&message, subject.as_deref());
                    if let Some(chat) = chat {
                        self.emit(EventKind::Chats(vec![chat]));
                    }
                    if let Some(contact) = contact {
                        self.emit(EventKind::Contacts(vec![contact]));
                    }
                    self.emit(EventKind::MessageUpsert(Box::new(message)));
                }
                Step::Continue
            }
            Err(e) => {
                // Nothing acked: the server redelivers.
                tracing::error!(instance = %self.ctx.instance, "receiving a message failed: {e}");
                Step::Continue
            }
        }
    }

    async fn on_receipt(&mut self, conn: &mut Connection, cx: &mut Conn, node: &Node) -> Step {
        let Some(messenger) = self.messenger.as_mut() else {
            return self.send(conn, &receipts::ack_for(node, None)).await;
        };
        let mut exchange = ConnExchange::new(
            conn,
            cx,
            &mut self.iq_counter,
            self.iq_prefix,
            self.ctx.config.iq_timeout,
        );
        match messenger
            .handle_receipt(&mut exchange, node, &mut self.rng)
            .await
        {
            Ok(outcome) => {
                for reply in &outcome.replies {
                    if let Step::End(o) = self.send(conn, reply).await {
                        return Step::End(o);
                    }
                }
                if let Some(e) = outcome.retry_error {
                    tracing::warn!(instance = %self.ctx.instance, "retry receipt not answered: {e}");
                }
                for status in outcome.statuses {
                    self.emit(EventKind::MessageUpdate(status));
                }
                Step::Continue
            }
            Err(e) => {
                tracing::error!(instance = %self.ctx.instance, "handling a receipt failed: {e}");
                Step::Continue
            }
        }
    }

    async fn handle_node(&mut self, conn: &mut Connection, cx: &mut Conn, node: Node) -> Step {
        match &*node.tag {
            "iq" => self.handle_iq(conn, cx, node).await,
            "success" => self.on_success(conn, cx, &node).await,
            "failure" => {
                let reason = node
                    .attr_str("reason")
                    .and_then(|r| r.parse::<u16>().ok())
                    .unwrap_or(500);
                Step::End(outcome_for(
                    DisconnectReason::from_failure(reason),
                    "failure",
                ))
            }
            "stream:error" => {
                let code = node.attr_str("code").and_then(|c| c.parse::<u16>().ok());
                let conflict = node.child("conflict").and_then(|c| c.attr_str("type"));
                let reason = DisconnectReason::from_stream_error(code, conflict);
                Step::End(outcome_for(reason, "stream:error"))
            }
            "xmlstreamend" => Step::End(Outcome::Retry {
                status: 428,
                reason: "stream end".into(),
                penalty: 0,
            }),
            "notification" => self.on_notification(conn, cx, &node).await,
            "ib" => {
                if let Some(info) = node
                    .child("edge_routing")
                    .and_then(|e| e.child("routing_info"))
                    .and_then(Node::content_bytes)
                {
                    self.creds.routing_info = Some(info.to_vec());
                    if let Err(e) = self
                        .ctx
                        .store
                        .save_credentials(&self.ctx.device, &self.creds)
                        .await
                    {
                        tracing::warn!(instance = %self.ctx.instance, "saving routing info: {e}");
                    }
                }
                Step::Continue
            }
            "message" => self.on_message(conn, &node).await,
            "receipt" => self.on_receipt(conn, cx, &node).await,
            "ack" => {
                if let Some(ack) = receipts::ServerAck::parse(&node) {
                    if let Some(m) = self.messenger.as_mut() {
                        m.check_ack_phash(&ack);
                    }
                    self.emit(EventKind::MessageUpdate(ack.status_update()));
                }
                Step::Continue
            }
            "presence" => {
                if let Some(p) = presence::parse_presence(&node) {
                    self.emit(EventKind::Presence(p));
                }
                Step::Continue
            }
            "chatstate" => {
                if let Some(p) = presence::parse_chatstate(&node) {
                    self.emit(EventKind::Presence(p));
                }
                Step::Continue
            }
            // call: not surfaced yet.
            _ => Step::Continue,
        }
    }

    async fn handle_iq(&mut self, conn: &mut Connection, cx: &mut Conn, node: Node) -> Step {
        let id = node.attr_str("id").unwrap_or_default().to_owned();
        match node.attr_str("type") {
            Some("result") | Some("error") => {
                if let Some((_, pending)) = cx.pending.remove(&id) {
                    return self.on_iq_response(conn, cx, pending, &node).await;
                }
                Step::Continue
            }
            Some("set") => {
                if let Some(pd) = node.child("pair-device") {
                    let refs = pairing::pair_device_refs(pd);
                    let step = self.send(conn, &pairing::iq_result(&id)).await;
                    if matches!(step, Step::End(_)) {
                        return step;
                    }
                    cx.pair_device_seen = true;
                    cx.qr = Some(QrRotation {
                        refs: refs.into(),
                        first: true,
                        deadline: Instant::now(),
                    });
                    let step = self.show_next_qr(cx);
                    if matches!(step, Step::End(_)) {
                        return step;
                    }
                    if self.pending_code.is_some() {
                        return self.start_link_code(conn, cx).await;
                    }
                    return Step::Continue;
                }
                if let Some(ps) = node.child("pair-success") {
                    return self.on_pair_success(conn, cx, &id, ps).await;
                }
                Step::Continue
            }
            Some("get") if node.attr_str("xmlns") == Some("urn:xmpp:ping") => {
                self.send(conn, &pairing::iq_result(&id)).await
            }
            _ => Step::Continue,
        }
    }

    /// Shows the next QR code of the current `pair-device`, or ends the connection when the refs
    /// are used up (reconnect for fresh ones) or the limit is reached (refuse).
    fn show_next_qr(&mut self, cx: &mut Conn) -> Step {
        let Some(qr) = cx.qr.as_mut() else {
            return Step::Continue;
        };
        let Some(pairing_ref) = qr.refs.pop_front() else {
            cx.qr = None;
            if self.link.is_some() {
                // The phone-code flow keeps the connection (as WhatsApp Web does).
                return Step::Continue;
            }
            return Step::End(Outcome::ReconnectNow);
        };
        if self.qr_count >= self.ctx.config.qrcode_limit {
            return Step::End(Outcome::Refused);
        }
        let ttl = if qr.first {
            self.ctx.config.qr_first_ttl
        } else {
            self.ctx.config.qr_ttl
        };
        qr.first = false;
        qr.deadline = Instant::now() + ttl;
        self.qr_count += 1;
        let code = pairing::qr_string(
            &pairing_ref,
            &self.creds.noise_key.public,
            &self.creds.identity_key.public,
            self.creds.adv_secret_key.expose(),
            self.ctx.config.browser.platform_id(),
        );
        self.emit(EventKind::QrCode {
            code,
            index: self.qr_count,
            expires_at: SystemTime::now() + ttl,
        });
        Step::Continue
    }

    async fn on_pair_success(
        &mut self,
        conn: &mut Connection,
        cx: &mut Conn,
        id: &str,
        ps: &Node,
    ) -> Step {
        let identity = keys::key_pair(&self.creds.identity_key);
        let mut random = [0u8; 64];
        self.rng.fill_bytes(&mut random);
        let verified = pairing::verify_pair_success(
            ps,
            &identity,
            self.creds.adv_secret_key.expose(),
            &random,
        );
        let success = match verified {
            Ok(s) => s,
            Err(e) => {
                let (code, text) = e.code_and_text();
                tracing::warn!(instance = %self.ctx.instance, "pairing rejected: {e}");
                self.emit(EventKind::PairingFailed {
                    reason: e.to_string(),
                });
                return self.send(conn, &pairing::iq_error(id, code, text)).await;
            }
        };
        let mut creds = self.creds.clone();
        let device_jid = success.device_jid.to_string();
        let lid = success.lid.as_ref().map(|l| l.to_non_ad().to_string());
        creds.account = Some(Account {
            account_jid: success.device_jid.to_non_ad().to_string(),
            device_jid: device_jid.clone(),
            lid: lid.clone(),
            adv_signed_identity: success.signed_identity.clone(),
            business_name: success.business_name.clone(),
        });
        creds.platform = success.platform.clone();
        let stored = async {
            self.ctx
                .store
                .save_credentials(&self.ctx.device, &creds)
                .await?;
            if let Some(l) = &success.lid {
                self.ctx
                    .store
                    .save_identity(
                        &self.ctx.device,
                        &Address::new(l.user.clone(), 0),
                        &IdentityRecord {
                            key: success.account_identity,
                            trust: Trust::Trusted,
                        },
                    )
                    .await?;
            }
            Ok::<_, zapin_signal_store::StoreError>(())
        }
        .await;
        if let Err(e) = stored {
            tracing::error!(instance = %self.ctx.instance, "storing pairing failed: {e}");
            self.emit(EventKind::PairingFailed {
                reason: format!("store: {e}"),
            });
            return self
                .send(conn, &pairing::iq_error(id, 500, "internal-error"))
                .await;
        }
        self.creds = creds;
        self.messenger = make_messenger(&self.ctx, &self.creds);
        cx.qr = None;
        self.link = None;
        self.ctx
            .status
            .send_modify(|s| s.jid = Some(device_jid.clone()));
        let step = self
            .send(conn, &pairing::pair_device_sign_reply(id, &success))
            .await;
        self.emit(EventKind::Paired {
            jid: device_jid,
            lid,
            push_name: self.creds.push_name.clone(),
            platform: success.platform,
        });
        // The server now ends the stream with 515; the login connection follows.
        step
    }

    async fn start_link_code(&mut self, conn: &mut Connection, cx: &mut Conn) -> Step {
        let Some((phone, reply)) = self.pending_code.take() else {
            return Step::Continue;
        };
        let mut five = [0u8; 5];
        self.rng.fill_bytes(&mut five);
        let code = link_code::code_from_bytes(five);
        let ephemeral = KeyPair::generate(&mut self.rng);
        let mut salt = [0u8; 32];
        let mut iv = [0u8; 16];
        self.rng.fill_bytes(&mut salt);
        self.rng.fill_bytes(&mut iv);
        let (code_c, public) = (code.clone(), *ephemeral.public());
        // PBKDF2 with 131 072 rounds: off the runtime's worker threads.
        let wrapped = match tokio::task::spawn_blocking(move || {
            link_code::wrap_ephemeral(&code_c, salt, iv, &public)
        })
        .await
        {
            Ok(w) => w,
            Err(_) => {
                let _ = reply.send(Err(EngineError::SessionGone));
                return Step::Continue;
            }
        };
        let id = self.next_iq_id();
        let node = keys::iq(
            &id,
            "set",
            "md",
            vec![
                Node::new("link_code_companion_reg")
                    .attr("jid", Jid::new(phone.clone(), Server::Pn))
                    .attr("stage", "companion_hello")
                    .attr("should_show_push_notification", "true")
                    .children(vec![
                        Node::new("link_code_pairing_wrapped_companion_ephemeral_pub")
                            .bytes(wrapped),
                        Node::new("companion_server_auth_key_pub")
                            .bytes(self.creds.noise_key.public.to_vec()),
                        Node::new("companion_platform_id").bytes(
                            self.ctx
                                .config
                                .browser
                                .platform_id()
                                .to_string()
                                .into_bytes(),
                        ),
                        Node::new("companion_platform_display")
                            .bytes(self.ctx.config.browser.display().into_bytes()),
                        Node::new("link_code_pairing_nonce").bytes(vec![0u8]),
                    ]),
            ],
        );
        self.link = Some(LinkCode {
            code: code.clone(),
            phone,
            ephemeral,
        });
        self.track(cx, id, Pending::LinkHello(reply));
        self.send(conn, &node).await
    }

    async fn on_notification(&mut self, conn: &mut Connection, cx: &mut Conn, node: &Node) -> Step {
        let id = node.attr_str("id").unwrap_or_default().to_owned();
        let kind = node.attr_str("type").unwrap_or_default().to_owned();
        let mut ack = Node::new("ack")
            .attr("class", "notification")
            .attr("id", id)
            .attr("type", kind.clone());
        if let Some(from) = node.get_attr("from") {
            ack = ack.attr("to", from.clone());
        }
        if let Step::End(o) = self.send(conn, &ack).await {
            return Step::End(o);
        }
        match kind.as_str() {
            "link_code_companion_reg" => {
                if let Some(reg) = node.child("link_code_companion_reg")
                    && reg.attr_str("stage") == Some("primary_hello")
                {
                    return self.on_primary_hello(conn, cx, reg).await;
                }
                Step::Continue
            }
            "devices" => {
                if let (Some(from), Some(m)) = (node.attr_jid("from"), self.messenger.as_mut()) {
                    m.invalidate_devices(&from);
                }
                Step::Continue
            }
            "w:gp2" => {
                if let (Some(from), Some(m)) = (node.attr_jid("from"), self.messenger.as_mut()) {
                    m.forget_group(&from);
                }
                if let Some(update) = groups::parse_notification(node) {
                    self.emit(EventKind::GroupUpdate(update));
                }
                Step::Continue
            }
            "encrypt" => {
                if let Some(count) = node
                    .child("count")
                    .and_then(|c| c.attr_str("value"))
                    .and_then(|v| v.parse::<u64>().ok())
                    && count < self.ctx.config.prekey_min
                {
                    return self
                        .upload_prekeys(conn, cx, self.ctx.config.prekey_refill_batch)
                        .await;
                }
                Step::Continue
            }
            _ => Step::Continue,
        }
    }

    async fn on_primary_hello(&mut self, conn: &mut Connection, cx: &mut Conn, reg: &Node) -> Step {
        let Some(link) = self.link.as_ref() else {
            return Step::Continue;
        };
        let pairing_ref = reg
            .child("link_code_pairing_ref")
            .and_then(Node::content_bytes)
            .cloned();
        let wrapped = reg
            .child("link_code_pairing_wrapped_primary_ephemeral_pub")
            .and_then(Node::content_bytes)
            .cloned();
        let primary_identity = reg
            .child("primary_identity_pub")
            .and_then(Node::content_bytes)
            .and_then(|b| PublicKey::from_slice(b).ok());
        let (Some(pairing_ref), Some(wrapped), Some(primary_identity)) =
            (pairing_ref, wrapped, primary_identity)
        else {
            tracing::warn!(instance = %self.ctx.instance, "malformed primary_hello");
            return Step::Continue;
        };
        let code = link.code.clone();
        let phone = link.phone.clone();
        let primary_ephemeral =
            match tokio::task::spawn_blocking(move || link_code::unwrap_ephemeral(&code, &wrapped))
                .await
            {
                Ok(Ok(k)) => k,
                _ => {
                    self.emit(EventKind::PairingFailed {
                        reason: "primary_hello could not be unwrapped".into(),
                    });
                    return Step::Continue;
                }
            };
        let mut r = link_code::FinishRandom {
            salt: [0; 32],
            nonce: [0; 12],
            random: [0; 32],
        };
        self.rng.fill_bytes(&mut r.salt);
        self.rng.fill_bytes(&mut r.nonce);
        self.rng.fill_bytes(&mut r.random);
        let identity = keys::key_pair(&self.creds.identity_key);
        let Some(link) = self.link.as_ref() else {
            return Step::Continue;
        };
        let Ok((bundle, adv)) = link_code::companion_finish(
            &link.ephemeral,
            &primary_ephemeral,
            &identity,
            &primary_identity,
            &r,
        ) else {
            return Step::Continue;
        };
        // Stored with the rest of the credentials at pair-success.
        self.creds.adv_secret_key = Secret32::new(adv);
        let id = self.next_iq_id();
        let node = keys::iq(
            &id,
            "set",
            "md",
            vec![
                Node::new("link_code_companion_reg")
                    .attr("jid", Jid::new(phone, Server::Pn))
                    .attr("stage", "companion_finish")
                    .children(vec![
                        Node::new("link_code_pairing_wrapped_key_bundle").bytes(bundle),
                        Node::new("companion_identity_public")
                            .bytes(self.creds.identity_key.public.to_vec()),
                        Node::new("link_code_pairing_ref").bytes(pairing_ref),
                    ]),
            ],
        );
        self.track(cx, id, Pending::LinkFinish);
        self.send(conn, &node).await
    }

    async fn on_success(&mut self, conn: &mut Connection, cx: &mut Conn, node: &Node) -> Step {
        if cx.registration {
            tracing::warn!(instance = %self.ctx.instance, "<success> on a registration connection");
            return Step::Continue;
        }
        cx.opened_at = Some(Instant::now());
        if let (Some(lid), Some(m)) = (node.attr_jid("lid"), self.messenger.as_mut()) {
            m.set_own_lid(lid);
        }
        if let (Some(lid), Some(account)) = (node.attr_jid("lid"), self.creds.account.as_mut())
            && account.lid.is_none()
        {
            account.lid = Some(lid.to_non_ad().to_string());
            let _ = self
                .ctx
                .store
                .save_credentials(&self.ctx.device, &self.creds)
                .await;
        }
        self.ctx.status.send_modify(|s| s.last_error = None);
        self.set_state(ConnectionState::Open, STATUS_OK, None);
        let id = self.next_iq_id();
        self.track(cx, id.clone(), Pending::PreKeyCount);
        self.send(conn, &keys::prekey_count_iq(&id)).await
    }

    async fn on_iq_response(
        &mut self,
        conn: &mut Connection,
        cx: &mut Conn,
        pending: Pending,
        node: &Node,
    ) -> Step {
        let is_error = node.attr_str("type") == Some("error");
        match pending {
            Pending::Ping | Pending::Logout => Step::Continue,
            Pending::PreKeyCount => {
                let count = node
                    .child("count")
                    .and_then(|c| c.attr_str("value"))
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
                if count < self.ctx.config.prekey_min {
                    let batch = if count == 0 {
                        self.ctx.config.prekey_initial_batch
                    } else {
                        self.ctx.config.prekey_refill_batch
                    };
                    self.upload_prekeys(conn, cx, batch).await
                } else {
                    self.send_active(conn, cx).await
                }
            }
            Pending::PreKeyUpload => {
                if is_error {
                    tracing::warn!(instance = %self.ctx.instance, %node, "prekey upload refused");
                }
                self.send_active(conn, cx).await
            }
            Pending::Active => {
                if let Some(name) = self.creds.push_name.clone() {
                    let presence = Node::new("presence")
                        .attr("type", "available")
                        .attr("name", name);
                    if let Step::End(o) = self.send(conn, &presence).await {
                        return Step::End(o);
                    }
                }
                let id = self.next_iq_id();
                self.track(cx, id.clone(), Pending::Digest);
                self.send(conn, &keys::digest_iq(&id)).await
            }
            Pending::Digest => {
                let missing = is_error || node.child("digest").is_none();
                if missing && !cx.digest_reupload_done {
                    cx.digest_reupload_done = true;
                    return self
                        .upload_prekeys(conn, cx, self.ctx.config.prekey_refill_batch)
                        .await;
                }
                Step::Continue
            }
            Pending::LinkHello(reply) => {
                if is_error {
                    let (code, text) = iq_error_of(node);
                    self.link = None;
                    let _ = reply.send(Err(EngineError::Refused { code, text }));
                    return Step::Continue;
                }
                if let Some(link) = &self.link {
                    self.emit(EventKind::PairingCode {
                        code: link.code.clone(),
                    });
                    let _ = reply.send(Ok(link.code.clone()));
                }
                Step::Continue
            }
            Pending::LinkFinish => {
                if is_error {
                    let (code, text) = iq_error_of(node);
                    self.emit(EventKind::PairingFailed {
                        reason: format!("companion_finish refused: {code} {text}"),
                    });
                }
                Step::Continue
            }
        }
    }

    async fn send_active(&mut self, conn: &mut Connection, cx: &mut Conn) -> Step {
        if cx.active_sent {
            return Step::Continue;
        }
        cx.active_sent = true;
        let id = self.next_iq_id();
        self.track(cx, id.clone(), Pending::Active);
        self.send(conn, &keys::active_iq(&id)).await
    }

    /// Generates `count` prekeys after the store's highest id, stores them, then uploads them.
    async fn upload_prekeys(&mut self, conn: &mut Connection, cx: &mut Conn, count: u32) -> Step {
        let store = &self.ctx.store;
        let max = match store.max_prekey_id(&self.ctx.device).await {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(instance = %self.ctx.instance, "prekey max id: {e}");
                return self.send_active(conn, cx).await;
            }
        };
        let prekeys = keys::new_prekeys(&mut self.rng, max, count);
        if let Err(e) = store.insert_prekeys(&self.ctx.device, &prekeys).await {
            tracing::error!(instance = %self.ctx.instance, "storing prekeys: {e}");
            return self.send_active(conn, cx).await;
        }
        let id = self.next_iq_id();
        let node = keys::prekey_upload_iq(&id, &self.creds, &prekeys);
        self.track(cx, id, Pending::PreKeyUpload);
        self.send(conn, &node).await
    }
}

/// The actor's connection lent to a messaging call for the IQs it needs (usync, key fetches).
/// Nodes that arrive meanwhile are queued and handled after the call.
struct ConnExchange<'a> {
    conn: &'a mut Connection,
    deferred: &'a mut VecDeque<Node>,
    keepalive: &'a mut Keepalive,
    counter: &'a mut u64,
    prefix: u32,
    timeout: Duration,
}

impl<'a> ConnExchange<'a> {
    /// Lends `conn` and the connection state an exchange needs (the deferred-node queue, the
    /// keepalive it resets); the IQ id counter and prefix stay the session's.
    fn new(
        conn: &'a mut Connection,
        cx: &'a mut Conn,
        counter: &'a mut u64,
        prefix: u32,
        timeout: Duration,
    ) -> Self {
        ConnExchange {
            conn,
            deferred: &mut cx.deferred,
            keepalive: &mut cx.keepalive,
            counter,
            prefix,
            timeout,
        }
    }
}

impl Exchange for ConnExchange<'_> {
    async fn query(&mut self, iq: Node) -> Result<Node, ExchangeError> {
        *self.counter += 1;
        let id = format!("{:08x}.{}", self.prefix, self.counter);
        let iq = iq.attr("id", id.clone());
        self.conn
            .send(&iq)
            .await
            .map_err(|e| ExchangeError(e.to_string()))?;
        let deadline = Instant::now() + self.timeout;
        loop {
            let message = tokio::time::timeout_at(deadline, self.conn.next_message())
                .await
                .map_err(|_| ExchangeError(format!("no answer to IQ {id}")))?;
            let nodes = self
                .conn
                .decode(message)
                .map_err(|e| ExchangeError(e.to_string()))?;
            self.keepalive.on_inbound(Instant::now());
            let mut answer = None;
            for node in nodes {
                let is_answer = answer.is_none()
                    && node.tag == "iq"
                    && node.attr_str("id") == Some(id.as_str())
                    && matches!(node.attr_str("type"), Some("result") | Some("error"));
                if is_answer {
                    answer = Some(node);
                } else {
                    self.deferred.push_back(node);
                }
            }
            if let Some(answer) = answer {
                return Ok(answer);
            }
        }
    }
}

fn messenger_forget_shares(messenger: Option<&mut Messenger>, group: &Jid) {
    if let Some(m) = messenger {
        m.forget_sender_key_devices(group);
    }
}

fn make_messenger(ctx: &SessionContext, creds: &DeviceCredentials) -> Option<Messenger> {
    let account = creds.account.as_ref()?;
    let pn: Jid = account.device_jid.parse().ok()?;
    let lid = account
        .lid
        .as_deref()
        .and_then(|l| l.parse::<Jid>().ok())
        .map(|l| Jid::with_device(l.user, pn.device, Server::Lid));
    let me = Me {
        store_id: ctx.device.clone(),
        pn,
        lid,
        identity: LocalIdentity {
            key_pair: keys::key_pair(&creds.identity_key),
            registration_id: creds.registration_id,
        },
        device_identity: account.adv_signed_identity.clone(),
    };
    Some(Messenger::new(ctx.store.clone(), me, Limits::default()))
}

/// A user as digits (a phone number) or any JID.
fn parse_jid(s: &str) -> Result<Jid, EngineError> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(Jid::pn(s));
    }
    s.parse().map_err(|_| EngineError::InvalidJid(s.to_owned()))
}

/// The quote and mention list of a text to `to`, from the caller's options. A quoted message
/// of someone else in a group must name its author.
fn resolve_options(
    to: &Jid,
    me: &Jid,
    options: &SendOptions,
) -> Result<(Option<content::Quoted>, Vec<Jid>), EngineError> {
    let mut mentions = Vec::with_capacity(options.mentions.len());
    for m in &options.mentions {
        let jid = parse_jid(m)?.to_non_ad();
        if !mentions.contains(&jid) {
            mentions.push(jid);
        }
    }
    let quoted = match &options.quoted {
        None => None,
        Some(q) => {
            let chat = match &q.chat {
                Some(c) => parse_jid(c)?.to_non_ad(),
                None => to.to_non_ad(),
            };
            let author = match (&q.participant, q.from_me) {
                (Some(p), _) => parse_jid(p)?.to_non_ad(),
                (None, true) => me.to_non_ad(),
                (None, false) if chat.is_group() => {
                    return Err(EngineError::InvalidJid(
                        "quoted group message without participant".into(),
                    ));
                }
                (None, false) => chat.clone(),
            };
            Some(content::Quoted {
                id: q.id.clone(),
                chat,
                author,
                message: q.message.clone(),
            })
        }
    };
    Ok((quoted, mentions))
}

fn step_result(step: &Step) -> Result<(), EngineError> {
    match step {
        Step::Continue => Ok(()),
        Step::End(_) => Err(EngineError::NotConnected),
    }
}

fn iq_error_of(node: &Node) -> (u16, String) {
    let err = node.child("error");
    let code = err
        .and_then(|e| e.attr_str("code"))
        .and_then(|c| c.parse().ok())
        .unwrap_or(500);
    let text = err
        .and_then(|e| e.attr_str("text"))
        .unwrap_or_default()
        .to_owned();
    (code, text)
}

fn lost(e: ConnError) -> Outcome {
    Outcome::Retry {
        status: 428,
        reason: format!("connection lost: {e}"),
        penalty: 0,
    }
}

fn outcome_for(reason: DisconnectReason, what: &str) -> Outcome {
    let status = reason.status_code();
    match reason.next_step() {
        NextStep::ReconnectNow => Outcome::ReconnectNow,
        NextStep::ReconnectWithBackoff => Outcome::Retry {
            status,
            reason: format!("{what} {status}"),
            penalty: if matches!(reason, DisconnectReason::RateLimited) {
                5
            } else {
                0
            },
        },
        NextStep::LogOut => Outcome::Revoked { code: status },
        NextStep::Stop => Outcome::Stop {
            status,
            reason: format!("{what} {status}"),
        },
    }
}

/// `(user as integer, device)` of a stored device JID.
fn login_identity(device_jid: &str) -> Option<(u64, u32)> {
    let jid: Jid = device_jid.parse().ok()?;
    Some((jid.user.parse().ok()?, u32::from(jid.device)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_identity_parses_device_jids() {
        assert_eq!(
            login_identity("15550000001:3@s.whatsapp.net"),
            Some((15550000001, 3))
        );
        assert_eq!(login_identity("abc:3@s.whatsapp.net"), None);
        assert_eq!(login_identity("garbage"), None);
    }

    #[test]
    fn disconnects_map_to_outcomes() {
        assert!(matches!(
            outcome_for(DisconnectReason::from_stream_error(Some(515), None), "x"),
            Outcome::ReconnectNow
        ));
        assert!(matches!(
            outcome_for(DisconnectReason::from_stream_error(Some(440), None), "x"),
            Outcome::Stop { status: 440, .. }
        ));
        assert!(matches!(
            outcome_for(DisconnectReason::from_stream_error(Some(503), None), "x"),
            Outcome::Retry { status: 503, .. }
        ));
        assert!(matches!(
            outcome_for(DisconnectReason::from_failure(401), "x"),
            Outcome::Revoked { code: 401 }
        ));
        assert!(matches!(
            outcome_for(DisconnectReason::from_stream_error(Some(429), None), "x"),
            Outcome::Retry { penalty: 5, .. }
        ));
    }

    #[test]
    fn phone_numbers_are_digits_only() {
        assert!(valid_phone("15550000001"));
        assert!(!valid_phone("+15550000001"));
        assert!(!valid_phone("123"));
    }
}
