//! The session actor: one task per WhatsApp device that owns its socket, its Noise transport, its
//! credentials and its timers, and is driven by [`Command`]s and server nodes.
//!
//! Life of a session: `run` loops over connection attempts while the session is "running";
//! each attempt is `connect_and_serve`, whose [`Outcome`] decides what comes next
//! (wa-protocol.md §10, `disconnect.rs`): reconnect now (515, QR refs exhausted), reconnect after a
//! full-jitter backoff (5xx, lost socket, refused, handshake failure), stop (440 conflict,
//! permanent failures, QR limit), or log out (401 & co: credentials cleared).
//!
//! One `Session` type, its `impl` split by concern:
//!
//! * here: the actor's state, `run`, outcomes and their effects, state publishing;
//! * `commands`: handle commands while idle, offline (backoff, handshake) and connected;
//! * `connect`: one connection: open, serve loop, login after `<success>`, keepalive, IQ tracking;
//! * `pair`: pairing-code requests, QR rotation, pair-success;
//! * `phone_code`: phone-code (link code) pairing, its key derivations off the runtime;
//! * `receive`: server nodes by tag: IQs, messages, receipts, notifications;
//! * `send`: connected commands that query or send: messages, number checks, group info;
//! * `exchange`: the connection lent to a messaging call for its IQs;
//! * `media`: the cached `media_conn` and media HTTP client lent to uploads and downloads.

mod commands;
mod connect;
mod exchange;
mod groups;
mod media;
mod pair;
mod phone_code;
mod receive;
mod send;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use chacha20::ChaCha20Rng;
use chacha20::rand_core::SeedableRng;
use rand_core::Rng;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;
use zapin_protocol::binary::Node;
use zapin_protocol::crypto::KeyPair;
use zapin_protocol::jid::{Jid, Server};
use zapin_protocol::signal::LocalIdentity;
use zapin_signal_store::{DeviceCredentials, DeviceId, Store};

use crate::backoff::Backoff;
use crate::command::{Command, SessionStatus};
use crate::config::EngineConfig;
use crate::disconnect::{DisconnectReason, NextStep};
use crate::error::EngineError;
use crate::events::{ConnectionState, Event, EventKind, InstanceId, LogoutReason};
use crate::keepalive::Keepalive;
use crate::keys;
use crate::messaging::directory::Directory;
use crate::messaging::{Limits, Me, Messenger};
use crate::socket::ConnError;

use phone_code::Derivation;

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
    /// Each instance's proxy, shared by every session of a manager.
    pub proxies: Arc<crate::proxy::ProxyTable>,
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
    /// A phone-code key derivation in progress (polled by the serve loop).
    derivation: Option<Derivation>,
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
    /// `media_conn` cache and the media HTTP client (survive reconnects).
    media: media::MediaState,
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
            media: media::MediaState::default(),
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

fn step_result(step: &Step) -> Result<(), EngineError> {
    match step {
        Step::Continue => Ok(()),
        Step::End(_) => Err(EngineError::NotConnected),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
