//! Short-time Fourier transform, one frame per shown column.
//!
//! Column `c` of an image over `[start, end)` is the Hann-windowed FFT of the `n_fft` samples
//! centred at the column's centre time; nothing between columns is computed, so a 2-hour
//! window costs the same 1600 frames as a 40 s one (and reads only those from the
//! cache). Row `r` takes the largest bin power within the row's frequency span, so a narrow
//! tone stays visible whatever the row spacing. Magnitudes are scaled by `2 / Σw`: a
//! full-scale sine on a bin centre reads 0 dBFS.
//!
//! Columns go by pairs (0 and 1, 2 and 3, …; an odd last column with a silent partner): the
//! two real frames are the real and imaginary parts of one complex FFT, whose spectrum
//! splits into theirs by symmetry, `X[k] = (Z[k] + Z*[n−k]) / 2`,
//! `Y[k] = (Z[k] − Z*[n−k]) / 2i`. That costs less than two real FFTs (no twiddled
//! post-processing, and one longer FFT is cheaper than two short ones), and only the
//! powers `|X[k]|²`, `|Y[k]|²` are formed. Frames are windowed while they are copied in;
//! from a mapped cache file, straight from the page cache.
//!
//! The loops over samples and bins are compiled twice, for baseline x86-64 and for AVX2, and
//! the build the CPU can run is chosen at run time (the same values either way); row peaks
//! take two reads per row from a table of range maxima instead of a loop over each row's
//! bins ([`RowPeaks`]).
//!
//! The same [`ColumnKernel`] computes the streaming overview in the audio cache, pairing the
//! same columns, so the overview and a zoomed STFT of the same span agree exactly.

use std::mem::MaybeUninit;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use rayon::prelude::*;
use realfft::num_complex::Complex;
use rustfft::Fft;

use super::fft::Planner;
use super::{
    FreqAxis, SampleSource, Spectrogram, SpectrumError, Transform, check_cancel,
    column_centre_secs, overlap, power_db, sanitize,
};

/// The frame length for a track at `sample_rate` drawn with `height` rows: about 43 ms
/// (2048 samples at 48 kHz), more when the rows are finer than the bins, a power of two.
pub fn fft_len(sample_rate: u32, height: usize) -> usize {
    let base = ((sample_rate as f64 * 0.04).round() as usize)
        .next_power_of_two()
        .clamp(256, 8192);
    base.max((2 * height).next_power_of_two()).min(65_536)
}

/// Everything needed to turn a pair of frames into two columns: plan, window, and per row the
/// bin range it takes its maximum over.
pub(crate) struct ColumnKernel {
    /// Complex forward FFT of `n_fft` points (one pair of real frames).
    fft: Arc<dyn Fft<f32>>,
    window: Arc<Vec<f32>>,
    /// Power scale: (2 / Σw)² for the rows, with the ¼ of the pair split folded in.
    power_scale: f32,
    /// Per row (0 = top), the inclusive bin range.
    row_bins: Vec<(usize, usize)>,
    /// Where each row finds its peak in the range-maximum levels ([`RowPeaks`]).
    peaks: RowPeaks,
    /// Whether the per-bin loops run in their AVX2 build ([`Simd::detect`]).
    simd: Simd,
    pub(crate) n_fft: usize,
}

/// Which build of the per-sample and per-bin loops a [`ColumnKernel`] runs: the same Rust
/// code, compiled once for the baseline x86-64 (SSE2) and once for AVX2 + FMA, chosen at run
/// time. Both give the same values to the bit (no fused multiply-adds are formed: Rust never
/// contracts `a * b + c` on its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Simd {
    Baseline,
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl Simd {
    fn detect() -> Simd {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return Simd::Avx2;
        }
        Simd::Baseline
    }
}

/// Reusable buffers of one thread running a [`ColumnKernel`].
pub(crate) struct ColumnBuffers {
    /// The pair of windowed frames (real part: first, imaginary part: second), then its FFT.
    pair: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    /// The power of every bin (0 ..= n/2): of the first frame, of the second; then the
    /// [`RowPeaks`] levels.
    power: Vec<[f32; 2]>,
    /// Each row's peak power, then its dB value: of the first frame, of the second.
    rows: Vec<[f32; 2]>,
}

impl ColumnKernel {
    pub(crate) fn new(planner: &mut Planner, sample_rate: u32, height: usize) -> ColumnKernel {
        let n_fft = fft_len(sample_rate, height);
        let fft = planner.complex_forward(n_fft);
        let window = planner.hann(n_fft);
        let sum: f64 = window.iter().map(|&w| w as f64).sum();
        let power_scale = ((2.0 / sum) * (2.0 / sum) / 4.0) as f32;
        let axis = FreqAxis::Linear {
            max_hz: sample_rate as f32 / 2.0,
        };
        let bin_hz = sample_rate as f64 / n_fft as f64;
        let last_bin = n_fft / 2;
        let row_span_hz = if height > 1 {
            sample_rate as f64 / 2.0 / (height - 1) as f64
        } else {
            sample_rate as f64 / 2.0
        };
        let row_bins: Vec<(usize, usize)> = (0..height)
            .map(|row| {
                let centre = axis.row_hz(row, height) as f64;
                let lo = ((centre - row_span_hz / 2.0) / bin_hz).ceil().max(0.0) as usize;
                let hi = (((centre + row_span_hz / 2.0) / bin_hz).floor() as usize).min(last_bin);
                if lo <= hi {
                    (lo, hi)
                } else {
                    let nearest = ((centre / bin_hz).round() as usize).min(last_bin);
                    (nearest, nearest)
                }
            })
            .collect();
        let peaks = RowPeaks::new(&row_bins, last_bin + 1);
        ColumnKernel {
            fft,
            window,
            power_scale,
            row_bins,
            peaks,
            simd: Simd::detect(),
            n_fft,
        }
    }

    pub(crate) fn buffers(&self) -> ColumnBuffers {
        let bins = self.n_fft / 2 + 1;
        let rows = self.row_bins.len();
        ColumnBuffers {
            pair: vec![Complex::new(0.0, 0.0); self.n_fft],
            scratch: vec![Complex::new(0.0, 0.0); self.fft.get_inplace_scratch_len()],
            power: vec![[0.0; 2]; bins * (self.peaks.levels + 1)],
            rows: vec![[0.0; 2]; rows],
        }
    }

    /// The frame (first sample) of column `column` of `width` over `[start_secs, end_secs)`.
    pub(crate) fn frame_start(
        &self,
        sample_rate: u32,
        start_secs: f64,
        end_secs: f64,
        width: usize,
        column: usize,
    ) -> i64 {
        let centre = column_centre_secs(start_secs, end_secs, width, column) * sample_rate as f64;
        centre.round() as i64 - (self.n_fft / 2) as i64
    }

    /// Puts the pair of frames in `buffers`, windowed: each is the `n_fft` samples starting
    /// at position `.1` of the samples `.0` (zeros outside them).
    pub(crate) fn load(
        &self,
        buffers: &mut ColumnBuffers,
        first: (&[f32], i64),
        second: (&[f32], i64),
    ) {
        match self.simd {
            // SAFETY: `Simd::Avx2` is chosen only on a CPU with AVX2 and FMA.
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2 => unsafe { self.load_avx2(buffers, first, second) },
            Simd::Baseline => self.load_any(buffers, first, second),
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn load_avx2(&self, buffers: &mut ColumnBuffers, first: (&[f32], i64), second: (&[f32], i64)) {
        self.load_any(buffers, first, second);
    }

    /// [`ColumnKernel::load`] for whichever instruction set the caller is compiled for.
    #[inline(always)]
    fn load_any(&self, buffers: &mut ColumnBuffers, first: (&[f32], i64), second: (&[f32], i64)) {
        fn whole((samples, start): (&[f32], i64), n: usize) -> Option<&[f32]> {
            let start = usize::try_from(start).ok()?;
            samples.get(start..start.checked_add(n)?)
        }
        let n = self.n_fft;
        if let (Some(a), Some(b)) = (whole(first, n), whole(second, n)) {
            // The usual case, in one pass that vectorises.
            for (((c, &x), &y), &w) in buffers.pair.iter_mut().zip(a).zip(b).zip(&*self.window) {
                *c = Complex::new(x * w, y * w);
            }
            return;
        }
        fn re(c: &mut Complex<f32>) -> &mut f32 {
            &mut c.re
        }
        fn im(c: &mut Complex<f32>) -> &mut f32 {
            &mut c.im
        }
        self.load_part(&mut buffers.pair, re, first.0, first.1);
        self.load_part(&mut buffers.pair, im, second.0, second.1);
    }

    /// Asks for the frame of [`ColumnKernel::load`] given as `frame` to be fetched into the
    /// cache, without waiting for it: the frames of the next pair, while this one is
    /// transformed (they come from a track far larger than the caches).
    #[inline]
    pub(crate) fn prefetch(&self, (samples, first): (&[f32], i64)) {
        let (_, Some(src)) = overlap(first, self.n_fft, samples.len() as u64) else {
            return;
        };
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_MM_HINT_T1, _mm_prefetch};
            let frame = &samples[src.start as usize..src.end as usize];
            // One request per 64-byte cache line.
            for line in frame.chunks(16) {
                // SAFETY: SSE is part of x86_64; a prefetch reads nothing, and the address
                // is that of an element of `frame`.
                unsafe { _mm_prefetch::<_MM_HINT_T1>(line.as_ptr().cast()) };
            }
        }
    }

    /// One frame of [`ColumnKernel::load`], into the part of each value that `part` gives.
    fn load_part<F: Fn(&mut Complex<f32>) -> &mut f32>(
        &self,
        pair: &mut [Complex<f32>],
        part: F,
        samples: &[f32],
        first: i64,
    ) {
        let (dst, src) = overlap(first, pair.len(), samples.len() as u64);
        let (Some(dst), Some(src)) = (dst, src) else {
            pair.iter_mut().for_each(|c| *part(c) = 0.0);
            return;
        };
        pair[..dst.start].iter_mut().for_each(|c| *part(c) = 0.0);
        let src = &samples[src.start as usize..src.end as usize];
        for ((c, &x), &w) in pair[dst.clone()]
            .iter_mut()
            .zip(src)
            .zip(&self.window[dst.clone()])
        {
            *part(c) = x * w;
        }
        pair[dst.end..].iter_mut().for_each(|c| *part(c) = 0.0);
    }

    /// Transforms the pair loaded with [`ColumnKernel::load`] (it is overwritten) and returns
    /// each row's dB values, row 0 first: `[first frame, second frame]`.
    pub(crate) fn columns<'b>(&self, buffers: &'b mut ColumnBuffers) -> &'b [[f32; 2]] {
        self.fft
            .process_with_scratch(&mut buffers.pair, &mut buffers.scratch);
        match self.simd {
            // SAFETY: `Simd::Avx2` is chosen only on a CPU with AVX2 and FMA.
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2 => unsafe { self.rows_avx2(buffers) },
            Simd::Baseline => self.rows_any(buffers),
        }
        &buffers.rows
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn rows_avx2(&self, buffers: &mut ColumnBuffers) {
        self.rows_any(buffers);
    }

    /// From the pair's spectrum in `buffers.pair` to the rows' dB values in `buffers.rows`,
    /// for whichever instruction set the caller is compiled for.
    #[inline(always)]
    fn rows_any(&self, buffers: &mut ColumnBuffers) {
        let n = self.n_fft;
        let z = &buffers.pair;
        let power = &mut buffers.power;
        // Bins 0 and n/2 pair with themselves; the rest k with n − k (4× the powers; the ¼ is
        // in `power_scale`).
        let half = n / 2;
        let mut k = 0;
        #[cfg(target_arch = "x86_64")]
        if self.simd == Simd::Avx2 {
            // SAFETY: `Simd::Avx2` is chosen only on a CPU with AVX2 and FMA.
            k = unsafe { split_powers_avx2(z, power) };
        }
        // The bins the loop above left (all of them without it); bins 0 and n/2 pair with
        // themselves.
        for k in std::iter::once(0).chain(k.max(1)..=half) {
            let (a, b) = (z[k], z[(n - k) % n].conj());
            power[k] = [
                clean_power((a + b).norm_sqr()),
                clean_power((a - b).norm_sqr()),
            ];
        }
        self.peaks.fill_levels(power, half + 1);
        let max = |a: f32, b: f32| if a > b { a } else { b };
        for (peak, &(a, b)) in buffers.rows.iter_mut().zip(&self.peaks.rows) {
            let [a0, a1] = power[a as usize];
            let [b0, b1] = power[b as usize];
            *peak = [
                max(a0, b0) * self.power_scale,
                max(a1, b1) * self.power_scale,
            ];
        }
        // Apart from the loop above so that it vectorises.
        for value in buffers.rows.as_flattened_mut() {
            *value = power_db(*value);
        }
    }
}

/// A bin power as the row peaks use it: never negative, and NaN (from NaN samples) as 0, so
/// that every maximum is exact whatever order it takes its operands in.
#[inline(always)]
fn clean_power(p: f32) -> f32 {
    if p > 0.0 { p } else { 0.0 }
}

/// The bin powers of both frames of a pair from their joint spectrum `z` (4× each, as in
/// [`ColumnKernel::columns`]), four bins at a time from bin 1, into `power`; returns the first
/// bin not done. Gives the values of the plain loop to the bit: the same operations in the
/// same order.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn split_powers_avx2(z: &[Complex<f32>], power: &mut [[f32; 2]]) -> usize {
    use std::arch::x86_64::*;
    let n = z.len();
    let half = n / 2;
    let conjugate = _mm256_setr_ps(0.0, -0.0, 0.0, -0.0, 0.0, -0.0, 0.0, -0.0);
    let zero = _mm256_setzero_ps();
    let mut k = 1;
    while k + 4 <= half {
        let a = &z[k..k + 4];
        // Bins n − k − 3 ..= n − k, reversed below to line up with k .. k + 4.
        let c = &z[n - k - 3..n - k + 1];
        let out = &mut power[k..k + 4];
        // SAFETY: each load reads the 32 bytes of 4 `Complex<f32>` of `z` (bounds checked by
        // the slices above), the store the 32 bytes of 4 `[f32; 2]` of `power`.
        unsafe {
            let a = _mm256_loadu_ps(a.as_ptr().cast());
            let c = _mm256_loadu_ps(c.as_ptr().cast());
            let c = _mm256_castpd_ps(_mm256_permute4x64_pd::<0b00_01_10_11>(_mm256_castps_pd(c)));
            let b = _mm256_xor_ps(c, conjugate);
            let sum = _mm256_add_ps(a, b);
            let difference = _mm256_sub_ps(a, b);
            // Per 128-bit half: |sum|² of two bins, then |difference|² of the same two.
            let norms = _mm256_hadd_ps(
                _mm256_mul_ps(sum, sum),
                _mm256_mul_ps(difference, difference),
            );
            let pairs = _mm256_permute_ps::<0b11_01_10_00>(norms);
            // `maxps` returns its second operand for NaN: `clean_power`.
            let pairs = _mm256_max_ps(pairs, zero);
            _mm256_storeu_ps(out.as_mut_ptr().cast(), pairs);
        }
        k += 4;
    }
    k
}

/// Each row's peak bin power in two reads, whatever its width: level `l` holds, for every
/// bin `k`, the largest power of bins `k .. k + 2^l` (level 0: the powers themselves, each
/// level from the one before in one pass that vectorises). A row over `lo ..= hi` takes the
/// level `l` with `2^l ≤ hi − lo + 1 < 2^(l+1)` and the larger of its values at `lo` and at
/// `hi + 1 − 2^l`: two spans that together cover the row exactly. (A loop over each row's
/// 3 to 5 bins mispredicted its exit on most rows and cost as much as the FFT.)
struct RowPeaks {
    /// Levels above 0 that some row needs.
    levels: usize,
    /// Per row, the indices of its two values in the levels laid end to end.
    rows: Vec<(u32, u32)>,
}

impl RowPeaks {
    fn new(row_bins: &[(usize, usize)], bins: usize) -> RowPeaks {
        let level = |lo: usize, hi: usize| (hi - lo + 1).ilog2() as usize;
        let levels = row_bins
            .iter()
            .map(|&(lo, hi)| level(lo, hi))
            .max()
            .unwrap_or(0);
        let rows = row_bins
            .iter()
            .map(|&(lo, hi)| {
                let l = level(lo, hi);
                let base = l * bins;
                ((base + lo) as u32, (base + hi + 1 - (1 << l)) as u32)
            })
            .collect();
        RowPeaks { levels, rows }
    }

    /// Fills levels 1 ..= `self.levels` of `power` from level 0 (its first `bins` values).
    #[inline(always)]
    fn fill_levels(&self, power: &mut [[f32; 2]], bins: usize) {
        for level in 1..=self.levels {
            let step = 1 << (level - 1);
            // Values past `bins − 2^level` would reach past the last bin; no row reads them.
            let Some(valid) = (bins + 1).checked_sub(1 << level) else {
                break;
            };
            let (below, current) = power.split_at_mut(level * bins);
            let below = below[(level - 1) * bins..].as_flattened();
            let current = current[..valid].as_flattened_mut();
            for ((out, &a), &b) in current.iter_mut().zip(below).zip(&below[2 * step..]) {
                *out = if b > a { b } else { a };
            }
        }
    }
}

impl Planner {
    /// STFT image of `source` over `[start_secs, end_secs)`: `width` columns (one frame
    /// each, one FFT per pair), `height` rows on a linear axis from Nyquist (row 0) to
    /// 0 Hz. Sizes are clamped as in [`super::viewport`]; `cancel` is checked before every
    /// pair of columns.
    pub fn stft(
        &mut self,
        source: &dyn SampleSource,
        start_secs: f64,
        end_secs: f64,
        width: usize,
        height: usize,
        cancel: &AtomicBool,
    ) -> Result<Spectrogram, SpectrumError> {
        let (start_secs, end_secs, width, height) = sanitize(start_secs, end_secs, width, height);
        check_cancel(cancel)?;
        let sample_rate = source.sample_rate();
        let kernel = ColumnKernel::new(self, sample_rate, height);
        // The image is not filled with the floor first (1.6 MB written before any work, on
        // one thread): every cell is written once by the blocks below, then the length set.
        let cells = width * height;
        let mut db: Vec<f32> = Vec::with_capacity(cells);
        // Blocks of BLOCK columns (an even number, so pairs never straddle two) per task: 16
        // rather than 32 or 8 (measured on 1600 columns: the two threads end closer together,
        // and a block's rows, 16 KB at 256 rows, stay in the L1 cache).
        // Frames are taken straight from the track when the source holds it (a mapped cache
        // file); otherwise, when the block's frames are dense (overlapping or close), one
        // read covers the whole block, else one read per frame.
        const BLOCK: usize = 16;
        let n_fft = kernel.n_fft;
        let frame_start =
            |column: usize| kernel.frame_start(sample_rate, start_secs, end_secs, width, column);
        let whole_track = source.samples();
        // Each block writes its columns straight into the image: per row, the block's
        // segment of it.
        let mut segments: Vec<Vec<&mut [MaybeUninit<f32>]>> = (0..width.div_ceil(BLOCK))
            .map(|_| Vec::with_capacity(height))
            .collect();
        for row in db.spare_capacity_mut()[..cells].chunks_exact_mut(width) {
            for (block, segment) in row.chunks_mut(BLOCK).enumerate() {
                segments[block].push(segment);
            }
        }
        segments.into_par_iter().enumerate().try_for_each_init(
            || {
                let pairs = Vec::<[f32; 2]>::with_capacity(BLOCK / 2 * height);
                (
                    kernel.buffers(),
                    Vec::<f32>::new(),
                    Vec::<f32>::new(),
                    pairs,
                )
            },
            |(buffers, span, other, pairs), (block, mut out)| {
                let first_column = block * BLOCK;
                let count = out.first().map_or(0, |segment| segment.len());
                let span_start = frame_start(first_column);
                let span_len =
                    (frame_start(first_column + count - 1) - span_start) as usize + n_fft;
                let dense = span_len <= 2 * count * n_fft;
                if whole_track.is_none() && dense {
                    check_cancel(cancel)?;
                    span.resize(span_len, 0.0);
                    source.read(span_start, span)?;
                }
                pairs.clear();
                for i in (0..count).step_by(2) {
                    check_cancel(cancel)?;
                    let frame = |i: usize| -> (&[f32], i64) {
                        if i >= count {
                            return (&[], 0);
                        }
                        let first = frame_start(first_column + i);
                        match whole_track {
                            Some(samples) => (samples, first),
                            None => (span, first - span_start),
                        }
                    };
                    if whole_track.is_none() && !dense {
                        // Frames far apart: one read each, into `span` and `other`.
                        for (i, buffer) in [(i, &mut *span), (i + 1, &mut *other)] {
                            buffer.resize(n_fft, 0.0);
                            if i < count {
                                source.read(frame_start(first_column + i), buffer)?;
                            } else {
                                buffer.fill(0.0);
                            }
                        }
                        kernel.load(buffers, (span, 0), (other, 0));
                    } else {
                        kernel.load(buffers, frame(i), frame(i + 1));
                        // The next pair's samples arrive while this one is transformed.
                        kernel.prefetch(frame(i + 2));
                        kernel.prefetch(frame(i + 3));
                    }
                    pairs.extend_from_slice(kernel.columns(buffers));
                }
                // The block's columns into the image, row by row (storing each pair's rows
                // straight into the image touched a cache line per row and pair). Every cell
                // of every segment is written (or the indexing panics).
                for (row, segment) in out.iter_mut().enumerate() {
                    for (pair, cells) in segment.chunks_mut(2).enumerate() {
                        let values = pairs[pair * height + row];
                        for (cell, value) in cells.iter_mut().zip(values) {
                            cell.write(value);
                        }
                    }
                }
                Ok::<(), SpectrumError>(())
            },
        )?;
        // SAFETY: the capacity is at least `cells`; the segments cover each of the first
        // `cells` values exactly once (every row, cut into blocks), and each block returned
        // Ok only after writing all of its segments' cells.
        unsafe { db.set_len(cells) };
        Ok(Spectrogram {
            width,
            height,
            db,
            freq_axis: FreqAxis::Linear {
                max_hz: sample_rate as f32 / 2.0,
            },
            start_secs,
            end_secs,
            transform: Transform::Stft,
            columns_done: width,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_signals::*;
    use super::super::{DB_FLOOR, SampleSource, SliceSource};
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const RATE: u32 = 16_000;

    #[test]
    fn a_1khz_sine_peaks_in_the_1khz_row_at_full_scale() {
        let samples = sine(1000.0, 1.0, RATE, 3.0);
        let source = SliceSource {
            samples: &samples,
            sample_rate: RATE,
        };
        let (width, height) = (64, 161); // rows every 50 Hz
        let spec = Planner::new()
            .stft(&source, 0.0, 3.0, width, height, &AtomicBool::new(false))
            .unwrap();
        assert_eq!(spec.columns_done, width);
        assert_eq!(spec.transform, Transform::Stft);
        let target = spec.freq_axis.hz_to_row(1000.0, height).round() as usize;
        let bin_hz = RATE as f32 / fft_len(RATE, height) as f32;
        for column in 2..width - 2 {
            let row = peak_row(&spec, column);
            assert!(
                (spec.row_hz(row) - 1000.0).abs() <= bin_hz,
                "column {column}: peak at {} Hz",
                spec.row_hz(row)
            );
            let peak = spec.db[target * width + column];
            assert!((-1.5..=0.1).contains(&peak), "peak {peak} dB");
        }
    }

    #[test]
    fn a_chirp_ridge_follows_its_frequency() {
        let secs = 4.0;
        let samples = chirp(500.0, 6000.0, RATE, secs);
        let source = SliceSource {
            samples: &samples,
            sample_rate: RATE,
        };
        let (width, height) = (80, 161);
        let spec = Planner::new()
            .stft(&source, 0.0, secs, width, height, &AtomicBool::new(false))
            .unwrap();
        for column in 2..width - 2 {
            let expected = chirp_hz(500.0, 6000.0, secs, spec.column_secs(column));
            let found = spec.row_hz(peak_row(&spec, column)) as f64;
            // One row (50 Hz) plus what the chirp sweeps within a frame (~90 Hz).
            assert!(
                (found - expected).abs() <= 150.0,
                "column {column}: {found} Hz, expected {expected} Hz"
            );
        }
    }

    #[test]
    fn pairs_of_frames_give_what_one_real_fft_per_frame_gives() {
        let samples = noise(0.3, RATE as usize * 2, 11)
            .iter()
            .zip(chirp(300.0, 7000.0, RATE, 2.0))
            .map(|(n, c)| n + c)
            .collect::<Vec<f32>>();
        let source = SliceSource {
            samples: &samples,
            sample_rate: RATE,
        };
        let (width, height) = (37, 97);
        let spec = Planner::new()
            .stft(&source, -0.1, 2.1, width, height, &AtomicBool::new(false))
            .unwrap();
        // The reference: one real FFT (f64 sums) per column, the same rows.
        let n = fft_len(RATE, height);
        let kernel = ColumnKernel::new(&mut Planner::new(), RATE, height);
        let window = Planner::new().hann(n);
        let sum: f64 = window.iter().map(|&w| w as f64).sum();
        for column in 0..width {
            let first = kernel.frame_start(RATE, -0.1, 2.1, width, column);
            let frame: Vec<f64> = (0..n)
                .map(|i| {
                    let at = first + i as i64;
                    let x = usize::try_from(at).ok().and_then(|at| samples.get(at));
                    x.map_or(0.0, |&x| x as f64 * window[i] as f64)
                })
                .collect();
            let power = |k: usize| {
                let (mut re, mut im) = (0.0f64, 0.0f64);
                for (i, &x) in frame.iter().enumerate() {
                    let phase = std::f64::consts::TAU * (k * i % n) as f64 / n as f64;
                    re += x * phase.cos();
                    im -= x * phase.sin();
                }
                (re * re + im * im) * (2.0 / sum) * (2.0 / sum)
            };
            for (row, &(lo, hi)) in kernel.row_bins.iter().enumerate() {
                let peak = (lo..=hi).map(power).fold(0.0, f64::max);
                let expected = (10.0 * peak.log10()).max(DB_FLOOR as f64);
                let got = spec.db[row * width + column] as f64;
                assert!(
                    (got - expected).abs() < 0.01 || (expected < -90.0 && got < -80.0),
                    "column {column} row {row}: {got} dB, expected {expected} dB"
                );
            }
        }
    }

    #[test]
    fn the_avx2_build_gives_the_baseline_values_to_the_bit() {
        let samples = noise(0.5, 20_000, 3)
            .iter()
            .zip(sine(3000.0, 0.4, RATE, 2.0))
            .map(|(n, s)| n + s)
            .collect::<Vec<f32>>();
        let mut nan = samples.clone();
        nan[9_000] = f32::NAN;
        for height in [1, 2, 7, 97, 256, 700] {
            let fast = ColumnKernel::new(&mut Planner::new(), RATE, height);
            let mut plain = ColumnKernel::new(&mut Planner::new(), RATE, height);
            plain.simd = Simd::Baseline;
            let (mut fast_buffers, mut plain_buffers) = (fast.buffers(), plain.buffers());
            // Whole frames, frames cut by the ends of the track, and a frame with a NaN.
            for (track, first, second) in [
                (&samples, 100, 1900),
                (&samples, -300, 5000),
                (&samples, 18_500, 7),
                (&nan, 8_000, 12_000),
            ] {
                fast.load(&mut fast_buffers, (track, first), (track, second));
                plain.load(&mut plain_buffers, (track, first), (track, second));
                let bits = |pair: &[Complex<f32>]| -> Vec<[u32; 2]> {
                    pair.iter()
                        .map(|c| [c.re.to_bits(), c.im.to_bits()])
                        .collect()
                };
                assert_eq!(bits(&fast_buffers.pair), bits(&plain_buffers.pair));
                let want: Vec<[u32; 2]> = plain
                    .columns(&mut plain_buffers)
                    .iter()
                    .map(|p| p.map(f32::to_bits))
                    .collect();
                let got: Vec<[u32; 2]> = fast
                    .columns(&mut fast_buffers)
                    .iter()
                    .map(|p| p.map(f32::to_bits))
                    .collect();
                assert_eq!(got, want, "height {height}, frames at {first} and {second}");
            }
        }
    }

    #[test]
    fn row_peaks_are_the_largest_power_of_each_rows_bins() {
        for height in [1, 2, 3, 7, 20, 97, 256, 1025, 4096] {
            let kernel = ColumnKernel::new(&mut Planner::new(), 48_000, height);
            let bins = kernel.n_fft / 2 + 1;
            let mut power = vec![[0.0f32; 2]; bins * (kernel.peaks.levels + 1)];
            let noise = noise(1.0, 2 * bins, height as u64);
            for (p, pair) in power.iter_mut().zip(noise.chunks_exact(2)) {
                *p = [pair[0].abs(), pair[1] * pair[1]];
            }
            let level0 = power[..bins].to_vec();
            kernel.peaks.fill_levels(&mut power, bins);
            for (row, (&(lo, hi), &(a, b))) in
                kernel.row_bins.iter().zip(&kernel.peaks.rows).enumerate()
            {
                for half in 0..2 {
                    let want = level0[lo..=hi].iter().map(|p| p[half]).fold(0.0, f32::max);
                    let got = power[a as usize][half].max(power[b as usize][half]);
                    assert_eq!(got, want, "height {height} row {row} bins {lo}..={hi}");
                }
            }
        }
    }

    #[test]
    fn silence_is_at_the_floor_and_past_the_end_too() {
        let samples = vec![0.0f32; RATE as usize];
        let source = SliceSource {
            samples: &samples,
            sample_rate: RATE,
        };
        let spec = Planner::new()
            .stft(&source, -5.0, 50.0, 32, 20, &AtomicBool::new(false))
            .unwrap();
        assert!(spec.db.iter().all(|&db| db == DB_FLOOR));
    }

    /// Samples read through [`SampleSource::read`] (not a slice), raising `cancel` during the
    /// first read, as a newer request would.
    struct CancellingSource<'a> {
        samples: &'a [f32],
        cancel: &'a AtomicBool,
        reads: AtomicUsize,
    }

    impl SampleSource for CancellingSource<'_> {
        fn sample_rate(&self) -> u32 {
            RATE
        }

        fn len_samples(&self) -> u64 {
            self.samples.len() as u64
        }

        fn read(&self, start: i64, out: &mut [f32]) -> Result<(), SpectrumError> {
            self.reads.fetch_add(1, Ordering::Relaxed);
            self.cancel.store(true, Ordering::Relaxed);
            super::super::read_slice(self.samples, start, out);
            Ok(())
        }
    }

    #[test]
    fn cancellation_stops_the_blocks_under_way_and_starts_no_more() {
        // (It used to raise the flag 5 ms into a request on another thread; the request
        // now finishes sooner than that.)
        let samples = noise(0.5, RATE as usize * 60, 7);
        let cancel = AtomicBool::new(false);
        let source = CancellingSource {
            samples: &samples,
            cancel: &cancel,
            reads: AtomicUsize::new(0),
        };
        let (width, blocks) = (4096, 4096 / 16);
        let result = Planner::new().stft(&source, 0.0, 60.0, width, 500, &cancel);
        assert!(
            matches!(result, Err(SpectrumError::Cancelled)),
            "{result:?}"
        );
        // One read per block already started (at most one per thread), none after.
        let reads = source.reads.load(Ordering::Relaxed);
        assert!(
            reads <= rayon::current_num_threads().min(blocks / 2),
            "{reads} reads"
        );
    }
}
