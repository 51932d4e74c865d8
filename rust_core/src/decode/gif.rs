//! GIF, first frame only, composed onto its logical screen (transparent where the frame does not reach).

use std::io::Cursor;
use std::num::NonZeroU64;

use gif::{ColorOutput, DecodeOptions, MemoryLimit};

use super::{memory_budget, Decoded};
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

/// The rows of a frame in the order they are stored: top to bottom, or GIF's four interlace passes.
fn stored_row_order(height: usize, interlaced: bool) -> Vec<usize> {
    if !interlaced {
        return (0..height).collect();
    }
    [(0, 8), (4, 8), (2, 4), (1, 2)]
        .into_iter()
        .flat_map(|(first, step)| (first..height).step_by(step))
        .collect()
}

pub fn decode(data: &[u8], limits: &Limits) -> Result<Decoded> {
    let mut options = DecodeOptions::new();
    options.set_color_output(ColorOutput::RGBA);
    let budget = NonZeroU64::new(memory_budget(limits) as u64).unwrap_or(NonZeroU64::MIN);
    options.set_memory_limit(MemoryLimit::Bytes(budget));
    let mut decoder = options.read_info(Cursor::new(data)).map_err(err)?;
    let (width, height) = (u32::from(decoder.width()), u32::from(decoder.height()));
    limits.check_dimensions(width, height)?;
    // Only the first frame is read: the frames after it (hundreds, in an animation) are never decoded.
    let frame = decoder
        .next_frame_info()
        .map_err(err)?
        .ok_or_else(|| Error::Decode("GIF: the file has no image frame".into()))?;
    let (left, top) = (usize::from(frame.left), usize::from(frame.top));
    let (frame_width, frame_height) = (usize::from(frame.width), usize::from(frame.height));
    let interlaced = frame.interlaced;
    // The frame is LZW-decoded in full even where it falls outside the screen, so its own size is limited too.
    let frame_pixels = frame_width as u64 * frame_height as u64;
    if frame_pixels > limits.max_pixels {
        return Err(Error::Limit(format!(
            "GIF: the first frame is {frame_width}x{frame_height} = {frame_pixels} pixels, more than the limit of {} \
             pixels",
            limits.max_pixels
        )));
    }

    // Decoded a row at a time straight onto the screen: one RGBA copy of the image, not a frame buffer plus a
    // canvas (a 37 KB GIF of 7000x7000 took 390 MB resident that way).
    let (width, height) = (width as usize, height as usize);
    let mut canvas = vec![0u8; width * height * 4];
    let mut row = vec![0u8; frame_width * 4];
    // A zero-width or zero-height frame draws nothing.
    if frame_width > 0 {
        for y in stored_row_order(frame_height, interlaced) {
            if !decoder.fill_buffer(&mut row).map_err(err)? {
                return Err(Error::Decode("GIF: the first frame is truncated".into()));
            }
            let cy = top + y;
            if cy >= height || left >= width {
                continue;
            }
            let visible = frame_width.min(width - left);
            let at = (cy * width + left) * 4;
            canvas[at..at + visible * 4].copy_from_slice(&row[..visible * 4]);
        }
    }
    Ok(Decoded {
        pixels: Pixels::new(width as u32, height as u32, Layout::Rgba8, canvas),
        format: Format::Gif,
        stored_width: width as u32,
        stored_height: height as u32,
        orientation: Orientation::NORMAL,
        icc: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interlaced_rows_come_in_four_passes() {
        assert_eq!(
            stored_row_order(10, true),
            vec![0, 8, 4, 2, 6, 1, 3, 5, 7, 9]
        );
        assert_eq!(stored_row_order(3, false), vec![0, 1, 2]);
        assert_eq!(stored_row_order(0, true), Vec::<usize>::new());
    }
}
