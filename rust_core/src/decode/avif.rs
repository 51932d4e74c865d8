//! AVIF still images: the HEIF container (`heif`) read by our own parser, the AV1 data decoded by `rav1d` (the
//! pure-Rust port of dav1d; see Cargo.toml for why without assembly), then Y′CbCr to 8-bit RGB(A) here.
//!
//! - Size: `ispe` is checked against the limits and the memory budget before the AV1 decoder runs, the decoder's
//!   own frame-size limit is the `ispe` area, and the decoded picture must be exactly the `ispe` size.
//! - Pixels: matrix coefficients from `colr nclx`, else from the AV1 sequence header (unspecified = BT.601, as
//!   libavif does); the range from the AV1 sequence header (what the decoder produced); 4:2:0 and 4:2:2 chroma
//!   upsampled bilinearly (centre-sited); 10/12-bit rounded to 8; monochrome as grey.
//! - Alpha: the auxiliary item with the alpha URN that refers to the image (`auxl`), decoded the same way; a `prem`
//!   reference means the colour was premultiplied, undone here (the rest of the pipeline has straight alpha).
//! - Grids (`grid` items): each tile decoded in turn straight into the output canvas, cropped to the grid's size.
//! - Orientation: `irot` then `imir` (the order HEIF applies them), as the equivalent EXIF orientation; EXIF in the
//!   file is ignored for orientation, irot/imir being normative. `clap` (a crop) is not applied.
//! - Colour: an ICC profile (`colr prof`) is passed on; `nclx` primaries other than BT.709 become an ICC profile
//!   built by moxcms from the code points, so the colour stage converts them to sRGB like a Display P3 JPEG. PQ
//!   and HLG (HDR) are refused: mapping HDR to SDR is a tone-mapping choice, not a conversion.
//! - No shrink-on-load: AV1 has no reduced-resolution decode.

use std::cell::Cell;
use std::ffi::c_int;
use std::mem::MaybeUninit;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::Once;

use moxcms::{
    CicpColorPrimaries, CicpProfile, ColorProfile, MatrixCoefficients, TransferCharacteristics,
};
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

use super::heif::{self, corrupt, fourcc, unsupported, Heif, Item, Nclx, Property, Reader};
use super::{check_memory, Decoded};
use crate::error::{panic_message, Error, Result};
use crate::limits::Limits;
use crate::orient::Orientation;
use crate::pixels::{Layout, Pixels};
use crate::sniff::Format;

const ALPHA_URNS: [&[u8]; 2] = [
    b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha",
    b"urn:mpeg:hevc:2015:auxid:1",
];

/// A grid has at most 256 x 256 tiles by its syntax; real ones (8K+ images in 512-pixel tiles) have a few hundred.
/// Each tile is a separate decode, so the count bounds the work a tiny hostile file can ask for.
const MAX_TILES: usize = 1024;

/// What the properties of an image item say.
#[derive(Debug, Default)]
struct Props<'a> {
    size: Option<(u32, u32)>,
    nclx: Option<Nclx>,
    icc: Option<&'a [u8]>,
    rotation: u8,
    mirror: Option<u8>,
    aux_type: Option<&'a [u8]>,
}

fn props<'a>(heif: &Heif<'a>, item: &Item) -> Result<Props<'a>> {
    let mut p = Props::default();
    for (property, essential) in heif.properties(item) {
        match *property {
            Property::Size { width, height } => p.size = p.size.or(Some((width, height))),
            Property::Nclx(n) => p.nclx = p.nclx.or(Some(n)),
            Property::Icc(icc) => p.icc = p.icc.or(Some(icc)),
            Property::Rotation(r) => p.rotation = r,
            Property::Mirror(m) => p.mirror = Some(m),
            Property::AuxType(urn) => p.aux_type = Some(urn),
            Property::Av1Config | Property::Pixi | Property::CleanAperture => {}
            // MIAF: a reader must not show an item with an essential property it does not understand.
            Property::Other(kind) if essential && !matches!(&kind, b"a1op" | b"lsel") => {
                return Err(unsupported(format_args!(
                    "item {} has an essential property '{}' this decoder does not know",
                    item.id,
                    fourcc(kind)
                )))
            }
            Property::Other(_) => {}
        }
    }
    Ok(p)
}

fn size_of(item: &Item, p: &Props<'_>) -> Result<(u32, u32)> {
    p.size.ok_or_else(|| {
        corrupt(format_args!(
            "item {} has no 'ispe' (image size) property",
            item.id
        ))
    })
}

/// `irot` (anticlockwise quarter turns) then `imir` (0: top and bottom exchanged, 1: left and right) as the EXIF
/// orientation that displays the same: EXIF 8 is "rotate 90° anticlockwise to display", 4 "flip top to bottom".
pub fn orientation(rotation: u8, mirror: Option<u8>) -> Orientation {
    let value = match (rotation & 3, mirror) {
        (0, None) => 1,
        (0, Some(0)) => 4,
        (0, Some(_)) => 2,
        (1, None) => 8,
        (1, Some(0)) => 5,
        (1, Some(_)) => 7,
        (2, None) => 3,
        (2, Some(0)) => 2,
        (2, Some(_)) => 4,
        (_, None) => 6,
        (_, Some(0)) => 7,
        (_, Some(_)) => 5,
    };
    Orientation::from_exif_value(value)
}

pub fn decode(data: &[u8], limits: &Limits) -> Result<Decoded> {
    let heif = heif::parse(data)?;
    let Some(primary_id) = heif.primary else {
        if &heif.major_brand == b"avis" {
            return Err(unsupported(
                "image sequences without a primary image are not supported",
            ));
        }
        return Err(corrupt("no primary item (the 'pitm' box is missing)"));
    };
    let primary = heif
        .item(primary_id)
        .ok_or_else(|| corrupt(format_args!("the primary item {primary_id} does not exist")))?;
    match &primary.kind {
        b"av01" | b"grid" => {}
        other => {
            return Err(unsupported(format_args!(
                "the primary item is of type '{}', not an AV1 image",
                fourcc(*other)
            )))
        }
    }
    let colour_props = props(&heif, primary)?;
    let (width, height) = size_of(primary, &colour_props)?;
    limits.check_dimensions(width, height)?;

    let alpha = find_alpha(&heif, primary_id)?;
    let premultiplied =
        alpha.is_some_and(|a| heif.references_from(b"prem", primary_id).contains(&a.id));
    // At the peak: our RGB(A) output, the AV1 picture (its planes, by the sequence header the decoder will read:
    // 1.5 bytes per pixel for 8-bit 4:2:0, up to 6 for 16-bit 4:4:4), rav1d's per-frame state, and for alpha its
    // picture too (assumed as large as the colour's).
    let channels = if alpha.is_some() { 4 } else { 3 };
    let picture = picture_bytes_per_pixel(&heif, primary)?;
    let peak = channels as f64
        + RAV1D_STATE_BYTES_PER_PIXEL
        + picture * if alpha.is_some() { 2.0 } else { 1.0 };
    check_memory(limits, width, height, peak, "AVIF")?;

    let colour = colour_from(&colour_props)?;
    let mut out = vec![0u8; width as usize * height as usize * channels];
    let canvas = Canvas {
        width,
        height,
        channels,
    };
    render_item(
        &heif,
        primary,
        &canvas,
        &mut out,
        Target::Colour(colour.matrix),
    )?;
    if let Some(alpha) = alpha {
        let alpha_props = props(&heif, alpha)?;
        if size_of(alpha, &alpha_props)? != (width, height) {
            return Err(corrupt(format_args!(
                "the alpha item {} is not the image's size",
                alpha.id
            )));
        }
        render_item(&heif, alpha, &canvas, &mut out, Target::Alpha)?;
        if premultiplied {
            unpremultiply(&mut out);
        }
    }
    let layout = if alpha.is_some() {
        Layout::Rgba8
    } else {
        Layout::Rgb8
    };
    Ok(Decoded {
        pixels: Pixels::new(width, height, layout, out),
        format: Format::Avif,
        stored_width: width,
        stored_height: height,
        orientation: orientation(colour_props.rotation, colour_props.mirror),
        icc: colour.icc,
    })
}

/// rav1d's own buffers while it decodes a frame (block and mode info, loop-filter and CDEF state), per pixel.
/// Measured: a fresh process rendering a 12 MP and a 27 MP 8-bit 4:2:0 photo peaked at 4.5 bytes a pixel over the
/// interpreter's 16 MB, all told (3 of them our RGB, 1.5 the AV1 planes); the estimate below adds up to 5.15.
const RAV1D_STATE_BYTES_PER_PIXEL: f64 = 0.5;

/// Bytes per pixel of the decoded AV1 planes, from the sequence header at the start of the item's data (of the
/// first tile, for a grid), read before anything is decoded; the worst case when it cannot be read.
fn picture_bytes_per_pixel(heif: &Heif<'_>, item: &Item) -> Result<f64> {
    const WORST: f64 = 6.0;
    let first = if &item.kind == b"grid" {
        match heif
            .references_from(b"dimg", item.id)
            .first()
            .and_then(|&id| heif.item(id))
        {
            Some(tile) => tile,
            None => return Ok(WORST),
        }
    } else {
        item
    };
    let data = heif.item_data(first)?;
    let mut header = MaybeUninit::<Dav1dSequenceHeader>::uninit();
    let parsed = quietly(|| {
        // SAFETY: `header` is writable and `data` is a live slice of data.len() bytes; the header is read only
        // when dav1d_parse_sequence_header succeeded, which writes all of it. It is plain data (nothing to free).
        unsafe {
            let result = dav1d_parse_sequence_header(
                Some(NonNull::new_unchecked(header.as_mut_ptr())),
                NonNull::new(data.as_ptr().cast_mut()),
                data.len(),
            );
            (result.0 == 0).then(|| {
                let h = header.assume_init_ref();
                (h.hbd, h.layout)
            })
        }
    });
    let Ok(Some((hbd, layout))) = parsed else {
        return Ok(WORST);
    };
    let sample = if hbd > 0 { 2.0 } else { 1.0 };
    let planes = match layout {
        DAV1D_PIXEL_LAYOUT_I400 => 1.0,
        DAV1D_PIXEL_LAYOUT_I420 => 1.5,
        DAV1D_PIXEL_LAYOUT_I422 => 2.0,
        _ => 3.0,
    };
    // Rows are padded and aligned: a few percent on a photo.
    Ok(sample * planes * 1.1)
}

/// The alpha plane's item: auxiliary (`auxl`) to the image, with an alpha `auxC` type.
fn find_alpha<'h>(heif: &'h Heif<'_>, image: u32) -> Result<Option<&'h Item>> {
    for id in heif.references_to(b"auxl", image) {
        let Some(item) = heif.item(id) else { continue };
        let p = props(heif, item)?;
        if p.aux_type.is_some_and(|urn| ALPHA_URNS.contains(&urn))
            && matches!(&item.kind, b"av01" | b"grid")
        {
            return Ok(Some(item));
        }
    }
    Ok(None)
}

struct Colour {
    /// nclx matrix coefficients, when the container gives them (else the AV1 sequence header's are used).
    matrix: Option<u16>,
    icc: Option<Vec<u8>>,
}

/// The colour space the pixels are in, as an ICC profile for the colour stage (None: sRGB already).
fn colour_from(p: &Props<'_>) -> Result<Colour> {
    let matrix = p.nclx.map(|n| n.matrix);
    if let Some(icc) = p.icc {
        return Ok(Colour {
            matrix,
            icc: Some(icc.to_vec()),
        });
    }
    let Some(n) = p.nclx else {
        return Ok(Colour { matrix, icc: None });
    };
    if matches!(n.transfer, 16 | 18) {
        return Err(unsupported("HDR (PQ/HLG) is not supported"));
    }
    // BT.709 and unspecified primaries are sRGB's; so are code points without chromaticities (reserved, XYZ).
    let primaries = match n.primaries {
        4..=9 | 11 | 12 | 22 => CicpColorPrimaries::try_from(n.primaries as u8)
            .map_err(|_| Error::Internal(format!("AVIF: primaries {}", n.primaries)))?,
        _ => return Ok(Colour { matrix, icc: None }),
    };
    // BT.709/601/2020's camera curve and sRGB's differ a little in the shadows; displays (and libavif's users)
    // show them with the sRGB curve, so it is used for those. Other curves with a definition are kept.
    let transfer = match n.transfer {
        1 | 2 | 6 | 13 | 14 | 15 => TransferCharacteristics::Srgb,
        4 | 5 | 7 | 8 => TransferCharacteristics::try_from(n.transfer as u8)
            .map_err(|_| Error::Internal(format!("AVIF: transfer {}", n.transfer)))?,
        _ => TransferCharacteristics::Srgb,
    };
    let profile = ColorProfile::new_from_cicp(CicpProfile {
        color_primaries: primaries,
        transfer_characteristics: transfer,
        matrix_coefficients: MatrixCoefficients::Identity,
        full_range: true,
    });
    Ok(Colour {
        matrix,
        // An ICC profile the colour stage cannot build would leave the pixels as they are (taken as sRGB).
        icc: profile.encode().ok(),
    })
}

#[derive(Clone, Copy)]
enum Target {
    /// RGB from Y′CbCr, with the container's matrix coefficients when it gives them.
    Colour(Option<u16>),
    /// The alpha channel from the luma plane.
    Alpha,
}

/// The output buffer's geometry.
struct Canvas {
    width: u32,
    height: u32,
    channels: usize,
}

/// Decodes an image item (AV1, or a grid of AV1 tiles) into `out`.
fn render_item(
    heif: &Heif<'_>,
    item: &Item,
    canvas: &Canvas,
    out: &mut [u8],
    target: Target,
) -> Result<()> {
    if &item.kind == b"av01" {
        let (w, h) = size_of(item, &props(heif, item)?)?;
        let data = heif.item_data(item)?;
        let picture = decode_av1(&data, w, h, item.id)?;
        return picture.write(canvas, out, 0, 0, target);
    }
    let data = heif.item_data(item)?;
    let grid = Grid::parse(&data, item.id)?;
    let (w, h) = size_of(item, &props(heif, item)?)?;
    if (grid.width, grid.height) != (w, h) {
        return Err(corrupt(format_args!(
            "grid item {} is {}x{} but its 'ispe' says {w}x{h}",
            item.id, grid.width, grid.height
        )));
    }
    let tiles = heif.references_from(b"dimg", item.id);
    let expected = grid.rows * grid.columns;
    if tiles.len() != expected {
        return Err(corrupt(format_args!(
            "grid item {} has {} tiles, expected {} x {} = {expected}",
            item.id,
            tiles.len(),
            grid.rows,
            grid.columns
        )));
    }
    if expected > MAX_TILES {
        return Err(unsupported(format_args!(
            "grid item {} has {expected} tiles, more than {MAX_TILES}",
            item.id
        )));
    }
    let mut tile_size = None;
    for (i, &id) in tiles.iter().enumerate() {
        let tile = heif.item(id).ok_or_else(|| {
            corrupt(format_args!(
                "grid item {} refers to tile {id}, which does not exist",
                item.id
            ))
        })?;
        if &tile.kind != b"av01" {
            return Err(corrupt(format_args!(
                "grid tile {id} is of type '{}', not 'av01'",
                fourcc(tile.kind)
            )));
        }
        let (tw, th) = size_of(tile, &props(heif, tile)?)?;
        // The memory budget was checked on the grid's size; tiles may overhang it, by less than one tile.
        if u64::from(tw) * u64::from(th) > 2 * u64::from(w) * u64::from(h) {
            return Err(corrupt(format_args!(
                "grid item {}'s tiles ({tw}x{th}) are larger than its {w}x{h} size needs",
                item.id
            )));
        }
        let size = *tile_size.get_or_insert((tw, th));
        if (tw, th) != size {
            return Err(corrupt(format_args!(
                "grid tiles differ in size ({}x{} and {tw}x{th})",
                size.0, size.1
            )));
        }
        // ISO/IEC 23008-12 6.6.2.3: the tiles cover the output, and no column or row of tiles lies wholly outside.
        if i == 0 {
            let cover = |tile: u32, n: usize, out: u32| {
                let n = n as u64;
                tile > 0
                    && u64::from(tile) * n >= u64::from(out)
                    && u64::from(tile) * (n - 1) < u64::from(out)
            };
            if !cover(tw, grid.columns, w) || !cover(th, grid.rows, h) {
                return Err(corrupt(format_args!(
                    "grid item {}: {} x {} tiles of {tw}x{th} do not fit its {w}x{h} size",
                    item.id, grid.columns, grid.rows
                )));
            }
        }
        let data = heif.item_data(tile)?;
        let picture = decode_av1(&data, tw, th, id)?;
        let (row, column) = ((i / grid.columns) as u32, (i % grid.columns) as u32);
        picture.write(canvas, out, column * tw, row * th, target)?;
    }
    Ok(())
}

/// The `ImageGrid` structure in a grid item's data (ISO/IEC 23008-12 6.6.2.3.2).
struct Grid {
    rows: usize,
    columns: usize,
    width: u32,
    height: u32,
}

impl Grid {
    fn parse(data: &[u8], id: u32) -> Result<Grid> {
        let mut r = Reader::new(data, "ImageGrid");
        let version = r.u8()?;
        if version != 0 {
            return Err(unsupported(format_args!(
                "grid item {id} has version {version}"
            )));
        }
        let wide = r.u8()? & 1 != 0;
        let rows = usize::from(r.u8()?) + 1;
        let columns = usize::from(r.u8()?) + 1;
        let mut field = || {
            if wide {
                r.u32()
            } else {
                r.u16().map(u32::from)
            }
        };
        let width = field()?;
        let height = field()?;
        Ok(Grid {
            rows,
            columns,
            width,
            height,
        })
    }
}

// --- AV1 through rav1d -----------------------------------------------------------------------------------------

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
struct Picture(Dav1dPicture);

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
fn decode_av1(obus: &[u8], width: u32, height: u32, id: u32) -> Result<Picture> {
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

/// Kr and Kb of the Y′CbCr matrices (ITU-T H.273 Table 4); None for the identity matrix (GBR).
fn matrix_weights(mc: u16) -> Result<Option<(f64, f64)>> {
    Ok(match mc {
        0 => None,
        1 => Some((0.2126, 0.0722)),
        // 2 (unspecified) as libavif takes it; 5 and 6 are BT.601.
        2 | 5 | 6 => Some((0.299, 0.114)),
        4 => Some((0.30, 0.11)),
        7 => Some((0.212, 0.087)),
        9 => Some((0.2627, 0.0593)),
        other => {
            return Err(unsupported(format_args!(
                "matrix coefficients {other} (H.273) are not supported"
            )))
        }
    })
}

impl Picture {
    /// Converts the picture into `out` (the canvas) at (x0, y0), clipped to the canvas.
    fn write(
        &self,
        canvas: &Canvas,
        out: &mut [u8],
        x0: u32,
        y0: u32,
        target: Target,
    ) -> Result<()> {
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
        let wide = bpc > 8;
        let bytes = if wide { 2 } else { 1 };
        let (cw, ch) = (
            if ss_x { w.div_ceil(2) } else { w },
            if ss_y { h.div_ceil(2) } else { h },
        );
        // SAFETY (for each plane): dav1d gives plane pointers valid for `stride` x rows bytes, rows being the plane's
        // height, while the picture is alive; we check the stride covers a row before making the slice.
        let plane = |i: usize, pw: usize, ph: usize| -> Result<Plane<'_>> {
            let stride = pic.stride[usize::from(i > 0)];
            let ptr = pic.data[i]
                .ok_or_else(|| Error::Internal("AVIF: a picture plane is missing".into()))?;
            if stride < 0 || (stride as usize) < pw * bytes {
                return Err(Error::Internal(format!(
                    "AVIF: unexpected picture stride {stride}"
                )));
            }
            let stride = stride as usize;
            let len = stride * (ph - 1) + pw * bytes;
            // SAFETY: see above.
            let data = unsafe { std::slice::from_raw_parts(ptr.as_ptr() as *const u8, len) };
            Ok(Plane { data, stride, wide })
        };
        let y = plane(0, w, h)?;
        let region = Region {
            x0: x0 as usize,
            y0: y0 as usize,
            width: w.min((canvas.width as usize).saturating_sub(x0 as usize)),
            height: h.min((canvas.height as usize).saturating_sub(y0 as usize)),
            stride: canvas.width as usize * canvas.channels,
            channels: canvas.channels,
        };
        let max = (1i32 << bpc) - 1;
        match target {
            Target::Alpha => {
                write_alpha(&y, bpc, full_range, &region, out);
                Ok(())
            }
            Target::Colour(nclx_matrix) => {
                let mc = nclx_matrix.unwrap_or(seq_matrix);
                let weights = matrix_weights(mc)?;
                if weights.is_none() && (ss_x || ss_y) {
                    return Err(corrupt(
                        "the identity matrix (GBR) with subsampled chroma is not valid",
                    ));
                }
                let chroma = if mono {
                    None
                } else {
                    Some((plane(1, cw, ch)?, plane(2, cw, ch)?))
                };
                let convert = Converter::new(weights, bpc, full_range);
                write_colour(
                    &y,
                    ch,
                    chroma.as_ref(),
                    (ss_x, ss_y),
                    max,
                    &convert,
                    &region,
                    out,
                );
                Ok(())
            }
        }
    }
}

struct Plane<'a> {
    data: &'a [u8],
    stride: usize,
    wide: bool,
}

impl Plane<'_> {
    /// Row `r` as i32 samples into `out` (its length = samples wanted).
    fn row(&self, r: usize, out: &mut [i32], max: i32) {
        let start = r * self.stride;
        if self.wide {
            let row = &self.data[start..start + out.len() * 2];
            for (o, s) in out.iter_mut().zip(row.chunks_exact(2)) {
                *o = i32::from(u16::from_ne_bytes([s[0], s[1]])) & max;
            }
        } else {
            let row = &self.data[start..start + out.len()];
            for (o, &s) in out.iter_mut().zip(row) {
                *o = i32::from(s);
            }
        }
    }
}

/// Where a picture lands in the output.
struct Region {
    x0: usize,
    y0: usize,
    width: usize,
    height: usize,
    stride: usize,
    channels: usize,
}

/// Fixed-point Y′CbCr → 8-bit R′G′B′: value = (k·(sample − offset) + ½) >> 16, chroma sums carrying a factor 16
/// from the upsampling weights (so their coefficients are divided by 16).
struct Converter {
    y_offset: i32,
    c_offset: i32,
    y: i32,
    cr_r: i32,
    cb_g: i32,
    cr_g: i32,
    cb_b: i32,
    identity: bool,
}

impl Converter {
    fn new(weights: Option<(f64, f64)>, bpc: u32, full_range: bool) -> Self {
        let scale = f64::from(1u32 << (bpc - 8));
        let max = f64::from((1u32 << bpc) - 1);
        let (y_offset, y_span, c_span) = if full_range {
            (0.0, max, max)
        } else {
            (16.0 * scale, 219.0 * scale, 224.0 * scale)
        };
        let fixed = |v: f64| (v * 65536.0).round() as i32;
        let y = 255.0 / y_span;
        let c = 255.0 / c_span / 16.0;
        let (cr_r, cb_g, cr_g, cb_b) = match weights {
            Some((kr, kb)) => {
                let kg = 1.0 - kr - kb;
                (
                    2.0 * (1.0 - kr),
                    2.0 * kb * (1.0 - kb) / kg,
                    2.0 * kr * (1.0 - kr) / kg,
                    2.0 * (1.0 - kb),
                )
            }
            None => (0.0, 0.0, 0.0, 0.0),
        };
        Converter {
            y_offset: y_offset as i32,
            c_offset: (1 << (bpc - 1)) * 16,
            y: fixed(y),
            cr_r: fixed(cr_r * c),
            cb_g: fixed(cb_g * c),
            cr_g: fixed(cr_g * c),
            cb_b: fixed(cb_b * c),
            identity: weights.is_none(),
        }
    }
}

fn clamp8(v: i32) -> u8 {
    ((v + (1 << 15)) >> 16).clamp(0, 255) as u8
}

/// Horizontally upsampled chroma row, times 4: centre-sited 3:1 bilinear weights when subsampled.
fn upsample_row(src: &[i32], out: &mut [i32], ss_x: bool) {
    if !ss_x {
        for (o, &s) in out.iter_mut().zip(src) {
            *o = 4 * s;
        }
        return;
    }
    let last = src.len() - 1;
    for (x, o) in out.iter_mut().enumerate() {
        let k = x / 2;
        let neighbour = if x % 2 == 0 {
            k.saturating_sub(1)
        } else {
            (k + 1).min(last)
        };
        *o = 3 * src[k] + src[neighbour];
    }
}

/// One plane's chroma rows, upsampled horizontally (x4), kept for reuse: with 4:2:0 each source row serves four
/// output rows (twice as the near row, twice as the far one).
struct ChromaRows {
    rows: [(usize, Vec<i32>); 3],
    raw: Vec<i32>,
}

impl ChromaRows {
    fn new(width: usize, chroma_width: usize) -> Self {
        Self {
            rows: std::array::from_fn(|_| (usize::MAX, vec![0; width])),
            raw: vec![0; chroma_width],
        }
    }

    /// The upsampled row `r`, read if it is not one of the rows kept; `keep` is the other row in use.
    fn get(&mut self, plane: &Plane<'_>, r: usize, keep: usize, ss_x: bool, max: i32) -> usize {
        if let Some(i) = self.rows.iter().position(|(index, _)| *index == r) {
            return i;
        }
        let slot = self
            .rows
            .iter()
            .position(|(index, _)| *index != keep)
            .unwrap_or(0);
        plane.row(r, &mut self.raw, max);
        upsample_row(&self.raw, &mut self.rows[slot].1, ss_x);
        self.rows[slot].0 = r;
        slot
    }
}

#[allow(clippy::too_many_arguments)]
fn write_colour(
    y: &Plane<'_>,
    chroma_rows: usize,
    chroma: Option<&(Plane<'_>, Plane<'_>)>,
    (ss_x, ss_y): (bool, bool),
    max: i32,
    k: &Converter,
    region: &Region,
    out: &mut [u8],
) {
    let w = region.width;
    let cw = if ss_x { w.div_ceil(2) } else { w };
    let mut luma = vec![0i32; w];
    let mut cache = [ChromaRows::new(w, cw), ChromaRows::new(w, cw)];
    // Upsampled chroma (x16): the current row's two source rows, 3:1.
    let mut cb = vec![k.c_offset; w];
    let mut cr = vec![k.c_offset; w];
    for row in 0..region.height {
        y.row(row, &mut luma, max);
        if let Some((u, v)) = chroma {
            let (r0, r1) = if ss_y {
                let c = row / 2;
                let other = if row % 2 == 0 {
                    c.saturating_sub(1)
                } else {
                    (c + 1).min(chroma_rows - 1)
                };
                (c, other)
            } else {
                (row, row)
            };
            for ((plane, sum), rows) in [(u, &mut cb), (v, &mut cr)].into_iter().zip(&mut cache) {
                let near = rows.get(plane, r0, r1, ss_x, max);
                let far = rows.get(plane, r1, r0, ss_x, max);
                let (near, far) = (&rows.rows[near].1, &rows.rows[far].1);
                for ((s, &n), &f) in sum.iter_mut().zip(near).zip(far) {
                    *s = 3 * n + f;
                }
            }
        }
        let start = (region.y0 + row) * region.stride + region.x0 * region.channels;
        let dst = &mut out[start..start + w * region.channels];
        if region.channels == 4 {
            convert_row::<4>(dst, &luma, &cb, &cr, k);
        } else {
            convert_row::<3>(dst, &luma, &cb, &cr, k);
        }
    }
}

/// One row to RGB(A) (`C` channels; alpha, when there is one, is opaque here and written later).
fn convert_row<const C: usize>(
    dst: &mut [u8],
    luma: &[i32],
    cb: &[i32],
    cr: &[i32],
    k: &Converter,
) {
    let pixels = dst.chunks_exact_mut(C).zip(luma).zip(cb).zip(cr);
    if k.identity {
        // GBR: Y is G, Cb is B, Cr is R, all scaled like luma (the chroma sums carry the factor 16).
        for (((px, &l), &u), &v) in pixels {
            px[0] = clamp8(((v >> 4) - k.y_offset) * k.y);
            px[1] = clamp8((l - k.y_offset) * k.y);
            px[2] = clamp8(((u >> 4) - k.y_offset) * k.y);
            if C == 4 {
                px[3] = 255;
            }
        }
        return;
    }
    for (((px, &l), &u), &v) in pixels {
        let yv = (l - k.y_offset) * k.y;
        let (u, v) = (u - k.c_offset, v - k.c_offset);
        px[0] = clamp8(yv + k.cr_r * v);
        px[1] = clamp8(yv - k.cb_g * u - k.cr_g * v);
        px[2] = clamp8(yv + k.cb_b * u);
        if C == 4 {
            px[3] = 255;
        }
    }
}

fn write_alpha(y: &Plane<'_>, bpc: u32, full_range: bool, region: &Region, out: &mut [u8]) {
    let max = (1i32 << bpc) - 1;
    let scale = 1i32 << (bpc - 8);
    let (offset, span) = if full_range {
        (0, max)
    } else {
        (16 * scale, 219 * scale)
    };
    let k = ((255.0 / f64::from(span)) * 65536.0).round() as i32;
    let mut luma = vec![0i32; region.width];
    for row in 0..region.height {
        y.row(row, &mut luma, max);
        let start = (region.y0 + row) * region.stride + region.x0 * region.channels;
        let dst = &mut out[start..start + region.width * region.channels];
        for (px, &a) in dst.chunks_exact_mut(region.channels).zip(&luma) {
            px[3] = clamp8((a - offset) * k);
        }
    }
}

/// Premultiplied colour back to straight: c · 255 / a, rounded; fully transparent pixels become black.
fn unpremultiply(rgba: &mut [u8]) {
    for px in rgba.chunks_exact_mut(4) {
        let a = u32::from(px[3]);
        if a == 255 {
            continue;
        }
        for c in &mut px[..3] {
            *c = (u32::from(*c) * 255 + a / 2)
                .checked_div(a)
                .map_or(0, |v| v.min(255) as u8);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn irot_imir_as_exif() {
        // Pillow/libavif write these pairs for EXIF orientations 1–8 (checked with Pillow 13).
        let pairs = [
            (0, None, 1),
            (0, Some(1), 2),
            (2, None, 3),
            (0, Some(0), 4),
            (1, Some(0), 5),
            (3, None, 6),
            (3, Some(0), 7),
            (1, None, 8),
        ];
        for (rotation, mirror, exif) in pairs {
            assert_eq!(
                orientation(rotation, mirror).value(),
                exif,
                "{rotation} {mirror:?}"
            );
        }
        // The other spellings of the same transforms.
        assert_eq!(orientation(2, Some(0)).value(), 2);
        assert_eq!(orientation(2, Some(1)).value(), 4);
        assert_eq!(orientation(1, Some(1)).value(), 7);
        assert_eq!(orientation(3, Some(1)).value(), 5);
    }

    #[test]
    fn bt601_limited_range_greys_and_primaries() {
        let k = Converter::new(Some((0.299, 0.114)), 8, false);
        let rgb = |y: i32, cb: i32, cr: i32| {
            let (yv, u, v) = (
                (y - k.y_offset) * k.y,
                cb * 16 - k.c_offset,
                cr * 16 - k.c_offset,
            );
            [
                clamp8(yv + k.cr_r * v),
                clamp8(yv - k.cb_g * u - k.cr_g * v),
                clamp8(yv + k.cb_b * u),
            ]
        };
        assert_eq!(rgb(16, 128, 128), [0, 0, 0]);
        assert_eq!(rgb(235, 128, 128), [255, 255, 255]);
        // Pure red in BT.601 limited range: Y 81, Cb 90, Cr 240.
        let red = rgb(81, 90, 240);
        assert!(red[0] >= 253 && red[1] <= 2 && red[2] <= 2, "{red:?}");
        // 10-bit full range mid grey.
        let k10 = Converter::new(Some((0.2126, 0.0722)), 10, true);
        let grey = clamp8((512 - k10.y_offset) * k10.y);
        assert_eq!(grey, 128);
    }

    #[test]
    fn upsampling_weights() {
        let mut out = [0; 4];
        upsample_row(&[0, 100], &mut out, true);
        assert_eq!(out, [0, 100, 300, 400]);
        let mut out = [0; 3];
        upsample_row(&[1, 2, 3], &mut out, false);
        assert_eq!(out, [4, 8, 12]);
    }

    #[test]
    fn unpremultiplying() {
        let mut px = [64, 32, 0, 128, 10, 10, 10, 0, 1, 2, 3, 255];
        unpremultiply(&mut px);
        assert_eq!(px, [128, 64, 0, 128, 0, 0, 0, 0, 1, 2, 3, 255]);
    }

    #[test]
    fn grid_structure() {
        let g = Grid::parse(&[0, 0, 1, 2, 0x01, 0x00, 0x00, 0x80], 5).unwrap();
        assert_eq!((g.rows, g.columns, g.width, g.height), (2, 3, 256, 128));
        let g = Grid::parse(&[0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2], 5).unwrap();
        assert_eq!((g.width, g.height), (65536, 2));
        assert!(matches!(
            Grid::parse(&[0, 1, 0, 0, 0], 5),
            Err(Error::Decode(_))
        ));
    }
}
