//! Frame and spectrogram previews for the window, computed in a killable child process.
//!
//! The window owns a [`PreviewClient`]; the client owns at most one `reframe worker preview`
//! child and a manager thread that talks to it, so the UI thread never waits on a pipe, a
//! process or a computation. Why a child: a stale computation (the user moved on) is cancelled
//! cooperatively and, if it does not stop within [`CANCEL_GRACE`], killed with its process
//! group — a decoder or a neural engine stuck in a long call can always be stopped, and a crash
//! never takes the window down.
//!
//! * [`client`]: the GUI side: request ids, supersession per kind, timeouts, kill and respawn.
//! * [`worker`]: the child: one lane per kind of request running concurrently, each with
//!   warm caches (probe + frame list per input, a running decoder for frame stepping, engine
//!   instances, the current input's [`crate::spectrum::AudioCache`]).
//! * [`decode`]: the frame lane's state: probes and frame lists, the engine, the way to each
//!   frame ("before" = the decoded frame, "after" = the engine's output).
//! * `fast_path`: frames through the seeker, its frame store and a converter, with prefetching.
//! * `seek`: a warm ffmpeg per input that seeks on command, and the store of decoded frames.
//! * `converter`: the ffmpeg that writes both images of a frame (from the file or raw frames).
//! * `keyframes`: pictures of the keyframes, made in the background, shown at once on a seek.
//! * [`wire`]: the wire format: a JSON header line, then the binary payload it announces.

pub mod client;
mod converter;
pub mod decode;
mod fast_path;
mod keyframes;
mod seek;
pub mod wire;
pub mod worker;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use client::{PreviewClient, PreviewTimeouts, preview_worker_command};

use crate::spectrum::Spectrogram;

/// How long a busy worker gets to stop by itself after a cancel before it is killed.
pub const CANCEL_GRACE: Duration = Duration::from_millis(20);

/// What the window asks for.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum PreviewRequest {
    /// The frame at `frame_index` (presentation order, from 0) before and after the engine.
    Frame {
        input: PathBuf,
        frame_index: u64,
        engine: String,
        scale: f64,
        denoise: Option<u8>,
        /// Folder of the neural engines' model files; `None`: `$REFRAME_MODELS_DIR`, else the
        /// default folder.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        models_dir: Option<PathBuf>,
        /// A keyframe picture is enough (the cursor is being dragged): answered with
        /// [`PreviewReply::FrameApprox`] alone when there is one, else as an exact request.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        approximate: bool,
    },
    /// The whole audio track's spectrogram, streamed as it decodes.
    Overview {
        input: PathBuf,
        width: u32,
        height: u32,
    },
    /// The spectrogram of a time window.
    Spectrogram {
        input: PathBuf,
        start_secs: f64,
        end_secs: f64,
        width: u32,
        height: u32,
    },
}

/// The three kinds of request; a new request supersedes the previous one of its kind only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    Frame,
    Overview,
    Spectrogram,
}

impl RequestKind {
    pub const ALL: [RequestKind; 3] = [
        RequestKind::Frame,
        RequestKind::Overview,
        RequestKind::Spectrogram,
    ];

    pub fn index(self) -> usize {
        match self {
            RequestKind::Frame => 0,
            RequestKind::Overview => 1,
            RequestKind::Spectrogram => 2,
        }
    }
}

impl PreviewRequest {
    pub fn kind(&self) -> RequestKind {
        match self {
            PreviewRequest::Frame { .. } => RequestKind::Frame,
            PreviewRequest::Overview { .. } => RequestKind::Overview,
            PreviewRequest::Spectrogram { .. } => RequestKind::Spectrogram,
        }
    }
}

/// 8-bit RGBA pixels, row-major, `width × height × 4` bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct RgbaImage {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

impl std::fmt::Debug for RgbaImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RgbaImage({}x{}, {} bytes)",
            self.width,
            self.height,
            self.pixels.len()
        )
    }
}

/// What the window gets back, always for the current request of its kind.
#[derive(Debug, Clone, PartialEq)]
pub enum PreviewReply {
    Frame {
        before: RgbaImage,
        after: RgbaImage,
        frame_index: u64,
        time_secs: f64,
    },
    /// The frame alone, ahead of [`PreviewReply::Frame`], while a slow (frame) engine makes
    /// its "after" image; the request is still running.
    FrameBefore {
        before: RgbaImage,
        frame_index: u64,
        time_secs: f64,
    },
    /// A picture to show at once for the frame asked for, plainly approximate: a smaller
    /// picture of the keyframe `picture_index`, not of frame `frame_index`. The exact frame
    /// follows ([`PreviewReply::Frame`]) unless `done` (an approximate request answered).
    FrameApprox {
        picture: RgbaImage,
        /// The size of the frame's exact "before" image.
        display: (u32, u32),
        frame_index: u64,
        picture_index: u64,
        time_secs: f64,
        done: bool,
    },
    /// Repeated as the overview fills (`columns_done` grows), then complete.
    Overview(Spectrogram),
    Spectrogram(Spectrogram),
    /// Timeout, crash, no audio, bad input: user-facing text.
    Error {
        message: String,
    },
}
