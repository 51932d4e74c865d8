//! Which format the bytes are, by their magic numbers only: never by file name or Content-Type.

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jpeg,
    Png,
    Webp,
    Gif,
    Avif,
}

impl Format {
    /// The name Python and the logs use for it (`source_format`).
    pub fn name(self) -> &'static str {
        match self {
            Format::Jpeg => "jpeg",
            Format::Png => "png",
            Format::Webp => "webp",
            Format::Gif => "gif",
            Format::Avif => "avif",
        }
    }

    /// Every format the core reads.
    pub const ALL: [Format; 5] = [
        Format::Jpeg,
        Format::Png,
        Format::Webp,
        Format::Gif,
        Format::Avif,
    ];

    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == name)
    }
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
    if is_avif(data) {
        return Ok(Format::Avif);
    }
    Err(match known_unsupported(data) {
        Some(name) => Error::Unsupported(format!("{name} input is not supported")),
        None => Error::Unsupported(format!(
            "not a supported image (JPEG, PNG, WebP, GIF or AVIF); the input starts with {}",
            hex_prefix(data)
        )),
    })
}

/// AVIF by its `ftyp` box: major brand `avif` (still) or `avis` (sequence: its primary image, if it has one), or
/// the generic HEIF brands `mif1`/`miaf` with `avif` among the compatible brands. HEIC's brands stay refused.
fn is_avif(data: &[u8]) -> bool {
    // A truncated ftyp still names its major brand: the AVIF decoder then says what is wrong with the file.
    if data.len() >= 12 && &data[4..8] == b"ftyp" && matches!(&data[8..12], b"avif" | b"avis") {
        return true;
    }
    let Some((major, mut compatible)) = crate::decode::ftyp_brands(data) else {
        return false;
    };
    match &major {
        b"avif" | b"avis" => true,
        b"mif1" | b"miaf" => compatible.any(|b| b == b"avif"),
        _ => false,
    }
}

/// Formats we recognise only to name them in the error, so the log says "HEIF" rather than "garbage".
fn known_unsupported(data: &[u8]) -> Option<&'static str> {
    if data.len() >= 12 && &data[4..8] == b"ftyp" {
        let brand = &data[8..12];
        return Some(match brand {
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

    fn ftyp(major: &[u8; 4], compatible: &[&[u8; 4]]) -> Vec<u8> {
        let mut v = ((16 + 4 * compatible.len()) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(b"ftyp");
        v.extend_from_slice(major);
        v.extend_from_slice(&[0; 4]);
        for c in compatible {
            v.extend_from_slice(*c);
        }
        v
    }

    #[test]
    fn avif_by_its_brands() {
        for f in [
            ftyp(b"avif", &[b"mif1", b"miaf"]),
            ftyp(b"avis", &[b"avif", b"msf1"]),
            ftyp(b"mif1", &[b"miaf", b"avif"]),
            ftyp(b"miaf", &[b"avif"]),
        ] {
            assert_eq!(sniff(&f).unwrap(), Format::Avif, "{f:?}");
        }
        // HEIC, and a HEIF that is not AVIF, stay refused by name.
        for f in [
            ftyp(b"heic", &[b"mif1", b"heic"]),
            ftyp(b"mif1", &[b"heic", b"miaf"]),
        ] {
            assert_eq!(
                sniff(&f).unwrap_err(),
                Error::Unsupported("HEIF/HEIC input is not supported".into())
            );
        }
        // An ftyp box whose size runs past the data is not trusted for its brands.
        let mut short = ftyp(b"mif1", &[b"avif"]);
        short.truncate(18);
        assert!(matches!(sniff(&short), Err(Error::Unsupported(m)) if m.starts_with("HEIF/HEIC")));
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
