//! The JPEG header's markers, read straight from the bytes: EXIF orientation (APP1), the ICC profile (APP2 chunks),
//! Adobe's CMYK flag (APP14) and whether the frame is progressive (SOF2).

use crate::orient::{orientation_from_exif, Orientation};

const APP1: u8 = 0xE1;
const APP2: u8 = 0xE2;
const APP14: u8 = 0xEE;
/// Start of frame, progressive Huffman coding.
const SOF2: u8 = 0xC2;

/// The markers this decoder keeps: EXIF (orientation), ICC (colour), Adobe (how CMYK is stored) and whether the
/// frame is progressive (SOF2: the DC scans alone can make a 1/8 image).
pub(super) struct Markers {
    pub(super) orientation: Orientation,
    pub(super) adobe: bool,
    pub(super) icc: Option<Vec<u8>>,
    pub(super) progressive: bool,
}

/// Reassembles an ICC profile split over APP2 `ICC_PROFILE` chunks (each numbered i of n). Anything
/// inconsistent — a missing or repeated chunk, disagreeing counts — means no profile rather than a wrong one.
fn assemble_icc(chunks: &[(u8, u8, &[u8])]) -> Option<Vec<u8>> {
    let count = chunks.first()?.1;
    if count == 0 || chunks.len() != usize::from(count) || chunks.iter().any(|c| c.1 != count) {
        return None;
    }
    let mut ordered: Vec<Option<&[u8]>> = vec![None; usize::from(count)];
    for &(seq, _, data) in chunks {
        let slot = ordered.get_mut(usize::from(seq).checked_sub(1)?)?;
        if slot.replace(data).is_some() {
            return None;
        }
    }
    let parts: Vec<&[u8]> = ordered.into_iter().collect::<Option<_>>()?;
    // Measured before concatenating: a 16 MB chain of chunks is refused without being copied.
    let size: usize = parts.iter().map(|p| p.len()).sum();
    (size <= crate::colour::MAX_PROFILE_BYTES).then(|| parts.concat())
}

/// Reads the metadata segments before the first scan straight from the bytes, walking segment lengths the way
/// libjpeg does (skipping stray bytes and fill 0xFFs before a marker), in one linear pass that copies nothing but
/// the ICC profile. Not `jpeg_save_markers`: libjpeg appends each saved marker by walking its list from the head,
/// so a 500 KB upload of 100 000 one-byte APP1 segments kept it busy for minutes (quadratic); unsaved, it skips
/// them in constant time each. A segment cut short by the end of the data is left to libjpeg to report.
pub(super) fn read_markers(data: &[u8]) -> Markers {
    let mut markers = Markers {
        orientation: Orientation::NORMAL,
        adobe: false,
        icc: None,
        progressive: false,
    };
    let mut exif_seen = false;
    let mut icc_chunks = Vec::new();
    // From after SOI. The next marker is the byte after a run of 0xFF; anything before the run is garbage libjpeg
    // also skips.
    let mut at = 2;
    while let Some(ff) = data
        .get(at..)
        .and_then(|rest| rest.iter().position(|&b| b == 0xFF))
    {
        at += ff;
        while data.get(at) == Some(&0xFF) {
            at += 1;
        }
        let Some(&marker) = data.get(at) else { break };
        at += 1;
        match marker {
            0xDA | 0xD9 => break,                  // SOS, EOI: the header is over
            0x00 | 0x01 | 0xD0..=0xD8 => continue, // stuffed zero, TEM, RSTn, SOI: no length follows
            _ => {}
        }
        let Some(&[hi, lo]) = data.get(at..at + 2) else {
            break;
        };
        let length = usize::from(u16::from_be_bytes([hi, lo]));
        let Some(payload) = length
            .checked_sub(2)
            .and_then(|n| data.get(at + 2..at + 2 + n))
        else {
            break;
        };
        at += length;
        if marker == APP1 && !exif_seen && payload.starts_with(b"Exif\0\0") {
            // Only the first EXIF block counts (later APP1s may be XMP or a thumbnail's EXIF).
            markers.orientation = orientation_from_exif(payload);
            exif_seen = true;
        } else if marker == APP2 && payload.len() >= 14 && payload.starts_with(b"ICC_PROFILE\0") {
            // A profile has at most 255 chunks; past that the file is not a real one, and collecting stops.
            if icc_chunks.len() <= 255 {
                icc_chunks.push((payload[12], payload[13], &payload[14..]));
            }
        } else if marker == APP14 && payload.starts_with(b"Adobe") {
            markers.adobe = true;
        } else if marker == SOF2 {
            markers.progressive = true;
        }
    }
    markers.icc = assemble_icc(&icc_chunks);
    markers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_read_from_the_header_only() {
        let app1 = |payload: &[u8]| {
            let mut s = vec![0xFF, 0xE1];
            s.extend_from_slice(&(payload.len() as u16 + 2).to_be_bytes());
            s.extend_from_slice(payload);
            s
        };
        let exif = |value: u8| {
            let mut v = b"Exif\0\0II*\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0".to_vec();
            v.extend_from_slice(&[value, 0, 0, 0]);
            v
        };
        let mut data = vec![0xFF, 0xD8];
        // Garbage and fill bytes before a marker are stepped over, as libjpeg does.
        data.extend_from_slice(b"junk\xFF\xFF");
        data.extend(app1(&exif(6))[1..].iter());
        data.extend(app1(&exif(3)));
        data.extend_from_slice(&[0xFF, 0xDA, 0, 2]);
        data.extend(app1(&exif(8)));
        let markers = read_markers(&data);
        assert_eq!(markers.orientation.value(), 6);
        assert!(!markers.adobe && markers.icc.is_none());
        // Cut short: nothing read, nothing panics.
        for end in 0..data.len() {
            let _ = read_markers(&data[..end]);
        }
    }
}
