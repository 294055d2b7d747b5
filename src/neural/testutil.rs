//! Test helpers: `.bin` bytes written by hand, random numbers, naive layer implementations and
//! small model texts shared by the tests of this module.

use super::weights::TAG_FP16;
use super::{Net, Tensor};

/// f32 → f16 bits for values exactly representable in half precision (normal numbers and 0).
pub fn f16_bits(v: f32) -> u16 {
    if v == 0.0 {
        return if v.is_sign_negative() { 0x8000 } else { 0 };
    }
    let bits = v.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exponent = ((bits >> 23) & 0xff) as i32 - 127 + 15;
    assert!((1..31).contains(&exponent), "{v} is not a normal f16");
    assert_eq!(bits & 0x1fff, 0, "{v} is not exact in f16");
    sign | ((exponent as u16) << 10) | ((bits >> 13) & 0x3ff) as u16
}

/// Builds `.bin` bytes blob by blob.
#[derive(Default)]
pub struct Bin(pub Vec<u8>);

impl Bin {
    pub fn fp16(mut self, values: &[f32]) -> Bin {
        self.0.extend(TAG_FP16.to_le_bytes());
        for &v in values {
            self.0.extend(f16_bits(v).to_le_bytes());
        }
        if values.len() % 2 == 1 {
            self.0.extend([0, 0]);
        }
        self
    }

    pub fn fp32(mut self, values: &[f32]) -> Bin {
        self.0.extend(0u32.to_le_bytes());
        self.raw(values)
    }

    pub fn raw(mut self, values: &[f32]) -> Bin {
        for &v in values {
            self.0.extend(v.to_le_bytes());
        }
        self
    }
}

/// xorshift64*: deterministic test randomness.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        let unit = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * unit
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn values(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform(lo, hi)).collect()
    }

    /// Values exactly representable in f16 (multiples of 1/1024 in [−0.25, 0.25)).
    pub fn half_values(&mut self, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| (self.below(512) as f32 - 256.0) / 1024.0)
            .collect()
    }

    pub fn tensor(&mut self, c: usize, h: usize, w: usize) -> Tensor {
        Tensor {
            channels: c,
            height: h,
            width: w,
            data: self.values(c * h * w, 0.0, 1.0),
        }
    }
}

/// A tensor whose value at (channel, row, column) is `f` of them.
pub fn tensor_of(c: usize, h: usize, w: usize, f: impl Fn(usize, usize, usize) -> f32) -> Tensor {
    let mut data = Vec::with_capacity(c * h * w);
    for ci in 0..c {
        for y in 0..h {
            for x in 0..w {
                data.push(f(ci, y, x));
            }
        }
    }
    Tensor {
        channels: c,
        height: h,
        width: w,
        data,
    }
}

pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.shape(), b.shape());
    a.data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Direct convolution, the textbook loop.
#[allow(clippy::too_many_arguments)]
pub fn naive_conv(
    x: &Tensor,
    weights: &[f32],
    bias: &[f32],
    c_out: usize,
    (kh, kw): (usize, usize),
    (sh, sw): (usize, usize),
    (dh, dw): (usize, usize),
    (top, bottom, left, right): (usize, usize, usize, usize),
) -> Tensor {
    let out_h = (x.height + top + bottom - (dh * (kh - 1) + 1)) / sh + 1;
    let out_w = (x.width + left + right - (dw * (kw - 1) + 1)) / sw + 1;
    let mut y = Tensor::zeros(c_out, out_h, out_w);
    for co in 0..c_out {
        for oy in 0..out_h {
            for ox in 0..out_w {
                let mut acc = if bias.is_empty() { 0.0 } else { bias[co] };
                for ci in 0..x.channels {
                    for ky in 0..kh {
                        for kx in 0..kw {
                            let iy = (oy * sh + ky * dh) as isize - top as isize;
                            let ix = (ox * sw + kx * dw) as isize - left as isize;
                            if iy < 0 || ix < 0 || iy >= x.height as isize || ix >= x.width as isize
                            {
                                continue;
                            }
                            let v = x.data[(ci * x.height + iy as usize) * x.width + ix as usize];
                            acc += v * weights[((co * x.channels + ci) * kh + ky) * kw + kx];
                        }
                    }
                }
                y.data[(co * out_h + oy) * out_w + ox] = acc;
            }
        }
    }
    y
}

/// Input padded by edge replication.
pub fn replicate_pad(x: &Tensor, pad: usize) -> Tensor {
    let (h, w) = (x.height + 2 * pad, x.width + 2 * pad);
    let mut y = Tensor::zeros(x.channels, h, w);
    for c in 0..x.channels {
        for yy in 0..h {
            for xx in 0..w {
                let sy = (yy as isize - pad as isize).clamp(0, x.height as isize - 1) as usize;
                let sx = (xx as isize - pad as isize).clamp(0, x.width as isize - 1) as usize;
                y.data[(c * h + yy) * w + xx] = x.data[(c * x.height + sy) * x.width + sx];
            }
        }
    }
    y
}

/// A miniature animevideov3 (SRVGGNetCompact): three padded 3×3 convs with PReLU,
/// PixelShuffle 4, the nearest-upsampled input added, then `final_scale` bicubic Interp
/// (none when `None`). Random weights; returns (param, bin).
pub fn mini_compact(rng: &mut Rng, final_scale: Option<f32>) -> (String, Vec<u8>) {
    let layers = if final_scale.is_some() { 11 } else { 10 };
    let mut param = format!("7767517\n{layers} {}\n", layers + 1);
    param.push_str("Input in 0 1 data\n");
    param.push_str("Split split 1 2 data d0 d1\n");
    param.push_str("Convolution c1 1 1 d1 c1 0=8 1=3 4=1 5=1 6=216\n");
    param.push_str("PReLU p1 1 1 c1 p1 0=8\n");
    param.push_str("Convolution c2 1 1 p1 c2 0=8 1=3 4=1 5=1 6=576\n");
    param.push_str("PReLU p2 1 1 c2 p2 0=1\n");
    param.push_str("Convolution c3 1 1 p2 c3 0=48 1=3 4=1 5=1 6=3456\n");
    param.push_str("PixelShuffle ps 1 1 c3 ps 0=4\n");
    param.push_str("Interp up 1 1 d0 up 0=1 1=4.000000e+00 2=4.000000e+00\n");
    let sum = if final_scale.is_some() {
        "sum"
    } else {
        "output"
    };
    param.push_str(&format!("BinaryOp add 2 1 ps up {sum} 0=0\n"));
    if let Some(s) = final_scale {
        param.push_str(&format!(
            "Interp down 1 1 {sum} output 0=3 1={s:e} 2={s:e}\n"
        ));
    }
    let bin = Bin::default()
        .fp16(&rng.half_values(216))
        .raw(&rng.values(8, -0.1, 0.1))
        .raw(&rng.values(8, 0.0, 0.3))
        .fp32(&rng.values(576, -0.2, 0.2))
        .raw(&rng.values(8, -0.1, 0.1))
        .raw(&[0.2])
        .fp16(&rng.half_values(3456))
        .raw(&rng.values(48, -0.1, 0.1));
    (param, bin.0)
}

/// A miniature waifu2x upconv_7: two unpadded 3×3 convs with leaky ReLU and a 4×4 stride-2
/// deconvolution cutting 3 pixels per side (output = 2·input − 12).
pub fn mini_upconv(rng: &mut Rng) -> (String, Vec<u8>) {
    let param = "7767517
4 4
Input in 0 1 data 0=16 1=16 2=3
Convolution c1 1 1 data c1 0=4 1=3 5=1 6=108 9=2 -23310=1,0.100000
Convolution c2 1 1 c1 c2 0=8 1=3 5=1 6=288 9=2 -23310=1,0.100000
Deconvolution d 1 1 c2 out 0=3 1=4 3=2 4=3 5=1 6=384
"
    .to_string();
    let bin = Bin::default()
        .fp16(&rng.half_values(108))
        .raw(&rng.values(4, -0.1, 0.1))
        .fp16(&rng.half_values(288))
        .raw(&rng.values(8, -0.1, 0.1))
        .fp16(&rng.half_values(384))
        .raw(&rng.values(3, -0.1, 0.1));
    (param, bin.0)
}

/// A miniature Real-ESRGAN RRDB net: a first conv, `depth` padded 3×3 convs with leaky ReLU
/// (a wide receptive field), a conv added to the first conv's output, then two nearest 2×
/// upsamplings each followed by a conv (4×). Random weights; returns (param, bin).
pub fn mini_rrdb(rng: &mut Rng, depth: usize) -> (String, Vec<u8>) {
    let mut param = format!("7767517\n{} {}\n", depth + 9, depth + 10);
    param.push_str("Input in 0 1 data\n");
    param.push_str("Convolution first 1 1 data f 0=4 1=3 4=1 5=1 6=108\n");
    param.push_str("Split split 1 2 f f0 f1\n");
    let mut bin = Bin::default()
        .fp16(&rng.half_values(108))
        .raw(&rng.values(4, -0.1, 0.1));
    let mut last = "f1".to_string();
    for i in 0..depth {
        param.push_str(&format!(
            "Convolution b{i} 1 1 {last} b{i} 0=4 1=3 4=1 5=1 6=144 9=2 -23310=1,2.000000e-01\n"
        ));
        bin = bin
            .fp16(&rng.half_values(144))
            .raw(&rng.values(4, -0.1, 0.1));
        last = format!("b{i}");
    }
    param.push_str(&format!(
        "Convolution body 1 1 {last} body 0=4 1=3 4=1 5=1 6=144\n"
    ));
    param.push_str("BinaryOp add 2 1 f0 body sum 0=0\n");
    param.push_str("Interp up1 1 1 sum u1 0=1 1=2.000000e+00 2=2.000000e+00\n");
    param.push_str("Convolution c1 1 1 u1 c1 0=4 1=3 4=1 5=1 6=144 9=2 -23310=1,2.000000e-01\n");
    param.push_str("Interp up2 1 1 c1 u2 0=1 1=2.000000e+00 2=2.000000e+00\n");
    param.push_str("Convolution last 1 1 u2 output 0=3 1=3 4=1 5=1 6=108\n");
    let bin = bin
        .fp16(&rng.half_values(144))
        .raw(&rng.values(4, -0.1, 0.1))
        .fp16(&rng.half_values(144))
        .raw(&rng.values(4, -0.1, 0.1))
        .fp16(&rng.half_values(108))
        .raw(&rng.values(3, -0.1, 0.1));
    (param, bin.0)
}

/// A miniature squeeze-and-excitation U-Net, unpadded as Real-CUGAN: a 3×3 conv, a stride-2
/// 2×2 conv whose output is scaled per channel by the sigmoid of an InnerProduct over its
/// global average, a 2×2 deconv back, a conv, a cropped skip connection added, a second
/// excitation from the global maximum, and a 4×4 stride-2 deconv to 2× (out = 2n − 12, so 3
/// input pixels of pre-padding; even pre-padded sides only). Random weights; (param, bin).
pub fn mini_se_unet(rng: &mut Rng) -> (String, Vec<u8>) {
    let param = "7767517
17 20
Input in 0 1 data
Convolution c0 1 1 data a 0=4 1=3 5=1 6=108 9=2 -23310=1,0.100000
Split s0 1 2 a a1 a2
Convolution c1 1 1 a2 b 0=4 1=2 3=2 5=1 6=64 9=1
Split s1 1 2 b b1 b2
Pooling p0 1 1 b2 g0 0=1 4=1
InnerProduct ip0 1 1 g0 e0 0=4 1=1 2=16 9=4
BinaryOp m0 2 1 b1 e0 bm 0=2
Deconvolution d0 1 1 bm u 0=4 1=2 3=2 5=1 6=64
Convolution c2 1 1 u v 0=4 1=3 5=1 6=144
Crop cr 1 1 a1 ac -23309=2,1,1 -23310=2,-1,-1 -23311=2,-2,-1
BinaryOp add 2 1 v ac w 0=0
Split s2 1 2 w w1 w2
Pooling p1 1 1 w2 g1 0=0 4=1
InnerProduct ip1 1 1 g1 e1 0=4 1=1 2=16 9=4
BinaryOp m1 2 1 w1 e1 wm 0=2
Deconvolution d1 1 1 wm out 0=3 1=4 3=2 4=3 5=1 6=192
"
    .to_string();
    let bin = Bin::default()
        .fp16(&rng.half_values(108))
        .raw(&rng.values(4, -0.1, 0.1))
        .fp16(&rng.half_values(64))
        .raw(&rng.values(4, -0.1, 0.1))
        .fp32(&rng.values(16, -4.0, 4.0))
        .raw(&rng.values(4, -0.5, 0.5))
        .fp16(&rng.half_values(64))
        .raw(&rng.values(4, -0.1, 0.1))
        .fp16(&rng.half_values(144))
        .raw(&rng.values(4, -0.1, 0.1))
        .fp32(&rng.values(16, -4.0, 4.0))
        .raw(&rng.values(4, -0.5, 0.5))
        .fp16(&rng.half_values(192))
        .raw(&rng.values(3, -0.1, 0.1));
    (param, bin.0)
}

/// [`net`] of a (param, bin) pair as the miniature nets return them.
pub fn net_of((param, bin): (String, Vec<u8>)) -> Net {
    net(&param, &bin)
}

pub fn net(param: &str, bin: &[u8]) -> Net {
    Net::parse(param, bin).unwrap_or_else(|e| panic!("{e}"))
}
