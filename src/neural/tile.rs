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

use super::{Kernels, ModelError, Net, Tensor};

/// How [`upscale_tiled`] cuts and runs a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileOptions {
    /// Tile edge in input pixels (before context is added).
    pub tile: usize,
    /// Context around each tile in input pixels; the net's receptive field is used when it
    /// is larger, so 0 is always safe.
    pub overlap: usize,
    /// Tiles running at once (threads); 0 = one per core.
    pub threads: usize,
    pub kernels: Kernels,
}

impl Default for TileOptions {
    fn default() -> TileOptions {
        TileOptions {
            tile: 256,
            overlap: 0,
            threads: 0,
            kernels: Kernels::Fast,
        }
    }
}

/// How a net maps input sizes to output sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// Output pixels per input pixel.
    pub scale: usize,
    /// Edge-replicated input pixels added on every side so the output is `scale ×` the input.
    pub prepad: usize,
}

/// Measures the net's geometry from its shape inference at two sizes.
pub(crate) fn geometry(net: &Net, channels: usize) -> Result<Geometry, ModelError> {
    const N1: usize = 64;
    const N2: usize = 128;
    let (_, h1, w1) = net.output_shape(channels, N1, N1)?;
    let (_, h2, w2) = net.output_shape(channels, N2, N2)?;
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
    let (out_c, _, _) = net.output_shape(c, 2 * g.prepad + h, 2 * g.prepad + w)?;
    Ok((out_c, g.scale * h, g.scale * w))
}

/// One tile: input rows `y0..y1`, columns `x0..x1`.
#[derive(Debug, Clone, Copy)]
struct TileRect {
    y0: usize,
    y1: usize,
    x0: usize,
    x1: usize,
}

/// RGB in [0,1] (3×H×W) → upscaled RGB; tiles run in parallel (one per thread, rayon), each
/// tile padded by enough context that the result equals the untiled run within 1e-4; memory
/// bounded by tile size, not frame size. Handles nets whose convs are unpadded (waifu2x
/// upconv_7 needs its input pre-padded by 7 px, edge-replicated) and padded ones (animevideov3).
pub fn upscale_tiled(net: &Net, input: &Tensor, opts: &TileOptions) -> Result<Tensor, ModelError> {
    input.check()?;
    if opts.tile == 0 {
        return Err(ModelError::Input(
            "the tile size is 0; use a tile of at least one pixel (e.g. 256)".to_string(),
        ));
    }
    let g = geometry(net, input.channels)?;
    let (height, width) = (input.height, input.width);
    let context = if g.prepad > 0 {
        opts.overlap
    } else {
        opts.overlap.max(net.context_px())
    };
    let (out_c, out_h, out_w) = tiled_output_shape(net, input.channels, height, width)?;
    let output = Mutex::new(Tensor::zeros(out_c, out_h, out_w));

    // Tiles of equal size (at most `opts.tile`): a narrow remainder tile would pay the
    // context on both sides for a few pixels of output.
    let step_y = even_step(height, opts.tile);
    let step_x = even_step(width, opts.tile);
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
    let threads = if opts.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        opts.threads
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.min(tiles.len()).max(1))
        .thread_name(|i| format!("neural-tile-{i}"))
        .build()
        .map_err(|e| ModelError::Runtime(format!("cannot start the tile threads: {e}")))?;

    pool.install(|| {
        tiles
            .par_iter()
            .with_max_len(1)
            .try_for_each(|rect| run_tile(net, input, rect, g, context, opts.kernels, &output))
    })?;
    output
        .into_inner()
        .map_err(|_| ModelError::Runtime("a tile thread panicked".to_string()))
}

/// Side of equal tiles covering `len` pixels with tiles of at most `max_tile`.
fn even_step(len: usize, max_tile: usize) -> usize {
    let count = len.div_ceil(max_tile).max(1);
    len.div_ceil(count).max(1)
}

/// Runs one tile and copies its part into `output`.
fn run_tile(
    net: &Net,
    input: &Tensor,
    rect: &TileRect,
    g: Geometry,
    context: usize,
    kernels: Kernels,
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
    let result = net.forward(&window, kernels)?;

    let s = g.scale;
    // Output index i of this window is output pixel i + s·(start + p) of the frame.
    let oy = s * rect.y0 - s * (wy0 + p) as usize;
    let ox = s * rect.x0 - s * (wx0 + p) as usize;
    let (th, tw) = (s * (rect.y1 - rect.y0), s * (rect.x1 - rect.x0));
    if oy + th > result.height || ox + tw > result.width {
        return Err(ModelError::Runtime(format!(
            "a {}×{} window gave a {}×{} result, too small for its {tw}×{th} tile",
            wx1 - wx0,
            wy1 - wy0,
            result.width,
            result.height
        )));
    }
    let mut out = output
        .lock()
        .map_err(|_| ModelError::Runtime("a tile thread panicked".to_string()))?;
    let (out_h, out_w) = (out.height, out.width);
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
    Ok(())
}

/// The window rows `y0..y1`, columns `x0..x1` of the input, coordinates outside the frame
/// replicating its edge.
fn extract(input: &Tensor, y0: isize, y1: isize, x0: isize, x1: isize) -> Tensor {
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

    #[test]
    fn tiles_split_evenly() {
        assert_eq!(even_step(640, 384), 320);
        assert_eq!(even_step(360, 384), 360);
        assert_eq!(even_step(1920, 384), 384);
        assert_eq!(even_step(1080, 384), 360);
        assert_eq!(even_step(385, 384), 193);
        assert_eq!(even_step(1, 384), 1);
        assert_eq!(even_step(0, 384), 1);
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
                };
                let tiled = upscale_tiled(&net, &x, &opts).unwrap();
                let diff = max_abs_diff(&tiled, &untiled);
                assert!(diff < 1e-4, "scale {scale}, tile {tile}: {diff}");
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
