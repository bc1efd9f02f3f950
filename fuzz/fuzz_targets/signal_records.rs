//! Session and sender-key record deserialization (bytes from the store): typed errors only, and
//! whatever parses serializes back to something that parses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zapin_protocol::signal::{SenderKeyRecord, SessionRecord};

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = SessionRecord::from_bytes(data) {
        assert!(SessionRecord::from_bytes(&r.to_bytes()).is_ok());
    }
    if let Ok(r) = SenderKeyRecord::from_bytes(data) {
        assert!(SenderKeyRecord::from_bytes(&r.to_bytes()).is_ok());
    }
});
