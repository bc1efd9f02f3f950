//! Key rotation on SQLite and PostgreSQL: every sealed column is re-sealed under the new key and
//! opens through the store's API with the new key alone; a writer still on the old key during
//! the pass loses nothing and its rows are re-sealed by the next pass; the key-check row round
//! trips.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Harness, credentials, device, paired, prekey, signed_prekey};
use zapin_signal_store::key_check::{self, KeyCheck};
use zapin_signal_store::{
    Address, Batch, InboxEntry, Keyring, MasterKey, PostgresOptions, ResealMode, SenderKeyName,
    SqliteOptions, Store,
};

const SESSIONS: u32 = 23;

fn old_key() -> MasterKey {
    common::master_key()
}

fn new_key() -> MasterKey {
    MasterKey::from_bytes([0x77; 32])
}

fn record(dev: u32, i: u32, version: u32) -> Vec<u8> {
    format!("session-{dev}-{i}-v{version}").into_bytes()
}

fn group(i: u32) -> SenderKeyName {
    SenderKeyName::new(format!("g{i}@g.us"), Address::new(format!("m{i}"), i))
}

/// Two devices with a value in every sealed column: credentials (and their signed prekey), extra
/// signed prekeys, one-time prekeys, sessions, sender keys.
async fn populate(store: &Store) {
    for (n, seed) in [(0u32, 1u8), (1, 2)] {
        let dev = device(&format!("dev-{n}"));
        store.create_device(&dev, &paired(seed)).await.unwrap();
        store
            .store_signed_prekey(&dev, &signed_prekey(7, seed))
            .await
            .unwrap();
        store
            .insert_prekeys(&dev, &(1..=9).map(prekey).collect::<Vec<_>>())
            .await
            .unwrap();
        for i in 0..SESSIONS {
            store
                .store_session(
                    &dev,
                    &Address::new(format!("peer{i}"), i % 3),
                    &record(n, i, 0),
                )
                .await
                .unwrap();
        }
        for i in 0..4 {
            store
                .store_sender_key(&dev, &group(i), format!("sk-{n}-{i}").as_bytes())
                .await
                .unwrap();
        }
        for i in 0..3 {
            store
                .apply(&dev, Batch::new().put_inbox(inbox_entry(n, i)))
                .await
                .unwrap();
        }
    }
}

fn inbox_entry(n: u32, i: u32) -> InboxEntry {
    InboxEntry {
        sender: format!("peer{i}@s.whatsapp.net"),
        id: format!("M{n}-{i}"),
        body: format!("inbox-{n}-{i}").into_bytes(),
    }
}

/// Everything [`populate`] wrote reads back unchanged through the API.
async fn verify(store: &Store) {
    for (n, seed) in [(0u32, 1u8), (1, 2)] {
        let dev = device(&format!("dev-{n}"));
        let creds = store.load_credentials(&dev).await.unwrap().unwrap();
        let want = paired(seed);
        assert_eq!(
            creds.identity_key.private.expose(),
            want.identity_key.private.expose()
        );
        assert_eq!(creds.adv_secret_key.expose(), want.adv_secret_key.expose());
        let spk = store.load_signed_prekey(&dev, 7).await.unwrap().unwrap();
        assert_eq!(
            spk.key_pair.private.expose(),
            signed_prekey(7, seed).key_pair.private.expose()
        );
        for id in 1..=9 {
            let pk = store.load_prekey(&dev, id).await.unwrap().unwrap();
            assert_eq!(
                pk.key_pair.private.expose(),
                prekey(id).key_pair.private.expose()
            );
        }
        for i in 0..SESSIONS {
            let got = store
                .load_session(&dev, &Address::new(format!("peer{i}"), i % 3))
                .await
                .unwrap();
            assert_eq!(got, Some(record(n, i, 0)), "dev {n} session {i}");
        }
        for i in 0..4 {
            let got = store.load_sender_key(&dev, &group(i)).await.unwrap();
            assert_eq!(got, Some(format!("sk-{n}-{i}").into_bytes()));
        }
        let inbox = store.load_inbox(&dev).await.unwrap();
        assert_eq!(inbox, (0..3).map(|i| inbox_entry(n, i)).collect::<Vec<_>>());
    }
}

/// 2 devices × (credentials + current signed prekey + signed prekey 7 + 9 prekeys + sessions + 4
/// sender keys + 3 inbox messages).
const SEALED_VALUES: u64 = 2 * (1 + 1 + 1 + 9 + SESSIONS as u64 + 4 + 3);

async fn rotate_everything(store: &Store) {
    populate(store).await;
    let check = store.reseal(ResealMode::Check, 5).await.unwrap();
    assert_eq!(check.current, SEALED_VALUES, "{check:?}");
    assert_eq!(check.sealed(), SEALED_VALUES);

    // Rotate: new key current, old key for reading. Everything still opens.
    store
        .keyring()
        .replace(Keyring::new(new_key()).with_previous(Some(old_key())));
    verify(store).await;
    let before = store.reseal(ResealMode::Check, 5).await.unwrap();
    assert_eq!(
        (before.current, before.previous, before.unreadable),
        (0, SEALED_VALUES, 0)
    );

    // Small batches, so every table needs several.
    let done = store.reseal(ResealMode::Reseal, 5).await.unwrap();
    assert_eq!(done.previous, SEALED_VALUES);
    assert_eq!(done.resealed, SEALED_VALUES);
    assert_eq!((done.raced, done.unreadable), (0, 0));
    let again = store.reseal(ResealMode::Reseal, 5).await.unwrap();
    assert_eq!(
        (again.current, again.previous, again.resealed),
        (SEALED_VALUES, 0, 0)
    );

    // The new key alone opens everything; the old one alone opens nothing.
    store.keyring().replace(Keyring::new(new_key()));
    verify(store).await;
    store.keyring().replace(Keyring::new(old_key()));
    let stale = store.reseal(ResealMode::Check, 100).await.unwrap();
    assert_eq!(
        (stale.current, stale.unreadable),
        (0, SEALED_VALUES),
        "{stale:?}"
    );
    assert!(
        store
            .load_session(&device("dev-0"), &Address::new("peer0", 0))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn every_sealed_column_is_resealed_on_sqlite() {
    let h = Harness::sqlite().await;
    rotate_everything(&h.store).await;
    h.finish().await;
}

#[tokio::test]
async fn every_sealed_column_is_resealed_on_postgres() {
    let Some(h) = Harness::postgres().await else {
        return;
    };
    rotate_everything(&h.store).await;
    h.finish().await;
}

/// A second handle on the same database that still seals under the old key, as a process that
/// has not switched yet would.
async fn old_writer(h: &Harness) -> Store {
    if let Some(dir) = &h.dir {
        return Store::open_sqlite(&SqliteOptions::new(dir.path()), &old_key())
            .await
            .unwrap();
    }
    let mut options = PostgresOptions::new(h.pg_url.clone().unwrap());
    options.schema = h.pg_schema.clone();
    Store::open_postgres(&options, &old_key()).await.unwrap()
}

async fn concurrent_old_writer_loses_nothing(h: &Harness) {
    let store = &h.store;
    let dev = device("busy");
    store.create_device(&dev, &credentials(9)).await.unwrap();
    let addr = |i: u32| Address::new(format!("c{i}"), 0);
    for i in 0..40 {
        store
            .store_session(&dev, &addr(i), &record(9, i, 0))
            .await
            .unwrap();
    }
    store
        .keyring()
        .replace(Keyring::new(new_key()).with_previous(Some(old_key())));

    // The old writer keeps rewriting every session under the old key while the pass runs.
    let writer = old_writer(h).await;
    let writing = {
        let writer = writer.clone();
        let dev = dev.clone();
        tokio::spawn(async move {
            for version in 1..=3 {
                for i in 0..40 {
                    writer
                        .store_session(&dev, &addr(i), &record(9, i, version))
                        .await
                        .unwrap();
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    let mut passes = Vec::new();
    while !writing.is_finished() {
        passes.push(store.reseal(ResealMode::Reseal, 3).await.unwrap());
    }
    writing.await.unwrap();
    writer.close().await;
    assert!(
        !passes.is_empty(),
        "the writer finished before any pass ran"
    );
    assert!(passes.iter().all(|p| p.unreadable == 0), "{passes:?}");

    // Nothing the writer wrote was overwritten by a stale re-seal: every session holds its last
    // version, readable with both keys, and a final pass leaves nothing under the old key.
    for i in 0..40 {
        assert_eq!(
            store.load_session(&dev, &addr(i)).await.unwrap(),
            Some(record(9, i, 3))
        );
    }
    store.reseal(ResealMode::Reseal, 7).await.unwrap();
    store.keyring().replace(Keyring::new(new_key()));
    let last = store.reseal(ResealMode::Check, 7).await.unwrap();
    assert_eq!((last.previous, last.unreadable), (0, 0), "{last:?}");
    for i in 0..40 {
        assert_eq!(
            store.load_session(&dev, &addr(i)).await.unwrap(),
            Some(record(9, i, 3))
        );
    }
}

#[tokio::test]
async fn an_old_key_writer_during_the_pass_loses_nothing_on_sqlite() {
    let h = Harness::sqlite().await;
    concurrent_old_writer_loses_nothing(&h).await;
    h.finish().await;
}

#[tokio::test]
async fn an_old_key_writer_during_the_pass_loses_nothing_on_postgres() {
    let Some(h) = Harness::postgres().await else {
        return;
    };
    concurrent_old_writer_loses_nothing(&h).await;
    h.finish().await;
}

async fn key_check_round_trips(store: &Store) {
    let pool = store.pool().unwrap();
    assert_eq!(key_check::load(pool).await.unwrap(), None);
    let first = KeyCheck {
        fingerprint: old_key().fingerprint(),
        previous: None,
    };
    key_check::save(pool, &first).await.unwrap();
    assert_eq!(key_check::load(pool).await.unwrap(), Some(first));
    let rotating = KeyCheck {
        fingerprint: new_key().fingerprint(),
        previous: Some(old_key().fingerprint()),
    };
    key_check::save(pool, &rotating).await.unwrap();
    assert_eq!(key_check::load(pool).await.unwrap(), Some(rotating));
    // A fingerprint names a key without showing it.
    let fp = old_key().fingerprint();
    assert_eq!(fp.as_str().len(), 64);
    assert!(!fp.as_str().contains(&hex_of(old_key().expose())));
    assert_eq!(fp.to_string().len(), 16);
    assert_ne!(fp, new_key().fingerprint());
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::test]
async fn key_check_row_round_trips_on_sqlite() {
    let h = Harness::sqlite().await;
    key_check_round_trips(&h.store).await;
    h.finish().await;
}

#[tokio::test]
async fn key_check_row_round_trips_on_postgres() {
    let Some(h) = Harness::postgres().await else {
        return;
    };
    key_check_round_trips(&h.store).await;
    h.finish().await;
}
