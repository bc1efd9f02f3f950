//! The receive inbox's record decoder (`zapin_engine::messaging::inbox`): whatever bytes a row
//! holds (a corrupted or foreign database), reading it back never panics, and a record that does
//! decode survives another round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zapin_engine::messaging::inbox::{entry_for, message_of};
use zapin_signal_store::InboxEntry;

fuzz_target!(|data: &[u8]| {
    let entry = InboxEntry {
        sender: "15550000001@s.whatsapp.net".into(),
        id: "3EB0FUZZ".into(),
        body: data.to_vec(),
    };
    if let Ok(message) = message_of(&entry) {
        let again = message_of(&entry_for(&message)).expect("a decoded record re-encodes");
        assert_eq!(again, message);
    }
});
