//! Helpers for tests that need an external service (shared with other crates' tests through the
//! `testing` feature).

/// The URL of a test service taken from the environment variable `var`.
///
/// Returns `None` (after printing why) when the variable is unset or empty, so the caller can
/// skip the test. Under CI (`CI=true`) a missing service is a failure instead: this panics, so
/// a misconfigured pipeline cannot pass by skipping everything.
pub fn service_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            let ci = std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
            assert!(
                !ci,
                "{var} is not set but CI=true: the service these tests need is missing"
            );
            // Written to the stderr handle rather than with `eprintln!`, which the test harness
            // captures and hides for passing tests: the skip must be visible.
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "skipping: {var} is not set (set it to run tests against the service)"
            );
            None
        }
    }
}
