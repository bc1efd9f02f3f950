//! [`Store`]: the handle every session shares. It seals secrets before they reach a backend and
//! opens them on the way back, so backends only ever hold ciphertext.

use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions as _, Connection as _};
use zeroize::Zeroizing;

use crate::cipher::{RowCipher, RowRef};
use crate::error::StoreError;
use crate::group_commit::GroupCommit;
use crate::key_check::PoolRef;
use crate::keyring::SharedKeyring;
use crate::master_key::MasterKey;
use crate::memory::MemoryBackend;
use crate::reseal::{ResealMode, ResealReport};
use crate::rows::{DeviceRow, IdentityRow, InboxRow, PreKeyRow, RowOp, SignedPreKeyRow};
use crate::sql::{PostgresBackend, SqliteBackend};
use crate::types::{
    Account, Address, Batch, BatchOp, DeviceCredentials, DeviceId, IdentityChange, IdentityRecord,
    InboxEntry, KeyPairBytes, PreKey, Secret32, SenderKeyName, SignedPreKey, Trust,
};

/// Name of the SQLite database file inside the data directory.
pub const SQLITE_FILE: &str = "signal-store.sqlite3";

/// How to open the embedded SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Directory holding the database (created with mode 0700 if missing).
    pub data_dir: PathBuf,
    /// Pool size. SQLite has one writer at a time; extra connections serve concurrent readers.
    pub max_connections: u32,
    /// How long a writer waits for the write lock before failing.
    pub busy_timeout: Duration,
}

impl SqliteOptions {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            max_connections: 8,
            busy_timeout: Duration::from_secs(30),
        }
    }
}

/// How to open the PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    pub url: String,
    pub max_connections: u32,
    /// Keep the tables in this schema (created if missing) instead of the server default. Lower
    /// case ASCII letters, digits and `_`, at most 63 characters.
    pub schema: Option<String>,
}

impl PostgresOptions {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 16,
            schema: None,
        }
    }
}

/// Handle to the store. Cheap to clone (an `Arc` and a pool handle): one `Store`, and so one
/// pool, serves every hosted device.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    cipher: Arc<RowCipher>,
    /// SQLite only: the writer that shares one transaction among concurrent [`Store::apply`]s.
    group: Option<Arc<GroupCommit>>,
    /// Write transactions committed by this store outside the group committer.
    commits: Arc<AtomicU64>,
}

/// Only the backend name: pool options can hold a database password.
impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend_name())
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
enum Backend {
    Memory(Arc<MemoryBackend>),
    Sqlite(SqliteBackend),
    Postgres(PostgresBackend),
}

/// Calls the same row-level method on whichever backend the store uses.
macro_rules! dispatch {
    ($self:ident . $method:ident ( $($arg:expr),* $(,)? )) => {
        match &$self.backend {
            Backend::Memory(b) => b.$method($($arg),*).await,
            Backend::Sqlite(b) => b.$method($($arg),*).await,
            Backend::Postgres(b) => b.$method($($arg),*).await,
        }
    };
}

/// [`dispatch!`] for a method that writes: counts the committed transaction.
macro_rules! dispatch_write {
    ($self:ident . $method:ident ( $($arg:expr),* $(,)? )) => {
        $self.counted(dispatch!($self.$method($($arg),*)))
    };
}

fn to_i64(v: u32) -> i64 {
    i64::from(v)
}

fn to_u32(v: i64, what: &'static str) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(what))
}

fn to_key32(bytes: &[u8], what: &'static str) -> Result<[u8; 32], StoreError> {
    <[u8; 32]>::try_from(bytes).map_err(|_| StoreError::Corrupt(what))
}

const SECRETS_LEN: usize = 96;

impl Store {
    /// A store that lives in memory only (tests). Secrets are still sealed, as on disk.
    pub fn memory(key: &MasterKey) -> Self {
        Self {
            backend: Backend::Memory(Arc::new(MemoryBackend::default())),
            cipher: Arc::new(RowCipher::new(SharedKeyring::from(key))),
            group: None,
            commits: Arc::default(),
        }
    }

    /// Opens (creating if needed) `<data_dir>/signal-store.sqlite3` in WAL mode with
    /// `synchronous=FULL`, foreign keys on and a busy timeout, and applies pending migrations.
    ///
    /// `keys` is a [`MasterKey`] or the process's [`SharedKeyring`] (see [`crate::Keyring`]).
    pub async fn open_sqlite(
        options: &SqliteOptions,
        keys: impl Into<SharedKeyring>,
    ) -> Result<Self, StoreError> {
        create_private_dir(&options.data_dir)?;
        let connect = SqliteConnectOptions::new()
            .filename(options.data_dir.join(SQLITE_FILE))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk (WAL fsynced) when it returns, which is the durability
            // contract of this crate; NORMAL would only survive process crashes.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(options.busy_timeout);
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .connect_with(connect)
            .await?;
        zapin_migrations::sqlite().run(&pool).await?;
        let backend = SqliteBackend { pool };
        Ok(Self {
            group: Some(GroupCommit::new(backend.clone())),
            backend: Backend::Sqlite(backend),
            cipher: Arc::new(RowCipher::new(keys.into())),
            commits: Arc::default(),
        })
    }

    /// Connects to PostgreSQL and applies pending migrations.
    pub async fn open_postgres(
        options: &PostgresOptions,
        keys: impl Into<SharedKeyring>,
    ) -> Result<Self, StoreError> {
        let mut connect = PgConnectOptions::from_str(&options.url)?;
        if let Some(schema) = &options.schema {
            if !valid_schema_name(schema) {
                return Err(StoreError::OutOfRange("postgres schema name"));
            }
            let mut conn = connect.connect().await?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "CREATE SCHEMA IF NOT EXISTS \"{schema}\""
            )))
            .execute(&mut conn)
            .await?;
            conn.close().await?;
            connect = connect.options([("search_path", schema.as_str())]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .connect_with(connect)
            .await?;
        zapin_migrations::postgres().run(&pool).await?;
        Ok(Self {
            backend: Backend::Postgres(PostgresBackend { pool }),
            cipher: Arc::new(RowCipher::new(keys.into())),
            group: None,
            commits: Arc::default(),
        })
    }

    /// `"memory"`, `"sqlite"` or `"postgres"`.
    pub fn backend_name(&self) -> &'static str {
        match &self.backend {
            Backend::Memory(_) => "memory",
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Waits for in-flight queries and closes the pool.
    pub async fn close(&self) {
        match &self.backend {
            Backend::Memory(_) => {}
            Backend::Sqlite(b) => b.pool.close().await,
            Backend::Postgres(b) => b.pool.close().await,
        }
    }

    /// Write transactions committed so far by this store and its clones: on SQLite each is
    /// one WAL fsync (`synchronous=FULL`), on PostgreSQL one WAL flush. Concurrent
    /// [`Store::apply`]s on SQLite share transactions, so this can grow slower than the number
    /// of calls. For benchmarks and tests (fsyncs per send).
    pub fn write_transactions(&self) -> u64 {
        self.commits.load(Ordering::Relaxed) + self.group.as_ref().map_or(0, |g| g.transactions())
    }

    fn counted<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if result.is_ok() {
            self.commits.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// The keys this store seals and opens with; replacing its keyring switches the store (and
    /// whoever shares the handle) to another current key.
    pub fn keyring(&self) -> &SharedKeyring {
        self.cipher.keys()
    }

    /// The database pool, for the [`crate::key_check`] row (`None` in memory).
    pub fn pool(&self) -> Option<PoolRef<'_>> {
        match &self.backend {
            Backend::Memory(_) => None,
            Backend::Sqlite(b) => Some(PoolRef::Sqlite(&b.pool)),
            Backend::Postgres(b) => Some(PoolRef::Postgres(&b.pool)),
        }
    }

    /// Re-seals every sealed value that opens only under the keyring's previous key under its
    /// current key, in batches of `batch` rows, each committed on its own and written back only
    /// if unchanged meanwhile; or, with [`ResealMode::Check`], only counts which key each value
    /// is under. Safe to run while sessions write; running it again continues where an
    /// interrupted run stopped. A memory store has nothing at rest: an empty report.
    pub async fn reseal(&self, mode: ResealMode, batch: usize) -> Result<ResealReport, StoreError> {
        match self.pool() {
            None => Ok(ResealReport::default()),
            Some(pool) => crate::reseal::reseal(pool, &self.cipher, mode, batch).await,
        }
    }

    #[doc(hidden)]
    pub fn sqlite_pool(&self) -> Option<&sqlx::SqlitePool> {
        match &self.backend {
            Backend::Sqlite(b) => Some(&b.pool),
            _ => None,
        }
    }

    #[doc(hidden)]
    pub fn postgres_pool(&self) -> Option<&sqlx::PgPool> {
        match &self.backend {
            Backend::Postgres(b) => Some(&b.pool),
            _ => None,
        }
    }

    // ---- devices ----

    /// Registers a device with its credentials. Fails with [`StoreError::DeviceExists`] if the
    /// id is taken.
    pub async fn create_device(
        &self,
        device: &DeviceId,
        credentials: &DeviceCredentials,
    ) -> Result<(), StoreError> {
        let owner = device.as_str();
        let (row, spk) = self.seal_credentials(owner, credentials)?;
        dispatch_write!(self.insert_device(owner, &row, &spk))
    }

    /// Replaces a device's credentials (after pairing, a push-name change, a signed-prekey
    /// rotation). The new signed prekey is also stored in the signed-prekey table.
    pub async fn save_credentials(
        &self,
        device: &DeviceId,
        credentials: &DeviceCredentials,
    ) -> Result<(), StoreError> {
        let owner = device.as_str();
        let (row, spk) = self.seal_credentials(owner, credentials)?;
        dispatch_write!(self.update_device(owner, &row, &spk))
    }

    pub async fn load_credentials(
        &self,
        device: &DeviceId,
    ) -> Result<Option<DeviceCredentials>, StoreError> {
        let owner = device.as_str();
        match dispatch!(self.load_device(owner))? {
            Some((row, spk)) => Ok(Some(self.open_credentials(owner, row, spk)?)),
            None => Ok(None),
        }
    }

    /// Removes the device and everything it owns in one statement (foreign-key cascade), so no
    /// reader ever sees half a device. Returns whether it existed.
    pub async fn delete_device(&self, device: &DeviceId) -> Result<bool, StoreError> {
        dispatch_write!(self.delete_device(device.as_str()))
    }

    /// Every device in the store, sorted; used to restore all sessions at startup.
    pub async fn list_devices(&self) -> Result<Vec<DeviceId>, StoreError> {
        let mut ids = dispatch!(self.list_devices())?
            .into_iter()
            .map(|id| DeviceId::new(id).map_err(|_| StoreError::Corrupt("devices.device_id")))
            .collect::<Result<Vec<_>, _>>()?;
        // Byte order on every backend (PostgreSQL would otherwise sort by its collation).
        ids.sort();
        Ok(ids)
    }

    // ---- identities ----

    /// Stores the identity key of a remote address and reports what it replaced.
    pub async fn save_identity(
        &self,
        device: &DeviceId,
        address: &Address,
        identity: &IdentityRecord,
    ) -> Result<IdentityChange, StoreError> {
        let row = identity_row(identity);
        let previous = dispatch_write!(self.save_identity(
            device.as_str(),
            &address.name,
            to_i64(address.device),
            &row
        ))?;
        match previous {
            None => Ok(IdentityChange::New),
            Some(p) => {
                let p = identity_from_row(&p)?;
                if p.key == identity.key {
                    Ok(IdentityChange::Unchanged)
                } else {
                    Ok(IdentityChange::Replaced(p))
                }
            }
        }
    }

    pub async fn load_identity(
        &self,
        device: &DeviceId,
        address: &Address,
    ) -> Result<Option<IdentityRecord>, StoreError> {
        dispatch!(self.load_identity(device.as_str(), &address.name, to_i64(address.device)))?
            .map(|r| identity_from_row(&r))
            .transpose()
    }

    pub async fn delete_identity(
        &self,
        device: &DeviceId,
        address: &Address,
    ) -> Result<bool, StoreError> {
        dispatch_write!(self.delete_identity(
            device.as_str(),
            &address.name,
            to_i64(address.device)
        ))
    }

    // ---- one-time prekeys ----

    /// Inserts a generated batch in one transaction. An id already present (or repeated in the
    /// batch) fails the whole batch with [`StoreError::DuplicatePreKey`].
    pub async fn insert_prekeys(
        &self,
        device: &DeviceId,
        prekeys: &[PreKey],
    ) -> Result<(), StoreError> {
        let owner = device.as_str();
        let rows = prekeys
            .iter()
            .map(|p| {
                Ok(PreKeyRow {
                    id: to_i64(p.id),
                    public_key: p.key_pair.public.to_vec(),
                    private_enc: self
                        .cipher
                        .seal(prekey_ref(owner, p.id), p.key_pair.private.expose())?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        dispatch_write!(self.insert_prekeys(owner, &rows))
    }

    pub async fn load_prekey(
        &self,
        device: &DeviceId,
        id: u32,
    ) -> Result<Option<PreKey>, StoreError> {
        let owner = device.as_str();
        dispatch!(self.load_prekey(owner, to_i64(id)))?
            .map(|r| self.open_prekey(owner, id, &r))
            .transpose()
    }

    /// Loads and removes a prekey in one step. Prefer [`Store::store_session_and_consume_prekey`]
    /// when the prekey is consumed by a new session, so a crash cannot lose both.
    pub async fn take_prekey(
        &self,
        device: &DeviceId,
        id: u32,
    ) -> Result<Option<PreKey>, StoreError> {
        let owner = device.as_str();
        dispatch_write!(self.take_prekey(owner, to_i64(id)))?
            .map(|r| self.open_prekey(owner, id, &r))
            .transpose()
    }

    pub async fn remove_prekey(&self, device: &DeviceId, id: u32) -> Result<bool, StoreError> {
        dispatch_write!(self.remove_prekey(device.as_str(), to_i64(id)))
    }

    /// Prekeys still available for upload or use.
    pub async fn count_prekeys(&self, device: &DeviceId) -> Result<u64, StoreError> {
        dispatch!(self.count_prekeys(device.as_str()))
    }

    /// Highest prekey id ever inserted for the device, even if that prekey has since been used;
    /// the next batch should start above it so ids are not reused.
    pub async fn max_prekey_id(&self, device: &DeviceId) -> Result<Option<u32>, StoreError> {
        dispatch!(self.max_prekey_id(device.as_str()))?
            .map(|v| to_u32(v, "devices.max_prekey_id"))
            .transpose()
    }

    // ---- signed prekeys ----

    /// Stores (or replaces) a signed prekey by id. Making it the current one is done through
    /// [`Store::save_credentials`].
    pub async fn store_signed_prekey(
        &self,
        device: &DeviceId,
        signed_prekey: &SignedPreKey,
    ) -> Result<(), StoreError> {
        let owner = device.as_str();
        let row = self.seal_signed_prekey(owner, signed_prekey)?;
        dispatch_write!(self.store_signed_prekey(owner, &row))
    }

    pub async fn load_signed_prekey(
        &self,
        device: &DeviceId,
        id: u32,
    ) -> Result<Option<SignedPreKey>, StoreError> {
        let owner = device.as_str();
        dispatch!(self.load_signed_prekey(owner, to_i64(id)))?
            .map(|r| self.open_signed_prekey(owner, &r))
            .transpose()
    }

    /// Removes an old signed prekey. The current one (in the credentials) is never removed:
    /// returns `false` for it.
    pub async fn remove_signed_prekey(
        &self,
        device: &DeviceId,
        id: u32,
    ) -> Result<bool, StoreError> {
        dispatch_write!(self.remove_signed_prekey(device.as_str(), to_i64(id)))
    }

    pub async fn signed_prekey_ids(&self, device: &DeviceId) -> Result<Vec<u32>, StoreError> {
        dispatch!(self.signed_prekey_ids(device.as_str()))?
            .into_iter()
            .map(|v| to_u32(v, "signed_prekeys.id"))
            .collect()
    }

    // ---- sessions ----

    /// The opaque session record (as produced by the protocol layer) for a remote address.
    pub async fn load_session(
        &self,
        device: &DeviceId,
        address: &Address,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let owner = device.as_str();
        dispatch!(self.load_session(owner, &address.name, to_i64(address.device)))?
            .map(|sealed| self.cipher.open(session_ref(owner, address), &sealed))
            .transpose()
    }

    /// Durable when it returns `Ok`.
    pub async fn store_session(
        &self,
        device: &DeviceId,
        address: &Address,
        record: &[u8],
    ) -> Result<(), StoreError> {
        let owner = device.as_str();
        let op = RowOp::PutSession {
            name: address.name.clone(),
            device: to_i64(address.device),
            record_enc: self.cipher.seal(session_ref(owner, address), record)?,
        };
        dispatch_write!(self.apply_one(owner, &op))
    }

    pub async fn delete_session(
        &self,
        device: &DeviceId,
        address: &Address,
    ) -> Result<bool, StoreError> {
        dispatch_write!(self.delete_session(device.as_str(), &address.name, to_i64(address.device)))
    }

    /// Deletes the sessions with every device of user `name`; returns how many.
    pub async fn delete_sessions_of(
        &self,
        device: &DeviceId,
        name: &str,
    ) -> Result<u64, StoreError> {
        dispatch_write!(self.delete_sessions_of(device.as_str(), name))
    }

    /// Device numbers of user `name` that have a session, ascending.
    pub async fn session_devices(
        &self,
        device: &DeviceId,
        name: &str,
    ) -> Result<Vec<u32>, StoreError> {
        dispatch!(self.session_devices(device.as_str(), name))?
            .into_iter()
            .map(|v| to_u32(v, "sessions.device"))
            .collect()
    }

    // ---- sender keys ----

    pub async fn load_sender_key(
        &self,
        device: &DeviceId,
        name: &SenderKeyName,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let owner = device.as_str();
        dispatch!(self.load_sender_key(
            owner,
            &name.group,
            &name.sender.name,
            to_i64(name.sender.device)
        ))?
        .map(|sealed| self.cipher.open(sender_key_ref(owner, name), &sealed))
        .transpose()
    }

    /// Durable when it returns `Ok`.
    pub async fn store_sender_key(
        &self,
        device: &DeviceId,
        name: &SenderKeyName,
        record: &[u8],
    ) -> Result<(), StoreError> {
        let owner = device.as_str();
        let op = RowOp::PutSenderKey {
            group: name.group.clone(),
            name: name.sender.name.clone(),
            device: to_i64(name.sender.device),
            record_enc: self.cipher.seal(sender_key_ref(owner, name), record)?,
        };
        dispatch_write!(self.apply_one(owner, &op))
    }

    pub async fn delete_sender_key(
        &self,
        device: &DeviceId,
        name: &SenderKeyName,
    ) -> Result<bool, StoreError> {
        dispatch_write!(self.delete_sender_key(
            device.as_str(),
            &name.group,
            &name.sender.name,
            to_i64(name.sender.device)
        ))
    }

    // ---- transactions ----

    /// Applies every write of `batch` in one transaction: all or none. On SQLite, batches applied
    /// concurrently (by many sessions) share one transaction and one fsync, each still all or
    /// none (see `group_commit`).
    ///
    /// Contract: when this returns `Ok`, the writes are durable (committed; on SQLite the WAL is
    /// fsynced) and a crash at any later point keeps them. When it returns `Err`, none of them
    /// happened. Persist the ratchet state that produced a ciphertext this way before sending
    /// the ciphertext. Fails with [`StoreError::UnknownDevice`] if the device does not exist.
    pub async fn apply(&self, device: &DeviceId, batch: Batch) -> Result<(), StoreError> {
        let owner = device.as_str();
        let ops = batch
            .ops
            .iter()
            .map(|op| self.seal_op(owner, op))
            .collect::<Result<Vec<_>, StoreError>>()?;
        match &self.group {
            Some(group) => group.apply(owner, ops).await,
            None => dispatch_write!(self.apply(owner, &ops)),
        }
    }

    /// Stores the session created from an incoming prekey message and removes the one-time
    /// prekey it used, atomically (see [`Store::apply`] for the durability contract). A crash
    /// can therefore never leave the prekey gone without the session, or the session stored
    /// with a reusable prekey.
    pub async fn store_session_and_consume_prekey(
        &self,
        device: &DeviceId,
        address: &Address,
        record: &[u8],
        prekey_id: Option<u32>,
    ) -> Result<(), StoreError> {
        let mut batch = Batch::new().store_session(address.clone(), record);
        if let Some(id) = prekey_id {
            batch = batch.remove_prekey(id);
        }
        self.apply(device, batch).await
    }

    // ---- receive inbox ----

    /// Every message waiting in `device`'s receive inbox, oldest first (see
    /// [`BatchOp::PutInbox`]). A row that does not open under this key is an error, not skipped:
    /// skipping it would lose the message.
    pub async fn load_inbox(&self, device: &DeviceId) -> Result<Vec<InboxEntry>, StoreError> {
        let owner = device.as_str();
        let rows: Vec<InboxRow> = dispatch!(self.load_inbox(owner))?;
        rows.into_iter()
            .map(|row| {
                let body = self
                    .cipher
                    .open(inbox_ref(owner, &row.sender, &row.msg_id), &row.body_enc)?;
                Ok(InboxEntry {
                    sender: row.sender,
                    id: row.msg_id,
                    body,
                })
            })
            .collect()
    }

    /// Removes the named messages (`(sender, id)`) from `device`'s inbox in one transaction;
    /// names not there are ignored. Returns how many rows went.
    pub async fn delete_inbox(
        &self,
        device: &DeviceId,
        names: &[(String, String)],
    ) -> Result<u64, StoreError> {
        if names.is_empty() {
            return Ok(0);
        }
        dispatch_write!(self.delete_inbox(device.as_str(), names))
    }

    /// How many messages wait in `device`'s inbox.
    pub async fn count_inbox(&self, device: &DeviceId) -> Result<u64, StoreError> {
        dispatch!(self.count_inbox(device.as_str()))
    }

    // ---- sealing ----

    fn seal_op(&self, owner: &str, op: &BatchOp) -> Result<RowOp, StoreError> {
        Ok(match op {
            BatchOp::StoreSession { address, record } => RowOp::PutSession {
                name: address.name.clone(),
                device: to_i64(address.device),
                record_enc: self.cipher.seal(session_ref(owner, address), record)?,
            },
            BatchOp::DeleteSession { address } => RowOp::DeleteSession {
                name: address.name.clone(),
                device: to_i64(address.device),
            },
            BatchOp::RemovePreKey { id } => RowOp::RemovePreKey { id: to_i64(*id) },
            BatchOp::StoreSenderKey { name, record } => RowOp::PutSenderKey {
                group: name.group.clone(),
                name: name.sender.name.clone(),
                device: to_i64(name.sender.device),
                record_enc: self.cipher.seal(sender_key_ref(owner, name), record)?,
            },
            BatchOp::SaveIdentity { address, identity } => RowOp::PutIdentity {
                name: address.name.clone(),
                device: to_i64(address.device),
                row: identity_row(identity),
            },
            BatchOp::PutInbox(entry) => RowOp::PutInbox(InboxRow {
                sender: entry.sender.clone(),
                msg_id: entry.id.clone(),
                body_enc: self
                    .cipher
                    .seal(inbox_ref(owner, &entry.sender, &entry.id), &entry.body)?,
            }),
        })
    }

    fn seal_signed_prekey(
        &self,
        owner: &str,
        spk: &SignedPreKey,
    ) -> Result<SignedPreKeyRow, StoreError> {
        Ok(SignedPreKeyRow {
            id: to_i64(spk.id),
            public_key: spk.key_pair.public.to_vec(),
            private_enc: self.cipher.seal(
                signed_prekey_ref(owner, spk.id),
                spk.key_pair.private.expose(),
            )?,
            signature: spk.signature.to_vec(),
            created_at: i64::try_from(spk.created_at)
                .map_err(|_| StoreError::OutOfRange("signed prekey created_at"))?,
        })
    }

    fn open_signed_prekey(
        &self,
        owner: &str,
        row: &SignedPreKeyRow,
    ) -> Result<SignedPreKey, StoreError> {
        let id = to_u32(row.id, "signed_prekeys.id")?;
        let private = Zeroizing::new(
            self.cipher
                .open(signed_prekey_ref(owner, id), &row.private_enc)?,
        );
        Ok(SignedPreKey {
            id,
            key_pair: KeyPairBytes {
                public: to_key32(&row.public_key, "signed_prekeys.public_key")?,
                private: Secret32::from_slice(&private)
                    .ok_or(StoreError::Corrupt("signed_prekeys.private"))?,
            },
            signature: <[u8; 64]>::try_from(row.signature.as_slice())
                .map_err(|_| StoreError::Corrupt("signed_prekeys.signature"))?,
            created_at: u64::try_from(row.created_at)
                .map_err(|_| StoreError::Corrupt("signed_prekeys.created_at"))?,
        })
    }

    fn open_prekey(&self, owner: &str, id: u32, row: &PreKeyRow) -> Result<PreKey, StoreError> {
        let private = Zeroizing::new(self.cipher.open(prekey_ref(owner, id), &row.private_enc)?);
        Ok(PreKey {
            id,
            key_pair: KeyPairBytes {
                public: to_key32(&row.public_key, "prekeys.public_key")?,
                private: Secret32::from_slice(&private)
                    .ok_or(StoreError::Corrupt("prekeys.private"))?,
            },
        })
    }

    fn seal_credentials(
        &self,
        owner: &str,
        c: &DeviceCredentials,
    ) -> Result<(DeviceRow, SignedPreKeyRow), StoreError> {
        let mut secrets = Zeroizing::new(Vec::with_capacity(SECRETS_LEN));
        secrets.extend_from_slice(c.noise_key.private.expose());
        secrets.extend_from_slice(c.identity_key.private.expose());
        secrets.extend_from_slice(c.adv_secret_key.expose());
        let account = c.account.as_ref();
        let row = DeviceRow {
            registration_id: to_i64(c.registration_id),
            noise_public: c.noise_key.public.to_vec(),
            identity_public: c.identity_key.public.to_vec(),
            signed_prekey_id: to_i64(c.signed_prekey.id),
            secrets_enc: self.cipher.seal(credentials_ref(owner), &secrets)?,
            account_jid: account.map(|a| a.account_jid.clone()),
            device_jid: account.map(|a| a.device_jid.clone()),
            lid: account.and_then(|a| a.lid.clone()),
            adv_signed_identity: account.map(|a| a.adv_signed_identity.clone()),
            push_name: c.push_name.clone(),
            platform: c.platform.clone(),
            business_name: account.and_then(|a| a.business_name.clone()),
            routing_info: c.routing_info.clone(),
        };
        let spk = self.seal_signed_prekey(owner, &c.signed_prekey)?;
        Ok((row, spk))
    }

    fn open_credentials(
        &self,
        owner: &str,
        row: DeviceRow,
        spk: SignedPreKeyRow,
    ) -> Result<DeviceCredentials, StoreError> {
        let secrets = Zeroizing::new(self.cipher.open(credentials_ref(owner), &row.secrets_enc)?);
        if secrets.len() != SECRETS_LEN {
            return Err(StoreError::Corrupt("devices.secrets"));
        }
        let part = |i: usize| {
            secrets
                .get(i * 32..(i + 1) * 32)
                .and_then(Secret32::from_slice)
                .ok_or(StoreError::Corrupt("devices.secrets"))
        };
        let account = match (row.account_jid, row.device_jid, row.adv_signed_identity) {
            (Some(account_jid), Some(device_jid), Some(adv_signed_identity)) => Some(Account {
                account_jid,
                device_jid,
                lid: row.lid,
                adv_signed_identity,
                business_name: row.business_name,
            }),
            (None, None, None) => None,
            _ => return Err(StoreError::Corrupt("devices.account")),
        };
        Ok(DeviceCredentials {
            registration_id: to_u32(row.registration_id, "devices.registration_id")?,
            noise_key: KeyPairBytes {
                public: to_key32(&row.noise_public, "devices.noise_public")?,
                private: part(0)?,
            },
            identity_key: KeyPairBytes {
                public: to_key32(&row.identity_public, "devices.identity_public")?,
                private: part(1)?,
            },
            signed_prekey: self.open_signed_prekey(owner, &spk)?,
            adv_secret_key: part(2)?,
            account,
            push_name: row.push_name,
            platform: row.platform,
            routing_info: row.routing_info,
        })
    }
}

fn identity_row(identity: &IdentityRecord) -> IdentityRow {
    IdentityRow {
        identity_key: identity.key.to_vec(),
        trust: identity.trust.to_i64(),
    }
}

fn identity_from_row(row: &IdentityRow) -> Result<IdentityRecord, StoreError> {
    Ok(IdentityRecord {
        key: to_key32(&row.identity_key, "identities.identity_key")?,
        trust: Trust::from_i64(row.trust)?,
    })
}

// Which row a sealed value belongs to (bound into the AAD).

fn credentials_ref(owner: &str) -> RowRef<'_> {
    RowRef {
        owner,
        table: "devices",
        key: vec![b"secrets".to_vec()],
    }
}

fn session_ref<'a>(owner: &'a str, address: &'a Address) -> RowRef<'a> {
    RowRef {
        owner,
        table: "sessions",
        key: vec![
            address.name.as_bytes().to_vec(),
            address.device.to_be_bytes().to_vec(),
        ],
    }
}

fn sender_key_ref<'a>(owner: &'a str, name: &'a SenderKeyName) -> RowRef<'a> {
    RowRef {
        owner,
        table: "sender_keys",
        key: vec![
            name.group.as_bytes().to_vec(),
            name.sender.name.as_bytes().to_vec(),
            name.sender.device.to_be_bytes().to_vec(),
        ],
    }
}

fn prekey_ref(owner: &str, id: u32) -> RowRef<'_> {
    RowRef {
        owner,
        table: "prekeys",
        key: vec![id.to_be_bytes().to_vec()],
    }
}

fn signed_prekey_ref(owner: &str, id: u32) -> RowRef<'_> {
    RowRef {
        owner,
        table: "signed_prekeys",
        key: vec![id.to_be_bytes().to_vec()],
    }
}

fn inbox_ref<'a>(owner: &'a str, sender: &'a str, id: &'a str) -> RowRef<'a> {
    RowRef {
        owner,
        table: "inbox",
        key: vec![sender.as_bytes().to_vec(), id.as_bytes().to_vec()],
    }
}

fn valid_schema_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && s.bytes().next().is_some_and(|b| !b.is_ascii_digit())
}

fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|source| StoreError::DataDir {
        path: dir.to_path_buf(),
        source,
    })
}
