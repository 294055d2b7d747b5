//! ncnn model loading and CPU inference for the neural upscalers (Real-ESRGAN, waifu2x,
//! Real-CUGAN and the users' own ncnn models).
//!
//! This module owns everything between the two model files and an upscaled RGB image: the
//! text `.param` parser ([`param`]), the `.bin` weight reader ([`weights`]), the graph
//! executor ([`Net`]), a plain reference implementation of every supported layer, and tiled
//! inference ([`upscale_tiled`]) that runs tiles in parallel with bounded memory (nets that
//! pool the whole frame through `frame_stats`). The fast 3×3 convolution lives in [`fastconv`]
//! and is used when [`Kernels::Fast`] is asked for. Parallelism is across tiles, and inside
//! a layer only when a window has threads to itself (fewer windows than threads): bands of
//! 3×3 output rows, matrix products, a deconvolution's output channels, im2col's channels.

mod error;
pub mod fastconv;
mod frame_stats;
mod layers;
mod net;
pub mod param;
mod pool;
mod resize;
#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testutil;
mod tile;
pub mod weights;

pub use error::ModelError;
pub use net::Net;
pub use resize::resize_bicubic_ncnn;
pub use tile::{TileOptions, tiled_output_shape, upscale_tiled, upscale_tiled_resized};

/// Channel-major activations: `data[c*height*width + y*width + x]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub data: Vec<f32>,
}

impl Tensor {
    /// A tensor of zeros.
    pub fn zeros(channels: usize, height: usize, width: usize) -> Tensor {
        Tensor {
            channels,
            height,
            width,
            data: pool::zeroed(channels * height * width),
        }
    }

    /// A tensor from its data; errors when the length does not match the shape.
    pub fn from_data(
        channels: usize,
        height: usize,
        width: usize,
        data: Vec<f32>,
    ) -> Result<Tensor, ModelError> {
        let tensor = Tensor {
            channels,
            height,
            width,
            data,
        };
        tensor.check()?;
        Ok(tensor)
    }

    /// Pixels per channel.
    pub fn plane_len(&self) -> usize {
        self.height * self.width
    }

    /// One channel's plane.
    pub fn plane(&self, channel: usize) -> &[f32] {
        let len = self.plane_len();
        &self.data[channel * len..(channel + 1) * len]
    }

    /// The shape as (channels, height, width).
    pub fn shape(&self) -> (usize, usize, usize) {
        (self.channels, self.height, self.width)
    }

    /// Checks that the shape is non-empty and matches the data length.
    pub(crate) fn check(&self) -> Result<(), ModelError> {
        let expected = self
            .channels
            .checked_mul(self.height)
            .and_then(|n| n.checked_mul(self.width));
        if self.channels == 0 || self.height == 0 || self.width == 0 {
            return Err(ModelError::Input(format!(
                "the input tensor is empty ({}×{}×{}); give it at least one channel and pixel",
                self.channels, self.height, self.width
            )));
        }
        if expected != Some(self.data.len()) {
            return Err(ModelError::Input(format!(
                "the input tensor says {}×{}×{} but holds {} values",
                self.channels,
                self.height,
                self.width,
                self.data.len()
            )));
        }
        Ok(())
    }
}

/// Which convolution kernels a forward pass uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernels {
    /// The plain implementation of every layer.
    Reference,
    /// [`fastconv::Conv3x3`] for 3×3 stride-1 dilation-1 convolutions (padding 0 or 1), the
    /// reference implementation for everything else.
    Fast,
}
