//! ncnn `Crop` in its starts/ends/axes form (parameters 9, 10 and 11 as arrays): a window of
//! the blob along some of its axes (0 or −3 channels, 1 or −2 rows, 2 or −1 columns). A
//! negative start or end counts from the end; an end of −233, or one past the blob, is the
//! end.

use super::super::param::LayerDecl;
use super::super::{ModelError, Tensor};
use super::{Shape, param_error};

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Crop {
    /// (axis 0–2, start, end) as written.
    ranges: Vec<(usize, i64, i64)>,
}

/// ncnn's "to the end".
const TO_END: i64 = -233;

impl Crop {
    pub(crate) fn load(decl: &LayerDecl) -> Result<Crop, ModelError> {
        let starts = decl.array(9)?;
        let ends = decl.array(10)?;
        let axes = decl.array(11)?;
        if starts.is_empty() {
            return Err(param_error(
                decl,
                "Crop with offsets (parameters 0–8) is not supported; only starts/ends/axes \
                 (parameters 9–11)",
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
        Ok(Crop { ranges })
    }

    /// (start, end) on each axis of a blob of shape `s`.
    fn window(&self, s: Shape) -> Result<[(usize, usize); 3], String> {
        let dims = [s.c, s.h, s.w];
        let mut window = dims.map(|d| (0, d));
        for &(axis, start, end) in &self.ranges {
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

    pub(crate) fn out_shape(&self, input: Shape) -> Result<Shape, String> {
        let [c, h, w] = self.window(input)?;
        Ok(Shape {
            c: c.1 - c.0,
            h: h.1 - h.0,
            w: w.1 - w.0,
        })
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor, String> {
        let [c, h, w] = self.window(Shape::of(x))?;
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
