//! The dispatch engine: one worker task per active conversation (instance, remoteJid) decides,
//! with Evolution's rules, whether and which bot answers each message, joins messages arriving
//! within `debounceTime`, calls the bot under the instance's concurrency limit with a timeout and
//! retries, updates the session, and hands the reply plan to [`Outbound`].
//!
//! [`Engine::dispatch`] never waits: it queues the message to the conversation's worker (starting
//! one if needed). Work is serialised per conversation (so a session is never raced by two of its
//! own messages) and parallel across conversations. A worker exits when it has nothing queued and
//! nothing debouncing, so idle conversations cost nothing but their stored session.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};

use crate::clock::Clock;
use crate::config::{BotConfig, BotDirectory, EffectiveSettings, InstanceBots};
use crate::kind::{BotAnswer, BotCall, BotError, BotKind};
use crate::outbound::{BotEvent, Outbound};
use crate::reply::ReplyPlan;
use crate::session::{Session, SessionStatus, new_id};
use crate::store::{SessionStore, StoreError};
use crate::trigger::find_bot_by_trigger;

/// Messages a conversation may have waiting for its worker (while a bot call is in flight);
/// beyond this a contact flooding a slow bot loses bot handling of the excess, not memory.
const QUEUED_PER_CONVERSATION: usize = 256;

/// One inbound message, as the caller read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    /// The instance key the session rows and [`BotDirectory`] use.
    pub instance: String,
    pub remote_jid: String,
    pub push_name: Option<String>,
    pub from_me: bool,
    /// The WhatsApp message id.
    pub key_id: String,
    /// The message as text (Evolution's `getConversationMessage`: text, captions as
    /// `imageMessage|id|caption`, list/button replies, …); `None` when it cannot be read as text,
    /// which gets the bot's `unknownMessage`.
    pub content: Option<String>,
    /// A media URL for the message, when the caller has one.
    pub media_url: Option<String>,
}

/// Bounds on bot calls.
#[derive(Debug, Clone)]
pub struct EngineLimits {
    /// Bot calls in flight at once per instance; further calls wait their turn.
    pub per_instance_calls: usize,
    /// One attempt's time limit.
    pub call_timeout: Duration,
    /// Attempts per call (1 = no retry). Only retryable failures are retried.
    pub attempts: u32,
    /// Wait before the second attempt; doubles for each further one.
    pub backoff: Duration,
}

impl Default for EngineLimits {
    fn default() -> Self {
        Self {
            per_instance_calls: 8,
            call_timeout: Duration::from_secs(30),
            attempts: 3,
            backoff: Duration::from_millis(500),
        }
    }
}

/// The chatbot engine. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("kinds", &self.inner.kinds.keys().collect::<Vec<_>>())
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

type ConversationKey = (String, String);

struct Inner {
    store: Arc<dyn SessionStore>,
    directory: Arc<dyn BotDirectory>,
    outbound: Arc<dyn Outbound>,
    clock: Arc<dyn Clock>,
    kinds: HashMap<&'static str, Arc<dyn BotKind>>,
    limits: EngineLimits,
    http: reqwest::Client,
    conversations: Mutex<HashMap<ConversationKey, mpsc::Sender<Stamped>>>,
    instance_calls: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// A message and the clock reading when it was dispatched (debounce and expiry count from it).
struct Stamped {
    msg: Inbound,
    at_ms: u64,
}

/// A message a bot will answer, waiting out the debounce.
struct Pending {
    setup: Arc<InstanceBots>,
    kind: Arc<dyn BotKind>,
    bot: BotConfig,
    settings: EffectiveSettings,
    /// The session id this conversation continues, `None` for a new one.
    session_id: Option<String>,
    text: String,
    /// The last message joined in.
    last: Inbound,
    deadline_ms: u64,
}

/// What a message resolved to.
enum Decision {
    Ignore,
    Answer(Box<Pending>),
}

impl Engine {
    /// An engine with no bot kinds yet: add them with [`Engine::register`].
    pub fn new(
        store: Arc<dyn SessionStore>,
        directory: Arc<dyn BotDirectory>,
        outbound: Arc<dyn Outbound>,
        clock: Arc<dyn Clock>,
        limits: EngineLimits,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                directory,
                outbound,
                clock,
                kinds: HashMap::new(),
                limits,
                http: reqwest::Client::new(),
                conversations: Mutex::new(HashMap::new()),
                instance_calls: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Adds a bot kind. Call before the first dispatch (while this is the only handle).
    ///
    /// # Panics
    /// If the engine was already cloned: registration is a construction step.
    #[allow(clippy::expect_used)]
    pub fn register(mut self, kind: Arc<dyn BotKind>) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("Engine::register is called before the engine is shared")
            .kinds
            .insert(kind.name(), kind);
        self
    }

    /// Queues an inbound message for the bots. Never waits; must run inside a tokio runtime.
    /// The caller must not dispatch the sends the engine itself asked for.
    pub fn dispatch(&self, msg: Inbound) {
        let stamped = Stamped {
            at_ms: self.inner.clock.now_ms(),
            msg,
        };
        let key = (stamped.msg.instance.clone(), stamped.msg.remote_jid.clone());
        let mut conversations = self.inner.lock_conversations();
        let stamped = match conversations.get(&key) {
            Some(tx) => match tx.try_send(stamped) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Full(dropped)) => {
                    drop(conversations);
                    tracing::warn!(instance = %dropped.msg.instance, "bots: conversation queue full; message not handled by bots");
                    self.inner.outbound.event(BotEvent::Overloaded {
                        instance: dropped.msg.instance,
                        remote_jid: dropped.msg.remote_jid,
                    });
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(back)) => back,
            },
            None => stamped,
        };
        let (tx, rx) = mpsc::channel(QUEUED_PER_CONVERSATION);
        // Cannot fail: the channel is new and we hold the receiver.
        let _ = tx.try_send(stamped);
        conversations.insert(key.clone(), tx);
        drop(conversations);
        tokio::spawn(Arc::clone(&self.inner).run_conversation(key, rx));
    }

    /// Conversations with a worker right now (queued, debouncing or calling a bot).
    pub fn active_conversations(&self) -> usize {
        self.inner.lock_conversations().len()
    }

    /// `changeStatus`: `Some(status)` sets every session of the contact to it, except that
    /// `closed` deletes them unless `keep_open`; `None` deletes them.
    pub async fn change_status(
        &self,
        instance: &str,
        remote_jid: &str,
        status: Option<SessionStatus>,
        keep_open: bool,
    ) -> Result<u64, StoreError> {
        let store = &self.inner.store;
        match status {
            Some(SessionStatus::Closed) if !keep_open => {
                store.delete_for_contact(instance, remote_jid).await
            }
            Some(status) => {
                let now = self.inner.clock.now_ms();
                store
                    .set_status_for_contact(instance, remote_jid, status, now)
                    .await
            }
            None => store.delete_for_contact(instance, remote_jid).await,
        }
    }

    /// `fetchSessions`: the instance's sessions, optionally of one bot, newest first.
    pub async fn fetch_sessions(
        &self,
        instance: &str,
        bot_id: Option<&str>,
    ) -> Result<Vec<Session>, StoreError> {
        self.inner.store.list(instance, bot_id).await
    }
}

impl Inner {
    fn lock_conversations(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<ConversationKey, mpsc::Sender<Stamped>>> {
        // The map is only ever inserted into or removed from; a panic elsewhere cannot leave it
        // half-updated.
        self.conversations.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn instance_semaphore(&self, instance: &str) -> Arc<Semaphore> {
        let mut map = self
            .instance_calls
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        Arc::clone(
            map.entry(instance.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(self.limits.per_instance_calls.max(1)))),
        )
    }

    /// The worker of one conversation: decide each message in arrival order, debounce, answer.
    async fn run_conversation(
        self: Arc<Self>,
        key: ConversationKey,
        mut rx: mpsc::Receiver<Stamped>,
    ) {
        let mut pending: Option<Box<Pending>> = None;
        loop {
            let next = match rx.try_recv() {
                Ok(next) => next,
                Err(_) => match &pending {
                    Some(p) => {
                        let deadline_ms = p.deadline_ms;
                        let deadline = self.clock.sleep_until(deadline_ms);
                        tokio::select! {
                            biased;
                            next = rx.recv() => match next {
                                Some(next) => next,
                                // Unreachable while the map holds the sender; never spin.
                                None => {
                                    self.clock.sleep_until(deadline_ms).await;
                                    if let Some(p) = pending.take() {
                                        self.answer(*p).await;
                                    }
                                    continue;
                                }
                            },
                            () = deadline => {
                                if let Some(p) = pending.take() {
                                    self.answer(*p).await;
                                }
                                continue;
                            }
                        }
                    }
                    None => {
                        // Exit only if nothing arrived: `dispatch` sends under this same lock.
                        let mut conversations = self.lock_conversations();
                        match rx.try_recv() {
                            Ok(next) => next,
                            Err(_) => {
                                conversations.remove(&key);
                                return;
                            }
                        }
                    }
                },
            };
            match self.decide(&next).await {
                Ok(Decision::Ignore) => {}
                Ok(Decision::Answer(new)) => {
                    let same = pending.as_ref().is_some_and(|p| {
                        p.kind.name() == new.kind.name()
                            && p.bot.id == new.bot.id
                            && p.session_id == new.session_id
                    });
                    if same {
                        if let Some(p) = pending.as_mut() {
                            p.text.push('\n');
                            p.text.push_str(&new.text);
                            p.deadline_ms = new.deadline_ms;
                            p.last = new.last;
                            p.settings = new.settings;
                        }
                    } else {
                        if let Some(p) = pending.take() {
                            self.answer(*p).await;
                        }
                        pending = Some(new);
                    }
                    if pending
                        .as_ref()
                        .is_some_and(|p| p.settings.debounce_time == 0)
                        && let Some(p) = pending.take()
                    {
                        self.answer(*p).await;
                    }
                }
                Err(e) => self.store_failed(&next.msg, &e),
            }
        }
    }

    fn store_failed(&self, msg: &Inbound, e: &StoreError) {
        tracing::warn!(instance = %msg.instance, error = %e, "bots: session storage failed; message not handled by bots");
        self.outbound.event(BotEvent::StoreFailed {
            instance: msg.instance.clone(),
            remote_jid: msg.remote_jid.clone(),
            error: e.to_string(),
        });
    }

    fn status_event(&self, s: &Session, status: Option<SessionStatus>) {
        self.outbound.event(BotEvent::SessionStatus {
            instance: s.instance.clone(),
            remote_jid: s.remote_jid.clone(),
            kind: s.kind.clone(),
            bot_id: s.bot_id.clone(),
            status,
        });
    }

    /// Ends a session: kept as `closed` with keepOpen, else deleted.
    async fn end_session(
        &self,
        mut s: Session,
        keep_open: bool,
        now: u64,
    ) -> Result<(), StoreError> {
        if keep_open {
            s.status = SessionStatus::Closed;
            s.updated_at = now;
            self.store.save(&s).await?;
            self.status_event(&s, Some(SessionStatus::Closed));
        } else {
            self.store.delete(&s.id).await?;
            self.status_event(&s, None);
        }
        Ok(())
    }

    /// Evolution's per-message steps (§ dispatch): settings row, ignoreJids, session lookup, bot
    /// selection (session's bot, else trigger, else fallback), effective settings,
    /// stopBotFromMe, listeningFromMe, closed/paused sessions, expiry.
    async fn decide(&self, stamped: &Stamped) -> Result<Decision, StoreError> {
        let msg = &stamped.msg;
        let Some(setup) = self.directory.instance(&msg.instance).await else {
            return Ok(Decision::Ignore);
        };
        let mut session = self.store.latest(&msg.instance, &msg.remote_jid).await?;
        if let Some(s) = &session
            && s.bot_id.is_none()
        {
            if s.status != SessionStatus::Closed {
                // Another component holds this conversation.
                return Ok(Decision::Ignore);
            }
            session = None;
        }
        for setup_kind in &setup.kinds {
            let Some(kind) = self.kinds.get(setup_kind.kind.as_str()) else {
                continue;
            };
            let row = setup_kind.settings.as_ref();
            if EffectiveSettings::resolve(None, row).ignores(&msg.remote_jid) {
                continue;
            }
            // A session belongs to one kind; other kinds leave the contact alone and the
            // owning kind, wherever it is in the order, handles the message.
            let mut ours = match &session {
                Some(s) if s.kind != setup_kind.kind => continue,
                other => other.clone(),
            };
            let content = msg.content.as_deref().unwrap_or_default();
            let bot = match &ours {
                Some(s) => setup_kind
                    .bots
                    .iter()
                    .find(|b| Some(&b.id) == s.bot_id.as_ref()),
                None => find_bot_by_trigger(&setup_kind.bots, content),
            };
            let bot = bot.or_else(|| {
                let fallback = row?.fallback_id.as_deref()?;
                setup_kind.bots.iter().find(|b| b.id == fallback)
            });
            let Some(bot) = bot else {
                continue;
            };
            let settings = EffectiveSettings::resolve(Some(&bot.settings), row);

            if msg.from_me
                && settings.stop_bot_from_me
                && let Some(mut s) = ours
            {
                if s.status != SessionStatus::Paused {
                    s.status = SessionStatus::Paused;
                    s.updated_at = stamped.at_ms;
                    self.store.save(&s).await?;
                    self.status_event(&s, Some(SessionStatus::Paused));
                }
                return Ok(Decision::Ignore);
            }
            if msg.from_me && !settings.listening_from_me {
                return Ok(Decision::Ignore);
            }
            if let Some(s) = &ours {
                match s.status {
                    SessionStatus::Closed | SessionStatus::Paused => return Ok(Decision::Ignore),
                    SessionStatus::Opened => {}
                }
                let idle = stamped.at_ms.saturating_sub(s.updated_at);
                if settings.expire > 0 && idle > settings.expire.saturating_mul(60_000) {
                    // Expired: end it; this message starts a new session with the same bot.
                    if let Some(s) = ours.take() {
                        self.end_session(s, settings.keep_open, stamped.at_ms)
                            .await?;
                    }
                }
            }
            let deadline_ms = stamped
                .at_ms
                .saturating_add(settings.debounce_time.saturating_mul(1000));
            return Ok(Decision::Answer(Box::new(Pending {
                setup: Arc::clone(&setup),
                kind: Arc::clone(kind),
                bot: bot.clone(),
                session_id: ours.map(|s| s.id),
                text: content.to_owned(),
                settings,
                last: msg.clone(),
                deadline_ms,
            })));
        }
        Ok(Decision::Ignore)
    }

    /// Answers a (debounced) message: unknownMessage, keywordFinish, session bookkeeping, the
    /// bot call, the reply.
    async fn answer(&self, p: Pending) {
        if let Err(e) = self.try_answer(&p).await {
            self.store_failed(&p.last, &e);
        }
    }

    async fn try_answer(&self, p: &Pending) -> Result<(), StoreError> {
        let msg = &p.last;
        let now = self.clock.now_ms();
        // The session may have changed while we debounced (paused from the phone, changeStatus).
        let current = self.store.latest(&msg.instance, &msg.remote_jid).await?;
        let existing = match (&p.session_id, current) {
            (Some(id), Some(s)) if &s.id == id && s.status == SessionStatus::Opened => Some(s),
            (Some(_), _) => return Ok(()),
            (None, Some(s)) => match (s.status, &s.bot_id) {
                // Ended (an expired session just closed with keepOpen, or a closed session of
                // another component): start a new one.
                (SessionStatus::Closed, _) => None,
                // Opened by an earlier answer of this same bot while we debounced.
                (SessionStatus::Opened, Some(b)) if s.kind == p.kind.name() && b == &p.bot.id => {
                    Some(s)
                }
                _ => return Ok(()),
            },
            (None, _) => None,
        };

        if msg.content.is_none() {
            if !p.settings.unknown_message.is_empty() {
                let plan = ReplyPlan::build(
                    vec![crate::kind::Reply::Text {
                        text: p.settings.unknown_message.clone(),
                        link_preview: true,
                    }],
                    &p.settings,
                );
                self.send(msg, plan).await;
            }
            return Ok(());
        }
        if let Some(s) = &existing
            && !p.settings.keyword_finish.is_empty()
            && p.text.trim().to_lowercase() == p.settings.keyword_finish.to_lowercase()
        {
            self.end_session(s.clone(), p.settings.keep_open, now)
                .await?;
            return Ok(());
        }

        let created = existing.is_none();
        let mut session = match existing {
            Some(mut s) => {
                s.await_user = false;
                s.updated_at = now;
                if msg.push_name.is_some() {
                    s.push_name.clone_from(&msg.push_name);
                }
                s
            }
            None => Session {
                id: new_id(),
                instance: msg.instance.clone(),
                remote_jid: msg.remote_jid.clone(),
                kind: p.kind.name().to_owned(),
                bot_id: Some(p.bot.id.clone()),
                session_id: msg.remote_jid.clone(),
                push_name: msg.push_name.clone(),
                status: SessionStatus::Opened,
                await_user: false,
                context: serde_json::Value::Null,
                created_at: now,
                updated_at: now,
            },
        };
        self.store.save(&session).await?;
        if created {
            self.status_event(&session, Some(SessionStatus::Opened));
        }

        let answer = self.call_bot(p, &session).await;
        let answer = match answer {
            Ok(answer) => answer,
            Err((error, attempts)) => {
                tracing::warn!(
                    instance = %msg.instance, kind = p.kind.name(), bot = %p.bot.id,
                    attempts, error = %error, "bots: the bot did not answer; conversation gets no reply"
                );
                self.outbound.event(BotEvent::BotFailed {
                    instance: msg.instance.clone(),
                    remote_jid: msg.remote_jid.clone(),
                    kind: p.kind.name().to_owned(),
                    bot_id: p.bot.id.clone(),
                    attempts,
                    error: error.to_string(),
                });
                return Ok(());
            }
        };

        let BotAnswer {
            replies,
            session_id,
            context,
            finished,
        } = answer;
        let now = self.clock.now_ms();
        if let Some(id) = session_id {
            session.session_id = id;
        }
        if let Some(context) = context {
            session.context = context;
        }
        session.await_user = true;
        session.updated_at = now;
        if finished {
            self.end_session(session, p.settings.keep_open, now).await?;
        } else {
            self.store.save(&session).await?;
        }
        let plan = ReplyPlan::build(replies, &p.settings);
        self.send(msg, plan).await;
        self.outbound.event(BotEvent::Answered {
            instance: msg.instance.clone(),
            remote_jid: msg.remote_jid.clone(),
            kind: p.kind.name().to_owned(),
            bot_id: p.bot.id.clone(),
        });
        Ok(())
    }

    async fn send(&self, msg: &Inbound, plan: ReplyPlan) {
        if plan.sends.is_empty() {
            return;
        }
        if let Err(e) = self
            .outbound
            .send(&msg.instance, &msg.remote_jid, plan)
            .await
        {
            tracing::warn!(instance = %msg.instance, error = %e, "bots: sending the bot's reply failed");
            self.outbound.event(BotEvent::SendFailed {
                instance: msg.instance.clone(),
                remote_jid: msg.remote_jid.clone(),
                error: e.to_string(),
            });
        }
    }

    /// The bot call under the instance's concurrency limit, with a timeout per attempt and
    /// exponential backoff between retryable failures.
    async fn call_bot(&self, p: &Pending, session: &Session) -> Result<BotAnswer, (BotError, u32)> {
        let semaphore = self.instance_semaphore(&p.last.instance);
        let attempts = self.limits.attempts.max(1);
        let mut backoff = self.limits.backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = {
                let _permit = semaphore.acquire().await;
                let call = BotCall {
                    bot: &p.bot,
                    session,
                    settings: &p.settings,
                    instance: &p.setup.context,
                    input: &p.text,
                    push_name: p.last.push_name.as_deref(),
                    from_me: p.last.from_me,
                    key_id: &p.last.key_id,
                    media_url: p.last.media_url.as_deref(),
                    http: &self.http,
                };
                match tokio::time::timeout(self.limits.call_timeout, p.kind.call(call)).await {
                    Ok(result) => result,
                    Err(_) => Err(BotError::Timeout(self.limits.call_timeout)),
                }
            };
            match result {
                Ok(answer) => return Ok(answer),
                Err(e) if e.is_retryable() && attempt < attempts => {
                    tracing::debug!(kind = p.kind.name(), attempt, error = %e, "bots: retrying bot call");
                    tokio::time::sleep(backoff).await;
                    backoff = backoff.saturating_mul(2);
                }
                Err(e) => return Err((e, attempt)),
            }
        }
    }
}
