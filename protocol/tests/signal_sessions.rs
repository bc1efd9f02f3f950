//! zapin ↔ zapin Signal behaviour: property tests over random send/deliver/drop/replay schedules,
//! and bad input (forged MAC, truncation, wrong version, unknown prekeys) leaving records unchanged.

#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use chacha20::ChaCha20Rng;
use proptest::prelude::*;
use rand_core::SeedableRng;
use zapin_protocol::signal::{
    self, CiphertextMessage, LocalIdentity, PreKey, PreKeyBundle, PreKeySecrets,
    PreKeySignalMessage, SenderKeyRecord, SessionRecord, SignalError, SignalMessage, SignedPreKey,
};

struct Party {
    identity: LocalIdentity,
    signed: SignedPreKey,
    one_time: Option<PreKey>,
    record: SessionRecord,
}

impl Party {
    fn new(rng: &mut ChaCha20Rng) -> Party {
        let identity = LocalIdentity::generate(rng);
        let signed = SignedPreKey::generate(&identity, 7, rng);
        let one_time = Some(PreKey::generate(42, rng));
        Party {
            identity,
            signed,
            one_time,
            record: SessionRecord::new(),
        }
    }

    fn bundle(&self) -> PreKeyBundle {
        PreKeyBundle::from_local(&self.identity, &self.signed, self.one_time.as_ref())
    }

    /// Decrypts either kind; returns the new record without storing it.
    fn try_decrypt(
        &self,
        ty: &str,
        body: &[u8],
        rng: &mut ChaCha20Rng,
    ) -> Result<(SessionRecord, Vec<u8>), SignalError> {
        if ty == "pkmsg" {
            let msg = PreKeySignalMessage::parse(body)?;
            let secrets = PreKeySecrets {
                signed_pre_key: Some(&self.signed),
                one_time_pre_key: self.one_time.as_ref(),
            };
            let out =
                signal::decrypt_prekey_message(&self.record, &self.identity, &msg, secrets, rng)?;
            Ok((out.record, out.plaintext))
        } else {
            signal::decrypt_message(&self.record, body, rng)
        }
    }
}

fn pair(seed: u64) -> (Party, Party, ChaCha20Rng) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut alice = Party::new(&mut rng);
    let bob = Party::new(&mut rng);
    alice.record =
        signal::initiate_session(&alice.record, &alice.identity, &bob.bundle(), &mut rng).unwrap();
    (alice, bob, rng)
}

#[derive(Debug, Clone)]
enum Op {
    Send { from_alice: bool },
    Deliver(prop::sample::Index),
    Drop(prop::sample::Index),
    Replay(prop::sample::Index),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<bool>().prop_map(|from_alice| Op::Send { from_alice }),
        4 => any::<prop::sample::Index>().prop_map(Op::Deliver),
        1 => any::<prop::sample::Index>().prop_map(Op::Drop),
        1 => any::<prop::sample::Index>().prop_map(Op::Replay),
    ]
}

struct Sent {
    to_alice: bool,
    ty: String,
    body: Vec<u8>,
    plaintext: Vec<u8>,
    ratchet_key: [u8; 32],
}

/// Receiving chains each side has created, in order, to predict when a late message's chain has
/// been evicted (beyond MAX_RECEIVER_CHAINS newer ones).
fn evicted(chains: &[[u8; 32]], key: &[u8; 32]) -> bool {
    match chains.iter().position(|k| k == key) {
        Some(p) => chains.len() - p > signal::session::MAX_RECEIVER_CHAINS,
        None => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn random_schedules_decrypt_what_is_delivered_and_reject_replays(
        seed in any::<u64>(),
        ops in prop::collection::vec(op(), 1..80),
    ) {
        let (mut alice, mut bob, mut rng) = pair(seed);
        let mut in_flight: Vec<Sent> = Vec::new();
        let mut delivered: Vec<Sent> = Vec::new();
        let mut used_keys = std::collections::HashSet::new();
        let mut chains_at = [Vec::<[u8; 32]>::new(), Vec::new()]; // [alice, bob]
        let mut n = 0u32;
        for op in ops {
            match op {
                Op::Send { from_alice } => {
                    let (sender, to_alice) = if from_alice { (&mut alice, false) } else { (&mut bob, true) };
                    if !sender.record.has_current_session() {
                        continue;
                    }
                    n += 1;
                    let plaintext = format!("m{n}").into_bytes();
                    let (record, msg) = signal::encrypt(&sender.record, &plaintext).unwrap();
                    sender.record = record;
                    let inner = match &msg {
                        CiphertextMessage::PreKey(p) => p.message.clone(),
                        CiphertextMessage::Whisper(m) => m.clone(),
                    };
                    // (sender ratchet key, counter) identifies the message key: never twice.
                    prop_assert!(used_keys.insert((*inner.ratchet_key.as_bytes(), inner.counter)));
                    in_flight.push(Sent {
                        to_alice,
                        ty: msg.enc_type().into(),
                        body: msg.serialized().to_vec(),
                        plaintext,
                        ratchet_key: *inner.ratchet_key.as_bytes(),
                    });
                }
                Op::Deliver(i) if !in_flight.is_empty() => {
                    let m = in_flight.remove(i.index(in_flight.len()));
                    let (receiver, chains) = if m.to_alice { (&mut alice, &mut chains_at[0]) } else { (&mut bob, &mut chains_at[1]) };
                    let before = receiver.record.to_bytes();
                    match receiver.try_decrypt(&m.ty, &m.body, &mut rng) {
                        Ok((record, pt)) => {
                            prop_assert_eq!(&pt, &m.plaintext);
                            receiver.record = record;
                            if !chains.contains(&m.ratchet_key) {
                                chains.push(m.ratchet_key);
                            }
                            delivered.push(m);
                        }
                        Err(e) => {
                            prop_assert!(evicted(chains, &m.ratchet_key), "delivery failed: {e}");
                            prop_assert_eq!(receiver.record.to_bytes(), before);
                        }
                    }
                }
                Op::Drop(i) if !in_flight.is_empty() => {
                    in_flight.remove(i.index(in_flight.len()));
                }
                Op::Replay(i) if !delivered.is_empty() => {
                    let m = &delivered[i.index(delivered.len())];
                    let receiver = if m.to_alice { &alice } else { &bob };
                    let before = receiver.record.to_bytes();
                    prop_assert!(receiver.try_decrypt(&m.ty, &m.body, &mut rng).is_err());
                    prop_assert_eq!(receiver.record.to_bytes(), before);
                }
                _ => {}
            }
        }
    }
}

/// Alice → Bob first message, delivered; returns a later Alice message (whisper, after a reply).
fn established() -> (Party, Party, ChaCha20Rng) {
    let (mut alice, mut bob, mut rng) = pair(9);
    let (rec, msg) = signal::encrypt(&alice.record, b"hi").unwrap();
    alice.record = rec;
    let (rec, _) = bob
        .try_decrypt("pkmsg", msg.serialized(), &mut rng)
        .unwrap();
    bob.record = rec;
    let (rec, msg) = signal::encrypt(&bob.record, b"yo").unwrap();
    bob.record = rec;
    let (rec, _) = alice
        .try_decrypt("msg", msg.serialized(), &mut rng)
        .unwrap();
    alice.record = rec;
    (alice, bob, rng)
}

fn assert_rejected(p: &Party, ty: &str, body: &[u8], rng: &mut ChaCha20Rng) -> SignalError {
    let before = p.record.to_bytes();
    let err = p.try_decrypt(ty, body, rng).unwrap_err();
    assert_eq!(
        p.record.to_bytes(),
        before,
        "failed decrypt must not change the record"
    );
    err
}

#[test]
fn forged_mac_is_rejected_without_state_change() {
    let (alice, bob, mut rng) = established();
    let (_, msg) = signal::encrypt(&alice.record, b"secret").unwrap();
    let mut body = msg.serialized().to_vec();
    let last = body.len() - 1;
    body[last] ^= 1;
    assert_eq!(
        assert_rejected(&bob, "msg", &body, &mut rng),
        SignalError::BadMac
    );
    // A flipped ciphertext bit breaks the MAC too.
    let mut body = msg.serialized().to_vec();
    body[10] ^= 0x40;
    assert!(bob.try_decrypt("msg", &body, &mut rng).is_err());
    // The genuine message still decrypts afterwards.
    assert_eq!(
        bob.try_decrypt("msg", msg.serialized(), &mut rng)
            .unwrap()
            .1,
        b"secret"
    );
}

#[test]
fn truncated_messages_are_rejected_without_state_change() {
    let (alice, bob, mut rng) = established();
    let (_, msg) = signal::encrypt(&alice.record, b"secret").unwrap();
    let body = msg.serialized();
    assert_eq!(
        assert_rejected(&bob, "msg", &[], &mut rng),
        SignalError::Truncated
    );
    assert_eq!(
        assert_rejected(&bob, "msg", &body[..5], &mut rng),
        SignalError::Truncated
    );
    for cut in 9..body.len() {
        assert_rejected(&bob, "msg", &body[..cut], &mut rng);
    }
}

#[test]
fn wrong_version_byte_is_rejected_without_state_change() {
    let (alice, bob, mut rng) = established();
    let (_, msg) = signal::encrypt(&alice.record, b"secret").unwrap();
    for v in [0x22u8, 0x23, 0x43, 0x00] {
        let mut body = msg.serialized().to_vec();
        body[0] = v;
        assert_eq!(
            assert_rejected(&bob, "msg", &body, &mut rng),
            SignalError::BadVersion(v)
        );
    }
}

#[test]
fn unknown_prekeys_are_reported_without_state_change() {
    let (mut alice, mut bob, mut rng) = pair(11);
    let (rec, msg) = signal::encrypt(&alice.record, b"hi").unwrap();
    alice.record = rec;
    let body = msg.serialized().to_vec();
    let parsed = PreKeySignalMessage::parse(&body).unwrap();
    assert_eq!(parsed.pre_key_id, Some(42));

    // One-time prekey already gone from the store.
    let spare = bob.one_time.take();
    assert_eq!(
        assert_rejected(&bob, "pkmsg", &body, &mut rng),
        SignalError::UnknownPreKey(42)
    );
    // Signed prekey rotated away.
    bob.one_time = spare;
    let other = SignedPreKey::generate(&bob.identity, 8, &mut rng);
    let secrets = PreKeySecrets {
        signed_pre_key: Some(&other),
        one_time_pre_key: bob.one_time.as_ref(),
    };
    let err =
        signal::decrypt_prekey_message(&bob.record, &bob.identity, &parsed, secrets, &mut rng)
            .unwrap_err();
    assert_eq!(err, SignalError::UnknownSignedPreKey(7));

    // With the right keys it works and names the prekey to delete.
    let secrets = PreKeySecrets {
        signed_pre_key: Some(&bob.signed),
        one_time_pre_key: bob.one_time.as_ref(),
    };
    let out =
        signal::decrypt_prekey_message(&bob.record, &bob.identity, &parsed, secrets, &mut rng)
            .unwrap();
    assert_eq!(out.used_pre_key_id, Some(42));
    assert!(out.new_session);
    assert_eq!(out.replaced_identity, None);
    // The same pkmsg again matches the known session (no prekeys needed) and is a replay.
    bob.record = out.record;
    bob.one_time = None;
    assert_eq!(
        assert_rejected(&bob, "pkmsg", &body, &mut rng),
        SignalError::DuplicateMessage(0)
    );
}

#[test]
fn bundle_with_a_bad_signature_is_refused() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let alice = Party::new(&mut rng);
    let bob = Party::new(&mut rng);
    let mut bundle = bob.bundle();
    bundle.signed_pre_key_signature[5] ^= 1;
    let err =
        signal::initiate_session(&alice.record, &alice.identity, &bundle, &mut rng).unwrap_err();
    assert_eq!(err, SignalError::BadSignature);
}

#[test]
fn forward_jumps_and_skipped_keys_are_bounded() {
    let (mut alice, bob, mut rng) = established();
    let mut last = None;
    for _ in 0..=signal::session::MAX_FORWARD_JUMPS + 1 {
        let (rec, msg) = signal::encrypt(&alice.record, b"x").unwrap();
        alice.record = rec;
        last = Some(msg);
    }
    let last = last.unwrap();
    let err = assert_rejected(&bob, "msg", last.serialized(), &mut rng);
    assert!(matches!(err, SignalError::TooFarInFuture { .. }), "{err:?}");

    // Jumps within the window accumulate skipped keys, but never beyond the cap.
    let (mut alice, mut bob, mut rng) = established();
    for _ in 0..3 {
        let mut msg = None;
        for _ in 0..1500 {
            let (rec, m) = signal::encrypt(&alice.record, b"x").unwrap();
            alice.record = rec;
            msg = Some(m);
        }
        let (rec, _) = bob
            .try_decrypt("msg", msg.unwrap().serialized(), &mut rng)
            .unwrap();
        bob.record = rec;
        assert!(bob.record.skipped_key_count() <= signal::session::MAX_SKIPPED_KEYS);
    }
    assert_eq!(
        bob.record.skipped_key_count(),
        signal::session::MAX_SKIPPED_KEYS
    );
}

#[test]
fn records_round_trip_and_corrupt_records_are_typed_errors() {
    let (alice, bob, mut rng) = established();
    let restored = SessionRecord::from_bytes(&alice.record.to_bytes()).unwrap();
    assert_eq!(restored.to_bytes(), alice.record.to_bytes());
    let (_, msg) = signal::encrypt(&restored, b"after restore").unwrap();
    assert_eq!(
        bob.try_decrypt("msg", msg.serialized(), &mut rng)
            .unwrap()
            .1,
        b"after restore"
    );

    assert!(matches!(
        SessionRecord::from_bytes(&[0xff, 0xff]),
        Err(SignalError::CorruptRecord(_))
    ));
    assert!(matches!(
        SessionRecord::from_bytes(&[]),
        Err(SignalError::CorruptRecord(_))
    ));
    // format = 9
    assert_eq!(
        SessionRecord::from_bytes(&[0x08, 0x09]).unwrap_err(),
        SignalError::UnknownRecordFormat(9)
    );
    let bytes = alice.record.to_bytes();
    for cut in [1, bytes.len() / 2, bytes.len() - 1] {
        assert!(SessionRecord::from_bytes(&bytes[..cut]).is_err());
    }
}

#[test]
fn archived_states_are_bounded_and_reinstall_is_reported() {
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let alice = Party::new(&mut rng);
    let mut bob = Party::new(&mut rng);
    bob.one_time = None;
    let mut record = SessionRecord::new();
    for _ in 0..signal::session::MAX_ARCHIVED_STATES + 5 {
        record =
            signal::initiate_session(&record, &alice.identity, &bob.bundle(), &mut rng).unwrap();
    }
    assert_eq!(
        record.archived_count(),
        signal::session::MAX_ARCHIVED_STATES
    );

    // Bob hears from Alice, then from a reinstalled Alice (new identity).
    let (mut alice, mut bob, mut rng) = established();
    let old = *alice.identity.public();
    let new_alice = Party::new(&mut rng);
    let rec = signal::initiate_session(
        &SessionRecord::new(),
        &new_alice.identity,
        &bob.bundle(),
        &mut rng,
    )
    .unwrap();
    let (_, first) = signal::encrypt(&rec, b"reinstalled").unwrap();
    let (rec, late) = signal::encrypt(&alice.record, b"late from old").unwrap();
    alice.record = rec;
    let parsed = PreKeySignalMessage::parse(first.serialized()).unwrap();
    let out = signal::decrypt_prekey_message(
        &bob.record,
        &bob.identity,
        &parsed,
        PreKeySecrets {
            signed_pre_key: Some(&bob.signed),
            one_time_pre_key: bob.one_time.as_ref(),
        },
        &mut rng,
    )
    .unwrap();
    assert_eq!(out.replaced_identity, Some(old));
    assert_eq!(out.remote_identity, *new_alice.identity.public());
    bob.record = out.record;
    assert_eq!(bob.record.archived_count(), 1);
    let (rec, pt) = bob.try_decrypt("msg", late.serialized(), &mut rng).unwrap();
    assert_eq!(pt, b"late from old");
    assert_eq!(
        rec.remote_identity(),
        Some(new_alice.identity.public()),
        "a late message does not bring the old session back"
    );
}

#[test]
fn encrypt_and_decrypt_leave_their_input_untouched() {
    let (alice, bob, mut rng) = established();
    let a = alice.record.to_bytes();
    let (next, msg) = signal::encrypt(&alice.record, b"one").unwrap();
    assert_eq!(alice.record.to_bytes(), a);
    assert_ne!(next.to_bytes(), a);
    let b = bob.record.to_bytes();
    let _ = bob.try_decrypt("msg", msg.serialized(), &mut rng).unwrap();
    assert_eq!(bob.record.to_bytes(), b);
    // No session at all.
    assert_eq!(
        signal::encrypt(&SessionRecord::new(), b"x").unwrap_err(),
        SignalError::NoSession
    );
    assert_eq!(
        signal::decrypt_message(&SessionRecord::new(), msg.serialized(), &mut rng).unwrap_err(),
        SignalError::NoSession
    );
    assert!(SignalMessage::parse(msg.serialized()).is_ok());
}

#[test]
fn sender_key_bad_input_is_typed_and_harmless() {
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let (own, skdm) = signal::create_sender_key_distribution(&SenderKeyRecord::new(), &mut rng);
    let member = signal::process_sender_key_distribution(&SenderKeyRecord::new(), &skdm);
    let (own, msg) = signal::group_encrypt(&own, b"to the group", &mut rng).unwrap();
    let body = msg.serialized().to_vec();

    let mut forged = body.clone();
    let in_signature = forged.len() - 2;
    forged[in_signature] ^= 1;
    assert_eq!(
        signal::group_decrypt(&member, &forged).unwrap_err(),
        SignalError::BadSignature
    );
    let mut wrong_version = body.clone();
    wrong_version[0] = 0x23;
    assert_eq!(
        signal::group_decrypt(&member, &wrong_version).unwrap_err(),
        SignalError::BadVersion(0x23)
    );
    assert_eq!(
        signal::group_decrypt(&member, &body[..40]).unwrap_err(),
        SignalError::Truncated
    );
    assert!(matches!(
        signal::group_decrypt(&SenderKeyRecord::new(), &body),
        Err(SignalError::NoSenderKey(_))
    ));
    assert_eq!(
        signal::group_encrypt(&member, b"x", &mut rng).unwrap_err(),
        SignalError::NoOwnSenderKey
    );
    let (member, pt) = signal::group_decrypt(&member, &body).unwrap();
    assert_eq!(pt, b"to the group");
    assert_eq!(
        signal::group_decrypt(&member, &body).unwrap_err(),
        SignalError::DuplicateMessage(0)
    );

    // Too far ahead.
    let mut own = own;
    let mut last = None;
    for _ in 0..signal::session::MAX_FORWARD_JUMPS + 2 {
        let (next, m) = signal::group_encrypt(&own, b"x", &mut rng).unwrap();
        own = next;
        last = Some(m);
    }
    assert!(matches!(
        signal::group_decrypt(&member, last.unwrap().serialized()),
        Err(SignalError::TooFarInFuture { .. })
    ));
    let restored = SenderKeyRecord::from_bytes(&own.to_bytes()).unwrap();
    assert_eq!(restored.to_bytes(), own.to_bytes());
    assert!(SenderKeyRecord::from_bytes(&[0x08, 0x02]).is_err());
}
