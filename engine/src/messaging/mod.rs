//! Messaging for one hosted device: sending (1:1 and group, with own-device fan-out), receiving
//! and decrypting `<message>` stanzas, receipts, retry receipts, and the requests they need
//! (usync device lists, prekey bundle fetches).
//!
//! # Shape
//!
//! Stanza building and parsing is pure ([`usync`], [`prekeys`], [`content`], [`ids`],
//! [`receipts`]). The parts that touch Signal state are `async` methods on [`Messenger`], one
//! per hosted device, owned by that device's session actor. They go through
//! [`crate::signal_session`], which persists every ratchet step before handing out its result,
//! so whatever node a method returns may be written to the socket at once: an outgoing
//! `<message>` only exists once the advanced sessions are durable, and a receipt or ack for an
//! incoming message only once its decryption is.
//!
//! IQs a send needs (usync, key fetch) go through the [`Exchange`] the actor supplies. The
//! actor's reader must keep routing IQ answers to it while a send awaits one (a pending-IQ map
//! resolved by the reader task is enough); nothing here blocks a thread.
//!
//! The actor must not run two `Messenger` methods of one device concurrently (they take
//! `&mut self`), since two load-modify-store cycles on one Signal record would lose one update.
//!
//! # How the session actor drives it
//!
//! * Create one [`Messenger::new`] per hosted device after login, with [`Me`] filled from the
//!   stored credentials (`identity`, `Account::adv_signed_identity` as `device_identity`) and
//!   `<success lid>` ([`Messenger::set_own_lid`]).
//! * Send: [`content::prepare_text`] (or any `wa::Message`), an id from [`ids::message_id`],
//!   then [`Messenger::send_direct`] (users) or [`Messenger::send_group`] (groups; members
//!   and addressing mode from [`Messenger::group_metadata`]). Write [`Sent::stanza`]; report `PENDING`.
//! * `<message>` in: [`Messenger::receive`]; write every node of [`Received::replies`], emit
//!   [`Received::message`] as `messages.upsert`. On `Err` (store failure) write nothing: the
//!   server redelivers.
//! * `<receipt>` in: [`Messenger::handle_receipt`]; write the replies, emit the statuses as
//!   `messages.update`.
//! * `<ack class=message>` in: [`receipts::ServerAck::parse`] → `SERVER_ACK`/`ERROR`, and
//!   [`Messenger::check_ack_phash`], which drops stale device lists when the server's `phash`
//!   differs from [`Sent::phash`].
//! * `<notification type=devices>`: [`Messenger::invalidate_devices`]; `w:gp2` (group
//!   changes): [`Messenger::forget_group`], [`groups::parse_notification`] for the event.
//! * Marking read: [`receipts::read_receipt`]; typing for `delay`: [`presence::chatstate`].
//! * `<presence>` / `<chatstate>` in: [`presence::parse_presence`] / [`presence::parse_chatstate`].
//! * Number lookups: [`usync::contact_query`] / [`usync::parse_contact_result`].
//! * Contacts and chats events: a [`directory::Directory`] per session fed every received message
//!   and every sent chat.

pub mod account;
pub mod content;
pub mod directory;
pub mod group_admin;
pub mod groups;
pub mod ids;
pub mod inbox;
mod lru;
pub mod prekeys;
pub mod presence;
pub mod receipts;
mod receive;
mod send;
pub mod usync;

use std::future::Future;

use zapin_protocol::binary::Node;
use zapin_protocol::jid::{Jid, Server};
use zapin_protocol::proto::wa;
use zapin_protocol::signal::LocalIdentity;
use zapin_signal_store::{Address, DeviceId, Store, StoreError};

use crate::signal_session::SessionError;
pub use groups::GroupMetadata;
use lru::Lru;
pub use receipts::{MessageKey, MessageStatus, StatusUpdate};
pub use receive::{NACK_INVALID_PROTOBUF, NACK_PARSING, ReceiptOutcome, Received, ReceivedMessage};
pub use send::{AddressingMode, Sent};

/// Why a messaging operation failed. Signal state written before the failure stays written
/// (each write is a complete, consistent step).
#[derive(Debug, thiserror::Error)]
pub enum MessagingError {
    #[error("session: {0}")]
    Session(#[from] SessionError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("exchange: {0}")]
    Exchange(#[from] ExchangeError),
    #[error("server answered error {code} ({text})")]
    Iq { code: u16, text: String },
    #[error("malformed {0}: {1}")]
    Malformed(&'static str, &'static str),
    #[error("plaintext padding is invalid")]
    BadPadding,
    #[error("plaintext is not a valid Message protobuf")]
    BadProtobuf,
    #[error("no device of {0} can be encrypted to")]
    NoDevices(Jid),
}

/// The transport failed to answer an IQ (disconnected, timed out).
#[derive(Debug, Clone, thiserror::Error)]
#[error("IQ exchange failed: {0}")]
pub struct ExchangeError(pub String);

/// How the actor lends its connection for the IQs a send needs.
pub trait Exchange: Send {
    /// Sends `iq` (built without an `id`: the implementation assigns one) and resolves with the
    /// server's `<iq>` answer, `type=error` answers included.
    fn query(&mut self, iq: Node) -> impl Future<Output = Result<Node, ExchangeError>> + Send;
}

/// `Ok` for an `<iq type=result>`, the typed server error for `type=error`.
pub(crate) fn check_iq_result(iq: &Node) -> Result<(), MessagingError> {
    match iq.attr_str("type") {
        Some("result") => Ok(()),
        Some("error") => {
            let err = iq.child("error");
            Err(MessagingError::Iq {
                code: err
                    .and_then(|e| e.attr_str("code"))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0),
                text: err
                    .and_then(|e| e.attr_str("text"))
                    .unwrap_or_default()
                    .to_owned(),
            })
        }
        _ => Err(MessagingError::Malformed("iq", "neither result nor error")),
    }
}

/// The Signal address of a device JID.
pub fn signal_address(jid: &Jid) -> Address {
    Address::new(jid.signal_name(), u32::from(jid.device))
}

/// Who this hosted device is.
#[derive(Debug, Clone)]
pub struct Me {
    /// The store key of this device.
    pub store_id: DeviceId,
    /// This device in PN form (`user:device@s.whatsapp.net`).
    pub pn: Jid,
    /// This device in LID form (`lid:device@lid`), once known.
    pub lid: Option<Jid>,
    pub identity: LocalIdentity,
    /// Our `ADVSignedDeviceIdentity` (from pairing), sent as `<device-identity>` with `pkmsg`s.
    pub device_identity: Vec<u8>,
}

impl Me {
    /// Whether `jid` names our own user (any device, either namespace).
    pub fn is_own_user(&self, jid: &Jid) -> bool {
        (jid.server == Server::Pn && jid.user == self.pn.user)
            || self
                .lid
                .as_ref()
                .is_some_and(|l| jid.server == Server::Lid && jid.user == l.user)
    }

    /// Whether `jid` is this very device.
    pub fn is_this_device(&self, jid: &Jid) -> bool {
        self.is_own_user(jid) && jid.device == self.pn.device
    }
}

/// Cache sizes. Every table is bounded so a session's memory stays flat however long it runs.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Users whose device lists are cached.
    pub device_lists: usize,
    /// Recently sent messages kept for retry receipts.
    pub sent_messages: usize,
    /// Groups whose "devices that hold our sender key" set is kept.
    pub groups: usize,
    /// Incoming message ids whose retry count is tracked.
    pub retry_counts: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            device_lists: 1024,
            sent_messages: 256,
            groups: 256,
            retry_counts: 256,
        }
    }
}

/// Highest retry count we ask for, as Baileys and whatsmeow (§7.5).
pub const MAX_RETRY_COUNT: u32 = 5;

/// A sent message kept for answering retry receipts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SentMessage {
    pub chat: Jid,
    pub message: wa::Message,
    /// The participant hash the stanza carried (group sends), checked against the server's ack.
    pub phash: Option<String>,
}

/// Which devices hold our current sender key in one group.
#[derive(Debug, Clone, Default)]
pub(crate) struct SenderKeyShare {
    pub key_id: u32,
    pub devices: std::collections::HashSet<Jid>,
}

/// The messaging state of one hosted device; owned by its session actor.
#[derive(Debug)]
pub struct Messenger {
    pub(crate) store: Store,
    pub(crate) me: Me,
    pub(crate) device_lists: Lru<Jid, usync::UserDevices>,
    /// PN user → LID user, learned from usync and message attributes.
    pub(crate) lids: Lru<String, Jid>,
    pub(crate) sent: Lru<String, SentMessage>,
    pub(crate) sender_key_shares: Lru<Jid, SenderKeyShare>,
    pub(crate) retry_counts: Lru<String, u32>,
    /// Group metadata for sends, dropped on `w:gp2` notifications.
    pub(crate) groups: Lru<Jid, groups::GroupMetadata>,
}

impl Messenger {
    pub fn new(store: Store, me: Me, limits: Limits) -> Self {
        Messenger {
            store,
            me,
            device_lists: Lru::new(limits.device_lists),
            lids: Lru::new(limits.device_lists),
            sent: Lru::new(limits.sent_messages),
            sender_key_shares: Lru::new(limits.groups),
            retry_counts: Lru::new(limits.retry_counts),
            groups: Lru::new(limits.groups),
        }
    }

    pub fn me(&self) -> &Me {
        &self.me
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Sets our LID once the server told it (`<success lid>`).
    pub fn set_own_lid(&mut self, lid: Jid) {
        self.me.lid = Some(lid);
    }

    /// Drops the cached device list of `user` (call on a `devices` notification or a `phash`
    /// mismatch in a message ack), and forgets which of its devices hold our sender keys, so the
    /// next send re-queries and re-distributes.
    pub fn invalidate_devices(&mut self, user: &Jid) {
        let user = user.to_non_ad();
        self.device_lists.remove(&user);
        if let Some(lid) = self.lids.get(&user.user).cloned() {
            self.device_lists.remove(&lid);
        }
        self.sender_key_shares.clear();
    }

    /// Forgets which devices hold our sender key in `group` (a membership change, or a group send
    /// whose stanza was never delivered): the next send distributes it to every device again.
    pub fn forget_sender_key_devices(&mut self, group: &Jid) {
        self.sender_key_shares.remove(&group.to_non_ad());
    }

    /// Records that PN user `pn` is LID user `lid`.
    pub fn learn_lid(&mut self, pn: &Jid, lid: &Jid) {
        if pn.is_pn() && lid.is_lid() {
            self.lids.insert(pn.user.clone(), lid.to_non_ad());
        }
    }

    /// The JID a device's Signal session is keyed by: its LID form when the mapping is known
    /// (as Baileys and whatsmeow key sessions), else the JID as given.
    pub fn session_jid(&mut self, device: &Jid) -> Jid {
        if device.is_pn()
            && let Some(lid) = self.lids.get(&device.user)
        {
            return Jid {
                device: device.device,
                ..lid.clone()
            };
        }
        device.clone()
    }

    /// The subject of `group` if its metadata is cached (no query).
    pub fn cached_group_subject(&mut self, group: &Jid) -> Option<String> {
        self.groups.get(&group.to_non_ad())?.subject.clone()
    }

    /// The message with this id, if it is among the recently sent ones.
    pub fn sent_message(&mut self, id: &str) -> Option<wa::Message> {
        self.sent.get(&id.to_owned()).map(|s| s.message.clone())
    }
}
