//! `zapin_engine::signal_session` in one process, over the memory store: two devices talk
//! through it, and failed or duplicate decrypts leave the store as it was.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chacha20::ChaCha20Rng;
use chacha20::rand_core::SeedableRng;
use zapin_engine::signal_session::{
    EncType, SessionError, decrypt_from, encrypt_for, group_decrypt_from, group_encrypt_for,
    initiate_with, process_distribution_from, sender_key_distribution_for,
};
use zapin_protocol::crypto::KeyPair;
use zapin_protocol::signal::{self, LocalIdentity, PreKeyBundle, SignedPreKey};
use zapin_signal_store::{
    Address, DeviceCredentials, DeviceId, KeyPairBytes, MasterKey, Secret32, SenderKeyName, Store,
};

fn kp(k: &KeyPair) -> KeyPairBytes {
    KeyPairBytes::new(k.public().0, *k.private_bytes())
}

struct Device {
    id: DeviceId,
    address: Address,
    identity: LocalIdentity,
    signed: SignedPreKey,
    prekey: signal::PreKey,
}

impl Device {
    async fn create(store: &Store, name: &str, rng: &mut ChaCha20Rng) -> Self {
        let identity = LocalIdentity::generate(rng);
        let signed = SignedPreKey::generate(&identity, 1, rng);
        let prekey = signal::PreKey::generate(10, rng);
        let id = DeviceId::new(name).unwrap();
        let credentials = DeviceCredentials {
            registration_id: identity.registration_id,
            noise_key: kp(&KeyPair::generate(rng)),
            identity_key: kp(&identity.key_pair),
            signed_prekey: zapin_signal_store::SignedPreKey {
                id: signed.id,
                key_pair: kp(&signed.key_pair),
                signature: signed.signature,
                created_at: 0,
            },
            adv_secret_key: Secret32::new([2; 32]),
            account: None,
            push_name: None,
            platform: None,
            routing_info: None,
        };
        store.create_device(&id, &credentials).await.unwrap();
        store
            .insert_prekeys(
                &id,
                &[zapin_signal_store::PreKey {
                    id: prekey.id,
                    key_pair: kp(&prekey.key_pair),
                }],
            )
            .await
            .unwrap();
        Device {
            id,
            address: Address::new(name, 0),
            identity,
            signed,
            prekey,
        }
    }

    fn bundle(&self) -> PreKeyBundle {
        PreKeyBundle::from_local(&self.identity, &self.signed, Some(&self.prekey))
    }
}

#[tokio::test]
async fn pairwise_round_trip_duplicates_and_failures() {
    let store = Store::memory(&MasterKey::from_bytes([3; 32]));
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let alice = Device::create(&store, "alice", &mut rng).await;
    let bob = Device::create(&store, "bob", &mut rng).await;

    // No session yet.
    assert!(matches!(
        encrypt_for(&store, &alice.id, &bob.address, b"x").await,
        Err(SessionError::NoSession(_))
    ));

    initiate_with(
        &store,
        &alice.id,
        &alice.identity,
        &bob.address,
        &bob.bundle(),
        &mut rng,
    )
    .await
    .unwrap();
    let first = encrypt_for(&store, &alice.id, &bob.address, b"hello")
        .await
        .unwrap();
    assert_eq!(first.enc_type(), "pkmsg");

    // A tampered message fails and changes nothing: the prekey is still there.
    let mut bad = first.serialized().to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let err = decrypt_from(
        &store,
        &bob.id,
        &bob.identity,
        &alice.address,
        EncType::PreKey,
        &bad,
        &mut rng,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, SessionError::Signal(_)), "{err}");
    assert_eq!(store.count_prekeys(&bob.id).await.unwrap(), 1);
    assert!(
        store
            .load_session(&bob.id, &alice.address)
            .await
            .unwrap()
            .is_none()
    );

    let got = decrypt_from(
        &store,
        &bob.id,
        &bob.identity,
        &alice.address,
        EncType::PreKey,
        first.serialized(),
        &mut rng,
    )
    .await
    .unwrap();
    assert_eq!(got.plaintext, b"hello");
    assert!(got.new_session);
    assert_eq!(store.count_prekeys(&bob.id).await.unwrap(), 0, "consumed");
    let identity = store
        .load_identity(&bob.id, &alice.address)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(identity.key, alice.identity.public().0);

    // The same pkmsg again: a duplicate, and the stored record is untouched.
    let before = store.load_session(&bob.id, &alice.address).await.unwrap();
    let dup = decrypt_from(
        &store,
        &bob.id,
        &bob.identity,
        &alice.address,
        EncType::PreKey,
        first.serialized(),
        &mut rng,
    )
    .await;
    assert!(matches!(dup, Err(SessionError::Duplicate { counter: 0 })));
    assert_eq!(
        store.load_session(&bob.id, &alice.address).await.unwrap(),
        before
    );

    // Bob answers; alice then sends `msg`.
    let reply = encrypt_for(&store, &bob.id, &alice.address, b"hi")
        .await
        .unwrap();
    assert_eq!(reply.enc_type(), "msg");
    let got = decrypt_from(
        &store,
        &alice.id,
        &alice.identity,
        &bob.address,
        EncType::parse(reply.enc_type()).unwrap(),
        reply.serialized(),
        &mut rng,
    )
    .await
    .unwrap();
    assert_eq!(got.plaintext, b"hi");
    let next = encrypt_for(&store, &alice.id, &bob.address, b"again")
        .await
        .unwrap();
    assert_eq!(next.enc_type(), "msg");
}

#[tokio::test]
async fn group_round_trip_and_duplicate() {
    let store = Store::memory(&MasterKey::from_bytes([4; 32]));
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let alice = Device::create(&store, "alice", &mut rng).await;
    let bob = Device::create(&store, "bob", &mut rng).await;
    let name = SenderKeyName::new("g@g.us", alice.address.clone());

    assert!(matches!(
        group_encrypt_for(&store, &alice.id, &name, b"x", &mut rng).await,
        Err(SessionError::Signal(signal::SignalError::NoOwnSenderKey))
    ));
    let skdm = sender_key_distribution_for(&store, &alice.id, &name, &mut rng)
        .await
        .unwrap();
    process_distribution_from(&store, &bob.id, &name, &skdm)
        .await
        .unwrap();
    let m0 = group_encrypt_for(&store, &alice.id, &name, b"one", &mut rng)
        .await
        .unwrap();
    let m1 = group_encrypt_for(&store, &alice.id, &name, b"two", &mut rng)
        .await
        .unwrap();
    assert_eq!(
        group_decrypt_from(&store, &bob.id, &name, m1.serialized())
            .await
            .unwrap(),
        b"two"
    );
    assert_eq!(
        group_decrypt_from(&store, &bob.id, &name, m0.serialized())
            .await
            .unwrap(),
        b"one"
    );
    assert!(matches!(
        group_decrypt_from(&store, &bob.id, &name, m1.serialized()).await,
        Err(SessionError::Duplicate { counter: 1 })
    ));
}
