//! Every page, rendered in the pseudo language, shows only catalogue text and data: any other
//! visible word (text, labels, placeholders, titles, confirmations, the script's messages) is
//! a literal that escaped translation. And every page, in every real language, finds all its
//! keys.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use zapin_tenancy::apikey::KeyInfo;
use zapin_tenancy::directory::Tenant;
use zapin_tenancy::users::{Session, SessionOwner, User};

use super::auth::{Viewer, login_html};
use super::i18n::Lang;
use super::instances::Card;
use zapin_tenancy::analytics::{InstanceCounts, MessageCounts, Overview, Period};
use zapin_tenancy::billing::{Bill, BillLine};
use zapin_tenancy::plan::{QuotaType, Window};
use zapin_tenancy::quota::UsageLine;

fn instance_detail(webhook: bool) -> super::instance_page::Detail {
    super::instance_page::Detail {
        card: Card {
            name: "alpha-phone".into(),
            status: "connecting".into(),
            created_at: 0,
            phone: None,
            profile: Some("Ana Store".into()),
        },
        settings: crate::db::Settings {
            msg_call: "Ana Store".into(),
            reject_call: true,
            ..Default::default()
        },
        webhook: webhook.then(|| super::instance_page::WebhookSummary {
            url: "https://hooks.acme.test/zapin".into(),
            enabled: true,
            events: vec!["MESSAGES_UPSERT".into(), "CONNECTION_UPDATE".into()],
        }),
        pending: vec![(
            "messages.upsert".into(),
            3,
            Some(503),
            Some("connection refused".into()),
        )],
        dead: vec![("connection.update".into(), 10, "retries exhausted".into())],
        saved: true,
    }
}

fn overview_view() -> super::overview::View {
    let counts = InstanceCounts {
        total: 5,
        connected: 4,
    };
    super::overview::View {
        instances: counts,
        overview: Some(Overview {
            tenant_id: "t1".into(),
            instances: counts,
            messages: MessageCounts {
                today: Default::default(),
                month: Default::default(),
            },
            active_bots: 1,
            queued_sends: 0,
            quotas: vec![UsageLine {
                quota: QuotaType::MessageSend,
                window: Window::Day,
                used: 80,
                limit: Some(100),
                remaining: Some(20),
                included: None,
                reset: None,
            }],
            bill: Bill {
                tenant_id: "t1".into(),
                month: "2026-12".into(),
                plan: "starter".into(),
                price_cents: 1900,
                lines: vec![BillLine {
                    quota: QuotaType::MessageSend,
                    used: 1200,
                    included: Some(1000),
                    over: 200,
                    unit_cents: Some(2),
                    amount_cents: 400,
                }],
                overage_cents: 400,
                total_cents: 2300,
            },
        }),
        buckets: (0..24).map(|i| (i * 3, i * 5)).collect(),
        period: Period::Day,
        tenants: None,
    }
}

/// Attributes whose values people read.
const READ_ATTRS: &[&str] = &[
    "placeholder",
    "aria-label",
    "title",
    "alt",
    "data-confirm",
    "data-title",
];

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The visible text pieces of a page: text nodes (outside script/style) and readable attributes,
/// plus the values of `data-msgs`.
fn visible_text(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        let text = rest[..lt].trim();
        if !text.is_empty() {
            out.push(unescape(text));
        }
        let gt = rest[lt..].find('>').map(|i| lt + i).unwrap();
        let tag = &rest[lt + 1..gt];
        let name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '!' || *c == '/')
            .collect();
        // attributes: name="value"
        let mut attrs = tag;
        while let Some(eq) = attrs.find("=\"") {
            let key = attrs[..eq].rsplit(' ').next().unwrap_or_default();
            let end = attrs[eq + 2..].find('"').unwrap() + eq + 2;
            let value = unescape(&attrs[eq + 2..end]);
            if READ_ATTRS.contains(&key) {
                out.push(value);
            } else if key == "data-msgs" {
                let msgs: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_str(&value).unwrap();
                out.extend(msgs.values().map(|v| v.as_str().unwrap().to_owned()));
            }
            attrs = &attrs[end + 1..];
        }
        rest = &rest[gt + 1..];
        if name == "script" || name == "style" {
            let close = format!("</{name}>");
            let at = rest.find(&close).unwrap();
            rest = &rest[at + close.len()..];
        }
    }
    out
}

/// Whether `piece` is made only of catalogue messages (`⟦key⟧`), the given data, digits and
/// punctuation.
fn translated(piece: &str, data: &[&str]) -> bool {
    let mut rest = piece.to_owned();
    // Longest data first, so that a name containing another is removed whole.
    let mut data = data.to_vec();
    data.sort_by_key(|d| std::cmp::Reverse(d.len()));
    while let Some(start) = rest.find('\u{27e6}') {
        let Some(end) = rest[start..].find('\u{27e7}') else {
            break;
        };
        rest.replace_range(start..start + end + '\u{27e7}'.len_utf8(), " ");
    }
    for d in data {
        rest = rest.replace(d, " ");
    }
    rest.chars().all(|c| !c.is_alphabetic())
}

fn viewer(operator: bool) -> Viewer {
    let owner = if operator {
        SessionOwner::Operator
    } else {
        SessionOwner::User(User {
            id: "u1".into(),
            tenant_id: "t1".into(),
            email: "ana@acme.test".into(),
            created_at: 0,
        })
    };
    Viewer {
        token: "x".into(),
        session: Session {
            owner,
            csrf: "c".repeat(64),
            expires_at: i64::MAX,
        },
    }
}

const DATA: &[&str] = &[
    "alpha-phone",
    "beta shop",
    "+5511999999999",
    "Ana Store",
    "ana@acme.test",
    "acme",
    "starter",
    "zk_live_ab12",
    "zk_secret_key_value",
    "https://hooks.acme.test/zapin",
    "MESSAGES_UPSERT, CONNECTION_UPDATE",
    "messages.upsert",
    "connection refused",
    "connection.update",
    "retries exhausted",
];

fn pages(lang: Lang) -> Vec<(&'static str, String)> {
    let cards = vec![
        Card {
            name: "alpha-phone".into(),
            status: "open".into(),
            created_at: 1_796_601_600_000,
            phone: Some("+5511999999999".into()),
            profile: Some("Ana Store".into()),
        },
        Card {
            name: "beta shop".into(),
            status: "close".into(),
            created_at: 1_796_601_600_000,
            phone: None,
            profile: None,
        },
    ];
    let keys = vec![KeyInfo {
        id: "k1".into(),
        tenant_id: "t1".into(),
        prefix: "zk_live_ab12".into(),
        created_at: 0,
        last_used_at: None,
        expires_at: None,
    }];
    let tenants = vec![(
        Tenant {
            id: "t1".into(),
            name: "acme".into(),
            plan: "starter".into(),
            suspended: false,
            created_at: 0,
            updated_at: 0,
        },
        2,
    )];
    vec![
        ("login", login_html(lang, "token", Some("login.failed"))),
        (
            "instances",
            super::instances::render(lang, &viewer(false), &cards, 2, 3, 120, Some(("ok", "x"))),
        ),
        (
            "instances, empty",
            super::instances::render(lang, &viewer(true), &[], 1, 1, 0, None),
        ),
        (
            "keys",
            super::keys::render(lang, &viewer(false), &keys, Some("zk_secret_key_value")),
        ),
        (
            "keys, operator",
            super::keys::render(lang, &viewer(true), &[], None),
        ),
        (
            "tenants",
            super::admin::render(
                lang,
                &viewer(true),
                &tenants,
                &[
                    zapin_tenancy::plan::Plan::from_json(
                        br#"{"name":"starter","price_cents":1900,"quotas":{"message_send":{"day":100}}}"#,
                    )
                    .unwrap(),
                    zapin_tenancy::plan::Plan::from_json(br#"{"name":"acme"}"#).unwrap(),
                ],
            ),
        ),
        (
            "overview",
            super::overview::render(lang, &viewer(false), &overview_view()),
        ),
        (
            "instance",
            super::instance_page::render(lang, &viewer(false), &instance_detail(true)),
        ),
        (
            "instance, no webhook",
            super::instance_page::render(lang, &viewer(false), &instance_detail(false)),
        ),
        (
            "overview, operator",
            super::overview::render(
                lang,
                &viewer(true),
                &super::overview::View {
                    instances: InstanceCounts {
                        total: 3,
                        connected: 1,
                    },
                    overview: None,
                    buckets: Vec::new(),
                    period: Period::Week,
                    tenants: Some(2),
                },
            ),
        ),
    ]
}

#[test]
fn pages_show_no_text_outside_the_catalogue() {
    // The language switcher names each language in that language: catalogue text too.
    let natives: Vec<&str> = Lang::CHOICES.iter().map(|l| l.native_name()).collect();
    let allowed: Vec<&str> = DATA.iter().copied().chain(natives).collect();
    for (name, html) in pages(Lang::Pseudo) {
        for piece in visible_text(&html) {
            // The flash text of the fixture is data ("x").
            assert!(
                translated(&piece, &allowed) || piece == "x",
                "page {name}: untranslated text {piece:?}"
            );
        }
    }
}

#[test]
fn pages_find_every_key_in_every_language() {
    for lang in Lang::CHOICES {
        for (name, html) in pages(lang) {
            assert!(!html.contains("??"), "page {name} in {lang:?} misses a key");
        }
    }
}

#[test]
fn the_checker_catches_a_literal() {
    let pieces = visible_text("<p>\u{27e6}a\u{27e7}</p><p>Delete</p><input placeholder=\"Name\">");
    assert!(translated(&pieces[0], &[]));
    assert!(!translated(&pieces[1], &[]));
    assert!(!translated(&pieces[2], &[]));
}

#[test]
fn the_script_holds_no_ui_text() {
    // Quoted strings in the script are selectors, event names, ids, classes and headers: none
    // has a space between two words, which every sentence would.
    let js = super::assets::JS;
    for line in js
        .lines()
        .filter(|l| !l.trim_start().starts_with("//") && !l.contains("'use strict'"))
    {
        for quoted in line.split('\'').skip(1).step_by(2) {
            let words = quoted
                .split(' ')
                .filter(|w| w.chars().all(char::is_alphabetic) && !w.is_empty())
                .count();
            assert!(
                words < 2 || quoted.starts_with("badge ") || quoted.starts_with("toast "),
                "literal text in app.js: {quoted:?}"
            );
        }
    }
}

#[test]
fn the_instances_page_with_fifty_cards_stays_small() {
    let cards: Vec<Card> = (0..super::instances::PAGE_SIZE)
        .map(|i| Card {
            name: format!("instance-with-a-long-name-{i:04}"),
            status: "open".into(),
            created_at: 1_796_601_600_000,
            phone: Some("+5511999999999".into()),
            profile: Some("A profile name of some length".into()),
        })
        .collect();
    for lang in Lang::CHOICES {
        let html = super::instances::render(lang, &viewer(false), &cards, 1, 20, 1000, None);
        let weight = html.len() + super::assets::CSS.len() + super::assets::JS.len();
        assert!(weight < 150 * 1024, "{lang:?}: {weight} bytes");
    }
}
