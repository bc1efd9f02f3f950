//! Images: dimensions and the small JPEG preview (`jpegThumbnail`) WhatsApp shows before the
//! download, and stickers as 512×512 WebP. Decoding runs on a blocking thread with bounded
//! dimensions and allocation, so a hostile file cannot take the process's memory.

use std::io::{BufReader, Cursor};

use image::{DynamicImage, ImageFormat, ImageReader, Limits};

use super::MediaFile;

/// The longest side of a thumbnail, as WhatsApp Web makes them.
const THUMB_SIDE: u32 = 72;
/// Stickers are 512×512.
pub const STICKER_SIDE: u32 = 512;

/// What decoding an image gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picture {
    pub width: u32,
    pub height: u32,
    /// A JPEG of at most 72×72.
    pub jpeg_thumbnail: Vec<u8>,
}

/// The image cannot be decoded (corrupt, unsupported, or too large to decode).
#[derive(Debug, thiserror::Error)]
#[error("the image cannot be decoded: {0}")]
pub struct BadImage(pub String);

fn limits() -> Limits {
    let mut l = Limits::default();
    l.max_image_width = Some(16_384);
    l.max_image_height = Some(16_384);
    l.max_alloc = Some(256 * 1024 * 1024);
    l
}

fn decode(file: std::fs::File) -> Result<DynamicImage, BadImage> {
    let mut reader = ImageReader::new(BufReader::new(file))
        .with_guessed_format()
        .map_err(|e| BadImage(e.to_string()))?;
    reader.limits(limits());
    reader.decode().map_err(|e| BadImage(e.to_string()))
}

fn jpeg(img: &DynamicImage, quality: u8) -> Result<Vec<u8>, BadImage> {
    let mut out = Vec::new();
    let rgb = DynamicImage::ImageRgb8(img.to_rgb8());
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality);
    rgb.write_with_encoder(encoder)
        .map_err(|e| BadImage(e.to_string()))?;
    Ok(out)
}

/// Measures `file` and makes its thumbnail.
pub async fn inspect(file: &MediaFile) -> Result<Picture, BadImage> {
    let std_file = file.std_file().await.map_err(|e| BadImage(e.to_string()))?;
    tokio::task::spawn_blocking(move || {
        let img = decode(std_file)?;
        let thumb = img.thumbnail(THUMB_SIDE, THUMB_SIDE);
        Ok(Picture {
            width: img.width(),
            height: img.height(),
            jpeg_thumbnail: jpeg(&thumb, 60)?,
        })
    })
    .await
    .map_err(|e| BadImage(e.to_string()))?
}

/// A sticker from a PNG, JPEG or GIF (its first frame): fitted into 512×512 on a transparent
/// square and encoded as lossless WebP.
pub async fn to_sticker_webp(file: &MediaFile) -> Result<Vec<u8>, BadImage> {
    let std_file = file.std_file().await.map_err(|e| BadImage(e.to_string()))?;
    tokio::task::spawn_blocking(move || {
        let img = decode(std_file)?;
        let fitted = img.resize(
            STICKER_SIDE,
            STICKER_SIDE,
            image::imageops::FilterType::Triangle,
        );
        let mut canvas = image::RgbaImage::new(STICKER_SIDE, STICKER_SIDE);
        let x = i64::from((STICKER_SIDE - fitted.width()) / 2);
        let y = i64::from((STICKER_SIDE - fitted.height()) / 2);
        image::imageops::overlay(&mut canvas, &fitted.to_rgba8(), x, y);
        let mut out = Cursor::new(Vec::new());
        DynamicImage::ImageRgba8(canvas)
            .write_to(&mut out, ImageFormat::WebP)
            .map_err(|e| BadImage(e.to_string()))?;
        Ok(out.into_inner())
    })
    .await
    .map_err(|e| BadImage(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn file_of(bytes: &[u8]) -> MediaFile {
        let mut sink = super::super::Sink::new(1 << 24).await.unwrap();
        sink.write(bytes).await.unwrap();
        sink.finish().await.unwrap()
    }

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mut out = Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(img)
            .write_to(&mut out, ImageFormat::Png)
            .unwrap();
        out.into_inner()
    }

    #[tokio::test]
    async fn measures_and_thumbnails() {
        let pic = inspect(&file_of(&png(300, 150)).await).await.unwrap();
        assert_eq!((pic.width, pic.height), (300, 150));
        assert_eq!(&pic.jpeg_thumbnail[..3], &[0xFF, 0xD8, 0xFF]);
        let thumb = image::load_from_memory(&pic.jpeg_thumbnail).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (72, 36));
        assert!(
            inspect(&file_of(b"\x89PNG\r\n\x1a\nbroken").await)
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn stickers_are_512_webp() {
        let webp = to_sticker_webp(&file_of(&png(100, 50)).await)
            .await
            .unwrap();
        assert_eq!(&webp[..4], b"RIFF");
        let back = image::load_from_memory(&webp).unwrap();
        assert_eq!((back.width(), back.height()), (512, 512));
    }
}
