//! SignalMessage parsing and decryption against an established session: never panics, and a
//! failed decrypt is an error (the record is returned only on success).
#![no_main]

use std::sync::LazyLock;

use chacha20::ChaCha20Rng;
use libfuzzer_sys::fuzz_target;
use rand_core::SeedableRng;
use zapin_protocol::signal::{self, LocalIdentity, PreKeyBundle, SessionRecord, SignedPreKey};

static RECORD: LazyLock<SessionRecord> = LazyLock::new(|| {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let alice = LocalIdentity::generate(&mut rng);
    let bob = LocalIdentity::generate(&mut rng);
    let spk = SignedPreKey::generate(&bob, 1, &mut rng);
    let bundle = PreKeyBundle::from_local(&bob, &spk, None);
    signal::initiate_session(&SessionRecord::new(), &alice, &bundle, &mut rng).unwrap_or_default()
});

fuzz_target!(|data: &[u8]| {
    let _ = signal::SignalMessage::parse(data);
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let _ = signal::decrypt_message(&RECORD, data, &mut rng);
});
