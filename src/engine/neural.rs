//! The neural frame engines (Real-ESRGAN animevideov3, x4plus and x4plus-anime, waifu2x
//! upconv_7 and cunet, Real-CUGAN): a yuv420p frame from the pipe becomes RGB in [0, 1], runs
//! through [`crate::neural`] tile by tile on every core, and goes back to yuv420p.
//!
//! Colour: the pipe carries limited-range yuv420p as ffmpeg decoded it; it is converted with
//! the source's matrix (BT.709, else BT.601 for `smpte170m`/`bt470bg`, else by size: HD is
//! BT.709) and back with the same matrix, so a flat colour comes back as it went in. Chroma is
//! upsampled bilinearly (centred siting) and averaged 2×2 on the way back.
//!
//! animevideov3 x2 and x3 are, as shipped, the x4 network followed by ncnn's bicubic Interp
//! (0.5× / 0.75×); [`crate::neural::upscale_tiled_resized`] computes that resize the same way,
//! tile by tile, so running the x4 body here gives the numbers of the shipped x2/x3 models
//! without holding the frame at 4×. The x4plus
//! nets are x4 only upstream; their x2 and x3 are made the same way.

use std::path::Path;

use anyhow::Context as _;

use super::models::{Family, ModelFiles};
use super::{Frame, Upscaler};
use crate::neural::{Kernels, Net, Tensor, TileOptions, upscale_tiled, upscale_tiled_resized};

/// Largest tile side in input pixels for a model family (tiles are split evenly, so 640×360
/// runs animevideov3 as two 320×360 tiles). Memory depends on this and the thread count, not
/// on the frame size. animevideov3 (64 channels, 21 px of context around each tile) gains
/// from large tiles; waifu2x's 256-channel layer makes a tile's activations 4× larger per
/// pixel and it needs only 7 px of context, so its tiles stay smaller (measured at 640×360:
/// 192 px is both faster and half the memory of 384 px for waifu2x).
///
/// The RRDB nets (x4plus, x4plus-anime) need 95–350 px of context, so small tiles would
/// mostly recompute context: they are tiled by memory instead ([`tile_bytes`]), body and
/// upsampling tail each their own way. So are the U-Nets (Real-CUGAN, cunet): each extra tile
/// costs them passes for the frame's statistics, and a frame that fits runs as one window.
pub fn tile_px(family: Family) -> usize {
    match family {
        Family::AnimeVideoV3 => 384,
        Family::Waifu2xAnime | Family::Waifu2xPhoto => 192,
        Family::X4Plus
        | Family::X4PlusAnime
        | Family::RealCugan
        | Family::RealCuganPro
        | Family::RealCuganNose
        | Family::Waifu2xCunet => BY_MEMORY_TILE_PX,
    }
}

/// Working memory one tile may take (0: tiles are sized by [`tile_px`] alone). 512 MiB per
/// tile thread lets x4plus-anime run a 640×360 frame as two half-frame tiles.
pub fn tile_bytes(family: Family) -> usize {
    match family {
        Family::AnimeVideoV3 | Family::Waifu2xAnime | Family::Waifu2xPhoto => 0,
        Family::X4Plus
        | Family::X4PlusAnime
        | Family::RealCugan
        | Family::RealCuganPro
        | Family::RealCuganNose
        | Family::Waifu2xCunet => BY_MEMORY_TILE_BYTES,
    }
}

/// Nets tiled by memory alone: the RRDB families and custom models (most are ESRGAN nets).
const BY_MEMORY_TILE_PX: usize = 4096;
const BY_MEMORY_TILE_BYTES: usize = 512 << 20;

/// YUV ↔ RGB matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColorMatrix {
    Bt601,
    Bt709,
    Bt2020,
}

impl ColorMatrix {
    /// The matrix of a source: its tagged `color_space`, else by size (HD = BT.709).
    pub fn for_source(color_space: Option<&str>, height: u32) -> ColorMatrix {
        match color_space {
            Some("bt709") => ColorMatrix::Bt709,
            Some("smpte170m" | "bt470bg" | "fcc") => ColorMatrix::Bt601,
            Some("bt2020nc" | "bt2020c") => ColorMatrix::Bt2020,
            _ if height >= 720 => ColorMatrix::Bt709,
            _ => ColorMatrix::Bt601,
        }
    }

    /// (Kr, Kb).
    fn coefficients(self) -> (f32, f32) {
        match self {
            ColorMatrix::Bt601 => (0.299, 0.114),
            ColorMatrix::Bt709 => (0.2126, 0.0722),
            ColorMatrix::Bt2020 => (0.2627, 0.0593),
        }
    }
}

/// One loaded neural engine: the network, the output scale, the colour matrix.
pub struct Neural {
    net: Net,
    /// The network's own scale; a smaller `scale` resizes its output.
    native: u32,
    scale: u32,
    /// Tiling: largest tile side and working memory per tile (see [`tile_px`], [`tile_bytes`]).
    tile: usize,
    tile_bytes: usize,
    matrix: ColorMatrix,
    threads: usize,
    kernels_fast: bool,
}

impl Neural {
    /// Load `files` (a network of `family`) to upscale by `scale` (2, 3 or 4 for
    /// animevideov3; 2 for waifu2x).
    pub fn load(
        family: Family,
        files: &ModelFiles,
        scale: u32,
        matrix: ColorMatrix,
    ) -> anyhow::Result<Neural> {
        if !family.scales().contains(&(scale as f64)) {
            anyhow::bail!(
                "{} cannot upscale by {scale}; it supports {:?}",
                family.engine_name(),
                family.scales()
            );
        }
        let net = Net::load(&files.param, &files.bin)
            .with_context(|| format!("cannot load the model {}", files.param.display()))?;
        Ok(Neural::new(
            net,
            (family.net_scale(scale), scale),
            (tile_px(family), tile_bytes(family)),
            matrix,
        ))
    }

    /// Load a model of the user's own (see [`super::custom`]) to upscale by `scale`: its own
    /// scale, or a smaller integer (its output resized). Unknown nets are tiled by memory.
    pub fn load_custom(
        files: &ModelFiles,
        scale: u32,
        matrix: ColorMatrix,
    ) -> anyhow::Result<Neural> {
        let net = Net::load(&files.param, &files.bin)
            .with_context(|| format!("cannot load the model {}", files.param.display()))?;
        let native = super::custom::scale_of(&net).map_err(|reason| {
            anyhow::anyhow!(
                "the model {} cannot be used: {reason}",
                files.param.display()
            )
        })?;
        if scale < 2 || scale > native {
            anyhow::bail!(
                "the model {} upscales by {native}; it cannot upscale by {scale}",
                files.param.display()
            );
        }
        Ok(Neural::new(
            net,
            (native, scale),
            (BY_MEMORY_TILE_PX, BY_MEMORY_TILE_BYTES),
            matrix,
        ))
    }

    fn new(
        net: Net,
        (native, scale): (u32, u32),
        (tile, tile_bytes): (usize, usize),
        matrix: ColorMatrix,
    ) -> Neural {
        Neural {
            net,
            native,
            scale,
            tile,
            tile_bytes,
            matrix,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernels_fast: true,
        }
    }

    /// Load a model from explicit paths (tests, benchmarks).
    pub fn load_paths(
        family: Family,
        param: &Path,
        bin: &Path,
        scale: u32,
    ) -> anyhow::Result<Neural> {
        let files = ModelFiles {
            param: param.to_owned(),
            bin: bin.to_owned(),
        };
        Neural::load(family, &files, scale, ColorMatrix::Bt709)
    }

    /// Tile threads (default: every core).
    pub fn set_threads(&mut self, threads: usize) {
        self.threads = threads.max(1);
    }

    /// Use the plain reference kernels instead of the fast convolution (tests).
    pub fn set_reference_kernels(&mut self, reference: bool) {
        self.kernels_fast = !reference;
    }

    pub fn net(&self) -> &Net {
        &self.net
    }

    /// Tile options used for a frame.
    pub fn tile_options(&self, tile: usize) -> TileOptions {
        TileOptions {
            tile,
            overlap: 0,
            threads: self.threads,
            kernels: if self.kernels_fast {
                Kernels::Fast
            } else {
                Kernels::Reference
            },
            tile_bytes: self.tile_bytes,
        }
    }

    /// RGB [0, 1] (3×H×W) → RGB upscaled by the engine's scale (not clamped).
    pub fn upscale_rgb(&self, rgb: &Tensor) -> anyhow::Result<Tensor> {
        self.upscale_rgb_tiled(rgb, self.tile)
    }

    /// [`Neural::upscale_rgb`] with a chosen tile size.
    pub fn upscale_rgb_tiled(&self, rgb: &Tensor, tile: usize) -> anyhow::Result<Tensor> {
        let opts = self.tile_options(tile);
        // Below the net's scale, as the shipped x2/x3 .param: its output through a bicubic
        // Interp of scale / native, made tile by tile.
        let out = if self.scale == self.native {
            upscale_tiled(&self.net, rgb, &opts)
        } else {
            upscale_tiled_resized(&self.net, rgb, &opts, self.scale as usize)
        };
        out.context("the neural network failed")
    }
}

impl Upscaler for Neural {
    fn output_size(&self, width: u32, height: u32) -> (u32, u32) {
        (width * self.scale, height * self.scale)
    }

    fn process(&mut self, input: &Frame) -> anyhow::Result<Frame> {
        let rgb = yuv420p_to_rgb(input, self.matrix);
        let out = self.upscale_rgb(&rgb)?;
        Ok(rgb_to_yuv420p(&out, self.matrix))
    }
}

/// Limited-range yuv420p → RGB [0, 1] (clamped), 3×H×W.
pub fn yuv420p_to_rgb(frame: &Frame, matrix: ColorMatrix) -> Tensor {
    let (w, h) = (frame.width as usize, frame.height as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let y_plane = &frame.data[..w * h];
    let u_plane = &frame.data[w * h..w * h + cw * ch];
    let v_plane = &frame.data[w * h + cw * ch..];
    let u = upsample_chroma(u_plane, cw, ch, w, h);
    let v = upsample_chroma(v_plane, cw, ch, w, h);
    let (kr, kb) = matrix.coefficients();
    let kg = 1.0 - kr - kb;
    let mut data = vec![0f32; 3 * w * h];
    let (r_out, rest) = data.split_at_mut(w * h);
    let (g_out, b_out) = rest.split_at_mut(w * h);
    for i in 0..w * h {
        let yv = (y_plane[i] as f32 - 16.0) / 219.0;
        let pb = (u[i] - 128.0) / 224.0;
        let pr = (v[i] - 128.0) / 224.0;
        let r = yv + 2.0 * (1.0 - kr) * pr;
        let b = yv + 2.0 * (1.0 - kb) * pb;
        let g = (yv - kr * r - kb * b) / kg;
        r_out[i] = r.clamp(0.0, 1.0);
        g_out[i] = g.clamp(0.0, 1.0);
        b_out[i] = b.clamp(0.0, 1.0);
    }
    Tensor {
        channels: 3,
        height: h,
        width: w,
        data,
    }
}

/// RGB (3×H×W, clamped to [0, 1] here) → limited-range yuv420p.
pub fn rgb_to_yuv420p(rgb: &Tensor, matrix: ColorMatrix) -> Frame {
    let (w, h) = (rgb.width, rgb.height);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let (kr, kb) = matrix.coefficients();
    let kg = 1.0 - kr - kb;
    let mut data = vec![0u8; w * h + 2 * cw * ch];
    let mut pb = vec![0f32; w * h];
    let mut pr = vec![0f32; w * h];
    for i in 0..w * h {
        let r = rgb.data[i].clamp(0.0, 1.0);
        let g = rgb.data[w * h + i].clamp(0.0, 1.0);
        let b = rgb.data[2 * w * h + i].clamp(0.0, 1.0);
        let yv = kr * r + kg * g + kb * b;
        data[i] = to_u8(16.0 + 219.0 * yv);
        pb[i] = (b - yv) / (2.0 * (1.0 - kb));
        pr[i] = (r - yv) / (2.0 * (1.0 - kr));
    }
    let (u_out, v_out) = data[w * h..].split_at_mut(cw * ch);
    for cy in 0..ch {
        for cx in 0..cw {
            let (mut su, mut sv, mut n) = (0f32, 0f32, 0f32);
            for y in 2 * cy..(2 * cy + 2).min(h) {
                for x in 2 * cx..(2 * cx + 2).min(w) {
                    su += pb[y * w + x];
                    sv += pr[y * w + x];
                    n += 1.0;
                }
            }
            u_out[cy * cw + cx] = to_u8(128.0 + 224.0 * su / n);
            v_out[cy * cw + cx] = to_u8(128.0 + 224.0 * sv / n);
        }
    }
    Frame {
        width: w as u32,
        height: h as u32,
        data,
    }
}

fn to_u8(v: f32) -> u8 {
    v.round().clamp(0.0, 255.0) as u8
}

/// Chroma plane (cw×ch) → full size (w×h), bilinear with chroma samples centred between
/// their two luma samples, edges clamped.
fn upsample_chroma(plane: &[u8], cw: usize, ch: usize, w: usize, h: usize) -> Vec<f32> {
    // Per output coordinate: the two chroma samples and the weight of the second.
    let taps = |n: usize, cn: usize| -> Vec<(usize, usize, f32)> {
        (0..n)
            .map(|x| {
                let j = x / 2;
                let other = if x % 2 == 0 {
                    j.saturating_sub(1)
                } else {
                    (j + 1).min(cn - 1)
                };
                (j, other, 0.25)
            })
            .collect()
    };
    let tx = taps(w, cw);
    let ty = taps(h, ch);
    let mut rows = vec![0f32; cw * h];
    for (y, &(j, o, a)) in ty.iter().enumerate() {
        for x in 0..cw {
            rows[y * cw + x] = (1.0 - a) * plane[j * cw + x] as f32 + a * plane[o * cw + x] as f32;
        }
    }
    let mut out = vec![0f32; w * h];
    for y in 0..h {
        let row = &rows[y * cw..(y + 1) * cw];
        for (x, &(j, o, a)) in tx.iter().enumerate() {
            out[y * w + x] = (1.0 - a) * row[j] + a * row[o];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::neural::testutil::tensor_of as tensor;

    fn flat_frame(w: u32, h: u32, y: u8, u: u8, v: u8) -> Frame {
        let (w_, h_) = (w as usize, h as usize);
        let c = w_.div_ceil(2) * h_.div_ceil(2);
        let mut data = vec![y; w_ * h_];
        data.extend(std::iter::repeat_n(u, c));
        data.extend(std::iter::repeat_n(v, c));
        Frame {
            width: w,
            height: h,
            data,
        }
    }

    #[test]
    fn flat_colours_survive_the_round_trip() {
        // Saturated, skin-like and dark colours (in gamut for both matrices), odd sizes
        // (chroma planes rounded up).
        let colours = [
            [0.9, 0.2, 0.1],
            [0.2, 0.6, 0.3],
            [0.87, 0.67, 0.55],
            [0.1, 0.1, 0.8],
            [0.05, 0.05, 0.05],
        ];
        for matrix in [ColorMatrix::Bt601, ColorMatrix::Bt709, ColorMatrix::Bt2020] {
            for rgb in colours {
                let flat = tensor(3, 5, 7, |c, _, _| rgb[c]);
                let frame = rgb_to_yuv420p(&flat, matrix);
                assert_eq!((frame.width, frame.height), (7, 5));
                let decoded = yuv420p_to_rgb(&frame, matrix);
                let err = decoded
                    .data
                    .iter()
                    .zip(&flat.data)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max);
                assert!(err < 1.5 / 219.0, "{matrix:?} {rgb:?}: off by {err}");
                let back = rgb_to_yuv420p(&decoded, matrix);
                let max = frame
                    .data
                    .iter()
                    .zip(&back.data)
                    .map(|(a, b)| a.abs_diff(*b))
                    .max()
                    .unwrap();
                assert!(max <= 1, "{matrix:?} {rgb:?} moved by {max}");
            }
        }
    }

    #[test]
    fn known_colours() {
        // BT.709 limited-range pure red is (63, 102, 240).
        let rgb = yuv420p_to_rgb(&flat_frame(2, 2, 63, 102, 240), ColorMatrix::Bt709);
        let px = |c: usize| rgb.data[c * 4];
        assert!((px(0) - 1.0).abs() < 0.01 && px(1) < 0.01 && px(2) < 0.01);
        // Mid grey.
        let grey = yuv420p_to_rgb(&flat_frame(2, 2, 126, 128, 128), ColorMatrix::Bt601);
        assert!(grey.data.iter().all(|v| (v - 0.5).abs() < 0.003));
    }

    #[test]
    fn matrix_from_source() {
        assert_eq!(
            ColorMatrix::for_source(Some("bt709"), 480),
            ColorMatrix::Bt709
        );
        assert_eq!(
            ColorMatrix::for_source(Some("smpte170m"), 1080),
            ColorMatrix::Bt601
        );
        assert_eq!(ColorMatrix::for_source(None, 720), ColorMatrix::Bt709);
        assert_eq!(
            ColorMatrix::for_source(Some("bt2020nc"), 480),
            ColorMatrix::Bt2020
        );
        assert_eq!(ColorMatrix::for_source(None, 576), ColorMatrix::Bt601);
    }
}
