//! The instances page: a card per instance (name, status badge, created date, phone and profile
//! name once known) with Connect, Restart, Log out and Delete; the "Add Instance" dialog; the
//! "Connect `<name>`" dialog with the QR code (SVG, countdown, replaced on rotation) and the
//! pairing-code tab. Cards change state live from [`super::live`].
//!
//! Actions run the same services as the Evolution routes (create, delete, engine connect,
//! restart, logout), charged to the viewer's tenant like a tenant key's request.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use axum::Form;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;
use zapin_engine::ConnectionState;
use zapin_tenancy::plan::QuotaType;
use zapin_tenancy::quota::Decision;
use zapin_tenancy::routes;

use super::auth::{CsrfForm, Viewer};
use super::html::{Nav, csrf_field, date, escape, notice, page, segment};
use super::i18n::{Lang, t, tf};
use super::qr_svg::qr_svg;
use crate::db::Instance;
use crate::http::AppState;

/// Cards per page: a page stays small (well under 150 KB) with any number of instances.
pub const PAGE_SIZE: usize = 50;
/// How long "Generate QR Code" waits for the engine's first code before answering.
const FIRST_QR_WAIT: Duration = Duration::from_secs(20);

/// What a card shows.
#[derive(Debug, Clone)]
pub struct Card {
    pub name: String,
    /// Stored `connection_status`: `open`, `connecting`, `close`.
    pub status: String,
    pub created_at: i64,
    pub phone: Option<String>,
    pub profile: Option<String>,
}

impl Card {
    pub(crate) fn of(i: &Instance) -> Self {
        Card {
            name: i.name.clone(),
            status: i.connection_status.clone(),
            created_at: i.created_at,
            phone: i.owner_jid.as_deref().map(phone_of),
            profile: i.profile_name.clone(),
        }
    }
}

/// `5511999999999@s.whatsapp.net` → `+5511999999999`.
pub fn phone_of(jid: &str) -> String {
    let user = jid.split('@').next().unwrap_or(jid);
    let user = user.split(':').next().unwrap_or(user);
    format!("+{user}")
}

/// The badge's message key and CSS class of a stored status.
pub fn badge(status: &str) -> (&'static str, &'static str) {
    match status {
        "open" => ("status.open", "s-open"),
        "connecting" => ("status.connecting", "s-connecting"),
        _ => ("status.close", "s-close"),
    }
}

/// The instances the viewer may see, by name.
pub async fn visible_instances(state: &AppState, viewer: &Viewer) -> Result<Vec<Instance>, ()> {
    let mut tx = state.db.begin().await.map_err(log)?;
    let all = tx.list_instances().await.map_err(log)?;
    tx.rollback().await.map_err(log)?;
    let Some(tenant_id) = viewer.tenant_id() else {
        return Ok(all);
    };
    let Some(tenancy) = &state.tenancy else {
        return Ok(Vec::new());
    };
    // One query for the tenant's (name, id) pairs; an instance that reused a name owned by a
    // deleted one does not match its id.
    let owned: std::collections::HashSet<(String, String)> = tenancy
        .directory
        .owned_instances(tenant_id)
        .await
        .map_err(log)?
        .into_iter()
        .collect();
    Ok(all
        .into_iter()
        .filter(|i| owned.contains(&(i.name.clone(), i.id.clone())))
        .collect())
}

fn log(err: impl std::fmt::Display) {
    tracing::error!("dashboard: {err}");
}

/// The viewer's instance `name`, or `None` when it does not exist for them.
pub async fn find_visible(state: &AppState, viewer: &Viewer, name: &str) -> Option<Instance> {
    let instance = state.db.instance_by_name(name).await.ok().flatten()?;
    super::may_see(state, viewer, &instance.name, &instance.id)
        .await
        .then_some(instance)
}

#[derive(Debug, Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    page: Option<usize>,
    #[serde(default)]
    ok: Option<String>,
    #[serde(default)]
    err: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

/// `GET /dashboard/instances[?page=N]`.
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let Some(viewer) = super::auth::viewer(&state, &headers).await else {
        return Redirect::to("/dashboard/login").into_response();
    };
    let Ok(instances) = visible_instances(&state, &viewer).await else {
        return super::error_page(
            &state,
            &headers,
            StatusCode::INTERNAL_SERVER_ERROR,
            "err.generic",
        )
        .await;
    };
    let total = instances.len();
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let current = query.page.unwrap_or(1).clamp(1, pages);
    let cards: Vec<Card> = instances
        .iter()
        .skip((current - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .map(Card::of)
        .collect();
    let name = query.name.as_deref().unwrap_or_default();
    let flash = match (query.ok.as_deref(), query.err.as_deref()) {
        (Some("created"), _) => Some(("ok", tf(lang, "instances.created_ok", &[("name", name)]))),
        (Some("deleted"), _) => Some(("ok", tf(lang, "instances.deleted_ok", &[("name", name)]))),
        (_, Some(key)) => flash_error(key).map(|k| ("err", t(lang, k).to_owned())),
        _ => None,
    };
    let body = render(
        lang,
        &viewer,
        &cards,
        current,
        pages,
        total,
        flash.as_ref().map(|(k, m)| (*k, m.as_str())),
    );
    Html(body).into_response()
}

/// Error keys a redirect may name (anything else is ignored, so a link cannot inject text).
fn flash_error(key: &str) -> Option<&'static str> {
    [
        "instances.name_taken",
        "instances.name_invalid",
        "instances.not_connected",
        "err.generic",
        "err.engine",
        "err.suspended",
        "err.csrf",
        "err.not_found",
    ]
    .into_iter()
    .find(|k| *k == key)
}

/// The whole instances page (pure, for tests).
pub fn render(
    lang: Lang,
    viewer: &Viewer,
    cards: &[Card],
    current: usize,
    pages: usize,
    total: usize,
    flash: Option<(&str, &str)>,
) -> String {
    let csrf = viewer.session.csrf.as_str();
    let mut main = String::with_capacity(2048 + cards.len() * 1400);
    let _ = write!(
        main,
        "<div class=\"bar\"><h1>{title}</h1><span class=\"muted\">{count}</span>\
         <button type=\"button\" class=\"primary\" data-open=\"create\">{add}</button></div>",
        title = escape(t(lang, "instances.title")),
        count = escape(&if total == 1 {
            t(lang, "instances.count_one").to_owned()
        } else {
            tf(
                lang,
                "instances.count",
                &[("n", &super::html::number(lang, total as u64))],
            )
        }),
        add = escape(t(lang, "instances.add")),
    );
    if let Some((kind, text)) = flash {
        main.push_str(&notice(kind, text));
    }
    if cards.is_empty() {
        let _ = write!(
            main,
            "<p class=\"empty\">{}</p>",
            escape(t(lang, "instances.empty"))
        );
    }
    main.push_str("<div class=\"cards\" id=\"cards\">");
    for (n, card) in cards.iter().enumerate() {
        card_html(&mut main, lang, csrf, card, n);
    }
    main.push_str("</div>");
    if pages > 1 {
        pager(&mut main, lang, current, pages);
    }
    create_dialog(&mut main, lang, csrf);
    connect_dialog(&mut main, lang);
    confirm_dialog(&mut main, lang);
    page(
        lang,
        "instances.title",
        Some(viewer),
        Nav::Instances,
        "/dashboard/instances",
        &main,
    )
}

fn card_html(out: &mut String, lang: Lang, csrf: &str, card: &Card, n: usize) {
    let (badge_key, badge_class) = badge(&card.status);
    let name = escape(&card.name);
    let path = format!("/dashboard/instances/{}", segment(&card.name));
    let unknown = t(lang, "instances.unknown");
    let _ = write!(
        out,
        "<article class=\"card\" data-instance=\"{name}\" aria-labelledby=\"c{n}\">\
         <div class=\"card-head\"><h2 id=\"c{n}\"><a href=\"{path}\">{name}</a></h2>\
         <span class=\"badge {badge_class}\" data-badge>{badge}</span></div><dl>\
         <dt>{created}</dt><dd>{date}</dd>\
         <dt>{phone_l}</dt><dd data-phone>{phone}</dd>\
         <dt>{profile_l}</dt><dd data-profile>{profile}</dd></dl>\
         <div class=\"actions\" role=\"group\" aria-label=\"{actions}\">\
         <button type=\"button\" class=\"primary\" data-connect=\"{name}\" data-path=\"{path}\" \
         data-title=\"{connect_title}\">{connect}</button>",
        badge = escape(t(lang, badge_key)),
        created = escape(t(lang, "instances.created")),
        date = date(card.created_at),
        phone_l = escape(t(lang, "instances.phone")),
        phone = escape(card.phone.as_deref().unwrap_or(unknown)),
        profile_l = escape(t(lang, "instances.profile")),
        profile = escape(card.profile.as_deref().unwrap_or(unknown)),
        actions = escape(&tf(lang, "instances.actions", &[("name", &card.name)])),
        connect_title = escape(&tf(
            lang,
            "instances.connect_title",
            &[("name", &card.name)]
        )),
        connect = escape(t(lang, "instances.connect")),
    );
    for (action, label, confirm, class) in [
        (
            "restart",
            "instances.restart",
            "instances.confirm_restart",
            "",
        ),
        ("logout", "instances.logout", "instances.confirm_logout", ""),
        (
            "delete",
            "instances.delete",
            "instances.confirm_delete",
            "danger",
        ),
    ] {
        let _ = write!(
            out,
            "<form method=\"post\" action=\"{path}/{action}\" data-confirm=\"{confirm}\">{csrf}\
             <button type=\"submit\" class=\"{class}\">{label}</button></form>",
            confirm = escape(&tf(lang, confirm, &[("name", &card.name)])),
            csrf = csrf_field(csrf),
            label = escape(t(lang, label)),
        );
    }
    out.push_str("</div></article>");
}

fn pager(out: &mut String, lang: Lang, current: usize, pages: usize) {
    let _ = write!(
        out,
        "<nav class=\"pager\" aria-label=\"{}\">",
        escape(t(lang, "pager.label"))
    );
    if current > 1 {
        let _ = write!(
            out,
            "<a href=\"/dashboard/instances?page={}\" rel=\"prev\">{}</a>",
            current - 1,
            escape(t(lang, "pager.prev"))
        );
    }
    let _ = write!(
        out,
        "<span>{}</span>",
        escape(&tf(
            lang,
            "pager.page",
            &[("n", &current.to_string()), ("total", &pages.to_string())]
        ))
    );
    if current < pages {
        let _ = write!(
            out,
            "<a href=\"/dashboard/instances?page={}\" rel=\"next\">{}</a>",
            current + 1,
            escape(t(lang, "pager.next"))
        );
    }
    out.push_str("</nav>");
}

fn create_dialog(out: &mut String, lang: Lang, csrf: &str) {
    let _ = write!(
        out,
        "<dialog id=\"create\" aria-labelledby=\"create-title\">\
         <form method=\"post\" action=\"/dashboard/instances\" class=\"stack\">{csrf}\
         <h2 id=\"create-title\">{title}</h2>\
         <label for=\"instance-name\">{label}</label>\
         <input id=\"instance-name\" name=\"name\" required maxlength=\"100\" pattern=\"[^/]+\" \
         autocomplete=\"off\" placeholder=\"{placeholder}\">\
         <div class=\"row\"><button type=\"button\" data-close>{cancel}</button>\
         <button type=\"submit\" class=\"primary\">{create}</button></div></form></dialog>",
        csrf = csrf_field(csrf),
        title = escape(t(lang, "instances.create_title")),
        label = escape(t(lang, "instances.name")),
        placeholder = escape(t(lang, "instances.name_placeholder")),
        cancel = escape(t(lang, "instances.cancel")),
        create = escape(t(lang, "instances.create")),
    );
}

fn connect_dialog(out: &mut String, lang: Lang) {
    let _ = write!(
        out,
        "<dialog id=\"connect\" aria-labelledby=\"connect-title\">\
         <h2 id=\"connect-title\"></h2>\
         <div role=\"tablist\" aria-label=\"{tabs}\" class=\"tabs\">\
         <button type=\"button\" role=\"tab\" id=\"tab-qr\" aria-controls=\"panel-qr\" \
         aria-selected=\"true\">{tab_qr}</button>\
         <button type=\"button\" role=\"tab\" id=\"tab-phone\" aria-controls=\"panel-phone\" \
         aria-selected=\"false\" tabindex=\"-1\">{tab_phone}</button></div>\
         <section id=\"panel-qr\" role=\"tabpanel\" aria-labelledby=\"tab-qr\">\
         <button type=\"button\" class=\"primary\" id=\"gen-qr\">{generate}</button>\
         <div id=\"qr-box\" class=\"qr\"></div>\
         <p id=\"qr-count\" class=\"count\" aria-live=\"polite\"></p>\
         <p id=\"qr-help\" class=\"muted\" hidden>{help}</p></section>\
         <section id=\"panel-phone\" role=\"tabpanel\" aria-labelledby=\"tab-phone\" hidden>\
         <form id=\"code-form\" class=\"stack\"><label for=\"code-number\">{number}</label>\
         <input id=\"code-number\" name=\"number\" inputmode=\"numeric\" pattern=\"[0-9]{{8,15}}\" \
         required placeholder=\"{number_ph}\">\
         <button type=\"submit\" class=\"primary\">{get_code}</button></form>\
         <p id=\"code-label\" class=\"muted\" hidden>{code_label}</p>\
         <p id=\"code-out\" class=\"code\" aria-live=\"polite\"></p>\
         <p id=\"code-help\" class=\"muted\" hidden>{code_help}</p></section>\
         <p id=\"connected\" class=\"connected\" role=\"status\" hidden>{connected}</p>\
         <div class=\"row\"><button type=\"button\" data-close>{close}</button></div></dialog>",
        tabs = escape(t(lang, "instances.tabs")),
        tab_qr = escape(t(lang, "instances.tab_qr")),
        tab_phone = escape(t(lang, "instances.tab_phone")),
        generate = escape(t(lang, "instances.generate_qr")),
        help = escape(t(lang, "instances.qr_help")),
        number = escape(t(lang, "instances.phone_number")),
        number_ph = escape(t(lang, "instances.phone_placeholder")),
        get_code = escape(t(lang, "instances.get_code")),
        code_label = escape(t(lang, "instances.code_label")),
        code_help = escape(t(lang, "instances.code_help")),
        connected = escape(t(lang, "instances.connected")),
        close = escape(t(lang, "instances.close")),
    );
}

/// The confirmation dialog every `data-confirm` form goes through.
pub fn confirm_dialog(out: &mut String, lang: Lang) {
    let _ = write!(
        out,
        "<dialog id=\"confirm\" aria-labelledby=\"confirm-title\" aria-describedby=\"confirm-text\">\
         <h2 id=\"confirm-title\">{title}</h2><p id=\"confirm-text\"></p>\
         <div class=\"row\"><button type=\"button\" data-close>{cancel}</button>\
         <button type=\"button\" class=\"danger\" id=\"confirm-yes\">{yes}</button></div></dialog>",
        title = escape(t(lang, "confirm.title")),
        cancel = escape(t(lang, "instances.cancel")),
        yes = escape(t(lang, "confirm.yes")),
    );
}

#[derive(Debug, Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

fn back(query: &str) -> Response {
    Redirect::to(&format!("/dashboard/instances?{query}")).into_response()
}

fn back_err(key: &str) -> Response {
    back(&format!("err={key}"))
}

/// `POST /dashboard/instances`: creates an instance for the viewer's tenant (charged to its
/// instance quota, as `POST /instance/create` with its key would be).
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CreateForm>,
) -> Response {
    let Some(viewer) = super::auth::viewer(&state, &headers).await else {
        return Redirect::to("/dashboard/login").into_response();
    };
    if !viewer.csrf_ok(Some(&form.csrf)) {
        return super::error_page(&state, &headers, StatusCode::FORBIDDEN, "err.csrf").await;
    }
    let name = form.name.trim().to_owned();
    let receipt = match charge(&state, &headers, &viewer, "POST", "/instance/create").await {
        Ok(receipt) => receipt,
        Err(response) => return response,
    };
    let result = crate::http::instance::create_named(&state, &name, viewer.tenant_id()).await;
    match result {
        Ok(instance) => back(&format!("ok=created&name={}", segment(&instance.name))),
        Err(err) => {
            refund(&state, receipt).await;
            match err.0.status {
                403 => back_err("instances.name_taken"),
                400 => back_err("instances.name_invalid"),
                _ => back_err("err.generic"),
            }
        }
    }
}

/// Charges the viewer's tenant what the API route `method pattern` costs (the operator is not
/// charged): `Ok(receipt)` to go on (refund it if the action fails), or the answer to give.
async fn charge(
    state: &AppState,
    headers: &HeaderMap,
    viewer: &Viewer,
    method: &str,
    pattern: &str,
) -> Result<Option<zapin_tenancy::quota::Receipt>, Response> {
    let (Some(tenant_id), Some(tenancy)) = (viewer.tenant_id(), &state.tenancy) else {
        return Ok(None);
    };
    let Ok(Some((tenant, plan))) = tenancy.directory.tenant_with_plan(tenant_id).await else {
        return Err(back_err("err.generic"));
    };
    if tenant.suspended {
        return Err(back_err("err.suspended"));
    }
    let Some(cost) = routes::lookup(method, pattern).and_then(|r| r.cost) else {
        return Ok(None);
    };
    match tenancy.quotas.charge(&tenant.id, &plan.spec, cost).await {
        Ok(Decision::Accepted { receipt, .. }) => Ok(Some(receipt)),
        Ok(Decision::Refused(refusal)) => {
            let lang = Lang::from_headers(headers);
            // The refusing limit in the viewer's language (`Instances at once: 2`).
            let detail = format!(
                "{} {}: {}",
                t(lang, super::overview::quota_key(refusal.quota)),
                t(lang, super::overview::window_key(refusal.window)),
                super::html::number(lang, refusal.limit)
            );
            let text = tf(lang, "err.quota", &[("detail", &detail)]);
            Err(super::message_page(state, headers, StatusCode::TOO_MANY_REQUESTS, &text).await)
        }
        Err(err) => {
            log(err);
            Err(back_err("err.generic"))
        }
    }
}

async fn refund(state: &AppState, receipt: Option<zapin_tenancy::quota::Receipt>) {
    if let (Some(r), Some(tenancy)) = (receipt, &state.tenancy)
        && let Err(err) = tenancy.quotas.refund(&r).await
    {
        log(err);
    }
}

/// `POST /dashboard/instances/{name}/{restart|logout|delete}`.
pub async fn action(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((name, action)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let Some(viewer) = super::auth::viewer(&state, &headers).await else {
        return Redirect::to("/dashboard/login").into_response();
    };
    if !viewer.csrf_ok(Some(&form.csrf)) {
        return super::error_page(&state, &headers, StatusCode::FORBIDDEN, "err.csrf").await;
    }
    let Some(instance) = find_visible(&state, &viewer, &name).await else {
        return super::error_page(&state, &headers, StatusCode::NOT_FOUND, "err.not_found").await;
    };
    match action.as_str() {
        "delete" => {
            // Charged as the API's delete is (its own quota type), and the slot given back.
            let receipt = match charge(
                &state,
                &headers,
                &viewer,
                "DELETE",
                "/instance/delete/{instance}",
            )
            .await
            {
                Ok(receipt) => receipt,
                Err(response) => return response,
            };
            if crate::http::instance::delete_stored(&state, &instance)
                .await
                .is_err()
            {
                refund(&state, receipt).await;
                return back_err("err.generic");
            }
            release_slot(&state, &instance).await;
            back(&format!("ok=deleted&name={}", segment(&instance.name)))
        }
        "restart" | "logout" => {
            let Some(engine) = &state.engine else {
                return back_err("err.engine");
            };
            let current = engine.state(&instance.id).unwrap_or(ConnectionState::Close);
            if matches!(current, ConnectionState::Close | ConnectionState::Refused) {
                return back_err("instances.not_connected");
            }
            let result = if action == "restart" {
                engine.restart(&instance).await
            } else {
                engine.logout(&instance.id).await
            };
            match result {
                Ok(()) => back(""),
                Err(err) => {
                    log(err);
                    back_err("err.generic")
                }
            }
        }
        _ => super::error_page(&state, &headers, StatusCode::NOT_FOUND, "err.not_found").await,
    }
}

/// After a delete: the owner's instance slot back and the ownership row gone (as the API's
/// delete does).
async fn release_slot(state: &AppState, instance: &Instance) {
    let Some(tenancy) = &state.tenancy else {
        return;
    };
    let owner = match tenancy.directory.owner_uncached(&instance.name).await {
        Ok(owner) => owner,
        Err(err) => return log(err),
    };
    let Some(owner) = owner.filter(|o| o.instance_id == instance.id) else {
        return;
    };
    if let Err(err) = tenancy
        .quotas
        .release(&owner.tenant_id, QuotaType::InstanceCreate, 1)
        .await
    {
        log(err);
    }
    if let Err(err) = tenancy.directory.release_instance(&instance.name).await {
        log(err);
    }
}

/// Seconds until `at` (0 when past).
pub fn seconds_left(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::now())
        .map_or(0, |d| d.as_secs_f64().round() as u64)
}

/// `POST /dashboard/instances/{name}/connect` (script, `X-CSRF-Token`): starts connecting and
/// answers the first QR code (or, with `number`, the pairing code), or that it is connected.
pub async fn connect(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let Some(viewer) = super::auth::viewer(&state, &headers).await else {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": t(lang, "err.forbidden")})),
        )
            .into_response();
    };
    let presented = headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
    if !viewer.csrf_ok(presented) {
        return (
            StatusCode::FORBIDDEN,
            Json(json!({"error": t(lang, "err.csrf")})),
        )
            .into_response();
    }
    let Some(instance) = find_visible(&state, &viewer, &name).await else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": t(lang, "err.not_found")})),
        )
            .into_response();
    };
    let Some(engine) = state.engine.clone() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": t(lang, "err.engine")})),
        )
            .into_response();
    };
    let number = form
        .get("number")
        .map(|n| n.chars().filter(char::is_ascii_digit).collect::<String>())
        .filter(|n| !n.is_empty());
    let current = engine.state(&instance.id).unwrap_or(ConnectionState::Close);
    if current == ConnectionState::Open {
        return Json(json!({"status": "open"})).into_response();
    }
    let started = match (&number, current) {
        (None, ConnectionState::Connecting) if engine.live(&instance.id).qr.is_some() => Ok(()),
        (Some(number), ConnectionState::Connecting) => match engine.session(&instance.id) {
            Some(handle) => match handle.request_pairing_code(number).await {
                Ok(code) => {
                    return Json(json!({"status": "connecting", "pairingCode": code}))
                        .into_response();
                }
                Err(err) => Err(err),
            },
            None => engine.connect(&instance, Some(number)).await,
        },
        _ => engine.connect(&instance, number.as_deref()).await,
    };
    if let Err(err) = started {
        log(&err);
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": t(lang, "err.generic")})),
        )
            .into_response();
    }
    let live = engine.wait_for_qr(&instance.id, FIRST_QR_WAIT).await;
    if engine.state(&instance.id) == Some(ConnectionState::Open) {
        return Json(json!({"status": "open"})).into_response();
    }
    let qr = live.qr.as_ref().and_then(|qr| {
        let svg = qr_svg(&qr.code, t(lang, "instances.qr_alt"))?;
        Some(json!({
            "code": qr.code,
            "svg": svg,
            "expiresIn": live.qr_expires_at.map_or(0, seconds_left),
        }))
    });
    Json(json!({
        "status": "connecting",
        "qr": qr,
        "pairingCode": live.pairing_code,
    }))
    .into_response()
}
