//! PreKeySignalMessage parsing and the responder's session setup + decryption.
#![no_main]

use std::sync::LazyLock;

use chacha20::ChaCha20Rng;
use libfuzzer_sys::fuzz_target;
use rand_core::SeedableRng;
use zapin_protocol::signal::{
    self, LocalIdentity, PreKey, PreKeySecrets, PreKeySignalMessage, SessionRecord, SignedPreKey,
};

static KEYS: LazyLock<(LocalIdentity, SignedPreKey, PreKey)> = LazyLock::new(|| {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let bob = LocalIdentity::generate(&mut rng);
    let spk = SignedPreKey::generate(&bob, 1, &mut rng);
    let pk = PreKey::generate(1, &mut rng);
    (bob, spk, pk)
});

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = PreKeySignalMessage::parse(data) else {
        return;
    };
    let (bob, spk, pk) = &*KEYS;
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let secrets = PreKeySecrets {
        signed_pre_key: Some(spk),
        one_time_pre_key: Some(pk),
    };
    let _ = signal::decrypt_prekey_message(&SessionRecord::new(), bob, &msg, secrets, &mut rng);
});
