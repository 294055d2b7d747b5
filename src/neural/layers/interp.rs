//! Interp (ncnn `Interp`): nearest, bilinear and bicubic resizing computed as ncnn's CPU
//! layer does, so results match it to float rounding.
//!
//! - Output size: `output_height/width` when both are given, else `(int)(h · height_scale)`
//!   computed in f32; the same size as the input passes the blob through.
//! - Nearest: source index `min((int)(x · ws), w − 1)` with `ws = 1/width_scale` (or
//!   `w/outw` for a fixed output size), in f32.
//! - Bilinear / bicubic: source coordinate `(x + 0.5)·(w/outw) − 0.5` (f64, then f32), or
//!   `x·(w−1)/(outw−1)` with align_corner. Bicubic uses Keys' kernel with A = −0.75; near
//!   the borders ncnn shifts the four taps inside the image and folds the outside weights onto
//!   the edge pixels, which for images of 4 or more pixels is the same as clamping the tap
//!   indices (edge replication, as ONNX Resize does with `exclude_outside = 0`).

use super::{Shape, check_elements};
use crate::neural::ModelError;
use crate::neural::Tensor;
use crate::neural::param::LayerDecl;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Resize {
    Nearest,
    Bilinear,
    Bicubic,
}

#[derive(Debug, Clone)]
pub(crate) struct Interp {
    pub resize: Resize,
    pub height_scale: f32,
    pub width_scale: f32,
    pub output_height: usize,
    pub output_width: usize,
    pub align_corner: bool,
}

impl Interp {
    pub(crate) fn load(decl: &LayerDecl) -> Result<Interp, ModelError> {
        let err = |reason: String| ModelError::Param {
            line: decl.line,
            layer: Some(decl.name.clone()),
            reason,
            file: None,
        };
        let resize = match decl.int(0, 0)? {
            1 => Resize::Nearest,
            2 => Resize::Bilinear,
            3 => Resize::Bicubic,
            other => {
                return Err(err(format!(
                    "resize type {other} is not supported (1 nearest, 2 bilinear, 3 bicubic)"
                )));
            }
        };
        if decl.int(5, 0)? != 0 {
            return Err(err(
                "a target size taken from a second blob (parameter 5) is not supported".into(),
            ));
        }
        let height_scale = decl.float(1, 1.0)?;
        let width_scale = decl.float(2, 1.0)?;
        let output_height = decl.count(3, 0)?;
        let output_width = decl.count(4, 0)?;
        let fixed = output_height > 0 && output_width > 0;
        if !fixed && (height_scale <= 0.0 || width_scale <= 0.0) {
            return Err(err(format!(
                "scales must be positive, got {height_scale} × {width_scale}"
            )));
        }
        Ok(Interp {
            resize,
            height_scale,
            width_scale,
            output_height,
            output_width,
            align_corner: decl.int(6, 0)? != 0,
        })
    }

    fn fixed(&self) -> bool {
        self.output_height > 0 && self.output_width > 0
    }

    pub(crate) fn out_shape(&self, input: Shape) -> Result<Shape, String> {
        let (h, w) = if self.fixed() {
            (self.output_height, self.output_width)
        } else {
            // ncnn: static_cast<int>(h * height_scale), the product in f32.
            let h = (input.h as f32 * self.height_scale) as usize;
            let w = (input.w as f32 * self.width_scale) as usize;
            (h, w)
        };
        if h == 0 || w == 0 {
            return Err(format!(
                "resizing {}×{} gives an empty image; use a larger image or tile",
                input.w, input.h
            ));
        }
        let out = Shape { c: input.c, h, w };
        check_elements(out)?;
        Ok(out)
    }

    pub(crate) fn forward(&self, x: Tensor) -> Result<Tensor, String> {
        let out = self.out_shape(Shape::of(&x))?;
        if out.h == x.height && out.w == x.width {
            return Ok(x);
        }
        let mut y = Tensor::zeros(out.c, out.h, out.w);
        match self.resize {
            Resize::Nearest => {
                let hs = if self.fixed() {
                    x.height as f32 / out.h as f32
                } else {
                    1.0 / self.height_scale
                };
                let ws = if self.fixed() {
                    x.width as f32 / out.w as f32
                } else {
                    1.0 / self.width_scale
                };
                let ys: Vec<usize> = (0..out.h)
                    .map(|y| ((y as f32 * hs) as usize).min(x.height - 1))
                    .collect();
                let xs: Vec<usize> = (0..out.w)
                    .map(|x_| ((x_ as f32 * ws) as usize).min(x.width - 1))
                    .collect();
                for c in 0..out.c {
                    let src = x.plane(c);
                    let dst = &mut y.data[c * out.h * out.w..(c + 1) * out.h * out.w];
                    for (oy, &sy) in ys.iter().enumerate() {
                        let src_row = &src[sy * x.width..(sy + 1) * x.width];
                        for (d, &sx) in dst[oy * out.w..(oy + 1) * out.w].iter_mut().zip(&xs) {
                            *d = src_row[sx];
                        }
                    }
                }
            }
            Resize::Bilinear => {
                let xc = linear_coeffs(x.width, out.w, self.align_corner);
                let yc = linear_coeffs(x.height, out.h, self.align_corner);
                separable(&x, &mut y, &xc, &yc);
            }
            Resize::Bicubic => {
                let xc = cubic_coeffs(x.width, out.w, self.align_corner);
                let yc = cubic_coeffs(x.height, out.h, self.align_corner);
                separable(&x, &mut y, &xc, &yc);
            }
        }
        Ok(y)
    }
}

/// Taps of one output coordinate: source indices (already in range) and weights.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Taps {
    pub index: Vec<usize>,
    pub weight: Vec<f32>,
}

fn source_coord(dx: usize, scale: f64, align_corner: bool) -> f32 {
    if align_corner {
        (dx as f64 * scale) as f32
    } else {
        ((dx as f64 + 0.5) * scale - 0.5) as f32
    }
}

fn scale_of(w: usize, outw: usize, align_corner: bool) -> f64 {
    if align_corner && outw > 1 {
        (w as f64 - 1.0) / (outw as f64 - 1.0)
    } else {
        w as f64 / outw as f64
    }
}

/// Bilinear taps as ncnn's `linear_coeffs`.
pub(crate) fn linear_coeffs(w: usize, outw: usize, align_corner: bool) -> Vec<Taps> {
    let scale = scale_of(w, outw, align_corner);
    let last = w as isize - 1;
    (0..outw)
        .map(|dx| {
            let mut fx = source_coord(dx, scale, align_corner);
            let mut sx = fx.floor() as isize;
            fx -= sx as f32;
            if sx < 0 {
                sx = 0;
                fx = 0.0;
            }
            if sx >= last {
                sx = last - 1;
                fx = 1.0;
            }
            let clamp = |i: isize| i.clamp(0, last) as usize;
            Taps {
                index: vec![clamp(sx), clamp(sx + 1)],
                weight: vec![1.0 - fx, fx],
            }
        })
        .collect()
}

/// Keys' cubic weights with A = -0.75 for a fractional position, as ncnn's
/// `interpolate_cubic` (the fourth is 1 minus the others).
pub(crate) fn interpolate_cubic(fx: f32) -> [f32; 4] {
    const A: f32 = -0.75;
    let fx0 = fx + 1.0;
    let fx1 = fx;
    let fx2 = 1.0 - fx;
    let c0 = A * fx0 * fx0 * fx0 - 5.0 * A * fx0 * fx0 + 8.0 * A * fx0 - 4.0 * A;
    let c1 = (A + 2.0) * fx1 * fx1 * fx1 - (A + 3.0) * fx1 * fx1 + 1.0;
    let c2 = (A + 2.0) * fx2 * fx2 * fx2 - (A + 3.0) * fx2 * fx2 + 1.0;
    let c3 = 1.0 - c0 - c1 - c2;
    [c0, c1, c2, c3]
}

/// Bicubic taps as ncnn's `cubic_coeffs`, border rules included. Taps are at sx−1 … sx+2;
/// for images narrower than 4 pixels (where ncnn would read outside the row) the indices are
/// clamped.
pub(crate) fn cubic_coeffs(w: usize, outw: usize, align_corner: bool) -> Vec<Taps> {
    let scale = scale_of(w, outw, align_corner);
    let w = w as isize;
    (0..outw)
        .map(|dx| {
            let mut fx = source_coord(dx, scale, align_corner);
            let mut sx = fx.floor() as isize;
            fx -= sx as f32;
            let mut a = interpolate_cubic(fx);
            // The same sequence of checks as ncnn (a later one may apply after an earlier one).
            if sx <= -1 {
                sx = 1;
                a = [1.0 - a[3], a[3], 0.0, 0.0];
            }
            if sx == 0 {
                sx = 1;
                a = [a[0] + a[1], a[2], a[3], 0.0];
            }
            if sx == w - 2 {
                sx = w - 3;
                a = [0.0, a[0], a[1], a[2] + a[3]];
            }
            if sx >= w - 1 {
                sx = w - 3;
                a = [0.0, 0.0, a[0], 1.0 - a[0]];
            }
            let clamp = |i: isize| i.clamp(0, w - 1) as usize;
            Taps {
                index: (0..4).map(|k| clamp(sx - 1 + k)).collect(),
                weight: a.to_vec(),
            }
        })
        .collect()
}

/// Horizontal pass over every source row, then vertical pass, each tap sum in order (as ncnn's
/// row buffers do).
fn separable(x: &Tensor, y: &mut Tensor, xc: &[Taps], yc: &[Taps]) {
    let (out_h, out_w) = (y.height, y.width);
    let mut rows = vec![0.0f32; x.height * out_w];
    for c in 0..x.channels {
        let src = x.plane(c);
        for sy in 0..x.height {
            let src_row = &src[sy * x.width..(sy + 1) * x.width];
            for (d, taps) in rows[sy * out_w..(sy + 1) * out_w].iter_mut().zip(xc) {
                let mut acc = 0.0;
                for (&i, &a) in taps.index.iter().zip(&taps.weight) {
                    acc += src_row[i] * a;
                }
                *d = acc;
            }
        }
        let dst = &mut y.data[c * out_h * out_w..(c + 1) * out_h * out_w];
        for (oy, taps) in yc.iter().enumerate() {
            let dst_row = &mut dst[oy * out_w..(oy + 1) * out_w];
            dst_row.fill(0.0);
            for (&i, &b) in taps.index.iter().zip(&taps.weight) {
                let row = &rows[i * out_w..(i + 1) * out_w];
                for (d, &r) in dst_row.iter_mut().zip(row) {
                    *d += r * b;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ncnn's border folding equals clamping the four tap indices to the row, so a bicubic
    /// resize matches references that replicate the edge (ONNX Resize, exclude_outside = 0).
    #[test]
    fn bicubic_border_rule_is_edge_clamping() {
        let row: Vec<f32> = (0..9).map(|i| ((i * 7) % 5) as f32 - 1.5).collect();
        for (w, outw) in [(9, 4), (9, 6), (9, 18), (4, 13), (5, 5), (9, 27)] {
            let taps = cubic_coeffs(w, outw, false);
            let scale = w as f64 / outw as f64;
            for (dx, t) in taps.iter().enumerate() {
                let ours: f32 = t
                    .index
                    .iter()
                    .zip(&t.weight)
                    .map(|(&i, &a)| row[i] * a)
                    .sum();
                let fx = ((dx as f64 + 0.5) * scale - 0.5) as f32;
                let sx = fx.floor() as isize;
                let a = interpolate_cubic(fx - sx as f32);
                let clamped: f32 = (0..4)
                    .map(|k| row[(sx - 1 + k as isize).clamp(0, w as isize - 1) as usize] * a[k])
                    .sum();
                assert!((ours - clamped).abs() < 1e-5, "w {w} → {outw}, dx {dx}");
            }
        }
    }
}
