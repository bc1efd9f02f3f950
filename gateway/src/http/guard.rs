//! The guard chain (contract §1.3, §2), in one place.
//!
//! Order, and so error precedence: instance exists (404) → name free on create (403) → `apikey`
//! (401) → body (400) → handler. Routes with an `{instance}` path parameter run
//! [`instance_guard`] as a route layer; `/instance/create` and `/instance/fetchInstances` have
//! none and call the steps below themselves.
//!
//! Keys: the `apikey` header (any case). The global key (`AUTHENTICATION_API_KEY`, compared in
//! constant time) unlocks everything. An instance token unlocks only the instance it belongs to,
//! on every route, and `fetchInstances` filtered to the instances holding it; it never unlocks
//! `/instance/create`. There is no other way in: no query-string key, no `Authorization` header.
//! [`account_key`] says which account a key stands for (`/verify-creds`).

use axum::extract::{Path, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use zapin_compat_evolution::ErrorEnvelope;
use zapin_compat_evolution::request::parse_json_body;

use super::tenancy::Caller;
use super::{ApiError, AppState};
use crate::db::Instance;

/// The instance a guarded request is about, after its key was accepted. Handlers take it as
/// `Extension<Authorized>` and never look at the query string for the instance name.
#[derive(Debug, Clone)]
pub struct Authorized(pub Instance);

/// The `apikey` header's bytes, if present (header names are case-insensitive).
pub fn api_key(headers: &HeaderMap) -> Option<&[u8]> {
    headers.get("apikey").map(|v| v.as_bytes())
}

/// Whether `key` is the global key.
pub fn is_global(state: &AppState, key: &[u8]) -> bool {
    state.config.api_key.matches(key)
}

/// The account a key stands for: what `POST /verify-creds` accepts and what a dashboard logs in
/// with. Instance tokens are not account keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountKey {
    /// `AUTHENTICATION_API_KEY`: every instance.
    Global,
}

/// Which account `key` opens, if any. This is the one place account keys are recognised: a
/// tenant's key is checked here (as another [`AccountKey`] variant) once tenants exist.
pub fn account_key(state: &AppState, key: &[u8]) -> Option<AccountKey> {
    is_global(state, key).then_some(AccountKey::Global)
}

/// Whether `key` unlocks `instance`: the global key or the instance's own token.
pub fn unlocks(state: &AppState, key: Option<&[u8]>, instance: &Instance) -> bool {
    let Some(key) = key else {
        return false;
    };
    is_global(state, key) || state.tokens.unlocks(instance, key)
}

/// Whether `instance` belongs to the tenant `tenant_id` (its ownership row names this very
/// instance, not an earlier one of the same name).
pub async fn owned_by(
    state: &AppState,
    instance: &Instance,
    tenant_id: &str,
) -> Result<bool, ApiError> {
    let Some(tenancy) = &state.tenancy else {
        return Ok(false);
    };
    let owner = tenancy.directory.owner(&instance.name).await?;
    Ok(owner.is_some_and(|o| o.tenant_id == tenant_id && o.instance_id == instance.id))
}

/// Loads an instance by name (step 1 of the chain).
pub async fn find_instance(state: &AppState, name: &str) -> Result<Option<Instance>, ApiError> {
    Ok(state.db.instance_by_name(name).await?)
}

/// Instance-exists then apikey, for every route with `{instance}`.
pub async fn instance_guard(
    State(state): State<AppState>,
    path: Result<Path<Vec<(String, String)>>, axum::extract::rejection::PathRejection>,
    req: Request,
    next: Next,
) -> Response {
    // The instance is the parameter named `instance` (routes such as
    // `/n8n/fetch/{botId}/{instance}` have another one before it).
    let name = path.ok().and_then(|Path(params)| {
        params
            .into_iter()
            .find(|(k, _)| k == "instance")
            .map(|(_, v)| v)
    });
    let Some(name) = name else {
        return ApiError(ErrorEnvelope::instance_name_not_provided()).into_response();
    };
    let instance = match find_instance(&state, &name).await {
        Ok(Some(instance)) => instance,
        Ok(None) => return ApiError(ErrorEnvelope::instance_not_found(&name)).into_response(),
        Err(err) => return err.into_response(),
    };
    let caller = req
        .extensions()
        .get::<Caller>()
        .cloned()
        .unwrap_or(Caller::Other);
    match &caller {
        Caller::Operator => {}
        // A tenant key works on its tenant's instances only; another tenant's instance
        // answers exactly like one that does not exist.
        Caller::Tenant(ctx) => match owned_by(&state, &instance, &ctx.tenant.id).await {
            Ok(true) => {}
            Ok(false) => {
                return ApiError(ErrorEnvelope::instance_not_found(&name)).into_response();
            }
            Err(err) => return err.into_response(),
        },
        Caller::Other => {
            if !unlocks(&state, api_key(req.headers()), &instance) {
                return ApiError(ErrorEnvelope::unauthorized()).into_response();
            }
        }
    }
    let mut req = match parse_json_first(req).await {
        Ok(req) => req,
        Err(err) => return err.into_response(),
    };
    req.extensions_mut().insert(Authorized(instance));
    next.run(req).await
}

/// Express parses every JSON body before any route runs, so a malformed one is a 400 on
/// routes that take no body too (delete, logout, restart, …). Only bodies declared as JSON
/// are parsed, as body-parser does; the bytes are handed on for the route's own reading.
async fn parse_json_first(req: Request) -> Result<Request, ApiError> {
    let declared_json = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("json"));
    if !declared_json {
        return Ok(req);
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, super::BODY_LIMIT_BYTES)
        .await
        .map_err(|_| ErrorEnvelope::body_parser(413, "request entity too large"))?;
    parse_json_body(&bytes)?;
    Ok(Request::from_parts(parts, axum::body::Body::from(bytes)))
}
