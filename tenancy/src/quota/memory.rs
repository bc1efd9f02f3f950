//! In-process counters: the default backend, persisted so a restart or crash loses no usage.
//!
//! Decisions are made in memory: counters are sharded by tenant (16 mutex-protected maps, so
//! tenants do not contend with each other and a charge's windows sit behind one lock, which is
//! what makes check-and-add exact under concurrency).
//!
//! Durability is a write-ahead journal plus periodic flushes to SQL:
//!
//! * Every change (charge, refund, release, reconcile) is appended as one line to its shard's
//!   journal file (`quota-journal-<shard>.log` in the data directory) *before* the call returns,
//!   under the shard lock. The line is one `write(2)` of ~80 bytes into the page cache (no
//!   fsync), about a microsecond: a crashed or killed process loses nothing, since the kernel
//!   keeps what was written. One line holds all windows of a change, so a line torn by a crash
//!   (the request was never answered) is dropped whole on replay.
//! * Every second (and on [`MemoryCounters::flush`] at shutdown) the changes accumulated since
//!   the last flush are added to `quota_counters` in one SQL transaction that also records, per
//!   shard, the journal sequence number the flush covers (`quota_flush`). The journal is rotated
//!   at that moment (`.log` → `.old`, deleted after the commit), so it stays small.
//! * On start the counters are loaded from SQL and the journal lines past the recorded sequence
//!   numbers are replayed. A crash between the SQL commit and the journal deletion replays
//!   nothing twice, because the sequence numbers say what SQL already has.
//!
//! So a process crash loses nothing; losing the machine's page cache (power loss, kernel
//! panic) can lose at most the last second of usage, which the SQL flush would have written.
//! fsyncing each line would close that gap for ~1 ms per request on common disks; it is not
//! worth it for counters.
//!
//! Without a journal directory and pool ([`MemoryCounters::volatile`]) nothing is persisted
//! (tests, benches). One node's counters are its own: several nodes sharing a budget need Redis.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::{BoxFuture, CounterKey, CounterStore, Slot, TryAdd};
use crate::Clock;
use crate::error::TenancyError;
use crate::plan::{QuotaType, Window};
use crate::sql::{SqlPool, SqlTx, with_pool, with_tx};

/// Shards of the counter map. Fixed: journal files are named by shard, so changing it would
/// orphan journal lines.
const SHARDS: usize = 16;
/// How often a shard drops counters of windows that have ended (seconds).
const SWEEP_EVERY: i64 = 60;

/// Where the in-process counters persist.
#[derive(Debug, Clone)]
pub struct MemoryOptions {
    /// The journal's directory (the data directory).
    pub journal_dir: PathBuf,
    /// The database the counters are flushed to.
    pub pool: SqlPool,
    /// How often [`MemoryCounters::spawn_flusher`] flushes.
    pub flush_every: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    used: u64,
    /// When the window ends (`None`: `total`).
    end: Option<i64>,
}

#[derive(Debug)]
struct Journal {
    file: File,
    path: PathBuf,
    old: PathBuf,
}

#[derive(Debug, Default)]
struct Shard {
    counters: HashMap<CounterKey, Entry>,
    /// Changes not yet flushed to SQL.
    pending: HashMap<CounterKey, i64>,
    /// The last journal sequence number written.
    seq: u64,
    journal: Option<Journal>,
    last_sweep: i64,
}

#[derive(Debug)]
struct Persist {
    pool: SqlPool,
    node_id: String,
    flush_every: Duration,
    /// One flush at a time.
    flushing: tokio::sync::Mutex<()>,
}

/// In-process counters (see the module doc). Cheap to clone.
#[derive(Debug, Clone)]
pub struct MemoryCounters {
    shards: Arc<[Mutex<Shard>]>,
    persist: Option<Arc<Persist>>,
    clock: Arc<dyn Clock>,
}

fn shard_of(tenant: &str) -> usize {
    let mut h = DefaultHasher::new();
    tenant.hash(&mut h);
    usize::try_from(h.finish() % SHARDS as u64).unwrap_or(0)
}

fn journal_err(path: &Path) -> impl FnOnce(std::io::Error) -> TenancyError + '_ {
    move |source| TenancyError::Journal {
        path: path.display().to_string(),
        source,
    }
}

/// Tenant ids go into journal lines between separators: only plain graphic characters.
fn journal_safe(tenant: &str) -> bool {
    !tenant.is_empty()
        && tenant
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b',' | b':'))
}

/// `seq tenant quota window:start:delta,…`
fn journal_line(seq: u64, key: &CounterKey, changes: &[(Window, i64, i64)]) -> String {
    let mut line = format!("{seq} {} {}", key.tenant, key.quota);
    for (i, (window, start, delta)) in changes.iter().enumerate() {
        line.push(if i == 0 { ' ' } else { ',' });
        line.push_str(&format!("{window}:{start}:{delta}"));
    }
    line.push('\n');
    line
}

type Parsed = (u64, Vec<(CounterKey, i64)>);

fn parse_line(line: &str) -> Option<Parsed> {
    let mut parts = line.split(' ');
    let seq = parts.next()?.parse().ok()?;
    let tenant: Arc<str> = Arc::from(parts.next()?);
    let quota = QuotaType::parse(parts.next()?)?;
    let changes = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    let mut out = Vec::new();
    for change in changes.split(',') {
        let mut f = change.split(':');
        let window = Window::parse(f.next()?)?;
        let start = f.next()?.parse().ok()?;
        let delta = f.next()?.parse().ok()?;
        if f.next().is_some() {
            return None;
        }
        out.push((
            CounterKey {
                tenant: tenant.clone(),
                quota,
                window,
                start,
            },
            delta,
        ));
    }
    Some((seq, out))
}

fn apply_delta(used: u64, delta: i64) -> u64 {
    if delta >= 0 {
        used.saturating_add(delta.unsigned_abs())
    } else {
        used.saturating_sub(delta.unsigned_abs())
    }
}

impl Shard {
    fn value(&self, key: &CounterKey) -> u64 {
        self.counters.get(key).map_or(0, |e| e.used)
    }

    /// Writes one journal line (if persistent) and records the changes as pending. On a write
    /// error nothing is recorded and the caller undoes its in-memory change.
    fn log(&mut self, key: &CounterKey, changes: &[(CounterKey, i64)]) -> Result<(), TenancyError> {
        let Some(journal) = &mut self.journal else {
            return Ok(());
        };
        let seq = self.seq + 1;
        let compact: Vec<(Window, i64, i64)> = changes
            .iter()
            .map(|(k, d)| (k.window, k.start, *d))
            .collect();
        journal
            .file
            .write_all(journal_line(seq, key, &compact).as_bytes())
            .map_err(journal_err(&journal.path))?;
        self.seq = seq;
        for (k, d) in changes {
            *self.pending.entry(k.clone()).or_insert(0) += d;
        }
        Ok(())
    }

    fn sweep(&mut self, now: i64) {
        if now - self.last_sweep < SWEEP_EVERY {
            return;
        }
        self.last_sweep = now;
        let pending = &self.pending;
        self.counters
            .retain(|k, e| e.end.is_none_or(|end| end > now) || pending.contains_key(k));
    }
}

impl MemoryCounters {
    /// Counters that live and die with the process.
    pub fn volatile(clock: Arc<dyn Clock>) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            persist: None,
            clock,
        }
    }

    /// Loads the flushed counters, replays the journal past them, and flushes once so the
    /// journal starts fresh.
    pub async fn open(options: MemoryOptions, clock: Arc<dyn Clock>) -> Result<Self, TenancyError> {
        let dir = &options.journal_dir;
        std::fs::create_dir_all(dir).map_err(journal_err(dir))?;
        let node_id = node_id(dir)?;
        let now = clock.now_ms().div_euclid(1000);
        let mut shards: Vec<Shard> = (0..SHARDS).map(|_| Shard::default()).collect();

        // Flushed state: totals, and every window that can still matter (from the start of the
        // previous month on; older windows are read from SQL on demand).
        let since = crate::time::month_start(crate::time::month_start(now) - 1);
        let rows: Vec<(String, String, String, i64, i64)> = with_pool!(&options.pool, |c| {
            sqlx::query_as(
                "SELECT tenant_id, quota, period, start, used FROM quota_counters \
                 WHERE period = 'total' OR start >= $1",
            )
            .bind(since)
            .fetch_all(c)
            .await?
        });
        for (tenant, quota, period, start, used) in rows {
            let (Some(quota), Some(window)) = (QuotaType::parse(&quota), Window::parse(&period))
            else {
                tracing::warn!(%quota, %period, "skipping an unknown quota counter row");
                continue;
            };
            let key = CounterKey {
                tenant: Arc::from(tenant.as_str()),
                quota,
                window,
                start,
            };
            let entry = Entry {
                used: u64::try_from(used).unwrap_or(0),
                end: window.end(start),
            };
            if let Some(shard) = shards.get_mut(shard_of(&tenant)) {
                shard.counters.insert(key, entry);
            }
        }

        let marks: Vec<(i64, i64)> = with_pool!(&options.pool, |c| {
            sqlx::query_as("SELECT shard, seq FROM quota_flush WHERE node_id = $1")
                .bind(&node_id)
                .fetch_all(c)
                .await?
        });
        let marks: HashMap<usize, u64> = marks
            .into_iter()
            .filter_map(|(s, q)| Some((usize::try_from(s).ok()?, u64::try_from(q).ok()?)))
            .collect();

        let mut replayed = 0usize;
        for index in 0..SHARDS {
            let path = dir.join(format!("quota-journal-{index}.log"));
            let old = dir.join(format!("quota-journal-{index}.old"));
            let mark = marks.get(&index).copied().unwrap_or(0);
            let mut seq = mark;
            for file in [&old, &path] {
                let records = match File::open(file) {
                    Ok(f) => read_journal(f, file)?,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                    Err(e) => return Err(journal_err(file)(e)),
                };
                for (line_seq, changes) in records {
                    if line_seq <= mark {
                        continue;
                    }
                    seq = seq.max(line_seq);
                    replayed += 1;
                    for (key, delta) in changes {
                        let shard = shards.get_mut(shard_of(&key.tenant));
                        let Some(shard) = shard else { continue };
                        let end = key.window.end(key.start);
                        let entry = shard
                            .counters
                            .entry(key.clone())
                            .or_insert(Entry { used: 0, end });
                        entry.used = apply_delta(entry.used, delta);
                        *shard.pending.entry(key).or_insert(0) += delta;
                    }
                }
            }
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(journal_err(&path))?;
            if let Some(shard) = shards.get_mut(index) {
                shard.seq = seq;
                shard.journal = Some(Journal { file, path, old });
            }
        }
        if replayed > 0 {
            tracing::info!(replayed, "quota journal replayed after an unclean stop");
        }
        let counters = Self {
            shards: shards.into_iter().map(Mutex::new).collect(),
            persist: Some(Arc::new(Persist {
                pool: options.pool,
                node_id,
                flush_every: options.flush_every,
                flushing: tokio::sync::Mutex::new(()),
            })),
            clock,
        };
        counters.flush().await?;
        Ok(counters)
    }

    fn lock(&self, tenant: &str) -> MutexGuard<'_, Shard> {
        let shard = self
            .shards
            .get(shard_of(tenant))
            .or_else(|| self.shards.first());
        // A panic while holding a shard lock cannot leave a counter half-updated (every update
        // is a single assignment), so a poisoned lock is still usable.
        match shard {
            Some(m) => m.lock().unwrap_or_else(|p| p.into_inner()),
            None => unreachable_shards(),
        }
    }

    fn check_tenant(&self, tenant: &str) -> Result<(), TenancyError> {
        if self.persist.is_some() && !journal_safe(tenant) {
            return Err(TenancyError::Invalid(format!(
                "tenant id {tenant:?} cannot be journaled"
            )));
        }
        Ok(())
    }

    /// Writes the changes since the last flush to SQL (see the module doc). Safe to call at any
    /// time; the flusher task calls it every `flush_every`, and the owner once more on shutdown.
    pub async fn flush(&self) -> Result<(), TenancyError> {
        let Some(persist) = &self.persist else {
            return Ok(());
        };
        let _one = persist.flushing.lock().await;
        let mut taken: Vec<(usize, HashMap<CounterKey, i64>, u64)> = Vec::new();
        for (index, shard) in self.shards.iter().enumerate() {
            let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            let pending = std::mem::take(&mut shard.pending);
            let seq = shard.seq;
            if let Some(journal) = &mut shard.journal
                && !journal.old.exists()
                && journal
                    .file
                    .metadata()
                    .map(|m| m.len() > 0)
                    .unwrap_or(false)
            {
                // A failed rotation is not fatal: the journal keeps growing until the next one.
                if let Err(err) = rotate(journal) {
                    tracing::warn!("rotating the quota journal failed: {err}");
                }
            }
            taken.push((index, pending, seq));
        }
        let result = self.write_flush(persist, &taken).await;
        match result {
            Ok(()) => {
                for (index, _, _) in &taken {
                    if let Some(shard) = self.shards.get(*index) {
                        let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
                        if let Some(journal) = &shard.journal
                            && journal.old.exists()
                            && let Err(err) = std::fs::remove_file(&journal.old)
                        {
                            // Harmless: its lines are all at or below the flushed sequence.
                            tracing::warn!("removing {}: {err}", journal.old.display());
                        }
                    }
                }
                Ok(())
            }
            Err(err) => {
                // Put the changes back for the next flush; the journal still has them.
                for (index, pending, _) in taken {
                    if let Some(shard) = self.shards.get(index) {
                        let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
                        for (k, d) in pending {
                            *shard.pending.entry(k).or_insert(0) += d;
                        }
                    }
                }
                Err(err)
            }
        }
    }

    async fn write_flush(
        &self,
        persist: &Persist,
        taken: &[(usize, HashMap<CounterKey, i64>, u64)],
    ) -> Result<(), TenancyError> {
        let mut tx = persist.pool.begin().await?;
        let upsert = match &tx {
            SqlTx::Sqlite(_) => {
                "INSERT INTO quota_counters (tenant_id, quota, period, start, used) \
                 VALUES ($1, $2, $3, $4, MAX(0, $5)) ON CONFLICT (tenant_id, quota, period, start) \
                 DO UPDATE SET used = MAX(0, quota_counters.used + $5)"
            }
            SqlTx::Postgres(_) => {
                "INSERT INTO quota_counters (tenant_id, quota, period, start, used) \
                 VALUES ($1, $2, $3, $4, GREATEST(0, $5)) ON CONFLICT (tenant_id, quota, period, start) \
                 DO UPDATE SET used = GREATEST(0, quota_counters.used + $5)"
            }
        };
        for (index, pending, seq) in taken {
            for (key, delta) in pending {
                if *delta == 0 {
                    continue;
                }
                with_tx!(&mut tx, |c| {
                    sqlx::query(upsert)
                        .bind(&*key.tenant)
                        .bind(key.quota.as_str())
                        .bind(key.window.as_str())
                        .bind(key.start)
                        .bind(*delta)
                        .execute(c)
                        .await?;
                });
            }
            let shard = i64::try_from(*index).unwrap_or(0);
            let seq = i64::try_from(*seq).unwrap_or(i64::MAX);
            with_tx!(&mut tx, |c| {
                sqlx::query(
                    "INSERT INTO quota_flush (node_id, shard, seq) VALUES ($1, $2, $3) \
                     ON CONFLICT (node_id, shard) DO UPDATE SET seq = $3",
                )
                .bind(&persist.node_id)
                .bind(shard)
                .bind(seq)
                .execute(c)
                .await?;
            });
        }
        tx.commit().await
    }

    /// Flushes every `flush_every` until the returned task is aborted (call [`Self::flush`]
    /// once more after aborting it, at shutdown). A failed flush is logged and retried.
    pub fn spawn_flusher(&self) -> Option<tokio::task::JoinHandle<()>> {
        let every = self.persist.as_ref()?.flush_every;
        let this = self.clone();
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(err) = this.flush().await {
                    tracing::warn!("flushing quota counters failed (kept for the next try): {err}");
                }
            }
        }))
    }

    /// Flushed value from SQL for a counter not held in memory (an ended window).
    async fn stored(&self, key: &CounterKey) -> Result<u64, TenancyError> {
        let Some(persist) = &self.persist else {
            return Ok(0);
        };
        let used: Option<i64> = with_pool!(&persist.pool, |c| {
            sqlx::query_scalar(
                "SELECT used FROM quota_counters \
                 WHERE tenant_id = $1 AND quota = $2 AND period = $3 AND start = $4",
            )
            .bind(&*key.tenant)
            .bind(key.quota.as_str())
            .bind(key.window.as_str())
            .bind(key.start)
            .fetch_optional(c)
            .await?
        });
        Ok(used.and_then(|u| u64::try_from(u).ok()).unwrap_or(0))
    }

    fn try_add_now(&self, slots: &[Slot], weight: u64) -> Result<TryAdd, TenancyError> {
        let Some(first) = slots.first() else {
            return Ok(TryAdd::Accepted(Vec::new()));
        };
        self.check_tenant(&first.key.tenant)?;
        let now = self.clock.now_ms().div_euclid(1000);
        let mut shard = self.lock(&first.key.tenant);
        shard.sweep(now);
        let used: Vec<u64> = slots.iter().map(|s| shard.value(&s.key)).collect();
        let fits = slots
            .iter()
            .zip(&used)
            .all(|(s, &u)| s.limit.is_none_or(|l| u.saturating_add(weight) <= l));
        if !fits {
            return Ok(TryAdd::Refused(used));
        }
        let delta = i64::try_from(weight).unwrap_or(i64::MAX);
        let changes: Vec<(CounterKey, i64)> =
            slots.iter().map(|s| (s.key.clone(), delta)).collect();
        shard.log(&first.key, &changes)?;
        let mut after = Vec::with_capacity(slots.len());
        for s in slots {
            let end = s.key.window.end(s.key.start);
            let entry = shard
                .counters
                .entry(s.key.clone())
                .or_insert(Entry { used: 0, end });
            entry.used = entry.used.saturating_add(weight);
            after.push(entry.used);
        }
        Ok(TryAdd::Accepted(after))
    }

    fn adjust_now(&self, keys: &[CounterKey], delta: i64) -> Result<(), TenancyError> {
        let Some(first) = keys.first() else {
            return Ok(());
        };
        self.check_tenant(&first.tenant)?;
        for key in keys {
            // All keys of one call belong to one tenant, so to one shard.
            let mut shard = self.lock(&key.tenant);
            let Some(entry) = shard.counters.get(key).copied() else {
                continue;
            };
            let after = apply_delta(entry.used, delta);
            let applied = i64::try_from(after).unwrap_or(i64::MAX)
                - i64::try_from(entry.used).unwrap_or(i64::MAX);
            if applied == 0 {
                continue;
            }
            shard.log(key, &[(key.clone(), applied)])?;
            shard.counters.insert(
                key.clone(),
                Entry {
                    used: after,
                    ..entry
                },
            );
        }
        Ok(())
    }

    fn set_now(&self, key: &CounterKey, value: u64) -> Result<(), TenancyError> {
        self.check_tenant(&key.tenant)?;
        let mut shard = self.lock(&key.tenant);
        let current = shard.value(key);
        let applied =
            i64::try_from(value).unwrap_or(i64::MAX) - i64::try_from(current).unwrap_or(i64::MAX);
        if applied == 0 {
            return Ok(());
        }
        shard.log(key, &[(key.clone(), applied)])?;
        let end = key.window.end(key.start);
        shard
            .counters
            .insert(key.clone(), Entry { used: value, end });
        Ok(())
    }
}

/// `.log` → `.old`, and a fresh `.log`.
fn rotate(journal: &mut Journal) -> Result<(), TenancyError> {
    std::fs::rename(&journal.path, &journal.old).map_err(journal_err(&journal.path))?;
    match OpenOptions::new()
        .create(true)
        .append(true)
        .open(&journal.path)
    {
        Ok(file) => {
            journal.file = file;
            Ok(())
        }
        Err(err) => {
            // Keep writing to the file we have, under its own name again, so that deleting
            // `.old` after the flush cannot unlink the live journal.
            std::fs::rename(&journal.old, &journal.path).map_err(journal_err(&journal.old))?;
            Err(journal_err(&journal.path)(err))
        }
    }
}

#[cold]
fn unreachable_shards() -> ! {
    // `shards` is built with SHARDS > 0 entries and never shrinks.
    panic!("quota counters have no shards")
}

fn read_journal(file: File, path: &Path) -> Result<Vec<Parsed>, TenancyError> {
    let mut out = Vec::new();
    for line in BufReader::new(file).lines() {
        let line = line.map_err(journal_err(path))?;
        match parse_line(&line) {
            Some(parsed) => out.push(parsed),
            // A line torn by a crash: its request was never answered.
            None => tracing::warn!(path = %path.display(), "skipping a torn quota journal line"),
        }
    }
    Ok(out)
}

/// This node's id in `quota_flush`, kept beside the journal it describes.
fn node_id(dir: &Path) -> Result<String, TenancyError> {
    let path = dir.join("quota-node-id");
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => return Ok(id.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(journal_err(&path)(e)),
    }
    let id = crate::sql::new_uuid()?;
    std::fs::write(&path, &id).map_err(journal_err(&path))?;
    Ok(id)
}

impl CounterStore for MemoryCounters {
    fn try_add<'a>(
        &'a self,
        slots: &'a [Slot],
        weight: u64,
    ) -> BoxFuture<'a, Result<TryAdd, TenancyError>> {
        Box::pin(async move { self.try_add_now(slots, weight) })
    }

    fn adjust<'a>(
        &'a self,
        keys: &'a [CounterKey],
        delta: i64,
    ) -> BoxFuture<'a, Result<(), TenancyError>> {
        Box::pin(async move { self.adjust_now(keys, delta) })
    }

    fn get<'a>(&'a self, keys: &'a [CounterKey]) -> BoxFuture<'a, Result<Vec<u64>, TenancyError>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                let held = {
                    let shard = self.lock(&key.tenant);
                    shard.counters.get(key).map(|e| e.used)
                };
                out.push(match held {
                    Some(used) => used,
                    None => self.stored(key).await?,
                });
            }
            Ok(out)
        })
    }

    fn set<'a>(
        &'a self,
        key: &'a CounterKey,
        value: u64,
    ) -> BoxFuture<'a, Result<(), TenancyError>> {
        Box::pin(async move { self.set_now(key, value) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_lines_round_trip_and_torn_lines_are_refused() {
        let key = CounterKey {
            tenant: Arc::from("t-1"),
            quota: QuotaType::MessageSend,
            window: Window::Day,
            start: 86_400,
        };
        let line = journal_line(7, &key, &[(Window::Day, 86_400, 2), (Window::Month, 0, -1)]);
        assert_eq!(line, "7 t-1 message_send day:86400:2,month:0:-1\n");
        let (seq, changes) = parse_line(line.trim_end()).unwrap();
        assert_eq!(seq, 7);
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[0], (key.clone(), 2));
        assert_eq!(changes[1].0.window, Window::Month);
        assert_eq!(changes[1].1, -1);
        for torn in [
            "",
            "7",
            "7 t-1",
            "7 t-1 message_send",
            "7 t-1 message_send day:86400",
            "7 t-1 message_send day:86400:2,mon",
            "7 t-1 sms day:1:1",
            "x t-1 message_send day:1:1",
            "7 t-1 message_send day:1:1 extra",
        ] {
            assert_eq!(parse_line(torn), None, "{torn:?}");
        }
        assert!(journal_safe("2b9a0c1e-77aa-4c1f-9b1e-0123456789ab"));
        assert!(!journal_safe("a b"));
        assert!(!journal_safe("a:b"));
        assert!(!journal_safe(""));
    }
}
