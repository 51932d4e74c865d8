//! The upload's perceptual fingerprint, "phash-dct64": 64 bits that stay close (in Hamming distance) when a photo
//! is resized, recompressed or mildly edited, so the backend can find the same photo on another listing. Not a
//! cryptographic hash: anyone can make two different images collide, or nudge a copy far away.
//!
//! The classic pHash: the upright sRGB image (transparency flattened onto white, as the JPEG renditions show it)
//! squeezed to 32×32 (aspect ignored), its luma, a 2-D DCT-II, the 8×8
//! lowest frequencies without the DC row and column, each bit "above the median of the 64". Bit 63 (the first,
//! most significant) is frequency (1, 1), then row by row. About forty lines and one small resize: a crate for it
//! (image_hasher, img_hash) would bring the `image` crate into the layer.

use crate::encode::flatten_onto_white;
use crate::error::Result;
use crate::geometry::Plan;
use crate::pixels::{Layout, Pixels};
use crate::resize;

const SIDE: usize = 32;
const KEPT: usize = 8;

/// The fingerprint of `pixels`, upright and sRGB (any size; a small image is enough).
pub fn phash(pixels: &Pixels) -> Result<u64> {
    let flat;
    let opaque = match pixels.layout {
        Layout::Rgb8 => pixels,
        Layout::Rgba8 => {
            flat = Pixels::new(
                pixels.width,
                pixels.height,
                Layout::Rgb8,
                flatten_onto_white(&pixels.data),
            );
            &flat
        }
    };
    let square = resize::resize_from(
        opaque,
        &Plan {
            crop_left: 0.0,
            crop_top: 0.0,
            crop_width: f64::from(pixels.width),
            crop_height: f64::from(pixels.height),
            out_width: SIDE as u32,
            out_height: SIDE as u32,
        },
    )?;
    let luma: Vec<f64> = square
        .data
        .chunks_exact(3)
        .map(|p| 0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]))
        .collect();
    Ok(bits(&low_frequencies(&luma)))
}

/// The DCT-II coefficients (u, v) for u, v in 1..=KEPT of a SIDE×SIDE block, row by row.
fn low_frequencies(luma: &[f64]) -> Vec<f64> {
    let cos: Vec<[f64; SIDE]> = (0..=KEPT)
        .map(|k| {
            std::array::from_fn(|n| {
                (std::f64::consts::PI / SIDE as f64 * (n as f64 + 0.5) * k as f64).cos()
            })
        })
        .collect();
    // Along each row first (frequencies 1..=KEPT), then down each kept column.
    let rows: Vec<[f64; KEPT]> = luma
        .chunks_exact(SIDE)
        .map(|row| std::array::from_fn(|u| dot(row, &cos[u + 1])))
        .collect();
    let mut out = Vec::with_capacity(KEPT * KEPT);
    for c in &cos[1..] {
        for u in 0..KEPT {
            out.push(rows.iter().zip(c).map(|(r, w)| r[u] * w).sum());
        }
    }
    out
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// One bit per coefficient: above the median of them all.
fn bits(coefficients: &[f64]) -> u64 {
    let mut sorted = coefficients.to_vec();
    sorted.sort_by(f64::total_cmp);
    let median = (sorted[sorted.len() / 2 - 1] + sorted[sorted.len() / 2]) / 2.0;
    coefficients
        .iter()
        .fold(0u64, |hash, &c| (hash << 1) | u64::from(c > median))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(width: u32, height: u32, f: impl Fn(f64, f64) -> f64) -> Pixels {
        // `f` sees the pixel's centre in 0..1 × 0..1, so that one picture can be drawn at several sizes.
        let mut data = Vec::with_capacity(width as usize * height as usize * 3);
        for y in 0..height {
            for x in 0..width {
                let v = f(
                    (f64::from(x) + 0.5) / f64::from(width),
                    (f64::from(y) + 0.5) / f64::from(height),
                );
                let v = v.round().clamp(0.0, 255.0) as u8;
                data.extend_from_slice(&[v, v, v]);
            }
        }
        Pixels::new(width, height, Layout::Rgb8, data)
    }

    fn picture(x: f64, y: f64) -> f64 {
        110.0 + 50.0 * (7.0 * x).sin() * (5.0 * y + 1.0).cos() + 40.0 * (3.0 * x * y).cos()
    }

    fn distance(a: u64, b: u64) -> u32 {
        (a ^ b).count_ones()
    }

    #[test]
    fn half_the_bits_are_set_and_scaling_keeps_the_hash() {
        let big = phash(&image(96, 72, picture)).unwrap();
        let small = phash(&image(40, 30, picture)).unwrap();
        assert_eq!(big.count_ones(), 32);
        assert!(distance(big, small) <= 4, "{}", distance(big, small));
        // A different picture lands far away.
        let other = phash(&image(96, 72, |x, y| {
            128.0 + 90.0 * (11.0 * y - 4.0 * x).sin()
        }))
        .unwrap();
        assert!(distance(big, other) >= 20, "{}", distance(big, other));
    }

    #[test]
    fn brightness_moves_nothing_but_mirroring_does() {
        let hash = phash(&image(90, 60, picture)).unwrap();
        let brighter = phash(&image(90, 60, |x, y| picture(x, y) + 20.0)).unwrap();
        assert_eq!(distance(hash, brighter), 0);
        let mirrored = phash(&image(90, 60, |x, y| picture(1.0 - x, y))).unwrap();
        assert!(
            distance(hash, mirrored) >= 10,
            "{}",
            distance(hash, mirrored)
        );
    }

    #[test]
    fn transparency_counts_as_the_white_it_is_shown_on() {
        let opaque = image(90, 60, picture);
        let mut rgba = Vec::new();
        let mut white = opaque.clone();
        for (i, (p, w)) in opaque
            .data
            .chunks_exact(3)
            .zip(white.data.chunks_exact_mut(3))
            .enumerate()
        {
            // The left third transparent, with junk colour under it.
            if i % 90 < 30 {
                rgba.extend_from_slice(&[0, 0, 0, 0]);
                w.fill(255);
            } else {
                rgba.extend_from_slice(&[p[0], p[1], p[2], 255]);
            }
        }
        let rgba = Pixels::new(90, 60, Layout::Rgba8, rgba);
        assert_eq!(phash(&rgba).unwrap(), phash(&white).unwrap());
    }
}
