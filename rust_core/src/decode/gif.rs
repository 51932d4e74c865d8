//! GIF, first frame only, composed onto its logical screen (transparent where the frame does not reach).

use std::io::Cursor;
use std::num::NonZeroU64;

use gif::{ColorOutput, DecodeOptions, MemoryLimit};

use super::{allocation_budget, Decoded};
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::orient::Orientation;
use crate::pixels::{Layout, Pixels};
use crate::sniff::Format;

fn err(e: gif::DecodingError) -> Error {
    match e {
        // The crate reports a frame bigger than our memory budget as out of memory: a limit, as for PNG and WebP.
        gif::DecodingError::OutOfMemory | gif::DecodingError::MemoryLimit => Error::Limit(format!(
            "GIF: {e} (a frame is larger than the memory limit)"
        )),
        other => Error::Decode(format!("GIF: {other}")),
    }
}

pub fn decode(data: &[u8], limits: &Limits) -> Result<Decoded> {
    let mut options = DecodeOptions::new();
    options.set_color_output(ColorOutput::RGBA);
    let budget = NonZeroU64::new(allocation_budget(limits) as u64).unwrap_or(NonZeroU64::MIN);
    options.set_memory_limit(MemoryLimit::Bytes(budget));
    let mut decoder = options.read_info(Cursor::new(data)).map_err(err)?;
    let (width, height) = (u32::from(decoder.width()), u32::from(decoder.height()));
    limits.check_dimensions(width, height)?;
    let frame = decoder
        .read_next_frame()
        .map_err(err)?
        .ok_or_else(|| Error::Decode("GIF: the file has no image frame".into()))?;

    let mut canvas = vec![0u8; width as usize * height as usize * 4];
    let (left, top) = (usize::from(frame.left), usize::from(frame.top));
    let frame_width = usize::from(frame.width);
    // A zero-width frame draws nothing (and must not become a zero-sized chunk).
    for (y, src_row) in frame
        .buffer
        .chunks_exact(frame_width.max(1) * 4)
        .enumerate()
    {
        let cy = top + y;
        if frame_width == 0 || cy >= height as usize || left >= width as usize {
            break;
        }
        let visible = frame_width.min(width as usize - left);
        let at = (cy * width as usize + left) * 4;
        canvas[at..at + visible * 4].copy_from_slice(&src_row[..visible * 4]);
    }
    Ok(Decoded {
        pixels: Pixels::new(width, height, Layout::Rgba8, canvas),
        format: Format::Gif,
        stored_width: width,
        stored_height: height,
        orientation: Orientation::NORMAL,
        icc: None,
    })
}
