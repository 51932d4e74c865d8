//! The upload's ThumbHash (Evan Wallace's algorithm, through his own `thumbhash` crate): a ~25-byte placeholder a
//! page decodes into a blurred image of the photo's colours and aspect ratio while the rendition loads.

use crate::pixels::{Layout, Pixels};

/// The largest side ThumbHash's encoder accepts.
pub const MAX_SIDE: u32 = 100;

/// The ThumbHash of `pixels`: upright, sRGB, each side at most `MAX_SIDE`.
pub fn thumb_hash(pixels: &Pixels) -> Vec<u8> {
    debug_assert!(pixels.width <= MAX_SIDE && pixels.height <= MAX_SIDE);
    let rgba: Vec<u8> = match pixels.layout {
        Layout::Rgba8 => pixels.data.clone(),
        Layout::Rgb8 => pixels
            .data
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
    };
    thumbhash::rgba_to_thumb_hash(pixels.width as usize, pixels.height as usize, &rgba)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flat_colour_comes_back_as_that_colour_and_aspect() {
        let orange = Pixels::new(100, 50, Layout::Rgb8, [230u8, 120, 30].repeat(100 * 50));
        let hash = thumb_hash(&orange);
        let (r, g, b, a) = thumbhash::thumb_hash_to_average_rgba(&hash).unwrap();
        let near = |got: f32, want: u8| (got * 255.0 - f32::from(want)).abs() < 6.0;
        assert!(
            near(r, 230) && near(g, 120) && near(b, 30) && a == 1.0,
            "{r} {g} {b} {a}"
        );
        let ratio = thumbhash::thumb_hash_to_approximate_aspect_ratio(&hash).unwrap();
        // Approximate by design: the ratio of its DCT sizes (7 × 4 for 2:1).
        assert!((ratio - 2.0).abs() < 0.3, "{ratio}");
    }
}
