//! Dashboard users and sessions on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::databases;
use zapin_tenancy::TenancyError;
use zapin_tenancy::apikey::KeyHasher;
use zapin_tenancy::directory::Directory;
use zapin_tenancy::plan::Plan;
use zapin_tenancy::users::{SessionOwner, Users};
use zeroize::Zeroizing;

#[tokio::test]
async fn users_sign_in_and_sessions_end() {
    for db in databases().await {
        let label = db.name();
        let dir = Directory::new(db.pool.clone(), KeyHasher::new(Zeroizing::new([7u8; 32])))
            .with_ttl(Duration::ZERO);
        dir.create_plan(&Plan::from_json(br#"{"name":"free"}"#).unwrap())
            .await
            .unwrap();
        let acme = dir.create_tenant("acme", "free").await.unwrap().tenant;
        let users = Users::new(db.pool.clone());

        let ana = users
            .add(&acme.id, "Ana@Acme.test", "correct horse battery")
            .await
            .unwrap();
        assert_eq!(ana.email, "ana@acme.test", "{label}");
        assert!(matches!(
            users
                .add(&acme.id, "ana@acme.test", "another password")
                .await,
            Err(TenancyError::Conflict(_))
        ));
        assert!(matches!(
            users
                .add("no-such-tenant", "bo@acme.test", "correct horse battery")
                .await,
            Err(TenancyError::NotFound(_))
        ));
        assert!(matches!(
            users.add(&acme.id, "bo@acme.test", "short").await,
            Err(TenancyError::Invalid(_))
        ));
        assert_eq!(
            users.list(&acme.id).await.unwrap(),
            std::slice::from_ref(&ana),
            "{label}"
        );

        assert_eq!(
            users
                .verify("ANA@acme.test", "correct horse battery")
                .await
                .unwrap(),
            Some(ana.clone()),
            "{label}"
        );
        assert_eq!(users.verify("ana@acme.test", "wrong").await.unwrap(), None);
        assert_eq!(users.verify("nobody@acme.test", "x").await.unwrap(), None);

        let opened = users
            .open_session(SessionOwner::User(ana.clone()), 60_000)
            .await
            .unwrap();
        let found = users.session(&opened.token).await.unwrap().unwrap();
        assert_eq!(found.owner, SessionOwner::User(ana.clone()), "{label}");
        assert_eq!(found.csrf, opened.session.csrf);
        assert!(users.session("not-a-token").await.unwrap().is_none());
        users.close_session(&opened.token).await.unwrap();
        assert!(
            users.session(&opened.token).await.unwrap().is_none(),
            "{label}"
        );

        let operator = users
            .open_session(SessionOwner::Operator, 60_000)
            .await
            .unwrap();
        assert_eq!(
            users.session(&operator.token).await.unwrap().unwrap().owner,
            SessionOwner::Operator
        );
        let expired = users
            .open_session(SessionOwner::Operator, -1)
            .await
            .unwrap();
        assert!(
            users.session(&expired.token).await.unwrap().is_none(),
            "{label}"
        );

        // Deleting the tenant takes its users and their sessions along.
        let again = users
            .open_session(SessionOwner::User(ana), 60_000)
            .await
            .unwrap();
        dir.delete_tenant(&acme.id).await.unwrap();
        assert!(
            users.session(&again.token).await.unwrap().is_none(),
            "{label}"
        );
        db.cleanup().await;
    }
}
