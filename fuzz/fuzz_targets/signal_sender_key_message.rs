//! SenderKeyMessage parsing, signature check and group decryption against a known sender key.
#![no_main]

use std::sync::LazyLock;

use chacha20::ChaCha20Rng;
use libfuzzer_sys::fuzz_target;
use rand_core::SeedableRng;
use zapin_protocol::signal::{self, SenderKeyRecord};

static RECORD: LazyLock<SenderKeyRecord> = LazyLock::new(|| {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let (_, skdm) = signal::create_sender_key_distribution(&SenderKeyRecord::new(), &mut rng);
    signal::process_sender_key_distribution(&SenderKeyRecord::new(), &skdm)
});

fuzz_target!(|data: &[u8]| {
    let _ = signal::SenderKeyMessage::parse(data);
    let _ = signal::group_decrypt(&RECORD, data);
});
