//! One instance's page: its state, its settings (editable, the same row `settings/set` writes),
//! its webhook (URL, state, events) with the deliveries still pending in the outbox and those
//! given up on in the dead-letter queue.

use std::fmt::Write as _;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::auth::Viewer;
use super::html::{Nav, csrf_field, date, escape, notice, number, page, segment};
use super::i18n::{Lang, t};
use super::instances::{Card, badge};
use crate::db::{Settings, WebhookConfig};
use crate::http::AppState;
use crate::webhook::{DeadLetter, OutboxEntry};

/// What the page shows.
#[derive(Debug, Clone)]
pub struct Detail {
    pub card: Card,
    pub settings: Settings,
    pub webhook: Option<WebhookSummary>,
    /// (event, attempts, last status, last error) of pending deliveries, newest first.
    pub pending: Vec<(String, i64, Option<i64>, Option<String>)>,
    /// (event, attempts, reason) of dead letters, newest first.
    pub dead: Vec<(String, i64, String)>,
    pub saved: bool,
}

/// The webhook as shown (never its secret or headers).
#[derive(Debug, Clone)]
pub struct WebhookSummary {
    pub url: String,
    pub enabled: bool,
    pub events: Vec<String>,
}

const SWITCHES: [(&str, &str); 6] = [
    ("reject_call", "settings.reject_call"),
    ("groups_ignore", "settings.groups_ignore"),
    ("always_online", "settings.always_online"),
    ("read_messages", "settings.read_messages"),
    ("read_status", "settings.read_status"),
    ("sync_full_history", "settings.sync_full_history"),
];

fn switch_value(s: &Settings, field: &str) -> bool {
    match field {
        "reject_call" => s.reject_call,
        "groups_ignore" => s.groups_ignore,
        "always_online" => s.always_online,
        "read_messages" => s.read_messages,
        "read_status" => s.read_status,
        "sync_full_history" => s.sync_full_history,
        _ => false,
    }
}

/// The page (pure, for tests).
pub fn render(lang: Lang, viewer: &Viewer, d: &Detail) -> String {
    let csrf = viewer.session.csrf.as_str();
    let (badge_key, badge_class) = badge(&d.card.status);
    let path = format!("/dashboard/instances/{}", segment(&d.card.name));
    let unknown = t(lang, "instances.unknown");
    let mut main = String::with_capacity(8192);
    let _ = write!(
        main,
        "<p><a href=\"/dashboard/instances\">{back}</a></p>\
         <article class=\"detail\" data-instance=\"{name}\"><div class=\"bar\"><h1>{name}</h1>\
         <span class=\"badge {badge_class}\" data-badge>{badge}</span></div>\
         <dl class=\"facts\"><dt>{created_l}</dt><dd>{created}</dd><dt>{phone_l}</dt>\
         <dd data-phone>{phone}</dd><dt>{profile_l}</dt><dd data-profile>{profile}</dd></dl></article>",
        back = escape(t(lang, "instance.back")),
        name = escape(&d.card.name),
        badge = escape(t(lang, badge_key)),
        created_l = escape(t(lang, "instances.created")),
        created = date(d.card.created_at),
        phone_l = escape(t(lang, "instances.phone")),
        phone = escape(d.card.phone.as_deref().unwrap_or(unknown)),
        profile_l = escape(t(lang, "instances.profile")),
        profile = escape(d.card.profile.as_deref().unwrap_or(unknown)),
    );
    if d.saved {
        main.push_str(&notice("ok", t(lang, "settings.saved")));
    }
    let _ = write!(
        main,
        "<section aria-labelledby=\"settings-title\"><h2 id=\"settings-title\">{}</h2>\
         <form method=\"post\" action=\"{path}/settings\" class=\"stack\">{}",
        escape(t(lang, "settings.title")),
        csrf_field(csrf),
    );
    for (field, key) in SWITCHES {
        let checked = if switch_value(&d.settings, field) {
            " checked"
        } else {
            ""
        };
        let _ = write!(
            main,
            "<label class=\"check\"><input type=\"checkbox\" name=\"{field}\" value=\"on\"{checked}> {}</label>",
            escape(t(lang, key))
        );
    }
    let _ = write!(
        main,
        "<label for=\"msg-call\">{}</label><input id=\"msg-call\" name=\"msg_call\" maxlength=\"1000\" value=\"{}\">\
         <div class=\"row\"><button type=\"submit\" class=\"primary\">{}</button></div></form></section>",
        escape(t(lang, "settings.msg_call")),
        escape(&d.settings.msg_call),
        escape(t(lang, "settings.save")),
    );
    let _ = write!(
        main,
        "<section aria-labelledby=\"webhook-title\"><h2 id=\"webhook-title\">{}</h2>",
        escape(t(lang, "webhook.title"))
    );
    match &d.webhook {
        None => {
            let _ = write!(
                main,
                "<p class=\"empty\">{}</p>",
                escape(t(lang, "webhook.none"))
            );
        }
        Some(w) => {
            let events = if w.events.is_empty() {
                t(lang, "webhook.all_events").to_owned()
            } else {
                w.events.join(", ")
            };
            let _ = write!(
                main,
                "<dl class=\"facts\"><dt>{url_l}</dt><dd><code>{url}</code></dd><dt>{state_l}</dt>\
                 <dd>{state}</dd><dt>{events_l}</dt><dd>{events}</dd></dl>",
                url_l = escape(t(lang, "webhook.url")),
                url = escape(&w.url),
                state_l = escape(t(lang, "tenants.state")),
                state = escape(t(
                    lang,
                    if w.enabled {
                        "webhook.enabled"
                    } else {
                        "webhook.disabled"
                    }
                )),
                events_l = escape(t(lang, "webhook.events")),
                events = escape(&events),
            );
        }
    }
    let _ = write!(main, "<h3>{}</h3>", escape(t(lang, "webhook.pending")));
    if d.pending.is_empty() {
        let _ = write!(
            main,
            "<p class=\"empty\">{}</p>",
            escape(t(lang, "webhook.pending_none"))
        );
    } else {
        table_head(
            &mut main,
            lang,
            &[
                "webhook.event",
                "webhook.attempts",
                "webhook.last_status",
                "webhook.last_error",
            ],
        );
        for (event, attempts, status, error) in &d.pending {
            let _ = write!(
                main,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(event),
                number(lang, u64::try_from(*attempts).unwrap_or(0)),
                status.map(|s| s.to_string()).unwrap_or_default(),
                escape(error.as_deref().unwrap_or_default()),
            );
        }
        main.push_str("</tbody></table></div>");
    }
    let _ = write!(main, "<h3>{}</h3>", escape(t(lang, "webhook.dead")));
    if d.dead.is_empty() {
        let _ = write!(
            main,
            "<p class=\"empty\">{}</p>",
            escape(t(lang, "webhook.dead_none"))
        );
    } else {
        table_head(
            &mut main,
            lang,
            &["webhook.event", "webhook.attempts", "webhook.reason"],
        );
        for (event, attempts, reason) in &d.dead {
            let _ = write!(
                main,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                escape(event),
                number(lang, u64::try_from(*attempts).unwrap_or(0)),
                escape(reason),
            );
        }
        main.push_str("</tbody></table></div>");
    }
    main.push_str("</section>");
    page(
        lang,
        "instance.title",
        Some(viewer),
        Nav::Instances,
        &path,
        &main,
    )
}

fn table_head(out: &mut String, lang: Lang, keys: &[&'static str]) {
    out.push_str("<div class=\"table\"><table><thead><tr>");
    for key in keys {
        let _ = write!(out, "<th scope=\"col\">{}</th>", escape(t(lang, key)));
    }
    out.push_str("</tr></thead><tbody>");
}

async fn load(state: &AppState, viewer: &Viewer, name: &str) -> Result<Option<Detail>, String> {
    let Some(instance) = super::instances::find_visible(state, viewer, name).await else {
        return Ok(None);
    };
    let mut tx = state.db.begin().await.map_err(|e| e.to_string())?;
    let settings = tx
        .get_settings(&instance.id)
        .await
        .map_err(|e| e.to_string())?
        .unwrap_or_default();
    let webhook = tx
        .get_webhook(&instance.id)
        .await
        .map_err(|e| e.to_string())?
        .map(|w: WebhookConfig| WebhookSummary {
            url: w.url,
            enabled: w.enabled,
            events: w.events,
        });
    tx.rollback().await.map_err(|e| e.to_string())?;
    let pending: Vec<OutboxEntry> = state.db.outbox_entries().await.map_err(|e| e.to_string())?;
    let dead: Vec<DeadLetter> = state.db.dead_letters().await.map_err(|e| e.to_string())?;
    Ok(Some(Detail {
        card: Card::of(&instance),
        settings,
        webhook,
        pending: pending
            .into_iter()
            .rev()
            .filter(|e| e.instance_id == instance.id)
            .take(50)
            .map(|e| (e.event, e.attempts, e.last_status, e.last_error))
            .collect(),
        dead: dead
            .into_iter()
            .rev()
            .filter(|e| e.instance_id == instance.id)
            .take(50)
            .map(|e| (e.event, e.attempts, e.reason))
            .collect(),
        saved: false,
    }))
}

/// `GET /dashboard/instances/{name}`.
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    query: axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let Some(viewer) = super::auth::viewer(&state, &headers).await else {
        return Redirect::to("/dashboard/login").into_response();
    };
    match load(&state, &viewer, &name).await {
        Ok(Some(mut detail)) => {
            detail.saved = query.contains_key("saved");
            Html(render(lang, &viewer, &detail)).into_response()
        }
        Ok(None) => {
            super::error_page(&state, &headers, StatusCode::NOT_FOUND, "err.not_found").await
        }
        Err(err) => {
            tracing::error!("dashboard instance page: {err}");
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

#[derive(Debug, Deserialize)]
pub struct SettingsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reject_call: Option<String>,
    #[serde(default)]
    groups_ignore: Option<String>,
    #[serde(default)]
    always_online: Option<String>,
    #[serde(default)]
    read_messages: Option<String>,
    #[serde(default)]
    read_status: Option<String>,
    #[serde(default)]
    sync_full_history: Option<String>,
    #[serde(default)]
    msg_call: String,
}

/// `POST /dashboard/instances/{name}/settings`: the settings row `settings/set` writes (the
/// Wavoip token is kept as it is).
pub async fn save_settings(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(form): Form<SettingsForm>,
) -> Response {
    let Some(viewer) = super::auth::viewer(&state, &headers).await else {
        return Redirect::to("/dashboard/login").into_response();
    };
    if !viewer.csrf_ok(Some(&form.csrf)) {
        return super::error_page(&state, &headers, StatusCode::FORBIDDEN, "err.csrf").await;
    }
    let Some(instance) = super::instances::find_visible(&state, &viewer, &name).await else {
        return super::error_page(&state, &headers, StatusCode::NOT_FOUND, "err.not_found").await;
    };
    let result: Result<(), crate::db::DbError> = async {
        let mut tx = state.db.begin().await?;
        let old = tx.get_settings(&instance.id).await?.unwrap_or_default();
        let new = Settings {
            reject_call: form.reject_call.is_some(),
            msg_call: form.msg_call.chars().take(1000).collect(),
            groups_ignore: form.groups_ignore.is_some(),
            always_online: form.always_online.is_some(),
            read_messages: form.read_messages.is_some(),
            read_status: form.read_status.is_some(),
            sync_full_history: form.sync_full_history.is_some(),
            wavoip_token: old.wavoip_token,
        };
        tx.set_settings(&instance.id, &new).await?;
        tx.commit().await
    }
    .await;
    match result {
        Ok(()) => Redirect::to(&format!(
            "/dashboard/instances/{}?saved",
            segment(&instance.name)
        ))
        .into_response(),
        Err(err) => {
            tracing::error!("dashboard: saving settings failed: {err}");
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
