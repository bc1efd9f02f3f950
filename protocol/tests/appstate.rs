//! App-state sync against the known answers of `tests/vectors/appstate/vectors.json` (computed
//! by an independent Python implementation of the published scheme), plus round trips: our own
//! patches verify, tampering is caught and leaves the state as it was, removals undo sets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use prost::Message as _;
use serde_json::Value;
use zapin_protocol::appstate::{
    AppStateError, CollectionState, LtHash, Mutation, MutationKeys, decode_record, encode_mutation,
    index_mac, patch_mac, snapshot_mac, value_mac,
};
use zapin_protocol::proto::wa::sync_action_value::{ArchiveChatAction, ContactAction};
use zapin_protocol::proto::wa::syncd_mutation::SyncdOperation;
use zapin_protocol::proto::wa::{SyncActionData, SyncActionValue};

fn vectors() -> Value {
    serde_json::from_str(include_str!("../../tests/vectors/appstate/vectors.json")).unwrap()
}

fn hex_of(v: &Value, k: &str) -> Vec<u8> {
    hex::decode(v[k].as_str().unwrap()).unwrap()
}

fn contact_mutation(v: &Value) -> Mutation {
    Mutation {
        operation: SyncdOperation::Set,
        index: serde_json::from_str(v["index_json"].as_str().unwrap()).unwrap(),
        value: SyncActionValue {
            timestamp: Some(v["timestamp"].as_i64().unwrap()),
            contact_action: Some(ContactAction {
                full_name: Some(v["full_name"].as_str().unwrap().to_owned()),
                ..Default::default()
            }),
            ..Default::default()
        },
        version: i32::try_from(v["action_version"].as_i64().unwrap()).unwrap(),
    }
}

#[test]
fn known_answers() {
    let v = vectors();
    let keys = MutationKeys::expand(&hex_of(&v, "key_data"));
    let k = &v["keys"];
    assert_eq!(keys.index.to_vec(), hex_of(k, "index"));
    assert_eq!(
        keys.value_encryption.to_vec(),
        hex_of(k, "value_encryption")
    );
    assert_eq!(keys.value_mac.to_vec(), hex_of(k, "value_mac"));
    assert_eq!(keys.snapshot_mac.to_vec(), hex_of(k, "snapshot_mac"));
    assert_eq!(keys.patch_mac.to_vec(), hex_of(k, "patch_mac"));

    let m = contact_mutation(&v);
    // The protobuf bytes of SyncActionData are the vector's.
    let data = SyncActionData {
        index: Some(v["index_json"].as_str().unwrap().as_bytes().to_vec()),
        value: Some(m.value.clone()),
        padding: Some(Vec::new()),
        version: Some(m.version),
    };
    assert_eq!(data.encode_to_vec(), hex_of(&v, "sync_action_data"));

    let key_id = hex_of(&v, "key_id");
    let iv: [u8; 16] = hex_of(&v, "iv").try_into().unwrap();
    let (mutation, vmac) = encode_mutation(&m, &key_id, &keys, iv);
    assert_eq!(vmac.to_vec(), hex_of(&v, "value_mac"));
    let record = mutation.record.as_ref().unwrap();
    assert_eq!(
        record.value.as_ref().unwrap().blob.clone().unwrap(),
        hex_of(&v, "value_blob")
    );
    assert_eq!(
        record.index.as_ref().unwrap().blob.clone().unwrap(),
        hex_of(&v, "index_mac")
    );
    assert_eq!(
        index_mac(&keys, v["index_json"].as_str().unwrap().as_bytes()).to_vec(),
        hex_of(&v, "index_mac")
    );
    let blob = hex_of(&v, "value_blob");
    assert_eq!(
        value_mac(
            &keys,
            SyncdOperation::Set,
            &key_id,
            &blob[..blob.len() - 32]
        )
        .to_vec(),
        hex_of(&v, "value_mac")
    );

    // LT-hash: add, add another, subtract the first.
    let mut hash = LtHash::default();
    hash.add(&vmac);
    assert_eq!(hash.0.to_vec(), hex_of(&v, "lt_hash_after_set"));
    let other = hex_of(&v, "other_value_mac");
    hash.add(&other);
    assert_eq!(hash.0.to_vec(), hex_of(&v, "lt_hash_after_other"));
    hash.subtract(&vmac);
    assert_eq!(hash.0.to_vec(), hex_of(&v, "lt_hash_after_removing_first"));

    // Snapshot and patch MACs of the one-record collection at version 1.
    let name = v["collection"].as_str().unwrap();
    let version = v["patch_version"].as_u64().unwrap();
    let mut one = LtHash::default();
    one.add(&vmac);
    let smac = snapshot_mac(&keys, &one, version, name);
    assert_eq!(smac.to_vec(), hex_of(&v, "snapshot_mac"));
    assert_eq!(
        patch_mac(&keys, &smac, &[vmac], version, name).to_vec(),
        hex_of(&v, "patch_mac")
    );

    // Our patch for that mutation is byte for byte what the vectors say, and it applies.
    let mut ivs = std::iter::repeat(iv);
    let (patch, expected_state) = CollectionState::default().build_patch(
        name,
        std::slice::from_ref(&m),
        &key_id,
        &keys,
        &mut || ivs.next().unwrap(),
    );
    assert_eq!(
        patch.snapshot_mac.clone().unwrap(),
        hex_of(&v, "snapshot_mac")
    );
    assert_eq!(patch.patch_mac.clone().unwrap(), hex_of(&v, "patch_mac"));
    let lookup = |id: &[u8]| (id == key_id.as_slice()).then(|| keys.clone());
    let mut state = CollectionState::default();
    let decoded = state.apply_patch(name, &patch, &lookup).unwrap();
    assert_eq!(state, expected_state);
    assert_eq!(decoded.len(), 1);
    assert_eq!(decoded[0].mutation, m);
}

fn archive(jid: &str, archived: bool, op: SyncdOperation) -> Mutation {
    Mutation {
        operation: op,
        index: vec!["archive".into(), jid.into()],
        value: SyncActionValue {
            timestamp: Some(1_700_000_100),
            archive_chat_action: Some(ArchiveChatAction {
                archived: Some(archived),
                message_range: None,
            }),
            ..Default::default()
        },
        version: 3,
    }
}

#[test]
fn round_trips_tampering_and_removal() {
    let keys = MutationKeys::expand(&[7u8; 32]);
    let key_id = b"key-1".to_vec();
    let lookup = |id: &[u8]| (id == b"key-1").then(|| keys.clone());
    let name = "regular_low";
    let mut counter = 0u8;
    let mut iv = || {
        counter = counter.wrapping_add(1);
        [counter; 16]
    };
    let a = "15550000002@s.whatsapp.net";
    let b = "15550000003@s.whatsapp.net";

    // Device 1 writes two archives; device 2 applies them.
    let writer = CollectionState::default();
    let (p1, writer) = writer.build_patch(
        name,
        &[
            archive(a, true, SyncdOperation::Set),
            archive(b, true, SyncdOperation::Set),
        ],
        &key_id,
        &keys,
        &mut iv,
    );
    let mut reader = CollectionState::default();
    let got = reader.apply_patch(name, &p1, &lookup).unwrap();
    assert_eq!(reader, writer);
    assert_eq!(
        got[1].mutation.index,
        vec!["archive".to_owned(), b.to_owned()]
    );

    // An overwrite (unarchive a) and a removal (b) bring the hash back to a's new value alone.
    let (p2, writer) = writer.build_patch(
        name,
        &[
            archive(a, false, SyncdOperation::Set),
            archive(b, true, SyncdOperation::Remove),
        ],
        &key_id,
        &keys,
        &mut iv,
    );
    reader.apply_patch(name, &p2, &lookup).unwrap();
    assert_eq!(reader, writer);
    assert_eq!(reader.values.len(), 1);
    let mut alone = LtHash::default();
    alone.add(reader.values.values().next().unwrap());
    assert_eq!(reader.hash, alone);

    // A replayed patch, a flipped value byte, a wrong patch MAC, an unknown key: refused, state
    // unchanged.
    let before = reader.clone();
    assert!(matches!(
        reader.apply_patch(name, &p2, &lookup),
        Err(AppStateError::Version { .. })
    ));
    let (p3, _) = writer.build_patch(
        name,
        &[archive(a, true, SyncdOperation::Set)],
        &key_id,
        &keys,
        &mut iv,
    );
    let mut flipped = p3.clone();
    if let Some(blob) = flipped.mutations[0]
        .record
        .as_mut()
        .and_then(|r| r.value.as_mut())
        .and_then(|v| v.blob.as_mut())
    {
        blob[20] ^= 1;
    }
    assert_eq!(
        reader.apply_patch(name, &flipped, &lookup),
        Err(AppStateError::ValueMac)
    );
    let mut bad_mac = p3.clone();
    bad_mac.patch_mac = Some(vec![0; 32]);
    assert!(matches!(
        reader.apply_patch(name, &bad_mac, &lookup),
        Err(AppStateError::PatchMac(_))
    ));
    let mut other_name = CollectionState::clone(&reader);
    assert!(matches!(
        other_name.apply_patch("regular_high", &p3, &lookup),
        Err(AppStateError::SnapshotMac(_))
    ));
    let nobody = |_: &[u8]| None;
    assert!(matches!(
        reader.apply_patch(name, &p3, &nobody),
        Err(AppStateError::MissingKey(_))
    ));
    assert_eq!(reader, before);
    reader.apply_patch(name, &p3, &lookup).unwrap();

    // A snapshot (as a server builds it from a state and its records) rebuilds the same state
    // on a fresh device; the same records under another state's MAC do not verify.
    let (patch, served) = CollectionState::default().build_patch(
        name,
        &[
            archive(a, true, SyncdOperation::Set),
            archive(b, false, SyncdOperation::Set),
        ],
        &key_id,
        &keys,
        &mut iv,
    );
    let records: Vec<_> = patch
        .mutations
        .iter()
        .map(|m| m.record.clone().unwrap())
        .collect();
    let mut fresh = CollectionState::default();
    let decoded = fresh
        .apply_snapshot(
            name,
            &served.snapshot(name, records.clone(), &key_id, &keys),
            &lookup,
        )
        .unwrap();
    assert_eq!(fresh, served);
    assert_eq!(decoded[0].mutation.index[1], a);
    let mut other = CollectionState::default();
    assert!(matches!(
        other.apply_snapshot(
            name,
            &reader.snapshot(name, records, &key_id, &keys),
            &lookup
        ),
        Err(AppStateError::SnapshotMac(_))
    ));
    assert_eq!(other, CollectionState::default());

    // decode_record refuses junk without panicking.
    let junk = zapin_protocol::proto::wa::SyncdRecord::default();
    assert!(decode_record(SyncdOperation::Set, &junk, &lookup).is_err());
}
