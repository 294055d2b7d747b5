//! The desktop window (eframe/egui): a queue of videos, the settings panel, per-step progress,
//! the resume dialog and the activity log. It never waits on a child or on disk: processing
//! runs in the worker owned by [`crate::supervisor`], file scans, file dialogs and saves run on
//! their own threads, and everything comes back through channels read in [`App::logic`].
//!
//! * `state` — what is remembered across restarts (settings, queue);
//! * `command` — what the user asked for; `App::apply` carries it out;
//! * `app` — the application: logic step, worker events, commands;
//! * `panels`, `dialogs`, `preview_ui` — drawing;
//! * `preview` — the preview panel's state: file facts, timeline cursor, zoom, spectrogram
//!   window, requests in flight and their textures;
//! * `source` — the seam to the preview worker ([`PreviewSource`]);
//! * `fonts` — egui's fonts and the system fonts for the scripts they lack (CJK…);
//! * `thumbs` — live thumbnails of running jobs;
//! * `scan`, `persist` — background file discovery and atomic saves.

mod app;
mod command;
mod dialogs;
mod fonts;
mod job_details;
mod panels;
mod persist;
mod preview;
mod preview_ui;
mod preview_view;
mod scan;
mod settings_panel;
mod source;
mod state;
mod thumbs;

use std::path::PathBuf;

pub use app::{App, AppConfig, LogLevel, LogLine};
pub use command::Command;
pub use preview::{
    FRAME_SETTLE_SECS, LayerKind, MediaFacts, PreviewLayout, ProbeState, WINDOW_SETTLE_SECS,
};
pub use preview_view::{FrameView, TimeWindow};
pub use scan::{ResumeOffer, VIDEO_EXTENSIONS};
pub use source::PreviewSource;
pub use state::{Job, JobState, OutputSize, Queue, StepProgress, UserSettings};

/// When [`run`] was called: the first frame's log line says how long the window took.
static RUN_CALLED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// Opens the window with `files` queued and runs until it is closed.
pub fn run(files: Vec<PathBuf>) -> anyhow::Result<()> {
    RUN_CALLED.get_or_init(std::time::Instant::now);
    let config = AppConfig::from_env()?;
    let mut viewport = egui::ViewportBuilder::default();
    match eframe::icon_data::from_png_bytes(include_bytes!("../../assets/icon.png")) {
        Ok(icon) => viewport = viewport.with_icon(std::sync::Arc::new(icon)),
        Err(error) => log::warn!("the window icon could not be decoded: {error}"),
    }
    let options = eframe::NativeOptions {
        viewport: viewport
            .with_title("reframe")
            .with_app_id("reframe")
            .with_inner_size([1200.0, 760.0])
            .with_min_inner_size([880.0, 520.0])
            .with_drag_and_drop(true),
        // The app installs its own system-font fallback (`fonts`), which also says when a
        // script has no font at all.
        system_font_fallback: false,
        ..Default::default()
    };
    eframe::run_native(
        "reframe",
        options,
        Box::new(move |cc| Ok(Box::new(App::new(cc.egui_ctx.clone(), config, files)))),
    )
    .map_err(|error| {
        anyhow::anyhow!(
            "could not open the window ({error}); the GUI needs a graphical session with OpenGL, use `reframe run` without one"
        )
    })
}
