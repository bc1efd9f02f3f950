//! Engine configuration: where to connect, whom to trust, how to present ourselves, and the timers
//! (QR lifetimes, keepalive, backoff) that tests shrink to run fast against the simulator.

use std::time::Duration;

use zapin_protocol::crypto::PublicKey;
use zapin_protocol::noise::WHATSAPP_ROOT_PUBLIC_KEY;

use crate::backoff::BackoffPolicy;
use crate::tls::TlsTrust;

/// WhatsApp's production endpoint.
pub const WHATSAPP_WS_URL: &str = "wss://web.whatsapp.com/ws/chat";

/// How the companion presents itself: shown on the phone's "linked devices" list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserInfo {
    /// Operating system shown by the phone (`DeviceProps.os`), e.g. "Mac OS".
    pub os: String,
    /// Browser name: "Chrome", "Firefox", "Safari", "Edge", "Opera", "IE" or "Desktop".
    pub browser: String,
}

impl Default for BrowserInfo {
    fn default() -> Self {
        Self {
            os: "Mac OS".into(),
            browser: "Chrome".into(),
        }
    }
}

impl BrowserInfo {
    /// `DeviceProps.platformType` (§3.1).
    pub fn platform_type(&self) -> i32 {
        match self.browser.as_str() {
            "Chrome" => 1,
            "Firefox" => 2,
            "IE" => 3,
            "Opera" => 4,
            "Safari" => 5,
            "Edge" => 6,
            "Desktop" => 7,
            _ => 0,
        }
    }

    /// The one-character platform id of the QR string's field 5 and of `companion_platform_id`
    /// (§5.2): what the phone uses to pick an icon.
    pub fn platform_id(&self) -> char {
        match self.browser.as_str() {
            "Chrome" => '1',
            "Edge" => '2',
            "Firefox" => '3',
            "IE" => '4',
            "Opera" => '5',
            "Safari" => '6',
            "Desktop" => '7',
            _ => '9',
        }
    }

    /// "Chrome (Mac OS)", the `companion_platform_display` of phone-code pairing.
    pub fn display(&self) -> String {
        format!("{} ({})", self.browser, self.os)
    }
}

/// Everything the engine needs besides the store. Cheap to clone; shared by every session.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// WebSocket URL, `wss://` (rustls) or `ws://` (the simulator).
    pub ws_url: String,
    /// Certificate authorities a `wss://` server may chain to: `webpki-roots` plus any extra CA
    /// (`ZAPIN_WA_TLS_CA_FILE` in the gateway, for a TLS-terminating proxy or tests).
    pub tls: TlsTrust,
    /// Root of the server certificate chain (the simulator has its own).
    pub trust_root: PublicKey,
    pub browser: BrowserInfo,
    /// WhatsApp Web version announced in the UserAgent, `[primary, secondary, tertiary]`.
    pub version: [u32; 3],
    /// How long the first QR code of a `pair-device` is shown (WhatsApp: 60 s).
    pub qr_first_ttl: Duration,
    /// How long each next QR code is shown (WhatsApp: 20 s).
    pub qr_ttl: Duration,
    /// QR codes shown before giving up with `Refused` (Evolution's `QRCODE_LIMIT`, default 30).
    pub qrcode_limit: u32,
    /// Ping interval (§10.3).
    pub keepalive_interval: Duration,
    /// Added to the interval: no inbound frame for `interval + timeout` means the socket is dead.
    pub keepalive_timeout: Duration,
    /// Limit for the WebSocket connect plus the Noise handshake.
    pub connect_timeout: Duration,
    /// How long an IQ the session waits on (prekeys, pairing code) may stay unanswered.
    pub iq_timeout: Duration,
    pub backoff: BackoffPolicy,
    /// One-time prekeys uploaded when the server has none (WhatsApp clients: 812).
    pub prekey_initial_batch: u32,
    /// One-time prekeys uploaded on a refill.
    pub prekey_refill_batch: u32,
    /// Refill when the server holds fewer than this many.
    pub prekey_min: u64,
    /// Bounded command queue per session.
    pub command_buffer: usize,
    /// Capacity of the shared event broadcast; a subscriber that lags further loses events.
    pub event_buffer: usize,
    /// At most this many sessions run the WebSocket connect + Noise handshake at once across the
    /// manager (0 = no limit). Bounds the CPU spike when thousands reconnect together (after a
    /// server-wide disconnect); waiting for a slot does not count against `connect_timeout`.
    pub max_concurrent_handshakes: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            ws_url: WHATSAPP_WS_URL.into(),
            tls: TlsTrust::default(),
            trust_root: WHATSAPP_ROOT_PUBLIC_KEY,
            browser: BrowserInfo::default(),
            version: [2, 3000, 1_029_030_078],
            qr_first_ttl: Duration::from_secs(60),
            qr_ttl: Duration::from_secs(20),
            qrcode_limit: 30,
            keepalive_interval: Duration::from_secs(25),
            keepalive_timeout: Duration::from_secs(20),
            connect_timeout: Duration::from_secs(20),
            iq_timeout: Duration::from_secs(30),
            backoff: BackoffPolicy::default(),
            prekey_initial_batch: 812,
            prekey_refill_batch: 50,
            prekey_min: 5,
            command_buffer: 32,
            event_buffer: 4096,
            max_concurrent_handshakes: 0,
        }
    }
}

impl EngineConfig {
    /// The version string whose MD5 is the registration's `buildHash`.
    pub fn version_string(&self) -> String {
        let [a, b, c] = self.version;
        format!("{a}.{b}.{c}")
    }
}
