//! App-state sync verification (`zapin_protocol::appstate`) on arbitrary patches, snapshots and
//! records: decoding and MAC checks never panic, and a refused patch or snapshot leaves the
//! collection state as it was. The first byte picks what the rest is decoded as.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use zapin_protocol::appstate::{CollectionState, MutationKeys, decode_record};
use zapin_protocol::proto::wa::syncd_mutation::SyncdOperation;
use zapin_protocol::proto::wa::{SyncdPatch, SyncdRecord, SyncdSnapshot};

fuzz_target!(|data: &[u8]| {
    let [kind, rest @ ..] = data else {
        return;
    };
    let keys = MutationKeys::expand(&[7u8; 32]);
    // Any key id opens with the same keys, so the MAC checks run on every input.
    let lookup = |_: &[u8]| Some(keys.clone());
    let mut state = CollectionState::default();
    let before = state.clone();
    match kind % 3 {
        0 => {
            if let Ok(p) = SyncdPatch::decode(rest) {
                if state.apply_patch("regular_low", &p, &lookup).is_err() {
                    assert_eq!(state, before);
                }
            }
        }
        1 => {
            if let Ok(s) = SyncdSnapshot::decode(rest) {
                if state.apply_snapshot("regular_low", &s, &lookup).is_err() {
                    assert_eq!(state, before);
                }
            }
        }
        _ => {
            if let Ok(r) = SyncdRecord::decode(rest) {
                let _ = decode_record(SyncdOperation::Remove, &r, &lookup);
            }
        }
    }
});
