//! The Python boundary, and the only file that knows PyO3: converts arguments, releases the GIL for the whole
//! render, and maps each error variant to one exception class.

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyDict};

use crate::{
    render_many as render_jobs, Error, Fit, Job, Limits, Output, OutputFormat, Rendition, Target,
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

fn parse_format(format: &str) -> PyResult<OutputFormat> {
    match format {
        "jpeg" => Ok(OutputFormat::Jpeg),
        "webp" => Ok(OutputFormat::Webp),
        other => Err(PyValueError::new_err(format!(
            "expected format 'jpeg' or 'webp', got {other:?}"
        ))),
    }
}

fn rendition_dict<'py>(py: Python<'py>, rendition: &Rendition) -> PyResult<Bound<'py, PyDict>> {
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    let t = &rendition.timings;
    let timings = PyDict::new(py);
    for (stage, took) in [
        ("decode", t.decode),
        ("colour", t.colour),
        ("resize", t.resize),
        ("orient", t.orient),
        ("encode", t.encode),
    ] {
        timings.set_item(stage, ms(took))?;
    }
    let out = PyDict::new(py);
    out.set_item("data", PyBytes::new(py, &rendition.data))?;
    out.set_item("width", rendition.width)?;
    out.set_item("height", rendition.height)?;
    out.set_item("format", rendition.format.name())?;
    out.set_item("content_type", rendition.format.content_type())?;
    out.set_item(
        "source_format",
        format!("{:?}", rendition.source_format).to_lowercase(),
    )?;
    out.set_item("source_width", rendition.source_width)?;
    out.set_item("source_height", rendition.source_height)?;
    out.set_item("orientation", rendition.orientation)?;
    out.set_item("shrink_on_load", rendition.shrink_on_load)?;
    out.set_item("timings_ms", timings)?;
    Ok(out)
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

/// One preset as Python passes it: (width, height, fit, [(format, quality), …]).
type PyJob = (u32, u32, String, Vec<(String, u8)>);

/// Renders one image for one or more presets from a single decode: `jobs` are (width, height, fit, outputs) tuples,
/// outputs being (format, quality) pairs. Returns, per job, one dict of bytes and facts per output;
/// `kiray_imaging.rendering` wraps them in `Rendition`s.
#[pyfunction]
#[pyo3(signature = (data, *, jobs, max_pixels = None, max_input_bytes = None))]
fn render_many<'py>(
    py: Python<'py>,
    data: PyBackedBytes,
    jobs: Vec<PyJob>,
    max_pixels: Option<u64>,
    max_input_bytes: Option<usize>,
) -> PyResult<Vec<Vec<Bound<'py, PyDict>>>> {
    let jobs = jobs
        .iter()
        .map(|(width, height, fit, outputs)| {
            Ok(Job {
                target: Target {
                    width: *width,
                    height: *height,
                    fit: parse_fit(fit)?,
                },
                outputs: parse_outputs(outputs)?,
            })
        })
        .collect::<PyResult<Vec<_>>>()?;
    let limits = limits(max_pixels, max_input_bytes);
    let per_job = py
        .detach(|| render_jobs(&data, &jobs, &limits))
        .map_err(to_py)?;
    per_job
        .iter()
        .map(|renditions| renditions.iter().map(|r| rendition_dict(py, r)).collect())
        .collect()
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
    m.add_function(wrap_pyfunction!(render_many, m)?)?;
    m.add_function(wrap_pyfunction!(simd_level, m)?)?;
    Ok(())
}
