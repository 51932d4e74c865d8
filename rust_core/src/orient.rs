//! EXIF orientation: read tag 0x0112 from a TIFF-structured EXIF block, and apply it to pixels.
//!
//! Parsing is deliberately minimal and bounds-checked: only IFD0 is read (no offsets are followed), so a malformed
//! block (loops, out-of-range offsets, absurd counts, values outside 1–8) cannot hang or crash; it reads as 1.

use crate::pixels::Pixels;

/// The eight EXIF orientations. `Normal` (1) is also what anything unreadable means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Orientation(u8);

impl Orientation {
    pub const NORMAL: Orientation = Orientation(1);

    pub fn from_exif_value(value: u32) -> Orientation {
        match value {
            1..=8 => Orientation(value as u8),
            _ => Orientation::NORMAL,
        }
    }

    pub fn value(self) -> u8 {
        self.0
    }

    /// Orientations 5–8 turn the image a quarter: displayed width is the stored height.
    pub fn swaps_sides(self) -> bool {
        self.0 >= 5
    }
}

const ORIENTATION_TAG: u16 = 0x0112;
const SHORT: u16 = 3;
/// IFD0 of a real camera has a few dozen entries; anything far beyond is not worth reading.
const MAX_ENTRIES: usize = 1024;

/// Reads orientation from an EXIF payload, with or without the `Exif\0\0` prefix that JPEG APP1 and some WebP
/// writers put before the TIFF header.
pub fn orientation_from_exif(exif: &[u8]) -> Orientation {
    let tiff = exif.strip_prefix(b"Exif\0\0").unwrap_or(exif);
    read_orientation(tiff).map_or(Orientation::NORMAL, Orientation::from_exif_value)
}

fn read_orientation(tiff: &[u8]) -> Option<u32> {
    let little = match tiff.get(0..4)? {
        b"II*\0" => true,
        b"MM\0*" => false,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b = tiff.get(at..at.checked_add(2)?)?;
        Some(if little {
            u16::from_le_bytes([b[0], b[1]])
        } else {
            u16::from_be_bytes([b[0], b[1]])
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b = tiff.get(at..at.checked_add(4)?)?;
        let a = [b[0], b[1], b[2], b[3]];
        Some(if little {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        })
    };
    let ifd0 = u32_at(4)? as usize;
    let count = usize::from(u16_at(ifd0)?).min(MAX_ENTRIES);
    for i in 0..count {
        let entry = ifd0.checked_add(2 + 12 * i)?;
        if u16_at(entry)? != ORIENTATION_TAG {
            continue;
        }
        // The value is a single SHORT stored inline; anything else is malformed.
        if u16_at(entry + 2)? != SHORT || u32_at(entry + 4)? != 1 {
            return None;
        }
        return u16_at(entry + 8).map(u32::from);
    }
    None
}

/// Returns the pixels as they should be displayed.
pub fn apply(src: Pixels, orientation: Orientation) -> Pixels {
    if orientation == Orientation::NORMAL {
        return src;
    }
    let (w, h) = (src.width as usize, src.height as usize);
    let bpp = src.layout.channels();
    let (out_w, out_h) = if orientation.swaps_sides() {
        (h, w)
    } else {
        (w, h)
    };
    let mut out = vec![0u8; src.data.len()];
    // For each output pixel, where it comes from in the stored image.
    let source_of = |x: usize, y: usize| -> (usize, usize) {
        match orientation.0 {
            2 => (w - 1 - x, y),
            3 => (w - 1 - x, h - 1 - y),
            4 => (x, h - 1 - y),
            5 => (y, x),
            6 => (y, h - 1 - x),
            7 => (w - 1 - y, h - 1 - x),
            8 => (w - 1 - y, x),
            _ => (x, y),
        }
    };
    for (y, row) in out.chunks_exact_mut(out_w * bpp).enumerate() {
        for (x, px) in row.chunks_exact_mut(bpp).enumerate() {
            let (sx, sy) = source_of(x, y);
            let at = (sy * w + sx) * bpp;
            px.copy_from_slice(&src.data[at..at + bpp]);
        }
    }
    Pixels::new(out_w as u32, out_h as u32, src.layout, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pixels::Layout;

    fn exif_le(entries: &[(u16, u16, u32, u32)]) -> Vec<u8> {
        let mut v = b"Exif\0\0II*\0\x08\0\0\0".to_vec();
        v.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        for &(tag, typ, count, value) in entries {
            v.extend_from_slice(&tag.to_le_bytes());
            v.extend_from_slice(&typ.to_le_bytes());
            v.extend_from_slice(&count.to_le_bytes());
            v.extend_from_slice(&value.to_le_bytes());
        }
        v
    }

    #[test]
    fn reads_every_valid_value_little_endian() {
        for value in 1..=8 {
            let exif = exif_le(&[(0x010F, 2, 4, 0), (ORIENTATION_TAG, SHORT, 1, value)]);
            assert_eq!(orientation_from_exif(&exif).value() as u32, value);
        }
    }

    #[test]
    fn reads_big_endian() {
        let mut v = b"MM\0*\0\0\0\x08\0\x01".to_vec();
        v.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0]);
        assert_eq!(orientation_from_exif(&v).value(), 6);
    }

    #[test]
    fn malformed_reads_as_normal() {
        for value in [0, 9, 65535] {
            let exif = exif_le(&[(ORIENTATION_TAG, SHORT, 1, value)]);
            assert_eq!(
                orientation_from_exif(&exif),
                Orientation::NORMAL,
                "value {value}"
            );
        }
        // Out-of-bounds IFD offset, huge entry count, wrong type, truncated entry, garbage.
        assert_eq!(
            orientation_from_exif(b"II*\0\xff\xff\xff\x7f"),
            Orientation::NORMAL
        );
        let mut huge = b"II*\0\x08\0\0\0\xff\xff".to_vec();
        huge.extend_from_slice(&[0; 20]);
        assert_eq!(orientation_from_exif(&huge), Orientation::NORMAL);
        let wrong_type = exif_le(&[(ORIENTATION_TAG, 4, 1, 6)]);
        assert_eq!(orientation_from_exif(&wrong_type), Orientation::NORMAL);
        let mut truncated = exif_le(&[(ORIENTATION_TAG, SHORT, 1, 6)]);
        truncated.truncate(truncated.len() - 3);
        assert_eq!(orientation_from_exif(&truncated), Orientation::NORMAL);
        assert_eq!(orientation_from_exif(b""), Orientation::NORMAL);
    }

    /// A 3x2 image whose pixels are numbered 0..6 row by row (one channel repeated thrice).
    fn numbered() -> Pixels {
        let data = (0u8..6).flat_map(|v| [v, v, v]).collect();
        Pixels::new(3, 2, Layout::Rgb8, data)
    }

    fn values(p: &Pixels) -> Vec<u8> {
        p.data.chunks_exact(3).map(|c| c[0]).collect()
    }

    #[test]
    fn all_eight_transforms() {
        // Stored:  0 1 2 / 3 4 5. Expected displayed images, row by row.
        let expected: [(u32, u32, [u8; 6]); 8] = [
            (3, 2, [0, 1, 2, 3, 4, 5]),
            (3, 2, [2, 1, 0, 5, 4, 3]),
            (3, 2, [5, 4, 3, 2, 1, 0]),
            (3, 2, [3, 4, 5, 0, 1, 2]),
            (2, 3, [0, 3, 1, 4, 2, 5]),
            (2, 3, [3, 0, 4, 1, 5, 2]),
            (2, 3, [5, 2, 4, 1, 3, 0]),
            (2, 3, [2, 5, 1, 4, 0, 3]),
        ];
        for (i, (w, h, want)) in expected.iter().enumerate() {
            let out = apply(numbered(), Orientation::from_exif_value(i as u32 + 1));
            assert_eq!((out.width, out.height), (*w, *h), "orientation {}", i + 1);
            assert_eq!(values(&out), want.to_vec(), "orientation {}", i + 1);
        }
    }
}
