//! Resource limits, always on. Checked against header facts before any pixel buffer is allocated.

use crate::error::{Error, Result};

/// Ceilings for one render. The defaults suit a 1–2 GB Lambda: a 50 MP RGBA frame is 200 MB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted width × height of the stored image. Default: 50 000 000 (e.g. 8660 × 5773).
    pub max_pixels: u64,
    /// Largest accepted encoded input. Default: 50 MiB.
    pub max_input_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_pixels: 50_000_000,
            max_input_bytes: 50 * 1024 * 1024,
        }
    }
}

impl Limits {
    pub fn check_input_len(&self, len: usize) -> Result<()> {
        if len > self.max_input_bytes {
            return Err(Error::Limit(format!(
                "input is {len} bytes, more than the limit of {} bytes",
                self.max_input_bytes
            )));
        }
        Ok(())
    }

    /// Dimensions as declared by a header. Zero sides are corrupt, not merely large.
    pub fn check_dimensions(&self, width: u32, height: u32) -> Result<()> {
        if width == 0 || height == 0 {
            return Err(Error::Decode(format!(
                "image declares a size of {width}x{height}; expected both sides ≥ 1"
            )));
        }
        let pixels = u64::from(width) * u64::from(height);
        if pixels > self.max_pixels {
            return Err(Error::Limit(format!(
                "image is {width}x{height} = {pixels} pixels, more than the limit of {} pixels",
                self.max_pixels
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bomb_dimensions_are_refused_before_allocation() {
        let err = Limits::default()
            .check_dimensions(100_000, 100_000)
            .unwrap_err();
        assert!(matches!(err, Error::Limit(_)), "{err:?}");
    }

    #[test]
    fn zero_side_is_a_decode_error() {
        assert!(matches!(
            Limits::default().check_dimensions(0, 10),
            Err(Error::Decode(_))
        ));
    }

    #[test]
    fn input_length_limit() {
        let limits = Limits {
            max_input_bytes: 10,
            ..Limits::default()
        };
        assert!(limits.check_input_len(10).is_ok());
        assert!(matches!(limits.check_input_len(11), Err(Error::Limit(_))));
    }
}
