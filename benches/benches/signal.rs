//! Signal hot paths: session setup, pairwise encrypt/decrypt of a 200-byte message, and a group
//! send to 256 member devices (one sender-key encrypt plus the distribution message encrypted
//! pairwise to each device, the cost of a first send or a key rotation).

#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use chacha20::ChaCha20Rng;
use criterion::{Criterion, criterion_group, criterion_main};
use rand_core::SeedableRng;
use zapin_protocol::signal::{
    self, LocalIdentity, PreKey, PreKeyBundle, PreKeySecrets, PreKeySignalMessage, SenderKeyRecord,
    SessionRecord, SignedPreKey,
};

struct Device {
    identity: LocalIdentity,
    signed: SignedPreKey,
    one_time: PreKey,
}

fn device(rng: &mut ChaCha20Rng) -> Device {
    let identity = LocalIdentity::generate(rng);
    let signed = SignedPreKey::generate(&identity, 1, rng);
    let one_time = PreKey::generate(1, rng);
    Device {
        identity,
        signed,
        one_time,
    }
}

fn bundle(d: &Device) -> PreKeyBundle {
    PreKeyBundle::from_local(&d.identity, &d.signed, Some(&d.one_time))
}

/// Alice's and Bob's records after one round trip (both sides on `msg`).
fn established(rng: &mut ChaCha20Rng) -> (SessionRecord, SessionRecord) {
    let alice = device(rng);
    let bob = device(rng);
    let a = signal::initiate_session(&SessionRecord::new(), &alice.identity, &bundle(&bob), rng)
        .unwrap();
    let (a, first) = signal::encrypt(&a, b"hi").unwrap();
    let first = PreKeySignalMessage::parse(first.serialized()).unwrap();
    let secrets = PreKeySecrets {
        signed_pre_key: Some(&bob.signed),
        one_time_pre_key: Some(&bob.one_time),
    };
    let b =
        signal::decrypt_prekey_message(&SessionRecord::new(), &bob.identity, &first, secrets, rng)
            .unwrap()
            .record;
    let (b, reply) = signal::encrypt(&b, b"yo").unwrap();
    let (a, _) = signal::decrypt_message(&a, reply.serialized(), rng).unwrap();
    (a, b)
}

fn bench(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let alice = device(&mut rng);
    let bob = device(&mut rng);
    let bob_bundle = bundle(&bob);
    let plaintext = [0x42u8; 200];

    c.bench_function("signal/session_setup_initiator", |b| {
        b.iter(|| {
            signal::initiate_session(
                &SessionRecord::new(),
                &alice.identity,
                black_box(&bob_bundle),
                &mut rng,
            )
            .unwrap()
        })
    });

    let a = signal::initiate_session(
        &SessionRecord::new(),
        &alice.identity,
        &bob_bundle,
        &mut rng,
    )
    .unwrap();
    let (_, first) = signal::encrypt(&a, &plaintext).unwrap();
    let first = PreKeySignalMessage::parse(first.serialized()).unwrap();
    c.bench_function("signal/session_setup_responder_first_pkmsg", |b| {
        b.iter(|| {
            let secrets = PreKeySecrets {
                signed_pre_key: Some(&bob.signed),
                one_time_pre_key: Some(&bob.one_time),
            };
            signal::decrypt_prekey_message(
                &SessionRecord::new(),
                &bob.identity,
                black_box(&first),
                secrets,
                &mut rng,
            )
            .unwrap()
        })
    });

    let (a, b) = established(&mut rng);
    c.bench_function("signal/encrypt_200B", |bch| {
        bch.iter(|| signal::encrypt(black_box(&a), &plaintext).unwrap())
    });
    // Alice's first message after a turn carries a new ratchet key: Bob does a DH ratchet step.
    let (a2, msg) = signal::encrypt(&a, &plaintext).unwrap();
    c.bench_function("signal/decrypt_200B_new_ratchet_key", |bch| {
        bch.iter(|| signal::decrypt_message(black_box(&b), msg.serialized(), &mut rng).unwrap())
    });
    // The next one is on the same chain: symmetric steps only.
    let (b2, _) = signal::decrypt_message(&b, msg.serialized(), &mut rng).unwrap();
    let (_, msg2) = signal::encrypt(&a2, &plaintext).unwrap();
    c.bench_function("signal/decrypt_200B_same_chain", |bch| {
        bch.iter(|| signal::decrypt_message(black_box(&b2), msg2.serialized(), &mut rng).unwrap())
    });
    let record_bytes = a.to_bytes();
    c.bench_function("signal/record_decode_encode", |bch| {
        bch.iter(|| {
            SessionRecord::from_bytes(black_box(&record_bytes))
                .unwrap()
                .to_bytes()
        })
    });

    let (own, skdm) = signal::create_sender_key_distribution(&SenderKeyRecord::new(), &mut rng);
    let member = signal::process_sender_key_distribution(&SenderKeyRecord::new(), &skdm);
    c.bench_function("signal/group_encrypt_200B", |bch| {
        bch.iter(|| signal::group_encrypt(black_box(&own), &plaintext, &mut rng).unwrap())
    });
    let (_, gmsg) = signal::group_encrypt(&own, &plaintext, &mut rng).unwrap();
    c.bench_function("signal/group_decrypt_200B", |bch| {
        bch.iter(|| signal::group_decrypt(black_box(&member), gmsg.serialized()).unwrap())
    });

    let sessions: Vec<SessionRecord> = (0..256).map(|_| established(&mut rng).0).collect();
    // The SKDM travels inside a padded Message protobuf; ~100 bytes is its real size.
    let skdm_payload = [0x17u8; 100];
    let mut group = c.benchmark_group("signal/group_send_256_members");
    group.sample_size(20);
    group.bench_function("group_encrypt_plus_256_skdm_encrypts", |bch| {
        bch.iter(|| {
            let (_, g) = signal::group_encrypt(&own, &plaintext, &mut rng).unwrap();
            let mut total = g.serialized().len();
            for s in &sessions {
                let (_, m) = signal::encrypt(s, &skdm_payload).unwrap();
                total += m.serialized().len();
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
