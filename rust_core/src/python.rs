//! The Python boundary, and the only file that knows PyO3: converts arguments, releases the GIL for the whole
//! render, and maps each error variant to one exception class.

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyDict};

use crate::{
    render_formats, Error, Fit, Limits, Output, OutputFormat, RenderOptions, Rendition, Target,
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

/// Renders one image into each of `outputs` ((format, quality) pairs) from a single decode. Returns one dict of
/// bytes and facts per output; `kiray_imaging.render` wraps them in `Rendition`s.
#[pyfunction]
#[pyo3(signature = (data, *, width, height, fit, outputs, max_pixels = None, max_input_bytes = None))]
#[allow(clippy::too_many_arguments)]
fn render<'py>(
    py: Python<'py>,
    data: PyBackedBytes,
    width: u32,
    height: u32,
    fit: &str,
    outputs: Vec<(String, u8)>,
    max_pixels: Option<u64>,
    max_input_bytes: Option<usize>,
) -> PyResult<Vec<Bound<'py, PyDict>>> {
    let defaults = Limits::default();
    let outputs = outputs
        .iter()
        .map(|(format, quality)| {
            Ok(Output {
                format: parse_format(format)?,
                quality: *quality,
            })
        })
        .collect::<PyResult<Vec<_>>>()?;
    let options = RenderOptions {
        target: Target {
            width,
            height,
            fit: parse_fit(fit)?,
        },
        limits: Limits {
            max_pixels: max_pixels.unwrap_or(defaults.max_pixels),
            max_input_bytes: max_input_bytes.unwrap_or(defaults.max_input_bytes),
        },
        ..RenderOptions::new(Target {
            width,
            height,
            fit: Fit::Inside,
        })
    };
    let renditions = py
        .detach(|| render_formats(&data, &options, &outputs))
        .map_err(to_py)?;
    renditions.iter().map(|r| rendition_dict(py, r)).collect()
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
    m.add_function(wrap_pyfunction!(render, m)?)?;
    m.add_function(wrap_pyfunction!(simd_level, m)?)?;
    Ok(())
}
