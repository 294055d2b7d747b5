//! Convolution (ncnn `Convolution`): any kernel size, stride, dilation and padding, optional
//! bias, fused activation. The reference path lowers row strips of the output to a matrix
//! product (im2col, then one GEMM per strip) so memory stays bounded; the fast path hands
//! 3×3 stride-1 convolutions to [`crate::neural::fastconv::Conv3x3`].

use std::sync::OnceLock;

use rayon::prelude::*;

use super::gemm::sgemm;
use super::{Act, Shape, check_elements};
use crate::neural::Tensor;
use crate::neural::fastconv::{Activation, Conv3x3, Pads};
use crate::neural::param::LayerDecl;
use crate::neural::weights::WeightReader;
use crate::neural::{ModelError, layers::weights_error};

/// Floats one im2col strip may hold (16 MiB).
const COL_BUDGET: usize = 1 << 22;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Padding {
    Explicit {
        left: usize,
        right: usize,
        top: usize,
        bottom: usize,
    },
    /// ncnn pad −233: TensorFlow "SAME", the odd pixel at the end.
    SameUpper,
    /// ncnn pad −234: "SAME", the odd pixel at the start.
    SameLower,
}

pub(crate) struct Conv {
    pub c_out: usize,
    pub c_in: usize,
    pub kernel_w: usize,
    pub kernel_h: usize,
    pub dilation_w: usize,
    pub dilation_h: usize,
    pub stride_w: usize,
    pub stride_h: usize,
    pub padding: Padding,
    pub pad_value: f32,
    /// `[c_out][c_in][kernel_h][kernel_w]`.
    pub weights: Vec<f32>,
    /// `c_out` values, or empty (no bias).
    pub bias: Vec<f32>,
    pub act: Act,
    /// Slopes of a PReLU layer fused into the fast path (set when the net is built).
    pub fused_prelu: Option<Vec<f32>>,
    /// The fast kernel, prepared on first use.
    pub fast: OnceLock<Conv3x3>,
}

fn positive(decl: &LayerDecl, id: i32, default: usize, what: &str) -> Result<usize, ModelError> {
    let v = decl.count(id, default)?;
    if v == 0 {
        return Err(ModelError::Param {
            line: decl.line,
            layer: Some(decl.name.clone()),
            reason: format!("{what} (parameter {id}) must be positive"),
            file: None,
        });
    }
    Ok(v)
}

/// Kernel geometry shared by Convolution and Deconvolution: (num_output, kernel w/h,
/// dilation w/h, stride w/h).
pub(crate) fn geometry(decl: &LayerDecl) -> Result<[usize; 7], ModelError> {
    let num_output = positive(decl, 0, 0, "num_output")?;
    let kernel_w = positive(decl, 1, 0, "kernel_w")?;
    let kernel_h = positive(decl, 11, kernel_w, "kernel_h")?;
    let dilation_w = positive(decl, 2, 1, "dilation_w")?;
    let dilation_h = positive(decl, 12, dilation_w, "dilation_h")?;
    let stride_w = positive(decl, 3, 1, "stride_w")?;
    let stride_h = positive(decl, 13, stride_w, "stride_h")?;
    if kernel_w > 1024 || kernel_h > 1024 || dilation_w > 1024 || dilation_h > 1024 {
        return Err(ModelError::Param {
            line: decl.line,
            layer: Some(decl.name.clone()),
            reason: "kernel size or dilation larger than 1024".to_string(),
            file: None,
        });
    }
    Ok([
        num_output, kernel_w, kernel_h, dilation_w, dilation_h, stride_w, stride_h,
    ])
}

/// Where a layer's `.param` line keeps its `weight_data_size` and `bias_term` (int8 is
/// parameter 8 in every layer that has weights).
#[derive(Clone, Copy)]
pub(crate) struct WeightParams {
    pub size: i32,
    pub bias_term: i32,
}

/// Convolution's and Deconvolution's.
pub(crate) const CONV_WEIGHTS: WeightParams = WeightParams {
    size: 6,
    bias_term: 5,
};

/// Reads `weight_data_size` tagged weights and, with `bias_term`, `num_output` raw biases;
/// returns (weights, bias, inputs per output and kernel position).
pub(crate) fn load_weights(
    decl: &LayerDecl,
    reader: &mut WeightReader,
    num_output: usize,
    kernel_area: usize,
    params: WeightParams,
) -> Result<(Vec<f32>, Vec<f32>, usize), ModelError> {
    let weight_count = decl.count(params.size, 0)?;
    let per_input = num_output * kernel_area;
    if weight_count == 0 || per_input == 0 || weight_count % per_input != 0 {
        return Err(ModelError::Param {
            line: decl.line,
            layer: Some(decl.name.clone()),
            reason: format!(
                "weight_data_size {weight_count} is not a positive multiple of num_output × \
                 kernel area ({per_input})"
            ),
            file: None,
        });
    }
    if decl.int(8, 0)? != 0 {
        return Err(ModelError::Param {
            line: decl.line,
            layer: Some(decl.name.clone()),
            reason: "int8 quantized layers are not supported; use the fp16 or fp32 model"
                .to_string(),
            file: None,
        });
    }
    let weights = reader
        .read_tagged(weight_count, "the weights")
        .map_err(|e| weights_error(decl, e))?;
    let bias = if decl.int(params.bias_term, 0)? != 0 {
        reader
            .read_raw(num_output, "the bias")
            .map_err(|e| weights_error(decl, e))?
    } else {
        Vec::new()
    };
    Ok((weights, bias, weight_count / per_input))
}

impl Conv {
    pub(crate) fn load(decl: &LayerDecl, reader: &mut WeightReader) -> Result<Conv, ModelError> {
        let [
            c_out,
            kernel_w,
            kernel_h,
            dilation_w,
            dilation_h,
            stride_w,
            stride_h,
        ] = geometry(decl)?;
        let pad_left = decl.int(4, 0)?;
        let pad_top = decl.int(14, pad_left)?;
        let pad_right = decl.int(15, pad_left)?;
        let pad_bottom = decl.int(16, pad_top)?;
        let padding = match (pad_left, pad_right, pad_top, pad_bottom) {
            (l, r, t, b) if l >= 0 && r >= 0 && t >= 0 && b >= 0 => Padding::Explicit {
                left: l as usize,
                right: r as usize,
                top: t as usize,
                bottom: b as usize,
            },
            (-233, -233, -233, -233) => Padding::SameUpper,
            (-234, -234, -234, -234) => Padding::SameLower,
            _ => {
                return Err(ModelError::Param {
                    line: decl.line,
                    layer: Some(decl.name.clone()),
                    reason: format!(
                        "unsupported padding {pad_left},{pad_right},{pad_top},{pad_bottom} \
                         (non-negative, or all −233 / −234)"
                    ),
                    file: None,
                });
            }
        };
        if decl.int(19, 0)? != 0 {
            return Err(ModelError::Param {
                line: decl.line,
                layer: Some(decl.name.clone()),
                reason: "dynamic weights (parameter 19) are not supported".to_string(),
                file: None,
            });
        }
        let pad_value = decl.float(18, 0.0)?;
        let act = Act::from_decl(decl)?;
        let (weights, bias, c_in) =
            load_weights(decl, reader, c_out, kernel_w * kernel_h, CONV_WEIGHTS)?;
        Ok(Conv {
            c_out,
            c_in,
            kernel_w,
            kernel_h,
            dilation_w,
            dilation_h,
            stride_w,
            stride_h,
            padding,
            pad_value,
            weights,
            bias,
            act,
            fused_prelu: None,
            fast: OnceLock::new(),
        })
    }

    fn extent(&self) -> (usize, usize) {
        (
            self.dilation_w * (self.kernel_w - 1) + 1,
            self.dilation_h * (self.kernel_h - 1) + 1,
        )
    }

    /// How many input pixels beyond an output pixel's own position it can read, on any side
    /// (the kernel reach given the padding, plus stride misalignment).
    pub(crate) fn reach(&self) -> usize {
        let (ext_w, ext_h) = self.extent();
        let side = |pad: usize, ext: usize| pad.max((ext - 1).saturating_sub(pad));
        let pads = match self.padding {
            Padding::Explicit {
                left,
                right,
                top,
                bottom,
            } => side(left, ext_w)
                .max(side(right, ext_w))
                .max(side(top, ext_h))
                .max(side(bottom, ext_h)),
            Padding::SameUpper | Padding::SameLower => ext_w.max(ext_h) - 1,
        };
        pads + self.stride_w.max(self.stride_h) - 1
    }

    /// (top, bottom, left, right) padding for an input of this size.
    fn pads(&self, h: usize, w: usize) -> (usize, usize, usize, usize) {
        let (ext_w, ext_h) = self.extent();
        let same = |size: usize, ext: usize, stride: usize| {
            (ext + (size.saturating_sub(1)) / stride * stride).saturating_sub(size)
        };
        match self.padding {
            Padding::Explicit {
                left,
                right,
                top,
                bottom,
            } => (top, bottom, left, right),
            Padding::SameUpper => {
                let (wp, hp) = (same(w, ext_w, self.stride_w), same(h, ext_h, self.stride_h));
                (hp / 2, hp - hp / 2, wp / 2, wp - wp / 2)
            }
            Padding::SameLower => {
                let (wp, hp) = (same(w, ext_w, self.stride_w), same(h, ext_h, self.stride_h));
                (hp - hp / 2, hp / 2, wp - wp / 2, wp / 2)
            }
        }
    }

    pub(crate) fn out_shape(&self, input: Shape) -> Result<Shape, String> {
        if input.c != self.c_in {
            return Err(format!(
                "expects {} input channels, got {}",
                self.c_in, input.c
            ));
        }
        let (top, bottom, left, right) = self.pads(input.h, input.w);
        let (ext_w, ext_h) = self.extent();
        let padded_h = input.h + top + bottom;
        let padded_w = input.w + left + right;
        if padded_h < ext_h || padded_w < ext_w {
            return Err(format!(
                "input {}×{} is smaller than the {}×{} kernel; use a larger image or tile",
                input.w, input.h, ext_w, ext_h
            ));
        }
        let out = Shape {
            c: self.c_out,
            h: (padded_h - ext_h) / self.stride_h + 1,
            w: (padded_w - ext_w) / self.stride_w + 1,
        };
        check_elements(out)?;
        Ok(out)
    }

    /// The padding (0 or 1) when the fast 3×3 kernel can run this convolution.
    pub(crate) fn fast_pad(&self) -> Option<usize> {
        let square = self.kernel_w == 3
            && self.kernel_h == 3
            && self.stride_w == 1
            && self.stride_h == 1
            && self.dilation_w == 1
            && self.dilation_h == 1
            && self.pad_value == 0.0
            && !matches!(self.act, Act::Clip(..) | Act::Sigmoid);
        match self.padding {
            Padding::Explicit {
                left,
                right,
                top,
                bottom,
            } if square && left <= 1 && left == right && left == top && left == bottom => {
                Some(left)
            }
            _ => None,
        }
    }

    fn fast_activation(&self) -> Activation {
        match (&self.fused_prelu, self.act) {
            (Some(slopes), _) => Activation::Prelu(slopes.clone()),
            (None, Act::Relu) => Activation::Relu,
            (None, Act::Leaky(slope)) => Activation::LeakyRelu(slope),
            (None, _) => Activation::None,
        }
    }

    /// Runs through the fast kernel (the caller checked [`Conv::fast_pad`]); a fused PReLU is
    /// applied too.
    /// [`Conv::forward_fast`] on up to `bands` horizontal bands of output rows at once (on the
    /// current rayon pool), for a tile that is alone on its threads: each band reads its rows
    /// and one more on each side, so the result is the same as one run.
    pub(crate) fn forward_fast_banded(
        &self,
        x: &Tensor,
        pad: usize,
        bands: usize,
    ) -> Result<Tensor, String> {
        /// Fewer output rows than this per band cost more in transforms' edges than they gain.
        const MIN_BAND_ROWS: usize = 16;
        let out = self.out_shape(Shape::of(x))?;
        let bands = bands.min(out.h / MIN_BAND_ROWS);
        if bands <= 1 || pad > 1 {
            return self.forward_fast(x, pad);
        }
        let conv = self.fast_kernel();
        let rows_per_band = out.h.div_ceil(bands);
        let (h, w) = (x.height, x.width);
        let plane = h * w;
        let mut y = Tensor::zeros(out.c, out.h, out.w);
        // Each band's rows of every output plane, written in place by its thread.
        let mut outs: Vec<Vec<&mut [f32]>> = Vec::new();
        for out_plane in y.data.chunks_exact_mut(out.h * out.w) {
            for (b, rows) in out_plane.chunks_mut(rows_per_band * out.w).enumerate() {
                if outs.len() <= b {
                    outs.push(Vec::with_capacity(out.c));
                }
                outs[b].push(rows);
            }
        }
        outs.into_par_iter()
            .enumerate()
            .for_each(|(b, mut band_out)| {
                let (y0, y1) = (b * rows_per_band, ((b + 1) * rows_per_band).min(out.h));
                // Output row r reads input rows r − pad … r + 2 − pad; the plane's own padding
                // only at its top and bottom.
                let a = y0.saturating_sub(pad);
                let end = (y1 + 2 - pad).min(h);
                let pads = Pads {
                    top: pad - (y0 - a),
                    bottom: (y1 + 2 - pad) - end,
                    sides: pad,
                };
                let input: Vec<&[f32]> = (0..x.channels)
                    .map(|c| &x.data[c * plane + a * w..c * plane + end * w])
                    .collect();
                conv.run_planes(&input, (end - a, w), pads, &mut band_out);
            });
        Ok(y)
    }

    /// The fast kernel, prepared on first use.
    fn fast_kernel(&self) -> &Conv3x3 {
        self.fast.get_or_init(|| {
            Conv3x3::new(
                &self.weights,
                &self.bias,
                self.c_in,
                self.c_out,
                self.fast_activation(),
            )
        })
    }

    pub(crate) fn forward_fast(&self, x: &Tensor, pad: usize) -> Result<Tensor, String> {
        let out = self.out_shape(Shape::of(x))?;
        let conv = self.fast_kernel();
        let len = out.len();
        if conv.out_len(x.height, x.width, pad) != len {
            return Err(format!(
                "the fast kernel disagrees about the output size ({} values, expected {len})",
                conv.out_len(x.height, x.width, pad)
            ));
        }
        let mut data = crate::neural::pool::zeroed(len);
        conv.run(&x.data, x.height, x.width, pad, &mut data);
        Ok(Tensor {
            channels: out.c,
            height: out.h,
            width: out.w,
            data,
        })
    }

    /// The reference convolution (no fused PReLU: the PReLU layer runs on its own); its
    /// matrix products split over `threads` threads of the current rayon pool.
    pub(crate) fn forward_reference(&self, x: &Tensor, threads: usize) -> Result<Tensor, String> {
        let out = self.out_shape(Shape::of(x))?;
        let mut y = Tensor::zeros(out.c, out.h, out.w);
        self.convolve_into(x, &mut y.data, out, threads);
        self.act.apply(&mut y.data);
        Ok(y)
    }

    /// Convolution without activation into `out` (shape `out_shape`, checked by the caller).
    pub(crate) fn convolve_into(&self, x: &Tensor, y: &mut [f32], out: Shape, threads: usize) {
        let (top, _, left, _) = self.pads(x.height, x.width);
        let kernel_area = self.kernel_w * self.kernel_h;
        let depth = self.c_in * kernel_area;
        let plane = out.h * out.w;
        let rows_per_strip = (COL_BUDGET / (depth * out.w).max(1)).clamp(1, out.h);
        let mut col = vec![0.0f32; depth * rows_per_strip * out.w];
        let mut r0 = 0;
        while r0 < out.h {
            let r1 = (r0 + rows_per_strip).min(out.h);
            let n = (r1 - r0) * out.w;
            let col = &mut col[..depth * n];
            self.im2col(x, col, r0, r1, out.w, top, left, threads);
            let dst = &mut y[r0 * out.w..];
            if !self.bias.is_empty() {
                for (co, &b) in self.bias.iter().enumerate() {
                    dst[co * plane..co * plane + n].fill(b);
                }
            }
            sgemm(
                self.c_out,
                n,
                depth,
                &self.weights,
                depth,
                col,
                n,
                dst,
                plane,
                !self.bias.is_empty(),
                threads,
            );
            r0 = r1;
        }
    }

    /// Fills `col[(ci*kh + ky)*kw + kx][(r - r0)*out_w + ox]` with the input value under that
    /// kernel tap, or the pad value outside the input.
    #[allow(clippy::too_many_arguments)]
    fn im2col(
        &self,
        x: &Tensor,
        col: &mut [f32],
        r0: usize,
        r1: usize,
        out_w: usize,
        top: usize,
        left: usize,
        threads: usize,
    ) {
        let n = (r1 - r0) * out_w;
        let rows = self.kernel_h * self.kernel_w * n;
        let channel = |(ci, rows): (usize, &mut [f32])| {
            self.im2col_channel(
                x.plane(ci),
                x.width,
                x.height,
                rows,
                (r0, r1),
                out_w,
                (top, left),
            );
        };
        if threads > 1 {
            col.par_chunks_mut(rows).enumerate().for_each(channel);
        } else {
            col.chunks_mut(rows).enumerate().for_each(channel);
        }
    }

    /// [`Conv::im2col`]'s rows of one input channel (`src`, `w`×`h`).
    #[allow(clippy::too_many_arguments)]
    fn im2col_channel(
        &self,
        src: &[f32],
        w: usize,
        h: usize,
        col: &mut [f32],
        (r0, r1): (usize, usize),
        out_w: usize,
        (top, left): (usize, usize),
    ) {
        let n = (r1 - r0) * out_w;
        let width = w;
        let (h, w) = (h as isize, w as isize);
        let mut k = 0;
        for ky in 0..self.kernel_h {
            for kx in 0..self.kernel_w {
                let row = &mut col[k * n..(k + 1) * n];
                k += 1;
                let x_shift = (kx * self.dilation_w) as isize - left as isize;
                for r in r0..r1 {
                    let dst = &mut row[(r - r0) * out_w..(r - r0 + 1) * out_w];
                    let iy = (r * self.stride_h + ky * self.dilation_h) as isize - top as isize;
                    if iy < 0 || iy >= h {
                        dst.fill(self.pad_value);
                        continue;
                    }
                    let src_row = &src[iy as usize * width..(iy as usize + 1) * width];
                    if self.stride_w == 1 {
                        // ix = ox + x_shift must lie in [0, w)
                        let lo = (-x_shift).clamp(0, out_w as isize) as usize;
                        let hi = (w - x_shift).clamp(lo as isize, out_w as isize) as usize;
                        dst[..lo].fill(self.pad_value);
                        dst[hi..].fill(self.pad_value);
                        let start = (lo as isize + x_shift) as usize;
                        dst[lo..hi].copy_from_slice(&src_row[start..start + (hi - lo)]);
                    } else {
                        for (ox, d) in dst.iter_mut().enumerate() {
                            let ix = (ox * self.stride_w) as isize + x_shift;
                            *d = if ix >= 0 && ix < w {
                                src_row[ix as usize]
                            } else {
                                self.pad_value
                            };
                        }
                    }
                }
            }
        }
    }
}
