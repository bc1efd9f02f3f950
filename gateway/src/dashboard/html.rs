//! HTML building blocks: escaping, the page frame (navigation, language switcher, the messages
//! the script needs) and small helpers. Every visible word comes from [`super::i18n`].

use std::fmt::Write as _;

use super::auth::Viewer;
use super::i18n::{Lang, t, tf};

/// Escapes text for element content and double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes one path segment (instance names may hold spaces, `?`, `#`, …).
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `YYYY-MM-DD` (UTC) of Unix milliseconds: unambiguous in every language.
pub fn date(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `n` with the language's thousands separator (`1,234` in English, `1.234` in Indonesian and
/// Portuguese).
pub fn number(lang: Lang, n: u64) -> String {
    let sep = match lang {
        Lang::Id | Lang::Pt => '.',
        Lang::En | Lang::Pseudo => ',',
    };
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(sep);
        }
        out.push(c);
    }
    out
}

/// An amount in cents with two decimals in the language's notation (`1,234.50` or `1.234,50`).
pub fn money(lang: Lang, cents: u64) -> String {
    let decimal = match lang {
        Lang::Id | Lang::Pt => ',',
        Lang::En | Lang::Pseudo => '.',
    };
    format!("{}{decimal}{:02}", number(lang, cents / 100), cents % 100)
}

/// Which navigation entry is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Instances,
    Keys,
    Tenants,
    None,
}

/// The hidden CSRF field of a form.
pub fn csrf_field(csrf: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape(csrf)
    )
}

/// Messages the script shows (toasts, countdown, badges), as JSON for `data-msgs`.
const SCRIPT_MESSAGES: &[&str] = &[
    "status.close",
    "status.connecting",
    "status.open",
    "instances.expires_in",
    "instances.qr_waiting",
    "instances.qr_expired",
    "instances.qr_limit",
    "instances.connected",
    "instances.toast_connected",
    "instances.not_connected",
    "live.lost",
    "err.generic",
    "err.csrf",
    "err.engine",
    "keys.copied",
    "toast.dismiss",
];

fn script_messages(lang: Lang) -> String {
    let map: serde_json::Map<String, serde_json::Value> = SCRIPT_MESSAGES
        .iter()
        .map(|k| ((*k).to_owned(), serde_json::Value::from(t(lang, k))))
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// A whole page: `title_key` names it, `main` is its content (already HTML).
pub fn page(
    lang: Lang,
    title_key: &'static str,
    viewer: Option<&Viewer>,
    nav: Nav,
    self_path: &str,
    main: &str,
) -> String {
    let mut out = String::with_capacity(main.len() + 4096);
    let csrf = viewer.map(|v| v.session.csrf.as_str()).unwrap_or_default();
    let _ = write!(
        out,
        "<!doctype html><html lang=\"{lang_code}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"light dark\">\
         <meta name=\"csrf\" content=\"{csrf}\">\
         <title>{title} · {app}</title>\
         <link rel=\"stylesheet\" href=\"{css}\"><script src=\"{js}\" defer></script></head>\
         <body data-msgs=\"{msgs}\"><a class=\"skip\" href=\"#main\">{skip}</a>\
         <header class=\"top\"><span class=\"brand\">{brand}</span>",
        lang_code = lang.code(),
        csrf = escape(csrf),
        title = escape(t(lang, title_key)),
        app = escape(t(lang, "app.title")),
        css = super::assets::CSS_PATH,
        js = super::assets::JS_PATH,
        msgs = escape(&script_messages(lang)),
        skip = escape(t(lang, "app.skip")),
        brand = escape(t(lang, "app.brand")),
    );
    if let Some(viewer) = viewer {
        let _ = write!(
            out,
            "<nav aria-label=\"{}\"><ul>",
            escape(t(lang, "nav.main"))
        );
        let mut entries = vec![
            (Nav::Overview, "/dashboard/overview", "nav.overview"),
            (Nav::Instances, "/dashboard/instances", "nav.instances"),
            (Nav::Keys, "/dashboard/keys", "nav.keys"),
        ];
        if viewer.is_operator() {
            entries.push((Nav::Tenants, "/dashboard/admin/tenants", "nav.tenants"));
        }
        for (entry, href, key) in entries {
            let current = if entry == nav {
                " aria-current=\"page\""
            } else {
                ""
            };
            let _ = write!(
                out,
                "<li><a href=\"{href}\"{current}>{}</a></li>",
                escape(t(lang, key))
            );
        }
        out.push_str("</ul></nav>");
    }
    let _ = write!(
        out,
        "<div class=\"tools\"><nav class=\"langs\" aria-label=\"{}\">",
        escape(t(lang, "nav.language"))
    );
    for choice in Lang::CHOICES {
        let current = if choice == lang {
            " aria-current=\"true\""
        } else {
            ""
        };
        let _ = write!(
            out,
            "<a href=\"{}?lang={}\" hreflang=\"{}\" lang=\"{}\"{current}>{}</a>",
            escape(self_path),
            choice.param(),
            choice.code(),
            choice.code(),
            escape(choice.native_name())
        );
    }
    out.push_str("</nav>");
    if let Some(viewer) = viewer {
        let who = match viewer.email() {
            Some(email) => email.to_owned(),
            None => t(lang, "nav.operator").to_owned(),
        };
        let _ = write!(
            out,
            "<span class=\"who\">{}</span><form method=\"post\" action=\"/dashboard/logout\">{}\
             <button type=\"submit\" class=\"link\">{}</button></form>",
            escape(&tf(lang, "nav.signed_in_as", &[("who", &who)])),
            csrf_field(csrf),
            escape(t(lang, "nav.signout"))
        );
    }
    let _ = write!(
        out,
        "</div></header><main id=\"main\" tabindex=\"-1\">{main}</main>\
         <div id=\"toasts\" class=\"toasts\" role=\"status\" aria-live=\"polite\"></div>\
         </body></html>"
    );
    out
}

/// A notice (`ok`) or error (`err`) line.
pub fn notice(kind: &str, text: &str) -> String {
    let role = if kind == "err" { "alert" } else { "status" };
    format!(
        "<p class=\"notice {kind}\" role=\"{role}\">{}</p>",
        escape(text)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_encodes() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(segment("my inst?#é"), "my%20inst%3F%23%C3%A9");
    }

    #[test]
    fn numbers_and_money_per_language() {
        assert_eq!(number(Lang::En, 1_234_567), "1,234,567");
        assert_eq!(number(Lang::Pt, 1_234), "1.234");
        assert_eq!(number(Lang::Id, 999), "999");
        assert_eq!(money(Lang::En, 123_450), "1,234.50");
        assert_eq!(money(Lang::Pt, 1_905), "19,05");
    }

    #[test]
    fn dates_are_iso() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(1_796_601_600_000), "2026-12-07");
        assert_eq!(date(951_782_400_000), "2000-02-29");
    }
}
