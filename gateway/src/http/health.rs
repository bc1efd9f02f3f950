//! Probes for orchestrators: `GET /health/live` (the process answers) and `GET /health/ready`
//! (it can do its work: the database answers and the stored sessions were restored).
//!
//! Both answer `{status, checks}`; readiness is 503 with the failing check named. Neither needs
//! a key, so neither says more than `ok` or what failed (the cause goes to the log).
//! `GET /v1/health` stays as it was (status, version, uptime).

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use super::AppState;

/// How long readiness waits for `SELECT 1` before calling the database unreachable.
const DB_PING_LIMIT: Duration = Duration::from_secs(2);

#[derive(Debug, Serialize)]
pub struct Probe {
    pub status: &'static str,
    pub checks: BTreeMap<&'static str, &'static str>,
}

pub async fn live() -> Json<Probe> {
    Json(Probe {
        status: "ok",
        checks: BTreeMap::from([("process", "ok")]),
    })
}

pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Probe>) {
    let database = match tokio::time::timeout(DB_PING_LIMIT, state.db.ping()).await {
        Ok(Ok(())) => "ok",
        Ok(Err(err)) => {
            tracing::warn!("readiness: database: {err}");
            "unreachable"
        }
        Err(_) => {
            tracing::warn!("readiness: database did not answer within {DB_PING_LIMIT:?}");
            "unreachable"
        }
    };
    // The engine is attached once every stored session was loaded (`runtime::start_with`
    // returns after `load_all`).
    let sessions = if state.engine.is_some() {
        "ok"
    } else {
        "not restored"
    };
    let ready = database == "ok" && sessions == "ok";
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Probe {
            status: if ready { "ok" } else { "unavailable" },
            checks: BTreeMap::from([("database", database), ("sessions", sessions)]),
        }),
    )
}
