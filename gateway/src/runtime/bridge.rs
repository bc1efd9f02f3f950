//! Engine events → the gateway's memory, the database and the webhook outbox.
//!
//! One task reads the engine's broadcast. Each event that changes stored state or is reported
//! to webhooks is written in ONE transaction together with its outbox rows (ARCHITECTURE
//! principle 4), so a crash keeps both or neither.

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::broadcast;
use zapin_compat_evolution::content::source_of;
use zapin_compat_evolution::envelope::WebhookEnvelope;
use zapin_compat_evolution::envelope::{envelope_apikey, format_date_time};
use zapin_compat_evolution::events::EventName;
use zapin_compat_evolution::payload::{
    ChatUpsert, ConnectionUpdate, ContactUpsert, MessagesUpdate, PresenceEntry, PresenceUpdate,
    QrcodeUpdated, is_terminal_close,
};
use zapin_compat_evolution::response::{
    MessageKey, MessageRecord, MessageStatus as EvoStatus, QrImage, disconnection_object,
};
use zapin_engine::crashpoint;
use zapin_engine::messaging::ReceivedMessage;
use zapin_engine::messaging::StatusUpdate;
use zapin_engine::{ConnectionState, Event, EventKind, InstanceId, LogoutReason};

use super::{EngineRuntime, LiveChange, LiveUpdate, qr, user_jid};
use crate::Config;
use crate::db::{Db, DbError, Disconnection, Instance, Message, StatusChange, Tx};
use crate::http::TokenCipher;

/// Engine events stored in one transaction at most (see [`Bridge::run`]).
const STORE_BATCH: usize = 64;

/// Stored messages confirmed to the engine in one go at most (see [`Bridge::run`]).
const CONFIRM_BATCH: usize = 256;

/// Messages stored here and not yet confirmed to the engine, by instance.
#[derive(Default)]
struct Confirms {
    by_instance: Vec<(InstanceId, Vec<ReceivedMessage>)>,
    len: usize,
}

impl Confirms {
    fn push(&mut self, instance: InstanceId, message: ReceivedMessage) {
        self.len += 1;
        match self.by_instance.iter_mut().find(|(i, _)| *i == instance) {
            Some((_, list)) => list.push(message),
            None => self.by_instance.push((instance, vec![message])),
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    fn take(&mut self) -> Vec<(InstanceId, Vec<ReceivedMessage>)> {
        self.len = 0;
        std::mem::take(&mut self.by_instance)
    }
}

/// What the bridge needs; built by [`crate::runtime::start`].
#[derive(Debug, Clone)]
pub struct Bridge {
    pub runtime: Arc<EngineRuntime>,
    pub db: Db,
    pub config: Arc<Config>,
    pub tokens: TokenCipher,
}

/// Message types without text that are not a person's message: never handed to the chatbots.
const NOT_FOR_BOTS: [&str; 8] = [
    "protocolMessage",
    "reactionMessage",
    "senderKeyDistributionMessage",
    "pollUpdateMessage",
    "editedMessage",
    "keepInChatMessage",
    "messageContextInfo",
    "unknown",
];

/// What [`Bridge::store`] leaves to do after the commit.
struct Stored {
    /// A message to confirm to the engine.
    message: Option<Box<ReceivedMessage>>,
    /// A change the dashboard's live view shows.
    live: Option<LiveUpdate>,
    /// A stored message for the chatbots.
    bot: Option<zapin_bots::Inbound>,
}

/// Moves the events that are already waiting into `batch`, up to [`STORE_BATCH`]. Answers the
/// number of events lost if the receiver lagged.
fn drain_ready(events: &mut broadcast::Receiver<Event>, batch: &mut Vec<Event>) -> Option<u64> {
    while batch.len() < STORE_BATCH {
        match events.try_recv() {
            Ok(event) => batch.push(event),
            Err(broadcast::error::TryRecvError::Lagged(n)) => return Some(n),
            Err(_) => break,
        }
    }
    None
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn evo_status(s: &str) -> Option<EvoStatus> {
    Some(match s {
        "ERROR" => EvoStatus::Error,
        "PENDING" => EvoStatus::Pending,
        "SERVER_ACK" => EvoStatus::ServerAck,
        "DELIVERY_ACK" => EvoStatus::DeliveryAck,
        "READ" => EvoStatus::Read,
        "PLAYED" => EvoStatus::Played,
        "DELETED" => EvoStatus::Deleted,
        _ => return None,
    })
}

/// Feeds the metrics that engine events carry: connects and disconnects, received messages,
/// server acks of own sends.
fn count(event: &Event) {
    use zapin_engine::messaging::MessageStatus;
    let m = crate::metrics::metrics();
    match &event.kind {
        EventKind::Connection { state, status, .. } => match state {
            ConnectionState::Open => m.connected(),
            ConnectionState::Close => m.disconnected(*status),
            _ => {}
        },
        EventKind::MessageUpsert(msg) if !msg.key.from_me => m.message_in(),
        // The first ack of any kind ends the wait (a delivery ack may overtake the server's).
        EventKind::MessageUpdate(u)
            if u.key.from_me
                && !matches!(u.status, MessageStatus::Pending | MessageStatus::Error) =>
        {
            m.server_ack(event.instance.as_str(), &u.key.id);
        }
        _ => {}
    }
}

/// The record of a stored message, as sendText answers and `messages.upsert` reports it.
pub fn record(m: &Message) -> MessageRecord {
    let push_name = match (&m.push_name, m.from_me) {
        (Some(n), _) => n.clone(),
        (None, true) => zapin_compat_evolution::response::OWN_PUSH_NAME.to_owned(),
        (None, false) => String::new(),
    };
    MessageRecord {
        key: MessageKey {
            remote_jid: m.remote_jid.clone(),
            from_me: m.from_me,
            id: m.key_id.clone(),
            participant: m.participant.clone(),
            remote_jid_alt: None,
            participant_alt: None,
            addressing_mode: None,
        },
        push_name,
        status: m.status.as_deref().and_then(evo_status),
        message: m.message.clone(),
        context_info: (!m.context_info.is_null()).then(|| m.context_info.clone()),
        message_type: m.message_type.clone(),
        message_timestamp: m.timestamp,
        instance_id: m.instance_id.clone(),
        source: m.source.clone(),
    }
}

/// The push name of a message from another device of the instance's own account (`notify` on
/// what the phone sends), if it carries one. `-` means "none" (whatsmeow ignores it too).
fn own_push_name(m: &ReceivedMessage) -> Option<&str> {
    m.push_name
        .as_deref()
        .filter(|name| m.key.from_me && !name.trim().is_empty() && *name != "-")
}

/// Stores the disconnect that closed `instance` (fetchInstances' `disconnection*`), with the
/// `lastDisconnect` text Evolution stores.
async fn record_disconnection(
    tx: &mut Tx,
    instance: &Instance,
    code: u16,
    message: &str,
) -> Result<(), DbError> {
    let at = now_ms();
    let object = disconnection_object(code, message, &format_date_time(at, 0));
    tx.record_disconnection(
        &instance.id,
        &Disconnection {
            reason_code: i64::from(code),
            object,
            at,
        },
    )
    .await
}

impl Bridge {
    /// Runs until the engine's event stream closes or `stopped` turns true; on stop, the events
    /// already emitted are still stored (the sessions are shut down before the bridge).
    ///
    /// Messages first: those a crash left in the engine's inbox (decrypted and acked, not yet
    /// stored here) are stored before any new event, so each chat keeps its order. Each stored
    /// message is then confirmed to the engine, in batches: a crash before a confirmation only
    /// makes the message come back once more at the next start, where its id finds it stored.
    pub async fn run(
        self,
        mut events: broadcast::Receiver<Event>,
        mut stopped: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut confirms = Confirms::default();
        self.replay_pending(&mut confirms).await;
        loop {
            let received = tokio::select! {
                biased;
                received = events.recv() => received,
                _ = stopped.wait_for(|s| *s) => break,
            };
            let (open, lagged) = match received {
                Ok(event) => {
                    // Group commit: the events that are already waiting share one transaction.
                    let mut batch = vec![event];
                    let lagged = drain_ready(&mut events, &mut batch);
                    self.store_batch(batch, &mut confirms).await;
                    (true, lagged)
                }
                Err(broadcast::error::RecvError::Lagged(n)) => (true, Some(n)),
                Err(broadcast::error::RecvError::Closed) => (false, None),
            };
            if let Some(n) = lagged {
                // The messages among the lost events are still in the engine's inbox.
                tracing::warn!(
                    lost = n,
                    "event bridge lagged behind the engine; replaying unconfirmed messages"
                );
                self.replay_pending(&mut confirms).await;
            }
            // Group commit: confirm once the burst is stored, or every CONFIRM_BATCH messages.
            if !open || events.is_empty() || confirms.len() >= CONFIRM_BATCH {
                self.confirm(&mut confirms).await;
            }
            if !open {
                return;
            }
        }
        // Drain what the sessions emitted before they stopped.
        loop {
            let mut batch = Vec::new();
            let lagged = drain_ready(&mut events, &mut batch);
            if batch.is_empty() && lagged.is_none() {
                break;
            }
            self.store_batch(batch, &mut confirms).await;
            if let Some(n) = lagged {
                tracing::warn!(lost = n, "event bridge lagged behind the engine");
                self.replay_pending(&mut confirms).await;
            }
        }
        self.confirm(&mut confirms).await;
    }

    /// Stores every message still in the engine's inbox (see [`Bridge::run`]).
    async fn replay_pending(&self, confirms: &mut Confirms) {
        let manager = self.runtime.manager();
        let instances = match manager.instances_with_pending().await {
            Ok(ids) => ids,
            Err(err) => {
                tracing::error!("listing unconfirmed messages: {err}");
                return;
            }
        };
        for instance in instances {
            let messages = match manager.pending_received(&instance).await {
                Ok(m) => m,
                Err(err) => {
                    tracing::error!(%instance, "reading unconfirmed messages: {err}");
                    continue;
                }
            };
            tracing::info!(%instance, count = messages.len(), "storing unconfirmed messages from the engine inbox");
            let mut events = messages.into_iter().map(|message| Event {
                instance: instance.clone(),
                kind: EventKind::MessageUpsert(Box::new(message)),
            });
            loop {
                let batch: Vec<Event> = events.by_ref().take(STORE_BATCH).collect();
                if batch.is_empty() {
                    break;
                }
                self.store_batch(batch, confirms).await;
            }
        }
        self.confirm(confirms).await;
    }

    /// Stores `events`, in order, in one transaction (one fsync), each under its own savepoint
    /// so that one that fails is skipped alone. The messages among them are confirmed to the
    /// engine only after the commit; one that failed stays in the engine's inbox and comes back
    /// at the next start.
    async fn store_batch(&self, events: Vec<Event>, confirms: &mut Confirms) {
        let mut tx = match self.db.begin().await {
            Ok(tx) => tx,
            Err(err) => {
                tracing::error!(count = events.len(), "storing engine events: {err}");
                for event in &events {
                    self.remember(event);
                }
                return;
            }
        };
        let mut stored = Vec::new();
        let mut live = Vec::new();
        let mut for_bots = Vec::new();
        for event in events {
            let instance = event.instance.clone();
            self.remember(&event);
            if let Err(err) = tx.savepoint().await {
                tracing::error!("storing engine events: {err}");
                return;
            }
            match self.store(&mut tx, event).await {
                Ok(done) => {
                    if let Err(err) = tx.release_savepoint().await {
                        tracing::error!("storing engine events: {err}");
                        return;
                    }
                    if let Some(message) = done.message {
                        stored.push((instance, message));
                    }
                    live.extend(done.live);
                    for_bots.extend(done.bot);
                }
                Err(err) => {
                    tracing::error!("storing an engine event: {err}");
                    if let Err(err) = tx.rollback_to_savepoint().await {
                        tracing::error!("storing engine events: {err}");
                        return;
                    }
                }
            }
        }
        if let Err(err) = tx.commit().await {
            tracing::error!(count = stored.len(), "storing engine events: {err}");
            return;
        }
        for update in live {
            self.runtime.publish(update);
        }
        if let Some(bots) = self.runtime.bots() {
            for inbound in for_bots {
                bots.dispatch(inbound);
            }
        }
        for (instance, message) in stored {
            crashpoint::hit("bridge.stored");
            confirms.push(instance, *message);
        }
    }

    /// Tells the engine which messages are stored; a failure leaves them to be replayed.
    async fn confirm(&self, confirms: &mut Confirms) {
        for (instance, messages) in confirms.take() {
            let refs: Vec<&ReceivedMessage> = messages.iter().collect();
            if let Err(err) = self
                .runtime
                .manager()
                .confirm_received(&instance, &refs)
                .await
            {
                tracing::warn!(%instance, "confirming stored messages: {err}");
            }
            crashpoint::hit("bridge.confirmed");
        }
    }

    /// Where the envelope says it goes: the instance webhook URL, else the global webhook's
    /// (contract §5.2).
    async fn destination(
        &self,
        tx: &mut Tx,
        instance: &Instance,
        event: EventName,
    ) -> Result<String, DbError> {
        Ok(match tx.get_webhook(&instance.id).await? {
            Some(w) => w.url,
            None => self
                .config
                .webhook_global_url
                .as_deref()
                .map(|url| format!("{url}/{}", event.by_events_suffix()))
                .unwrap_or_default(),
        })
    }

    fn envelope<'a, T: Serialize>(
        &'a self,
        instance: &'a Instance,
        event: EventName,
        data: T,
        destination: &'a str,
        token: &'a str,
    ) -> WebhookEnvelope<'a, T> {
        WebhookEnvelope {
            event,
            instance: &instance.name,
            data,
            destination,
            date_time: format_date_time(now_ms(), 0),
            sender: instance.owner_jid.as_deref(),
            server_url: self.config.server_url.as_deref().unwrap_or(""),
            apikey: envelope_apikey(self.config.expose_api_key_in_events, token),
        }
    }

    /// Enqueues `event` for `instance` in `tx`.
    pub async fn enqueue<T: Serialize>(
        &self,
        tx: &mut Tx,
        instance: &Instance,
        event: EventName,
        data: T,
    ) -> Result<(), DbError> {
        let destination = self.destination(tx, instance, event).await?;
        let token = self.tokens.open(&instance.token).unwrap_or_default();
        let envelope = self.envelope(instance, event, data, &destination, &token);
        tx.enqueue_event(&instance.id, event.config_key(), &envelope)
            .await?;
        Ok(())
    }

    /// Stores a message and, when it is new, enqueues `MESSAGES_UPSERT` (same transaction).
    pub async fn store_message(
        &self,
        tx: &mut Tx,
        instance: &Instance,
        stored: &Message,
    ) -> Result<bool, DbError> {
        let destination = self
            .destination(tx, instance, EventName::MessagesUpsert)
            .await?;
        let token = self.tokens.open(&instance.token).unwrap_or_default();
        tx.upsert_message(stored, |m| {
            self.envelope(
                instance,
                EventName::MessagesUpsert,
                record(m),
                &destination,
                &token,
            )
        })
        .await
    }

    /// Stores `event`; for a message, returns it once it is stored (or deliberately not: a
    /// deleted instance, `groupsIgnore`), for the engine to forget.
    /// The gateway's memory part of an event, before it is stored: connect may be waiting on
    /// the QR.
    fn remember(&self, event: &Event) {
        let id = event.instance.as_str();
        match &event.kind {
            EventKind::QrCode {
                code,
                index,
                expires_at,
            } => {
                let base64 = qr::qr_data_url(code).unwrap_or_default();
                self.runtime.update_live(id, |l| {
                    l.count = *index;
                    l.qr_expires_at = Some(*expires_at);
                    l.qr = Some(QrImage {
                        pairing_code: l.pairing_code.clone(),
                        code: code.clone(),
                        base64,
                    });
                });
                self.runtime.notify_qr();
            }
            EventKind::QrLimitReached => {
                self.runtime.update_live(id, |l| {
                    l.qr = None;
                    l.count = 0;
                });
                self.runtime.notify_qr();
            }
            EventKind::PairingCode { code } => {
                self.runtime
                    .update_live(id, |l| l.pairing_code = Some(code.clone()));
                self.runtime.notify_qr();
            }
            EventKind::Paired { jid, push_name, .. } => {
                self.runtime.update_live(id, |l| {
                    l.wuid = Some(user_jid(jid));
                    l.profile_name = push_name.clone();
                    l.qr = None;
                });
            }
            EventKind::Connection { state, .. } => {
                if *state == ConnectionState::Open {
                    self.runtime.update_live(id, |l| l.qr = None);
                }
                self.runtime.notify_qr();
            }
            EventKind::LoggedOut { .. } => {
                self.runtime
                    .update_live(id, |l| *l = super::Live::default());
            }
            _ => {}
        }
    }

    /// Writes what `event` changes, and its outbox rows, into `tx`. Answers what to do once
    /// `tx` is committed: the message to confirm to the engine, the live update to publish.
    async fn store(&self, tx: &mut Tx, event: Event) -> Result<Stored, DbError> {
        crashpoint::hit("bridge.received");
        let id = event.instance.as_str().to_owned();
        let message = match &event.kind {
            EventKind::MessageUpsert(m) => Some(m.clone()),
            _ => None,
        };
        let live_change = match &event.kind {
            EventKind::QrCode {
                code, expires_at, ..
            } => Some(LiveChange::Qr {
                code: code.clone(),
                expires_at: *expires_at,
            }),
            EventKind::QrLimitReached => Some(LiveChange::QrLimit),
            EventKind::PairingCode { code } => Some(LiveChange::PairingCode(code.clone())),
            EventKind::Paired { .. }
            | EventKind::Connection { .. }
            | EventKind::LoggedOut { .. } => Some(LiveChange::State),
            _ => None,
        };
        // No wait for a racing send: its row is committed before its stanza is written
        // (`super::sends`), so an ack always finds it.
        count(&event);
        let Some(mut instance) = tx.get_instance(&id).await? else {
            // Deleted meanwhile (or a device the gateway does not know): nothing to report.
            return Ok(Stored {
                message,
                live: None,
                bot: None,
            });
        };
        // groupsIgnore (§7): group messages, their status updates and group presence are
        // neither stored nor reported. Settings are read only for group events.
        let group_event = match &event.kind {
            EventKind::MessageUpsert(m) => m.key.remote_jid.is_group(),
            EventKind::MessageUpdate(u) => u.key.remote_jid.is_group(),
            EventKind::Presence(p) => p.chat.ends_with("@g.us"),
            EventKind::GroupUpdate(_) => true,
            _ => false,
        };
        // The phone's push name rides on what the account's other devices send (Baileys learns
        // its own name the same way); it is the instance's `profileName`.
        if let EventKind::MessageUpsert(m) = &event.kind
            && let Some(name) = own_push_name(m)
            && instance.profile_name.as_deref() != Some(name)
        {
            instance.profile_name = Some(name.to_owned());
            let status = instance.connection_status.clone();
            self.set_status(tx, &mut instance, &status).await?;
        }
        if group_event
            && tx
                .get_settings(&instance.id)
                .await?
                .is_some_and(|s| s.groups_ignore)
        {
            // Only what the event did to the instance row above (a learned push name) is kept.
            return Ok(Stored {
                message,
                live: None,
                bot: None,
            });
        }
        let mut bot = None;
        match event.kind {
            EventKind::QrCode { code, .. } => {
                let live = self.runtime.live(&id);
                let base64 = live.qr.map(|q| q.base64).unwrap_or_default();
                self.set_status(tx, &mut instance, "connecting").await?;
                let data = QrcodeUpdated::qr(&instance.name, live.pairing_code, code, base64);
                self.enqueue(tx, &instance, EventName::QrcodeUpdated, data)
                    .await?;
            }
            EventKind::QrLimitReached => {
                self.enqueue(
                    tx,
                    &instance,
                    EventName::QrcodeUpdated,
                    QrcodeUpdated::limit_reached(),
                )
                .await?;
            }
            EventKind::Paired { jid, push_name, .. } => {
                instance.owner_jid = Some(user_jid(&jid));
                if push_name.is_some() {
                    instance.profile_name = push_name;
                }
                let status = instance.connection_status.clone();
                self.set_status(tx, &mut instance, &status).await?;
            }
            EventKind::Connection {
                state,
                status,
                reason,
            } => {
                self.connection(tx, &mut instance, state, status).await?;
                // Logouts were recorded by their `LoggedOut`, which comes first; the other
                // closes that end the session (402) are recorded here.
                if state == ConnectionState::Close
                    && is_terminal_close(status)
                    && !matches!(status, 401 | 403 | 406)
                {
                    let message = reason.as_deref().unwrap_or("Connection Failure");
                    record_disconnection(tx, &instance, status, message).await?;
                }
            }
            EventKind::LoggedOut { reason } => {
                self.set_status(tx, &mut instance, "close").await?;
                let (code, message) = match reason {
                    LogoutReason::UserInitiated => (401, "Intentional Logout"),
                    LogoutReason::Revoked { code } => (code, "Connection Failure"),
                };
                record_disconnection(tx, &instance, code, message).await?;
            }
            EventKind::MessageUpsert(m) => {
                // A redelivered message (a replay after a crash) is not reported twice, and
                // not answered twice either.
                if let Some(stored) = self.upsert(tx, &instance, &m).await? {
                    bot = self.bot_inbound(&instance, &stored);
                }
            }
            EventKind::MessageUpdate(u) => self.update(tx, &instance, &u).await?,
            EventKind::Presence(p) => {
                let entry = PresenceEntry {
                    last_known_presence: p.state.as_str().to_owned(),
                    last_seen: p.last_seen.and_then(|s| i64::try_from(s).ok()),
                };
                let data = PresenceUpdate {
                    id: p.chat,
                    presences: std::iter::once((p.jid, entry)).collect(),
                };
                self.enqueue(tx, &instance, EventName::PresenceUpdate, data)
                    .await?;
            }
            EventKind::Contacts(contacts) => self.contacts(tx, &instance, contacts).await?,
            EventKind::Chats(chats) => self.chats(tx, &instance, chats).await?,
            EventKind::GroupUpdate(update) => {
                if let Some((event, data)) = super::groups::event_for(&update) {
                    self.enqueue(tx, &instance, event, data).await?;
                }
            }
            _ => {}
        }
        let live = live_change.map(|what| LiveUpdate {
            instance_id: instance.id.clone(),
            instance_name: instance.name.clone(),
            status: instance.connection_status.clone(),
            owner_jid: instance.owner_jid.clone(),
            profile_name: instance.profile_name.clone(),
            what,
        });
        Ok(Stored { message, live, bot })
    }

    /// What the chatbots get of a stored message (Evolution dispatches every `messages.upsert`,
    /// the account's own messages included): nothing for status posts, for the chatbots' own
    /// sends, or for messages that are not something a person wrote (reactions, protocol
    /// messages, …), which Evolution's bots would answer with nothing useful.
    fn bot_inbound(&self, instance: &Instance, m: &Message) -> Option<zapin_bots::Inbound> {
        self.runtime.bots()?;
        if m.remote_jid == "status@broadcast" || self.runtime.is_bot_send(&m.key_id) {
            return None;
        }
        let content = zapin_compat_evolution::content::conversation_text(&m.message, &m.key_id);
        if content.is_none() && NOT_FOR_BOTS.contains(&m.message_type.as_str()) {
            return None;
        }
        Some(zapin_bots::Inbound {
            instance: instance.id.clone(),
            remote_jid: m.remote_jid.clone(),
            push_name: m.push_name.clone(),
            from_me: m.from_me,
            key_id: m.key_id.clone(),
            content,
            media_url: None,
        })
    }

    async fn set_status(
        &self,
        tx: &mut Tx,
        instance: &mut Instance,
        status: &str,
    ) -> Result<(), DbError> {
        instance.connection_status = status.to_owned();
        tx.update_instance_connection(
            &instance.id,
            status,
            instance.owner_jid.as_deref(),
            instance.profile_name.as_deref(),
        )
        .await
    }

    async fn connection(
        &self,
        tx: &mut Tx,
        instance: &mut Instance,
        state: ConnectionState,
        status: u16,
    ) -> Result<(), DbError> {
        let name = instance.name.clone();
        match state {
            ConnectionState::Connecting => {
                self.enqueue(
                    tx,
                    instance,
                    EventName::ConnectionUpdate,
                    ConnectionUpdate::connecting(&name),
                )
                .await
            }
            ConnectionState::Open => {
                if let Some(jid) = self
                    .runtime
                    .session(&instance.id)
                    .and_then(|h| h.status().jid)
                {
                    instance.owner_jid = Some(user_jid(&jid));
                }
                let live = self.runtime.live(&instance.id);
                if live.profile_name.is_some() {
                    instance.profile_name = live.profile_name;
                }
                self.set_status(tx, instance, "open").await?;
                let data = ConnectionUpdate::open(
                    &name,
                    instance.owner_jid.clone().unwrap_or_default(),
                    instance.profile_name.clone(),
                    None,
                );
                self.enqueue(tx, instance, EventName::ConnectionUpdate, data)
                    .await
            }
            ConnectionState::Refused => {
                self.set_status(tx, instance, "close").await?;
                let data = ConnectionUpdate::refused(
                    &name,
                    instance.owner_jid.clone(),
                    instance.profile_name.clone(),
                    None,
                );
                self.enqueue(tx, instance, EventName::ConnectionUpdate, data)
                    .await
            }
            ConnectionState::Close => {
                // Other closes reconnect on their own and are not reported (§4.5).
                if is_terminal_close(status) {
                    self.set_status(tx, instance, "close").await?;
                    self.enqueue(
                        tx,
                        instance,
                        EventName::ConnectionUpdate,
                        ConnectionUpdate::close(&name, status),
                    )
                    .await?;
                }
                Ok(())
            }
        }
    }

    /// Stores an inbound message and reports it; the message when it is new (not a replay after
    /// a crash, nor an edit or revoke, which change an earlier one), for the chatbots.
    async fn upsert(
        &self,
        tx: &mut Tx,
        instance: &Instance,
        m: &ReceivedMessage,
    ) -> Result<Option<Message>, DbError> {
        // Edits and revokes change an earlier message: Evolution reports them as
        // `messages.edited` and `messages.delete`, never as a new message.
        if let Some(p) = super::content::protocol_of(&m.message) {
            match p.r#type {
                Some(zapin_engine::messaging::content::PROTOCOL_REVOKE) => {
                    let key = p.key.as_ref();
                    let mut data = serde_json::json!({
                        "remoteJid": m.key.remote_jid.to_string(),
                        "fromMe": m.key.from_me,
                        "id": key.and_then(|k| k.id.clone()).unwrap_or_default(),
                    });
                    if let Some(part) = &m.key.participant {
                        data["participant"] = serde_json::Value::from(part.to_string());
                    }
                    self.enqueue(tx, instance, EventName::MessagesDelete, data)
                        .await?;
                    return Ok(None);
                }
                Some(zapin_engine::messaging::content::PROTOCOL_MESSAGE_EDIT) => {
                    let data = super::content::edit_json(p);
                    self.enqueue(tx, instance, EventName::MessagesEdited, data)
                        .await?;
                    return Ok(None);
                }
                _ => {}
            }
        }
        let content = super::content::message_content(&m.message);
        let stored = Message {
            instance_id: instance.id.clone(),
            key_id: m.key.id.clone(),
            remote_jid: m.key.remote_jid.to_string(),
            from_me: m.key.from_me,
            participant: m.key.participant.as_ref().map(ToString::to_string),
            push_name: m.push_name.clone(),
            message: content.message,
            message_type: content.message_type,
            timestamp: i64::try_from(m.timestamp).unwrap_or(0),
            // Inbound messages without a status are reported as delivered (§3.3).
            status: Some("DELIVERY_ACK".to_owned()),
            source: source_of(&m.key.id).to_owned(),
            context_info: content.context_info,
        };
        let new = self.store_message(tx, instance, &stored).await?;
        Ok(new.then_some(stored))
    }

    async fn update(
        &self,
        tx: &mut Tx,
        instance: &Instance,
        u: &StatusUpdate,
    ) -> Result<(), DbError> {
        let status = u.status.as_evolution();
        if u.key.from_me {
            // The server has it (or refused it): nothing left to resend. A send that was answered
            // but not announced yet (`send.message` commits after the answer) is announced here,
            // ahead of its status: once settled, recovery would never announce it if the process
            // stopped in between.
            if tx.mark_send_answered(&instance.id, &u.key.id).await?
                && let Some(sent) = tx.get_message(&instance.id, &u.key.id).await?
            {
                self.enqueue(tx, instance, EventName::SendMessage, record(&sent))
                    .await?;
            }
            tx.settle_send(&instance.id, &u.key.id).await?;
        }
        let found = match tx
            .set_message_status(&instance.id, &u.key.id, status)
            .await?
        {
            // Older than what is stored (a resend's ack after the first copy's receipt): the
            // reported state never goes back.
            StatusChange::Stale => return Ok(()),
            StatusChange::Missing => false,
            StatusChange::Recorded => true,
        };
        let data = MessagesUpdate {
            key_id: u.key.id.clone(),
            remote_jid: u.key.remote_jid.to_string(),
            from_me: u.key.from_me,
            participant: u.key.participant.as_ref().map(ToString::to_string),
            status: evo_status(status).unwrap_or(EvoStatus::ServerAck),
            poll_updates: None,
            instance_id: instance.id.clone(),
            message_id: found.then(|| u.key.id.clone()),
        };
        self.enqueue(tx, instance, EventName::MessagesUpdate, data)
            .await
    }

    /// Stores push names (whatsappNumbers' `name`) and reports each as `contacts.upsert`, one
    /// object per contact as Evolution's message path does (§5.4).
    ///
    /// Deviation: Evolution reports a contact it already has as `contacts.update`; the engine
    /// only reports new or changed names, and those are all reported as `contacts.upsert`.
    async fn contacts(
        &self,
        tx: &mut Tx,
        instance: &Instance,
        contacts: Vec<zapin_engine::Contact>,
    ) -> Result<(), DbError> {
        for c in contacts {
            tx.upsert_contact(&crate::db::Contact {
                instance_id: instance.id.clone(),
                remote_jid: c.jid.clone(),
                push_name: c.name.clone(),
                profile_pic_url: None,
            })
            .await?;
            let data = ContactUpsert {
                remote_jid: c.jid,
                push_name: c.name,
                profile_pic_url: None,
                instance_id: instance.id.clone(),
            };
            self.enqueue(tx, instance, EventName::ContactsUpsert, data)
                .await?;
        }
        Ok(())
    }

    /// Stores chats and reports them as one `chats.upsert` array (§5.4). The engine reports a
    /// chat once per session run, so a restart may report a stored chat again (an upsert).
    async fn chats(
        &self,
        tx: &mut Tx,
        instance: &Instance,
        chats: Vec<zapin_engine::Chat>,
    ) -> Result<(), DbError> {
        let mut data = Vec::with_capacity(chats.len());
        for c in chats {
            let unread = c.unread.unwrap_or(0);
            tx.upsert_chat(&crate::db::Chat {
                instance_id: instance.id.clone(),
                remote_jid: c.jid.clone(),
                name: c.name.clone(),
                unread_messages: i64::from(unread),
            })
            .await?;
            data.push(ChatUpsert {
                remote_jid: c.jid,
                instance_id: instance.id.clone(),
                name: c.name,
                unread_messages: unread,
            });
        }
        if data.is_empty() {
            return Ok(());
        }
        self.enqueue(tx, instance, EventName::ChatsUpsert, data)
            .await
    }
}
