//! Input refused at the door: what cannot work or is dangerous, answered in Evolution's 400
//! envelope before anything is stored. These are deliberate differences from Evolution, which
//! accepts all of it (the README lists them).
//!
//! * Instance names: not empty, at most [`MAX_INSTANCE_NAME`] characters, no `/` (no route
//!   could address it), no control characters, not `.` or `..` (URL normalization eats them).
//! * Webhook URLs: `http` or `https` with a host (`file:///etc/passwd` is refused).
//!   [`is_private_target`] recognizes loopback, private, link-local and unspecified literal
//!   addresses and `localhost`, for a deployment policy that refuses them.

use std::net::IpAddr;

use zapin_compat_evolution::ErrorEnvelope;

use super::ApiError;

/// The longest instance name, in characters.
pub const MAX_INSTANCE_NAME: usize = 100;

/// Refuses instance names no route can address or that would corrupt listings and logs.
pub fn check_instance_name(name: &str) -> Result<(), ApiError> {
    let why = if name.is_empty() {
        Some("instanceName must not be empty".to_owned())
    } else if name.chars().count() > MAX_INSTANCE_NAME {
        Some(format!(
            "instanceName must be at most {MAX_INSTANCE_NAME} characters"
        ))
    } else if name.contains('/') {
        Some("instanceName must not contain '/'".to_owned())
    } else if name.chars().any(char::is_control) {
        Some("instanceName must not contain control characters".to_owned())
    } else if name == "." || name == ".." {
        Some("instanceName must not be '.' or '..'".to_owned())
    } else {
        None
    };
    match why {
        Some(message) => Err(ErrorEnvelope::bad_request([message]).into()),
        None => Ok(()),
    }
}

/// Whether a URL's host is a loopback, private, link-local or unspecified literal address,
/// or `localhost` (names are not resolved here).
pub fn is_private_target(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return true;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(ip) => is_private_ip(ip),
        Err(_) => {
            let name = host.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
    }
}

/// Whether `ip` is loopback, private, link-local, unspecified or otherwise not a public
/// address (media URL fetches check resolved addresses with it).
pub fn is_private_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                // 100.64.0.0/10, carrier-grade NAT: not reachable from outside either.
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (v6.segments()[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || v6.to_ipv4_mapped().is_some_and(|v4| is_private_ip(IpAddr::V4(v4)))
        }
    }
}

/// Refuses webhook (and later bot and transport) URLs that are not http(s) with a host, and,
/// unless `allow_private`, those aimed at private targets.
pub fn check_target_url(field: &str, url: &str, allow_private: bool) -> Result<(), ApiError> {
    let parsed = reqwest::Url::parse(url).map_err(|_| {
        ApiError::from(ErrorEnvelope::bad_request([format!(
            "{field} must be a URL"
        )]))
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(ErrorEnvelope::bad_request([format!(
            "{field} must be an http or https URL with a host"
        )])
        .into());
    }
    if !allow_private && is_private_target(&parsed) {
        return Err(ErrorEnvelope::bad_request([format!(
            "{field} must not point to a loopback, private or link-local address (set ZAPIN_ALLOW_PRIVATE_URLS=true to allow)"
        )])
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_names() {
        for ok in [
            "a",
            "acme-1",
            "Ünïcode name",
            &"x".repeat(MAX_INSTANCE_NAME),
            "a.b",
            "...",
        ] {
            assert!(check_instance_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "../etc",
            "a/b",
            "/",
            "a\nb",
            "tab\t",
            "\u{7f}",
            ".",
            "..",
            &"x".repeat(MAX_INSTANCE_NAME + 1),
            &"x".repeat(10_000),
        ] {
            assert!(check_instance_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn target_urls() {
        for ok in [
            "http://example.com/hook",
            "https://hooks.example.org:8443/x?y=1",
            "http://8.8.8.8/",
        ] {
            assert!(check_target_url("url", ok, false).is_ok(), "{ok}");
        }
        for bad in [
            "file:///etc/passwd",
            "ftp://example.com/",
            "gopher://x",
            "not a url",
            "http://",
            "javascript:alert(1)",
        ] {
            assert!(check_target_url("url", bad, true).is_err(), "{bad}");
        }
        for private in [
            "http://127.0.0.1:8080/",
            "http://localhost/",
            "http://api.localhost./",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://0.0.0.0/",
            "http://100.64.0.1/",
            "http://[::1]/",
            "http://[fe80::1]/",
            "http://[fd00::1]/",
            "http://[::ffff:127.0.0.1]/",
        ] {
            assert!(
                check_target_url("url", private, false).is_err(),
                "{private}"
            );
            assert!(check_target_url("url", private, true).is_ok(), "{private}");
        }
    }
}
