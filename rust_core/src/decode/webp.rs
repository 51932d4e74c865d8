//! WebP, lossy and lossless, still or animated (first frame), via the pure-Rust `image-webp`.

use std::io::Cursor;

use image_webp::{DecodingError, WebPDecoder};

use super::{check_memory, memory_budget, Decoded};
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::orient::{orientation_from_exif, Orientation};
use crate::pixels::{Layout, Pixels};
use crate::sniff::Format;

fn err(e: DecodingError) -> Error {
    match e {
        DecodingError::MemoryLimitExceeded | DecodingError::ImageTooLarge => {
            Error::Limit(format!("WebP: {e}"))
        }
        other => Error::Decode(format!("WebP: {other}")),
    }
}

pub fn decode(data: &[u8], limits: &Limits) -> Result<Decoded> {
    let mut decoder = WebPDecoder::new(Cursor::new(data)).map_err(err)?;
    decoder.set_memory_limit(memory_budget(limits));
    let (width, height) = decoder.dimensions();
    limits.check_dimensions(width, height)?;
    // image-webp decodes into buffers of its own before filling ours; its peak, in bytes per pixel, measured on
    // 7000x7000 images (a 2 KB lossless WebP of that size took 340 MB resident, a lossy one with alpha 500 MB).
    let peak = match (
        decoder.is_animated(),
        decoder.is_lossy(),
        decoder.has_alpha(),
    ) {
        // The RGBA canvas, the decoded frame and our copy.
        (true, _, _) => 12.0,
        // Y, U and V planes, then RGB.
        (false, true, false) => 4.5,
        // The planes, RGBA, and the alpha plane (itself decoded as a lossless RGBA image).
        (false, true, true) => 10.5,
        // Decoded to RGBA, then copied to RGB.
        (false, false, false) => 7.0,
        (false, false, true) => 4.0,
    };
    check_memory(limits, width, height, peak, "WebP")?;
    let orientation = decoder
        .exif_metadata()
        .map_err(err)?
        .map_or(Orientation::NORMAL, |exif| orientation_from_exif(&exif));
    let icc = decoder.icc_profile().map_err(err)?;
    let size = decoder
        .output_buffer_size()
        .ok_or_else(|| Error::Limit("WebP: frame size overflows".into()))?;
    let mut buffer = vec![0u8; size];
    decoder.read_image(&mut buffer).map_err(err)?;
    let layout = if decoder.has_alpha() {
        Layout::Rgba8
    } else {
        Layout::Rgb8
    };
    Ok(Decoded {
        pixels: Pixels::new(width, height, layout, buffer),
        format: Format::Webp,
        stored_width: width,
        stored_height: height,
        orientation,
        icc,
    })
}
