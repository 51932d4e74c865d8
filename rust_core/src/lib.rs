//! kiray-imaging's native core: one call takes an uploaded photo's bytes to a finished rendition.
//!
//! `bytes → sniff → decode (shrink-on-load) → resize (crop, Lanczos3) → orient → encode → bytes`
//!
//! (`render.rs` chains the stages; a JPEG's rows go from the decoder to the resizer as they are decoded.)
//!
//! This file is the plain Rust API; `python.rs` is the only file that knows about Python.

mod colour;
mod decode;
mod encode;
pub mod error;
mod fingerprint;
pub mod geometry;
mod libjpeg;
pub mod limits;
pub mod orient;
mod pixels;
mod placeholder;
mod render;
mod resize;
mod row_resize;
pub mod sniff;

#[cfg(feature = "python")]
mod python;

/// The stages `render` chains, one by one, for the criterion benches (`benches/stages.rs`), so that a regression
/// shows up in the stage that caused it. Not a supported API: signatures follow the pipeline's needs.
#[doc(hidden)]
pub mod stages {
    pub use crate::colour::rgb_to_srgb as colour;
    pub use crate::decode::{decode, Decoded};
    pub use crate::encode::encode;
    pub use crate::fingerprint::phash as fingerprint;
    pub use crate::orient::apply as orient;
    pub use crate::pixels::{Layout, Pixels};
    pub use crate::placeholder::thumb_hash as placeholder;
    pub use crate::resize::resize;
    pub use crate::row_resize::RowResizer;
}

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

pub use encode::{FormatInfo, OutputFormat, OUTPUT_FORMATS};
pub use error::{Error, Result};
pub use geometry::{Fit, Target};
pub use limits::Limits;
pub use render::HIGH_DENSITY_MARGIN;
pub use resize::simd_level;
pub use sniff::Format;

/// Everything one render needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenderOptions {
    pub target: Target,
    pub format: OutputFormat,
    /// Encoder quality, 1–100. Default: 82.
    pub quality: u8,
    pub limits: Limits,
}

impl RenderOptions {
    pub fn new(target: Target) -> Self {
        Self {
            target,
            format: OutputFormat::Jpeg,
            quality: 82,
            limits: Limits::default(),
        }
    }

    pub fn validate(&self) -> Result<()> {
        const MAX_SIDE: u32 = 16_384;
        let t = self.target;
        if !(1..=MAX_SIDE).contains(&t.width) || !(1..=MAX_SIDE).contains(&t.height) {
            return Err(Error::InvalidArgument(format!(
                "expected a target size between 1x1 and {MAX_SIDE}x{MAX_SIDE}, got {}x{}",
                t.width, t.height
            )));
        }
        if !(1..=100).contains(&self.quality) {
            return Err(Error::InvalidArgument(format!(
                "expected quality in 1..=100, got {}",
                self.quality
            )));
        }
        if self.limits.max_pixels == 0 || self.limits.max_input_bytes == 0 {
            return Err(Error::InvalidArgument("expected limits ≥ 1".into()));
        }
        Ok(())
    }
}

/// Wall-clock time of each stage of one render.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StageTimings {
    pub decode: Duration,
    pub colour: Duration,
    pub resize: Duration,
    pub orient: Duration,
    pub encode: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rendition {
    pub data: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub format: OutputFormat,
    pub source_format: Format,
    /// As stored in the file (before orientation).
    pub source_width: u32,
    pub source_height: u32,
    /// The EXIF orientation that was applied (1 when none).
    pub orientation: u8,
    /// The shrink-on-load denominator used by the decoder (JPEG, still WebP; 1 = full decode).
    pub shrink_on_load: u32,
    pub timings: StageTimings,
}

/// One encoded output of a render: a format and its encoder quality (1–100).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Output {
    pub format: OutputFormat,
    pub quality: u8,
}

/// One preset of a `render_many` call: its box, and the outputs encoded from its resized pixels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub target: Target,
    pub outputs: Vec<Output>,
    /// Device pixels per CSS pixel the files are for: 1, or 2 for a high-density ("@2x") file whose box is twice
    /// the preset's. A job of density 2 is made only when the source fills its box without upscaling (otherwise
    /// it would be no sharper than the density-1 file) and shrinks on load with `HIGH_DENSITY_MARGIN`.
    pub density: u32,
}

impl Job {
    pub fn new(target: Target, outputs: Vec<Output>) -> Self {
        Self {
            target,
            outputs,
            density: 1,
        }
    }
}

/// What a render learns of the upload itself, beside its renditions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFacts {
    /// The ThumbHash of the whole upright photo (placeholder.rs).
    pub thumb_hash: Vec<u8>,
    /// Its "phash-dct64" perceptual fingerprint (fingerprint.rs).
    pub fingerprint: u64,
}

/// The result of `render_upload`: per job, its renditions (none for a density-2 job the source is too small for),
/// and the upload's facts when they were asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Upload {
    pub renditions: Vec<Vec<Rendition>>,
    pub facts: Option<ImageFacts>,
}

/// Renders `data` as described by `options`. Never panics: an internal bug surfaces as `Error::Internal`.
pub fn render(data: &[u8], options: &RenderOptions) -> Result<Rendition> {
    let output = Output {
        format: options.format,
        quality: options.quality,
    };
    let mut renditions = render_formats(data, options, &[output])?;
    Ok(renditions.remove(0))
}

/// Decodes, colour-manages, resizes and orients once, then encodes each of `outputs` (e.g. JPEG and WebP of the
/// same medium). `options.format` and `options.quality` are not used: `outputs` replaces them.
pub fn render_formats(
    data: &[u8],
    options: &RenderOptions,
    outputs: &[Output],
) -> Result<Vec<Rendition>> {
    let job = Job::new(options.target, outputs.to_vec());
    let mut renditions = render_many(data, std::slice::from_ref(&job), &options.limits)?;
    Ok(renditions.remove(0))
}

/// Several presets from one decode: decoded (and colour-managed) once, shrunk on load only as far as every
/// target allows, then resized, oriented and encoded per job. One `Vec` of renditions per job, in order.
///
/// The functions render each preset from its own decode, which may shrink further for the smaller one (a 1/8
/// DC-only decode of a progressive JPEG for the thumbnail): so a small preset's pixels here can differ slightly
/// from `render_formats`'s, while the preset that set the shrink gets the same bytes. The timings of each
/// rendition carry the shared decode and colour stages whole.
pub fn render_many(data: &[u8], jobs: &[Job], limits: &Limits) -> Result<Vec<Vec<Rendition>>> {
    Ok(render_upload(data, jobs, limits, false)?.renditions)
}

/// `render_many`, and with `facts` the upload's placeholder and fingerprint, from the same decode.
pub fn render_upload(data: &[u8], jobs: &[Job], limits: &Limits, facts: bool) -> Result<Upload> {
    if jobs.is_empty() {
        return Err(Error::InvalidArgument(
            "expected at least one preset, got none".into(),
        ));
    }
    for job in jobs {
        if job.outputs.is_empty() {
            return Err(Error::InvalidArgument(
                "expected at least one output format, got none".into(),
            ));
        }
        if !(1..=2).contains(&job.density) {
            return Err(Error::InvalidArgument(format!(
                "expected density 1 or 2, got {}",
                job.density
            )));
        }
        for output in &job.outputs {
            RenderOptions {
                target: job.target,
                format: output.format,
                quality: output.quality,
                limits: *limits,
            }
            .validate()?;
        }
    }
    catch_unwind(AssertUnwindSafe(|| {
        render::render(data, jobs, limits, facts)
    }))
    .unwrap_or_else(|payload| Err(Error::Internal(error::panic_message(payload.as_ref()))))
}
