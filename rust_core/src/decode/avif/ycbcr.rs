//! AV1 pictures to 8-bit straight RGB(A), in place in the output canvas: Y′CbCr → R′G′B′ (the matrix from `colr
//! nclx`, else the sequence header's; 4:2:0 and 4:2:2 chroma upsampled bilinearly, centre-sited; 10/12-bit rounded
//! to 8), alpha from its own picture's luma, and premultiplied colour made straight again.
//!
//! Not the `yuv` crate: faster, but its output differs from this on almost every AVIF (bench/results/history.md).

use super::av1::Picture;
use crate::decode::heif::{corrupt, unsupported};
use crate::error::Result;

#[derive(Clone, Copy)]
pub(super) enum Target {
    /// RGB from Y′CbCr, with the container's matrix coefficients when it gives them.
    Colour(Option<u16>),
    /// The alpha channel from the luma plane.
    Alpha,
}

/// The output buffer's geometry.
pub(super) struct Canvas {
    pub(super) width: u32,
    pub(super) height: u32,
    pub(super) channels: usize,
}

/// Kr and Kb of the Y′CbCr matrices (ITU-T H.273 Table 4); None for the identity matrix (GBR).
fn matrix_weights(mc: u16) -> Result<Option<(f64, f64)>> {
    Ok(match mc {
        0 => None,
        1 => Some((0.2126, 0.0722)),
        // 2 (unspecified) as libavif takes it; 5 and 6 are BT.601.
        2 | 5 | 6 => Some((0.299, 0.114)),
        4 => Some((0.30, 0.11)),
        7 => Some((0.212, 0.087)),
        9 => Some((0.2627, 0.0593)),
        other => {
            return Err(unsupported(format_args!(
                "matrix coefficients {other} (H.273) are not supported"
            )))
        }
    })
}

/// Converts a decoded picture into `out` (the canvas) at (x0, y0), clipped to the canvas.
pub(super) fn write(
    picture: &Picture,
    canvas: &Canvas,
    out: &mut [u8],
    x0: u32,
    y0: u32,
    target: Target,
) -> Result<()> {
    let format = picture.format()?;
    let (w, h, bpc) = (format.width, format.height, format.bpc);
    let (ss_x, ss_y) = (format.ss_x, format.ss_y);
    let (cw, ch) = (
        if ss_x { w.div_ceil(2) } else { w },
        if ss_y { h.div_ceil(2) } else { h },
    );
    let y = picture.plane(0, w, h)?;
    let region = Region {
        x0: x0 as usize,
        y0: y0 as usize,
        width: w.min((canvas.width as usize).saturating_sub(x0 as usize)),
        height: h.min((canvas.height as usize).saturating_sub(y0 as usize)),
        stride: canvas.width as usize * canvas.channels,
        channels: canvas.channels,
    };
    let max = (1i32 << bpc) - 1;
    match target {
        Target::Alpha => {
            write_alpha(&y, bpc, format.full_range, &region, out);
            Ok(())
        }
        Target::Colour(nclx_matrix) => {
            let mc = nclx_matrix.unwrap_or(format.matrix);
            let weights = matrix_weights(mc)?;
            if weights.is_none() && (ss_x || ss_y) {
                return Err(corrupt(
                    "the identity matrix (GBR) with subsampled chroma is not valid",
                ));
            }
            let chroma = if format.mono {
                None
            } else {
                Some((picture.plane(1, cw, ch)?, picture.plane(2, cw, ch)?))
            };
            let convert = Converter::new(weights, bpc, format.full_range);
            write_colour(
                &y,
                ch,
                chroma.as_ref(),
                (ss_x, ss_y),
                max,
                &convert,
                &region,
                out,
            );
            Ok(())
        }
    }
}

/// One plane's samples: 8-bit, or 16-bit native-endian words (`wide`) holding 10 or 12 bits.
pub(super) struct Plane<'a> {
    pub(super) data: &'a [u8],
    pub(super) stride: usize,
    pub(super) wide: bool,
}

impl Plane<'_> {
    /// Row `r` as i32 samples into `out` (its length = samples wanted).
    fn row(&self, r: usize, out: &mut [i32], max: i32) {
        let start = r * self.stride;
        if self.wide {
            let row = &self.data[start..start + out.len() * 2];
            for (o, s) in out.iter_mut().zip(row.chunks_exact(2)) {
                *o = i32::from(u16::from_ne_bytes([s[0], s[1]])) & max;
            }
        } else {
            let row = &self.data[start..start + out.len()];
            for (o, &s) in out.iter_mut().zip(row) {
                *o = i32::from(s);
            }
        }
    }
}

/// Where a picture lands in the output.
struct Region {
    x0: usize,
    y0: usize,
    width: usize,
    height: usize,
    stride: usize,
    channels: usize,
}

/// Fixed-point Y′CbCr → 8-bit R′G′B′: value = (k·(sample − offset) + ½) >> 16, chroma sums carrying a factor 16
/// from the upsampling weights (so their coefficients are divided by 16).
struct Converter {
    y_offset: i32,
    c_offset: i32,
    y: i32,
    cr_r: i32,
    cb_g: i32,
    cr_g: i32,
    cb_b: i32,
    identity: bool,
}

impl Converter {
    fn new(weights: Option<(f64, f64)>, bpc: u32, full_range: bool) -> Self {
        let scale = f64::from(1u32 << (bpc - 8));
        let max = f64::from((1u32 << bpc) - 1);
        let (y_offset, y_span, c_span) = if full_range {
            (0.0, max, max)
        } else {
            (16.0 * scale, 219.0 * scale, 224.0 * scale)
        };
        let fixed = |v: f64| (v * 65536.0).round() as i32;
        let y = 255.0 / y_span;
        let c = 255.0 / c_span / 16.0;
        let (cr_r, cb_g, cr_g, cb_b) = match weights {
            Some((kr, kb)) => {
                let kg = 1.0 - kr - kb;
                (
                    2.0 * (1.0 - kr),
                    2.0 * kb * (1.0 - kb) / kg,
                    2.0 * kr * (1.0 - kr) / kg,
                    2.0 * (1.0 - kb),
                )
            }
            None => (0.0, 0.0, 0.0, 0.0),
        };
        Converter {
            y_offset: y_offset as i32,
            c_offset: (1 << (bpc - 1)) * 16,
            y: fixed(y),
            cr_r: fixed(cr_r * c),
            cb_g: fixed(cb_g * c),
            cr_g: fixed(cr_g * c),
            cb_b: fixed(cb_b * c),
            identity: weights.is_none(),
        }
    }
}

fn clamp8(v: i32) -> u8 {
    ((v + (1 << 15)) >> 16).clamp(0, 255) as u8
}

/// Horizontally upsampled chroma row, times 4: centre-sited 3:1 bilinear weights when subsampled.
fn upsample_row(src: &[i32], out: &mut [i32], ss_x: bool) {
    if !ss_x {
        for (o, &s) in out.iter_mut().zip(src) {
            *o = 4 * s;
        }
        return;
    }
    let last = src.len() - 1;
    for (x, o) in out.iter_mut().enumerate() {
        let k = x / 2;
        let neighbour = if x % 2 == 0 {
            k.saturating_sub(1)
        } else {
            (k + 1).min(last)
        };
        *o = 3 * src[k] + src[neighbour];
    }
}

/// One plane's chroma rows, upsampled horizontally (x4), kept for reuse: with 4:2:0 each source row serves four
/// output rows (twice as the near row, twice as the far one).
struct ChromaRows {
    rows: [(usize, Vec<i32>); 3],
    raw: Vec<i32>,
}

impl ChromaRows {
    fn new(width: usize, chroma_width: usize) -> Self {
        Self {
            rows: std::array::from_fn(|_| (usize::MAX, vec![0; width])),
            raw: vec![0; chroma_width],
        }
    }

    /// The upsampled row `r`, read if it is not one of the rows kept; `keep` is the other row in use.
    fn get(&mut self, plane: &Plane<'_>, r: usize, keep: usize, ss_x: bool, max: i32) -> usize {
        if let Some(i) = self.rows.iter().position(|(index, _)| *index == r) {
            return i;
        }
        let slot = self
            .rows
            .iter()
            .position(|(index, _)| *index != keep)
            .unwrap_or(0);
        plane.row(r, &mut self.raw, max);
        upsample_row(&self.raw, &mut self.rows[slot].1, ss_x);
        self.rows[slot].0 = r;
        slot
    }
}

#[allow(clippy::too_many_arguments)]
fn write_colour(
    y: &Plane<'_>,
    chroma_rows: usize,
    chroma: Option<&(Plane<'_>, Plane<'_>)>,
    (ss_x, ss_y): (bool, bool),
    max: i32,
    k: &Converter,
    region: &Region,
    out: &mut [u8],
) {
    let w = region.width;
    let cw = if ss_x { w.div_ceil(2) } else { w };
    let mut luma = vec![0i32; w];
    let mut cache = [ChromaRows::new(w, cw), ChromaRows::new(w, cw)];
    // Upsampled chroma (x16): the current row's two source rows, 3:1.
    let mut cb = vec![k.c_offset; w];
    let mut cr = vec![k.c_offset; w];
    for row in 0..region.height {
        y.row(row, &mut luma, max);
        if let Some((u, v)) = chroma {
            let (r0, r1) = if ss_y {
                let c = row / 2;
                let other = if row % 2 == 0 {
                    c.saturating_sub(1)
                } else {
                    (c + 1).min(chroma_rows - 1)
                };
                (c, other)
            } else {
                (row, row)
            };
            for ((plane, sum), rows) in [(u, &mut cb), (v, &mut cr)].into_iter().zip(&mut cache) {
                let near = rows.get(plane, r0, r1, ss_x, max);
                let far = rows.get(plane, r1, r0, ss_x, max);
                let (near, far) = (&rows.rows[near].1, &rows.rows[far].1);
                for ((s, &n), &f) in sum.iter_mut().zip(near).zip(far) {
                    *s = 3 * n + f;
                }
            }
        }
        let start = (region.y0 + row) * region.stride + region.x0 * region.channels;
        let dst = &mut out[start..start + w * region.channels];
        if region.channels == 4 {
            convert_row::<4>(dst, &luma, &cb, &cr, k);
        } else {
            convert_row::<3>(dst, &luma, &cb, &cr, k);
        }
    }
}

/// One row to RGB(A) (`C` channels; alpha, when there is one, is opaque here and written later).
fn convert_row<const C: usize>(
    dst: &mut [u8],
    luma: &[i32],
    cb: &[i32],
    cr: &[i32],
    k: &Converter,
) {
    let pixels = dst.chunks_exact_mut(C).zip(luma).zip(cb).zip(cr);
    if k.identity {
        // GBR: Y is G, Cb is B, Cr is R, all scaled like luma (the chroma sums carry the factor 16).
        for (((px, &l), &u), &v) in pixels {
            px[0] = clamp8(((v >> 4) - k.y_offset) * k.y);
            px[1] = clamp8((l - k.y_offset) * k.y);
            px[2] = clamp8(((u >> 4) - k.y_offset) * k.y);
            if C == 4 {
                px[3] = 255;
            }
        }
        return;
    }
    for (((px, &l), &u), &v) in pixels {
        let yv = (l - k.y_offset) * k.y;
        let (u, v) = (u - k.c_offset, v - k.c_offset);
        px[0] = clamp8(yv + k.cr_r * v);
        px[1] = clamp8(yv - k.cb_g * u - k.cr_g * v);
        px[2] = clamp8(yv + k.cb_b * u);
        if C == 4 {
            px[3] = 255;
        }
    }
}

fn write_alpha(y: &Plane<'_>, bpc: u32, full_range: bool, region: &Region, out: &mut [u8]) {
    let max = (1i32 << bpc) - 1;
    let scale = 1i32 << (bpc - 8);
    let (offset, span) = if full_range {
        (0, max)
    } else {
        (16 * scale, 219 * scale)
    };
    let k = ((255.0 / f64::from(span)) * 65536.0).round() as i32;
    let mut luma = vec![0i32; region.width];
    for row in 0..region.height {
        y.row(row, &mut luma, max);
        let start = (region.y0 + row) * region.stride + region.x0 * region.channels;
        let dst = &mut out[start..start + region.width * region.channels];
        for (px, &a) in dst.chunks_exact_mut(region.channels).zip(&luma) {
            px[3] = clamp8((a - offset) * k);
        }
    }
}

/// Premultiplied colour back to straight: c · 255 / a, rounded; fully transparent pixels become black.
pub(super) fn unpremultiply(rgba: &mut [u8]) {
    for px in rgba.chunks_exact_mut(4) {
        let a = u32::from(px[3]);
        if a == 255 {
            continue;
        }
        for c in &mut px[..3] {
            *c = (u32::from(*c) * 255 + a / 2)
                .checked_div(a)
                .map_or(0, |v| v.min(255) as u8);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bt601_limited_range_greys_and_primaries() {
        let k = Converter::new(Some((0.299, 0.114)), 8, false);
        let rgb = |y: i32, cb: i32, cr: i32| {
            let (yv, u, v) = (
                (y - k.y_offset) * k.y,
                cb * 16 - k.c_offset,
                cr * 16 - k.c_offset,
            );
            [
                clamp8(yv + k.cr_r * v),
                clamp8(yv - k.cb_g * u - k.cr_g * v),
                clamp8(yv + k.cb_b * u),
            ]
        };
        assert_eq!(rgb(16, 128, 128), [0, 0, 0]);
        assert_eq!(rgb(235, 128, 128), [255, 255, 255]);
        // Pure red in BT.601 limited range: Y 81, Cb 90, Cr 240.
        let red = rgb(81, 90, 240);
        assert!(red[0] >= 253 && red[1] <= 2 && red[2] <= 2, "{red:?}");
        // 10-bit full range mid grey.
        let k10 = Converter::new(Some((0.2126, 0.0722)), 10, true);
        let grey = clamp8((512 - k10.y_offset) * k10.y);
        assert_eq!(grey, 128);
    }

    #[test]
    fn upsampling_weights() {
        let mut out = [0; 4];
        upsample_row(&[0, 100], &mut out, true);
        assert_eq!(out, [0, 100, 300, 400]);
        let mut out = [0; 3];
        upsample_row(&[1, 2, 3], &mut out, false);
        assert_eq!(out, [4, 8, 12]);
    }

    #[test]
    fn unpremultiplying() {
        let mut px = [64, 32, 0, 128, 10, 10, 10, 0, 1, 2, 3, 255];
        unpremultiply(&mut px);
        assert_eq!(px, [128, 64, 0, 128, 0, 0, 0, 0, 1, 2, 3, 255]);
    }
}
