//! PNG (and APNG's default image) via the `png` crate, CRCs checked, read through to IEND.

use std::io::Cursor;

use png::{BitDepth, ColorType, Transformations};

use super::{allocation_budget, Decoded};
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::orient::{orientation_from_exif, Orientation};
use crate::pixels::{grey_to_rgb, Layout, Pixels};
use crate::sniff::Format;

fn err(e: png::DecodingError) -> Error {
    match e {
        png::DecodingError::LimitsExceeded => {
            Error::Limit("PNG: decoding would exceed the memory limit".into())
        }
        other => Error::Decode(format!("PNG: {other}")),
    }
}

pub fn decode(data: &[u8], limits: &Limits) -> Result<Decoded> {
    let budget = png::Limits {
        bytes: allocation_budget(limits),
    };
    let mut decoder = png::Decoder::new_with_limits(Cursor::new(data), budget);
    let header = decoder.read_header_info().map_err(err)?;
    let (stored_width, stored_height) = (header.width, header.height);
    limits.check_dimensions(stored_width, stored_height)?;
    // Palette and tRNS to RGB(A), 1–4-bit grey to 8-bit, 16-bit to 8-bit: the output is 8-bit anyway.
    decoder.set_transformations(Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(err)?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| Error::Limit("PNG: frame size overflows".into()))?;
    let mut buffer = vec![0u8; size];
    let frame = reader.next_frame(&mut buffer).map_err(err)?;
    buffer.truncate(frame.buffer_size());
    // Truncation after the image data (no IEND) is still a damaged file.
    reader.finish().map_err(err)?;
    let orientation = reader
        .info()
        .exif_metadata
        .as_deref()
        .map_or(Orientation::NORMAL, orientation_from_exif);

    let icc = reader.info().icc_profile.as_deref().map(<[u8]>::to_vec);
    let (color, depth) = reader.output_color_type();
    if depth != BitDepth::Eight {
        return Err(Error::Decode(format!(
            "PNG: unexpected output depth {depth:?}"
        )));
    }
    let (layout, data) = match color {
        ColorType::Rgb => (Layout::Rgb8, buffer),
        ColorType::Rgba => (Layout::Rgba8, buffer),
        ColorType::Grayscale => (Layout::Rgb8, grey_to_rgb(&buffer, false)),
        ColorType::GrayscaleAlpha => (Layout::Rgba8, grey_to_rgb(&buffer, true)),
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
