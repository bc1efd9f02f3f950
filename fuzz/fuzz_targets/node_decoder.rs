//! `binary::unpack` (flags byte, zlib path, node decoder) on arbitrary input: must never panic,
//! and whatever decodes must re-encode and decode to the same node.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zapin_protocol::binary::{self, DecodeLimits};

fuzz_target!(|data: &[u8]| {
    // A small inflate cap keeps zlib bombs cheap while still exercising the cap.
    let limits = DecodeLimits {
        max_inflated_len: 1 << 16,
        ..DecodeLimits::default()
    };
    if let Ok(node) = binary::unpack_with(data, &limits) {
        let packed = binary::pack(&node).expect("decoded node must re-encode");
        let again = binary::unpack(&packed).expect("re-encoded node must decode");
        let packed2 = binary::pack(&again).expect("second encode");
        // Wire-stable after one normalisation (string content may come back as bytes).
        assert_eq!(packed, packed2);
    }
});
