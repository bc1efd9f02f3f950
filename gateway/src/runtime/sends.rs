//! Outgoing messages: reserved before the wire, settled by the server's ack, recovered after a
//! crash.
//!
//! # The rule (README, "Sending and crashes")
//!
//! 1. **Reserve.** sendText picks the message id and commits the message row (status `PENDING`)
//!    and a `pending_sends` row holding the request, in one transaction, before the engine
//!    encrypts anything. So nothing goes on the wire that the database does not know about.
//! 2. **Send.** The engine encrypts (ratchet durable first, in its own store) and writes the
//!    stanza under that id. Then `send.message` is enqueued and the API answers 201 with the
//!    `PENDING` record, as Evolution does.
//! 3. **Settle.** The server's ack (or any later status) deletes the `pending_sends` row in the
//!    bridge's transaction that stores the status.
//!
//! A send that fails *before* the wire (no such number, not connected, a server error on a key
//! fetch) is withdrawn: both rows are deleted and the API answers the error, with no event, as
//! Evolution does. A send whose write broke off half-way
//! ([`zapin_engine::EngineError::WriteInterrupted`], or the session died during the send) may or
//! may not have reached the server: it is answered (201, `send.message`) and stays pending.
//!
//! **Recovery.** A pending send without a server ack — left by a crash at any step, or by a
//! broken connection — is sent again **under the same id** when its session (re)opens, if it was
//! reserved less than `ZAPIN_SEND_RESEND_WINDOW_SECS` ago (default 300). WhatsApp clients keep one
//! message per id, so a copy that did reach the recipient is not shown twice; the resend gets its
//! own server ack, which settles it. A resent message the API never answered for (the crash hit
//! before the 201) is announced with `send.message` once it is on the wire. Older sends are
//! marked failed: status `ERROR` and a `messages.update` with `ERROR`; that happens at start-up
//! and by a periodic sweep.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use prost::Message as _;
use serde_json::Value;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinSet;
use zapin_compat_evolution::events::EventName;
use zapin_compat_evolution::payload::MessagesUpdate;
use zapin_compat_evolution::request::{SendMeta, validate_send_text};
use zapin_compat_evolution::response::{MessageRecord, MessageStatus as EvoStatus};
use zapin_engine::messaging::ids::new_message_id;
use zapin_engine::{
    ConnectionState, EngineError, Event, EventKind, SendOptions, SessionHandle, WireGate,
};

use zapin_protocol::proto::wa;

use super::EngineRuntime;
use super::bridge::{Bridge, now_ms, record};
use crate::db::{DbError, Instance, Message, PendingSend, StatusChange, Tx};

/// How often pending sends are checked against the resend window while running.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// While running, a pending send is only declared failed this long after its reservation even
/// with a shorter window, so that a send in flight is not failed moments before its ack.
const ACK_GRACE: Duration = Duration::from_secs(60);

/// Why a send was not answered with a record.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Db(#[from] DbError),
    /// A stored request that no longer validates (only possible for a resend).
    #[error("stored request is invalid")]
    BadRequest,
}

/// What a send carries before the engine adds the quote and mentions.
#[derive(Debug, Clone)]
pub enum OutBody {
    Text(String),
    /// Prepared content (media already uploaded, location, contact, …).
    Content(Box<wa::Message>),
}

/// The key under which a stored request holds prepared content (base64 of its protobuf), so
/// that a resend after a crash sends the very same message (same media keys, no new upload).
pub const STORED_CONTENT: &str = "zapinContent";

/// What to send: computed from a request body, the first time and again for a resend.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The chat JID.
    pub jid: String,
    pub body: OutBody,
    /// Quote and mentions (the id is set per attempt).
    pub options: SendOptions,
    /// The record's `contextInfo` (null without a quote or mentions).
    pub context_info: Value,
}

impl Outgoing {
    /// The request `body` (already validated) for `instance`: a sendText body, or a stored
    /// request of prepared content ([`Outgoing::stored_request`]).
    pub async fn from_request(
        bridge: &Bridge,
        instance: &Instance,
        body: &Value,
    ) -> Result<Self, SendError> {
        if let Some(encoded) = body.get(STORED_CONTENT).and_then(Value::as_str) {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|_| SendError::BadRequest)?;
            let message =
                wa::Message::decode(bytes.as_slice()).map_err(|_| SendError::BadRequest)?;
            let number = body
                .get("number")
                .and_then(Value::as_str)
                .ok_or(SendError::BadRequest)?;
            let meta = SendMeta::from_body(body);
            return Self::content(bridge, instance, number, message, &meta).await;
        }
        let req = validate_send_text(body).map_err(|_| SendError::BadRequest)?;
        let jid = crate::http::session::to_jid(&req.number);
        let own = own_jid(&bridge.runtime, instance);
        let extras =
            crate::http::quote::extras(&bridge.db, &instance.id, own.as_deref(), &jid, &req.meta())
                .await?;
        Ok(Self {
            jid,
            body: OutBody::Text(req.text),
            options: extras.options,
            context_info: extras.context_info,
        })
    }

    /// Prepared content to `number` with the quote and mentions of `meta`.
    pub async fn content(
        bridge: &Bridge,
        instance: &Instance,
        number: &str,
        message: wa::Message,
        meta: &SendMeta,
    ) -> Result<Self, SendError> {
        let jid = crate::http::session::to_jid(number);
        let own = own_jid(&bridge.runtime, instance);
        let extras =
            crate::http::quote::extras(&bridge.db, &instance.id, own.as_deref(), &jid, meta)
                .await?;
        Ok(Self {
            jid,
            body: OutBody::Content(Box::new(message)),
            options: extras.options,
            context_info: extras.context_info,
        })
    }

    /// What `pending_sends` keeps for prepared content: the target and metadata of `request`
    /// and the content itself, not the request's file.
    pub fn stored_request(&self, request: &Value) -> Value {
        let mut stored = serde_json::Map::new();
        for key in [
            "number",
            "quoted",
            "mentioned",
            "mentionsEveryOne",
            "everyOne",
        ] {
            if let Some(v) = request.get(key) {
                stored.insert(key.to_owned(), v.clone());
            }
        }
        // The chat actually sent to (a number's variant that exists, for the file routes).
        stored.insert("number".to_owned(), Value::from(self.jid.clone()));
        if let OutBody::Content(m) = &self.body {
            stored.insert(
                STORED_CONTENT.to_owned(),
                Value::from(base64::engine::general_purpose::STANDARD.encode(m.encode_to_vec())),
            );
        }
        Value::Object(stored)
    }

    fn message_row(&self, instance_id: &str, key_id: &str) -> Message {
        let (message, message_type) = match &self.body {
            OutBody::Text(text) => (
                serde_json::json!({ "conversation": text }),
                "conversation".to_owned(),
            ),
            OutBody::Content(m) => {
                let content = super::content::message_content(m);
                (content.message, content.message_type)
            }
        };
        Message {
            instance_id: instance_id.to_owned(),
            key_id: key_id.to_owned(),
            remote_jid: self.jid.clone(),
            from_me: true,
            participant: None,
            push_name: None,
            message,
            message_type,
            timestamp: now_ms() / 1000,
            status: Some("PENDING".to_owned()),
            source: "web".to_owned(),
            // A quote or mentions make a text an extendedTextMessage, reported (as Evolution
            // rewrites it) as a conversation with that message's contextInfo.
            context_info: self.context_info.clone(),
        }
    }
}

fn own_jid(runtime: &EngineRuntime, instance: &Instance) -> Option<String> {
    runtime
        .live(&instance.id)
        .wuid
        .or_else(|| instance.owner_jid.clone())
}

/// May the stanza have reached the server although the send failed?
fn maybe_on_the_wire(err: &EngineError) -> bool {
    matches!(
        err,
        EngineError::WriteInterrupted | EngineError::SessionGone
    )
}

/// sendText after validation: reserve, send, answer. The answer is the `PENDING` record.
///
/// The reservation commits while the session encrypts (and commits its ratchet state); the
/// stanza waits at a [`WireGate`] until the reservation is durable, so a send costs one fsync's
/// time on its critical path instead of two, and nothing reaches the wire unrecorded. The
/// answer goes out as soon as the stanza is written; recording `send.message` follows it (a crash
/// in between leaves the pending row unannounced, and recovery announces it; a server ack that
/// comes first announces it itself, see the bridge's status updates).
pub async fn send_new(
    bridge: &Bridge,
    instance: Instance,
    session: SessionHandle,
    outgoing: Outgoing,
    request: Value,
) -> Result<MessageRecord, SendError> {
    let own = own_jid(&bridge.runtime, &instance).unwrap_or_default();
    let own_user = own.split(['@', ':']).next().unwrap_or_default();
    let id = new_message_id(own_user).ok_or(EngineError::Random)?;
    let stored = outgoing.message_row(&instance.id, &id);
    // A fresh random id is never claimed already; `None` would mean a collision.
    let claim = bridge
        .runtime
        .claim_send(&instance.id, &id)
        .ok_or(EngineError::Random)?;
    let (answer, answered) = oneshot::channel();
    // From here the send runs to its end even if the client hangs up: the row must not stay
    // reserved for a send that is half done.
    let bridge = bridge.clone();
    tokio::spawn(async move {
        let (opener, gate) = WireGate::new();
        let reserve = async {
            let reserved = reserve(&bridge, &stored, &request).await;
            match reserved {
                Ok(()) => {
                    zapin_engine::crashpoint::hit("send.reserved");
                    opener.open();
                }
                Err(_) => opener.close(),
            }
            reserved
        };
        let (reserved, result) = tokio::join!(
            reserve,
            attempt(&instance, &session, &outgoing, &stored, Some(gate))
        );
        if let Err(err) = reserved {
            // Nothing was recorded, so nothing may have left (the gate stayed closed).
            let _ = answer.send(Err(err.into()));
            return;
        }
        let record = record(&stored);
        match result {
            Err(err) if !maybe_on_the_wire(&err) => {
                // Refused before the wire: as if the request had been refused up front.
                let withdrawn = withdraw(&bridge, &instance, &stored).await;
                let _ = answer.send(Err(withdrawn.err().map_or(err.into(), Into::into)));
            }
            result => {
                let unconfirmed = result.is_err();
                let _ = answer.send(Ok(record.clone()));
                if let Err(err) = announce(&bridge, &instance, &stored, &record, None).await {
                    tracing::error!(
                        instance = %instance.name,
                        id = %stored.key_id,
                        "recording send.message failed ({err}): recovery announces it"
                    );
                }
                drop(claim);
                if unconfirmed {
                    note_unconfirmed(&instance, &stored, result.err());
                    bridge.runtime.request_resend(&instance.id);
                }
            }
        }
    });
    match answered.await {
        Ok(answer) => answer,
        Err(_) => Err(SendError::Engine(EngineError::SessionGone)),
    }
}

/// Commits the message row (`PENDING`) and its pending send.
async fn reserve(bridge: &Bridge, stored: &Message, request: &Value) -> Result<(), DbError> {
    let mut tx = bridge.db.begin().await?;
    tx.reserve_send(stored, request).await?;
    tx.commit().await
}

/// Deletes a reservation whose send was refused before the wire.
async fn withdraw(bridge: &Bridge, instance: &Instance, stored: &Message) -> Result<(), DbError> {
    let mut tx = bridge.db.begin().await?;
    tx.withdraw_send(&instance.id, &stored.key_id).await?;
    tx.commit().await
}

/// One engine attempt at writing `stored` (already reserved, or being reserved behind `gate`).
async fn attempt(
    instance: &Instance,
    session: &SessionHandle,
    outgoing: &Outgoing,
    stored: &Message,
    gate: Option<WireGate>,
) -> Result<(), EngineError> {
    let options = SendOptions {
        id: Some(stored.key_id.clone()),
        gate,
        ..outgoing.options.clone()
    };
    let started = std::time::Instant::now();
    match &outgoing.body {
        OutBody::Text(text) => session.send_text_with(&outgoing.jid, text, options).await?,
        OutBody::Content(m) => {
            session
                .send_message_with(&outgoing.jid, (**m).clone(), options)
                .await?
        }
    };
    crate::metrics::metrics().message_out(&instance.id, &stored.key_id, started);
    Ok(())
}

fn note_unconfirmed(instance: &Instance, stored: &Message, err: Option<EngineError>) {
    let err = err.map(|e| e.to_string()).unwrap_or_default();
    tracing::warn!(
        instance = %instance.name,
        id = %stored.key_id,
        "send not confirmed ({err}): it will be sent again under its id"
    );
}

/// Records that the API answered for `stored` and enqueues `send.message`, once: by the first
/// attempt, or by the resend of one that never got that far. `resend` is the pending row being
/// recovered; the flag read before the attempt decides, since the row itself may already be gone
/// (the server's ack can be stored first).
async fn announce(
    bridge: &Bridge,
    instance: &Instance,
    stored: &Message,
    record: &MessageRecord,
    resend: Option<&PendingSend>,
) -> Result<(), DbError> {
    if resend.is_some_and(|p| p.answered) {
        return Ok(());
    }
    let mut tx = bridge.db.begin().await?;
    // Current row: the owner JID may have been learnt since; gone means deleted meanwhile (its
    // messages went with it).
    let Some(current) = tx.get_instance(&instance.id).await? else {
        return tx.rollback().await;
    };
    // Already announced by its server ack (which may overtake this), or settled: once is enough.
    if !tx.mark_send_answered(&instance.id, &stored.key_id).await? {
        return tx.rollback().await;
    }
    bridge
        .enqueue(&mut tx, &current, EventName::SendMessage, record)
        .await?;
    tx.commit().await
}

/// How a resend ended.
#[derive(Debug)]
enum Delivery {
    /// Written to the server.
    Sent,
    /// The write broke off: the server may have it. Still pending, to be resent.
    Unconfirmed,
}

/// Sends a pending row again under its id, and its bookkeeping.
async fn deliver(
    bridge: &Bridge,
    instance: &Instance,
    session: &SessionHandle,
    outgoing: &Outgoing,
    stored: &Message,
    resend: &PendingSend,
) -> Result<Delivery, SendError> {
    let result = attempt(instance, session, outgoing, stored, None).await;
    let delivery = match result {
        Ok(()) => Delivery::Sent,
        Err(err) if maybe_on_the_wire(&err) => {
            note_unconfirmed(instance, stored, Some(err));
            Delivery::Unconfirmed
        }
        Err(err) => {
            let mut tx = bridge.db.begin().await?;
            if let Some(current) = tx.get_instance(&instance.id).await? {
                fail(bridge, &mut tx, &current, stored).await?;
            }
            tx.commit().await?;
            return Err(err.into());
        }
    };
    announce(bridge, instance, stored, &record(stored), Some(resend)).await?;
    Ok(delivery)
}

/// Marks a pending send failed: status `ERROR`, `messages.update` with `ERROR`, nothing left to
/// recover.
async fn fail(
    bridge: &Bridge,
    tx: &mut Tx,
    instance: &Instance,
    stored: &Message,
) -> Result<(), DbError> {
    tx.settle_send(&instance.id, &stored.key_id).await?;
    let found = match tx
        .set_message_status(&instance.id, &stored.key_id, "ERROR")
        .await?
    {
        // Acknowledged meanwhile: not failed after all.
        StatusChange::Stale => return Ok(()),
        StatusChange::Missing => false,
        StatusChange::Recorded => true,
    };
    tracing::warn!(instance = %instance.name, id = %stored.key_id, "send marked failed");
    let data = MessagesUpdate {
        key_id: stored.key_id.clone(),
        remote_jid: stored.remote_jid.clone(),
        from_me: true,
        participant: None,
        status: EvoStatus::Error,
        poll_updates: None,
        instance_id: instance.id.clone(),
        message_id: found.then(|| stored.key_id.clone()),
    };
    bridge
        .enqueue(tx, instance, EventName::MessagesUpdate, data)
        .await
}

fn expired(pending: &PendingSend, window: Duration, now_ms: i64) -> bool {
    let age = u64::try_from(now_ms.saturating_sub(pending.reserved_at)).unwrap_or(0);
    Duration::from_millis(age) >= window
}

/// Fails every pending send (of every instance) older than `window` that nobody is sending now.
async fn expire(bridge: &Bridge, window: Duration) -> Result<(), SendError> {
    let now = now_ms();
    for pending in bridge.db.pending_sends(None).await? {
        if !expired(&pending, window, now) {
            continue;
        }
        let Some(_claim) = bridge
            .runtime
            .claim_send(&pending.instance_id, &pending.key_id)
        else {
            continue;
        };
        let mut tx = bridge.db.begin().await?;
        let instance = tx.get_instance(&pending.instance_id).await?;
        let stored = tx
            .get_message(&pending.instance_id, &pending.key_id)
            .await?;
        match (instance, stored) {
            (Some(instance), Some(stored)) => fail(bridge, &mut tx, &instance, &stored).await?,
            _ => {
                tx.settle_send(&pending.instance_id, &pending.key_id)
                    .await?;
            }
        }
        tx.commit().await?;
    }
    Ok(())
}

/// Sends again, under their ids, the pending sends of an instance whose session is open; fails
/// the ones past the window.
async fn resend_pending(bridge: &Bridge, instance_id: &str) -> Result<(), SendError> {
    let window = bridge.config.send_resend_window;
    for pending in bridge.db.pending_sends(Some(instance_id)).await? {
        let Some(session) = bridge
            .runtime
            .session(instance_id)
            .filter(|s| s.state() == ConnectionState::Open)
        else {
            // Closed again: the next open continues.
            return Ok(());
        };
        let Some(claim) = bridge.runtime.claim_send(instance_id, &pending.key_id) else {
            continue;
        };
        let Some(instance) = bridge.db.instance_by_id(instance_id).await? else {
            return Ok(());
        };
        let Some(stored) = bridge
            .db
            .message_by_key(instance_id, &pending.key_id)
            .await?
        else {
            let mut tx = bridge.db.begin().await?;
            tx.settle_send(instance_id, &pending.key_id).await?;
            tx.commit().await?;
            continue;
        };
        if expired(&pending, window, now_ms()) {
            let mut tx = bridge.db.begin().await?;
            fail(bridge, &mut tx, &instance, &stored).await?;
            tx.commit().await?;
            continue;
        }
        let outgoing = match Outgoing::from_request(bridge, &instance, &pending.request).await {
            Ok(o) => o,
            Err(SendError::BadRequest) => {
                let mut tx = bridge.db.begin().await?;
                fail(bridge, &mut tx, &instance, &stored).await?;
                tx.commit().await?;
                continue;
            }
            Err(err) => return Err(err),
        };
        tracing::info!(instance = %instance.name, id = %stored.key_id, "sending a pending message again");
        let outcome = deliver(bridge, &instance, &session, &outgoing, &stored, &pending).await;
        drop(claim);
        match outcome {
            Ok(Delivery::Sent) => {}
            // The connection broke again: the next open continues.
            Ok(Delivery::Unconfirmed) => return Ok(()),
            // Failed before the wire: already marked failed; go on with the others.
            Err(SendError::Engine(err)) => {
                tracing::warn!(instance = %instance.name, id = %stored.key_id, "resend failed: {err}");
            }
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// The recovery task: fails what is past the window at start, resends an instance's pending
/// sends whenever its session opens (and when a send asks for it), and sweeps periodically.
/// Started by [`super::start_with`]; stopped with the runtime.
pub(crate) async fn run(
    bridge: Bridge,
    mut events: broadcast::Receiver<Event>,
    mut resend: mpsc::UnboundedReceiver<String>,
    mut stopped: watch::Receiver<bool>,
) {
    let window = bridge.config.send_resend_window;
    // Nothing is in flight yet: every pending send is a leftover of the previous run.
    if let Err(err) = expire(&bridge, window).await {
        tracing::error!("failing expired sends: {err}");
    }
    let mut sweep = tokio::time::interval(SWEEP_EVERY);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    sweep.reset();
    let mut tasks: JoinSet<()> = JoinSet::new();
    enum Wake {
        Stop,
        Resend(String),
        /// Events were lost (the task lagged): an open may be among them.
        ResendAll,
        Sweep,
        Nothing,
    }
    loop {
        // Decide first, act after: nothing from the select is held across the awaits below.
        let wake = tokio::select! {
            _ = stopped.wait_for(|s| *s) => Wake::Stop,
            event = events.recv() => match event {
                Ok(Event { instance, kind: EventKind::Connection { state: ConnectionState::Open, .. }, .. }) => {
                    Wake::Resend(instance.as_str().to_owned())
                }
                Ok(_) => Wake::Nothing,
                Err(broadcast::error::RecvError::Lagged(_)) => Wake::ResendAll,
                Err(broadcast::error::RecvError::Closed) => Wake::Stop,
            },
            Some(instance) = resend.recv() => Wake::Resend(instance),
            _ = sweep.tick() => Wake::Sweep,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => Wake::Nothing,
        };
        match wake {
            Wake::Stop => break,
            Wake::Nothing => {}
            Wake::Sweep => {
                let bridge = bridge.clone();
                tasks.spawn(async move {
                    if let Err(err) = expire(&bridge, window.max(ACK_GRACE)).await {
                        tracing::error!("failing expired sends: {err}");
                    }
                });
            }
            Wake::Resend(instance) => {
                let bridge = bridge.clone();
                tasks.spawn(async move {
                    if let Err(err) = resend_pending(&bridge, &instance).await {
                        tracing::error!(instance, "resending pending messages: {err}");
                    }
                });
            }
            Wake::ResendAll => {
                let bridge = bridge.clone();
                tasks.spawn(async move {
                    let mut instances: Vec<String> = match bridge.db.pending_sends(None).await {
                        Ok(p) => p.into_iter().map(|p| p.instance_id).collect(),
                        Err(err) => {
                            tracing::error!("listing pending sends: {err}");
                            return;
                        }
                    };
                    instances.sort();
                    instances.dedup();
                    for instance in instances {
                        if let Err(err) = resend_pending(&bridge, &instance).await {
                            tracing::error!(instance, "resending pending messages: {err}");
                        }
                    }
                });
            }
        }
    }
    // Stopping: the sessions are gone, so resends in progress end on their own; do not wait.
    tasks.abort_all();
}

/// Sends owned by a request or a resend right now, as (instance id, message id).
#[derive(Debug, Default)]
pub(crate) struct InFlight(std::sync::Mutex<std::collections::HashSet<(String, String)>>);

impl InFlight {
    fn set(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<(String, String)>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn claim(self: &Arc<Self>, instance_id: &str, key_id: &str) -> Option<SendClaim> {
        let key = (instance_id.to_owned(), key_id.to_owned());
        self.set().insert(key.clone()).then(|| SendClaim {
            set: self.clone(),
            key,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.set().len()
    }
}

/// One send in flight; the entry leaves `InFlight` when this is dropped, so the set never
/// holds more than the sends running at once.
#[derive(Debug)]
pub struct SendClaim {
    set: Arc<InFlight>,
    key: (String, String),
}

impl Drop for SendClaim {
    fn drop(&mut self) {
        self.set.set().remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_exclusive_and_released_on_drop() {
        let set = Arc::new(InFlight::default());
        let a = set.claim("i", "A").unwrap();
        assert!(set.claim("i", "A").is_none());
        let b = set.claim("i", "B").unwrap();
        assert!(set.claim("j", "A").is_some());
        assert_eq!(set.len(), 2);
        drop(a);
        assert_eq!(set.len(), 1);
        assert!(set.claim("i", "A").is_some());
        drop(b);
        assert_eq!(set.len(), 0);
    }

    #[test]
    fn the_window_counts_from_the_reservation() {
        let p = PendingSend {
            instance_id: "i".into(),
            key_id: "A".into(),
            request: Value::Null,
            reserved_at: 1_000_000,
            answered: false,
        };
        let w = Duration::from_secs(300);
        assert!(!expired(&p, w, 1_000_000 + 299_999));
        assert!(expired(&p, w, 1_000_000 + 300_000));
        assert!(expired(&p, Duration::ZERO, 1_000_000));
        // A clock that went backwards is not an expiry.
        assert!(!expired(&p, w, 0));
    }
}
