//! JPEG via libjpeg-turbo (mozjpeg-sys): DCT-domain shrink-on-load, strict about damaged data.

use std::ffi::c_ulong;

use mozjpeg_sys::*;

use super::{allocation_budget, Decoded, ShrinkPolicy};
use crate::error::{Error, Result};
use crate::libjpeg;
use crate::limits::Limits;
use crate::orient::{orientation_from_exif, Orientation};
use crate::pixels::{Layout, Pixels};
use crate::sniff::Format;

const APP1: i32 = 0xE1;
const APP2: i32 = 0xE2;
const APP14: i32 = 0xEE;

/// Owns a decompressor and the error manager it points at; destroying it frees libjpeg's memory on every path,
/// including an unwinding error.
struct Decompress {
    cinfo: Box<jpeg_decompress_struct>,
    _err: Box<jpeg_error_mgr>,
}

impl Decompress {
    fn new() -> Self {
        let mut err = libjpeg::new_error_manager();
        // SAFETY: zeroed is the documented initial state before jpeg_create_decompress.
        let mut cinfo: Box<jpeg_decompress_struct> = Box::new(unsafe { std::mem::zeroed() });
        cinfo.common.err = &mut *err;
        unsafe { jpeg_create_decompress(&mut *cinfo) };
        Self { cinfo, _err: err }
    }
}

impl Drop for Decompress {
    fn drop(&mut self) {
        // SAFETY: created in `new`; libjpeg allows destroy in any state after create.
        unsafe { jpeg_destroy_decompress(&mut self.cinfo) };
    }
}

pub fn decode(data: &[u8], limits: &Limits, shrink: ShrinkPolicy<'_>) -> Result<Decoded> {
    libjpeg::catch(|| unsafe { decode_inner(data, limits, shrink) })
        .map_err(|msg| Error::Decode(format!("JPEG: {msg}")))?
}

/// The markers this decoder keeps: EXIF (orientation), ICC (colour) and Adobe (how CMYK is stored).
struct Markers {
    orientation: Orientation,
    adobe: bool,
    icc: Option<Vec<u8>>,
}

/// Reassembles an ICC profile split over APP2 `ICC_PROFILE` chunks (each numbered i of n). Anything
/// inconsistent — a missing or repeated chunk, disagreeing counts — means no profile rather than a wrong one.
fn assemble_icc(chunks: &[(u8, u8, &[u8])]) -> Option<Vec<u8>> {
    let count = chunks.first()?.1;
    if count == 0 || chunks.len() != usize::from(count) || chunks.iter().any(|c| c.1 != count) {
        return None;
    }
    let mut ordered: Vec<Option<&[u8]>> = vec![None; usize::from(count)];
    for &(seq, _, data) in chunks {
        let slot = ordered.get_mut(usize::from(seq).checked_sub(1)?)?;
        if slot.replace(data).is_some() {
            return None;
        }
    }
    let parts: Option<Vec<&[u8]>> = ordered.into_iter().collect();
    let profile = parts?.concat();
    (profile.len() <= crate::colour::MAX_PROFILE_BYTES).then_some(profile)
}

unsafe fn read_markers(cinfo: &jpeg_decompress_struct) -> Markers {
    let mut markers = Markers {
        orientation: Orientation::NORMAL,
        adobe: false,
        icc: None,
    };
    let mut exif_seen = false;
    let mut icc_chunks = Vec::new();
    let mut marker = cinfo.marker_list;
    while !marker.is_null() {
        let m = &*marker;
        let payload = std::slice::from_raw_parts(m.data, m.data_length as usize);
        if i32::from(m.marker) == APP1 && !exif_seen && payload.starts_with(b"Exif\0\0") {
            // Only the first EXIF block counts (later APP1s may be XMP or a thumbnail's EXIF).
            markers.orientation = orientation_from_exif(payload);
            exif_seen = true;
        } else if i32::from(m.marker) == APP2
            && payload.len() >= 14
            && payload.starts_with(b"ICC_PROFILE\0")
        {
            icc_chunks.push((payload[12], payload[13], &payload[14..]));
        } else if i32::from(m.marker) == APP14 && payload.starts_with(b"Adobe") {
            markers.adobe = true;
        }
        marker = m.next;
    }
    markers.icc = assemble_icc(&icc_chunks);
    markers
}

unsafe fn decode_inner(data: &[u8], limits: &Limits, shrink: ShrinkPolicy<'_>) -> Result<Decoded> {
    let mut d = Decompress::new();
    let cinfo = &mut *d.cinfo;
    (*cinfo.common.mem).max_memory_to_use = c_long_from(allocation_budget(limits));
    jpeg_mem_src(cinfo, data.as_ptr(), data.len() as c_ulong);
    jpeg_save_markers(cinfo, APP1, 0xFFFF);
    jpeg_save_markers(cinfo, APP2, 0xFFFF);
    jpeg_save_markers(cinfo, APP14, 0xFFFF);
    jpeg_read_header(cinfo, 1);

    let (stored_width, stored_height) = (cinfo.image_width, cinfo.image_height);
    limits.check_dimensions(stored_width, stored_height)?;
    let markers = read_markers(cinfo);

    let cmyk = matches!(
        cinfo.jpeg_color_space,
        J_COLOR_SPACE::JCS_CMYK | J_COLOR_SPACE::JCS_YCCK
    );
    cinfo.out_color_space = if cmyk {
        J_COLOR_SPACE::JCS_CMYK
    } else {
        J_COLOR_SPACE::JCS_RGB
    };
    cinfo.scale_num = 1;
    cinfo.scale_denom = shrink(stored_width, stored_height, markers.orientation).clamp(1, 8);
    jpeg_start_decompress(cinfo);

    let (width, height) = (cinfo.output_width, cinfo.output_height);
    let components = cinfo.output_components as usize;
    let stride = width as usize * components;
    let mut buffer = vec![0u8; stride * height as usize];
    while cinfo.output_scanline < height {
        let row = buffer
            .as_mut_ptr()
            .add(cinfo.output_scanline as usize * stride);
        let mut rows = [row];
        jpeg_read_scanlines(cinfo, rows.as_mut_ptr(), 1);
    }
    // Reads to EOI, so data missing after the last needed scanline is still noticed.
    jpeg_finish_decompress(cinfo);

    let (rgb, icc) = if cmyk {
        // Photoshop (Adobe APP14) writes CMYK inverted; ICC and our fallback expect 0 = no ink.
        if markers.adobe {
            buffer.iter_mut().for_each(|v| *v = 255 - *v);
        }
        (
            crate::colour::cmyk_to_srgb(&buffer, markers.icc.as_deref()),
            None,
        )
    } else {
        (buffer, markers.icc)
    };
    Ok(Decoded {
        pixels: Pixels::new(width, height, Layout::Rgb8, rgb),
        format: Format::Jpeg,
        stored_width,
        stored_height,
        orientation: markers.orientation,
        icc,
    })
}

fn c_long_from(v: usize) -> std::ffi::c_long {
    std::ffi::c_long::try_from(v).unwrap_or(std::ffi::c_long::MAX)
}
