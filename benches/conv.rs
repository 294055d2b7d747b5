//! Convolution kernel benchmarks (`cargo bench --bench conv`), one thread.
//!
//! For each layer shape: GFLOP/s counted as a direct convolution does (2·c_in·c_out·9·h_out·w_out
//! per call, whatever the algorithm) for
//! * `direct`: a plain direct convolution, vectorised by the compiler along rows;
//! * `im2col+gemm`: im2col then one `gemm` crate sgemm (single-threaded);
//! * `fastconv`: `reframe::neural::fastconv::Conv3x3` (Winograd F(4,3)).
//!
//! plus the `gemm` crate's plain sgemm on 1024³ as this machine's one-core reference, and an
//! estimate of the animevideov3 x4 network (18 convs) on a 640×360 frame with one tile per core
//! on 2 cores. Medians of `REFRAME_BENCH_RUNS` runs (default 7); the load average is printed
//! because the machine may be shared. `REFRAME_BENCH_SHAPE=c_in,c_out,h,w` times only fastconv
//! on that shape (pad 1, PReLU; min and median), e.g. under `perf record`.

use std::time::Instant;

use reframe::neural::fastconv::{Activation, Conv3x3};

struct Rng(u64);

impl Rng {
    fn next_f32(&mut self, lo: f32, hi: f32) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
        lo + (hi - lo) * (bits as f32 / (1u64 << 24) as f32)
    }

    fn vec(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| self.next_f32(lo, hi)).collect()
    }
}

/// Direct convolution, zero padding `pad`, bias, no activation: for each (out, in, ky, kx) an
/// axpy over each output row, which the compiler vectorises.
#[allow(clippy::too_many_arguments)]
fn direct(
    input: &[f32],
    weights: &[f32],
    bias: &[f32],
    c_in: usize,
    h: usize,
    w: usize,
    pad: usize,
    out: &mut [f32],
) {
    let (h_out, w_out) = (h + 2 * pad - 2, w + 2 * pad - 2);
    for (o, plane) in out.chunks_exact_mut(h_out * w_out).enumerate() {
        plane.fill(bias[o]);
        for i in 0..c_in {
            let src = &input[i * h * w..][..h * w];
            for ky in 0..3 {
                for kx in 0..3 {
                    let k = weights[((o * c_in + i) * 3 + ky) * 3 + kx];
                    // Output x range whose input x + kx - pad lies inside 0..w.
                    let x_lo = pad.saturating_sub(kx);
                    let x_hi = (w + pad - kx).min(w_out);
                    for y in 0..h_out {
                        let iy = y + ky;
                        if iy < pad || iy - pad >= h {
                            continue;
                        }
                        let row = &src[(iy - pad) * w..][..w];
                        let dst = &mut plane[y * w_out..][..w_out];
                        let shift = x_lo + kx - pad;
                        for (d, s) in dst[x_lo..x_hi].iter_mut().zip(&row[shift..]) {
                            *d += k * s;
                        }
                    }
                }
            }
        }
    }
}

/// im2col (rows = c_in·9, columns = output pixels) then `out = W · cols` with the gemm crate.
#[allow(clippy::too_many_arguments)]
fn im2col_gemm(
    input: &[f32],
    weights: &[f32],
    c_in: usize,
    c_out: usize,
    h: usize,
    w: usize,
    pad: usize,
    cols: &mut [f32],
    out: &mut [f32],
) {
    let (h_out, w_out) = (h + 2 * pad - 2, w + 2 * pad - 2);
    let n = h_out * w_out;
    for i in 0..c_in {
        for ky in 0..3 {
            for kx in 0..3 {
                let col = &mut cols[((i * 3 + ky) * 3 + kx) * n..][..n];
                for y in 0..h_out {
                    for x in 0..w_out {
                        let (iy, ix) = (y + ky, x + kx);
                        col[y * w_out + x] =
                            if iy < pad || ix < pad || iy - pad >= h || ix - pad >= w {
                                0.0
                            } else {
                                input[(i * h + iy - pad) * w + ix - pad]
                            };
                    }
                }
            }
        }
    }
    let k = c_in * 9;
    // SAFETY: out is c_out×n row-major, weights c_out×k, cols k×n, all with the strides given;
    // the slices are at least that long.
    unsafe {
        gemm::gemm(
            c_out,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            false,
            weights.as_ptr(),
            1,
            k as isize,
            cols.as_ptr(),
            1,
            n as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

fn median_secs(runs: usize, mut f: impl FnMut()) -> f64 {
    f(); // warm-up: page faults, scratch allocation
    let mut secs: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    secs.sort_by(f64::total_cmp);
    secs[runs / 2]
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Measured direct-equivalent GFLOP/s of fastconv for one shape.
struct Layer {
    c_in: usize,
    c_out: usize,
    fast_gflops: f64,
}

fn bench_layer(rng: &mut Rng, runs: usize, c_in: usize, c_out: usize, h: usize, w: usize) -> Layer {
    let pad = 1;
    let scale = (6.0 / (9.0 * c_in as f32)).sqrt();
    let weights = rng.vec(c_out * c_in * 9, -scale, scale);
    let bias = rng.vec(c_out, -0.1, 0.1);
    let input = rng.vec(c_in * h * w, 0.0, 1.0);
    let conv = Conv3x3::new(&weights, &bias, c_in, c_out, Activation::None);
    let flop = 2.0 * (c_in * c_out * 9 * h * w) as f64;
    let mut fast = vec![0.0; conv.out_len(h, w, pad)];
    let mut reference = vec![0.0; fast.len()];
    let fast_secs = median_secs(runs, || conv.run(&input, h, w, pad, &mut fast));
    let direct_runs = if flop > 2e9 { runs.min(3) } else { runs };
    let direct_secs = median_secs(direct_runs, || {
        direct(&input, &weights, &bias, c_in, h, w, pad, &mut reference)
    });
    let max_diff = fast
        .iter()
        .zip(&reference)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    let mut cols = vec![0.0; c_in * 9 * h * w];
    let mut gemm_out = vec![0.0; fast.len()];
    let gemm_secs = median_secs(runs, || {
        im2col_gemm(
            &input,
            &weights,
            c_in,
            c_out,
            h,
            w,
            pad,
            &mut cols,
            &mut gemm_out,
        )
    });
    let fast_gflops = flop / fast_secs / 1e9;
    println!(
        "{c_in:>3}→{c_out:<3} {c_in}×{h}×{w} pad 1: direct {:6.1}  im2col+gemm {:6.1}  fastconv {:6.1} \
         GFLOP/s ({:.1} ms; max |fast−direct| {max_diff:.1e}; load {})",
        flop / direct_secs / 1e9,
        flop / gemm_secs / 1e9,
        fast_gflops,
        fast_secs * 1e3,
        load_average(),
    );
    Layer {
        c_in,
        c_out,
        fast_gflops,
    }
}

fn bench_sgemm(rng: &mut Rng, runs: usize) {
    let n = 1024;
    let a = rng.vec(n * n, -1.0, 1.0);
    let b = rng.vec(n * n, -1.0, 1.0);
    let mut c = vec![0.0f32; n * n];
    let secs = median_secs(runs, || {
        // SAFETY: three n×n row-major matrices of exactly n·n elements.
        unsafe {
            gemm::gemm(
                n,
                n,
                n,
                c.as_mut_ptr(),
                1,
                n as isize,
                false,
                a.as_ptr(),
                1,
                n as isize,
                b.as_ptr(),
                1,
                n as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            )
        }
    });
    println!(
        "gemm crate sgemm 1024³, one thread: {:.1} GFLOP/s (load {})",
        2.0 * (n * n * n) as f64 / secs / 1e9,
        load_average()
    );
}

/// The animevideov3 x4 conv stack (3→64, 16 × 64→64, 64→48, PReLU, pad 1) on one `h`×`w`
/// tile, ping-ponging between two buffers.
struct Network {
    convs: Vec<Conv3x3>,
}

impl Network {
    fn animevideov3(rng: &mut Rng) -> Network {
        let mut shapes = vec![(3, 64)];
        shapes.extend([(64, 64); 16]);
        shapes.push((64, 48));
        let convs = shapes
            .into_iter()
            .map(|(c_in, c_out)| {
                let scale = (6.0 / (9.0 * c_in as f32)).sqrt();
                let weights = rng.vec(c_out * c_in * 9, -scale, scale);
                let bias = rng.vec(c_out, -0.1, 0.1);
                let slopes = rng.vec(c_out, 0.0, 0.3);
                Conv3x3::new(&weights, &bias, c_in, c_out, Activation::Prelu(slopes))
            })
            .collect();
        Network { convs }
    }

    fn run(&self, input: &[f32], h: usize, w: usize, a: &mut Vec<f32>, b: &mut Vec<f32>) {
        a.clear();
        a.extend_from_slice(input);
        for conv in &self.convs {
            b.resize(conv.out_len(h, w, 1), 0.0);
            conv.run(a, h, w, 1, b);
            std::mem::swap(a, b);
        }
    }
}

/// A 640×360 frame as two tiles of 360 × (320 + 18 px of context), one thread each, at once.
fn bench_frame(rng: &mut Rng, runs: usize) {
    let net = Network::animevideov3(rng);
    let (h, w) = (360, 320 + 18);
    let inputs = [rng.vec(3 * h * w, 0.0, 1.0), rng.vec(3 * h * w, 0.0, 1.0)];
    let mut buffers = [(Vec::new(), Vec::new()), (Vec::new(), Vec::new())];
    let secs = median_secs(runs.min(5), || {
        std::thread::scope(|scope| {
            for (input, (a, b)) in inputs.iter().zip(buffers.iter_mut()) {
                let net = &net;
                scope.spawn(move || net.run(input, h, w, a, b));
            }
        });
    });
    println!(
        "measured: animevideov3 x4 conv stack, 640×360 frame as 2 tiles of {h}×{w} on 2 threads: \
         {secs:.2} s/frame (load {})",
        load_average()
    );
}

fn main() {
    let runs: usize = std::env::var("REFRAME_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(7);
    let mut rng = Rng(0x5EED);
    if let Ok(spec) = std::env::var("REFRAME_BENCH_SHAPE") {
        let v: Vec<usize> = spec
            .split(',')
            .filter_map(|x| x.trim().parse().ok())
            .collect();
        let &[c_in, c_out, h, w] = v.as_slice() else {
            eprintln!("REFRAME_BENCH_SHAPE wants c_in,c_out,h,w (four positive integers)");
            std::process::exit(2);
        };
        let weights = rng.vec(c_out * c_in * 9, -0.1, 0.1);
        let input = rng.vec(c_in * h * w, 0.0, 1.0);
        let conv = Conv3x3::new(&weights, &[], c_in, c_out, Activation::Prelu(vec![0.1]));
        let mut out = vec![0.0; conv.out_len(h, w, 1)];
        let mut best = f64::MAX;
        let secs = median_secs(runs, || {
            let t = Instant::now();
            conv.run(&input, h, w, 1, &mut out);
            best = best.min(t.elapsed().as_secs_f64());
        });
        let flop = 2.0 * (c_in * c_out * 9 * h * w) as f64;
        println!(
            "fastconv {c_in}→{c_out} {h}×{w}: min {:.2} ms ({:.1} GFLOP/s), median {:.2} ms ({:.1} GFLOP/s)",
            best * 1e3,
            flop / best / 1e9,
            secs * 1e3,
            flop / secs / 1e9
        );
        return;
    }
    println!(
        "convolution kernels, one thread, median of {runs} (load {})",
        load_average()
    );
    bench_sgemm(&mut rng, runs);
    // Shapes of animevideov3's convs on a quarter of a 640×360 frame (a tile per core would be
    // half a frame; the rates barely depend on size above a few tile rows).
    let first = bench_layer(&mut rng, runs, 3, 64, 90, 160);
    let body = bench_layer(&mut rng, runs, 64, 64, 90, 160);
    let last = bench_layer(&mut rng, runs, 64, 48, 90, 160);
    bench_layer(&mut rng, runs, 64, 64, 256, 256);
    // waifu2x upconv_7's widest layers.
    bench_layer(&mut rng, runs, 128, 256, 64, 64);

    // animevideov3 x4 body at 640×360: conv 3→64, 16 × conv 64→64, conv 64→48 (each + PReLU),
    // then PixelShuffle and an add, negligible here. Two cores each run half the tiles.
    let pixels = (640 * 360) as f64;
    let layers = [(&first, 1.0), (&body, 16.0), (&last, 1.0)];
    let secs: f64 = layers
        .iter()
        .map(|(l, count)| {
            count * 2.0 * (l.c_in * l.c_out * 9) as f64 * pixels / (l.fast_gflops * 1e9)
        })
        .sum();
    let gflop: f64 = layers
        .iter()
        .map(|(l, count)| count * 2.0 * (l.c_in * l.c_out * 9) as f64 * pixels / 1e9)
        .sum();
    println!(
        "estimate: animevideov3 x4 at 640×360 = {gflop:.0} GFLOP: {:.2} s on one core, \
         {:.2} s/frame on 2 cores (one tile per core, tile overlap not counted)",
        secs,
        secs / 2.0
    );
    bench_frame(&mut rng, runs);
}
