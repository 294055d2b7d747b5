//! Live thumbnails of running jobs: the processing worker reports the path of a small image of
//! the latest finished chunk (`Event::Thumbnail`); it is read and decoded on a thread of its
//! own and becomes a texture shown in the job's queue entry.

use std::collections::HashMap;
use std::path::PathBuf;

use crossbeam_channel::{Receiver, Sender};

use crate::i18n::{Localizer, tr};
use crate::protocol::JobId;

/// The longest side of a thumbnail texture, in pixels.
const MAX_SIDE: u32 = 320;

type Decoded = (JobId, PathBuf, Result<egui::ColorImage, String>);

pub struct Thumbnails {
    tx: Sender<Decoded>,
    rx: Receiver<Decoded>,
    textures: HashMap<JobId, egui::TextureHandle>,
}

impl Thumbnails {
    pub fn new() -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        Self {
            tx,
            rx,
            textures: HashMap::new(),
        }
    }

    /// Reads and decodes `path` off the UI thread; the texture replaces the job's previous one.
    pub fn load(&self, ctx: &egui::Context, job: JobId, path: PathBuf) -> std::io::Result<()> {
        let tx = self.tx.clone();
        let ctx = ctx.clone();
        std::thread::Builder::new()
            .name("gui-thumbnail".into())
            .spawn(move || {
                let result = decode(&path);
                let _ = tx.send((job, path, result));
                ctx.request_repaint();
            })
            .map(|_| ())
    }

    /// Uploads decoded thumbnails; returns the messages of those that could not be read.
    pub fn update(&mut self, ctx: &egui::Context, i18n: &Localizer) -> Vec<String> {
        let mut errors = Vec::new();
        while let Ok((job, path, result)) = self.rx.try_recv() {
            match result {
                Ok(image) => {
                    let texture = ctx.load_texture(
                        format!("thumbnail-{job}"),
                        image,
                        egui::TextureOptions::LINEAR,
                    );
                    self.textures.insert(job, texture);
                }
                Err(error) => errors.push(tr!(
                    i18n,
                    "log-thumbnail-unreadable",
                    error = error,
                    path = path.display().to_string()
                )),
            }
        }
        errors
    }

    pub fn get(&self, job: JobId) -> Option<&egui::TextureHandle> {
        self.textures.get(&job)
    }

    /// Drops the thumbnails of jobs for which `keep` is false (no longer running).
    pub fn retain(&mut self, mut keep: impl FnMut(JobId) -> bool) {
        self.textures.retain(|job, _| keep(*job));
    }
}

fn decode(path: &std::path::Path) -> Result<egui::ColorImage, String> {
    let image = image::open(path).map_err(|error| error.to_string())?;
    let image = if image.width().max(image.height()) > MAX_SIDE {
        image.thumbnail(MAX_SIDE, MAX_SIDE)
    } else {
        image
    };
    let rgba = image.to_rgba8();
    Ok(egui::ColorImage::from_rgba_unmultiplied(
        [rgba.width() as usize, rgba.height() as usize],
        rgba.as_raw(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jpeg_decodes_and_large_ones_shrink() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("thumb.jpg");
        image::RgbImage::from_pixel(640, 360, image::Rgb([10, 200, 30]))
            .save(&path)
            .unwrap();
        let image = decode(&path).unwrap();
        assert_eq!(image.size, [320, 180]);
        assert!(decode(&dir.path().join("missing.jpg")).is_err());
    }
}
