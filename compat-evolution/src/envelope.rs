//! The event envelope every transport builds (§5.2).

use serde::Serialize;

use crate::events::EventName;

/// A webhook POST body. Field order is the wire order:
/// `event, instance, data, destination, date_time, sender, server_url, apikey`.
///
/// Serialise the struct directly (not through `serde_json::Value`, whose map is sorted) to keep
/// that order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebhookEnvelope<'a, T: Serialize> {
    pub event: EventName,
    pub instance: &'a str,
    pub data: T,
    /// The instance webhook URL without the byEvents suffix, or
    /// `WEBHOOK_GLOBAL_URL + "/" + suffix` for the global webhook.
    pub destination: &'a str,
    pub date_time: String,
    /// The instance's own JID; omitted until it is known (Evolution: until the first `open`
    /// in the process; zapin also knows a JID stored before a restart).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender: Option<&'a str>,
    pub server_url: &'a str,
    /// See [`envelope_apikey`]; `null` when not exposed.
    pub apikey: Option<&'a str>,
}

/// What the envelope's `apikey` carries: the instance token when
/// `AUTHENTICATION_EXPOSE_IN_FETCH_INSTANCES=true` (the literal `"Apikey not found"` if the token
/// is empty), else null.
pub fn envelope_apikey(expose: bool, token: &str) -> Option<&str> {
    match (expose, token.is_empty()) {
        (false, _) => None,
        (true, true) => Some("Apikey not found"),
        (true, false) => Some(token),
    }
}

/// `date_time`: `new Date(now - tzOffset).toISOString()`, i.e. the server's local wall-clock time
/// with a `Z` suffix (§5.2, §11 #9). With a UTC server (`utc_offset_minutes = 0`) it is true UTC.
/// Format: `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format_date_time(unix_millis: i64, utc_offset_minutes: i32) -> String {
    let local = unix_millis.saturating_add(i64::from(utc_offset_minutes) * 60_000);
    let days = local.div_euclid(86_400_000);
    let ms_of_day = local.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    let (h, m, s, ms) = (
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1000 % 60,
        ms_of_day % 1000,
    );
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z")
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // Both are in range by construction (1..=31, 1..=12).
    (year, day_u32(month), day_u32(day))
}

fn day_u32(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

/// The webhook target for one event: `url`, or `url + "/" + suffix` when `byEvents` is on.
pub fn webhook_target(url: &str, by_events: bool, event: EventName) -> String {
    if by_events {
        format!("{url}/{}", event.by_events_suffix())
    } else {
        url.to_owned()
    }
}
