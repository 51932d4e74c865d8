//! Bytes → pixels. Each format has its module; all of them check the declared size against the limits before
//! allocating, read the orientation (EXIF; irot/imir for AVIF), and return 8-bit RGB(A).

mod avif;
mod gif;
mod heif;
mod jpeg;
mod jpeg_markers;
mod jpeg_scans;
mod png;
mod webp;

use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::orient::Orientation;
use crate::pixels::{Layout, Pixels};
use crate::sniff::{sniff, Format};

/// The brands of an ISO BMFF `ftyp` box, for `sniff`.
pub(crate) use heif::brands as ftyp_brands;

pub struct Decoded {
    /// Possibly shrunk on load (JPEG, still WebP): see `shrink`.
    pub pixels: Pixels,
    pub format: Format,
    /// The size stored in the file, before any shrink-on-load and before orientation.
    pub stored_width: u32,
    pub stored_height: u32,
    pub orientation: Orientation,
    /// The embedded ICC profile of RGB/grey pixels, still to be applied (CMYK is converted by the decoder).
    pub icc: Option<Vec<u8>>,
}

/// What a row-by-row decode (`decode_rows`) knows before its first row.
pub struct Frame {
    pub format: Format,
    pub stored_width: u32,
    pub stored_height: u32,
    pub orientation: Orientation,
    /// The size of the rows that follow (after any shrink-on-load).
    pub width: u32,
    pub height: u32,
    /// The embedded ICC profile of RGB/grey pixels, still to be applied (CMYK is converted by the decoder).
    pub icc: Option<Vec<u8>>,
}

/// Where a row-by-row decode delivers its pixels: `begin` once, then whole 8-bit RGB rows, top to bottom, a few
/// at a time. The rows are the sink's to change (colour conversion in place).
pub trait RowSink {
    fn begin(&mut self, frame: Frame) -> Result<()>;
    fn rows(&mut self, rows: &mut [u8]) -> Result<()>;
}

/// Decodes a JPEG into `sink` row by row: the full-size decoded image never exists (libjpeg keeps only what its
/// format needs: a few rows of a baseline file, the coefficients of a progressive one).
pub fn decode_jpeg_rows(
    data: &[u8],
    limits: &Limits,
    shrink: ShrinkPolicy<'_>,
    sink: &mut dyn RowSink,
) -> Result<()> {
    limits.check_input_len(data.len())?;
    jpeg::decode_rows(data, limits, shrink, sink)
}

/// Given the stored size, the orientation and whether a 1/8 decode is far cheaper than any other scale for this
/// file (a progressive JPEG: its DC scans alone, see `jpeg_scans`), the largest power-of-two denominator the
/// decoder may shrink by.
pub type ShrinkPolicy<'a> = &'a dyn Fn(u32, u32, Orientation, bool) -> u32;

pub fn decode(data: &[u8], limits: &Limits, shrink: ShrinkPolicy<'_>) -> Result<Decoded> {
    limits.check_input_len(data.len())?;
    let mut decoded = match sniff(data)? {
        Format::Jpeg => jpeg::decode(data, limits, shrink),
        Format::Png => png::decode(data, limits),
        Format::Webp => webp::decode(data, limits, shrink),
        Format::Gif => gif::decode(data, limits),
        Format::Avif => avif::decode(data, limits),
    }?;
    decoded.pixels = settle_alpha(decoded.pixels, limits)?;
    Ok(decoded)
}

/// Bytes the pixel buffers of one render may take at their peak: the largest allowed frame as RGBA, plus 32 MiB for
/// decoder internals (232 MB by default). With the interpreter and the core (~20 MB) a render stays within the
/// 256 MB a hostile upload may cost. Also the allocation limit handed to libjpeg and to the PNG, WebP and GIF crates.
fn memory_budget(limits: &Limits) -> usize {
    usize::try_from(limits.max_pixels.saturating_mul(4).saturating_add(32 << 20))
        .unwrap_or(usize::MAX)
}

/// Refuses, from the header and before anything is allocated, an image whose decoder would need more than the
/// memory budget: `peak_bytes_per_pixel` is what its buffers add up to at their peak, per stored pixel.
fn check_memory(
    limits: &Limits,
    width: u32,
    height: u32,
    peak_bytes_per_pixel: f64,
    what: &str,
) -> Result<()> {
    let needed = f64::from(width) * f64::from(height) * peak_bytes_per_pixel;
    let budget = memory_budget(limits);
    if needed > budget as f64 {
        return Err(Error::Limit(format!(
            "{what}: decoding {width}x{height} would take {} MB, more than the memory limit of {} MB",
            (needed / 1e6).ceil(),
            budget / 1_000_000
        )));
    }
    Ok(())
}

/// RGBA with nothing transparent becomes RGB here, in place: the render would otherwise copy it to RGB, holding both
/// (4 + 3 bytes per pixel). RGBA with transparency is resized premultiplied: in place for one preset, but every preset
/// of `render_many` except the last takes a second full copy, so two copies must fit the memory budget (a 49 MP
/// transparent PNG peaked at 400 MB when every render copied).
fn settle_alpha(mut pixels: Pixels, limits: &Limits) -> Result<Pixels> {
    if pixels.layout != Layout::Rgba8 {
        return Ok(pixels);
    }
    if pixels.has_transparency() {
        let needed = pixels.data.len().saturating_mul(2);
        let budget = memory_budget(limits);
        if needed > budget {
            return Err(Error::Limit(format!(
                "{}x{} with transparency would take {} MB to resize, more than the memory limit of {} MB",
                pixels.width,
                pixels.height,
                needed.div_ceil(1_000_000),
                budget / 1_000_000
            )));
        }
        return Ok(pixels);
    }
    let count = pixels.data.len() / 4;
    for i in 0..count {
        // Left to right: pixel i moves from 4i to 3i, never over a pixel still to be read.
        pixels.data.copy_within(4 * i..4 * i + 3, 3 * i);
    }
    pixels.data.truncate(count * 3);
    // Gives the freed quarter back (for a large buffer, glibc shrinks the mapping in place).
    pixels.data.shrink_to_fit();
    Ok(Pixels::new(
        pixels.width,
        pixels.height,
        Layout::Rgb8,
        pixels.data,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opaque_rgba_becomes_rgb_in_place() {
        let rgba = Pixels::new(2, 1, Layout::Rgba8, vec![1, 2, 3, 255, 4, 5, 6, 255]);
        let rgb = settle_alpha(rgba, &Limits::default()).unwrap();
        assert_eq!(
            (rgb.layout, rgb.data),
            (Layout::Rgb8, vec![1, 2, 3, 4, 5, 6])
        );
    }

    #[test]
    fn transparency_is_kept_within_the_budget_and_refused_past_it() {
        let rgba = Pixels::new(2, 1, Layout::Rgba8, vec![1, 2, 3, 0, 4, 5, 6, 255]);
        let kept = settle_alpha(rgba.clone(), &Limits::default()).unwrap();
        assert_eq!(kept, rgba);
        // A budget of 1 pixel × 4 + 32 MiB; the image is made to need more by claiming a huge size.
        let tiny = Limits {
            max_pixels: 1,
            ..Limits::default()
        };
        let big = Pixels {
            width: 4096,
            height: 4096,
            layout: Layout::Rgba8,
            data: vec![0; 4096 * 4096 * 4],
        };
        assert!(matches!(settle_alpha(big, &tiny), Err(Error::Limit(_))));
    }
}
