//! AV1 through rav1d's dav1d API: every `unsafe` of the AVIF decoder is in this file, each with its SAFETY reason,
//! and so is the process-wide panic hook that keeps rav1d's panics on damaged data quiet. What leaves it is safe: a
//! decoded `Picture` (released on drop) whose format and planes are read through checked accessors, and the size of
//! the planes a sequence header promises.

use std::cell::Cell;
use std::ffi::c_int;
use std::mem::MaybeUninit;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::Once;

use rav1d::include::dav1d::data::Dav1dData;
use rav1d::include::dav1d::dav1d::{Dav1dContext, Dav1dSettings};
use rav1d::include::dav1d::headers::{
    Dav1dSequenceHeader, DAV1D_PIXEL_LAYOUT_I400, DAV1D_PIXEL_LAYOUT_I420, DAV1D_PIXEL_LAYOUT_I422,
    DAV1D_PIXEL_LAYOUT_I444,
};
use rav1d::include::dav1d::picture::Dav1dPicture;
use rav1d::src::lib::{
    dav1d_close, dav1d_data_create, dav1d_data_unref, dav1d_default_settings, dav1d_get_picture,
    dav1d_open, dav1d_parse_sequence_header, dav1d_picture_unref, dav1d_send_data,
};

use super::ycbcr::Plane;
use crate::decode::heif::{corrupt, unsupported};
use crate::error::{panic_message, Error, Result};

/// Bytes per pixel of the decoded AV1 planes, from the sequence header at the start of `obus`, read before anything
/// is decoded; None when it cannot be read.
pub(super) fn picture_bytes_per_pixel(obus: &[u8]) -> Option<f64> {
    let mut header = MaybeUninit::<Dav1dSequenceHeader>::uninit();
    let parsed = quietly(|| {
        // SAFETY: `header` is writable and `obus` is a live slice of obus.len() bytes; the header is read only
        // when dav1d_parse_sequence_header succeeded, which writes all of it. It is plain data (nothing to free).
        unsafe {
            let result = dav1d_parse_sequence_header(
                Some(NonNull::new_unchecked(header.as_mut_ptr())),
                NonNull::new(obus.as_ptr().cast_mut()),
                obus.len(),
            );
            (result.0 == 0).then(|| {
                let h = header.assume_init_ref();
                (h.hbd, h.layout)
            })
        }
    });
    let Ok(Some((hbd, layout))) = parsed else {
        return None;
    };
    let sample = if hbd > 0 { 2.0 } else { 1.0 };
    let planes = match layout {
        DAV1D_PIXEL_LAYOUT_I400 => 1.0,
        DAV1D_PIXEL_LAYOUT_I420 => 1.5,
        DAV1D_PIXEL_LAYOUT_I422 => 2.0,
        _ => 3.0,
    };
    // Rows are padded and aligned: a few percent on a photo.
    Some(sample * planes * 1.1)
}

/// A dav1d context, closed on drop.
struct Context(Option<Dav1dContext>);

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: the context came from dav1d_open (or is None, which dav1d_close accepts) and is closed only here;
        // dav1d_close sets it to None.
        unsafe { dav1d_close(Some(NonNull::from(&mut self.0))) }
    }
}

/// Data handed to dav1d, released on drop (whatever dav1d has not consumed).
struct Data(Dav1dData);

impl Drop for Data {
    fn drop(&mut self) {
        // SAFETY: the data came from dav1d_data_create; unref of consumed (emptied) data is a no-op.
        unsafe { dav1d_data_unref(Some(NonNull::from(&mut self.0))) }
    }
}

/// A decoded picture, released on drop.
pub(super) struct Picture(Dav1dPicture);

impl Drop for Picture {
    fn drop(&mut self) {
        // SAFETY: the picture was written by dav1d_get_picture (or is the default, empty one), released only here.
        unsafe { dav1d_picture_unref(Some(NonNull::from(&mut self.0))) }
    }
}

/// dav1d's errors are negative errno values.
fn av1_error(code: c_int, id: u32) -> Error {
    let errno = -code;
    if errno == libc::ENOMEM {
        Error::Limit(format!(
            "AVIF: item {id}: the AV1 decoder ran out of memory"
        ))
    } else if errno == libc::ERANGE {
        corrupt(format_args!(
            "item {id}: the AV1 frame is larger than the item's 'ispe' size"
        ))
    } else if errno == libc::ENOPROTOOPT {
        unsupported(format_args!(
            "item {id}: the AV1 data uses a feature this decoder does not support"
        ))
    } else {
        corrupt(format_args!(
            "item {id}: the AV1 data could not be decoded (dav1d error {code})"
        ))
    }
}

/// Decodes the first picture of an item's AV1 data (its OBUs), which must be `width` x `height`.
///
/// rav1d 1.1 can panic on damaged data (see vendor/rav1d/KIRAY-PATCH.md): the panic is caught here and reported
/// as the file's fault.
pub(super) fn decode_av1(obus: &[u8], width: u32, height: u32, id: u32) -> Result<Picture> {
    if obus.is_empty() {
        return Err(corrupt(format_args!("item {id} has no data")));
    }
    let mut context = Context(None);
    let mut data = Data(Dav1dData::default());
    let mut picture = Picture(Dav1dPicture::default());
    let outcome = quietly(|| {
        run_av1(
            &mut context,
            &mut data,
            &mut picture,
            obus,
            width,
            height,
            id,
        )
    });
    match outcome {
        Ok(Ok(())) => Ok(picture),
        Ok(Err(e)) => Err(e),
        Err(payload) => {
            // dav1d_send_data and dav1d_get_picture hold a bitwise copy of our Dav1dData/Dav1dPicture while they
            // run, and the unwinding dropped that copy (and the reference it owns): ours is dangling now and must
            // not be released again (that was a double free). The context is all Rust-owned state and is closed,
            // unless closing it panics too, in which case it is leaked.
            std::mem::forget(data);
            std::mem::forget(picture);
            let _ = quietly(move || drop(context));
            let what = panic_message(payload.as_ref());
            Err(corrupt(format_args!(
                "item {id}: the AV1 decoder failed on this data ({what})"
            )))
        }
    }
}

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f`, catching a panic. rav1d's panics on damaged data are expected here and come back as a DecodeError that
/// carries their message; Rust's default hook would also print each to stderr, a non-JSON line in the function's log
/// beside our own ERROR line. The hook, installed once, stays silent while this thread is inside `quietly` and hands
/// every other panic to the hook it replaced.
fn quietly<T>(f: impl FnOnce() -> T) -> std::thread::Result<T> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info);
            }
        }));
    });
    let was = QUIET.with(|q| q.replace(true));
    let outcome = catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was));
    outcome
}

fn run_av1(
    context: &mut Context,
    data: &mut Data,
    picture: &mut Picture,
    obus: &[u8],
    width: u32,
    height: u32,
    id: u32,
) -> Result<()> {
    let mut settings = MaybeUninit::<Dav1dSettings>::uninit();
    // SAFETY: dav1d_default_settings writes every field of the settings it is given.
    let mut settings = unsafe {
        dav1d_default_settings(NonNull::new_unchecked(settings.as_mut_ptr()));
        settings.assume_init()
    };
    // One thread (Lambda gives a render one core's worth; rav1d's threads would only add memory), no frame
    // queue, the first operating point and its highest-quality layer only, and nothing larger than ispe promises.
    settings.n_threads = 1;
    settings.max_frame_delay = 1;
    settings.all_layers = 0;
    settings.operating_point = 0;
    settings.frame_size_limit = width.saturating_mul(height);
    // SAFETY: the logger is a pair of nullable pointers (cookie, callback); all zeroes is "no logger", which
    // keeps rav1d from printing to stderr (our errors carry the message).
    unsafe { std::ptr::write_bytes(std::ptr::addr_of_mut!(settings.logger), 0, 1) };

    // SAFETY: both pointers are to live values; dav1d_open reads the settings and writes the context.
    let result = unsafe {
        dav1d_open(
            Some(NonNull::from(&mut context.0)),
            Some(NonNull::from(&mut settings)),
        )
    };
    if result.0 != 0 || context.0.is_none() {
        return Err(Error::Internal(format!(
            "AVIF: the AV1 decoder could not start (dav1d error {})",
            result.0
        )));
    }
    // SAFETY: `data.0` is a live, empty Dav1dData for dav1d_data_create to fill; on success it returns a buffer of
    // exactly obus.len() bytes owned by that data, which we fill before handing it over.
    unsafe {
        let buffer = dav1d_data_create(Some(NonNull::from(&mut data.0)), obus.len());
        if buffer.is_null() {
            return Err(Error::Limit(format!(
                "AVIF: item {id}: no memory for {} bytes of AV1 data",
                obus.len()
            )));
        }
        std::ptr::copy_nonoverlapping(obus.as_ptr(), buffer, obus.len());
    }
    let eagain = -libc::EAGAIN;
    loop {
        if data.0.sz > 0 {
            // SAFETY: the context is open; `data.0` is valid dav1d data, read and updated (consumed) in place.
            let sent = unsafe { dav1d_send_data(context.0, Some(NonNull::from(&mut data.0))) };
            if sent.0 != 0 && sent.0 != eagain {
                return Err(av1_error(sent.0, id));
            }
        }
        // SAFETY: the context is open; `picture.0` is an empty picture for dav1d to write (it was never filled:
        // we return as soon as one is).
        let got = unsafe { dav1d_get_picture(context.0, Some(NonNull::from(&mut picture.0))) };
        if got.0 == 0 {
            break;
        }
        if got.0 != eagain {
            return Err(av1_error(got.0, id));
        }
        if data.0.sz == 0 {
            return Err(corrupt(format_args!(
                "item {id}: the AV1 data holds no picture"
            )));
        }
    }
    let p = &picture.0.p;
    if (p.w, p.h) != (width as c_int, height as c_int) {
        return Err(corrupt(format_args!(
            "item {id}: the AV1 picture is {}x{} but 'ispe' says {width}x{height}",
            p.w, p.h
        )));
    }
    Ok(())
}

/// What a decoded picture is, checked: its size, bit depth and chroma layout, and the matrix coefficients (H.273)
/// and range of its sequence header.
pub(super) struct Format {
    pub(super) width: usize,
    pub(super) height: usize,
    pub(super) bpc: u32,
    pub(super) ss_x: bool,
    pub(super) ss_y: bool,
    pub(super) mono: bool,
    pub(super) matrix: u16,
    pub(super) full_range: bool,
}

impl Picture {
    pub(super) fn format(&self) -> Result<Format> {
        let pic = &self.0;
        let (w, h) = (pic.p.w as usize, pic.p.h as usize);
        let bpc = pic.p.bpc as u32;
        if !matches!(bpc, 8 | 10 | 12) {
            return Err(unsupported(format_args!("{bpc}-bit AV1")));
        }
        let (ss_x, ss_y, mono) = match pic.p.layout {
            DAV1D_PIXEL_LAYOUT_I400 => (false, false, true),
            DAV1D_PIXEL_LAYOUT_I420 => (true, true, false),
            DAV1D_PIXEL_LAYOUT_I422 => (true, false, false),
            DAV1D_PIXEL_LAYOUT_I444 => (false, false, false),
            other => return Err(unsupported(format_args!("AV1 pixel layout {other}"))),
        };
        let seq = pic
            .seq_hdr
            .ok_or_else(|| Error::Internal("AVIF: a picture without a sequence header".into()))?;
        // SAFETY: a picture from dav1d_get_picture points at its sequence header, kept alive by the picture.
        let (seq_matrix, full_range) = unsafe {
            let seq = seq.as_ref();
            (seq.mtrx as u16, seq.color_range != 0)
        };
        Ok(Format {
            width: w,
            height: h,
            bpc,
            ss_x,
            ss_y,
            mono,
            matrix: seq_matrix,
            full_range,
        })
    }

    /// Plane `i` (0 Y, 1 Cb, 2 Cr) of `width` x `height` samples, borrowed from the picture.
    pub(super) fn plane(&self, i: usize, width: usize, height: usize) -> Result<Plane<'_>> {
        let pic = &self.0;
        let wide = pic.p.bpc > 8;
        let bytes = if wide { 2 } else { 1 };
        let stride = pic.stride[usize::from(i > 0)];
        let ptr = pic.data[i]
            .ok_or_else(|| Error::Internal("AVIF: a picture plane is missing".into()))?;
        if stride < 0 || (stride as usize) < width * bytes {
            return Err(Error::Internal(format!(
                "AVIF: unexpected picture stride {stride}"
            )));
        }
        let stride = stride as usize;
        let len = stride * (height - 1) + width * bytes;
        // SAFETY: dav1d gives plane pointers valid for `stride` x rows bytes, rows being the plane's height, while the
        // picture is alive (the slice borrows it); the stride was checked to cover a row.
        let data = unsafe { std::slice::from_raw_parts(ptr.as_ptr() as *const u8, len) };
        Ok(Plane { data, stride, wide })
    }
}
