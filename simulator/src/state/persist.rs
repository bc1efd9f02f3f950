//! The `--state-dir` snapshot: one JSON file holding the whole persistent state.
//!
//! Written by one background task, debounced: a mutation only bumps a generation counter and wakes
//! the task, which waits `DEBOUNCE` (so a burst, e.g. an 812-key prekey upload or a test creating
//! a hundred accounts, becomes one write), serialises under the state lock, and writes outside it
//! to `state.json.tmp`, fsyncs, and renames over `state.json` — a crash leaves either the old or the
//! new snapshot, never a torn one. Shutdown flushes whatever is pending, so a clean restart never
//! loses a change; a crash can lose at most the last `DEBOUNCE` of changes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::SimState;

pub const SNAPSHOT_FILE: &str = "state.json";
pub const DEBOUNCE: Duration = Duration::from_millis(200);

#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("state dir {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("state snapshot {path} is not valid: {source}")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "state dir {path} was created with seed {stored:?}, but this run asked for seed {asked}"
    )]
    SeedMismatch {
        path: PathBuf,
        stored: Option<u64>,
        asked: u64,
    },
}

pub fn snapshot_path(dir: &Path) -> PathBuf {
    dir.join(SNAPSHOT_FILE)
}

/// Reads the snapshot if the directory has one.
pub fn read_snapshot(dir: &Path) -> Result<Option<super::model::State>, PersistError> {
    let path = snapshot_path(dir);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(PersistError::Io { path, source }),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| PersistError::Corrupt { path, source })
}

pub fn write_atomically(dir: &Path, bytes: &[u8]) -> Result<(), PersistError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PersistError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let tmp = dir.join(format!("{SNAPSHOT_FILE}.tmp"));
    let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    drop(f);
    let dest = snapshot_path(dir);
    std::fs::rename(&tmp, &dest).map_err(io(&dest))
}

/// Writes the snapshot whenever the state changed, until `stop` fires; then one last flush.
pub async fn run_persister(
    state: SimState,
    dir: PathBuf,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    // Generation 0 is what was loaded (or nothing, for a fresh dir, which `SimState::open` marks
    // dirty at once), so anything newer needs writing.
    let mut written = 0;
    loop {
        let wake = state.changed();
        tokio::select! {
            _ = wake => {}
            _ = stop.changed() => break,
        }
        tokio::select! {
            _ = tokio::time::sleep(DEBOUNCE) => {}
            _ = stop.changed() => break,
        }
        written = flush(&state, &dir, written).await;
    }
    flush(&state, &dir, written).await;
}

async fn flush(state: &SimState, dir: &Path, written: u64) -> u64 {
    let generation = state.generation();
    if generation == written {
        return written;
    }
    let (generation, bytes) = match state.snapshot_json() {
        Ok(v) => v,
        Err(e) => {
            tracing::error!("state snapshot could not be serialised: {e}");
            return written;
        }
    };
    let dir = dir.to_path_buf();
    match tokio::task::spawn_blocking(move || write_atomically(&dir, &bytes)).await {
        Ok(Ok(())) => generation,
        Ok(Err(e)) => {
            tracing::error!("state snapshot not written: {e}");
            written
        }
        Err(e) => {
            tracing::error!("state snapshot writer failed: {e}");
            written
        }
    }
}
