//! The pipeline behind `render_many`: decode once, colour-manage, then per preset resize, orient and encode.
//!
//! A JPEG (nearly every upload) goes row by row: libjpeg's rows are converted to sRGB and pushed into each preset's
//! `RowResizer` as they are decoded, so the full-size decoded image is never held (for a progressive file, libjpeg's
//! coefficients are then the only large buffer). The other formats' decoders make whole images.

use std::cell::Cell;
use std::time::{Duration, Instant};

use crate::colour::{self, ToSrgb};
use crate::decode::{self, Frame, RowSink};
use crate::error::{Error, Result};
use crate::geometry::{self, Fit, Target};
use crate::orient::{self, Orientation};
use crate::pixels::{Layout, Pixels};
use crate::row_resize::RowResizer;
use crate::sniff::{sniff, Format};
use crate::{
    encode, fingerprint, placeholder, resize, ImageFacts, Job, Limits, Rendition, StageTimings,
    Upload,
};

/// How far a density-2 job lets the decoder shrink: while the shrunk image still covers its output (1.0 decoded
/// pixel per output pixel, against `geometry::SHRINK_ON_LOAD_MARGIN` for the others). The 2x file of a 12 MP photo
/// then comes from the 1/4 decode the thumbnail takes anyway instead of a 1/2 one; the quality report holds its
/// SSIM (bench/results/history.md, "Retina thumbnail").
pub const HIGH_DENSITY_MARGIN: f64 = 1.0;

/// The facts (placeholder, fingerprint) come from the whole upright photo fitted into 64×64: one more job, without
/// outputs, fed by the same decode. ThumbHash keeps at most 7×7 of its frequencies and the fingerprint 8×8 of a
/// 32×32 square, so more pixels change neither; the ThumbHash encoder's cost grows with them (up to 100×100, its
/// largest input, costs over twice as much: `make bench-stages`, "facts").
const FACTS_TARGET: Target = Target {
    width: 64,
    height: 64,
    fit: Fit::Inside,
};

pub fn render(data: &[u8], jobs: &[Job], limits: &Limits, with_facts: bool) -> Result<Upload> {
    let mut all = jobs.to_vec();
    if with_facts {
        all.push(Job::new(FACTS_TARGET, vec![]));
    }
    let (shared, mut resized) = if matches!(sniff(data), Ok(Format::Jpeg)) {
        streamed(data, &all, limits)?
    } else {
        // (Anything sniff refuses goes this way too: its decoder names the problem.)
        whole(data, &all, limits)?
    };
    let facts = if with_facts {
        let Some(Some((pixels, _))) = resized.pop() else {
            return Err(Error::Internal("facts: no pixels".into()));
        };
        Some(image_facts(pixels, shared.orientation)?)
    } else {
        None
    };
    let renditions = jobs
        .iter()
        .zip(resized)
        .map(|(job, made)| match made {
            Some((pixels, resize)) => finish(pixels, job, &shared, resize),
            None => Ok(Vec::new()),
        })
        .collect::<Result<_>>()?;
    Ok(Upload { renditions, facts })
}

fn image_facts(pixels: Pixels, orientation: Orientation) -> Result<ImageFacts> {
    let upright = orient::apply(pixels, orientation);
    Ok(ImageFacts {
        thumb_hash: placeholder::thumb_hash(&upright),
        fingerprint: fingerprint::phash(&upright)?,
    })
}

/// Each job's resized pixels and the time its resize took; `None` for a job the source is too small for.
type Resized = Vec<Option<(Pixels, Duration)>>;

/// Whether `job` is made for a `w`×`h` stored image: a density-2 job only when the source fills its box.
fn wanted(job: &Job, w: u32, h: u32, o: Orientation) -> bool {
    job.density == 1 || geometry::fills(w, h, o, job.target)
}

/// The shrink-on-load policy of a render: the largest shrink every job made allows. Records its choice in `chosen`.
fn shrink_policy<'a>(
    jobs: &'a [Job],
    chosen: &'a Cell<u32>,
) -> impl Fn(u32, u32, Orientation, bool) -> u32 + 'a {
    move |w, h, o, eighth_is_cheap| {
        let d = jobs
            .iter()
            .filter(|job| wanted(job, w, h, o))
            .map(|job| {
                let margin = if job.density > 1 {
                    HIGH_DENSITY_MARGIN
                } else {
                    geometry::SHRINK_ON_LOAD_MARGIN
                };
                geometry::shrink_denominator_with(w, h, o, job.target, eighth_is_cheap, margin)
            })
            .min()
            .unwrap_or(1);
        chosen.set(d);
        d
    }
}

/// A JPEG, row by row from the decoder into every job's resizer.
fn streamed(data: &[u8], jobs: &[Job], limits: &Limits) -> Result<(Facts, Resized)> {
    let started = Instant::now();
    let denominator = Cell::new(1);
    let mut sink = Streamed {
        jobs,
        denominator: &denominator,
        started: None,
        colour: Duration::ZERO,
    };
    decode::decode_jpeg_rows(data, limits, &shrink_policy(jobs, &denominator), &mut sink)?;
    let Some(Started {
        mut facts,
        resizers,
        ..
    }) = sink.started
    else {
        return Err(Error::Internal("JPEG: decoded without a frame".into()));
    };
    let resize_total: Duration = resizers.iter().flatten().map(|(_, spent)| *spent).sum();
    facts.colour = sink.colour;
    facts.decode = started.elapsed().saturating_sub(sink.colour + resize_total);
    let resized = resizers
        .into_iter()
        .map(|made| {
            made.map(|(resizer, spent)| {
                let at = Instant::now();
                Ok((resizer.finish()?, spent + at.elapsed()))
            })
            .transpose()
        })
        .collect::<Result<_>>()?;
    Ok((facts, resized))
}

/// Any other format: decoded whole, colour-managed in place, then resized per job.
fn whole(data: &[u8], jobs: &[Job], limits: &Limits) -> Result<(Facts, Resized)> {
    let started = Instant::now();
    // Only still WebP shrinks on load here; for the others it stays 1.
    let denominator = Cell::new(1);
    let decoded = decode::decode(data, limits, &shrink_policy(jobs, &denominator))?;
    let decoded_at = Instant::now();
    let mut pixels = decoded.pixels;
    if let Some(icc) = &decoded.icc {
        colour::rgb_to_srgb(&mut pixels, icc);
    }
    let facts = Facts {
        source_format: decoded.format,
        source_width: decoded.stored_width,
        source_height: decoded.stored_height,
        orientation: decoded.orientation,
        shrink_on_load: denominator.get(),
        decode: decoded_at - started,
        colour: decoded_at.elapsed(),
    };
    // Each job but the last made resizes from a borrowed decode; the last may take it (an identity plan moves it).
    let made: Vec<bool> = jobs.iter().map(|job| facts.wants(job)).collect();
    let last = made.iter().rposition(|&m| m).expect("a density-1 job");
    let mut pixels = Some(pixels);
    let mut resized = Vec::with_capacity(jobs.len());
    for (i, job) in jobs.iter().enumerate() {
        if !made[i] {
            resized.push(None);
            continue;
        }
        let at = Instant::now();
        let plan = facts.plan(job.target);
        let out = match (i == last, pixels.take()) {
            (true, Some(source)) => resize::resize(source, &plan)?,
            (_, Some(source)) => {
                let out = resize::resize_from(&source, &plan)?;
                pixels = Some(source);
                out
            }
            (_, None) => return Err(Error::Internal("resize: the decode was taken".into())),
        };
        resized.push(Some((out, at.elapsed())));
    }
    Ok((facts, resized))
}

/// The sink of a JPEG render: each chunk of rows is converted to sRGB in place, then pushed to every preset.
struct Streamed<'a> {
    jobs: &'a [Job],
    denominator: &'a Cell<u32>,
    started: Option<Started>,
    colour: Duration,
}

struct Started {
    facts: Facts,
    to_srgb: Option<ToSrgb>,
    /// One per job made, with the time spent in it so far.
    resizers: Vec<Option<(RowResizer, Duration)>>,
}

impl RowSink for Streamed<'_> {
    fn begin(&mut self, frame: Frame) -> Result<()> {
        let facts = Facts {
            source_format: frame.format,
            source_width: frame.stored_width,
            source_height: frame.stored_height,
            orientation: frame.orientation,
            // Set by the shrink policy before the decoder started.
            shrink_on_load: self.denominator.get(),
            decode: Duration::ZERO,
            colour: Duration::ZERO,
        };
        let resizers = self
            .jobs
            .iter()
            .map(|job| {
                facts.wants(job).then(|| {
                    let plan = facts.plan(job.target);
                    (
                        RowResizer::new(frame.width, frame.height, plan),
                        Duration::ZERO,
                    )
                })
            })
            .collect();
        self.started = Some(Started {
            to_srgb: frame
                .icc
                .as_deref()
                .and_then(|icc| ToSrgb::new(icc, Layout::Rgb8)),
            facts,
            resizers,
        });
        Ok(())
    }

    fn rows(&mut self, rows: &mut [u8]) -> Result<()> {
        let Some(started) = self.started.as_mut() else {
            return Err(Error::Internal("JPEG: rows before the frame".into()));
        };
        if let Some(to_srgb) = started.to_srgb.as_mut() {
            let at = Instant::now();
            to_srgb.apply(rows)?;
            self.colour += at.elapsed();
        }
        for (resizer, spent) in started.resizers.iter_mut().flatten() {
            let at = Instant::now();
            resizer.push(rows)?;
            *spent += at.elapsed();
        }
        Ok(())
    }
}

/// What every job of one decode shares.
struct Facts {
    source_format: Format,
    source_width: u32,
    source_height: u32,
    orientation: Orientation,
    shrink_on_load: u32,
    decode: Duration,
    colour: Duration,
}

impl Facts {
    /// Planned on the stored size (the size the preset rule speaks of), then mapped into the shrunk pixels.
    fn plan(&self, target: Target) -> geometry::Plan {
        geometry::plan(
            self.source_width,
            self.source_height,
            self.orientation,
            target,
        )
        .shrunk(self.shrink_on_load)
    }

    fn wants(&self, job: &Job) -> bool {
        wanted(job, self.source_width, self.source_height, self.orientation)
    }
}

/// Orients one job's resized pixels and encodes its outputs.
fn finish(resized: Pixels, job: &Job, facts: &Facts, resize: Duration) -> Result<Vec<Rendition>> {
    // (Opaque RGBA was already narrowed to RGB by the decoder, in place: see decode::settle_alpha.)
    let orient_started = Instant::now();
    let oriented = orient::apply(resized, facts.orientation);
    let shared = StageTimings {
        decode: facts.decode,
        colour: facts.colour,
        resize,
        orient: orient_started.elapsed(),
        encode: Duration::ZERO,
    };
    job.outputs
        .iter()
        .map(|output| {
            let encode_started = Instant::now();
            let bytes = encode::encode(&oriented, output.format, output.quality)?;
            Ok(Rendition {
                data: bytes,
                width: oriented.width,
                height: oriented.height,
                format: output.format,
                source_format: facts.source_format,
                source_width: facts.source_width,
                source_height: facts.source_height,
                orientation: facts.orientation.value(),
                shrink_on_load: facts.shrink_on_load,
                timings: StageTimings {
                    encode: encode_started.elapsed(),
                    ..shared
                },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::OutputFormat;
    use crate::geometry::Fit;
    use crate::Output;

    fn job(width: u32, height: u32, fit: Fit) -> Job {
        Job::new(
            Target { width, height, fit },
            vec![Output {
                format: OutputFormat::Jpeg,
                quality: 80,
            }],
        )
    }

    /// The corpus's JPEGs, row by row, against the whole-image pipeline (decode, colour, resize) on the same
    /// decode: a pixel may differ by a level (see `row_resize`), the facts not at all. Wine's medium decodes at 1/1,
    /// the pug carries a Display P3 profile, Dragonfly's thumbnail comes from its DC scans alone.
    #[test]
    fn jpegs_streamed_row_by_row_get_the_whole_image_pipelines_pixels() {
        let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
        let jobs = [job(400, 300, Fit::Cover), job(1280, 1280, Fit::Inside)];
        for name in [
            "Wine_by_Jakub_Mede.jpg",
            "derived_phone_pug_p3.jpg",
            "Dragonfly_by_Bolly.jpg",
            "Grey_plasma_gray.jpg",
        ] {
            let data = std::fs::read(corpus.join(name)).expect("the corpus is ../shared/corpus");
            for job in &jobs {
                let jobs = std::slice::from_ref(job);
                let limits = Limits::default();
                let (rows_facts, rows) = streamed(&data, jobs, &limits).expect("streams");
                let (whole_facts, whole) = whole(&data, jobs, &limits).expect("decodes");
                assert_eq!(
                    (rows_facts.shrink_on_load, rows_facts.orientation),
                    (whole_facts.shrink_on_load, whole_facts.orientation),
                    "{name}"
                );
                let (a, b) = (&rows[0].as_ref().unwrap().0, &whole[0].as_ref().unwrap().0);
                assert_eq!((a.width, a.height), (b.width, b.height), "{name}");
                let off = a
                    .data
                    .iter()
                    .zip(&b.data)
                    .map(|(x, y)| x.abs_diff(*y))
                    .max();
                assert!(off <= Some(1), "{name} {:?}: off by {off:?}", job.target);
            }
        }
    }
}
