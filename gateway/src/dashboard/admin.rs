//! Operator pages: the tenants with their plan, state and instance count, and suspend/resume.

use std::fmt::Write as _;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use zapin_tenancy::directory::{Tenant, TenantPatch};

use super::auth::{CsrfForm, Viewer};
use super::html::{Nav, csrf_field, escape, money, number, page, segment};
use super::i18n::{Lang, t, tf};
use super::instances::confirm_dialog;
use super::overview::{quota_key, window_key};
use crate::http::AppState;
use zapin_tenancy::plan::Plan;

/// The plans table: name, monthly price, and each limit (`Messages sent per day: 100`).
fn plans_table(out: &mut String, lang: Lang, plans: &[Plan]) {
    let _ = write!(out, "<h2>{}</h2>", escape(t(lang, "plans.title")));
    if plans.is_empty() {
        let _ = write!(
            out,
            "<p class=\"empty\">{}</p>",
            escape(t(lang, "plans.empty"))
        );
        return;
    }
    let _ = write!(
        out,
        "<div class=\"table\"><table><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th>\
         <th scope=\"col\">{}</th></tr></thead><tbody>",
        escape(t(lang, "tenants.name")),
        escape(t(lang, "plans.price")),
        escape(t(lang, "plans.limits")),
    );
    for plan in plans {
        let mut limits = Vec::new();
        for (quota, windows) in &plan.spec.quotas {
            for (window, n) in windows {
                limits.push(format!(
                    "{} {}: {}",
                    t(lang, quota_key(*quota)),
                    t(lang, window_key(*window)),
                    number(lang, *n)
                ));
            }
        }
        let limits = if limits.is_empty() {
            t(lang, "plans.unlimited").to_owned()
        } else {
            limits.join("; ")
        };
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&plan.name),
            money(lang, plan.spec.price_cents),
            escape(&limits)
        );
    }
    out.push_str("</tbody></table></div>");
}

/// The tenants page (pure, for tests): each tenant with its instance count, then the plans.
pub fn render(lang: Lang, viewer: &Viewer, tenants: &[(Tenant, usize)], plans: &[Plan]) -> String {
    let csrf = viewer.session.csrf.as_str();
    let mut main = format!("<h1>{}</h1>", escape(t(lang, "tenants.title")));
    if tenants.is_empty() {
        let _ = write!(
            main,
            "<p class=\"empty\">{}</p>",
            escape(t(lang, "tenants.empty"))
        );
    } else {
        let _ = write!(
            main,
            "<div class=\"table\"><table><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th>\
             <th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\"></th></tr></thead><tbody>",
            escape(t(lang, "tenants.name")),
            escape(t(lang, "tenants.plan")),
            escape(t(lang, "tenants.state")),
            escape(t(lang, "tenants.instances")),
        );
        for (tenant, count) in tenants {
            let (state_key, class) = if tenant.suspended {
                ("tenants.suspended", "s-close")
            } else {
                ("tenants.active", "s-open")
            };
            let (action, label, confirm) = if tenant.suspended {
                ("resume", t(lang, "tenants.resume"), String::new())
            } else {
                (
                    "suspend",
                    t(lang, "tenants.suspend"),
                    tf(lang, "tenants.confirm_suspend", &[("name", &tenant.name)]),
                )
            };
            let confirm = if confirm.is_empty() {
                String::new()
            } else {
                format!(" data-confirm=\"{}\"", escape(&confirm))
            };
            let _ = write!(
                main,
                "<tr><td>{name}</td><td>{plan}</td><td><span class=\"badge {class}\">{state}</span></td>\
                 <td>{count}</td><td><form method=\"post\" action=\"/dashboard/admin/tenants/{id}/{action}\"{confirm}>\
                 {csrf}<button type=\"submit\">{label}</button></form></td></tr>",
                name = escape(&tenant.name),
                plan = escape(&tenant.plan),
                state = escape(t(lang, state_key)),
                id = segment(&tenant.id),
                csrf = csrf_field(csrf),
                label = escape(label),
            );
        }
        main.push_str("</tbody></table></div>");
    }
    plans_table(&mut main, lang, plans);
    confirm_dialog(&mut main, lang);
    page(
        lang,
        "tenants.title",
        Some(viewer),
        Nav::Tenants,
        "/dashboard/admin/tenants",
        &main,
    )
}

/// The operator viewing, or the answer to give anyone else.
async fn operator(state: &AppState, headers: &HeaderMap) -> Result<Viewer, Response> {
    match super::auth::viewer(state, headers).await {
        None => Err(Redirect::to("/dashboard/login").into_response()),
        Some(v) if v.is_operator() => Ok(v),
        Some(_) => {
            Err(super::error_page(state, headers, StatusCode::FORBIDDEN, "err.forbidden").await)
        }
    }
}

/// `GET /dashboard/admin/tenants`.
pub async fn tenants(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let lang = Lang::from_headers(&headers);
    let viewer = match operator(&state, &headers).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let Some(tenancy) = &state.tenancy else {
        return Html(render(lang, &viewer, &[], &[])).into_response();
    };
    let Ok(list) = tenancy.directory.tenants().await else {
        return super::error_page(
            &state,
            &headers,
            StatusCode::INTERNAL_SERVER_ERROR,
            "err.generic",
        )
        .await;
    };
    let mut rows = Vec::with_capacity(list.len());
    for tenant in list {
        let count = tenancy
            .directory
            .instances_of(&tenant.id)
            .await
            .map_or(0, |v| v.len());
        rows.push((tenant, count));
    }
    let plans = tenancy.directory.plans().await.unwrap_or_default();
    Html(render(lang, &viewer, &rows, &plans)).into_response()
}

/// `POST /dashboard/admin/tenants/{id}/{suspend|resume}`.
pub async fn tenant_action(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let viewer = match operator(&state, &headers).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    if !viewer.csrf_ok(Some(&form.csrf)) {
        return super::error_page(&state, &headers, StatusCode::FORBIDDEN, "err.csrf").await;
    }
    let suspended = match action.as_str() {
        "suspend" => true,
        "resume" => false,
        _ => {
            return super::error_page(&state, &headers, StatusCode::NOT_FOUND, "err.not_found")
                .await;
        }
    };
    let Some(tenancy) = &state.tenancy else {
        return super::error_page(&state, &headers, StatusCode::NOT_FOUND, "err.not_found").await;
    };
    let patch = TenantPatch {
        plan: None,
        suspended: Some(suspended),
    };
    match tenancy.directory.update_tenant(&id, &patch).await {
        Ok(_) => Redirect::to("/dashboard/admin/tenants").into_response(),
        Err(_) => super::error_page(&state, &headers, StatusCode::NOT_FOUND, "err.not_found").await,
    }
}
