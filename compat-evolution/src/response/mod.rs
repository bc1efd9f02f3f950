//! Response bodies (§3, §4, §7, §13). Field order follows Evolution's output, since some clients
//! and golden tests compare raw text. Timestamps are passed in already formatted (ISO strings)
//! or as Unix seconds, as Evolution emits them.

mod bot;
mod config;
mod instance;
mod message;

pub use bot::{
    BotRecord, BotSettingsRecord, OrderedObject, SessionRecord, bot_row, default_settings,
    session_row, settings_row,
};
pub use config::{
    MarkAsReadResponse, PresenceResponse, SettingsRow, SettingsSetEcho, SettingsSetResponse,
    TransportRow, WebhookRow,
};
pub use instance::{
    ConnectResponse, ConnectionState, ConnectionStateBody, CreateInstanceResponse,
    CreateWebhookEcho, CreatedInstance, EnabledEcho, FetchInstanceRow, FetchSettingRow,
    InstanceCounts, InstanceState, InstanceStatusView, QrCode, QrImage, StatusResponse,
    StatusResponseMessage, disconnection_object,
};
pub use message::{
    FindMessagesPage, FindMessagesResponse, MessageKey, MessageRecord, MessageRow, MessageStatus,
    MessageUpdateStatus, OWN_PUSH_NAME, WhatsappNumberItem,
};

use serde::{Deserialize, Serialize};

/// The eight instance settings (§7), as returned by create and `/settings/find`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceSettings {
    pub reject_call: bool,
    pub msg_call: String,
    pub groups_ignore: bool,
    pub always_online: bool,
    pub read_messages: bool,
    pub read_status: bool,
    pub sync_full_history: bool,
    pub wavoip_token: String,
}
