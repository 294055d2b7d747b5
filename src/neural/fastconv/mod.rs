//! Fast 3×3 stride-1 convolution: the layer the neural engines spend nearly all their time in.
//!
//! Winograd F(4,3): each 4×4 block of output pixels (a *tile*) is computed from a 6×6 input
//! patch as `Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A`, which needs 36 multiplications per tile and channel
//! pair instead of 144. Summed over input channels, the 36 element-wise products become 36
//! independent matrix products `M_p[c_out × tiles] = U_p[c_out × c_in] · V_p[c_in × tiles]`,
//! where nearly all the arithmetic is.
//!
//! * Weights are transformed once in [`Conv3x3::new`] (in f64) and packed for the GEMM
//!   micro-kernel: `U[point][c_out/6][c_in][6]` (`c_out` padded to a multiple of 6 with zero
//!   rows).
//! * [`Conv3x3::run`] zero-pads the input once, then walks the tiles in blocks (a block is a
//!   few *chunks* of 16 tiles, about 1 MiB of scratch): input transform of the block → 36 GEMMs →
//!   output transform with bias and activation fused, written straight into the output.
//! * Transforms are vectorised across 8 horizontally adjacent tiles: four x-contiguous loads
//!   and an in-lane 4×4 transpose give each of the tile's 4 columns for 8 tiles at once (tiles
//!   end up in the lane order 0,2,4,6,1,3,5,7; the output transform undoes it the same way).
//! * The same generic code runs with AVX2/FMA (detected at run time) or portable arrays, see
//!   [`simd`]. The micro-kernel keeps a 6 (out channels) × 16 (tiles) block in 12 of the 16
//!   AVX registers (a 4 × 24 block needs all 16 and the compiler spilled one accumulator).
//! * All the generic code is `#[inline(always)]` and free of closures that touch vectors
//!   (`array::map`, `LocalKey::with`): those are compiled without the entry point's target
//!   features and cost a call per intrinsic (measured: 3.7 instead of 120 GFLOP/s).
//!
//! Single-threaded by design: the caller runs one call per core on separate tiles. Scratch
//! buffers are kept per thread and reused, so repeated calls do not allocate.

mod simd;

use std::cell::RefCell;

use simd::{Portable, Simd};

/// Activation fused into the convolution's output (ncnn semantics: `x > 0 ? x : slope·x`).
#[derive(Debug, Clone, PartialEq)]
pub enum Activation {
    None,
    Relu,
    /// One slope for every channel.
    LeakyRelu(f32),
    /// One slope per output channel, or a single slope shared by all.
    Prelu(Vec<f32>),
}

/// A 3×3 stride-1 convolution with its weights prepared for [`Conv3x3::run`].
#[derive(Debug, Clone)]
pub struct Conv3x3 {
    c_in: usize,
    c_out: usize,
    /// `c_out` rounded up to the micro-kernel's 6 rows (extra rows have zero weights).
    c_out_pad: usize,
    /// Winograd-domain weights, `[36][c_out_pad / 6][c_in][6]`.
    u: Vec<f32>,
    /// One per output channel (zeros when the model has none).
    bias: Vec<f32>,
    act: Act,
}

/// The activation with its slopes expanded to one per output channel.
#[derive(Debug, Clone)]
enum Act {
    None,
    Relu,
    Slope(Vec<f32>),
}

/// Output pixels per tile side (F(4,3)).
const TILE: usize = 4;
/// Input patch side per tile, and points per side in the Winograd domain.
const PATCH: usize = 6;
const POINTS: usize = PATCH * PATCH;
/// Tiles per vector (lanes).
const LANES: usize = 8;
/// Vectors of tiles per micro-kernel call, and tiles per chunk (row stride of V and M).
const CHUNK_VECS: usize = 2;
const CHUNK: usize = CHUNK_VECS * LANES;
/// Output channels per micro-kernel call.
const MR: usize = 6;
/// Scratch (transformed input + products) a block aims to stay within (measured on a Zen 3
/// with 512 KiB L2: 256 KiB … 4 MiB were within noise of each other).
const BLOCK_BYTES: usize = 1024 * 1024;
/// Most chunks a block takes, however few channels there are.
const MAX_BLOCK_CHUNKS: usize = 8;

/// Winograd F(4,3) matrices (Lavin & Gray 2016), in f64 for the one-off weight transform.
const G: [[f64; 3]; PATCH] = [
    [1.0 / 4.0, 0.0, 0.0],
    [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
    [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
    [0.0, 0.0, 1.0],
];

impl Conv3x3 {
    /// weights: `[c_out][c_in][3][3]` row-major; bias: `c_out` values, or empty for zero.
    ///
    /// # Panics
    /// When the slice lengths do not match the channel counts (weights `c_out·c_in·9`, bias 0 or
    /// `c_out`, PReLU slopes 1 or `c_out`) or a channel count is zero: the model loader checks
    /// these against the file before building layers.
    pub fn new(
        weights: &[f32],
        bias: &[f32],
        c_in: usize,
        c_out: usize,
        activation: Activation,
    ) -> Self {
        assert!(
            c_in > 0 && c_out > 0,
            "Conv3x3 needs at least one input and one output channel"
        );
        assert_eq!(
            weights.len(),
            c_out * c_in * 9,
            "Conv3x3 weights: expected c_out·c_in·9"
        );
        assert!(
            bias.is_empty() || bias.len() == c_out,
            "Conv3x3 bias: expected 0 or {c_out} values, got {}",
            bias.len()
        );
        let act = match activation {
            Activation::None => Act::None,
            Activation::Relu => Act::Relu,
            Activation::LeakyRelu(slope) => Act::Slope(vec![slope; c_out]),
            Activation::Prelu(slopes) if slopes.len() == 1 => Act::Slope(vec![slopes[0]; c_out]),
            Activation::Prelu(slopes) => {
                assert_eq!(
                    slopes.len(),
                    c_out,
                    "Conv3x3 PReLU: expected 1 or c_out slopes"
                );
                Act::Slope(slopes)
            }
        };
        let c_out_pad = c_out.div_ceil(MR) * MR;
        let groups = c_out_pad / MR;
        let mut u = vec![0.0f32; POINTS * c_out_pad * c_in];
        for o in 0..c_out {
            for i in 0..c_in {
                let g = &weights[(o * c_in + i) * 9..][..9];
                // t = G g (6×3), then U = t Gᵀ (6×6).
                let mut t = [[0.0f64; 3]; PATCH];
                for (trow, grow) in t.iter_mut().zip(&G) {
                    for (c, tv) in trow.iter_mut().enumerate() {
                        *tv = (0..3).map(|k| grow[k] * f64::from(g[k * 3 + c])).sum();
                    }
                }
                for (a, trow) in t.iter().enumerate() {
                    for (b, grow) in G.iter().enumerate() {
                        let v: f64 = (0..3).map(|k| trow[k] * grow[k]).sum();
                        let p = a * PATCH + b;
                        u[((p * groups + o / MR) * c_in + i) * MR + o % MR] = v as f32;
                    }
                }
            }
        }
        let bias = if bias.is_empty() {
            vec![0.0; c_out]
        } else {
            bias.to_vec()
        };
        Conv3x3 {
            c_in,
            c_out,
            c_out_pad,
            u,
            bias,
            act,
        }
    }

    pub fn c_in(&self) -> usize {
        self.c_in
    }

    pub fn c_out(&self) -> usize {
        self.c_out
    }

    /// Output length for an input of `h`×`w` with `pad`: `c_out · (h+2pad-2) · (w+2pad-2)`
    /// (zero when the padded input is smaller than the kernel).
    pub fn out_len(&self, h: usize, w: usize, pad: usize) -> usize {
        let (h_out, w_out) = out_size(h, w, pad);
        self.c_out * h_out * w_out
    }

    /// input CHW (`c_in`×`h`×`w`), zero padding `pad` on every side (the models use 0 and 1;
    /// any value works), stride 1; output CHW
    /// (`c_out` × (h+2pad-2) × (w+2pad-2)) written into `out`.
    ///
    /// # Panics
    /// When `input.len() != c_in·h·w` or `out.len() != self.out_len(h, w, pad)`.
    pub fn run(&self, input: &[f32], h: usize, w: usize, pad: usize, out: &mut [f32]) {
        let (input, mut out) = planes(self, input, h, w, pad, out);
        self.run_planes(&input, (h, w), Pads::all(pad), &mut out);
    }

    /// [`Conv3x3::run`] on a band of rows: `input` holds each input channel's `h`×`w` rows,
    /// `out` each output channel's rows, and the zero padding is given per side (a band inside
    /// a plane reads its neighbours' rows instead of padding).
    ///
    /// # Panics
    /// When there are not `c_in` input planes of `h·w` values and `c_out` output planes of
    /// the output size.
    pub fn run_planes(
        &self,
        input: &[&[f32]],
        (h, w): (usize, usize),
        pads: Pads,
        out: &mut [&mut [f32]],
    ) {
        #[cfg(target_arch = "x86_64")]
        if let Some(avx) = simd::Avx2::detect() {
            // SAFETY: `avx` proves AVX2 and FMA are available, which is all `run_avx2` needs.
            unsafe { run_avx2(avx, self, input, (h, w), pads, out) };
            return;
        }
        run_generic(Portable, self, input, (h, w), pads, out);
    }

    /// [`Conv3x3::run`] without SIMD: the fallback for CPUs without AVX2/FMA, tested here too.
    #[cfg(test)]
    fn run_portable(&self, input: &[f32], h: usize, w: usize, pad: usize, out: &mut [f32]) {
        let (input, mut out) = planes(self, input, h, w, pad, out);
        run_generic(Portable, self, &input, (h, w), Pads::all(pad), &mut out);
    }
}

/// Zero padding per side: rows above and below, columns left and right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pads {
    pub top: usize,
    pub bottom: usize,
    pub sides: usize,
}

impl Pads {
    pub fn all(pad: usize) -> Pads {
        Pads {
            top: pad,
            bottom: pad,
            sides: pad,
        }
    }

    /// The output size for an `h`×`w` input (zero when the padded input is smaller than the
    /// kernel).
    pub fn out_size(self, h: usize, w: usize) -> (usize, usize) {
        let h_out = (h + self.top + self.bottom).saturating_sub(2);
        let w_out = (w + 2 * self.sides).saturating_sub(2);
        if h_out == 0 || w_out == 0 {
            (0, 0)
        } else {
            (h_out, w_out)
        }
    }
}

/// Contiguous CHW buffers as planes, their lengths checked.
fn planes<'a, 'b>(
    conv: &Conv3x3,
    input: &'a [f32],
    h: usize,
    w: usize,
    pad: usize,
    out: &'b mut [f32],
) -> (Vec<&'a [f32]>, Vec<&'b mut [f32]>) {
    assert_eq!(
        input.len(),
        conv.c_in * h * w,
        "Conv3x3::run: input is not c_in·h·w"
    );
    assert_eq!(
        out.len(),
        conv.out_len(h, w, pad),
        "Conv3x3::run: output length"
    );
    let (h_out, w_out) = out_size(h, w, pad);
    let in_planes = if h * w == 0 {
        vec![&input[..0]; conv.c_in]
    } else {
        input.chunks_exact(h * w).collect()
    };
    let out_planes = if h_out * w_out == 0 {
        Vec::new()
    } else {
        out.chunks_exact_mut(h_out * w_out).collect()
    };
    (in_planes, out_planes)
}

fn out_size(h: usize, w: usize, pad: usize) -> (usize, usize) {
    Pads::all(pad).out_size(h, w)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn run_avx2(
    avx: simd::Avx2,
    conv: &Conv3x3,
    input: &[&[f32]],
    size: (usize, usize),
    pads: Pads,
    out: &mut [&mut [f32]],
) {
    run_generic(avx, conv, input, size, pads, out);
}

/// Per-thread scratch: the padded input, the transformed input `V` and the products `M`.
#[derive(Default)]
struct Scratch {
    padded: Vec<f32>,
    v: Vec<f32>,
    m: Vec<f32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Where the tiles are: `tiles_y` rows of `groups_x` groups of 8 tiles, over a zero-padded copy
/// of the input `padded_h`×`padded_w` per channel.
#[derive(Clone, Copy)]
struct Geometry {
    h_out: usize,
    w_out: usize,
    groups_x: usize,
    groups: usize,
    padded_h: usize,
    padded_w: usize,
}

impl Geometry {
    fn new(h_out: usize, w_out: usize) -> Geometry {
        let tiles_y = h_out.div_ceil(TILE);
        let groups_x = w_out.div_ceil(TILE).div_ceil(LANES);
        Geometry {
            h_out,
            w_out,
            groups_x,
            groups: tiles_y * groups_x,
            padded_h: tiles_y * TILE + 2,
            // The shifted loads of the last group read 4 floats past its 32 + 2 columns.
            padded_w: groups_x * LANES * TILE + TILE,
        }
    }
}

#[inline(always)]
fn run_generic<S: Simd>(
    s: S,
    conv: &Conv3x3,
    input: &[&[f32]],
    (h, w): (usize, usize),
    pads: Pads,
    out: &mut [&mut [f32]],
) {
    let (h_out, w_out) = pads.out_size(h, w);
    assert!(
        input.len() == conv.c_in && input.iter().all(|p| p.len() == h * w),
        "Conv3x3::run: input is not c_in planes of h·w"
    );
    if h_out == 0 {
        return;
    }
    assert!(
        out.len() == conv.c_out && out.iter().all(|p| p.len() == h_out * w_out),
        "Conv3x3::run: output is not c_out planes of the output size"
    );
    let geo = Geometry::new(h_out, w_out);
    let (c_in, c_out_pad) = (conv.c_in, conv.c_out_pad);
    let chunks = geo.groups.div_ceil(CHUNK_VECS);
    let chunk_bytes = POINTS * CHUNK * (c_in + c_out_pad) * std::mem::size_of::<f32>();
    let block_chunks = (BLOCK_BYTES / chunk_bytes)
        .clamp(1, MAX_BLOCK_CHUNKS)
        .min(chunks);

    // Taken out of the thread-local rather than used in a `with` closure: a closure would
    // be compiled without this function's target features.
    let mut scratch = SCRATCH.with_borrow_mut(std::mem::take);
    let plane = geo.padded_h * geo.padded_w;
    let padded = grow(&mut scratch.padded, c_in * plane);
    // The input in the middle of each plane, zeros around it (rows above and below, columns
    // left and right), written around every row: refilling whole planes when the layout
    // changed cost RRDB nets, whose layers alternate between five input depths, 4 % of their
    // time.
    let pad = pads.sides;
    if h * w > 0 {
        for (dst, src) in padded.chunks_exact_mut(plane).zip(input) {
            let (top, rest) = dst.split_at_mut(pads.top * geo.padded_w);
            top.fill(0.0);
            let (body, bottom) = rest.split_at_mut(h * geo.padded_w);
            bottom.fill(0.0);
            for (dst_row, src_row) in body.chunks_exact_mut(geo.padded_w).zip(src.chunks_exact(w)) {
                dst_row[..pad].fill(0.0);
                dst_row[pad..pad + w].copy_from_slice(src_row);
                dst_row[pad + w..].fill(0.0);
            }
        }
    } else {
        // (With pad ≥ 2 an empty input still has an output: all border.)
        padded.fill(0.0);
    }
    let v = grow(&mut scratch.v, POINTS * point_stride(block_chunks, c_in));
    let m = grow(
        &mut scratch.m,
        POINTS * point_stride(block_chunks, c_out_pad),
    );
    let mut chunk0 = 0;
    while chunk0 < chunks {
        let n_chunks = block_chunks.min(chunks - chunk0);
        let block = Block {
            chunk0,
            n_chunks,
            stride: block_chunks,
        };
        input_transform(s, &geo, &block, c_in, padded, v);
        products(s, conv, &geo, &block, v, m);
        output_transform(s, conv, &geo, &block, m, out);
        chunk0 += n_chunks;
    }
    SCRATCH.with_borrow_mut(|kept| *kept = scratch);
}

/// `buf` grown to at least `len` (never shrunk, contents unspecified) and its first `len`.
fn grow(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    &mut buf[..len]
}

/// A run of chunks processed together. `V` is `[36][stride][c_in][CHUNK]` and `M` is
/// `[36][stride][c_out_pad][CHUNK]`, where chunk `k` of the block is `chunk0 + k`.
struct Block {
    chunk0: usize,
    n_chunks: usize,
    stride: usize,
}

impl Block {
    /// (chunk in block, slot in chunk, group index) of every group in the block.
    fn groups(&self, geo: &Geometry) -> impl Iterator<Item = (usize, usize, usize)> {
        let first = self.chunk0 * CHUNK_VECS;
        let last = ((self.chunk0 + self.n_chunks) * CHUNK_VECS).min(geo.groups);
        (first..last).map(move |g| ((g - first) / CHUNK_VECS, (g - first) % CHUNK_VECS, g))
    }

    /// Groups (vectors) in chunk `k` of the block.
    fn vecs(&self, geo: &Geometry, k: usize) -> usize {
        (geo.groups - (self.chunk0 + k) * CHUNK_VECS).min(CHUNK_VECS)
    }
}

/// Distance between two points' matrices in `V` or `M` (`rows` = c_in or c_out_pad). One cache
/// line more than the data: with 64 channels the data alone is a multiple of 4 KiB, and the
/// transforms' 36 accesses at that stride all fall in one L1 set.
fn point_stride(block_chunks: usize, rows: usize) -> usize {
    block_chunks * rows * CHUNK + LANES * 2
}

/// Bᵀ applied to six values: rows of Bᵀ = [4 0 -5 0 1 0], [0 -4 -4 1 1 0], [0 4 -4 -1 1 0],
/// [0 -2 -1 2 1 0], [0 2 -1 -2 1 0], [0 4 0 -5 0 1].
#[inline(always)]
fn bt<S: Simd>(s: S, d: [S::V; PATCH]) -> [S::V; PATCH] {
    let (two, four, m5) = (s.splat(2.0), s.splat(4.0), s.splat(-5.0));
    let d4_d2 = s.sub(d[4], d[2]);
    let d1_d3 = s.sub(d[1], d[3]);
    let d12 = s.add(d[1], d[2]);
    let d34 = s.add(d[3], d[4]);
    let d1m2 = s.sub(d[1], d[2]);
    let d4m3 = s.sub(d[4], d[3]);
    [
        s.fma(m5, d[2], s.fma(four, d[0], d[4])),
        s.fma(s.splat(-4.0), d12, d34),
        s.fma(four, d1m2, d4m3),
        s.fma(s.splat(-2.0), d1_d3, d4_d2),
        s.fma(two, d1_d3, d4_d2),
        s.fma(m5, d[3], s.fma(four, d[1], d[5])),
    ]
}

/// Aᵀ applied to six values: rows of Aᵀ = [1 1 1 1 1 0], [0 1 -1 2 -2 0], [0 1 1 4 4 0],
/// [0 1 -1 8 -8 1].
#[inline(always)]
fn at<S: Simd>(s: S, m: [S::V; PATCH]) -> [S::V; TILE] {
    let p12 = s.add(m[1], m[2]);
    let m12 = s.sub(m[1], m[2]);
    let p34 = s.add(m[3], m[4]);
    let m34 = s.sub(m[3], m[4]);
    [
        s.add(s.add(m[0], p12), p34),
        s.fma(s.splat(2.0), m34, m12),
        s.fma(s.splat(4.0), p34, p12),
        s.add(s.fma(s.splat(8.0), m34, m12), m[5]),
    ]
}

/// `V = Bᵀ d B` for every tile and input channel of the block.
#[inline(always)]
fn input_transform<S: Simd>(
    s: S,
    geo: &Geometry,
    block: &Block,
    c_in: usize,
    padded: &[f32],
    v: &mut [f32],
) {
    let plane = geo.padded_h * geo.padded_w;
    let point_stride = point_stride(block.stride, c_in);
    // Channel by channel, so the reads stay within one plane at a time.
    for (i, src) in padded.chunks_exact(plane).enumerate() {
        for (k, slot, g) in block.groups(geo) {
            let (ty, gx) = (g / geo.groups_x, g % geo.groups_x);
            let y0 = ty * TILE;
            let x0 = gx * LANES * TILE;
            // Columns first (along y, x-contiguous): cols[row of Bᵀ][vector], where vectors
            // 0..4 cover x0..x0+32 and 4..8 the same shifted by 4 (the next tile's start).
            let mut cols = [[s.splat(0.0); 2 * TILE]; PATCH];
            for vec in 0..2 * TILE {
                let x = x0 + (vec % TILE) * LANES + (vec / TILE) * TILE;
                let d = std::array::from_fn(|j| s.load(&src[(y0 + j) * geo.padded_w + x..]));
                for (row, r) in cols.iter_mut().zip(bt(s, d)) {
                    row[vec] = r;
                }
            }
            let base = (k * c_in + i) * CHUNK + slot * LANES;
            for (a, row) in cols.iter().enumerate() {
                // Per-tile columns 0..4 and 4..6 (the next tile's columns 0 and 1).
                let p = s.transpose4([row[0], row[1], row[2], row[3]]);
                let q = s.transpose4([row[4], row[5], row[6], row[7]]);
                let vals = bt(s, [p[0], p[1], p[2], p[3], q[0], q[1]]);
                for (b, val) in vals.into_iter().enumerate() {
                    let at = (a * PATCH + b) * point_stride + base;
                    s.store(&mut v[at..], val);
                }
            }
        }
    }
}

/// The 36 GEMMs `M_p = U_p · V_p` of the block.
#[inline(always)]
fn products<S: Simd>(
    s: S,
    conv: &Conv3x3,
    geo: &Geometry,
    block: &Block,
    v: &[f32],
    m: &mut [f32],
) {
    let (c_in, c_out_pad) = (conv.c_in, conv.c_out_pad);
    let u_point = c_out_pad * c_in;
    let v_point = point_stride(block.stride, c_in);
    let m_point = point_stride(block.stride, c_out_pad);
    for p in 0..POINTS {
        let u_p = &conv.u[p * u_point..][..u_point];
        for k in 0..block.n_chunks {
            let v_k = &v[p * v_point + k * c_in * CHUNK..][..c_in * CHUNK];
            let m_k = &mut m[p * m_point + k * c_out_pad * CHUNK..][..c_out_pad * CHUNK];
            let vecs = block.vecs(geo, k);
            for (u_o, m_o) in u_p
                .chunks_exact(c_in * MR)
                .zip(m_k.chunks_exact_mut(MR * CHUNK))
            {
                if vecs == CHUNK_VECS {
                    micro_kernel::<S, CHUNK_VECS>(s, v_k, u_o, m_o);
                } else {
                    micro_kernel::<S, 1>(s, v_k, u_o, m_o);
                }
            }
        }
    }
}

/// `m[r][..8·NV] = Σ_i u[i][r] · v[i][..8·NV]` for the 6 rows `r`: a 6×(8·NV) block of one
/// product kept in registers. `v` is `[c_in][CHUNK]`, `u` is `[c_in][6]`, `m` is `[6][CHUNK]`.
#[inline(always)]
fn micro_kernel<S: Simd, const NV: usize>(s: S, v: &[f32], u: &[f32], m: &mut [f32]) {
    let mut acc = [[s.splat(0.0); NV]; MR];
    for (v_i, u_i) in v.chunks_exact(CHUNK).zip(u.chunks_exact(MR)) {
        let x: [S::V; NV] = std::array::from_fn(|n| s.load(&v_i[n * LANES..]));
        for (acc_r, &u_ir) in acc.iter_mut().zip(u_i) {
            let b = s.splat(u_ir);
            for (a, &xn) in acc_r.iter_mut().zip(&x) {
                *a = s.fma(b, xn, *a);
            }
        }
    }
    for (acc_r, m_r) in acc.iter().zip(m.chunks_exact_mut(CHUNK)) {
        for (n, &a) in acc_r.iter().enumerate() {
            s.store(&mut m_r[n * LANES..], a);
        }
    }
}

/// `Y = Aᵀ M A` plus bias and activation for every tile and output channel of the block,
/// written into `out` (tiles past the right or bottom edge are clipped).
#[inline(always)]
fn output_transform<S: Simd>(
    s: S,
    conv: &Conv3x3,
    geo: &Geometry,
    block: &Block,
    m: &[f32],
    out: &mut [&mut [f32]],
) {
    let c_out_pad = conv.c_out_pad;
    let point_stride = point_stride(block.stride, c_out_pad);
    let zero = s.splat(0.0);
    // Channel by channel, so the writes stay within one plane at a time.
    for (o, dst) in out.iter_mut().enumerate() {
        for (k, slot, g) in block.groups(geo) {
            let (ty, gx) = (g / geo.groups_x, g % geo.groups_x);
            let y0 = ty * TILE;
            let x0 = gx * LANES * TILE;
            let rows = (geo.h_out - y0).min(TILE);
            let full_width = x0 + LANES * TILE <= geo.w_out;
            let base = (k * c_out_pad + o) * CHUNK + slot * LANES;
            // Rows of Aᵀ over the first index (a), for each second index (b).
            let mut t = [[zero; PATCH]; TILE];
            for b in 0..PATCH {
                let col =
                    std::array::from_fn(|a| s.load(&m[(a * PATCH + b) * point_stride + base..]));
                for (trow, val) in t.iter_mut().zip(at(s, col)) {
                    trow[b] = val;
                }
            }
            let bias = s.splat(conv.bias[o]);
            let slope = match &conv.act {
                Act::Slope(slopes) => s.splat(slopes[o]),
                _ => zero,
            };
            for (r, trow) in t.iter().enumerate().take(rows) {
                // A loop, not `array::map`: its closure would not be inlined here.
                let mut y = at(s, *trow);
                for val in &mut y {
                    let biased = s.add(*val, bias);
                    *val = match conv.act {
                        Act::None => biased,
                        Act::Relu => s.max(biased, zero),
                        Act::Slope(_) => s.fma(slope, s.min(biased, zero), s.max(biased, zero)),
                    };
                }
                // Back to x order: vector q holds x0 + 8q .. x0 + 8q + 8.
                let xs = s.transpose4(y);
                let row = &mut dst[(y0 + r) * geo.w_out..][..geo.w_out];
                if full_width {
                    for (q, val) in xs.into_iter().enumerate() {
                        s.store(&mut row[x0 + q * LANES..], val);
                    }
                } else {
                    let mut tmp = [0.0f32; LANES * TILE];
                    for (q, val) in xs.into_iter().enumerate() {
                        s.store(&mut tmp[q * LANES..], val);
                    }
                    let n = geo.w_out - x0;
                    row[x0..].copy_from_slice(&tmp[..n]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
