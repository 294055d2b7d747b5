//! Morlet continuous wavelet transform, band-limited per scale.
//!
//! The wavelet is the analytic Morlet with ω0 = 6: in frequency, a Gaussian centred on the
//! row's frequency `f` with standard deviation `σ = f / 6` (time spread `1 / (2πσ)`, so
//! 48 ms at 20 Hz, 40 µs at 24 kHz). It is scaled by 2, so a full-scale sine reads 0 dBFS on
//! its own row.
//!
//! How a window is computed without full-rate coefficients:
//! 1. read the window plus margins of 5 time-σ of the lowest scale on each side (real samples
//!    from the track, so the edges are right), zero-pad to a fast FFT length `N`, and run
//!    one real forward FFT;
//! 2. per scale, take only the bins within ±5σ of its centre (the Gaussian is below
//!    −108 dB outside), multiply them by the Gaussian (computed by a two-multiply recurrence,
//!    no `exp` per bin), place them in a buffer of the band's own length `M` (a fast length
//!    ≥ the band's bin count) and inverse-FFT it. Output sample `m` is then *exactly* the
//!    full-rate coefficient at sample `m·N/M` (only its phase differs, by the band's shift),
//!    because no two bins of the band alias modulo `M`;
//! 3. sample the shown columns from those `M` values (linear interpolation of magnitude).
//!
//! The cost per scale is `O(M log M)` with `M ∝ f`, so low scales are nearly free and the
//! total is a few full-size FFTs instead of one per row. Rows run in parallel (rayon); each
//! checks `cancel` first.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use rayon::prelude::*;
use realfft::num_complex::Complex;
use rustfft::Fft;

use super::fft::{Planner, coarse_fast_len};
use super::{
    FreqAxis, SampleSource, Spectrogram, SpectrumError, Transform, check_cancel,
    column_centre_secs, power_db, sanitize,
};

/// Morlet centre angular frequency (cycles of the carrier under the envelope).
pub const OMEGA0: f64 = 6.0;
/// Each scale keeps the bins within this many σ of its centre; the margins are this many
/// time-σ of the lowest scale.
pub const BAND_SIGMAS: f64 = 5.0;

/// Frequency-domain standard deviation (Hz) of the wavelet centred at `centre_hz`.
pub fn sigma_hz(centre_hz: f64) -> f64 {
    centre_hz / OMEGA0
}

/// Time-domain standard deviation (s) of the wavelet centred at `centre_hz`.
pub fn sigma_secs(centre_hz: f64) -> f64 {
    1.0 / (std::f64::consts::TAU * sigma_hz(centre_hz))
}

/// Where a CWT window lies in the track: the first sample read (`first_sample`, margins
/// included), how many are read (`read_len`), and the zero-padded FFT length `fft_len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub first_sample: i64,
    pub read_len: usize,
    pub fft_len: usize,
}

/// The layout used for `[start_secs, end_secs)` when the lowest scale is `min_hz`.
pub fn layout(sample_rate: u32, start_secs: f64, end_secs: f64, min_hz: f64) -> Layout {
    let rate = sample_rate as f64;
    let margin = (BAND_SIGMAS * sigma_secs(min_hz) * rate).ceil() as i64 + 1;
    let first_sample = (start_secs * rate).floor() as i64 - margin;
    let last_sample = (end_secs * rate).ceil() as i64 + margin;
    let read_len = (last_sample - first_sample).max(2) as usize;
    Layout {
        first_sample,
        read_len,
        fft_len: coarse_fast_len(read_len),
    }
}

/// One row's band: bins `lo..=hi` of the forward FFT, inverse-transformed at length `len`.
struct Band {
    centre_hz: f64,
    lo: usize,
    hi: usize,
    len: usize,
}

impl Band {
    /// The band of the scale at `centre_hz` in a forward FFT of `bin_hz` bins up to
    /// `last_bin`. `columns_per_period` (shown columns per FFT period) sets a floor on the
    /// output length: a narrow (low) band is oversampled up to 4× so that at least two
    /// samples fall in each column, which keeps the interpolation between them accurate;
    /// wide bands, already sampled far finer than the columns, are not.
    fn new(centre_hz: f64, bin_hz: f64, last_bin: usize, columns_per_period: f64) -> Option<Band> {
        let sigma = sigma_hz(centre_hz);
        let lo = (((centre_hz - BAND_SIGMAS * sigma) / bin_hz).ceil().max(1.0)) as usize;
        let hi = (((centre_hz + BAND_SIGMAS * sigma) / bin_hz).floor() as usize).min(last_bin);
        let bins = (hi + 1).saturating_sub(lo);
        let wanted = (2.0 * columns_per_period).ceil() as usize;
        (lo <= hi).then(|| Band {
            centre_hz,
            lo,
            hi,
            len: coarse_fast_len(bins.max(wanted.min(4 * bins))),
        })
    }
}

impl Planner {
    /// Morlet CWT image of `source` over `[start_secs, end_secs)`: `width` columns, `height`
    /// rows geometrically spaced from `max_hz` (row 0) down to `min_hz`. Sizes are clamped as
    /// in [`super::viewport`]; `cancel` is checked between the steps and before every row.
    #[allow(clippy::too_many_arguments)]
    pub fn cwt(
        &mut self,
        source: &dyn SampleSource,
        start_secs: f64,
        end_secs: f64,
        width: usize,
        height: usize,
        min_hz: f32,
        max_hz: f32,
        cancel: &AtomicBool,
    ) -> Result<Spectrogram, SpectrumError> {
        let (start_secs, end_secs, width, height) = sanitize(start_secs, end_secs, width, height);
        let sample_rate = source.sample_rate();
        let nyquist_hz = sample_rate as f32 / 2.0;
        let max_hz = if max_hz.is_finite() && max_hz > 0.0 {
            max_hz.min(nyquist_hz)
        } else {
            nyquist_hz
        };
        let min_hz = if min_hz.is_finite() && min_hz > 0.0 && min_hz < max_hz {
            min_hz
        } else {
            max_hz / 1000.0
        };
        let axis = FreqAxis::Log { min_hz, max_hz };
        let mut spec =
            Spectrogram::floor(width, height, axis, start_secs, end_secs, Transform::Cwt);

        let layout = layout(sample_rate, start_secs, end_secs, min_hz as f64);
        let n = layout.fft_len;
        let bin_hz = sample_rate as f64 / n as f64;
        let columns_per_period =
            width as f64 * n as f64 / ((end_secs - start_secs) * sample_rate as f64);
        let bands: Vec<Option<Band>> = (0..height)
            .map(|row| {
                let centre_hz = axis.row_hz(row, height) as f64;
                Band::new(centre_hz, bin_hz, n / 2, columns_per_period)
            })
            .collect();
        let mut plans: HashMap<usize, Arc<dyn Fft<f32>>> = HashMap::new();
        for band in bands.iter().flatten() {
            if let std::collections::hash_map::Entry::Vacant(slot) = plans.entry(band.len) {
                check_cancel(cancel)?;
                slot.insert(self.complex_inverse(band.len));
            }
        }

        check_cancel(cancel)?;
        let forward = self.real_forward(n);
        let mut signal = forward.make_input_vec();
        source.read(layout.first_sample, &mut signal[..layout.read_len.min(n)])?;
        check_cancel(cancel)?;
        let mut spectrum = forward.make_output_vec();
        if let Err(e) = forward.process(&mut signal, &mut spectrum) {
            // Cannot happen: the buffers came from this plan.
            return Err(SpectrumError::Decode(format!("CWT forward FFT: {e}")));
        }
        drop(signal);
        check_cancel(cancel)?;

        // Full-rate positions (within the padded window) of the column centres.
        let rate = sample_rate as f64;
        let positions: Vec<f64> = (0..width)
            .map(|c| {
                column_centre_secs(start_secs, end_secs, width, c) * rate
                    - layout.first_sample as f64
            })
            .collect();
        let half_column = (end_secs - start_secs) * rate / width as f64 / 2.0;

        spec.db
            .par_chunks_mut(width)
            .zip(bands.par_iter())
            .try_for_each_init(
                || (Vec::<Complex<f32>>::new(), Vec::<Complex<f32>>::new()),
                |(buffer, scratch), (out, band)| {
                    check_cancel(cancel)?;
                    let Some(band) = band else { return Ok(()) };
                    let Some(fft) = plans.get(&band.len) else {
                        return Ok(());
                    };
                    band_row(&spectrum, band, bin_hz, n, fft.as_ref(), buffer, scratch);
                    sample_columns(buffer, &positions, half_column, n, out);
                    Ok::<(), SpectrumError>(())
                },
            )?;
        spec.columns_done = width;
        Ok(spec)
    }
}

/// Fills `buffer` (resized to `band.len`) with the band's coefficients at its own rate.
fn band_row(
    spectrum: &[Complex<f32>],
    band: &Band,
    bin_hz: f64,
    n: usize,
    fft: &dyn Fft<f32>,
    buffer: &mut Vec<Complex<f32>>,
    scratch: &mut Vec<Complex<f32>>,
) {
    let bins = &spectrum[band.lo..=band.hi];
    buffer.resize(band.len, Complex::new(0.0, 0.0));
    buffer[bins.len()..].fill(Complex::new(0.0, 0.0));
    let sigma = sigma_hz(band.centre_hz);
    // g(k) = exp(-(k·df - fc)² / 2σ²) by recurrence: g(k+1) = g(k)·r(k), r(k+1) = r(k)·q.
    // Four interleaved chains (bins k ≡ j mod 4), each stepping by four bins:
    // g(k+4) = g(k)·R(k), R(k) = r(k)…r(k+3) = r(k)⁴·q⁶, R(k+4) = R(k)·q¹⁶. Independent
    // chains keep the multiplier busy; one chain waited on each product in turn.
    let a = bin_hz * bin_hz / (2.0 * sigma * sigma);
    let u = band.lo as f64 * bin_hz - band.centre_hz;
    let scale = 2.0 / n as f64;
    let q = (-2.0 * a).exp();
    let mut gain = [0.0f64; 4];
    let mut ratio = [0.0f64; 4];
    {
        let mut g = (-(u * u) / (2.0 * sigma * sigma)).exp() * scale;
        let mut r = (-(2.0 * u * bin_hz) / (2.0 * sigma * sigma) - a).exp();
        for j in 0..4 {
            gain[j] = g;
            ratio[j] = r.powi(4) * q.powi(6);
            g *= r;
            r *= q;
        }
    }
    let q16 = q.powi(16);
    let mut chunks = buffer[..bins.len()].chunks_exact_mut(4);
    let mut sources = bins.chunks_exact(4);
    for (slots, xs) in (&mut chunks).zip(&mut sources) {
        for j in 0..4 {
            slots[j] = xs[j] * (gain[j] as f32);
            gain[j] *= ratio[j];
            ratio[j] *= q16;
        }
    }
    for ((slot, x), g) in chunks
        .into_remainder()
        .iter_mut()
        .zip(sources.remainder())
        .zip(gain)
    {
        *slot = *x * (g as f32);
    }
    let scratch_len = fft.get_inplace_scratch_len();
    if scratch.len() < scratch_len {
        scratch.resize(scratch_len, Complex::new(0.0, 0.0));
    }
    fft.process_with_scratch(buffer, &mut scratch[..scratch_len]);
}

/// Writes each column's dB value into `out[c]`: the largest magnitude over the column's
/// span (`positions[c]` ± `half_column`, full-rate samples of a period of `n`), taken from
/// the band's samples inside the span and the value interpolated at its centre. A band
/// sampled more coarsely than the columns gives the interpolated centre value; a fine one
/// keeps a transient between two column centres visible.
fn sample_columns(
    buffer: &[Complex<f32>],
    positions: &[f64],
    half_column: f64,
    n: usize,
    out: &mut [f32],
) {
    let len = buffer.len();
    let step = len as f64 / n as f64;
    let period = len as i64;
    // Index `i` wrapped into the period: positions stay within one period of it, so a
    // compare usually does instead of a division.
    let wrap = |i: i64| {
        if (0..period).contains(&i) {
            i as usize
        } else if (period..2 * period).contains(&i) {
            (i - period) as usize
        } else {
            i.rem_euclid(period) as usize
        }
    };
    let at = |i: i64| buffer[wrap(i)].norm_sqr();
    // Linear interpolation of the magnitude at full-rate position `p`.
    let interpolated = |p: f64| {
        let m = p * step;
        let i = floor_i64(m);
        let frac = (m - i as f64) as f32;
        let (a, b) = (at(i).sqrt(), at(i + 1).sqrt());
        a + (b - a) * frac
    };
    for (slot, &position) in out.iter_mut().zip(positions) {
        let (from, to) = (position - half_column, position + half_column);
        let ends = interpolated(from)
            .max(interpolated(position))
            .max(interpolated(to));
        let first = -floor_i64(-(from * step));
        let last = floor_i64(to * step);
        let count = (last + 1 - first).clamp(0, len as i64) as usize;
        // The samples first..=last, wrapped around the period: at most two runs.
        let start = wrap(first);
        let head = &buffer[start..(start + count).min(len)];
        let tail = &buffer[..count - head.len()];
        let peak_sqr = peak_norm_sqr(head).max(peak_norm_sqr(tail));
        // The power for now: to dB below, in a loop that vectorises.
        *slot = (ends * ends).max(peak_sqr);
    }
    for value in out.iter_mut() {
        *value = power_db(*value);
    }
}

/// ⌊x⌋ for the positions here (far inside the i64 range), without a libm call.
#[inline]
fn floor_i64(x: f64) -> i64 {
    let t = x as i64;
    t - i64::from((t as f64) > x)
}

/// The largest `|z|²` of `values` (0 for none; NaN skipped), in eight lanes that vectorise.
#[inline]
fn peak_norm_sqr(values: &[Complex<f32>]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let mut chunks = values.chunks_exact(8);
    for chunk in &mut chunks {
        for (lane, z) in lanes.iter_mut().zip(chunk) {
            let p = z.norm_sqr();
            *lane = if p > *lane { p } else { *lane };
        }
    }
    for z in chunks.remainder() {
        let p = z.norm_sqr();
        lanes[0] = if p > lanes[0] { p } else { lanes[0] };
    }
    lanes
        .into_iter()
        .fold(0.0, |top, p| if p > top { p } else { top })
}

#[cfg(test)]
mod tests {
    use super::super::test_signals::*;
    use super::super::{DB_FLOOR, SliceSource, amplitude_db, next_fast_len};
    use super::*;
    use rustfft::FftPlanner;
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    const RATE: u32 = 8_000;

    fn cwt_of(samples: &[f32], start: f64, end: f64, width: usize, height: usize) -> Spectrogram {
        let source = SliceSource {
            samples,
            sample_rate: RATE,
        };
        Planner::new()
            .cwt(
                &source,
                start,
                end,
                width,
                height,
                20.0,
                4000.0,
                &AtomicBool::new(false),
            )
            .unwrap()
    }

    /// Rows per octave of an image from 20 Hz to 4 kHz with `height` rows: the test's "one
    /// scale" is one row, a ratio of 200^(1/(height-1)).
    fn row_ratio(height: usize) -> f64 {
        200f64.powf(1.0 / (height - 1) as f64)
    }

    #[test]
    fn a_1khz_sine_peaks_in_the_1khz_row_at_full_scale() {
        let samples = sine(1000.0, 1.0, RATE, 2.0);
        let (width, height) = (100, 80);
        let spec = cwt_of(&samples, 0.5, 1.5, width, height);
        assert_eq!(spec.transform, Transform::Cwt);
        let target = spec.freq_axis.hz_to_row(1000.0, height);
        for column in 0..width {
            let row = peak_row(&spec, column);
            assert!(
                (row as f32 - target).abs() <= 1.0,
                "column {column}: peak row {row} ({} Hz), 1 kHz is row {target}",
                spec.row_hz(row)
            );
            let peak = spec.db[row * width + column];
            assert!((-0.5..=0.1).contains(&peak), "peak {peak} dB");
        }
        assert!(row_ratio(height) < 1.08);
    }

    #[test]
    fn a_chirp_ridge_follows_its_frequency() {
        let secs = 3.0;
        let samples = chirp(100.0, 3000.0, RATE, secs);
        let (width, height) = (120, 80);
        let spec = cwt_of(&samples, 0.0, secs, width, height);
        for column in 3..width - 3 {
            let expected = chirp_hz(100.0, 3000.0, secs, spec.column_secs(column));
            let found = spec.row_hz(peak_row(&spec, column)) as f64;
            let ratio = found / expected;
            assert!(
                (1.0 / 1.1..=1.1).contains(&ratio),
                "column {column}: {found} Hz, expected {expected} Hz"
            );
        }
    }

    #[test]
    fn silence_is_at_the_floor() {
        let samples = vec![0.0f32; RATE as usize];
        let spec = cwt_of(&samples, 0.0, 1.0, 50, 40);
        assert!(spec.db.iter().all(|&db| db == DB_FLOOR));
    }

    /// Columns whose value is within 6 dB of the row's maximum.
    fn width_at_6db(spec: &Spectrogram, row: usize) -> usize {
        let values = &spec.db[row * spec.width..(row + 1) * spec.width];
        let peak = values.iter().copied().fold(f32::MIN, f32::max);
        values.iter().filter(|&&v| v >= peak - 6.0).count()
    }

    #[test]
    fn a_click_is_sharp_in_time_at_high_frequencies_and_wider_at_low() {
        let mut samples = vec![0.0f32; 2 * RATE as usize];
        samples[RATE as usize] = 1.0;
        // 400 columns over 2 s: 5 ms each.
        let (width, height) = (400, 60);
        let spec = cwt_of(&samples, 0.0, 2.0, width, height);
        let high = spec.freq_axis.hz_to_row(2000.0, height).round() as usize;
        let low = spec.freq_axis.hz_to_row(50.0, height).round() as usize;
        let (high_width, low_width) = (width_at_6db(&spec, high), width_at_6db(&spec, low));
        assert!((1..=2).contains(&high_width), "2 kHz: {high_width} columns");
        // 50 Hz: time σ ≈ 19 ms, so about 45 ms (9 columns) within 6 dB.
        assert!((6..=14).contains(&low_width), "50 Hz: {low_width} columns");
        // Both peak at the click.
        for row in [high, low] {
            let column = (0..width)
                .max_by(|&a, &b| spec.db[row * width + a].total_cmp(&spec.db[row * width + b]))
                .unwrap();
            assert!((spec.column_secs(column) - 1.0).abs() < 0.005, "row {row}");
        }
    }

    /// The plain definition: the whole signal (zero-padded), one forward FFT, and per scale
    /// the full Gaussian over every positive bin, inverse-transformed at full rate.
    fn full_rate_reference(
        samples: &[f32],
        start: f64,
        end: f64,
        width: usize,
        axis: FreqAxis,
        height: usize,
    ) -> Vec<f32> {
        let pad = RATE as usize;
        let n = next_fast_len(samples.len() + 2 * pad);
        let mut planner = FftPlanner::<f64>::new();
        let mut x: Vec<Complex<f64>> = vec![Complex::new(0.0, 0.0); n];
        for (slot, &s) in x[pad..].iter_mut().zip(samples) {
            slot.re = s as f64;
        }
        planner.plan_fft_forward(n).process(&mut x);
        let inverse = planner.plan_fft_inverse(n);
        let mut out = vec![0.0f32; width * height];
        for row in 0..height {
            let fc = axis.row_hz(row, height) as f64;
            let sigma = sigma_hz(fc);
            let mut y = vec![Complex::new(0.0, 0.0); n];
            for k in 1..=n / 2 {
                let f = k as f64 * RATE as f64 / n as f64;
                let g = (-(f - fc) * (f - fc) / (2.0 * sigma * sigma)).exp();
                y[k] = x[k] * (2.0 * g / n as f64);
            }
            inverse.process(&mut y);
            // Each column: the largest magnitude over its span (centre ± half a column).
            let half = (end - start) * RATE as f64 / width as f64 / 2.0;
            for c in 0..width {
                let t = column_centre_secs(start, end, width, c);
                let p = t * RATE as f64 + pad as f64;
                let i = p.floor() as usize;
                let frac = p - i as f64;
                let centre = y[i].norm() * (1.0 - frac) + y[i + 1].norm() * frac;
                let span = (p - half).ceil() as usize..=(p + half).floor() as usize;
                let peak = span.map(|j| y[j].norm()).fold(centre, f64::max);
                out[row * width + c] = amplitude_db(peak as f32);
            }
        }
        out
    }

    #[test]
    fn band_limited_matches_a_full_rate_reference_within_1db_at_p99() {
        let secs = 3.0;
        let n = (secs * RATE as f64) as usize;
        let tone = sine(300.0, 0.5, RATE, secs);
        let high = sine(1234.0, 0.1, RATE, secs);
        let sweep = chirp(50.0, 3500.0, RATE, secs);
        let hiss = noise(0.01, n, 3);
        let mut samples: Vec<f32> = (0..n)
            .map(|i| tone[i] + high[i] + 0.4 * sweep[i] + hiss[i])
            .collect();
        samples[n / 2] += 0.8;
        let (start, end, width, height) = (0.7, 2.3, 300, 60);
        let spec = cwt_of(&samples, start, end, width, height);
        let reference = full_rate_reference(&samples, start, end, width, spec.freq_axis, height);
        let mut errors: Vec<f32> = spec
            .db
            .iter()
            .zip(&reference)
            .map(|(a, b)| (a - b).abs())
            .collect();
        errors.sort_by(f32::total_cmp);
        let p99 = errors[errors.len() * 99 / 100];
        let max = errors[errors.len() - 1];
        eprintln!("band-limited vs full rate: p99 {p99:.3} dB, max {max:.3} dB");
        assert!(p99 <= 1.0, "p99 {p99} dB (max {max} dB)");
    }

    #[test]
    fn cancellation_returns_cancelled_quickly() {
        let samples = noise(0.5, RATE as usize * 30, 11);
        let source = SliceSource {
            samples: &samples,
            sample_rate: RATE,
        };
        let cancel = AtomicBool::new(false);
        let mut planner = Planner::new();
        let started = Instant::now();
        let result = std::thread::scope(|scope| {
            scope.spawn(|| {
                std::thread::sleep(Duration::from_millis(20));
                cancel.store(true, Ordering::Relaxed);
            });
            planner.cwt(&source, 0.0, 30.0, 1600, 400, 20.0, 4000.0, &cancel)
        });
        assert!(
            matches!(result, Err(SpectrumError::Cancelled)),
            "{result:?}"
        );
        // Debug build: generous; the benchmark measures the release figure.
        assert!(
            started.elapsed() < Duration::from_millis(800),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn band_gains_follow_the_gaussian() {
        let (n, bin_hz) = (1 << 16, 0.5);
        let spectrum = vec![Complex::new(1.0f32, 0.0); n / 2 + 1];
        let fft = FftPlanner::<f32>::new().plan_fft_inverse(1);
        // Centre frequencies giving from one bin to thousands, so that every chain length
        // and remainder occurs.
        for centre_hz in [1.0, 1.7, 2.3, 3.1, 5.0, 13.0, 170.0, 2000.0] {
            let band = Band::new(centre_hz, bin_hz, n / 2, 0.0).unwrap();
            let band = Band { len: 1, ..band };
            let bins = band.hi + 1 - band.lo;
            let mut buffer = Vec::new();
            let mut scratch = Vec::new();
            // A length-1 "inverse FFT" leaves the first gain alone; read them before it.
            let mut gains = vec![0.0f32; bins];
            for (k, gain) in gains.iter_mut().enumerate() {
                let one = Band {
                    lo: band.lo + k,
                    hi: band.lo + k,
                    ..band
                };
                band_row(
                    &spectrum,
                    &one,
                    bin_hz,
                    n,
                    fft.as_ref(),
                    &mut buffer,
                    &mut scratch,
                );
                *gain = buffer[0].re;
            }
            let full = Band { len: bins, ..band };
            let mut planner = FftPlanner::<f32>::new();
            let forward = planner.plan_fft_forward(bins);
            band_row(
                &spectrum,
                &full,
                bin_hz,
                n,
                forward.as_ref(),
                &mut buffer,
                &mut scratch,
            );
            planner.plan_fft_inverse(bins).process(&mut buffer);
            let sigma = sigma_hz(centre_hz);
            for (k, &gain) in gains.iter().enumerate() {
                let f = (band.lo + k) as f64 * bin_hz;
                let expected =
                    (-(f - centre_hz).powi(2) / (2.0 * sigma * sigma)).exp() * 2.0 / n as f64;
                // Alone (relative error), and within the whole band after a forward and an
                // inverse FFT (×bins; error relative to the largest gain, 2/n).
                assert!(
                    (gain as f64 / expected - 1.0).abs() < 1e-5,
                    "{centre_hz} Hz bin {k}"
                );
                let round_trip = buffer[k].re as f64 / bins as f64;
                assert!(
                    (round_trip - expected).abs() < 1e-5 * 2.0 / n as f64,
                    "{centre_hz} Hz bin {k}"
                );
            }
        }
    }

    #[test]
    fn column_peaks_wrap_around_the_period_like_the_plain_loop() {
        let len = 97;
        let buffer: Vec<Complex<f32>> = noise(1.0, 2 * len, 5)
            .chunks_exact(2)
            .map(|c| Complex::new(c[0], c[1]))
            .collect();
        let n = 4 * len;
        let step = len as f64 / n as f64;
        let at = |i: i64| buffer[i.rem_euclid(len as i64) as usize].norm_sqr();
        for half_column in [0.3, 2.0, 7.5, 40.0, 400.0] {
            // Spans inside the period, over its end, before its start, longer than it.
            let positions: Vec<f64> = (-12..=n as i64 + 12)
                .step_by(5)
                .map(|p| p as f64 + 0.37)
                .collect();
            let mut out = vec![0.0; positions.len()];
            sample_columns(&buffer, &positions, half_column, n, &mut out);
            for (&position, &db) in positions.iter().zip(&out) {
                let (from, to) = (position - half_column, position + half_column);
                let interpolated = |p: f64| {
                    let m = p * step;
                    let i = m.floor() as i64;
                    let (a, b) = (at(i).sqrt(), at(i + 1).sqrt());
                    a + (b - a) * (m - i as f64) as f32
                };
                let first = (from * step).ceil() as i64;
                let last = (to * step).floor() as i64;
                let peak = (first..=last.min(first + len as i64 - 1))
                    .map(at)
                    .fold(0.0f32, f32::max);
                let amplitude = interpolated(from)
                    .max(interpolated(position))
                    .max(interpolated(to))
                    .max(peak.sqrt());
                let expected = amplitude_db(amplitude);
                assert!(
                    (db - expected).abs() < 1e-4,
                    "at {position} ± {half_column}: {db} dB, expected {expected} dB"
                );
            }
        }
        for x in [-3.5, -3.0, -0.2, 0.0, 0.7, 1.0, 5e9 + 0.5, -5e9 - 0.5] {
            assert_eq!(floor_i64(x), x.floor() as i64, "{x}");
        }
    }

    #[test]
    fn layout_has_margins_and_a_fast_even_length() {
        let l = layout(48_000, 1.0, 31.0, 20.0);
        let margin = (BAND_SIGMAS * sigma_secs(20.0) * 48_000.0).ceil() as i64 + 1;
        assert_eq!(l.first_sample, 48_000 - margin);
        assert!(l.fft_len >= l.read_len && l.fft_len.is_multiple_of(2));
        assert_eq!(next_fast_len(l.fft_len), l.fft_len);
    }
}
