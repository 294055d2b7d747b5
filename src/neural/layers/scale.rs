//! ncnn `Scale`: each channel multiplied by its own factor (and a bias added), the factors
//! read from the weights, or (`scale_data_size` −233) taken from a second blob of one value per
//! channel: the excitation step of waifu2x cunet's squeeze-and-excitation blocks.

use super::super::param::LayerDecl;
use super::super::weights::WeightReader;
use super::super::{ModelError, Tensor};
use super::{Shape, param_error, weights_error};

pub(crate) enum Scale {
    /// Per-channel factors (and biases, or none) from the weights.
    Weights { scale: Vec<f32>, bias: Vec<f32> },
    /// Per-channel factors from the second input blob.
    FromBlob,
}

/// `scale_data_size` meaning "from the second blob".
const FROM_BLOB: i32 = -233;

impl Scale {
    pub(crate) fn load(decl: &LayerDecl, reader: &mut WeightReader) -> Result<Scale, ModelError> {
        let size = decl.int(0, 0)?;
        let bias_term = decl.int(1, 0)? != 0;
        let inputs = decl.bottoms.len();
        if size == FROM_BLOB {
            if bias_term {
                return Err(param_error(
                    decl,
                    "a bias with factors from a blob (scale_data_size −233) is not supported",
                ));
            }
            if inputs != 2 || decl.tops.len() != 1 {
                return Err(param_error(
                    decl,
                    "Scale with factors from a blob takes two input blobs and one output blob",
                ));
            }
            return Ok(Scale::FromBlob);
        }
        let count = usize::try_from(size)
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| param_error(decl, format!("scale_data_size {size} must be positive")))?;
        if inputs != 1 || decl.tops.len() != 1 {
            return Err(param_error(
                decl,
                "Scale takes one input blob and one output blob",
            ));
        }
        let scale = reader
            .read_raw(count, "the scale")
            .map_err(|e| weights_error(decl, e))?;
        let bias = if bias_term {
            reader
                .read_raw(count, "the bias")
                .map_err(|e| weights_error(decl, e))?
        } else {
            Vec::new()
        };
        Ok(Scale::Weights { scale, bias })
    }

    pub(crate) fn out_shape(&self, inputs: &[Shape]) -> Result<Shape, String> {
        let first = *inputs.first().ok_or("has no input blob")?;
        let factors = match self {
            Scale::Weights { scale, .. } => scale.len(),
            Scale::FromBlob => inputs.get(1).ok_or("needs the factors' blob")?.len(),
        };
        if factors != first.c {
            return Err(format!("{factors} factors for {} channels", first.c));
        }
        Ok(first)
    }

    pub(crate) fn forward(
        &self,
        mut x: Tensor,
        factors: Option<&Tensor>,
    ) -> Result<Tensor, String> {
        let (scale, bias): (&[f32], &[f32]) = match self {
            Scale::Weights { scale, bias } => (scale, bias),
            Scale::FromBlob => (&factors.ok_or("needs the factors' blob")?.data, &[]),
        };
        if scale.len() != x.channels {
            return Err(format!(
                "{} factors for {} channels",
                scale.len(),
                x.channels
            ));
        }
        let plane = x.plane_len().max(1);
        for (c, values) in x.data.chunks_mut(plane).enumerate() {
            let (s, b) = (scale[c], bias.get(c).copied().unwrap_or(0.0));
            values.iter_mut().for_each(|v| *v = *v * s + b);
        }
        Ok(x)
    }
}
