//! What the window's tests (egui_kittest) share: a private directory per test with the
//! config, cache and videos folders the app is pointed at, test clips, and dropping a file on
//! the window.
//!
//! Every test file uses only part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use egui_kittest::Harness;

/// A temp dir with `config/`, `cache/` and `videos/`, removed when dropped.
pub struct TestDirs {
    dir: tempfile::TempDir,
}

impl TestDirs {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        for sub in ["config", "cache", "videos"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("a test dir");
        }
        Self { dir }
    }

    pub fn path(&self, sub: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(sub)
    }

    pub fn config_dir(&self) -> PathBuf {
        self.path("config")
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.path("cache")
    }

    pub fn sessions_root(&self) -> PathBuf {
        self.cache_dir().join("sessions")
    }

    pub fn videos(&self) -> PathBuf {
        self.path("videos")
    }

    /// `videos/<name>`: `seconds` of ffmpeg's lavfi test pattern at `size` (`WxH`), 24 fps,
    /// H.264, no audio.
    pub fn pattern_clip(&self, name: &str, seconds: u32, size: &str) -> PathBuf {
        let path = self.videos().join(name);
        let status = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-f", "lavfi", "-i"])
            .arg(format!("testsrc=size={size}:rate=24"))
            .args(["-t", &seconds.to_string()])
            .args(["-pix_fmt", "yuv420p", "-c:v", "libx264"])
            .arg(&path)
            .status()
            .expect("ffmpeg runs");
        assert!(
            status.success(),
            "ffmpeg could not make the test clip {name}"
        );
        path
    }
}

/// A file dropped on the window.
#[derive(Debug)]
pub struct DroppedPath(pub PathBuf);

impl egui::DroppedFile for DroppedPath {
    fn path(&self) -> &Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

/// Drops `path` on the window and lets it see the drop.
pub fn drop_file<S>(harness: &mut Harness<'static, S>, path: &Path) {
    harness
        .input_mut()
        .dropped_files
        .push(Arc::new(DroppedPath(path.to_owned())));
    harness.step();
}
