//! Event names (contract §5.1) and the rules for `events` lists in webhook configs.

use serde::{Deserialize, Serialize};

macro_rules! event_names {
    ($( $variant:ident = $dotted:literal, $key:literal; )*) => {
        /// Every event Evolution can emit to event transports.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventName { $( $variant, )* }

        impl EventName {
            /// All events, in the order of Evolution's `Events` enum.
            pub const ALL: &'static [EventName] = &[ $( EventName::$variant, )* ];

            /// The `event` field of envelopes, e.g. `messages.upsert`.
            pub fn as_str(self) -> &'static str {
                match self { $( EventName::$variant => $dotted, )* }
            }

            /// The upper-case key (`events[]` entries, `WEBHOOK_EVENTS_<KEY>`): the dotted name
            /// upper-cased with `.` and `-` turned into `_`.
            pub fn config_key(self) -> &'static str {
                match self { $( EventName::$variant => $key, )* }
            }
        }
    };
}

event_names! {
    ApplicationStartup = "application.startup", "APPLICATION_STARTUP";
    InstanceCreate = "instance.create", "INSTANCE_CREATE";
    InstanceDelete = "instance.delete", "INSTANCE_DELETE";
    QrcodeUpdated = "qrcode.updated", "QRCODE_UPDATED";
    ConnectionUpdate = "connection.update", "CONNECTION_UPDATE";
    StatusInstance = "status.instance", "STATUS_INSTANCE";
    MessagesSet = "messages.set", "MESSAGES_SET";
    MessagesUpsert = "messages.upsert", "MESSAGES_UPSERT";
    MessagesEdited = "messages.edited", "MESSAGES_EDITED";
    MessagesUpdate = "messages.update", "MESSAGES_UPDATE";
    MessagesDelete = "messages.delete", "MESSAGES_DELETE";
    SendMessage = "send.message", "SEND_MESSAGE";
    SendMessageUpdate = "send.message.update", "SEND_MESSAGE_UPDATE";
    ContactsSet = "contacts.set", "CONTACTS_SET";
    ContactsUpsert = "contacts.upsert", "CONTACTS_UPSERT";
    ContactsUpdate = "contacts.update", "CONTACTS_UPDATE";
    PresenceUpdate = "presence.update", "PRESENCE_UPDATE";
    ChatsSet = "chats.set", "CHATS_SET";
    ChatsUpsert = "chats.upsert", "CHATS_UPSERT";
    ChatsUpdate = "chats.update", "CHATS_UPDATE";
    ChatsDelete = "chats.delete", "CHATS_DELETE";
    GroupsUpsert = "groups.upsert", "GROUPS_UPSERT";
    GroupsUpdate = "groups.update", "GROUPS_UPDATE";
    GroupParticipantsUpdate = "group-participants.update", "GROUP_PARTICIPANTS_UPDATE";
    Call = "call", "CALL";
    TypebotStart = "typebot.start", "TYPEBOT_START";
    TypebotChangeStatus = "typebot.change-status", "TYPEBOT_CHANGE_STATUS";
    LabelsEdit = "labels.edit", "LABELS_EDIT";
    LabelsAssociation = "labels.association", "LABELS_ASSOCIATION";
    RemoveInstance = "remove.instance", "REMOVE_INSTANCE";
    LogoutInstance = "logout.instance", "LOGOUT_INSTANCE";
}

/// The 31 names accepted in `events[]` by `/webhook/set` and the other `*/set` routes
/// (`EventController.events`), in Evolution's order. Validation errors list them in this order.
///
/// Note `GROUP_UPDATE`: Evolution's allow-list spells it without the S, while the config key of
/// `groups.update` is `GROUPS_UPDATE` (§5.1, §11 #7).
pub const SUBSCRIBABLE: [&str; 31] = [
    "APPLICATION_STARTUP",
    "QRCODE_UPDATED",
    "MESSAGES_SET",
    "MESSAGES_UPSERT",
    "MESSAGES_EDITED",
    "MESSAGES_UPDATE",
    "MESSAGES_DELETE",
    "SEND_MESSAGE",
    "SEND_MESSAGE_UPDATE",
    "CONTACTS_SET",
    "CONTACTS_UPSERT",
    "CONTACTS_UPDATE",
    "PRESENCE_UPDATE",
    "CHATS_SET",
    "CHATS_UPSERT",
    "CHATS_UPDATE",
    "CHATS_DELETE",
    "GROUPS_UPSERT",
    "GROUP_UPDATE",
    "GROUP_PARTICIPANTS_UPDATE",
    "CONNECTION_UPDATE",
    "LABELS_EDIT",
    "LABELS_ASSOCIATION",
    "CALL",
    "TYPEBOT_START",
    "TYPEBOT_CHANGE_STATUS",
    "REMOVE_INSTANCE",
    "LOGOUT_INSTANCE",
    "INSTANCE_CREATE",
    "INSTANCE_DELETE",
    "STATUS_INSTANCE",
];

impl EventName {
    /// The path suffix appended (after a `/`) to the webhook URL when `byEvents` is on: the config
    /// key lower-cased with `_` turned into `-`.
    pub fn by_events_suffix(self) -> String {
        self.config_key().to_ascii_lowercase().replace('_', "-")
    }

    /// The name this event is stored under in an `events[]` list: its config key, except
    /// `groups.update`, which Evolution's allow-list spells `GROUP_UPDATE`.
    pub fn subscription_key(self) -> &'static str {
        match self {
            EventName::GroupsUpdate => "GROUP_UPDATE",
            other => other.config_key(),
        }
    }

    /// Parses a dotted event string (`messages.upsert`).
    pub fn from_dotted(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|e| e.as_str() == s)
    }

    /// Parses an `events[]` entry or a config key. Both `GROUP_UPDATE` and `GROUPS_UPDATE` mean
    /// `groups.update`.
    pub fn from_key(s: &str) -> Option<Self> {
        if s == "GROUP_UPDATE" {
            return Some(EventName::GroupsUpdate);
        }
        Self::ALL.iter().copied().find(|e| e.config_key() == s)
    }
}

impl Serialize for EventName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::from_dotted(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown event {s:?}")))
    }
}

/// The `events` list a webhook row stores: upper-case allow-list names.
///
/// Evolution stores the list as given (names are already checked against [`SUBSCRIBABLE`]); an
/// empty list with `enabled: true` becomes the full allow-list, and `enabled: false` stores `[]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventSubscription(Vec<String>);

impl EventSubscription {
    /// Applies the storing rules of §5.1 to an already validated list.
    pub fn from_request(enabled: bool, events: Option<Vec<String>>) -> Self {
        if !enabled {
            return Self(Vec::new());
        }
        match events {
            Some(list) if !list.is_empty() => Self(list),
            // Missing `events` is a 500 (set) or 400 (create) in Evolution; zapin reads it as
            // "all events" as §11 #10 allows.
            _ => Self::all(),
        }
    }

    /// The full allow-list.
    pub fn all() -> Self {
        Self(SUBSCRIBABLE.iter().map(|s| (*s).to_owned()).collect())
    }

    pub fn names(&self) -> &[String] {
        &self.0
    }

    /// Whether an event is delivered under this subscription.
    ///
    /// Deviation (§11 #7): `groups.update` is delivered when either `GROUP_UPDATE` or
    /// `GROUPS_UPDATE` is listed; Evolution never delivers it to webhooks.
    pub fn includes(&self, event: EventName) -> bool {
        self.0.iter().any(|name| {
            name == event.config_key()
                || (event == EventName::GroupsUpdate && name == "GROUP_UPDATE")
        })
    }
}
