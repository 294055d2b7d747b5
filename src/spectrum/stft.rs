//! Short-time Fourier transform, one FFT per shown column.
//!
//! Column `c` of an image over `[start, end)` is the Hann-windowed FFT of the `n_fft` samples
//! centred at the column's centre time; nothing between columns is computed, so a 2-hour
//! window costs the same 1600 FFTs as a 40 s one (and reads only those frames from the
//! cache). Row `r` takes the largest bin power within the row's frequency span, so a narrow
//! tone stays visible whatever the row spacing. Magnitudes are scaled by `2 / Σw`: a
//! full-scale sine on a bin centre reads 0 dBFS.
//!
//! The same [`ColumnKernel`] computes the streaming overview in the audio cache, so the
//! overview and a zoomed STFT of the same span agree exactly.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use rayon::prelude::*;
use realfft::RealToComplex;
use realfft::num_complex::Complex;

use super::fft::Planner;
use super::{
    FreqAxis, SampleSource, Spectrogram, SpectrumError, Transform, check_cancel,
    column_centre_secs, power_db, sanitize,
};

/// The frame length for a track at `sample_rate` drawn with `height` rows: about 43 ms
/// (2048 samples at 48 kHz), more when the rows are finer than the bins, a power of two.
pub fn fft_len(sample_rate: u32, height: usize) -> usize {
    let base = ((sample_rate as f64 * 0.04).round() as usize)
        .next_power_of_two()
        .clamp(256, 8192);
    base.max((2 * height).next_power_of_two()).min(65_536)
}

/// Everything needed to turn one frame into one column: plan, window, and per row the bin
/// range it takes its maximum over.
pub(crate) struct ColumnKernel {
    fft: Arc<dyn RealToComplex<f32>>,
    window: Arc<Vec<f32>>,
    /// Power scale: (2 / Σw)².
    power_scale: f32,
    /// Per row (0 = top), the inclusive bin range.
    row_bins: Vec<(usize, usize)>,
    pub(crate) n_fft: usize,
}

/// Reusable buffers of one thread running a [`ColumnKernel`].
pub(crate) struct ColumnBuffers {
    pub(crate) frame: Vec<f32>,
    spectrum: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
}

impl ColumnKernel {
    pub(crate) fn new(planner: &mut Planner, sample_rate: u32, height: usize) -> ColumnKernel {
        let n_fft = fft_len(sample_rate, height);
        let fft = planner.real_forward(n_fft);
        let window = planner.hann(n_fft);
        let sum: f64 = window.iter().map(|&w| w as f64).sum();
        let power_scale = ((2.0 / sum) * (2.0 / sum)) as f32;
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
        ColumnBuffers {
            frame: vec![0.0; self.n_fft],
            spectrum: self.fft.make_output_vec(),
            scratch: self.fft.make_scratch_vec(),
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

    /// Transforms `buffers.frame` (filled by the caller with the frame's samples; it is
    /// overwritten) and hands each row's dB value to `put(row, db)`.
    pub(crate) fn column(&self, buffers: &mut ColumnBuffers, mut put: impl FnMut(usize, f32)) {
        for (x, &w) in buffers.frame.iter_mut().zip(self.window.iter()) {
            *x *= w;
        }
        // Cannot fail: every buffer was sized by this plan.
        if let Err(e) = self.fft.process_with_scratch(
            &mut buffers.frame,
            &mut buffers.spectrum,
            &mut buffers.scratch,
        ) {
            log::error!("STFT buffer sizes do not match the plan: {e}");
            return;
        }
        for (row, &(lo, hi)) in self.row_bins.iter().enumerate() {
            let peak = buffers.spectrum[lo..=hi]
                .iter()
                .map(|c| c.norm_sqr())
                .fold(0.0f32, f32::max);
            put(row, power_db(peak * self.power_scale));
        }
    }
}

impl Planner {
    /// STFT image of `source` over `[start_secs, end_secs)`: `width` columns (one FFT each),
    /// `height` rows on a linear axis from Nyquist (row 0) to 0 Hz. Sizes are clamped as in
    /// [`super::viewport`]; `cancel` is checked before every column.
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
        // Column-major while computing (one contiguous slice per column), transposed after.
        // Blocks of columns per task; when their frames are dense (overlapping or close),
        // one read covers the whole block instead of one per column.
        const BLOCK: usize = 32;
        let n_fft = kernel.n_fft;
        let frame_start =
            |column: usize| kernel.frame_start(sample_rate, start_secs, end_secs, width, column);
        let mut columns = vec![0.0f32; width * height];
        columns
            .par_chunks_mut(height * BLOCK)
            .enumerate()
            .try_for_each_init(
                || (kernel.buffers(), Vec::<f32>::new()),
                |(buffers, span), (block, out)| {
                    let first_column = block * BLOCK;
                    let count = out.len() / height;
                    let span_start = frame_start(first_column);
                    let span_len =
                        (frame_start(first_column + count - 1) - span_start) as usize + n_fft;
                    let dense = span_len <= 2 * count * n_fft;
                    if dense {
                        check_cancel(cancel)?;
                        span.resize(span_len, 0.0);
                        source.read(span_start, span)?;
                    }
                    for (i, out) in out.chunks_exact_mut(height).enumerate() {
                        check_cancel(cancel)?;
                        let first = frame_start(first_column + i);
                        if dense {
                            let offset = (first - span_start) as usize;
                            buffers.frame.copy_from_slice(&span[offset..offset + n_fft]);
                        } else {
                            source.read(first, &mut buffers.frame)?;
                        }
                        kernel.column(buffers, |row, db| out[row] = db);
                    }
                    Ok::<(), SpectrumError>(())
                },
            )?;
        for (column, values) in columns.chunks_exact(height).enumerate() {
            for (row, &db) in values.iter().enumerate() {
                spec.db[row * width + column] = db;
            }
        }
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
