//! The HEIF item graph of an AVIF, read from the parsed container (`heif`): which item is the image, what its
//! properties say (size, colour, orientation), which auxiliary item is its alpha, and where a grid's tiles go. Each
//! image item's AV1 data is decoded by `av1` and written into the canvas by `ycbcr`.

use super::av1::decode_av1;
use super::ycbcr::{self, Canvas, Target};
use crate::decode::heif::{corrupt, fourcc, unsupported, Heif, Item, Nclx, Property, Reader};
use crate::error::Result;
use crate::orient::Orientation;

const ALPHA_URNS: [&[u8]; 2] = [
    b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha",
    b"urn:mpeg:hevc:2015:auxid:1",
];

/// A grid has at most 256 x 256 tiles by its syntax; real ones (8K+ images in 512-pixel tiles) have a few hundred.
/// Each tile is a separate decode, so the count bounds the work a tiny hostile file can ask for.
const MAX_TILES: usize = 1024;

/// What the properties of an image item say.
#[derive(Debug, Default)]
pub(super) struct Props<'a> {
    pub(super) size: Option<(u32, u32)>,
    pub(super) nclx: Option<Nclx>,
    pub(super) icc: Option<&'a [u8]>,
    pub(super) rotation: u8,
    pub(super) mirror: Option<u8>,
    aux_type: Option<&'a [u8]>,
}

pub(super) fn props<'a>(heif: &Heif<'a>, item: &Item) -> Result<Props<'a>> {
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

pub(super) fn size_of(item: &Item, p: &Props<'_>) -> Result<(u32, u32)> {
    p.size.ok_or_else(|| {
        corrupt(format_args!(
            "item {} has no 'ispe' (image size) property",
            item.id
        ))
    })
}

/// `irot` (anticlockwise quarter turns) then `imir` (0: top and bottom exchanged, 1: left and right) as the EXIF
/// orientation that displays the same: EXIF 8 is "rotate 90° anticlockwise to display", 4 "flip top to bottom".
pub(super) fn orientation(rotation: u8, mirror: Option<u8>) -> Orientation {
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

/// The primary item (`pitm`), which must be an AV1 image or a grid of them.
pub(super) fn primary<'h>(heif: &'h Heif<'_>) -> Result<&'h Item> {
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
    Ok(primary)
}

/// The alpha plane's item: auxiliary (`auxl`) to the image, with an alpha `auxC` type.
pub(super) fn find_alpha<'h>(heif: &'h Heif<'_>, image: u32) -> Result<Option<&'h Item>> {
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

/// Whether the image's colour was premultiplied by its alpha (a `prem` reference from the image to the alpha).
pub(super) fn premultiplied(heif: &Heif<'_>, image: &Item, alpha: &Item) -> bool {
    heif.references_from(b"prem", image.id).contains(&alpha.id)
}

/// Decodes an image item (AV1, or a grid of AV1 tiles) into `out`.
pub(super) fn render_item(
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
        return ycbcr::write(&picture, canvas, out, 0, 0, target);
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
        ycbcr::write(&picture, canvas, out, column * tw, row * th, target)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

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
