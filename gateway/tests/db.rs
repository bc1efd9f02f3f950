//! Repository round trips, cascade delete, atomicity and event routing, on SQLite and (when
//! `ZAPIN_TEST_DATABASE_URL` is set) PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use serde_json::json;
use zapin_gateway::db::{Chat, Contact, Db, DbError, Message, NewInstance, Settings, WebhookSet};
use zapin_gateway::webhook::Routing;

use common::{TestDb, backends};

fn new_instance(name: &str) -> NewInstance {
    NewInstance {
        name: name.to_owned(),
        token: format!("TOKEN-{name}"),
        token_hash: None,
        integration: "WHATSAPP-BAILEYS".to_owned(),
        number: Some("5511999999999".to_owned()),
        connection_status: "close".to_owned(),
    }
}

fn envelope(event: &str, name: &str) -> serde_json::Value {
    json!({"event": event, "instance": name, "data": {}})
}

fn webhook(url: &str, events: &[&str]) -> WebhookSet {
    WebhookSet {
        url: url.to_owned(),
        enabled: true,
        events: events.iter().map(|e| (*e).to_owned()).collect(),
        by_events: false,
        base64: false,
        headers: json!({"x-tenant": "t1"}),
        secret: Some("s3cret".to_owned()),
    }
}

fn message(instance_id: &str, key: &str, jid: &str, ts: i64) -> Message {
    Message {
        instance_id: instance_id.to_owned(),
        key_id: key.to_owned(),
        remote_jid: jid.to_owned(),
        from_me: false,
        participant: None,
        push_name: Some("Alice".to_owned()),
        message: json!({"conversation": format!("hello {key}")}),
        message_type: "conversation".to_owned(),
        timestamp: ts,
        status: Some("DELIVERY_ACK".to_owned()),
        source: "unknown".to_owned(),
        context_info: serde_json::Value::Null,
    }
}

async fn create(db: &Db, name: &str) -> zapin_gateway::db::Instance {
    let mut tx = db.begin().await.unwrap();
    let inst = tx
        .create_instance(&new_instance(name), |i| {
            envelope("instance.create", &i.name)
        })
        .await
        .unwrap();
    tx.commit().await.unwrap();
    inst
}

async fn each_backend<F, Fut>(routing: Routing, f: F)
where
    F: Fn(Db) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for t in backends(routing).await {
        let name = t.db.backend_name();
        eprintln!("running on {name}");
        f(t.db.clone()).await;
        t.cleanup().await;
    }
}

#[tokio::test]
async fn repository_round_trips() {
    each_backend(Routing::default(), |db| async move {
        let a = create(&db, "alpha").await;
        let b = create(&db, "beta").await;
        assert_eq!(a.name, "alpha");
        assert_eq!(a.id.len(), 36);
        assert_ne!(a.id, b.id);

        let mut tx = db.begin().await.unwrap();
        assert_eq!(tx.get_instance(&a.id).await.unwrap().as_ref(), Some(&a));
        assert_eq!(
            tx.get_instance_by_name("beta").await.unwrap().as_ref(),
            Some(&b)
        );
        assert_eq!(tx.get_instance_by_name("gamma").await.unwrap(), None);
        let names: Vec<String> = tx
            .list_instances()
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.name)
            .collect();
        assert_eq!(names, ["alpha", "beta"]);

        // Names are unique.
        let dup = tx
            .create_instance(&new_instance("alpha"), |_| json!({}))
            .await;
        assert!(matches!(dup, Err(DbError::NameTaken(n)) if n == "alpha"));
        drop(tx);

        let mut tx = db.begin().await.unwrap();
        tx.update_instance_connection(&a.id, "open", Some("5511@s.whatsapp.net"), Some("Al"))
            .await
            .unwrap();
        let a2 = tx.get_instance(&a.id).await.unwrap().unwrap();
        assert_eq!(a2.connection_status, "open");
        assert_eq!(a2.owner_jid.as_deref(), Some("5511@s.whatsapp.net"));
        assert!(matches!(
            tx.update_instance_connection("nope", "open", None, None)
                .await,
            Err(DbError::NoInstance(_))
        ));

        // Settings.
        assert_eq!(tx.get_settings(&a.id).await.unwrap(), None);
        let mut s = Settings {
            reject_call: true,
            msg_call: "busy".to_owned(),
            read_status: true,
            ..Settings::default()
        };
        tx.set_settings(&a.id, &s).await.unwrap();
        assert_eq!(tx.get_settings(&a.id).await.unwrap().as_ref(), Some(&s));
        s.reject_call = false;
        s.wavoip_token = "w".to_owned();
        tx.set_settings(&a.id, &s).await.unwrap();
        assert_eq!(tx.get_settings(&a.id).await.unwrap().as_ref(), Some(&s));

        // Webhook: set, then replace (same row id).
        assert_eq!(tx.get_webhook(&a.id).await.unwrap(), None);
        let w1 = tx
            .set_webhook(&a.id, &webhook("http://h/1", &["MESSAGES_UPSERT"]))
            .await
            .unwrap();
        assert_eq!(w1.events, ["MESSAGES_UPSERT"]);
        assert_eq!(w1.headers, json!({"x-tenant": "t1"}));
        assert_eq!(w1.secret.as_deref(), Some("s3cret"));
        let mut set2 = webhook("http://h/2", &[]);
        set2.by_events = true;
        set2.secret = None;
        let w2 = tx.set_webhook(&a.id, &set2).await.unwrap();
        assert_eq!(w2.id, w1.id);
        assert_eq!(w2.url, "http://h/2");
        assert!(w2.by_events);
        assert_eq!(w2.secret, None);
        assert_eq!(tx.get_webhook(&a.id).await.unwrap(), Some(w2));

        // Messages: upsert is idempotent per key id and pages newest first.
        for i in 0..5 {
            let jid = if i % 2 == 0 {
                "1@s.whatsapp.net"
            } else {
                "2@s.whatsapp.net"
            };
            let new = tx
                .upsert_message(&message(&a.id, &format!("K{i}"), jid, 1000 + i), |_| {
                    json!({})
                })
                .await
                .unwrap();
            assert!(new);
        }
        let mut changed = message(&a.id, "K0", "1@s.whatsapp.net", 1000);
        changed.status = Some("READ".to_owned());
        assert!(!tx.upsert_message(&changed, |_| json!({})).await.unwrap());
        assert_eq!(tx.get_message(&a.id, "K0").await.unwrap(), Some(changed));
        assert_eq!(tx.get_message(&b.id, "K0").await.unwrap(), None);

        let p1 = tx.find_messages(&a.id, None, 1, 2).await.unwrap();
        assert_eq!(p1.total, 5);
        let keys: Vec<&str> = p1.messages.iter().map(|m| m.key_id.as_str()).collect();
        assert_eq!(keys, ["K4", "K3"]);
        let p3 = tx.find_messages(&a.id, None, 3, 2).await.unwrap();
        let keys: Vec<&str> = p3.messages.iter().map(|m| m.key_id.as_str()).collect();
        assert_eq!(keys, ["K0"]);
        let chat1 = tx
            .find_messages(&a.id, Some("1@s.whatsapp.net"), 1, 10)
            .await
            .unwrap();
        assert_eq!(chat1.total, 3);
        assert!(
            chat1
                .messages
                .iter()
                .all(|m| m.remote_jid == "1@s.whatsapp.net")
        );
        assert_eq!(
            chat1.messages[0].message,
            json!({"conversation": "hello K4"})
        );

        // Contacts and chats: upserts keep known fields when the update lacks them.
        let c = Contact {
            instance_id: a.id.clone(),
            remote_jid: "1@s.whatsapp.net".to_owned(),
            push_name: Some("Alice".to_owned()),
            profile_pic_url: Some("https://pic".to_owned()),
        };
        tx.upsert_contact(&c).await.unwrap();
        tx.upsert_contact(&Contact {
            push_name: Some("Alicia".to_owned()),
            profile_pic_url: None,
            ..c.clone()
        })
        .await
        .unwrap();
        // Both chats the messages went through have a contact row (findContacts lists them).
        let contacts = tx.list_contacts(&a.id).await.unwrap();
        let jids: Vec<&str> = contacts.iter().map(|c| c.remote_jid.as_str()).collect();
        assert_eq!(jids, ["1@s.whatsapp.net", "2@s.whatsapp.net"]);
        assert_eq!(contacts[0].push_name.as_deref(), Some("Alicia"));
        assert_eq!(contacts[0].profile_pic_url.as_deref(), Some("https://pic"));

        let chat = Chat {
            instance_id: a.id.clone(),
            remote_jid: "1@s.whatsapp.net".to_owned(),
            name: Some("Alice".to_owned()),
            unread_messages: 3,
        };
        tx.upsert_chat(&chat).await.unwrap();
        tx.upsert_chat(&Chat {
            name: None,
            unread_messages: 0,
            ..chat.clone()
        })
        .await
        .unwrap();
        let chats = tx.list_chats(&a.id).await.unwrap();
        assert_eq!(
            chats,
            [Chat {
                unread_messages: 0,
                ..chat
            }]
        );
        tx.commit().await.unwrap();

        // Committed state is visible from a new transaction.
        let mut tx = db.begin().await.unwrap();
        assert_eq!(
            tx.find_messages(&a.id, None, 1, 100).await.unwrap().total,
            5
        );
    })
    .await;
}

#[tokio::test]
async fn deleting_an_instance_cascades_to_everything_it_owns() {
    each_backend(Routing::default(), |db| async move {
        let a = create(&db, "doomed").await;
        let keep = create(&db, "kept").await;
        let mut tx = db.begin().await.unwrap();
        for inst in [&a, &keep] {
            tx.set_settings(&inst.id, &Settings::default())
                .await
                .unwrap();
            tx.set_webhook(&inst.id, &webhook("http://127.0.0.1:9/h", &[]))
                .await
                .unwrap();
            tx.upsert_message(&message(&inst.id, "M1", "1@s.whatsapp.net", 1), |_| {
                json!({})
            })
            .await
            .unwrap();
            tx.upsert_contact(&Contact {
                instance_id: inst.id.clone(),
                remote_jid: "1@s.whatsapp.net".to_owned(),
                push_name: None,
                profile_pic_url: None,
            })
            .await
            .unwrap();
            tx.upsert_chat(&Chat {
                instance_id: inst.id.clone(),
                remote_jid: "1@s.whatsapp.net".to_owned(),
                name: None,
                unread_messages: 1,
            })
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
        let before = db.outbox_entries().await.unwrap().len();

        let mut tx = db.begin().await.unwrap();
        assert!(
            tx.delete_instance(&a.id, |i| envelope("instance.delete", &i.name))
                .await
                .unwrap()
        );
        assert!(!tx.delete_instance(&a.id, |_| json!({})).await.unwrap());
        tx.commit().await.unwrap();

        let mut tx = db.begin().await.unwrap();
        assert_eq!(tx.get_instance(&a.id).await.unwrap(), None);
        assert_eq!(tx.get_settings(&a.id).await.unwrap(), None);
        assert_eq!(tx.get_webhook(&a.id).await.unwrap(), None);
        assert_eq!(tx.find_messages(&a.id, None, 1, 10).await.unwrap().total, 0);
        assert!(tx.list_contacts(&a.id).await.unwrap().is_empty());
        assert!(tx.list_chats(&a.id).await.unwrap().is_empty());
        // The other instance is untouched.
        assert!(tx.get_settings(&keep.id).await.unwrap().is_some());
        assert!(tx.get_webhook(&keep.id).await.unwrap().is_some());
        assert_eq!(
            tx.find_messages(&keep.id, None, 1, 10).await.unwrap().total,
            1
        );
        assert_eq!(tx.list_contacts(&keep.id).await.unwrap().len(), 1);
        assert_eq!(tx.list_chats(&keep.id).await.unwrap().len(), 1);
        drop(tx);

        // INSTANCE_DELETE was routed while the webhook still existed, and outlives the instance.
        let outbox = db.outbox_entries().await.unwrap();
        assert_eq!(outbox.len(), before + 1);
        let last = outbox.last().unwrap();
        assert_eq!(last.event, "INSTANCE_DELETE");
        assert_eq!(last.instance_id, a.id);
    })
    .await;
}

#[tokio::test]
async fn a_failed_transaction_keeps_neither_the_state_nor_its_events() {
    each_backend(Routing::default(), |db| async move {
        let a = create(&db, "atomic").await;
        let mut tx = db.begin().await.unwrap();
        tx.set_webhook(&a.id, &webhook("http://127.0.0.1:9/h", &[]))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let before = db.outbox_entries().await.unwrap();

        // A message and its event, then a failure later in the same transaction.
        let mut tx = db.begin().await.unwrap();
        assert!(
            tx.upsert_message(
                &message(&a.id, "X1", "1@s.whatsapp.net", 5),
                |_| json!({"n": 1})
            )
            .await
            .unwrap()
        );
        assert_eq!(tx.enqueued(), 1);
        let failed = tx
            .create_instance(&new_instance("atomic"), |_| json!({}))
            .await;
        assert!(matches!(failed, Err(DbError::NameTaken(_))));
        drop(tx); // the caller gives up: everything rolls back

        let mut tx = db.begin().await.unwrap();
        assert_eq!(tx.get_message(&a.id, "X1").await.unwrap(), None);
        drop(tx);
        assert_eq!(db.outbox_entries().await.unwrap(), before);

        // Explicit rollback of an instance creation and its INSTANCE_CREATE.
        let mut tx = db.begin().await.unwrap();
        tx.create_instance(&new_instance("ghost"), |_| json!({}))
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        let mut tx = db.begin().await.unwrap();
        assert_eq!(tx.get_instance_by_name("ghost").await.unwrap(), None);
        drop(tx);
        assert_eq!(db.outbox_entries().await.unwrap(), before);

        // And the same change committed keeps both.
        let mut tx = db.begin().await.unwrap();
        tx.upsert_message(
            &message(&a.id, "X1", "1@s.whatsapp.net", 5),
            |_| json!({"n": 1}),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let after = db.outbox_entries().await.unwrap();
        assert_eq!(after.len(), before.len() + 1);
        let row = after.last().unwrap();
        assert_eq!(row.event, "MESSAGES_UPSERT");
        assert_eq!(row.body, r#"{"n":1}"#);
        assert_eq!(row.attempts, 0);
    })
    .await;
}

/// Several units of work in one transaction (the bridge's group commit): a unit that fails is
/// rolled back to its savepoint alone, on PostgreSQL too (where a failed statement otherwise
/// poisons the whole transaction), and the others commit with their events.
#[tokio::test]
async fn a_failed_unit_rolls_back_to_its_savepoint_alone() {
    each_backend(Routing::default(), |db| async move {
        let a = create(&db, "units").await;
        let mut tx = db.begin().await.unwrap();
        tx.set_webhook(&a.id, &webhook("http://127.0.0.1:9/h", &[]))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let before = db.outbox_entries().await.unwrap().len();

        let mut tx = db.begin().await.unwrap();
        tx.savepoint().await.unwrap();
        tx.upsert_message(
            &message(&a.id, "U1", "1@s.whatsapp.net", 5),
            |_| json!({"u": 1}),
        )
        .await
        .unwrap();
        tx.release_savepoint().await.unwrap();

        tx.savepoint().await.unwrap();
        tx.upsert_message(
            &message(&a.id, "U2", "1@s.whatsapp.net", 6),
            |_| json!({"u": 2}),
        )
        .await
        .unwrap();
        let failed = tx
            .create_instance(&new_instance("units"), |_| json!({}))
            .await;
        assert!(matches!(failed, Err(DbError::NameTaken(_))));
        tx.rollback_to_savepoint().await.unwrap();

        tx.savepoint().await.unwrap();
        tx.upsert_message(
            &message(&a.id, "U3", "1@s.whatsapp.net", 7),
            |_| json!({"u": 3}),
        )
        .await
        .unwrap();
        tx.release_savepoint().await.unwrap();
        tx.commit().await.unwrap();

        let mut tx = db.begin().await.unwrap();
        assert!(tx.get_message(&a.id, "U1").await.unwrap().is_some());
        assert_eq!(tx.get_message(&a.id, "U2").await.unwrap(), None);
        assert!(tx.get_message(&a.id, "U3").await.unwrap().is_some());
        drop(tx);
        let bodies: Vec<String> = db
            .outbox_entries()
            .await
            .unwrap()
            .into_iter()
            .skip(before)
            .map(|e| e.body)
            .collect();
        assert_eq!(bodies, [r#"{"u":1}"#, r#"{"u":3}"#]);
    })
    .await;
}

#[tokio::test]
async fn events_are_routed_to_the_instance_and_global_webhooks() {
    let routing = Routing {
        global_url: Some("http://global.example/hook".to_owned()),
        global_by_events: true,
        global_events: BTreeSet::from(["INSTANCE_CREATE".to_owned()]),
    };
    each_backend(routing, |db| async move {
        // No instance webhook yet: only the global one gets INSTANCE_CREATE.
        let a = create(&db, "routed").await;
        let rows = db.outbox_entries().await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].target_kind, "global");
        assert_eq!(rows[0].url, "http://global.example/hook/instance-create");
        assert_eq!(rows[0].headers, "{}");
        assert_eq!(rows[0].secret, None);

        let cases: Vec<(WebhookSet, Option<&str>)> = vec![
            // Listening to the event.
            (
                webhook("http://i.example/w", &["MESSAGES_UPSERT"]),
                Some("http://i.example/w"),
            ),
            // Empty list = every event.
            (
                webhook("http://i.example/w", &[]),
                Some("http://i.example/w"),
            ),
            // byEvents suffix.
            (
                WebhookSet {
                    by_events: true,
                    ..webhook("https://i.example/w", &["MESSAGES_UPSERT"])
                },
                Some("https://i.example/w/messages-upsert"),
            ),
            // Other events only.
            (webhook("http://i.example/w", &["QRCODE_UPDATED"]), None),
            // Disabled.
            (
                WebhookSet {
                    enabled: false,
                    ..webhook("http://i.example/w", &[])
                },
                None,
            ),
            // Not http(s).
            (webhook("ftp://i.example/w", &[]), None),
        ];
        for (i, (set, expected)) in cases.into_iter().enumerate() {
            let mut tx = db.begin().await.unwrap();
            tx.set_webhook(&a.id, &set).await.unwrap();
            let id = tx
                .enqueue_event(&a.id, "MESSAGES_UPSERT", &json!({"case": i}))
                .await
                .unwrap();
            tx.commit().await.unwrap();
            let wanted = json!({"case": i}).to_string();
            let rows: Vec<_> = db
                .outbox_entries()
                .await
                .unwrap()
                .into_iter()
                .filter(|r| r.body == wanted)
                .collect();
            match expected {
                Some(url) => {
                    assert_eq!(rows.len(), 1, "case {i}");
                    assert_eq!(rows[0].url, url, "case {i}");
                    assert_eq!(rows[0].target_kind, "instance");
                    assert_eq!(rows[0].secret.as_deref(), Some("s3cret"));
                    assert_eq!(Some(&rows[0].idempotency_id), id.as_ref());
                }
                None => {
                    assert!(rows.is_empty(), "case {i}");
                    assert_eq!(id, None, "case {i}");
                }
            }
        }

        // Both webhooks want INSTANCE_CREATE: two rows, one event id.
        let mut tx = db.begin().await.unwrap();
        tx.set_webhook(&a.id, &webhook("http://i.example/w", &[]))
            .await
            .unwrap();
        tx.enqueue_event(&a.id, "INSTANCE_CREATE", &json!({"both": true}))
            .await
            .unwrap();
        assert_eq!(tx.enqueued(), 2);
        tx.commit().await.unwrap();
        let both: Vec<_> = db
            .outbox_entries()
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.body.contains("both"))
            .collect();
        assert_eq!(both.len(), 2);
        assert_eq!(both[0].idempotency_id, both[1].idempotency_id);
        let kinds: BTreeSet<&str> = both.iter().map(|r| r.target_kind.as_str()).collect();
        assert_eq!(kinds, BTreeSet::from(["global", "instance"]));
    })
    .await;
}

#[tokio::test]
async fn reopening_runs_no_migration_twice_and_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zapin.sqlite3");
    let opts = zapin_gateway::db::DbOptions::default();
    let db = Db::open_sqlite_file(&path, Routing::default(), &opts)
        .await
        .unwrap();
    create(&db, "persisted").await;
    db.close().await;
    let db = Db::open_sqlite_file(&path, Routing::default(), &opts)
        .await
        .unwrap();
    let mut tx = db.begin().await.unwrap();
    assert!(
        tx.get_instance_by_name("persisted")
            .await
            .unwrap()
            .is_some()
    );
    let wal: String = {
        drop(tx);
        let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", path.display()))
            .await
            .unwrap();
        sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    assert_eq!(wal, "wal");

    if let Some(url) = common::postgres_url() {
        let t = TestDb::postgres(&url, Routing::default()).await;
        create(&t.db, "pg").await;
        t.cleanup().await;
    }
}

#[tokio::test]
async fn open_follows_the_configuration() {
    use zapin_gateway::Config;
    // Embedded: a file under ZAPIN_DATA_DIR, directory created on demand.
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let config = Config::from_env([
        ("ZAPIN_DATA_DIR", data_dir.to_str().unwrap()),
        ("WEBHOOK_GLOBAL_ENABLED", "true"),
        ("WEBHOOK_GLOBAL_URL", "http://global.example/h"),
        ("WEBHOOK_EVENTS_INSTANCE_CREATE", "true"),
    ])
    .unwrap();
    let db = Db::open(&config).await.unwrap();
    assert_eq!(db.backend_name(), "sqlite");
    assert!(data_dir.join(zapin_gateway::db::SQLITE_FILE).exists());
    assert_eq!(
        db.routing().global_url.as_deref(),
        Some("http://global.example/h")
    );
    create(&db, "configured").await;
    assert_eq!(db.outbox_entries().await.unwrap().len(), 1);
    db.close().await;

    // An explicit sqlite: URI.
    let file = dir.path().join("explicit.db");
    let uri = format!("sqlite:{}", file.display());
    let config = Config::from_env([("DATABASE_CONNECTION_URI", uri.as_str())]).unwrap();
    let db = Db::open(&config).await.unwrap();
    create(&db, "explicit").await;
    db.close().await;
    assert!(file.exists());
}

#[tokio::test]
async fn one_migrator_applies_the_whole_shared_folder() {
    for t in backends(Routing::default()).await {
        let db = t.db.clone();
        let name = db.backend_name();
        let versions: Vec<i64> = match name {
            "sqlite" => {
                let pool = db.sqlite_pool().unwrap();
                sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
                    .fetch_all(pool)
                    .await
                    .unwrap()
            }
            _ => {
                let pool = db.postgres_pool().unwrap();
                sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
                    .fetch_all(pool)
                    .await
                    .unwrap()
            }
        };
        // Every migration of the shared folder: signal-store's 0001 and up, the gateway's 0100
        // and up.
        let embedded: Vec<i64> = zapin_migrations::sqlite()
            .iter()
            .map(|m| m.version)
            .collect();
        assert_eq!(versions, embedded, "{name}");
        assert!(
            versions.contains(&1) && versions.contains(&100) && versions.contains(&110),
            "{versions:?}"
        );
        t.cleanup().await;
    }
}

/// A stored status only moves forward (a late, older one is stale and changes nothing), and a
/// pending send's row is reserved, answered, settled and withdrawn as `runtime::sends` does.
#[tokio::test]
async fn statuses_move_forward_and_pending_sends_settle() {
    use zapin_gateway::db::StatusChange::{Missing, Recorded, Stale};
    each_backend(Routing::default(), |db| async move {
        let inst = create(&db, "status").await;
        let mut sent = message(&inst.id, "3EB0STATUS0000000001", "1@s.whatsapp.net", 1);
        sent.from_me = true;
        sent.status = Some("PENDING".to_owned());
        let body = json!({"number": "1", "text": "hi"});

        let mut tx = db.begin().await.unwrap();
        tx.reserve_send(&sent, &body).await.unwrap();
        tx.commit().await.unwrap();
        let pending = db.pending_sends(Some(&inst.id)).await.unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].key_id, sent.key_id);
        assert_eq!(pending[0].request, body);
        assert!(!pending[0].answered);
        assert_eq!(db.pending_sends(Some("other")).await.unwrap(), []);

        let id = sent.key_id.as_str();
        let mut tx = db.begin().await.unwrap();
        assert!(tx.mark_send_answered(&inst.id, id).await.unwrap());
        let steps = [
            ("ERROR", Recorded),
            ("SERVER_ACK", Recorded),
            ("DELIVERY_ACK", Recorded),
            ("SERVER_ACK", Stale),
            ("ERROR", Stale),
            ("PENDING", Stale),
            ("DELIVERY_ACK", Recorded),
            ("READ", Recorded),
        ];
        for (s, want) in steps {
            assert_eq!(
                tx.set_message_status(&inst.id, id, s).await.unwrap(),
                want,
                "{s}"
            );
        }
        assert_eq!(
            tx.set_message_status(&inst.id, "3EB0NOSUCHMESSAGE000", "READ")
                .await
                .unwrap(),
            Missing
        );
        assert!(tx.settle_send(&inst.id, id).await.unwrap());
        assert!(!tx.settle_send(&inst.id, id).await.unwrap());
        let stored = tx.get_message(&inst.id, id).await.unwrap().unwrap();
        assert_eq!(stored.status.as_deref(), Some("READ"));
        tx.commit().await.unwrap();
        assert_eq!(db.pending_sends(None).await.unwrap(), []);

        // A reservation withdrawn (refused before the wire) leaves neither row.
        let mut other = sent.clone();
        other.key_id = "3EB0STATUS0000000002".to_owned();
        let mut tx = db.begin().await.unwrap();
        tx.reserve_send(&other, &body).await.unwrap();
        tx.withdraw_send(&inst.id, &other.key_id).await.unwrap();
        assert_eq!(tx.get_message(&inst.id, &other.key_id).await.unwrap(), None);
        assert_eq!(
            tx.pending_send(&inst.id, &other.key_id).await.unwrap(),
            None
        );
        tx.commit().await.unwrap();
    })
    .await;
}
