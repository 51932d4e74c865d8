//! AVIF decoding end to end on small files Pillow 13 wrote (`tests/avif/make_fixtures.py`): colours, geometry,
//! alpha, orientation, and what damaged files give.

use kiray_imaging_core::stages::{decode, Decoded, Layout};
use kiray_imaging_core::{render, Error, Fit, Format, Limits, OutputFormat, RenderOptions, Target};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/avif/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn decoded(data: &[u8]) -> Result<Decoded, Error> {
    decode(data, &Limits::default(), &|_, _, _, _| 1)
}

/// The pixel at the centre of each quadrant, RGB(A).
fn quadrant_centres(d: &Decoded) -> Vec<Vec<u8>> {
    let p = &d.pixels;
    let c = p.layout.channels();
    (0..4)
        .map(|i| {
            let x = (i % 2) * p.width as usize / 2 + p.width as usize / 4;
            let y = (i / 2) * p.height as usize / 2 + p.height as usize / 4;
            let at = (y * p.width as usize + x) * c;
            p.data[at..at + c].to_vec()
        })
        .collect()
}

const QUADRANTS: [[u8; 3]; 4] = [[220, 30, 30], [30, 200, 60], [40, 60, 210], [250, 250, 250]];

fn assert_close(got: &[u8], want: &[u8], tolerance: u8, what: &str) {
    for (g, w) in got.iter().zip(want) {
        assert!(
            g.abs_diff(*w) <= tolerance,
            "{what}: got {got:?}, want {want:?}"
        );
    }
}

#[test]
fn subsamplings_decode_to_the_source_colours() {
    for name in [
        "quadrants_420.avif",
        "quadrants_444.avif",
        "quadrants_odd_420.avif",
    ] {
        let d = decoded(&fixture(name)).unwrap();
        assert_eq!(d.format, Format::Avif);
        assert_eq!(d.pixels.layout, Layout::Rgb8, "{name}");
        let expected = if name.contains("odd") {
            (63, 47)
        } else {
            (64, 48)
        };
        assert_eq!((d.stored_width, d.stored_height), expected, "{name}");
        assert_eq!((d.pixels.width, d.pixels.height), expected, "{name}");
        assert_eq!(d.orientation.value(), 1);
        for (got, want) in quadrant_centres(&d).iter().zip(QUADRANTS) {
            assert_close(got, &want, 6, name);
        }
    }
}

#[test]
fn alpha_is_decoded_straight() {
    let d = decoded(&fixture("quadrants_alpha.avif")).unwrap();
    assert_eq!(d.pixels.layout, Layout::Rgba8);
    let centres = quadrant_centres(&d);
    for (got, want) in centres.iter().zip(QUADRANTS).take(3) {
        assert_close(&got[..3], &want, 6, "alpha file");
        assert_eq!(got[3], 255);
    }
    assert_eq!(centres[3][3], 0);
}

#[test]
fn irot_becomes_the_orientation() {
    let d = decoded(&fixture("quadrants_orientation6.avif")).unwrap();
    assert_eq!(d.orientation.value(), 6);
    // Stored as is; the render turns it: 64x48 displayed as 48x64.
    assert_eq!((d.pixels.width, d.pixels.height), (64, 48));
    let options = RenderOptions {
        format: OutputFormat::Jpeg,
        ..RenderOptions::new(Target {
            width: 100,
            height: 100,
            fit: Fit::Inside,
        })
    };
    let r = render(&fixture("quadrants_orientation6.avif"), &options).unwrap();
    assert_eq!((r.width, r.height, r.orientation), (48, 64, 6));
    assert_eq!(r.source_format, Format::Avif);
}

#[test]
fn every_truncation_is_a_typed_error() {
    let data = fixture("quadrants_420.avif");
    for len in 1..data.len() {
        match decoded(&data[..len]) {
            Err(Error::Decode(m)) | Err(Error::Unsupported(m)) => {
                assert!(m.starts_with("AVIF: ") || len < 12, "{len}: {m}")
            }
            other => panic!("length {len}: {:?}", other.map(|d| d.pixels.width)),
        }
    }
}

#[test]
fn corrupt_av1_data_is_a_decode_error() {
    let data = fixture("quadrants_420.avif");
    // Flip bytes in the AV1 payload (the file ends with mdat): an error or a picture, never a panic.
    let mdat = data.windows(4).position(|b| b == b"mdat").unwrap() + 4;
    for (at, flip) in (mdat..data.len()).flat_map(|at| [(at, 0x01), (at, 0x5A), (at, 0xFF)]) {
        let mut bad = data.clone();
        bad[at] ^= flip;
        if let Err(e) = decoded(&bad) {
            assert!(
                matches!(&e, Error::Decode(m) | Error::Unsupported(m) if m.starts_with("AVIF: ")),
                "{e:?}"
            );
        }
    }
}

#[test]
fn ispe_over_the_limits_is_refused_before_decoding() {
    let data = fixture("quadrants_420.avif");
    let limits = Limits {
        max_pixels: 64 * 47,
        ..Limits::default()
    };
    let err = decode(&data, &limits, &|_, _, _, _| 1).err().unwrap();
    assert!(matches!(err, Error::Limit(_)), "{err:?}");
}

/// The AVIF with its ispe rewritten to `w`x`h`.
fn with_ispe(w: u32, h: u32) -> Vec<u8> {
    let mut data = fixture("quadrants_420.avif");
    let at = data.windows(4).position(|b| b == b"ispe").unwrap() + 8;
    data[at..at + 4].copy_from_slice(&w.to_be_bytes());
    data[at + 4..at + 8].copy_from_slice(&h.to_be_bytes());
    data
}

#[test]
fn ispe_must_match_the_av1_picture() {
    // Smaller than the AV1 frame: the decoder's frame-size limit refuses it before allocating.
    let err = decoded(&with_ispe(32, 24)).err().unwrap();
    assert!(
        matches!(&err, Error::Decode(m) if m.contains("larger than the item's 'ispe'")),
        "{err:?}"
    );
    // Larger, or the same area in another shape: the picture is checked against ispe.
    let err = decoded(&with_ispe(48, 64)).err().unwrap();
    assert!(
        matches!(&err, Error::Decode(m) if m.contains("but 'ispe' says 48x64")),
        "{err:?}"
    );
    let err = decoded(&with_ispe(0, 48)).err().unwrap();
    assert!(matches!(err, Error::Decode(_)), "{err:?}");
    let err = decoded(&with_ispe(100_000, 100_000)).err().unwrap();
    assert!(matches!(err, Error::Limit(_)), "{err:?}");
}
