//! What the Rust integration tests and the benches share (`mod support;` in a test, `#[path]` in a bench): the boxes
//! of the two presets the functions render, as `python/kiray_imaging/presets.py` defines them.

use kiray_imaging_core::{Fit, Target};

/// The thumbnail preset: a 400x300 card, cropped to fill.
pub const THUMBNAIL: Target = Target {
    width: 400,
    height: 300,
    fit: Fit::Cover,
};

/// The medium preset: the whole photo inside 1280x1280.
pub const MEDIUM: Target = Target {
    width: 1280,
    height: 1280,
    fit: Fit::Inside,
};
