//! Colour management: pixels described by an embedded ICC profile (Display P3 from phones, Adobe RGB from
//! cameras, CMYK from print workflows) are converted to sRGB before resizing, so the output — untagged, as the
//! web assumes — shows the colours the photographer saw. A profile that is garbage, truncated, of the wrong
//! colour space for the pixels, or unsupported is ignored: the pixels are then taken to be sRGB already.

use moxcms::{ColorProfile, DataColorSpace, Layout as CmsLayout, ToneReprCurve, TransformOptions};

use crate::pixels::{Layout, Pixels};

/// Profiles larger than this are not real camera or phone profiles; they are not parsed.
pub const MAX_PROFILE_BYTES: usize = 4 << 20;

/// Pixels converted per transform call (see `rgb_to_srgb`).
const CHUNK_PIXELS: usize = 16 * 1024;

fn parse(icc: &[u8]) -> Option<ColorProfile> {
    if icc.len() > MAX_PROFILE_BYTES {
        return None;
    }
    ColorProfile::new_from_slice(icc).ok()
}

/// True when converting would change nothing worth the time: the profile is sRGB by its primaries and curve.
fn is_srgb(profile: &ColorProfile) -> bool {
    let srgb = ColorProfile::new_srgb();
    let close = |a: moxcms::Xyzd, b: moxcms::Xyzd| {
        (a.x - b.x).abs() < 2e-3 && (a.y - b.y).abs() < 2e-3 && (a.z - b.z).abs() < 2e-3
    };
    profile.color_space == DataColorSpace::Rgb
        && close(profile.red_colorant, srgb.red_colorant)
        && close(profile.green_colorant, srgb.green_colorant)
        && close(profile.blue_colorant, srgb.blue_colorant)
        && curve_close(&profile.red_trc, &srgb.red_trc)
        && curve_close(&profile.green_trc, &srgb.green_trc)
        && curve_close(&profile.blue_trc, &srgb.blue_trc)
}

/// Parametric curves as stored in a profile are s15.16 fixed point: equal within that precision.
fn curve_close(a: &Option<ToneReprCurve>, b: &Option<ToneReprCurve>) -> bool {
    match (a, b) {
        (Some(ToneReprCurve::Parametric(x)), Some(ToneReprCurve::Parametric(y))) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| (p - q).abs() < 1e-3)
        }
        _ => a == b,
    }
}

/// Converts RGB(A) pixels in place from the colour space `icc` describes to sRGB. Returns whether it did.
pub fn rgb_to_srgb(pixels: &mut Pixels, icc: &[u8]) -> bool {
    let Some(profile) = parse(icc) else {
        return false;
    };
    let (src_layout, dst_layout) = match pixels.layout {
        Layout::Rgb8 => (CmsLayout::Rgb, CmsLayout::Rgb),
        Layout::Rgba8 => (CmsLayout::Rgba, CmsLayout::Rgba),
    };
    let srgb = ColorProfile::new_srgb();
    match profile.color_space {
        DataColorSpace::Rgb => {
            if is_srgb(&profile) {
                return false;
            }
            let Ok(transform) = profile.create_transform_8bit(
                src_layout,
                &srgb,
                dst_layout,
                TransformOptions::default(),
            ) else {
                return false;
            };
            // In place, a chunk at a time through a small scratch buffer: a second full-size copy of a 49 MP image
            // would be another 150 MB. (A transform fails only on slices of unequal or partial-pixel length, which
            // whole-pixel chunks never are, so no chunk is left half converted.)
            let channels = pixels.layout.channels();
            let mut scratch = vec![0u8; CHUNK_PIXELS * channels];
            for chunk in pixels.data.chunks_mut(CHUNK_PIXELS * channels) {
                let out = &mut scratch[..chunk.len()];
                if transform.transform(chunk, out).is_err() {
                    return false;
                }
                chunk.copy_from_slice(out);
            }
            true
        }
        // Grey pixels were expanded to RGB by the decoder; the grey channel is any one of the three.
        DataColorSpace::Gray => {
            let channels = pixels.layout.channels();
            let Ok(transform) = profile.create_transform_8bit(
                CmsLayout::Gray,
                &srgb,
                CmsLayout::Rgb,
                TransformOptions::default(),
            ) else {
                return false;
            };
            // Chunk by chunk, as above: no full-size grey and RGB copies.
            let mut grey = Vec::with_capacity(CHUNK_PIXELS);
            let mut rgb = vec![0u8; CHUNK_PIXELS * 3];
            for chunk in pixels.data.chunks_mut(CHUNK_PIXELS * channels) {
                grey.clear();
                grey.extend(chunk.chunks_exact(channels).map(|p| p[0]));
                let rgb = &mut rgb[..grey.len() * 3];
                if transform.transform(&grey, rgb).is_err() {
                    return false;
                }
                for (dst, src) in chunk.chunks_exact_mut(channels).zip(rgb.chunks_exact(3)) {
                    dst[..3].copy_from_slice(src);
                }
            }
            true
        }
        _ => false,
    }
}

/// CMYK (0 = no ink, 255 = full ink) to sRGB, through the embedded CMYK profile when there is a usable one.
pub fn cmyk_to_srgb(cmyk: &[u8], icc: Option<&[u8]>) -> Vec<u8> {
    if let Some(profile) = icc
        .and_then(parse)
        .filter(|p| p.color_space == DataColorSpace::Cmyk)
    {
        let srgb = ColorProfile::new_srgb();
        if let Ok(transform) = profile.create_transform_8bit(
            CmsLayout::Rgba,
            &srgb,
            CmsLayout::Rgb,
            TransformOptions::default(),
        ) {
            let mut rgb = vec![0u8; cmyk.len() / 4 * 3];
            if transform.transform(cmyk, &mut rgb).is_ok() {
                return rgb;
            }
        }
    }
    naive_cmyk_to_rgb(cmyk)
}

/// Without a profile: RGB = (1 − C)(1 − K) per channel, the device-independent guess every viewer makes.
fn naive_cmyk_to_rgb(cmyk: &[u8]) -> Vec<u8> {
    let light = |ink: u8, k: u8| ((u16::from(255 - ink) * u16::from(255 - k) + 127) / 255) as u8;
    cmyk.chunks_exact(4)
        .flat_map(|p| [light(p[0], p[3]), light(p[1], p[3]), light(p[2], p[3])])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use moxcms::ColorProfile;

    fn p3_icc() -> Vec<u8> {
        ColorProfile::new_display_p3().encode().expect("encode P3")
    }

    #[test]
    fn display_p3_red_lands_on_the_srgb_gamut_edge() {
        // P3's pure red is outside sRGB: it must come out as (close to) sRGB's most saturated red, not as
        // the unmanaged (255, 0, 0) that would be correct only by accident, and green/blue must be ~0.
        let mut px = Pixels::new(1, 1, Layout::Rgb8, vec![200, 30, 30]);
        assert!(rgb_to_srgb(&mut px, &p3_icc()));
        let [r, g, b] = [px.data[0], px.data[1], px.data[2]];
        // Reference: LittleCMS (Pillow ImageCms), Display P3 → sRGB, relative colorimetric: (218, 0, 6).
        assert!(
            (i32::from(r) - 218).abs() <= 3 && g <= 3 && (i32::from(b) - 6).abs() <= 3,
            "{r} {g} {b}"
        );
    }

    #[test]
    fn srgb_profile_is_a_no_op_and_garbage_is_ignored() {
        let srgb = ColorProfile::new_srgb().encode().unwrap();
        let mut px = Pixels::new(1, 1, Layout::Rgb8, vec![10, 20, 30]);
        assert!(!rgb_to_srgb(&mut px, &srgb));
        assert!(!rgb_to_srgb(&mut px, b"not a profile"));
        assert!(!rgb_to_srgb(&mut px, &srgb[..srgb.len() / 2]));
        assert_eq!(px.data, vec![10, 20, 30]);
    }

    #[test]
    fn naive_cmyk_fallback() {
        assert_eq!(
            cmyk_to_srgb(&[0, 0, 0, 0, 255, 0, 0, 0, 0, 0, 0, 255], None),
            vec![255, 255, 255, 0, 255, 255, 0, 0, 0]
        );
        // A non-CMYK profile is not applied to CMYK data.
        assert_eq!(
            cmyk_to_srgb(&[0, 255, 255, 0], Some(&p3_icc())),
            vec![255, 0, 0]
        );
    }
}
