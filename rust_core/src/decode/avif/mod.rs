//! AVIF still images: the HEIF container (`heif`) read by our own parser, its item graph (`items`), the AV1 data
//! decoded by `rav1d` (the pure-Rust port of dav1d; see Cargo.toml for why without assembly) through `av1`, the only
//! file with `unsafe`, then Y′CbCr to 8-bit RGB(A) in `ycbcr`.
//!
//! - Size: `ispe` is checked against the limits and the memory budget before the AV1 decoder runs, the decoder's
//!   own frame-size limit is the `ispe` area, and the decoded picture must be exactly the `ispe` size.
//! - Pixels: matrix coefficients from `colr nclx`, else from the AV1 sequence header (unspecified = BT.601, as
//!   libavif does); the range from the AV1 sequence header (what the decoder produced); 4:2:0 and 4:2:2 chroma
//!   upsampled bilinearly (centre-sited); 10/12-bit rounded to 8; monochrome as grey.
//! - Alpha: the auxiliary item with the alpha URN that refers to the image (`auxl`), decoded the same way; a `prem`
//!   reference means the colour was premultiplied, undone here (the rest of the pipeline has straight alpha).
//! - Grids (`grid` items): each tile decoded in turn straight into the output canvas, cropped to the grid's size.
//! - Orientation: `irot` then `imir` (the order HEIF applies them), as the equivalent EXIF orientation; EXIF in the
//!   file is ignored for orientation, irot/imir being normative. `clap` (a crop) is not applied.
//! - Colour: an ICC profile (`colr prof`) is passed on; `nclx` primaries other than BT.709 become an ICC profile
//!   built by moxcms from the code points, so the colour stage converts them to sRGB like a Display P3 JPEG. PQ
//!   and HLG (HDR) are refused: mapping HDR to SDR is a tone-mapping choice, not a conversion.
//! - No shrink-on-load: AV1 has no reduced-resolution decode.

mod av1;
mod items;
mod ycbcr;

use moxcms::{
    CicpColorPrimaries, CicpProfile, ColorProfile, MatrixCoefficients, TransferCharacteristics,
};

use super::heif::{self, corrupt, unsupported, Heif, Item};
use super::{check_memory, Decoded};
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::pixels::{Layout, Pixels};
use crate::sniff::Format;
use items::Props;
use ycbcr::{Canvas, Target};

pub fn decode(data: &[u8], limits: &Limits) -> Result<Decoded> {
    let heif = heif::parse(data)?;
    let primary = items::primary(&heif)?;
    let colour_props = items::props(&heif, primary)?;
    let (width, height) = items::size_of(primary, &colour_props)?;
    limits.check_dimensions(width, height)?;

    let alpha = items::find_alpha(&heif, primary.id)?;
    let premultiplied = alpha.is_some_and(|a| items::premultiplied(&heif, primary, a));
    // At the peak: our RGB(A) output, the AV1 picture (its planes, by the sequence header the decoder will read:
    // 1.5 bytes per pixel for 8-bit 4:2:0, up to 6 for 16-bit 4:4:4), rav1d's per-frame state, and for alpha its
    // picture too (assumed as large as the colour's).
    let channels = if alpha.is_some() { 4 } else { 3 };
    let picture = picture_bytes_per_pixel(&heif, primary)?;
    let peak = channels as f64
        + RAV1D_STATE_BYTES_PER_PIXEL
        + picture * if alpha.is_some() { 2.0 } else { 1.0 };
    check_memory(limits, width, height, peak, "AVIF")?;

    let colour = colour_from(&colour_props)?;
    let mut out = vec![0u8; width as usize * height as usize * channels];
    let canvas = Canvas {
        width,
        height,
        channels,
    };
    items::render_item(
        &heif,
        primary,
        &canvas,
        &mut out,
        Target::Colour(colour.matrix),
    )?;
    if let Some(alpha) = alpha {
        let alpha_props = items::props(&heif, alpha)?;
        if items::size_of(alpha, &alpha_props)? != (width, height) {
            return Err(corrupt(format_args!(
                "the alpha item {} is not the image's size",
                alpha.id
            )));
        }
        items::render_item(&heif, alpha, &canvas, &mut out, Target::Alpha)?;
        if premultiplied {
            ycbcr::unpremultiply(&mut out);
        }
    }
    let layout = if alpha.is_some() {
        Layout::Rgba8
    } else {
        Layout::Rgb8
    };
    Ok(Decoded {
        pixels: Pixels::new(width, height, layout, out),
        format: Format::Avif,
        stored_width: width,
        stored_height: height,
        orientation: items::orientation(colour_props.rotation, colour_props.mirror),
        icc: colour.icc,
    })
}

/// rav1d's own buffers while it decodes a frame (block and mode info, loop-filter and CDEF state), per pixel.
/// Measured: a fresh process rendering a 12 MP and a 27 MP 8-bit 4:2:0 photo peaked at 4.5 bytes a pixel over the
/// interpreter's 16 MB, all told (3 of them our RGB, 1.5 the AV1 planes); the estimate below adds up to 5.15.
const RAV1D_STATE_BYTES_PER_PIXEL: f64 = 0.5;

/// Bytes per pixel of the decoded AV1 planes, from the sequence header at the start of the item's data (of the
/// first tile, for a grid), read before anything is decoded; the worst case when it cannot be read.
fn picture_bytes_per_pixel(heif: &Heif<'_>, item: &Item) -> Result<f64> {
    const WORST: f64 = 6.0;
    let first = if &item.kind == b"grid" {
        match heif
            .references_from(b"dimg", item.id)
            .first()
            .and_then(|&id| heif.item(id))
        {
            Some(tile) => tile,
            None => return Ok(WORST),
        }
    } else {
        item
    };
    let data = heif.item_data(first)?;
    Ok(av1::picture_bytes_per_pixel(&data).unwrap_or(WORST))
}

struct Colour {
    /// nclx matrix coefficients, when the container gives them (else the AV1 sequence header's are used).
    matrix: Option<u16>,
    icc: Option<Vec<u8>>,
}

/// The colour space the pixels are in, as an ICC profile for the colour stage (None: sRGB already).
fn colour_from(p: &Props<'_>) -> Result<Colour> {
    let matrix = p.nclx.map(|n| n.matrix);
    if let Some(icc) = p.icc {
        return Ok(Colour {
            matrix,
            icc: Some(icc.to_vec()),
        });
    }
    let Some(n) = p.nclx else {
        return Ok(Colour { matrix, icc: None });
    };
    if matches!(n.transfer, 16 | 18) {
        return Err(unsupported("HDR (PQ/HLG) is not supported"));
    }
    // BT.709 and unspecified primaries are sRGB's; so are code points without chromaticities (reserved, XYZ).
    let primaries = match n.primaries {
        4..=9 | 11 | 12 | 22 => CicpColorPrimaries::try_from(n.primaries as u8)
            .map_err(|_| Error::Internal(format!("AVIF: primaries {}", n.primaries)))?,
        _ => return Ok(Colour { matrix, icc: None }),
    };
    // BT.709/601/2020's camera curve and sRGB's differ a little in the shadows; displays (and libavif's users)
    // show them with the sRGB curve, so it is used for those. Other curves with a definition are kept.
    let transfer = match n.transfer {
        1 | 2 | 6 | 13 | 14 | 15 => TransferCharacteristics::Srgb,
        4 | 5 | 7 | 8 => TransferCharacteristics::try_from(n.transfer as u8)
            .map_err(|_| Error::Internal(format!("AVIF: transfer {}", n.transfer)))?,
        _ => TransferCharacteristics::Srgb,
    };
    let profile = ColorProfile::new_from_cicp(CicpProfile {
        color_primaries: primaries,
        transfer_characteristics: transfer,
        matrix_coefficients: MatrixCoefficients::Identity,
        full_range: true,
    });
    Ok(Colour {
        matrix,
        // An ICC profile the colour stage cannot build would leave the pixels as they are (taken as sRGB).
        icc: profile.encode().ok(),
    })
}
