//! The fast 3×3 stride-1 convolution used by [`crate::neural::Kernels::Fast`].
//!
//! This version is the interface only, backed by the reference im2col + GEMM convolution so
//! that the engine builds and its fast path is exercised; the Winograd implementation with the
//! same API replaces this file.

use crate::neural::Tensor;
use crate::neural::layers::Act;
use crate::neural::layers::Shape;
use crate::neural::layers::conv::{Conv, Padding};
use std::sync::OnceLock;

/// Activation applied to the convolution's output.
#[derive(Debug, Clone, PartialEq)]
pub enum Activation {
    None,
    Relu,
    LeakyRelu(f32),
    /// Per output channel, or one slope for all.
    Prelu(Vec<f32>),
}

/// A 3×3 convolution with its weights prepared once.
pub struct Conv3x3 {
    conv0: Box<Conv>,
    conv1: Box<Conv>,
    c_in: usize,
    c_out: usize,
    activation: Activation,
}

impl Conv3x3 {
    /// weights: [c_out][c_in][3][3] row-major; bias: c_out (may be empty = zero).
    pub fn new(
        weights: &[f32],
        bias: &[f32],
        c_in: usize,
        c_out: usize,
        activation: Activation,
    ) -> Self {
        let bias = bias.to_vec();
        Conv3x3 {
            conv0: Box::new(square(weights.to_vec(), bias.clone(), c_in, c_out, 0)),
            conv1: Box::new(square(weights.to_vec(), bias, c_in, c_out, 1)),
            c_in,
            c_out,
            activation,
        }
    }

    /// input CHW (c_in×h×w), zero padding `pad` (0 or 1) on every side, stride 1;
    /// output CHW (c_out × (h+2pad-2) × (w+2pad-2)) written into `out` (exact length).
    pub fn run(&self, input: &[f32], h: usize, w: usize, pad: usize, out: &mut [f32]) {
        assert!(pad <= 1, "Conv3x3: pad must be 0 or 1");
        assert_eq!(input.len(), self.c_in * h * w, "Conv3x3: input length");
        assert_eq!(out.len(), self.out_len(h, w, pad), "Conv3x3: output length");
        let x = Tensor {
            channels: self.c_in,
            height: h,
            width: w,
            data: input.to_vec(),
        };
        let shape = Shape {
            c: self.c_out,
            h: h + 2 * pad - 2,
            w: w + 2 * pad - 2,
        };
        let conv = if pad == 0 { &self.conv0 } else { &self.conv1 };
        out.fill(0.0);
        conv.convolve_into(&x, out, shape);
        let plane = shape.h * shape.w;
        match &self.activation {
            Activation::None => {}
            Activation::Relu => out.iter_mut().for_each(|v| *v = v.max(0.0)),
            Activation::LeakyRelu(slope) => out.iter_mut().for_each(|v| {
                if *v < 0.0 {
                    *v *= slope;
                }
            }),
            Activation::Prelu(slopes) => {
                for (c, chunk) in out.chunks_mut(plane.max(1)).enumerate() {
                    let slope = if slopes.len() == 1 {
                        slopes[0]
                    } else {
                        slopes[c]
                    };
                    chunk.iter_mut().for_each(|v| {
                        if *v < 0.0 {
                            *v *= slope;
                        }
                    });
                }
            }
        }
    }

    pub fn out_len(&self, h: usize, w: usize, pad: usize) -> usize {
        let oh = (h + 2 * pad).saturating_sub(2);
        let ow = (w + 2 * pad).saturating_sub(2);
        self.c_out * oh * ow
    }
}

/// A 3×3 stride-1 convolution with zero padding `pad` and no activation.
fn square(weights: Vec<f32>, bias: Vec<f32>, c_in: usize, c_out: usize, pad: usize) -> Conv {
    Conv {
        c_out,
        c_in,
        kernel_w: 3,
        kernel_h: 3,
        dilation_w: 1,
        dilation_h: 1,
        stride_w: 1,
        stride_h: 1,
        padding: Padding::Explicit {
            left: pad,
            right: pad,
            top: pad,
            bottom: pad,
        },
        pad_value: 0.0,
        weights,
        bias,
        act: Act::None,
        fused_prelu: None,
        fast: OnceLock::new(),
    }
}
