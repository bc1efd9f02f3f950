//! What the dashboard reads from request headers before anyone is signed in: the language from
//! `Accept-Language` and cookie values from `Cookie`. No panic; a chosen language is one the
//! catalogue has, with a positive finite quality; a cookie value never spans two cookies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zapin_gateway::dashboard::i18n::{Lang, best_of_accept_language, cookie_in};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Some((q, lang)) = best_of_accept_language(&text) {
        assert!(q.is_finite() && q > 0.0, "{q}");
        assert!(Lang::CHOICES.contains(&lang));
    }
    for name in ["zapin_session", "zapin_login", "zapin_lang"] {
        if let Some(value) = cookie_in(&text, name) {
            assert!(!value.contains(';'));
            assert!(text.contains(value));
        }
    }
});
