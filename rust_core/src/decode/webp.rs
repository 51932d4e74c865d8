//! WebP, lossy and lossless, still or animated (first frame). `image-webp` (pure Rust) reads the container, the
//! metadata and animated files; still images are decoded by libwebp (already linked for the encoder), which can
//! shrink while it decodes — row by row into its rescaler — the way libjpeg does with DCT scaling: a full-size decode
//! through image-webp was most of a large WebP's render time (bench/results/history.md), and libvips (sharp) shrinks
//! WebP on load.

use std::io::Cursor;

use image_webp::{DecodingError, WebPDecoder};

use libwebp_sys::{
    VP8StatusCode, WebPDecode, WebPDecoderConfig, WebPFreeDecBuffer, WebPInitDecoderConfig,
    WebPRGBABuffer, WEBP_CSP_MODE,
};

use super::{check_memory, memory_budget, Decoded, ShrinkPolicy};
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

pub fn decode(data: &[u8], limits: &Limits, shrink: ShrinkPolicy<'_>) -> Result<Decoded> {
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
    if !decoder.is_animated() {
        let denominator = shrink(width, height, orientation, false).clamp(1, 8);
        return Ok(Decoded {
            pixels: decode_still(data, width, height, denominator, decoder.has_alpha())?,
            format: Format::Webp,
            stored_width: width,
            stored_height: height,
            orientation,
            icc,
        });
    }
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

/// A still WebP through libwebp, shrunk to ceil(w / d) x ceil(h / d) while decoding, into a buffer of ours.
fn decode_still(data: &[u8], width: u32, height: u32, d: u32, alpha: bool) -> Result<Pixels> {
    let (out_w, out_h) = (width.div_ceil(d), height.div_ceil(d));
    let layout = if alpha { Layout::Rgba8 } else { Layout::Rgb8 };
    let stride = out_w as usize * layout.channels();
    let mut buffer = vec![0u8; stride * out_h as usize];
    // SAFETY: the config is initialised by libwebp; the output points into `buffer`, which outlives the call and
    // has exactly stride x height bytes; libwebp writes nothing past `size`.
    let status = unsafe {
        let mut config: WebPDecoderConfig = std::mem::zeroed();
        if !WebPInitDecoderConfig(&mut config) {
            return Err(Error::Internal(
                "WebP: decoder configuration (ABI mismatch)".into(),
            ));
        }
        if d > 1 {
            config.options.use_scaling = 1;
            config.options.scaled_width = out_w as i32;
            config.options.scaled_height = out_h as i32;
        }
        // Straight (not premultiplied) alpha, like the other decoders; the resizer premultiplies itself.
        config.output.colorspace = if alpha {
            WEBP_CSP_MODE::MODE_RGBA
        } else {
            WEBP_CSP_MODE::MODE_RGB
        };
        config.output.is_external_memory = 1;
        config.output.u.RGBA = WebPRGBABuffer {
            rgba: buffer.as_mut_ptr(),
            stride: stride as i32,
            size: buffer.len(),
        };
        let status = WebPDecode(data.as_ptr(), data.len(), &mut config);
        WebPFreeDecBuffer(&mut config.output);
        status
    };
    match status {
        VP8StatusCode::VP8_STATUS_OK => Ok(Pixels::new(out_w, out_h, layout, buffer)),
        VP8StatusCode::VP8_STATUS_OUT_OF_MEMORY => {
            Err(Error::Limit("WebP: the decoder ran out of memory".into()))
        }
        VP8StatusCode::VP8_STATUS_UNSUPPORTED_FEATURE => Err(Error::Unsupported(
            "WebP: a feature this decoder does not support".into(),
        )),
        VP8StatusCode::VP8_STATUS_NOT_ENOUGH_DATA => Err(Error::Decode(
            "WebP: the data ends early (truncated)".into(),
        )),
        other => Err(Error::Decode(format!(
            "WebP: libwebp could not decode it ({other:?})"
        ))),
    }
}
