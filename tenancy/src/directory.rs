//! Plans, tenants, their API keys and the instances they own: the tables, and the cache that
//! authenticates a request without a database round trip.
//!
//! Authentication ([`Directory::authenticate`]) hashes the presented key and looks the hash up,
//! first in memory, then in `api_keys`; the tenant and its plan come along. Entries live for a
//! short time-to-live (`ttl`, default 5 s) so that a change made on another node (a suspension,
//! a revoked key, a new plan) reaches this one within that time; a change made through this
//! handle applies here at once. Unknown keys are remembered too (bounded), so a client hammering
//! with a wrong key costs an HMAC, not a query.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::apikey::{ApiKey, KeyHash, KeyHasher, KeyInfo, looks_like_tenant_key};
use crate::error::TenancyError;
use crate::plan::{Pacing, Plan, PlanSpec, valid_name};
use crate::sql::{SqlPool, new_uuid, now_ms, with_pool};

/// A tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub plan: String,
    pub suspended: bool,
    /// Unix milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
}

/// The body of `PATCH /admin/tenants/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantPatch {
    #[serde(default)]
    pub plan: Option<String>,
    #[serde(default)]
    pub suspended: Option<bool>,
}

/// Who a tenant key belongs to, as a request sees it.
#[derive(Debug, Clone)]
pub struct TenantContext {
    pub tenant: Tenant,
    pub plan: Arc<Plan>,
    pub key_id: String,
}

/// Which tenant owns an instance (instances without an owner are the operator's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ownership {
    pub tenant_id: String,
    /// The id of the instance that was assigned: a later instance of the same name has another.
    pub instance_id: String,
}

/// A freshly created tenant with its first key (shown once).
#[derive(Debug)]
pub struct NewTenant {
    pub tenant: Tenant,
    pub key: ApiKey,
    pub key_info: KeyInfo,
}

/// Unknown keys remembered at most (then the memory is cleared).
const NEGATIVE_CACHE_MAX: usize = 10_000;

#[derive(Debug, Clone)]
struct CachedKey {
    /// `None`: no such key.
    info: Option<KeyInfo>,
    at: Instant,
}

#[derive(Debug, Clone)]
struct CachedTenant {
    tenant: Tenant,
    plan: Arc<Plan>,
    at: Instant,
}

#[derive(Debug, Default)]
struct Cache {
    keys: HashMap<KeyHash, CachedKey>,
    tenants: HashMap<String, CachedTenant>,
    owners: HashMap<String, (Option<Ownership>, Instant)>,
    unknown_keys: usize,
}

/// The tenancy tables, with an authentication cache. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Directory {
    pool: SqlPool,
    hasher: KeyHasher,
    /// Hashers of earlier master keys: a key found under one is re-hashed under `hasher`.
    previous: Vec<KeyHasher>,
    ttl: Duration,
    cache: Arc<RwLock<Cache>>,
}

type TenantRow = (String, String, String, bool, i64, i64);
type KeyRow = (String, String, String, i64, Option<i64>, Option<i64>);
type KeyRowWithHash = (
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    String,
);

const TENANT_COLUMNS: &str = "id, name, plan, suspended, created_at, updated_at";
const KEY_COLUMNS: &str = "id, tenant_id, prefix, created_at, last_used_at, expires_at";

fn tenant(row: TenantRow) -> Tenant {
    Tenant {
        id: row.0,
        name: row.1,
        plan: row.2,
        suspended: row.3,
        created_at: row.4,
        updated_at: row.5,
    }
}

fn key_info(row: KeyRow) -> KeyInfo {
    KeyInfo {
        id: row.0,
        tenant_id: row.1,
        prefix: row.2,
        created_at: row.3,
        last_used_at: row.4,
        expires_at: row.5,
    }
}

fn plan_from_row(name: String, document: &str) -> Result<Plan, TenancyError> {
    let spec: PlanSpec =
        serde_json::from_str(document).map_err(|_| TenancyError::Corrupt("plan document"))?;
    Ok(Plan { name, spec })
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|e| e.is_unique_violation())
}

fn is_foreign_key_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|e| e.is_foreign_key_violation())
}

impl Directory {
    /// `hasher` must be keyed with a secret derived from the master key (the same on every
    /// node, or keys made on one node would not work on another).
    pub fn new(pool: SqlPool, hasher: KeyHasher) -> Self {
        Self {
            pool,
            hasher,
            previous: Vec::new(),
            ttl: Duration::from_secs(5),
            cache: Arc::new(RwLock::new(Cache::default())),
        }
    }

    /// Also accepts keys hashed under an earlier master key (after a rotation), moving each to
    /// the current hash the first time it is used.
    pub fn with_previous_hasher(mut self, hasher: KeyHasher) -> Self {
        self.previous.push(hasher);
        self
    }

    /// How long cached keys, tenants and owners are trusted (0: always ask the database).
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    pub fn pool(&self) -> &SqlPool {
        &self.pool
    }

    fn cache_write(&self) -> std::sync::RwLockWriteGuard<'_, Cache> {
        self.cache.write().unwrap_or_else(|p| p.into_inner())
    }

    fn cache_read(&self) -> std::sync::RwLockReadGuard<'_, Cache> {
        self.cache.read().unwrap_or_else(|p| p.into_inner())
    }

    fn fresh(&self, at: Instant) -> bool {
        at.elapsed() < self.ttl
    }

    // ---- plans ----

    /// Creates a plan (`POST /admin/plans`); a taken name is a conflict.
    pub async fn create_plan(&self, plan: &Plan) -> Result<(), TenancyError> {
        plan.spec.validate()?;
        let document = serde_json::to_string(&plan.spec)
            .map_err(|_| TenancyError::Corrupt("plan document"))?;
        let now = now_ms();
        let result = with_pool!(&self.pool, |c| {
            sqlx::query(
                "INSERT INTO plans (name, document, created_at, updated_at) VALUES ($1, $2, $3, $3)",
            )
            .bind(&plan.name)
            .bind(&document)
            .bind(now)
            .execute(c)
            .await
            .map(|_| ())
        });
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(TenancyError::Conflict(format!(
                "plan {:?} already exists",
                plan.name
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Replaces an existing plan's spec (`PUT /admin/plans/{name}`). Tenants on the plan get
    /// it at once on this node, within the cache TTL on others.
    pub async fn update_plan(&self, name: &str, spec: &PlanSpec) -> Result<Plan, TenancyError> {
        spec.validate()?;
        let document =
            serde_json::to_string(spec).map_err(|_| TenancyError::Corrupt("plan document"))?;
        let done = with_pool!(&self.pool, |c| {
            sqlx::query("UPDATE plans SET document = $2, updated_at = $3 WHERE name = $1")
                .bind(name)
                .bind(&document)
                .bind(now_ms())
                .execute(c)
                .await?
                .rows_affected()
        });
        if done == 0 {
            return Err(TenancyError::NotFound(format!("no plan {name:?}")));
        }
        self.cache_write().tenants.clear();
        Ok(Plan {
            name: name.to_owned(),
            spec: spec.clone(),
        })
    }

    pub async fn plans(&self) -> Result<Vec<Plan>, TenancyError> {
        let rows: Vec<(String, String)> = with_pool!(&self.pool, |c| {
            sqlx::query_as("SELECT name, document FROM plans ORDER BY name")
                .fetch_all(c)
                .await?
        });
        rows.into_iter()
            .map(|(name, doc)| plan_from_row(name, &doc))
            .collect()
    }

    pub async fn plan(&self, name: &str) -> Result<Option<Plan>, TenancyError> {
        let row: Option<(String, String)> = with_pool!(&self.pool, |c| {
            sqlx::query_as("SELECT name, document FROM plans WHERE name = $1")
                .bind(name)
                .fetch_optional(c)
                .await?
        });
        row.map(|(name, doc)| plan_from_row(name, &doc)).transpose()
    }

    // ---- tenants ----

    /// Creates a tenant on an existing plan, with its first key (`POST /admin/tenants`).
    pub async fn create_tenant(&self, name: &str, plan: &str) -> Result<NewTenant, TenancyError> {
        if !valid_name(name) {
            return Err(TenancyError::Invalid(
                "name must be 1 to 64 letters, digits, '_', '-' or '.'".to_owned(),
            ));
        }
        if self.plan(plan).await?.is_none() {
            return Err(TenancyError::Invalid(format!("no plan {plan:?}")));
        }
        let id = new_uuid()?;
        let now = now_ms();
        let result = with_pool!(&self.pool, |c| {
            sqlx::query(
                "INSERT INTO tenants (id, name, plan, suspended, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $5)",
            )
            .bind(&id)
            .bind(name)
            .bind(plan)
            .bind(false)
            .bind(now)
            .execute(c)
            .await
            .map(|_| ())
        });
        match result {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(TenancyError::Conflict(format!(
                    "tenant {name:?} already exists"
                )));
            }
            Err(e) if is_foreign_key_violation(&e) => {
                return Err(TenancyError::Invalid(format!("no plan {plan:?}")));
            }
            Err(e) => return Err(e.into()),
        }
        let (key, key_info) = self.create_key(&id, None).await?;
        let tenant = Tenant {
            id,
            name: name.to_owned(),
            plan: plan.to_owned(),
            suspended: false,
            created_at: now,
            updated_at: now,
        };
        Ok(NewTenant {
            tenant,
            key,
            key_info,
        })
    }

    pub async fn tenants(&self) -> Result<Vec<Tenant>, TenancyError> {
        let rows: Vec<TenantRow> = with_pool!(&self.pool, |c| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {TENANT_COLUMNS} FROM tenants ORDER BY name"
            )))
            .fetch_all(c)
            .await?
        });
        Ok(rows.into_iter().map(tenant).collect())
    }

    pub async fn tenant(&self, id: &str) -> Result<Option<Tenant>, TenancyError> {
        let row: Option<TenantRow> = with_pool!(&self.pool, |c| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {TENANT_COLUMNS} FROM tenants WHERE id = $1"
            )))
            .bind(id)
            .fetch_optional(c)
            .await?
        });
        Ok(row.map(tenant))
    }

    /// Changes a tenant's plan and/or suspension (`PATCH /admin/tenants/{id}`).
    pub async fn update_tenant(
        &self,
        id: &str,
        patch: &TenantPatch,
    ) -> Result<Tenant, TenancyError> {
        if let Some(plan) = &patch.plan
            && self.plan(plan).await?.is_none()
        {
            return Err(TenancyError::Invalid(format!("no plan {plan:?}")));
        }
        let Some(mut current) = self.tenant(id).await? else {
            return Err(TenancyError::NotFound(format!("no tenant {id:?}")));
        };
        if let Some(plan) = &patch.plan {
            current.plan = plan.clone();
        }
        if let Some(suspended) = patch.suspended {
            current.suspended = suspended;
        }
        current.updated_at = now_ms();
        with_pool!(&self.pool, |c| {
            sqlx::query(
                "UPDATE tenants SET plan = $2, suspended = $3, updated_at = $4 WHERE id = $1",
            )
            .bind(id)
            .bind(&current.plan)
            .bind(current.suspended)
            .bind(current.updated_at)
            .execute(c)
            .await?;
        });
        self.cache_write().tenants.remove(id);
        Ok(current)
    }

    /// Deletes a tenant and its keys (`DELETE /admin/tenants/{id}`). A tenant that still owns
    /// instances is refused: their sessions must be deleted first, not orphaned.
    pub async fn delete_tenant(&self, id: &str) -> Result<(), TenancyError> {
        let held = self.instances_of(id).await?;
        if !held.is_empty() {
            return Err(TenancyError::Conflict(format!(
                "tenant {id:?} still owns {} instance(s); delete them first",
                held.len()
            )));
        }
        let done = with_pool!(&self.pool, |c| {
            sqlx::query("DELETE FROM tenants WHERE id = $1")
                .bind(id)
                .execute(c)
                .await?
                .rows_affected()
        });
        if done == 0 {
            return Err(TenancyError::NotFound(format!("no tenant {id:?}")));
        }
        let mut cache = self.cache_write();
        cache.tenants.remove(id);
        cache
            .keys
            .retain(|_, k| k.info.as_ref().is_none_or(|i| i.tenant_id != id));
        Ok(())
    }

    // ---- keys ----

    /// A new key for a tenant (`POST /admin/tenants/{id}/keys`), optionally expiring at
    /// `expires_at` (Unix ms). The returned [`ApiKey`] is the only copy.
    pub async fn create_key(
        &self,
        tenant_id: &str,
        expires_at: Option<i64>,
    ) -> Result<(ApiKey, KeyInfo), TenancyError> {
        let key = ApiKey::generate()?;
        let info = KeyInfo {
            id: new_uuid()?,
            tenant_id: tenant_id.to_owned(),
            prefix: key.visible_prefix(),
            created_at: now_ms(),
            last_used_at: None,
            expires_at,
        };
        let hash = self.hasher.hash(key.expose().as_bytes());
        let result = with_pool!(&self.pool, |c| {
            sqlx::query(
                "INSERT INTO api_keys (id, tenant_id, prefix, hash, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&info.id)
            .bind(tenant_id)
            .bind(&info.prefix)
            .bind(hash.to_hex())
            .bind(info.created_at)
            .bind(expires_at)
            .execute(c)
            .await
            .map(|_| ())
        });
        match result {
            Ok(_) => {}
            Err(e) if is_foreign_key_violation(&e) => {
                return Err(TenancyError::NotFound(format!("no tenant {tenant_id:?}")));
            }
            Err(e) => return Err(e.into()),
        }
        // A negative entry for this hash (someone tried it before it existed) must go.
        self.cache_write().keys.remove(&hash);
        Ok((key, info))
    }

    pub async fn keys(&self, tenant_id: &str) -> Result<Vec<KeyInfo>, TenancyError> {
        let rows: Vec<KeyRow> = with_pool!(&self.pool, |c| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, id"
            )))
            .bind(tenant_id)
            .fetch_all(c)
            .await?
        });
        Ok(rows.into_iter().map(key_info).collect())
    }

    /// Revokes a key (`DELETE /admin/tenants/{id}/keys/{keyId}`).
    pub async fn delete_key(&self, tenant_id: &str, key_id: &str) -> Result<(), TenancyError> {
        let done = with_pool!(&self.pool, |c| {
            sqlx::query("DELETE FROM api_keys WHERE id = $1 AND tenant_id = $2")
                .bind(key_id)
                .bind(tenant_id)
                .execute(c)
                .await?
                .rows_affected()
        });
        if done == 0 {
            return Err(TenancyError::NotFound(format!("no key {key_id:?}")));
        }
        self.cache_write()
            .keys
            .retain(|_, k| k.info.as_ref().is_none_or(|i| i.id != key_id));
        Ok(())
    }

    /// Records when keys were last used (batched by the usage writer, not per request).
    pub async fn touch_keys(&self, used: &[(String, i64)]) -> Result<(), TenancyError> {
        for (id, at) in used {
            with_pool!(&self.pool, |c| {
                sqlx::query(
                    "UPDATE api_keys SET last_used_at = $2 \
                     WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)",
                )
                .bind(id)
                .bind(*at)
                .execute(c)
                .await?;
            });
        }
        Ok(())
    }

    /// The tenant a presented `apikey` belongs to: `None` for anything that is not a live
    /// tenant key (unknown, revoked, expired, or not shaped like one). Suspension is reported
    /// in the context, for the caller to answer 403.
    pub async fn authenticate(
        &self,
        presented: &[u8],
    ) -> Result<Option<TenantContext>, TenancyError> {
        if !looks_like_tenant_key(presented) {
            return Ok(None);
        }
        let hash = self.hasher.hash(presented);
        let cached = {
            let cache = self.cache_read();
            cache
                .keys
                .get(&hash)
                .filter(|k| self.fresh(k.at))
                .map(|k| k.info.clone())
        };
        let info = match cached {
            Some(info) => info,
            None => {
                let row: Option<KeyRowWithHash> = with_pool!(&self.pool, |c| {
                    sqlx::query_as(sqlx::AssertSqlSafe(format!(
                        "SELECT {KEY_COLUMNS}, hash FROM api_keys WHERE hash = $1"
                    )))
                    .bind(hash.to_hex())
                    .fetch_optional(c)
                    .await?
                });
                // The lookup matched on the hash; compare once more in constant time so that
                // equality never rests on the database's string comparison alone.
                let mut info = row
                    .filter(|r| KeyHash::from_hex(&r.6).is_some_and(|h| h.matches(&hash)))
                    .map(|r| key_info((r.0, r.1, r.2, r.3, r.4, r.5)));
                if info.is_none() {
                    info = self.migrate_hash(presented, &hash).await?;
                }
                let mut cache = self.cache_write();
                if info.is_none() {
                    cache.unknown_keys += 1;
                    if cache.unknown_keys > NEGATIVE_CACHE_MAX {
                        cache.keys.retain(|_, k| k.info.is_some());
                        cache.unknown_keys = 0;
                    }
                }
                cache.keys.insert(
                    hash,
                    CachedKey {
                        info: info.clone(),
                        at: Instant::now(),
                    },
                );
                info
            }
        };
        let Some(info) = info else {
            return Ok(None);
        };
        if info.expired(now_ms()) {
            return Ok(None);
        }
        let Some((tenant, plan)) = self.tenant_with_plan(&info.tenant_id).await? else {
            return Ok(None);
        };
        Ok(Some(TenantContext {
            tenant,
            plan,
            key_id: info.id,
        }))
    }

    /// Finds a key hashed under an earlier master key and re-hashes it under the current one.
    async fn migrate_hash(
        &self,
        presented: &[u8],
        current: &KeyHash,
    ) -> Result<Option<KeyInfo>, TenancyError> {
        for old in &self.previous {
            let old_hash = old.hash(presented);
            let row: Option<KeyRow> = with_pool!(&self.pool, |c| {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {KEY_COLUMNS} FROM api_keys WHERE hash = $1"
                )))
                .bind(old_hash.to_hex())
                .fetch_optional(c)
                .await?
            });
            if let Some(row) = row {
                let info = key_info(row);
                with_pool!(&self.pool, |c| {
                    sqlx::query("UPDATE api_keys SET hash = $2 WHERE id = $1")
                        .bind(&info.id)
                        .bind(current.to_hex())
                        .execute(c)
                        .await?;
                });
                return Ok(Some(info));
            }
        }
        Ok(None)
    }

    /// A tenant and its plan, through the cache.
    pub async fn tenant_with_plan(
        &self,
        id: &str,
    ) -> Result<Option<(Tenant, Arc<Plan>)>, TenancyError> {
        {
            let cache = self.cache_read();
            if let Some(t) = cache.tenants.get(id).filter(|t| self.fresh(t.at)) {
                return Ok(Some((t.tenant.clone(), t.plan.clone())));
            }
        }
        let Some(tenant) = self.tenant(id).await? else {
            return Ok(None);
        };
        let Some(plan) = self.plan(&tenant.plan).await? else {
            return Err(TenancyError::Corrupt("tenant plan reference"));
        };
        let plan = Arc::new(plan);
        self.cache_write().tenants.insert(
            id.to_owned(),
            CachedTenant {
                tenant: tenant.clone(),
                plan: plan.clone(),
                at: Instant::now(),
            },
        );
        Ok(Some((tenant, plan)))
    }

    // ---- instances ----

    /// Records that `tenant_id` owns the instance `name` (`id`), replacing any earlier owner
    /// of that name (a deleted instance whose release was lost).
    pub async fn assign_instance(
        &self,
        name: &str,
        instance_id: &str,
        tenant_id: &str,
    ) -> Result<(), TenancyError> {
        with_pool!(&self.pool, |c| {
            sqlx::query(
                "INSERT INTO tenant_instances (instance_name, instance_id, tenant_id, created_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (instance_name) DO UPDATE SET \
                 instance_id = $2, tenant_id = $3, pacing = NULL, created_at = $4",
            )
            .bind(name)
            .bind(instance_id)
            .bind(tenant_id)
            .bind(now_ms())
            .execute(c)
            .await?;
        });
        self.cache_write().owners.remove(name);
        Ok(())
    }

    /// Forgets the owner of `name` (the instance was deleted).
    pub async fn release_instance(&self, name: &str) -> Result<(), TenancyError> {
        with_pool!(&self.pool, |c| {
            sqlx::query("DELETE FROM tenant_instances WHERE instance_name = $1")
                .bind(name)
                .execute(c)
                .await?;
        });
        self.cache_write().owners.remove(name);
        Ok(())
    }

    /// The owner of the instance `name`, through the cache.
    pub async fn owner(&self, name: &str) -> Result<Option<Ownership>, TenancyError> {
        {
            let cache = self.cache_read();
            if let Some((owner, at)) = cache.owners.get(name)
                && self.fresh(*at)
            {
                return Ok(owner.clone());
            }
        }
        let owner = self.owner_uncached(name).await?;
        self.cache_write()
            .owners
            .insert(name.to_owned(), (owner.clone(), Instant::now()));
        Ok(owner)
    }

    /// The owner of `name` from the database.
    pub async fn owner_uncached(&self, name: &str) -> Result<Option<Ownership>, TenancyError> {
        let row: Option<(String, String)> = with_pool!(&self.pool, |c| {
            sqlx::query_as(
                "SELECT tenant_id, instance_id FROM tenant_instances WHERE instance_name = $1",
            )
            .bind(name)
            .fetch_optional(c)
            .await?
        });
        Ok(row.map(|(tenant_id, instance_id)| Ownership {
            tenant_id,
            instance_id,
        }))
    }

    /// The names of the instances a tenant owns, sorted.
    pub async fn instances_of(&self, tenant_id: &str) -> Result<Vec<String>, TenancyError> {
        Ok(with_pool!(&self.pool, |c| {
            sqlx::query_scalar(
                "SELECT instance_name FROM tenant_instances WHERE tenant_id = $1 \
                 ORDER BY instance_name",
            )
            .bind(tenant_id)
            .fetch_all(c)
            .await?
        }))
    }

    /// The instances a tenant owns as (name, instance id) pairs, sorted by name: one query for
    /// a whole listing (the dashboard), where [`Directory::owner`] per instance would be many.
    pub async fn owned_instances(
        &self,
        tenant_id: &str,
    ) -> Result<Vec<(String, String)>, TenancyError> {
        Ok(with_pool!(&self.pool, |c| {
            sqlx::query_as(
                "SELECT instance_name, instance_id FROM tenant_instances WHERE tenant_id = $1 \
                 ORDER BY instance_name",
            )
            .bind(tenant_id)
            .fetch_all(c)
            .await?
        }))
    }

    /// Sets (or with `None` clears) an instance's pacing override.
    pub async fn set_instance_pacing(
        &self,
        name: &str,
        pacing: Option<&Pacing>,
    ) -> Result<(), TenancyError> {
        if let Some(p) = pacing {
            p.validate()?;
        }
        let doc = pacing
            .map(serde_json::to_string)
            .transpose()
            .map_err(|_| TenancyError::Corrupt("pacing document"))?;
        let done = with_pool!(&self.pool, |c| {
            sqlx::query("UPDATE tenant_instances SET pacing = $2 WHERE instance_name = $1")
                .bind(name)
                .bind(doc)
                .execute(c)
                .await?
                .rows_affected()
        });
        if done == 0 {
            return Err(TenancyError::NotFound(format!(
                "instance {name:?} has no tenant"
            )));
        }
        Ok(())
    }

    /// An instance's pacing override, if any.
    pub async fn instance_pacing(&self, name: &str) -> Result<Option<Pacing>, TenancyError> {
        let doc: Option<Option<String>> = with_pool!(&self.pool, |c| {
            sqlx::query_scalar("SELECT pacing FROM tenant_instances WHERE instance_name = $1")
                .bind(name)
                .fetch_optional(c)
                .await?
        });
        doc.flatten()
            .map(|d| serde_json::from_str(&d).map_err(|_| TenancyError::Corrupt("pacing document")))
            .transpose()
    }
}
