//! Pixels → fewer pixels with fast_image_resize: Lanczos3 convolution, SIMD picked at run time (AVX2, SSE4.1 or
//! none — never `target-cpu=native`, which would crash on an older Lambda host). RGBA is resized premultiplied
//! so transparent edges get no dark fringe: in place when the pixels are ours to change (fast_image_resize's own
//! `mul_div_alpha` premultiplies into a second full-size copy, 4 bytes per source pixel more at the peak).

use fast_image_resize::images::{TypedImage, TypedImageRef};
use fast_image_resize::pixels::{U8x3, U8x4};
use fast_image_resize::{
    CpuExtensions, FilterType, MulDiv, PixelTrait, ResizeAlg, ResizeOptions, Resizer,
};

use crate::error::{Error, Result};
use crate::geometry::Plan;
use crate::pixels::{Layout, Pixels};

pub fn resize(mut src: Pixels, plan: &Plan) -> Result<Pixels> {
    if plan.is_identity(src.width, src.height) {
        return Ok(src);
    }
    if src.layout != Layout::Rgba8 {
        return resized(&src, plan, Alpha::None);
    }
    // The same arithmetic fast_image_resize would do into its own copy (the output is byte for byte the same; a
    // test holds the two to each other), done on the decoded pixels, which nothing reads afterwards.
    let mut image = TypedImage::<U8x4>::from_buffer(src.width, src.height, &mut src.data)
        .map_err(|e| Error::Internal(format!("premultiply: {e}")))?;
    MulDiv::new()
        .multiply_alpha_inplace_typed(&mut image)
        .map_err(|e| Error::Internal(format!("premultiply: {e}")))?;
    resized(&src, plan, Alpha::Premultiplied)
}

/// Like `resize`, but leaves `src` for the next plan (several presets from one decode); an identity plan copies.
pub fn resize_from(src: &Pixels, plan: &Plan) -> Result<Pixels> {
    if plan.is_identity(src.width, src.height) {
        return Ok(src.clone());
    }
    let alpha = match src.layout {
        Layout::Rgba8 => Alpha::Straight,
        Layout::Rgb8 => Alpha::None,
    };
    resized(src, plan, alpha)
}

/// What the source's fourth channel holds, if it has one.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Alpha {
    None,
    /// Straight: the resizer premultiplies into a copy of its own and divides the output.
    Straight,
    /// Already premultiplied: resized as it is; the output is divided here.
    Premultiplied,
}

fn resized(src: &Pixels, plan: &Plan, alpha: Alpha) -> Result<Pixels> {
    // Typed by the layout we hold rather than through `Resizer::resize`'s run-time pixel type: the untyped call
    // compiles the kernels of every pixel type the crate knows (16 of them for f32 alone), code we never run and
    // the only code whose machine instructions differed between two builds of the same source (issue 7).
    let mut data = match src.layout {
        Layout::Rgb8 => resize_as::<U8x3>(src, plan, false),
        Layout::Rgba8 => resize_as::<U8x4>(src, plan, alpha == Alpha::Straight),
    }?;
    if alpha == Alpha::Premultiplied {
        let mut image = TypedImage::<U8x4>::from_buffer(plan.out_width, plan.out_height, &mut data)
            .map_err(|e| Error::Internal(format!("unpremultiply: {e}")))?;
        MulDiv::new()
            .divide_alpha_inplace_typed(&mut image)
            .map_err(|e| Error::Internal(format!("unpremultiply: {e}")))?;
    }
    Ok(Pixels::new(
        plan.out_width,
        plan.out_height,
        src.layout,
        data,
    ))
}

fn resize_as<P: PixelTrait>(src: &Pixels, plan: &Plan, mul_div_alpha: bool) -> Result<Vec<u8>> {
    let source = TypedImageRef::<P>::from_buffer(src.width, src.height, &src.data)
        .map_err(|e| Error::Internal(format!("resize source: {e}")))?;
    let mut data = vec![0u8; plan.out_width as usize * plan.out_height as usize * P::size()];
    let mut destination = TypedImage::<P>::from_buffer(plan.out_width, plan.out_height, &mut data)
        .map_err(|e| Error::Internal(format!("resize destination: {e}")))?;
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3))
        .use_alpha(mul_div_alpha)
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
    fn premultiplying_in_place_gives_the_resizers_own_bytes() {
        // Semi-transparent noise (every alpha from 0 to 255), cropped and shrunk: the in-place path of `resize`
        // and fast_image_resize's own copy (`resize_from`) must agree to the byte.
        let (w, h) = (97, 61);
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let data: Vec<u8> = (0..w * h * 4)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        let src = Pixels::new(w, h, Layout::Rgba8, data);
        for target in [
            Target {
                width: 40,
                height: 30,
                fit: Fit::Cover,
            },
            Target {
                width: 50,
                height: 50,
                fit: Fit::Inside,
            },
        ] {
            let p = plan(w, h, Orientation::NORMAL, target);
            let borrowed = resize_from(&src, &p).unwrap();
            let owned = resize(src.clone(), &p).unwrap();
            assert_eq!(owned, borrowed, "{target:?}");
            assert!(owned
                .data
                .chunks_exact(4)
                .any(|px| px[3] != 0 && px[3] != 255));
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
