//! App-state sync on the server side (wa-protocol.md §9.2): each account's five collections, the
//! `w:sync:app:state` IQ, and `server_sync` notifications.
//!
//! A device asks for a collection from a version (or from nothing, when it has none) and gets
//! every patch after it; the simulator never builds snapshots, which WhatsApp clients accept (a
//! client without a snapshot applies the patches from version 0). A device pushes a patch for
//! the next version; the server checks its value, index, snapshot and patch MACs with the
//! account's app-state key ([`zapin_protocol::appstate`]) before storing it, answers 409 when the
//! device is behind, 400 when a MAC does not verify, and tells the account's other online
//! devices with `<notification type=server_sync>`.
//!
//! Each account has one app-state key, derived from the simulator's seed (control API
//! `GET /sim/accounts/{phone}/app-state` shows it). The phone does not hand it to companions yet
//! (no `APP_STATE_SYNC_KEY_SHARE`), so today only a holder of the key (a test) can write.
//! Collections live in memory: a restart of the simulator forgets them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use prost::Message as _;
use serde_json::{Value, json};
use zapin_protocol::appstate::{COLLECTIONS, CollectionState, DecodedMutation, MutationKeys};
use zapin_protocol::binary::Node;
use zapin_protocol::jid::Jid;
use zapin_protocol::proto::wa::SyncdPatch;
use zapin_protocol::proto::wa::syncd_mutation::SyncdOperation;

use crate::sim::Sim;
use crate::wire::iq::Asker;
use crate::wire::nodes::{iq_error, iq_result_with};

/// The id of every account's (single) app-state key.
pub const KEY_ID: [u8; 6] = [0, 0, 0, 0, 0, 1];

/// One collection: the verified state, every patch in order, and the current records decoded.
#[derive(Debug, Default)]
struct Collection {
    state: CollectionState,
    patches: Vec<SyncdPatch>,
    /// The live records by index MAC (what a snapshot would hold).
    records: BTreeMap<[u8; 32], DecodedMutation>,
}

/// Every account's collections.
#[derive(Debug, Default)]
pub struct AppStateStore {
    accounts: Mutex<HashMap<String, BTreeMap<String, Collection>>>,
}

impl AppStateStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, BTreeMap<String, Collection>>> {
        self.accounts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The account's app-state key data (32 bytes, from the seed).
pub fn key_data(sim: &Sim, phone: &str) -> [u8; 32] {
    sim.state()
        .key_source()
        .bytes(&format!("app-state-key/{phone}"))
}

fn keys_of(sim: &Sim, phone: &str) -> MutationKeys {
    MutationKeys::expand(&key_data(sim, phone))
}

/// What went wrong with one pushed patch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushError {
    /// The device is behind: it must fetch the patches it misses first.
    Conflict { have: u64 },
    /// A MAC does not verify, or the patch is malformed.
    Refused(String),
}

/// Verifies and stores `patch` as the next version of `name`. Returns the new version.
pub fn push(sim: &Sim, phone: &str, name: &str, patch: &SyncdPatch) -> Result<u64, PushError> {
    let keys = keys_of(sim, phone);
    let lookup = |id: &[u8]| (id == KEY_ID).then(|| keys.clone());
    let store = sim.app_state();
    let mut accounts = store.lock();
    let collection = accounts
        .entry(phone.to_owned())
        .or_default()
        .entry(name.to_owned())
        .or_default();
    let version = patch.version.as_ref().and_then(|v| v.version).unwrap_or(0);
    if version != collection.state.version + 1 {
        return Err(PushError::Conflict {
            have: collection.state.version,
        });
    }
    let decoded = collection
        .state
        .apply_patch(name, patch, &lookup)
        .map_err(|e| PushError::Refused(e.to_string()))?;
    for d in decoded {
        match d.mutation.operation {
            SyncdOperation::Set => {
                collection.records.insert(d.index_mac, d);
            }
            SyncdOperation::Remove => {
                collection.records.remove(&d.index_mac);
            }
        }
    }
    collection.patches.push(patch.clone());
    Ok(collection.state.version)
}

/// `<iq xmlns=w:sync:app:state type=set><sync><collection name [version] [return_snapshot]>
/// [<patch>B(SyncdPatch)</patch>]</collection>…</sync>`.
pub fn sync_iq(sim: &Sim, asker: &Asker<'_>, iq: &Node) -> Node {
    let Some(sync) = iq.child("sync") else {
        return iq_error(iq, 400, "bad-request");
    };
    let mut answers = Vec::new();
    let mut changed = Vec::new();
    for c in sync.children_by_tag("collection") {
        let Some(name) = c.attr_str("name").filter(|n| COLLECTIONS.contains(n)) else {
            return iq_error(iq, 400, "bad-request");
        };
        let out = Node::new("collection").attr("name", name.to_owned());
        if let Some(bytes) = c.child("patch").and_then(Node::content_bytes) {
            let Ok(patch) = SyncdPatch::decode(bytes.as_ref()) else {
                answers.push(collection_error(out, 400, "bad-request"));
                continue;
            };
            match push(sim, asker.phone, name, &patch) {
                Ok(version) => {
                    changed.push((name.to_owned(), version));
                    answers.push(out.attr("version", version.to_string()));
                }
                Err(PushError::Conflict { .. }) => {
                    answers.push(collection_error(out, 409, "conflict"));
                }
                Err(PushError::Refused(reason)) => {
                    tracing::info!(
                        phone = asker.phone,
                        collection = name,
                        "patch refused: {reason}"
                    );
                    answers.push(collection_error(out, 400, "bad-request"));
                }
            }
            continue;
        }
        let from: u64 = c
            .attr_str("version")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let (version, patches) = {
            let store = sim.app_state();
            let accounts = store.lock();
            match accounts.get(asker.phone).and_then(|a| a.get(name)) {
                Some(col) => (
                    col.state.version,
                    col.patches
                        .iter()
                        .filter(|p| p.version.as_ref().and_then(|v| v.version).unwrap_or(0) > from)
                        .map(|p| Node::new("patch").bytes(p.encode_to_vec()))
                        .collect::<Vec<_>>(),
                ),
                None => (0, Vec::new()),
            }
        };
        let mut out = out.attr("version", version.to_string());
        if !patches.is_empty() {
            out = out.children(vec![Node::new("patches").children(patches)]);
        }
        answers.push(out);
    }
    for (name, version) in changed {
        notify_others(sim, asker, &name, version);
    }
    iq_result_with(iq, vec![Node::new("sync").children(answers)])
}

fn collection_error(out: Node, code: u16, text: &'static str) -> Node {
    out.attr("type", "error").children(vec![
        Node::new("error")
            .attr("code", code.to_string())
            .attr("text", text),
    ])
}

/// `<notification type=server_sync><collection name version/></notification>` to the account's
/// other online devices.
fn notify_others(sim: &Sim, asker: &Asker<'_>, name: &str, version: u64) {
    let node = Node::new("notification")
        .attr("from", Jid::pn(asker.phone.to_owned()))
        .attr("type", "server_sync")
        .attr("id", format!("sync-{name}-{version}"))
        .attr("t", crate::router::now_secs().to_string())
        .children(vec![
            Node::new("collection")
                .attr("name", name.to_owned())
                .attr("version", version.to_string()),
        ]);
    for device in crate::router::devices_of(sim, asker.phone) {
        if device != 0
            && device != asker.device
            && sim
                .connections()
                .connection_of(asker.phone, device)
                .is_some()
        {
            crate::router::deliver(sim, asker.phone, u32::from(device), node.clone());
        }
    }
}

/// The control API's view: the key and each collection's version and live records.
pub fn view(sim: &Sim, phone: &str) -> Value {
    let store = sim.app_state();
    let accounts = store.lock();
    let collections: serde_json::Map<String, Value> = COLLECTIONS
        .iter()
        .map(|name| {
            let col = accounts.get(phone).and_then(|a| a.get(*name));
            let records: Vec<Value> = col
                .map(|c| c.records.values().map(record_json).collect())
                .unwrap_or_default();
            (
                (*name).to_owned(),
                json!({
                    "version": col.map_or(0, |c| c.state.version),
                    "records": records,
                }),
            )
        })
        .collect();
    json!({
        "key_id": hex::encode(KEY_ID),
        "key_data": hex::encode(key_data(sim, phone)),
        "collections": collections,
    })
}

/// One live record: its index and what its value says, for the actions zapin knows.
fn record_json(d: &DecodedMutation) -> Value {
    let v = &d.mutation.value;
    let mut out = json!({"index": d.mutation.index, "version": d.mutation.version});
    let actions = [
        (
            "archived",
            v.archive_chat_action.as_ref().and_then(|a| a.archived),
        ),
        (
            "read",
            v.mark_chat_as_read_action.as_ref().and_then(|a| a.read),
        ),
        ("muted", v.mute_action.as_ref().and_then(|a| a.muted)),
        ("pinned", v.pin_action.as_ref().and_then(|a| a.pinned)),
        ("starred", v.star_action.as_ref().and_then(|a| a.starred)),
        (
            "labeled",
            v.label_association_action.as_ref().and_then(|a| a.labeled),
        ),
    ];
    for (k, value) in actions {
        if let Some(b) = value {
            out[k] = json!(b);
        }
    }
    if let Some(c) = &v.contact_action {
        out["full_name"] = json!(c.full_name);
    }
    if let Some(p) = &v.push_name_setting {
        out["push_name"] = json!(p.name);
    }
    if let Some(l) = &v.label_edit_action {
        out["label"] = json!({"name": l.name, "color": l.color, "deleted": l.deleted});
    }
    if let Some(t) = v.timestamp {
        out["timestamp"] = json!(t);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use zapin_protocol::appstate::Mutation;
    use zapin_protocol::proto::wa::SyncActionValue;
    use zapin_protocol::proto::wa::sync_action_value::ArchiveChatAction;

    use super::*;
    use crate::config::SimConfig;
    use crate::state::SimState;

    fn archive(jid: &str, archived: bool) -> Mutation {
        Mutation {
            operation: SyncdOperation::Set,
            index: vec!["archive".into(), jid.into()],
            value: SyncActionValue {
                timestamp: Some(1),
                archive_chat_action: Some(ArchiveChatAction {
                    archived: Some(archived),
                    message_range: None,
                }),
                ..Default::default()
            },
            version: 3,
        }
    }

    fn sync_set(collection: Node) -> Node {
        Node::new("iq")
            .attr("id", "1")
            .attr("type", "set")
            .attr("xmlns", "w:sync:app:state")
            .children(vec![Node::new("sync").children(vec![collection])])
    }

    #[test]
    fn patches_are_verified_stored_and_served() {
        let config = SimConfig {
            seed: Some(5),
            ..SimConfig::default()
        };
        let sim = Sim::new(SimState::open(config.state_config()).unwrap(), config);
        let created = sim
            .state()
            .create_account(Some("15550000001".into()), None)
            .unwrap();
        let phone = created.phone;
        let asker = Asker {
            phone: &phone,
            device: 2,
        };
        let keys = MutationKeys::expand(&key_data(&sim, &phone));
        let name = "regular_low";
        let (patch, _) = CollectionState::default().build_patch(
            name,
            &[archive("15550000002@s.whatsapp.net", true)],
            &KEY_ID,
            &keys,
            &mut || [1; 16],
        );
        let push_iq = |p: &SyncdPatch| {
            sync_set(
                Node::new("collection")
                    .attr("name", name)
                    .attr("version", "0")
                    .children(vec![Node::new("patch").bytes(p.encode_to_vec())]),
            )
        };
        // A patch whose MAC does not verify is refused and changes nothing.
        let mut forged = patch.clone();
        forged.patch_mac = Some(vec![0; 32]);
        let answer = sync_iq(&sim, &asker, &push_iq(&forged));
        let col = answer.child("sync").unwrap().child("collection").unwrap();
        assert_eq!(col.attr_str("type"), Some("error"));
        assert_eq!(view(&sim, &phone)["collections"][name]["version"], 0);

        let answer = sync_iq(&sim, &asker, &push_iq(&patch));
        let col = answer.child("sync").unwrap().child("collection").unwrap();
        assert_eq!(col.attr_str("version"), Some("1"));
        let v = view(&sim, &phone);
        assert_eq!(v["collections"][name]["version"], 1);
        assert_eq!(v["collections"][name]["records"][0]["archived"], true);
        // The same version again is a conflict.
        let answer = sync_iq(&sim, &asker, &push_iq(&patch));
        let col = answer.child("sync").unwrap().child("collection").unwrap();
        assert_eq!(col.child("error").unwrap().attr_str("code"), Some("409"));

        // Another device fetches from nothing and rebuilds the same state.
        let fetch = sync_set(Node::new("collection").attr("name", name));
        let answer = sync_iq(&sim, &asker, &fetch);
        let col = answer.child("sync").unwrap().child("collection").unwrap();
        assert_eq!(col.attr_str("version"), Some("1"));
        let served: Vec<SyncdPatch> = col
            .child("patches")
            .unwrap()
            .children_by_tag("patch")
            .map(|p| SyncdPatch::decode(p.content_bytes().unwrap().as_ref()).unwrap())
            .collect();
        let lookup = |id: &[u8]| (id == KEY_ID).then(|| keys.clone());
        let mut device = CollectionState::default();
        for p in &served {
            device.apply_patch(name, p, &lookup).unwrap();
        }
        assert_eq!(device.version, 1);
        // From the current version: nothing more.
        let fetch = sync_set(
            Node::new("collection")
                .attr("name", name)
                .attr("version", "1"),
        );
        let answer = sync_iq(&sim, &asker, &fetch);
        assert!(
            answer
                .child("sync")
                .unwrap()
                .child("collection")
                .unwrap()
                .child("patches")
                .is_none()
        );
    }
}
