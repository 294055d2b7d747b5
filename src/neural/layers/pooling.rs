//! Global pooling (ncnn `Pooling` with `global_pooling=1`): each channel to one value, its
//! mean or its maximum, as the squeeze step of a squeeze-and-excitation block. The output is
//! c×1×1, which the following layers broadcast back over the image.

use super::super::param::LayerDecl;
use super::super::{ModelError, Tensor};
use super::{Shape, param_error};

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Pooling {
    GlobalMax,
    GlobalAverage,
}

impl Pooling {
    pub(crate) fn load(decl: &LayerDecl) -> Result<Pooling, ModelError> {
        let kind = decl.int(0, 0)?;
        if decl.int(4, 0)? == 0 {
            return Err(param_error(
                decl,
                "windowed pooling is not supported (only global pooling, parameter 4=1)",
            ));
        }
        match kind {
            0 => Ok(Pooling::GlobalMax),
            1 => Ok(Pooling::GlobalAverage),
            other => Err(param_error(
                decl,
                format!("pooling type {other} is not supported (0 max, 1 average)"),
            )),
        }
    }

    pub(crate) fn out_shape(self, input: Shape) -> Result<Shape, String> {
        if input.h == 0 || input.w == 0 {
            return Err("cannot pool an empty blob".to_string());
        }
        Ok(Shape {
            c: input.c,
            h: 1,
            w: 1,
        })
    }

    pub(crate) fn forward(self, x: &Tensor) -> Tensor {
        let plane = x.plane_len().max(1);
        let data = x
            .data
            .chunks(plane)
            .map(|values| match self {
                Pooling::GlobalMax => values.iter().copied().fold(f32::NEG_INFINITY, f32::max),
                // Summed in f64: a 4K plane has 8 million values.
                Pooling::GlobalAverage => {
                    (values.iter().map(|&v| f64::from(v)).sum::<f64>() / values.len() as f64) as f32
                }
            })
            .collect();
        Tensor {
            channels: x.channels,
            height: 1,
            width: 1,
            data,
        }
    }
}
