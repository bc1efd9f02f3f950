//! The API keys page: a tenant user lists their tenant's keys by prefix (created, last use,
//! expiry), creates one (shown once, with a copy button) and revokes one. The operator's key
//! lives in the server configuration, so the operator only gets a pointer to the tenants page.

use std::fmt::Write as _;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use zapin_tenancy::apikey::KeyInfo;

use super::auth::{CsrfForm, Viewer};
use super::html::{Nav, csrf_field, date, escape, notice, page, segment};
use super::i18n::{Lang, t, tf};
use super::instances::confirm_dialog;
use crate::http::AppState;

/// The keys page (pure, for tests). `new_key` is a key just created, shown this once.
pub fn render(lang: Lang, viewer: &Viewer, keys: &[KeyInfo], new_key: Option<&str>) -> String {
    let csrf = viewer.session.csrf.as_str();
    let mut main = format!("<h1>{}</h1>", escape(t(lang, "keys.title")));
    if viewer.tenant_id().is_none() {
        main.push_str(&notice("ok", t(lang, "keys.operator")));
        return page(
            lang,
            "keys.title",
            Some(viewer),
            Nav::Keys,
            "/dashboard/keys",
            &main,
        );
    }
    if let Some(key) = new_key {
        let _ = write!(
            main,
            "<div class=\"notice ok\" role=\"status\"><p>{}</p><p class=\"row\">\
             <code id=\"new-key\">{}</code><button type=\"button\" data-copy=\"new-key\">{}</button>\
             </p></div>",
            escape(t(lang, "keys.new")),
            escape(key),
            escape(t(lang, "keys.copy"))
        );
    }
    let _ = write!(
        main,
        "<form method=\"post\" action=\"/dashboard/keys\">{}<button type=\"submit\" \
         class=\"primary\">{}</button></form>",
        csrf_field(csrf),
        escape(t(lang, "keys.create"))
    );
    if keys.is_empty() {
        let _ = write!(
            main,
            "<p class=\"empty\">{}</p>",
            escape(t(lang, "keys.empty"))
        );
    } else {
        let _ = write!(
            main,
            "<div class=\"table\"><table><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th>\
             <th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\"></th></tr></thead><tbody>",
            escape(t(lang, "keys.prefix")),
            escape(t(lang, "keys.created")),
            escape(t(lang, "keys.last_used")),
            escape(t(lang, "keys.expires")),
        );
        let never = t(lang, "keys.never");
        for key in keys {
            let _ = write!(
                main,
                "<tr><td><code>{prefix}</code></td><td>{created}</td><td>{used}</td><td>{expires}</td>\
                 <td><form method=\"post\" action=\"/dashboard/keys/{id}/revoke\" data-confirm=\"{confirm}\">\
                 {csrf}<button type=\"submit\" class=\"danger\">{revoke}</button></form></td></tr>",
                prefix = escape(&key.prefix),
                created = date(key.created_at),
                used = key.last_used_at.map_or_else(|| escape(never), date),
                expires = key.expires_at.map_or_else(|| escape(never), date),
                id = segment(&key.id),
                confirm = escape(&tf(lang, "keys.confirm_revoke", &[("prefix", &key.prefix)])),
                csrf = csrf_field(csrf),
                revoke = escape(t(lang, "keys.revoke")),
            );
        }
        main.push_str("</tbody></table></div>");
    }
    confirm_dialog(&mut main, lang);
    page(
        lang,
        "keys.title",
        Some(viewer),
        Nav::Keys,
        "/dashboard/keys",
        &main,
    )
}

async fn keys_of(state: &AppState, viewer: &Viewer) -> Option<Vec<KeyInfo>> {
    match (viewer.tenant_id(), &state.tenancy) {
        (Some(tenant), Some(tenancy)) => tenancy.directory.keys(tenant).await.ok(),
        _ => Some(Vec::new()),
    }
}

/// `GET /dashboard/keys`.
pub async fn page_handler(
    state: &AppState,
    headers: &HeaderMap,
    new_key: Option<&str>,
) -> Response {
    let lang = Lang::from_headers(headers);
    let Some(viewer) = super::auth::viewer(state, headers).await else {
        return Redirect::to("/dashboard/login").into_response();
    };
    let Some(keys) = keys_of(state, &viewer).await else {
        return super::error_page(
            state,
            headers,
            StatusCode::INTERNAL_SERVER_ERROR,
            "err.generic",
        )
        .await;
    };
    Html(render(lang, &viewer, &keys, new_key)).into_response()
}

pub async fn show(State(state): State<AppState>, headers: HeaderMap) -> Response {
    page_handler(&state, &headers, None).await
}

/// `POST /dashboard/keys`: a new key for the viewer's tenant, shown in the answer only.
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let Some(viewer) = super::auth::viewer(&state, &headers).await else {
        return Redirect::to("/dashboard/login").into_response();
    };
    if !viewer.csrf_ok(Some(&form.csrf)) {
        return super::error_page(&state, &headers, StatusCode::FORBIDDEN, "err.csrf").await;
    }
    let (Some(tenant), Some(tenancy)) = (viewer.tenant_id(), &state.tenancy) else {
        return super::error_page(&state, &headers, StatusCode::FORBIDDEN, "err.forbidden").await;
    };
    match tenancy.directory.create_key(tenant, None).await {
        Ok((key, _)) => page_handler(&state, &headers, Some(key.expose())).await,
        Err(err) => {
            tracing::error!("dashboard: creating a key failed: {err}");
            super::error_page(
                &state,
                &headers,
                StatusCode::INTERNAL_SERVER_ERROR,
                "err.generic",
            )
            .await
        }
    }
}

/// `POST /dashboard/keys/{id}/revoke`.
pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let Some(viewer) = super::auth::viewer(&state, &headers).await else {
        return Redirect::to("/dashboard/login").into_response();
    };
    if !viewer.csrf_ok(Some(&form.csrf)) {
        return super::error_page(&state, &headers, StatusCode::FORBIDDEN, "err.csrf").await;
    }
    let (Some(tenant), Some(tenancy)) = (viewer.tenant_id(), &state.tenancy) else {
        return super::error_page(&state, &headers, StatusCode::FORBIDDEN, "err.forbidden").await;
    };
    match tenancy.directory.delete_key(tenant, &id).await {
        Ok(()) => Redirect::to("/dashboard/keys").into_response(),
        Err(_) => super::error_page(&state, &headers, StatusCode::NOT_FOUND, "err.not_found").await,
    }
}
