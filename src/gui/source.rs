//! The window's only seam to the preview worker: [`PreviewSource`] is what the preview panel
//! needs (send a request, collect current answers), implemented here for the real
//! [`PreviewClient`]. Tests implement it with a fake that records requests and hands back
//! replies, so the window is tested without a worker process.

use crate::preview::{PreviewClient, PreviewReply, PreviewRequest};

/// Something that answers preview requests without blocking the UI thread.
pub trait PreviewSource {
    /// Sends `request` and returns its id; a newer request of the same kind supersedes it.
    fn request(&mut self, request: PreviewRequest) -> u64;
    /// Answers that arrived since the last call (only to current requests).
    fn poll(&mut self) -> Vec<(u64, PreviewReply)>;
    /// Stops whatever runs (the window closes).
    fn shutdown(&mut self);
}

impl PreviewSource for PreviewClient {
    fn request(&mut self, request: PreviewRequest) -> u64 {
        PreviewClient::request(self, request)
    }

    fn poll(&mut self) -> Vec<(u64, PreviewReply)> {
        PreviewClient::poll(self)
    }

    fn shutdown(&mut self) {
        PreviewClient::shutdown(self);
    }
}
