//! Resizing an image that arrives a few rows at a time, top to bottom (a JPEG as libjpeg decodes it), without ever
//! holding it whole: the full-size decoded image comes off the render's peak memory.
//!
//! fast_image_resize shrinks 8-bit images in two passes, vertical first, then horizontal; here they are split so
//! each runs as soon as it can. A band of output rows gets its vertical pass once the source rows under its filter
//! have arrived, and source rows no later band reads are dropped. The horizontal pass runs over many of those rows at
//! once: its weights (two `sin` per weight, the same for every row) are recomputed by every resize call, and at one
//! call per band they took longer than the pass itself.
//!
//! The arithmetic is the resizer's own (the same Lanczos3 weights and rounding); only the fixed-point precision of a
//! band's vertical weights may differ by a bit from the whole image's, so a pixel can differ from `resize::resize`'s
//! by one level (a test holds the two to that; the corpus's renditions came out byte-identical). Opaque RGB only:
//! JPEG has no alpha.

use fast_image_resize::images::{TypedImage, TypedImageRef};
use fast_image_resize::pixels::U8x3;
use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};

use crate::error::{Error, Result};
use crate::geometry::Plan;
use crate::pixels::{Layout, Pixels};

/// Lanczos3's support: 3 output pixels either side of a centre, i.e. 3 × scale source pixels when shrinking.
const LANCZOS3_SUPPORT: f64 = 3.0;

/// About this many source rows per vertical band: the rows neighbouring bands share (the filter's reach) stay a
/// small share, and the window of source rows a few hundred KB to a few MB.
const SOURCE_ROWS_PER_BAND: f64 = 96.0;

/// The vertical pass's output waits for the horizontal pass until it holds this many bytes (or the image ends):
/// three to five horizontal calls for the corpus's mediums instead of one per band. A larger buffer was no faster and
/// only raised the peak (bench/results/history.md).
const VERTICAL_ROWS_BYTES: usize = 2 << 20;

const CHANNELS: usize = 3;

/// One direction of the resize: output pixel `i` covers source `[start + i·scale, start + (i+1)·scale)`.
#[derive(Clone, Copy)]
struct Axis {
    start: f64,
    length: f64,
    out: u32,
    /// Source pixels per output pixel.
    scale: f64,
    /// How far the filter reaches, in source pixels (never below 1 × the support: the kernel only widens when
    /// shrinking, as the resizer's adaptive kernel does).
    radius: f64,
}

impl Axis {
    fn new(start: f64, length: f64, out: u32) -> Self {
        let scale = length / f64::from(out);
        Self {
            start,
            length,
            out,
            scale,
            radius: LANCZOS3_SUPPORT * scale.max(1.0),
        }
    }

    /// Where output pixel `i`'s leading edge lies in the source (the end of the last exactly at the crop's).
    fn at(&self, i: u32) -> f64 {
        if i == self.out {
            self.start + self.length
        } else {
            self.start + f64::from(i) * self.scale
        }
    }

    /// The source pixels the filter reads for output pixels `i0..i1`, one to spare at each end, within `0..size`. A
    /// wider view changes no weight (the resizer bounds each pixel's window by the filter and clamps only at the
    /// image's edges, which a view reaching an edge shares); a narrower one would clamp inside the image.
    fn reads(&self, i0: u32, i1: u32, size: u32) -> (u32, u32) {
        let first = (self.at(i0) - self.radius).floor() - 1.0;
        let end = (self.at(i1) + self.radius).ceil() + 1.0;
        (
            first.max(0.0) as u32,
            end.min(f64::from(size)).max(0.0) as u32,
        )
    }
}

pub struct RowResizer {
    width: u32,
    height: u32,
    /// The source's columns the horizontal pass reads (a cover crop skips the rest from the start).
    columns: (u32, u32),
    rows: Axis,
    cols: Axis,
    band_rows: u32,
    /// Vertical-pass rows held before a horizontal pass.
    flush_rows: u32,
    resizer: Resizer,
    /// Source rows `window_top ..` (the `columns` of each), the ones a band still to come may read.
    window: Vec<u8>,
    window_top: u32,
    /// Source rows pushed so far.
    received: u32,
    /// The end of the source rows any band reads; rows from here on are not kept.
    rows_end: u32,
    /// Vertical-pass output rows `vertical_top .. vertical_done`, still to be passed horizontally.
    vertical: Vec<u8>,
    vertical_top: u32,
    vertical_done: u32,
    out: Vec<u8>,
}

impl RowResizer {
    /// A resizer of a `width`×`height` RGB image, whose rows will be pushed in order, along `plan`.
    pub fn new(width: u32, height: u32, plan: Plan) -> Self {
        let rows = Axis::new(plan.crop_top, plan.crop_height, plan.out_height);
        let cols = Axis::new(plan.crop_left, plan.crop_width, plan.out_width);
        let columns = cols.reads(0, plan.out_width, width);
        let band_rows = (SOURCE_ROWS_PER_BAND / rows.scale).ceil().max(1.0) as u32;
        let row_bytes = (columns.1 - columns.0).max(1) as usize * CHANNELS;
        let flush_rows = u32::try_from(VERTICAL_ROWS_BYTES / row_bytes)
            .unwrap_or(u32::MAX)
            .max(band_rows);
        Self {
            width,
            height,
            columns,
            rows,
            cols,
            band_rows,
            flush_rows,
            resizer: Resizer::new(),
            window: Vec::new(),
            window_top: rows.reads(0, band_rows.min(plan.out_height), height).0,
            received: 0,
            rows_end: rows.reads(0, plan.out_height, height).1,
            vertical: Vec::new(),
            vertical_top: 0,
            vertical_done: 0,
            out: vec![0; plan.out_width as usize * plan.out_height as usize * CHANNELS],
        }
    }

    /// Bytes of one kept source row (its `columns`).
    fn stride(&self) -> usize {
        (self.columns.1 - self.columns.0) as usize * CHANNELS
    }

    fn band_end(&self, start: u32) -> u32 {
        start.saturating_add(self.band_rows).min(self.rows.out)
    }

    /// Takes the next whole rows of the source, `width` pixels each.
    pub fn push(&mut self, rows: &[u8]) -> Result<()> {
        let source_stride = self.width as usize * CHANNELS;
        if source_stride == 0 || rows.len() % source_stride != 0 {
            return Err(Error::Internal(format!(
                "row resize: {} bytes are not whole rows of {source_stride}",
                rows.len()
            )));
        }
        let count = (rows.len() / source_stride) as u32;
        let first = self.received;
        self.received = first.saturating_add(count);
        if self.received > self.height {
            return Err(Error::Internal(
                "row resize: more rows than the image".into(),
            ));
        }
        // Keep the rows from the window's top to the last row any band reads, and of each only its columns.
        let (c0, c1) = (
            self.columns.0 as usize * CHANNELS,
            self.columns.1 as usize * CHANNELS,
        );
        for row in self.window_top.max(first)..self.rows_end.min(self.received) {
            let at = (row - first) as usize * source_stride;
            self.window.extend_from_slice(&rows[at + c0..at + c1]);
        }
        while self.vertical_done < self.rows.out {
            let end = self.band_end(self.vertical_done);
            if self.rows.reads(self.vertical_done, end, self.height).1 > self.received {
                break;
            }
            self.vertical_pass(self.vertical_done, end)?;
            self.vertical_done = end;
            if end < self.rows.out {
                // The next band starts reading here: the rows above it are done with.
                self.drop_rows_above(self.rows.reads(end, self.band_end(end), self.height).0);
            }
            if self.vertical_done - self.vertical_top >= self.flush_rows
                || self.vertical_done == self.rows.out
            {
                self.horizontal_pass()?;
            }
        }
        Ok(())
    }

    fn drop_rows_above(&mut self, row: u32) {
        if row > self.window_top {
            let rows = (row - self.window_top).min(self.received - self.window_top);
            self.window.drain(..rows as usize * self.stride());
            self.window_top += rows;
        }
    }

    /// Output rows `y0..y1`, vertically: from the window's source rows to as many rows of the kept columns.
    fn vertical_pass(&mut self, y0: u32, y1: u32) -> Result<()> {
        let stride = self.stride();
        let columns = self.columns.1 - self.columns.0;
        let (r0, r1) = self.rows.reads(y0, y1, self.height);
        self.drop_rows_above(r0);
        let rows = r1 - r0;
        let source = TypedImageRef::<U8x3>::from_buffer(
            columns,
            rows,
            &self.window[..rows as usize * stride],
        )
        .map_err(|e| Error::Internal(format!("row resize source: {e}")))?;
        let top = self.rows.at(y0) - f64::from(r0);
        // The float sum may land a hair past the band's last row; the crop must stay inside it.
        let height = (self.rows.at(y1) - self.rows.at(y0)).min(f64::from(rows) - top);
        let at = self.vertical.len();
        self.vertical.resize(at + (y1 - y0) as usize * stride, 0);
        let mut destination =
            TypedImage::<U8x3>::from_buffer(columns, y1 - y0, &mut self.vertical[at..])
                .map_err(|e| Error::Internal(format!("row resize destination: {e}")))?;
        // Full width, integral left edge: the resizer makes no horizontal pass.
        let options = lanczos3().crop(0.0, top, f64::from(columns), height);
        self.resizer
            .resize_typed(&source, &mut destination, &options)
            .map_err(|e| Error::Internal(format!("row resize (vertical): {e}")))
    }

    /// The vertical pass's rows so far, horizontally, into their output rows.
    fn horizontal_pass(&mut self) -> Result<()> {
        let (y0, y1) = (self.vertical_top, self.vertical_done);
        let columns = self.columns.1 - self.columns.0;
        let source = TypedImageRef::<U8x3>::from_buffer(columns, y1 - y0, &self.vertical)
            .map_err(|e| Error::Internal(format!("row resize source: {e}")))?;
        let out_stride = self.cols.out as usize * CHANNELS;
        let mut destination = TypedImage::<U8x3>::from_buffer(
            self.cols.out,
            y1 - y0,
            &mut self.out[y0 as usize * out_stride..y1 as usize * out_stride],
        )
        .map_err(|e| Error::Internal(format!("row resize destination: {e}")))?;
        let left = self.cols.start - f64::from(self.columns.0);
        // Within the kept columns, whatever the float sum says.
        let width = self.cols.length.min(f64::from(columns) - left);
        // As many rows as the destination, top 0: the resizer makes no vertical pass.
        let options = lanczos3().crop(left, 0.0, width, f64::from(y1 - y0));
        self.resizer
            .resize_typed(&source, &mut destination, &options)
            .map_err(|e| Error::Internal(format!("row resize (horizontal): {e}")))?;
        self.vertical.clear();
        self.vertical_top = y1;
        Ok(())
    }

    /// The resized image, once every source row has been pushed.
    pub fn finish(self) -> Result<Pixels> {
        if self.received != self.height || self.vertical_top != self.rows.out {
            return Err(Error::Internal(format!(
                "row resize: {} of {} rows pushed, {} of {} made",
                self.received, self.height, self.vertical_top, self.rows.out
            )));
        }
        Ok(Pixels::new(
            self.cols.out,
            self.rows.out,
            Layout::Rgb8,
            self.out,
        ))
    }
}

fn lanczos3() -> ResizeOptions {
    ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::{plan, Fit, Target};
    use crate::orient::Orientation;
    use crate::resize::resize;

    /// Detailed, deterministic pixels: edges and noise, where a changed weight would show.
    fn photo(width: u32, height: u32) -> Pixels {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let data = (0..height)
            .flat_map(|y| (0..width).map(move |x| (x, y)))
            .flat_map(|(x, y)| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let noise = (state >> 58) as u32;
                [
                    ((x * 255 / width) ^ (y & 16)) as u8,
                    ((x / 7 + y / 5) % 2 * 200 + noise) as u8,
                    ((x * y) % 251) as u8,
                ]
            })
            .collect();
        Pixels::new(width, height, Layout::Rgb8, data)
    }

    fn streamed(src: &Pixels, p: Plan, rows_per_push: usize) -> Pixels {
        let mut r = RowResizer::new(src.width, src.height, p);
        for rows in src.data.chunks(src.width as usize * 3 * rows_per_push) {
            r.push(rows).unwrap();
        }
        r.finish().unwrap()
    }

    #[test]
    fn rows_in_bands_give_the_whole_images_pixels() {
        let src = photo(731, 1013);
        let targets = [
            (400, 300, Fit::Cover),
            (128, 128, Fit::Inside),
            (700, 1000, Fit::Inside), // barely shrinks: the kernel is at its narrowest
            (731, 50, Fit::Cover),    // a horizontal strip, no horizontal pass
            (60, 200, Fit::Cover),    // a tall crop: only the middle columns are kept
            (5, 5, Fit::Cover),       // a kernel taller than a band of rows
        ];
        for (width, height, fit) in targets {
            let p = plan(
                src.width,
                src.height,
                Orientation::NORMAL,
                Target { width, height, fit },
            );
            let whole = resize(src.clone(), &p).unwrap();
            for rows_per_push in [1, 7, 16, 1013] {
                let banded = streamed(&src, p, rows_per_push);
                assert_eq!((banded.width, banded.height), (whole.width, whole.height));
                let off = whole
                    .data
                    .iter()
                    .zip(&banded.data)
                    .map(|(a, b)| a.abs_diff(*b))
                    .max()
                    .unwrap();
                let differing = whole
                    .data
                    .iter()
                    .zip(&banded.data)
                    .filter(|(a, b)| a != b)
                    .count();
                assert!(
                    off <= 1 && differing * 100 <= whole.data.len(),
                    "{width}x{height} {fit:?} by {rows_per_push}: max {off}, {differing} of {} differ",
                    whole.data.len()
                );
                // However the rows arrive, the same bytes.
                assert_eq!(banded, streamed(&src, p, 3));
            }
        }
    }

    #[test]
    fn holds_only_a_window_of_rows() {
        let src = photo(640, 4000);
        let p = plan(
            640,
            4000,
            Orientation::NORMAL,
            Target {
                width: 320,
                height: 2000,
                fit: Fit::Inside,
            },
        );
        let mut r = RowResizer::new(640, 4000, p);
        let stride = 640 * 3;
        let mut largest = 0;
        for rows in src.data.chunks(stride * 8) {
            r.push(rows).unwrap();
            largest = largest.max(r.window.len() / stride);
        }
        assert!(largest < 160, "held {largest} rows");
        assert!(r.finish().is_ok());
    }

    #[test]
    fn too_few_or_too_many_rows_are_an_error() {
        let src = photo(64, 48);
        let p = plan(
            64,
            48,
            Orientation::NORMAL,
            Target {
                width: 16,
                height: 16,
                fit: Fit::Cover,
            },
        );
        let mut r = RowResizer::new(64, 48, p);
        r.push(&src.data[..64 * 3 * 40]).unwrap();
        assert!(matches!(r.finish(), Err(Error::Internal(_))));
        let mut r = RowResizer::new(64, 48, p);
        r.push(&src.data).unwrap();
        assert!(r.push(&src.data[..64 * 3]).is_err());
        assert!(RowResizer::new(64, 48, p).push(&[0; 5]).is_err());
    }
}
