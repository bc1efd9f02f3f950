//! Event names, keys and byEvents suffixes (contract §5.1), and subscription rules.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: a panic is a failure

use zapin_compat_evolution::events::SUBSCRIBABLE;
use zapin_compat_evolution::{EventName, EventSubscription};

#[test]
fn table_5_1() {
    let table: &[(EventName, &str, &str, &str)] = &[
        (
            EventName::ApplicationStartup,
            "application.startup",
            "APPLICATION_STARTUP",
            "application-startup",
        ),
        (
            EventName::InstanceCreate,
            "instance.create",
            "INSTANCE_CREATE",
            "instance-create",
        ),
        (
            EventName::InstanceDelete,
            "instance.delete",
            "INSTANCE_DELETE",
            "instance-delete",
        ),
        (
            EventName::QrcodeUpdated,
            "qrcode.updated",
            "QRCODE_UPDATED",
            "qrcode-updated",
        ),
        (
            EventName::ConnectionUpdate,
            "connection.update",
            "CONNECTION_UPDATE",
            "connection-update",
        ),
        (
            EventName::StatusInstance,
            "status.instance",
            "STATUS_INSTANCE",
            "status-instance",
        ),
        (
            EventName::MessagesSet,
            "messages.set",
            "MESSAGES_SET",
            "messages-set",
        ),
        (
            EventName::MessagesUpsert,
            "messages.upsert",
            "MESSAGES_UPSERT",
            "messages-upsert",
        ),
        (
            EventName::MessagesEdited,
            "messages.edited",
            "MESSAGES_EDITED",
            "messages-edited",
        ),
        (
            EventName::MessagesUpdate,
            "messages.update",
            "MESSAGES_UPDATE",
            "messages-update",
        ),
        (
            EventName::MessagesDelete,
            "messages.delete",
            "MESSAGES_DELETE",
            "messages-delete",
        ),
        (
            EventName::SendMessage,
            "send.message",
            "SEND_MESSAGE",
            "send-message",
        ),
        (
            EventName::SendMessageUpdate,
            "send.message.update",
            "SEND_MESSAGE_UPDATE",
            "send-message-update",
        ),
        (
            EventName::ContactsSet,
            "contacts.set",
            "CONTACTS_SET",
            "contacts-set",
        ),
        (
            EventName::ContactsUpsert,
            "contacts.upsert",
            "CONTACTS_UPSERT",
            "contacts-upsert",
        ),
        (
            EventName::ContactsUpdate,
            "contacts.update",
            "CONTACTS_UPDATE",
            "contacts-update",
        ),
        (
            EventName::PresenceUpdate,
            "presence.update",
            "PRESENCE_UPDATE",
            "presence-update",
        ),
        (EventName::ChatsSet, "chats.set", "CHATS_SET", "chats-set"),
        (
            EventName::ChatsUpsert,
            "chats.upsert",
            "CHATS_UPSERT",
            "chats-upsert",
        ),
        (
            EventName::ChatsUpdate,
            "chats.update",
            "CHATS_UPDATE",
            "chats-update",
        ),
        (
            EventName::ChatsDelete,
            "chats.delete",
            "CHATS_DELETE",
            "chats-delete",
        ),
        (
            EventName::GroupsUpsert,
            "groups.upsert",
            "GROUPS_UPSERT",
            "groups-upsert",
        ),
        (
            EventName::GroupsUpdate,
            "groups.update",
            "GROUPS_UPDATE",
            "groups-update",
        ),
        (
            EventName::GroupParticipantsUpdate,
            "group-participants.update",
            "GROUP_PARTICIPANTS_UPDATE",
            "group-participants-update",
        ),
        (EventName::Call, "call", "CALL", "call"),
        (
            EventName::TypebotStart,
            "typebot.start",
            "TYPEBOT_START",
            "typebot-start",
        ),
        (
            EventName::TypebotChangeStatus,
            "typebot.change-status",
            "TYPEBOT_CHANGE_STATUS",
            "typebot-change-status",
        ),
        (
            EventName::LabelsEdit,
            "labels.edit",
            "LABELS_EDIT",
            "labels-edit",
        ),
        (
            EventName::LabelsAssociation,
            "labels.association",
            "LABELS_ASSOCIATION",
            "labels-association",
        ),
        (
            EventName::RemoveInstance,
            "remove.instance",
            "REMOVE_INSTANCE",
            "remove-instance",
        ),
        (
            EventName::LogoutInstance,
            "logout.instance",
            "LOGOUT_INSTANCE",
            "logout-instance",
        ),
    ];
    assert_eq!(table.len(), EventName::ALL.len());
    for &(event, dotted, key, suffix) in table {
        assert_eq!(event.as_str(), dotted);
        assert_eq!(event.config_key(), key);
        // The documented derivation: upper-case, `.`/`-` → `_`.
        assert_eq!(dotted.to_ascii_uppercase().replace(['.', '-'], "_"), key);
        assert_eq!(event.by_events_suffix(), suffix);
        assert_eq!(EventName::from_dotted(dotted), Some(event));
        assert_eq!(EventName::from_key(key), Some(event));
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            format!("\"{dotted}\"")
        );
        assert_eq!(
            serde_json::from_str::<EventName>(&format!("\"{dotted}\"")).unwrap(),
            event
        );
        // Every event except groups.update is subscribable under its own key.
        assert!(SUBSCRIBABLE.contains(&event.subscription_key()), "{key}");
    }
    assert_eq!(EventName::GroupsUpdate.subscription_key(), "GROUP_UPDATE");
    assert_eq!(
        EventName::from_key("GROUP_UPDATE"),
        Some(EventName::GroupsUpdate)
    );
    assert_eq!(EventName::from_key("NOPE"), None);
    assert!(serde_json::from_str::<EventName>("\"nope\"").is_err());
}

#[test]
fn allow_list_has_31_distinct_names() {
    let mut names = SUBSCRIBABLE.to_vec();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 31);
    assert!(!SUBSCRIBABLE.contains(&"GROUPS_UPDATE"));
}

#[test]
fn subscription_rules() {
    assert_eq!(
        EventSubscription::from_request(true, Some(vec![]))
            .names()
            .len(),
        31
    );
    assert_eq!(
        EventSubscription::from_request(true, None).names().len(),
        31
    );
    assert!(
        EventSubscription::from_request(false, Some(vec!["CALL".into()]))
            .names()
            .is_empty()
    );
    let s = EventSubscription::from_request(true, Some(vec!["MESSAGES_UPSERT".into()]));
    assert!(s.includes(EventName::MessagesUpsert));
    assert!(!s.includes(EventName::MessagesUpdate));
    // groups.update is delivered for GROUP_UPDATE (the allow-list spelling) and GROUPS_UPDATE.
    for key in ["GROUP_UPDATE", "GROUPS_UPDATE"] {
        let s = EventSubscription::from_request(true, Some(vec![key.into()]));
        assert!(s.includes(EventName::GroupsUpdate), "{key}");
    }
    assert!(EventSubscription::all().includes(EventName::GroupsUpdate));
    assert_eq!(
        serde_json::to_string(&EventSubscription::from_request(
            true,
            Some(vec!["CALL".into()])
        ))
        .unwrap(),
        r#"["CALL"]"#
    );
}
