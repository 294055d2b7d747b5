//! Eight-lane f32 vectors behind one trait, so the Winograd kernels are written once and
//! compiled twice: with AVX2/FMA (selected at run time) and as portable code.
//!
//! Every method is `#[inline(always)]`: the kernels are generic over [`Simd`] and are
//! themselves inlined into one `#[target_feature]` entry point, so the AVX2 intrinsics end up
//! in a function compiled with those features. A non-inlined method would be compiled without
//! them and cost a call per instruction.

/// Eight f32 lanes. `transpose4` transposes 4×4 blocks within each 128-bit half, which is how
/// the kernels turn four x-contiguous vectors into per-tile phases and back.
pub(super) trait Simd: Copy {
    type V: Copy;
    fn splat(self, x: f32) -> Self::V;
    /// Reads `src[..8]`.
    fn load(self, src: &[f32]) -> Self::V;
    /// Writes `dst[..8]`.
    fn store(self, dst: &mut [f32], v: Self::V);
    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    fn sub(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a * b + c`.
    fn fma(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    fn max(self, a: Self::V, b: Self::V) -> Self::V;
    fn min(self, a: Self::V, b: Self::V) -> Self::V;
    /// Rows `r` of four vectors: lanes `h*4..h*4+4` of each (h = half) form a 4×4 block;
    /// returns that block transposed, in every half.
    fn transpose4(self, r: [Self::V; 4]) -> [Self::V; 4];
}

/// Plain arrays; the compiler vectorises what it can for the baseline target.
#[derive(Clone, Copy)]
pub(super) struct Portable;

impl Simd for Portable {
    type V = [f32; 8];

    #[inline(always)]
    fn splat(self, x: f32) -> [f32; 8] {
        [x; 8]
    }
    #[inline(always)]
    fn load(self, src: &[f32]) -> [f32; 8] {
        let mut v = [0.0; 8];
        v.copy_from_slice(&src[..8]);
        v
    }
    #[inline(always)]
    fn store(self, dst: &mut [f32], v: [f32; 8]) {
        dst[..8].copy_from_slice(&v);
    }
    #[inline(always)]
    fn add(self, a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|i| a[i] + b[i])
    }
    #[inline(always)]
    fn sub(self, a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|i| a[i] - b[i])
    }
    #[inline(always)]
    fn fma(self, a: [f32; 8], b: [f32; 8], c: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|i| a[i] * b[i] + c[i])
    }
    #[inline(always)]
    fn max(self, a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|i| a[i].max(b[i]))
    }
    #[inline(always)]
    fn min(self, a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|i| a[i].min(b[i]))
    }
    #[inline(always)]
    fn transpose4(self, r: [[f32; 8]; 4]) -> [[f32; 8]; 4] {
        std::array::from_fn(|j| std::array::from_fn(|l| r[l % 4][(l / 4) * 4 + j]))
    }
}

#[cfg(target_arch = "x86_64")]
pub(super) use avx2::Avx2;

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::Simd;

    /// Proof that the CPU has AVX2 and FMA: only [`Avx2::detect`] makes one.
    #[derive(Clone, Copy)]
    pub(in super::super) struct Avx2 {
        _private: (),
    }

    impl Avx2 {
        pub(in super::super) fn detect() -> Option<Avx2> {
            (is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
                .then_some(Avx2 { _private: () })
        }
    }

    impl Simd for Avx2 {
        type V = __m256;

        #[inline(always)]
        fn splat(self, x: f32) -> __m256 {
            // SAFETY: an `Avx2` value exists only when AVX2 and FMA were detected.
            unsafe { _mm256_set1_ps(x) }
        }
        #[inline(always)]
        fn load(self, src: &[f32]) -> __m256 {
            let src = &src[..8];
            // SAFETY: `src` holds 8 f32 (checked above); unaligned load; AVX detected (token).
            unsafe { _mm256_loadu_ps(src.as_ptr()) }
        }
        #[inline(always)]
        fn store(self, dst: &mut [f32], v: __m256) {
            let dst = &mut dst[..8];
            // SAFETY: `dst` holds 8 f32 (checked above); unaligned store; AVX detected (token).
            unsafe { _mm256_storeu_ps(dst.as_mut_ptr(), v) }
        }
        #[inline(always)]
        fn add(self, a: __m256, b: __m256) -> __m256 {
            // SAFETY: AVX detected (token).
            unsafe { _mm256_add_ps(a, b) }
        }
        #[inline(always)]
        fn sub(self, a: __m256, b: __m256) -> __m256 {
            // SAFETY: AVX detected (token).
            unsafe { _mm256_sub_ps(a, b) }
        }
        #[inline(always)]
        fn fma(self, a: __m256, b: __m256, c: __m256) -> __m256 {
            // SAFETY: FMA detected (token).
            unsafe { _mm256_fmadd_ps(a, b, c) }
        }
        #[inline(always)]
        fn max(self, a: __m256, b: __m256) -> __m256 {
            // SAFETY: AVX detected (token).
            unsafe { _mm256_max_ps(a, b) }
        }
        #[inline(always)]
        fn min(self, a: __m256, b: __m256) -> __m256 {
            // SAFETY: AVX detected (token).
            unsafe { _mm256_min_ps(a, b) }
        }
        #[inline(always)]
        fn transpose4(self, r: [__m256; 4]) -> [__m256; 4] {
            // SAFETY: AVX detected (token); pure register shuffles.
            unsafe {
                let t0 = _mm256_unpacklo_ps(r[0], r[1]);
                let t1 = _mm256_unpackhi_ps(r[0], r[1]);
                let t2 = _mm256_unpacklo_ps(r[2], r[3]);
                let t3 = _mm256_unpackhi_ps(r[2], r[3]);
                [
                    _mm256_shuffle_ps::<0x44>(t0, t2),
                    _mm256_shuffle_ps::<0xEE>(t0, t2),
                    _mm256_shuffle_ps::<0x44>(t1, t3),
                    _mm256_shuffle_ps::<0xEE>(t1, t3),
                ]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> [[f32; 8]; 4] {
        std::array::from_fn(|r| std::array::from_fn(|l| (r * 8 + l) as f32))
    }

    #[test]
    fn portable_transpose_is_per_half_and_an_involution() {
        let r = rows();
        let t = Portable.transpose4(r);
        // Lane j of half h in output row i = lane i of half h in input row j.
        for (i, row) in t.iter().enumerate() {
            for h in 0..2 {
                for j in 0..4 {
                    assert_eq!(row[h * 4 + j], r[j][h * 4 + i]);
                }
            }
        }
        assert_eq!(Portable.transpose4(t), r);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_matches_portable() {
        let Some(avx) = Avx2::detect() else {
            eprintln!("skipped: this CPU has no AVX2/FMA");
            return;
        };
        let r = rows();
        let v = r.map(|row| avx.load(&row));
        let t = avx.transpose4(v);
        let expected = Portable.transpose4(r);
        for (got, want) in t.iter().zip(&expected) {
            let mut out = [0.0; 8];
            avx.store(&mut out, *got);
            assert_eq!(&out, want);
        }
        let mut out = [0.0; 8];
        let a = avx.load(&r[1]);
        let b = avx.splat(-2.0);
        avx.store(
            &mut out,
            avx.fma(a, b, avx.sub(avx.max(a, b), avx.min(a, b))),
        );
        let want = Portable.fma(r[1], [-2.0; 8], Portable.sub(r[1], [-2.0; 8]));
        assert_eq!(out, want);
    }
}
