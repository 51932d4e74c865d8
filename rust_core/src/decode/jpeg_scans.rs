//! A progressive JPEG's DC scans on their own, for a decode at 1/8 scale.
//!
//! At 1/8 libjpeg turns each 8×8 block into one pixel from its DC coefficient alone (a 1×1 IDCT), yet it still
//! entropy-decodes every AC scan first: for a thumbnail of a large progressive photo that is most of the time. The
//! scans are delimited by markers, so the AC scans can be dropped without decoding them. The exception is chroma
//! that libjpeg scales up by IDCT rather than upsampling (4:2:0 chroma gets a 2×2 IDCT, which uses AC
//! coefficients): those components keep their AC scans. The result is a valid progressive JPEG (every header and
//! table segment, the scans kept, EOI) whose 1/8 decode is identical to the whole file's.

const SOI: [u8; 2] = [0xFF, 0xD8];
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;
/// SOF2: progressive, Huffman-coded. Only this process has separate DC scans to keep.
const SOF_PROGRESSIVE: u8 = 0xC2;

/// `data` without the AC scans a 1/8 decode does not read, or `None` when the stream is not a progressive JPEG
/// whose segments and scans can be walked from SOI to EOI, or has more than `max_scans` scans. `None` means "decode
/// the whole file", which reports whatever is wrong with it: truncated and damaged files, and scan bombs, get the
/// same error as before, whichever rendition is asked for.
pub fn dc_only(data: &[u8], max_scans: usize) -> Option<Vec<u8>> {
    if !data.starts_with(&SOI) {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() / 4);
    out.extend_from_slice(&SOI);
    let (mut at, mut dc_scans, mut scans) = (SOI.len(), 0usize, 0usize);
    // The ids of the components whose 1/8 decode reads only DC coefficients, from SOF2 (None until it is seen).
    let mut dc_only_components: Option<Vec<u8>> = None;
    loop {
        // Between segments only a marker may follow (after optional 0xFF fill bytes).
        if *data.get(at)? != 0xFF {
            return None;
        }
        while data.get(at) == Some(&0xFF) {
            at += 1;
        }
        let marker = *data.get(at)?;
        at += 1;
        match marker {
            EOI => {
                out.extend_from_slice(&[0xFF, EOI]);
                return (dc_only_components.is_some() && dc_scans > 0).then_some(out);
            }
            // A standalone marker (TEM, RSTn, SOI) between segments: not a stream this walk understands.
            0x00 | 0x01 | 0xD0..=0xD8 => return None,
            _ => {}
        }
        let length = usize::from(u16::from_be_bytes([*data.get(at)?, *data.get(at + 1)?]));
        let segment = data.get(at..at.checked_add(length)?)?;
        if length < 2 {
            return None;
        }
        at += length;
        if marker == SOF_PROGRESSIVE {
            dc_only_components = Some(components_read_as_dc_only(segment)?);
        }
        if marker != SOS {
            out.extend_from_slice(&[0xFF, marker]);
            out.extend_from_slice(segment);
            continue;
        }
        // SOS: length, Ns, Ns × (component, tables), Ss, Se, Ah/Al; then entropy-coded data up to the next marker.
        let dc_only = dc_only_components.as_deref()?;
        scans += 1;
        if scans > max_scans {
            return None;
        }
        let count = usize::from(*segment.get(2)?);
        let components = segment.get(3..3 + 2 * count)?.chunks_exact(2).map(|c| c[0]);
        let spectral_start = *segment.get(3 + 2 * count)?;
        let end = at + entropy_len(data.get(at..)?)?;
        let unused_at_an_eighth =
            spectral_start > 0 && components.clone().all(|id| dc_only.contains(&id));
        if !unused_at_an_eighth {
            out.extend_from_slice(&[0xFF, SOS]);
            out.extend_from_slice(segment);
            out.extend_from_slice(&data[at..end]);
            dc_scans += usize::from(spectral_start == 0);
        }
        at = end;
    }
}

/// From an SOF segment (length, P, Y, X, Nf, Nf × (id, H/V sampling, table)): the ids of the components that a
/// 1/8 decode reads through a 1×1 IDCT, i.e. from their DC coefficients only.
fn components_read_as_dc_only(segment: &[u8]) -> Option<Vec<u8>> {
    let count = usize::from(*segment.get(7)?);
    let components: Vec<(u8, u32, u32)> = segment
        .get(8..8 + 3 * count)?
        .chunks_exact(3)
        .map(|c| (c[0], u32::from(c[1] >> 4), u32::from(c[1] & 0x0F)))
        .collect();
    if components.iter().any(|&(_, h, v)| h == 0 || v == 0) {
        return None;
    }
    let max_h = components.iter().map(|&(_, h, _)| h).max()?;
    let max_v = components.iter().map(|&(_, _, v)| v).max()?;
    Some(
        components
            .iter()
            .filter(|&&(_, h, v)| idct_size_at_an_eighth(h, v, max_h, max_v) == 1)
            .map(|&(id, _, _)| id)
            .collect(),
    )
}

/// The IDCT size libjpeg(-turbo) gives a component at scale 1/8 (jdmaster.c, `jpeg_core_output_dimensions`): it
/// doubles the frame's 1×1 while the component's subsampling still divides evenly, scaling chroma up by IDCT instead
/// of upsampling it.
fn idct_size_at_an_eighth(h: u32, v: u32, max_h: u32, max_v: u32) -> u32 {
    let mut size = 1;
    while size < 8 && max_h % (h * size * 2) == 0 && max_v % (v * size * 2) == 0 {
        size *= 2;
    }
    size
}

/// The length of entropy-coded data: up to the first 0xFF that starts a marker. Inside the data 0xFF is followed
/// by a stuffed 0x00 or is a restart marker (RST0–RST7), both part of the scan.
fn entropy_len(data: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        at += data.get(at..)?.iter().position(|&b| b == 0xFF)?;
        match *data.get(at + 1)? {
            0x00 | 0xD0..=0xD7 => at += 2,
            _ => return Some(at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dc_only_(data: &[u8]) -> Option<Vec<u8>> {
        dc_only(data, 100)
    }

    fn segment(marker: u8, payload: &[u8]) -> Vec<u8> {
        let mut s = vec![0xFF, marker];
        s.extend_from_slice(&(payload.len() as u16 + 2).to_be_bytes());
        s.extend_from_slice(payload);
        s
    }

    /// SOS for component 1 (luma) with spectral selection `ss..=se`, then `entropy`.
    fn scan(ss: u8, se: u8, entropy: &[u8]) -> Vec<u8> {
        scan_of(1, ss, se, entropy)
    }

    fn scan_of(component: u8, ss: u8, se: u8, entropy: &[u8]) -> Vec<u8> {
        let mut s = segment(SOS, &[1, component, 0x00, ss, se, 0x00]);
        s.extend_from_slice(entropy);
        s
    }

    /// A 4:2:0 frame: component 1 at 2×2, components 2 and 3 at 1×1.
    fn stream(sof: u8, scans: &[Vec<u8>], eoi: bool) -> Vec<u8> {
        let mut s = SOI.to_vec();
        s.extend(segment(0xDB, &[0; 65]));
        s.extend(segment(
            sof,
            &[8, 0, 16, 0, 16, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1],
        ));
        for sc in scans {
            s.extend_from_slice(sc);
        }
        if eoi {
            s.extend_from_slice(&[0xFF, EOI]);
        }
        s
    }

    #[test]
    fn keeps_headers_and_dc_scans_and_drops_ac_scans() {
        // Stuffed 0xFF00 and a restart marker stay inside their scan.
        let dc = scan(0, 0, &[1, 2, 0xFF, 0x00, 3, 0xFF, 0xD0, 4]);
        let ac = scan(1, 63, &[9; 100]);
        let refine = scan(0, 0, &[5, 6]);
        let full = stream(SOF_PROGRESSIVE, &[dc.clone(), ac, refine.clone()], true);
        let expected = stream(SOF_PROGRESSIVE, &[dc, refine], true);
        assert_eq!(dc_only_(&full), Some(expected));
    }

    #[test]
    fn idct_sizes_follow_libjpeg() {
        // 4:2:0: luma 1×1, chroma 2×2; 4:2:2 and 4:4:4: every component 1×1; 4:1:1 (H 4, V 1): the vertical test
        // refuses chroma, so 1×1; 4:1:0 (H 4, V 4): chroma 4×4.
        assert_eq!(idct_size_at_an_eighth(2, 2, 2, 2), 1);
        assert_eq!(idct_size_at_an_eighth(1, 1, 2, 2), 2);
        assert_eq!(idct_size_at_an_eighth(1, 1, 2, 1), 1);
        assert_eq!(idct_size_at_an_eighth(1, 1, 1, 1), 1);
        assert_eq!(idct_size_at_an_eighth(1, 1, 4, 1), 1);
        assert_eq!(idct_size_at_an_eighth(1, 1, 4, 4), 4);
    }

    #[test]
    fn subsampled_chroma_keeps_its_ac_scans() {
        // At 1/8 4:2:0 chroma goes through a 2x2 IDCT, which uses AC coefficients.
        let dc = scan(0, 0, &[1]);
        let chroma_ac = scan_of(2, 1, 63, &[2; 10]);
        let luma_ac = scan(1, 5, &[3; 50]);
        let full = stream(
            SOF_PROGRESSIVE,
            &[dc.clone(), chroma_ac.clone(), luma_ac],
            true,
        );
        assert_eq!(
            dc_only_(&full),
            Some(stream(SOF_PROGRESSIVE, &[dc, chroma_ac], true))
        );
    }

    #[test]
    fn anything_but_a_complete_progressive_stream_is_declined() {
        let dc = scan(0, 0, &[1, 2, 3]);
        // Baseline: its one scan is 0..63, there is nothing to leave out.
        assert_eq!(dc_only_(&stream(0xC0, &[scan(0, 63, &[1])], true)), None);
        // No EOI (truncated), and every shorter prefix: the whole file is decoded and reports the damage.
        let full = stream(SOF_PROGRESSIVE, &[dc.clone(), scan(1, 5, &[7; 20])], true);
        for end in 0..full.len() {
            assert_eq!(dc_only_(&full[..end]), None, "prefix of {end} bytes");
        }
        // More scans than allowed: left to the whole-file decode, which refuses them.
        let three = stream(
            SOF_PROGRESSIVE,
            &[dc.clone(), scan(1, 5, &[7]), scan(6, 63, &[7])],
            true,
        );
        assert!(dc_only(&three, 3).is_some());
        assert_eq!(dc_only(&three, 2), None);
        // No DC scan at all, or garbage between segments.
        assert_eq!(
            dc_only_(&stream(SOF_PROGRESSIVE, &[scan(1, 5, &[7])], true)),
            None
        );
        let mut garbage = stream(SOF_PROGRESSIVE, &[dc], true);
        garbage.insert(2, b'x');
        assert_eq!(dc_only_(&garbage), None);
    }
}
