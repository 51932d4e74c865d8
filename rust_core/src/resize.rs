//! Pixels → fewer pixels with fast_image_resize: Lanczos3 convolution, SIMD picked at run time (AVX2, SSE4.1 or
//! none — never `target-cpu=native`, which would crash on an older Lambda host). RGBA is resized premultiplied
//! (fast_image_resize's `mul_div_alpha`, on by default) so transparent edges get no dark fringe.

use fast_image_resize::images::Image;
use fast_image_resize::{CpuExtensions, FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use crate::error::{Error, Result};
use crate::geometry::Plan;
use crate::pixels::{Layout, Pixels};

fn pixel_type(layout: Layout) -> PixelType {
    match layout {
        Layout::Rgb8 => PixelType::U8x3,
        Layout::Rgba8 => PixelType::U8x4,
    }
}

pub fn resize(src: Pixels, plan: &Plan) -> Result<Pixels> {
    if plan.is_identity(src.width, src.height) {
        return Ok(src);
    }
    let layout = src.layout;
    let source = Image::from_vec_u8(src.width, src.height, src.data, pixel_type(layout))
        .map_err(|e| Error::Internal(format!("resize source: {e}")))?;
    let mut destination = Image::new(plan.out_width, plan.out_height, pixel_type(layout));
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3))
        .crop(
            plan.crop_left,
            plan.crop_top,
            plan.crop_width,
            plan.crop_height,
        );
    Resizer::new()
        .resize(&source, &mut destination, &options)
        .map_err(|e| Error::Internal(format!("resize: {e}")))?;
    Ok(Pixels::new(
        plan.out_width,
        plan.out_height,
        layout,
        destination.into_vec(),
    ))
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
