//! Which format the bytes are, by their magic numbers only: never by file name or Content-Type.

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jpeg,
    Png,
    Webp,
    Gif,
}

pub fn sniff(data: &[u8]) -> Result<Format> {
    if data.is_empty() {
        return Err(Error::Decode("input is empty (0 bytes)".into()));
    }
    if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(Format::Jpeg);
    }
    if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok(Format::Png);
    }
    if data.len() >= 12 && &data[0..4] == b"RIFF" && &data[8..12] == b"WEBP" {
        return Ok(Format::Webp);
    }
    if data.starts_with(b"GIF87a") || data.starts_with(b"GIF89a") {
        return Ok(Format::Gif);
    }
    Err(match known_unsupported(data) {
        Some(name) => Error::Unsupported(format!("{name} input is not supported")),
        None => Error::Unsupported(format!(
            "not a supported image (JPEG, PNG, WebP or GIF); the input starts with {}",
            hex_prefix(data)
        )),
    })
}

/// Formats we recognise only to name them in the error, so the log says "HEIF" rather than "garbage".
fn known_unsupported(data: &[u8]) -> Option<&'static str> {
    if data.len() >= 12 && &data[4..8] == b"ftyp" {
        let brand = &data[8..12];
        return Some(match brand {
            b"avif" | b"avis" => "AVIF",
            b"heic" | b"heix" | b"hevc" | b"hevx" | b"heim" | b"heis" | b"mif1" | b"msf1" => {
                "HEIF/HEIC"
            }
            _ => "ISO base media (MP4/MOV/HEIF family)",
        });
    }
    let text_start = data
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map(|i| &data[i..])
        .unwrap_or(&[]);
    let lower: Vec<u8> = text_start
        .iter()
        .take(64)
        .map(u8::to_ascii_lowercase)
        .collect();
    if lower.starts_with(b"<svg") || lower.starts_with(b"<?xml") {
        return Some("SVG/XML");
    }
    if lower.starts_with(b"<!doctype html") || lower.starts_with(b"<html") {
        return Some("HTML");
    }
    if data.starts_with(b"II*\0") || data.starts_with(b"MM\0*") {
        return Some("TIFF");
    }
    if data.starts_with(b"BM") {
        return Some("BMP");
    }
    if data.starts_with(b"%PDF") {
        return Some("PDF");
    }
    if data.starts_with(b"8BPS") {
        return Some("PSD");
    }
    if data.starts_with(&[0, 0, 1, 0]) {
        return Some("ICO");
    }
    if data.starts_with(&[0xFF, 0x0A]) || data.starts_with(b"\0\0\0\x0cJXL ") {
        return Some("JPEG XL");
    }
    None
}

fn hex_prefix(data: &[u8]) -> String {
    data.iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_numbers() {
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]).unwrap(), Format::Jpeg);
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n....").unwrap(), Format::Png);
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 ").unwrap(), Format::Webp);
        assert_eq!(sniff(b"GIF89a....").unwrap(), Format::Gif);
    }

    #[test]
    fn unsupported_formats_are_named() {
        let heic = b"\0\0\0\x18ftypheic\0\0\0\0";
        assert_eq!(
            sniff(heic).unwrap_err(),
            Error::Unsupported("HEIF/HEIC input is not supported".into())
        );
        let svg = b"  <svg xmlns='http://www.w3.org/2000/svg'/>";
        assert!(matches!(sniff(svg), Err(Error::Unsupported(m)) if m.contains("SVG")));
        assert!(
            matches!(sniff(b"hello world"), Err(Error::Unsupported(m)) if m.contains("68 65 6c"))
        );
    }

    #[test]
    fn empty_input_is_a_decode_error() {
        assert!(matches!(sniff(b""), Err(Error::Decode(_))));
    }
}
