//! zapin's group types in Evolution's JSON: Baileys' `GroupMetadata` (group/create, inviteInfo,
//! `groups.upsert`), Evolution's group info (findGroupInfos, fetchAllGroups), and the payloads
//! of `groups.update` and `group-participants.update`. Keys Baileys leaves `undefined` are left
//! out, as `JSON.stringify` leaves them out.

use serde_json::{Map, Value, json};
use zapin_compat_evolution::events::EventName;
use zapin_engine::messaging::group_admin::{GroupDetails, GroupMember};
use zapin_engine::messaging::groups::GroupUpdate;

fn put<T: Into<Value>>(m: &mut Map<String, Value>, key: &str, value: Option<T>) {
    if let Some(v) = value {
        m.insert(key.to_owned(), v.into());
    }
}

/// One participant as Baileys lists it: `{id, admin}`, plus `lid` / `phoneNumber` when the
/// server told the other namespace.
pub fn participant_json(p: &GroupMember) -> Value {
    let mut m = Map::new();
    m.insert("id".to_owned(), p.jid.to_string().into());
    put(
        &mut m,
        "phoneNumber",
        p.phone_number.as_ref().map(|j| j.to_string()),
    );
    put(&mut m, "lid", p.lid.as_ref().map(|j| j.to_string()));
    m.insert(
        "admin".to_owned(),
        p.admin.clone().map_or(Value::Null, Value::String),
    );
    Value::Object(m)
}

/// Baileys' `GroupMetadata`.
pub fn metadata_json(g: &GroupDetails) -> Value {
    let mut m = Map::new();
    m.insert("id".to_owned(), g.group_jid().to_string().into());
    m.insert(
        "addressingMode".to_owned(),
        (if g.lid_mode { "lid" } else { "pn" }).into(),
    );
    m.insert("subject".to_owned(), g.subject.clone().into());
    put(
        &mut m,
        "subjectOwner",
        g.subject_owner.as_ref().map(|j| j.to_string()),
    );
    put(&mut m, "subjectTime", g.subject_time);
    m.insert("size".to_owned(), g.size.into());
    put(&mut m, "creation", g.creation);
    put(&mut m, "owner", g.owner.as_ref().map(|j| j.to_string()));
    put(&mut m, "desc", g.desc.clone());
    put(&mut m, "descId", g.desc_id.clone());
    put(
        &mut m,
        "descOwner",
        g.desc_owner.as_ref().map(|j| j.to_string()),
    );
    put(&mut m, "descTime", g.desc_time);
    put(&mut m, "linkedParent", g.linked_parent.clone());
    m.insert("restrict".to_owned(), g.restrict.into());
    m.insert("announce".to_owned(), g.announce.into());
    m.insert("isCommunity".to_owned(), g.is_community.into());
    m.insert(
        "isCommunityAnnounce".to_owned(),
        g.is_community_announce.into(),
    );
    m.insert("joinApprovalMode".to_owned(), false.into());
    m.insert("memberAddMode".to_owned(), false.into());
    m.insert(
        "participants".to_owned(),
        g.participants.iter().map(participant_json).collect(),
    );
    put(&mut m, "ephemeralDuration", g.ephemeral);
    Value::Object(m)
}

/// Evolution's group info (findGroupInfos; fetchAllGroups with participants only on request).
/// `pictureUrl` is `null`: group picture URLs are not fetched yet (Evolution also answers
/// `null` when the fetch fails).
pub fn info_json(g: &GroupDetails, with_participants: bool) -> Value {
    let mut m = Map::new();
    m.insert("id".to_owned(), g.group_jid().to_string().into());
    m.insert("subject".to_owned(), g.subject.clone().into());
    put(
        &mut m,
        "subjectOwner",
        g.subject_owner.as_ref().map(|j| j.to_string()),
    );
    put(&mut m, "subjectTime", g.subject_time);
    m.insert("pictureUrl".to_owned(), Value::Null);
    m.insert("size".to_owned(), g.participants.len().into());
    put(&mut m, "creation", g.creation);
    put(&mut m, "owner", g.owner.as_ref().map(|j| j.to_string()));
    put(&mut m, "desc", g.desc.clone());
    put(&mut m, "descId", g.desc_id.clone());
    m.insert("restrict".to_owned(), g.restrict.into());
    m.insert("announce".to_owned(), g.announce.into());
    if with_participants {
        m.insert(
            "participants".to_owned(),
            g.participants.iter().map(participant_json).collect(),
        );
    }
    m.insert("isCommunity".to_owned(), g.is_community.into());
    m.insert(
        "isCommunityAnnounce".to_owned(),
        g.is_community_announce.into(),
    );
    put(&mut m, "linkedParent", g.linked_parent.clone());
    Value::Object(m)
}

/// The phone number of a PN JID (`participantsData[].phoneNumber`).
fn phone_of(jid: &str) -> Option<String> {
    jid.strip_suffix("@s.whatsapp.net")
        .map(|u| u.split(':').next().unwrap_or(u).to_owned())
}

/// The webhook event a group notification becomes, as Baileys emits it and Evolution forwards
/// it; `None` for changes Evolution does not report as a group event (the ephemeral timer
/// arrives as a protocol message, a picture change as `contacts.update`).
pub fn event_for(update: &GroupUpdate) -> Option<(EventName, Value)> {
    let id = update.group.clone();
    let author = update.author.clone();
    let partial = |fields: Value| {
        let mut m = Map::new();
        m.insert("id".to_owned(), id.clone().into());
        if let Value::Object(f) = fields {
            m.extend(f);
        }
        put(&mut m, "author", author.clone());
        (
            EventName::GroupsUpdate,
            Value::Array(vec![Value::Object(m)]),
        )
    };
    Some(match update.action.as_str() {
        "create" => {
            let mut meta = match &update.metadata {
                Some(g) => metadata_json(g),
                None => json!({"id": id, "subject": update.subject}),
            };
            if let (Value::Object(m), Some(a)) = (&mut meta, &author) {
                m.insert("author".to_owned(), a.clone().into());
            }
            (EventName::GroupsUpsert, Value::Array(vec![meta]))
        }
        action @ ("add" | "remove" | "promote" | "demote" | "leave") => {
            let data: Vec<Value> = update
                .participants
                .iter()
                .map(|p| {
                    let mut m = Map::new();
                    m.insert("jid".to_owned(), p.clone().into());
                    put(&mut m, "phoneNumber", phone_of(p));
                    Value::Object(m)
                })
                .collect();
            let mut m = Map::new();
            m.insert("id".to_owned(), id.into());
            put(&mut m, "author", author);
            m.insert(
                "participants".to_owned(),
                update.participants.clone().into(),
            );
            m.insert("action".to_owned(), action.into());
            m.insert("participantsData".to_owned(), data.into());
            (EventName::GroupParticipantsUpdate, Value::Object(m))
        }
        "subject" => partial(json!({"subject": update.subject})),
        "description" => {
            let mut f = Map::new();
            f.insert(
                "desc".to_owned(),
                update
                    .description
                    .clone()
                    .map_or(Value::Null, Value::String),
            );
            put(&mut f, "descId", update.description_id.clone());
            partial(Value::Object(f))
        }
        "announcement" => partial(json!({"announce": true})),
        "not_announcement" => partial(json!({"announce": false})),
        "locked" => partial(json!({"restrict": true})),
        "unlocked" => partial(json!({"restrict": false})),
        "invite" => partial(json!({"inviteCode": update.invite_code})),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn participant_changes_become_group_participants_update() {
        let u = GroupUpdate {
            group: "120363000000000001@g.us".into(),
            action: "add".into(),
            participants: vec!["15550000002@s.whatsapp.net".into()],
            author: Some("15550000001@s.whatsapp.net".into()),
            ..GroupUpdate::default()
        };
        let (event, data) = event_for(&u).unwrap();
        assert_eq!(event, EventName::GroupParticipantsUpdate);
        assert_eq!(
            data,
            json!({
                "id": "120363000000000001@g.us",
                "author": "15550000001@s.whatsapp.net",
                "participants": ["15550000002@s.whatsapp.net"],
                "action": "add",
                "participantsData": [{"jid": "15550000002@s.whatsapp.net", "phoneNumber": "15550000002"}]
            })
        );
        let subject = GroupUpdate {
            action: "subject".into(),
            subject: Some("New".into()),
            ..u.clone()
        };
        let (event, data) = event_for(&subject).unwrap();
        assert_eq!(event, EventName::GroupsUpdate);
        assert_eq!(
            data,
            json!([{"id": "120363000000000001@g.us", "subject": "New", "author": "15550000001@s.whatsapp.net"}])
        );
        let eph = GroupUpdate {
            action: "ephemeral".into(),
            ..u
        };
        assert!(event_for(&eph).is_none());
    }
}
