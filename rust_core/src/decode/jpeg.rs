//! JPEG via libjpeg-turbo (mozjpeg-sys): DCT-domain shrink-on-load, strict about damaged data.

use std::ffi::{c_int, c_ulong};

use mozjpeg_sys::*;

use super::jpeg_markers::read_markers;
use super::{jpeg_scans, memory_budget, Decoded, Frame, RowSink, ShrinkPolicy};
use crate::colour::CmykToSrgb;
use crate::error::{Error, Result};
use crate::libjpeg;
use crate::limits::Limits;
use crate::pixels::{Layout, Pixels};
use crate::sniff::Format;

/// How many scans libjpeg may read. Every scan of a progressive JPEG makes libjpeg visit every block of the
/// components it covers, and the format allows ~900 valid scans per component that cost a few bytes each (runs of
/// empty blocks): a 60 KB file of 883 scans kept libjpeg busy for seconds (bench/results/history.md). So the scans
/// of one image may visit `SCAN_WORK` blocks (a fraction of a second), but never fewer than `MIN_SCANS` scans — more
/// than any encoder writes (libjpeg's default script has 10) — nor more than `MAX_SCANS`, where Skia and LibreOffice
/// stop.
const MAX_SCANS: c_int = 100;
const MIN_SCANS: c_int = 32;
const SCAN_WORK: u64 = 40_000_000;

/// Rows read from libjpeg and handed to the sink at a time.
const ROWS_PER_CHUNK: usize = 16;

/// libjpeg's progress manager, with the scan limit our monitor reads (libjpeg hands the monitor only `cinfo`, whose
/// `progress` points at the manager, and the manager is the first field: repr(C) makes that pointer this struct's).
#[repr(C)]
struct ScanLimit {
    manager: jpeg_progress_mgr,
    max_scans: c_int,
}

/// Owns a decompressor and the error and progress managers it points at; destroying it frees libjpeg's memory on
/// every path, including an unwinding error.
struct Decompress {
    cinfo: Box<jpeg_decompress_struct>,
    // Dropped after `cinfo` is destroyed (`Drop::drop` runs before the fields are dropped), so libjpeg never holds
    // a dangling pointer to either.
    _err: Box<jpeg_error_mgr>,
    scan_limit: Box<ScanLimit>,
}

impl Decompress {
    fn new() -> Self {
        let mut err = libjpeg::new_error_manager();
        let mut scan_limit = Box::new(ScanLimit {
            manager: jpeg_progress_mgr {
                progress_monitor: Some(limit_scans),
                pass_counter: 0,
                pass_limit: 0,
                completed_passes: 0,
                total_passes: 0,
            },
            max_scans: MAX_SCANS,
        });
        // SAFETY: zeroed is the documented initial state before jpeg_create_decompress.
        let mut cinfo: Box<jpeg_decompress_struct> = Box::new(unsafe { std::mem::zeroed() });
        cinfo.common.err = &mut *err;
        unsafe { jpeg_create_decompress(&mut *cinfo) };
        // After create, which zeroes the struct's other fields.
        cinfo.common.progress = &mut scan_limit.manager;
        Self {
            cinfo,
            _err: err,
            scan_limit,
        }
    }
}

impl Drop for Decompress {
    fn drop(&mut self) {
        // SAFETY: created in `new`; libjpeg allows destroy in any state after create.
        unsafe { jpeg_destroy_decompress(&mut self.cinfo) };
    }
}

/// libjpeg's progress hook, called before each chunk of input it absorbs (for a multi-scan file, every iMCU row of
/// every scan): stops the decode once the file has started more scans than its limit.
unsafe extern "C-unwind" fn limit_scans(cinfo: &mut jpeg_common_struct) {
    // SAFETY: only ever installed on a decompressor, whose struct begins with its jpeg_common_struct, and with
    // `progress` pointing at the manager inside a live `ScanLimit` (both repr(C), first fields).
    let (scans, max) = unsafe {
        let d = &*(cinfo as *mut jpeg_common_struct).cast::<jpeg_decompress_struct>();
        let limit = &*d.common.progress.cast::<ScanLimit>();
        (d.input_scan_number, limit.max_scans)
    };
    if scans > max {
        libjpeg::fail(format!(
            "more than {max} progressive scans, the limit for this image's size (encoders write a few dozen at most)"
        ));
    }
}

/// The scan limit for an image of `blocks` DCT blocks in all (see `SCAN_WORK`).
fn max_scans(blocks: u64) -> c_int {
    let by_work = SCAN_WORK / blocks.max(1);
    c_int::try_from(by_work)
        .unwrap_or(MAX_SCANS)
        .clamp(MIN_SCANS, MAX_SCANS)
}

/// Decodes the whole image at once (the stages bench, tests); renders stream the rows instead (`decode_rows`).
pub fn decode(data: &[u8], limits: &Limits, shrink: ShrinkPolicy<'_>) -> Result<Decoded> {
    let mut collect = Collect::default();
    decode_rows(data, limits, shrink, &mut collect)?;
    collect.decoded()
}

pub fn decode_rows(
    data: &[u8],
    limits: &Limits,
    shrink: ShrinkPolicy<'_>,
    sink: &mut dyn RowSink,
) -> Result<()> {
    let first = libjpeg::catch_failure(|| unsafe {
        decode_inner(data, limits, Scale::Choose(shrink), sink)
    })
    .map_err(classify)??;
    match first {
        Decode::Done => Ok(()),
        // A 1/8 decode of a progressive file: its DC scans give the same pixels as the whole file.
        Decode::DcOnly(dc) => libjpeg::catch_failure(|| unsafe {
            decode_inner(&dc, limits, Scale::DcOnlyEighth, sink)
        })
        .map_err(classify)?
        .and_then(|second| match second {
            Decode::Done => Ok(()),
            Decode::DcOnly(_) => Err(Error::Internal(
                "JPEG: DC-only stream asked for again".into(),
            )),
        }),
    }
}

/// Rows collected into one image.
#[derive(Default)]
struct Collect {
    frame: Option<Frame>,
    data: Vec<u8>,
}

impl RowSink for Collect {
    fn begin(&mut self, frame: Frame) -> Result<()> {
        self.data
            .reserve_exact(frame.width as usize * frame.height as usize * 3);
        self.frame = Some(frame);
        Ok(())
    }

    fn rows(&mut self, rows: &mut [u8]) -> Result<()> {
        self.data.extend_from_slice(rows);
        Ok(())
    }
}

impl Collect {
    fn decoded(self) -> Result<Decoded> {
        let frame = self
            .frame
            .ok_or_else(|| Error::Internal("JPEG: no frame decoded".into()))?;
        Ok(Decoded {
            pixels: Pixels::new(frame.width, frame.height, Layout::Rgb8, self.data),
            format: frame.format,
            stored_width: frame.stored_width,
            stored_height: frame.stored_height,
            orientation: frame.orientation,
            icc: frame.icc,
        })
    }
}

/// How `decode_inner` picks the output scale.
enum Scale<'a> {
    /// Ask the policy (the first pass over the uploaded bytes).
    Choose(ShrinkPolicy<'a>),
    /// 1/8, decoding a stream of DC scans made by `jpeg_scans::dc_only`.
    DcOnlyEighth,
}

enum Decode {
    Done,
    /// The policy chose 1/8 for a progressive file: decode these DC scans instead (same headers, same pixels).
    DcOnly(Vec<u8>),
}

/// Which error a libjpeg failure is: a JPEG variant libjpeg was built without is unsupported (not damaged), running
/// out of the memory budget or of scans is a limit, anything else is a damaged file.
fn classify(failure: libjpeg::Failure) -> Error {
    let message = failure.message;
    let Some(code) = failure.code else {
        // Our own callback stopped libjpeg: the scan limit.
        return Error::Limit(format!("JPEG: {message}"));
    };
    let is = |c: J_MESSAGE_CODE| code == c as c_int;
    if is(JERR_ARITH_NOTIMPL) {
        Error::Unsupported("JPEG: arithmetic-coded JPEG is not supported".into())
    } else if is(JERR_BAD_PRECISION) {
        Error::Unsupported(format!(
            "JPEG: {}-bit samples are not supported (only 8-bit)",
            failure.param
        ))
    } else if is(JERR_SOF_UNSUPPORTED) {
        let process = match failure.param {
            0xC3 => "lossless",
            0xCB => "arithmetic-coded lossless",
            0xC5..=0xC7 => "hierarchical",
            0xCD..=0xCF => "arithmetic-coded hierarchical",
            _ => "this kind of",
        };
        Error::Unsupported(format!("JPEG: {process} JPEG is not supported ({message})"))
    } else if is(JERR_UNKNOWN_MARKER) && failure.param == 0xF7 {
        // SOF55 starts a JPEG-LS frame: a different codec behind the same FF D8 magic.
        Error::Unsupported("JPEG: JPEG-LS is not supported".into())
    } else if is(JERR_IMAGE_TOO_BIG) {
        // A side over 65500: refused from the frame header, like our own pixel limit.
        Error::Limit(format!("JPEG: {message}"))
    } else if is(JERR_NO_BACKING_STORE) || is(JERR_OUT_OF_MEMORY) {
        // Backing store: a multi-scan image whose coefficients do not fit `max_memory_to_use`.
        Error::Limit(format!(
            "JPEG: decoding would exceed the memory limit ({message})"
        ))
    } else {
        Error::Decode(format!("JPEG: {message}"))
    }
}

unsafe fn decode_inner(
    data: &[u8],
    limits: &Limits,
    scale: Scale<'_>,
    sink: &mut dyn RowSink,
) -> Result<Decode> {
    let mut d = Decompress::new();
    let cinfo = &mut *d.cinfo;
    (*cinfo.common.mem).max_memory_to_use = c_long_from(memory_budget(limits));
    jpeg_mem_src(cinfo, data.as_ptr(), data.len() as c_ulong);
    jpeg_read_header(cinfo, 1);

    let (stored_width, stored_height) = (cinfo.image_width, cinfo.image_height);
    limits.check_dimensions(stored_width, stored_height)?;
    let markers = read_markers(data);
    // jpeg_read_header has sized every component in blocks; scans are only read from jpeg_start_decompress on.
    let components = std::slice::from_raw_parts(cinfo.comp_info, cinfo.num_components as usize);
    let blocks = components
        .iter()
        .map(|c| u64::from(c.width_in_blocks) * u64::from(c.height_in_blocks))
        .sum();
    d.scan_limit.max_scans = max_scans(blocks);

    let cmyk = matches!(
        cinfo.jpeg_color_space,
        J_COLOR_SPACE::JCS_CMYK | J_COLOR_SPACE::JCS_YCCK
    );
    cinfo.out_color_space = if cmyk {
        J_COLOR_SPACE::JCS_CMYK
    } else {
        J_COLOR_SPACE::JCS_RGB
    };
    cinfo.scale_num = 1;
    let progressive = markers.progressive;
    cinfo.scale_denom = match scale {
        Scale::Choose(shrink) => {
            let denominator = shrink(
                stored_width,
                stored_height,
                markers.orientation,
                progressive,
            )
            .clamp(1, 8);
            if progressive && denominator == 8 {
                let max_scans = usize::try_from(d.scan_limit.max_scans).unwrap_or(0);
                if let Some(dc) = jpeg_scans::dc_only(data, max_scans) {
                    return Ok(Decode::DcOnly(dc));
                }
            }
            denominator
        }
        Scale::DcOnlyEighth => {
            // No AC coefficients will come: libjpeg's smoothing would estimate some, and 1/8 would not use them.
            cinfo.do_block_smoothing = 0;
            8
        }
    };
    jpeg_start_decompress(cinfo);

    let (width, height) = (cinfo.output_width, cinfo.output_height);
    let stride = width as usize * cinfo.output_components as usize;
    let cmyk_to_srgb = cmyk.then(|| CmykToSrgb::new(markers.icc.as_deref()));
    sink.begin(Frame {
        format: Format::Jpeg,
        stored_width,
        stored_height,
        orientation: markers.orientation,
        width,
        height,
        icc: if cmyk { None } else { markers.icc },
    })?;
    let chunk = ROWS_PER_CHUNK.min(height as usize);
    let mut raw = vec![0u8; stride * chunk];
    let mut rgb = vec![0u8; if cmyk { width as usize * 3 * chunk } else { 0 }];
    while cinfo.output_scanline < height {
        let rows = chunk.min((height - cinfo.output_scanline) as usize);
        let mut filled = 0;
        while filled < rows {
            let mut pointers = [std::ptr::null_mut::<u8>(); ROWS_PER_CHUNK];
            for (i, pointer) in pointers.iter_mut().enumerate().take(rows - filled) {
                *pointer = raw.as_mut_ptr().add((filled + i) * stride);
            }
            let got = jpeg_read_scanlines(cinfo, pointers.as_mut_ptr(), (rows - filled) as u32);
            if got == 0 {
                return Err(Error::Decode(
                    "JPEG: the decoder stopped making rows".into(),
                ));
            }
            filled += got as usize;
        }
        let raw = &mut raw[..rows * stride];
        match &cmyk_to_srgb {
            Some(transform) => {
                // Photoshop (Adobe APP14) writes CMYK inverted; ICC and our fallback expect 0 = no ink.
                if markers.adobe {
                    raw.iter_mut().for_each(|v| *v = 255 - *v);
                }
                let rgb = &mut rgb[..rows * width as usize * 3];
                transform.convert(raw, rgb)?;
                sink.rows(rgb)?;
            }
            None => sink.rows(raw)?,
        }
    }
    // Reads to EOI, so data missing after the last needed scanline is still noticed.
    jpeg_finish_decompress(cinfo);
    Ok(Decode::Done)
}

fn c_long_from(v: usize) -> std::ffi::c_long {
    std::ffi::c_long::try_from(v).unwrap_or(std::ffi::c_long::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orient::Orientation;

    #[test]
    fn scan_limit_scales_with_the_image() {
        // 2000x2000 at 4:4:4: 187 500 blocks, small enough for the full 100.
        assert_eq!(max_scans(187_500), MAX_SCANS);
        // 7000x7000 grey: 765 625 blocks, 52 scans of them fit the work budget.
        assert_eq!(max_scans(765_625), 52);
        // Larger than any allowed image: never below the floor.
        assert_eq!(max_scans(10_000_000), MIN_SCANS);
        assert_eq!(max_scans(0), MAX_SCANS);
    }

    /// A progressive JPEG (our encoder writes the standard progressive script) of smooth but non-trivial pixels.
    fn progressive_jpeg(width: u32, height: u32) -> Vec<u8> {
        let data = (0..height)
            .flat_map(|y| {
                (0..width).flat_map(move |x| {
                    [
                        (x * 7 + y) as u8,
                        (x ^ y) as u8,
                        ((x * x + y * 3) / 17) as u8,
                    ]
                })
            })
            .collect();
        let pixels = Pixels::new(width, height, Layout::Rgb8, data);
        crate::encode::encode(&pixels, crate::encode::OutputFormat::Jpeg, 85).expect("encode")
    }

    /// The whole file, every scan entropy-decoded, at 1/8 (what the DC-only stream must equal).
    fn whole_at_an_eighth(data: &[u8]) -> Decoded {
        let mut collect = Collect::default();
        let decode = libjpeg::catch_failure(|| unsafe {
            decode_inner(data, &Limits::default(), Scale::DcOnlyEighth, &mut collect)
        })
        .expect("no libjpeg failure");
        assert!(matches!(decode, Ok(Decode::Done)), "expected pixels");
        collect.decoded().expect("a frame")
    }

    #[test]
    fn an_eighth_from_the_dc_scans_equals_an_eighth_of_the_whole_file() {
        let data = progressive_jpeg(1600, 1203);
        let eighth = |_: u32, _: u32, _: Orientation, _: bool| 8;
        let first = libjpeg::catch_failure(|| unsafe {
            decode_inner(
                &data,
                &Limits::default(),
                Scale::Choose(&eighth),
                &mut Collect::default(),
            )
        })
        .expect("no libjpeg failure");
        let Ok(Decode::DcOnly(dc)) = first else {
            panic!("a progressive file at 1/8 goes to its DC scans")
        };
        assert!(
            dc.len() * 2 < data.len(),
            "{} of {} bytes",
            dc.len(),
            data.len()
        );

        let via_dc = decode(&data, &Limits::default(), &eighth).expect("decodes");
        let whole = whole_at_an_eighth(&data);
        assert_eq!((via_dc.pixels.width, via_dc.pixels.height), (200, 151));
        assert_eq!(via_dc.pixels, whole.pixels);
        assert_eq!((via_dc.stored_width, via_dc.stored_height), (1600, 1203));
    }

    /// The corpus's progressive photos: 4:2:2 (Dragonfly: chroma read as DC only too) and 4:2:0 (seeding: chroma
    /// keeps its AC scans). Both must decode to the same pixels at 1/8 from their DC-only streams.
    #[test]
    fn corpus_photos_decode_the_same_from_their_dc_scans() {
        let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
        for (name, at_most) in [
            ("Dragonfly_by_Bolly.jpg", 0.25),
            ("seeding_by_Clemens_Engelhardt.jpg", 0.30),
        ] {
            let data = std::fs::read(corpus.join(name)).expect("the corpus is ../shared/corpus");
            let dc = jpeg_scans::dc_only(&data, 100).expect("a complete progressive JPEG");
            let share = dc.len() as f64 / data.len() as f64;
            assert!(
                share < at_most,
                "{name}: DC-only stream is {share:.2} of the file"
            );
            let eighth = |_: u32, _: u32, _: Orientation, _: bool| 8;
            let via_dc = decode(&data, &Limits::default(), &eighth).expect("decodes");
            let whole = whole_at_an_eighth(&data);
            assert_eq!(via_dc.pixels, whole.pixels, "{name}");
        }
    }

    #[test]
    fn other_scales_and_damaged_files_decode_the_whole_file() {
        let data = progressive_jpeg(800, 600);
        let quarter = |_: u32, _: u32, _: Orientation, _: bool| 4;
        let r = decode(&data, &Limits::default(), &quarter).expect("decodes");
        assert_eq!((r.pixels.width, r.pixels.height), (200, 150));
        // Cut before EOI: no DC-only shortcut, the whole file is read and its truncation reported.
        let eighth = |_: u32, _: u32, _: Orientation, _: bool| 8;
        let cut = &data[..data.len() - 40];
        assert!(matches!(
            decode(cut, &Limits::default(), &eighth),
            Err(Error::Decode(_))
        ));
    }
}
