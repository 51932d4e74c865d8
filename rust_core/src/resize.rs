//! Pixels → fewer pixels with fast_image_resize: Lanczos3 convolution, SIMD picked at run time (AVX2, SSE4.1 or
//! none — never `target-cpu=native`, which would crash on an older Lambda host). RGBA is resized premultiplied
//! (fast_image_resize's `mul_div_alpha`, on by default) so transparent edges get no dark fringe.

use fast_image_resize::images::{TypedImage, TypedImageRef};
use fast_image_resize::pixels::{U8x3, U8x4};
use fast_image_resize::{CpuExtensions, FilterType, PixelTrait, ResizeAlg, ResizeOptions, Resizer};

use crate::error::{Error, Result};
use crate::geometry::Plan;
use crate::pixels::{Layout, Pixels};

pub fn resize(src: Pixels, plan: &Plan) -> Result<Pixels> {
    if plan.is_identity(src.width, src.height) {
        return Ok(src);
    }
    resized(&src, plan)
}

/// Like `resize`, but leaves `src` for the next plan (several presets from one decode); an identity plan copies.
pub fn resize_from(src: &Pixels, plan: &Plan) -> Result<Pixels> {
    if plan.is_identity(src.width, src.height) {
        return Ok(src.clone());
    }
    resized(src, plan)
}

fn resized(src: &Pixels, plan: &Plan) -> Result<Pixels> {
    // Typed by the layout we hold rather than through `Resizer::resize`'s run-time pixel type: the untyped call
    // compiles the kernels of every pixel type the crate knows (16 of them for f32 alone), code we never run and
    // the only code whose machine instructions differed between two builds of the same source (issue 7).
    let data = match src.layout {
        Layout::Rgb8 => resize_as::<U8x3>(src, plan),
        Layout::Rgba8 => resize_as::<U8x4>(src, plan),
    }?;
    Ok(Pixels::new(
        plan.out_width,
        plan.out_height,
        src.layout,
        data,
    ))
}

fn resize_as<P: PixelTrait>(src: &Pixels, plan: &Plan) -> Result<Vec<u8>> {
    let source = TypedImageRef::<P>::from_buffer(src.width, src.height, &src.data)
        .map_err(|e| Error::Internal(format!("resize source: {e}")))?;
    let mut data = vec![0u8; plan.out_width as usize * plan.out_height as usize * P::size()];
    let mut destination = TypedImage::<P>::from_buffer(plan.out_width, plan.out_height, &mut data)
        .map_err(|e| Error::Internal(format!("resize destination: {e}")))?;
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3))
        .crop(
            plan.crop_left,
            plan.crop_top,
            plan.crop_width,
            plan.crop_height,
        );
    Resizer::new()
        .resize_typed(&source, &mut destination, &options)
        .map_err(|e| Error::Internal(format!("resize: {e}")))?;
    Ok(data)
}

/// The SIMD level the resizer uses on this CPU, for the cold-start log line.
pub fn simd_level() -> &'static str {
    match Resizer::new().cpu_extensions() {
        #[cfg(target_arch = "x86_64")]
        CpuExtensions::Avx2 => "avx2",
        #[cfg(target_arch = "x86_64")]
        CpuExtensions::Sse4_1 => "sse4.1",
        #[cfg(target_arch = "aarch64")]
        CpuExtensions::Neon => "neon",
        _ => "none",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::{plan, Fit, Target};
    use crate::orient::Orientation;

    #[test]
    fn transparent_edges_do_not_darken() {
        // Left half opaque white, right half fully transparent *black*: premultiplied resizing must not pull
        // black into the visible pixels.
        let (w, h) = (64, 8);
        let data = (0..w * h)
            .flat_map(|i| {
                if i % w < w / 2 {
                    [255, 255, 255, 255]
                } else {
                    [0, 0, 0, 0]
                }
            })
            .collect();
        let src = Pixels::new(w, h, Layout::Rgba8, data);
        let p = plan(
            w,
            h,
            Orientation::NORMAL,
            Target {
                width: 16,
                height: 16,
                fit: Fit::Inside,
            },
        );
        let out = resize(src, &p).unwrap();
        for px in out.data.chunks_exact(4).filter(|px| px[3] > 0) {
            assert!(px[0] >= 250, "fringe pixel {px:?}");
        }
    }

    #[test]
    fn crops_and_shrinks() {
        let src = Pixels::new(40, 10, Layout::Rgb8, vec![128; 40 * 10 * 3]);
        let p = plan(
            40,
            10,
            Orientation::NORMAL,
            Target {
                width: 4,
                height: 3,
                fit: Fit::Cover,
            },
        );
        let out = resize(src, &p).unwrap();
        assert_eq!((out.width, out.height), (4, 3));
        assert!(out.data.iter().all(|&v| (127..=129).contains(&v)));
    }
}
