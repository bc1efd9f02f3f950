//! Codec tests: reference vectors (wa-protocol.md §4.7, A.3), Baileys cross-implementation
//! vectors (tests/vectors/codec/baileys.json), error cases, and property tests.

use std::io::Write;

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::jid::{Jid, Server};

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

const SUCCESS_HEX: &str = "f80f4c1aff0517520218905cee043dfc0366726376f7012aff88100000000000001f4becb43cff051752020041ece6fc2c643559623557784c2b6b35554b5148564936627546524751456a30475a413565767a3862365632786b64773d";

#[test]
fn a3_success_decodes_and_reencodes_identically() {
    let bytes = h(SUCCESS_HEX);
    let node = decode(&bytes).unwrap();
    assert_eq!(node.tag, "success");
    let keys: Vec<&str> = node.attrs.iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        [
            "t",
            "props",
            "location",
            "lid",
            "abprops",
            "creation",
            "companion_enc_static"
        ]
    );
    assert_eq!(node.attr_str("t"), Some("1752021890"));
    assert_eq!(node.attr_str("props"), Some("27"));
    assert_eq!(node.attr_str("location"), Some("frc"));
    assert_eq!(
        node.get_attr("lid"),
        Some(&AttrValue::Jid(Jid::with_device(
            "100000000000001",
            42,
            Server::Lid
        )))
    );
    assert_eq!(node.attr_str("abprops"), Some("10"));
    assert_eq!(node.attr_str("creation"), Some("1752020041"));
    assert_eq!(
        node.attr_str("companion_enc_static").map(str::len),
        Some(44)
    );
    assert_eq!(node.content, Content::None);
    assert_eq!(encode(&node).unwrap(), bytes);
}

#[test]
fn ping_iq_encodes_to_reference_bytes() {
    let node = Node::new("iq")
        .attr("id", "1234.5678-1")
        .attr("xmlns", "w:p")
        .attr("type", "get")
        .attr("to", Jid::server_only(Server::Pn))
        .children(vec![Node::new("ping")]);
    let expected =
        h("00 F8 0A 19 08 FF 86 12 34 B5 67 8A 1F 16 57 04 29 11 FA 00 03 F8 01 F8 01 56");
    assert_eq!(pack(&node).unwrap(), expected);
    // The same bytes when `to` is given as the string Baileys uses.
    let node2 = Node {
        attrs: {
            let mut a = node.attrs.clone();
            a.0[3].1 = AttrValue::from("@s.whatsapp.net");
            a
        },
        ..node.clone()
    };
    assert_eq!(pack(&node2).unwrap(), expected);
    assert_eq!(unpack(&expected).unwrap(), node);
}

#[test]
fn ad_jid_attribute_example() {
    let node = Node::new("x").attr("to", Jid::with_device("123456789", 3, Server::Lid));
    let bytes = encode(&node).unwrap();
    // F8 03, tag "x" as BINARY_8, key "to" token 0x11, then the value.
    assert_eq!(bytes[..6], h("F8 03 FC 01 78 11")[..]);
    assert_eq!(bytes[6..], h("F7 01 03 FF 85 12 34 56 78 9F")[..]);
    assert_eq!(decode(&bytes).unwrap(), node);
}

#[test]
fn string_encoding_order() {
    // <x id=VALUE/>: F8 03, "x" as FC 01 78, key "id" = token 08, then the value.
    let value = |s: &'static str| {
        let b = encode(&Node::new("x").attr("id", s)).unwrap();
        assert_eq!(b[..6], h("F8 03 FC 01 78 08")[..]);
        b[6..].to_vec()
    };
    assert_eq!(value("message"), [19]);
    assert_eq!(value("read-self"), [0xEC, 0x00]);
    assert_eq!(value("1234.5678-1"), h("FF 86 12 34 B5 67 8A 1F"));
    assert_eq!(value("ABC"), h("FB 82 AB CF"));
    assert_eq!(value("abc"), h("FC 03 61 62 63")); // lowercase is not HEX_8
    assert_eq!(value(""), h("FC 00"));
    assert_eq!(value("5511:2@s.whatsapp.net"), h("F7 00 02 FF 02 55 11"));
    assert_eq!(value("g@g.us"), h("FA FC 01 67 1C"));
    // The '@' trap: strings that are not canonical JIDs go out raw.
    for s in [
        "a@b",
        "1:0@s.whatsapp.net",
        "1:2@g.us",
        "a@b@s.whatsapp.net",
        "1_1@s.whatsapp.net",
    ] {
        let v = value(s);
        assert_eq!(v[0], tag::BINARY_8, "{s}");
        let back = decode(&encode(&Node::new("x").attr("id", s)).unwrap()).unwrap();
        assert_eq!(back.get_attr("id"), Some(&AttrValue::from(s)), "{s}");
    }
    // Nibble limit: 127 chars packed, 128 raw.
    let n127: &'static str = "9".repeat(127).leak();
    let n128: &'static str = "9".repeat(128).leak();
    assert_eq!(value(n127)[..2], [tag::NIBBLE_8, 0x80 | 64]);
    assert_eq!(value(n128)[0], tag::BINARY_8);
}

#[test]
fn empty_string_both_forms_accepted() {
    for v in ["FC 00", "FF 00", "FB 00", "00"] {
        let bytes = h(&format!("F8 03 FC 01 78 FC 01 76 {v}"));
        let node = decode(&bytes).unwrap();
        assert_eq!(node.attr_str("v"), Some(""), "{v}");
    }
}

#[test]
fn raw_bytes_content_is_always_binary() {
    for content in [&b"1234"[..], b"message", b"", b"ABC"] {
        let node = Node::new("enc").bytes(Bytes::copy_from_slice(content));
        let b = encode(&node).unwrap();
        assert_eq!(b[3], tag::BINARY_8);
        assert_eq!(decode(&b).unwrap(), node);
    }
    for len in [255usize, 256, (1 << 20) - 1, 1 << 20] {
        let node = Node::new("enc").bytes(vec![7u8; len]);
        let b = encode(&node).unwrap();
        let expected_tag = match len {
            0..=255 => tag::BINARY_8,
            256..=0xfffff => tag::BINARY_20,
            _ => tag::BINARY_32,
        };
        assert_eq!(b[3], expected_tag, "{len}");
        assert_eq!(decode(&b).unwrap(), node);
    }
}

#[test]
fn jid_wire_forms() {
    let cases = [
        (Jid::pn("5511"), "FA FF 02 55 11 03"),
        (Jid::server_only(Server::Pn), "FA 00 03"),
        (
            Jid::with_device("5511", 2, Server::Hosted),
            "F7 80 02 FF 02 55 11",
        ),
        (
            Jid::with_device("5511", 2, Server::HostedLid),
            "F7 81 02 FF 02 55 11",
        ),
        (
            Jid::with_device("5511", 300, Server::Msgr),
            "F6 FF 02 55 11 01 2C CC",
        ),
        (
            Jid {
                integrator: 5,
                ..Jid::with_device("5511", 2, Server::Interop)
            },
            "F5 FF 02 55 11 00 02 00 05 FC 07 69 6E 74 65 72 6F 70",
        ),
        (
            Jid {
                agent: 7,
                ..Jid::with_device("5511", 2, Server::Pn)
            },
            "F7 07 02 FF 02 55 11",
        ),
    ];
    for (jid, wire) in cases {
        let node = Node::new("x").attr("jid", jid.clone());
        let b = encode(&node).unwrap();
        assert_eq!(b[..6], h("F8 03 FC 01 78 0C")[..]);
        assert_eq!(hex::encode(&b[6..]), hex::encode(h(wire)), "{jid}");
        assert_eq!(decode(&b).unwrap(), node, "{jid}");
    }
    // INTEROP_JID without the trailing server (WhatsApp Web / whatsapp-rust writer).
    let b = h("F8 03 FC 01 78 0C F5 FF 02 55 11 00 02 00 05");
    let j = decode(&b).unwrap().attr_jid("jid").unwrap();
    assert_eq!(
        (j.user.as_str(), j.device, j.integrator, j.server),
        ("5511", 2, 5, Server::Interop)
    );
    // Device > 255 does not fit AD_JID.
    let bad = Node::new("x").attr("j", Jid::with_device("1", 256, Server::Lid));
    assert!(matches!(
        encode(&bad),
        Err(EncodeError::DeviceOutOfRange { .. })
    ));
    // JID_PAIR with a server zapin does not model reads as a plain string.
    let b = h("F8 03 FC 01 78 0C FA FC 01 61 FC 01 62");
    assert_eq!(decode(&b).unwrap().attr_str("jid"), Some("a@b"));
}

#[test]
fn accessors_and_display() {
    let node = Node::new("message")
        .attr("from", Jid::group("123-456"))
        .attr("participant", "5511:2@s.whatsapp.net")
        .attr("id", "ABC")
        .children(vec![
            Node::new("enc")
                .attr("type", "pkmsg")
                .bytes(vec![1u8, 2, 3]),
            Node::new("enc").attr("type", "msg").bytes(&b"hi"[..]),
            Node::new("body").text("hello \"you\""),
        ]);
    assert_eq!(node.attr_jid("from"), Some(Jid::group("123-456")));
    assert_eq!(
        node.attr_jid("participant"),
        Some(Jid::with_device("5511", 2, Server::Pn))
    );
    assert_eq!(node.attr_str("from"), None);
    assert_eq!(node.children_by_tag("enc").count(), 2);
    assert_eq!(
        node.child("enc").unwrap().content_bytes().unwrap()[..],
        [1, 2, 3]
    );
    assert_eq!(
        node.child("body").unwrap().content_str(),
        Some("hello \"you\"")
    );
    assert!(node.child("nope").is_none());
    assert_eq!(
        node.to_string(),
        "<message from=J(123-456@g.us) participant=\"5511:2@s.whatsapp.net\" id=\"ABC\">\
         <enc type=\"pkmsg\"><!-- hex 010203 --></enc><enc type=\"msg\">hi</enc>\
         <body>hello &quot;you&quot;</body></message>"
    );
    assert!(format!("{node:#}").contains("\n  <enc"));
}

#[test]
fn decoder_errors() {
    use DecodeError::*;
    let d = |s: &str| decode(&h(s)).unwrap_err();
    assert_eq!(d(""), UnexpectedEof);
    assert_eq!(d("F8 01 13 00"), TrailingBytes(1));
    assert_eq!(d("F8 01 F0"), InvalidTag(0xF0));
    assert_eq!(d("13"), InvalidListTag(0x13));
    assert_eq!(d("00"), EmptyNode);
    assert_eq!(d("F8 01 FC 00"), EmptyTag);
    assert_eq!(d("F8 01 FF 81 CF"), InvalidPacked); // nibble 12
    assert_eq!(d("F8 01 FF 81 11"), InvalidPacked); // odd, dropped nibble not filler
    assert_eq!(d("F8 01 FF 80"), InvalidPacked);
    assert_eq!(d("F8 01 FC 01 FF"), InvalidUtf8);
    assert_eq!(d("F8 03 13 11 FA FC 00 00"), InvalidJid("empty server"));
    // Declared lengths larger than the input fail without allocating them.
    assert_eq!(d("F8 02 13 FE FF FF FF FF"), UnexpectedEof);
    assert_eq!(d("F8 02 13 F9 FF FF F8 01 13"), UnexpectedEof);
    assert_eq!(d("F9 FF FF 13"), UnexpectedEof);
    // Nesting is capped.
    let mut deep = Vec::new();
    for _ in 0..100 {
        deep.extend_from_slice(&h("F8 02 13 F8 01"));
    }
    deep.extend_from_slice(&h("F8 01 13"));
    assert_eq!(decode(&deep).unwrap_err(), TooDeep(64));
    let shallow = DecodeLimits {
        max_depth: 200,
        ..DecodeLimits::default()
    };
    assert!(decode_with(&deep, &shallow).is_ok());
    // JIDs nested in JIDs are capped too.
    let mut nested = h("F8 03 13 11");
    for _ in 0..10 {
        nested.extend_from_slice(&h("FA 00"));
    }
    nested.extend_from_slice(&[3; 11]);
    assert_eq!(decode(&nested).unwrap_err(), TooDeep(4));
}

#[test]
fn baileys_nested_jid_reads_as_string() {
    // Baileys writes "a@b@s.whatsapp.net" as JID_PAIR(a, JID_PAIR(b, s.whatsapp.net)).
    let b = h("f803fc01780cfafc0161fafc016203");
    assert_eq!(
        decode(&b).unwrap().attr_str("jid"),
        Some("a@b@s.whatsapp.net")
    );
}

#[test]
fn unpack_flags_and_zlib() {
    let node = Node::new("message").attr("id", "1").bytes(vec![0u8; 5000]);
    let plain = encode(&node).unwrap();
    let mut z = flate2::write::ZlibEncoder::new(vec![2u8], flate2::Compression::default());
    z.write_all(&plain).unwrap();
    let compressed = z.finish().unwrap();
    assert!(compressed.len() < 200);
    assert_eq!(unpack(&compressed).unwrap(), node);
    // Other flag bits are ignored.
    let mut odd_flags = compressed.clone();
    odd_flags[0] = 0x06;
    assert_eq!(unpack(&odd_flags).unwrap(), node);
    let mut plain_flags = vec![0x01];
    plain_flags.extend_from_slice(&plain);
    assert_eq!(unpack(&plain_flags).unwrap(), node);

    let at_cap = DecodeLimits {
        max_inflated_len: plain.len(),
        ..DecodeLimits::default()
    };
    assert_eq!(unpack_with(&compressed, &at_cap).unwrap(), node);
    let below = DecodeLimits {
        max_inflated_len: plain.len() - 1,
        ..DecodeLimits::default()
    };
    assert_eq!(
        unpack_with(&compressed, &below).unwrap_err(),
        DecodeError::InflatedTooLarge(plain.len() - 1)
    );
    assert_eq!(unpack(&[]).unwrap_err(), DecodeError::EmptyFrame);
    assert_eq!(unpack(&[2, 1, 2, 3]).unwrap_err(), DecodeError::Inflate);
    assert_eq!(
        unpack(&compressed[..compressed.len() - 6]).unwrap_err(),
        DecodeError::Inflate
    );
}

#[test]
fn large_lists_use_list_16() {
    let children: Vec<Node> = (0..500).map(|_| Node::new("item")).collect();
    let node = Node::new("list").children(children);
    let b = encode(&node).unwrap();
    assert_eq!(b[..7], h("F8 02 71 F9 01 F4 F8")[..]);
    assert_eq!(decode(&b).unwrap(), node);
    let too_many = Node::new("list").children(vec![Node::new("i"); 65536]);
    assert_eq!(encode(&too_many), Err(EncodeError::TooManyChildren(65536)));
    assert_eq!(encode(&Node::new("")), Err(EncodeError::EmptyTag));
}

// ---------------------------------------------------------------------------------------------
// Baileys cross-implementation vectors.

fn described_node(v: &serde_json::Value) -> Node {
    let tag = v["tag"].as_str().unwrap().to_owned();
    let mut node = Node::new(tag);
    // Attributes are [key, value] pairs so their wire order survives JSON.
    for pair in v["attrs"].as_array().unwrap() {
        let k = pair[0].as_str().unwrap().to_owned();
        node.attrs
            .push(k, AttrValue::from(pair[1].as_str().unwrap().to_owned()));
    }
    let c = &v["content"];
    node.content = if c.is_null() {
        Content::None
    } else if let Some(nodes) = c.get("nodes") {
        Content::Nodes(
            nodes
                .as_array()
                .unwrap()
                .iter()
                .map(described_node)
                .collect(),
        )
    } else if let Some(b) = c.get("bytes") {
        Content::Bytes(h(b.as_str().unwrap()).into())
    } else {
        Content::Str(c["str"].as_str().unwrap().to_owned().into())
    };
    node
}

#[test]
fn baileys_vectors() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/vectors/codec/baileys.json"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let vectors = doc["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 30);
    let mut quirks = 0;
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        let bytes = h(v["hex"].as_str().unwrap());
        let decoded = decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let quirk = v.get("quirk").is_some();
        let described = if quirk {
            quirks += 1;
            described_node(&v["baileys_decoded"])
        } else {
            described_node(&v["node"])
        };
        assert_eq!(
            canon(&decoded),
            canon(&described),
            "{name}: decoded node differs"
        );
        if !quirk {
            let reencoded = encode(&decoded).unwrap();
            assert_eq!(
                hex::encode(&reencoded),
                hex::encode(&bytes),
                "{name}: re-encode"
            );
            // Encoding Baileys' own input (all attributes as strings) gives the same bytes too.
            let from_strings = encode(&described_node(&v["node"])).unwrap();
            assert_eq!(
                hex::encode(&from_strings),
                hex::encode(&bytes),
                "{name}: from strings"
            );
        }
    }
    assert!(quirks >= 5);
}

// ---------------------------------------------------------------------------------------------
// Property tests.

/// A node as the wire sees it: attribute values as strings (JID or not), content as bytes for
/// anything that is not a list (string content written raw comes back as bytes).
#[derive(Debug, PartialEq)]
enum CanonContent {
    None,
    Nodes(Vec<CanonNode>),
    Data(Vec<u8>),
}

#[derive(Debug, PartialEq)]
struct CanonNode {
    tag: String,
    attrs: Vec<(String, String)>,
    content: CanonContent,
}

fn canon(n: &Node) -> CanonNode {
    CanonNode {
        tag: n.tag.to_string(),
        attrs: n
            .attrs
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_string()))
            .collect(),
        content: match &n.content {
            Content::None => CanonContent::None,
            Content::Nodes(c) => CanonContent::Nodes(c.iter().map(canon).collect()),
            Content::Bytes(b) => CanonContent::Data(b.to_vec()),
            Content::Str(s) => CanonContent::Data(s.as_bytes().to_vec()),
            Content::Jid(j) => CanonContent::Data(j.to_string().into_bytes()),
        },
    }
}

fn arb_jid() -> impl Strategy<Value = Jid> {
    let user = prop_oneof!["[0-9]{0,20}", "[a-zA-Z0-9.-]{1,12}", "status"];
    let server = prop::sample::select(Server::ALL.to_vec());
    (user, server, any::<u16>(), any::<u16>(), any::<u8>()).prop_map(
        |(user, server, dev, integ, agent)| {
            let mut j = Jid::new(user, server);
            if server.ad_domain().is_some() {
                j.device = dev & 0xff;
            } else if server.has_devices() {
                j.device = dev;
            }
            if server == Server::Interop {
                j.integrator = integ;
            }
            if server == Server::Pn && !matches!(agent, 0 | 1 | 128 | 129) && agent % 4 == 2 {
                j.agent = agent;
            }
            j
        },
    )
}

fn arb_string() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "message",
            "s.whatsapp.net",
            "read-self",
            "pair-device",
            "",
            "0",
            "10"
        ])
        .prop_map(str::to_owned),
        "[0-9.-]{0,130}",
        "[0-9A-F]{0,130}",
        "[0-9a-f]{1,10}",
        ".{0,20}",
        "[0-9]{1,15}(:[0-9]{1,3})?@(s.whatsapp.net|lid|g.us|msgr|example.com)",
        arb_jid().prop_map(|j| j.to_string()),
        "[a-z@:_]{0,12}",
    ]
}

fn arb_attr_value() -> impl Strategy<Value = AttrValue> {
    prop_oneof![
        arb_string().prop_map(AttrValue::from),
        arb_jid().prop_map(AttrValue::Jid),
    ]
}

fn arb_tag() -> impl Strategy<Value = String> {
    arb_string().prop_filter("non-empty tag", |s| !s.is_empty())
}

fn arb_node() -> impl Strategy<Value = Node> {
    let leaf_content = prop_oneof![
        Just(Content::None),
        prop::collection::vec(any::<u8>(), 0..600).prop_map(|b| Content::Bytes(b.into())),
        arb_string().prop_map(|s| Content::Str(s.into())),
        arb_jid().prop_map(Content::Jid),
    ];
    let attrs = || prop::collection::vec((arb_tag(), arb_attr_value()), 0..5);
    let leaf = (arb_tag(), attrs(), leaf_content).prop_map(|(tag, attrs, content)| Node {
        tag: tag.into(),
        attrs: Attrs(attrs.into_iter().map(|(k, v)| (k.into(), v)).collect()),
        content,
    });
    leaf.prop_recursive(4, 64, 8, move |inner| {
        (arb_tag(), attrs(), prop::collection::vec(inner, 0..8)).prop_map(
            |(tag, attrs, children)| Node {
                tag: tag.into(),
                attrs: Attrs(attrs.into_iter().map(|(k, v)| (k.into(), v)).collect()),
                content: Content::Nodes(children),
            },
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn encode_decode_round_trips(node in arb_node()) {
        let bytes = encode(&node).unwrap();
        let back = decode(&bytes).unwrap();
        prop_assert_eq!(canon(&back), canon(&node));
        // Decoded nodes re-encode to the same bytes.
        prop_assert_eq!(encode(&back).unwrap(), bytes.clone());
        let packed = pack(&node).unwrap();
        prop_assert_eq!(&packed[1..], &bytes[..]);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode(&data);
        let _ = unpack(&data);
    }

    #[test]
    fn mutated_valid_nodes_never_panic_and_stay_stable(
        node in arb_node(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = encode(&node).unwrap();
        for (i, b) in flips {
            let at = i.index(bytes.len());
            bytes[at] = b;
        }
        if let Ok(n) = decode(&bytes) {
            // Whatever decodes must re-encode and decode to the same thing.
            let again = decode(&encode(&n).unwrap()).unwrap();
            prop_assert_eq!(canon(&again), canon(&n));
        }
    }
}
