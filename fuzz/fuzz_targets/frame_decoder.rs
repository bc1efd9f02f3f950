//! Frame decoder (both roles) on arbitrary input split at arbitrary points: must never panic,
//! and the frames must not depend on how the input was split.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zapin_protocol::frame::FrameDecoder;

fn run(server: bool, chunks: &[&[u8]]) -> (Vec<Vec<u8>>, bool) {
    let mut d = if server {
        FrameDecoder::server()
    } else {
        FrameDecoder::new()
    }
    .with_max_frame_len(4096);
    let mut frames = Vec::new();
    let mut failed = false;
    for c in chunks {
        d.push(c);
        loop {
            match d.next_frame() {
                Ok(Some(f)) => frames.push(f.to_vec()),
                Ok(None) => break,
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        if failed {
            break;
        }
    }
    (frames, failed)
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, data)) = data.split_first() else {
        return;
    };
    let server = ctl & 1 == 1;
    let split = usize::from(ctl >> 1).min(data.len());
    let whole = run(server, &[data]);
    let (a, b) = data.split_at(split);
    let parts = run(server, &[a, b]);
    let bytewise: Vec<&[u8]> = data.chunks(1).collect();
    let single = run(server, &bytewise);
    assert_eq!(whole, parts);
    assert_eq!(whole, single);
});
