//! The item properties an AVIF decoder reads (`ipco`, ISO/IEC 23008-12 6.5 and 9.3): size, colour, orientation,
//! auxiliary type; every other property is kept by its type, so that an essential one can be refused.

use super::boxes::{boxes, corrupt, BoxRef, Reader};
use super::MAX_PROPERTIES;
use crate::error::Result;

/// `colr` of type `nclx`: the CICP code points (ITU-T H.273).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nclx {
    pub primaries: u16,
    pub transfer: u16,
    pub matrix: u16,
    pub full_range: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Property<'a> {
    /// `ispe`: the image's size.
    Size {
        width: u32,
        height: u32,
    },
    /// `av1C`: the AV1 codec configuration (its config OBUs are repeated in the item data; not needed).
    Av1Config,
    Nclx(Nclx),
    /// `colr` of type `prof` or `rICC`: an ICC profile.
    Icc(&'a [u8]),
    /// `pixi`: bits per channel.
    Pixi,
    /// `irot`: anticlockwise rotation in quarter turns (0–3).
    Rotation(u8),
    /// `imir`: 0 = top and bottom exchanged, 1 = left and right (ISO/IEC 23008-12:2022, 6.5.12).
    Mirror(u8),
    /// `clap`: clean aperture (a crop). Read for what it is, not applied.
    CleanAperture,
    /// `auxC`: the auxiliary type URN of an auxiliary image (alpha, depth, …).
    AuxType(&'a [u8]),
    /// Anything else, kept by type so an essential one can be refused.
    Other([u8; 4]),
}
pub(super) fn parse_ipco<'a>(body: &'a [u8], file: &[u8]) -> Result<Vec<Property<'a>>> {
    let mut properties = Vec::new();
    for b in boxes(body, file) {
        let b = b?;
        if properties.len() >= MAX_PROPERTIES {
            return Err(corrupt(format_args!(
                "more than {MAX_PROPERTIES} properties"
            )));
        }
        properties.push(parse_property(b)?);
    }
    Ok(properties)
}

fn parse_property(b: BoxRef<'_>) -> Result<Property<'_>> {
    let mut r = Reader::new(b.body, "property");
    Ok(match &b.kind {
        b"ispe" => {
            r.full()?;
            Property::Size {
                width: r.u32()?,
                height: r.u32()?,
            }
        }
        b"av1C" => Property::Av1Config,
        b"colr" => match &r.array::<4>()? {
            b"nclx" => {
                let primaries = r.u16()?;
                let transfer = r.u16()?;
                let matrix = r.u16()?;
                let full_range = r.u8()? & 0x80 != 0;
                Property::Nclx(Nclx {
                    primaries,
                    transfer,
                    matrix,
                    full_range,
                })
            }
            b"prof" | b"rICC" => Property::Icc(r.rest()),
            _ => Property::Other(b.kind),
        },
        b"pixi" => Property::Pixi,
        b"irot" => Property::Rotation(r.u8()? & 3),
        b"imir" => Property::Mirror(r.u8()? & 1),
        b"clap" => Property::CleanAperture,
        b"auxC" => {
            r.full()?;
            Property::AuxType(r.cstring())
        }
        _ => Property::Other(b.kind),
    })
}
