//! JPEG via mozjpeg, tuned with the quality report (bench/quality.py, SSIM against a float reference, next to
//! sharp): the standard (JPEG Annex K) quantisation tables scaled by quality as libjpeg-turbo scales them, so a
//! preset's quality number means what it means to sharp/libvips and every other libjpeg user; no trellis
//! quantisation; libjpeg's standard progressive script with optimised Huffman tables, 4:2:0 chroma.
//!
//! Against sharp at the same quality this gives the same SSIM (same coefficients) in about its bytes
//! (bench/results/quality.md). The standard script rather than mozjpeg's scan search (its "max compression"
//! profile): the search saved under 2 % of bytes for several times the encode time. Progressive is smaller than
//! optimised baseline for most corpus renditions and barely larger for the rest, so it is always used. mozjpeg's own
//! tables (index 3) and trellis cost SSIM at a given quality, and at equal SSIM saved no bytes on the corpus, for
//! more encode time. The measurements behind each choice: bench/results/history.md.

use std::ffi::c_ulong;

use mozjpeg_sys::*;

use crate::error::{Error, Result};
use crate::libjpeg;

/// mozjpeg's index of the JPEG Annex K tables, libjpeg-turbo's (and so sharp's) default; mozjpeg's own default is 3.
const ANNEX_K_TABLES: i32 = 0;

struct Compress {
    cinfo: Box<jpeg_compress_struct>,
    _err: Box<jpeg_error_mgr>,
    out_buffer: *mut u8,
    out_size: c_ulong,
}

impl Compress {
    fn new() -> Self {
        let mut err = libjpeg::new_error_manager();
        // SAFETY: zeroed is the documented initial state before jpeg_create_compress.
        let mut cinfo: Box<jpeg_compress_struct> = Box::new(unsafe { std::mem::zeroed() });
        cinfo.common.err = &mut *err;
        unsafe { jpeg_create_compress(&mut *cinfo) };
        Self {
            cinfo,
            _err: err,
            out_buffer: std::ptr::null_mut(),
            out_size: 0,
        }
    }
}

impl Drop for Compress {
    fn drop(&mut self) {
        // SAFETY: created in `new`; the memory destination's buffer is malloc'd by libjpeg and ours to free.
        unsafe {
            jpeg_destroy_compress(&mut self.cinfo);
            if !self.out_buffer.is_null() {
                libc::free(self.out_buffer.cast());
            }
        }
    }
}

pub fn encode_rgb(width: u32, height: u32, rgb: &[u8], quality: u8) -> Result<Vec<u8>> {
    if rgb.len() != width as usize * height as usize * 3 {
        return Err(Error::Internal(format!(
            "encode: {} bytes for {width}x{height} RGB",
            rgb.len()
        )));
    }
    libjpeg::catch(|| unsafe {
        let mut c = Compress::new();
        let (buffer, size) = (
            &mut c.out_buffer as *mut *mut u8,
            &mut c.out_size as *mut c_ulong,
        );
        let cinfo = &mut *c.cinfo;
        jpeg_mem_dest(cinfo, buffer, size);
        cinfo.image_width = width;
        cinfo.image_height = height;
        cinfo.input_components = 3;
        cinfo.in_color_space = J_COLOR_SPACE::JCS_RGB;
        // libjpeg-turbo's defaults (no scan search, no deringing), then progressive by the standard script below.
        jpeg_c_set_int_param(cinfo, JINT_COMPRESS_PROFILE, JCP_FASTEST as i32);
        jpeg_set_defaults(cinfo);
        // After jpeg_set_defaults (which installs the profile's values), before jpeg_set_quality (which builds the
        // tables from the base table index).
        jpeg_c_set_int_param(cinfo, JINT_BASE_QUANT_TBL_IDX, ANNEX_K_TABLES);
        jpeg_c_set_bool_param(cinfo, JBOOLEAN_TRELLIS_QUANT, 0);
        jpeg_c_set_bool_param(cinfo, JBOOLEAN_TRELLIS_QUANT_DC, 0);
        jpeg_set_quality(cinfo, i32::from(quality), 1);
        jpeg_simple_progression(cinfo);
        cinfo.optimize_coding = 1;
        jpeg_start_compress(cinfo, 1);
        let stride = width as usize * 3;
        for row in rgb.chunks_exact(stride) {
            let rows = [row.as_ptr()];
            jpeg_write_scanlines(cinfo, rows.as_ptr(), 1);
        }
        jpeg_finish_compress(cinfo);
        std::slice::from_raw_parts(c.out_buffer, c.out_size as usize).to_vec()
    })
    .map_err(|msg| Error::Encode(format!("JPEG encode: {msg}")))
}
