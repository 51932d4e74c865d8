//! Bytes → pixels. Each format has its module; all of them check the declared size against the limits before
//! allocating, read the EXIF orientation, and return 8-bit RGB(A).

mod gif;
mod jpeg;
mod png;
mod webp;

use crate::error::Result;
use crate::limits::Limits;
use crate::orient::Orientation;
use crate::pixels::Pixels;
use crate::sniff::{sniff, Format};

pub struct Decoded {
    /// Possibly shrunk on load (JPEG): see `shrink`.
    pub pixels: Pixels,
    pub format: Format,
    /// The size stored in the file, before any shrink-on-load and before orientation.
    pub stored_width: u32,
    pub stored_height: u32,
    pub orientation: Orientation,
    /// The embedded ICC profile of RGB/grey pixels, still to be applied (CMYK is converted by the decoder).
    pub icc: Option<Vec<u8>>,
}

/// Given the stored size and orientation, the largest power-of-two denominator the decoder may shrink by.
pub type ShrinkPolicy<'a> = &'a dyn Fn(u32, u32, Orientation) -> u32;

pub fn decode(data: &[u8], limits: &Limits, shrink: ShrinkPolicy<'_>) -> Result<Decoded> {
    limits.check_input_len(data.len())?;
    match sniff(data)? {
        Format::Jpeg => jpeg::decode(data, limits, shrink),
        Format::Png => png::decode(data, limits),
        Format::Webp => webp::decode(data, limits),
        Format::Gif => gif::decode(data, limits),
    }
}

/// Bytes a decoder may allocate for one image: the largest allowed frame as RGBA, plus slack for its internals.
fn allocation_budget(limits: &Limits) -> usize {
    usize::try_from(limits.max_pixels.saturating_mul(4).saturating_add(64 << 20))
        .unwrap_or(usize::MAX)
}
