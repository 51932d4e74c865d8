//! PNG (and APNG's default image) via the `png` crate, CRCs checked, read through to IEND.

use std::io::Cursor;

use png::{BitDepth, ColorType, Transformations};

use super::{memory_budget, Decoded};
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::orient::{orientation_from_exif, Orientation};
use crate::pixels::{grey_to_rgb, Layout, Pixels};
use crate::sniff::Format;

/// What the first pass, which only reads the ICC profile, may allocate: the largest profile we would use, and
/// room for the chunk that carries it.
const PROFILE_PASS_BYTES: usize = 2 * crate::colour::MAX_PROFILE_BYTES;

fn err(e: png::DecodingError) -> Error {
    match e {
        png::DecodingError::LimitsExceeded => {
            Error::Limit("PNG: decoding would exceed the memory limit".into())
        }
        other => Error::Decode(format!("PNG: {other}")),
    }
}

/// The embedded ICC profile, read by a pass of its own that stops at the first IDAT. iCCP is zlib-compressed and
/// the png crate inflates it bounded only by its memory limit, which for the pixel pass is the whole budget: a
/// 1 MB iCCP chunk of zeros took a 64x48 image to 270 MB resident. Here the limit is a few MB, so such a profile
/// fails to inflate (the crate then drops it) and the pixel pass below ignores iCCP altogether. Any other failure
/// also means no profile: the pixel pass reports damage.
fn icc_profile(data: &[u8]) -> Option<Vec<u8>> {
    let limits = png::Limits {
        bytes: PROFILE_PASS_BYTES,
    };
    let mut decoder = png::Decoder::new_with_limits(Cursor::new(data), limits);
    decoder.set_ignore_text_chunk(true);
    let reader = decoder.read_info().ok()?;
    let profile = reader.info().icc_profile.as_deref()?;
    Some(profile.to_vec())
}

pub fn decode(data: &[u8], limits: &Limits) -> Result<Decoded> {
    let budget = png::Limits {
        bytes: memory_budget(limits),
    };
    let mut decoder = png::Decoder::new_with_limits(Cursor::new(data), budget);
    // Text is never used; skipping it also spares buffering and copying megabytes of tEXt/zTXt/iTXt.
    decoder.set_ignore_text_chunk(true);
    decoder.set_ignore_iccp_chunk(true);
    let header = decoder.read_header_info().map_err(err)?;
    let (stored_width, stored_height) = (header.width, header.height);
    limits.check_dimensions(stored_width, stored_height)?;
    // Palette and tRNS to RGB(A), 1–4-bit grey to 8-bit, 16-bit to 8-bit: the output is 8-bit anyway.
    decoder.set_transformations(Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(err)?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| Error::Limit("PNG: frame size overflows".into()))?;
    // Grey with alpha becomes RGBA: decoded into the front of a buffer already that size and expanded in place, so
    // it never needs the 2 + 4 bytes per pixel of a copy (a 49 MP grey+alpha PNG would otherwise peak at 300 MB).
    let grey_alpha = reader.output_color_type().0 == ColorType::GrayscaleAlpha;
    let mut buffer = vec![0u8; if grey_alpha { size * 2 } else { size }];
    let frame = reader.next_frame(&mut buffer).map_err(err)?;
    let decoded_len = frame.buffer_size();
    // Truncation after the image data (no IEND) is still a damaged file.
    reader.finish().map_err(err)?;
    let orientation = reader
        .info()
        .exif_metadata
        .as_deref()
        .map_or(Orientation::NORMAL, orientation_from_exif);

    let icc = icc_profile(data);
    let (color, depth) = reader.output_color_type();
    if depth != BitDepth::Eight {
        return Err(Error::Decode(format!(
            "PNG: unexpected output depth {depth:?}"
        )));
    }
    let (layout, data) = match color {
        ColorType::Rgb => (Layout::Rgb8, truncated(buffer, decoded_len)),
        ColorType::Rgba => (Layout::Rgba8, truncated(buffer, decoded_len)),
        // A copy, but 1 + 3 bytes per pixel is no more than an RGBA frame, which the budget allows.
        ColorType::Grayscale => (Layout::Rgb8, grey_to_rgb(&buffer[..decoded_len], false)),
        ColorType::GrayscaleAlpha => (
            Layout::Rgba8,
            grey_alpha_to_rgba_in_place(buffer, decoded_len),
        ),
        ColorType::Indexed => return Err(Error::Decode("PNG: palette was not expanded".into())),
    };
    Ok(Decoded {
        pixels: Pixels::new(frame.width, frame.height, layout, data),
        format: Format::Png,
        stored_width,
        stored_height,
        orientation,
        icc,
    })
}

fn truncated(mut buffer: Vec<u8>, len: usize) -> Vec<u8> {
    buffer.truncate(len);
    buffer
}

/// `buffer` holds `len` bytes of grey+alpha pairs at its front and has room for twice that: expands them to RGBA
/// from the back, where every write lands at or after the pair it comes from, so nothing unread is overwritten.
fn grey_alpha_to_rgba_in_place(mut buffer: Vec<u8>, len: usize) -> Vec<u8> {
    let pixels = len / 2;
    buffer.truncate(pixels * 4);
    for i in (0..pixels).rev() {
        let (g, a) = (buffer[2 * i], buffer[2 * i + 1]);
        buffer[4 * i..4 * i + 4].copy_from_slice(&[g, g, g, a]);
    }
    buffer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grey_alpha_expands_in_place() {
        let mut buffer = vec![10, 200, 20, 100, 30, 0];
        buffer.resize(12, 0xEE);
        assert_eq!(
            grey_alpha_to_rgba_in_place(buffer, 6),
            vec![10, 10, 10, 200, 20, 20, 20, 100, 30, 30, 30, 0]
        );
    }
}
