//! FFT plans and windows, made once and kept: a [`Planner`] lives as long as the warm preview
//! worker (inside its [`super::AudioCache`]) so that repeated viewport requests of the same
//! sizes plan nothing.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};
use rustfft::{Fft, FftPlanner};

/// Plan caches for the real forward FFTs (CWT windows) and the complex FFTs (forward: STFT
/// frame pairs; inverse: CWT bands), plus Hann windows by length. Plans are `Arc`s usable from any thread.
pub struct Planner {
    real: RealFftPlanner<f32>,
    complex: FftPlanner<f32>,
    hann: HashMap<usize, Arc<Vec<f32>>>,
}

impl Default for Planner {
    fn default() -> Self {
        Planner::new()
    }
}

impl fmt::Debug for Planner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Planner")
            .field("hann_windows", &self.hann.len())
            .finish_non_exhaustive()
    }
}

impl Planner {
    pub fn new() -> Planner {
        Planner {
            real: RealFftPlanner::new(),
            complex: FftPlanner::new(),
            hann: HashMap::new(),
        }
    }

    pub(crate) fn real_forward(&mut self, len: usize) -> Arc<dyn RealToComplex<f32>> {
        self.real.plan_fft_forward(len)
    }

    pub(crate) fn complex_forward(&mut self, len: usize) -> Arc<dyn Fft<f32>> {
        self.complex.plan_fft_forward(len)
    }

    pub(crate) fn complex_inverse(&mut self, len: usize) -> Arc<dyn Fft<f32>> {
        self.complex.plan_fft_inverse(len)
    }

    /// A periodic Hann window of `len` samples.
    pub(crate) fn hann(&mut self, len: usize) -> Arc<Vec<f32>> {
        self.hann
            .entry(len)
            .or_insert_with(|| {
                Arc::new(
                    (0..len)
                        .map(|i| {
                            let phase = std::f64::consts::TAU * i as f64 / len as f64;
                            (0.5 - 0.5 * phase.cos()) as f32
                        })
                        .collect(),
                )
            })
            .clone()
    }
}

/// The smallest `n' ≥ n` of the form 2^a·3^b·5^c (sizes the FFT handles at full speed), at
/// least 2.
pub fn next_fast_len(n: usize) -> usize {
    let n = n.max(2);
    let mut best = n.next_power_of_two();
    let mut p5 = 1usize;
    while p5 < best {
        let mut p35 = p5;
        while p35 < best {
            // The smallest power of two lifting p35 to at least n.
            let mut candidate = p35;
            while candidate < n {
                candidate *= 2;
            }
            best = best.min(candidate);
            p35 *= 3;
        }
        p5 *= 5;
    }
    best
}

/// The smallest length ≥ `n` (at least 2) of the form 2^a, 3·2^a or 5·2^a: at most a third
/// longer than needed, and so few distinct sizes that a warm [`Planner`] has planned them
/// all after a handful of requests (planning a large FFT costs as much as running it).
pub fn coarse_fast_len(n: usize) -> usize {
    let n = n.max(2);
    [1usize, 3, 5]
        .iter()
        .map(|&odd| {
            let mut len = odd * 2;
            while len < n {
                len *= 2;
            }
            len
        })
        .chain(std::iter::once(n.next_power_of_two()))
        .min()
        .unwrap_or(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_smooth(mut n: usize) -> bool {
        for p in [2, 3, 5] {
            while n.is_multiple_of(p) {
                n /= p;
            }
        }
        n == 1
    }

    #[test]
    fn fast_lengths_are_smooth_minimal_and_not_below_n() {
        for n in 1..2000 {
            let len = next_fast_len(n);
            assert!(len >= n && is_smooth(len), "{n} -> {len}");
            assert!((n.max(2)..len).all(|m| !is_smooth(m)), "{n} -> {len}");
        }
        assert_eq!(next_fast_len(1_441_000), 1_458_000);
    }

    #[test]
    fn coarse_lengths_are_few_and_tight() {
        let mut previous = 0;
        let mut distinct = 0;
        for n in 2..100_000 {
            let len = coarse_fast_len(n);
            assert!(
                len >= n && len.is_multiple_of(2) && is_smooth(len),
                "{n} -> {len}"
            );
            assert!(len as f64 <= n as f64 * 4.0 / 3.0 + 2.0, "{n} -> {len}");
            if len != previous {
                distinct += 1;
                previous = len;
            }
        }
        assert!(distinct <= 3 * 17 + 2, "{distinct}");
    }

    #[test]
    fn hann_is_periodic_and_cached() {
        let mut planner = Planner::new();
        let w = planner.hann(8);
        assert_eq!(w[0], 0.0);
        assert!((w[4] - 1.0).abs() < 1e-7);
        assert!((w[2] - 0.5).abs() < 1e-7);
        assert!(Arc::ptr_eq(&w, &planner.hann(8)));
    }
}
