//! The gateway's side of the chatbots (zapin-bots): the configuration rows the `/{bot}/…`
//! routes store, read back as zapin-bots' [`BotConfig`]s through a [`BotDirectory`] over the
//! database, and the session store over the shared pool.
//!
//! Secrets of a bot (`apiKey`, `basicAuthPass`) are kept as one JSON object sealed with the
//! gateway's [`SecretCipher`] under the owning instance's id, so they rotate with the other
//! secrets and a row copied to another instance does not open.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use zapin_bots::store::SqlStore;
use zapin_bots::{
    BotConfig, BotDirectory, BotSettings, BoxFuture, InstanceBots, InstanceContext, KindSetup,
    SettingsRow, Trigger, TriggerOperator, TriggerType,
};
use zapin_compat_evolution::request::{BOT_PRODUCTS, BotProduct, BotSettingFields};

use crate::db::{BotRow, BotSettingsRow, Db, DbError};
use crate::webhook::{SecretCipher, SecretError};

/// Evolution's fan-out order of the integrations (`evolution` first, `flowise` last).
pub const KIND_ORDER: [&str; 7] = [
    "evolution",
    "typebot",
    "openai",
    "dify",
    "n8n",
    "evoai",
    "flowise",
];

/// The product whose adapter is named `kind`.
pub fn product_of_kind(kind: &str) -> Option<&'static BotProduct> {
    BOT_PRODUCTS.iter().find(|p| p.kind == kind)
}

/// A bot's product fields (secrets opened), by their JSON names.
pub fn open_params(cipher: &SecretCipher, row: &BotRow) -> Result<Map<String, Value>, SecretError> {
    let mut params: Map<String, Value> = serde_json::from_str(&row.params).unwrap_or_default();
    if let Some(stored) = &row.secret {
        let opened = cipher.open(&row.instance_id, stored)?;
        let secrets: Map<String, Value> = serde_json::from_str(&opened).unwrap_or_default();
        params.extend(secrets);
    }
    Ok(params)
}

/// The sealed form of `secrets` for `instance_id` (`None` when there are none).
pub fn seal_secrets(
    cipher: &SecretCipher,
    instance_id: &str,
    secrets: &Map<String, Value>,
) -> Result<Option<String>, SecretError> {
    if secrets.is_empty() {
        return Ok(None);
    }
    let text = zeroize::Zeroizing::new(Value::Object(secrets.clone()).to_string());
    cipher.seal(instance_id, &text).map(Some)
}

pub fn setting_fields(json: &str) -> BotSettingFields {
    serde_json::from_str::<Value>(json)
        .map(|v| BotSettingFields::from_json(&v))
        .unwrap_or_default()
}

fn non_negative(v: Option<i64>) -> Option<u64> {
    v.map(|n| u64::try_from(n).unwrap_or(0))
}

/// Evolution's setting fields as the engine reads them (negative numbers read as 0).
pub fn engine_settings(f: &BotSettingFields) -> BotSettings {
    BotSettings {
        expire: non_negative(f.expire),
        keyword_finish: f.keyword_finish.clone(),
        delay_message: non_negative(f.delay_message),
        unknown_message: f.unknown_message.clone(),
        listening_from_me: f.listening_from_me,
        stop_bot_from_me: f.stop_bot_from_me,
        keep_open: f.keep_open,
        debounce_time: non_negative(f.debounce_time),
        ignore_jids: f.ignore_jids.clone(),
        split_messages: f.split_messages,
        time_per_char: non_negative(f.time_per_char),
    }
}

/// `triggerType` / `triggerOperator` text as the engine's enums (unknown text: `None`).
pub fn trigger(kind: Option<&str>, operator: Option<&str>, value: Option<&str>) -> Option<Trigger> {
    let kind: TriggerType = serde_json::from_value(Value::from(kind?)).ok()?;
    let operator =
        operator.and_then(|o| serde_json::from_value::<TriggerOperator>(Value::from(o)).ok());
    Some(Trigger {
        kind,
        operator,
        value: value.map(str::to_owned),
    })
}

/// A stored bot as the engine's configuration (`None` when its trigger is unreadable).
pub fn bot_config(row: &BotRow, params: Map<String, Value>) -> Option<BotConfig> {
    Some(BotConfig {
        id: row.id.clone(),
        enabled: row.enabled,
        description: row.description.clone(),
        trigger: trigger(
            row.trigger_type.as_deref(),
            row.trigger_operator.as_deref(),
            row.trigger_value.as_deref(),
        )?,
        settings: engine_settings(&setting_fields(&row.settings)),
        params: Value::Object(params),
    })
}

fn settings_of(row: &BotSettingsRow) -> SettingsRow {
    SettingsRow {
        settings: engine_settings(&setting_fields(&row.settings)),
        fallback_id: row.fallback_id.clone(),
    }
}

/// The chatbot state the HTTP handlers and the message path share.
#[derive(Debug, Clone)]
pub struct Bots {
    /// Sessions (zapin-bots' `bot_sessions` table in the gateway's database).
    pub store: Arc<SqlStore>,
    /// Bot configuration as the engine reads it.
    pub directory: Arc<DbDirectory>,
    /// For the routes that call a bot product themselves (`/openai/getModels`).
    pub http: reqwest::Client,
}

impl Bots {
    pub fn new(
        db: &Db,
        cipher: SecretCipher,
        tokens: crate::http::TokenCipher,
        config: &crate::Config,
    ) -> Self {
        let store = match (db.sqlite_pool(), db.postgres_pool()) {
            (Some(p), _) => SqlStore::sqlite_migrated(p.clone()),
            (None, Some(p)) => SqlStore::postgres_migrated(p.clone()),
            // Unreachable: a Db holds one of the two pools.
            (None, None) => unreachable_pool(db),
        };
        Self {
            store: Arc::new(store),
            directory: Arc::new(DbDirectory {
                db: db.clone(),
                cipher,
                tokens,
                server_url: config.server_url.clone().unwrap_or_default(),
                enabled: enabled_kinds(config),
                cache: Mutex::default(),
            }),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
        }
    }
}

#[allow(clippy::panic)]
fn unreachable_pool(db: &Db) -> SqlStore {
    panic!("database handle without a pool ({})", db.backend_name())
}

/// The kinds whose integration is switched on (Evolution Bot always).
fn enabled_kinds(config: &crate::Config) -> Vec<&'static str> {
    BOT_PRODUCTS
        .iter()
        .filter(|p| p.env_switch.is_none_or(|v| config.bots_enabled.contains(v)))
        .map(|p| p.kind)
        .collect()
}

/// How long a cached instance's bot configuration is used before it is read again: a change
/// made through another node sharing the database takes effect within this time (changes
/// through this node invalidate the cache at once).
const CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(10);

/// [`BotDirectory`] over the gateway's tables, cached per instance until a route changes the
/// instance's bots (see [`DbDirectory::invalidate`]) or for `CACHE_TTL`.
pub struct DbDirectory {
    db: Db,
    cipher: SecretCipher,
    tokens: crate::http::TokenCipher,
    server_url: String,
    enabled: Vec<&'static str>,
    cache: Mutex<HashMap<String, Cached>>,
}

/// A cached read of one instance and when it was made.
type Cached = (std::time::Instant, Option<Arc<InstanceBots>>);

impl std::fmt::Debug for DbDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbDirectory")
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

impl DbDirectory {
    /// Whether the integration `kind` is switched on.
    pub fn kind_enabled(&self, kind: &str) -> bool {
        self.enabled.contains(&kind)
    }

    /// Forgets what is cached for the instance (after any change to its bots or settings, and
    /// when it is deleted).
    pub fn invalidate(&self, instance_id: &str) {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(instance_id);
    }

    async fn load(&self, instance_id: &str) -> Result<Option<Arc<InstanceBots>>, DbError> {
        let mut tx = self.db.begin().await?;
        let Some(instance) = tx.get_instance(instance_id).await? else {
            tx.rollback().await?;
            return Ok(None);
        };
        let bots = tx.list_bots(instance_id, None).await?;
        let settings = tx.list_bot_settings(instance_id).await?;
        let creds = tx.list_openai_creds(instance_id).await?;
        tx.rollback().await?;
        let mut kinds = Vec::new();
        for kind in KIND_ORDER {
            if !self.kind_enabled(kind) {
                continue;
            }
            let mut configs = Vec::new();
            for row in bots.iter().filter(|b| b.kind == kind) {
                let params = match open_params(&self.cipher, row).and_then(|mut p| {
                    self.add_openai_key(&creds, &mut p)?;
                    Ok(p)
                }) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(bot = %row.id, error = %e, "bots: a bot's credentials do not open; the bot is skipped");
                        continue;
                    }
                };
                if let Some(config) = bot_config(row, params) {
                    configs.push(config);
                }
            }
            let row = settings.iter().find(|s| s.kind == kind).map(settings_of);
            if configs.is_empty() && row.is_none() {
                continue;
            }
            kinds.push(KindSetup {
                kind: kind.to_owned(),
                settings: row,
                bots: configs,
            });
        }
        if kinds.is_empty() {
            return Ok(None);
        }
        let api_key = self
            .tokens
            .open(&instance.token)
            .map(|t| t.to_string())
            .unwrap_or_default();
        Ok(Some(Arc::new(InstanceBots {
            context: InstanceContext {
                instance_name: instance.name,
                server_url: self.server_url.clone(),
                api_key,
            },
            kinds,
        })))
    }
}

impl DbDirectory {
    /// An OpenAI bot's API key, from the credentials its `openaiCredsId` names, as the
    /// adapter's `openaiApiKey` parameter.
    fn add_openai_key(
        &self,
        creds: &[crate::db::OpenaiCredsRow],
        params: &mut Map<String, Value>,
    ) -> Result<(), SecretError> {
        let Some(id) = params.get("openaiCredsId").and_then(Value::as_str) else {
            return Ok(());
        };
        if let Some(row) = creds.iter().find(|c| c.id == id) {
            let key = self.cipher.open(&row.instance_id, &row.secret)?;
            params.insert("openaiApiKey".into(), Value::from(key.as_str()));
        }
        Ok(())
    }
}

impl BotDirectory for DbDirectory {
    fn instance(&self, instance: &str) -> BoxFuture<'_, Option<Arc<InstanceBots>>> {
        let instance = instance.to_owned();
        Box::pin(async move {
            if let Some((at, cached)) = self
                .cache
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&instance)
                && at.elapsed() < CACHE_TTL
            {
                return cached.clone();
            }
            match self.load(&instance).await {
                Ok(found) => {
                    self.cache
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(instance, (std::time::Instant::now(), found.clone()));
                    found
                }
                Err(e) => {
                    tracing::warn!(error = %e, "bots: reading the instance's bots failed");
                    None
                }
            }
        })
    }
}

/// Attaches the chatbot engine to the WhatsApp engine of `state` (once per runtime): stored
/// inbound messages reach it from the bridge, and its replies go out through [`BotSender`].
pub fn attach(state: &crate::AppState) {
    let Some(runtime) = &state.engine else {
        return;
    };
    if runtime.bots().is_some() {
        return;
    }
    let sender = Arc::new(BotSender {
        runtime: Arc::downgrade(runtime),
        db: state.db.clone(),
        config: state.config.clone(),
        tokens: state.tokens.clone(),
        tenancy: state.tenancy.clone(),
    });
    let engine = zapin_bots::Engine::new(
        state.bots.store.clone(),
        state.bots.directory.clone(),
        sender,
        Arc::new(zapin_bots::SystemClock),
        zapin_bots::EngineLimits::default(),
    )
    .register(Arc::new(zapin_bots::kind::EvolutionBot))
    .register(Arc::new(zapin_bots::kind::N8nBot))
    .register(Arc::new(zapin_bots::kind::TypebotBot))
    .register(Arc::new(zapin_bots::kind::DifyBot))
    .register(Arc::new(zapin_bots::kind::FlowiseBot))
    .register(Arc::new(zapin_bots::kind::EvoAiBot))
    .register(Arc::new(zapin_bots::kind::OpenAiBot::new(
        state.config.openai_base_url.clone(),
    )));
    runtime.set_bots(engine);
}

/// [`zapin_bots::Outbound`] over the gateway's send path: each planned send shows `composing`
/// for its typing time, is charged to the instance's tenant like a `sendText`, and is sent as
/// a `sendText` is (reserved, durable, `send.message` in the webhooks).
pub struct BotSender {
    /// Weak: the runtime owns the chatbot engine, which owns this.
    runtime: std::sync::Weak<crate::runtime::EngineRuntime>,
    db: Db,
    config: Arc<crate::Config>,
    tokens: crate::http::TokenCipher,
    tenancy: Option<Arc<crate::tenancy::Tenancy>>,
}

impl std::fmt::Debug for BotSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BotSender").finish_non_exhaustive()
    }
}

/// A reply as WhatsApp text. Media, lists and buttons go out as text until the gateway has
/// those send paths: the media link with its caption, the options numbered.
fn reply_text(reply: zapin_bots::Reply) -> String {
    use zapin_bots::Reply;
    match reply {
        Reply::Text { text, .. } => text,
        Reply::Media { url, caption, .. } => match caption.filter(|c| !c.is_empty()) {
            Some(caption) => format!("{caption}\n{url}"),
            None => url,
        },
        Reply::List {
            title,
            description,
            sections,
            ..
        } => {
            let mut out = vec![title, description];
            let rows = sections.into_iter().flat_map(|s| s.rows);
            for (i, row) in rows.enumerate() {
                out.push(format!("{}. {}", i + 1, row.title));
            }
            out.retain(|l| !l.is_empty());
            out.join("\n")
        }
        Reply::Buttons {
            title,
            description,
            buttons,
            ..
        } => {
            let mut out = vec![title, description];
            for (i, (_, text)) in buttons.into_iter().enumerate() {
                out.push(format!("{}. {text}", i + 1));
            }
            out.retain(|l| !l.is_empty());
            out.join("\n")
        }
    }
}

impl BotSender {
    /// Charges one `sendText` to the tenant owning `instance` (nothing without tenancy or
    /// owner); a refusal stops the reply.
    async fn charge(&self, instance: &crate::db::Instance) -> Result<(), zapin_bots::SendError> {
        use zapin_bots::SendError;
        let Some(t) = &self.tenancy else {
            return Ok(());
        };
        let failed = |e: &dyn std::fmt::Display| SendError(format!("quota: {e}"));
        let owner = t
            .directory
            .owner(&instance.name)
            .await
            .map_err(|e| failed(&e))?;
        let Some(owner) = owner.filter(|o| o.instance_id == instance.id) else {
            return Ok(());
        };
        let Some((tenant, plan)) = t
            .directory
            .tenant_with_plan(&owner.tenant_id)
            .await
            .map_err(|e| failed(&e))?
        else {
            return Ok(());
        };
        let Some(cost) = zapin_tenancy::routes::lookup("POST", "/message/sendText/{instance}")
            .and_then(|r| r.cost)
        else {
            return Ok(());
        };
        match t.quotas.charge(&tenant.id, &plan.spec, cost).await {
            Ok(zapin_tenancy::quota::Decision::Accepted { .. }) => Ok(()),
            Ok(zapin_tenancy::quota::Decision::Refused(r)) => Err(SendError(r.message())),
            Err(e) => Err(failed(&e)),
        }
    }

    async fn send_plan(
        &self,
        instance_id: &str,
        remote_jid: &str,
        plan: zapin_bots::ReplyPlan,
    ) -> Result<(), zapin_bots::SendError> {
        use zapin_bots::SendError;
        let runtime = self
            .runtime
            .upgrade()
            .ok_or_else(|| SendError("the WhatsApp engine stopped".into()))?;
        let instance = {
            let mut tx = self
                .db
                .begin()
                .await
                .map_err(|e| SendError(e.to_string()))?;
            let found = tx
                .get_instance(instance_id)
                .await
                .map_err(|e| SendError(e.to_string()))?;
            tx.rollback().await.map_err(|e| SendError(e.to_string()))?;
            found.ok_or_else(|| SendError("the instance was deleted".into()))?
        };
        let bridge = crate::runtime::bridge::Bridge {
            runtime: runtime.clone(),
            db: self.db.clone(),
            config: self.config.clone(),
            tokens: self.tokens.clone(),
        };
        for step in plan.sends {
            let session = runtime
                .session(&instance.id)
                .filter(|h| h.state() == zapin_engine::ConnectionState::Open)
                .ok_or_else(|| SendError(format!("instance {} is not connected", instance.name)))?;
            self.charge(&instance).await?;
            if step.typing_ms > 0 {
                // Typing simulation is best effort: a lost presence must not lose the reply.
                let _ = session
                    .send_chat_presence(remote_jid, zapin_engine::ChatState::Composing)
                    .await;
                tokio::time::sleep(std::time::Duration::from_millis(step.typing_ms)).await;
                let _ = session
                    .send_chat_presence(remote_jid, zapin_engine::ChatState::Paused)
                    .await;
            }
            let body = serde_json::json!({"number": remote_jid, "text": reply_text(step.reply)});
            let outgoing = crate::runtime::sends::Outgoing::from_request(&bridge, &instance, &body)
                .await
                .map_err(|e| SendError(e.to_string()))?;
            let record =
                crate::runtime::sends::send_new(&bridge, instance.clone(), session, outgoing, body)
                    .await
                    .map_err(|e| SendError(e.to_string()))?;
            runtime.note_bot_send(&record.key.id);
        }
        Ok(())
    }
}

impl zapin_bots::Outbound for BotSender {
    fn send<'a>(
        &'a self,
        instance: &'a str,
        remote_jid: &'a str,
        plan: zapin_bots::ReplyPlan,
    ) -> BoxFuture<'a, Result<(), zapin_bots::SendError>> {
        Box::pin(self.send_plan(instance, remote_jid, plan))
    }

    fn event(&self, event: zapin_bots::BotEvent) {
        use zapin_bots::BotEvent;
        match event {
            BotEvent::BotFailed {
                instance,
                remote_jid,
                kind,
                bot_id,
                attempts,
                error,
            } => {
                tracing::warn!(%instance, %remote_jid, %kind, %bot_id, attempts, %error, "bots: the bot did not answer")
            }
            BotEvent::SendFailed {
                instance,
                remote_jid,
                error,
            } => tracing::warn!(%instance, %remote_jid, %error, "bots: the reply was not sent"),
            other => tracing::debug!(event = ?other, "bots"),
        }
    }
}
