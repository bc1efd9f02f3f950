//! The web dashboard, served by `zapin serve` at `/dashboard` (and `/manager`, where Evolution
//! users look for it, redirects there).
//!
//! # Shape, and why
//!
//! Server-rendered HTML with one small plain-JavaScript file and one stylesheet, all embedded in
//! the binary ([`assets`]):
//!
//! * nothing to build: no Node, no bundler, no generated files to keep in step with sources; a
//!   `cargo build` is the whole build, and the pages work offline (no CDN, no web fonts);
//! * small and fast: the instances page with 50 cards is a few tens of kilobytes, and the script
//!   only adds what HTML cannot do alone (dialogs, the QR countdown, live updates);
//! * the pages are rendered by the same process from the same typed services the HTTP handlers
//!   use (instances, engine, tenancy): the dashboard never calls the HTTP API over loopback, so
//!   it cannot drift from it and pays no extra authentication or serialisation;
//! * forms work as plain HTML posts (redirect after post), so keyboard and assistive technology
//!   get native behaviour; `<dialog>` gives focus handling and Escape for free.
//!
//! Live changes (a new QR code, the connection state) are pushed with Server-Sent Events
//! ([`live`]), never polled. Every text comes from the message catalogue ([`i18n`]): English,
//! Bahasa Indonesia and Portuguese (Brazil).
//!
//! Sign-in, sessions, CSRF and the sign-in rate limit are in [`auth`]; a tenant user sees only
//! their tenant's instances ([`may_see`]), the operator sees everything and the admin pages.

pub mod admin;
pub mod assets;
pub mod auth;
pub mod html;
pub mod i18n;
pub mod instance_page;
pub mod instances;
pub mod keys;
pub mod live;
pub mod overview;
pub mod qr_svg;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use self::auth::Viewer;
use self::html::{Nav, escape, page};
use self::i18n::{LANG_COOKIE, Lang, t};
use crate::http::AppState;

/// The dashboard's process-wide state.
#[derive(Debug, Default)]
pub struct Shared {
    pub limiter: auth::Limiter,
}

/// The dashboard's routes (merged into [`crate::http::app`] outside the API's layers: no API
/// key, no quota charge, no usage log line per page view).
pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/manager",
            get(|| async { Redirect::permanent("/dashboard") }),
        )
        .route(
            "/manager/",
            get(|| async { Redirect::permanent("/dashboard") }),
        )
        .route("/dashboard", get(home))
        .route("/dashboard/", get(home))
        .route(assets::CSS_PATH, get(assets::css))
        .route(assets::JS_PATH, get(assets::js))
        .route("/dashboard/login", get(auth::login_page).post(auth::login))
        .route("/dashboard/login/operator", post(auth::login_operator))
        .route("/dashboard/logout", post(auth::logout))
        .route(
            "/dashboard/instances",
            get(instances::list).post(instances::create),
        )
        .route("/dashboard/instances/{name}", get(instance_page::show))
        .route(
            "/dashboard/instances/{name}/settings",
            post(instance_page::save_settings),
        )
        .route(
            "/dashboard/instances/{name}/connect",
            post(instances::connect),
        )
        .route(
            "/dashboard/instances/{name}/{action}",
            post(instances::action),
        )
        .route("/dashboard/events", get(live::events))
        .route("/dashboard/overview", get(overview::show))
        .route("/dashboard/keys", get(keys::show).post(keys::create))
        .route("/dashboard/keys/{id}/revoke", post(keys::revoke))
        .route("/dashboard/admin/tenants", get(admin::tenants))
        .route(
            "/dashboard/admin/tenants/{id}/{action}",
            post(admin::tenant_action),
        )
        .layer(from_fn_with_state(state, frame))
}

/// Every dashboard response: `?lang=` switches the language (remembered in a cookie, then the
/// same page without the parameter), and pages are neither cached nor framed.
async fn frame(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let chosen = req.uri().query().and_then(|q| {
        q.split('&')
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| *k == "lang")
            .and_then(|(_, v)| Lang::parse(v))
    });
    if let Some(lang) = chosen
        && req.method() == axum::http::Method::GET
    {
        let mut response = Redirect::to(req.uri().path()).into_response();
        response.headers_mut().append(
            SET_COOKIE,
            auth::set_cookie(&state, LANG_COOKIE, lang.param(), Some(365 * 24 * 3600)),
        );
        return response;
    }
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(
        "x-frame-options",
        axum::http::HeaderValue::from_static("DENY"),
    );
    headers.insert(
        "content-security-policy",
        axum::http::HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
             frame-ancestors 'none'; form-action 'self'",
        ),
    );
    headers.insert(
        "referrer-policy",
        axum::http::HeaderValue::from_static("same-origin"),
    );
    if !headers.contains_key("cache-control") {
        headers.insert(
            "cache-control",
            axum::http::HeaderValue::from_static("no-store"),
        );
    }
    response
}

async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if auth::viewer(&state, &headers).await.is_some() {
        Redirect::to("/dashboard/overview").into_response()
    } else {
        Redirect::to("/dashboard/login").into_response()
    }
}

/// Whether `viewer` may see the instance `name` (id `id`): the operator sees every instance, a
/// tenant user those their tenant owns (and not a later instance that reused the name).
pub async fn may_see(state: &AppState, viewer: &Viewer, name: &str, id: &str) -> bool {
    let Some(tenant_id) = viewer.tenant_id() else {
        return true;
    };
    let Some(tenancy) = &state.tenancy else {
        return false;
    };
    match tenancy.directory.owner(name).await {
        Ok(Some(owner)) => owner.tenant_id == tenant_id && owner.instance_id == id,
        Ok(None) => false,
        Err(err) => {
            tracing::error!("dashboard: reading an instance's owner failed: {err}");
            false
        }
    }
}

/// A page with one message (an error) and a way back.
pub async fn error_page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    key: &'static str,
) -> Response {
    let lang = Lang::from_headers(headers);
    message_page(state, headers, status, t(lang, key)).await
}

pub async fn message_page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    text: &str,
) -> Response {
    let lang = Lang::from_headers(headers);
    let viewer = auth::viewer(state, headers).await;
    let main = format!(
        "<h1>{}</h1>{}<p><a href=\"/dashboard\">{}</a></p>",
        escape(t(lang, "err.title")),
        html::notice("err", text),
        escape(t(lang, "err.back"))
    );
    let body = page(
        lang,
        "err.title",
        viewer.as_ref(),
        Nav::None,
        "/dashboard",
        &main,
    );
    (status, Html(body)).into_response()
}

#[cfg(test)]
mod tests;
