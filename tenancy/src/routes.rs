//! What each HTTP route costs: its quota type and weight, in one table.
//!
//! The table is data, not code spread over handlers: the gateway looks a request up by method and
//! matched route pattern ([`lookup`]), and its tests walk its router and check that every route
//! has an entry here ([`all`]). Parameter names inside `{}` do not matter (`{instance}` and
//! `{instanceName}` are the same route), and every Evolution route is also served under `/v1/`.
//!
//! Weights follow the product's pricing: media-bearing and interactive sends (`sendMedia`,
//! `sendPtv`, `sendWhatsAppAudio`, `sendPoll`, `sendList`, `sendButtons`) count 2 messages, every
//! other send (and `group/sendInvite`, which sends a message to each number) counts 1;
//! downloading media (`getBase64FromMediaMessage`) is a double `api_call`; creating an instance
//! or a bot counts against the `total` the plan allows, and deleting one gives its slot back
//! ([`RouteQuota::releases`]). Routes that are not charged: the unauthenticated utility routes,
//! the operator's admin API and a tenant's own usage, analytics and billing documents (so that
//! a tenant over its `api_call` quota can still see why).

use std::collections::HashMap;
use std::sync::LazyLock;

use crate::plan::QuotaType;

/// What one request on a route consumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    pub quota: QuotaType,
    pub weight: u32,
}

/// One route of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteQuota {
    /// Upper-case HTTP method.
    pub method: &'static str,
    /// The route pattern, Evolution's spelling, with `{}` parameters (`/chat/findMessages/{instance}`).
    pub path: String,
    /// `None`: not charged.
    pub cost: Option<Cost>,
    /// A successful request gives back one unit of this type's `total` window (a delete).
    pub releases: Option<QuotaType>,
}

use QuotaType::{ApiCall, BotCreate, InstanceCreate, InstanceDelete, MessageSend};

/// `(method, path, cost, releases)` of every route except the chatbot families.
type Row = (
    &'static str,
    &'static str,
    Option<(QuotaType, u32)>,
    Option<QuotaType>,
);

const API: Option<(QuotaType, u32)> = Some((ApiCall, 1));
const SEND1: Option<(QuotaType, u32)> = Some((MessageSend, 1));
const SEND2: Option<(QuotaType, u32)> = Some((MessageSend, 2));
const FREE: Option<(QuotaType, u32)> = None;

#[rustfmt::skip]
const ROWS: &[Row] = &[
    // Utility routes: no key (or the operator's), never charged.
    ("GET", "/", FREE, None),
    ("GET", "/v1/health", FREE, None),
    ("GET", "/health/live", FREE, None),
    ("GET", "/health/ready", FREE, None),
    ("GET", "/metrics", FREE, None),
    ("POST", "/verify-creds", FREE, None),
    ("GET", "/webhook/meta", FREE, None),
    ("POST", "/webhook/meta", FREE, None),
    ("POST", "/webhook/evolution", FREE, None),
    // Instances.
    ("POST", "/instance/create", Some((InstanceCreate, 1)), None),
    ("GET", "/instance/fetchInstances", API, None),
    ("POST", "/instance/restart/{instance}", API, None),
    ("PUT", "/instance/restart/{instance}", API, None),
    ("GET", "/instance/connect/{instance}", API, None),
    ("GET", "/instance/connectionState/{instance}", API, None),
    ("POST", "/instance/setPresence/{instance}", API, None),
    ("DELETE", "/instance/logout/{instance}", API, None),
    ("DELETE", "/instance/delete/{instance}", Some((InstanceDelete, 1)), Some(InstanceCreate)),
    // Messages.
    ("POST", "/message/sendText/{instance}", SEND1, None),
    ("POST", "/message/sendMedia/{instance}", SEND2, None),
    ("POST", "/message/sendPtv/{instance}", SEND2, None),
    ("POST", "/message/sendWhatsAppAudio/{instance}", SEND2, None),
    ("POST", "/message/sendStatus/{instance}", SEND1, None),
    ("POST", "/message/sendSticker/{instance}", SEND1, None),
    ("POST", "/message/sendLocation/{instance}", SEND1, None),
    ("POST", "/message/sendContact/{instance}", SEND1, None),
    ("POST", "/message/sendReaction/{instance}", SEND1, None),
    ("POST", "/message/sendPoll/{instance}", SEND2, None),
    ("POST", "/message/sendList/{instance}", SEND2, None),
    ("POST", "/message/sendButtons/{instance}", SEND2, None),
    ("POST", "/message/sendTemplate/{instance}", SEND1, None),
    ("POST", "/call/offer/{instance}", API, None),
    // Chats.
    ("POST", "/chat/whatsappNumbers/{instance}", API, None),
    ("POST", "/chat/markMessageAsRead/{instance}", API, None),
    ("POST", "/chat/archiveChat/{instance}", API, None),
    ("POST", "/chat/markChatUnread/{instance}", API, None),
    ("DELETE", "/chat/deleteMessageForEveryone/{instance}", API, None),
    ("POST", "/chat/fetchProfilePictureUrl/{instance}", API, None),
    ("POST", "/chat/getBase64FromMediaMessage/{instance}", Some((ApiCall, 2)), None),
    ("POST", "/chat/updateMessage/{instance}", API, None),
    ("POST", "/chat/sendPresence/{instance}", API, None),
    ("POST", "/chat/updateBlockStatus/{instance}", API, None),
    ("POST", "/chat/findContacts/{instance}", API, None),
    ("POST", "/chat/findMessages/{instance}", API, None),
    ("POST", "/chat/findStatusMessage/{instance}", API, None),
    ("POST", "/chat/findChats/{instance}", API, None),
    ("GET", "/chat/findChatByRemoteJid/{instance}", API, None),
    ("POST", "/chat/fetchBusinessProfile/{instance}", API, None),
    ("POST", "/chat/fetchProfile/{instance}", API, None),
    ("POST", "/chat/updateProfileName/{instance}", API, None),
    ("POST", "/chat/updateProfileStatus/{instance}", API, None),
    ("POST", "/chat/updateProfilePicture/{instance}", API, None),
    ("DELETE", "/chat/removeProfilePicture/{instance}", API, None),
    ("GET", "/chat/fetchPrivacySettings/{instance}", API, None),
    ("POST", "/chat/updatePrivacySettings/{instance}", API, None),
    // Business.
    ("POST", "/business/getCatalog/{instance}", API, None),
    ("POST", "/business/getCollections/{instance}", API, None),
    // Groups.
    ("POST", "/group/create/{instance}", API, None),
    ("POST", "/group/updateGroupSubject/{instance}", API, None),
    ("POST", "/group/updateGroupPicture/{instance}", API, None),
    ("POST", "/group/updateGroupDescription/{instance}", API, None),
    ("GET", "/group/findGroupInfos/{instance}", API, None),
    ("GET", "/group/fetchAllGroups/{instance}", API, None),
    ("GET", "/group/participants/{instance}", API, None),
    ("GET", "/group/inviteCode/{instance}", API, None),
    ("GET", "/group/inviteInfo/{instance}", API, None),
    ("GET", "/group/acceptInviteCode/{instance}", API, None),
    ("POST", "/group/sendInvite/{instance}", SEND1, None),
    ("POST", "/group/revokeInviteCode/{instance}", API, None),
    ("POST", "/group/updateParticipant/{instance}", API, None),
    ("POST", "/group/updateSetting/{instance}", API, None),
    ("POST", "/group/toggleEphemeral/{instance}", API, None),
    ("DELETE", "/group/leaveGroup/{instance}", API, None),
    // Meta templates, settings, proxy, labels.
    ("POST", "/template/create/{instance}", API, None),
    ("GET", "/template/find/{instance}", API, None),
    ("POST", "/settings/set/{instance}", API, None),
    ("GET", "/settings/find/{instance}", API, None),
    ("POST", "/proxy/set/{instance}", API, None),
    ("GET", "/proxy/find/{instance}", API, None),
    ("GET", "/label/findLabels/{instance}", API, None),
    ("POST", "/label/handleLabel/{instance}", API, None),
    // Low-level Baileys passthrough.
    ("POST", "/baileys/onWhatsapp/{instance}", API, None),
    ("POST", "/baileys/profilePictureUrl/{instance}", API, None),
    ("POST", "/baileys/assertSessions/{instance}", API, None),
    ("POST", "/baileys/createParticipantNodes/{instance}", API, None),
    ("POST", "/baileys/getUSyncDevices/{instance}", API, None),
    ("POST", "/baileys/generateMessageTag/{instance}", API, None),
    ("POST", "/baileys/sendNode/{instance}", API, None),
    ("POST", "/baileys/signalRepositoryDecryptMessage/{instance}", API, None),
    ("POST", "/baileys/getAuthState/{instance}", API, None),
    // Event transports.
    ("POST", "/webhook/set/{instance}", API, None),
    ("GET", "/webhook/find/{instance}", API, None),
    ("POST", "/websocket/set/{instance}", API, None),
    ("GET", "/websocket/find/{instance}", API, None),
    ("POST", "/rabbitmq/set/{instance}", API, None),
    ("GET", "/rabbitmq/find/{instance}", API, None),
    ("POST", "/nats/set/{instance}", API, None),
    ("GET", "/nats/find/{instance}", API, None),
    ("POST", "/sqs/set/{instance}", API, None),
    ("GET", "/sqs/find/{instance}", API, None),
    ("POST", "/kafka/set/{instance}", API, None),
    ("GET", "/kafka/find/{instance}", API, None),
    ("POST", "/pusher/set/{instance}", API, None),
    ("GET", "/pusher/find/{instance}", API, None),
    ("POST", "/chatwoot/set/{instance}", API, None),
    ("GET", "/chatwoot/find/{instance}", API, None),
    // Chatwoot's own callback carries no key; it is charged to the instance's tenant.
    ("POST", "/chatwoot/webhook/{instance}", API, None),
    // Bot extras (the generic verbs of every bot are in BOT_VERBS).
    ("POST", "/typebot/start/{instance}", API, None),
    ("POST", "/openai/creds/{instance}", API, None),
    ("GET", "/openai/creds/{instance}", API, None),
    ("DELETE", "/openai/creds/{}/{instance}", API, None),
    ("GET", "/openai/getModels/{instance}", API, None),
    // Media storage.
    ("POST", "/s3/getMedia/{instance}", API, None),
    ("POST", "/s3/getMediaUrl/{instance}", API, None),
    // zapin's own API: the tenant's documents (free) and the operator's admin API (free).
    ("GET", "/v1/usage", FREE, None),
    ("GET", "/v1/analytics/overview", FREE, None),
    ("GET", "/v1/analytics/instances/{instance}", FREE, None),
    ("GET", "/v1/analytics/bots/{}", FREE, None),
    ("GET", "/v1/billing", FREE, None),
    ("GET", "/admin/keys", FREE, None),
    ("POST", "/admin/keys/rotate", FREE, None),
    ("GET", "/admin/plans", FREE, None),
    ("POST", "/admin/plans", FREE, None),
    ("PUT", "/admin/plans/{}", FREE, None),
    ("GET", "/admin/tenants", FREE, None),
    ("POST", "/admin/tenants", FREE, None),
    ("GET", "/admin/tenants/{}", FREE, None),
    ("PATCH", "/admin/tenants/{}", FREE, None),
    ("DELETE", "/admin/tenants/{}", FREE, None),
    ("POST", "/admin/tenants/{}/keys", FREE, None),
    ("POST", "/admin/tenants/{}/users", FREE, None),
    ("DELETE", "/admin/tenants/{}/keys/{}", FREE, None),
];

/// Every chatbot family (each serves `BOT_VERBS` under `/{bot}/`).
pub const BOT_KINDS: &[&str] = &[
    "typebot",
    "openai",
    "dify",
    "flowise",
    "n8n",
    "evoai",
    "evolutionBot",
];

#[rustfmt::skip]
const BOT_VERBS: &[Row] = &[
    ("POST", "/create/{instance}", Some((BotCreate, 1)), None),
    ("GET", "/find/{instance}", API, None),
    ("GET", "/fetch/{}/{instance}", API, None),
    ("PUT", "/update/{}/{instance}", API, None),
    ("DELETE", "/delete/{}/{instance}", API, Some(BotCreate)),
    ("POST", "/settings/{instance}", API, None),
    ("GET", "/fetchSettings/{instance}", API, None),
    ("POST", "/changeStatus/{instance}", API, None),
    ("GET", "/fetchSessions/{}/{instance}", API, None),
    ("POST", "/ignoreJid/{instance}", API, None),
];

fn entry(method: &'static str, path: String, row: &Row) -> RouteQuota {
    RouteQuota {
        method,
        path,
        cost: row.2.map(|(quota, weight)| Cost { quota, weight }),
        releases: row.3,
    }
}

static TABLE: LazyLock<Vec<RouteQuota>> = LazyLock::new(|| {
    let mut all: Vec<RouteQuota> = ROWS
        .iter()
        .map(|row| entry(row.0, row.1.to_owned(), row))
        .collect();
    for bot in BOT_KINDS {
        for row in BOT_VERBS {
            all.push(entry(row.0, format!("/{bot}{}", row.1), row));
        }
    }
    all
});

static INDEX: LazyLock<HashMap<(&'static str, String), usize>> = LazyLock::new(|| {
    TABLE
        .iter()
        .enumerate()
        .map(|(i, r)| ((r.method, normalize(&r.path)), i))
        .collect()
});

/// The route pattern with every `{name}` segment written `{}`.
pub fn normalize(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    for (i, segment) in pattern.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if segment.starts_with('{') && segment.ends_with('}') {
            out.push_str("{}");
        } else {
            out.push_str(segment);
        }
    }
    out
}

/// Every route of the table.
pub fn all() -> &'static [RouteQuota] {
    &TABLE
}

/// The entry for `method` (any case) and a matched route pattern such as
/// `/message/sendText/{instance}` or `/v1/message/sendText/{instanceName}`.
pub fn lookup(method: &str, pattern: &str) -> Option<&'static RouteQuota> {
    let method = TABLE
        .iter()
        .map(|r| r.method)
        .find(|m| m.eq_ignore_ascii_case(method))?;
    let normalized = normalize(pattern);
    if let Some(&i) = INDEX.get(&(method, normalized.clone())) {
        return TABLE.get(i);
    }
    let stripped = normalized.strip_prefix("/v1")?;
    INDEX
        .get(&(method, stripped.to_owned()))
        .and_then(|&i| TABLE.get(i))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost(method: &str, path: &str) -> Option<(QuotaType, u32)> {
        lookup(method, path)
            .unwrap_or_else(|| panic!("{method} {path} has no entry"))
            .cost
            .map(|c| (c.quota, c.weight))
    }

    #[test]
    fn the_issue_weights() {
        for path in [
            "sendMedia",
            "sendPtv",
            "sendWhatsAppAudio",
            "sendPoll",
            "sendList",
            "sendButtons",
        ] {
            assert_eq!(
                cost("POST", &format!("/message/{path}/{{instance}}")),
                Some((MessageSend, 2)),
                "{path}"
            );
        }
        for path in [
            "sendText",
            "sendStatus",
            "sendSticker",
            "sendLocation",
            "sendContact",
            "sendReaction",
            "sendTemplate",
        ] {
            assert_eq!(
                cost("POST", &format!("/message/{path}/{{instance}}")),
                Some((MessageSend, 1)),
                "{path}"
            );
        }
        assert_eq!(
            cost("POST", "/group/sendInvite/{instance}"),
            Some((MessageSend, 1))
        );
        assert_eq!(
            cost("POST", "/chat/getBase64FromMediaMessage/{i}"),
            Some((ApiCall, 2))
        );
        assert_eq!(cost("POST", "/instance/create"), Some((InstanceCreate, 1)));
        assert_eq!(
            cost("DELETE", "/instance/delete/{instance}"),
            Some((InstanceDelete, 1))
        );
        assert_eq!(
            lookup("DELETE", "/instance/delete/{x}").unwrap().releases,
            Some(InstanceCreate)
        );
        for bot in BOT_KINDS {
            assert_eq!(
                cost("POST", &format!("/{bot}/create/{{instance}}")),
                Some((BotCreate, 1))
            );
            assert_eq!(
                lookup("DELETE", &format!("/{bot}/delete/{{botId}}/{{instance}}"))
                    .unwrap()
                    .releases,
                Some(BotCreate)
            );
        }
        assert_eq!(cost("GET", "/instance/fetchInstances"), Some((ApiCall, 1)));
        assert_eq!(cost("GET", "/v1/usage"), None);
        assert_eq!(cost("GET", "/"), None);
    }

    #[test]
    fn lookup_ignores_parameter_names_method_case_and_the_v1_prefix() {
        let a = lookup("post", "/v1/message/sendText/{instanceName}").unwrap();
        assert_eq!(a.path, "/message/sendText/{instance}");
        assert_eq!(
            lookup("GET", "/v1/health").unwrap().path,
            "/v1/health",
            "zapin's own /v1 routes are found as they are"
        );
        assert!(lookup("GET", "/message/sendText/{instance}").is_none());
        assert!(lookup("BREW", "/message/sendText/{instance}").is_none());
        assert!(lookup("POST", "/message/nope/{instance}").is_none());
        assert!(lookup("POST", "/v1/v1/message/sendText/{i}").is_none());
    }

    #[test]
    fn the_table_has_no_duplicates_and_covers_the_catalogue() {
        assert_eq!(INDEX.len(), TABLE.len(), "a (method, path) appears twice");
        // 177 Evolution handlers + the utility and zapin routes; at least the catalogue.
        assert!(TABLE.len() >= 177, "{}", TABLE.len());
        for r in all() {
            if let Some(c) = r.cost {
                assert!(c.weight >= 1, "{} {}", r.method, r.path);
            }
        }
    }
}
