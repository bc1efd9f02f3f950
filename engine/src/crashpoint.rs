//! Named crash points for kill-point tests.
//!
//! A durability claim ("a crash at any step loses nothing") is only as good as the tests that
//! crash at every step. Code on a durable path calls [`hit`] with a stable name at each step
//! boundary; a test starts the real binary with `ZAPIN_CRASHPOINT=name` (or `name:N` for the
//! N-th time the point is reached, counting from 1) and the process aborts there, as abruptly as
//! a SIGKILL: no destructors, no flushing, no graceful shutdown.
//!
//! Unset (every production run) a point costs one relaxed atomic load. The variable is read
//! once per process.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable naming the point to crash at.
pub const ENV: &str = "ZAPIN_CRASHPOINT";

struct Armed {
    name: String,
    at: u64,
    seen: AtomicU64,
}

fn armed() -> Option<&'static Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let spec = std::env::var(ENV).ok()?;
            let (name, at) = parse(&spec)?;
            Some(Armed {
                name,
                at,
                seen: AtomicU64::new(0),
            })
        })
        .as_ref()
}

/// `name` or `name:N` (N ≥ 1); anything else arms nothing.
fn parse(spec: &str) -> Option<(String, u64)> {
    let spec = spec.trim();
    let (name, at) = match spec.rsplit_once(':') {
        Some((name, n)) => (name, n.parse().ok().filter(|n| *n >= 1)?),
        None => (spec, 1),
    };
    (!name.is_empty()).then(|| (name.to_owned(), at))
}

/// Aborts the process if `name` is the armed point and this is its N-th hit.
#[inline]
pub fn hit(name: &str) {
    let Some(armed) = armed() else { return };
    if armed.name != name {
        return;
    }
    if armed.seen.fetch_add(1, Ordering::Relaxed) + 1 == armed.at {
        // stderr is unbuffered: the test can see which point fired.
        eprintln!("zapin: crash point {name} reached; aborting");
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn specs_parse() {
        assert_eq!(
            parse("receive.committed"),
            Some(("receive.committed".into(), 1))
        );
        assert_eq!(
            parse("receive.committed:7"),
            Some(("receive.committed".into(), 7))
        );
        assert_eq!(parse("a:b:3"), Some(("a:b".into(), 3)));
        assert_eq!(parse("x:0"), None);
        assert_eq!(parse("x:y"), None);
        assert_eq!(parse(""), None);
        assert_eq!(parse(":3"), None);
    }
}
