//! The values the store keeps. Keys are raw 32-byte Curve25519 values so that this crate does not
//! depend on `zapin-protocol`; Signal records are opaque bytes.

use std::fmt;

use zeroize::Zeroize;

use crate::error::StoreError;

/// Longest accepted [`DeviceId`], in bytes. Bounded so keys stay index-friendly.
pub const MAX_DEVICE_ID_LEN: usize = 128;

/// The caller-chosen key of one hosted device (for zapin: the instance id). Every row in the store
/// belongs to exactly one `DeviceId`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(String);

impl DeviceId {
    /// Accepts 1 to [`MAX_DEVICE_ID_LEN`] bytes without control characters.
    pub fn new(id: impl Into<String>) -> Result<Self, StoreError> {
        let id = id.into();
        if id.is_empty() || id.len() > MAX_DEVICE_ID_LEN || id.chars().any(char::is_control) {
            return Err(StoreError::InvalidDeviceId);
        }
        Ok(Self(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceId({:?})", self.0)
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A remote Signal address: the user part of a JID (phone number or LID user, as the protocol
/// layer names it) and the device number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    pub name: String,
    pub device: u32,
}

impl Address {
    pub fn new(name: impl Into<String>, device: u32) -> Self {
        Self {
            name: name.into(),
            device,
        }
    }
}

/// A sender-key record's key: the group and the member device that sends in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SenderKeyName {
    pub group: String,
    pub sender: Address,
}

impl SenderKeyName {
    pub fn new(group: impl Into<String>, sender: Address) -> Self {
        Self {
            group: group.into(),
            sender,
        }
    }
}

/// 32 secret bytes (a private key or the ADV secret). Zeroed on drop, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret32([u8; 32]);

impl Drop for Secret32 {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl Secret32 {
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    pub(crate) fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }
}

impl fmt::Debug for Secret32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret32(<redacted>)")
    }
}

/// A Curve25519 key pair as stored: raw public and private bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPairBytes {
    pub public: [u8; 32],
    pub private: Secret32,
}

impl KeyPairBytes {
    pub fn new(public: [u8; 32], private: [u8; 32]) -> Self {
        Self {
            public,
            private: Secret32::new(private),
        }
    }
}

/// A one-time prekey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreKey {
    pub id: u32,
    pub key_pair: KeyPairBytes,
}

/// A signed prekey with its XEdDSA signature (by the identity key) and creation time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedPreKey {
    pub id: u32,
    pub key_pair: KeyPairBytes,
    pub signature: [u8; 64],
    /// Seconds since the Unix epoch.
    pub created_at: u64,
}

/// How far the local user trusts a remote identity key. The store only keeps the value; deciding
/// what is trusted is the protocol layer's job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trust {
    /// Seen, not accepted (for example a changed key awaiting a decision).
    Untrusted,
    /// Accepted on first use or after a change, as WhatsApp clients do by default.
    Trusted,
    /// Explicitly verified by the user.
    Verified,
}

impl Trust {
    pub(crate) fn to_i64(self) -> i64 {
        match self {
            Trust::Untrusted => 0,
            Trust::Trusted => 1,
            Trust::Verified => 2,
        }
    }

    pub(crate) fn from_i64(v: i64) -> Result<Self, StoreError> {
        match v {
            0 => Ok(Trust::Untrusted),
            1 => Ok(Trust::Trusted),
            2 => Ok(Trust::Verified),
            _ => Err(StoreError::Corrupt("identities.trust")),
        }
    }
}

/// A remote identity key and the trust placed in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityRecord {
    pub key: [u8; 32],
    pub trust: Trust,
}

/// What [`crate::Store::save_identity`] replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityChange {
    /// No key was stored for the address.
    New,
    /// The same key was stored (its trust may have been updated).
    Unchanged,
    /// A different key was stored; the old record is returned.
    Replaced(IdentityRecord),
}

/// Everything a device needs to log in again after a restart. Created before pairing (keys only),
/// completed by pairing (`account`), updated by later events (push name, routing info).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCredentials {
    pub registration_id: u32,
    /// Static key of the Noise handshake.
    pub noise_key: KeyPairBytes,
    /// Signal identity key.
    pub identity_key: KeyPairBytes,
    /// The signed prekey currently advertised. Also kept in the signed-prekey table so that
    /// [`crate::Store::load_signed_prekey`] finds it by id.
    pub signed_prekey: SignedPreKey,
    /// Secret used to authenticate the pairing (HMAC over the ADV device identity).
    pub adv_secret_key: Secret32,
    /// Set once the device is paired to an account.
    pub account: Option<Account>,
    pub push_name: Option<String>,
    /// Platform string the device announced (for example `"WEB"` / browser name).
    pub platform: Option<String>,
    /// Edge routing info from the server, sent back on reconnect.
    pub routing_info: Option<Vec<u8>>,
}

/// What pairing established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The account's user JID (`user@s.whatsapp.net`).
    pub account_jid: String,
    /// This device's JID (`user:device@s.whatsapp.net`).
    pub device_jid: String,
    /// The account's LID (`user@lid`), when known.
    pub lid: Option<String>,
    /// Serialized `ADVSignedDeviceIdentity` (signatures, not secret), as the protocol layer
    /// produced it; sent in the login payload.
    pub adv_signed_identity: Vec<u8>,
    pub business_name: Option<String>,
}

/// One write inside a [`Batch`]. Debug output shows record lengths, never record bytes (session
/// and sender-key records hold chain keys).
#[derive(Clone, PartialEq, Eq)]
pub enum BatchOp {
    StoreSession {
        address: Address,
        record: Vec<u8>,
    },
    DeleteSession {
        address: Address,
    },
    RemovePreKey {
        id: u32,
    },
    StoreSenderKey {
        name: SenderKeyName,
        record: Vec<u8>,
    },
    SaveIdentity {
        address: Address,
        identity: IdentityRecord,
    },
    /// Keep a decrypted incoming message until its consumer confirms it (the receive inbox). A
    /// second entry with the same sender and id is ignored: the first one is kept.
    PutInbox(InboxEntry),
}

impl fmt::Debug for BatchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchOp::StoreSession { address, record } => f
                .debug_struct("StoreSession")
                .field("address", address)
                .field("record_len", &record.len())
                .finish(),
            BatchOp::DeleteSession { address } => f
                .debug_struct("DeleteSession")
                .field("address", address)
                .finish(),
            BatchOp::RemovePreKey { id } => f.debug_struct("RemovePreKey").field("id", id).finish(),
            BatchOp::StoreSenderKey { name, record } => f
                .debug_struct("StoreSenderKey")
                .field("name", name)
                .field("record_len", &record.len())
                .finish(),
            BatchOp::SaveIdentity { address, identity } => f
                .debug_struct("SaveIdentity")
                .field("address", address)
                .field("identity", identity)
                .finish(),
            BatchOp::PutInbox(entry) => entry.fmt(f),
        }
    }
}

/// Writes for one device applied in one transaction by [`crate::Store::apply`]: all or none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    pub(crate) ops: Vec<BatchOp>,
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn store_session(mut self, address: Address, record: impl Into<Vec<u8>>) -> Self {
        self.ops.push(BatchOp::StoreSession {
            address,
            record: record.into(),
        });
        self
    }

    pub fn delete_session(mut self, address: Address) -> Self {
        self.ops.push(BatchOp::DeleteSession { address });
        self
    }

    pub fn remove_prekey(mut self, id: u32) -> Self {
        self.ops.push(BatchOp::RemovePreKey { id });
        self
    }

    pub fn store_sender_key(mut self, name: SenderKeyName, record: impl Into<Vec<u8>>) -> Self {
        self.ops.push(BatchOp::StoreSenderKey {
            name,
            record: record.into(),
        });
        self
    }

    pub fn save_identity(mut self, address: Address, identity: IdentityRecord) -> Self {
        self.ops.push(BatchOp::SaveIdentity { address, identity });
        self
    }

    pub fn put_inbox(mut self, entry: InboxEntry) -> Self {
        self.ops.push(BatchOp::PutInbox(entry));
        self
    }

    pub fn push(&mut self, op: BatchOp) {
        self.ops.push(op);
    }

    /// Appends every write of `other`, in order.
    pub fn append(&mut self, other: Batch) {
        self.ops.extend(other.ops);
    }

    pub fn ops(&self) -> &[BatchOp] {
        &self.ops
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// A decrypted incoming message waiting in the receive inbox. The store seals `body` (it holds
/// plaintext) and never interprets it; `sender` and `id` name the message (WhatsApp message ids
/// are unique per sender) and are stored in clear, so a confirmation can find the row.
#[derive(Clone, PartialEq, Eq)]
pub struct InboxEntry {
    /// The sending device's JID.
    pub sender: String,
    /// The message id.
    pub id: String,
    /// The consumer's encoding of the message.
    pub body: Vec<u8>,
}

impl fmt::Debug for InboxEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboxEntry")
            .field("sender", &self.sender)
            .field("id", &self.id)
            .field("body_len", &self.body.len())
            .finish()
    }
}
