//! Frames from the image files of a directory.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use crow_core::ports::{Frame, FrameSource};

use super::{SourceConfig, SourceKind, index_timestamp, resize_frame};
use crate::error::{Result, VisionError};
use crate::image_io::read_image;

/// The file extensions read, compared without case.
const EXTENSIONS: [&str; 4] = ["jpg", "jpeg", "png", "webp"];

/// The images (`jpg`, `jpeg`, `png`, `webp`) of a directory, sorted by file name, as a finite
/// source.
///
/// Frame `i` is stamped `start_ms + i * 1000 / fps` (`fps` defaults to 1), `i` counting every
/// image file, so a skipped file leaves a gap. A file that does not decode is a
/// [`VisionError::Image`] naming it; the next call goes on with the next file. `width`/`height`
/// resize the frames. The directory is listed when the source is made.
#[derive(Debug)]
pub struct ImageFolderSource {
    files: Vec<PathBuf>,
    next: usize,
    fps: f64,
    start_ms: i64,
    width: Option<u32>,
    height: Option<u32>,
}

impl ImageFolderSource {
    /// Lists the images of the directory `config.uri` (not recursively).
    pub fn new(config: &SourceConfig) -> Result<Self> {
        config.validate()?;
        if !matches!(config.kind, SourceKind::Auto | SourceKind::Folder) {
            return Err(VisionError::config(
                "kind",
                "an image folder source is `folder` or `auto`",
            ));
        }
        let dir = Path::new(&config.uri);
        let entries = std::fs::read_dir(dir).map_err(|e| VisionError::io(dir, e))?;
        let mut files = Vec::new();
        for entry in entries {
            let path = entry.map_err(|e| VisionError::io(dir, e))?.path();
            let is_image = path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)));
            if is_image && path.is_file() {
                files.push(path);
            }
        }
        files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
        if files.is_empty() {
            tracing::warn!(dir = %dir.display(), "no images (jpg, jpeg, png, webp) in the folder");
        }
        Ok(ImageFolderSource {
            files,
            next: 0,
            fps: config.fps.unwrap_or(1.0),
            start_ms: config.start_ms,
            width: config.width,
            height: config.height,
        })
    }

    /// The image files, in the order they are read.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// How many image files are left to read.
    pub fn remaining(&self) -> usize {
        self.files.len() - self.next
    }
}

#[async_trait]
impl FrameSource for ImageFolderSource {
    async fn next_frame(&mut self) -> crow_core::Result<Option<Frame>> {
        let Some(path) = self.files.get(self.next).cloned() else {
            return Ok(None);
        };
        let timestamp = index_timestamp(self.start_ms, self.next as u64, self.fps);
        // Advance first: a corrupt file is reported once, and the next call reads the next file.
        self.next += 1;
        let (width, height) = (self.width, self.height);
        let decode = move || read_image(&path, timestamp).map(|f| resize_frame(f, width, height));
        let frame = match tokio::runtime::Handle::try_current() {
            Ok(handle) => handle
                .spawn_blocking(decode)
                .await
                .map_err(|e| crow_core::Error::Backend(format!("decoding an image: {e}")))?,
            Err(_) => decode(),
        };
        Ok(Some(frame?))
    }
}
