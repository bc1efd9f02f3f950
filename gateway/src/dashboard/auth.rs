//! Signing in and out, the session cookie, CSRF tokens and the sign-in rate limit.
//!
//! * Tenant users sign in with e-mail and password (`zapin-tenancy`'s users, argon2id); the
//!   operator signs in with the global key and sees the admin pages.
//! * The session cookie is `HttpOnly`, `SameSite=Strict`, `Path=/dashboard`, and `Secure` when
//!   `SERVER_URL` is `https://` (zapin behind a TLS proxy), so it never travels in clear there.
//! * Every state-changing request carries the session's CSRF token, as the `csrf` form field or
//!   the `X-CSRF-Token` header of the page's script; the sign-in forms, which have no session
//!   yet, use a double-submit token in a short-lived `zapin_login` cookie.
//! * Failed sign-ins are limited per client address and per e-mail (or per address for the
//!   operator key): [`MAX_FAILURES`] in [`FAILURE_WINDOW`], then 429 until the window passes.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Form;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use subtle::ConstantTimeEq as _;
use zapin_tenancy::users::{Session, SessionOwner, Users};

use super::html::{Nav, csrf_field, escape, notice, page};
use super::i18n::{Lang, cookie, t};
use crate::http::AppState;

pub const SESSION_COOKIE: &str = "zapin_session";
const LOGIN_COOKIE: &str = "zapin_login";
/// How long a dashboard session lasts.
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Failed sign-ins allowed per client address and per account within [`FAILURE_WINDOW`].
pub const MAX_FAILURES: usize = 10;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Addresses and accounts remembered at most (then the oldest windows are dropped).
const MAX_TRACKED: usize = 50_000;

/// Who is looking at the dashboard.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub token: String,
    pub session: Session,
}

impl Viewer {
    pub fn is_operator(&self) -> bool {
        matches!(self.session.owner, SessionOwner::Operator)
    }

    /// The tenant whose data this viewer sees (`None`: the operator, who sees everything).
    pub fn tenant_id(&self) -> Option<&str> {
        match &self.session.owner {
            SessionOwner::User(u) => Some(&u.tenant_id),
            SessionOwner::Operator => None,
        }
    }

    pub fn email(&self) -> Option<&str> {
        match &self.session.owner {
            SessionOwner::User(u) => Some(&u.email),
            SessionOwner::Operator => None,
        }
    }

    /// Whether `presented` is this session's CSRF token.
    pub fn csrf_ok(&self, presented: Option<&str>) -> bool {
        presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(self.session.csrf.as_bytes())))
    }
}

/// Failed sign-in attempts per key (`ip:…`, `email:…`).
#[derive(Debug, Default)]
pub struct Limiter {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Limiter {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<Instant>>> {
        self.failures.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether any of `keys` used up its failures.
    pub fn blocked(&self, keys: &[String]) -> bool {
        let mut map = self.lock();
        keys.iter().any(|k| {
            map.get_mut(k).is_some_and(|q| {
                while q.front().is_some_and(|t| t.elapsed() > FAILURE_WINDOW) {
                    q.pop_front();
                }
                q.len() >= MAX_FAILURES
            })
        })
    }

    pub fn failed(&self, keys: &[String]) {
        let mut map = self.lock();
        if map.len() > MAX_TRACKED {
            map.retain(|_, q| q.back().is_some_and(|t| t.elapsed() <= FAILURE_WINDOW));
        }
        for k in keys {
            let q = map.entry(k.clone()).or_default();
            q.push_back(Instant::now());
            if q.len() > MAX_FAILURES {
                q.pop_front();
            }
        }
    }
}

/// The tables of users and sessions over the gateway's pool.
pub fn users(state: &AppState) -> Users {
    Users::new(crate::tenancy::pool_of(&state.db))
}

/// The signed-in viewer of a request, if any.
pub async fn viewer(state: &AppState, headers: &HeaderMap) -> Option<Viewer> {
    let token = cookie(headers, SESSION_COOKIE)?;
    match users(state).session(&token).await {
        Ok(Some(session)) => {
            if let SessionOwner::User(user) = &session.owner
                && tenant_suspended(state, &user.tenant_id).await
            {
                return None;
            }
            Some(Viewer { token, session })
        }
        Ok(None) => None,
        Err(err) => {
            tracing::error!("reading a dashboard session failed: {err}");
            None
        }
    }
}

/// Whether a tenant is suspended (or gone, or unreadable): its users are refused, as its keys are.
async fn tenant_suspended(state: &AppState, tenant_id: &str) -> bool {
    let Some(tenancy) = &state.tenancy else {
        return true;
    };
    match tenancy.directory.tenant_with_plan(tenant_id).await {
        Ok(Some((tenant, _))) => tenant.suspended,
        Ok(None) => true,
        Err(err) => {
            tracing::error!("reading a dashboard user's tenant failed: {err}");
            true
        }
    }
}

/// Whether cookies must be `Secure`: the public base URL is https.
fn secure(state: &AppState) -> bool {
    state
        .config
        .server_url
        .as_deref()
        .is_some_and(|u| u.to_ascii_lowercase().starts_with("https://"))
}

/// A `Set-Cookie` value with the dashboard's attributes.
pub fn set_cookie(state: &AppState, name: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
    let mut text = format!("{name}={value}; Path=/dashboard; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        text.push_str(&format!("; Max-Age={age}"));
    }
    if secure(state) {
        text.push_str("; Secure");
    }
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("zapin_bad=1"))
}

fn random_token() -> String {
    let mut b = [0u8; 32];
    if getrandom::fill(&mut b).is_err() {
        // Without randomness no token can be trusted: an empty one never matches.
        return String::new();
    }
    hex::encode(b)
}

/// The peer address (behind a proxy, the proxy's: the limit then applies to it as a whole, and
/// the per-account limit still holds).
fn client_ip(connect: Option<&ConnectInfo<SocketAddr>>) -> String {
    connect.map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string())
}

/// `GET /dashboard/login`.
pub async fn login_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let lang = Lang::from_headers(&headers);
    if viewer(&state, &headers).await.is_some() {
        return Redirect::to("/dashboard/instances").into_response();
    }
    login_response(&state, lang, StatusCode::OK, None)
}

/// The sign-in page with a fresh double-submit token (and `error`, if any).
fn login_response(
    state: &AppState,
    lang: Lang,
    status: StatusCode,
    error: Option<&'static str>,
) -> Response {
    let token = random_token();
    let body = login_html(lang, &token, error);
    let mut response = (status, Html(body)).into_response();
    response.headers_mut().append(
        SET_COOKIE,
        set_cookie(state, LOGIN_COOKIE, &token, Some(3600)),
    );
    response
}

pub fn login_html(lang: Lang, token: &str, error: Option<&'static str>) -> String {
    let error = error.map(|k| notice("err", t(lang, k))).unwrap_or_default();
    let main = format!(
        "<section class=\"signin\"><h1>{title}</h1>{error}\
         <form method=\"post\" action=\"/dashboard/login\" class=\"stack\">{csrf}\
         <label for=\"email\">{email}</label>\
         <input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" required>\
         <label for=\"password\">{password}</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
         <button type=\"submit\" class=\"primary\">{submit}</button></form>\
         <details class=\"operator\"><summary>{op_title}</summary>\
         <form method=\"post\" action=\"/dashboard/login/operator\" class=\"stack\">{csrf}\
         <label for=\"key\">{op_key}</label>\
         <input id=\"key\" name=\"key\" type=\"password\" autocomplete=\"off\" required>\
         <button type=\"submit\">{op_submit}</button></form></details></section>",
        title = escape(t(lang, "login.title")),
        csrf = csrf_field(token),
        email = escape(t(lang, "login.email")),
        password = escape(t(lang, "login.password")),
        submit = escape(t(lang, "login.submit")),
        op_title = escape(t(lang, "login.operator_title")),
        op_key = escape(t(lang, "login.operator_key")),
        op_submit = escape(t(lang, "login.operator_submit")),
    );
    page(
        lang,
        "login.title",
        None,
        Nav::None,
        "/dashboard/login",
        &main,
    )
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

#[derive(Debug, Deserialize)]
pub struct OperatorForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    key: String,
}

fn login_csrf_ok(headers: &HeaderMap, presented: &str) -> bool {
    cookie(headers, LOGIN_COOKIE)
        .is_some_and(|c| !c.is_empty() && bool::from(c.as_bytes().ct_eq(presented.as_bytes())))
}

/// Opens a session for `owner` and sends the browser to the instances page.
async fn signed_in(state: &AppState, owner: SessionOwner) -> Response {
    let ttl_ms = i64::try_from(SESSION_TTL.as_millis()).unwrap_or(i64::MAX);
    match users(state).open_session(owner, ttl_ms).await {
        Ok(new) => {
            let mut response = Redirect::to("/dashboard/instances").into_response();
            let headers = response.headers_mut();
            headers.append(
                SET_COOKIE,
                set_cookie(
                    state,
                    SESSION_COOKIE,
                    &new.token,
                    Some(SESSION_TTL.as_secs()),
                ),
            );
            headers.append(SET_COOKIE, set_cookie(state, LOGIN_COOKIE, "", Some(0)));
            response
        }
        Err(err) => {
            tracing::error!("opening a dashboard session failed: {err}");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// `POST /dashboard/login`.
pub async fn login(State(state): State<AppState>, req: Request) -> Response {
    let headers = req.headers().clone();
    let lang = Lang::from_headers(&headers);
    let ip = client_ip(req.extensions().get::<ConnectInfo<SocketAddr>>());
    let Ok(Form(form)) = Form::<LoginForm>::from_request(req, &state).await else {
        return login_response(&state, lang, StatusCode::BAD_REQUEST, Some("err.generic"));
    };
    if !login_csrf_ok(&headers, &form.csrf) {
        return login_response(&state, lang, StatusCode::FORBIDDEN, Some("err.csrf"));
    }
    let keys = [
        format!("ip:{ip}"),
        format!("email:{}", form.email.trim().to_lowercase()),
    ];
    let limiter = &state.dashboard.limiter;
    if limiter.blocked(&keys) {
        return login_response(
            &state,
            lang,
            StatusCode::TOO_MANY_REQUESTS,
            Some("login.limited"),
        );
    }
    if state.tenancy.is_none() {
        return login_response(
            &state,
            lang,
            StatusCode::SERVICE_UNAVAILABLE,
            Some("login.unavailable"),
        );
    }
    match users(&state).verify(&form.email, &form.password).await {
        Ok(Some(user)) if tenant_suspended(&state, &user.tenant_id).await => {
            login_response(&state, lang, StatusCode::FORBIDDEN, Some("err.suspended"))
        }
        Ok(Some(user)) => signed_in(&state, SessionOwner::User(user)).await,
        Ok(None) => {
            limiter.failed(&keys);
            tracing::info!(ip = %ip, "dashboard sign-in refused");
            login_response(&state, lang, StatusCode::UNAUTHORIZED, Some("login.failed"))
        }
        Err(err) => {
            tracing::error!("dashboard sign-in failed: {err}");
            login_response(
                &state,
                lang,
                StatusCode::INTERNAL_SERVER_ERROR,
                Some("err.generic"),
            )
        }
    }
}

/// `POST /dashboard/login/operator`.
pub async fn login_operator(State(state): State<AppState>, req: Request) -> Response {
    let headers = req.headers().clone();
    let lang = Lang::from_headers(&headers);
    let ip = client_ip(req.extensions().get::<ConnectInfo<SocketAddr>>());
    let Ok(Form(form)) = Form::<OperatorForm>::from_request(req, &state).await else {
        return login_response(&state, lang, StatusCode::BAD_REQUEST, Some("err.generic"));
    };
    if !login_csrf_ok(&headers, &form.csrf) {
        return login_response(&state, lang, StatusCode::FORBIDDEN, Some("err.csrf"));
    }
    let keys = [format!("ip:{ip}")];
    let limiter = &state.dashboard.limiter;
    if limiter.blocked(&keys) {
        return login_response(
            &state,
            lang,
            StatusCode::TOO_MANY_REQUESTS,
            Some("login.limited"),
        );
    }
    if crate::http::guard::is_global(&state, form.key.as_bytes()) {
        return signed_in(&state, SessionOwner::Operator).await;
    }
    limiter.failed(&keys);
    tracing::info!(ip = %ip, "dashboard operator sign-in refused");
    login_response(
        &state,
        lang,
        StatusCode::UNAUTHORIZED,
        Some("login.key_failed"),
    )
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// `POST /dashboard/logout`.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let Some(viewer) = viewer(&state, &headers).await else {
        return Redirect::to("/dashboard/login").into_response();
    };
    if !viewer.csrf_ok(Some(&form.csrf)) {
        return super::error_page(&state, &headers, StatusCode::FORBIDDEN, "err.csrf").await;
    }
    if let Err(err) = users(&state).close_session(&viewer.token).await {
        tracing::error!("closing a dashboard session failed: {err}");
    }
    let mut response = Redirect::to("/dashboard/login").into_response();
    response
        .headers_mut()
        .append(SET_COOKIE, set_cookie(&state, SESSION_COOKIE, "", Some(0)));
    response
}

use axum::extract::FromRequest as _;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_blocks_after_the_allowed_failures() {
        let limiter = Limiter::default();
        let keys = ["ip:1".to_owned(), "email:a@b.c".to_owned()];
        for _ in 0..MAX_FAILURES {
            assert!(!limiter.blocked(&keys));
            limiter.failed(&keys);
        }
        assert!(limiter.blocked(&keys));
        assert!(limiter.blocked(&keys[1..]));
        assert!(!limiter.blocked(&["ip:2".to_owned()]));
    }
}
