//! The supported layers: construction from a `.param` line plus its `.bin` weights, shape
//! inference (so geometry is known without running), and the reference forward pass of each.
//! Convolution, Deconvolution, Interp, InnerProduct, Pooling, Crop and Scale have their own files;
//! the pointwise and reshuffling layers are here.

pub(crate) mod conv;
mod crop;
pub(crate) mod deconv;
mod gemm;
mod inner_product;
pub(crate) mod interp;
pub(crate) mod pooling;
mod scale;

use super::param::LayerDecl;
use super::weights::WeightReader;
use super::{ModelError, Tensor};

/// The largest blob a forward pass may create (2^30 floats, 4 GiB).
pub(crate) const MAX_BLOB_ELEMENTS: usize = 1 << 30;

/// A blob's geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

impl Shape {
    pub(crate) fn of(t: &Tensor) -> Shape {
        Shape {
            c: t.channels,
            h: t.height,
            w: t.width,
        }
    }

    pub(crate) fn len(self) -> usize {
        self.c * self.h * self.w
    }
}

/// Refuses blobs too large to allocate (also guards the multiplications).
pub(crate) fn check_elements(s: Shape) -> Result<(), String> {
    match s.c.checked_mul(s.h).and_then(|n| n.checked_mul(s.w)) {
        Some(n) if n <= MAX_BLOB_ELEMENTS => Ok(()),
        _ => Err(format!(
            "would create a {}×{}×{} blob, more than {MAX_BLOB_ELEMENTS} values; use smaller tiles",
            s.c, s.h, s.w
        )),
    }
}

pub(crate) fn weights_error(decl: &LayerDecl, reason: String) -> ModelError {
    ModelError::Weights {
        line: decl.line,
        layer: decl.name.clone(),
        reason,
        file: None,
    }
}

fn param_error(decl: &LayerDecl, reason: impl Into<String>) -> ModelError {
    ModelError::Param {
        line: decl.line,
        layer: Some(decl.name.clone()),
        reason: reason.into(),
        file: None,
    }
}

/// An activation fused into a convolution (ncnn parameters 9 and 10).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Act {
    None,
    Relu,
    Leaky(f32),
    Clip(f32, f32),
    Sigmoid,
}

impl Act {
    pub(crate) fn from_decl(decl: &LayerDecl) -> Result<Act, ModelError> {
        let params = decl.array(10)?;
        let need = |n: usize| {
            if params.len() < n {
                Err(param_error(
                    decl,
                    format!(
                        "activation needs {n} parameters in -23310=, found {}",
                        params.len()
                    ),
                ))
            } else {
                Ok(())
            }
        };
        match decl.int(9, 0)? {
            0 => Ok(Act::None),
            1 => Ok(Act::Relu),
            2 => {
                need(1)?;
                Ok(Act::Leaky(params[0]))
            }
            3 => {
                need(2)?;
                Ok(Act::Clip(params[0], params[1]))
            }
            4 => Ok(Act::Sigmoid),
            other => Err(param_error(
                decl,
                format!(
                    "fused activation type {other} is not supported (0 none, 1 ReLU, 2 leaky \
                     ReLU, 3 clip, 4 sigmoid)"
                ),
            )),
        }
    }

    pub(crate) fn apply(self, data: &mut [f32]) {
        match self {
            Act::None => {}
            Act::Relu => data.iter_mut().for_each(|v| *v = v.max(0.0)),
            Act::Leaky(slope) => data
                .iter_mut()
                .for_each(|v| *v = if *v > 0.0 { *v } else { *v * slope }),
            Act::Clip(lo, hi) => data.iter_mut().for_each(|v| {
                if *v < lo {
                    *v = lo;
                }
                if *v > hi {
                    *v = hi;
                }
            }),
            Act::Sigmoid => data.iter_mut().for_each(|v| *v = 1.0 / (1.0 + (-*v).exp())),
        }
    }
}

/// ncnn `BinaryOp` operations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum BinaryKind {
    Add,
    Sub,
    Mul,
    Div,
    Max,
    Min,
    Pow,
    RSub,
    RDiv,
}

impl BinaryKind {
    fn apply(self, a: f32, b: f32) -> f32 {
        match self {
            BinaryKind::Add => a + b,
            BinaryKind::Sub => a - b,
            BinaryKind::Mul => a * b,
            BinaryKind::Div => a / b,
            BinaryKind::Max => a.max(b),
            BinaryKind::Min => a.min(b),
            BinaryKind::Pow => a.powf(b),
            BinaryKind::RSub => b - a,
            BinaryKind::RDiv => b / a,
        }
    }
}

/// One layer's operation.
pub(crate) enum Op {
    Input,
    Split,
    Conv(conv::Conv),
    Deconv(deconv::Deconv),
    /// Per-channel slopes (or one for all channels).
    PRelu(Vec<f32>),
    /// ReLU with a negative slope (0 = plain ReLU).
    Relu(f32),
    PixelShuffle {
        factor: usize,
        /// 0: output channel p takes input channels p·r² … (PyTorch); 1: interleaved.
        mode: i32,
    },
    Interp(interp::Interp),
    Binary {
        kind: BinaryKind,
        /// `Some(b)`: one input, combined with the scalar b.
        scalar: Option<f32>,
    },
    /// Its inputs' channels one after another (ncnn axis 0).
    Concat,
    /// Each channel to its mean or maximum (c×1×1).
    Pooling(pooling::Pooling),
    /// Fully connected over the whole blob (num_output×1×1).
    InnerProduct(inner_product::InnerProduct),
    /// A window of the blob (of a second blob's size, in one form).
    Crop(crop::Crop),
    /// Per-channel factors, from the weights or a second blob.
    Scale(scale::Scale),
    /// Inputs of one shape combined element by element.
    Eltwise {
        kind: EltwiseKind,
        /// Sum: each input's weight (empty: all 1).
        coeffs: Vec<f32>,
    },
}

/// ncnn `Eltwise` operations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum EltwiseKind {
    Prod,
    Sum,
    Max,
}

impl Op {
    /// Builds the operation of a layer line, reading its weights.
    pub(crate) fn load(decl: &LayerDecl, reader: &mut WeightReader) -> Result<Op, ModelError> {
        let arity = |bottoms: usize, tops: Option<usize>| -> Result<(), ModelError> {
            let tops_ok = tops.is_none_or(|t| decl.tops.len() == t) && !decl.tops.is_empty();
            if decl.bottoms.len() != bottoms || !tops_ok {
                return Err(param_error(
                    decl,
                    format!(
                        "{} takes {bottoms} input blob(s) and {} output blob(s), the line has {} \
                         and {}",
                        decl.kind,
                        tops.map_or("one or more".to_string(), |t| t.to_string()),
                        decl.bottoms.len(),
                        decl.tops.len()
                    ),
                ));
            }
            Ok(())
        };
        let op = match decl.kind.as_str() {
            "Input" => {
                arity(0, Some(1))?;
                Op::Input
            }
            "Split" => {
                arity(1, None)?;
                Op::Split
            }
            "Convolution" => {
                arity(1, Some(1))?;
                Op::Conv(conv::Conv::load(decl, reader)?)
            }
            "Deconvolution" => {
                arity(1, Some(1))?;
                Op::Deconv(deconv::Deconv::load(decl, reader)?)
            }
            "PReLU" => {
                arity(1, Some(1))?;
                let count = decl.count(0, 0)?;
                if count == 0 {
                    return Err(param_error(
                        decl,
                        "num_slope (parameter 0) must be positive",
                    ));
                }
                let slopes = reader
                    .read_raw(count, "the slopes")
                    .map_err(|e| weights_error(decl, e))?;
                Op::PRelu(slopes)
            }
            "ReLU" => {
                arity(1, Some(1))?;
                Op::Relu(decl.float(0, 0.0)?)
            }
            "PixelShuffle" => {
                arity(1, Some(1))?;
                let factor = decl.count(0, 1)?;
                let mode = decl.int(1, 0)?;
                if factor == 0 || factor > 64 || !(0..=1).contains(&mode) {
                    return Err(param_error(
                        decl,
                        format!("unsupported upscale factor {factor} or mode {mode}"),
                    ));
                }
                Op::PixelShuffle { factor, mode }
            }
            "Interp" => {
                arity(1, Some(1))?;
                Op::Interp(interp::Interp::load(decl)?)
            }
            "BinaryOp" => {
                let kind = match decl.int(0, 0)? {
                    0 => BinaryKind::Add,
                    1 => BinaryKind::Sub,
                    2 => BinaryKind::Mul,
                    3 => BinaryKind::Div,
                    4 => BinaryKind::Max,
                    5 => BinaryKind::Min,
                    6 => BinaryKind::Pow,
                    7 => BinaryKind::RSub,
                    8 => BinaryKind::RDiv,
                    other => {
                        return Err(param_error(
                            decl,
                            format!("BinaryOp type {other} is not supported (0–8)"),
                        ));
                    }
                };
                let scalar = if decl.int(1, 0)? != 0 {
                    arity(1, Some(1))?;
                    Some(decl.float(2, 0.0)?)
                } else {
                    arity(2, Some(1))?;
                    None
                };
                Op::Binary { kind, scalar }
            }
            "Pooling" => {
                arity(1, Some(1))?;
                Op::Pooling(pooling::Pooling::load(decl)?)
            }
            "InnerProduct" => {
                arity(1, Some(1))?;
                Op::InnerProduct(inner_product::InnerProduct::load(decl, reader)?)
            }
            "Crop" => {
                if !(1..=2).contains(&decl.bottoms.len()) || decl.tops.len() != 1 {
                    return Err(param_error(
                        decl,
                        "Crop takes one input blob (and a reference blob) and one output blob",
                    ));
                }
                Op::Crop(crop::Crop::load(decl)?)
            }
            "Scale" => Op::Scale(scale::Scale::load(decl, reader)?),
            "Concat" => {
                if decl.bottoms.is_empty() || decl.tops.len() != 1 {
                    return Err(param_error(
                        decl,
                        "Concat takes one or more input blobs and one output blob",
                    ));
                }
                // Axis 0 (or -3) is the channels of a c×h×w blob.
                let axis = decl.int(0, 0)?;
                if axis != 0 && axis != -3 {
                    return Err(param_error(
                        decl,
                        format!("Concat along axis {axis} is not supported (only channels, 0)"),
                    ));
                }
                Op::Concat
            }
            "Eltwise" => {
                if decl.bottoms.len() < 2 || decl.tops.len() != 1 {
                    return Err(param_error(
                        decl,
                        "Eltwise takes two or more input blobs and one output blob",
                    ));
                }
                let kind = match decl.int(0, 1)? {
                    0 => EltwiseKind::Prod,
                    1 => EltwiseKind::Sum,
                    2 => EltwiseKind::Max,
                    other => {
                        return Err(param_error(
                            decl,
                            format!(
                                "Eltwise operation {other} is not supported (0 product, 1 sum, 2 max)"
                            ),
                        ));
                    }
                };
                let coeffs = decl.array(1)?;
                if kind == EltwiseKind::Sum
                    && !coeffs.is_empty()
                    && coeffs.len() != decl.bottoms.len()
                {
                    return Err(param_error(
                        decl,
                        format!(
                            "{} coefficients for {} inputs",
                            coeffs.len(),
                            decl.bottoms.len()
                        ),
                    ));
                }
                Op::Eltwise { kind, coeffs }
            }
            other => {
                return Err(param_error(
                    decl,
                    format!(
                        "layer type {other} is not supported (supported: Input, Split, \
                         Convolution, Deconvolution, PReLU, ReLU, PixelShuffle, Interp, BinaryOp, \
                         Concat, Eltwise, Pooling, InnerProduct, Crop, Scale)"
                    ),
                ));
            }
        };
        Ok(op)
    }

    /// Output shapes for these input shapes.
    pub(crate) fn out_shapes(&self, inputs: &[Shape], tops: usize) -> Result<Vec<Shape>, String> {
        let first = *inputs.first().ok_or("has no input blob")?;
        let one = |s: Shape| Ok(vec![s]);
        match self {
            Op::Input => Err("Input has no input to take a shape from".to_string()),
            Op::Split => Ok(vec![first; tops]),
            Op::Conv(conv) => one(conv.out_shape(first)?),
            Op::Deconv(deconv) => one(deconv.out_shape(first)?),
            Op::PRelu(slopes) => {
                if slopes.len() != 1 && slopes.len() != first.c {
                    return Err(format!(
                        "has {} slopes for {} channels",
                        slopes.len(),
                        first.c
                    ));
                }
                one(first)
            }
            Op::Relu(_) => one(first),
            Op::PixelShuffle { factor, .. } => {
                let r2 = factor * factor;
                if first.c % r2 != 0 {
                    return Err(format!(
                        "{} channels do not divide by the squared factor {r2}",
                        first.c
                    ));
                }
                let out = Shape {
                    c: first.c / r2,
                    h: first.h * factor,
                    w: first.w * factor,
                };
                check_elements(out)?;
                one(out)
            }
            Op::Interp(interp) => one(interp.out_shape(first)?),
            Op::Binary {
                scalar: Some(_), ..
            } => one(first),
            Op::Binary { scalar: None, .. } => {
                let second = *inputs.get(1).ok_or("needs two input blobs")?;
                one(broadcast_shape(first, second)?)
            }
            Op::Pooling(pooling) => one(pooling.out_shape(first)?),
            Op::InnerProduct(ip) => one(ip.out_shape(first)?),
            Op::Crop(crop) => one(crop.out_shape(inputs)?),
            Op::Scale(scale) => one(scale.out_shape(inputs)?),
            Op::Concat => {
                let mut c = 0usize;
                for s in inputs {
                    if (s.h, s.w) != (first.h, first.w) {
                        return Err(format!(
                            "cannot join a {}×{} blob to a {}×{} one",
                            s.h, s.w, first.h, first.w
                        ));
                    }
                    c = c.checked_add(s.c).ok_or("too many channels")?;
                }
                let out = Shape { c, ..first };
                check_elements(out)?;
                one(out)
            }
            Op::Eltwise { .. } => {
                if let Some(s) = inputs.iter().find(|s| **s != first) {
                    return Err(format!(
                        "cannot combine a {}×{}×{} blob with a {}×{}×{} one",
                        first.c, first.h, first.w, s.c, s.h, s.w
                    ));
                }
                one(first)
            }
        }
    }
}

fn broadcast_dim(a: usize, b: usize) -> Option<usize> {
    if a == b || b == 1 {
        Some(a)
    } else if a == 1 {
        Some(b)
    } else {
        None
    }
}

fn broadcast_shape(a: Shape, b: Shape) -> Result<Shape, String> {
    match (
        broadcast_dim(a.c, b.c),
        broadcast_dim(a.h, b.h),
        broadcast_dim(a.w, b.w),
    ) {
        (Some(c), Some(h), Some(w)) => Ok(Shape { c, h, w }),
        _ => Err(format!(
            "cannot combine a {}×{}×{} blob with a {}×{}×{} one (each dimension must match or \
             be 1)",
            a.c, a.h, a.w, b.c, b.h, b.w
        )),
    }
}

/// PReLU in place.
pub(crate) fn prelu(x: &mut Tensor, slopes: &[f32]) {
    let plane = x.plane_len();
    for (c, chunk) in x.data.chunks_mut(plane.max(1)).enumerate() {
        let slope = if slopes.len() == 1 {
            slopes[0]
        } else {
            slopes[c]
        };
        for v in chunk {
            if *v < 0.0 {
                *v *= slope;
            }
        }
    }
}

/// ReLU with a negative slope, in place.
pub(crate) fn relu(x: &mut Tensor, slope: f32) {
    for v in &mut x.data {
        if *v < 0.0 {
            *v = if slope == 0.0 { 0.0 } else { *v * slope };
        }
    }
}

pub(crate) fn pixel_shuffle(x: &Tensor, factor: usize, mode: i32) -> Tensor {
    let r = factor;
    let out_c = x.channels / (r * r);
    let (h, w) = (x.height, x.width);
    let (out_h, out_w) = (h * r, w * r);
    let mut y = Tensor::zeros(out_c, out_h, out_w);
    for p in 0..out_c {
        let dst = &mut y.data[p * out_h * out_w..(p + 1) * out_h * out_w];
        for sh in 0..r {
            for sw in 0..r {
                let q = if mode == 0 {
                    p * r * r + sh * r + sw
                } else {
                    (sh * r + sw) * out_c + p
                };
                let src = x.plane(q);
                for i in 0..h {
                    let row = &mut dst[(i * r + sh) * out_w..(i * r + sh + 1) * out_w];
                    for j in 0..w {
                        row[j * r + sw] = src[i * w + j];
                    }
                }
            }
        }
    }
    y
}

/// Elementwise `a op b` with broadcasting over dimensions of size 1 (shapes checked by
/// [`Op::out_shapes`]); reuses `a`'s storage when it has the output's shape.
pub(crate) fn binary(a: Tensor, b: &Tensor, kind: BinaryKind) -> Result<Tensor, String> {
    let out = broadcast_shape(Shape::of(&a), Shape::of(b))?;
    if Shape::of(&a) == Shape::of(b) {
        let mut a = a;
        for (x, &y) in a.data.iter_mut().zip(&b.data) {
            *x = kind.apply(*x, y);
        }
        return Ok(a);
    }
    // One value per channel (or one for all) against a whole blob, as a squeeze-and-excitation
    // block scales its channels: in place, plane by plane.
    if out == Shape::of(&a)
        && b.height == 1
        && b.width == 1
        && (b.channels == 1 || b.channels == a.channels)
    {
        let mut a = a;
        let plane = a.plane_len().max(1);
        for (c, values) in a.data.chunks_mut(plane).enumerate() {
            let y = b.data[if b.channels == 1 { 0 } else { c }];
            for x in values {
                *x = kind.apply(*x, y);
            }
        }
        return Ok(a);
    }
    let mut y = Tensor::zeros(out.c, out.h, out.w);
    let index = |t: &Tensor, c: usize, row: usize, col: usize| {
        let c = if t.channels == 1 { 0 } else { c };
        let row = if t.height == 1 { 0 } else { row };
        let col = if t.width == 1 { 0 } else { col };
        (c * t.height + row) * t.width + col
    };
    let mut i = 0;
    for c in 0..out.c {
        for row in 0..out.h {
            for col in 0..out.w {
                y.data[i] = kind.apply(
                    a.data[index(&a, c, row, col)],
                    b.data[index(b, c, row, col)],
                );
                i += 1;
            }
        }
    }
    Ok(y)
}

/// The inputs' channels one after another (shapes checked by [`Op::out_shapes`]): a c×h×w
/// blob is its channel planes in order, so this appends the data.
pub(crate) fn concat(inputs: &[&Tensor]) -> Tensor {
    let (h, w) = inputs.first().map_or((0, 0), |t| (t.height, t.width));
    let c = inputs.iter().map(|t| t.channels).sum();
    let mut data = crate::neural::pool::zeroed(c * h * w);
    let mut at = 0;
    for t in inputs {
        data[at..at + t.data.len()].copy_from_slice(&t.data);
        at += t.data.len();
    }
    Tensor {
        channels: c,
        height: h,
        width: w,
        data,
    }
}

/// Element by element over inputs of one shape (checked by [`Op::out_shapes`]); reuses the
/// first input's storage.
pub(crate) fn eltwise(
    first: Tensor,
    rest: &[&Tensor],
    kind: EltwiseKind,
    coeffs: &[f32],
) -> Tensor {
    let mut y = first;
    match kind {
        EltwiseKind::Sum if !coeffs.is_empty() => {
            let c0 = coeffs[0];
            if c0 != 1.0 {
                y.data.iter_mut().for_each(|v| *v *= c0);
            }
            for (t, &c) in rest.iter().zip(&coeffs[1..]) {
                for (v, &x) in y.data.iter_mut().zip(&t.data) {
                    *v += c * x;
                }
            }
        }
        EltwiseKind::Sum => {
            for t in rest {
                for (v, &x) in y.data.iter_mut().zip(&t.data) {
                    *v += x;
                }
            }
        }
        EltwiseKind::Prod => {
            for t in rest {
                for (v, &x) in y.data.iter_mut().zip(&t.data) {
                    *v *= x;
                }
            }
        }
        EltwiseKind::Max => {
            for t in rest {
                for (v, &x) in y.data.iter_mut().zip(&t.data) {
                    *v = v.max(x);
                }
            }
        }
    }
    y
}

/// `x op scalar` in place.
pub(crate) fn binary_scalar(mut x: Tensor, scalar: f32, kind: BinaryKind) -> Tensor {
    for v in &mut x.data {
        *v = kind.apply(*v, scalar);
    }
    x
}
