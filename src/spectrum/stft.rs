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
//! The same [`ColumnKernel`] computes the streaming overview in the audio cache, pairing the
//! same columns, so the overview and a zoomed STFT of the same span agree exactly.

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
    pub(crate) n_fft: usize,
}

/// Reusable buffers of one thread running a [`ColumnKernel`].
pub(crate) struct ColumnBuffers {
    /// The pair of windowed frames (real part: first, imaginary part: second), then its FFT.
    pair: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    /// The power of every bin (0 ..= n/2): of the first frame, of the second.
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
        let row_bins = (0..height)
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
        ColumnKernel {
            fft,
            window,
            power_scale,
            row_bins,
            n_fft,
        }
    }

    pub(crate) fn buffers(&self) -> ColumnBuffers {
        let bins = self.n_fft / 2 + 1;
        let rows = self.row_bins.len();
        ColumnBuffers {
            pair: vec![Complex::new(0.0, 0.0); self.n_fft],
            scratch: vec![Complex::new(0.0, 0.0); self.fft.get_inplace_scratch_len()],
            power: vec![[0.0; 2]; bins],
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
        let n = self.n_fft;
        self.fft
            .process_with_scratch(&mut buffers.pair, &mut buffers.scratch);
        let z = &buffers.pair;
        let power = &mut buffers.power;
        // Bins 0 and n/2 pair with themselves; the rest k with n − k (4× the powers; the ¼ is
        // in `power_scale`).
        let half = n / 2;
        for k in [0, half] {
            let (a, b) = (z[k], z[k].conj());
            power[k] = [(a + b).norm_sqr(), (a - b).norm_sqr()];
        }
        for ((a, b), p) in z[1..half]
            .iter()
            .zip(z[half + 1..].iter().rev())
            .zip(&mut power[1..half])
        {
            let b = b.conj();
            *p = [(a + b).norm_sqr(), (a - b).norm_sqr()];
        }
        for (peak, &(lo, hi)) in buffers.rows.iter_mut().zip(&self.row_bins) {
            let [a, b] = peak_pair(&power[lo..=hi]);
            *peak = [a * self.power_scale, b * self.power_scale];
        }
        // Apart from the loop above so that it vectorises.
        for value in buffers.rows.as_flattened_mut() {
            *value = power_db(*value);
        }
        &buffers.rows
    }
}

/// The largest of each half of `bins` (0 for none; NaNs are skipped).
#[inline]
fn peak_pair(bins: &[[f32; 2]]) -> [f32; 2] {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            _mm_castpd_ps, _mm_castps_pd, _mm_load_sd, _mm_max_ps, _mm_setzero_ps, _mm_store_sd,
        };
        // Both halves in one register: the compiler's own code for this loop moved each pair
        // through integer registers and cost more than the FFT.
        // SAFETY: SSE2 is part of x86_64; each load reads the 8 bytes of one `[f32; 2]` of
        // `bins`, the store the 8 bytes of `out`.
        unsafe {
            let mut top = _mm_setzero_ps();
            for pair in bins {
                let value = _mm_castpd_ps(_mm_load_sd(pair.as_ptr().cast()));
                // `maxps` keeps its second operand unless the first is greater: NaN is skipped.
                top = _mm_max_ps(value, top);
            }
            let mut out = [0.0f32; 2];
            _mm_store_sd(out.as_mut_ptr().cast(), _mm_castps_pd(top));
            out
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        bins.iter().fold([0.0f32; 2], |[a, b], &[p, q]| {
            [if p > a { p } else { a }, if q > b { q } else { b }]
        })
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
        let mut spec = Spectrogram::floor(
            width,
            height,
            FreqAxis::Linear {
                max_hz: sample_rate as f32 / 2.0,
            },
            start_secs,
            end_secs,
            Transform::Stft,
        );
        // Blocks of BLOCK columns (an even number, so pairs never straddle two) per task.
        // Frames are taken straight from the track when the source holds it (a mapped cache
        // file); otherwise, when the block's frames are dense (overlapping or close), one
        // read covers the whole block, else one read per frame.
        const BLOCK: usize = 32;
        let n_fft = kernel.n_fft;
        let frame_start =
            |column: usize| kernel.frame_start(sample_rate, start_secs, end_secs, width, column);
        let whole_track = source.samples();
        // Each block writes its columns straight into the image: per row, the block's
        // segment of it.
        let mut segments: Vec<Vec<&mut [f32]>> = (0..width.div_ceil(BLOCK))
            .map(|_| Vec::with_capacity(height))
            .collect();
        for row in spec.db.chunks_exact_mut(width) {
            for (block, segment) in row.chunks_mut(BLOCK).enumerate() {
                segments[block].push(segment);
            }
        }
        segments.into_par_iter().enumerate().try_for_each_init(
            || (kernel.buffers(), Vec::<f32>::new(), Vec::<f32>::new()),
            |(buffers, span, other), (block, mut out)| {
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
                    }
                    let rows = kernel.columns(buffers);
                    if i + 1 < count {
                        for (segment, pair) in out.iter_mut().zip(rows) {
                            segment[i..i + 2].copy_from_slice(pair);
                        }
                    } else {
                        for (segment, &[db, _]) in out.iter_mut().zip(rows) {
                            segment[i] = db;
                        }
                    }
                }
                Ok::<(), SpectrumError>(())
            },
        )?;
        spec.columns_done = width;
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_signals::*;
    use super::super::{DB_FLOOR, SliceSource};
    use super::*;
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

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

    #[test]
    fn cancellation_returns_cancelled_quickly() {
        let samples = noise(0.5, RATE as usize * 60, 7);
        let source = SliceSource {
            samples: &samples,
            sample_rate: RATE,
        };
        let cancel = AtomicBool::new(false);
        let mut planner = Planner::new();
        let started = Instant::now();
        let result = std::thread::scope(|scope| {
            scope.spawn(|| {
                std::thread::sleep(Duration::from_millis(5));
                cancel.store(true, Ordering::Relaxed);
            });
            planner.stft(&source, 0.0, 60.0, 4096, 500, &cancel)
        });
        assert!(
            matches!(result, Err(SpectrumError::Cancelled)),
            "{result:?}"
        );
        assert!(started.elapsed() < Duration::from_millis(500));
    }
}
