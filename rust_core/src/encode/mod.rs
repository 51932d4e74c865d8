//! Pixels → bytes in the requested format (JPEG flattens alpha onto white; WebP keeps it). Output is always freshly encoded and carries no metadata (no EXIF, no
//! GPS, no ICC: pixels are sRGB and untagged sRGB is what browsers assume).

mod jpeg;
mod webp;

use crate::error::Result;
use crate::pixels::{Layout, Pixels};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OutputFormat {
    Jpeg,
    /// Lossy WebP; keeps alpha.
    Webp,
}

/// What the rest of the system needs to know of an output format: its name (in options, logs and metadata), the
/// Content-Type it is served with and the extension of its keys and files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormatInfo {
    pub format: OutputFormat,
    pub name: &'static str,
    pub content_type: &'static str,
    pub extension: &'static str,
}

/// Every output format, once. Python reads it (`kiray_imaging._core.OUTPUT_FORMATS`), so a new format is a variant,
/// a row here and an arm in `encode`.
pub const OUTPUT_FORMATS: [FormatInfo; 2] = [
    FormatInfo {
        format: OutputFormat::Jpeg,
        name: "jpeg",
        content_type: "image/jpeg",
        extension: ".jpg",
    },
    FormatInfo {
        format: OutputFormat::Webp,
        name: "webp",
        content_type: "image/webp",
        extension: ".webp",
    },
];

impl OutputFormat {
    pub fn info(self) -> &'static FormatInfo {
        OUTPUT_FORMATS
            .iter()
            .find(|info| info.format == self)
            .expect("every OutputFormat has a row in OUTPUT_FORMATS")
    }

    pub fn name(self) -> &'static str {
        self.info().name
    }

    pub fn content_type(self) -> &'static str {
        self.info().content_type
    }

    pub fn extension(self) -> &'static str {
        self.info().extension
    }

    /// The format called `name` in `OUTPUT_FORMATS`.
    pub fn from_name(name: &str) -> Option<OutputFormat> {
        OUTPUT_FORMATS
            .iter()
            .find(|info| info.name == name)
            .map(|info| info.format)
    }
}

pub fn encode(pixels: &Pixels, format: OutputFormat, quality: u8) -> Result<Vec<u8>> {
    match format {
        OutputFormat::Jpeg => {
            let rgb = match pixels.layout {
                Layout::Rgb8 => std::borrow::Cow::Borrowed(&pixels.data),
                Layout::Rgba8 => std::borrow::Cow::Owned(flatten_onto_white(&pixels.data)),
            };
            jpeg::encode_rgb(pixels.width, pixels.height, &rgb, quality)
        }
        OutputFormat::Webp => webp::encode(pixels, quality),
    }
}

/// JPEG has no alpha: composite straight-alpha RGBA over white (what a listing page shows behind it).
pub(crate) fn flatten_onto_white(rgba: &[u8]) -> Vec<u8> {
    rgba.chunks_exact(4)
        .flat_map(|p| {
            let a = u32::from(p[3]);
            let over = |c: u8| ((u32::from(c) * a + 255 * (255 - a) + 127) / 255) as u8;
            [over(p[0]), over(p[1]), over(p[2])]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_has_one_row() {
        for info in OUTPUT_FORMATS {
            assert_eq!(info.format.info(), &info);
            assert_eq!(OutputFormat::from_name(info.name), Some(info.format));
            assert!(info.extension.starts_with('.'));
        }
        assert_eq!(OutputFormat::from_name("avif"), None);
    }

    #[test]
    fn flattening_uses_white() {
        assert_eq!(
            flatten_onto_white(&[0, 0, 0, 0, 10, 20, 30, 255, 0, 0, 0, 128]),
            vec![255, 255, 255, 10, 20, 30, 127, 127, 127]
        );
    }
}
