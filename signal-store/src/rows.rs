//! Rows as the backends hold them: plain columns, secrets already sealed. The [`crate::Store`]
//! converts between these and the public types, so backends never see plaintext secrets.

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeviceRow {
    pub registration_id: i64,
    pub noise_public: Vec<u8>,
    pub identity_public: Vec<u8>,
    pub signed_prekey_id: i64,
    /// Sealed `noise private || identity private || adv secret`.
    pub secrets_enc: Vec<u8>,
    pub account_jid: Option<String>,
    pub device_jid: Option<String>,
    pub lid: Option<String>,
    pub adv_signed_identity: Option<Vec<u8>>,
    pub push_name: Option<String>,
    pub platform: Option<String>,
    pub business_name: Option<String>,
    pub routing_info: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SignedPreKeyRow {
    pub id: i64,
    pub public_key: Vec<u8>,
    pub private_enc: Vec<u8>,
    pub signature: Vec<u8>,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PreKeyRow {
    pub id: i64,
    pub public_key: Vec<u8>,
    pub private_enc: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IdentityRow {
    pub identity_key: Vec<u8>,
    pub trust: i64,
}

/// One write of a batch, at row level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RowOp {
    PutSession {
        name: String,
        device: i64,
        record_enc: Vec<u8>,
    },
    DeleteSession {
        name: String,
        device: i64,
    },
    RemovePreKey {
        id: i64,
    },
    PutSenderKey {
        group: String,
        name: String,
        device: i64,
        record_enc: Vec<u8>,
    },
    PutIdentity {
        name: String,
        device: i64,
        row: IdentityRow,
    },
    PutInbox(InboxRow),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InboxRow {
    pub sender: String,
    pub msg_id: String,
    pub body_enc: Vec<u8>,
}
