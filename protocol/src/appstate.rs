//! App-state sync ("syncd", wa-protocol.md §9.1–9.2) without I/O: the keys a 32-byte app-state
//! sync key expands to, the LT-hash that summarises a collection, the value, index, snapshot and
//! patch MACs, and the encoding and decoding of mutations. Both roles use it: a client (the
//! engine) verifies what the server sends and encodes its own changes; a server (the simulator)
//! checks what devices push.
//!
//! A collection's state is its version, its LT-hash and, for each record, the value MAC stored
//! under its index MAC ([`CollectionState`]). Applying a patch or snapshot updates the LT-hash
//! (subtracting the value a SET overwrites or a REMOVE deletes, adding each SET's) and then
//! checks the MACs the sender computed over the result; a mismatch leaves the state unchanged,
//! and a client recovers by asking for a snapshot.
//!
//! Randomness (the IV of each value) is passed in by the caller.

use std::collections::HashMap;

use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use hmac::{Hmac, KeyInit, Mac};
use prost::Message as _;
use sha2::{Sha256, Sha512};
use subtle::ConstantTimeEq;

use crate::proto::wa::{
    KeyId, SyncActionData, SyncActionValue, SyncdIndex, SyncdMutation, SyncdPatch, SyncdRecord,
    SyncdSnapshot, SyncdValue, SyncdVersion, syncd_mutation::SyncdOperation,
};

type HmacSha256 = Hmac<Sha256>;
type HmacSha512 = Hmac<Sha512>;

/// HKDF info of the mutation keys.
const MUTATION_KEYS_INFO: &[u8] = b"WhatsApp Mutation Keys";
/// HKDF info of the LT-hash expansion of a value MAC.
const PATCH_INTEGRITY_INFO: &[u8] = b"WhatsApp Patch Integrity";
/// Bytes of the LT-hash (64 little-endian u16 lanes).
pub const LT_HASH_LEN: usize = 128;
const IV_LEN: usize = 16;
const MAC_LEN: usize = 32;
const BLOCK: usize = 16;

/// The five collections WhatsApp syncs.
pub const COLLECTIONS: [&str; 5] = [
    "critical_block",
    "critical_unblock_low",
    "regular_high",
    "regular_low",
    "regular",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppStateError {
    #[error("no app-state key {0}")]
    MissingKey(String),
    #[error("malformed {0}")]
    Malformed(&'static str),
    #[error("the value MAC of a mutation does not match")]
    ValueMac,
    #[error("the index MAC of a mutation does not match its value")]
    IndexMac,
    #[error("the snapshot MAC does not match (version {0})")]
    SnapshotMac(u64),
    #[error("the patch MAC does not match (version {0})")]
    PatchMac(u64),
    #[error("bad padding in a mutation value")]
    Padding,
    #[error("patch version {got} does not follow {have}")]
    Version { have: u64, got: u64 },
}

/// The five keys one app-state sync key (32 bytes of `keyData`) expands to.
#[derive(Clone, PartialEq, Eq)]
pub struct MutationKeys {
    pub index: [u8; 32],
    pub value_encryption: [u8; 32],
    pub value_mac: [u8; 32],
    pub snapshot_mac: [u8; 32],
    pub patch_mac: [u8; 32],
}

impl std::fmt::Debug for MutationKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MutationKeys([redacted])")
    }
}

fn take32(okm: &[u8], at: usize) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&okm[at..at + 32]);
    out
}

impl MutationKeys {
    /// HKDF-SHA256(keyData, no salt, "WhatsApp Mutation Keys", 160), cut in five.
    pub fn expand(key_data: &[u8]) -> Self {
        let mut okm = [0u8; 160];
        // 160 bytes is far below HKDF-SHA256's limit (8160): expand cannot fail.
        let _ = hkdf::Hkdf::<Sha256>::new(None, key_data).expand(MUTATION_KEYS_INFO, &mut okm);
        Self {
            index: take32(&okm, 0),
            value_encryption: take32(&okm, 32),
            value_mac: take32(&okm, 64),
            snapshot_mac: take32(&okm, 96),
            patch_mac: take32(&okm, 128),
        }
    }
}

/// The LT-hash of a collection: a sum of the expanded value MACs of its records, lane by lane.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct LtHash(pub [u8; LT_HASH_LEN]);

impl Default for LtHash {
    fn default() -> Self {
        Self([0; LT_HASH_LEN])
    }
}

impl std::fmt::Debug for LtHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LtHash({})", hex::encode(self.0))
    }
}

fn expand_for_hash(value_mac: &[u8]) -> [u8; LT_HASH_LEN] {
    let mut okm = [0u8; LT_HASH_LEN];
    let _ = hkdf::Hkdf::<Sha256>::new(None, value_mac).expand(PATCH_INTEGRITY_INFO, &mut okm);
    okm
}

impl LtHash {
    fn combine(&mut self, value_mac: &[u8], add: bool) {
        let item = expand_for_hash(value_mac);
        for (lane, delta) in self.0.chunks_exact_mut(2).zip(item.chunks_exact(2)) {
            let a = u16::from_le_bytes([lane[0], lane[1]]);
            let b = u16::from_le_bytes([delta[0], delta[1]]);
            let r = if add {
                a.wrapping_add(b)
            } else {
                a.wrapping_sub(b)
            };
            lane.copy_from_slice(&r.to_le_bytes());
        }
    }

    pub fn add(&mut self, value_mac: &[u8]) {
        self.combine(value_mac, true);
    }

    pub fn subtract(&mut self, value_mac: &[u8]) {
        self.combine(value_mac, false);
    }
}

fn hmac256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// 0 for SET, 1 for REMOVE.
fn op_byte(op: SyncdOperation) -> u8 {
    match op {
        SyncdOperation::Set => 0,
        SyncdOperation::Remove => 1,
    }
}

/// The value MAC: HMAC-SHA512(valueMacKey, [op+1] ‖ keyID ‖ IV‖ciphertext ‖ u64BE(len(keyID)+1)),
/// first 32 bytes.
pub fn value_mac(
    keys: &MutationKeys,
    op: SyncdOperation,
    key_id: &[u8],
    iv_and_ciphertext: &[u8],
) -> [u8; 32] {
    let mut mac =
        <HmacSha512 as KeyInit>::new_from_slice(&keys.value_mac).unwrap_or_else(|_| unreachable!());
    mac.update(&[op_byte(op) + 1]);
    mac.update(key_id);
    mac.update(iv_and_ciphertext);
    mac.update(&(key_id.len() as u64 + 1).to_be_bytes());
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; 32];
    out.copy_from_slice(&full[..32]);
    out
}

/// The index MAC: HMAC-SHA256(indexKey, the index as JSON bytes).
pub fn index_mac(keys: &MutationKeys, index_json: &[u8]) -> [u8; 32] {
    hmac256(&keys.index, &[index_json])
}

/// HMAC-SHA256(snapshotMacKey, ltHash ‖ u64BE(version) ‖ name).
pub fn snapshot_mac(keys: &MutationKeys, hash: &LtHash, version: u64, name: &str) -> [u8; 32] {
    hmac256(
        &keys.snapshot_mac,
        &[&hash.0, &version.to_be_bytes(), name.as_bytes()],
    )
}

/// HMAC-SHA256(patchMacKey, snapshotMAC ‖ each mutation's valueMAC ‖ u64BE(version) ‖ name).
pub fn patch_mac(
    keys: &MutationKeys,
    snapshot_mac: &[u8],
    value_macs: &[[u8; 32]],
    version: u64,
    name: &str,
) -> [u8; 32] {
    let mut parts: Vec<&[u8]> = Vec::with_capacity(value_macs.len() + 3);
    parts.push(snapshot_mac);
    for m in value_macs {
        parts.push(m);
    }
    let v = version.to_be_bytes();
    parts.push(&v);
    parts.push(name.as_bytes());
    hmac256(&keys.patch_mac, &parts)
}

/// One mutation in the clear.
#[derive(Debug, Clone, PartialEq)]
pub struct Mutation {
    pub operation: SyncdOperation,
    /// The index, e.g. `["archive", "155…@s.whatsapp.net"]`.
    pub index: Vec<String>,
    pub value: SyncActionValue,
    /// The action's version (`SyncActionData.version`), per action kind.
    pub version: i32,
}

/// A mutation as decoded from the wire, with the MACs that identify it.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedMutation {
    pub mutation: Mutation,
    pub index_mac: [u8; 32],
    pub value_mac: [u8; 32],
    pub key_id: Vec<u8>,
}

fn cbc_encrypt(key: &[u8; 32], iv: &[u8; IV_LEN], plain: &[u8]) -> Vec<u8> {
    let pad = BLOCK - plain.len() % BLOCK;
    let mut buf = Vec::with_capacity(plain.len() + pad);
    buf.extend_from_slice(plain);
    buf.resize(plain.len() + pad, pad as u8);
    let (blocks, _) = aes::Block::slice_as_chunks_mut(&mut buf);
    cbc::Encryptor::<aes::Aes256>::new(key.into(), iv.into()).encrypt_blocks(blocks);
    buf
}

fn cbc_decrypt(key: &[u8; 32], iv: &[u8], ct: &[u8]) -> Result<Vec<u8>, AppStateError> {
    let iv: &[u8; IV_LEN] = iv
        .try_into()
        .map_err(|_| AppStateError::Malformed("value IV"))?;
    if ct.is_empty() || !ct.len().is_multiple_of(BLOCK) {
        return Err(AppStateError::Malformed("value ciphertext length"));
    }
    let mut buf = ct.to_vec();
    let (blocks, _) = aes::Block::slice_as_chunks_mut(&mut buf);
    cbc::Decryptor::<aes::Aes256>::new(key.into(), iv.into()).decrypt_blocks(blocks);
    let pad = usize::from(buf[buf.len() - 1]);
    let valid = (1..=BLOCK).contains(&pad)
        && buf[buf.len() - pad..]
            .iter()
            .all(|&b| usize::from(b) == pad);
    if !valid {
        return Err(AppStateError::Padding);
    }
    buf.truncate(buf.len() - pad);
    Ok(buf)
}

fn index_json(index: &[String]) -> Vec<u8> {
    serde_json::to_vec(index).unwrap_or_default()
}

/// Encrypts `m` under the key `key_id` (IV from the caller): the record and its value MAC.
pub fn encode_mutation(
    m: &Mutation,
    key_id: &[u8],
    keys: &MutationKeys,
    iv: [u8; IV_LEN],
) -> (SyncdMutation, [u8; 32]) {
    let index = index_json(&m.index);
    let data = SyncActionData {
        index: Some(index.clone()),
        value: Some(m.value.clone()),
        padding: Some(Vec::new()),
        version: Some(m.version),
    };
    let mut blob = iv.to_vec();
    blob.extend_from_slice(&cbc_encrypt(
        &keys.value_encryption,
        &iv,
        &data.encode_to_vec(),
    ));
    let vmac = value_mac(keys, m.operation, key_id, &blob);
    blob.extend_from_slice(&vmac);
    let record = SyncdRecord {
        index: Some(SyncdIndex {
            blob: Some(index_mac(keys, &index).to_vec()),
        }),
        value: Some(SyncdValue { blob: Some(blob) }),
        key_id: Some(KeyId {
            id: Some(key_id.to_vec()),
        }),
    };
    (
        SyncdMutation {
            operation: Some(m.operation as i32),
            record: Some(record),
        },
        vmac,
    )
}

/// Verifies and decrypts one record (`op` SET for snapshot records). `keys` finds the expanded
/// keys of a key id.
pub fn decode_record(
    op: SyncdOperation,
    record: &SyncdRecord,
    keys: &dyn Fn(&[u8]) -> Option<MutationKeys>,
) -> Result<DecodedMutation, AppStateError> {
    let key_id = record
        .key_id
        .as_ref()
        .and_then(|k| k.id.clone())
        .ok_or(AppStateError::Malformed("record key id"))?;
    let k = keys(&key_id).ok_or_else(|| AppStateError::MissingKey(hex::encode(&key_id)))?;
    let blob = record
        .value
        .as_ref()
        .and_then(|v| v.blob.as_deref())
        .ok_or(AppStateError::Malformed("record value"))?;
    if blob.len() < IV_LEN + MAC_LEN + BLOCK {
        return Err(AppStateError::Malformed("record value length"));
    }
    let (content, mac) = blob.split_at(blob.len() - MAC_LEN);
    let expected = value_mac(&k, op, &key_id, content);
    if !bool::from(expected.ct_eq(mac)) {
        return Err(AppStateError::ValueMac);
    }
    let (iv, ct) = content.split_at(IV_LEN);
    let plain = cbc_decrypt(&k.value_encryption, iv, ct)?;
    let data =
        SyncActionData::decode(plain.as_slice()).map_err(|_| AppStateError::Malformed("data"))?;
    let index_bytes = data.index.unwrap_or_default();
    let got_index = record
        .index
        .as_ref()
        .and_then(|i| i.blob.as_deref())
        .ok_or(AppStateError::Malformed("record index"))?;
    let imac = index_mac(&k, &index_bytes);
    if !bool::from(imac.ct_eq(got_index)) {
        return Err(AppStateError::IndexMac);
    }
    let index: Vec<String> =
        serde_json::from_slice(&index_bytes).map_err(|_| AppStateError::Malformed("index"))?;
    Ok(DecodedMutation {
        mutation: Mutation {
            operation: op,
            index,
            value: data.value.unwrap_or_default(),
            version: data.version.unwrap_or_default(),
        },
        index_mac: imac,
        value_mac: expected,
        key_id,
    })
}

/// What a device knows of one collection.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CollectionState {
    pub version: u64,
    pub hash: LtHash,
    /// Value MAC of each record, by index MAC.
    pub values: HashMap<[u8; 32], [u8; 32]>,
}

impl CollectionState {
    /// Folds mutations (index MAC, operation, value MAC) into the hash and the record map.
    fn fold(&mut self, changes: &[([u8; 32], SyncdOperation, [u8; 32])]) {
        for (imac, op, vmac) in changes {
            if let Some(previous) = self.values.remove(imac) {
                self.hash.subtract(&previous);
            }
            if *op == SyncdOperation::Set {
                self.hash.add(vmac);
                self.values.insert(*imac, *vmac);
            }
        }
    }

    /// Replaces the state with a snapshot after checking its MAC. Returns its records.
    pub fn apply_snapshot(
        &mut self,
        name: &str,
        snapshot: &SyncdSnapshot,
        keys: &dyn Fn(&[u8]) -> Option<MutationKeys>,
    ) -> Result<Vec<DecodedMutation>, AppStateError> {
        let version = snapshot
            .version
            .as_ref()
            .and_then(|v| v.version)
            .unwrap_or(0);
        let decoded = snapshot
            .records
            .iter()
            .map(|r| decode_record(SyncdOperation::Set, r, keys))
            .collect::<Result<Vec<_>, _>>()?;
        let mut next = CollectionState {
            version,
            ..Default::default()
        };
        let changes: Vec<_> = decoded
            .iter()
            .map(|d| (d.index_mac, SyncdOperation::Set, d.value_mac))
            .collect();
        next.fold(&changes);
        let key_id = snapshot
            .key_id
            .as_ref()
            .and_then(|k| k.id.clone())
            .ok_or(AppStateError::Malformed("snapshot key id"))?;
        let k = keys(&key_id).ok_or_else(|| AppStateError::MissingKey(hex::encode(&key_id)))?;
        let expected = snapshot_mac(&k, &next.hash, version, name);
        let got = snapshot.mac.as_deref().unwrap_or_default();
        if !bool::from(expected.ct_eq(got)) {
            return Err(AppStateError::SnapshotMac(version));
        }
        *self = next;
        Ok(decoded)
    }

    /// Applies the next patch after checking every MAC; on any failure the state is unchanged.
    pub fn apply_patch(
        &mut self,
        name: &str,
        patch: &SyncdPatch,
        keys: &dyn Fn(&[u8]) -> Option<MutationKeys>,
    ) -> Result<Vec<DecodedMutation>, AppStateError> {
        let version = patch
            .version
            .as_ref()
            .and_then(|v| v.version)
            .ok_or(AppStateError::Malformed("patch version"))?;
        if version <= self.version {
            return Err(AppStateError::Version {
                have: self.version,
                got: version,
            });
        }
        let mut decoded = Vec::with_capacity(patch.mutations.len());
        for m in &patch.mutations {
            let op = SyncdOperation::try_from(m.operation.unwrap_or(0))
                .map_err(|_| AppStateError::Malformed("operation"))?;
            let record = m
                .record
                .as_ref()
                .ok_or(AppStateError::Malformed("mutation record"))?;
            decoded.push(decode_record(op, record, keys)?);
        }
        let mut next = self.clone();
        next.version = version;
        let changes: Vec<_> = decoded
            .iter()
            .map(|d| (d.index_mac, d.mutation.operation, d.value_mac))
            .collect();
        next.fold(&changes);
        let key_id = patch
            .key_id
            .as_ref()
            .and_then(|k| k.id.clone())
            .ok_or(AppStateError::Malformed("patch key id"))?;
        let k = keys(&key_id).ok_or_else(|| AppStateError::MissingKey(hex::encode(&key_id)))?;
        let smac = snapshot_mac(&k, &next.hash, version, name);
        if !bool::from(smac.ct_eq(patch.snapshot_mac.as_deref().unwrap_or_default())) {
            return Err(AppStateError::SnapshotMac(version));
        }
        let vmacs: Vec<[u8; 32]> = decoded.iter().map(|d| d.value_mac).collect();
        let pmac = patch_mac(&k, &smac, &vmacs, version, name);
        if !bool::from(pmac.ct_eq(patch.patch_mac.as_deref().unwrap_or_default())) {
            return Err(AppStateError::PatchMac(version));
        }
        *self = next;
        Ok(decoded)
    }

    /// Encodes our own mutations as the next patch (version + 1) under key `key_id`, with one
    /// IV per mutation from `iv`. Returns the patch and the state it leads to; the caller keeps
    /// the new state once the server accepted the patch.
    pub fn build_patch(
        &self,
        name: &str,
        mutations: &[Mutation],
        key_id: &[u8],
        keys: &MutationKeys,
        iv: &mut dyn FnMut() -> [u8; IV_LEN],
    ) -> (SyncdPatch, CollectionState) {
        let version = self.version + 1;
        let mut next = self.clone();
        next.version = version;
        let mut encoded = Vec::with_capacity(mutations.len());
        let mut changes = Vec::with_capacity(mutations.len());
        let mut vmacs = Vec::with_capacity(mutations.len());
        for m in mutations {
            let (mutation, vmac) = encode_mutation(m, key_id, keys, iv());
            changes.push((index_mac(keys, &index_json(&m.index)), m.operation, vmac));
            vmacs.push(vmac);
            encoded.push(mutation);
        }
        next.fold(&changes);
        let smac = snapshot_mac(keys, &next.hash, version, name);
        let pmac = patch_mac(keys, &smac, &vmacs, version, name);
        let patch = SyncdPatch {
            version: Some(SyncdVersion {
                version: Some(version),
            }),
            mutations: encoded,
            external_mutations: None,
            snapshot_mac: Some(smac.to_vec()),
            patch_mac: Some(pmac.to_vec()),
            key_id: Some(KeyId {
                id: Some(key_id.to_vec()),
            }),
            device_index: None,
        };
        (patch, next)
    }

    /// A snapshot of this state's records (already encoded as `records`), as a server builds
    /// one to serve: the records and the MAC over this state's hash and version.
    pub fn snapshot(
        &self,
        name: &str,
        records: Vec<SyncdRecord>,
        key_id: &[u8],
        keys: &MutationKeys,
    ) -> SyncdSnapshot {
        SyncdSnapshot {
            version: Some(SyncdVersion {
                version: Some(self.version),
            }),
            records,
            mac: Some(snapshot_mac(keys, &self.hash, self.version, name).to_vec()),
            key_id: Some(KeyId {
                id: Some(key_id.to_vec()),
            }),
        }
    }
}
