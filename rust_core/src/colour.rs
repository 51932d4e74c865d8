//! Colour management: pixels described by an embedded ICC profile (Display P3 from phones, Adobe RGB from
//! cameras, CMYK from print workflows) are converted to sRGB before resizing, so the output — untagged, as the
//! web assumes — shows the colours the photographer saw. A profile that is garbage, truncated, of the wrong
//! colour space for the pixels, or unsupported is ignored: the pixels are then taken to be sRGB already.

use std::sync::{Arc, OnceLock};

use moxcms::{
    ColorProfile, DataColorSpace, Layout as CmsLayout, ToneReprCurve, Transform8BitExecutor,
    TransformOptions,
};

use crate::error::{Error, Result};
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

/// A conversion of RGB(A) pixels to sRGB, built once from an embedded profile and applied to the pixels in pieces
/// (rows as the decoder hands them over, or a whole image chunk by chunk).
pub struct ToSrgb {
    transform: Arc<Transform8BitExecutor>,
    source: Source,
    channels: usize,
    scratch: Vec<u8>,
}

/// What the profile describes: RGB pixels, or grey ones that the decoder expanded to RGB (any channel is the grey).
#[derive(Clone, Copy)]
enum Source {
    Rgb,
    Grey,
}

impl ToSrgb {
    /// None when converting would change nothing or cannot be done: the profile is garbage, sRGB already, or of a
    /// colour space the pixels are not in.
    pub fn new(icc: &[u8], layout: Layout) -> Option<Self> {
        let profile = parse(icc)?;
        let srgb = ColorProfile::new_srgb();
        let (source, from, to) = match (profile.color_space, layout) {
            (DataColorSpace::Rgb, _) if is_srgb(&profile) => return None,
            (DataColorSpace::Rgb, Layout::Rgb8) => (Source::Rgb, CmsLayout::Rgb, CmsLayout::Rgb),
            (DataColorSpace::Rgb, Layout::Rgba8) => (Source::Rgb, CmsLayout::Rgba, CmsLayout::Rgba),
            (DataColorSpace::Gray, _) => (Source::Grey, CmsLayout::Gray, CmsLayout::Rgb),
            _ => return None,
        };
        let transform = profile
            .create_transform_8bit(from, &srgb, to, TransformOptions::default())
            .ok()?;
        Some(Self {
            transform,
            source,
            channels: layout.channels(),
            scratch: Vec::new(),
        })
    }

    /// Converts whole pixels in place, `CHUNK_PIXELS` at a time through a small scratch buffer: a second full-size
    /// copy of a 49 MP image would be another 150 MB. (A transform refuses only slices of unequal or partial-pixel
    /// length, which whole-pixel chunks never are.)
    pub fn apply(&mut self, data: &mut [u8]) -> Result<()> {
        let channels = self.channels;
        let refused = |e: moxcms::CmsError| Error::Internal(format!("colour transform: {e}"));
        match self.source {
            Source::Rgb => {
                self.scratch.resize(CHUNK_PIXELS * channels, 0);
                for chunk in data.chunks_mut(CHUNK_PIXELS * channels) {
                    let out = &mut self.scratch[..chunk.len()];
                    self.transform.transform(chunk, out).map_err(refused)?;
                    chunk.copy_from_slice(out);
                }
            }
            Source::Grey => {
                // The scratch holds the grey channel, then its RGB conversion.
                self.scratch.resize(CHUNK_PIXELS * 4, 0);
                for chunk in data.chunks_mut(CHUNK_PIXELS * channels) {
                    let count = chunk.len() / channels;
                    let (grey, rgb) = self.scratch.split_at_mut(CHUNK_PIXELS);
                    for (g, p) in grey.iter_mut().zip(chunk.chunks_exact(channels)) {
                        *g = p[0];
                    }
                    let rgb = &mut rgb[..count * 3];
                    self.transform
                        .transform(&grey[..count], rgb)
                        .map_err(refused)?;
                    for (dst, src) in chunk.chunks_exact_mut(channels).zip(rgb.chunks_exact(3)) {
                        dst[..3].copy_from_slice(src);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Converts RGB(A) pixels in place from the colour space `icc` describes to sRGB. Returns whether it did.
pub fn rgb_to_srgb(pixels: &mut Pixels, icc: &[u8]) -> bool {
    ToSrgb::new(icc, pixels.layout).is_some_and(|mut t| t.apply(&mut pixels.data).is_ok())
}

/// The CMYK profile of last resort: offset on coated paper (FOGRA39), made from Fogra's measurements. See
/// rust_core/profiles/README.md for its provenance, licence and accuracy.
const FALLBACK_CMYK_PROFILE: &[u8] = include_bytes!("../profiles/fogra39l-coated.icc");

/// CMYK (0 = no ink, 255 = full ink) to sRGB, through the embedded CMYK profile when there is a usable one, else
/// through the press profile above (its black point scaled to the screen's black, so shadows are not milky).
/// `(1 − C)(1 − K)`, the guess of naive viewers, shows ink colours no press can
/// print (100 % cyan as the screen's pure cyan): on a photo separated for a real press it was further from the
/// original than sharp's built-in profile.
pub struct CmykToSrgb(Arc<Transform8BitExecutor>);

impl CmykToSrgb {
    pub fn new(icc: Option<&[u8]>) -> Self {
        let embedded = icc
            .and_then(parse)
            .filter(|p| p.color_space == DataColorSpace::Cmyk)
            .and_then(|p| cmyk_transform(&p));
        let fallback = || {
            static FALLBACK: OnceLock<Arc<Transform8BitExecutor>> = OnceLock::new();
            FALLBACK
                .get_or_init(|| {
                    let profile =
                        parse(FALLBACK_CMYK_PROFILE).expect("the built-in CMYK profile parses");
                    cmyk_transform(&profile).expect("the built-in CMYK profile makes a transform")
                })
                .clone()
        };
        Self(embedded.unwrap_or_else(fallback))
    }

    /// Converts whole CMYK pixels into as many RGB ones (`rgb` is 3/4 the length of `cmyk`).
    pub fn convert(&self, cmyk: &[u8], rgb: &mut [u8]) -> Result<()> {
        self.0
            .transform(cmyk, rgb)
            .map_err(|e| Error::Internal(format!("CMYK transform: {e}")))
    }
}

fn cmyk_transform(profile: &ColorProfile) -> Option<Arc<Transform8BitExecutor>> {
    profile
        .create_transform_8bit(
            CmsLayout::Rgba,
            &ColorProfile::new_srgb(),
            CmsLayout::Rgb,
            TransformOptions::default(),
        )
        .ok()
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
    fn unprofiled_cmyk_gets_press_colours_not_screen_primaries() {
        // Reference: LittleCMS (Pillow ImageCms) with the same profile, relative colorimetric. A naive
        // (1 − C)(1 − K) would give (0, 255, 255) for cyan and (0, 0, 0) for black ink alone; an unscaled press
        // profile (28, 27, 24) for the darkest four-ink black.
        let inks: [([u8; 4], [u8; 3]); 8] = [
            ([0, 0, 0, 0], [255, 255, 255]),
            ([255, 0, 0, 0], [0, 159, 227]),
            ([0, 255, 0, 0], [230, 0, 126]),
            ([0, 0, 255, 0], [255, 237, 0]),
            ([0, 0, 0, 255], [33, 32, 31]),
            ([255, 255, 255, 255], [6, 4, 0]),
            ([0, 255, 255, 0], [228, 10, 23]),
            ([128, 64, 32, 16], [133, 165, 195]),
        ];
        let cmyk: Vec<u8> = inks.iter().flat_map(|(c, _)| *c).collect();
        let cmyk_to_srgb = |cmyk: &[u8], icc: Option<&[u8]>| {
            let mut rgb = vec![0; cmyk.len() / 4 * 3];
            CmykToSrgb::new(icc).convert(cmyk, &mut rgb).unwrap();
            rgb
        };
        let rgb = cmyk_to_srgb(&cmyk, None);
        for ((ink, expected), got) in inks.iter().zip(rgb.chunks_exact(3)) {
            let off = expected
                .iter()
                .zip(got)
                .map(|(e, g)| (i32::from(*e) - i32::from(*g)).abs())
                .max()
                .unwrap();
            assert!(off <= 4, "{ink:?}: {got:?}, LittleCMS {expected:?}");
        }
        // A non-CMYK profile is not applied to CMYK data: the fallback is used instead.
        assert_eq!(cmyk_to_srgb(&cmyk, Some(&p3_icc())), rgb);
    }
}
