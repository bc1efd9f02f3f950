//! In-memory backend for tests: the same rows as the SQL tables (secrets sealed too), behind one
//! mutex. Every method completes under the lock, so each call, batches included, is atomic.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use crate::error::StoreError;
use crate::rows::{DeviceRow, IdentityRow, InboxRow, PreKeyRow, RowOp, SignedPreKeyRow};

#[derive(Debug)]
struct DeviceData {
    device: DeviceRow,
    max_prekey_id: Option<i64>,
    signed_prekeys: BTreeMap<i64, SignedPreKeyRow>,
    prekeys: BTreeMap<i64, PreKeyRow>,
    identities: BTreeMap<(String, i64), IdentityRow>,
    sessions: BTreeMap<(String, i64), Vec<u8>>,
    sender_keys: BTreeMap<(String, String, i64), Vec<u8>>,
    /// In arrival order.
    inbox: Vec<InboxRow>,
}

#[derive(Debug, Default)]
pub(crate) struct MemoryBackend {
    devices: Mutex<BTreeMap<String, DeviceData>>,
}

impl MemoryBackend {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, DeviceData>> {
        // A panic while holding the lock cannot leave a half-applied write (every mutation below
        // is a single map operation or is validated first), so a poisoned lock is still usable.
        self.devices.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with_device<T>(
        &self,
        owner: &str,
        f: impl FnOnce(&mut DeviceData) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut devices = self.lock();
        match devices.get_mut(owner) {
            Some(d) => f(d),
            None => Err(StoreError::UnknownDevice(owner.to_owned())),
        }
    }

    fn read_device<T>(&self, owner: &str, f: impl FnOnce(&DeviceData) -> T) -> Option<T> {
        self.lock().get(owner).map(f)
    }

    pub async fn insert_device(
        &self,
        owner: &str,
        device: &DeviceRow,
        spk: &SignedPreKeyRow,
    ) -> Result<(), StoreError> {
        let mut devices = self.lock();
        if devices.contains_key(owner) {
            return Err(StoreError::DeviceExists(owner.to_owned()));
        }
        let mut signed_prekeys = BTreeMap::new();
        signed_prekeys.insert(spk.id, spk.clone());
        devices.insert(
            owner.to_owned(),
            DeviceData {
                device: device.clone(),
                max_prekey_id: None,
                signed_prekeys,
                prekeys: BTreeMap::new(),
                identities: BTreeMap::new(),
                sessions: BTreeMap::new(),
                sender_keys: BTreeMap::new(),
                inbox: Vec::new(),
            },
        );
        Ok(())
    }

    pub async fn update_device(
        &self,
        owner: &str,
        device: &DeviceRow,
        spk: &SignedPreKeyRow,
    ) -> Result<(), StoreError> {
        self.with_device(owner, |d| {
            d.device = device.clone();
            d.signed_prekeys.insert(spk.id, spk.clone());
            Ok(())
        })
    }

    pub async fn load_device(
        &self,
        owner: &str,
    ) -> Result<Option<(DeviceRow, SignedPreKeyRow)>, StoreError> {
        self.read_device(owner, |d| {
            d.signed_prekeys
                .get(&d.device.signed_prekey_id)
                .map(|spk| (d.device.clone(), spk.clone()))
                .ok_or(StoreError::Corrupt("current signed prekey missing"))
        })
        .transpose()
    }

    pub async fn delete_device(&self, owner: &str) -> Result<bool, StoreError> {
        Ok(self.lock().remove(owner).is_some())
    }

    pub async fn list_devices(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.lock().keys().cloned().collect())
    }

    pub async fn save_identity(
        &self,
        owner: &str,
        name: &str,
        device: i64,
        row: &IdentityRow,
    ) -> Result<Option<IdentityRow>, StoreError> {
        self.with_device(owner, |d| {
            Ok(d.identities.insert((name.to_owned(), device), row.clone()))
        })
    }

    pub async fn load_identity(
        &self,
        owner: &str,
        name: &str,
        device: i64,
    ) -> Result<Option<IdentityRow>, StoreError> {
        Ok(self
            .read_device(owner, |d| {
                d.identities.get(&(name.to_owned(), device)).cloned()
            })
            .flatten())
    }

    pub async fn delete_identity(
        &self,
        owner: &str,
        name: &str,
        device: i64,
    ) -> Result<bool, StoreError> {
        let mut devices = self.lock();
        Ok(devices
            .get_mut(owner)
            .is_some_and(|d| d.identities.remove(&(name.to_owned(), device)).is_some()))
    }

    pub async fn insert_prekeys(&self, owner: &str, rows: &[PreKeyRow]) -> Result<(), StoreError> {
        self.with_device(owner, |d| {
            let mut seen = std::collections::BTreeSet::new();
            for row in rows {
                if d.prekeys.contains_key(&row.id) || !seen.insert(row.id) {
                    return Err(StoreError::DuplicatePreKey {
                        id: u32::try_from(row.id).unwrap_or(u32::MAX),
                    });
                }
            }
            for row in rows {
                d.prekeys.insert(row.id, row.clone());
                d.max_prekey_id = Some(d.max_prekey_id.map_or(row.id, |m| m.max(row.id)));
            }
            Ok(())
        })
    }

    pub async fn load_prekey(&self, owner: &str, id: i64) -> Result<Option<PreKeyRow>, StoreError> {
        Ok(self
            .read_device(owner, |d| d.prekeys.get(&id).cloned())
            .flatten())
    }

    pub async fn take_prekey(&self, owner: &str, id: i64) -> Result<Option<PreKeyRow>, StoreError> {
        let mut devices = self.lock();
        Ok(devices.get_mut(owner).and_then(|d| d.prekeys.remove(&id)))
    }

    pub async fn remove_prekey(&self, owner: &str, id: i64) -> Result<bool, StoreError> {
        Ok(self.take_prekey(owner, id).await?.is_some())
    }

    pub async fn count_prekeys(&self, owner: &str) -> Result<u64, StoreError> {
        Ok(self
            .read_device(owner, |d| d.prekeys.len() as u64)
            .unwrap_or(0))
    }

    pub async fn max_prekey_id(&self, owner: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.read_device(owner, |d| d.max_prekey_id).flatten())
    }

    pub async fn store_signed_prekey(
        &self,
        owner: &str,
        row: &SignedPreKeyRow,
    ) -> Result<(), StoreError> {
        self.with_device(owner, |d| {
            d.signed_prekeys.insert(row.id, row.clone());
            Ok(())
        })
    }

    pub async fn load_signed_prekey(
        &self,
        owner: &str,
        id: i64,
    ) -> Result<Option<SignedPreKeyRow>, StoreError> {
        Ok(self
            .read_device(owner, |d| d.signed_prekeys.get(&id).cloned())
            .flatten())
    }

    pub async fn remove_signed_prekey(&self, owner: &str, id: i64) -> Result<bool, StoreError> {
        let mut devices = self.lock();
        Ok(devices.get_mut(owner).is_some_and(|d| {
            d.device.signed_prekey_id != id && d.signed_prekeys.remove(&id).is_some()
        }))
    }

    pub async fn signed_prekey_ids(&self, owner: &str) -> Result<Vec<i64>, StoreError> {
        Ok(self
            .read_device(owner, |d| d.signed_prekeys.keys().copied().collect())
            .unwrap_or_default())
    }

    pub async fn load_session(
        &self,
        owner: &str,
        name: &str,
        device: i64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .read_device(owner, |d| {
                d.sessions.get(&(name.to_owned(), device)).cloned()
            })
            .flatten())
    }

    pub async fn delete_sessions_of(&self, owner: &str, name: &str) -> Result<u64, StoreError> {
        let mut devices = self.lock();
        let Some(d) = devices.get_mut(owner) else {
            return Ok(0);
        };
        let before = d.sessions.len();
        d.sessions.retain(|(n, _), _| n != name);
        Ok((before - d.sessions.len()) as u64)
    }

    pub async fn session_devices(&self, owner: &str, name: &str) -> Result<Vec<i64>, StoreError> {
        Ok(self
            .read_device(owner, |d| {
                d.sessions
                    .keys()
                    .filter(|(n, _)| n == name)
                    .map(|(_, dev)| *dev)
                    .collect()
            })
            .unwrap_or_default())
    }

    pub async fn load_sender_key(
        &self,
        owner: &str,
        group: &str,
        name: &str,
        device: i64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .read_device(owner, |d| {
                d.sender_keys
                    .get(&(group.to_owned(), name.to_owned(), device))
                    .cloned()
            })
            .flatten())
    }

    pub async fn delete_sender_key(
        &self,
        owner: &str,
        group: &str,
        name: &str,
        device: i64,
    ) -> Result<bool, StoreError> {
        let mut devices = self.lock();
        Ok(devices.get_mut(owner).is_some_and(|d| {
            d.sender_keys
                .remove(&(group.to_owned(), name.to_owned(), device))
                .is_some()
        }))
    }

    pub async fn delete_session(
        &self,
        owner: &str,
        name: &str,
        device: i64,
    ) -> Result<bool, StoreError> {
        let mut devices = self.lock();
        Ok(devices
            .get_mut(owner)
            .is_some_and(|d| d.sessions.remove(&(name.to_owned(), device)).is_some()))
    }

    pub async fn apply_one(&self, owner: &str, op: &RowOp) -> Result<(), StoreError> {
        self.apply(owner, std::slice::from_ref(op)).await
    }

    pub async fn apply(&self, owner: &str, ops: &[RowOp]) -> Result<(), StoreError> {
        self.with_device(owner, |d| {
            for op in ops {
                match op {
                    RowOp::PutSession {
                        name,
                        device,
                        record_enc,
                    } => {
                        d.sessions
                            .insert((name.clone(), *device), record_enc.clone());
                    }
                    RowOp::DeleteSession { name, device } => {
                        d.sessions.remove(&(name.clone(), *device));
                    }
                    RowOp::RemovePreKey { id } => {
                        d.prekeys.remove(id);
                    }
                    RowOp::PutSenderKey {
                        group,
                        name,
                        device,
                        record_enc,
                    } => {
                        d.sender_keys
                            .insert((group.clone(), name.clone(), *device), record_enc.clone());
                    }
                    RowOp::PutIdentity { name, device, row } => {
                        d.identities.insert((name.clone(), *device), row.clone());
                    }
                    RowOp::PutInbox(row) => {
                        let known = d
                            .inbox
                            .iter()
                            .any(|r| r.sender == row.sender && r.msg_id == row.msg_id);
                        if !known {
                            d.inbox.push(row.clone());
                        }
                    }
                }
            }
            Ok(())
        })
    }

    pub async fn load_inbox(&self, owner: &str) -> Result<Vec<InboxRow>, StoreError> {
        Ok(self
            .read_device(owner, |d| d.inbox.clone())
            .unwrap_or_default())
    }

    pub async fn delete_inbox(
        &self,
        owner: &str,
        names: &[(String, String)],
    ) -> Result<u64, StoreError> {
        let mut devices = self.lock();
        let Some(d) = devices.get_mut(owner) else {
            return Ok(0);
        };
        let before = d.inbox.len();
        d.inbox.retain(|r| {
            !names
                .iter()
                .any(|(s, id)| *s == r.sender && *id == r.msg_id)
        });
        Ok((before - d.inbox.len()) as u64)
    }

    pub async fn count_inbox(&self, owner: &str) -> Result<u64, StoreError> {
        Ok(self
            .read_device(owner, |d| d.inbox.len() as u64)
            .unwrap_or(0))
    }
}
