//! Plans, tenants, keys and instance ownership on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::databases;
use zapin_tenancy::TenancyError;
use zapin_tenancy::apikey::KeyHasher;
use zapin_tenancy::directory::{Directory, TenantPatch};
use zapin_tenancy::plan::{Pacing, Plan, PlanSpec};
use zapin_tenancy::sql::SqlPool;
use zeroize::Zeroizing;

const STARTER: &str = r#"{"name":"starter","quotas":{"message_send":{"day":100},"api_call":{"minute":60,"month":100000},"instance_create":{"total":2},"bot_create":{"total":1}},"price_cents":1900,"overage_cents":{"message_send":2}}"#;

fn directory(pool: &SqlPool, ttl: Duration) -> Directory {
    Directory::new(pool.clone(), KeyHasher::new(Zeroizing::new([7u8; 32]))).with_ttl(ttl)
}

#[tokio::test]
async fn plans_tenants_and_keys() {
    for db in databases().await {
        let label = db.name();
        let dir = directory(&db.pool, Duration::from_secs(3600));
        let starter = Plan::from_json(STARTER.as_bytes()).unwrap();
        dir.create_plan(&starter).await.unwrap();
        assert!(matches!(
            dir.create_plan(&starter).await,
            Err(TenancyError::Conflict(_))
        ));
        let pro = Plan::from_json(br#"{"name":"pro","price_cents":9900}"#).unwrap();
        dir.create_plan(&pro).await.unwrap();
        assert_eq!(
            dir.plans()
                .await
                .unwrap()
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>(),
            ["pro", "starter"],
            "{label}"
        );
        assert_eq!(dir.plan("starter").await.unwrap().unwrap(), starter);
        assert!(matches!(
            dir.update_plan("nope", &PlanSpec::default()).await,
            Err(TenancyError::NotFound(_))
        ));

        // A tenant and its first key.
        let acme = dir.create_tenant("acme", "starter").await.unwrap();
        assert_eq!(acme.tenant.plan, "starter");
        assert!(!acme.tenant.suspended);
        assert!(matches!(
            dir.create_tenant("acme", "starter").await,
            Err(TenancyError::Conflict(_))
        ));
        assert!(matches!(
            dir.create_tenant("other", "gold").await,
            Err(TenancyError::Invalid(_))
        ));
        assert!(matches!(
            dir.create_tenant("a/b", "starter").await,
            Err(TenancyError::Invalid(_))
        ));
        let key = acme.key.expose().to_owned();
        let ctx = dir.authenticate(key.as_bytes()).await.unwrap().unwrap();
        assert_eq!(ctx.tenant.id, acme.tenant.id);
        assert_eq!(ctx.plan.name, "starter");
        assert_eq!(ctx.key_id, acme.key_info.id);
        let mut wrong = key.clone().into_bytes();
        wrong[10] = if wrong[10] == b'0' { b'1' } else { b'0' };
        assert!(dir.authenticate(&wrong).await.unwrap().is_none(), "{label}");
        assert!(dir.authenticate(b"BQYHJGJHJ").await.unwrap().is_none());
        assert!(dir.authenticate(b"").await.unwrap().is_none());

        // The key is stored only as a keyed hash.
        let hash: String = match &db.pool {
            SqlPool::Sqlite(p) => sqlx::query_scalar("SELECT hash FROM api_keys")
                .fetch_one(p)
                .await
                .unwrap(),
            SqlPool::Postgres(p) => sqlx::query_scalar("SELECT hash FROM api_keys")
                .fetch_one(p)
                .await
                .unwrap(),
        };
        assert_eq!(hash.len(), 64);
        assert!(!hash.contains(&key[4..20]) && !key.contains(&hash[..16]));
        // Another master key (another hasher) does not accept it.
        let foreign = Directory::new(db.pool.clone(), KeyHasher::new(Zeroizing::new([8u8; 32])));
        assert!(
            foreign
                .authenticate(key.as_bytes())
                .await
                .unwrap()
                .is_none()
        );
        // ...unless the old key is kept as the previous one: then the key works and moves to
        // the new hash (and the old key alone no longer finds it).
        let rotated = Directory::new(db.pool.clone(), KeyHasher::new(Zeroizing::new([8u8; 32])))
            .with_previous_hasher(KeyHasher::new(Zeroizing::new([7u8; 32])));
        assert!(
            rotated
                .authenticate(key.as_bytes())
                .await
                .unwrap()
                .is_some(),
            "{label}"
        );
        let fresh_foreign =
            Directory::new(db.pool.clone(), KeyHasher::new(Zeroizing::new([8u8; 32])));
        assert!(
            fresh_foreign
                .authenticate(key.as_bytes())
                .await
                .unwrap()
                .is_some()
        );
        let back = directory(&db.pool, Duration::ZERO);
        assert!(back.authenticate(key.as_bytes()).await.unwrap().is_none());
        let dir = Directory::new(db.pool.clone(), KeyHasher::new(Zeroizing::new([7u8; 32])))
            .with_previous_hasher(KeyHasher::new(Zeroizing::new([8u8; 32])))
            .with_ttl(Duration::from_secs(3600));
        assert!(dir.authenticate(key.as_bytes()).await.unwrap().is_some());

        // More keys, listing, revocation (effective at once on this node).
        let (second, info) = dir.create_key(&acme.tenant.id, None).await.unwrap();
        let listed = dir.keys(&acme.tenant.id).await.unwrap();
        assert_eq!(listed.len(), 2);
        assert!(
            listed
                .iter()
                .all(|k| k.prefix.starts_with("zpk_") && k.prefix.len() == 12)
        );
        let json = serde_json::to_string(&listed).unwrap();
        assert!(!json.contains(second.expose()) && !json.contains(&key));
        dir.delete_key(&acme.tenant.id, &info.id).await.unwrap();
        assert!(
            dir.authenticate(second.expose().as_bytes())
                .await
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            dir.delete_key(&acme.tenant.id, &info.id).await,
            Err(TenancyError::NotFound(_))
        ));
        assert!(matches!(
            dir.create_key("no-such-tenant", None).await,
            Err(TenancyError::NotFound(_))
        ));

        // Expired keys are refused.
        let (old, _) = dir.create_key(&acme.tenant.id, Some(1)).await.unwrap();
        assert!(
            dir.authenticate(old.expose().as_bytes())
                .await
                .unwrap()
                .is_none()
        );

        // last_used_at is recorded in batches.
        dir.touch_keys(&[(acme.key_info.id.clone(), 1234)])
            .await
            .unwrap();
        dir.touch_keys(&[(acme.key_info.id.clone(), 1000)])
            .await
            .unwrap();
        let k = dir
            .keys(&acme.tenant.id)
            .await
            .unwrap()
            .into_iter()
            .find(|k| k.id == acme.key_info.id)
            .unwrap();
        assert_eq!(k.last_used_at, Some(1234), "{label}: never moves back");

        // Suspension and plan changes: at once here, within the TTL on another node.
        let other_node = directory(&db.pool, Duration::from_secs(3600));
        let fresh_node = directory(&db.pool, Duration::ZERO);
        assert!(
            !other_node
                .authenticate(key.as_bytes())
                .await
                .unwrap()
                .unwrap()
                .tenant
                .suspended
        );
        let patched = dir
            .update_tenant(
                &acme.tenant.id,
                &TenantPatch {
                    plan: Some("pro".into()),
                    suspended: Some(true),
                },
            )
            .await
            .unwrap();
        assert!(patched.suspended);
        let here = dir.authenticate(key.as_bytes()).await.unwrap().unwrap();
        assert!(here.tenant.suspended);
        assert_eq!(here.plan.name, "pro");
        assert!(
            fresh_node
                .authenticate(key.as_bytes())
                .await
                .unwrap()
                .unwrap()
                .tenant
                .suspended
        );
        assert!(
            !other_node
                .authenticate(key.as_bytes())
                .await
                .unwrap()
                .unwrap()
                .tenant
                .suspended,
            "{label}: a long TTL serves the cached tenant"
        );
        assert!(matches!(
            dir.update_tenant(
                &acme.tenant.id,
                &TenantPatch {
                    plan: Some("gold".into()),
                    suspended: None
                }
            )
            .await,
            Err(TenancyError::Invalid(_))
        ));
        assert!(matches!(
            dir.update_tenant("nope", &TenantPatch::default()).await,
            Err(TenancyError::NotFound(_))
        ));

        // Plan updates reach cached tenants on this node.
        let spec = PlanSpec {
            price_cents: 1,
            ..PlanSpec::default()
        };
        dir.update_plan("pro", &spec).await.unwrap();
        assert_eq!(
            dir.authenticate(key.as_bytes())
                .await
                .unwrap()
                .unwrap()
                .plan
                .spec
                .price_cents,
            1
        );

        // Ownership.
        dir.assign_instance("inst-1", "id-1", &acme.tenant.id)
            .await
            .unwrap();
        let owner = dir.owner("inst-1").await.unwrap().unwrap();
        assert_eq!(
            (owner.tenant_id.as_str(), owner.instance_id.as_str()),
            (acme.tenant.id.as_str(), "id-1")
        );
        assert_eq!(dir.owner("inst-2").await.unwrap(), None);
        assert_eq!(dir.instances_of(&acme.tenant.id).await.unwrap(), ["inst-1"]);
        assert_eq!(
            dir.owned_instances(&acme.tenant.id).await.unwrap(),
            [("inst-1".to_owned(), "id-1".to_owned())]
        );
        dir.set_instance_pacing(
            "inst-1",
            Some(&Pacing {
                per_minute: Some(3),
                ..Pacing::default()
            }),
        )
        .await
        .unwrap();
        assert_eq!(
            dir.instance_pacing("inst-1")
                .await
                .unwrap()
                .unwrap()
                .per_minute,
            Some(3)
        );
        assert!(matches!(
            dir.set_instance_pacing("inst-2", None).await,
            Err(TenancyError::NotFound(_))
        ));
        assert!(matches!(
            dir.set_instance_pacing(
                "inst-1",
                Some(&Pacing {
                    per_minute: Some(0),
                    ..Pacing::default()
                })
            )
            .await,
            Err(TenancyError::Invalid(_))
        ));
        assert!(matches!(
            dir.delete_tenant(&acme.tenant.id).await,
            Err(TenancyError::Conflict(_))
        ));
        // Re-assigning a name (the old instance was deleted, its release lost) replaces it.
        let beta = dir.create_tenant("beta", "starter").await.unwrap();
        dir.assign_instance("inst-1", "id-9", &beta.tenant.id)
            .await
            .unwrap();
        assert_eq!(
            dir.owner("inst-1").await.unwrap().unwrap().tenant_id,
            beta.tenant.id
        );
        assert_eq!(dir.instance_pacing("inst-1").await.unwrap(), None);
        dir.release_instance("inst-1").await.unwrap();
        assert_eq!(dir.owner("inst-1").await.unwrap(), None);

        dir.delete_tenant(&acme.tenant.id).await.unwrap();
        assert!(dir.authenticate(key.as_bytes()).await.unwrap().is_none());
        assert!(dir.tenant(&acme.tenant.id).await.unwrap().is_none());
        assert_eq!(
            dir.keys(&acme.tenant.id).await.unwrap().len(),
            0,
            "{label}: keys cascade"
        );
        assert!(matches!(
            dir.delete_tenant(&acme.tenant.id).await,
            Err(TenancyError::NotFound(_))
        ));
        assert_eq!(dir.tenants().await.unwrap().len(), 1);
        db.cleanup().await;
    }
}
