//! ncnn `InnerProduct`: a fully connected layer over the whole input blob (flattened in c, h,
//! w order), with bias and a fused activation; the excitation step of a
//! squeeze-and-excitation block. The output is num_output×1×1.

use super::super::param::LayerDecl;
use super::super::weights::WeightReader;
use super::super::{ModelError, Tensor};
use super::conv::{WeightParams, load_weights};
use super::{Act, Shape, param_error};

pub(crate) struct InnerProduct {
    num_output: usize,
    num_input: usize,
    /// `[num_output][num_input]`.
    weights: Vec<f32>,
    /// `num_output` values, or empty.
    bias: Vec<f32>,
    act: Act,
}

impl InnerProduct {
    pub(crate) fn load(
        decl: &LayerDecl,
        reader: &mut WeightReader,
    ) -> Result<InnerProduct, ModelError> {
        let num_output = decl.count(0, 0)?;
        if num_output == 0 {
            return Err(param_error(
                decl,
                "num_output (parameter 0) must be positive",
            ));
        }
        let act = Act::from_decl(decl)?;
        let params = WeightParams {
            size: 2,
            bias_term: 1,
        };
        let (weights, bias, num_input) = load_weights(decl, reader, num_output, 1, params)?;
        Ok(InnerProduct {
            num_output,
            num_input,
            weights,
            bias,
            act,
        })
    }

    pub(crate) fn out_shape(&self, input: Shape) -> Result<Shape, String> {
        if input.len() != self.num_input {
            return Err(format!(
                "takes {} values, the blob has {} ({}×{}×{})",
                self.num_input,
                input.len(),
                input.c,
                input.h,
                input.w
            ));
        }
        Ok(Shape {
            c: self.num_output,
            h: 1,
            w: 1,
        })
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor, String> {
        self.out_shape(Shape::of(x))?;
        let mut data: Vec<f32> = self
            .weights
            .chunks(self.num_input)
            .enumerate()
            .map(|(o, row)| {
                let dot: f32 = row.iter().zip(&x.data).map(|(w, v)| w * v).sum();
                dot + self.bias.get(o).copied().unwrap_or(0.0)
            })
            .collect();
        self.act.apply(&mut data);
        Ok(Tensor {
            channels: self.num_output,
            height: 1,
            width: 1,
            data,
        })
    }
}
