//! Frame and spectrogram previews for the window (CONTRACTS.md, "preview").
//!
//! TEMPORARY in the `gui` branch: the contract's types and a `PreviewClient` without a worker,
//! which answers every request with an error saying so. The preview branch's `src/preview/`
//! replaces this file whole; the window reaches the client only through
//! `gui::source::PreviewSource`, so nothing else changes at the merge.

use std::collections::VecDeque;
use std::path::PathBuf;

use crate::spectrum::Spectrogram;
use crate::supervisor::WorkerCommand;

#[derive(Debug, Clone, PartialEq)]
pub enum PreviewRequest {
    Frame {
        input: PathBuf,
        frame_index: u64,
        engine: String,
        scale: f64,
        denoise: Option<u8>,
    },
    Overview {
        input: PathBuf,
        width: u32,
        height: u32,
    },
    Spectrogram {
        input: PathBuf,
        start_secs: f64,
        end_secs: f64,
        width: u32,
        height: u32,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct RgbaImage {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PreviewReply {
    Frame {
        before: RgbaImage,
        after: RgbaImage,
        frame_index: u64,
        time_secs: f64,
    },
    /// Repeated as it fills (`columns_done` grows), then complete.
    Overview(Spectrogram),
    Spectrogram(Spectrogram),
    /// Timeout, crash, no audio, bad input: user-facing text.
    Error {
        message: String,
    },
}

/// Owns the preview worker child (here: none, see the module header).
pub struct PreviewClient {
    next_id: u64,
    /// Pending answers with the kind of request they answer.
    replies: VecDeque<(u64, std::mem::Discriminant<PreviewRequest>, PreviewReply)>,
    notify: Box<dyn Fn() + Send + Sync>,
}

impl PreviewClient {
    pub fn new(_worker: WorkerCommand, notify: impl Fn() + Send + Sync + 'static) -> Self {
        Self {
            next_id: 0,
            replies: VecDeque::new(),
            notify: Box::new(notify),
        }
    }

    /// Returns the request's id; supersedes a pending request of the same kind.
    pub fn request(&mut self, req: PreviewRequest) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        let kind = std::mem::discriminant(&req);
        self.replies.retain(|(_, pending, _)| *pending != kind);
        self.replies.push_back((
            id,
            kind,
            PreviewReply::Error {
                message: "previews need the preview worker, which this build does not include"
                    .into(),
            },
        ));
        (self.notify)();
        id
    }

    /// Only answers to current requests.
    pub fn poll(&mut self) -> Vec<(u64, PreviewReply)> {
        self.replies
            .drain(..)
            .map(|(id, _, reply)| (id, reply))
            .collect()
    }

    pub fn worker_pid(&self) -> Option<u32> {
        None
    }

    pub fn shutdown(&mut self) {
        self.replies.clear();
    }
}
