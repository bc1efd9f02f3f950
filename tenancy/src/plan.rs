//! Plans: what a tenant may use (quotas per type and window), what it pays, and how fast its
//! instances may send.
//!
//! A plan document, as the admin API and the CLI take it:
//!
//! ```json
//! {"name":"starter",
//!  "quotas":{"message_send":{"day":100},"api_call":{"minute":60,"month":100000},
//!            "instance_create":{"total":2},"bot_create":{"total":1}},
//!  "price_cents":1900,"overage_cents":{"message_send":2},
//!  "pacing":{"per_minute":20,"chat_gap_ms":{"min":1000,"max":4000},
//!            "warmup":[{"until_day":1,"per_hour":30},{"until_day":7,"per_hour":120}]}}
//! ```
//!
//! Windows are calendar windows in UTC (`minute`, `hour`, `day`, `month`) or `total`, the number
//! of resources held at once (instances, bots). A quota type without an entry is unlimited.
//!
//! Overage: a type with an `overage_cents` price is metered. Its `month` limit, if any, is the
//! amount included in the plan price rather than a cap: requests past it are accepted and each
//! unit over it is billed at that price (without a `month` limit nothing is included and every
//! unit is billed). All other windows, and every window of an unpriced type, are hard caps
//! answered with 429.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::time::{month_start, next_month_start};

/// What a request consumes. The names are the plan document's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaType {
    MessageSend,
    ApiCall,
    InstanceCreate,
    InstanceDelete,
    BotCreate,
}

impl QuotaType {
    pub const ALL: [QuotaType; 5] = [
        QuotaType::MessageSend,
        QuotaType::ApiCall,
        QuotaType::InstanceCreate,
        QuotaType::InstanceDelete,
        QuotaType::BotCreate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            QuotaType::MessageSend => "message_send",
            QuotaType::ApiCall => "api_call",
            QuotaType::InstanceCreate => "instance_create",
            QuotaType::InstanceDelete => "instance_delete",
            QuotaType::BotCreate => "bot_create",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|q| q.as_str() == text)
    }
}

impl std::fmt::Display for QuotaType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A counting window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    Minute,
    Hour,
    Day,
    Month,
    /// Resources held at once: charged on create, released on delete, never reset by time.
    Total,
}

impl Window {
    pub const ALL: [Window; 5] = [
        Window::Minute,
        Window::Hour,
        Window::Day,
        Window::Month,
        Window::Total,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Window::Minute => "minute",
            Window::Hour => "hour",
            Window::Day => "day",
            Window::Month => "month",
            Window::Total => "total",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|w| w.as_str() == text)
    }

    /// Unix seconds at which the window containing `secs` starts (`0` for `total`).
    pub fn start(self, secs: i64) -> i64 {
        match self {
            Window::Minute => secs - secs.rem_euclid(60),
            Window::Hour => secs - secs.rem_euclid(3600),
            Window::Day => secs - secs.rem_euclid(86_400),
            Window::Month => month_start(secs),
            Window::Total => 0,
        }
    }

    /// Unix seconds at which the window starting at `start` ends: when its counter resets.
    /// `None` for `total`, which never resets.
    pub fn end(self, start: i64) -> Option<i64> {
        match self {
            Window::Minute => Some(start + 60),
            Window::Hour => Some(start + 3600),
            Window::Day => Some(start + 86_400),
            Window::Month => Some(next_month_start(start)),
            Window::Total => None,
        }
    }
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The limits of one quota type, by window.
pub type Limits = BTreeMap<Window, u64>;

/// Anti-ban send pacing. Every field is optional so that a per-instance override can name only
/// what it changes (see [`Pacing::overlaid`]); a missing field means "no such constraint".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pacing {
    /// The most messages one instance sends in any 60 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_minute: Option<u32>,
    /// A random gap, drawn uniformly from `min..=max` ms, before a send to a chat other than the
    /// previous send's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_gap_ms: Option<GapRange>,
    /// Fewer sends per hour while the instance is young, by age in days (ascending).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<Vec<WarmupStage>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GapRange {
    pub min: u64,
    pub max: u64,
}

/// While the instance is younger than `until_day` days, at most `per_hour` sends in any hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarmupStage {
    pub until_day: u32,
    pub per_hour: u32,
}

/// Longest chat gap accepted: a larger one would stall an instance's queue for no purpose.
pub const MAX_CHAT_GAP_MS: u64 = 10 * 60 * 1000;

impl Pacing {
    /// `self` with every field `over` sets replaced.
    pub fn overlaid(&self, over: &Pacing) -> Pacing {
        Pacing {
            per_minute: over.per_minute.or(self.per_minute),
            chat_gap_ms: over.chat_gap_ms.or(self.chat_gap_ms),
            warmup: over.warmup.clone().or_else(|| self.warmup.clone()),
        }
    }

    /// Whether nothing constrains sending.
    pub fn is_unpaced(&self) -> bool {
        self.per_minute.is_none()
            && self.chat_gap_ms.is_none()
            && self.warmup.as_ref().is_none_or(Vec::is_empty)
    }

    pub fn validate(&self) -> Result<(), PlanError> {
        if self.per_minute == Some(0) {
            return Err(PlanError::invalid("pacing.per_minute must be at least 1"));
        }
        if let Some(gap) = self.chat_gap_ms {
            if gap.min > gap.max {
                return Err(PlanError::invalid(
                    "pacing.chat_gap_ms.min must not exceed pacing.chat_gap_ms.max",
                ));
            }
            if gap.max > MAX_CHAT_GAP_MS {
                return Err(PlanError::invalid(format!(
                    "pacing.chat_gap_ms.max must be at most {MAX_CHAT_GAP_MS}"
                )));
            }
        }
        if let Some(stages) = &self.warmup {
            let mut last = 0;
            for stage in stages {
                if stage.until_day <= last {
                    return Err(PlanError::invalid(
                        "pacing.warmup stages need until_day ascending and above 0",
                    ));
                }
                if stage.per_hour == 0 {
                    return Err(PlanError::invalid(
                        "pacing.warmup per_hour must be at least 1",
                    ));
                }
                last = stage.until_day;
            }
        }
        Ok(())
    }

    /// Parses and validates a pacing document (a per-instance override).
    pub fn from_json(bytes: &[u8]) -> Result<Self, PlanError> {
        let pacing: Pacing =
            serde_json::from_slice(bytes).map_err(|e| PlanError::invalid(e.to_string()))?;
        pacing.validate()?;
        Ok(pacing)
    }
}

/// Everything about a plan except its name: the body of `PUT /admin/plans/{name}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanSpec {
    #[serde(default)]
    pub quotas: BTreeMap<QuotaType, Limits>,
    #[serde(default)]
    pub price_cents: u64,
    #[serde(default)]
    pub overage_cents: BTreeMap<QuotaType, u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pacing: Option<Pacing>,
}

/// A named plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub name: String,
    #[serde(flatten)]
    pub spec: PlanSpec,
}

/// The longest plan name.
pub const MAX_PLAN_NAME: usize = 64;

/// A plan document that cannot be used, with a message fit for a 400 answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PlanError(pub String);

impl PlanError {
    fn invalid(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

/// Whether `name` is usable as a plan (or tenant) name: 1 to 64 of `a-z A-Z 0-9 _ - .`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_PLAN_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

impl PlanSpec {
    pub fn validate(&self) -> Result<(), PlanError> {
        if let Some(pacing) = &self.pacing {
            pacing.validate()?;
        }
        Ok(())
    }

    /// Parses and validates a spec; a `name` field, if present, is returned beside it.
    pub fn from_json(bytes: &[u8]) -> Result<(Option<String>, Self), PlanError> {
        let mut doc: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| PlanError::invalid(e.to_string()))?;
        let Some(obj) = doc.as_object_mut() else {
            return Err(PlanError::invalid("a plan is a JSON object"));
        };
        let name = match obj.remove("name") {
            None => None,
            Some(serde_json::Value::String(s)) => Some(s),
            Some(_) => return Err(PlanError::invalid("name must be a string")),
        };
        let spec: PlanSpec =
            serde_json::from_value(doc).map_err(|e| PlanError::invalid(e.to_string()))?;
        spec.validate()?;
        Ok((name, spec))
    }

    /// The limits of `quota` (empty: unlimited).
    pub fn limits(&self, quota: QuotaType) -> Option<&Limits> {
        self.quotas.get(&quota)
    }

    /// Whether `window` of `quota` refuses requests past its limit (see the module doc).
    pub fn is_hard(&self, quota: QuotaType, window: Window) -> bool {
        !(window == Window::Month && self.overage_cents.contains_key(&quota))
    }
}

impl Plan {
    /// Parses and validates a full plan document (`POST /admin/plans`).
    pub fn from_json(bytes: &[u8]) -> Result<Self, PlanError> {
        let (name, spec) = PlanSpec::from_json(bytes)?;
        let Some(name) = name else {
            return Err(PlanError::invalid("name is required"));
        };
        if !valid_name(&name) {
            return Err(PlanError::invalid(format!(
                "name must be 1 to {MAX_PLAN_NAME} letters, digits, '_', '-' or '.'"
            )));
        }
        Ok(Self { name, spec })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STARTER: &str = r#"{"name":"starter","quotas":{"message_send":{"day":100},"api_call":{"minute":60,"month":100000},"instance_create":{"total":2},"bot_create":{"total":1}},"price_cents":1900,"overage_cents":{"message_send":2}}"#;

    #[test]
    fn the_issue_example_parses() {
        let plan = Plan::from_json(STARTER.as_bytes()).unwrap();
        assert_eq!(plan.name, "starter");
        assert_eq!(plan.spec.price_cents, 1900);
        assert_eq!(
            plan.spec.limits(QuotaType::MessageSend).unwrap()[&Window::Day],
            100
        );
        assert_eq!(
            plan.spec.limits(QuotaType::ApiCall).unwrap()[&Window::Minute],
            60
        );
        assert!(plan.spec.limits(QuotaType::InstanceDelete).is_none());
        assert_eq!(plan.spec.overage_cents[&QuotaType::MessageSend], 2);
        assert!(plan.spec.is_hard(QuotaType::MessageSend, Window::Day));
        assert!(!plan.spec.is_hard(QuotaType::MessageSend, Window::Month));
        assert!(plan.spec.is_hard(QuotaType::ApiCall, Window::Month));
        // Round trip through the stored form.
        let stored = serde_json::to_string(&plan).unwrap();
        assert_eq!(Plan::from_json(stored.as_bytes()).unwrap(), plan);
    }

    #[test]
    fn bad_documents_are_refused_with_a_reason() {
        for (doc, needle) in [
            (r#"{"quotas":{}}"#, "name is required"),
            (r#"{"name":""}"#, "name must be"),
            (r#"{"name":"a/b"}"#, "name must be"),
            (r#"{"name":7}"#, "name must be a string"),
            (r#"[]"#, "JSON object"),
            (
                r#"{"name":"p","quotas":{"sms":{"day":1}}}"#,
                "unknown variant",
            ),
            (
                r#"{"name":"p","quotas":{"api_call":{"week":1}}}"#,
                "unknown variant",
            ),
            (
                r#"{"name":"p","quotas":{"api_call":{"day":-1}}}"#,
                "invalid value",
            ),
            (r#"{"name":"p","price_cents":"10"}"#, "invalid type"),
            (r#"{"name":"p","extra":1}"#, "unknown field"),
            (r#"{"name":"p","pacing":{"per_minute":0}}"#, "per_minute"),
            (
                r#"{"name":"p","pacing":{"chat_gap_ms":{"min":5,"max":1}}}"#,
                "must not exceed",
            ),
            (
                r#"{"name":"p","pacing":{"chat_gap_ms":{"min":5,"max":99999999}}}"#,
                "at most",
            ),
            (
                r#"{"name":"p","pacing":{"warmup":[{"until_day":3,"per_hour":5},{"until_day":2,"per_hour":9}]}}"#,
                "ascending",
            ),
            (
                r#"{"name":"p","pacing":{"warmup":[{"until_day":3,"per_hour":0}]}}"#,
                "per_hour",
            ),
            ("{", "EOF"),
        ] {
            let err = Plan::from_json(doc.as_bytes()).unwrap_err();
            assert!(err.0.contains(needle), "{doc}: {err}");
        }
    }

    #[test]
    fn windows_are_utc_calendar_windows() {
        // 2026-12-06T23:59:30Z
        let t = crate::time::days_from_civil(2026, 12, 6) * 86_400 + 86_370;
        let fmt = crate::time::rfc3339;
        assert_eq!(fmt(Window::Minute.start(t)), "2026-12-06T23:59:00Z");
        assert_eq!(fmt(Window::Hour.start(t)), "2026-12-06T23:00:00Z");
        assert_eq!(fmt(Window::Day.start(t)), "2026-12-06T00:00:00Z");
        assert_eq!(
            fmt(Window::Day.end(Window::Day.start(t)).unwrap()),
            "2026-12-07T00:00:00Z"
        );
        assert_eq!(
            fmt(Window::Month.end(Window::Month.start(t)).unwrap()),
            "2027-01-01T00:00:00Z"
        );
        assert_eq!(Window::Total.start(t), 0);
        assert_eq!(Window::Total.end(0), None);
        for w in Window::ALL {
            assert_eq!(Window::parse(w.as_str()), Some(w));
        }
        for q in QuotaType::ALL {
            assert_eq!(QuotaType::parse(q.as_str()), Some(q));
        }
    }

    #[test]
    fn pacing_override_replaces_only_what_it_names() {
        let base = Pacing {
            per_minute: Some(20),
            chat_gap_ms: Some(GapRange { min: 1, max: 2 }),
            warmup: Some(vec![WarmupStage {
                until_day: 3,
                per_hour: 10,
            }]),
        };
        let over = Pacing::from_json(br#"{"per_minute":5}"#).unwrap();
        let merged = base.overlaid(&over);
        assert_eq!(merged.per_minute, Some(5));
        assert_eq!(merged.chat_gap_ms, base.chat_gap_ms);
        assert_eq!(merged.warmup, base.warmup);
        assert!(Pacing::default().is_unpaced());
        assert!(!merged.is_unpaced());
    }
}
