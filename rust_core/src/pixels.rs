//! Decoded pixels: interleaved 8-bit sRGB, with or without (straight) alpha.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Rgb8,
    Rgba8,
}

impl Layout {
    pub fn channels(self) -> usize {
        match self {
            Layout::Rgb8 => 3,
            Layout::Rgba8 => 4,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pixels {
    pub width: u32,
    pub height: u32,
    pub layout: Layout,
    pub data: Vec<u8>,
}

impl Pixels {
    pub fn new(width: u32, height: u32, layout: Layout, data: Vec<u8>) -> Self {
        debug_assert_eq!(
            data.len(),
            width as usize * height as usize * layout.channels()
        );
        Self {
            width,
            height,
            layout,
            data,
        }
    }

    /// True when some pixel is not fully opaque; an opaque RGBA image can drop its alpha for free.
    pub fn has_transparency(&self) -> bool {
        self.layout == Layout::Rgba8 && self.data.chunks_exact(4).any(|p| p[3] != 255)
    }
}

/// Expands grey (+alpha) rows to RGB(A), the only layouts the later stages handle.
pub fn grey_to_rgb(grey: &[u8], with_alpha: bool) -> Vec<u8> {
    if with_alpha {
        grey.chunks_exact(2)
            .flat_map(|p| [p[0], p[0], p[0], p[1]])
            .collect()
    } else {
        grey.iter().flat_map(|&g| [g, g, g]).collect()
    }
}
