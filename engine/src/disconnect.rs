//! What a session does after the server ends its connection.
//!
//! WhatsApp ends a connection with `<stream:error>` or, instead of `<success>`, with `<failure>`
//! (wa-protocol.md §10). The three public clients disagree on several codes; zapin's policy is the
//! one a gateway operator wants: never fight another connection of the same device, never retry
//! with credentials the server has revoked, and never spin on a permanent error.

/// Why a connection ended, as far as the session's next step is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisconnectReason {
    /// `515`: expected after pairing and during server maintenance.
    RestartRequired,
    /// The device was unlinked or its credentials revoked (401, 403, 406, 516, `device_removed`).
    LoggedOut { code: u16 },
    /// Another connection of the same device took over (440 / `conflict type=replaced`, 409).
    Replaced,
    /// Rate limited (429).
    RateLimited,
    /// Server-side trouble or a lost socket: worth retrying with backoff (5xx, 408, socket loss).
    Transient { code: Option<u16> },
    /// The server says this client cannot work as it is (400, 402 ban, 405 outdated, 409 user agent,
    /// 415/418, 501): retrying would only repeat it.
    Permanent { code: u16 },
}

/// The session's next step after a disconnect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    ReconnectNow,
    ReconnectWithBackoff,
    /// Stop and clear credentials: the device must be paired again.
    LogOut,
    /// Stop, keep credentials: an operator (or the other connection) decides what happens next.
    Stop,
}

impl DisconnectReason {
    /// Classifies a `<stream:error>` by its `code` attribute and, when present, the `type` of its
    /// `<conflict>` child.
    pub fn from_stream_error(code: Option<u16>, conflict: Option<&str>) -> Self {
        match (code, conflict) {
            (_, Some("device_removed")) => Self::LoggedOut {
                code: code.unwrap_or(401),
            },
            (_, Some("replaced")) | (Some(440 | 409), _) => Self::Replaced,
            (Some(515), _) => Self::RestartRequired,
            (Some(c @ (401 | 403 | 406 | 516)), _) => Self::LoggedOut { code: c },
            (Some(429), _) => Self::RateLimited,
            (_, Some(_)) => Self::Replaced,
            (code, None) => Self::Transient { code },
        }
    }

    /// Classifies a `<failure reason=…>` received instead of `<success>`.
    pub fn from_failure(reason: u16) -> Self {
        match reason {
            401 | 403 | 406 | 516 => Self::LoggedOut { code: reason },
            429 => Self::RateLimited,
            500..=599 | 408 => Self::Transient { code: Some(reason) },
            other => Self::Permanent { code: other },
        }
    }

    pub fn next_step(&self) -> NextStep {
        match self {
            Self::RestartRequired => NextStep::ReconnectNow,
            Self::LoggedOut { .. } => NextStep::LogOut,
            Self::Replaced | Self::Permanent { .. } => NextStep::Stop,
            Self::RateLimited | Self::Transient { .. } => NextStep::ReconnectWithBackoff,
        }
    }

    /// The numeric status Evolution and Baileys report for this reason (`statusCode` in
    /// `connection.update`), so webhook consumers see familiar values.
    pub fn status_code(&self) -> u16 {
        match self {
            Self::RestartRequired => 515,
            Self::LoggedOut { code } => *code,
            Self::Replaced => 440,
            Self::RateLimited => 429,
            Self::Transient { code } => code.unwrap_or(428),
            Self::Permanent { code } => *code,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_errors_map_to_the_expected_next_step() {
        let cases: &[(Option<u16>, Option<&str>, NextStep)] = &[
            (Some(515), None, NextStep::ReconnectNow),
            (Some(503), None, NextStep::ReconnectWithBackoff),
            (Some(500), None, NextStep::ReconnectWithBackoff),
            (None, None, NextStep::ReconnectWithBackoff),
            (Some(429), None, NextStep::ReconnectWithBackoff),
            (Some(401), None, NextStep::LogOut),
            (Some(401), Some("device_removed"), NextStep::LogOut),
            (None, Some("device_removed"), NextStep::LogOut),
            (Some(516), None, NextStep::LogOut),
            (Some(440), None, NextStep::Stop),
            (None, Some("replaced"), NextStep::Stop),
            (Some(409), None, NextStep::Stop),
        ];
        for &(code, conflict, step) in cases {
            assert_eq!(
                DisconnectReason::from_stream_error(code, conflict).next_step(),
                step,
                "code {code:?} conflict {conflict:?}"
            );
        }
    }

    #[test]
    fn failures_map_to_the_expected_next_step() {
        for (reason, step) in [
            (401, NextStep::LogOut),
            (403, NextStep::LogOut),
            (406, NextStep::LogOut),
            (500, NextStep::ReconnectWithBackoff),
            (503, NextStep::ReconnectWithBackoff),
            (405, NextStep::Stop),
            (402, NextStep::Stop),
            (400, NextStep::Stop),
        ] {
            assert_eq!(
                DisconnectReason::from_failure(reason).next_step(),
                step,
                "{reason}"
            );
        }
    }

    #[test]
    fn status_codes_match_what_baileys_users_expect() {
        assert_eq!(
            DisconnectReason::from_stream_error(None, Some("replaced")).status_code(),
            440
        );
        assert_eq!(
            DisconnectReason::from_stream_error(Some(515), None).status_code(),
            515
        );
        assert_eq!(DisconnectReason::from_failure(401).status_code(), 401);
    }
}
