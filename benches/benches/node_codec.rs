//! Binary node codec: encode and decode of a typical 1:1 message stanza and of a group message
//! fanned out to 500 participant devices (the largest stanza a busy session sends routinely).

// A bench stanza that fails to encode is a bug in the bench itself; failing loudly is right.
#![allow(clippy::expect_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use zapin_protocol::binary::{self, Node};
use zapin_protocol::jid::{Jid, Server};

fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn direct_message() -> Node {
    Node::new("message")
        .attr("id", "3EB0A1B2C3D4E5F60718")
        .attr("to", Jid::pn("5511999999999"))
        .attr("type", "text")
        .children(vec![
            Node::new("enc")
                .attr("v", "2")
                .attr("type", "pkmsg")
                .bytes(payload(180, 1)),
            Node::new("device-identity").bytes(payload(140, 2)),
        ])
}

fn group_message(participants: usize) -> Node {
    let to = (0..participants)
        .map(|i| {
            let jid = Jid::with_device(
                format!("{}", 100_000_000_000_000u64 + i as u64),
                (i % 5) as u16,
                Server::Lid,
            );
            Node::new("to").attr("jid", jid).children(vec![
                Node::new("enc")
                    .attr("v", "2")
                    .attr("type", if i % 7 == 0 { "pkmsg" } else { "msg" })
                    .bytes(payload(64, i as u8)),
            ])
        })
        .collect();
    Node::new("message")
        .attr("id", "3EB0A1B2C3D4E5F60719")
        .attr("to", Jid::group("120363025246125888"))
        .attr("type", "text")
        .attr("phash", "2:5s+YxCff")
        .attr("addressing_mode", "lid")
        .children(vec![
            Node::new("participants").children(to),
            Node::new("device-identity").bytes(payload(140, 3)),
            Node::new("enc")
                .attr("v", "2")
                .attr("type", "skmsg")
                .bytes(payload(120, 4)),
        ])
}

fn bench_stanza(c: &mut Criterion, name: &str, node: &Node) {
    let bytes = binary::encode(node).expect("bench stanza encodes");
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("encode", |b| {
        b.iter(|| binary::encode(black_box(node)).expect("encode"))
    });
    g.bench_function("decode", |b| {
        b.iter(|| binary::decode(black_box(&bytes)).expect("decode"))
    });
    g.finish();
}

fn node_codec(c: &mut Criterion) {
    bench_stanza(c, "node_codec/direct_message", &direct_message());
    bench_stanza(c, "node_codec/group_message_500", &group_message(500));
}

criterion_group!(benches, node_codec);
criterion_main!(benches);
