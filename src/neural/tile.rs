//! Tiled inference: a frame is cut into tiles that run in parallel (one tile per thread), so
//! memory depends on the tile size and the thread count, not on the frame size, while the
//! result equals a single untiled run.
//!
//! The net's geometry is measured through shape inference: `out(n) = scale·n − shrink`.
//! - Padded nets (shrink 0, e.g. animevideov3): each tile is run with `context` input pixels
//!   around it (the receptive-field radius, or the caller's overlap if larger), clipped to the
//!   frame; at the frame's edges the tile edge is the frame edge, so the convolutions' zero
//!   padding sees exactly what the untiled run sees.
//! - Unpadded nets (shrink > 0, e.g. waifu2x upconv_7, which loses 7 input pixels per side):
//!   the frame is treated as pre-padded by `shrink / (2·scale)` pixels of edge replication, as
//!   waifu2x-ncnn-vulkan does, so the output is exactly `scale ×` the input. Such nets have no
//!   border effects, so the pre-padding itself is all the context a tile needs.

use std::sync::Mutex;

use rayon::prelude::*;

use super::net::Segment;
use super::resize::{Region, Taps, cubic_taps, resize_bicubic_ncnn, resize_region};
use super::{Kernels, ModelError, Net, Tensor};

/// How [`upscale_tiled`] cuts and runs a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileOptions {
    /// Largest tile edge in input pixels (before context is added).
    pub tile: usize,
    /// Context around each tile in input pixels; the net's receptive field is used when it
    /// is larger, so 0 is always safe.
    pub overlap: usize,
    /// Tiles running at once (threads); 0 = one per core.
    pub threads: usize,
    pub kernels: Kernels,
    /// Working memory one tile may use, in bytes (0: no limit but `tile`). With a limit, each
    /// segment of the net gets the tiling that fits it and costs least (see `plan_tiles`).
    pub tile_bytes: usize,
}

impl Default for TileOptions {
    fn default() -> TileOptions {
        TileOptions {
            tile: 256,
            overlap: 0,
            threads: 0,
            kernels: Kernels::Fast,
            tile_bytes: 0,
        }
    }
}

/// How a net (or a segment of it) maps input sizes to output sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// Output pixels per input pixel.
    pub scale: usize,
    /// Edge-replicated input pixels added on every side so the output is `scale ×` the input.
    pub prepad: usize,
}

/// Measures the net's geometry from its shape inference at two sizes.
pub(crate) fn geometry(net: &Net, channels: usize) -> Result<Geometry, ModelError> {
    geometry_from(|n| net.output_shape(channels, n, n))
}

/// The geometry of a map from square inputs of side n to (channels, h, w).
pub(super) fn geometry_from(
    shape: impl Fn(usize) -> Result<(usize, usize, usize), ModelError>,
) -> Result<Geometry, ModelError> {
    const N1: usize = 64;
    const N2: usize = 128;
    let (_, h1, w1) = shape(N1)?;
    let (_, h2, w2) = shape(N2)?;
    let unsupported = |detail: String| {
        ModelError::Input(format!(
            "this model cannot be tiled: {detail} (tiling needs out = scale·in − shrink with an \
             integer scale)"
        ))
    };
    if h1 != w1 || h2 != w2 || w2 <= w1 || (w2 - w1) % (N2 - N1) != 0 {
        return Err(unsupported(format!(
            "{N1}² → {w1}×{h1} and {N2}² → {w2}×{h2}"
        )));
    }
    let scale = (w2 - w1) / (N2 - N1);
    let shrink = (scale * N1).checked_sub(w1).ok_or_else(|| {
        unsupported(format!(
            "{N1}² → {w1}×{h1}: the output grows by more than the scale"
        ))
    })?;
    if !shrink.is_multiple_of(2 * scale) {
        return Err(unsupported(format!(
            "it loses {shrink} output pixels, not a whole number of input pixels per side"
        )));
    }
    Ok(Geometry {
        scale,
        prepad: shrink / (2 * scale),
    })
}

/// The output geometry of [`upscale_tiled`] for an input of this size: (channels, h, w).
pub fn tiled_output_shape(
    net: &Net,
    c: usize,
    h: usize,
    w: usize,
) -> Result<(usize, usize, usize), ModelError> {
    let g = geometry(net, c)?;
    let (out_c, _, _) = net.output_shape(c, 2 * g.prepad + PROBE, 2 * g.prepad + PROBE)?;
    Ok((out_c, g.scale * h, g.scale * w))
}

/// The side of the input a net's output channels and memory per pixel are read from by shape
/// inference: at a whole large frame's size it would refuse the blobs a whole-frame run would
/// make (the reason the frame is tiled).
pub(super) const PROBE: usize = 64;

/// One tile: input rows `y0..y1`, columns `x0..x1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TileRect {
    pub y0: usize,
    pub y1: usize,
    pub x0: usize,
    pub x1: usize,
}

/// RGB in [0,1] (3×H×W) → upscaled RGB; tiles run in parallel (one per thread, rayon), each
/// tile padded by enough context that the result equals the untiled run within 1e-4; memory
/// bounded by tile size, not frame size. Handles nets whose convs are unpadded (waifu2x
/// upconv_7 needs its input pre-padded by 7 px, edge-replicated) and padded ones (animevideov3).
/// A net cut in segments (RRDB) runs them one after the other, each tiled its own way, with
/// the cut blob kept for the whole frame in between.
pub fn upscale_tiled(net: &Net, input: &Tensor, opts: &TileOptions) -> Result<Tensor, ModelError> {
    upscale_tiled_to(net, input, opts, None)
}

/// [`upscale_tiled`] to `out_scale` × the input, below the net's own scale: the net's output
/// resized as ncnn's bicubic Interp does it (the 2× and 3× of a 4× net, as animevideov3's
/// shipped x2/x3 models do). Each tile resizes its own part (its window has one more input
/// pixel of context for the resize's taps), so the frame at the net's scale is never held
/// whole. The result is the resize of [`upscale_tiled`]'s output as the tiles are exact
/// (within 1e-4), and bit for bit that when the frame is one tile.
pub fn upscale_tiled_resized(
    net: &Net,
    input: &Tensor,
    opts: &TileOptions,
    out_scale: usize,
) -> Result<Tensor, ModelError> {
    upscale_tiled_to(net, input, opts, Some(out_scale))
}

fn upscale_tiled_to(
    net: &Net,
    input: &Tensor,
    opts: &TileOptions,
    out_scale: Option<usize>,
) -> Result<Tensor, ModelError> {
    input.check()?;
    if opts.tile == 0 {
        return Err(ModelError::Input(
            "the tile size is 0; use a tile of at least one pixel (e.g. 256)".to_string(),
        ));
    }
    let threads = if opts.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        opts.threads
    };
    // Unpadded nets with global Poolings, or with strides (Real-CUGAN nose): their own path,
    // resized whole afterwards (no shipped model of this kind is resized).
    if net.frame_stats_context_px() < u32::MAX as usize {
        let g = geometry(net, input.channels)?;
        if g.prepad > 0 && (!net.global_pools().is_empty() || net.has_strides()) {
            if let Some(s) = out_scale {
                check_out_scale(s, g.scale)?;
            }
            let native = super::frame_stats::upscale(net, input, g, opts, threads)?;
            return match out_scale {
                Some(s) => Ok(resize_bicubic_ncnn(
                    &native,
                    s * input.height,
                    s * input.width,
                )),
                None => Ok(native),
            };
        }
    }
    let segments = net.segments();
    let mut seed: Option<Tensor> = None;
    for (i, segment) in segments.iter().enumerate() {
        let from = seed.as_ref().unwrap_or(input);
        let resize = if i + 1 == segments.len() {
            out_scale
        } else {
            None
        };
        seed = Some(tile_segment(net, segment, from, opts, threads, resize)?);
    }
    seed.ok_or_else(|| ModelError::Runtime("the model has no layers to run".to_string()))
}

fn check_out_scale(out_scale: usize, native: usize) -> Result<(), ModelError> {
    if out_scale == 0 || out_scale > native {
        return Err(ModelError::Input(format!(
            "the model upscales by {native}; its output cannot be resized to {out_scale}×"
        )));
    }
    Ok(())
}

/// Runs one segment over the whole of `input`, tile by tile; with `out_scale`, each tile's
/// output is resized to that scale before it is placed.
fn tile_segment(
    net: &Net,
    segment: &Segment,
    input: &Tensor,
    opts: &TileOptions,
    threads: usize,
    out_scale: Option<usize>,
) -> Result<Tensor, ModelError> {
    let c = input.channels;
    let g = geometry_from(|n| net.segment_output_shape(segment, (c, n, n)))?;
    let (height, width) = (input.height, input.width);
    let context = if g.prepad > 0 {
        opts.overlap
    } else {
        opts.overlap.max(segment.context_px)
    };
    // The resize reads the net's output up to one input pixel beyond a tile.
    let context = context + usize::from(out_scale.is_some());
    let (out_c, _, _) =
        net.segment_output_shape(segment, (c, 2 * g.prepad + PROBE, 2 * g.prepad + PROBE))?;
    let resize = match out_scale {
        Some(s) => {
            check_out_scale(s, g.scale)?;
            Some(Resize {
                scale: s,
                native: (g.scale * height, g.scale * width),
                yt: cubic_taps(g.scale * height, s * height),
                xt: cubic_taps(g.scale * width, s * width),
            })
        }
        None => None,
    };
    let placed_scale = out_scale.unwrap_or(g.scale);
    let output = Mutex::new(Tensor::zeros(
        out_c,
        placed_scale * height,
        placed_scale * width,
    ));

    let floats_per_px =
        net.segment_peak_floats(segment, (c, PROBE, PROBE))? as f64 / (PROBE * PROBE) as f64;
    let tiles = plan_tiles(
        (height, width),
        (context, g.prepad),
        opts,
        floats_per_px,
        threads,
    );
    let (pool, bands) = tile_pool(threads, tiles.len())?;
    let run = Run {
        g,
        context,
        kernels: opts.kernels,
        bands,
        resize: resize.as_ref(),
    };
    pool.install(|| {
        tiles
            .par_iter()
            .with_max_len(1)
            .try_for_each(|rect| run_tile(net, segment, input, rect, run, &output))
    })?;
    output
        .into_inner()
        .map_err(|_| ModelError::Runtime("a tile thread panicked".to_string()))
}

/// The rayon pool of `threads` tile threads for `tiles` tiles, and the row bands each tile's
/// fast convolutions are split into: with fewer tiles than threads (a whole frame whose context
/// spans it), the idle threads take bands of each convolution's rows.
pub(super) fn tile_pool(
    threads: usize,
    tiles: usize,
) -> Result<(rayon::ThreadPool, usize), ModelError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .thread_name(|i| format!("neural-tile-{i}"))
        .build()
        .map_err(|e| ModelError::Runtime(format!("cannot start the tile threads: {e}")))?;
    Ok((pool, threads.div_ceil(tiles.max(1)).max(1)))
}

/// The tiles of a `height`×`width` input, each run with `context` pixels around it (clipped
/// to the frame, which is edge-extended by `prepad`). Without a memory limit: equal tiles of at most `opts.tile` (a narrow remainder
/// tile would pay the context on both sides for a few pixels of output). With one: of the
/// even grids whose tiles fit `opts.tile` and whose largest window fits `opts.tile_bytes`,
/// the one that finishes first on `threads` threads (rounds × largest window), then does the
/// least work; the smallest windows when none fits.
pub(super) fn plan_tiles(
    (height, width): (usize, usize),
    (context, prepad): (usize, usize),
    opts: &TileOptions,
    floats_per_px: f64,
    threads: usize,
) -> Vec<TileRect> {
    let grid = |ny: usize, nx: usize| {
        let (step_y, step_x) = (height.div_ceil(ny).max(1), width.div_ceil(nx).max(1));
        let mut tiles = Vec::new();
        for y0 in (0..height).step_by(step_y) {
            for x0 in (0..width).step_by(step_x) {
                tiles.push(TileRect {
                    y0,
                    y1: (y0 + step_y).min(height),
                    x0,
                    x1: (x0 + step_x).min(width),
                });
            }
        }
        tiles
    };
    // As `run_tile` cuts it, in pre-padded coordinates (the frame spans −prepad … len+prepad).
    let window = |r: &TileRect| {
        let (p, m) = (prepad as isize, context as isize);
        let span = |a: usize, b: usize, len: usize| {
            ((b as isize + p + m).min(len as isize + p) - (a as isize - p - m).max(-p)) as usize
        };
        span(r.y0, r.y1, height) * span(r.x0, r.x1, width)
    };
    if opts.tile_bytes == 0 {
        return grid(height.div_ceil(opts.tile), width.div_ceil(opts.tile));
    }
    let fits = |px: usize| px as f64 * floats_per_px * 4.0 <= opts.tile_bytes as f64;
    const MOST_PER_SIDE: usize = 64;
    let mut best: Option<((bool, usize, usize), Vec<TileRect>)> = None;
    // From the fewest tiles `opts.tile` allows to one per pixel, at most 64 per side.
    let counts = |len: usize| {
        let fewest = len.div_ceil(opts.tile).max(1);
        fewest..=fewest.max(len.clamp(1, MOST_PER_SIDE))
    };
    for ny in counts(height) {
        for nx in counts(width) {
            let tiles = grid(ny, nx);
            let largest = tiles.iter().map(window).max().unwrap_or(0);
            let work: usize = tiles.iter().map(window).sum();
            let rounds = tiles.len().div_ceil(threads.max(1));
            // Fitting first, then the soonest done, then the least work.
            let key = if fits(largest) {
                (false, rounds * largest, work)
            } else {
                (true, largest, work)
            };
            if best.as_ref().is_none_or(|(k, _)| key < *k) {
                best = Some((key, tiles));
            }
        }
    }
    best.map_or_else(|| grid(1, 1), |(_, tiles)| tiles)
}

/// How the tiles of a segment run.
#[derive(Debug, Clone, Copy)]
struct Run<'a> {
    g: Geometry,
    context: usize,
    kernels: Kernels,
    /// Row bands per fast convolution (see [`Net::forward_segment`]).
    bands: usize,
    resize: Option<&'a Resize>,
}

/// The resize of the frame's output to a scale below the net's: the whole frame's taps, of
/// which each tile computes its own rows and columns.
#[derive(Debug)]
struct Resize {
    scale: usize,
    /// The frame's output size at the net's scale (the taps' source).
    native: (usize, usize),
    yt: Taps,
    xt: Taps,
}

/// Runs one tile and copies its part into `output`.
fn run_tile(
    net: &Net,
    segment: &Segment,
    input: &Tensor,
    rect: &TileRect,
    Run {
        g,
        context,
        kernels,
        bands,
        resize,
    }: Run,
    output: &Mutex<Tensor>,
) -> Result<(), ModelError> {
    let p = g.prepad as isize;
    let m = context as isize;
    let (h, w) = (input.height as isize, input.width as isize);
    // The window in pre-padded coordinates (the frame spans −p … size+p).
    let wy0 = (rect.y0 as isize - p - m).max(-p);
    let wy1 = (rect.y1 as isize + p + m).min(h + p);
    let wx0 = (rect.x0 as isize - p - m).max(-p);
    let wx1 = (rect.x1 as isize + p + m).min(w + p);
    let window = extract(input, wy0, wy1, wx0, wx1);
    let result = net.forward_segment(segment, window, kernels, bands)?;
    let origin = ((wy0 + p) as usize, (wx0 + p) as usize);
    let Some(resize) = resize else {
        return place_tile(output, result, rect, origin, g.scale);
    };
    // The tile's rows and columns of the resized frame, from the window's output (which starts
    // at the frame's output pixel scale·origin).
    let s = resize.scale;
    let rows = (s * rect.y0).min(resize.yt.len())..(s * rect.y1).min(resize.yt.len());
    let cols = (s * rect.x0).min(resize.xt.len())..(s * rect.x1).min(resize.xt.len());
    let region = Region {
        origin: (g.scale * origin.0, g.scale * origin.1),
        size: resize.native,
    };
    let resized = resize_region(&result, region, &resize.yt[rows], &resize.xt[cols])?;
    super::pool::recycle(result.data);
    place_tile(output, resized, rect, (rect.y0, rect.x0), s)
}

/// Copies the part of a window's result that is `rect`'s output into the frame's `output`
/// (clipped to it). `origin` is the window's first row and column in pre-padded input
/// coordinates (the untiled run's input starts at 0): the window's output index i is the
/// frame's output pixel i + scale·origin, the pre-padding being what the net loses.
pub(super) fn place_tile(
    output: &Mutex<Tensor>,
    result: Tensor,
    rect: &TileRect,
    (origin_y, origin_x): (usize, usize),
    s: usize,
) -> Result<(), ModelError> {
    let mut out = output
        .lock()
        .map_err(|_| ModelError::Runtime("a tile thread panicked".to_string()))?;
    let (out_h, out_w) = (out.height, out.width);
    let (Some(oy), Some(ox)) = (
        (s * rect.y0).checked_sub(s * origin_y),
        (s * rect.x0).checked_sub(s * origin_x),
    ) else {
        return Err(ModelError::Runtime(
            "a window starts after its tile".to_string(),
        ));
    };
    let th = (s * (rect.y1 - rect.y0)).min(out_h.saturating_sub(s * rect.y0));
    let tw = (s * (rect.x1 - rect.x0)).min(out_w.saturating_sub(s * rect.x0));
    if oy + th > result.height || ox + tw > result.width {
        return Err(ModelError::Runtime(format!(
            "a {}×{} window result is too small for its {tw}×{th} tile",
            result.width, result.height
        )));
    }
    if result.channels != out.channels {
        return Err(ModelError::Runtime(format!(
            "a tile has {} channels, the frame {}",
            result.channels, out.channels
        )));
    }
    for c in 0..out.channels {
        for y in 0..th {
            let src = &result.data[(c * result.height + oy + y) * result.width + ox..][..tw];
            let dst_y = s * rect.y0 + y;
            let dst = &mut out.data[(c * out_h + dst_y) * out_w + s * rect.x0..][..tw];
            dst.copy_from_slice(src);
        }
    }
    drop(out);
    super::pool::recycle(result.data);
    Ok(())
}

/// The window rows `y0..y1`, columns `x0..x1` of the input, coordinates outside the frame
/// replicating its edge.
pub(super) fn extract(input: &Tensor, y0: isize, y1: isize, x0: isize, x1: isize) -> Tensor {
    let (h, w) = (input.height as isize, input.width as isize);
    let (wh, ww) = ((y1 - y0) as usize, (x1 - x0) as usize);
    let mut out = Tensor::zeros(input.channels, wh, ww);
    // Columns: the part inside the frame is one copy, the rest repeats the edge pixels.
    let inner_x0 = x0.clamp(0, w);
    let inner_x1 = x1.clamp(0, w).max(inner_x0);
    for c in 0..input.channels {
        let plane = input.plane(c);
        for (row, vy) in (y0..y1).enumerate() {
            let sy = vy.clamp(0, h - 1) as usize;
            let src = &plane[sy * input.width..(sy + 1) * input.width];
            let dst = &mut out.data[(c * wh + row) * ww..(c * wh + row + 1) * ww];
            let left = (inner_x0 - x0) as usize;
            let inner = (inner_x1 - inner_x0) as usize;
            dst[..left].fill(src[0]);
            dst[left..left + inner].copy_from_slice(&src[inner_x0 as usize..inner_x1 as usize]);
            dst[left + inner..].fill(src[input.width - 1]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::neural::testutil::{self, Rng, max_abs_diff};

    fn sides(tiles: &[TileRect]) -> (Vec<usize>, Vec<usize>) {
        let mut ys: Vec<usize> = tiles.iter().map(|t| t.y1 - t.y0).collect();
        let mut xs: Vec<usize> = tiles.iter().map(|t| t.x1 - t.x0).collect();
        ys.dedup();
        xs.sort_unstable();
        xs.dedup();
        (ys, xs)
    }

    #[test]
    fn tiles_split_evenly() {
        let opts = |tile| TileOptions {
            tile,
            ..TileOptions::default()
        };
        let plan = |h, w| plan_tiles((h, w), (10, 0), &opts(384), 100.0, 2);
        assert_eq!(sides(&plan(360, 640)), (vec![360], vec![320]));
        assert_eq!(sides(&plan(1080, 1920)), (vec![360], vec![384]));
        assert_eq!(sides(&plan(1, 385)), (vec![1], vec![192, 193]));
        assert_eq!(plan(1, 1).len(), 1);
    }

    #[test]
    fn a_memory_limit_picks_the_tiling_that_fits_and_ends_first() {
        let limited = |tile_bytes| TileOptions {
            tile: 4096,
            tile_bytes,
            ..TileOptions::default()
        };
        // 640×360 with 95 px of context at 600 floats (2.4 KB) per pixel, two threads:
        // 512 MiB holds the two half-frames (413×360 windows): the least work on two threads.
        let tiles = plan_tiles((360, 640), (95, 0), &limited(512 << 20), 600.0, 2);
        assert_eq!(sides(&tiles), (vec![360], vec![320]));
        // 128 MiB does not: more, smaller tiles, every window within the limit.
        let tiles = plan_tiles((360, 640), (95, 0), &limited(128 << 20), 600.0, 2);
        assert!(tiles.len() > 2);
        let window = |t: &TileRect| {
            let span = |a: usize, b: usize, len: usize| (b + 95).min(len) - a.saturating_sub(95);
            span(t.y0, t.y1, 360) * span(t.x0, t.x1, 640)
        };
        assert!(
            tiles
                .iter()
                .all(|t| window(t) as f64 * 600.0 * 4.0 <= (128 << 20) as f64)
        );
        // Every pixel once.
        let covered: usize = tiles.iter().map(|t| (t.y1 - t.y0) * (t.x1 - t.x0)).sum();
        assert_eq!(covered, 360 * 640);
        // Nothing fits: the smallest windows there are.
        let tiles = plan_tiles((8, 8), (0, 0), &limited(1), 600.0, 2);
        assert_eq!(tiles.len(), 64);
    }

    #[test]
    fn geometry_of_padded_and_unpadded_nets() {
        let mut rng = Rng(5);
        let (param, bin) = testutil::mini_compact(&mut rng, Some(0.5));
        let net = testutil::net(&param, &bin);
        assert_eq!(
            geometry(&net, 3).unwrap(),
            Geometry {
                scale: 2,
                prepad: 0
            }
        );
        // 3 padded 3×3 convs (1 px each) + PixelShuffle and bicubic reach at 4× scale + 1
        assert!((4..=8).contains(&net.context_px()), "{}", net.context_px());
        let (param, bin) = testutil::mini_upconv(&mut rng);
        let net = testutil::net(&param, &bin);
        assert_eq!(
            geometry(&net, 3).unwrap(),
            Geometry {
                scale: 2,
                prepad: 3
            }
        );
        assert_eq!(tiled_output_shape(&net, 3, 7, 9).unwrap(), (3, 14, 18));
    }

    #[test]
    fn tiled_equals_untiled_on_a_padded_net() {
        let mut rng = Rng(21);
        for (final_scale, scale) in [(None, 4), (Some(0.75f32), 3), (Some(0.5), 2)] {
            let (param, bin) = testutil::mini_compact(&mut rng, final_scale);
            let net = testutil::net(&param, &bin);
            let x = rng.tensor(3, 23, 29);
            let untiled = net.forward(&x, Kernels::Reference).unwrap();
            assert_eq!(untiled.shape(), (3, 23 * scale, 29 * scale));
            for (tile, threads, kernels) in [
                (7, 2, Kernels::Reference),
                (10, 1, Kernels::Fast),
                (64, 0, Kernels::Fast),
            ] {
                let opts = TileOptions {
                    tile,
                    overlap: 0,
                    threads,
                    kernels,
                    tile_bytes: 0,
                };
                let tiled = upscale_tiled(&net, &x, &opts).unwrap();
                let diff = max_abs_diff(&tiled, &untiled);
                assert!(diff < 1e-4, "scale {scale}, tile {tile}: {diff}");
            }
        }
    }

    #[test]
    fn resized_tiles_equal_the_net_with_its_own_resize() {
        // The 4× miniature animevideov3 resized tile by tile to 3× and 2× against the same
        // weights with the shipped models' bicubic Interp as their last layer, run whole.
        for (final_scale, scale) in [(0.75f32, 3), (0.5, 2)] {
            let x4 = testutil::net_of(testutil::mini_compact(&mut Rng(33), None));
            let shipped = testutil::net_of(testutil::mini_compact(&mut Rng(33), Some(final_scale)));
            let x = Rng(2).tensor(3, 23, 29);
            let whole = shipped.forward(&x, Kernels::Reference).unwrap();
            assert_eq!(whole.shape(), (3, 23 * scale, 29 * scale));
            for (tile, threads, kernels) in [
                (7, 2, Kernels::Reference),
                (10, 1, Kernels::Fast),
                (64, 2, Kernels::Fast),
            ] {
                let opts = TileOptions {
                    tile,
                    overlap: 0,
                    threads,
                    kernels,
                    tile_bytes: 0,
                };
                let resized = upscale_tiled_resized(&x4, &x, &opts, scale).unwrap();
                let diff = max_abs_diff(&resized, &whole);
                assert!(diff < 1e-4, "{scale}×, tile {tile}: {diff}");
                if tile == 64 {
                    // One tile: the same numbers as resizing the whole 4× output.
                    let native = upscale_tiled(&x4, &x, &opts).unwrap();
                    let after = resize_bicubic_ncnn(&native, 23 * scale, 29 * scale);
                    assert_eq!(resized, after);
                }
            }
        }
        // A net in two segments (only the last resizes), an unpadded net (pre-padded by
        // edge replication) and a net that pools the whole frame (resized whole), each
        // against the resize of its untiled run.
        let mut rng = Rng(34);
        let rrdb = testutil::net_of(testutil::mini_rrdb(&mut rng, 12));
        let upconv = testutil::net_of(testutil::mini_upconv(&mut rng));
        let unet = testutil::net_of(testutil::mini_se_unet(&mut rng));
        let x = rng.tensor(3, 22, 26);
        let cases = [
            (&rrdb, x.clone(), 2),
            (&upconv, testutil::replicate_pad(&x, 3), 1),
            (&unet, testutil::replicate_pad(&x, 3), 1),
        ];
        for (net, padded, scale) in cases {
            let untiled = net.forward(&padded, Kernels::Reference).unwrap();
            let want = resize_bicubic_ncnn(&untiled, 22 * scale, 26 * scale);
            let opts = TileOptions {
                tile: 8,
                overlap: 0,
                threads: 2,
                kernels: Kernels::Fast,
                tile_bytes: 0,
            };
            let resized = upscale_tiled_resized(net, &x, &opts, scale).unwrap();
            let diff = max_abs_diff(&resized, &want);
            assert!(diff < 1e-4, "{scale}×: {diff}");
        }
        // Above the net's scale, or 0: an error, not a picture.
        let opts = TileOptions::default();
        assert!(upscale_tiled_resized(&upconv, &x, &opts, 3).is_err());
        assert!(upscale_tiled_resized(&rrdb, &x, &opts, 0).is_err());
    }

    #[test]
    fn a_wide_body_runs_apart_from_its_upsampling_tail_and_tiled_equals_untiled() {
        let mut rng = Rng(12);
        let (param, bin) = testutil::mini_rrdb(&mut rng, 34);
        let net = testutil::net(&param, &bin);
        let [body, tail] = net.segments() else {
            panic!("not cut in two: {:?}", net.segments());
        };
        assert!(body.context_px > 32, "{body:?}");
        assert!(tail.context_px <= 12, "{tail:?}");
        // The tail works at 4× and 16× the pixels: far more memory per input pixel.
        let per_px = |s, c| net.segment_peak_floats(s, (c, 16, 16)).unwrap() as f64 / 256.0;
        let (body_px, tail_px) = (per_px(body, 3), per_px(tail, 4));
        assert!(tail_px > 4.0 * body_px, "{tail_px} {body_px}");
        // Nets without such a cut stay whole.
        let (param, bin) = testutil::mini_compact(&mut rng, None);
        assert_eq!(testutil::net(&param, &bin).segments().len(), 1);
        let (param, bin) = testutil::mini_upconv(&mut rng);
        assert_eq!(testutil::net(&param, &bin).segments().len(), 1);

        // The size of a frame whose whole-frame blobs would be refused is still known.
        assert_eq!(
            tiled_output_shape(&net, 3, 9000, 16000).unwrap(),
            (3, 36000, 64000)
        );

        let x = rng.tensor(3, 45, 70);
        let untiled = net.forward(&x, Kernels::Reference).unwrap();
        assert_eq!(untiled.shape(), (3, 180, 280));
        for (tile, tile_bytes, kernels) in [
            (16, 0, Kernels::Reference),
            (4096, 40_000, Kernels::Fast),
            (4096, 1 << 30, Kernels::Fast),
        ] {
            let opts = TileOptions {
                tile,
                overlap: 0,
                threads: 2,
                kernels,
                tile_bytes,
            };
            let tiled = upscale_tiled(&net, &x, &opts).unwrap();
            let diff = max_abs_diff(&tiled, &untiled);
            assert!(diff < 1e-4, "tile {tile}, {tile_bytes} bytes: {diff}");
        }
    }

    #[test]
    fn convolution_rows_in_bands_equal_one_run() {
        let mut rng = Rng(14);
        let nets = [
            testutil::mini_compact(&mut rng, None),
            testutil::mini_upconv(&mut rng),
        ];
        for (param, bin) in nets {
            let net = testutil::net(&param, &bin);
            let x = rng.tensor(3, 70, 23);
            let segment = &net.segments()[0];
            let one = net
                .forward_segment(segment, x.clone(), Kernels::Fast, 1)
                .unwrap();
            for bands in [2, 3, 4] {
                let banded = net
                    .forward_segment(segment, x.clone(), Kernels::Fast, bands)
                    .unwrap();
                assert_eq!(banded.shape(), one.shape());
                let diff = max_abs_diff(&banded, &one);
                assert!(diff < 1e-5, "{bands} bands: {diff}");
            }
        }
    }

    #[test]
    fn tiled_unpadded_net_is_the_edge_replicated_run() {
        let mut rng = Rng(8);
        let (param, bin) = testutil::mini_upconv(&mut rng);
        let net = testutil::net(&param, &bin);
        let x = rng.tensor(3, 13, 17);
        let untiled = net
            .forward(&testutil::replicate_pad(&x, 3), Kernels::Reference)
            .unwrap();
        assert_eq!(untiled.shape(), (3, 26, 34));
        for tile in [1, 4, 5, 100] {
            let opts = TileOptions {
                tile,
                overlap: 1,
                threads: 2,
                kernels: Kernels::Fast,
                tile_bytes: 0,
            };
            let tiled = upscale_tiled(&net, &x, &opts).unwrap();
            assert!(max_abs_diff(&tiled, &untiled) < 1e-4, "tile {tile}");
        }
    }

    #[test]
    fn bad_options_and_inputs_are_errors() {
        let mut rng = Rng(9);
        let (param, bin) = testutil::mini_upconv(&mut rng);
        let net = testutil::net(&param, &bin);
        let x = rng.tensor(3, 4, 4);
        let opts = TileOptions {
            tile: 0,
            ..TileOptions::default()
        };
        assert!(upscale_tiled(&net, &x, &opts).is_err());
        let bad = Tensor {
            channels: 3,
            height: 4,
            width: 4,
            data: vec![0.0; 5],
        };
        assert!(upscale_tiled(&net, &bad, &TileOptions::default()).is_err());
        // out = 2n + 2: grows by more than the scale, cannot be tiled
        let grows = "7767517\n2 2\nInput in 0 1 data\n\
                     Deconvolution d 1 1 data out 0=3 1=4 3=2 5=0 6=144\n";
        let bin = testutil::Bin::default().fp16(&[0.0; 144]);
        let e =
            upscale_tiled(&testutil::net(grows, &bin.0), &x, &TileOptions::default()).unwrap_err();
        assert!(e.to_string().contains("cannot be tiled"), "{e}");
        let gray = rng.tensor(1, 4, 4);
        let e = upscale_tiled(&net, &gray, &TileOptions::default()).unwrap_err();
        assert!(e.to_string().contains("input channels"), "{e}");
    }
}
