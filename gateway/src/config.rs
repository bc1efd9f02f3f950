//! Runtime configuration read from environment variables.
//!
//! Evolution API's variable names are honoured where they exist so that a tenant's existing
//! environment keeps working (ARCHITECTURE principle 7); settings Evolution does not have are
//! `ZAPIN_*`. Parsing takes an explicit list of `(key, value)` pairs instead of reading the process
//! environment, so tests never mutate global state. An empty value counts as unset, as it does in
//! Evolution (`VAR=` lines in docker-compose files are common).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Evolution's built-in global key. It is public, so running with it is allowed (drop-in
/// behaviour) but `serve` warns about it.
pub const EVOLUTION_DEFAULT_API_KEY: &str = "BQYHJGJHJ";

/// WhatsApp's production WebSocket endpoint.
pub const DEFAULT_WA_WS_URL: &str = "wss://web.whatsapp.com/ws/chat";

/// WhatsApp's production Noise root public key (Curve25519), which signs the server certificates.
pub const DEFAULT_WA_ROOT_PUBKEY: &str =
    "142375574d0a587166aae71ebe516437c4a28b73e3695c6ce1f7f9545da8ee6b";

/// The WhatsApp Web client version zapin announces (ClientPayload `UserAgent.appVersion`).
pub const DEFAULT_WA_VERSION: &str = "2.3000.1045649367";

/// The `WEBHOOK_EVENTS_<NAME>` variables that select events for the global webhook (contract §8.1).
pub const WEBHOOK_EVENT_VARS: &[&str] = &[
    "WEBHOOK_EVENTS_APPLICATION_STARTUP",
    "WEBHOOK_EVENTS_INSTANCE_CREATE",
    "WEBHOOK_EVENTS_INSTANCE_DELETE",
    "WEBHOOK_EVENTS_QRCODE_UPDATED",
    "WEBHOOK_EVENTS_MESSAGES_SET",
    "WEBHOOK_EVENTS_MESSAGES_UPSERT",
    "WEBHOOK_EVENTS_MESSAGES_EDITED",
    "WEBHOOK_EVENTS_MESSAGES_UPDATE",
    "WEBHOOK_EVENTS_MESSAGES_DELETE",
    "WEBHOOK_EVENTS_SEND_MESSAGE",
    "WEBHOOK_EVENTS_SEND_MESSAGE_UPDATE",
    "WEBHOOK_EVENTS_CONTACTS_SET",
    "WEBHOOK_EVENTS_CONTACTS_UPSERT",
    "WEBHOOK_EVENTS_CONTACTS_UPDATE",
    "WEBHOOK_EVENTS_PRESENCE_UPDATE",
    "WEBHOOK_EVENTS_CHATS_SET",
    "WEBHOOK_EVENTS_CHATS_UPSERT",
    "WEBHOOK_EVENTS_CHATS_UPDATE",
    "WEBHOOK_EVENTS_CHATS_DELETE",
    "WEBHOOK_EVENTS_GROUPS_UPSERT",
    "WEBHOOK_EVENTS_GROUPS_UPDATE",
    "WEBHOOK_EVENTS_GROUP_UPDATE",
    "WEBHOOK_EVENTS_GROUP_PARTICIPANTS_UPDATE",
    "WEBHOOK_EVENTS_CONNECTION_UPDATE",
    "WEBHOOK_EVENTS_LABELS_EDIT",
    "WEBHOOK_EVENTS_LABELS_ASSOCIATION",
    "WEBHOOK_EVENTS_CALL",
    "WEBHOOK_EVENTS_TYPEBOT_START",
    "WEBHOOK_EVENTS_TYPEBOT_CHANGE_STATUS",
];

/// A configuration problem, naming the variable and what was wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{var}={value:?} is invalid: expected {expected}")]
    Invalid {
        var: &'static str,
        value: String,
        expected: &'static str,
    },
    /// Like `Invalid`, for secrets: the value is deliberately not kept.
    #[error("{var} is invalid (value not shown): expected {expected}")]
    InvalidSecret {
        var: &'static str,
        expected: &'static str,
    },
    #[error("{var}={value:?} is not supported by zapin: {reason}")]
    Unsupported {
        var: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("{var} is required because {because}")]
    Missing {
        var: &'static str,
        because: &'static str,
    },
    #[error("{var} is not valid UTF-8")]
    NotUnicode { var: String },
    /// A variable naming a file whose contents are unusable; `reason` says what failed.
    #[error("{var}: {reason}")]
    BadFile { var: &'static str, reason: String },
}

/// A secret string (API key). Its `Debug` never shows the value and it is wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(Zeroizing::new(value.into()))
    }

    /// The value itself, for the few places that must send or compare it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison, so that checking an `apikey` header leaks no timing.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        self.0.as_bytes().ct_eq(candidate).into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// The 32-byte key that protects secrets at rest (the signal store's type: one key for the whole
/// process).
pub use zapin_signal_store::MasterKey;
use zapin_signal_store::{KeySource, Keyring, SharedKeyring};

impl Config {
    /// Makes `master_key` the one key of the process: `ZAPIN_MASTER_KEY` when set, else the
    /// signal store's key file in `ZAPIN_DATA_DIR` (created, mode 0600, on first start). The
    /// signal store, instance tokens and webhook secrets then all use the same key, and a
    /// restart without `ZAPIN_MASTER_KEY` finds it again.
    ///
    /// The previous key of an unfinished rotation comes from `ZAPIN_MASTER_KEY_PREVIOUS`, else
    /// (key file only) from `master.key.previous` beside the key file. Both go into
    /// [`Config::keys`], the one keyring every cipher of the process shares. Idempotent.
    pub fn resolve_master_key(&mut self) -> Result<&MasterKey, zapin_signal_store::MasterKeyError> {
        if self.key_source.is_none() {
            let (current, source) = match self.master_key.take() {
                Some(key) => (key, KeySource::Env),
                None => {
                    let path = self.data_dir.join(zapin_signal_store::MASTER_KEY_FILE);
                    (
                        MasterKey::load_or_create_file(&path)?,
                        KeySource::File(path),
                    )
                }
            };
            let previous = match (&self.master_key_previous, source.previous_file()) {
                (Some(previous), _) => Some(previous.clone()),
                (None, Some(path)) => MasterKey::load_file(&path)?,
                (None, None) => None,
            };
            self.keys = Some(SharedKeyring::new(
                Keyring::new(current.clone()).with_previous(previous),
            ));
            self.master_key = Some(current);
            self.key_source = Some(source);
        }
        match &self.master_key {
            Some(key) => Ok(key),
            // Unreachable: set above. Load the file again rather than panic.
            None => Err(zapin_signal_store::MasterKeyError::Random),
        }
    }

    /// The keyring every cipher of the process shares: [`Config::keys`] when set (always after
    /// [`Config::resolve_master_key`]), else one built from `master_key` (`None` without a key).
    pub fn keyring(&self) -> Option<SharedKeyring> {
        self.keys.clone().or_else(|| {
            self.master_key.as_ref().map(|key| {
                SharedKeyring::new(
                    Keyring::new(key.clone()).with_previous(self.master_key_previous.clone()),
                )
            })
        })
    }
}

/// A connection URI whose password must not reach logs: `Debug` and `Display` hide it.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionUri(Zeroizing<String>);

impl ConnectionUri {
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URI with its password hidden: the `user:password@` part and any `password=` query
    /// parameter (libpq style). Errs on the side of hiding too much, since passwords are often
    /// written without percent-encoding and may contain `/`, `@` or `:`.
    pub fn redacted(&self) -> String {
        let uri: &str = &self.0;
        let (scheme, rest) = uri.split_once("://").unwrap_or(("", uri));
        let mut out = String::with_capacity(uri.len());
        if !scheme.is_empty() {
            out.push_str(scheme);
            out.push_str("://");
        }
        let rest = match rest.rfind('@') {
            Some(at) => match rest.get(..at).and_then(|userinfo| userinfo.find(':')) {
                Some(colon) => {
                    out.push_str(rest.get(..=colon).unwrap_or_default());
                    out.push_str("***");
                    rest.get(at..).unwrap_or_default()
                }
                None => rest,
            },
            None => rest,
        };
        let mut remaining = rest;
        while let Some(pos) = find_ascii_ci(remaining, "password=") {
            let value_start = pos + "password=".len();
            out.push_str(remaining.get(..value_start).unwrap_or_default());
            out.push_str("***");
            let tail = remaining.get(value_start..).unwrap_or_default();
            remaining = tail
                .find('&')
                .map_or("", |amp| tail.get(amp..).unwrap_or_default());
        }
        out.push_str(remaining);
        out
    }
}

/// Byte offset of `needle` (ASCII) in `haystack`, ignoring ASCII case.
fn find_ascii_ci(haystack: &str, needle: &str) -> Option<usize> {
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

impl fmt::Debug for ConnectionUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnectionUri({:?})", self.redacted())
    }
}

impl fmt::Display for ConnectionUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Where durable state lives (ARCHITECTURE principle 8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// No `DATABASE_CONNECTION_URI`: an embedded SQLite file under `ZAPIN_DATA_DIR`.
    EmbeddedSqlite,
    /// `sqlite:` URI given explicitly.
    Sqlite(ConnectionUri),
    /// `postgres://` or `postgresql://`.
    Postgres(ConnectionUri),
}

/// Log verbosity derived from Evolution's `LOG_LEVEL` comma list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// `CORS_METHODS` when unset (Evolution's default).
pub const DEFAULT_CORS_METHODS: &[&str] = &["POST", "GET", "PUT", "DELETE"];

/// Cross-origin access for browsers (Evolution's `CORS_*`, contract §1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    /// `CORS_ORIGIN` (default `*`): `None` lets every origin in; otherwise the origins allowed,
    /// lower-cased (`https://manager.example.com`, or `null` for pages that have no origin).
    pub origins: Option<Vec<String>>,
    /// `CORS_METHODS` (default `POST,GET,PUT,DELETE`): upper-cased, announced in preflights.
    pub methods: Vec<String>,
    /// `CORS_CREDENTIALS` (default `false`): browsers may send cookies and auth headers.
    pub credentials: bool,
}

/// Who may read `GET /metrics` (Evolution's `PROMETHEUS_METRICS` and `METRICS_*`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Metrics {
    /// `PROMETHEUS_METRICS` (default `false`): without it `/metrics` is an unknown route (404).
    pub enabled: bool,
    /// `METRICS_ALLOWED_IPS`: when set, only these peer addresses may scrape (others get 403).
    pub allowed_ips: Option<Vec<IpAddr>>,
    /// `METRICS_AUTH_REQUIRED` (default `false`): scrapes need Basic auth with `METRICS_USER`
    /// and `METRICS_PASSWORD`, or the `AUTHENTICATION_API_KEY` as `apikey`.
    pub auth_required: bool,
    /// `METRICS_USER`.
    pub user: Option<Secret>,
    /// `METRICS_PASSWORD`.
    pub password: Option<Secret>,
}

/// How log lines are written (`ZAPIN_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines (default).
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Everything `zapin serve` needs to know, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `ZAPIN_LISTEN_HOST` (default `0.0.0.0`).
    pub listen_host: IpAddr,
    /// `SERVER_PORT` (default 8080; 0 picks a free port).
    pub server_port: u16,
    /// `SERVER_URL`: public base URL used in `server_url` of events.
    pub server_url: Option<String>,
    /// `SERVER_DISABLE_MANAGER`: omit `manager` from `GET /`.
    pub disable_manager: bool,
    /// The chatbot integrations switched on (`N8N_ENABLED=true`, `TYPEBOT_ENABLED=true`, …, by
    /// variable name; all off by default, as in Evolution). Evolution Bot is always on.
    pub bots_enabled: BTreeSet<&'static str>,
    /// `OPENAI_BASE_URL` (default `https://api.openai.com/v1`, the variable OpenAI's SDKs read):
    /// where OpenAI bots and `/openai/getModels` call, so any server speaking OpenAI's API works.
    pub openai_base_url: String,
    /// `CORS_ORIGIN`, `CORS_METHODS`, `CORS_CREDENTIALS`: what browsers on other origins may do.
    pub cors: Cors,

    /// `AUTHENTICATION_API_KEY` (default Evolution's public `BQYHJGJHJ`).
    pub api_key: Secret,
    /// True when `AUTHENTICATION_API_KEY` was not set and the public default is in use.
    pub api_key_is_default: bool,
    /// `AUTHENTICATION_EXPOSE_IN_FETCH_INSTANCES`: put `apikey` in event envelopes.
    pub expose_api_key_in_events: bool,

    /// `DATABASE_CONNECTION_URI` (empty: embedded SQLite).
    pub database: Database,
    /// `DATABASE_CONNECTION_CLIENT_NAME` (default `evolution`): tenant partition, `clientName`.
    pub client_name: String,

    /// `CACHE_REDIS_URI` when Redis is in use (`CACHE_REDIS_ENABLED` defaults to "URI is set").
    pub redis: Option<ConnectionUri>,
    /// `CACHE_REDIS_PREFIX_KEY` (default `zapin`).
    pub redis_prefix: String,

    /// `CONFIG_SESSION_PHONE_CLIENT` (default `zapin`): browser name shown on the phone.
    pub phone_client: String,
    /// `CONFIG_SESSION_PHONE_NAME` (default `Chrome`).
    pub phone_name: String,
    /// `QRCODE_LIMIT` (default 30, at least 1): QR codes shown before giving up.
    pub qrcode_limit: u32,
    /// `ZAPIN_EVENT_BUFFER` (default 4096, at least 1): engine events held for the gateway before
    /// it falls behind. Falling behind loses no message (they wait in the engine's inbox and are
    /// stored from there), but costs their order and other events such as status updates.
    pub event_buffer: usize,
    /// `DEL_INSTANCE` (default `false`): minutes before an unconnected API-created instance is removed.
    pub del_instance_minutes: Option<u32>,
    /// `ZAPIN_SEND_RESEND_WINDOW_SECS` (default 300): how long after it was reserved a message
    /// the server never acknowledged (a crash, a broken connection) is still sent again under
    /// its id; older ones are marked failed (README, "Sending and crashes").
    pub send_resend_window: std::time::Duration,
    /// `ZAPIN_MEDIA_MAX_BYTES` (default 104857600, 100 MiB): the largest file a send route
    /// takes (URL, base64 or multipart). Files stream to a temporary file, so this bounds disk,
    /// not memory.
    pub media_max_bytes: u64,
    /// `ZAPIN_MEDIA_FETCH_TIMEOUT_SECS` (default 60): the longest a `media` URL fetch may take.
    pub media_fetch_timeout: std::time::Duration,
    /// `ZAPIN_ALLOW_PRIVATE_URLS` (default false): let `media` URLs reach loopback, private and
    /// link-local addresses (refused by default: a tenant must not make the server fetch from
    /// its own network).
    pub allow_private_urls: bool,

    /// `WEBHOOK_GLOBAL_ENABLED` + `WEBHOOK_GLOBAL_URL`: the global webhook, when enabled.
    pub webhook_global_url: Option<String>,
    /// `WEBHOOK_GLOBAL_WEBHOOK_BY_EVENTS`: append `/<event-name>` to the URL.
    pub webhook_global_by_events: bool,
    /// `WEBHOOK_EVENTS_<NAME>=true`: events sent to the global webhook.
    pub webhook_global_events: BTreeSet<&'static str>,
    /// `WEBHOOK_REQUEST_TIMEOUT_MS` (default 30000).
    pub webhook_request_timeout_ms: u64,
    /// `RABBITMQ_ENABLED=true` and the other `RABBITMQ_*` variables; `None` when disabled.
    pub rabbitmq: Option<zapin_events::amqp::AmqpRouting>,
    /// `NATS_ENABLED=true` and the other `NATS_*` variables; `None` when disabled.
    pub nats: Option<zapin_events::nats::NatsRouting>,
    /// `WEBHOOK_RETRY_MAX_ATTEMPTS` (default 10).
    pub webhook_retry_max_attempts: u32,
    /// `WEBHOOK_RETRY_INITIAL_DELAY_SECONDS` (default 5).
    pub webhook_retry_initial_delay_secs: u64,
    /// `WEBHOOK_RETRY_USE_EXPONENTIAL_BACKOFF` (default true).
    pub webhook_retry_exponential: bool,
    /// `WEBHOOK_RETRY_MAX_DELAY_SECONDS` (default 300).
    pub webhook_retry_max_delay_secs: u64,
    /// `WEBHOOK_RETRY_JITTER_FACTOR` (default 0.2, within 0..=1).
    pub webhook_retry_jitter: f64,
    /// `WEBHOOK_RETRY_NON_RETRYABLE_STATUS_CODES` (default `400,401,403,404,422`).
    pub webhook_non_retryable_status: BTreeSet<u16>,

    /// `LOG_LEVEL`: the most verbose level listed (default `ERROR,WARN,INFO,LOG` → info).
    pub log_level: LogLevel,
    /// `LOG_LEVEL` contains `WEBHOOKS`: log webhook payloads.
    pub log_webhooks: bool,
    /// `LOG_LEVEL` contains `WEBSOCKET`: log websocket payloads.
    pub log_websocket: bool,
    /// `ZAPIN_LOG_FORMAT` (`text` or `json`, default `text`).
    pub log_format: LogFormat,
    /// `GET /metrics` access.
    pub metrics: Metrics,

    /// `ZAPIN_DATA_DIR` (default `./data`): SQLite file, media, local state.
    pub data_dir: PathBuf,
    /// `ZAPIN_WA_WS_URL` (default WhatsApp's): point it at `zapin sim` for tests.
    pub wa_ws_url: String,
    /// `ZAPIN_WA_ROOT_PUBKEY` (default WhatsApp's): trusted root of the server certificate chain.
    pub wa_root_pubkey: [u8; 32],
    /// `ZAPIN_WA_TLS_CA_FILE` (default none): PEM CA certificates a `wss://` endpoint may chain
    /// to besides the public roots (a TLS-terminating proxy with a private CA). Read and checked
    /// here so a bad file stops startup.
    pub wa_tls: zapin_engine::TlsTrust,
    /// `ZAPIN_WA_VERSION` (default a recent WhatsApp Web version): announced client version.
    pub wa_version: [u32; 3],
    /// `ZAPIN_MASTER_KEY`: 32 bytes as 64 hex characters, protects secrets at rest. After
    /// [`Config::resolve_master_key`], the current key wherever it came from.
    pub master_key: Option<MasterKey>,
    /// `ZAPIN_MASTER_KEY_PREVIOUS`: the key a rotation replaced, accepted for reading only.
    pub master_key_previous: Option<MasterKey>,
    /// Where `master_key` came from (set by [`Config::resolve_master_key`]).
    pub key_source: Option<KeySource>,
    /// The keyring shared by the signal store, instance tokens and webhook secrets; replacing
    /// its keys (an online rotation) switches them all.
    pub keys: Option<SharedKeyring>,
}

impl Config {
    /// Parses the configuration from `(name, value)` pairs, e.g. `std::env::vars()`.
    pub fn from_env<I, K, V>(vars: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let env = Env {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            not_unicode: HashSet::new(),
        };
        Self::parse(&env)
    }

    /// Parses the process environment; a variable zapin reads that is not UTF-8 is an error.
    pub fn from_process_env() -> Result<Config, ConfigError> {
        let mut env = Env {
            vars: HashMap::new(),
            not_unicode: HashSet::new(),
        };
        for (key, value) in std::env::vars_os() {
            let Ok(key) = key.into_string() else { continue };
            match value.into_string() {
                Ok(value) => {
                    env.vars.insert(key, value);
                }
                Err(_) => {
                    env.not_unicode.insert(key);
                }
            }
        }
        Self::parse(&env)
    }

    fn parse(env: &Env) -> Result<Config, ConfigError> {
        let listen_host = match env.get("ZAPIN_LISTEN_HOST")? {
            None => IpAddr::from([0, 0, 0, 0]),
            Some(v) => v.parse().map_err(|_| {
                invalid(
                    "ZAPIN_LISTEN_HOST",
                    v,
                    "an IP address such as 0.0.0.0, 127.0.0.1 or ::",
                )
            })?,
        };
        let server_port = env.number("SERVER_PORT", 8080u16, "a TCP port number 0-65535")?;
        if let Some(v) = env.get("SERVER_TYPE")?
            && !v.eq_ignore_ascii_case("http")
        {
            return Err(ConfigError::Unsupported {
                var: "SERVER_TYPE",
                value: v.to_owned(),
                reason: "zapin serves plain http; terminate TLS in a reverse proxy",
            });
        }
        let server_url = env
            .get("SERVER_URL")?
            .map(|v| http_url("SERVER_URL", v))
            .transpose()?;
        let disable_manager = env.bool("SERVER_DISABLE_MANAGER", false)?;
        let openai_base_url = match env.get("OPENAI_BASE_URL")? {
            None => "https://api.openai.com/v1".to_owned(),
            Some(v) if has_host_after(v, &["http://", "https://"]) => {
                v.trim_end_matches('/').to_owned()
            }
            Some(v) => {
                return Err(invalid(
                    "OPENAI_BASE_URL",
                    v,
                    "an http:// or https:// URL such as https://api.openai.com/v1",
                ));
            }
        };
        let mut bots_enabled = BTreeSet::new();
        for var in BOT_SWITCHES {
            if env.bool(var, false)? {
                bots_enabled.insert(var);
            }
        }
        let cors = Cors {
            origins: match env.get("CORS_ORIGIN")? {
                None => None,
                Some(v) => cors_origins(v)?,
            },
            methods: match env.get("CORS_METHODS")? {
                None => DEFAULT_CORS_METHODS
                    .iter()
                    .map(|m| (*m).to_owned())
                    .collect(),
                Some(v) => cors_methods(v)?,
            },
            credentials: env.bool("CORS_CREDENTIALS", false)?,
        };

        let (api_key, api_key_is_default) = match env.get("AUTHENTICATION_API_KEY")? {
            None => (Secret::new(EVOLUTION_DEFAULT_API_KEY), true),
            Some(v) => {
                if v.chars().any(|c| c.is_control() || c.is_whitespace()) {
                    return Err(ConfigError::InvalidSecret {
                        var: "AUTHENTICATION_API_KEY",
                        expected: "a key without whitespace or control characters (it travels in the apikey header)",
                    });
                }
                (Secret::new(v), false)
            }
        };
        let expose_api_key_in_events =
            env.bool("AUTHENTICATION_EXPOSE_IN_FETCH_INSTANCES", false)?;

        if let Some(v) = env.get("DATABASE_PROVIDER")?
            && !(v == "postgresql" || v == "psql_bouncer")
        {
            return Err(ConfigError::Unsupported {
                var: "DATABASE_PROVIDER",
                value: v.to_owned(),
                reason: "zapin stores data in PostgreSQL (postgresql) or embedded SQLite",
            });
        }
        let database = match env.get("DATABASE_CONNECTION_URI")? {
            None => Database::EmbeddedSqlite,
            Some(v) => {
                let uri = ConnectionUri(Zeroizing::new(v.to_owned()));
                if v.starts_with("postgres://") || v.starts_with("postgresql://") {
                    Database::Postgres(uri)
                } else if v.starts_with("sqlite:") {
                    Database::Sqlite(uri)
                } else {
                    return Err(ConfigError::Invalid {
                        var: "DATABASE_CONNECTION_URI",
                        value: uri.redacted(),
                        expected: "a postgres://, postgresql:// or sqlite: URI (empty for the embedded SQLite file)",
                    });
                }
            }
        };
        let client_name = env.string("DATABASE_CONNECTION_CLIENT_NAME", "evolution")?;

        let redis_uri = match env.get("CACHE_REDIS_URI")? {
            None => None,
            Some(v) => {
                let uri = ConnectionUri(Zeroizing::new(v.to_owned()));
                if !(v.starts_with("redis://") || v.starts_with("rediss://")) {
                    return Err(ConfigError::Invalid {
                        var: "CACHE_REDIS_URI",
                        value: uri.redacted(),
                        expected: "a redis:// or rediss:// URI",
                    });
                }
                Some(uri)
            }
        };
        let redis = match (
            env.bool("CACHE_REDIS_ENABLED", redis_uri.is_some())?,
            redis_uri,
        ) {
            (true, Some(uri)) => Some(uri),
            (true, None) => {
                return Err(ConfigError::Missing {
                    var: "CACHE_REDIS_URI",
                    because: "CACHE_REDIS_ENABLED=true",
                });
            }
            (false, _) => None,
        };
        let redis_prefix = env.string("CACHE_REDIS_PREFIX_KEY", "zapin")?;

        let phone_client = env.string("CONFIG_SESSION_PHONE_CLIENT", "zapin")?;
        let phone_name = env.string("CONFIG_SESSION_PHONE_NAME", "Chrome")?;
        let qrcode_limit = env.number(
            "QRCODE_LIMIT",
            30u32,
            "a whole number of QR codes, at least 1",
        )?;
        if qrcode_limit == 0 {
            return Err(invalid(
                "QRCODE_LIMIT",
                "0",
                "a whole number of QR codes, at least 1",
            ));
        }
        let event_buffer = env.number(
            "ZAPIN_EVENT_BUFFER",
            4096usize,
            "a whole number of events, at least 1",
        )?;
        if event_buffer == 0 {
            return Err(invalid(
                "ZAPIN_EVENT_BUFFER",
                "0",
                "a whole number of events, at least 1",
            ));
        }
        let del_instance_minutes = match env.get("DEL_INSTANCE")? {
            None => None,
            Some(v) if v.eq_ignore_ascii_case("false") => None,
            Some(v) => match v.parse::<u32>() {
                Ok(minutes) if minutes > 0 => Some(minutes),
                _ => {
                    return Err(invalid(
                        "DEL_INSTANCE",
                        v,
                        "false or a number of minutes (at least 1)",
                    ));
                }
            },
        };

        let send_resend_window = std::time::Duration::from_secs(env.number(
            "ZAPIN_SEND_RESEND_WINDOW_SECS",
            300u64,
            "a whole number of seconds (0: never resend, mark failed)",
        )?);

        let media_max_bytes = env.number(
            "ZAPIN_MEDIA_MAX_BYTES",
            100u64 * 1024 * 1024,
            "a whole number of bytes",
        )?;
        let media_fetch_timeout = std::time::Duration::from_secs(env.number(
            "ZAPIN_MEDIA_FETCH_TIMEOUT_SECS",
            60u64,
            "a whole number of seconds",
        )?);
        let allow_private_urls = env.bool("ZAPIN_ALLOW_PRIVATE_URLS", false)?;

        let webhook_enabled = env.bool("WEBHOOK_GLOBAL_ENABLED", false)?;
        let webhook_url = env
            .get("WEBHOOK_GLOBAL_URL")?
            .map(|v| http_url("WEBHOOK_GLOBAL_URL", v))
            .transpose()?;
        let webhook_global_url = match (webhook_enabled, webhook_url) {
            (true, Some(url)) => Some(url),
            (true, None) => {
                return Err(ConfigError::Missing {
                    var: "WEBHOOK_GLOBAL_URL",
                    because: "WEBHOOK_GLOBAL_ENABLED=true",
                });
            }
            (false, _) => None,
        };
        let webhook_global_by_events = env.bool("WEBHOOK_GLOBAL_WEBHOOK_BY_EVENTS", false)?;
        let mut webhook_global_events = BTreeSet::new();
        for var in WEBHOOK_EVENT_VARS {
            if env.bool(var, false)? {
                let name = var.strip_prefix("WEBHOOK_EVENTS_").unwrap_or(var);
                webhook_global_events.insert(name);
            }
        }
        let lookup = |var: &str| env.get(var).ok().flatten().map(str::to_owned);
        let rabbitmq = zapin_events::amqp::AmqpRouting::from_env(&lookup);
        let nats = zapin_events::nats::NatsRouting::from_env(&lookup);
        let webhook_request_timeout_ms = env.number(
            "WEBHOOK_REQUEST_TIMEOUT_MS",
            30_000u64,
            "a whole number of milliseconds",
        )?;
        let webhook_retry_max_attempts = env.number(
            "WEBHOOK_RETRY_MAX_ATTEMPTS",
            10u32,
            "a whole number of attempts",
        )?;
        let webhook_retry_initial_delay_secs = env.number(
            "WEBHOOK_RETRY_INITIAL_DELAY_SECONDS",
            5u64,
            "a whole number of seconds",
        )?;
        let webhook_retry_exponential = env.bool("WEBHOOK_RETRY_USE_EXPONENTIAL_BACKOFF", true)?;
        let webhook_retry_max_delay_secs = env.number(
            "WEBHOOK_RETRY_MAX_DELAY_SECONDS",
            300u64,
            "a whole number of seconds",
        )?;
        let webhook_retry_jitter = match env.get("WEBHOOK_RETRY_JITTER_FACTOR")? {
            None => 0.2,
            Some(v) => match v.parse::<f64>() {
                Ok(f) if (0.0..=1.0).contains(&f) => f,
                _ => {
                    return Err(invalid(
                        "WEBHOOK_RETRY_JITTER_FACTOR",
                        v,
                        "a number between 0 and 1",
                    ));
                }
            },
        };
        let webhook_non_retryable_status =
            match env.get("WEBHOOK_RETRY_NON_RETRYABLE_STATUS_CODES")? {
                None => BTreeSet::from([400, 401, 403, 404, 422]),
                Some(v) => status_list("WEBHOOK_RETRY_NON_RETRYABLE_STATUS_CODES", v)?,
            };

        let log_format = match env.get("ZAPIN_LOG_FORMAT")? {
            None => LogFormat::Text,
            Some(v) if v.eq_ignore_ascii_case("text") => LogFormat::Text,
            Some(v) if v.eq_ignore_ascii_case("json") => LogFormat::Json,
            Some(v) => return Err(invalid("ZAPIN_LOG_FORMAT", v, "text or json")),
        };
        let metrics = Metrics {
            enabled: env.bool("PROMETHEUS_METRICS", false)?,
            allowed_ips: match env.get("METRICS_ALLOWED_IPS")? {
                None => None,
                Some(v) => metrics_allowed_ips(v)?,
            },
            auth_required: env.bool("METRICS_AUTH_REQUIRED", false)?,
            user: env
                .get("METRICS_USER")?
                .filter(|v| !v.is_empty())
                .map(Secret::new),
            password: env
                .get("METRICS_PASSWORD")?
                .filter(|v| !v.is_empty())
                .map(Secret::new),
        };
        let (log_level, log_webhooks, log_websocket) = match env.get("LOG_LEVEL")? {
            None => (LogLevel::Info, false, false),
            Some(v) => log_levels(v)?,
        };

        let data_dir = PathBuf::from(env.string("ZAPIN_DATA_DIR", "./data")?);
        let wa_ws_url = match env.get("ZAPIN_WA_WS_URL")? {
            None => DEFAULT_WA_WS_URL.to_owned(),
            Some(v) => {
                if !has_host_after(v, &["ws://", "wss://"]) {
                    return Err(invalid("ZAPIN_WA_WS_URL", v, "a ws:// or wss:// URL"));
                }
                v.to_owned()
            }
        };
        let wa_root_pubkey = match env.get("ZAPIN_WA_ROOT_PUBKEY")? {
            None => hex32(DEFAULT_WA_ROOT_PUBKEY).ok_or_else(|| {
                invalid(
                    "ZAPIN_WA_ROOT_PUBKEY",
                    DEFAULT_WA_ROOT_PUBKEY,
                    "64 hex characters",
                )
            })?,
            Some(v) => hex32(v).ok_or_else(|| {
                invalid(
                    "ZAPIN_WA_ROOT_PUBKEY",
                    v,
                    "64 hex characters (a 32-byte Curve25519 public key)",
                )
            })?,
        };
        let wa_tls = match env.get("ZAPIN_WA_TLS_CA_FILE")? {
            None => zapin_engine::TlsTrust::default(),
            Some(path) => zapin_engine::TlsTrust::with_ca_file(std::path::Path::new(path))
                .map_err(|e| ConfigError::BadFile {
                    var: "ZAPIN_WA_TLS_CA_FILE",
                    reason: e.to_string(),
                })?,
        };
        let wa_version = wa_version(env.get("ZAPIN_WA_VERSION")?.unwrap_or(DEFAULT_WA_VERSION))?;
        let master_key = master_key_var(env, "ZAPIN_MASTER_KEY")?;
        let master_key_previous = master_key_var(env, "ZAPIN_MASTER_KEY_PREVIOUS")?;
        let keys = master_key.as_ref().map(|key| {
            SharedKeyring::new(Keyring::new(key.clone()).with_previous(master_key_previous.clone()))
        });

        Ok(Config {
            listen_host,
            server_port,
            server_url,
            disable_manager,
            bots_enabled,
            openai_base_url,
            cors,
            api_key,
            api_key_is_default,
            expose_api_key_in_events,
            database,
            client_name,
            redis,
            redis_prefix,
            phone_client,
            phone_name,
            qrcode_limit,
            event_buffer,
            del_instance_minutes,
            send_resend_window,
            media_max_bytes,
            media_fetch_timeout,
            allow_private_urls,
            webhook_global_url,
            webhook_global_by_events,
            webhook_global_events,
            webhook_request_timeout_ms,
            rabbitmq,
            nats,
            webhook_retry_max_attempts,
            webhook_retry_initial_delay_secs,
            webhook_retry_exponential,
            webhook_retry_max_delay_secs,
            webhook_retry_jitter,
            webhook_non_retryable_status,
            log_level,
            log_webhooks,
            log_websocket,
            log_format,
            metrics,
            data_dir,
            wa_ws_url,
            wa_root_pubkey,
            wa_tls,
            wa_version,
            master_key,
            master_key_previous,
            key_source: None,
            keys,
        })
    }

    /// `ZAPIN_WA_VERSION` as text, e.g. `2.3000.1045649367` (also `whatsappWebVersion` of `GET /`).
    pub fn wa_version_string(&self) -> String {
        let [a, b, c] = self.wa_version;
        format!("{a}.{b}.{c}")
    }
}

/// The raw variables, with empty values treated as unset.
struct Env {
    vars: HashMap<String, String>,
    not_unicode: HashSet<String>,
}

impl Env {
    fn get(&self, var: &str) -> Result<Option<&str>, ConfigError> {
        if self.not_unicode.contains(var) {
            return Err(ConfigError::NotUnicode {
                var: var.to_owned(),
            });
        }
        Ok(self
            .vars
            .get(var)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty()))
    }

    fn string(&self, var: &'static str, default: &str) -> Result<String, ConfigError> {
        Ok(self.get(var)?.unwrap_or(default).to_owned())
    }

    fn bool(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(var)? {
            None => Ok(default),
            Some(v) => parse_bool(v).ok_or_else(|| invalid(var, v, "true or false")),
        }
    }

    fn number<T: std::str::FromStr>(
        &self,
        var: &'static str,
        default: T,
        expected: &'static str,
    ) -> Result<T, ConfigError> {
        match self.get(var)? {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| invalid(var, v, expected)),
        }
    }
}

fn invalid(var: &'static str, value: &str, expected: &'static str) -> ConfigError {
    ConfigError::Invalid {
        var,
        value: value.to_owned(),
        expected,
    }
}

/// `METRICS_ALLOWED_IPS`: a comma list of IP addresses; empty means no restriction.
fn metrics_allowed_ips(v: &str) -> Result<Option<Vec<IpAddr>>, ConfigError> {
    let mut ips = Vec::new();
    for entry in v.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let ip: IpAddr = entry.parse().map_err(|_| {
            invalid(
                "METRICS_ALLOWED_IPS",
                v,
                "a comma list of IP addresses such as 127.0.0.1,10.0.0.5",
            )
        })?;
        ips.push(ip.to_canonical());
    }
    Ok((!ips.is_empty()).then_some(ips))
}

/// The environment switches of Evolution's optional chatbot integrations.
pub const BOT_SWITCHES: [&str; 6] = [
    "TYPEBOT_ENABLED",
    "OPENAI_ENABLED",
    "DIFY_ENABLED",
    "N8N_ENABLED",
    "EVOAI_ENABLED",
    "FLOWISE_ENABLED",
];

fn parse_bool(v: &str) -> Option<bool> {
    if v.eq_ignore_ascii_case("true") {
        Some(true)
    } else if v.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

fn has_host_after(v: &str, schemes: &[&str]) -> bool {
    schemes.iter().any(|scheme| {
        v.get(..scheme.len())
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case(scheme))
            && v.get(scheme.len()..)
                .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
    }) && !v.chars().any(char::is_whitespace)
}

fn http_url(var: &'static str, v: &str) -> Result<String, ConfigError> {
    if has_host_after(v, &["http://", "https://"]) {
        Ok(v.to_owned())
    } else {
        Err(invalid(var, v, "an http:// or https:// URL"))
    }
}

/// `CORS_ORIGIN`: a comma list of `scheme://host[:port]` origins (or `null`); `*` anywhere means
/// any origin (`None`). An entry with a path or a trailing slash could never equal a browser's
/// `Origin` header, so it is refused here instead of silently locking browsers out.
fn cors_origins(v: &str) -> Result<Option<Vec<String>>, ConfigError> {
    const EXPECTED: &str = "* or a comma list of origins such as https://manager.example.com \
                            (scheme://host[:port], no path, no trailing slash)";
    let mut origins = Vec::new();
    for entry in v.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        if entry == "*" {
            return Ok(None);
        }
        let well_formed = entry == "null"
            || entry.split_once("://").is_some_and(|(scheme, authority)| {
                !scheme.is_empty()
                    && scheme
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
                    && !authority.is_empty()
                    && !authority.contains(['/', '?', '#', '@'])
            });
        if !well_formed || entry.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("CORS_ORIGIN", v, EXPECTED));
        }
        origins.push(entry.to_ascii_lowercase());
    }
    if origins.is_empty() {
        return Err(invalid("CORS_ORIGIN", v, EXPECTED));
    }
    Ok(Some(origins))
}

/// `CORS_METHODS`: a comma list of HTTP methods, upper-cased.
fn cors_methods(v: &str) -> Result<Vec<String>, ConfigError> {
    const EXPECTED: &str = "a comma list of HTTP methods such as POST,GET,PUT,DELETE";
    let methods: Vec<String> = v
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_ascii_uppercase)
        .collect();
    let token = |m: &String| {
        m.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    if methods.is_empty() || !methods.iter().all(token) {
        return Err(invalid("CORS_METHODS", v, EXPECTED));
    }
    Ok(methods)
}

fn master_key_var(env: &Env, var: &'static str) -> Result<Option<MasterKey>, ConfigError> {
    env.get(var)?
        .map(|v| {
            hex32(v)
                .map(MasterKey::from_bytes)
                .ok_or(ConfigError::InvalidSecret {
                    var,
                    expected: "64 hex characters (32 random bytes, e.g. `zapin keys generate` or `openssl rand -hex 32`)",
                })
        })
        .transpose()
}

fn hex32(v: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(v, &mut out).ok()?;
    Some(out)
}

fn wa_version(v: &str) -> Result<[u32; 3], ConfigError> {
    let err = || {
        invalid(
            "ZAPIN_WA_VERSION",
            v,
            "three dot-separated numbers, e.g. 2.3000.1045649367",
        )
    };
    let mut parts = v.split('.').map(|p| p.parse::<u32>());
    let version = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(Ok(a)), Some(Ok(b)), Some(Ok(c)), None) => [a, b, c],
        _ => return Err(err()),
    };
    Ok(version)
}

fn status_list(var: &'static str, v: &str) -> Result<BTreeSet<u16>, ConfigError> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| match s.parse::<u16>() {
            Ok(code) if (100..=599).contains(&code) => Ok(code),
            _ => Err(invalid(
                var,
                v,
                "a comma list of HTTP status codes (100-599)",
            )),
        })
        .collect()
}

/// Evolution's `LOG_LEVEL` is a set of categories; zapin logs at the most verbose one listed.
fn log_levels(v: &str) -> Result<(LogLevel, bool, bool), ConfigError> {
    const EXPECTED: &str =
        "a comma list of ERROR, WARN, INFO, LOG, DEBUG, VERBOSE, DARK, WEBHOOKS, WEBSOCKET";
    let mut level = LogLevel::Error;
    let mut webhooks = false;
    let mut websocket = false;
    for token in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let this = match token.to_ascii_uppercase().as_str() {
            "ERROR" => LogLevel::Error,
            "WARN" => LogLevel::Warn,
            "INFO" | "LOG" => LogLevel::Info,
            "DEBUG" | "VERBOSE" => LogLevel::Debug,
            "DARK" | "TRACE" => LogLevel::Trace,
            "WEBHOOKS" => {
                webhooks = true;
                continue;
            }
            "WEBSOCKET" => {
                websocket = true;
                continue;
            }
            _ => return Err(invalid("LOG_LEVEL", v, EXPECTED)),
        };
        level = level.max(this);
    }
    Ok((level, webhooks, websocket))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redact(uri: &str) -> String {
        ConnectionUri(Zeroizing::new(uri.to_owned())).redacted()
    }

    #[test]
    fn connection_uri_passwords_are_hidden() {
        let cases = [
            ("postgres://u:pw@db:5432/x", "postgres://u:***@db:5432/x"),
            ("postgres://u:p@ss/w:rd@db/x", "postgres://u:***@db/x"),
            ("redis://:pw@cache:6379", "redis://:***@cache:6379"),
            ("rediss://default:pw@cache", "rediss://default:***@cache"),
            (
                "postgres://db/x?user=u&password=pw&sslmode=require",
                "postgres://db/x?user=u&password=***&sslmode=require",
            ),
            (
                "postgres://db/x?PASSWORD=pw",
                "postgres://db/x?PASSWORD=***",
            ),
            ("postgres://u@db/x", "postgres://u@db/x"),
            ("postgres://db:5432/x", "postgres://db:5432/x"),
            ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
            ("sqlite:./data/zapin.db", "sqlite:./data/zapin.db"),
            ("", ""),
        ];
        for (uri, expected) in cases {
            assert_eq!(redact(uri), expected, "{uri}");
        }
    }

    #[test]
    fn redaction_handles_non_ascii_without_panicking() {
        assert_eq!(
            redact("postgres://ü:pä@db/ß?password=é&x=1"),
            "postgres://ü:***@db/ß?password=***&x=1"
        );
        assert_eq!(redact("postgres://password="), "postgres://password=***");
    }
}
