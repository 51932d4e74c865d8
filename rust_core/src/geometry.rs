//! Where the output's pixels come from: output size, source crop, and how much the decoder may shrink first.
//!
//! Everything here is in *stored* coordinates (before EXIF orientation): resizing happens before orienting, so the
//! quarter turn is done on the small output rather than the large source. A centred crop stays centred under any of
//! the eight orientations, so cropping in stored coordinates gives the same picture.

use crate::orient::Orientation;

/// How the source is fitted to the box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// Fill the box exactly, cropping the overflow around the centre (thumbnails).
    Cover,
    /// Keep the whole image, as large as fits inside the box (medium).
    Inside,
}

/// The box a rendition must fill or fit into, as the viewer sees it (after orientation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub width: u32,
    pub height: u32,
    pub fit: Fit,
}

/// A resize step: the source rectangle to read (stored coordinates, fractional) and the output size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    pub crop_left: f64,
    pub crop_top: f64,
    pub crop_width: f64,
    pub crop_height: f64,
    pub out_width: u32,
    pub out_height: u32,
}

impl Plan {
    pub fn is_identity(&self, width: u32, height: u32) -> bool {
        self.out_width == width
            && self.out_height == height
            && self.crop_left == 0.0
            && self.crop_top == 0.0
            && self.crop_width == f64::from(width)
            && self.crop_height == f64::from(height)
    }

    /// Output pixels per source pixel (≤ 1: we never upscale).
    pub fn scale(&self) -> f64 {
        f64::from(self.out_width) / self.crop_width
    }

    /// This plan for a source decoded at 1/`denominator` of its stored size (JPEG shrink-on-load): same output size,
    /// crop moved into the shrunk pixels, where stored x lies at x / denominator. Planning on the shrunk size itself
    /// would not do: libjpeg rounds it up (ceil(w / d)), which skews the aspect ratio enough to change the output
    /// by a pixel for many odd sizes.
    pub fn shrunk(self, denominator: u32) -> Plan {
        // A power of two: these divisions are exact, so the crop stays inside ceil(w / d) x ceil(h / d).
        let d = f64::from(denominator);
        Plan {
            crop_left: self.crop_left / d,
            crop_top: self.crop_top / d,
            crop_width: self.crop_width / d,
            crop_height: self.crop_height / d,
            ..self
        }
    }
}

/// The target box in stored coordinates.
fn stored_box(target: Target, orientation: Orientation) -> (f64, f64) {
    let (w, h) = (f64::from(target.width), f64::from(target.height));
    if orientation.swaps_sides() {
        (h, w)
    } else {
        (w, h)
    }
}

fn at_least_one(v: f64) -> u32 {
    (v.round() as u32).max(1)
}

/// Plans the resize of a `width`×`height` stored image. Never upscales and never yields a side of 0.
pub fn plan(width: u32, height: u32, orientation: Orientation, target: Target) -> Plan {
    let (sw, sh) = (f64::from(width), f64::from(height));
    let (bw, bh) = stored_box(target, orientation);
    match target.fit {
        Fit::Inside => {
            let scale = (bw / sw).min(bh / sh).min(1.0);
            Plan {
                crop_left: 0.0,
                crop_top: 0.0,
                crop_width: sw,
                crop_height: sh,
                out_width: at_least_one(sw * scale).min(width),
                out_height: at_least_one(sh * scale).min(height),
            }
        }
        Fit::Cover => {
            // Scale so the box is covered, capped at 1:1; then the output is the box (or, for a source smaller
            // than the box, the largest rectangle of the box's aspect ratio that the source holds).
            let scale = (bw / sw).max(bh / sh).min(1.0);
            let out_w = at_least_one(bw.min(sw * scale).min(bw * (sh * scale) / bh));
            let out_h = at_least_one(bh.min(sh * scale).min(bh * (sw * scale) / bw));
            let crop_width = (f64::from(out_w) / scale).min(sw);
            let crop_height = (f64::from(out_h) / scale).min(sh);
            Plan {
                crop_left: (sw - crop_width) / 2.0,
                crop_top: (sh - crop_height) / 2.0,
                crop_width,
                crop_height,
                out_width: out_w,
                out_height: out_h,
            }
        }
    }
}

/// Decoding at 1/2, 1/4 or 1/8 (JPEG DCT scaling) is allowed while the shrunk image keeps at least `MARGIN` source
/// pixels per output pixel, so the final Lanczos pass always downsamples by at least that much. The quality report
/// (SSIM against a full-decode reference) tuned it: a smaller margin left too short a Lanczos step below sharp's
/// SSIM, a larger one cost decode time for nothing (bench/results/history.md, "Shrink-on-load margin").
pub const SHRINK_ON_LOAD_MARGIN: f64 = 1.5;

/// The largest power-of-two denominator (1, 2, 4 or 8) the decoder may shrink a `width`×`height` image by.
///
/// `eighth_is_cheap`: the decoder makes a 1/8 image for a fraction of the cost of the others (a progressive JPEG,
/// from its DC scans alone). Then 1/8 is taken whenever it still covers the output (margin 1.0): the thumbnail's
/// SSIM stayed above sharp's while its decode time fell several-fold (bench/results/history.md).
pub fn shrink_denominator(
    width: u32,
    height: u32,
    orientation: Orientation,
    target: Target,
    eighth_is_cheap: bool,
) -> u32 {
    shrink_denominator_with(
        width,
        height,
        orientation,
        target,
        eighth_is_cheap,
        SHRINK_ON_LOAD_MARGIN,
    )
}

/// `shrink_denominator` with the margin given: at least `margin` shrunk pixels per output pixel (≥ 1.0).
pub fn shrink_denominator_with(
    width: u32,
    height: u32,
    orientation: Orientation,
    target: Target,
    eighth_is_cheap: bool,
    margin: f64,
) -> u32 {
    let scale = plan(width, height, orientation, target).scale();
    let mut denominator = 1;
    while denominator < 8 && f64::from(denominator * 2) * scale * margin <= 1.0 {
        denominator *= 2;
    }
    if eighth_is_cheap && denominator < 8 && 8.0 * scale <= 1.0 {
        denominator = 8;
    }
    denominator
}

/// Whether a `width`×`height` stored image fills `target` without upscaling: the output is the whole box.
pub fn fills(width: u32, height: u32, orientation: Orientation, target: Target) -> bool {
    let p = plan(width, height, orientation, target);
    let (bw, bh) = stored_box(target, orientation);
    match target.fit {
        Fit::Cover => f64::from(p.out_width) == bw && f64::from(p.out_height) == bh,
        // Inside: one side reaches the box.
        Fit::Inside => f64::from(p.out_width) == bw || f64::from(p.out_height) == bh,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const THUMB: Target = Target {
        width: 400,
        height: 300,
        fit: Fit::Cover,
    };
    const MEDIUM: Target = Target {
        width: 1280,
        height: 1280,
        fit: Fit::Inside,
    };
    const N: Orientation = Orientation::NORMAL;

    #[test]
    fn cover_crops_the_centre() {
        let p = plan(4000, 2000, N, THUMB);
        assert_eq!((p.out_width, p.out_height), (400, 300));
        assert!((p.crop_height - 2000.0).abs() < 1e-9);
        assert!((p.crop_width - 2_666.666_666).abs() < 1e-3);
        assert!((p.crop_left - 666.666_666).abs() < 1e-3);
        assert_eq!(p.crop_top, 0.0);
    }

    #[test]
    fn inside_keeps_aspect() {
        let p = plan(4032, 3024, N, MEDIUM);
        assert_eq!((p.out_width, p.out_height), (1280, 960));
        let p = plan(3024, 4032, N, MEDIUM);
        assert_eq!((p.out_width, p.out_height), (960, 1280));
    }

    #[test]
    fn quarter_turn_swaps_the_box() {
        // Stored landscape, displayed portrait: the stored output is 300x400, turned into 400x300 later.
        let p = plan(4000, 3000, Orientation::from_exif_value(6), THUMB);
        assert_eq!((p.out_width, p.out_height), (300, 400));
    }

    #[test]
    fn a_source_fills_a_box_only_when_it_is_not_upscaled() {
        let retina = Target {
            width: 800,
            height: 600,
            fit: Fit::Cover,
        };
        assert!(fills(4032, 3024, N, retina));
        assert!(fills(800, 600, N, retina));
        // 700 px high: a cover crop of 800x600 would need 1.17x.
        assert!(!fills(1600, 599, N, retina));
        // Stored 600x800 turned by EXIF 6 is displayed 800x600.
        assert!(fills(600, 800, Orientation::from_exif_value(6), retina));
        assert!(!fills(600, 800, N, retina));
        assert!(fills(1280, 200, N, MEDIUM));
        assert!(!fills(1000, 1000, N, MEDIUM));
    }

    #[test]
    fn never_upscales() {
        let p = plan(200, 100, N, MEDIUM);
        assert_eq!((p.out_width, p.out_height), (200, 100));
        assert!(p.is_identity(200, 100));
        let p = plan(200, 100, N, THUMB);
        assert_eq!((p.out_width, p.out_height), (133, 100));
        assert!(p.scale() <= 1.0);
    }

    #[test]
    fn extreme_aspect_ratios_keep_a_pixel() {
        for (w, h) in [(20000, 1), (1, 20000), (65500, 2), (1, 1)] {
            for t in [THUMB, MEDIUM] {
                let p = plan(w, h, N, t);
                assert!(
                    p.out_width >= 1 && p.out_height >= 1,
                    "{w}x{h} {t:?}: {p:?}"
                );
                assert!(
                    p.out_width <= t.width.max(t.height) && p.out_height <= t.width.max(t.height)
                );
                assert!(
                    p.crop_width >= 1.0 - 1e-9 && p.crop_height >= 1.0 - 1e-9,
                    "{w}x{h} {t:?}: {p:?}"
                );
            }
        }
        assert_eq!(plan(20000, 1, N, MEDIUM).out_width, 1280);
    }

    #[test]
    fn shrunk_plan_keeps_the_stored_output_size() {
        // Planned on libjpeg's 1/2 decode (641x1285) this would be 639x1280; the rule on 1281x2570 says 638.
        let p = plan(1281, 2570, N, MEDIUM);
        assert_eq!((p.out_width, p.out_height), (638, 1280));
        let s = p.shrunk(2);
        assert_eq!((s.out_width, s.out_height), (638, 1280));
        assert_eq!((s.crop_width, s.crop_height), (640.5, 1285.0));
        assert!(!s.is_identity(641, 1285));
        let c = plan(4000, 2000, N, THUMB).shrunk(4);
        assert!((c.crop_left - 166.666_666).abs() < 1e-3 && c.crop_left + c.crop_width <= 1000.0);
        assert!(plan(800, 400, N, MEDIUM).shrunk(1).is_identity(800, 400));
    }

    #[test]
    fn shrink_on_load_keeps_the_margin() {
        // 4032x3024 → 400x300: scale ≈ 0.099; 1/4 (1008x756) keeps 2.5 px per output px, 1/8 (504x378) only 1.26.
        assert_eq!(shrink_denominator(4032, 3024, N, THUMB, false), 4);
        // → 1280x960: scale ≈ 0.317; 1/2 gives 2016x1512 (1.58), 1/4 (1008x756) would be smaller than the output.
        assert_eq!(shrink_denominator(4032, 3024, N, MEDIUM, false), 2);
        // 5312x2988 → 1280x720: 1/4 (1328x747) would leave 1.04 px per output px, under the margin.
        assert_eq!(shrink_denominator(5312, 2988, N, MEDIUM, false), 2);
        // 12000x9000 → 1280x960: 1/4 keeps 2.34, 1/8 only 1.17.
        assert_eq!(shrink_denominator(12000, 9000, N, MEDIUM, false), 4);
        assert_eq!(shrink_denominator(100, 100, N, THUMB, false), 1);
    }

    #[test]
    fn a_cheap_eighth_is_taken_while_it_covers_the_output() {
        // 504x378 still covers 400x300: taken when 1/8 is the cheap decode, not otherwise.
        assert_eq!(shrink_denominator(4032, 3024, N, THUMB, true), 8);
        // 2560x3837 → 400x300 (cover): 1/8 is 320 wide, narrower than the output: stays at the margin's choice.
        assert_eq!(shrink_denominator(2560, 3837, N, THUMB, true), 4);
        // 12000x9000 → 1280x960: 1500x1125 at 1/8 covers it.
        assert_eq!(shrink_denominator(12000, 9000, N, MEDIUM, true), 8);
        assert_eq!(shrink_denominator(5312, 2988, N, MEDIUM, true), 2);
        assert_eq!(shrink_denominator(100, 100, N, THUMB, true), 1);
    }
}
