//! ncnn's bicubic Interp (resize_type 3, align_corner 0) as a resize to a given size: the
//! downscale that turns a 4× net's output into the 2× and 3× of animevideov3 as shipped (and
//! of x4plus and the users' own models).
//!
//! The resize is separable and each output pixel reads 4 source pixels around one position,
//! so a part of the output can be computed from a part of the source: [`resize_region`] makes
//! the output rows and columns of one tile from that tile's own window of the net's output,
//! with the same taps and the same arithmetic as the whole frame, so the tiled run never holds
//! the frame at the net's scale and equals the whole-frame resize bit for bit.

use super::layers::interp::interpolate_cubic;
use super::{ModelError, Tensor};

/// Per output position: the first of the 4 source indices read and their weights.
pub(crate) type Taps = Vec<(usize, [f32; 4])>;

/// The taps of a resize from `size` to `out` positions, as ncnn's `cubic_coeffs` with
/// align_corner = 0: taps outside the source are folded onto its edge, so the 4 indices read
/// are `start..start + 4`, clipped to the source when it is shorter than 4.
pub(crate) fn cubic_taps(size: usize, out: usize) -> Taps {
    let scale = size as f64 / out as f64;
    (0..out)
        .map(|d| {
            let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
            let sx = f.floor();
            let a = interpolate_cubic(f - sx);
            // Clamp each tap to the image and add up weights landing on the same pixel: the
            // same sums as ncnn's shifted windows at the borders.
            let mut weights = [0f32; 4];
            let first = (sx as isize - 1).clamp(0, size as isize - 1) as usize;
            let start = first.min(size.saturating_sub(4));
            for (k, &wk) in a.iter().enumerate() {
                let idx = (sx as isize - 1 + k as isize).clamp(0, size as isize - 1) as usize;
                let slot = (idx - start).min(3);
                weights[slot] += wk;
            }
            (start, weights)
        })
        .collect()
}

/// Bicubic resize of every channel to `out_h × out_w`, computed as ncnn's Interp: horizontal
/// pass, then vertical.
pub fn resize_bicubic_ncnn(input: &Tensor, out_h: usize, out_w: usize) -> Tensor {
    let (yt, xt) = (
        cubic_taps(input.height, out_h),
        cubic_taps(input.width, out_w),
    );
    let whole = Region {
        origin: (0, 0),
        size: (input.height, input.width),
    };
    resize_region(input, whole, &yt, &xt)
        .expect("a whole tensor holds every source pixel its own taps read")
}

/// Where a window of the source lies in the whole source.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Region {
    /// The window's first row and column in the whole source.
    pub origin: (usize, usize),
    /// The whole source's height and width (taps never read past them).
    pub size: (usize, usize),
}

/// The output pixels `yt × xt` (taps of the whole source, see [`cubic_taps`]) of the resize
/// of a whole source of which `window` holds the part at `region.origin`. Fails when a tap
/// reads outside the window.
pub(crate) fn resize_region(
    window: &Tensor,
    region: Region,
    yt: &[(usize, [f32; 4])],
    xt: &[(usize, [f32; 4])],
) -> Result<Tensor, ModelError> {
    let (h, w) = (window.height, window.width);
    let (oy, ox) = region.origin;
    let (size_h, size_w) = region.size;
    // Window-local index of tap k of a position starting at `s`, clamped to the whole source.
    let local = |s: usize, k: usize, size: usize, origin: usize, len: usize| {
        (s + k)
            .min(size.saturating_sub(1))
            .checked_sub(origin)
            .filter(|&i| i < len)
    };
    let index = |taps: &[(usize, [f32; 4])], size, origin, len| {
        taps.iter()
            .map(|&(s, _)| {
                let mut idx = [0usize; 4];
                for (k, slot) in idx.iter_mut().enumerate() {
                    *slot = local(s, k, size, origin, len).ok_or_else(|| {
                        ModelError::Runtime(format!(
                            "the resize reads source position {} outside its window {origin}..{}",
                            s + k,
                            origin + len
                        ))
                    })?;
                }
                Ok(idx)
            })
            .collect::<Result<Vec<[usize; 4]>, ModelError>>()
    };
    let (xi, yi) = (index(xt, size_w, ox, w)?, index(yt, size_h, oy, h)?);
    // The window rows the vertical pass reads, as a range, so the horizontal pass makes no more.
    let first = yi.iter().map(|i| i[0]).min().unwrap_or(0);
    let last = yi.iter().map(|i| i[3] + 1).max().unwrap_or(0);
    let (out_h, out_w) = (yt.len(), xt.len());
    let mut data = vec![0f32; window.channels * out_h * out_w];
    let mut rows = vec![0f32; (last - first) * out_w];
    for c in 0..window.channels {
        let plane = window.plane(c);
        for y in first..last {
            let src = &plane[y * w..(y + 1) * w];
            let dst = &mut rows[(y - first) * out_w..][..out_w];
            for ((d, &(_, a)), i) in dst.iter_mut().zip(xt).zip(&xi) {
                *d = src[i[0]] * a[0] + src[i[1]] * a[1] + src[i[2]] * a[2] + src[i[3]] * a[3];
            }
        }
        let out = &mut data[c * out_h * out_w..(c + 1) * out_h * out_w];
        for ((dst, &(_, b)), i) in out.chunks_exact_mut(out_w).zip(yt).zip(&yi) {
            let row = |k: usize| &rows[(i[k] - first) * out_w..][..out_w];
            let (r0, r1, r2, r3) = (row(0), row(1), row(2), row(3));
            for x in 0..out_w {
                dst[x] = r0[x] * b[0] + r1[x] * b[1] + r2[x] * b[2] + r3[x] * b[3];
            }
        }
    }
    Ok(Tensor {
        channels: window.channels,
        height: out_h,
        width: out_w,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::neural::testutil::tensor_of as tensor;

    #[test]
    fn bicubic_keeps_constants_and_linear_ramps() {
        let flat = tensor(2, 8, 12, |c, _, _| 0.25 + c as f32);
        let out = resize_bicubic_ncnn(&flat, 4, 6);
        assert!(out.data[..24].iter().all(|v| (v - 0.25).abs() < 1e-6));
        // Half size: output x samples input at 2x + 0.5; a linear ramp stays exact away
        // from the edges (Keys' cubic reproduces linear functions).
        let ramp = tensor(1, 8, 16, |_, _, x| x as f32);
        let out = resize_bicubic_ncnn(&ramp, 4, 8);
        for x in 1..7 {
            assert!((out.data[x] - (2.0 * x as f32 + 0.5)).abs() < 1e-5, "{x}");
        }
    }

    #[test]
    fn bicubic_edges_match_clamped_taps() {
        // Against a direct formula: sum over 4 taps with indices clamped to the image.
        let input = tensor(1, 6, 9, |_, y, x| ((x * 7 + y * 3) % 5) as f32 * 0.2);
        let (oh, ow) = (4, 7);
        let out = resize_bicubic_ncnn(&input, oh, ow);
        let direct = |size: usize, out: usize, d: usize| -> Vec<(usize, f32)> {
            let f = ((d as f64 + 0.5) * (size as f64 / out as f64) - 0.5) as f32;
            let s = f.floor();
            let a = interpolate_cubic(f - s);
            (0..4)
                .map(|k| {
                    let i = (s as isize - 1 + k as isize).clamp(0, size as isize - 1) as usize;
                    (i, a[k])
                })
                .collect()
        };
        for y in 0..oh {
            for x in 0..ow {
                let mut v = 0.0;
                for (iy, wy) in direct(6, oh, y) {
                    for (ix, wx) in direct(9, ow, x) {
                        v += wy * wx * input.data[iy * 9 + ix];
                    }
                }
                assert!((out.data[y * ow + x] - v).abs() < 1e-5, "({y},{x})");
            }
        }
    }

    #[test]
    fn a_region_equals_its_part_of_the_whole_resize_bit_for_bit() {
        // A 4× source resized to 3× and 2×; every block of output, made from a window that
        // holds just the source rows and columns its taps read (edge blocks included).
        let (h, w) = (4 * 7, 4 * 5);
        let src = tensor(2, h, w, |c, y, x| {
            ((x * 13 + y * 7 + c * 5) % 11) as f32 / 10.0
        });
        for (out_h, out_w) in [(3 * 7, 3 * 5), (2 * 7, 2 * 5), (2, 3)] {
            let whole = resize_bicubic_ncnn(&src, out_h, out_w);
            let (yt, xt) = (cubic_taps(h, out_h), cubic_taps(w, out_w));
            for ys in [0..out_h / 2, out_h / 2..out_h] {
                for xs in [0..1, 1..out_w] {
                    let (yt, xt) = (&yt[ys.clone()], &xt[xs.clone()]);
                    let y0 = yt[0].0;
                    let y1 = (yt[yt.len() - 1].0 + 4).min(h);
                    let x0 = xt[0].0;
                    let x1 = (xt[xt.len() - 1].0 + 4).min(w);
                    let window = tensor(2, y1 - y0, x1 - x0, |c, y, x| {
                        src.data[(c * h + y0 + y) * w + x0 + x]
                    });
                    let region = Region {
                        origin: (y0, x0),
                        size: (h, w),
                    };
                    let part = resize_region(&window, region, yt, xt).unwrap();
                    for c in 0..2 {
                        for (y, oy) in ys.clone().enumerate() {
                            for (x, ox) in xs.clone().enumerate() {
                                assert_eq!(
                                    part.data[(c * yt.len() + y) * xt.len() + x].to_bits(),
                                    whole.data[(c * out_h + oy) * out_w + ox].to_bits(),
                                    "{out_h}×{out_w} at ({c},{oy},{ox})"
                                );
                            }
                        }
                    }
                    // One row fewer at the top and the window no longer holds every tap.
                    if y1 - y0 > 1 {
                        let short = tensor(2, y1 - y0 - 1, x1 - x0, |c, y, x| {
                            src.data[(c * h + y0 + 1 + y) * w + x0 + x]
                        });
                        let moved = Region {
                            origin: (y0 + 1, x0),
                            size: (h, w),
                        };
                        assert!(resize_region(&short, moved, yt, xt).is_err());
                    }
                }
            }
        }
    }
}
