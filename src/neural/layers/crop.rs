//! ncnn `Crop`, in the two forms the models use:
//! * starts/ends/axes (parameters 9, 10 and 11 as arrays): a window of the blob along some of
//!   its axes (0 or −3 channels, 1 or −2 rows, 2 or −1 columns). A negative start or end
//!   counts from the end; an end of −233, or one past the blob, is the end.
//! * to a reference blob (a second input): a window of the reference's size, from the offsets
//!   in parameters 0 (columns), 1 (rows) and 2 (channels). U-Nets crop a skip connection to
//!   the size of the upsampled path this way.

use super::super::param::LayerDecl;
use super::super::{ModelError, Tensor};
use super::{Shape, param_error};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Crop {
    /// (axis 0–2, start, end) as written.
    Ranges(Vec<(usize, i64, i64)>),
    /// The reference blob's size, from these (channel, row, column) offsets.
    ToReference { offsets: [usize; 3] },
}

/// ncnn's "to the end".
const TO_END: i64 = -233;

impl Crop {
    pub(crate) fn load(decl: &LayerDecl) -> Result<Crop, ModelError> {
        let starts = decl.array(9)?;
        if decl.bottoms.len() == 2 {
            let offset = |id: i32| -> Result<usize, ModelError> {
                let v = decl.int(id, 0)?;
                usize::try_from(v).map_err(|_| {
                    param_error(
                        decl,
                        format!("crop offset {v} (parameter {id}) is negative"),
                    )
                })
            };
            if !starts.is_empty() {
                return Err(param_error(
                    decl,
                    "a crop to a reference blob takes offsets, not starts/ends",
                ));
            }
            return Ok(Crop::ToReference {
                offsets: [offset(2)?, offset(1)?, offset(0)?],
            });
        }
        let ends = decl.array(10)?;
        let axes = decl.array(11)?;
        if starts.is_empty() {
            return Err(param_error(
                decl,
                "Crop with offsets and sizes (parameters 0–8) on one blob is not supported; \
                 only starts/ends/axes (parameters 9–11) or a reference blob",
            ));
        }
        if ends.len() != starts.len() || !(axes.is_empty() || axes.len() == starts.len()) {
            return Err(param_error(
                decl,
                format!(
                    "{} starts, {} ends and {} axes do not match",
                    starts.len(),
                    ends.len(),
                    axes.len()
                ),
            ));
        }
        let whole = |v: f32| (v.fract() == 0.0 && v.abs() < 1e9).then_some(v as i64);
        let mut ranges = Vec::new();
        for (i, (&s, &e)) in starts.iter().zip(&ends).enumerate() {
            let axis = if axes.is_empty() {
                Some(i as i64)
            } else {
                whole(axes[i])
            };
            let axis = match axis {
                Some(a @ 0..=2) => a as usize,
                Some(a @ -3..=-1) => (a + 3) as usize,
                _ => {
                    return Err(param_error(
                        decl,
                        format!("crop axis {} is not one of 0–2 or −3…−1", axes[i]),
                    ));
                }
            };
            let (Some(s), Some(e)) = (whole(s), whole(e)) else {
                return Err(param_error(
                    decl,
                    "crop starts and ends must be whole numbers",
                ));
            };
            ranges.push((axis, s, e));
        }
        Ok(Crop::Ranges(ranges))
    }

    /// (start, end) on each axis (channels, rows, columns) of a blob of shape `s`.
    fn window(&self, s: Shape, reference: Option<Shape>) -> Result<[(usize, usize); 3], String> {
        let dims = [s.c, s.h, s.w];
        match self {
            Crop::Ranges(ranges) => {
                let mut window = dims.map(|d| (0, d));
                for &(axis, start, end) in ranges {
                    let dim = dims[axis] as i64;
                    let start = if start < 0 { dim + start } else { start };
                    let end = if end == TO_END || end > dim {
                        dim
                    } else if end < 0 {
                        dim + end
                    } else {
                        end
                    };
                    if start < 0 || start >= end {
                        return Err(format!(
                            "cannot crop [{start}, {end}) of an axis of {dim} (axis {axis})"
                        ));
                    }
                    window[axis] = (start as usize, end as usize);
                }
                Ok(window)
            }
            Crop::ToReference { offsets } => {
                let r = reference.ok_or("needs a reference blob")?;
                let size = [r.c, r.h, r.w];
                let mut window = [(0, 0); 3];
                for axis in 0..3 {
                    let end = offsets[axis].checked_add(size[axis]);
                    match end {
                        Some(end) if end <= dims[axis] && size[axis] > 0 => {
                            window[axis] = (offsets[axis], end);
                        }
                        _ => {
                            return Err(format!(
                                "cannot take {} from offset {} of an axis of {} (axis {axis})",
                                size[axis], offsets[axis], dims[axis]
                            ));
                        }
                    }
                }
                Ok(window)
            }
        }
    }

    pub(crate) fn out_shape(&self, inputs: &[Shape]) -> Result<Shape, String> {
        let first = *inputs.first().ok_or("has no input blob")?;
        let [c, h, w] = self.window(first, inputs.get(1).copied())?;
        Ok(Shape {
            c: c.1 - c.0,
            h: h.1 - h.0,
            w: w.1 - w.0,
        })
    }

    pub(crate) fn forward(&self, x: &Tensor, reference: Option<&Tensor>) -> Result<Tensor, String> {
        let [c, h, w] = self.window(Shape::of(x), reference.map(Shape::of))?;
        let mut data = Vec::with_capacity((c.1 - c.0) * (h.1 - h.0) * (w.1 - w.0));
        for ch in c.0..c.1 {
            let plane = x.plane(ch);
            for row in h.0..h.1 {
                data.extend_from_slice(&plane[row * x.width + w.0..row * x.width + w.1]);
            }
        }
        Ok(Tensor {
            channels: c.1 - c.0,
            height: h.1 - h.0,
            width: w.1 - w.0,
            data,
        })
    }
}
