//! `POST /proxy/set/{instance}` (proxySchema).

use serde_json::Value;

use super::{get_bool, get_str, run_schema};
use crate::error::ErrorEnvelope;
use crate::schema::{Rules, Ty};

/// The protocols Evolution accepts.
pub const PROXY_PROTOCOLS: [&str; 4] = ["http", "https", "socks4", "socks5"];

/// A validated proxy/set body. With `enabled: false` every other field is blanked, as Evolution
/// stores it.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxySet {
    pub enabled: bool,
    pub host: String,
    /// As sent (a string, as in Evolution's schema); see [`ProxySet::port_number`].
    pub port: String,
    pub protocol: String,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for ProxySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxySet")
            .field("enabled", &self.enabled)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("protocol", &self.protocol)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl ProxySet {
    /// The port as a TCP port (1–65535), when it is one.
    pub fn port_number(&self) -> Option<u16> {
        self.port.trim().parse::<u16>().ok().filter(|p| *p > 0)
    }
}

/// Validates a proxy/set body: **enabled** (boolean), **host**, **port** (string) and
/// **protocol** (http, https, socks4, socks5) required and non-empty; `username`, `password`
/// strings.
pub fn validate_proxy_set(body: &Value) -> Result<ProxySet, ErrorEnvelope> {
    run_schema(body, |c| {
        c.prop("enabled", Ty::Boolean, Rules::BOOL_ENUM);
        c.prop("host", Ty::String, Rules::NONE);
        c.prop("port", Ty::String, Rules::NONE);
        c.prop(
            "protocol",
            Ty::String,
            Rules {
                enum_values: Some(&PROXY_PROTOCOLS),
                ..Rules::NONE
            },
        );
        c.prop("username", Ty::String, Rules::NONE);
        c.prop("password", Ty::String, Rules::NONE);
        c.required(&["enabled", "host", "port", "protocol"]);
        c.not_empty(&["enabled", "host", "port", "protocol"]);
    })?;
    let enabled = get_bool(body, "enabled").unwrap_or(false);
    if !enabled {
        return Ok(ProxySet {
            enabled,
            host: String::new(),
            port: String::new(),
            protocol: String::new(),
            username: String::new(),
            password: String::new(),
        });
    }
    Ok(ProxySet {
        enabled,
        host: get_str(body, "host").unwrap_or_default(),
        port: get_str(body, "port").unwrap_or_default(),
        protocol: get_str(body, "protocol").unwrap_or_default(),
        username: get_str(body, "username").unwrap_or_default(),
        password: get_str(body, "password").unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    #[test]
    fn proxy_bodies() {
        let p = validate_proxy_set(
            &json!({"enabled": true, "host": "127.0.0.1", "port": "1080",
            "protocol": "socks5", "username": "u", "password": "secret"}),
        )
        .unwrap();
        assert_eq!(p.port_number(), Some(1080));
        assert!(!format!("{p:?}").contains("secret"));
        let off = validate_proxy_set(
            &json!({"enabled": false, "host": "h", "port": "1", "protocol": "http", "password": "x"}),
        )
        .unwrap();
        assert_eq!((off.host.as_str(), off.password.as_str()), ("", ""));
        let e = validate_proxy_set(&json!({"enabled": true, "host": "h", "port": 8080,
            "protocol": "ftp"}))
        .unwrap_err();
        let m = serde_json::to_value(&e).unwrap()["response"]["message"].clone();
        assert_eq!(m[0][0], "port is not of a type(s) string");
        assert_eq!(
            m[0][1],
            "protocol is not one of enum values: http,https,socks4,socks5"
        );
        assert!(validate_proxy_set(&json!({"enabled": true})).is_err());
        let bad_port = validate_proxy_set(
            &json!({"enabled": true, "host": "h", "port": "99999", "protocol": "http"}),
        )
        .unwrap();
        assert_eq!(bad_port.port_number(), None);
    }
}
