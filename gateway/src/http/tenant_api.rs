//! zapin's own tenancy routes: the operator's admin API (`/admin/plans`, `/admin/tenants`,
//! keys) and a tenant's documents (`/v1/usage`, `/v1/analytics/*`, `/v1/billing`).
//!
//! Admin routes take the global key only (anything else: 401). The documents take a tenant key
//! (for its own tenant) or the global key with `?tenant=<id>`. Errors use Evolution's envelope.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use zapin_compat_evolution::ErrorEnvelope;
use zapin_tenancy::TenancyError;
use zapin_tenancy::analytics::{InstanceCounts, Period};
use zapin_tenancy::directory::{Tenant, TenantPatch};
use zapin_tenancy::plan::{Plan, PlanSpec};
use zapin_tenancy::time::Month;

use super::tenancy::Caller;
use super::{ApiError, AppState};
use crate::tenancy::Tenancy;

impl From<TenancyError> for ApiError {
    fn from(err: TenancyError) -> Self {
        match err {
            TenancyError::Invalid(m) => ErrorEnvelope::bad_request([m]).into(),
            TenancyError::NotFound(m) => ErrorEnvelope::not_found([m]).into(),
            TenancyError::Conflict(m) => ErrorEnvelope::conflict([m]).into(),
            other => {
                tracing::error!("tenancy request failed: {other}");
                ErrorEnvelope::internal(["Internal Server Error"]).into()
            }
        }
    }
}

fn tenancy(state: &AppState) -> Result<Arc<Tenancy>, ApiError> {
    state
        .tenancy
        .clone()
        .ok_or_else(|| ErrorEnvelope::not_found(["Tenancy is not enabled"]).into())
}

fn operator(state: &AppState, caller: &Caller) -> Result<Arc<Tenancy>, ApiError> {
    if !matches!(caller, Caller::Operator) {
        return Err(ErrorEnvelope::unauthorized().into());
    }
    tenancy(state)
}

fn json_body<T: serde::de::DeserializeOwned>(body: &Bytes, shape: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ErrorEnvelope::bad_request([format!("body must be {shape}: {e}")]).into())
}

// ---- plans ----

pub async fn list_plans(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Vec<Plan>>, ApiError> {
    Ok(Json(operator(&state, &caller)?.directory.plans().await?))
}

pub async fn create_plan(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<(StatusCode, Json<Plan>), ApiError> {
    let t = operator(&state, &caller)?;
    let plan = Plan::from_json(&body).map_err(TenancyError::from)?;
    t.directory.create_plan(&plan).await?;
    Ok((StatusCode::CREATED, Json(plan)))
}

pub async fn update_plan(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<Plan>, ApiError> {
    let t = operator(&state, &caller)?;
    let (named, spec) = PlanSpec::from_json(&body).map_err(TenancyError::from)?;
    if named.is_some_and(|n| n != name) {
        return Err(ErrorEnvelope::bad_request(["name cannot be changed"]).into());
    }
    Ok(Json(t.directory.update_plan(&name, &spec).await?))
}

// ---- tenants ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTenantBody {
    name: String,
    plan: String,
}

pub async fn list_tenants(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Vec<Tenant>>, ApiError> {
    Ok(Json(operator(&state, &caller)?.directory.tenants().await?))
}

pub async fn create_tenant(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let t = operator(&state, &caller)?;
    let body: NewTenantBody = json_body(&body, r#"{"name": string, "plan": string}"#)?;
    let created = t.directory.create_tenant(&body.name, &body.plan).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": created.tenant.id,
            "name": created.tenant.name,
            "plan": created.tenant.plan,
            "suspended": created.tenant.suspended,
            "apiKey": created.key.expose(),
            "keyId": created.key_info.id,
        })),
    ))
}

async fn tenant_or_404(t: &Tenancy, id: &str) -> Result<Tenant, ApiError> {
    t.directory
        .tenant(id)
        .await?
        .ok_or_else(|| ErrorEnvelope::not_found([format!("no tenant {id:?}")]).into())
}

pub async fn get_tenant(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let t = operator(&state, &caller)?;
    let tenant = tenant_or_404(&t, &id).await?;
    let plan = t
        .directory
        .plan(&tenant.plan)
        .await?
        .ok_or(TenancyError::Corrupt("tenant plan reference"))?;
    let usage = t.quotas.usage(&tenant.id, &plan.spec).await?;
    let keys = t.directory.keys(&tenant.id).await?;
    let instances = t.directory.instances_of(&tenant.id).await?;
    let mut doc = serde_json::to_value(&tenant).unwrap_or_default();
    if let Some(obj) = doc.as_object_mut() {
        obj.insert(
            "usage".into(),
            serde_json::to_value(usage).unwrap_or_default(),
        );
        obj.insert(
            "keys".into(),
            serde_json::to_value(keys).unwrap_or_default(),
        );
        obj.insert("instances".into(), json!(instances));
    }
    Ok(Json(doc))
}

pub async fn patch_tenant(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Tenant>, ApiError> {
    let t = operator(&state, &caller)?;
    let patch: TenantPatch = json_body(&body, r#"{"plan"?: string, "suspended"?: bool}"#)?;
    Ok(Json(t.directory.update_tenant(&id, &patch).await?))
}

pub async fn delete_tenant(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let t = operator(&state, &caller)?;
    t.directory.delete_tenant(&id).await?;
    Ok(Json(json!({"deleted": id})))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewKeyBody {
    /// Unix milliseconds.
    expires_at: Option<i64>,
}

pub async fn create_key(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let t = operator(&state, &caller)?;
    let body: NewKeyBody = if body.iter().all(u8::is_ascii_whitespace) {
        NewKeyBody::default()
    } else {
        json_body(&body, r#"{"expiresAt"?: number}"#)?
    };
    tenant_or_404(&t, &id).await?;
    let (key, info) = t.directory.create_key(&id, body.expires_at).await?;
    let mut doc = serde_json::to_value(&info).unwrap_or_default();
    if let Some(obj) = doc.as_object_mut() {
        obj.insert("apiKey".into(), json!(key.expose()));
    }
    Ok((StatusCode::CREATED, Json(doc)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUserBody {
    email: String,
    password: String,
}

/// `POST /admin/tenants/{id}/users` `{"email", "password"}`: a dashboard user of the tenant
/// (201 with the user, never the password; 409 for a taken e-mail; 400 for a short password).
pub async fn create_user(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<zapin_tenancy::users::User>), ApiError> {
    let t = operator(&state, &caller)?;
    let body: NewUserBody = json_body(&body, r#"{"email": string, "password": string}"#)?;
    tenant_or_404(&t, &id).await?;
    let user = crate::dashboard::auth::users(&state)
        .add(&id, &body.email, &body.password)
        .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

pub async fn delete_key(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((id, key_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let t = operator(&state, &caller)?;
    t.directory.delete_key(&id, &key_id).await?;
    Ok(Json(json!({"deleted": key_id})))
}

// ---- a tenant's documents ----

/// The tenant a document is about: the caller's, or `?tenant=` for the operator.
async fn subject(
    state: &AppState,
    caller: &Caller,
    query: &HashMap<String, String>,
) -> Result<(Arc<Tenancy>, Tenant, Plan), ApiError> {
    let t = tenancy(state)?;
    let id = match caller {
        Caller::Tenant(ctx) => ctx.tenant.id.clone(),
        Caller::Operator => query.get("tenant").cloned().ok_or_else(|| {
            ApiError::from(ErrorEnvelope::bad_request([
                "?tenant= is required with the global key",
            ]))
        })?,
        Caller::Other => return Err(ErrorEnvelope::unauthorized().into()),
    };
    let (tenant, plan) =
        t.directory.tenant_with_plan(&id).await?.ok_or_else(|| {
            ApiError::from(ErrorEnvelope::not_found([format!("no tenant {id:?}")]))
        })?;
    Ok((t, tenant, (*plan).clone()))
}

pub async fn usage(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let (t, tenant, plan) = subject(&state, &caller, &query).await?;
    let lines = t.analytics.usage(&tenant.id, &plan).await?;
    Ok(Json(
        json!({"tenantId": tenant.id, "plan": plan.name, "usage": lines}),
    ))
}

pub async fn billing(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let (t, tenant, plan) = subject(&state, &caller, &query).await?;
    let month = match query.get("month") {
        Some(m) => Month::parse(m)
            .ok_or_else(|| ApiError::from(ErrorEnvelope::bad_request(["month must be YYYY-MM"])))?,
        None => Month::containing(t.quotas.clock().now_ms().div_euclid(1000)),
    };
    let bill = t.analytics.bill(&tenant.id, &plan, month).await?;
    Ok(Json(serde_json::to_value(bill).unwrap_or_default()))
}

pub async fn overview(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let (t, tenant, plan) = subject(&state, &caller, &query).await?;
    let names = t.directory.instances_of(&tenant.id).await?;
    let mut counts = InstanceCounts::default();
    for name in &names {
        if let Some(instance) = state.db.instance_by_name(name).await? {
            counts.total += 1;
            if instance.connection_status == "open" {
                counts.connected += 1;
            }
        }
    }
    let doc = t
        .analytics
        .overview(&tenant.id, &plan, counts, &names)
        .await?;
    Ok(Json(serde_json::to_value(doc).unwrap_or_default()))
}

/// The route of [`instance_report`] (kept here: it is not an Evolution instance route).
pub const INSTANCE_REPORT: &str = "/v1/analytics/instances/{instance}";

pub async fn instance_report(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(instance): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let (t, tenant, _) = subject(&state, &caller, &query).await?;
    let period = match query.get("period") {
        Some(p) => Period::parse(p).ok_or_else(|| {
            ApiError::from(ErrorEnvelope::bad_request([
                "period must be 24h, 7d or 30d",
            ]))
        })?,
        None => Period::Day,
    };
    // Another tenant's instance answers like a missing one.
    let owned = t
        .directory
        .owner_uncached(&instance)
        .await?
        .is_some_and(|o| o.tenant_id == tenant.id);
    if !owned {
        return Err(ErrorEnvelope::instance_not_found(&instance).into());
    }
    let doc = t.analytics.instance(&instance, period).await?;
    Ok(Json(serde_json::to_value(doc).unwrap_or_default()))
}
