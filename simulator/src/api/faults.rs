//! `/sim/faults`.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, ApiJson, AppState};
use crate::addr::DeviceAddr;
use crate::conn::{ConnCommand, ConnId};

const MAX_REFUSE_SECONDS: u64 = 24 * 3600;
const MAX_LATENCY_MS: u64 = 600_000;
const STREAM_ERROR_CODES: [&str; 4] = ["515", "503", "440", "500"];

#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Fault {
    DisconnectAll,
    StreamError {
        code: String,
        device: Option<String>,
    },
    Refuse {
        seconds: u64,
    },
    Latency {
        ms: u64,
    },
    DropAcks {
        on: bool,
    },
    /// Corrupts the ciphertexts of the next `<message>` delivered to one device, so it cannot
    /// be decrypted there (exercises retry receipts).
    CorruptNextMessage {
        device: String,
    },
}

pub async fn set(
    State(app): State<AppState>,
    ApiJson(fault): ApiJson<Fault>,
) -> Result<impl IntoResponse, ApiError> {
    let sim = &app.sim;
    match fault {
        Fault::DisconnectAll => {
            tracing::info!("fault: disconnect_all");
            sim.connections().disconnect_all();
        }
        Fault::StreamError { code, device } => {
            if !STREAM_ERROR_CODES.contains(&code.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "code must be one of {STREAM_ERROR_CODES:?}"
                )));
            }
            let targets: Vec<ConnId> = match device {
                None => sim.connections().all(),
                Some(d) => {
                    let addr =
                        DeviceAddr::parse(&d).map_err(|e| ApiError::bad_request(e.to_string()))?;
                    let phone = if addr.lid {
                        sim.state()
                            .resolve_user(&crate::addr::ChatAddr::Lid(addr.user.clone()))
                    } else {
                        Some(addr.user.clone())
                    };
                    let conn = phone
                        .and_then(|p| sim.connections().connection_of(&p, addr.device))
                        .ok_or_else(|| {
                            ApiError::not_found(format!("device {d} is not connected"))
                        })?;
                    vec![conn]
                }
            };
            tracing::info!(
                "fault: stream_error {code} to {} connection(s)",
                targets.len()
            );
            for conn in targets {
                let cmd = if code == "440" {
                    ConnCommand::Replaced
                } else {
                    ConnCommand::StreamError {
                        code: code.parse().unwrap_or(500),
                    }
                };
                let _ = sim.connections().send(conn, cmd);
            }
        }
        Fault::Refuse { seconds } => {
            if seconds > MAX_REFUSE_SECONDS {
                return Err(ApiError::bad_request(format!(
                    "seconds must be at most {MAX_REFUSE_SECONDS}"
                )));
            }
            tracing::info!("fault: refuse new connections for {seconds} s");
            sim.faults().refuse_for(Duration::from_secs(seconds));
        }
        Fault::Latency { ms } => {
            if ms > MAX_LATENCY_MS {
                return Err(ApiError::bad_request(format!(
                    "ms must be at most {MAX_LATENCY_MS}"
                )));
            }
            tracing::info!("fault: latency {ms} ms");
            sim.faults().set_latency(ms);
        }
        Fault::CorruptNextMessage { device } => {
            let addr =
                DeviceAddr::parse(&device).map_err(|e| ApiError::bad_request(e.to_string()))?;
            let phone = if addr.lid {
                sim.state()
                    .resolve_user(&crate::addr::ChatAddr::Lid(addr.user.clone()))
                    .ok_or_else(|| ApiError::not_found(format!("no account for {device}")))?
            } else {
                addr.user.clone()
            };
            tracing::info!("fault: corrupt the next message to {phone}:{}", addr.device);
            sim.faults().corrupt_next_message(phone, addr.device);
        }
        Fault::DropAcks { on } => {
            tracing::info!("fault: drop_acks {on}");
            sim.faults().set_drop_acks(on);
        }
    }
    Ok(Json(json!({})))
}

pub async fn clear(State(app): State<AppState>) -> impl IntoResponse {
    tracing::info!("faults cleared");
    app.sim.faults().clear();
    Json(json!({}))
}
