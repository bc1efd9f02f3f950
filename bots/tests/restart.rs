//! Sessions in SQLite and PostgreSQL: the store's contract, and a conversation that survives an
//! engine restart (new pool, new engine) mid-session. PostgreSQL runs in a schema of its own on
//! the server of `ZAPIN_TEST_DATABASE_URL` (skipped when unreachable, failing under `CI=true`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use zapin_bots::store::SqlStore;
use zapin_bots::{
    EngineLimits, ManualClock, Session, SessionStatus, SessionStore, StaticDirectory,
    TriggerOperator,
};

const ANA: &str = "5511999990001@s.whatsapp.net";
const BIA: &str = "5511999990002@s.whatsapp.net";

/// Opens a fresh store on the same database each call.
enum Db {
    Sqlite(tempfile::TempDir),
    Postgres { url: String, schema: String },
}

impl Db {
    async fn postgres(url: String) -> Self {
        let mut id = [0u8; 6];
        getrandom::fill(&mut id).unwrap();
        let schema = format!("bots_test_{}", hex::encode(id));
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        Self::Postgres { url, schema }
    }

    async fn open(&self) -> SqlStore {
        match self {
            Self::Sqlite(dir) => {
                let connect = SqliteConnectOptions::new()
                    .filename(dir.path().join("zapin.db"))
                    .create_if_missing(true);
                let pool = SqlitePoolOptions::new()
                    .connect_with(connect)
                    .await
                    .unwrap();
                SqlStore::sqlite(pool).await.unwrap()
            }
            Self::Postgres { url, schema } => {
                let connect = PgConnectOptions::from_str(url)
                    .unwrap()
                    .options([("search_path", schema.as_str())]);
                let pool = PgPoolOptions::new()
                    .max_connections(2)
                    .connect_with(connect)
                    .await
                    .unwrap();
                SqlStore::postgres(pool).await.unwrap()
            }
        }
    }

    async fn drop_schema(&self) {
        if let Self::Postgres { url, schema } = self {
            let admin = PgPoolOptions::new()
                .max_connections(1)
                .connect(url)
                .await
                .unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA \"{schema}\" CASCADE"
            )))
            .execute(&admin)
            .await
            .unwrap();
            admin.close().await;
        }
    }
}

async fn backends() -> Vec<Db> {
    let mut dbs = vec![Db::Sqlite(tempfile::tempdir().unwrap())];
    if let Some(url) = postgres_url().await {
        dbs.push(Db::postgres(url).await);
    }
    dbs
}

fn session(id: &str, jid: &str, bot: &str, updated_at: u64) -> Session {
    Session {
        id: id.into(),
        instance: "inst".into(),
        remote_jid: jid.into(),
        kind: "evolution".into(),
        bot_id: Some(bot.into()),
        session_id: jid.into(),
        push_name: Some("Ana".into()),
        status: SessionStatus::Opened,
        await_user: true,
        context: json!({"history": ["a", "b"]}),
        created_at: 1000,
        updated_at,
    }
}

#[tokio::test]
async fn store_contract_on_sql_backends() {
    for db in backends().await {
        let store = db.open().await;
        assert!(store.latest("inst", ANA).await.unwrap().is_none());
        let old = session("s1", ANA, "b1", 2000);
        let new = session("s2", ANA, "b2", 3000);
        store.save(&old).await.unwrap();
        store.save(&new).await.unwrap();
        store.save(&session("s3", BIA, "b1", 2500)).await.unwrap();
        assert_eq!(store.latest("inst", ANA).await.unwrap(), Some(new.clone()));
        // Upsert by id.
        let mut changed = old.clone();
        changed.updated_at = 4000;
        changed.session_id = "thread-1".into();
        changed.bot_id = None;
        store.save(&changed).await.unwrap();
        assert_eq!(
            store.latest("inst", ANA).await.unwrap(),
            Some(changed.clone())
        );
        let ids = |v: Vec<Session>| v.into_iter().map(|s| s.id).collect::<Vec<_>>();
        assert_eq!(
            ids(store.list("inst", None).await.unwrap()),
            ["s1", "s2", "s3"]
        );
        assert_eq!(ids(store.list("inst", Some("b1")).await.unwrap()), ["s3"]);
        assert!(store.list("other", None).await.unwrap().is_empty());
        assert_eq!(
            store
                .set_status_for_contact("inst", ANA, SessionStatus::Paused, 5000)
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            store.latest("inst", ANA).await.unwrap().unwrap().status,
            SessionStatus::Paused
        );
        assert_eq!(store.delete_for_contact("inst", ANA).await.unwrap(), 2);
        store.delete("s3").await.unwrap();
        assert!(store.list("inst", None).await.unwrap().is_empty());
        db.drop_schema().await;
    }
}

#[tokio::test]
async fn a_conversation_survives_a_restart() {
    let (url, seen) = evolution_server().await;
    let b = bot(
        "b1",
        keyword(TriggerOperator::Equals, "hi"),
        json!({"apiUrl": format!("{url}/bot")}),
        quick(),
    );
    for db in backends().await {
        let directory = Arc::new(StaticDirectory::default());
        directory.set(
            "inst",
            instance(vec![setup("evolution", vec![b.clone()], None)]),
        );
        let clock = Arc::new(ManualClock::new(1_700_000_000_000));

        let store = Arc::new(db.open().await);
        let (out, mut rx) = recorder();
        let first = engine(
            store.clone(),
            directory.clone(),
            out,
            clock.clone(),
            EngineLimits::default(),
        );
        first.dispatch(msg(ANA, "hi"));
        assert_eq!(rx.next_texts().await.1, vec!["echo: hi".to_owned()]);
        settle(&first).await;
        let before = store.latest("inst", ANA).await.unwrap().unwrap();
        drop(first);
        drop(store);

        // A new process: new pool, new engine, a minute later. "more" matches no trigger, so
        // only the stored session can route it to b1.
        clock.advance(Duration::from_secs(60));
        let store = Arc::new(db.open().await);
        let (out, mut rx) = recorder();
        let second = engine(
            store.clone(),
            directory,
            out,
            clock,
            EngineLimits::default(),
        );
        second.dispatch(msg(ANA, "more"));
        assert_eq!(rx.next_texts().await.1, vec!["echo: more".to_owned()]);
        settle(&second).await;
        let after = store.latest("inst", ANA).await.unwrap().unwrap();
        assert_eq!(after.id, before.id);
        assert_eq!(after.status, SessionStatus::Opened);
        assert!(after.updated_at > before.updated_at);
        db.drop_schema().await;
    }
    assert!(seen.lock().unwrap().len() >= 2);
}
