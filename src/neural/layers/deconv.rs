//! Deconvolution (ncnn `Deconvolution`, a transposed convolution): every input pixel adds
//! its value times the kernel into the output at `(y*stride + ky*dilation, x*stride +
//! kx*dilation)`; the full output is `(in−1)·stride + kernel_extent + output_pad`, then `pad`
//! pixels are cut from each side. Weights are `[c_out][c_in][kh][kw]`, not flipped.
//! Computed as one GEMM per strip of input rows (`[c_out·kh·kw][c_in] × [c_in][pixels]`)
//! followed by a scatter-add.

use rayon::prelude::*;

use super::gemm::sgemm;
use super::{Act, Shape, check_elements};
use crate::neural::ModelError;
use crate::neural::Tensor;
use crate::neural::param::LayerDecl;
use crate::neural::weights::WeightReader;

/// Floats one column strip may hold (16 MiB).
const COL_BUDGET: usize = 1 << 22;

pub(crate) struct Deconv {
    pub c_out: usize,
    pub c_in: usize,
    pub kernel_w: usize,
    pub kernel_h: usize,
    pub dilation_w: usize,
    pub dilation_h: usize,
    pub stride_w: usize,
    pub stride_h: usize,
    pub pad_left: usize,
    pub pad_right: usize,
    pub pad_top: usize,
    pub pad_bottom: usize,
    pub output_pad_right: usize,
    pub output_pad_bottom: usize,
    /// `[c_out·kh·kw][c_in]`: the file's weights transposed for the GEMM.
    weights_t: Vec<f32>,
    bias: Vec<f32>,
    act: Act,
}

impl Deconv {
    pub(crate) fn load(decl: &LayerDecl, reader: &mut WeightReader) -> Result<Deconv, ModelError> {
        let [
            c_out,
            kernel_w,
            kernel_h,
            dilation_w,
            dilation_h,
            stride_w,
            stride_h,
        ] = super::conv::geometry(decl)?;
        let unsupported = |reason: &str| ModelError::Param {
            line: decl.line,
            layer: Some(decl.name.clone()),
            reason: reason.to_string(),
            file: None,
        };
        let pad = |id: i32, default: i32| -> Result<usize, ModelError> {
            let v = decl.int(id, default)?;
            usize::try_from(v)
                .map_err(|_| unsupported("negative (automatic) padding is not supported"))
        };
        let pad_left = pad(4, 0)?;
        let pad_top = pad(14, pad_left as i32)?;
        let pad_right = pad(15, pad_left as i32)?;
        let pad_bottom = pad(16, pad_top as i32)?;
        let output_pad_right = pad(18, 0)?;
        let output_pad_bottom = pad(19, output_pad_right as i32)?;
        if decl.int(20, 0)? != 0 || decl.int(21, 0)? != 0 {
            return Err(unsupported(
                "a fixed output size (parameters 20/21) is not supported",
            ));
        }
        if decl.int(28, 0)? != 0 {
            return Err(unsupported(
                "dynamic weights (parameter 28) are not supported",
            ));
        }
        let act = Act::from_decl(decl)?;
        let area = kernel_w * kernel_h;
        let (weights, bias, c_in) =
            super::conv::load_weights(decl, reader, c_out, area, super::conv::CONV_WEIGHTS)?;
        let mut weights_t = vec![0.0; weights.len()];
        for p in 0..c_out {
            for q in 0..c_in {
                for k in 0..area {
                    weights_t[(p * area + k) * c_in + q] = weights[(p * c_in + q) * area + k];
                }
            }
        }
        Ok(Deconv {
            c_out,
            c_in,
            kernel_w,
            kernel_h,
            dilation_w,
            dilation_h,
            stride_w,
            stride_h,
            pad_left,
            pad_right,
            pad_top,
            pad_bottom,
            output_pad_right,
            output_pad_bottom,
            weights_t,
            bias,
            act,
        })
    }

    /// The output before cutting the padding: (height, width).
    fn full_size(&self, h: usize, w: usize) -> (usize, usize) {
        let ext_w = self.dilation_w * (self.kernel_w - 1) + 1;
        let ext_h = self.dilation_h * (self.kernel_h - 1) + 1;
        (
            (h - 1) * self.stride_h + ext_h + self.output_pad_bottom,
            (w - 1) * self.stride_w + ext_w + self.output_pad_right,
        )
    }

    pub(crate) fn out_shape(&self, input: Shape) -> Result<Shape, String> {
        if input.c != self.c_in {
            return Err(format!(
                "expects {} input channels, got {}",
                self.c_in, input.c
            ));
        }
        let (full_h, full_w) = self.full_size(input.h, input.w);
        check_elements(Shape {
            c: self.c_out,
            h: full_h,
            w: full_w,
        })?;
        let h = full_h.checked_sub(self.pad_top + self.pad_bottom);
        let w = full_w.checked_sub(self.pad_left + self.pad_right);
        match (h, w) {
            (Some(h), Some(w)) if h > 0 && w > 0 => Ok(Shape {
                c: self.c_out,
                h,
                w,
            }),
            _ => Err(format!(
                "input {}×{} is too small for the padding cut; use a larger image or tile",
                input.w, input.h
            )),
        }
    }

    /// The transposed convolution: one matrix product per strip of input rows (split over
    /// `threads` threads of the current rayon pool), each column scattered into its kernel
    /// window (output channels apart on those threads).
    pub(crate) fn forward(&self, x: &Tensor, threads: usize) -> Result<Tensor, String> {
        let out = self.out_shape(Shape::of(x))?;
        let (full_h, full_w) = self.full_size(x.height, x.width);
        let full_plane = full_h * full_w;
        let mut full = vec![0.0f32; self.c_out * full_plane];
        if !self.bias.is_empty() {
            for (p, &b) in self.bias.iter().enumerate() {
                full[p * full_plane..(p + 1) * full_plane].fill(b);
            }
        }
        let area = self.kernel_w * self.kernel_h;
        let rows = self.c_out * area;
        let in_plane = x.height * x.width;
        let rows_per_strip = (COL_BUDGET / (rows * x.width).max(1)).clamp(1, x.height);
        let mut col = vec![0.0f32; rows * rows_per_strip * x.width];
        let mut r0 = 0;
        while r0 < x.height {
            let r1 = (r0 + rows_per_strip).min(x.height);
            let n = (r1 - r0) * x.width;
            let col = &mut col[..rows * n];
            sgemm(
                rows,
                n,
                self.c_in,
                &self.weights_t,
                self.c_in,
                &x.data[r0 * x.width..],
                in_plane,
                col,
                n,
                false,
                threads,
            );
            let col = &*col;
            let scatter = |(p, dst): (usize, &mut [f32])| {
                for ky in 0..self.kernel_h {
                    for kx in 0..self.kernel_w {
                        let src = &col[((p * area) + ky * self.kernel_w + kx) * n..][..n];
                        for i in r0..r1 {
                            let oy = i * self.stride_h + ky * self.dilation_h;
                            let row = &mut dst[oy * full_w..(oy + 1) * full_w];
                            let src_row = &src[(i - r0) * x.width..(i - r0 + 1) * x.width];
                            let ox0 = kx * self.dilation_w;
                            for (j, &v) in src_row.iter().enumerate() {
                                row[ox0 + j * self.stride_w] += v;
                            }
                        }
                    }
                }
            };
            if threads > 1 {
                full.par_chunks_mut(full_plane)
                    .enumerate()
                    .for_each(scatter);
            } else {
                full.chunks_mut(full_plane).enumerate().for_each(scatter);
            }
            r0 = r1;
        }
        let mut y = Tensor::zeros(out.c, out.h, out.w);
        for p in 0..self.c_out {
            for oy in 0..out.h {
                let src =
                    &full[p * full_plane + (oy + self.pad_top) * full_w + self.pad_left..][..out.w];
                y.data[(p * out.h + oy) * out.w..][..out.w].copy_from_slice(src);
            }
        }
        self.act.apply(&mut y.data);
        Ok(y)
    }
}
