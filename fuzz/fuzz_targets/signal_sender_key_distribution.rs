//! SenderKeyDistributionMessage parsing and storing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zapin_protocol::signal::{self, SenderKeyDistributionMessage, SenderKeyRecord};

fuzz_target!(|data: &[u8]| {
    if let Ok(skdm) = SenderKeyDistributionMessage::parse(data) {
        let record = signal::process_sender_key_distribution(&SenderKeyRecord::new(), &skdm);
        let again = SenderKeyRecord::from_bytes(&record.to_bytes());
        assert!(again.is_ok(), "a stored record must read back");
    }
});
