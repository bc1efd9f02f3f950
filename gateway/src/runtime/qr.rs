//! The QR object's `base64`: the pairing string drawn as a PNG data URL (contract §4.2).
//!
//! Evolution uses the `qrcode` npm package with error correction `H`, scale 4, margin 3 and dark
//! colour `#198754`; the same parameters are used here. The PNG is a two-colour palette image
//! (1 bit per pixel), written by hand: it needs only zlib (flate2) and a CRC-32, both already in
//! the dependency tree, instead of a full image crate.

use std::io::Write as _;

use base64::Engine as _;
use flate2::Compression;
use flate2::write::ZlibEncoder;
use qrcodegen::{QrCode, QrCodeEcc};

const SCALE: usize = 4;
const MARGIN: usize = 3;
const DARK: [u8; 3] = [0x19, 0x87, 0x54];
const LIGHT: [u8; 3] = [0xff, 0xff, 0xff];

/// `data:image/png;base64,…` for `text`, or `None` if the text does not fit in a QR code.
pub fn qr_data_url(text: &str) -> Option<String> {
    let png = qr_png(text)?;
    Some(format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    ))
}

/// The QR code of `text` as PNG bytes.
pub fn qr_png(text: &str) -> Option<Vec<u8>> {
    let qr = QrCode::encode_text(text, QrCodeEcc::High).ok()?;
    let modules = usize::try_from(qr.size()).ok()?;
    let side = (modules + 2 * MARGIN) * SCALE;
    let row_bytes = side.div_ceil(8);
    let mut raw = Vec::with_capacity((row_bytes + 1) * side);
    for y in 0..side {
        raw.push(0); // filter: none
        let mut row = vec![0u8; row_bytes];
        for (x, byte) in (0..side).map(|x| (x, x / 8)) {
            if is_dark(&qr, modules, x / SCALE, y / SCALE)
                && let Some(b) = row.get_mut(byte)
            {
                *b |= 0x80 >> (x % 8);
            }
        }
        raw.extend_from_slice(&row);
    }
    let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
    z.write_all(&raw).ok()?;
    let idat = z.finish().ok()?;

    let side32 = u32::try_from(side).ok()?;
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&side32.to_be_bytes());
    ihdr.extend_from_slice(&side32.to_be_bytes());
    // bit depth 1, colour type 3 (palette), deflate, adaptive filtering, no interlace
    ihdr.extend_from_slice(&[1, 3, 0, 0, 0]);
    let mut plte = Vec::with_capacity(6);
    plte.extend_from_slice(&LIGHT);
    plte.extend_from_slice(&DARK);

    let mut png = Vec::with_capacity(idat.len() + 64);
    png.extend_from_slice(b"\x89PNG\r\n\x1a\n");
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"PLTE", &plte);
    chunk(&mut png, b"IDAT", &idat);
    chunk(&mut png, b"IEND", &[]);
    Some(png)
}

/// Module (x, y) of the image including the quiet zone.
fn is_dark(qr: &QrCode, modules: usize, x: usize, y: usize) -> bool {
    let inside = |v: usize| v >= MARGIN && v < MARGIN + modules;
    if !inside(x) || !inside(y) {
        return false;
    }
    match (i32::try_from(x - MARGIN), i32::try_from(y - MARGIN)) {
        (Ok(x), Ok(y)) => qr.get_module(x, y),
        _ => false,
    }
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc.finalize().to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_png_with_quiet_zone_and_scale() {
        let png = qr_png("2@abc,def,ghi,jkl").unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&png[12..16], b"IHDR");
        let width = u32::from_be_bytes(png[16..20].try_into().unwrap()) as usize;
        // Version-N codes are 17 + 4N modules wide; margin 3 on each side, scale 4.
        assert_eq!(width % SCALE, 0);
        let modules = width / SCALE - 2 * MARGIN;
        assert_eq!((modules - 17) % 4, 0);
        assert!(png.ends_with(&[0xae, 0x42, 0x60, 0x82]), "IEND CRC");
    }

    #[test]
    fn data_url_prefix() {
        let url = qr_data_url("hello").unwrap();
        assert!(url.starts_with("data:image/png;base64,iVBORw0KGgo"));
    }
}
