//! The simulator's state behind a cheap-to-clone handle.
//!
//! One `std::sync::Mutex` guards it all: every operation is a short in-memory update (no I/O, no
//! await under the lock), so contention stays low even with thousands of connections, and cross-
//! entity operations (pairing touches refs, accounts and counters) need no lock ordering.

pub mod model;
pub mod persist;
mod queue;

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde::Serialize;
use zapin_protocol::crypto::{KeyPair, PublicKey};

use crate::addr::{self, ChatAddr};
use crate::conn::ConnId;
use crate::keys::KeySource;
use crate::qr::{QrData, platform_name};
pub use model::*;
pub use persist::PersistError;
pub use queue::DeviceAck;

/// Caps that keep memory per device bounded (the simulator must hold 10,000 connections).
#[derive(Debug, Clone, Copy)]
pub struct StateLimits {
    /// Uploaded one-time prekeys kept per companion (Baileys uploads 812 at once).
    pub max_device_prekeys: usize,
    /// Stanzas held per companion until it acknowledges them, queued and in flight together;
    /// the oldest are dropped beyond it.
    pub max_offline_queue: usize,
    /// Messages and receipts kept per mock phone for the control API.
    pub max_phone_log: usize,
    /// Message ids remembered for receipt routing.
    pub max_message_log: usize,
    /// One-time prekeys the mock phone keeps available (refilled when it runs low).
    pub phone_prekeys: u32,
}

impl Default for StateLimits {
    fn default() -> Self {
        Self {
            max_device_prekeys: 2000,
            max_offline_queue: 5000,
            max_phone_log: 10_000,
            max_message_log: 200_000,
            phone_prekeys: 100,
        }
    }
}

/// The state-related part of the simulator configuration.
#[derive(Debug, Clone)]
pub struct StateConfig {
    pub seed: Option<u64>,
    pub state_dir: Option<PathBuf>,
    pub qr_first_ttl: Duration,
    pub qr_ttl: Duration,
    pub refs_per_pair_device: usize,
    pub link_code_ttl: Duration,
    pub limits: StateLimits,
}

/// Why a state operation was refused. The control API maps each to a 4xx status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("{0:?} is not a phone number (5 to 15 digits, no leading zero)")]
    InvalidPhone(String),
    #[error("phone {0} is already taken")]
    PhoneTaken(String),
    #[error("no account with phone {0}")]
    UnknownAccount(String),
    #[error("unknown or expired ref")]
    UnknownRef,
    #[error("ref already used")]
    RefUsed,
    #[error("the QR keys do not match the ones the companion registered with")]
    QrMismatch,
    #[error("account {phone} has no device {device}")]
    UnknownDevice { phone: String, device: u16 },
    #[error("device 0 is the phone itself and cannot be unlinked")]
    CannotUnlinkPhone,
    #[error("no pending link-code request for phone {0}")]
    NoLinkCodeRequest(String),
    #[error("{0} is not an account")]
    UnknownParticipant(String),
    #[error("no group {0}")]
    UnknownGroup(String),
    #[error("account {0} has used every device number")]
    DevicesExhausted(String),
    #[error("connection {0} did not register")]
    NoRegistration(ConnId),
}

/// Counters for `/sim/stats` that are not derived from the state.
#[derive(Debug, Default)]
pub struct Counters {
    pub messages_routed: AtomicU64,
    pub receipts_routed: AtomicU64,
    pub pairings: AtomicU64,
    /// Group sends whose `phash` differed from the server's (the sender's device lists were
    /// stale).
    pub phash_mismatches: AtomicU64,
}

/// What a scan or link code reserved: everything the protocol layer needs to send `pair-success`
/// to the registration connection, and what the state needs to commit the device afterwards.
#[derive(Debug, Clone)]
pub struct PairTicket {
    pub conn: ConnId,
    pub phone: String,
    pub lid: String,
    pub device: u16,
    pub key_index: u32,
    /// `PN:device@s.whatsapp.net`.
    pub device_jid: String,
    /// `LID:device@lid`.
    pub lid_jid: String,
    pub registration: Registration,
    pub secret: PairSecret,
    pub platform: String,
    /// The account identity (= ADV account signature key) that signs `ADVDeviceIdentity`.
    pub account_identity: KeyPair,
    /// Set for QR pairings: the ref to release if pairing fails.
    pub pairing_ref: Option<String>,
}

/// How the HMAC key of `pair-success` is obtained.
#[derive(Clone, PartialEq, Eq)]
pub enum PairSecret {
    /// QR pairing: the adv secret from the QR string.
    Qr { adv_secret: [u8; 32] },
    /// Phone-number pairing: the code the user typed; the protocol layer runs §5.4 stages 2–3 and
    /// derives the adv secret itself.
    LinkCode { code: String },
}

impl std::fmt::Debug for PairSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Qr { .. } => f.write_str("Qr(<redacted>)"),
            Self::LinkCode { .. } => f.write_str("LinkCode(<redacted>)"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountSummary {
    pub phone: String,
    pub jid: String,
    pub lid: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceView {
    pub id: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_index: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub online: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountView {
    pub phone: String,
    pub jid: String,
    pub lid: String,
    pub push_name: Option<String>,
    pub devices: Vec<DeviceView>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    config: StateConfig,
    counters: Counters,
    generation: AtomicU64,
    changed: tokio::sync::Notify,
}

/// The handle: clone it freely, every clone sees the same state.
#[derive(Debug, Clone)]
pub struct SimState {
    shared: Arc<Shared>,
}

pub fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

fn unix_secs() -> u64 {
    unix_now().as_secs()
}

impl SimState {
    /// Loads the snapshot from `state_dir` if there is one, else makes fresh state (from the seed,
    /// or from OS randomness).
    pub fn open(config: StateConfig) -> Result<Self, PersistError> {
        let loaded = match &config.state_dir {
            Some(dir) => persist::read_snapshot(dir)?,
            None => None,
        };
        let state = match loaded {
            Some(state) => {
                if let (Some(asked), Some(dir)) = (config.seed, &config.state_dir)
                    && state.seed != Some(asked)
                {
                    return Err(PersistError::SeedMismatch {
                        path: dir.clone(),
                        stored: state.seed,
                        asked,
                    });
                }
                state
            }
            None => {
                let keys = match config.seed {
                    Some(seed) => KeySource::from_seed(seed),
                    None => KeySource::random().map_err(|source| PersistError::Io {
                        path: "/dev/urandom".into(),
                        source,
                    })?,
                };
                fresh_state(config.seed, keys)
            }
        };
        let this = Self {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                config,
                counters: Counters::default(),
                generation: AtomicU64::new(0),
                changed: tokio::sync::Notify::new(),
            }),
        };
        // A fresh state dir gets its snapshot (and so its keys) on the first flush.
        if this.shared.config.state_dir.is_some() {
            this.mark_dirty();
        }
        Ok(this)
    }

    pub fn config(&self) -> &StateConfig {
        &self.shared.config
    }

    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave half-applied invariants that matter more
        // than keeping the simulator serving, so a poisoned lock is used as is.
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Marks the persistent state as changed (wakes the snapshot writer).
    pub fn mark_dirty(&self) {
        self.shared.generation.fetch_add(1, Ordering::SeqCst);
        self.shared.changed.notify_one();
    }

    pub fn generation(&self) -> u64 {
        self.shared.generation.load(Ordering::SeqCst)
    }

    pub(crate) fn changed(&self) -> impl Future<Output = ()> + '_ {
        self.shared.changed.notified()
    }

    /// The snapshot and the generation it reflects.
    pub fn snapshot_json(&self) -> Result<(u64, Vec<u8>), serde_json::Error> {
        let state = self.lock();
        let generation = self.generation();
        serde_json::to_vec(&*state).map(|b| (generation, b))
    }

    /// Runs `f` on the whole state, read-only. For the protocol layer's lookups that have no
    /// dedicated method; keep `f` short, it runs under the lock.
    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.lock())
    }

    /// Runs `f` on the whole state and schedules a snapshot. Keep `f` short.
    pub fn write<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let r = f(&mut self.lock());
        self.mark_dirty();
        r
    }

    pub fn server_keys(&self) -> ServerKeys {
        self.lock().server.clone()
    }

    pub fn root_public(&self) -> PublicKey {
        *self.lock().server.root.public()
    }

    pub fn key_source(&self) -> KeySource {
        self.lock().keys.clone()
    }

    // ----- accounts -----

    pub fn create_account(
        &self,
        phone: Option<String>,
        push_name: Option<String>,
    ) -> Result<AccountSummary, StateError> {
        let mut st = self.lock();
        let phone = match phone {
            Some(p) if !addr::valid_phone(&p) => return Err(StateError::InvalidPhone(p)),
            Some(p) if st.accounts.contains_key(&p) => return Err(StateError::PhoneTaken(p)),
            Some(p) => p,
            None => loop {
                st.next_phone += 1;
                let p = format!("1555{:07}", st.next_phone);
                if !st.accounts.contains_key(&p) {
                    break p;
                }
            },
        };
        let lid = (0u32..)
            .map(|attempt| {
                let n = st
                    .keys
                    .number(&format!("lid/{phone}/{attempt}"), 900_000_000_000_000);
                (100_000_000_000_000 + n).to_string()
            })
            .find(|lid| !st.lids.contains_key(lid))
            .unwrap_or_default();
        let account = new_account(&st.keys, &phone, &lid, push_name, self.config().limits);
        st.lids.insert(lid.clone(), phone.clone());
        st.accounts.insert(phone.clone(), account);
        drop(st);
        self.mark_dirty();
        Ok(AccountSummary {
            jid: addr::pn_jid(&phone),
            lid: addr::lid_jid(&lid),
            phone,
        })
    }

    pub fn account_view(&self, phone: &str) -> Option<AccountView> {
        let st = self.lock();
        let a = st.accounts.get(phone)?;
        let mut devices = vec![DeviceView {
            id: 0,
            key_index: None,
            online: None,
            platform: None,
        }];
        devices.extend(a.companions.values().map(|d| DeviceView {
            id: d.device,
            key_index: Some(d.key_index),
            online: Some(d.online),
            platform: Some(d.platform.clone()),
        }));
        Some(AccountView {
            phone: a.phone.clone(),
            jid: addr::pn_jid(&a.phone),
            lid: addr::lid_jid(&a.lid),
            push_name: a.push_name.clone(),
            devices,
        })
    }

    pub fn account_exists(&self, phone: &str) -> bool {
        self.lock().accounts.contains_key(phone)
    }

    pub fn account_count(&self) -> usize {
        self.lock().accounts.len()
    }

    /// The phone number behind a user address (PN or LID); `None` for groups and unknown users.
    pub fn resolve_user(&self, chat: &ChatAddr) -> Option<String> {
        let st = self.lock();
        match chat {
            ChatAddr::Phone(p) => st.accounts.contains_key(p).then(|| p.clone()),
            ChatAddr::Lid(l) => st.lids.get(l).cloned(),
            ChatAddr::Group(_) => None,
        }
    }

    /// Takes the mock phone's lowest unused one-time prekey (for a key-bundle fetch), topping the
    /// pool up when it runs low as a real phone would.
    pub fn take_phone_prekey(&self, phone: &str) -> Option<(u32, KeyPair)> {
        let refill = self.config().limits.phone_prekeys;
        let mut st = self.lock();
        let State { keys, accounts, .. } = &mut *st;
        let pool = &mut accounts.get_mut(phone)?.phone_device.prekeys;
        if pool.len() < refill / 4 + 1 {
            pool.end = pool.end.saturating_add(refill);
        }
        let id = pool.first;
        pool.first = pool.first.saturating_add(1);
        let key = keys.key_pair(&phone_prekey_label(phone, id));
        drop(st);
        self.mark_dirty();
        Some((id, key))
    }

    /// The mock phone's one-time prekey `id` (to decrypt a `pkmsg` that used it).
    pub fn phone_prekey(&self, phone: &str, id: u32) -> Option<KeyPair> {
        let st = self.lock();
        st.accounts.get(phone)?;
        Some(st.keys.key_pair(&phone_prekey_label(phone, id)))
    }

    // ----- pairing -----

    /// A registration connection finished its handshake (§12.1 step 4).
    pub fn registration_started(&self, conn: ConnId, registration: Registration) {
        self.lock()
            .volatile
            .registrations
            .insert(conn, registration);
    }

    /// Makes the refs for one `pair-device` (§5.1): the first lives `qr_first_ttl`, each next one
    /// `qr_ttl` longer, mirroring how long the companion shows each.
    pub fn issue_refs(&self, conn: ConnId) -> Result<Vec<String>, StateError> {
        let cfg = self.config();
        let now = Instant::now();
        let mut st = self.lock();
        if !st.volatile.registrations.contains_key(&conn) {
            return Err(StateError::NoRegistration(conn));
        }
        st.volatile.refs.retain(|_, r| r.expires_at > now);
        let mut refs = Vec::with_capacity(cfg.refs_per_pair_device);
        for i in 0..cfg.refs_per_pair_device {
            st.next_ref += 1;
            let raw = st.keys.bytes(&format!("ref/{}", st.next_ref));
            let r = format!(
                "2@{}",
                base64::engine::general_purpose::STANDARD.encode(&raw[..24])
            );
            let ttl = cfg.qr_first_ttl + cfg.qr_ttl * u32::try_from(i).unwrap_or(u32::MAX);
            st.volatile.refs.insert(
                r.clone(),
                PendingRef {
                    conn,
                    expires_at: now + ttl,
                    used: false,
                },
            );
            refs.push(r);
        }
        drop(st);
        self.mark_dirty();
        Ok(refs)
    }

    /// The phone scanned a QR code: checks the ref, reserves it and allocates the device.
    pub fn begin_qr_pairing(&self, phone: &str, qr: &QrData) -> Result<PairTicket, StateError> {
        let now = Instant::now();
        let mut st = self.lock();
        if !st.accounts.contains_key(phone) {
            return Err(StateError::UnknownAccount(phone.to_string()));
        }
        st.volatile.refs.retain(|_, r| r.expires_at > now);
        let pending = st
            .volatile
            .refs
            .get(&qr.pairing_ref)
            .ok_or(StateError::UnknownRef)?;
        if pending.used {
            return Err(StateError::RefUsed);
        }
        let conn = pending.conn;
        let registration = st
            .volatile
            .registrations
            .get(&conn)
            .cloned()
            .ok_or(StateError::UnknownRef)?;
        if registration.noise_static != qr.noise_static || registration.identity != qr.identity {
            return Err(StateError::QrMismatch);
        }
        // One companion pairs once: every ref of its connection is spent.
        for r in st.volatile.refs.values_mut().filter(|r| r.conn == conn) {
            r.used = true;
        }
        let mut ticket = allocate_device(
            &mut st,
            phone,
            conn,
            registration,
            PairSecret::Qr {
                adv_secret: qr.adv_secret,
            },
            platform_name(qr.platform).to_string(),
        )?;
        ticket.pairing_ref = Some(qr.pairing_ref.clone());
        Ok(ticket)
    }

    /// A companion sent `companion_hello` for `phone` (§5.4 stage 1).
    pub fn link_code_requested(&self, conn: ConnId, phone: &str, platform: String) {
        let expires_at = Instant::now() + self.config().link_code_ttl;
        self.lock().volatile.link_codes.insert(
            phone.to_string(),
            LinkCodeRequest {
                conn,
                expires_at,
                platform,
            },
        );
    }

    /// The user typed a code on the phone: reserves the pending request and allocates the device.
    /// Whether the code is right only shows in the protocol layer's crypto (§5.4), as on WhatsApp.
    pub fn begin_link_code_pairing(
        &self,
        phone: &str,
        code: &str,
    ) -> Result<PairTicket, StateError> {
        let now = Instant::now();
        let mut st = self.lock();
        if !st.accounts.contains_key(phone) {
            return Err(StateError::UnknownAccount(phone.to_string()));
        }
        st.volatile.link_codes.retain(|_, r| r.expires_at > now);
        let request = st
            .volatile
            .link_codes
            .remove(phone)
            .ok_or_else(|| StateError::NoLinkCodeRequest(phone.to_string()))?;
        let registration = st
            .volatile
            .registrations
            .get(&request.conn)
            .cloned()
            .ok_or_else(|| StateError::NoLinkCodeRequest(phone.to_string()))?;
        allocate_device(
            &mut st,
            phone,
            request.conn,
            registration,
            PairSecret::LinkCode {
                code: code.to_string(),
            },
            request.platform,
        )
    }

    /// The companion answered `pair-success` with a valid `pair-device-sign`: the device exists.
    pub fn finish_pairing(
        &self,
        ticket: &PairTicket,
        adv_signed_identity: Vec<u8>,
    ) -> Result<(), StateError> {
        let mut st = self.lock();
        let account = st
            .accounts
            .get_mut(&ticket.phone)
            .ok_or_else(|| StateError::UnknownAccount(ticket.phone.clone()))?;
        let r = &ticket.registration;
        account.companions.insert(
            ticket.device,
            CompanionDevice {
                device: ticket.device,
                key_index: ticket.key_index,
                noise_static: r.noise_static,
                identity: r.identity,
                registration_id: r.registration_id,
                signed_prekey: r.signed_prekey.clone(),
                prekeys: VecDeque::new(),
                adv_signed_identity,
                platform: ticket.platform.clone(),
                paired_at: unix_secs(),
                offline_queue: VecDeque::new(),
                online: false,
            },
        );
        drop(st);
        self.shared
            .counters
            .pairings
            .fetch_add(1, Ordering::Relaxed);
        self.mark_dirty();
        Ok(())
    }

    /// Pairing did not complete: the ref can be scanned again while its connection lives. The
    /// allocated device number stays spent (harmless, and WhatsApp never reuses them either).
    pub fn abort_pairing(&self, ticket: &PairTicket) {
        let mut st = self.lock();
        if ticket.pairing_ref.is_some() {
            for r in st
                .volatile
                .refs
                .values_mut()
                .filter(|r| r.conn == ticket.conn)
            {
                r.used = false;
            }
        }
    }

    /// A connection ended: its registration, refs and link-code requests die with it.
    pub fn connection_closed(&self, conn: ConnId) {
        let mut st = self.lock();
        let v = &mut st.volatile;
        if v.registrations.remove(&conn).is_some() {
            v.refs.retain(|_, r| r.conn != conn);
            v.link_codes.retain(|_, r| r.conn != conn);
        }
    }

    /// Removes companion `device`; it can no longer log in.
    pub fn unlink(&self, phone: &str, device: u16) -> Result<CompanionDevice, StateError> {
        if device == 0 {
            return Err(StateError::CannotUnlinkPhone);
        }
        let mut st = self.lock();
        let account = st
            .accounts
            .get_mut(phone)
            .ok_or_else(|| StateError::UnknownAccount(phone.to_string()))?;
        let removed =
            account
                .companions
                .remove(&device)
                .ok_or_else(|| StateError::UnknownDevice {
                    phone: phone.to_string(),
                    device,
                })?;
        drop(st);
        self.mark_dirty();
        Ok(removed)
    }

    // ----- devices -----

    pub fn set_device_online(&self, phone: &str, device: u16, online: bool) {
        if let Some(d) = self
            .lock()
            .accounts
            .get_mut(phone)
            .and_then(|a| a.companions.get_mut(&device))
        {
            d.online = online;
        }
    }

    pub fn devices_online(&self) -> usize {
        self.lock()
            .accounts
            .values()
            .flat_map(|a| a.companions.values())
            .filter(|d| d.online)
            .count()
    }

    /// Stores uploaded one-time prekeys, dropping the oldest beyond the cap.
    pub fn upload_prekeys(
        &self,
        phone: &str,
        device: u16,
        keys: impl IntoIterator<Item = PreKeyPublic>,
    ) -> Result<usize, StateError> {
        let cap = self.config().limits.max_device_prekeys;
        let mut st = self.lock();
        let d = companion_mut(&mut st, phone, device)?;
        d.prekeys.extend(keys);
        while d.prekeys.len() > cap {
            d.prekeys.pop_front();
        }
        let n = d.prekeys.len();
        drop(st);
        self.mark_dirty();
        Ok(n)
    }

    /// Consumes one uploaded prekey of a companion (for a key-bundle fetch).
    pub fn take_device_prekey(
        &self,
        phone: &str,
        device: u16,
    ) -> Result<Option<PreKeyPublic>, StateError> {
        let mut st = self.lock();
        let k = companion_mut(&mut st, phone, device)?.prekeys.pop_front();
        drop(st);
        self.mark_dirty();
        Ok(k)
    }

    // ----- the mock phone's view -----

    ///
    /// A phone keeps one message per (sender, chat, id), as WhatsApp phones do: a sender that
    /// sends the same message again under the same id (a retry, or a resend after the sender
    /// crashed before the server's ack) does not make it appear twice. Only a message that
    /// decrypted counts: an `undecryptable` entry is followed by the copy that a retry brings.
    /// Returns whether the message was new.
    pub fn record_phone_message(
        &self,
        phone: &str,
        message: ReceivedMessage,
    ) -> Result<bool, StateError> {
        let cap = self.config().limits.max_phone_log;
        let mut st = self.lock();
        let a = account_mut(&mut st, phone)?;
        let seen = message.kind != "undecryptable"
            && a.inbox.iter().any(|m| {
                m.id == message.id
                    && m.from == message.from
                    && m.chat == message.chat
                    && m.kind != "undecryptable"
            });
        if !seen {
            push_capped(&mut a.inbox, message, cap);
        }
        Ok(!seen)
    }

    /// Messages the phone received with `t >= since` (ms), oldest first.
    pub fn phone_messages(
        &self,
        phone: &str,
        since: Option<u64>,
    ) -> Result<Vec<ReceivedMessage>, StateError> {
        let st = self.lock();
        let a = st
            .accounts
            .get(phone)
            .ok_or_else(|| StateError::UnknownAccount(phone.to_string()))?;
        Ok(a.inbox
            .iter()
            .filter(|m| since.is_none_or(|s| m.t >= s))
            .cloned()
            .collect())
    }

    pub fn record_receipt(&self, phone: &str, receipt: ReceiptRecord) -> Result<(), StateError> {
        let cap = self.config().limits.max_phone_log;
        let mut st = self.lock();
        let a = account_mut(&mut st, phone)?;
        push_capped(&mut a.receipts, receipt, cap);
        Ok(())
    }

    pub fn phone_receipts(
        &self,
        phone: &str,
        id: Option<&str>,
    ) -> Result<Vec<ReceiptRecord>, StateError> {
        let st = self.lock();
        let a = st
            .accounts
            .get(phone)
            .ok_or_else(|| StateError::UnknownAccount(phone.to_string()))?;
        Ok(a.receipts
            .iter()
            .filter(|r| id.is_none_or(|id| r.id == id))
            .cloned()
            .collect())
    }

    /// A fresh message id in the phone's style (`3EB0` + 16 hex digits), derived from the seed.
    pub fn next_message_id(&self) -> String {
        let mut st = self.lock();
        st.next_message += 1;
        let b = st.keys.bytes(&format!("message-id/{}", st.next_message));
        format!("3EB0{}", hex::encode_upper(&b[..8]))
    }

    // ----- message log -----

    pub fn log_message(&self, id: String, entry: LoggedMessage) {
        let cap = self.config().limits.max_message_log;
        let mut st = self.lock();
        let v = &mut st.volatile;
        if v.message_log.insert(id.clone(), entry).is_none() {
            v.message_order.push_back(id);
        }
        while v.message_order.len() > cap {
            if let Some(old) = v.message_order.pop_front() {
                v.message_log.remove(&old);
            }
        }
    }

    pub fn logged_message(&self, id: &str) -> Option<LoggedMessage> {
        self.lock().volatile.message_log.get(id).cloned()
    }

    // ----- groups -----

    /// Creates a group; the creator is its superadmin and is added if not listed.
    pub fn create_group(
        &self,
        creator: &str,
        subject: &str,
        participants: &[String],
    ) -> Result<String, StateError> {
        let mut st = self.lock();
        if !st.accounts.contains_key(creator) {
            return Err(StateError::UnknownAccount(creator.to_string()));
        }
        let mut members = vec![GroupParticipant {
            phone: creator.to_string(),
            admin: Some(AdminRole::Superadmin),
        }];
        for p in participants {
            let phone = match ChatAddr::parse(p) {
                Ok(ChatAddr::Phone(ph)) => Some(ph),
                Ok(ChatAddr::Lid(l)) => st.lids.get(&l).cloned(),
                Ok(ChatAddr::Group(_)) => None,
                Err(_) => Some(p.clone()),
            }
            .filter(|ph| st.accounts.contains_key(ph))
            .ok_or_else(|| StateError::UnknownParticipant(p.clone()))?;
            if !members.iter().any(|m| m.phone == phone) {
                members.push(GroupParticipant { phone, admin: None });
            }
        }
        let id = loop {
            st.next_group += 1;
            let n = st
                .keys
                .number(&format!("group/{}", st.next_group), 1_000_000_000_000);
            let id = format!("120363{n:012}");
            if !st.groups.contains_key(&id) {
                break id;
            }
        };
        st.groups.insert(
            id.clone(),
            Group {
                id: id.clone(),
                subject: subject.to_string(),
                creator: creator.to_string(),
                participants: members,
                created_at: unix_secs(),
                addressing_mode: "pn".to_string(),
                subject_owner: Some(creator.to_string()),
                subject_time: Some(unix_secs()),
                ..Group::default()
            },
        );
        drop(st);
        self.mark_dirty();
        Ok(id)
    }

    pub fn group(&self, id: &str) -> Option<Group> {
        self.lock().groups.get(id).cloned()
    }

    /// A fresh 22-character invite code (derived from the seed, never reused).
    pub fn new_invite_code(&self) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut st = self.lock();
        st.next_message += 1;
        let b = st.keys.bytes(&format!("invite/{}", st.next_message));
        b.iter()
            .take(22)
            .map(|x| {
                char::from(
                    *ALPHABET
                        .get(usize::from(*x) % ALPHABET.len())
                        .unwrap_or(&b'A'),
                )
            })
            .collect()
    }

    /// The group whose current invite code is `code`, or whether `code` was revoked.
    pub fn group_by_invite(&self, code: &str) -> Result<Group, bool> {
        let st = self.lock();
        if let Some(g) = st
            .groups
            .values()
            .find(|g| g.invite_code.as_deref() == Some(code))
        {
            return Ok(g.clone());
        }
        Err(st
            .groups
            .values()
            .any(|g| g.revoked_codes.iter().any(|c| c == code)))
    }

    /// The LID user of an account (for participant views).
    pub fn lid_of(&self, phone: &str) -> Option<String> {
        self.lock().accounts.get(phone).map(|a| a.lid.clone())
    }
}

fn phone_prekey_label(phone: &str, id: u32) -> String {
    format!("account/{phone}/prekey/{id}")
}

fn push_capped<T>(q: &mut VecDeque<T>, item: T, cap: usize) {
    q.push_back(item);
    while q.len() > cap {
        q.pop_front();
    }
}

fn account_mut<'a>(st: &'a mut State, phone: &str) -> Result<&'a mut Account, StateError> {
    st.accounts
        .get_mut(phone)
        .ok_or_else(|| StateError::UnknownAccount(phone.to_string()))
}

fn companion_mut<'a>(
    st: &'a mut State,
    phone: &str,
    device: u16,
) -> Result<&'a mut CompanionDevice, StateError> {
    account_mut(st, phone)?
        .companions
        .get_mut(&device)
        .ok_or_else(|| StateError::UnknownDevice {
            phone: phone.to_string(),
            device,
        })
}

fn allocate_device(
    st: &mut State,
    phone: &str,
    conn: ConnId,
    registration: Registration,
    secret: PairSecret,
    platform: String,
) -> Result<PairTicket, StateError> {
    let account = account_mut(st, phone)?;
    let device = account.next_device;
    account.next_device = device
        .checked_add(1)
        .ok_or_else(|| StateError::DevicesExhausted(phone.to_string()))?;
    let key_index = account.next_key_index;
    account.next_key_index = key_index.saturating_add(1);
    Ok(PairTicket {
        conn,
        phone: phone.to_string(),
        lid: account.lid.clone(),
        device,
        key_index,
        device_jid: addr::pn_device_jid(phone, device),
        lid_jid: addr::lid_device_jid(&account.lid, device),
        registration,
        secret,
        platform,
        account_identity: account.identity.clone(),
        pairing_ref: None,
    })
}

fn fresh_state(seed: Option<u64>, keys: KeySource) -> State {
    let server = ServerKeys {
        root: keys.key_pair("server/root"),
        intermediate: keys.key_pair("server/intermediate"),
        server_static: keys.key_pair("server/static"),
    };
    State {
        seed,
        keys,
        server,
        accounts: BTreeMap::new(),
        lids: Default::default(),
        groups: BTreeMap::new(),
        next_phone: 0,
        next_group: 0,
        next_message: 0,
        next_ref: 0,
        volatile: Volatile::default(),
    }
}

fn new_account(
    keys: &KeySource,
    phone: &str,
    lid: &str,
    push_name: Option<String>,
    limits: StateLimits,
) -> Account {
    let label = |what: &str| format!("account/{phone}/{what}");
    let identity = keys.key_pair(&label("identity"));
    let spk = keys.key_pair(&label("signed-prekey/1"));
    let signature = keys.sign(
        &identity,
        &spk.public().serialize_djb(),
        &label("signed-prekey/1"),
    );
    let registration_id =
        u32::try_from(keys.number(&label("registration-id"), 16380) + 1).unwrap_or(1);
    Account {
        phone: phone.to_string(),
        lid: lid.to_string(),
        push_name,
        identity,
        phone_device: PhoneDevice {
            registration_id,
            signed_prekey: OwnSignedPreKey {
                id: 1,
                key: spk,
                signature,
            },
            prekeys: PhonePreKeys {
                first: 1,
                end: 1 + limits.phone_prekeys,
            },
            signal: PhoneSignal::default(),
        },
        companions: BTreeMap::new(),
        profile: AccountProfile::default(),
        next_device: 1,
        next_key_index: 1,
        created_at: unix_secs(),
        inbox: VecDeque::new(),
        receipts: VecDeque::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn state(limits: StateLimits) -> SimState {
        SimState::open(StateConfig {
            seed: Some(3),
            state_dir: None,
            qr_first_ttl: Duration::from_secs(60),
            qr_ttl: Duration::from_secs(20),
            refs_per_pair_device: 6,
            link_code_ttl: Duration::from_secs(180),
            limits,
        })
        .unwrap()
    }

    /// Account 15550000001 with one paired companion; returns its device number.
    pub(super) fn paired(st: &SimState) -> u16 {
        st.create_account(Some("15550000001".into()), None).unwrap();
        let reg = Registration {
            noise_static: PublicKey([1; 32]),
            identity: PublicKey([2; 32]),
            registration_id: 1,
            signed_prekey: SignedPreKeyPublic {
                id: 1,
                public: PublicKey([3; 32]),
                signature: [0; 64],
            },
        };
        st.registration_started(ConnId(1), reg.clone());
        let refs = st.issue_refs(ConnId(1)).unwrap();
        let qr = QrData {
            pairing_ref: refs[0].clone(),
            noise_static: reg.noise_static,
            identity: reg.identity,
            adv_secret: [0; 32],
            platform: None,
        };
        let t = st.begin_qr_pairing("15550000001", &qr).unwrap();
        st.finish_pairing(&t, vec![]).unwrap();
        t.device
    }

    #[test]
    fn a_phone_keeps_one_message_per_sender_and_id() {
        let st = state(StateLimits::default());
        st.create_account(Some("15550000002".into()), None).unwrap();
        let msg = |id: &str, from: &str, kind: &str| ReceivedMessage {
            id: id.into(),
            from: from.into(),
            chat: from.into(),
            participant: None,
            kind: kind.into(),
            text: Some("hi".into()),
            context: None,
            details: Default::default(),
            t: 0,
        };
        let phone = "15550000002";
        let a = "15550000003@s.whatsapp.net";
        let b = "15550000004@s.whatsapp.net";
        // Undecryptable first, then the retried copy: both kept.
        assert!(
            st.record_phone_message(phone, msg("X1", a, "undecryptable"))
                .unwrap()
        );
        assert!(
            st.record_phone_message(phone, msg("X1", a, "text"))
                .unwrap()
        );
        // The same id again from the same sender: kept once.
        assert!(
            !st.record_phone_message(phone, msg("X1", a, "text"))
                .unwrap()
        );
        // The same id from another sender is another message.
        assert!(
            st.record_phone_message(phone, msg("X1", b, "text"))
                .unwrap()
        );
        let ids: Vec<_> = st
            .phone_messages(phone, None)
            .unwrap()
            .into_iter()
            .map(|m| (m.from, m.kind))
            .collect();
        assert_eq!(
            ids,
            [
                (a.to_owned(), "undecryptable".to_owned()),
                (a.to_owned(), "text".to_owned()),
                (b.to_owned(), "text".to_owned())
            ]
        );
    }

    #[test]
    fn per_device_queues_are_bounded() {
        let limits = StateLimits {
            max_device_prekeys: 3,
            max_offline_queue: 2,
            max_phone_log: 2,
            max_message_log: 2,
            phone_prekeys: 4,
        };
        let st = state(limits);
        let dev = paired(&st);
        let keys = (1..=5).map(|id| PreKeyPublic {
            id,
            public: PublicKey([0; 32]),
        });
        assert_eq!(st.upload_prekeys("15550000001", dev, keys).unwrap(), 3);
        assert_eq!(
            st.take_device_prekey("15550000001", dev)
                .unwrap()
                .map(|k| k.id),
            Some(3),
            "the oldest were dropped"
        );
        for i in 0..5 {
            let q = QueuedStanza {
                id: i.to_string(),
                kind: StanzaKind::Message,
                t: 0,
                node: vec![],
                sent_on: None,
            };
            assert!(st.hold("15550000001", dev, q).unwrap() <= 2);
        }
        let q = st.drain_offline("15550000001", dev).unwrap();
        assert_eq!(
            q.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
            ["3", "4"]
        );
        assert!(st.drain_offline("15550000001", dev).unwrap().is_empty());
        for i in 0..4 {
            st.log_message(
                format!("m{i}"),
                LoggedMessage {
                    sender: "s".into(),
                    chat: "c".into(),
                    t: 0,
                    text: None,
                },
            );
        }
        assert!(st.logged_message("m0").is_none());
        assert!(st.logged_message("m3").is_some());
        // The phone's prekey pool refills itself and never repeats an id.
        let ids: Vec<u32> = (0..10)
            .map(|_| st.take_phone_prekey("15550000001").unwrap().0)
            .collect();
        assert_eq!(ids, (1..=10).collect::<Vec<_>>());
    }

    #[test]
    fn connection_close_drops_its_refs_and_device_numbers_are_not_reused() {
        let st = state(StateLimits::default());
        let first = paired(&st);
        st.connection_closed(ConnId(1));
        assert!(st.read(|s| s.volatile.refs.is_empty()));
        st.unlink("15550000001", first).unwrap();
        st.registration_started(
            ConnId(2),
            Registration {
                noise_static: PublicKey([1; 32]),
                identity: PublicKey([2; 32]),
                registration_id: 1,
                signed_prekey: SignedPreKeyPublic {
                    id: 1,
                    public: PublicKey([3; 32]),
                    signature: [0; 64],
                },
            },
        );
        st.link_code_requested(ConnId(2), "15550000001", "Firefox (Linux)".into());
        let t = st
            .begin_link_code_pairing("15550000001", "ABCD1234")
            .unwrap();
        assert_eq!(t.device, first + 1);
        assert_eq!(t.key_index, 2);
        assert_eq!(
            st.begin_link_code_pairing("15550000001", "ABCD1234")
                .unwrap_err(),
            StateError::NoLinkCodeRequest("15550000001".into())
        );
    }

    #[test]
    fn phone_signed_prekey_verifies() {
        let st = state(StateLimits::default());
        st.create_account(None, None).unwrap();
        st.read(|s| {
            let a = &s.accounts["15550000001"];
            let spk = &a.phone_device.signed_prekey;
            assert!(zapin_protocol::crypto::xeddsa::verify(
                a.identity.public(),
                &spk.key.public().serialize_djb(),
                &spk.signature
            ));
            assert!((1..=16380).contains(&a.phone_device.registration_id));
        });
    }
}
