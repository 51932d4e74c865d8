//! ISO BMFF boxes (ISO/IEC 14496-12 4.2), read without trusting them: a box header's size is checked against what
//! its container holds, and every field read from a body is bounds-checked.

use crate::error::{Error, Result};

/// Errors of the container and of the AV1 data in it (decode/avif/ uses these too): every message names AVIF.
pub(in crate::decode) fn corrupt(message: impl std::fmt::Display) -> Error {
    Error::Decode(format!("AVIF: {message}"))
}

pub(in crate::decode) fn unsupported(message: impl std::fmt::Display) -> Error {
    Error::Unsupported(format!("AVIF: {message}"))
}

/// A box type as text for messages: printable ASCII as is, anything else escaped.
pub fn fourcc(kind: [u8; 4]) -> String {
    kind.iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b).to_string()
            } else {
                format!("\\x{b:02x}")
            }
        })
        .collect()
}

/// A bounds-checked big-endian reader over one box's body (or an item's data, such as a grid's ImageGrid).
pub(in crate::decode) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(in crate::decode) fn new(data: &'a [u8], what: &'static str) -> Self {
        Self { data, pos: 0, what }
    }

    fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    pub(super) fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(corrupt(format_args!(
                "the '{}' box ends early ({} bytes, {} more needed at byte {})",
                self.what,
                self.data.len(),
                n - self.remaining(),
                self.pos
            )));
        }
        let out = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub(super) fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    pub(in crate::decode) fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    pub(in crate::decode) fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(in crate::decode) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// An unsigned field of 0, 4 or 8 bytes (iloc's sizes), already validated by `field_size`.
    pub(super) fn sized(&mut self, size: u8) -> Result<u64> {
        match size {
            0 => Ok(0),
            4 => self.u32().map(u64::from),
            _ => self.u64(),
        }
    }

    /// The version and flags of a full box.
    pub(super) fn full(&mut self) -> Result<(u8, u32)> {
        let v = self.u32()?;
        Ok(((v >> 24) as u8, v & 0x00FF_FFFF))
    }

    /// A NUL-terminated string; a missing terminator takes the rest of the box (some writers omit it).
    pub(super) fn cstring(&mut self) -> &'a [u8] {
        let rest = &self.data[self.pos..];
        match rest.iter().position(|&b| b == 0) {
            Some(end) => {
                self.pos += end + 1;
                &rest[..end]
            }
            None => {
                self.pos = self.data.len();
                rest
            }
        }
    }

    pub(super) fn rest(&mut self) -> &'a [u8] {
        let rest = &self.data[self.pos..];
        self.pos = self.data.len();
        rest
    }
}

/// One box: its type and its body (after the header).
#[derive(Debug, Clone, Copy)]
pub(super) struct BoxRef<'a> {
    pub(super) kind: [u8; 4],
    pub(super) body: &'a [u8],
}

/// The boxes laid end to end in `data`: the file, or the body of a container box within `file` (whose start gives
/// the offsets in messages).
pub(super) struct Boxes<'a> {
    data: &'a [u8],
    pos: usize,
    base: usize,
    failed: bool,
}

pub(super) fn boxes<'a>(data: &'a [u8], file: &[u8]) -> Boxes<'a> {
    Boxes {
        data,
        pos: 0,
        base: (data.as_ptr() as usize).saturating_sub(file.as_ptr() as usize),
        failed: false,
    }
}

impl<'a> Boxes<'a> {
    fn next_box(&mut self) -> Result<BoxRef<'a>> {
        let at = self.base + self.pos;
        let rest = &self.data[self.pos..];
        if rest.len() < 8 {
            return Err(corrupt(format_args!(
                "truncated box header at byte {at} ({} bytes left, 8 needed)",
                rest.len()
            )));
        }
        let size32 = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let kind = [rest[4], rest[5], rest[6], rest[7]];
        let (size, header) = match size32 {
            // The box runs to the end of its container (the file, at top level).
            0 => (rest.len() as u64, 8),
            1 => {
                let Some(large) = rest.get(8..16) else {
                    return Err(corrupt(format_args!(
                        "box '{}' at byte {at} has a 64-bit size but ends before it",
                        fourcc(kind)
                    )));
                };
                let mut b = [0; 8];
                b.copy_from_slice(large);
                (u64::from_be_bytes(b), 16)
            }
            n => (u64::from(n), 8),
        };
        if size < header as u64 {
            return Err(corrupt(format_args!(
                "box '{}' at byte {at} declares {size} bytes, less than its {header}-byte header",
                fourcc(kind)
            )));
        }
        if size > rest.len() as u64 {
            return Err(corrupt(format_args!(
                "box '{}' at byte {at} declares {size} bytes but only {} remain (truncated?)",
                fourcc(kind),
                rest.len()
            )));
        }
        let size = size as usize;
        self.pos += size;
        Ok(BoxRef {
            kind,
            body: &rest[header..size],
        })
    }
}

impl<'a> Iterator for Boxes<'a> {
    type Item = Result<BoxRef<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.data.len() {
            return None;
        }
        let next = self.next_box();
        self.failed = next.is_err();
        Some(next)
    }
}
/// The brands of an `ftyp` box: the major brand and the compatible ones. `None` unless `data` starts with one.
pub fn brands(data: &[u8]) -> Option<([u8; 4], impl Iterator<Item = &[u8]>)> {
    let first = boxes(data, data).next()?.ok()?;
    if &first.kind != b"ftyp" || first.body.len() < 8 {
        return None;
    }
    let mut major = [0; 4];
    major.copy_from_slice(&first.body[..4]);
    Some((major, first.body[8..].chunks_exact(4)))
}

#[cfg(test)]
mod tests {
    use super::super::tests::ftyp;
    use super::*;

    #[test]
    fn brands_of_the_ftyp() {
        let f = ftyp(b"mif1", &[b"miaf", b"avif"]);
        let (major, compatible) = brands(&f).unwrap();
        assert_eq!(&major, b"mif1");
        assert_eq!(compatible.collect::<Vec<_>>(), vec![&b"miaf"[..], b"avif"]);
        assert!(brands(b"\0\0\0\x08free").is_none());
        assert!(brands(b"\0\0\0\x0cftyp").is_none());
    }
}
