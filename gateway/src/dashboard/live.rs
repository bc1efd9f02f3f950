//! `GET /dashboard/events`: Server-Sent Events pushing what the engine does to the instances the
//! viewer may see, the moment the bridge has stored it: `qr` (a new code, its SVG and seconds
//! left), `pairing` (the 8-character code), `qrlimit`, and `state` (badge, phone, profile name).
//! Nothing is polled: the stream waits on the engine's broadcast. A watcher that falls behind
//! gets `reload`.

use std::convert::Infallible;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use super::auth::Viewer;
use super::i18n::{Lang, t};
use super::instances::{phone_of, seconds_left};
use super::qr_svg::qr_svg;
use crate::http::AppState;
use crate::runtime::{LiveChange, LiveUpdate};

pub async fn events(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(viewer) = super::auth::viewer(&state, &headers).await else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let lang = Lang::from_headers(&headers);
    let updates = state.engine.as_ref().map(|e| e.watch());
    Sse::new(stream_of(state, viewer, lang, updates))
        .keep_alive(KeepAlive::default())
        .into_response()
}

type Receiver = tokio::sync::broadcast::Receiver<LiveUpdate>;

fn stream_of(
    state: AppState,
    viewer: Viewer,
    lang: Lang,
    updates: Option<Receiver>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(
        (state, viewer, updates),
        move |(state, viewer, updates)| async move {
            // Without an engine nothing ever changes: the stream stays open and silent.
            let mut rx = match updates {
                Some(rx) => rx,
                None => std::future::pending().await,
            };
            loop {
                if viewer.session.expires_at <= zapin_tenancy::sql::now_ms() {
                    return None;
                }
                match rx.recv().await {
                    Ok(update) => {
                        if super::may_see(
                            &state,
                            &viewer,
                            &update.instance_name,
                            &update.instance_id,
                        )
                        .await
                        {
                            let event = to_event(&update, lang);
                            return Some((Ok(event), (state, viewer, Some(rx))));
                        }
                    }
                    Err(RecvError::Lagged(_)) => {
                        let event = Event::default().event("reload").data("{}");
                        return Some((Ok(event), (state, viewer, Some(rx))));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        },
    )
}

/// The SSE event of one update (public for tests).
pub fn to_event(update: &LiveUpdate, lang: Lang) -> Event {
    let (name, data) = event_data(update, lang);
    Event::default().event(name).data(data.to_string())
}

pub fn event_data(update: &LiveUpdate, lang: Lang) -> (&'static str, serde_json::Value) {
    let name = &update.instance_name;
    match &update.what {
        LiveChange::Qr { code, expires_at } => (
            "qr",
            json!({
                "name": name,
                "code": code,
                "svg": qr_svg(code, t(lang, "instances.qr_alt")),
                "expiresIn": seconds_left(*expires_at),
            }),
        ),
        LiveChange::PairingCode(code) => ("pairing", json!({"name": name, "code": code})),
        LiveChange::QrLimit => ("qrlimit", json!({"name": name})),
        LiveChange::State => (
            "state",
            json!({
                "name": name,
                "status": update.status,
                "phone": update.owner_jid.as_deref().map(phone_of),
                "profile": update.profile_name,
            }),
        ),
    }
}
