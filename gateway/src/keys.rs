//! The process's master key against its data: the start-up check that refuses a wrong key, and
//! key rotation, offline (`zapin keys rotate`) and while serving (`POST /admin/keys/rotate`).
//!
//! # Key check
//! Each database records the [`KeyFingerprint`] of the key its sealed values are under (the
//! `master_key_check` row). `zapin serve` compares it with its own key before it seals or serves
//! anything ([`SealedData::check_at_start`]) and refuses to start on a mismatch
//! ([`KeyError`]), instead of answering 401 to every token and asking every device for a new QR.
//! A database without a record (fresh, or from a version without key checks) adopts the key
//! when every sealed value in it opens under the key, and is refused otherwise.
//!
//! # Rotation
//! A rotation makes a new key current and keeps the old one as the *previous* key, accepted for
//! reading only ([`zapin_signal_store::Keyring`]), then re-seals every sealed value still under
//! the old key (batched, compare-and-set, see [`zapin_signal_store::Store::reseal`] and
//! [`Db::reseal`]). The database's record names both keys until a pass with no concurrent writer
//! has confirmed that no value needs the old key: the offline command, or the next start. Only
//! then is the previous key dropped (its file deleted).
//!
//! Order of the steps, so that a crash at any point loses nothing: the new key is stored first
//! (key file: `master.key.previous` ← old key, then `master.key` ← new key), then each database
//! records "new key, previous old key", then the process switches its keyring, then the pass.
//! Whatever was sealed under the new key is therefore only ever in a database that names it,
//! and a restart at any point finds both keys (key file) or refuses with a message naming the
//! new key's fingerprint (environment).
//!
//! While serving, the serving process itself rotates (there is exactly one writer per database,
//! and it switches all its ciphers at once through the shared keyring). Values it sealed under
//! the old key just before switching, and committed after the pass went by, stay readable (the
//! old key is still in the keyring) and are re-sealed by the next start, which is why the
//! online rotation never drops the previous key itself.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use zapin_signal_store::key_check::{self, KeyCheck, PoolRef};
use zapin_signal_store::{
    KeyFingerprint, KeySource, Keyring, MasterKey, MasterKeyError, ResealMode, ResealReport,
    SharedKeyring, Store, StoreError,
};

use crate::db::{Db, DbError};

/// Rows per batch of a re-sealing pass (one transaction each).
pub const RESEAL_BATCH: usize = 500;

/// Why the key and the data do not go together, or a rotation step failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The database names another key than the process's.
    #[error(
        "the master key does not match the data: {database} is sealed under key {stored}, but {origin} holds key {current}. \
         Start with the key the data was sealed with (after a rotation: the new key in ZAPIN_MASTER_KEY or master.key, \
         the old one in ZAPIN_MASTER_KEY_PREVIOUS or master.key.previous), or restore the key file from your backup"
    )]
    WrongKey {
        database: &'static str,
        stored: KeyFingerprint,
        current: KeyFingerprint,
        origin: KeySource,
    },
    /// A database without a key record holds values the key does not open.
    #[error(
        "the master key does not match the data: {unreadable} of {sealed} sealed values in {database} do not open under key {current} from {origin}. \
         Start with the key the data was written with, or restore the key file from your backup"
    )]
    LegacyWrongKey {
        database: &'static str,
        unreadable: u64,
        sealed: u64,
        current: KeyFingerprint,
        origin: KeySource,
    },
    /// An unfinished rotation still needs the previous key.
    #[error(
        "the master key does not match all of the data: a key rotation of {database} is unfinished and {unreadable} sealed values open only under the previous key {previous}. \
         Start once more with that key in ZAPIN_MASTER_KEY_PREVIOUS (or {previous_file}) beside the current key {current} from {origin} to finish the rotation"
    )]
    PreviousKeyNeeded {
        database: &'static str,
        unreadable: u64,
        previous: KeyFingerprint,
        previous_file: String,
        current: KeyFingerprint,
        origin: KeySource,
    },
    /// A database is in the middle of a rotation towards the process's previous key, and the
    /// process wants to rotate again.
    #[error(
        "{database} is still being rotated to key {stored} (from key {pending}); start with key {stored} as the master key to finish that rotation before starting another"
    )]
    RotationPending {
        database: &'static str,
        stored: KeyFingerprint,
        pending: KeyFingerprint,
    },
    #[error("master key: {0}")]
    MasterKey(#[from] MasterKeyError),
    #[error("signal store: {0}")]
    Store(#[from] StoreError),
    #[error("gateway database: {0}")]
    Db(#[from] DbError),
}

impl KeyError {
    /// The key does not match the data (as opposed to an I/O or database failure): `zapin serve`
    /// exits with status 2.
    pub fn is_mismatch(&self) -> bool {
        matches!(
            self,
            KeyError::WrongKey { .. }
                | KeyError::LegacyWrongKey { .. }
                | KeyError::PreviousKeyNeeded { .. }
                | KeyError::RotationPending { .. }
        )
    }
}

/// One database and which sealed values it holds.
#[derive(Debug, Clone, Copy)]
struct Part<'a> {
    name: &'static str,
    pool: PoolRef<'a>,
    gateway: bool,
    signal: bool,
}

/// What [`SealedData::check_at_start`] does to one database.
#[derive(Debug)]
enum Action {
    Nothing,
    /// No record yet: record the key (and a pending previous key if some values need it).
    Adopt {
        sealed: u64,
        pending: Option<KeyFingerprint>,
    },
    /// The record names a previous key: re-seal and confirm.
    Finish {
        pending: KeyFingerprint,
    },
    /// The record names the process's previous key: the process starts a rotation.
    Rotate {
        from: KeyFingerprint,
    },
}

/// What [`SealedData::check_at_start`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StartReport {
    /// Databases without a key record that adopted the key.
    pub adopted: Vec<&'static str>,
    /// Databases whose rotation was finished, with what the last pass did.
    pub finished: Vec<(&'static str, ResealReport)>,
    /// The previous key was no longer needed and was dropped.
    pub retired_previous: bool,
}

/// Everything the process keeps sealed: the gateway database and the signal store (one
/// PostgreSQL database, or two SQLite files), and the keyring they share.
#[derive(Debug, Clone)]
pub struct SealedData {
    db: Db,
    store: Store,
    keys: SharedKeyring,
    source: KeySource,
}

impl SealedData {
    /// `store` must have been opened with `keys` (see [`crate::runtime::open_store`]).
    pub fn new(db: Db, store: Store, keys: SharedKeyring, source: KeySource) -> Self {
        Self {
            db,
            store,
            keys,
            source,
        }
    }

    pub fn keys(&self) -> &SharedKeyring {
        &self.keys
    }

    pub fn source(&self) -> &KeySource {
        &self.source
    }

    /// The databases, each once: on PostgreSQL the signal store shares the gateway's.
    fn parts(&self) -> Vec<Part<'_>> {
        let gateway = match (self.db.sqlite_pool(), self.db.postgres_pool()) {
            (Some(p), _) => Some(PoolRef::Sqlite(p)),
            (_, Some(p)) => Some(PoolRef::Postgres(p)),
            _ => None,
        };
        let signal = self.store.pool();
        match (gateway, signal) {
            (Some(g @ PoolRef::Postgres(_)), Some(PoolRef::Postgres(_))) => vec![Part {
                name: "the database",
                pool: g,
                gateway: true,
                signal: true,
            }],
            (g, s) => g
                .map(|pool| Part {
                    name: "the gateway database",
                    pool,
                    gateway: true,
                    signal: false,
                })
                .into_iter()
                .chain(s.map(|pool| Part {
                    name: "the signal store",
                    pool,
                    gateway: false,
                    signal: true,
                }))
                .collect(),
        }
    }

    /// Switches every cipher of the process to `keyring`.
    fn switch(&self, keyring: Keyring) {
        self.keys.replace(keyring.clone());
        // The store shares `keys`; replacing its handle too costs nothing if it is the same one.
        self.store.keyring().replace(keyring);
    }

    async fn pass(&self, part: &Part<'_>, mode: ResealMode) -> Result<ResealReport, KeyError> {
        let mut report = ResealReport::default();
        if part.gateway {
            report.add(&self.db.reseal(&self.keys, mode, RESEAL_BATCH).await?);
        }
        if part.signal {
            report.add(&self.store.reseal(mode, RESEAL_BATCH).await?);
        }
        Ok(report)
    }

    /// Checks that the process's key is the one every database is sealed under, before anything
    /// is sealed or served. Adopts the key in a database without a record when every sealed
    /// value opens under it; finishes a rotation that is requested (the process's previous key
    /// is the recorded one) or unfinished (the record names a previous key), by re-sealing and
    /// confirming that nothing needs the previous key any more; then drops the previous key
    /// (and deletes its file). Must run with no other writer on the data (start-up, or
    /// `zapin keys rotate` holding the exclusive lock).
    pub async fn check_at_start(&self) -> Result<StartReport, KeyError> {
        let ring = self.keys.get();
        let current = ring.fingerprint();
        let previous = ring.previous().map(MasterKey::fingerprint);
        // Decide for every database before writing to any: a refusal must leave all of them as
        // they were (SQLite keeps two files).
        let mut plan = Vec::new();
        for part in self.parts() {
            let action = match key_check::load(part.pool).await? {
                None => {
                    let found = self.pass(&part, ResealMode::Check).await?;
                    if found.unreadable > 0 {
                        return Err(KeyError::LegacyWrongKey {
                            database: part.name,
                            unreadable: found.unreadable,
                            sealed: found.sealed(),
                            current,
                            origin: self.source.clone(),
                        });
                    }
                    Action::Adopt {
                        sealed: found.sealed(),
                        pending: previous.clone().filter(|_| found.previous > 0),
                    }
                }
                Some(stored) if stored.fingerprint == current => match stored.previous {
                    Some(pending) => Action::Finish { pending },
                    None => Action::Nothing,
                },
                Some(stored) if Some(&stored.fingerprint) == previous.as_ref() => {
                    if let Some(pending) = stored.previous {
                        return Err(KeyError::RotationPending {
                            database: part.name,
                            stored: stored.fingerprint,
                            pending,
                        });
                    }
                    // Started with a new key and the recorded one as previous: rotate now.
                    Action::Rotate {
                        from: stored.fingerprint,
                    }
                }
                Some(stored) => {
                    return Err(KeyError::WrongKey {
                        database: part.name,
                        stored: stored.fingerprint,
                        current,
                        origin: self.source.clone(),
                    });
                }
            };
            plan.push((part, action));
        }

        let mut report = StartReport::default();
        for (part, action) in plan {
            let pending = match action {
                Action::Nothing => None,
                Action::Finish { pending } => Some(pending),
                Action::Adopt { sealed, pending } => {
                    key_check::save(
                        part.pool,
                        &KeyCheck {
                            fingerprint: current.clone(),
                            previous: pending.clone(),
                        },
                    )
                    .await?;
                    report.adopted.push(part.name);
                    tracing::info!(
                        database = part.name,
                        key = %current,
                        sealed,
                        "recorded the master key the data is sealed under"
                    );
                    pending
                }
                Action::Rotate { from } => {
                    tracing::info!(database = part.name, from = %from, to = %current, "rotating the master key");
                    key_check::save(
                        part.pool,
                        &KeyCheck {
                            fingerprint: current.clone(),
                            previous: Some(from.clone()),
                        },
                    )
                    .await?;
                    Some(from)
                }
            };
            if let Some(pending) = pending {
                report
                    .finished
                    .push((part.name, self.finish(&part, &pending).await?));
            }
        }
        if ring.previous().is_some() {
            self.retire_previous(&ring)?;
            report.retired_previous = true;
        }
        Ok(report)
    }

    /// Re-seals what is left under the previous key, then records that nothing needs it. Fails
    /// (recording nothing) if some value opens under no key of the keyring.
    async fn finish(
        &self,
        part: &Part<'_>,
        pending: &KeyFingerprint,
    ) -> Result<ResealReport, KeyError> {
        let done = self.pass(part, ResealMode::Reseal).await?;
        let current = self.keys.get().fingerprint();
        if done.unreadable > 0 {
            return Err(KeyError::PreviousKeyNeeded {
                database: part.name,
                unreadable: done.unreadable,
                previous: pending.clone(),
                previous_file: self.source.previous_file().map_or_else(
                    || zapin_signal_store::PREVIOUS_KEY_FILE.to_owned(),
                    |p| p.display().to_string(),
                ),
                current,
                origin: self.source.clone(),
            });
        }
        key_check::save(
            part.pool,
            &KeyCheck {
                fingerprint: current,
                previous: None,
            },
        )
        .await?;
        tracing::info!(
            database = part.name,
            resealed = done.resealed,
            "key rotation finished: no sealed value needs the previous key any more"
        );
        Ok(done)
    }

    /// Drops the previous key from the keyring and deletes its file; with the environment as
    /// the source, tells the operator the variable can go.
    fn retire_previous(&self, ring: &Keyring) -> Result<(), KeyError> {
        self.switch(Keyring::new(ring.current().clone()));
        match self.source.previous_file() {
            Some(path) => match std::fs::remove_file(&path) {
                Ok(()) => {
                    tracing::info!(file = %path.display(), "deleted the previous master key: nothing needs it any more")
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(MasterKeyError::Io { path, source }.into()),
            },
            None => tracing::warn!(
                "ZAPIN_MASTER_KEY_PREVIOUS is no longer needed: nothing is sealed under it; remove it from the environment"
            ),
        }
        Ok(())
    }

    /// First steps of a rotation to `new`: store it where the current key came from (key file;
    /// the old key goes to `master.key.previous` first), record "new key, previous old key" in
    /// every database, then switch the process's keyring. Values are re-sealed afterwards.
    async fn begin_rotation(&self, new: &MasterKey) -> Result<Keyring, RotateError> {
        let ring = self.keys.get();
        if ring.previous().is_some() {
            return Err(RotateError::Unfinished);
        }
        if new == ring.current() {
            return Err(RotateError::SameKey);
        }
        if let KeySource::File(path) = &self.source {
            if let Some(previous_file) = self.source.previous_file() {
                ring.current().save_file(&previous_file)?;
            }
            new.save_file(path)?;
        }
        let rotated = Keyring::new(new.clone()).with_previous(Some(ring.current().clone()));
        for part in self.parts() {
            key_check::save(
                part.pool,
                &KeyCheck {
                    fingerprint: new.fingerprint(),
                    previous: Some(ring.fingerprint()),
                },
            )
            .await
            .map_err(KeyError::from)?;
        }
        self.switch(rotated.clone());
        tracing::info!(from = %ring.fingerprint(), to = %new.fingerprint(), "master key rotated: new values are sealed under the new key");
        Ok(rotated)
    }

    /// `zapin keys rotate`: with no other process on the data, checks the current key (as a
    /// start would), rotates to `new`, re-seals everything, and drops the old key.
    pub async fn rotate_offline(
        &self,
        new: &MasterKey,
    ) -> Result<Vec<(&'static str, ResealReport)>, RotateError> {
        self.check_at_start().await?;
        self.begin_rotation(new).await?;
        let mut done = Vec::new();
        let pending = self
            .keys
            .get()
            .previous()
            .map(MasterKey::fingerprint)
            .ok_or(RotateError::SameKey)?;
        for part in self.parts() {
            done.push((part.name, self.finish(&part, &pending).await?));
        }
        let ring = self.keys.get();
        self.retire_previous(&ring)?;
        Ok(done)
    }
}

/// Why a rotation did not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("storing the new master key: {0}")]
    Save(#[from] MasterKeyError),
    #[error("a key rotation is already running")]
    Busy,
    #[error(
        "the previous rotation is not finished: values may still be sealed under the previous key until the next start re-seals them; restart zapin first"
    )]
    Unfinished,
    #[error("the new master key is the current one")]
    SameKey,
    #[error(
        "the master key comes from ZAPIN_MASTER_KEY, so zapin cannot store a new one: pass the new key (`zapin keys generate`) explicitly"
    )]
    NeedNewKey,
}

/// Progress of the online rotation, for `GET /admin/keys`.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RotationStatus {
    /// `idle`, `resealing`, `done` or `failed`.
    pub state: &'static str,
    pub resealed: u64,
    pub raced: u64,
    pub unreadable: u64,
    pub error: Option<String>,
}

/// The online rotation of a serving process (`/admin/keys`).
#[derive(Debug)]
pub struct KeyService {
    data: SealedData,
    /// Held from the start of a rotation to the end of its pass.
    running: Arc<tokio::sync::Mutex<()>>,
    status: Mutex<RotationStatus>,
}

/// What `GET /admin/keys` reports: fingerprints, never keys.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct KeyStatus {
    pub fingerprint: String,
    pub previous_fingerprint: Option<String>,
    /// `env` or `file`.
    pub source: &'static str,
    pub rotation: RotationStatus,
}

impl KeyService {
    pub fn new(data: SealedData) -> Arc<Self> {
        Arc::new(Self {
            data,
            running: Arc::new(tokio::sync::Mutex::new(())),
            status: Mutex::new(RotationStatus {
                state: "idle",
                ..RotationStatus::default()
            }),
        })
    }

    fn set_status(&self, status: RotationStatus) {
        *self
            .status
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = status;
    }

    pub fn status(&self) -> KeyStatus {
        let ring = self.data.keys.get();
        KeyStatus {
            fingerprint: ring.fingerprint().to_string(),
            previous_fingerprint: ring.previous().map(|k| k.fingerprint().to_string()),
            source: match self.data.source {
                KeySource::Env => "env",
                KeySource::File(_) => "file",
            },
            rotation: self
                .status
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clone(),
        }
    }

    /// Rotates the serving process to `new` (generated when `None` and the key is in a file):
    /// stores it, records it, switches every cipher, then re-seals in the background. Returns
    /// once the switch is done; [`KeyService::status`] follows the pass.
    pub async fn rotate(
        self: &Arc<Self>,
        new: Option<MasterKey>,
    ) -> Result<KeyStatus, RotateError> {
        let running = self
            .running
            .clone()
            .try_lock_owned()
            .map_err(|_| RotateError::Busy)?;
        let new = match (new, &self.data.source) {
            (Some(key), _) => key,
            (None, KeySource::File(_)) => MasterKey::generate()?,
            (None, KeySource::Env) => return Err(RotateError::NeedNewKey),
        };
        self.data.begin_rotation(&new).await?;
        self.set_status(RotationStatus {
            state: "resealing",
            ..RotationStatus::default()
        });
        let this = self.clone();
        tokio::spawn(async move {
            let _running = running;
            // Twice: the second pass picks up what writes sealed under the old key just before
            // the switch committed while the first one ran. What is still left after that is
            // readable (the old key stays in the keyring) and re-sealed by the next start.
            let mut total = ResealReport::default();
            let mut error = None;
            'passes: for _ in 0..2 {
                for part in this.data.parts() {
                    match this.data.pass(&part, ResealMode::Reseal).await {
                        Ok(report) => total.add(&report),
                        Err(err) => {
                            error = Some(err.to_string());
                            break 'passes;
                        }
                    }
                }
            }
            if let Some(err) = &error {
                tracing::error!("re-sealing under the new master key failed: {err}");
            } else {
                tracing::info!(
                    resealed = total.resealed,
                    unreadable = total.unreadable,
                    "re-sealed the data under the new master key; the next start confirms it and drops the previous key"
                );
            }
            this.set_status(RotationStatus {
                state: if error.is_some() { "failed" } else { "done" },
                resealed: total.resealed,
                raced: total.raced,
                unreadable: total.unreadable,
                error,
            });
        });
        Ok(self.status())
    }
}

/// Keeps other processes from rotating the key under a running one: `zapin serve` holds it
/// shared, `zapin keys rotate` exclusive. A lock file in the data directory (the key file lives
/// there) and, on PostgreSQL, an advisory lock in the database (other hosts).
#[derive(Debug)]
pub struct DataLock {
    _file: std::fs::File,
    pg: Option<sqlx::PgConnection>,
}

/// Advisory lock id: "zapinkey".
const PG_LOCK_ID: i64 = 0x7a61_7069_6e6b_6579;

/// Name of the lock file in the data directory.
pub const LOCK_FILE: &str = "zapin.lock";

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another process holds {what}: {hint}")]
    Held { what: String, hint: &'static str },
    #[error("lock file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database lock: {0}")]
    Db(#[from] sqlx::Error),
}

impl DataLock {
    /// For `zapin serve`: shared, so several servers may share a PostgreSQL database.
    pub async fn shared(data_dir: &std::path::Path, db: &Db) -> Result<Self, LockError> {
        Self::take(
            data_dir,
            db,
            false,
            "a key rotation (zapin keys rotate) is running; start zapin once it has finished",
        )
        .await
    }

    /// For `zapin keys rotate`: no server may run meanwhile.
    pub async fn exclusive(data_dir: &std::path::Path, db: &Db) -> Result<Self, LockError> {
        Self::take(
            data_dir,
            db,
            true,
            "zapin serve is running on this data; stop it first, or rotate while it serves with POST /admin/keys/rotate",
        )
        .await
    }

    async fn take(
        data_dir: &std::path::Path,
        db: &Db,
        exclusive: bool,
        hint: &'static str,
    ) -> Result<Self, LockError> {
        let path = data_dir.join(LOCK_FILE);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(data_dir).map_err(io)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io)?;
        let locked = if exclusive {
            file.try_lock()
        } else {
            file.try_lock_shared()
        };
        match locked {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(LockError::Held {
                    what: format!("the lock file {}", path.display()),
                    hint,
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let pg = match db.postgres_pool() {
            None => None,
            Some(pool) => {
                let mut conn = pool.acquire().await?.detach();
                let sql = if exclusive {
                    "SELECT pg_try_advisory_lock($1)"
                } else {
                    "SELECT pg_try_advisory_lock_shared($1)"
                };
                let got: bool = sqlx::query_scalar(sql)
                    .bind(PG_LOCK_ID)
                    .fetch_one(&mut conn)
                    .await?;
                if !got {
                    return Err(LockError::Held {
                        what: "the database's key lock".to_owned(),
                        hint,
                    });
                }
                Some(conn)
            }
        };
        Ok(Self { _file: file, pg })
    }

    /// Releases the locks (dropping does too, without waiting for the database).
    pub async fn release(self) {
        if let Some(conn) = self.pg {
            use sqlx::Connection as _;
            let _ = conn.close().await;
        }
    }
}
