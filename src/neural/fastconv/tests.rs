//! Winograd results against a plain direct convolution (f64 accumulation).

use super::*;

/// Small deterministic generator (xorshift64*), uniform in [lo, hi).
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

fn activate(x: f32, act: &Activation, o: usize) -> f32 {
    let slope = match act {
        Activation::None => return x,
        Activation::Relu => 0.0,
        Activation::LeakyRelu(s) => *s,
        Activation::Prelu(s) => s[if s.len() == 1 { 0 } else { o }],
    };
    if x > 0.0 { x } else { x * slope }
}

#[allow(clippy::too_many_arguments)]
fn direct(
    input: &[f32],
    weights: &[f32],
    bias: &[f32],
    act: &Activation,
    c_in: usize,
    c_out: usize,
    h: usize,
    w: usize,
    pad: usize,
) -> Vec<f32> {
    let (h_out, w_out) = out_size(h, w, pad);
    let mut out = vec![0.0; c_out * h_out * w_out];
    for o in 0..c_out {
        for y in 0..h_out {
            for x in 0..w_out {
                let mut sum = f64::from(bias.get(o).copied().unwrap_or(0.0));
                for i in 0..c_in {
                    for ky in 0..3 {
                        for kx in 0..3 {
                            let (iy, ix) = (
                                (y + ky) as isize - pad as isize,
                                (x + kx) as isize - pad as isize,
                            );
                            if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                continue;
                            }
                            let v = input[(i * h + iy as usize) * w + ix as usize];
                            sum += f64::from(v)
                                * f64::from(weights[((o * c_in + i) * 3 + ky) * 3 + kx]);
                        }
                    }
                }
                out[(o * h_out + y) * w_out + x] = activate(sum as f32, act, o);
            }
        }
    }
    out
}

/// Runs one case through both code paths and returns the max abs difference to direct.
fn check(
    rng: &mut Rng,
    c_in: usize,
    c_out: usize,
    h: usize,
    w: usize,
    pad: usize,
    act: Activation,
) -> f32 {
    // ncnn-like weights: He-scaled so that outputs stay around 1 for inputs in [0, 1].
    let scale = (6.0 / (9.0 * c_in as f32)).sqrt();
    let weights = rng.vec(c_out * c_in * 9, -scale, scale);
    let bias = rng.vec(c_out, -0.1, 0.1);
    let input = rng.vec(c_in * h * w, 0.0, 1.0);
    let conv = Conv3x3::new(&weights, &bias, c_in, c_out, act.clone());
    let want = direct(&input, &weights, &bias, &act, c_in, c_out, h, w, pad);
    let mut worst = 0.0f32;
    for portable in [false, true] {
        let mut got = vec![f32::NAN; conv.out_len(h, w, pad)];
        assert_eq!(got.len(), want.len());
        if portable {
            conv.run_portable(&input, h, w, pad, &mut got);
        } else {
            conv.run(&input, h, w, pad, &mut got);
        }
        for (g, e) in got.iter().zip(&want) {
            let diff = (g - e).abs();
            assert!(
                diff <= 1e-4,
                "c_in {c_in} c_out {c_out} {h}×{w} pad {pad} {act:?} portable {portable}: {g} vs {e}"
            );
            worst = worst.max(diff);
        }
    }
    worst
}

#[test]
fn matches_direct_on_odd_and_tiny_sizes() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for &(h, w) in &[
        (1, 1),
        (1, 5),
        (2, 2),
        (3, 3),
        (4, 4),
        (5, 7),
        (6, 6),
        (7, 33),
        (9, 13),
        (13, 70),
        (34, 5),
    ] {
        for pad in [0, 1] {
            check(&mut rng, 3, 5, h, w, pad, Activation::None);
        }
    }
}

#[test]
fn matches_direct_for_every_activation() {
    let mut rng = Rng(42);
    let acts = [
        Activation::None,
        Activation::Relu,
        Activation::LeakyRelu(0.1),
        Activation::Prelu(vec![0.25]),
        Activation::Prelu((0..6).map(|o| o as f32 * 0.1 - 0.2).collect()),
    ];
    for act in acts {
        check(&mut rng, 4, 6, 11, 19, 1, act.clone());
        check(&mut rng, 4, 6, 10, 66, 0, act);
    }
}

#[test]
fn matches_direct_with_one_channel_and_odd_channel_counts() {
    let mut rng = Rng(7);
    check(&mut rng, 1, 1, 9, 9, 1, Activation::None);
    check(&mut rng, 1, 7, 8, 17, 0, Activation::Relu);
    check(&mut rng, 17, 1, 5, 40, 1, Activation::LeakyRelu(0.2));
    check(&mut rng, 5, 13, 21, 3, 1, Activation::None);
}

#[test]
fn matches_direct_at_model_channel_counts() {
    // Several blocks of chunks (more than 3·8·8 tiles would need bigger images; 64 channels
    // already make each block a single chunk), edge tiles on both axes.
    let mut rng = Rng(2024);
    let slopes = rng.vec(64, 0.0, 0.3);
    let worst = check(&mut rng, 64, 64, 18, 70, 1, Activation::Prelu(slopes));
    assert!(worst < 1e-4);
    check(&mut rng, 3, 64, 30, 50, 1, Activation::Prelu(vec![0.2]));
    check(&mut rng, 64, 48, 10, 37, 1, Activation::None);
    check(&mut rng, 16, 32, 23, 41, 0, Activation::LeakyRelu(0.1));
}

#[test]
fn many_blocks_with_few_channels() {
    // 2 channels: blocks of 8 chunks; 100×200 → 25 tile rows × 7 groups = 175 groups.
    let mut rng = Rng(99);
    check(&mut rng, 2, 2, 102, 202, 0, Activation::Relu);
}

#[test]
fn output_geometry() {
    let conv = Conv3x3::new(&[0.0; 2 * 3 * 9], &[], 3, 2, Activation::None);
    assert_eq!(conv.out_len(10, 20, 1), 2 * 10 * 20);
    assert_eq!(conv.out_len(10, 20, 0), 2 * 8 * 18);
    assert_eq!(conv.out_len(2, 20, 0), 0);
    assert_eq!(conv.out_len(1, 1, 1), 2);
    // An empty output is a no-op, not a panic.
    conv.run(&[0.0; 3 * 2 * 20], 2, 20, 0, &mut []);
}

#[test]
fn repeated_runs_reuse_scratch_and_agree() {
    let mut rng = Rng(5);
    let weights = rng.vec(8 * 4 * 9, -0.3, 0.3);
    let conv = Conv3x3::new(&weights, &[], 4, 8, Activation::Relu);
    let big = rng.vec(4 * 40 * 40, 0.0, 1.0);
    let small = rng.vec(4 * 6 * 6, 0.0, 1.0);
    let mut a = vec![0.0; conv.out_len(6, 6, 1)];
    let mut b = vec![0.0; conv.out_len(40, 40, 1)];
    let mut c = vec![0.0; conv.out_len(6, 6, 1)];
    conv.run(&small, 6, 6, 1, &mut a);
    conv.run(&big, 40, 40, 1, &mut b);
    conv.run(&small, 6, 6, 1, &mut c);
    assert_eq!(a, c);
    // The padded copy's zero border is kept between calls of one layout: a call with another
    // layout in between (pad 0 writes data where pad 1 has border) must not leak into it.
    let mut d = vec![0.0; conv.out_len(40, 40, 0)];
    conv.run(&big, 40, 40, 0, &mut d);
    conv.run(&big, 40, 40, 1, &mut b);
    let want = direct(&big, &weights, &[], &Activation::Relu, 4, 8, 40, 40, 1);
    let worst = b
        .iter()
        .zip(&want)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(worst <= 1e-4, "{worst}");
}
