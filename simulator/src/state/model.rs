//! The server's data (wa-protocol.md §12.0) as plain types. Everything here is serialisable except
//! what dies with a process (connections, refs, online flags, the message logs), which is marked
//! `#[serde(skip)]`.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::{Deserialize, Serialize};
use zapin_protocol::crypto::{KeyPair, PublicKey};

use crate::conn::ConnId;

/// Root, intermediate and leaf (server static) keys. The protocol layer builds and signs the
/// `CertChain` from these; clients pin `root`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerKeys {
    #[serde(with = "crate::serde_hex::key_pair")]
    pub root: KeyPair,
    #[serde(with = "crate::serde_hex::key_pair")]
    pub intermediate: KeyPair,
    #[serde(with = "crate::serde_hex::key_pair")]
    pub server_static: KeyPair,
}

/// A signed prekey whose private half the simulator holds (the mock phone's).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OwnSignedPreKey {
    pub id: u32,
    #[serde(with = "crate::serde_hex::key_pair")]
    pub key: KeyPair,
    /// XEdDSA by the account identity over `05 ‖ public`.
    #[serde(with = "crate::serde_hex::array64")]
    pub signature: [u8; 64],
}

/// A companion's signed prekey: the server only ever sees the public half.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedPreKeyPublic {
    pub id: u32,
    #[serde(with = "crate::serde_hex::public_key")]
    pub public: PublicKey,
    #[serde(with = "crate::serde_hex::array64")]
    pub signature: [u8; 64],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreKeyPublic {
    pub id: u32,
    #[serde(with = "crate::serde_hex::public_key")]
    pub public: PublicKey,
}

/// The mock phone's one-time prekeys. Their key pairs are derived from the master secret and the
/// id, so the pool is just the id range `first..end`: 8 bytes per account whatever its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhonePreKeys {
    pub first: u32,
    pub end: u32,
}

impl PhonePreKeys {
    pub fn len(&self) -> u32 {
        self.end.saturating_sub(self.first)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Device 0 of an account: the phone, which runs Signal inside the simulator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhoneDevice {
    pub registration_id: u32,
    pub signed_prekey: OwnSignedPreKey,
    pub prekeys: PhonePreKeys,
    /// The phone's Signal sessions and sender keys (absent in snapshots from before they existed).
    #[serde(default)]
    pub signal: PhoneSignal,
}

/// What the mock phone's Signal keeps between messages. Records are the protocol crate's own
/// serialisation (`SessionRecord::to_bytes`, `SenderKeyRecord::to_bytes`), hex in the snapshot.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PhoneSignal {
    /// Peer device `phone.device` (always the PN form: the phone keys its own store) → session.
    #[serde(default)]
    pub sessions: BTreeMap<String, String>,
    /// `group id|phone.device` of the sender (the phone's own key too) → sender-key record.
    #[serde(default)]
    pub sender_keys: BTreeMap<String, String>,
    /// Counter for the phone's derived RNG seeds, so every Signal operation draws fresh,
    /// reproducible randomness (`KeySource` label `account/{phone}/signal-rng/{n}`).
    #[serde(default)]
    pub rng_counter: u64,
}

/// A linked companion device (a zapin session, Baileys, …).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompanionDevice {
    pub device: u16,
    pub key_index: u32,
    #[serde(with = "crate::serde_hex::public_key")]
    pub noise_static: PublicKey,
    #[serde(with = "crate::serde_hex::public_key")]
    pub identity: PublicKey,
    pub registration_id: u32,
    pub signed_prekey: SignedPreKeyPublic,
    /// Uploaded one-time prekeys, oldest first; capped at `StateLimits::max_device_prekeys`.
    pub prekeys: VecDeque<PreKeyPublic>,
    /// `ADVSignedDeviceIdentity` as the companion signed it in `pair-device-sign`, without
    /// `accountSignatureKey`; served in `<device-identity>` of key bundles.
    #[serde(with = "crate::serde_hex::bytes")]
    pub adv_signed_identity: Vec<u8>,
    pub platform: String,
    pub paired_at: u64,
    /// Every stanza for this device that it has not acknowledged yet, oldest first (§6.8,
    /// §7.4, §7.8): queued while it was offline, or in flight on a connection
    /// (`QueuedStanza::sent_on`) until its receipt or ack arrives. Both count against
    /// `StateLimits::max_offline_queue`; beyond it the oldest is dropped. Persisted whole, so
    /// neither a disconnect nor a simulator restart loses a stanza the device did not confirm.
    pub offline_queue: VecDeque<QueuedStanza>,
    #[serde(skip)]
    pub online: bool,
}

/// A stanza held for a device until it acknowledges it. `node` is the encoded binary node (codec
/// output before Noise); the protocol layer adds the `offline` attribute when it delivers it from
/// the queue at login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedStanza {
    pub id: String,
    pub kind: StanzaKind,
    pub t: u64,
    #[serde(with = "crate::serde_hex::bytes")]
    pub node: Vec<u8>,
    /// The connection it was handed to and not yet acknowledged on; `None` while it waits for a
    /// login. Connection ids die with the process, so a reloaded stanza is simply queued.
    #[serde(skip)]
    pub sent_on: Option<ConnId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StanzaKind {
    Message,
    Receipt,
    Notification,
}

/// A WhatsApp user: its phone (device 0) and its companions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    pub phone: String,
    /// The LID user part (digits), e.g. `123456789012345` of `123456789012345@lid`.
    pub lid: String,
    pub push_name: Option<String>,
    /// The primary identity key pair = the ADV account signature key.
    #[serde(with = "crate::serde_hex::key_pair")]
    pub identity: KeyPair,
    pub phone_device: PhoneDevice,
    pub companions: BTreeMap<u16, CompanionDevice>,
    /// Device numbers are never reused within an account, as on WhatsApp.
    pub next_device: u16,
    pub next_key_index: u32,
    pub created_at: u64,
    /// Privacy settings, block list, about text and picture (`privacy`, `blocklist`, `status`
    /// and `w:profile:picture` IQs).
    #[serde(default)]
    pub profile: AccountProfile,
    /// What the phone received and decrypted (control API `GET …/messages`).
    #[serde(skip)]
    pub inbox: VecDeque<ReceivedMessage>,
    /// Receipts the phone got for messages it sent (control API `GET …/receipts`).
    #[serde(skip)]
    pub receipts: VecDeque<ReceiptRecord>,
}

/// An account's own settings kept by the server. Privacy categories missing from `privacy`
/// have WhatsApp's defaults (see [`AccountProfile::privacy_value`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AccountProfile {
    pub privacy: BTreeMap<String, String>,
    /// Blocked users as JIDs (`…@s.whatsapp.net`).
    pub blocked: std::collections::BTreeSet<String>,
    /// The "about" text.
    pub status: Option<String>,
    /// When the about text was set (Unix seconds; 0 when never).
    #[serde(default)]
    pub status_at: u64,
    pub picture_id: Option<String>,
    pub picture_len: usize,
    /// The media blob holding the picture (served at `GET /v/…/{blob}`), when it has one.
    #[serde(default)]
    pub picture_blob: Option<String>,
    /// Set for a business account (control API `PUT …/business`): what `w:biz` answers.
    #[serde(default)]
    pub business: Option<BusinessProfile>,
}

/// A business account's public profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct BusinessProfile {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub website: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
}

impl AccountProfile {
    /// The privacy categories WhatsApp reports, with their allowed values.
    pub const CATEGORIES: [(&'static str, &'static [&'static str]); 6] = [
        ("readreceipts", &["all", "none"]),
        ("profile", &["all", "contacts", "contact_blacklist", "none"]),
        ("status", &["all", "contacts", "contact_blacklist", "none"]),
        ("online", &["all", "match_last_seen"]),
        ("last", &["all", "contacts", "contact_blacklist", "none"]),
        (
            "groupadd",
            &["all", "contacts", "contact_blacklist", "none"],
        ),
    ];

    /// The value of a category: what was set, else WhatsApp's default for a new account.
    pub fn privacy_value(&self, name: &str) -> String {
        self.privacy.get(name).cloned().unwrap_or_else(|| {
            match name {
                "readreceipts" | "online" => "all",
                _ => "contacts",
            }
            .to_string()
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReceivedMessage {
    pub id: String,
    pub from: String,
    pub chat: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub participant: Option<String>,
    /// `text`, `image`, … or `undecryptable`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The reply/mention context of an `extendedTextMessage`, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<MessageContext>,
    /// Media fields (and the sha256 of the decrypted media), location, contact, reaction and
    /// poll contents: flattened into the record.
    #[serde(flatten)]
    pub details: crate::phone::ContentDetails,
    /// Unix milliseconds.
    pub t: u64,
}

/// The parts of a received `contextInfo` tests check (control API `GET …/messages`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageContext {
    /// The quoted message's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stanza_id: Option<String>,
    /// The quoted message's author.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub participant: Option<String>,
    /// The quoted message's chat, when another one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_jid: Option<String>,
    /// The quoted message's text (`conversation` or `extendedTextMessage.text`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quoted_text: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentioned_jid: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptRecord {
    pub id: String,
    pub from: String,
    /// `delivered`, `read` or `played`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Unix milliseconds.
    pub t: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdminRole {
    Superadmin,
    Admin,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupParticipant {
    pub phone: String,
    pub admin: Option<AdminRole>,
}

/// A group's description: its id (a change names the id it replaces), text, author and time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupDescription {
    pub id: String,
    pub body: String,
    pub owner: String,
    pub t: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Group {
    /// The id part of `id@g.us`.
    pub id: String,
    pub subject: String,
    pub creator: String,
    pub participants: Vec<GroupParticipant>,
    /// Unix seconds.
    pub created_at: u64,
    /// `pn` or `lid` (§12.5); groups are created `pn`-addressed.
    pub addressing_mode: String,
    /// Who last set the subject and when (the creator at creation).
    #[serde(default)]
    pub subject_owner: Option<String>,
    #[serde(default)]
    pub subject_time: Option<u64>,
    #[serde(default)]
    pub description: Option<GroupDescription>,
    /// Only admins send (`announcement`).
    #[serde(default)]
    pub announce: bool,
    /// Only admins edit the group's info (`locked`).
    #[serde(default)]
    pub locked: bool,
    /// Disappearing-messages timer in seconds, 0 when off.
    #[serde(default)]
    pub ephemeral: u32,
    /// The current invite code (made on first ask, replaced on revoke).
    #[serde(default)]
    pub invite_code: Option<String>,
    /// Codes revoked before: asking about them is `410 gone`, not `406`.
    #[serde(default)]
    pub revoked_codes: Vec<String>,
    /// The picture's id and size in bytes (the bytes themselves are not kept).
    #[serde(default)]
    pub picture_id: Option<String>,
    #[serde(default)]
    pub picture_len: usize,
}

/// What a registration connection told the server in its `ClientPayload` (§3, §12.1 step 4).
/// The protocol layer records it; scans and link codes are checked against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub noise_static: PublicKey,
    pub identity: PublicKey,
    pub registration_id: u32,
    pub signed_prekey: SignedPreKeyPublic,
}

/// A `pair-device` ref handed to a registration connection.
#[derive(Debug, Clone)]
pub struct PendingRef {
    pub conn: ConnId,
    pub expires_at: std::time::Instant,
    pub used: bool,
}

/// A companion asked to pair by phone number (§5.4 companion_hello) and waits for the code.
#[derive(Debug, Clone)]
pub struct LinkCodeRequest {
    pub conn: ConnId,
    pub expires_at: std::time::Instant,
    /// `companion_platform_display`, e.g. `Chrome (Mac OS)`.
    pub platform: String,
}

/// Message id → who sent it where, to route receipts and retries (§12.4 step 18).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedMessage {
    /// The sending device, `phone:device@s.whatsapp.net` (`phone@s.whatsapp.net` for the phone).
    pub sender: String,
    /// The chat JID (user without device, or group).
    pub chat: String,
    pub t: u64,
    /// The text, for messages a mock phone sent: what it re-encrypts when a device asks for a
    /// retry (§7.5). `None` for companions' messages (the server never sees their plaintext).
    pub text: Option<String>,
}

/// Process-lifetime data: not in the snapshot.
#[derive(Debug, Default)]
pub struct Volatile {
    pub registrations: HashMap<ConnId, Registration>,
    pub refs: HashMap<String, PendingRef>,
    pub link_codes: HashMap<String, LinkCodeRequest>,
    pub message_log: HashMap<String, LoggedMessage>,
    pub message_order: VecDeque<String>,
}

/// Everything the snapshot holds, plus the volatile part.
#[derive(Debug, Serialize, Deserialize)]
pub struct State {
    pub seed: Option<u64>,
    pub keys: crate::keys::KeySource,
    pub server: ServerKeys,
    pub accounts: BTreeMap<String, Account>,
    /// LID user → phone.
    pub lids: HashMap<String, String>,
    pub groups: BTreeMap<String, Group>,
    /// Counters for derived ids (phones, groups, message ids, refs).
    pub next_phone: u64,
    pub next_group: u64,
    pub next_message: u64,
    pub next_ref: u64,
    #[serde(skip)]
    pub volatile: Volatile,
}
