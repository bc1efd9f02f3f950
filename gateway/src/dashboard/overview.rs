//! The overview page: instances connected of total, messages today and this month, active
//! bots, this month's bill, quota gauges, and a chart of messages and API calls over the last
//! 24 hours, 7 days or 30 days (hourly, or daily past a day), all drawn as inline SVG from the
//! tenant analytics the `/v1/analytics` routes serve. The operator sees instance counts over
//! every tenant.

use std::fmt::Write as _;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use zapin_tenancy::analytics::{HourPoint, InstanceCounts, Overview, Period};
use zapin_tenancy::plan::{QuotaType, Window};
use zapin_tenancy::usage::MessageEvent;

use super::auth::Viewer;
use super::html::{Nav, escape, money, number, page};
use super::i18n::{Lang, t, tf};
use crate::http::AppState;

/// What the page shows.
#[derive(Debug, Clone)]
pub struct View {
    pub instances: InstanceCounts,
    /// The tenant's documents (`None` for the operator).
    pub overview: Option<Overview>,
    /// (messages, API calls) per bucket, oldest first.
    pub buckets: Vec<(u64, u64)>,
    pub period: Period,
    /// Tenants (operator only).
    pub tenants: Option<usize>,
}

#[derive(Debug, Deserialize, Default)]
pub struct OverviewQuery {
    #[serde(default)]
    period: Option<String>,
}

/// Hourly points folded into the chart's buckets: hours for a day, days beyond.
pub fn buckets(series: &[HourPoint], period: Period) -> Vec<(u64, u64)> {
    let per = if period == Period::Day { 1 } else { 24 };
    series
        .chunks(per)
        .map(|chunk| {
            chunk.iter().fold((0, 0), |(m, c), p| {
                let messages = p.messages.get(&MessageEvent::Sent).copied().unwrap_or(0)
                    + p.messages
                        .get(&MessageEvent::Received)
                        .copied()
                        .unwrap_or(0);
                (m + messages, c + p.requests)
            })
        })
        .collect()
}

pub(crate) fn quota_key(q: QuotaType) -> &'static str {
    match q {
        QuotaType::MessageSend => "quota.message_send",
        QuotaType::ApiCall => "quota.api_call",
        QuotaType::InstanceCreate => "quota.instance_create",
        QuotaType::InstanceDelete => "quota.instance_delete",
        QuotaType::BotCreate => "quota.bot_create",
    }
}

pub(crate) fn window_key(w: Window) -> &'static str {
    match w {
        Window::Minute => "window.minute",
        Window::Hour => "window.hour",
        Window::Day => "window.day",
        Window::Month => "window.month",
        Window::Total => "window.total",
    }
}

fn period_key(p: Period) -> &'static str {
    match p {
        Period::Day => "period.24h",
        Period::Week => "period.7d",
        Period::Month => "period.30d",
    }
}

fn tile(out: &mut String, label: &str, value: &str) {
    let _ = write!(
        out,
        "<div class=\"tile\"><p class=\"tile-label\">{}</p><p class=\"tile-value\">{}</p></div>",
        escape(label),
        escape(value)
    );
}

/// A horizontal gauge: `used` of `limit`.
fn gauge(out: &mut String, label: &str, used: u64, limit: u64, lang: Lang) {
    let ratio = if limit == 0 {
        1.0
    } else {
        (used as f64 / limit as f64).min(1.0)
    };
    let class = if ratio >= 0.9 {
        "g-high"
    } else if ratio >= 0.7 {
        "g-mid"
    } else {
        "g-low"
    };
    let text = tf(
        lang,
        "overview.used_of",
        &[
            ("used", &number(lang, used)),
            ("limit", &number(lang, limit)),
        ],
    );
    let _ = write!(
        out,
        "<div class=\"gauge\"><p><span>{label}</span><span>{text}</span></p>\
         <svg viewBox=\"0 0 100 6\" preserveAspectRatio=\"none\" role=\"img\" aria-label=\"{label}: {text}\">\
         <rect width=\"100\" height=\"6\" rx=\"3\" class=\"g-track\"/>\
         <rect width=\"{w:.1}\" height=\"6\" rx=\"3\" class=\"{class}\"/></svg></div>",
        label = escape(label),
        text = escape(&text),
        w = ratio * 100.0,
    );
}

/// Bars of messages and API calls per bucket.
fn chart(out: &mut String, lang: Lang, buckets: &[(u64, u64)]) {
    let (messages, calls) = buckets
        .iter()
        .fold((0, 0), |(m, c), (bm, bc)| (m + bm, c + bc));
    let max = buckets
        .iter()
        .map(|(m, c)| (*m).max(*c))
        .max()
        .unwrap_or(0)
        .max(1);
    let n = buckets.len().max(1);
    let (width, height) = (720.0, 180.0);
    let slot = width / n as f64;
    let bar = (slot * 0.38).max(1.0);
    let label = tf(
        lang,
        "overview.chart_label",
        &[
            ("messages", &number(lang, messages)),
            ("calls", &number(lang, calls)),
        ],
    );
    let _ = write!(
        out,
        "<figure class=\"chart\"><svg viewBox=\"0 0 {width} {h}\" role=\"img\" aria-label=\"{label}\">\
         <line x1=\"0\" y1=\"{height}\" x2=\"{width}\" y2=\"{height}\" class=\"axis\"/>\
         <text x=\"2\" y=\"12\" class=\"axis-label\">{max}</text>",
        h = height + 2.0,
        label = escape(&label),
        max = number(lang, max),
    );
    for (i, (m, c)) in buckets.iter().enumerate() {
        let x = i as f64 * slot + slot * 0.1;
        for (k, (v, class)) in [(*m, "bar-m"), (*c, "bar-c")].into_iter().enumerate() {
            let h = (v as f64 / max as f64) * (height - 16.0);
            let _ = write!(
                out,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{h:.1}\" class=\"{class}\"/>",
                x + k as f64 * bar,
                height - h,
            );
        }
    }
    let _ = write!(
        out,
        "</svg><figcaption><span class=\"key bar-m\"></span>{} <span class=\"key bar-c\"></span>{}</figcaption></figure>",
        escape(t(lang, "overview.legend_messages")),
        escape(t(lang, "overview.legend_calls")),
    );
}

/// The page (pure, for tests).
pub fn render(lang: Lang, viewer: &Viewer, view: &View) -> String {
    let mut main = String::with_capacity(16 * 1024);
    let _ = write!(
        main,
        "<div class=\"bar\"><h1>{}</h1><nav class=\"periods\" aria-label=\"{}\">",
        escape(t(lang, "overview.title")),
        escape(t(lang, "overview.period"))
    );
    for p in [Period::Day, Period::Week, Period::Month] {
        let current = if p == view.period {
            " aria-current=\"page\""
        } else {
            ""
        };
        let _ = write!(
            main,
            "<a href=\"/dashboard/overview?period={}\"{current}>{}</a>",
            p.as_str(),
            escape(t(lang, period_key(p)))
        );
    }
    main.push_str("</nav></div><section class=\"tiles\">");
    tile(
        &mut main,
        t(lang, "overview.connected"),
        &tf(
            lang,
            "overview.of",
            &[
                ("n", &number(lang, view.instances.connected)),
                ("total", &number(lang, view.instances.total)),
            ],
        ),
    );
    if let Some(tenants) = view.tenants {
        tile(
            &mut main,
            t(lang, "overview.tenants"),
            &number(lang, tenants as u64),
        );
    }
    if let Some(o) = &view.overview {
        let get = |c: &zapin_tenancy::analytics::EventCounts, e| c.get(&e).copied().unwrap_or(0);
        tile(
            &mut main,
            t(lang, "overview.sent_today"),
            &number(lang, get(&o.messages.today, MessageEvent::Sent)),
        );
        tile(
            &mut main,
            t(lang, "overview.received_today"),
            &number(lang, get(&o.messages.today, MessageEvent::Received)),
        );
        tile(
            &mut main,
            t(lang, "overview.sent_month"),
            &number(lang, get(&o.messages.month, MessageEvent::Sent)),
        );
        tile(
            &mut main,
            t(lang, "overview.bots"),
            &number(lang, o.active_bots),
        );
        tile(
            &mut main,
            t(lang, "overview.bill"),
            &money(lang, o.bill.total_cents),
        );
    }
    main.push_str("</section>");
    let _ = write!(
        main,
        "<section aria-labelledby=\"chart-title\"><h2 id=\"chart-title\">{}</h2>",
        escape(t(lang, "overview.chart"))
    );
    chart(&mut main, lang, &view.buckets);
    main.push_str("</section>");
    match &view.overview {
        None => main.push_str(&super::html::notice(
            "ok",
            t(lang, "overview.operator_note"),
        )),
        Some(o) => {
            let _ = write!(
                main,
                "<section aria-labelledby=\"quota-title\"><h2 id=\"quota-title\">{}</h2><div class=\"gauges\">",
                escape(t(lang, "overview.quotas"))
            );
            let limited: Vec<_> = o.quotas.iter().filter(|l| l.limit.is_some()).collect();
            if limited.is_empty() {
                let _ = write!(
                    main,
                    "<p class=\"empty\">{}</p>",
                    escape(t(lang, "overview.no_quotas"))
                );
            }
            for line in limited {
                let label = format!(
                    "{} {}",
                    t(lang, quota_key(line.quota)),
                    t(lang, window_key(line.window))
                );
                gauge(&mut main, &label, line.used, line.limit.unwrap_or(0), lang);
            }
            main.push_str("</div></section>");
            bill(&mut main, lang, o);
        }
    }
    page(
        lang,
        "overview.title",
        Some(viewer),
        Nav::Overview,
        "/dashboard/overview",
        &main,
    )
}

fn bill(out: &mut String, lang: Lang, o: &Overview) {
    let b = &o.bill;
    let _ = write!(
        out,
        "<section aria-labelledby=\"bill-title\"><h2 id=\"bill-title\">{title}</h2><div class=\"table\"><table>\
         <thead><tr><th scope=\"col\">{item}</th><th scope=\"col\">{used}</th><th scope=\"col\">{inc}</th>\
         <th scope=\"col\">{over}</th><th scope=\"col\">{amount}</th></tr></thead><tbody>\
         <tr><td>{plan}</td><td></td><td></td><td></td><td>{price}</td></tr>",
        title = escape(t(lang, "bill.title")),
        item = escape(t(lang, "bill.item")),
        used = escape(t(lang, "bill.used")),
        inc = escape(t(lang, "bill.included")),
        over = escape(t(lang, "bill.over")),
        amount = escape(t(lang, "bill.amount")),
        plan = escape(&tf(lang, "bill.plan", &[("plan", &b.plan)])),
        price = money(lang, b.price_cents),
    );
    for line in &b.lines {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(t(lang, quota_key(line.quota))),
            number(lang, line.used),
            line.included.map(|n| number(lang, n)).unwrap_or_default(),
            number(lang, line.over),
            money(lang, line.amount_cents),
        );
    }
    let _ = write!(
        out,
        "</tbody><tfoot><tr><th scope=\"row\">{}</th><td></td><td></td><td></td><td>{}</td></tr></tfoot>\
         </table></div></section>",
        escape(t(lang, "bill.total")),
        money(lang, b.total_cents)
    );
}

/// `GET /dashboard/overview[?period=24h|7d|30d]`.
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<OverviewQuery>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let Some(viewer) = super::auth::viewer(&state, &headers).await else {
        return Redirect::to("/dashboard/login").into_response();
    };
    let period = query
        .period
        .as_deref()
        .and_then(Period::parse)
        .unwrap_or(Period::Day);
    match load(&state, &viewer, period).await {
        Ok(view) => Html(render(lang, &viewer, &view)).into_response(),
        Err(err) => {
            tracing::error!("dashboard overview: {err}");
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

async fn load(state: &AppState, viewer: &Viewer, period: Period) -> Result<View, String> {
    let instances = super::instances::visible_instances(state, viewer)
        .await
        .map_err(|()| "listing instances".to_owned())?;
    let counts = InstanceCounts {
        total: instances.len() as u64,
        connected: instances
            .iter()
            .filter(|i| i.connection_status == "open")
            .count() as u64,
    };
    let (Some(tenancy), Some(tenant_id)) = (&state.tenancy, viewer.tenant_id()) else {
        let tenants = match &state.tenancy {
            Some(t) => Some(
                t.directory
                    .tenants()
                    .await
                    .map_err(|e| e.to_string())?
                    .len(),
            ),
            None => None,
        };
        return Ok(View {
            instances: counts,
            overview: None,
            buckets: Vec::new(),
            period,
            tenants,
        });
    };
    let (_, plan) = tenancy
        .directory
        .tenant_with_plan(tenant_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the viewer's tenant is gone")?;
    let names: Vec<String> = instances.iter().map(|i| i.name.clone()).collect();
    let overview = tenancy
        .analytics
        .overview(tenant_id, &plan, counts, &names)
        .await
        .map_err(|e| e.to_string())?;
    let series = tenancy
        .analytics
        .tenant_series(tenant_id, period)
        .await
        .map_err(|e| e.to_string())?;
    Ok(View {
        instances: counts,
        overview: Some(overview),
        buckets: buckets(&series, period),
        period,
        tenants: None,
    })
}
