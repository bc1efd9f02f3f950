//! The axum application: shared state and the route table.
//!
//! Evolution routes follow the guard chain of contract §1.3 (see [`guard`]): 404 for an unknown
//! instance, 403 for a taken name on create, 401 for a bad `apikey`, then 400 for the body, then
//! the handler's own errors. The path's `{instance}` is authoritative: query parameters never
//! replace it (§1.5).

mod admin;
mod body;
mod bots;
mod chat;
mod contacts;
pub mod cors;
pub mod door;
mod envelope;
mod group;
pub mod guard;
mod health;
pub(crate) mod instance;
mod meta;
mod metrics;
pub mod observe;
mod profile;
mod proxy;
pub(crate) mod quote;
mod send;
pub(crate) mod session;
mod settings;
pub mod tenancy;
mod tenant_api;
pub mod token;
mod transports;
mod webhook;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{delete, get, post, put};

use crate::Config;
use crate::db::{Db, DbError};

pub use envelope::ApiError;
pub(crate) use proxy::{credentials as proxy_credentials, proxy_config};
pub use token::TokenCipher;
pub use zapin_compat_evolution::ErrorEnvelope;

/// Largest request body. Evolution accepts 136 MB of JSON; nothing on the routes zapin serves
/// needs more than a few, so a larger body is refused early with Evolution's 413 shape.
pub const BODY_LIMIT_BYTES: usize = 16 * 1024 * 1024;

/// What the gateway needs from the WhatsApp engine. The engine's session manager implements it
/// when it lands; until then [`AppState::engine`] is `None`, instances stay in their stored state
/// (`close` for Baileys) and the routes that need a live session are not mounted.
pub trait InstanceRuntime: Send + Sync + std::fmt::Debug {
    /// Called after an instance was created and committed. `qrcode` and `number` are the create
    /// request's: with `qrcode` the engine starts connecting (pairing code for `number`).
    fn instance_created(&self, instance: &crate::db::Instance, qrcode: bool, number: Option<&str>);
    /// Called after an instance was deleted and committed: log out and drop the session.
    fn instance_deleted(&self, instance: &crate::db::Instance);
}

/// State shared by every handler. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    /// When the process started serving, for the health document's uptime.
    pub started: Instant,
    pub db: Db,
    /// How instance tokens are stored (see [`token`]).
    pub tokens: TokenCipher,
    /// How webhook signing secrets are stored (see [`crate::webhook::SecretCipher`]).
    pub secrets: crate::webhook::SecretCipher,
    /// The session engine (`None` in DB-only tests: instances stay in their stored state and
    /// the routes that need a live session answer as for an instance not in memory).
    pub engine: Option<Arc<crate::runtime::EngineRuntime>>,
    /// Key rotation while serving (`/admin/keys`); `None` in tests that run without it.
    pub keys: Option<Arc<crate::keys::KeyService>>,
    /// Tenants, quotas and the usage log (see [`tenancy`]); `None`: only the global key and
    /// instance tokens, nothing charged or logged.
    pub tenancy: Option<Arc<crate::tenancy::Tenancy>>,
    /// The dashboard's process-wide state (sign-in rate limit).
    pub dashboard: Arc<crate::dashboard::Shared>,
    /// Chatbot configuration and sessions (see [`crate::bots`]).
    pub bots: crate::bots::Bots,
}

impl AppState {
    pub fn new(config: Config, db: Db) -> Self {
        let tokens = TokenCipher::with_keyring(config.keyring());
        let secrets = crate::webhook::SecretCipher::with_keyring(config.keyring());
        let bots = crate::bots::Bots::new(&db, secrets.clone(), tokens.clone(), &config);
        Self {
            config: Arc::new(config),
            started: Instant::now(),
            db,
            tokens,
            secrets,
            engine: None,
            keys: None,
            tenancy: None,
            dashboard: Arc::default(),
            bots,
        }
    }

    /// With tenants and quotas wired in (see [`crate::tenancy::Tenancy::start`]).
    pub fn with_tenancy(mut self, tenancy: Arc<crate::tenancy::Tenancy>) -> Self {
        self.tenancy = Some(tenancy);
        self
    }

    /// With the online key rotation wired in (see [`crate::keys::KeyService`]).
    pub fn with_keys(mut self, keys: Arc<crate::keys::KeyService>) -> Self {
        self.keys = Some(keys);
        self
    }

    /// With the engine wired in (see [`crate::runtime::start`]).
    pub fn with_engine(mut self, engine: Arc<crate::runtime::EngineRuntime>) -> Self {
        self.engine = Some(engine);
        self
    }
}

impl From<DbError> for ApiError {
    fn from(err: DbError) -> Self {
        match err {
            DbError::NameTaken(name) => ErrorEnvelope::name_in_use(&name).into(),
            DbError::NoInstance(name) => ErrorEnvelope::instance_not_found(&name).into(),
            other => {
                // The cause goes to the log, not to the client.
                tracing::error!("request failed: {other}");
                ErrorEnvelope::internal(["Internal Server Error"]).into()
            }
        }
    }
}

impl From<crate::webhook::SecretError> for ApiError {
    fn from(err: crate::webhook::SecretError) -> Self {
        tracing::error!("request failed: {err}");
        ErrorEnvelope::internal(["Internal Server Error"]).into()
    }
}

impl From<token::TokenError> for ApiError {
    fn from(err: token::TokenError) -> Self {
        tracing::error!("request failed: {err}");
        ErrorEnvelope::internal(["Internal Server Error"]).into()
    }
}

/// The whole HTTP application.
///
/// Unknown paths, and known paths with another method, answer with Evolution's 404 envelope
/// (`Cannot GET /path`) because that is what Express does and clients may match on it.
/// `OPTIONS` never reaches the routes: it is a CORS preflight, answered by [`cors`].
pub fn app(state: AppState) -> Router {
    // Stored inbound messages reach the chatbots once the app is built with its final state.
    crate::bots::attach(&state);
    // Routes about one existing instance: the guard loads it (404) and checks the key (401)
    // before the handler reads the body (400); then the request is charged (see [`tenancy`]).
    let guarded = Router::new()
        .route("/instance/delete/{instance}", delete(instance::delete))
        .route("/webhook/set/{instance}", post(webhook::set))
        .route("/webhook/find/{instance}", get(webhook::find))
        .route("/rabbitmq/set/{instance}", post(transports::rabbitmq_set))
        .route("/rabbitmq/find/{instance}", get(transports::rabbitmq_find))
        .route("/nats/set/{instance}", post(transports::nats_set))
        .route("/nats/find/{instance}", get(transports::nats_find))
        .route("/settings/set/{instance}", post(settings::set))
        .route("/settings/find/{instance}", get(settings::find))
        .route("/chat/findMessages/{instance}", post(chat::find_messages))
        .route("/proxy/set/{instance}", post(proxy::set))
        .route("/proxy/find/{instance}", get(proxy::find))
        .route(
            "/chat/findContacts/{instance}",
            post(contacts::find_contacts),
        )
        .route("/chat/findChats/{instance}", post(contacts::find_chats))
        .route(
            "/chat/fetchProfile/{instance}",
            post(profile::fetch_profile),
        )
        .route(
            "/chat/fetchBusinessProfile/{instance}",
            post(profile::fetch_business_profile),
        )
        .route(
            "/chat/updateProfileName/{instance}",
            post(profile::update_name),
        )
        .route("/instance/connect/{instance}", get(session::connect))
        .route(
            "/instance/connectionState/{instance}",
            get(session::connection_state),
        )
        .route("/instance/logout/{instance}", delete(session::logout))
        .route(
            "/instance/restart/{instance}",
            post(session::restart).merge(put(session::restart)),
        )
        .route(
            "/instance/setPresence/{instance}",
            post(session::set_presence),
        )
        .route("/message/sendText/{instance}", post(session::send_text))
        // Files stream to disk under ZAPIN_MEDIA_MAX_BYTES, not the JSON body limit.
        .route(
            "/message/sendMedia/{instance}",
            post(send::send_media).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/message/sendWhatsAppAudio/{instance}",
            post(send::send_whatsapp_audio).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/message/sendSticker/{instance}",
            post(send::send_sticker).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/message/sendLocation/{instance}",
            post(send::send_location),
        )
        .route("/message/sendContact/{instance}", post(send::send_contact))
        .route("/message/sendPoll/{instance}", post(send::send_poll))
        .route(
            "/message/sendReaction/{instance}",
            post(send::send_reaction),
        )
        .route(
            "/message/sendPtv/{instance}",
            post(send::send_ptv).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/message/sendTemplate/{instance}",
            post(send::send_template),
        )
        .route("/call/offer/{instance}", post(send::offer_call))
        .route("/chat/updateMessage/{instance}", post(send::update_message))
        .route(
            "/chat/deleteMessageForEveryone/{instance}",
            delete(send::delete_for_everyone),
        )
        .route(
            "/chat/getBase64FromMediaMessage/{instance}",
            post(send::get_base64),
        )
        .route(
            "/chat/markMessageAsRead/{instance}",
            post(session::mark_as_read),
        )
        .route(
            "/chat/whatsappNumbers/{instance}",
            post(session::whatsapp_numbers),
        )
        .route(
            "/chat/sendPresence/{instance}",
            post(session::send_presence),
        )
        .route(
            "/chat/fetchPrivacySettings/{instance}",
            get(profile::fetch_privacy),
        )
        .route(
            "/chat/updatePrivacySettings/{instance}",
            post(profile::update_privacy),
        )
        .route(
            "/chat/updateBlockStatus/{instance}",
            post(profile::update_block_status),
        )
        .route(
            "/chat/updateProfileStatus/{instance}",
            post(profile::update_status),
        )
        .route(
            "/chat/updateProfilePicture/{instance}",
            post(profile::update_picture),
        )
        .route(
            "/chat/removeProfilePicture/{instance}",
            delete(profile::remove_picture),
        )
        .route("/group/create/{instance}", post(group::create))
        .route(
            "/group/updateGroupSubject/{instance}",
            post(group::update_subject),
        )
        .route(
            "/group/updateGroupPicture/{instance}",
            post(group::update_picture),
        )
        .route(
            "/group/updateGroupDescription/{instance}",
            post(group::update_description),
        )
        .route(
            "/group/findGroupInfos/{instance}",
            get(group::find_group_infos),
        )
        .route(
            "/group/fetchAllGroups/{instance}",
            get(group::fetch_all_groups),
        )
        .route("/group/participants/{instance}", get(group::participants))
        .route("/group/inviteCode/{instance}", get(group::invite_code))
        .route("/group/inviteInfo/{instance}", get(group::invite_info))
        .route(
            "/group/acceptInviteCode/{instance}",
            get(group::accept_invite_code),
        )
        .route("/group/sendInvite/{instance}", post(group::send_invite))
        .route(
            "/group/revokeInviteCode/{instance}",
            post(group::revoke_invite_code),
        )
        .route(
            "/group/updateParticipant/{instance}",
            post(group::update_participant),
        )
        .route(
            "/group/updateSetting/{instance}",
            post(group::update_setting),
        )
        .route(
            "/group/toggleEphemeral/{instance}",
            post(group::toggle_ephemeral),
        )
        .route("/group/leaveGroup/{instance}", delete(group::leave_group));
    let guarded = bots::routes(guarded)
        .route_layer(from_fn_with_state(state.clone(), tenancy::charge))
        .route_layer(from_fn_with_state(state.clone(), guard::instance_guard));
    // The Evolution API, served at `/` (drop-in) and under `/v1/`.
    let evolution = Router::new()
        // create and fetchInstances have no `{instance}`: they run their own guard steps.
        .route("/instance/create", post(instance::create))
        .route("/instance/fetchInstances", get(instance::fetch_instances))
        .route_layer(from_fn_with_state(state.clone(), tenancy::charge))
        .merge(guarded);
    Router::new()
        .route("/", get(meta::welcome))
        .route("/v1/health", get(meta::health))
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/metrics", get(metrics::scrape))
        .route("/verify-creds", post(meta::verify_creds))
        .route("/admin/keys", get(admin::status))
        .route("/admin/keys/rotate", post(admin::rotate))
        .route(
            "/admin/plans",
            get(tenant_api::list_plans).post(tenant_api::create_plan),
        )
        .route("/admin/plans/{name}", put(tenant_api::update_plan))
        .route(
            "/admin/tenants",
            get(tenant_api::list_tenants).post(tenant_api::create_tenant),
        )
        .route(
            "/admin/tenants/{id}",
            get(tenant_api::get_tenant)
                .patch(tenant_api::patch_tenant)
                .delete(tenant_api::delete_tenant),
        )
        .route("/admin/tenants/{id}/keys", post(tenant_api::create_key))
        .route("/admin/tenants/{id}/users", post(tenant_api::create_user))
        .route(
            "/admin/tenants/{id}/keys/{key_id}",
            delete(tenant_api::delete_key),
        )
        .route("/v1/usage", get(tenant_api::usage))
        .route("/v1/billing", get(tenant_api::billing))
        .route("/v1/analytics/overview", get(tenant_api::overview))
        .route(
            tenant_api::INSTANCE_REPORT,
            get(tenant_api::instance_report),
        )
        .merge(evolution.clone())
        .nest("/v1", evolution)
        .fallback(envelope::not_found)
        .method_not_allowed_fallback(envelope::not_found)
        .layer(from_fn_with_state(state.clone(), tenancy::front))
        // The dashboard has its own sign-in: no API key, no quota charge, no usage line.
        // `SERVER_DISABLE_MANAGER=true` leaves it out, as Evolution leaves out its manager.
        .merge(if state.config.disable_manager {
            Router::new()
        } else {
            crate::dashboard::router(state.clone())
        })
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        // Outermost last: the origin check runs first, then the CORS layer answers preflights
        // for every path before routing.
        .layer(cors::layer(&state.config.cors))
        .layer(from_fn_with_state(
            state.clone(),
            cors::refuse_foreign_origin,
        ))
        // Outermost: every response, refusals included, gets its request id and is counted.
        .layer(axum::middleware::from_fn(observe::observe))
        .with_state(state)
}
