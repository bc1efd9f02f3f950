//! JID string parser: must never panic, and every accepted string prints back identically
//! (the node encoder relies on this to decide when a string may be written as a JID).
#![no_main]

use libfuzzer_sys::fuzz_target;
use zapin_protocol::jid::Jid;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(jid) = s.parse::<Jid>() {
        assert_eq!(jid.to_string(), s);
        let _ = jid.signal_address();
        let _ = jid.to_non_ad();
    }
});
