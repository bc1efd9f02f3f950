//! Transport framing (wa-protocol.md §1): the connection header a client sends once
//! (`WA 06 03`, optionally preceded by the `ED 00 01` edge-routing block), and 3-byte big-endian
//! length-prefixed frames in both directions.
//!
//! `FrameDecoder` is incremental: feed it whatever the socket delivered (partial frames, several
//! frames at once) and pull complete frames out as zero-copy `Bytes`. In the server role it first
//! consumes the client's header.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use thiserror::Error;

/// `W A`, magic 6, dictionary version 3. Also the Noise prologue.
pub const WA_HEADER: [u8; 4] = [b'W', b'A', 6, 3];

/// Edge-routing pre-intro marker: `E D 00 01`.
pub const ED_HEADER: [u8; 4] = [b'E', b'D', 0, 1];

/// The largest length a 3-byte prefix can express.
pub const MAX_FRAME_LEN: usize = 0xff_ffff;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("bad connection header {0:02x?}")]
    BadHeader([u8; 4]),
}

/// Writes `payload` as one frame (3-byte big-endian length + payload) into `out`.
pub fn encode_frame(payload: &[u8], out: &mut BytesMut) -> Result<(), FrameError> {
    let len = payload.len();
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge {
            len,
            max: MAX_FRAME_LEN,
        });
    }
    out.reserve(3 + len);
    out.put_uint(len as u64, 3);
    out.put_slice(payload);
    Ok(())
}

/// The bytes a client sends before its first frame: `WA 06 03`, preceded by
/// `ED 00 01 ‖ len(3) ‖ routing_info` when the previous connection received routing info.
pub fn connection_header(routing_info: Option<&[u8]>) -> Result<Bytes, FrameError> {
    let mut out = BytesMut::new();
    if let Some(info) = routing_info {
        if info.len() > MAX_FRAME_LEN {
            return Err(FrameError::TooLarge {
                len: info.len(),
                max: MAX_FRAME_LEN,
            });
        }
        out.put_slice(&ED_HEADER);
        out.put_uint(info.len() as u64, 3);
        out.put_slice(info);
    }
    out.put_slice(&WA_HEADER);
    Ok(out.freeze())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Server role: waiting for `WA 06 03` or an `ED` block.
    Header,
    Frames,
    /// A fatal error was returned; it is returned again on every call.
    Failed,
}

/// Reassembles frames from a byte stream.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    max_frame_len: usize,
    state: State,
    routing_info: Option<Bytes>,
    error: Option<FrameError>,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder::new()
    }
}

impl FrameDecoder {
    /// Client role: frames only (the server sends no header).
    pub fn new() -> FrameDecoder {
        FrameDecoder {
            buf: BytesMut::new(),
            max_frame_len: MAX_FRAME_LEN,
            state: State::Frames,
            routing_info: None,
            error: None,
        }
    }

    /// Server role: the client's connection header (and optional ED block) comes first.
    pub fn server() -> FrameDecoder {
        FrameDecoder {
            state: State::Header,
            ..FrameDecoder::new()
        }
    }

    /// Lowers the accepted frame size (it can never exceed the 3-byte maximum).
    pub fn with_max_frame_len(mut self, max: usize) -> FrameDecoder {
        self.max_frame_len = max.min(MAX_FRAME_LEN);
        self
    }

    /// Appends received bytes. Memory is bounded by what the caller pushes and has not yet
    /// pulled out; a declared length beyond the limit fails before its body is buffered.
    pub fn push(&mut self, data: &[u8]) {
        if self.state != State::Failed {
            self.buf.extend_from_slice(data);
        }
    }

    /// Bytes received but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Whether the client's connection header has been consumed (always true in client role).
    pub fn header_done(&self) -> bool {
        self.state != State::Header
    }

    /// Routing info from the client's `ED` block, if it sent one (server role).
    pub fn routing_info(&self) -> Option<&Bytes> {
        self.routing_info.as_ref()
    }

    /// The next complete frame, `Ok(None)` if more input is needed.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, FrameError> {
        if self.state == State::Header && !self.read_header()? {
            return Ok(None);
        }
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let Some(prefix) = self.buf.get(..3) else {
            return Ok(None);
        };
        let len =
            (usize::from(prefix[0]) << 16) | (usize::from(prefix[1]) << 8) | usize::from(prefix[2]);
        if len > self.max_frame_len {
            return Err(self.fail(FrameError::TooLarge {
                len,
                max: self.max_frame_len,
            }));
        }
        if self.buf.len() < 3 + len {
            // No reserve for the declared length: a peer could claim 16 MiB and send nothing.
            return Ok(None);
        }
        self.buf.advance(3);
        Ok(Some(self.buf.split_to(len).freeze()))
    }

    fn fail(&mut self, e: FrameError) -> FrameError {
        self.state = State::Failed;
        self.buf = BytesMut::new();
        self.error = Some(e.clone());
        e
    }

    /// Consumes the connection header if it is complete; Ok(false) if more bytes are needed.
    fn read_header(&mut self) -> Result<bool, FrameError> {
        let Some(first) = self.buf.get(..4) else {
            return self.check_prefix().map(|()| false);
        };
        let first = [first[0], first[1], first[2], first[3]];
        if first == WA_HEADER {
            self.buf.advance(4);
            self.state = State::Frames;
            return Ok(true);
        }
        if first != ED_HEADER {
            return Err(self.fail(FrameError::BadHeader(first)));
        }
        let Some(l) = self.buf.get(4..7) else {
            return Ok(false);
        };
        let len = (usize::from(l[0]) << 16) | (usize::from(l[1]) << 8) | usize::from(l[2]);
        if len > self.max_frame_len {
            return Err(self.fail(FrameError::TooLarge {
                len,
                max: self.max_frame_len,
            }));
        }
        let Some(wa) = self.buf.get(7 + len..11 + len) else {
            return Ok(false);
        };
        if wa != WA_HEADER {
            let found = [wa[0], wa[1], wa[2], wa[3]];
            return Err(self.fail(FrameError::BadHeader(found)));
        }
        self.buf.advance(7);
        self.routing_info = Some(self.buf.split_to(len).freeze());
        self.buf.advance(4);
        self.state = State::Frames;
        Ok(true)
    }

    /// Rejects a wrong header as soon as its first bytes disagree with both forms.
    fn check_prefix(&mut self) -> Result<(), FrameError> {
        let have = &self.buf[..];
        if WA_HEADER.starts_with(have) || ED_HEADER.starts_with(have) {
            return Ok(());
        }
        let mut found = [0u8; 4];
        found[..have.len()].copy_from_slice(have);
        Err(self.fail(FrameError::BadHeader(found)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frames(payloads: &[&[u8]]) -> Vec<u8> {
        let mut out = BytesMut::new();
        for p in payloads {
            encode_frame(p, &mut out).unwrap();
        }
        out.to_vec()
    }

    fn drain(d: &mut FrameDecoder) -> Vec<Bytes> {
        let mut v = Vec::new();
        while let Some(f) = d.next_frame().unwrap() {
            v.push(f);
        }
        v
    }

    #[test]
    fn encodes_three_byte_big_endian_length() {
        let mut out = BytesMut::new();
        encode_frame(&[0xaa; 0x0102], &mut out).unwrap();
        assert_eq!(&out[..4], &[0x00, 0x01, 0x02, 0xaa]);
        assert_eq!(out.len(), 3 + 0x0102);
        let too_big = vec![0u8; MAX_FRAME_LEN + 1];
        assert_eq!(
            encode_frame(&too_big, &mut out),
            Err(FrameError::TooLarge {
                len: MAX_FRAME_LEN + 1,
                max: MAX_FRAME_LEN
            })
        );
    }

    #[test]
    fn header_forms() {
        assert_eq!(&connection_header(None).unwrap()[..], b"WA\x06\x03");
        assert_eq!(
            &connection_header(Some(b"xyz")).unwrap()[..],
            b"ED\x00\x01\x00\x00\x03xyzWA\x06\x03"
        );
    }

    #[test]
    fn several_frames_in_one_chunk_and_one_frame_in_pieces() {
        let mut d = FrameDecoder::new();
        d.push(&frames(&[b"one", b"", b"three"]));
        assert_eq!(drain(&mut d), vec![&b"one"[..], b"", b"three"]);
        let bytes = frames(&[b"split"]);
        for b in &bytes[..bytes.len() - 1] {
            d.push(&[*b]);
            assert_eq!(d.next_frame().unwrap(), None);
        }
        d.push(&bytes[bytes.len() - 1..]);
        assert_eq!(d.next_frame().unwrap().unwrap(), &b"split"[..]);
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn rejects_oversized_frames_before_buffering_them() {
        let mut d = FrameDecoder::new().with_max_frame_len(4);
        d.push(&frames(&[b"1234"]));
        assert_eq!(d.next_frame().unwrap().unwrap(), &b"1234"[..]);
        d.push(&[0, 0, 5]);
        let e = FrameError::TooLarge { len: 5, max: 4 };
        assert_eq!(d.next_frame(), Err(e.clone()));
        d.push(b"more");
        assert_eq!(d.next_frame(), Err(e));
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn server_reads_plain_header_then_frames() {
        let mut input = WA_HEADER.to_vec();
        input.extend(frames(&[b"hello"]));
        let mut d = FrameDecoder::server();
        d.push(&input[..2]);
        assert_eq!(d.next_frame().unwrap(), None);
        assert!(!d.header_done());
        d.push(&input[2..]);
        assert_eq!(drain(&mut d), vec![&b"hello"[..]]);
        assert!(d.header_done());
        assert_eq!(d.routing_info(), None);
    }

    #[test]
    fn server_reads_edge_routing_block() {
        let mut input = connection_header(Some(&[9, 8, 7, 6, 5])).unwrap().to_vec();
        input.extend(frames(&[b"a", b"b"]));
        for split in 0..input.len() {
            let mut d = FrameDecoder::server();
            d.push(&input[..split]);
            let mut got = drain(&mut d);
            d.push(&input[split..]);
            got.extend(drain(&mut d));
            assert_eq!(got, vec![&b"a"[..], b"b"], "split {split}");
            assert_eq!(d.routing_info().unwrap(), &[9u8, 8, 7, 6, 5][..]);
        }
    }

    #[test]
    fn server_rejects_bad_headers_early() {
        let mut d = FrameDecoder::server();
        d.push(b"GE");
        assert_eq!(d.next_frame(), Err(FrameError::BadHeader(*b"GE\0\0")));
        let mut d = FrameDecoder::server();
        d.push(b"WA\x06\x02");
        assert_eq!(d.next_frame(), Err(FrameError::BadHeader(*b"WA\x06\x02")));
        let mut d = FrameDecoder::server();
        d.push(b"ED\x00\x01\x00\x00\x01xWB\x06\x03");
        assert_eq!(d.next_frame(), Err(FrameError::BadHeader(*b"WB\x06\x03")));
    }

    proptest! {
        #[test]
        fn arbitrary_split_points_give_the_same_frames(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..10),
            server in any::<bool>(),
        ) {
            let refs: Vec<&[u8]> = payloads.iter().map(|p| &p[..]).collect();
            let mut input = if server { WA_HEADER.to_vec() } else { Vec::new() };
            input.extend(frames(&refs));
            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(input.len() + 1)).collect();
            points.push(0);
            points.push(input.len());
            points.sort_unstable();
            let mut d = if server { FrameDecoder::server() } else { FrameDecoder::new() };
            let mut got = Vec::new();
            for w in points.windows(2) {
                d.push(&input[w[0]..w[1]]);
                got.extend(drain(&mut d));
            }
            prop_assert_eq!(got.iter().map(|b| b.to_vec()).collect::<Vec<_>>(), payloads);
            prop_assert_eq!(d.buffered(), 0);
        }

        #[test]
        fn arbitrary_input_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64), server in any::<bool>()) {
            let mut d = if server { FrameDecoder::server() } else { FrameDecoder::new() }.with_max_frame_len(16);
            d.push(&data);
            for _ in 0..70 {
                match d.next_frame() {
                    Ok(Some(_)) => {}
                    _ => break,
                }
            }
        }
    }
}
