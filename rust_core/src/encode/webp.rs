//! Lossy WebP via libwebp's advanced API: alpha kept, sharp RGB→YUV conversion (crisper colour edges than the
//! default box-filtered chroma, at a small cost in time), method 4 (libwebp's default speed/size balance).

use libwebp_sys::*;

use crate::error::{Error, Result};
use crate::pixels::{Layout, Pixels};

/// Frees libwebp's picture and output buffer on every path.
struct Picture {
    picture: WebPPicture,
    writer: WebPMemoryWriter,
}

impl Drop for Picture {
    fn drop(&mut self) {
        // SAFETY: both were initialised by libwebp in `encode`; freeing an empty picture/writer is allowed.
        unsafe {
            WebPPictureFree(&mut self.picture);
            WebPMemoryWriterClear(&mut self.writer);
        }
    }
}

pub fn encode(pixels: &Pixels, quality: u8) -> Result<Vec<u8>> {
    let fail = |what: &str| Error::Encode(format!("WebP encode: {what}"));
    let mut config = WebPConfig::new_with_preset(WebPPreset::WEBP_PRESET_PHOTO, f32::from(quality))
        .map_err(|()| fail("config"))?;
    config.method = 4;
    config.use_sharp_yuv = 1;
    let (width, height) = (pixels.width as i32, pixels.height as i32);
    let channels = pixels.layout.channels();
    let stride = width * channels as i32;
    let mut p = Picture {
        picture: WebPPicture::new().map_err(|()| fail("picture"))?,
        // SAFETY: plain C struct, initialised by WebPMemoryWriterInit below before use.
        writer: unsafe { std::mem::zeroed() },
    };
    // SAFETY: the picture borrows `pixels` only during import (libwebp copies); the writer outlives the encode.
    unsafe {
        WebPMemoryWriterInit(&mut p.writer);
        p.picture.width = width;
        p.picture.height = height;
        p.picture.use_argb = 0;
        let imported = match pixels.layout {
            Layout::Rgb8 => WebPPictureImportRGB(&mut p.picture, pixels.data.as_ptr(), stride),
            Layout::Rgba8 => WebPPictureImportRGBA(&mut p.picture, pixels.data.as_ptr(), stride),
        };
        if imported == 0 {
            return Err(fail("import (out of memory?)"));
        }
        p.picture.writer = Some(WebPMemoryWrite);
        p.picture.custom_ptr = (&mut p.writer as *mut WebPMemoryWriter).cast();
        if WebPEncode(&config, &mut p.picture) == 0 {
            return Err(fail(&format!("error {:?}", p.picture.error_code)));
        }
        Ok(std::slice::from_raw_parts(p.writer.mem, p.writer.size).to_vec())
    }
}
