//! The HEIF container (ISO/IEC 23008-12 on ISO BMFF, ISO/IEC 14496-12) as far as AVIF still images need it: the
//! primary item, where each item's bytes are (`iloc`, `idat`), what each item is (`iinf`), how items refer to
//! each other (`iref`) and their properties (`iprp`).
//!
//! Written for hostile input: every read is bounds-checked, no count in the file sizes an allocation (entries are
//! read one by one and each read is checked, under a fixed ceiling per table), the parser only descends into the
//! boxes it knows at fixed depths (no recursion), and an item's bytes are never more than the file holds.

mod boxes;
mod properties;

use std::borrow::Cow;
use std::collections::HashMap;

use boxes::boxes;
pub use boxes::{brands, fourcc};
pub(super) use boxes::{corrupt, unsupported, Reader};
use properties::parse_ipco;
pub use properties::{Nclx, Property};

use crate::error::Result;

/// Ceilings per file. A camera's AVIF has a few items (image, alpha, thumbnail, Exif, a grid's tiles); a grid
/// of 8K tiles of 512x512 is 256 tiles.
const MAX_ITEMS: usize = 4096;
const MAX_EXTENTS: usize = 4096;
const MAX_PROPERTIES: usize = 4096;
const MAX_ASSOCIATIONS: usize = 16_384;
const MAX_REFERENCES: usize = 16_384;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Extent {
    offset: u64,
    length: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Location {
    construction_method: u8,
    data_reference_index: u16,
    base_offset: u64,
    extents: Vec<Extent>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Item {
    pub id: u32,
    /// From `infe` (version 2 or 3); zero when the item has no `infe`.
    pub kind: [u8; 4],
    location: Option<Location>,
    /// Indices into `Heif::properties` (0-based), and whether each is essential.
    associations: Vec<(usize, bool)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub kind: [u8; 4],
    pub from: u32,
    pub to: Vec<u32>,
}

/// A parsed AVIF/HEIF file: borrowed from the input, nothing copied but the tables.
#[derive(Debug)]
pub struct Heif<'a> {
    data: &'a [u8],
    pub major_brand: [u8; 4],
    pub primary: Option<u32>,
    items: Vec<Item>,
    index: HashMap<u32, usize>,
    properties: Vec<Property<'a>>,
    pub references: Vec<Reference>,
    idat: Option<&'a [u8]>,
}

impl<'a> Heif<'a> {
    pub fn item(&self, id: u32) -> Option<&Item> {
        self.index.get(&id).map(|&i| &self.items[i])
    }

    /// The properties associated with `item`, in association order, with their essential flag.
    pub fn properties<'s>(
        &'s self,
        item: &'s Item,
    ) -> impl Iterator<Item = (&'s Property<'a>, bool)> + 's {
        item.associations
            .iter()
            .map(|&(i, essential)| (&self.properties[i], essential))
    }

    /// The items `from` refers to with a reference of type `kind`, in order.
    pub fn references_from(&self, kind: &[u8; 4], from: u32) -> Vec<u32> {
        self.references
            .iter()
            .filter(|r| &r.kind == kind && r.from == from)
            .flat_map(|r| r.to.iter().copied())
            .collect()
    }

    /// The items that refer to `to` with a reference of type `kind`.
    pub fn references_to(&self, kind: &[u8; 4], to: u32) -> Vec<u32> {
        self.references
            .iter()
            .filter(|r| &r.kind == kind && r.to.contains(&to))
            .map(|r| r.from)
            .collect()
    }

    /// The item's bytes: its extents, from the file or from `idat`, concatenated when there are several.
    pub fn item_data(&self, item: &Item) -> Result<Cow<'a, [u8]>> {
        let id = item.id;
        let Some(loc) = &item.location else {
            return Err(corrupt(format_args!(
                "item {id} has no location (no 'iloc' entry)"
            )));
        };
        if loc.data_reference_index != 0 {
            return Err(unsupported(format_args!(
                "item {id} is stored in another file (data reference {})",
                loc.data_reference_index
            )));
        }
        let (source, name) = match loc.construction_method {
            0 => (self.data, "file"),
            1 => (
                self.idat.ok_or_else(|| {
                    corrupt(format_args!("item {id} is in an 'idat' box the file lacks"))
                })?,
                "'idat' box",
            ),
            m => {
                return Err(unsupported(format_args!(
                    "item {id} uses iloc construction method {m}"
                )))
            }
        };
        if loc.extents.is_empty() {
            return Err(corrupt(format_args!("item {id} has no extents")));
        }
        let single = loc.extents.len() == 1;
        let mut slices = Vec::with_capacity(loc.extents.len());
        let mut total = 0usize;
        for e in &loc.extents {
            let offset = loc.base_offset.checked_add(e.offset);
            let start = offset
                .filter(|&o| o <= source.len() as u64)
                .ok_or_else(|| {
                    corrupt(format_args!(
                        "item {id} extent starts past the end of the {name} (offset {}, {name} {} bytes)",
                        loc.base_offset.saturating_add(e.offset),
                        source.len()
                    ))
                })? as usize;
            // Length 0: the rest of the source (ISO/IEC 14496-12 8.11.3.3), meaningful for a single extent.
            let length = if e.length == 0 && single {
                (source.len() - start) as u64
            } else {
                e.length
            };
            if length > (source.len() - start) as u64 {
                return Err(corrupt(format_args!(
                    "item {id} extent runs past the end of the {name} (offset {start}, length {length}, {name} {} bytes)",
                    source.len()
                )));
            }
            total = total.saturating_add(length as usize);
            // Overlapping extents could otherwise make an item many times larger than the input.
            if total > source.len() {
                return Err(corrupt(format_args!(
                    "item {id} extents add up to more than the {name} holds ({} bytes)",
                    source.len()
                )));
            }
            slices.push(&source[start..start + length as usize]);
        }
        if let [only] = slices[..] {
            return Ok(Cow::Borrowed(only));
        }
        Ok(Cow::Owned(slices.concat()))
    }
}

pub fn parse(data: &[u8]) -> Result<Heif<'_>> {
    let mut top = boxes(data, data);
    let ftyp = match top.next() {
        Some(Ok(b)) if &b.kind == b"ftyp" => b,
        Some(Err(e)) => return Err(e),
        _ => return Err(corrupt("the file does not start with an 'ftyp' box")),
    };
    let mut major_brand = [0; 4];
    major_brand.copy_from_slice(Reader::new(ftyp.body, "ftyp").bytes(4)?);
    let mut heif = Heif {
        data,
        major_brand,
        primary: None,
        items: Vec::new(),
        index: HashMap::new(),
        properties: Vec::new(),
        references: Vec::new(),
        idat: None,
    };
    // Only up to the (first) 'meta' box: the items' bytes are found through iloc offsets, so 'mdat' and anything
    // after 'meta' (including trailing garbage) need not be walked.
    for b in top {
        let b = b?;
        if &b.kind == b"meta" {
            parse_meta(&mut heif, b.body)?;
            return Ok(heif);
        }
    }
    if &major_brand == b"avis" {
        return Err(unsupported(
            "image sequences without a still image ('meta' box) are not supported",
        ));
    }
    Err(corrupt("no 'meta' box: the file holds no image items"))
}

fn parse_meta<'a>(heif: &mut Heif<'a>, body: &'a [u8]) -> Result<()> {
    let mut r = Reader::new(body, "meta");
    r.full()?;
    let mut handler = None;
    let mut iloc = None;
    let mut iinf = None;
    let mut ipma = Vec::new();
    for b in boxes(r.rest(), heif.data) {
        let b = b?;
        match &b.kind {
            b"hdlr" => {
                let mut r = Reader::new(b.body, "hdlr");
                r.full()?;
                r.u32()?; // pre_defined
                handler = Some(r.array::<4>()?);
            }
            b"pitm" => {
                let mut r = Reader::new(b.body, "pitm");
                let (version, _) = r.full()?;
                heif.primary = Some(if version == 0 {
                    u32::from(r.u16()?)
                } else {
                    r.u32()?
                });
            }
            b"iloc" => iloc = Some(b.body),
            b"iinf" => iinf = Some(b.body),
            b"iref" => heif.references = parse_iref(b.body, heif.data)?,
            b"iprp" => {
                for child in boxes(b.body, heif.data) {
                    let child = child?;
                    match &child.kind {
                        b"ipco" => heif.properties = parse_ipco(child.body, heif.data)?,
                        b"ipma" => ipma.push(child.body),
                        _ => {}
                    }
                }
            }
            b"idat" => heif.idat = Some(b.body),
            _ => {}
        }
    }
    match handler {
        Some(h) if &h == b"pict" => {}
        Some(h) => {
            return Err(unsupported(format_args!(
                "the 'meta' box's handler is '{}', not 'pict' (not an image file)",
                fourcc(h)
            )))
        }
        None => return Err(corrupt("the 'meta' box has no 'hdlr' box")),
    }
    if let Some(body) = iinf {
        parse_iinf(heif, body)?;
    }
    if let Some(body) = iloc {
        parse_iloc(heif, body)?;
    }
    let mut associations = 0usize;
    for body in ipma {
        parse_ipma(heif, body, &mut associations)?;
    }
    Ok(())
}

/// The item with this id, created if new (an item may appear in iinf, iloc and ipma, in any order).
fn item_mut<'h>(heif: &'h mut Heif<'_>, id: u32) -> Result<&'h mut Item> {
    let next = heif.items.len();
    let i = *heif.index.entry(id).or_insert(next);
    if i == next {
        if next >= MAX_ITEMS {
            return Err(corrupt(format_args!("more than {MAX_ITEMS} items")));
        }
        heif.items.push(Item {
            id,
            ..Item::default()
        });
    }
    Ok(&mut heif.items[i])
}

fn parse_iinf(heif: &mut Heif<'_>, body: &[u8]) -> Result<()> {
    let mut r = Reader::new(body, "iinf");
    let (version, _) = r.full()?;
    // The entry count is not trusted: the 'infe' boxes present are read, each under the item ceiling.
    if version == 0 {
        r.u16()?;
    } else {
        r.u32()?;
    }
    for b in boxes(r.rest(), heif.data) {
        let b = b?;
        if &b.kind != b"infe" {
            continue;
        }
        let mut r = Reader::new(b.body, "infe");
        let (version, _) = r.full()?;
        // Versions 0 and 1 (no item type) predate HEIF; such items are not images.
        if version < 2 {
            continue;
        }
        let id = if version == 2 {
            u32::from(r.u16()?)
        } else {
            r.u32()?
        };
        r.u16()?; // item_protection_index
        let kind = r.array::<4>()?;
        let item = item_mut(heif, id)?;
        if item.kind != [0; 4] {
            return Err(corrupt(format_args!("item {id} has two 'infe' entries")));
        }
        item.kind = kind;
    }
    Ok(())
}

/// iloc's offset, length, base offset and index sizes: 0, 4 or 8 bytes.
fn field_size(value: u8, what: &str) -> Result<u8> {
    match value {
        0 | 4 | 8 => Ok(value),
        other => Err(corrupt(format_args!(
            "'iloc' {what} size is {other} bytes; expected 0, 4 or 8"
        ))),
    }
}

fn parse_iloc(heif: &mut Heif<'_>, body: &[u8]) -> Result<()> {
    let mut r = Reader::new(body, "iloc");
    let (version, _) = r.full()?;
    if version > 2 {
        return Err(unsupported(format_args!("'iloc' version {version}")));
    }
    let sizes = r.u16()?;
    let offset_size = field_size((sizes >> 12) as u8, "offset")?;
    let length_size = field_size((sizes >> 8 & 0xF) as u8, "length")?;
    let base_offset_size = field_size((sizes >> 4 & 0xF) as u8, "base offset")?;
    let index_size = if version >= 1 {
        field_size((sizes & 0xF) as u8, "index")?
    } else {
        0
    };
    let count = if version < 2 {
        u32::from(r.u16()?)
    } else {
        r.u32()?
    };
    let mut extents_total = 0usize;
    for _ in 0..count {
        let id = if version < 2 {
            u32::from(r.u16()?)
        } else {
            r.u32()?
        };
        let construction_method = if version >= 1 {
            (r.u16()? & 0xF) as u8
        } else {
            0
        };
        let data_reference_index = r.u16()?;
        let base_offset = r.sized(base_offset_size)?;
        let extent_count = r.u16()?;
        let mut extents = Vec::new();
        for _ in 0..extent_count {
            extents_total += 1;
            if extents_total > MAX_EXTENTS {
                return Err(corrupt(format_args!("more than {MAX_EXTENTS} extents")));
            }
            r.sized(index_size)?;
            let offset = r.sized(offset_size)?;
            let length = r.sized(length_size)?;
            extents.push(Extent { offset, length });
        }
        let item = item_mut(heif, id)?;
        if item.location.is_some() {
            return Err(corrupt(format_args!("item {id} has two 'iloc' entries")));
        }
        item.location = Some(Location {
            construction_method,
            data_reference_index,
            base_offset,
            extents,
        });
    }
    Ok(())
}

fn parse_iref(body: &[u8], file: &[u8]) -> Result<Vec<Reference>> {
    let mut r = Reader::new(body, "iref");
    let (version, _) = r.full()?;
    let mut references = Vec::new();
    let mut total = 0usize;
    for b in boxes(r.rest(), file) {
        let b = b?;
        let mut r = Reader::new(b.body, "iref");
        let id = |r: &mut Reader<'_>| -> Result<u32> {
            if version == 0 {
                r.u16().map(u32::from)
            } else {
                r.u32()
            }
        };
        let from = id(&mut r)?;
        let count = r.u16()?;
        let mut to = Vec::new();
        for _ in 0..count {
            total += 1;
            if total > MAX_REFERENCES {
                return Err(corrupt(format_args!(
                    "more than {MAX_REFERENCES} item references"
                )));
            }
            to.push(id(&mut r)?);
        }
        references.push(Reference {
            kind: b.kind,
            from,
            to,
        });
    }
    Ok(references)
}

fn parse_ipma(heif: &mut Heif<'_>, body: &[u8], total: &mut usize) -> Result<()> {
    let mut r = Reader::new(body, "ipma");
    let (version, flags) = r.full()?;
    let count = r.u32()?;
    for _ in 0..count {
        let id = if version < 1 {
            u32::from(r.u16()?)
        } else {
            r.u32()?
        };
        let n = r.u8()?;
        let mut associations = Vec::new();
        for _ in 0..n {
            *total += 1;
            if *total > MAX_ASSOCIATIONS {
                return Err(corrupt(format_args!(
                    "more than {MAX_ASSOCIATIONS} property associations"
                )));
            }
            let (essential, index) = if flags & 1 != 0 {
                let v = r.u16()?;
                (v & 0x8000 != 0, usize::from(v & 0x7FFF))
            } else {
                let v = r.u8()?;
                (v & 0x80 != 0, usize::from(v & 0x7F))
            };
            // Index 0 means "no property" (ISO/IEC 23008-12 9.3.3).
            if index == 0 {
                continue;
            }
            if index > heif.properties.len() {
                return Err(corrupt(format_args!(
                    "item {id} is associated with property {index}, but there are only {}",
                    heif.properties.len()
                )));
            }
            associations.push((index - 1, essential));
        }
        let item = item_mut(heif, id)?;
        if !item.associations.is_empty() {
            return Err(corrupt(format_args!("item {id} has two 'ipma' entries")));
        }
        item.associations = associations;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::error::Error;

    /// A box of `kind` around `body`.
    pub fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v
    }

    /// A full box: version and flags, then `body`.
    pub fn full(kind: &[u8; 4], version: u8, flags: u32, body: &[u8]) -> Vec<u8> {
        let mut b = (u32::from(version) << 24 | flags).to_be_bytes().to_vec();
        b.extend_from_slice(body);
        bx(kind, &b)
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    pub fn ftyp(major: &[u8; 4], compatible: &[&[u8; 4]]) -> Vec<u8> {
        let mut body = major.to_vec();
        body.extend_from_slice(&[0; 4]);
        for c in compatible {
            body.extend_from_slice(*c);
        }
        bx(b"ftyp", &body)
    }

    fn hdlr() -> Vec<u8> {
        full(b"hdlr", 0, 0, &cat(&[&[0; 4], b"pict", &[0; 13]]))
    }

    fn pitm(id: u16) -> Vec<u8> {
        full(b"pitm", 0, 0, &id.to_be_bytes())
    }

    fn infe(id: u16, kind: &[u8; 4]) -> Vec<u8> {
        full(
            b"infe",
            2,
            0,
            &cat(&[&id.to_be_bytes(), &[0, 0], kind, b"\0"]),
        )
    }

    fn iinf(entries: &[Vec<u8>]) -> Vec<u8> {
        let mut body = (entries.len() as u16).to_be_bytes().to_vec();
        for e in entries {
            body.extend_from_slice(e);
        }
        full(b"iinf", 0, 0, &body)
    }

    /// iloc version 0 with 4-byte offsets and lengths, no base offset: (item, [(offset, length)]).
    fn iloc(items: &[(u16, &[(u32, u32)])]) -> Vec<u8> {
        let mut body = vec![0x44, 0x00];
        body.extend_from_slice(&(items.len() as u16).to_be_bytes());
        for (id, extents) in items {
            body.extend_from_slice(&id.to_be_bytes());
            body.extend_from_slice(&[0, 0]); // data_reference_index
            body.extend_from_slice(&(extents.len() as u16).to_be_bytes());
            for (o, l) in *extents {
                body.extend_from_slice(&o.to_be_bytes());
                body.extend_from_slice(&l.to_be_bytes());
            }
        }
        full(b"iloc", 0, 0, &body)
    }

    fn ispe(w: u32, h: u32) -> Vec<u8> {
        full(b"ispe", 0, 0, &cat(&[&w.to_be_bytes(), &h.to_be_bytes()]))
    }

    /// iprp with the properties and one ipma (version 0, 7-bit indices): (item, [(index, essential)]).
    fn iprp(properties: &[Vec<u8>], associations: &[(u16, &[(u8, bool)])]) -> Vec<u8> {
        let ipco = bx(b"ipco", &properties.concat());
        let mut body = (associations.len() as u32).to_be_bytes().to_vec();
        for (id, list) in associations {
            body.extend_from_slice(&id.to_be_bytes());
            body.push(list.len() as u8);
            for &(index, essential) in *list {
                body.push(index | if essential { 0x80 } else { 0 });
            }
        }
        bx(b"iprp", &cat(&[&ipco, &full(b"ipma", 0, 0, &body)]))
    }

    fn meta(children: &[Vec<u8>]) -> Vec<u8> {
        full(b"meta", 0, 0, &children.concat())
    }

    /// A file with one av01 item (id 1) whose 4 data bytes are at the end, an Exif item (id 2), and an ispe.
    fn file_with(meta_children: impl Fn(usize) -> Vec<Vec<u8>>) -> Vec<u8> {
        // The data offset depends on the meta size, which does not depend on the offset's value.
        let probe = cat(&[&ftyp(b"avif", &[b"mif1"]), &meta(&meta_children(0))]);
        let offset = probe.len() + 8;
        let mut f = cat(&[&ftyp(b"avif", &[b"mif1"]), &meta(&meta_children(offset))]);
        f.extend_from_slice(&bx(b"mdat", b"DATAexif"));
        f
    }

    fn standard(offset: usize) -> Vec<Vec<u8>> {
        let o = offset as u32;
        vec![
            hdlr(),
            pitm(1),
            iinf(&[infe(1, b"av01"), infe(2, b"Exif")]),
            iloc(&[(1, &[(o, 4)]), (2, &[(o + 4, 4)])]),
            iprp(&[ispe(640, 480)], &[(1, &[(1, false)])]),
        ]
    }

    #[test]
    fn a_well_formed_file() {
        let f = file_with(standard);
        let heif = parse(&f).unwrap();
        assert_eq!(heif.major_brand, *b"avif");
        assert_eq!(heif.primary, Some(1));
        let item = heif.item(1).unwrap();
        assert_eq!(item.kind, *b"av01");
        assert_eq!(&*heif.item_data(item).unwrap(), b"DATA");
        let props: Vec<_> = heif.properties(item).collect();
        assert_eq!(
            props,
            vec![(
                &Property::Size {
                    width: 640,
                    height: 480
                },
                false
            )]
        );
        // The Exif item is read as an item like any other (and ignored by the decoder).
        let exif = heif.item(2).unwrap();
        assert_eq!(exif.kind, *b"Exif");
        assert_eq!(&*heif.item_data(exif).unwrap(), b"exif");
    }

    fn message(r: Result<Heif<'_>>) -> String {
        match r {
            Err(Error::Decode(m)) | Err(Error::Unsupported(m)) => m,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let f = file_with(standard);
        for len in 0..f.len() {
            // Truncated inside ftyp or meta: refused. Past meta (inside mdat): parsed; the item data is short.
            match parse(&f[..len]) {
                Ok(heif) => {
                    let short = [1, 2]
                        .iter()
                        .any(|&id| heif.item_data(heif.item(id).unwrap()).is_err());
                    assert!(short, "length {len}");
                }
                Err(e) => assert!(
                    matches!(&e, Error::Decode(m) if m.starts_with("AVIF: ")),
                    "{e:?}"
                ),
            }
        }
    }

    #[test]
    fn size_zero_runs_to_the_end_and_size_one_is_64_bit() {
        let f = file_with(standard);
        // The last box (mdat) with size 0: runs to the end of the file.
        let mut zero = f.clone();
        let mdat = zero.len() - 16;
        zero[mdat..mdat + 4].copy_from_slice(&[0; 4]);
        assert!(parse(&zero).is_ok());
        // ftyp rewritten with a 64-bit size.
        let ftyp_len = ftyp(b"avif", &[b"mif1"]).len();
        let mut large = vec![0, 0, 0, 1];
        large.extend_from_slice(b"ftyp");
        large.extend_from_slice(&((ftyp_len + 8) as u64).to_be_bytes());
        large.extend_from_slice(&f[8..ftyp_len]);
        large.extend_from_slice(&f[ftyp_len..]);
        // Offsets moved by 8: the item now points 8 bytes early, still inside the file.
        let heif = parse(&large).unwrap();
        assert_eq!(heif.primary, Some(1));
        // A 64-bit size that is absent, or larger than the file.
        assert!(message(parse(b"\0\0\0\x01ftyp\0\0")).contains("64-bit size"));
        let mut huge = b"\0\0\0\x01ftyp".to_vec();
        huge.extend_from_slice(&u64::MAX.to_be_bytes());
        assert!(message(parse(&huge)).contains("only 16 remain"));
    }

    #[test]
    fn box_size_smaller_than_its_header() {
        let mut f = file_with(standard);
        f[3] = 7;
        assert!(message(parse(&f)).contains("less than its 8-byte header"));
        let mut large = b"\0\0\0\x01ftyp".to_vec();
        large.extend_from_slice(&12u64.to_be_bytes());
        assert!(message(parse(&large)).contains("less than its 16-byte header"));
    }

    #[test]
    fn nested_depth_bomb_is_not_descended() {
        // 100 000 nested 'meta' boxes inside the file's meta: only the known children are read, once, iteratively.
        let mut inner = Vec::new();
        for _ in 0..100_000 {
            inner = full(b"meta", 0, 0, &inner);
        }
        let f = file_with(|o| {
            let mut c = standard(o);
            c.push(inner.clone());
            c
        });
        let started = std::time::Instant::now();
        // The offsets are off by the bomb's size (it comes before mdat), which does not matter here.
        let heif = parse(&f).unwrap();
        assert_eq!(heif.primary, Some(1));
        assert!(started.elapsed().as_millis() < 500);
    }

    #[test]
    fn iloc_pointing_outside_the_file() {
        let f = file_with(|o| {
            let mut c = standard(o);
            c[3] = iloc(&[(1, &[(1_000_000, 99_999)])]);
            c
        });
        let heif = parse(&f).unwrap();
        let err = heif.item_data(heif.item(1).unwrap()).unwrap_err();
        assert!(
            matches!(&err, Error::Decode(m) if m.starts_with("AVIF: item 1 extent starts past the end of the file (offset 1000000")),
            "{err:?}"
        );
        let f = file_with(|o| {
            let mut c = standard(o);
            c[3] = iloc(&[(1, &[(o as u32, 99_999)])]);
            c
        });
        let heif = parse(&f).unwrap();
        let err = heif.item_data(heif.item(1).unwrap()).unwrap_err();
        assert!(
            matches!(&err, Error::Decode(m) if m.contains("item 1 extent runs past the end of the file") && m.contains("length 99999")),
            "{err:?}"
        );
    }

    #[test]
    fn overlapping_extents_cannot_multiply_the_input() {
        let f = file_with(|o| {
            let mut c = standard(o);
            let many: Vec<(u32, u32)> = (0..1000).map(|_| (0, 100)).collect();
            c[3] = iloc(&[(1, &many)]);
            c
        });
        let heif = parse(&f).unwrap();
        let err = heif.item_data(heif.item(1).unwrap()).unwrap_err();
        assert!(
            matches!(&err, Error::Decode(m) if m.contains("add up to more")),
            "{err:?}"
        );
    }

    #[test]
    fn huge_counts_are_not_trusted() {
        // iloc claims 65535 items with 65535 extents each, then ends: an error, after a bounded amount of work.
        let mut body = vec![0x44, 0x00, 0xFF, 0xFF, 0, 1, 0, 0, 0xFF, 0xFF];
        body.extend_from_slice(&[0; 8]);
        let f = file_with(|o| {
            let mut c = standard(o);
            c[3] = full(b"iloc", 0, 0, &body);
            c
        });
        assert!(message(parse(&f)).contains("'iloc' box ends early"));
        // Zero-byte fields make extents free to declare: the ceiling catches them.
        let free = full(
            b"iloc",
            0,
            0,
            &[0x00, 0x00, 0x00, 0x01, 0, 1, 0, 0, 0xFF, 0xFF],
        );
        let f = file_with(|o| {
            let mut c = standard(o);
            c[3] = free.clone();
            c
        });
        assert!(message(parse(&f)).contains("more than 4096 extents"));
        // ipma claims 4 billion entries.
        let ipma = full(b"ipma", 0, 0, &[0xFF, 0xFF, 0xFF, 0xFF, 0, 1, 1, 0x81]);
        let f = file_with(|o| {
            let mut c = standard(o);
            c[4] = bx(b"iprp", &cat(&[&bx(b"ipco", &ispe(1, 1)), &ipma]));
            c
        });
        assert!(message(parse(&f)).contains("'ipma' box ends early"));
        // Many items, each with its own id.
        let mut many = vec![0x44, 0x00];
        many.extend_from_slice(&[0, 0, 0xFF, 0xFF]);
        let mut iloc2 = Vec::new();
        for id in 0..5000u32 {
            iloc2.extend_from_slice(&id.to_be_bytes());
            iloc2.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        }
        many.extend_from_slice(&iloc2);
        let f = file_with(|o| {
            let mut c = standard(o);
            c[3] = full(b"iloc", 2, 0, &many);
            c
        });
        assert!(message(parse(&f)).contains("more than 4096 items"));
    }

    #[test]
    fn missing_pitm_and_missing_primary_item() {
        let f = file_with(|o| {
            let mut c = standard(o);
            c.remove(1);
            c
        });
        assert_eq!(parse(&f).unwrap().primary, None);
        let f = file_with(|o| {
            let mut c = standard(o);
            c[1] = pitm(7);
            c
        });
        let heif = parse(&f).unwrap();
        assert_eq!(heif.primary, Some(7));
        assert!(heif.item(7).is_none());
    }

    #[test]
    fn ipma_property_indices() {
        // Index 0 means "none" and is skipped; past the end is corrupt.
        let f = file_with(|o| {
            let mut c = standard(o);
            c[4] = iprp(&[ispe(640, 480)], &[(1, &[(0, false), (1, true)])]);
            c
        });
        let heif = parse(&f).unwrap();
        assert_eq!(heif.properties(heif.item(1).unwrap()).count(), 1);
        let f = file_with(|o| {
            let mut c = standard(o);
            c[4] = iprp(&[ispe(640, 480)], &[(1, &[(2, false)])]);
            c
        });
        assert!(message(parse(&f)).contains("associated with property 2, but there are only 1"));
    }

    #[test]
    fn zero_size_ispe_is_read_as_is() {
        // The parser reports it; the decoder refuses it through Limits::check_dimensions.
        let f = file_with(|o| {
            let mut c = standard(o);
            c[4] = iprp(&[ispe(0, 0)], &[(1, &[(1, false)])]);
            c
        });
        let heif = parse(&f).unwrap();
        let (p, _) = heif.properties(heif.item(1).unwrap()).next().unwrap();
        assert_eq!(
            p,
            &Property::Size {
                width: 0,
                height: 0
            }
        );
    }

    #[test]
    fn iloc_sizes_versions_and_idat() {
        // Version 1, construction method 1 (idat), 8-byte offsets, 4-byte base offset, two extents concatenated.
        let mut body = vec![0x84, 0x40, 0x00, 0x01, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00];
        body.extend_from_slice(&1u32.to_be_bytes()); // base offset 1
        body.extend_from_slice(&2u16.to_be_bytes());
        body.extend_from_slice(&2u64.to_be_bytes());
        body.extend_from_slice(&2u32.to_be_bytes());
        body.extend_from_slice(&0u64.to_be_bytes());
        body.extend_from_slice(&1u32.to_be_bytes());
        let f = file_with(|o| {
            let mut c = standard(o);
            c[3] = full(b"iloc", 1, 0, &body);
            c.push(bx(b"idat", b"abcdef"));
            c
        });
        let heif = parse(&f).unwrap();
        assert_eq!(&*heif.item_data(heif.item(1).unwrap()).unwrap(), b"deb");
        // A field size other than 0, 4 or 8.
        let f = file_with(|o| {
            let mut c = standard(o);
            c[3] = full(b"iloc", 0, 0, &[0x34, 0x00, 0, 0]);
            c
        });
        assert!(message(parse(&f)).contains("offset size is 3 bytes"));
    }

    #[test]
    fn no_meta_no_ftyp_and_foreign_handler() {
        assert!(message(parse(&ftyp(b"avif", &[]))).contains("no 'meta' box"));
        assert!(matches!(
            parse(&ftyp(b"avis", &[])),
            Err(Error::Unsupported(_))
        ));
        assert!(message(parse(&bx(b"free", b""))).contains("does not start with an 'ftyp'"));
        let f = file_with(|o| {
            let mut c = standard(o);
            c[0] = full(b"hdlr", 0, 0, &cat(&[&[0; 4], b"vide", &[0; 13]]));
            c
        });
        assert!(message(parse(&f)).contains("handler is 'vide'"));
    }

    #[test]
    fn references_and_properties() {
        let iref = full(
            b"iref",
            0,
            0,
            &cat(&[
                &bx(b"auxl", &[0, 2, 0, 1, 0, 1]),
                &bx(b"dimg", &[0, 1, 0, 3, 0, 2, 0, 3, 0, 4]),
            ]),
        );
        let aux = full(
            b"auxC",
            0,
            0,
            b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha\0",
        );
        let nclx = bx(b"colr", &cat(&[b"nclx", &[0, 12, 0, 13, 0, 6, 0x80]]));
        let f = file_with(|o| {
            let mut c = standard(o);
            c.push(iref.clone());
            c[4] = iprp(
                &[ispe(1, 1), aux.clone(), nclx.clone(), bx(b"irot", &[1])],
                &[(1, &[(1, false), (3, false)]), (2, &[(2, true)])],
            );
            c
        });
        let heif = parse(&f).unwrap();
        assert_eq!(heif.references_to(b"auxl", 1), vec![2]);
        assert_eq!(heif.references_from(b"dimg", 1), vec![2, 3, 4]);
        let alpha = heif.item(2).unwrap();
        let (p, essential) = heif.properties(alpha).next().unwrap();
        assert!(essential);
        assert_eq!(
            p,
            &Property::AuxType(b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha")
        );
        let (p, _) = heif.properties(heif.item(1).unwrap()).nth(1).unwrap();
        assert_eq!(
            p,
            &Property::Nclx(Nclx {
                primaries: 12,
                transfer: 13,
                matrix: 6,
                full_range: true
            })
        );
    }
}
