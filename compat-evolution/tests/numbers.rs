//! whatsappNumbers' reading of each number (contract §3.4) and its answer order (§11 #21).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use zapin_compat_evolution::numbers::{NumberKind, answer_rank, classify};

fn user(jid: &str, candidates: &[&str]) -> NumberKind {
    NumberKind::User {
        jid: jid.to_owned(),
        candidates: candidates.iter().map(|c| (*c).to_owned()).collect(),
    }
}

#[test]
fn numbers_are_read_as_create_jid_does() {
    let cases = [
        (
            "15550000002",
            user("15550000002@s.whatsapp.net", &["15550000002"]),
        ),
        (
            "+1 (555) 000-0002",
            user("15550000002@s.whatsapp.net", &["15550000002"]),
        ),
        (
            "15550000002:7@s.whatsapp.net",
            user("15550000002@s.whatsapp.net", &["15550000002"]),
        ),
        // Brazil: DDD 11 < 31 keeps the 9; both variants are looked up.
        (
            "5511987654321",
            user(
                "5511987654321@s.whatsapp.net",
                &["5511987654321", "551187654321"],
            ),
        ),
        // DDD 31 and a local 8: the 9 goes.
        (
            "5531987654321",
            user(
                "553187654321@s.whatsapp.net",
                &["553187654321", "5531987654321"],
            ),
        ),
        // Mexico and Argentina: 13 digits lose the third.
        (
            "5215512345678",
            user(
                "525512345678@s.whatsapp.net",
                &["525512345678", "5215512345678"],
            ),
        ),
        (
            "5491123456789",
            user(
                "541123456789@s.whatsapp.net",
                &["541123456789", "5491123456789"],
            ),
        ),
        (
            "120363025555555555@g.us",
            NumberKind::Group {
                jid: "120363025555555555@g.us".into(),
            },
        ),
        (
            "120363025555555555",
            NumberKind::Group {
                jid: "120363025555555555@g.us".into(),
            },
        ),
        (
            "status@broadcast",
            NumberKind::Broadcast {
                jid: "status@broadcast".into(),
            },
        ),
        ("123", user("123@s.whatsapp.net", &[])),
        ("abc", user("@s.whatsapp.net", &[])),
    ];
    for (input, expected) in cases {
        assert_eq!(classify(input), expected, "{input}");
    }
}

#[test]
fn broadcasts_then_groups_then_users() {
    let mut inputs = vec!["5511987654321", "x@g.us", "status@broadcast", "15550000002"];
    inputs.sort_by_key(|n| answer_rank(&classify(n)));
    assert_eq!(
        inputs,
        ["status@broadcast", "x@g.us", "5511987654321", "15550000002"]
    );
}
