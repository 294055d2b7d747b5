//! What the window's tests (egui_kittest) share: a private directory per test with the
//! config, cache and videos folders the app is pointed at, and dropping a file on the window.
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
