//! Criterion benches of each stage of a render — decode, colour, resize (whole, and row by row as JPEG renders do),
//! orient, encode, and the upload's facts (ThumbHash, fingerprint) — on the corpus's photos (`../shared/corpus`), so a regression is visible in the stage that
//! caused it rather than only in the total.
//!
//!     cargo bench -p kiray_imaging_core --no-default-features --bench stages [-- FILTER]
//!
//! The side-by-side comparison with sharp, Pillow and pyvips is `make bench`; this is the per-stage view of ours.

use std::cell::Cell;
use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use kiray_imaging_core::geometry::{plan, shrink_denominator};
use kiray_imaging_core::orient::Orientation;
use kiray_imaging_core::stages;
use kiray_imaging_core::{Fit, Limits, OutputFormat, Target};

#[path = "../tests/support/mod.rs"]
mod support;
use support::{MEDIUM, THUMBNAIL};

/// A baseline camera JPEG, a phone JPEG with a Display P3 profile, a lossy WebP: the everyday uploads.
const PHOTOS: [&str; 3] = [
    "Dragonfly_by_Bolly.jpg",
    "derived_phone_pug_p3.jpg",
    "derived_dragonfly_q85.webp",
];

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus")
}

fn read(name: &str) -> Vec<u8> {
    let path = corpus().join(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the benches need ../shared/corpus)",
            path.display()
        )
    })
}

/// Decodes as `render` does, shrinking on load for `target`; also returns the denominator the decoder used.
fn decode(data: &[u8], target: Target) -> (stages::Decoded, u32) {
    let denominator = Cell::new(1);
    let policy = |w: u32, h: u32, o: Orientation, eighth_is_cheap: bool| {
        denominator.set(shrink_denominator(w, h, o, target, eighth_is_cheap));
        denominator.get()
    };
    let decoded = stages::decode(data, &Limits::default(), &policy).expect("corpus photos decode");
    (decoded, denominator.get())
}

fn bench_photo(c: &mut Criterion, name: &str) {
    let data = read(name);
    for (preset, target) in [("thumbnail", THUMBNAIL), ("medium", MEDIUM)] {
        let mut group = c.benchmark_group(format!("{name}/{preset}"));
        group.sample_size(20);
        group.bench_function("decode", |b| b.iter(|| decode(&data, target)));

        let (decoded, denominator) = decode(&data, target);
        if let Some(icc) = &decoded.icc {
            group.bench_function("colour", |b| {
                b.iter_batched(
                    || decoded.pixels.clone(),
                    |mut pixels| stages::colour(&mut pixels, icc),
                    BatchSize::LargeInput,
                )
            });
        }
        let resize_plan = plan(
            decoded.stored_width,
            decoded.stored_height,
            decoded.orientation,
            target,
        )
        .shrunk(denominator);
        group.bench_function("resize", |b| {
            b.iter_batched(
                || decoded.pixels.clone(),
                |pixels| stages::resize(pixels, &resize_plan).expect("resize"),
                BatchSize::LargeInput,
            )
        });
        // What a JPEG render does instead: the rows pushed 16 at a time, as the decoder hands them over.
        if decoded.pixels.layout == stages::Layout::Rgb8 {
            let pixels = &decoded.pixels;
            group.bench_function("resize_rows", |b| {
                b.iter(|| {
                    let mut rows =
                        stages::RowResizer::new(pixels.width, pixels.height, resize_plan);
                    for chunk in pixels.data.chunks(pixels.width as usize * 3 * 16) {
                        rows.push(chunk).expect("rows");
                    }
                    rows.finish().expect("resize")
                })
            });
        }
        let resized = stages::resize(decoded.pixels.clone(), &resize_plan).expect("resize");
        // Orientation 6 (a phone held upright): the transposing case, the costly one.
        group.bench_function("orient", |b| {
            b.iter_batched(
                || resized.clone(),
                |pixels| stages::orient(pixels, Orientation::from_exif_value(6)),
                BatchSize::LargeInput,
            )
        });
        for (format, quality) in [(OutputFormat::Jpeg, 82), (OutputFormat::Webp, 80)] {
            group.bench_function(format!("encode_{}", format.name()), |b| {
                b.iter(|| stages::encode(&resized, format, quality).expect("encode"))
            });
        }
        group.finish();
    }
}

/// The facts, from the photo fitted into 64×64 as `render` makes them, and into 100×100 (ThumbHash's largest).
fn bench_facts(c: &mut Criterion, name: &str) {
    for side in [64, 100] {
        bench_facts_from(c, name, side);
    }
}

fn bench_facts_from(c: &mut Criterion, name: &str, side: u32) {
    let facts_box = Target {
        width: side,
        height: side,
        fit: Fit::Inside,
    };
    let (decoded, denominator) = decode(&read(name), facts_box);
    let p = plan(
        decoded.stored_width,
        decoded.stored_height,
        decoded.orientation,
        facts_box,
    )
    .shrunk(denominator);
    let small = stages::resize(decoded.pixels, &p).expect("resize");
    let mut group = c.benchmark_group(format!("{name}/facts{side}"));
    group.bench_function("placeholder", |b| b.iter(|| stages::placeholder(&small)));
    group.bench_function("fingerprint", |b| {
        b.iter(|| stages::fingerprint(&small).expect("fingerprint"))
    });
    group.finish();
}

fn stages_bench(c: &mut Criterion) {
    for name in PHOTOS {
        bench_photo(c, name);
        bench_facts(c, name);
    }
}

criterion_group!(benches, stages_bench);
criterion_main!(benches);
