//! The tenancy layer every request passes through (see `zapin-tenancy`).
//!
//! Two middlewares:
//!
//! * [`front`] wraps the whole router: it names the request (`X-Zapin-Request-Id`), works out
//!   who is calling ([`Caller`]: the operator's global key, a tenant key, or anything else such
//!   as an instance token), answers 403 for a suspended tenant, and after the handler adds
//!   `X-Zapin-Tenant-Id` and logs the request (off the request path).
//! * [`charge`] sits on each route, after the instance guard (so an unauthenticated request is
//!   never charged): it looks the route up in the cost table, charges the tenant (the caller's,
//!   or for an instance token the instance owner's; the operator is not charged), answers 429
//!   when the quota refuses, refunds a request the handler refused with a 4xx, gives back a
//!   deleted instance's slot, and adds the `X-RateLimit-*` headers.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use zapin_compat_evolution::ErrorEnvelope;
use zapin_tenancy::apikey::looks_like_tenant_key;
use zapin_tenancy::directory::TenantContext;
use zapin_tenancy::plan::QuotaType;
use zapin_tenancy::quota::{Decision, RateLimit};
use zapin_tenancy::routes;
use zapin_tenancy::usage::UsageRecord;

use super::guard::{Authorized, api_key, is_global};
use super::{ApiError, AppState};
use crate::db::{new_uuid, now_ms};

/// Who is calling, as [`front`] found out.
#[derive(Debug, Clone)]
pub enum Caller {
    /// The global key (`AUTHENTICATION_API_KEY`).
    Operator,
    /// A tenant key: acts like the global key inside its tenant.
    Tenant(Arc<TenantContext>),
    /// No key, an unknown key or an instance token (the guard decides).
    Other,
}

impl Caller {
    /// The calling tenant, if a tenant key was presented.
    pub fn tenant(&self) -> Option<&TenantContext> {
        match self {
            Caller::Tenant(ctx) => Some(ctx),
            _ => None,
        }
    }

    /// Whether this caller may do what the global key does (within its tenant for a tenant).
    pub fn acts_global(&self) -> bool {
        matches!(self, Caller::Operator | Caller::Tenant(_))
    }
}

/// What [`charge`] did, for [`front`]'s log line.
#[derive(Debug, Clone)]
struct ChargeNote {
    tenant_id: String,
    instance: Option<String>,
    quota: Option<QuotaType>,
    weight: u32,
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-zapin-request-id");
const TENANT_ID: HeaderName = HeaderName::from_static("x-zapin-tenant-id");

async fn resolve(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let Some(key) = api_key(headers) else {
        return Ok(Caller::Other);
    };
    if is_global(state, key) {
        return Ok(Caller::Operator);
    }
    let Some(tenancy) = &state.tenancy else {
        return Ok(Caller::Other);
    };
    if !looks_like_tenant_key(key) {
        return Ok(Caller::Other);
    }
    match tenancy.directory.authenticate(key).await {
        Ok(Some(ctx)) => Ok(Caller::Tenant(Arc::new(ctx))),
        Ok(None) => Ok(Caller::Other),
        Err(err) => {
            tracing::error!("authenticating a tenant key failed: {err}");
            Err(ErrorEnvelope::internal(["Internal Server Error"]).into())
        }
    }
}

fn suspended() -> Response {
    ApiError(ErrorEnvelope::forbidden(["Tenant suspended"])).into_response()
}

/// The outermost layer (see the module doc).
pub async fn front(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let at = now_ms();
    let request_id = new_uuid();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let caller = match resolve(&state, req.headers()).await {
        Ok(caller) => caller,
        Err(err) => return with_ids(err.into_response(), &request_id, None),
    };
    let tenant_id = caller.tenant().map(|t| t.tenant.id.clone());
    let key_id = caller.tenant().map(|t| t.key_id.clone());
    let mut response = if caller.tenant().is_some_and(|t| t.tenant.suspended) {
        suspended()
    } else {
        req.extensions_mut().insert(caller);
        next.run(req).await
    };
    let note = response.extensions_mut().remove::<ChargeNote>();
    let tenant_id = tenant_id.or_else(|| note.as_ref().map(|n| n.tenant_id.clone()));
    if let Some(tenancy) = &state.tenancy
        && let Some(route) = route
    {
        tenancy.usage.record(UsageRecord {
            at,
            tenant_id: tenant_id.clone(),
            instance: note.as_ref().and_then(|n| n.instance.clone()),
            method,
            route,
            quota: note.as_ref().and_then(|n| n.quota),
            weight: note.as_ref().map_or(0, |n| n.weight),
            status: response.status().as_u16(),
            latency_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            key_id,
        });
    }
    with_ids(response, &request_id, tenant_id.as_deref())
}

fn with_ids(mut response: Response, request_id: &str, tenant_id: Option<&str>) -> Response {
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert(REQUEST_ID, v);
    }
    if let Some(t) = tenant_id.and_then(|t| HeaderValue::from_str(t).ok()) {
        headers.insert(TENANT_ID, t);
    }
    response
}

fn rate_headers(response: &mut Response, rate: &RateLimit) {
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-ratelimit-limit", rate.limit.to_string()),
        ("x-ratelimit-remaining", rate.remaining.to_string()),
        ("x-ratelimit-reset", rate.reset.to_string()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    }
}

fn internal(err: impl std::fmt::Display) -> Response {
    tracing::error!("tenancy: {err}");
    ApiError(ErrorEnvelope::internal(["Internal Server Error"])).into_response()
}

/// The tenant a request is charged to: the caller's, or for an instance token (or no key on
/// an unguarded callback) the owner of the instance it reached.
async fn payer(
    state: &AppState,
    caller: &Caller,
    instance: Option<&crate::db::Instance>,
) -> Result<Option<Arc<TenantContext>>, Response> {
    let Some(tenancy) = &state.tenancy else {
        return Ok(None);
    };
    match caller {
        Caller::Tenant(ctx) => Ok(Some(ctx.clone())),
        Caller::Operator => Ok(None),
        Caller::Other => {
            let Some(instance) = instance else {
                return Ok(None);
            };
            let owner = tenancy
                .directory
                .owner(&instance.name)
                .await
                .map_err(internal)?;
            let Some(owner) = owner.filter(|o| o.instance_id == instance.id) else {
                return Ok(None);
            };
            let found = tenancy
                .directory
                .tenant_with_plan(&owner.tenant_id)
                .await
                .map_err(internal)?;
            Ok(found.map(|(tenant, plan)| {
                Arc::new(TenantContext {
                    tenant,
                    plan,
                    key_id: String::new(),
                })
            }))
        }
    }
}

/// The per-route layer (see the module doc). Runs after the instance guard.
pub async fn charge(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(tenancy) = state.tenancy.clone() else {
        return next.run(req).await;
    };
    let entry = req
        .extensions()
        .get::<MatchedPath>()
        .and_then(|p| routes::lookup(req.method().as_str(), p.as_str()));
    let caller = req
        .extensions()
        .get::<Caller>()
        .cloned()
        .unwrap_or(Caller::Other);
    let instance = req.extensions().get::<Authorized>().map(|a| a.0.clone());
    let payer = match payer(&state, &caller, instance.as_ref()).await {
        Ok(p) => p,
        Err(response) => return response,
    };
    if let Some(ctx) = &payer
        && ctx.tenant.suspended
    {
        return suspended();
    }
    let cost = entry.and_then(|e| e.cost);
    let (Some(ctx), Some(cost)) = (payer.clone(), cost) else {
        let mut response = next.run(req).await;
        release_after(&state, entry, instance.as_ref(), response.status()).await;
        if let Some(ctx) = payer {
            response.extensions_mut().insert(ChargeNote {
                tenant_id: ctx.tenant.id.clone(),
                instance: instance.map(|i| i.name),
                quota: None,
                weight: 0,
            });
        }
        return response;
    };
    let decision = match tenancy
        .quotas
        .charge(&ctx.tenant.id, &ctx.plan.spec, cost)
        .await
    {
        Ok(d) => d,
        Err(err) => return internal(err),
    };
    let mut note = ChargeNote {
        tenant_id: ctx.tenant.id.clone(),
        instance: instance.as_ref().map(|i| i.name.clone()),
        quota: Some(cost.quota),
        weight: 0,
    };
    match decision {
        Decision::Refused(refusal) => {
            let mut response =
                ApiError(ErrorEnvelope::too_many_requests([refusal.message()])).into_response();
            rate_headers(&mut response, &refusal.rate);
            if let Some(retry) = refusal.retry_after
                && let Ok(v) = HeaderValue::from_str(&retry.to_string())
            {
                response.headers_mut().insert("retry-after", v);
            }
            response.extensions_mut().insert(note);
            response
        }
        Decision::Accepted { receipt, rate } => {
            let mut response = next.run(req).await;
            let status = response.status();
            let mut rate = rate;
            if status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS {
                // Refused by validation (or auth inside the handler): not charged.
                if let Err(err) = tenancy.quotas.refund(&receipt).await {
                    tracing::error!("refunding a refused request failed: {err}");
                }
                rate = rate.map(|r| r.refunded(receipt.weight));
            } else {
                note.weight = cost.weight;
            }
            release_after(&state, entry, instance.as_ref(), response.status()).await;
            if let Some(rate) = rate {
                rate_headers(&mut response, &rate);
            }
            response.extensions_mut().insert(note);
            response
        }
    }
}

/// After a successful delete: the owner's slot back, and the ownership row gone.
async fn release_after(
    state: &AppState,
    entry: Option<&routes::RouteQuota>,
    instance: Option<&crate::db::Instance>,
    status: StatusCode,
) {
    let (Some(tenancy), Some(quota), Some(instance)) =
        (&state.tenancy, entry.and_then(|e| e.releases), instance)
    else {
        return;
    };
    if !status.is_success() {
        return;
    }
    let owner = match tenancy.directory.owner_uncached(&instance.name).await {
        Ok(owner) => owner,
        Err(err) => {
            tracing::error!("reading an instance's owner failed: {err}");
            return;
        }
    };
    let Some(owner) = owner.filter(|o| o.instance_id == instance.id) else {
        return;
    };
    if let Err(err) = tenancy.quotas.release(&owner.tenant_id, quota, 1).await {
        tracing::error!("releasing a quota slot failed: {err}");
    }
    if quota == QuotaType::InstanceCreate
        && let Err(err) = tenancy.directory.release_instance(&instance.name).await
    {
        tracing::error!("forgetting an instance's owner failed: {err}");
    }
}
