//! Reading and writing image files as [`Frame`]s.

use std::path::Path;

use crow_core::model::Millis;
use crow_core::ports::Frame;

use crate::error::{Result, VisionError};

/// Decodes an image file (JPEG, PNG, WebP) into an RGB frame stamped `timestamp`.
/// A missing, corrupt or truncated file is [`VisionError::Image`] naming the file.
pub fn read_image(path: &Path, timestamp: Millis) -> Result<Frame> {
    let bytes = std::fs::read(path).map_err(|e| VisionError::image(path, e))?;
    decode_image(&bytes, timestamp).map_err(|e| match e {
        VisionError::Image { reason, .. } => VisionError::image(path, reason),
        other => other,
    })
}

/// Decodes image bytes (JPEG, PNG, WebP) into an RGB frame stamped `timestamp`.
pub fn decode_image(bytes: &[u8], timestamp: Millis) -> Result<Frame> {
    let img = image::load_from_memory(bytes).map_err(|e| VisionError::image("<memory>", e))?;
    let rgb = img.into_rgb8();
    let (width, height) = rgb.dimensions();
    if width == 0 || height == 0 {
        return Err(VisionError::image("<memory>", "the image is empty"));
    }
    Ok(Frame {
        width,
        height,
        timestamp,
        rgb: rgb.into_raw(),
    })
}
