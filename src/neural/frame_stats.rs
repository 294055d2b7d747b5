//! Tiled inference for nets that read a statistic of the whole frame: global Pooling, the
//! squeeze step of the squeeze-and-excitation blocks of Real-CUGAN and waifu2x cunet.
//!
//! A tile cannot pool the frame by itself, and giving every tile the whole frame as context
//! would cost a frame per tile. So each global Pooling's value is computed for the frame
//! first, in the order the net needs them: pass k runs every tile up to the blob the k-th
//! Pooling reads (the earlier Poolings' values given, see [`Net::forward_segment_given`]) and
//! sums (or takes the maximum of) the part of that blob the tile owns. The owned parts
//! partition the blob an untiled run makes, so the mean is the untiled one up to float
//! rounding; sums are f64 and added tile by tile in a fixed order, so the result does not
//! depend on thread timing. The last pass runs the whole net on every tile with every value
//! given. This is exact; its price is running the prefixes again (a pass per Pooling).
//!
//! A frame that fits in memory as one window skips the passes: one window is the untiled
//! run.
//!
//! Only unpadded nets take this path (the families above are): without zero padding a blob's
//! value depends on the input around it alone, so a window may begin and end anywhere on the
//! period of the net's strides, reach past the frame's edge (the extra values are not used),
//! and a blob position of a window is the untiled blob's position shifted by the window's
//! start times the blob's scale. A frame whose pre-padded size the net cannot take (a stride-2
//! layer on an odd size) is extended at its right and bottom by edge replication, as
//! realcugan-ncnn-vulkan does; the output is cut back to `scale ×` the frame. Unpadded nets
//! with strided layers and no Pooling (Real-CUGAN nose) take this path too, for the
//! alignment; they run the last pass alone.

use std::sync::Mutex;

use rayon::prelude::*;

use super::layers::Shape;
use super::tile::{Geometry, TileOptions, TileRect, extract, place_tile, plan_tiles, tile_pool};
use super::{ModelError, Net, Tensor};

/// Smallest pre-padded input side probed for the sizes the net takes.
const PROBE_FROM: usize = 128;
/// Sides probed above it (the strides' period divides this many).
const PROBE_SPAN: usize = 64;

/// A blob's side as a function of the net's input side n (pre-padded, on the strides'
/// period): `(num·n + offset) / den`, exact for the n the net takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Line {
    num: i64,
    den: i64,
    offset: i64,
}

impl Line {
    fn at(self, n: usize) -> i64 {
        (self.num * n as i64 + self.offset).div_euclid(self.den)
    }

    /// The untiled blob's index of a window's first value, for a window starting at input
    /// position `start` (on the period).
    fn shift(self, start: usize) -> i64 {
        self.num * start as i64 / self.den
    }

    /// Where the blob is split between the tile whose core ends at pre-padded input position
    /// `u` and the next: the blob position centred there.
    fn split(self, u: usize) -> i64 {
        (2 * self.num * u as i64 + self.offset).div_euclid(2 * self.den)
    }
}

/// The sizes the net takes: pre-padded sides n with `n % period == residue`; and every blob's
/// shape at two of them, `n1` and `n1 + PROBE_SPAN`, which give each blob's [`Line`].
#[derive(Debug)]
struct Sizes {
    period: usize,
    residue: usize,
    n1: usize,
    shapes: (Vec<Shape>, Vec<Shape>),
}

impl Sizes {
    fn measure(net: &Net, channels: usize) -> Result<Sizes, ModelError> {
        let takes = |n: usize| net.blob_shapes(channels, n, n).is_ok();
        let first = (PROBE_FROM..PROBE_FROM + PROBE_SPAN)
            .find(|&n| takes(n))
            .ok_or_else(|| {
                ModelError::Input(format!(
                    "this model cannot be tiled: it takes no input side from {PROBE_FROM} to {}",
                    PROBE_FROM + PROBE_SPAN - 1
                ))
            })?;
        let (n1, n2) = (first, first + PROBE_SPAN);
        let (s1, s2) = (
            net.blob_shapes(channels, n1, n1)?,
            net.blob_shapes(channels, n2, n2)?,
        );
        // The period: the smallest one on which every blob's side grows by a whole number.
        let mut period = 1usize;
        for (a, b) in s1.iter().zip(&s2) {
            if b.w > a.w {
                let growth = (b.w - a.w) as i64;
                let den = PROBE_SPAN as i64 / gcd(growth, PROBE_SPAN as i64);
                period = lcm(period, den as usize);
            }
        }
        Ok(Sizes {
            period,
            residue: first % period,
            n1,
            shapes: (s1, s2),
        })
    }

    /// The smallest side ≥ n the net takes.
    fn at_least(&self, n: usize) -> usize {
        n + (self.residue + self.period - n % self.period) % self.period
    }

    /// The line of `blob`, from its sides at the two measured sizes.
    fn line(&self, blob: usize) -> Line {
        let side = |shapes: &[Shape]| shapes.get(blob).map_or(0, |s| s.w as i64);
        let (l1, l2) = (side(&self.shapes.0), side(&self.shapes.1));
        let span = PROBE_SPAN as i64;
        let g = gcd(l2 - l1, span).max(1);
        let (num, den) = ((l2 - l1) / g, span / g);
        Line {
            num,
            den,
            offset: den * l1 - num * self.n1 as i64,
        }
    }
}

fn gcd(a: i64, b: i64) -> i64 {
    let (mut a, mut b) = (a.abs(), b.abs());
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn lcm(a: usize, b: usize) -> usize {
    a / gcd(a as i64, b as i64).max(1) as usize * b
}

/// One tile's window in pre-padded input coordinates (the untiled run's input starts at 0).
#[derive(Debug, Clone, Copy)]
struct Window {
    rect: TileRect,
    y0: usize,
    y1: usize,
    x0: usize,
    x1: usize,
}

/// [`super::upscale_tiled`] for an unpadded net with global Poolings or strides (see the
/// module's header). `g` is the net's geometry; `threads` > 0.
pub(super) fn upscale(
    net: &Net,
    input: &Tensor,
    g: Geometry,
    opts: &TileOptions,
    threads: usize,
) -> Result<Tensor, ModelError> {
    let c = input.channels;
    let sizes = Sizes::measure(net, c)?;
    let p = g.prepad;
    // The frame as the net takes it: pre-padded, then extended to a side it takes.
    let (full_h, full_w) = (
        sizes.at_least(input.height + 2 * p),
        sizes.at_least(input.width + 2 * p),
    );
    let (ext_h, ext_w) = (full_h - 2 * p, full_w - 2 * p);
    let probe = sizes.at_least(PROBE_FROM);
    let floats_per_px =
        net.segment_peak_floats(&net.whole(), (c, probe, probe))? as f64 / (probe * probe) as f64;
    // One window is the untiled run: no Pooling passes (about half the work of a tiled
    // frame), and its threads share each convolution's rows. Taken whenever the frame fits
    // the memory of all the tile threads, or a third of what the system has available. The
    // blobs alive at once are not all a run holds: measured, a whole frame's peak RSS is
    // 2.4–2.7× their size (640×360: 453 MB of blobs, 1.2 GB; 1280×720: 1.7 GB, 4.1 GB).
    const PEAK_PER_BLOB_BYTE: f64 = 2.7;
    let whole_bytes = (full_h * full_w) as f64 * floats_per_px * 4.0 * PEAK_PER_BLOB_BYTE;
    let budget = ((opts.tile_bytes * threads) as u64).max(available_memory().unwrap_or(0) / 3);
    let whole_fits = opts.tile_bytes > 0 && whole_bytes <= budget as f64;
    let rects = if whole_fits {
        vec![TileRect {
            y0: 0,
            y1: ext_h,
            x0: 0,
            x1: ext_w,
        }]
    } else {
        plan_tiles(
            (ext_h, ext_w),
            (opts.overlap, p),
            opts,
            floats_per_px,
            threads,
        )
    };
    let windows: Vec<Window> = rects
        .into_iter()
        .map(|rect| {
            let span = |a: usize, b: usize, full: usize| {
                let start = a.saturating_sub(opts.overlap);
                let start = start - start % sizes.period;
                let end = (b + 2 * p + opts.overlap).min(full).max(start + 1);
                (start, start + sizes.at_least(end - start))
            };
            let (y0, y1) = span(rect.y0, rect.y1, full_h);
            let (x0, x1) = span(rect.x0, rect.x1, full_w);
            Window {
                rect,
                y0,
                y1,
                x0,
                x1,
            }
        })
        .collect();
    log::debug!(
        "{}×{} frame (about {:.0} MB as one window, {:.0} MB allowed): {} windows (largest {}×{}), \
         {} Pooling passes first",
        input.width,
        input.height,
        whole_bytes / 1e6,
        budget as f64 / 1e6,
        windows.len(),
        windows.iter().map(|w| w.x1 - w.x0).max().unwrap_or(0),
        windows.iter().map(|w| w.y1 - w.y0).max().unwrap_or(0),
        if windows.len() > 1 {
            net.global_pools().len()
        } else {
            0
        }
    );
    let (pool, bands) = tile_pool(threads, windows.len())?;
    // The window's input, in frame coordinates; past the frame's edges, its edge replicated.
    let cut = |w: &Window| {
        let p = p as isize;
        extract(
            input,
            w.y0 as isize - p,
            w.y1 as isize - p,
            w.x0 as isize - p,
            w.x1 as isize - p,
        )
    };

    // One tile is the untiled run: its Poolings see the whole frame.
    let mut given: Vec<(usize, Tensor)> = Vec::new();
    if windows.len() > 1 {
        for &layer in net.global_pools() {
            let (prefix, blob) = net.prefix_to_pool(layer)?;
            let line = sizes.line(blob);
            let max = net.pool_is_max(layer);
            let owned = |w: &Window| -> Result<Vec<f64>, ModelError> {
                let part =
                    net.forward_segment_given(&prefix, cut(w), opts.kernels, bands, &given)?;
                let stat = owned_stat(&part, w, line, (full_h, full_w), p, max);
                super::pool::recycle(part.data);
                stat
            };
            let parts: Vec<Vec<f64>> = pool.install(|| {
                windows
                    .par_iter()
                    .with_max_len(1)
                    .map(owned)
                    .collect::<Result<Vec<_>, _>>()
            })?;
            let (blob_h, blob_w) = (line.at(full_h), line.at(full_w));
            given.push((layer, combine(&parts, max, blob_h * blob_w)));
        }
    }

    let (out_c, _, _) = net.output_shape(c, probe, probe)?;
    let output = Mutex::new(Tensor::zeros(
        out_c,
        g.scale * input.height,
        g.scale * input.width,
    ));
    let whole = net.whole();
    let run = |w: &Window| -> Result<(), ModelError> {
        let result = net.forward_segment_given(&whole, cut(w), opts.kernels, bands, &given)?;
        place_tile(&output, result, &w.rect, (w.y0, w.x0), g.scale)
    };
    pool.install(|| windows.par_iter().with_max_len(1).try_for_each(run))?;
    output
        .into_inner()
        .map_err(|_| ModelError::Runtime("a tile thread panicked".to_string()))
}

/// The memory the system has available now, in bytes (Linux: `MemAvailable`).
fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Per channel, the sum (or the maximum) of the part of `part` (a window's blob) that its tile
/// owns: between the splits at its core's edges, the frame's edges owning the blob's ends.
fn owned_stat(
    part: &Tensor,
    w: &Window,
    line: Line,
    (full_h, full_w): (usize, usize),
    prepad: usize,
    max: bool,
) -> Result<Vec<f64>, ModelError> {
    let (ext_h, ext_w) = (full_h - 2 * prepad, full_w - 2 * prepad);
    let range = |core0: usize, core1: usize, ext: usize, full: usize, start: usize, len: usize| {
        let split = |edge: usize| {
            if edge == 0 {
                0
            } else if edge >= ext {
                line.at(full)
            } else {
                line.split(edge + prepad)
            }
        };
        let shift = line.shift(start);
        let (a, b) = (split(core0) - shift, split(core1) - shift);
        if a < 0 || b > len as i64 || a > b {
            return Err(ModelError::Runtime(format!(
                "a tile's window does not hold the part of a pooled blob it owns \
                 ({a}..{b} of 0..{len})"
            )));
        }
        Ok((a as usize, b as usize))
    };
    let (y0, y1) = range(w.rect.y0, w.rect.y1, ext_h, full_h, w.y0, part.height)?;
    let (x0, x1) = range(w.rect.x0, w.rect.x1, ext_w, full_w, w.x0, part.width)?;
    Ok((0..part.channels)
        .map(|c| {
            let plane = part.plane(c);
            let rows = (y0..y1).map(|y| &plane[y * part.width + x0..y * part.width + x1]);
            if max {
                rows.flatten()
                    .fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)))
            } else {
                rows.flatten().map(|&v| f64::from(v)).sum()
            }
        })
        .collect())
}

/// The frame's Pooling value from the tiles' parts (in tile order): the maximum, or the sum
/// over the blob's `count` values.
fn combine(parts: &[Vec<f64>], max: bool, count: i64) -> Tensor {
    let channels = parts.first().map_or(0, Vec::len);
    let data = (0..channels)
        .map(|c| {
            let values = parts.iter().map(|p| p[c]);
            if max {
                values.fold(f64::NEG_INFINITY, f64::max) as f32
            } else {
                (values.sum::<f64>() / count.max(1) as f64) as f32
            }
        })
        .collect();
    Tensor {
        channels,
        height: 1,
        width: 1,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::neural::Kernels;
    use crate::neural::testutil::{self, Rng, max_abs_diff};
    use crate::neural::tile::upscale_tiled;

    /// The untiled run the tiles must equal: the frame pre-padded by `prepad` and extended
    /// to even sides, both by edge replication, its output cut back to 2× the frame.
    fn untiled(net: &Net, x: &Tensor, prepad: usize, kernels: Kernels) -> Tensor {
        let even = |n: usize| n + n % 2;
        let (h, w) = (even(x.height + 2 * prepad), even(x.width + 2 * prepad));
        let p = prepad as isize;
        let input = extract(x, -p, h as isize - p, -p, w as isize - p);
        let out = net.forward(&input, kernels).unwrap();
        let (oh, ow) = (2 * x.height, 2 * x.width);
        let mut data = Vec::new();
        for c in 0..out.channels {
            for y in 0..oh {
                data.extend_from_slice(&out.plane(c)[y * out.width..][..ow]);
            }
        }
        Tensor::from_data(out.channels, oh, ow, data).unwrap()
    }

    #[test]
    fn the_sizes_and_lines_of_an_se_unet() {
        let mut rng = Rng(31);
        let (param, bin) = testutil::mini_se_unet(&mut rng);
        let net = testutil::net(&param, &bin);
        assert_eq!(net.global_pools().len(), 2);
        // The 3×3 convs and the deconvs reach a few pixels once the pools are given.
        assert!(
            net.frame_stats_context_px() < 16,
            "{}",
            net.frame_stats_context_px()
        );
        let sizes = Sizes::measure(&net, 3).unwrap();
        assert_eq!((sizes.period, sizes.residue), (2, 0));
        assert_eq!(sizes.at_least(37), 38);
        assert_eq!(sizes.at_least(38), 38);
        // The first Pooling reads the stride-2 conv's output: (n − 2) / 2.
        let (_, blob) = net.prefix_to_pool(net.global_pools()[0]).unwrap();
        let line = sizes.line(blob);
        assert_eq!((line.at(40), line.at(42)), (19, 20));
        assert_eq!(line.shift(10), 5);
        // The second reads the sum at n − 4.
        let (_, blob) = net.prefix_to_pool(net.global_pools()[1]).unwrap();
        let line = sizes.line(blob);
        assert_eq!((line.at(40), line.shift(6), line.split(20)), (36, 6, 18));
    }

    #[test]
    fn tiles_with_frame_statistics_equal_the_untiled_run() {
        let mut rng = Rng(32);
        let (param, bin) = testutil::mini_se_unet(&mut rng);
        let net = testutil::net(&param, &bin);
        // Odd and even sides; a gradient so that every tile's own statistics differ.
        for (h, w) in [(23, 31), (16, 20), (9, 40)] {
            let mut x = rng.tensor(3, h, w);
            for (i, v) in x.data.iter_mut().enumerate() {
                *v = 0.5 * *v + (i % w) as f32 / w as f32;
            }
            let reference = untiled(&net, &x, 3, Kernels::Reference);
            for (tile, threads, kernels) in [
                (5, 2, Kernels::Reference),
                (8, 1, Kernels::Fast),
                (13, 3, Kernels::Fast),
                (64, 2, Kernels::Fast),
            ] {
                let opts = TileOptions {
                    tile,
                    overlap: 0,
                    threads,
                    kernels,
                    tile_bytes: 0,
                };
                let tiled = upscale_tiled(&net, &x, &opts).unwrap();
                assert_eq!(tiled.shape(), (3, 2 * h, 2 * w));
                let diff = max_abs_diff(&tiled, &reference);
                assert!(diff < 1e-4, "{w}×{h}, tile {tile}: {diff}");
            }
        }
    }

    #[test]
    fn a_tile_pooling_its_own_window_would_differ() {
        // The test above would notice tiles that pool themselves: on this input the
        // statistics of a 5-pixel tile are far from the frame's.
        let mut rng = Rng(33);
        let (param, bin) = testutil::mini_se_unet(&mut rng);
        let net = testutil::net(&param, &bin);
        let mut x = rng.tensor(3, 16, 20);
        for (i, v) in x.data.iter_mut().enumerate() {
            *v = 0.5 * *v + (i % 20) as f32 / 20.0;
        }
        let reference = untiled(&net, &x, 3, Kernels::Reference);
        let own = extract(&x, -3, 19, -3, 3 + 5 + 3);
        let alone = net.forward(&own, Kernels::Reference).unwrap();
        let mut worst = 0f32;
        for c in 0..3 {
            for y in 0..32 {
                for xx in 0..10 {
                    let a = alone.plane(c)[y * alone.width + xx];
                    let b = reference.plane(c)[y * reference.width + xx];
                    worst = worst.max((a - b).abs());
                }
            }
        }
        assert!(worst > 1e-3, "{worst}");
    }
}
