//! `kiray_imaging_core::render` end to end through the public Rust API, without Python: sizes, the JPEG path (by
//! feeding an output back in), and which error variant each kind of bad input or option gives.

use std::borrow::Cow;

use kiray_imaging_core::{
    render, render_formats, render_many, Error, Fit, Format, Job, Limits, Output, OutputFormat,
    RenderOptions, Rendition, Target,
};

mod support;
use support::{MEDIUM, THUMBNAIL};

/// An 8-bit RGB PNG with a gradient (so it is not a trivially compressible flat colour), optionally with an eXIf
/// chunk carrying `orientation`.
fn png(width: u32, height: u32, orientation: Option<u16>) -> Vec<u8> {
    let pixels: Vec<u8> = (0..height)
        .flat_map(|y| {
            (0..width).flat_map(move |x| [(x * 255 / width) as u8, (y * 255 / height) as u8, 128])
        })
        .collect();
    let mut info = png::Info::with_size(width, height);
    info.color_type = png::ColorType::Rgb;
    info.bit_depth = png::BitDepth::Eight;
    if let Some(value) = orientation {
        // Little-endian TIFF, IFD0 at 8 with one entry: Orientation (0x0112), SHORT, count 1, the value inline.
        let mut exif = b"II*\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0".to_vec();
        exif.extend_from_slice(&value.to_le_bytes());
        exif.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        info.exif_metadata = Some(Cow::Owned(exif));
    }
    let mut out = Vec::new();
    {
        let encoder = png::Encoder::with_info(&mut out, info).unwrap();
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&pixels).unwrap();
        writer.finish().unwrap();
    }
    out
}

/// A PNG whose header declares `width`x`height` and that carries no image data: only a decoder that trusts the
/// header and allocates first would get anywhere near the IDAT it lacks.
fn png_header_only(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    // Dropping the writer without image data ends the file with IEND.
    drop(encoder.write_header().unwrap());
    out
}

fn options(target: Target) -> RenderOptions {
    RenderOptions::new(target)
}

fn assert_jpeg(r: &Rendition, size: (u32, u32)) {
    assert_eq!((r.width, r.height), size);
    assert_eq!(r.format, OutputFormat::Jpeg);
    assert!(
        r.data.starts_with(&[0xFF, 0xD8, 0xFF]),
        "{:02x?}",
        &r.data[..4]
    );
    assert!(r.data.ends_with(&[0xFF, 0xD9]));
}

#[test]
fn png_renders_to_both_presets() {
    let data = png(2000, 1000, None);

    let thumb = render(&data, &options(THUMBNAIL)).unwrap();
    let medium = render(&data, &options(MEDIUM)).unwrap();

    assert_jpeg(&thumb, (400, 300));
    assert_jpeg(&medium, (1280, 640));
    for r in [&thumb, &medium] {
        assert_eq!(r.source_format, Format::Png);
        assert_eq!((r.source_width, r.source_height), (2000, 1000));
        assert_eq!((r.orientation, r.shrink_on_load), (1, 1));
    }
}

#[test]
fn small_png_is_never_upscaled() {
    let data = png(200, 100, None);

    assert_jpeg(&render(&data, &options(MEDIUM)).unwrap(), (200, 100));
    // Cover on a small source: the largest centred 4:3 rectangle it holds.
    assert_jpeg(&render(&data, &options(THUMBNAIL)).unwrap(), (133, 100));
}

#[test]
fn exif_orientation_in_png_turns_the_output() {
    // Stored 300x200, orientation 6 (rotate 90° clockwise to display): displayed 200x300.
    let data = png(300, 200, Some(6));

    let r = render(&data, &options(MEDIUM)).unwrap();

    assert_jpeg(&r, (200, 300));
    assert_eq!(r.orientation, 6);
    assert_eq!((r.source_width, r.source_height), (300, 200));
}

#[test]
fn jpeg_output_renders_again() {
    let big = Target {
        width: 1600,
        height: 1600,
        fit: Fit::Inside,
    };
    let jpeg = render(&png(2000, 1500, None), &options(big)).unwrap();
    assert_jpeg(&jpeg, (1600, 1200));

    let thumb = render(&jpeg.data, &options(THUMBNAIL)).unwrap();

    assert_jpeg(&thumb, (400, 300));
    assert_eq!(thumb.source_format, Format::Jpeg);
    assert_eq!((thumb.source_width, thumb.source_height), (1600, 1200));
    // 1600x1200 → 400x300 is a scale of exactly 1/4: a 1/4 decode would leave 1 px per output px, under the
    // 1.5 margin, so libjpeg decodes at 1/2 and the final resize is a 2x downscale.
    assert_eq!(thumb.shrink_on_load, 2);
}

#[test]
fn shrink_on_load_keeps_the_size_the_rule_gives() {
    // An odd-sized JPEG: libjpeg's 1/2 decode is 961x1928 (rounded up), a hair wider than 1921x3855.
    let whole = Target {
        width: 4000,
        height: 4000,
        fit: Fit::Inside,
    };
    let jpeg = render(&png(1921, 3855, None), &options(whole)).unwrap();
    assert_jpeg(&jpeg, (1921, 3855));

    let medium = render(&jpeg.data, &options(MEDIUM)).unwrap();

    // Scale 1280 / 3855 ≈ 0.332: the 1/2 decode keeps 1.506 px per output px, just over the 1.5 margin.
    assert_eq!(medium.shrink_on_load, 2);
    // 1921 · 1280 / 3855 = 637.84: the same size a PNG of this picture gets.
    assert_jpeg(&medium, (638, 1280));
}

#[test]
fn rendering_is_deterministic() {
    let data = png(640, 480, None);
    let a = render(&data, &options(THUMBNAIL)).unwrap();
    let b = render(&data, &options(THUMBNAIL)).unwrap();
    assert_eq!(a.data, b.data);
}

#[test]
fn truncated_jpeg_is_a_decode_error() {
    let jpeg = render(&png(800, 600, None), &options(MEDIUM)).unwrap().data;

    let err = render(&jpeg[..jpeg.len() / 2], &options(THUMBNAIL)).unwrap_err();

    assert_eq!(
        err,
        Error::Decode("JPEG: Premature end of JPEG file".into())
    );
}

#[test]
fn truncated_png_is_a_decode_error() {
    let data = png(800, 600, None);
    let err = render(&data[..data.len() / 2], &options(THUMBNAIL)).unwrap_err();
    assert!(
        matches!(&err, Error::Decode(m) if m.starts_with("PNG: ")),
        "{err:?}"
    );
}

#[test]
fn garbage_is_unsupported() {
    let err = render(b"GARBAGE, not an image at all", &options(THUMBNAIL)).unwrap_err();
    assert_eq!(
        err,
        Error::Unsupported(
            "not a supported image (JPEG, PNG, WebP, GIF or AVIF); the input starts with 47 41 52 42 41 47 45 2c"
                .into()
        )
    );
}

#[test]
fn empty_input_is_a_decode_error() {
    let err = render(b"", &options(THUMBNAIL)).unwrap_err();
    assert!(matches!(err, Error::Decode(_)), "{err:?}");
}

#[test]
fn huge_declared_size_is_a_limit_error() {
    let err = render(&png_header_only(100_000, 100_000), &options(THUMBNAIL)).unwrap_err();
    assert_eq!(
        err,
        Error::Limit(
            "image is 100000x100000 = 10000000000 pixels, more than the limit of 50000000 pixels"
                .into()
        )
    );
}

#[test]
fn configured_limits_are_enforced() {
    let data = png(640, 480, None);
    let with = |limits: Limits| RenderOptions {
        limits,
        ..options(THUMBNAIL)
    };
    let exact = Limits {
        max_pixels: 640 * 480,
        max_input_bytes: data.len(),
    };

    assert!(render(&data, &with(exact)).is_ok());
    let pixels = render(
        &data,
        &with(Limits {
            max_pixels: 640 * 480 - 1,
            ..exact
        }),
    );
    assert!(matches!(pixels, Err(Error::Limit(_))), "{pixels:?}");
    let bytes = render(
        &data,
        &with(Limits {
            max_input_bytes: data.len() - 1,
            ..exact
        }),
    );
    assert!(matches!(bytes, Err(Error::Limit(_))), "{bytes:?}");
}

#[test]
fn invalid_options_are_invalid_arguments() {
    let data = png(64, 48, None);
    let bad = [
        RenderOptions::new(Target {
            width: 0,
            ..THUMBNAIL
        }),
        RenderOptions::new(Target {
            height: 16_385,
            ..MEDIUM
        }),
        RenderOptions {
            quality: 0,
            ..options(THUMBNAIL)
        },
        RenderOptions {
            quality: 101,
            ..options(THUMBNAIL)
        },
        RenderOptions {
            limits: Limits {
                max_pixels: 0,
                ..Limits::default()
            },
            ..options(THUMBNAIL)
        },
        RenderOptions {
            limits: Limits {
                max_input_bytes: 0,
                ..Limits::default()
            },
            ..options(THUMBNAIL)
        },
    ];
    for o in bad {
        let err = render(&data, &o).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{o:?}: {err:?}");
    }
    // Options are checked before the input is looked at: garbage with bad options is still the caller's bug.
    let err = render(
        b"garbage",
        &RenderOptions {
            quality: 0,
            ..options(THUMBNAIL)
        },
    )
    .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
}

#[test]
fn several_presets_from_one_decode() {
    let data = png(2000, 1000, Some(6));
    let jpeg = Output {
        format: OutputFormat::Jpeg,
        quality: 80,
    };
    let webp = Output {
        format: OutputFormat::Webp,
        quality: 80,
    };
    let jobs = [
        Job::new(THUMBNAIL, vec![jpeg]),
        Job::new(MEDIUM, vec![jpeg, webp]),
    ];
    let out = render_many(&data, &jobs, &Limits::default()).unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(out[1].len(), 2);
    // A PNG is decoded whole either way: each job gets exactly what its own render gives, turned by EXIF 6.
    for (job, renditions) in jobs.iter().zip(&out) {
        let alone = render_formats(&data, &options(job.target), &job.outputs).unwrap();
        assert_eq!(renditions, &alone_with_timings(alone, renditions));
    }
    assert_jpeg(&out[0][0], (400, 300));
    assert_jpeg(&out[1][0], (640, 1280));
    assert_eq!(out[1][1].format, OutputFormat::Webp);
    let decodes: Vec<_> = out.iter().flatten().map(|r| r.timings.decode).collect();
    assert!(decodes.windows(2).all(|w| w[0] == w[1]), "{decodes:?}");

    assert!(matches!(
        render_many(&data, &[], &Limits::default()),
        Err(Error::InvalidArgument(_))
    ));
    let no_outputs = [Job::new(MEDIUM, vec![])];
    assert!(matches!(
        render_many(&data, &no_outputs, &Limits::default()),
        Err(Error::InvalidArgument(_))
    ));
}

/// `alone` with the timings of `shared` (wall-clock times never match between two renders).
fn alone_with_timings(alone: Vec<Rendition>, shared: &[Rendition]) -> Vec<Rendition> {
    alone
        .into_iter()
        .zip(shared)
        .map(|(r, s)| Rendition {
            timings: s.timings,
            ..r
        })
        .collect()
}
