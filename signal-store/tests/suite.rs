//! One behaviour suite, run against every backend: `memory::*`, `sqlite::*`, `postgres::*`.
//! PostgreSQL tests need `ZAPIN_TEST_DATABASE_URL` (skipped with a message when unset, failing
//! under `CI=true`); each test gets its own schema, dropped at the end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use zapin_signal_store::{
    Address, Batch, IdentityChange, IdentityRecord, InboxEntry, SenderKeyName, Store, StoreError,
    Trust,
};

/// Expands each listed behaviour test once per backend.
macro_rules! for_each_backend {
    (shared: [$($test:ident),* $(,)?], sql: [$($sql_test:ident),* $(,)?]) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let h = super::Harness::memory();
                    super::$test(&h.store).await;
                    h.finish().await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let h = super::Harness::sqlite().await;
                    super::$test(&h.store).await;
                    h.finish().await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $sql_test() {
                    let h = super::Harness::sqlite().await;
                    super::$sql_test(&h.store).await;
                    h.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let Some(h) = super::Harness::postgres().await else { return };
                    super::$test(&h.store).await;
                    h.finish().await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $sql_test() {
                    let Some(h) = super::Harness::postgres().await else { return };
                    super::$sql_test(&h.store).await;
                    h.finish().await;
                }
            )*
        }
    };
}

for_each_backend!(
    shared: [
        credentials_round_trip,
        identities_round_trip,
        prekeys_round_trip,
        signed_prekeys_round_trip,
        sessions_round_trip,
        sender_keys_round_trip,
        batches_are_atomic,
        inbox_keeps_messages_in_order_until_confirmed,
        devices_are_isolated,
        delete_device_removes_everything,
        concurrent_writers_share_one_pool,
        concurrent_batches_fail_alone,
    ],
    sql: [
        secrets_are_encrypted_at_rest,
        tampered_or_moved_ciphertext_is_rejected,
    ]
);

async fn credentials_round_trip(store: &Store) {
    let dev = device("creds");
    assert_eq!(store.load_credentials(&dev).await.unwrap(), None);

    let fresh = credentials(1);
    store.create_device(&dev, &fresh).await.unwrap();
    assert_eq!(
        store.load_credentials(&dev).await.unwrap(),
        Some(fresh.clone())
    );
    assert!(matches!(
        store.create_device(&dev, &fresh).await,
        Err(StoreError::DeviceExists(_))
    ));

    // Pairing completes the account; a new signed prekey becomes current.
    let mut done = paired(1);
    done.signed_prekey = signed_prekey(2, 1);
    store.save_credentials(&dev, &done).await.unwrap();
    assert_eq!(store.load_credentials(&dev).await.unwrap(), Some(done));
    assert_eq!(store.signed_prekey_ids(&dev).await.unwrap(), vec![1, 2]);

    let ghost = device("ghost");
    assert!(matches!(
        store.save_credentials(&ghost, &fresh).await,
        Err(StoreError::UnknownDevice(_))
    ));
    assert_eq!(store.list_devices().await.unwrap(), vec![dev]);
}

async fn identities_round_trip(store: &Store) {
    let dev = device("ident");
    store.create_device(&dev, &credentials(2)).await.unwrap();
    let bob = Address::new("5511988887777", 0);
    let k1 = IdentityRecord {
        key: [1; 32],
        trust: Trust::Trusted,
    };
    let k2 = IdentityRecord {
        key: [2; 32],
        trust: Trust::Untrusted,
    };

    assert_eq!(store.load_identity(&dev, &bob).await.unwrap(), None);
    assert_eq!(
        store.save_identity(&dev, &bob, &k1).await.unwrap(),
        IdentityChange::New
    );
    let verified = IdentityRecord {
        trust: Trust::Verified,
        ..k1.clone()
    };
    assert_eq!(
        store.save_identity(&dev, &bob, &verified).await.unwrap(),
        IdentityChange::Unchanged
    );
    assert_eq!(
        store.save_identity(&dev, &bob, &k2).await.unwrap(),
        IdentityChange::Replaced(verified)
    );
    assert_eq!(store.load_identity(&dev, &bob).await.unwrap(), Some(k2));
    // Another device number of the same user is another address.
    assert_eq!(
        store
            .load_identity(&dev, &Address::new("5511988887777", 1))
            .await
            .unwrap(),
        None
    );
    assert!(store.delete_identity(&dev, &bob).await.unwrap());
    assert!(!store.delete_identity(&dev, &bob).await.unwrap());
    assert!(matches!(
        store.save_identity(&device("nobody"), &bob, &k1).await,
        Err(StoreError::UnknownDevice(_))
    ));
}

async fn prekeys_round_trip(store: &Store) {
    let dev = device("prekeys");
    store.create_device(&dev, &credentials(3)).await.unwrap();
    assert_eq!(store.count_prekeys(&dev).await.unwrap(), 0);
    assert_eq!(store.max_prekey_id(&dev).await.unwrap(), None);

    let batch: Vec<_> = (1..=50).map(prekey).collect();
    store.insert_prekeys(&dev, &batch).await.unwrap();
    assert_eq!(store.count_prekeys(&dev).await.unwrap(), 50);
    assert_eq!(store.max_prekey_id(&dev).await.unwrap(), Some(50));
    assert_eq!(store.load_prekey(&dev, 7).await.unwrap(), Some(prekey(7)));
    assert_eq!(store.load_prekey(&dev, 51).await.unwrap(), None);

    assert_eq!(store.take_prekey(&dev, 7).await.unwrap(), Some(prekey(7)));
    assert_eq!(store.take_prekey(&dev, 7).await.unwrap(), None);
    assert!(store.remove_prekey(&dev, 50).await.unwrap());
    assert!(!store.remove_prekey(&dev, 50).await.unwrap());
    assert_eq!(store.count_prekeys(&dev).await.unwrap(), 48);
    // The highest id ever issued survives its removal, so refills never reuse ids.
    assert_eq!(store.max_prekey_id(&dev).await.unwrap(), Some(50));

    // A batch with one clashing id inserts nothing.
    let clash = vec![prekey(51), prekey(52), prekey(10)];
    assert!(matches!(
        store.insert_prekeys(&dev, &clash).await,
        Err(StoreError::DuplicatePreKey { id: 10 })
    ));
    assert_eq!(store.load_prekey(&dev, 51).await.unwrap(), None);
    assert_eq!(store.count_prekeys(&dev).await.unwrap(), 48);
    assert_eq!(store.max_prekey_id(&dev).await.unwrap(), Some(50));

    store
        .insert_prekeys(&dev, &(51..=60).map(prekey).collect::<Vec<_>>())
        .await
        .unwrap();
    assert_eq!(store.max_prekey_id(&dev).await.unwrap(), Some(60));
    assert_eq!(store.count_prekeys(&dev).await.unwrap(), 58);

    assert!(matches!(
        store.insert_prekeys(&device("nobody"), &[prekey(1)]).await,
        Err(StoreError::UnknownDevice(_))
    ));
}

async fn signed_prekeys_round_trip(store: &Store) {
    let dev = device("spk");
    store.create_device(&dev, &credentials(4)).await.unwrap();
    assert_eq!(
        store.load_signed_prekey(&dev, 1).await.unwrap(),
        Some(signed_prekey(1, 4))
    );
    store
        .store_signed_prekey(&dev, &signed_prekey(2, 4))
        .await
        .unwrap();
    assert_eq!(
        store.load_signed_prekey(&dev, 2).await.unwrap(),
        Some(signed_prekey(2, 4))
    );
    assert_eq!(store.signed_prekey_ids(&dev).await.unwrap(), vec![1, 2]);

    // The current signed prekey cannot be removed; an old one can.
    assert!(!store.remove_signed_prekey(&dev, 1).await.unwrap());
    let mut rotated = credentials(4);
    rotated.signed_prekey = signed_prekey(2, 4);
    store.save_credentials(&dev, &rotated).await.unwrap();
    assert!(store.remove_signed_prekey(&dev, 1).await.unwrap());
    assert!(!store.remove_signed_prekey(&dev, 2).await.unwrap());
    assert_eq!(store.signed_prekey_ids(&dev).await.unwrap(), vec![2]);
    assert_eq!(store.load_signed_prekey(&dev, 1).await.unwrap(), None);
    assert_eq!(
        store
            .load_credentials(&dev)
            .await
            .unwrap()
            .unwrap()
            .signed_prekey,
        signed_prekey(2, 4)
    );
}

async fn sessions_round_trip(store: &Store) {
    let dev = device("sessions");
    store.create_device(&dev, &credentials(5)).await.unwrap();
    let a0 = Address::new("alice", 0);
    let a3 = Address::new("alice", 3);
    let b1 = Address::new("bob", 1);

    assert_eq!(store.load_session(&dev, &a0).await.unwrap(), None);
    store
        .store_session(&dev, &a0, b"record-a0-v1")
        .await
        .unwrap();
    store.store_session(&dev, &a3, b"record-a3").await.unwrap();
    store.store_session(&dev, &b1, b"").await.unwrap();
    store
        .store_session(&dev, &a0, b"record-a0-v2")
        .await
        .unwrap();
    assert_eq!(
        store.load_session(&dev, &a0).await.unwrap().as_deref(),
        Some(&b"record-a0-v2"[..])
    );
    assert_eq!(
        store.load_session(&dev, &b1).await.unwrap().as_deref(),
        Some(&b""[..])
    );
    assert_eq!(
        store.session_devices(&dev, "alice").await.unwrap(),
        vec![0, 3]
    );
    assert_eq!(
        store.session_devices(&dev, "carol").await.unwrap(),
        Vec::<u32>::new()
    );

    assert!(store.delete_session(&dev, &a3).await.unwrap());
    assert!(!store.delete_session(&dev, &a3).await.unwrap());
    store.store_session(&dev, &a3, b"again").await.unwrap();
    assert_eq!(store.delete_sessions_of(&dev, "alice").await.unwrap(), 2);
    assert_eq!(
        store.session_devices(&dev, "alice").await.unwrap(),
        Vec::<u32>::new()
    );
    assert!(store.load_session(&dev, &b1).await.unwrap().is_some());

    let big = vec![0xAB; 64 * 1024];
    store.store_session(&dev, &b1, &big).await.unwrap();
    assert_eq!(store.load_session(&dev, &b1).await.unwrap(), Some(big));

    assert!(matches!(
        store.store_session(&device("nobody"), &a0, b"x").await,
        Err(StoreError::UnknownDevice(_))
    ));
    assert_eq!(
        store.load_session(&device("nobody"), &a0).await.unwrap(),
        None
    );
}

async fn sender_keys_round_trip(store: &Store) {
    let dev = device("senderkeys");
    store.create_device(&dev, &credentials(6)).await.unwrap();
    let g1_alice = SenderKeyName::new("120363000000000001@g.us", Address::new("alice", 2));
    let g1_bob = SenderKeyName::new("120363000000000001@g.us", Address::new("bob", 0));
    let g2_alice = SenderKeyName::new("120363000000000002@g.us", Address::new("alice", 2));

    assert_eq!(store.load_sender_key(&dev, &g1_alice).await.unwrap(), None);
    store
        .store_sender_key(&dev, &g1_alice, b"sk-1")
        .await
        .unwrap();
    store
        .store_sender_key(&dev, &g1_bob, b"sk-2")
        .await
        .unwrap();
    store
        .store_sender_key(&dev, &g1_alice, b"sk-1b")
        .await
        .unwrap();
    assert_eq!(
        store
            .load_sender_key(&dev, &g1_alice)
            .await
            .unwrap()
            .as_deref(),
        Some(&b"sk-1b"[..])
    );
    assert_eq!(store.load_sender_key(&dev, &g2_alice).await.unwrap(), None);
    assert!(store.delete_sender_key(&dev, &g1_alice).await.unwrap());
    assert!(!store.delete_sender_key(&dev, &g1_alice).await.unwrap());
    assert_eq!(
        store
            .load_sender_key(&dev, &g1_bob)
            .await
            .unwrap()
            .as_deref(),
        Some(&b"sk-2"[..])
    );
}

fn inbox_entry(sender: &str, id: &str, body: &[u8]) -> InboxEntry {
    InboxEntry {
        sender: sender.into(),
        id: id.into(),
        body: body.to_vec(),
    }
}

async fn inbox_keeps_messages_in_order_until_confirmed(store: &Store) {
    let dev = device("inbox");
    store.create_device(&dev, &credentials(3)).await.unwrap();
    let peer = Address::new("peer", 1);
    // The message row rides in the ratchet's transaction.
    store
        .apply(
            &dev,
            Batch::new()
                .store_session(peer.clone(), b"r1".to_vec())
                .put_inbox(inbox_entry("a@s.whatsapp.net", "M1", b"one")),
        )
        .await
        .unwrap();
    for (sender, id, body) in [
        ("b@s.whatsapp.net", "M2", b"two"),
        ("a@s.whatsapp.net", "M3", b"thr"),
    ] {
        store
            .apply(&dev, Batch::new().put_inbox(inbox_entry(sender, id, body)))
            .await
            .unwrap();
    }
    // The same message again keeps the first body.
    store
        .apply(
            &dev,
            Batch::new().put_inbox(inbox_entry("a@s.whatsapp.net", "M1", b"again")),
        )
        .await
        .unwrap();
    let ids = |v: Vec<InboxEntry>| v.into_iter().map(|e| (e.id, e.body)).collect::<Vec<_>>();
    assert_eq!(
        ids(store.load_inbox(&dev).await.unwrap()),
        vec![
            ("M1".into(), b"one".to_vec()),
            ("M2".into(), b"two".to_vec()),
            ("M3".into(), b"thr".to_vec())
        ]
    );
    assert_eq!(store.count_inbox(&dev).await.unwrap(), 3);
    let removed = store
        .delete_inbox(
            &dev,
            &[
                ("a@s.whatsapp.net".into(), "M1".into()),
                ("b@s.whatsapp.net".into(), "M3".into()), // wrong sender: stays
                ("x@s.whatsapp.net".into(), "M9".into()),
            ],
        )
        .await
        .unwrap();
    assert_eq!(removed, 1);
    assert_eq!(
        ids(store.load_inbox(&dev).await.unwrap()),
        vec![
            ("M2".into(), b"two".to_vec()),
            ("M3".into(), b"thr".to_vec())
        ]
    );
    // A newer row sorts after the older ones even though an older one was deleted.
    store
        .apply(
            &dev,
            Batch::new().put_inbox(inbox_entry("a@s.whatsapp.net", "M4", b"fou")),
        )
        .await
        .unwrap();
    let order: Vec<String> = store
        .load_inbox(&dev)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(order, ["M2", "M3", "M4"]);
    // Other devices see none of it; deleting the device takes its inbox along.
    let other = device("inbox-other");
    store.create_device(&other, &credentials(4)).await.unwrap();
    assert!(store.load_inbox(&other).await.unwrap().is_empty());
    store.delete_device(&dev).await.unwrap();
    assert_eq!(store.count_inbox(&dev).await.unwrap(), 0);
}

async fn batches_are_atomic(store: &Store) {
    let dev = device("batch");
    store.create_device(&dev, &credentials(7)).await.unwrap();
    store
        .insert_prekeys(&dev, &(1..=5).map(prekey).collect::<Vec<_>>())
        .await
        .unwrap();
    let peer = Address::new("peer", 1);

    store
        .store_session_and_consume_prekey(&dev, &peer, b"ratchet-1", Some(3))
        .await
        .unwrap();
    assert_eq!(
        store.load_session(&dev, &peer).await.unwrap().as_deref(),
        Some(&b"ratchet-1"[..])
    );
    assert_eq!(store.load_prekey(&dev, 3).await.unwrap(), None);
    assert_eq!(store.count_prekeys(&dev).await.unwrap(), 4);

    // A prekey that is already gone does not fail the batch (a retried message after a crash).
    store
        .store_session_and_consume_prekey(&dev, &peer, b"ratchet-2", Some(3))
        .await
        .unwrap();
    store
        .store_session_and_consume_prekey(&dev, &peer, b"ratchet-3", None)
        .await
        .unwrap();
    assert_eq!(store.count_prekeys(&dev).await.unwrap(), 4);

    let group = SenderKeyName::new("g@g.us", Address::new("me", 0));
    let other = Address::new("other", 0);
    store.store_session(&dev, &other, b"old").await.unwrap();
    let batch = Batch::new()
        .store_session(peer.clone(), b"ratchet-4".to_vec())
        .store_sender_key(group.clone(), b"sk".to_vec())
        .save_identity(
            peer.clone(),
            IdentityRecord {
                key: [9; 32],
                trust: Trust::Trusted,
            },
        )
        .delete_session(other.clone())
        .remove_prekey(1);
    assert_eq!(batch.ops().len(), 5);
    store.apply(&dev, batch).await.unwrap();
    assert_eq!(
        store.load_session(&dev, &peer).await.unwrap().as_deref(),
        Some(&b"ratchet-4"[..])
    );
    assert_eq!(
        store
            .load_sender_key(&dev, &group)
            .await
            .unwrap()
            .as_deref(),
        Some(&b"sk"[..])
    );
    assert_eq!(
        store
            .load_identity(&dev, &peer)
            .await
            .unwrap()
            .map(|i| i.key),
        Some([9; 32])
    );
    assert_eq!(store.load_session(&dev, &other).await.unwrap(), None);
    assert_eq!(store.load_prekey(&dev, 1).await.unwrap(), None);

    // A batch for a missing device writes nothing anywhere.
    let ghost = device("ghost");
    let failed = store
        .apply(
            &ghost,
            Batch::new()
                .remove_prekey(2)
                .store_session(peer.clone(), b"x".to_vec()),
        )
        .await;
    assert!(matches!(failed, Err(StoreError::UnknownDevice(_))));
    assert!(store.load_prekey(&dev, 2).await.unwrap().is_some());
    store.apply(&dev, Batch::new()).await.unwrap();
}

async fn devices_are_isolated(store: &Store) {
    let a = device("device-a");
    let b = device("device-b");
    store.create_device(&a, &paired(10)).await.unwrap();
    store.create_device(&b, &credentials(11)).await.unwrap();
    let peer = Address::new("peer", 0);
    let group = SenderKeyName::new("g@g.us", peer.clone());
    let ident = IdentityRecord {
        key: [7; 32],
        trust: Trust::Trusted,
    };

    store.store_session(&a, &peer, b"a-session").await.unwrap();
    store.store_sender_key(&a, &group, b"a-sk").await.unwrap();
    store.save_identity(&a, &peer, &ident).await.unwrap();
    store
        .insert_prekeys(&a, &(1..=3).map(prekey).collect::<Vec<_>>())
        .await
        .unwrap();

    assert_eq!(store.load_session(&b, &peer).await.unwrap(), None);
    assert_eq!(store.load_sender_key(&b, &group).await.unwrap(), None);
    assert_eq!(store.load_identity(&b, &peer).await.unwrap(), None);
    assert_eq!(store.load_prekey(&b, 1).await.unwrap(), None);
    assert_eq!(store.count_prekeys(&b).await.unwrap(), 0);
    assert_eq!(store.max_prekey_id(&b).await.unwrap(), None);
    assert_eq!(
        store.session_devices(&b, "peer").await.unwrap(),
        Vec::<u32>::new()
    );
    assert!(!store.remove_prekey(&b, 1).await.unwrap());
    assert!(!store.delete_session(&b, &peer).await.unwrap());

    // B writes the same keys; A keeps its own values.
    store.store_session(&b, &peer, b"b-session").await.unwrap();
    store
        .insert_prekeys(&b, &(1..=3).map(prekey).collect::<Vec<_>>())
        .await
        .unwrap();
    assert_eq!(
        store.load_session(&a, &peer).await.unwrap().as_deref(),
        Some(&b"a-session"[..])
    );
    assert_eq!(
        store.load_session(&b, &peer).await.unwrap().as_deref(),
        Some(&b"b-session"[..])
    );
    assert_eq!(store.load_credentials(&a).await.unwrap(), Some(paired(10)));
    assert_eq!(
        store.load_credentials(&b).await.unwrap(),
        Some(credentials(11))
    );
}

async fn delete_device_removes_everything(store: &Store) {
    let doomed = device("doomed");
    let keeper = device("keeper");
    for (dev, seed) in [(&doomed, 20), (&keeper, 21)] {
        store.create_device(dev, &paired(seed)).await.unwrap();
        let peer = Address::new("peer", 1);
        store.store_session(dev, &peer, b"s").await.unwrap();
        store
            .store_sender_key(dev, &SenderKeyName::new("g@g.us", peer.clone()), b"k")
            .await
            .unwrap();
        store
            .save_identity(
                dev,
                &peer,
                &IdentityRecord {
                    key: [1; 32],
                    trust: Trust::Trusted,
                },
            )
            .await
            .unwrap();
        store
            .insert_prekeys(dev, &(1..=10).map(prekey).collect::<Vec<_>>())
            .await
            .unwrap();
        store
            .store_signed_prekey(dev, &signed_prekey(9, seed))
            .await
            .unwrap();
    }

    assert!(store.delete_device(&doomed).await.unwrap());
    assert!(!store.delete_device(&doomed).await.unwrap());
    assert_eq!(store.list_devices().await.unwrap(), vec![keeper.clone()]);

    // Re-creating the id starts from nothing: no row survived the delete.
    store
        .create_device(&doomed, &credentials(22))
        .await
        .unwrap();
    let peer = Address::new("peer", 1);
    assert_eq!(store.load_session(&doomed, &peer).await.unwrap(), None);
    assert_eq!(
        store
            .load_sender_key(&doomed, &SenderKeyName::new("g@g.us", peer.clone()))
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.load_identity(&doomed, &peer).await.unwrap(), None);
    assert_eq!(store.count_prekeys(&doomed).await.unwrap(), 0);
    assert_eq!(store.max_prekey_id(&doomed).await.unwrap(), None);
    assert_eq!(store.signed_prekey_ids(&doomed).await.unwrap(), vec![1]);
    assert_eq!(
        store.load_credentials(&doomed).await.unwrap(),
        Some(credentials(22))
    );

    // The other device is untouched.
    assert_eq!(store.count_prekeys(&keeper).await.unwrap(), 10);
    assert_eq!(store.signed_prekey_ids(&keeper).await.unwrap(), vec![1, 9]);
    assert!(store.load_session(&keeper, &peer).await.unwrap().is_some());
    assert_eq!(
        store.load_credentials(&keeper).await.unwrap(),
        Some(paired(21))
    );
}

async fn concurrent_writers_share_one_pool(store: &Store) {
    const DEVICES: u32 = 200;
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..DEVICES {
        let store = store.clone();
        tasks.spawn(async move {
            let dev = device(&format!("conc-{n:03}"));
            store
                .create_device(&dev, &credentials(n as u8))
                .await
                .unwrap();
            store
                .insert_prekeys(&dev, &(1..=4).map(prekey).collect::<Vec<_>>())
                .await
                .unwrap();
            let peer = Address::new(format!("peer{n}"), 1);
            store
                .store_session_and_consume_prekey(&dev, &peer, &n.to_be_bytes(), Some(2))
                .await
                .unwrap();
            store
                .save_identity(
                    &dev,
                    &peer,
                    &IdentityRecord {
                        key: [n as u8; 32],
                        trust: Trust::Trusted,
                    },
                )
                .await
                .unwrap();
            let group = SenderKeyName::new("g@g.us", Address::new("me", 0));
            store
                .store_sender_key(&dev, &group, &[n as u8; 40])
                .await
                .unwrap();
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }

    assert_eq!(store.list_devices().await.unwrap().len(), DEVICES as usize);
    for n in 0..DEVICES {
        let dev = device(&format!("conc-{n:03}"));
        let peer = Address::new(format!("peer{n}"), 1);
        assert_eq!(
            store.load_session(&dev, &peer).await.unwrap(),
            Some(n.to_be_bytes().to_vec())
        );
        assert_eq!(store.count_prekeys(&dev).await.unwrap(), 3);
        assert_eq!(
            store
                .load_identity(&dev, &peer)
                .await
                .unwrap()
                .map(|i| i.key),
            Some([n as u8; 32])
        );
        assert_eq!(
            store.load_credentials(&dev).await.unwrap(),
            Some(credentials(n as u8))
        );
    }
}

// ---- SQL backends only: look at the raw rows ----

async fn secrets_are_encrypted_at_rest(store: &Store) {
    let dev = device("at-rest");
    let creds = paired(30);
    store.create_device(&dev, &creds).await.unwrap();
    store.insert_prekeys(&dev, &[prekey(77)]).await.unwrap();
    let record = b"SESSION-CHAIN-KEY-MARKER-0123456789abcdef".to_vec();
    let sk_record = b"SENDER-KEY-CHAIN-MARKER-fedcba9876543210".to_vec();
    let peer = Address::new("peer", 0);
    store.store_session(&dev, &peer, &record).await.unwrap();
    store
        .store_sender_key(
            &dev,
            &SenderKeyName::new("g@g.us", peer.clone()),
            &sk_record,
        )
        .await
        .unwrap();
    let plaintext = b"DECRYPTED-MESSAGE-TEXT-MARKER-0123456789".to_vec();
    store
        .apply(
            &dev,
            Batch::new().put_inbox(inbox_entry("peer@s.whatsapp.net", "M1", &plaintext)),
        )
        .await
        .unwrap();

    let secrets: Vec<(&str, Vec<u8>)> = vec![
        ("noise private", creds.noise_key.private.expose().to_vec()),
        (
            "identity private",
            creds.identity_key.private.expose().to_vec(),
        ),
        ("adv secret", creds.adv_secret_key.expose().to_vec()),
        (
            "signed prekey private",
            creds.signed_prekey.key_pair.private.expose().to_vec(),
        ),
        (
            "prekey private",
            prekey(77).key_pair.private.expose().to_vec(),
        ),
        ("session record", record.clone()),
        ("sender key record", sk_record.clone()),
        ("inbox message", plaintext.clone()),
    ];
    let mut columns = Vec::new();
    for (table, cols) in [
        (
            "devices",
            &["noise_public", "identity_public", "secrets_enc"][..],
        ),
        ("prekeys", &["public_key", "private_enc"][..]),
        (
            "signed_prekeys",
            &["public_key", "private_enc", "signature"][..],
        ),
        ("sessions", &["record_enc"][..]),
        ("sender_keys", &["record_enc"][..]),
        ("inbox", &["body_enc"][..]),
    ] {
        for col in cols {
            let blobs = raw_blobs(store, table, col).await;
            assert!(!blobs.is_empty(), "{table}.{col} has rows");
            columns.push((format!("{table}.{col}"), blobs));
        }
    }
    for (what, secret) in &secrets {
        // 16-byte windows: no part of the secret may appear in clear.
        for window in secret.windows(16) {
            for (col, blobs) in &columns {
                for blob in blobs {
                    assert!(!contains(blob, window), "{what} found in clear in {col}");
                }
            }
        }
    }
    // Public keys are stored in clear (they are not secret), which proves the scan can see them.
    let publics = &columns
        .iter()
        .find(|(c, _)| c == "devices.noise_public")
        .unwrap()
        .1;
    assert!(
        publics
            .iter()
            .any(|b| b == &creds.noise_key.public.to_vec())
    );
}

async fn tampered_or_moved_ciphertext_is_rejected(store: &Store) {
    let a = device("owner-a");
    let b = device("owner-b");
    store.create_device(&a, &credentials(40)).await.unwrap();
    store.create_device(&b, &credentials(41)).await.unwrap();
    let peer = Address::new("peer", 2);
    store
        .store_session(&a, &peer, b"a's ratchet")
        .await
        .unwrap();
    let sealed = raw_session(store, "owner-a", "peer", 2).await;

    // Copied to another owner, same address: fails.
    raw_put_session(store, "owner-b", "peer", 2, &sealed).await;
    assert!(matches!(
        store.load_session(&b, &peer).await,
        Err(StoreError::Decrypt { table: "sessions" })
    ));
    // Copied to another address of the same owner: fails.
    raw_put_session(store, "owner-a", "peer", 3, &sealed).await;
    assert!(matches!(
        store.load_session(&a, &Address::new("peer", 3)).await,
        Err(StoreError::Decrypt { .. })
    ));
    // One flipped bit anywhere: fails.
    for i in [0, 5, sealed.len() / 2, sealed.len() - 1] {
        let mut bad = sealed.clone();
        bad[i] ^= 0x01;
        raw_put_session(store, "owner-a", "peer", 2, &bad).await;
        assert!(matches!(
            store.load_session(&a, &peer).await,
            Err(StoreError::Decrypt { .. })
        ));
    }
    // Truncated: fails.
    raw_put_session(store, "owner-a", "peer", 2, &sealed[..10]).await;
    assert!(store.load_session(&a, &peer).await.is_err());
    // Restored: reads again.
    raw_put_session(store, "owner-a", "peer", 2, &sealed).await;
    assert_eq!(
        store.load_session(&a, &peer).await.unwrap().as_deref(),
        Some(&b"a's ratchet"[..])
    );

    // A prekey's sealed private key moved to another prekey id: fails.
    store
        .insert_prekeys(&a, &[prekey(1), prekey(2)])
        .await
        .unwrap();
    raw_copy_prekey_private(store, "owner-a", 1, 2).await;
    assert!(matches!(
        store.load_prekey(&a, 2).await,
        Err(StoreError::Decrypt { table: "prekeys" })
    ));
    assert_eq!(store.load_prekey(&a, 1).await.unwrap(), Some(prekey(1)));
}

/// Many devices' batches at once (on SQLite they share transactions): each is all or none, a
/// batch for a missing device fails alone, and every `Ok` is readable.
async fn concurrent_batches_fail_alone(store: &Store) {
    const DEVICES: usize = 40;
    for n in 0..DEVICES {
        store
            .create_device(&device(&format!("grp-{n:02}")), &credentials(n as u8))
            .await
            .unwrap();
    }
    let peer = Address::new("peer", 0);
    let applies = (0..DEVICES * 2).map(|i| {
        let store = store.clone();
        let peer = peer.clone();
        async move {
            // Every third batch names a device that does not exist.
            let name = if i % 3 == 0 {
                format!("ghost-{i}")
            } else {
                format!("grp-{:02}", i % DEVICES)
            };
            let batch = Batch::new()
                .store_session(peer, format!("record-{i}").into_bytes())
                .store_sender_key(
                    SenderKeyName::new(format!("g{i}@g.us"), Address::new("me", 0)),
                    vec![i as u8; 8],
                );
            (i, name.clone(), store.apply(&device(&name), batch).await)
        }
    });
    // Polled together, so they are all in flight at once.
    let results = futures_util::future::join_all(applies).await;
    for (i, name, result) in results {
        let dev = device(&name);
        let group = SenderKeyName::new(format!("g{i}@g.us"), Address::new("me", 0));
        if name.starts_with("ghost") {
            assert!(
                matches!(result, Err(StoreError::UnknownDevice(ref d)) if *d == name),
                "{result:?}"
            );
            assert_eq!(store.load_sender_key(&dev, &group).await.unwrap(), None);
        } else {
            result.unwrap();
            assert_eq!(
                store.load_sender_key(&dev, &group).await.unwrap(),
                Some(vec![i as u8; 8])
            );
        }
    }
}

/// SQLite's group commit: batches that queue while the write lock is taken all go into (at most)
/// two transactions, one fsync each, instead of one transaction per batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_batches_waiting_for_the_lock_share_one_commit() {
    const BATCHES: usize = 50;
    let h = Harness::sqlite().await;
    let store = &h.store;
    for n in 0..BATCHES {
        store
            .create_device(&device(&format!("gc-{n:02}")), &credentials(n as u8))
            .await
            .unwrap();
    }
    let before = store.write_transactions();
    // Another writer holds SQLite's write lock while every batch is queued.
    let pool = store.sqlite_pool().unwrap().clone();
    let blocker = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
    let applies = futures_util::future::join_all((0..BATCHES).map(|n| {
        let store = store.clone();
        async move {
            store
                .apply(
                    &device(&format!("gc-{n:02}")),
                    Batch::new().store_session(Address::new("peer", 0), vec![n as u8; 4]),
                )
                .await
        }
    }));
    let release = async move {
        // Runs after the first poll of `applies`, which queued every batch.
        tokio::task::yield_now().await;
        blocker.commit().await.unwrap();
    };
    let (results, ()) = tokio::join!(applies, release);
    for r in results {
        r.unwrap();
    }
    let used = store.write_transactions() - before;
    assert!(
        (1..=2).contains(&used),
        "{BATCHES} queued batches took {used} transactions"
    );
    for n in 0..BATCHES {
        assert_eq!(
            store
                .load_session(&device(&format!("gc-{n:02}")), &Address::new("peer", 0))
                .await
                .unwrap(),
            Some(vec![n as u8; 4])
        );
    }
    h.finish().await;
}
