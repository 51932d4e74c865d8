//! The Python boundary, and the only file that knows PyO3: converts arguments, releases the GIL for the whole
//! render, and maps each error variant to one exception class. What crosses back is declared here once — the
//! `Rendition` record, the output-format table and the geometry plan — and mirrored by `_core.pyi` (stubtest holds
//! the two together).

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyDict, PyTuple};

use crate::geometry::{self, Fit, Target};
use crate::orient::Orientation;
use crate::{
    render_upload as render_jobs, Error, FormatInfo, Job, Limits, Output, OutputFormat, Rendition,
    OUTPUT_FORMATS,
};

create_exception!(
    _core,
    ImageError,
    PyException,
    "The image cannot be rendered. Subclasses say why."
);
create_exception!(
    _core,
    DecodeError,
    ImageError,
    "The bytes are a supported format but damaged or inconsistent."
);
create_exception!(
    _core,
    UnsupportedFormatError,
    ImageError,
    "The bytes are not a format the core reads."
);
create_exception!(
    _core,
    LimitExceededError,
    ImageError,
    "The input exceeds a configured size or pixel limit."
);

fn to_py(err: Error) -> PyErr {
    let message = err.to_string();
    match err {
        Error::Decode(_) => DecodeError::new_err(message),
        Error::Unsupported(_) => UnsupportedFormatError::new_err(message),
        Error::Limit(_) => LimitExceededError::new_err(message),
        Error::InvalidArgument(_) => PyValueError::new_err(message),
        _ => ImageError::new_err(message),
    }
}

fn parse_fit(fit: &str) -> PyResult<Fit> {
    match fit {
        "cover" => Ok(Fit::Cover),
        "inside" => Ok(Fit::Inside),
        other => Err(PyValueError::new_err(format!(
            "expected fit 'cover' or 'inside', got {other:?}"
        ))),
    }
}

/// `names` as Python writes a tuple of str, so that messages read alike on both sides of the boundary.
fn py_tuple<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let quoted: Vec<String> = names.into_iter().map(|n| format!("'{n}'")).collect();
    format!("({})", quoted.join(", "))
}

fn parse_format(format: &str) -> PyResult<OutputFormat> {
    OutputFormat::from_name(format).ok_or_else(|| {
        PyValueError::new_err(format!(
            "expected format in {}, got '{format}'",
            py_tuple(OUTPUT_FORMATS.iter().map(|info| info.name))
        ))
    })
}

/// The five stages a render times, in the order they run.
const STAGES: [&str; 5] = ["decode", "colour", "resize", "orient", "encode"];

/// One output format: its name, the Content-Type it is served with and the extension of its keys.
#[pyclass(frozen, module = "kiray_imaging._core", name = "OutputFormat", get_all)]
struct PyOutputFormat {
    name: &'static str,
    content_type: &'static str,
    extension: &'static str,
}

impl From<&FormatInfo> for PyOutputFormat {
    fn from(info: &FormatInfo) -> Self {
        Self {
            name: info.name,
            content_type: info.content_type,
            extension: info.extension,
        }
    }
}

#[pymethods]
impl PyOutputFormat {
    fn __repr__(&self) -> String {
        format!(
            "OutputFormat(name={:?}, content_type={:?}, extension={:?})",
            self.name, self.content_type, self.extension
        )
    }
}

/// One encoded rendition and the facts of how it was made. Made by the render functions; constructible from
/// Python (keyword arguments) for tests and tools.
#[pyclass(frozen, module = "kiray_imaging._core", name = "Rendition")]
struct PyRendition {
    #[pyo3(get)]
    data: Py<PyBytes>,
    #[pyo3(get)]
    width: u32,
    #[pyo3(get)]
    height: u32,
    output: OutputFormat,
    source_format: crate::Format,
    #[pyo3(get)]
    source_width: u32,
    #[pyo3(get)]
    source_height: u32,
    #[pyo3(get)]
    orientation: u8,
    #[pyo3(get)]
    shrink_on_load: u32,
    timings_ms: Vec<(&'static str, f64)>,
}

impl PyRendition {
    fn from_core(py: Python<'_>, r: &Rendition) -> Self {
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
        let t = &r.timings;
        let took = [t.decode, t.colour, t.resize, t.orient, t.encode];
        Self {
            data: PyBytes::new(py, &r.data).unbind(),
            width: r.width,
            height: r.height,
            output: r.format,
            source_format: r.source_format,
            source_width: r.source_width,
            source_height: r.source_height,
            orientation: r.orientation,
            shrink_on_load: r.shrink_on_load,
            timings_ms: STAGES.into_iter().zip(took.map(ms)).collect(),
        }
    }
}

#[pymethods]
impl PyRendition {
    #[new]
    #[pyo3(signature = (*, data, width, height, format, source_format, source_width, source_height, orientation,
                        shrink_on_load, timings_ms, content_type = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        data: Py<PyBytes>,
        width: u32,
        height: u32,
        format: &str,
        source_format: &str,
        source_width: u32,
        source_height: u32,
        orientation: u8,
        shrink_on_load: u32,
        timings_ms: std::collections::HashMap<String, f64>,
        content_type: Option<&str>,
    ) -> PyResult<Self> {
        let output = parse_format(format)?;
        if let Some(given) = content_type {
            if given != output.content_type() {
                return Err(PyValueError::new_err(format!(
                    "expected content_type '{}' for format '{format}', got '{given}'",
                    output.content_type()
                )));
            }
        }
        let source = crate::Format::from_name(source_format).ok_or_else(|| {
            PyValueError::new_err(format!(
                "expected source_format in {}, got '{source_format}'",
                py_tuple(crate::Format::ALL.map(crate::Format::name))
            ))
        })?;
        if let Some(stage) = timings_ms.keys().find(|s| !STAGES.contains(&s.as_str())) {
            return Err(PyValueError::new_err(format!(
                "expected timings of stages in {}, got '{stage}'",
                py_tuple(STAGES)
            )));
        }
        let timings_ms = STAGES
            .into_iter()
            .filter_map(|stage| timings_ms.get(stage).map(|ms| (stage, *ms)))
            .collect();
        Ok(Self {
            data,
            width,
            height,
            output,
            source_format: source,
            source_width,
            source_height,
            orientation,
            shrink_on_load,
            timings_ms,
        })
    }

    /// The output format's name (`OUTPUT_FORMATS`).
    #[getter]
    fn format(&self) -> &'static str {
        self.output.name()
    }

    #[getter]
    fn content_type(&self) -> &'static str {
        self.output.content_type()
    }

    /// The extension of this format's keys and files, e.g. ``.jpg``.
    #[getter]
    fn extension(&self) -> &'static str {
        self.output.extension()
    }

    #[getter]
    fn source_format(&self) -> &'static str {
        self.source_format.name()
    }

    /// Milliseconds per stage; a new dict on each access, so the record stays frozen.
    #[getter]
    fn timings_ms<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        for (stage, ms) in &self.timings_ms {
            out.set_item(stage, ms)?;
        }
        Ok(out)
    }

    fn __eq__(&self, py: Python<'_>, other: &Self) -> bool {
        self.data.bind(py).as_bytes() == other.data.bind(py).as_bytes()
            && (self.width, self.height, self.output, self.source_format)
                == (other.width, other.height, other.output, other.source_format)
            && (self.source_width, self.source_height, self.orientation)
                == (other.source_width, other.source_height, other.orientation)
            && self.shrink_on_load == other.shrink_on_load
            && self.timings_ms == other.timings_ms
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Rendition(format={:?}, width={}, height={}, bytes={}, source_format={:?}, source_width={}, \
             source_height={}, orientation={}, shrink_on_load={})",
            self.output.name(),
            self.width,
            self.height,
            self.data.bind(py).as_bytes().len(),
            self.source_format.name(),
            self.source_width,
            self.source_height,
            self.orientation,
            self.shrink_on_load
        )
    }
}

/// Where a rendition's pixels come from (`geometry::plan`) and how far a JPEG or still WebP decode may shrink on
/// load: what the core itself does, for tools (the benchmarks) that must decode and crop exactly as it does.
#[pyclass(frozen, module = "kiray_imaging._core", name = "Plan", get_all)]
struct PyPlan {
    /// Left edge of the source crop, in stored (pre-orientation) full-size pixels.
    crop_left: f64,
    crop_top: f64,
    crop_width: f64,
    crop_height: f64,
    /// Output size in stored orientation (a quarter turn swaps it when displayed).
    out_width: u32,
    out_height: u32,
    shrink_on_load: u32,
}

#[pymethods]
impl PyPlan {
    fn __repr__(&self) -> String {
        format!(
            "Plan(crop_left={}, crop_top={}, crop_width={}, crop_height={}, out_width={}, out_height={}, \
             shrink_on_load={})",
            self.crop_left,
            self.crop_top,
            self.crop_width,
            self.crop_height,
            self.out_width,
            self.out_height,
            self.shrink_on_load
        )
    }
}

/// The core's plan for a `width`×`height` stored image with EXIF `orientation`, fitted to a box.
/// `eighth_is_cheap`: the decoder makes a 1/8 image cheaply (a progressive JPEG's DC scans).
#[pyfunction]
#[pyo3(signature = (width, height, *, box_width, box_height, fit, orientation = 1, eighth_is_cheap = false))]
#[allow(clippy::too_many_arguments)]
fn plan(
    width: u32,
    height: u32,
    box_width: u32,
    box_height: u32,
    fit: &str,
    orientation: u32,
    eighth_is_cheap: bool,
) -> PyResult<PyPlan> {
    if width == 0 || height == 0 || box_width == 0 || box_height == 0 {
        return Err(PyValueError::new_err(format!(
            "expected sizes ≥ 1, got a {width}x{height} image and a {box_width}x{box_height} box"
        )));
    }
    let target = Target {
        width: box_width,
        height: box_height,
        fit: parse_fit(fit)?,
    };
    let orientation = Orientation::from_exif_value(orientation);
    let p = geometry::plan(width, height, orientation, target);
    Ok(PyPlan {
        crop_left: p.crop_left,
        crop_top: p.crop_top,
        crop_width: p.crop_width,
        crop_height: p.crop_height,
        out_width: p.out_width,
        out_height: p.out_height,
        shrink_on_load: geometry::shrink_denominator(
            width,
            height,
            orientation,
            target,
            eighth_is_cheap,
        ),
    })
}

fn parse_outputs(outputs: &[(String, u8)]) -> PyResult<Vec<Output>> {
    outputs
        .iter()
        .map(|(format, quality)| {
            Ok(Output {
                format: parse_format(format)?,
                quality: *quality,
            })
        })
        .collect()
}

fn limits(max_pixels: Option<u64>, max_input_bytes: Option<usize>) -> Limits {
    let defaults = Limits::default();
    Limits {
        max_pixels: max_pixels.unwrap_or(defaults.max_pixels),
        max_input_bytes: max_input_bytes.unwrap_or(defaults.max_input_bytes),
    }
}

/// One preset as Python passes it: (width, height, fit, [(format, quality), …]), and for `render_upload` its
/// density (1, or 2 for the @2x file).
type PyJob = (u32, u32, String, Vec<(String, u8)>);
type PyDensityJob = (u32, u32, String, Vec<(String, u8)>, u32);

fn parse_job((width, height, fit, outputs, density): &PyDensityJob) -> PyResult<Job> {
    Ok(Job {
        target: Target {
            width: *width,
            height: *height,
            fit: parse_fit(fit)?,
        },
        outputs: parse_outputs(outputs)?,
        density: *density,
    })
}

/// What `render_upload` returns: per job its renditions (none for a density-2 job the source cannot fill), and
/// the upload's ThumbHash and fingerprint when they were asked for.
#[pyclass(frozen, module = "kiray_imaging._core", name = "Upload", get_all)]
struct PyUpload {
    renditions: Vec<Vec<Py<PyRendition>>>,
    placeholder: Option<Py<PyBytes>>,
    fingerprint: Option<u64>,
}

#[pymethods]
impl PyUpload {
    fn __repr__(&self) -> String {
        let counts: Vec<usize> = self.renditions.iter().map(Vec::len).collect();
        format!(
            "Upload(renditions per job={counts:?}, placeholder={}, fingerprint={})",
            if self.placeholder.is_some() {
                "…"
            } else {
                "None"
            },
            self.fingerprint
                .map_or_else(|| "None".to_string(), |f| format!("{f:#018x}"))
        )
    }
}

fn render(
    py: Python<'_>,
    data: &[u8],
    jobs: &[Job],
    facts: bool,
    max_pixels: Option<u64>,
    max_input_bytes: Option<usize>,
) -> PyResult<crate::Upload> {
    let limits = limits(max_pixels, max_input_bytes);
    py.detach(|| render_jobs(data, jobs, &limits, facts))
        .map_err(to_py)
}

/// Renders one image for one or more presets from a single decode: `jobs` are (width, height, fit, outputs) tuples,
/// outputs being (format, quality) pairs. Returns, per job, one `Rendition` per output, in order.
#[pyfunction]
#[pyo3(signature = (data, *, jobs, max_pixels = None, max_input_bytes = None))]
fn render_many(
    py: Python<'_>,
    data: PyBackedBytes,
    jobs: Vec<PyJob>,
    max_pixels: Option<u64>,
    max_input_bytes: Option<usize>,
) -> PyResult<Vec<Vec<PyRendition>>> {
    let jobs = jobs
        .into_iter()
        .map(|(w, h, fit, outputs)| parse_job(&(w, h, fit, outputs, 1)))
        .collect::<PyResult<Vec<_>>>()?;
    let upload = render(py, &data, &jobs, false, max_pixels, max_input_bytes)?;
    Ok(upload
        .renditions
        .iter()
        .map(|renditions| {
            renditions
                .iter()
                .map(|r| PyRendition::from_core(py, r))
                .collect()
        })
        .collect())
}

/// `render_many` for an upload: jobs carry their density (a density-2 job is left out, an empty list, when the
/// source cannot fill its box), and `facts` adds the ThumbHash and the fingerprint from the same decode.
#[pyfunction]
#[pyo3(signature = (data, *, jobs, facts = false, max_pixels = None, max_input_bytes = None))]
fn render_upload(
    py: Python<'_>,
    data: PyBackedBytes,
    jobs: Vec<PyDensityJob>,
    facts: bool,
    max_pixels: Option<u64>,
    max_input_bytes: Option<usize>,
) -> PyResult<PyUpload> {
    let jobs = jobs.iter().map(parse_job).collect::<PyResult<Vec<_>>>()?;
    let upload = render(py, &data, &jobs, facts, max_pixels, max_input_bytes)?;
    let renditions = upload
        .renditions
        .iter()
        .map(|renditions| {
            renditions
                .iter()
                .map(|r| Py::new(py, PyRendition::from_core(py, r)))
                .collect::<PyResult<Vec<_>>>()
        })
        .collect::<PyResult<Vec<_>>>()?;
    Ok(PyUpload {
        renditions,
        placeholder: upload
            .facts
            .as_ref()
            .map(|f| PyBytes::new(py, &f.thumb_hash).unbind()),
        fingerprint: upload.facts.map(|f| f.fingerprint),
    })
}

/// The SIMD level the resizer picked on this CPU ("avx2", "sse4.1" or "none").
#[pyfunction]
fn simd_level() -> &'static str {
    crate::simd_level()
}

#[pymodule]
#[pyo3(name = "_core")]
fn core_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    let defaults = Limits::default();
    m.add("DEFAULT_MAX_PIXELS", defaults.max_pixels)?;
    m.add("DEFAULT_MAX_INPUT_BYTES", defaults.max_input_bytes)?;
    m.add("ImageError", py.get_type::<ImageError>())?;
    m.add("DecodeError", py.get_type::<DecodeError>())?;
    m.add(
        "UnsupportedFormatError",
        py.get_type::<UnsupportedFormatError>(),
    )?;
    m.add("LimitExceededError", py.get_type::<LimitExceededError>())?;
    m.add_class::<PyRendition>()?;
    m.add_class::<PyOutputFormat>()?;
    m.add_class::<PyPlan>()?;
    m.add_class::<PyUpload>()?;
    let formats = OUTPUT_FORMATS
        .iter()
        .map(|info| Py::new(py, PyOutputFormat::from(info)))
        .collect::<PyResult<Vec<_>>>()?;
    m.add("OUTPUT_FORMATS", PyTuple::new(py, formats)?)?;
    m.add(
        "SOURCE_FORMATS",
        PyTuple::new(py, crate::Format::ALL.map(crate::Format::name))?,
    )?;
    m.add_function(wrap_pyfunction!(render_many, m)?)?;
    m.add_function(wrap_pyfunction!(render_upload, m)?)?;
    m.add_function(wrap_pyfunction!(plan, m)?)?;
    m.add_function(wrap_pyfunction!(simd_level, m)?)?;
    Ok(())
}
