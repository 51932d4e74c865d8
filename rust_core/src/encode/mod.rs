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

impl OutputFormat {
    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpeg",
            OutputFormat::Webp => "webp",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "image/jpeg",
            OutputFormat::Webp => "image/webp",
        }
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
fn flatten_onto_white(rgba: &[u8]) -> Vec<u8> {
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
    fn flattening_uses_white() {
        assert_eq!(
            flatten_onto_white(&[0, 0, 0, 0, 10, 20, 30, 255, 0, 0, 0, 128]),
            vec![255, 255, 255, 10, 20, 30, 127, 127, 127]
        );
    }
}
