//! The pass-through frame engine: proves the pipe path (decode → engine → encode) keeps every
//! frame, its order and its timestamp, and measures the path's own cost. Test-only.

use super::{Frame, Upscaler};

#[derive(Debug, Default, Clone, Copy)]
pub struct Identity;

impl Upscaler for Identity {
    fn output_size(&self, width: u32, height: u32) -> (u32, u32) {
        (width, height)
    }

    fn process(&mut self, input: &Frame) -> anyhow::Result<Frame> {
        Ok(input.clone())
    }
}
