//! Glue shared by the JPEG decoder and encoder: libjpeg's error callbacks become a Rust unwind that is caught at
//! the call boundary (`catch`), so a corrupt file can never `exit()` the process or longjmp over Rust frames.
//! mozjpeg-sys is built with `-fexceptions` (its `unwinding` feature) to make unwinding through its C frames sound.

use std::ffi::{c_int, CStr};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use mozjpeg_sys::{jpeg_common_struct, jpeg_error_mgr, jpeg_std_error};

/// The panic payload that carries libjpeg's message out of the C stack.
struct LibjpegFailure(Failure);

/// Why a libjpeg call stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// libjpeg's message code (`JERR_*`/`JWRN_*`), so a caller can tell "unsupported" from "corrupt"; `None` when
    /// our own callback stopped it (see `fail`).
    pub code: Option<c_int>,
    /// libjpeg's first message parameter (e.g. the marker of `JERR_UNKNOWN_MARKER`).
    pub param: c_int,
    pub message: String,
}

/// libjpeg warnings that do not mean missing or damaged pixels: tolerated. Every other warning (premature end of
/// data, corrupt entropy data, a scan hitting a marker early) is treated as an error, so a truncated upload is a
/// `DecodeError` instead of an image with a grey bottom half.
const TOLERATED_WARNINGS: &[c_int] = &[
    mozjpeg_sys::JWRN_ADOBE_XFORM as c_int,
    mozjpeg_sys::JWRN_EXTRANEOUS_DATA as c_int,
    mozjpeg_sys::JWRN_JFIF_MAJOR as c_int,
    mozjpeg_sys::JWRN_BOGUS_ICC as c_int,
];

fn message(cinfo: &mut jpeg_common_struct) -> String {
    let buffer = [0u8; 80];
    // SAFETY: `err` was set by `new_error_manager` and outlives every libjpeg call; format_message writes a
    // NUL-terminated string of at most 80 bytes into `buffer`.
    unsafe {
        let err = &*cinfo.err;
        if let Some(format) = err.format_message {
            format(cinfo, &buffer);
        }
    }
    CStr::from_bytes_until_nul(&buffer)
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "libjpeg error".to_owned())
}

/// The failure libjpeg is reporting through `cinfo.err` right now.
fn current_failure(cinfo: &mut jpeg_common_struct) -> Failure {
    // SAFETY: see `message`; msg_parm is a C union of ints and strings, read as ints (always initialised memory).
    let (code, param) = unsafe {
        let err = &mut *cinfo.err;
        (err.msg_code, (*err.msg_parm.i())[0])
    };
    Failure {
        code: Some(code),
        param,
        message: message(cinfo),
    }
}

unsafe extern "C-unwind" fn error_exit(cinfo: &mut jpeg_common_struct) {
    resume_unwind(Box::new(LibjpegFailure(current_failure(cinfo))));
}

unsafe extern "C-unwind" fn emit_message(cinfo: &mut jpeg_common_struct, level: c_int) {
    // level < 0 is a warning; levels ≥ 0 are trace messages, which we never print.
    if level < 0 {
        // SAFETY: see `message`.
        let code = unsafe { (*cinfo.err).msg_code };
        if !TOLERATED_WARNINGS.contains(&code) {
            resume_unwind(Box::new(LibjpegFailure(current_failure(cinfo))));
        }
    }
}

unsafe extern "C-unwind" fn output_message(_cinfo: &mut jpeg_common_struct) {
    // libjpeg would print to stderr; our messages travel in the error value instead.
}

/// A libjpeg error manager whose failures unwind. Box it: libjpeg keeps a pointer to it.
pub fn new_error_manager() -> Box<jpeg_error_mgr> {
    // SAFETY: jpeg_error_mgr is plain C data; jpeg_std_error fills every field before we override three.
    let mut err: Box<jpeg_error_mgr> = Box::new(unsafe { std::mem::zeroed() });
    unsafe { jpeg_std_error(&mut err) };
    err.error_exit = Some(error_exit);
    err.emit_message = Some(emit_message);
    err.output_message = Some(output_message);
    err
}

/// Stops the libjpeg call in progress from one of our own callbacks (a progress monitor), exactly as a libjpeg
/// error would: by unwinding to `catch`/`catch_failure`, which return it with `code: None`. Only call this from a
/// `C-unwind` callback that libjpeg invoked inside one of those.
pub fn fail(message: String) -> ! {
    resume_unwind(Box::new(LibjpegFailure(Failure {
        code: None,
        param: 0,
        message,
    })))
}

/// Runs libjpeg calls, turning a libjpeg failure into `Err(message)`. Any other panic keeps unwinding.
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_failure(f).map_err(|failure| failure.message)
}

/// Like `catch`, keeping libjpeg's message code so the caller can classify the failure.
pub fn catch_failure<T>(f: impl FnOnce() -> T) -> Result<T, Failure> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => Ok(value),
        Err(payload) => match payload.downcast::<LibjpegFailure>() {
            Ok(failure) => Err(failure.0),
            Err(other) => resume_unwind(other),
        },
    }
}
