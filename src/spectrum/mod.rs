//! The audio spectrogram shown under the timeline: decoding the audio track once into a disk
//! cache, the whole-track overview streamed while it decodes, and viewport images computed on
//! demand (STFT for long windows, band-limited Morlet CWT for windows of 30 s or less).
//!
//! Why it is shaped this way:
//! - [`AudioCache`] decodes the first audio track to mono `f32` with ffmpeg *once*, streaming
//!   it to a cache file while the overview fills in; nothing ever holds the whole track in
//!   memory; the complete file is mapped read-only, so a request touches only the samples it
//!   needs, straight from the page cache, without copying them.
//! - Only the columns that are shown are computed: the STFT transforms one frame per column
//!   (two per complex FFT), the CWT transforms the window once and then, per scale,
//!   inverse-transforms only that scale's pass band at the band's own (low) rate ([`cwt`]).
//! - Values are dB relative to full scale (a full-scale sine reads 0 dB in both transforms),
//!   floored at [`DB_FLOOR`]; [`Spectrogram::to_rgba`] maps them through a perceptual colour
//!   map derived in OKLab ([`colormap`]).
//! - Every long loop checks a `cancel` flag so that a superseded request stops within a few
//!   milliseconds; FFT plans live in a [`Planner`] that a warm worker keeps.

mod cache;
pub mod colormap;
pub mod cwt;
mod fft;
pub mod stft;

use std::sync::atomic::{AtomicBool, Ordering};

pub use cache::{AudioCache, CACHE_BUDGET_BYTES, cache_root};
pub use fft::{Planner, next_fast_len};

/// The lowest value any spectrogram cell holds (−120 dBFS, below 24-bit quantisation noise).
pub const DB_FLOOR: f32 = -120.0;
/// A display range that suits most material: [`DEFAULT_FLOOR_DB`, `DEFAULT_CEIL_DB`].
pub const DEFAULT_FLOOR_DB: f32 = -100.0;
pub const DEFAULT_CEIL_DB: f32 = 0.0;
/// Windows at most this long use the CWT; longer ones the STFT.
pub const CWT_MAX_WINDOW_SECS: f64 = 30.0;
/// The lowest CWT frequency (bottom row of a CWT image).
pub const CWT_MIN_HZ: f32 = 20.0;
/// Largest image a request may ask for; larger sizes are clamped.
pub const MAX_COLUMNS: usize = 16_384;
pub const MAX_ROWS: usize = 4_096;

/// Which transform produced a [`Spectrogram`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Transform {
    Stft,
    Cwt,
}

/// How rows map to frequencies. Row 0 is the top of the image (the highest frequency); see
/// [`FreqAxis::row_hz`] for the exact mapping.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum FreqAxis {
    /// Rows evenly spaced from `max_hz` (row 0) down to 0 Hz (last row).
    Linear { max_hz: f32 },
    /// Rows geometrically spaced from `max_hz` (row 0) down to `min_hz` (last row).
    Log { min_hz: f32, max_hz: f32 },
}

impl FreqAxis {
    /// The centre frequency of `row` (0 = top) in an image of `height` rows.
    pub fn row_hz(&self, row: usize, height: usize) -> f32 {
        let up = if height <= 1 {
            1.0
        } else {
            (height - 1).saturating_sub(row) as f64 / (height - 1) as f64
        };
        match *self {
            FreqAxis::Linear { max_hz } => (up * max_hz as f64) as f32,
            FreqAxis::Log { min_hz, max_hz } => {
                (min_hz as f64 * (max_hz as f64 / min_hz as f64).powf(up)) as f32
            }
        }
    }

    /// The (fractional) row where `hz` lies, the inverse of [`FreqAxis::row_hz`]; for axis
    /// labels. Frequencies outside the axis give rows outside `0..height`.
    pub fn hz_to_row(&self, hz: f32, height: usize) -> f32 {
        let span = height.saturating_sub(1).max(1) as f64;
        let up = match *self {
            FreqAxis::Linear { max_hz } => hz as f64 / max_hz as f64,
            FreqAxis::Log { min_hz, max_hz } => {
                (hz.max(f32::MIN_POSITIVE) as f64 / min_hz as f64).ln()
                    / (max_hz as f64 / min_hz as f64).ln()
            }
        };
        ((1.0 - up) * span) as f32
    }
}

/// dB values, row-major, row 0 = the HIGHEST frequency (top of the image), `width` columns
/// spanning `[start_secs, end_secs)`. Column `c` is centred at
/// `start_secs + (c + 0.5) * (end_secs - start_secs) / width`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Spectrogram {
    pub width: usize,
    pub height: usize,
    /// `width * height` values in dBFS, each ≥ [`DB_FLOOR`]. Columns at or after
    /// `columns_done` are not computed yet and hold [`DB_FLOOR`].
    pub db: Vec<f32>,
    pub freq_axis: FreqAxis,
    pub start_secs: f64,
    pub end_secs: f64,
    pub transform: Transform,
    /// < width while an overview is still streaming.
    pub columns_done: usize,
}

impl Spectrogram {
    /// An image of the given geometry with every cell at the floor and no column done.
    pub(crate) fn floor(
        width: usize,
        height: usize,
        freq_axis: FreqAxis,
        start_secs: f64,
        end_secs: f64,
        transform: Transform,
    ) -> Spectrogram {
        Spectrogram {
            width,
            height,
            db: vec![DB_FLOOR; width * height],
            freq_axis,
            start_secs,
            end_secs,
            transform,
            columns_done: 0,
        }
    }

    /// RGBA bytes (`width * height * 4`, row-major like `db`) through the perceptual colour
    /// map: `floor_db` and below is the darkest colour, `ceil_db` and above the brightest.
    /// Columns not computed yet (at or after `columns_done`) are fully transparent.
    pub fn to_rgba(&self, floor_db: f32, ceil_db: f32) -> Vec<u8> {
        colormap::db_to_rgba(
            &self.db,
            self.width,
            self.columns_done.min(self.width),
            floor_db,
            ceil_db,
        )
    }

    /// The centre frequency of `row`, see [`FreqAxis::row_hz`].
    pub fn row_hz(&self, row: usize) -> f32 {
        self.freq_axis.row_hz(row, self.height)
    }

    /// The time at the centre of column `column`.
    pub fn column_secs(&self, column: usize) -> f64 {
        column_centre_secs(self.start_secs, self.end_secs, self.width.max(1), column)
    }

    /// A display range fitted to the content: the ceiling at the loudest computed cell
    /// (rounded up to 5 dB), the floor 90 dB below it but not under [`DB_FLOOR`]. Falls back
    /// to the default range when nothing is computed or everything is silent.
    pub fn auto_range(&self) -> (f32, f32) {
        let done = self.columns_done.min(self.width);
        let mut loudest = f32::NEG_INFINITY;
        for row in self.db.chunks_exact(self.width.max(1)) {
            for &value in &row[..done] {
                loudest = loudest.max(value);
            }
        }
        if !loudest.is_finite() || loudest <= DB_FLOOR + 10.0 {
            return (DEFAULT_FLOOR_DB, DEFAULT_CEIL_DB);
        }
        let ceil_db = (loudest / 5.0).ceil() * 5.0;
        ((ceil_db - 90.0).max(DB_FLOOR), ceil_db)
    }
}

/// Why no spectrogram could be made. `Cancelled` is the normal end of a superseded request.
#[derive(Debug, thiserror::Error)]
pub enum SpectrumError {
    #[error("the file has no audio track, so there is no spectrogram to show")]
    NoAudio,
    #[error("the spectrogram request was cancelled")]
    Cancelled,
    /// ffprobe or ffmpeg could not read the audio; the text says what happened.
    #[error("cannot decode the audio track: {0}")]
    Decode(String),
    /// Reading or writing the audio cache (or the input) failed. The text names the action
    /// and ends with the path; the second field is the OS error.
    #[error("{0}")]
    Io(String, std::io::Error),
}

impl SpectrumError {
    /// An [`SpectrumError::Io`] whose message reads "`action`: `error`: `path`".
    pub(crate) fn io(action: &str, path: &std::path::Path, error: std::io::Error) -> Self {
        SpectrumError::Io(format!("{action}: {error}: {}", path.display()), error)
    }
}

/// Samples of one mono track, readable at any position (outside the track they are zero).
/// [`AudioCache`] reads its cache file; [`SliceSource`] wraps samples already in memory.
pub trait SampleSource: Sync {
    fn sample_rate(&self) -> u32;
    fn len_samples(&self) -> u64;
    /// Fills `out` with samples `start .. start + out.len()`; positions before 0 or past the
    /// end read as 0.0.
    fn read(&self, start: i64, out: &mut [f32]) -> Result<(), SpectrumError>;
    /// The whole track as one slice, when it is in memory or mapped, so that a transform can
    /// take its frames straight from it; `None` when samples must be [`read`](Self::read).
    fn samples(&self) -> Option<&[f32]> {
        None
    }
}

/// Samples in memory (tests, benchmarks, callers that already decoded).
#[derive(Debug, Clone, Copy)]
pub struct SliceSource<'a> {
    pub samples: &'a [f32],
    pub sample_rate: u32,
}

impl SampleSource for SliceSource<'_> {
    fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    fn len_samples(&self) -> u64 {
        self.samples.len() as u64
    }

    fn read(&self, start: i64, out: &mut [f32]) -> Result<(), SpectrumError> {
        read_slice(self.samples, start, out);
        Ok(())
    }

    fn samples(&self) -> Option<&[f32]> {
        Some(self.samples)
    }
}

/// [`SampleSource::read`] from a whole track held in `samples`.
pub(crate) fn read_slice(samples: &[f32], start: i64, out: &mut [f32]) {
    let (dst, src) = overlap(start, out.len(), samples.len() as u64);
    out.fill(0.0);
    if let (Some(dst), Some(src)) = (dst, src) {
        out[dst].copy_from_slice(&samples[src.start as usize..src.end as usize]);
    }
}

/// The part of a read `start .. start + len` that lies inside a track of `total` samples, as
/// (range in the output buffer, range in the track); `None`s when they do not overlap.
pub(crate) fn overlap(
    start: i64,
    len: usize,
    total: u64,
) -> (Option<std::ops::Range<usize>>, Option<std::ops::Range<u64>>) {
    let end = start.saturating_add(len as i64);
    let from = start.max(0);
    let to = end.min(total.min(i64::MAX as u64) as i64);
    if from >= to {
        return (None, None);
    }
    let dst = (from - start) as usize..(to - start) as usize;
    (Some(dst), Some(from as u64..to as u64))
}

/// Centre time of column `column` of `width` over `[start_secs, end_secs)`.
pub(crate) fn column_centre_secs(
    start_secs: f64,
    end_secs: f64,
    width: usize,
    column: usize,
) -> f64 {
    start_secs + (column as f64 + 0.5) * (end_secs - start_secs) / width as f64
}

/// Amplitude (1.0 = full scale) to dBFS, floored at [`DB_FLOOR`] (the transforms work with
/// powers; the tests' references with amplitudes).
#[cfg(test)]
pub(crate) fn amplitude_db(amplitude: f32) -> f32 {
    power_db(amplitude * amplitude)
}

/// Power (amplitude squared) to dBFS, floored at [`DB_FLOOR`] (at and below 1e-12, and for
/// NaN). Through [`log2_approx`]: within 2e-5 dB of `10·log10`, and a loop of it vectorises
/// (a libm `log10` per cell cost as much as the FFTs of an STFT image).
#[inline]
pub(crate) fn power_db(power: f32) -> f32 {
    // 10·log10(2): dB per octave of power.
    const DB_PER_LOG2: f32 = 10.0 * std::f32::consts::LOG10_2;
    let db = DB_PER_LOG2 * log2_approx(power);
    if power > 1e-12 { db } else { DB_FLOOR }
}

/// log2 of a positive normal `x` without a branch or a table: the exponent from the bits, then
/// the mantissa scaled into [√½, √2) through ln m = 2·atanh(s), s = (m−1)/(m+1), |s| ≤ 0.172,
/// as an odd series up to s⁹ (the next term is below 2e-9). Meaningless for zero, subnormal,
/// negative, infinite or NaN `x` (callers select those away).
#[inline]
pub(crate) fn log2_approx(x: f32) -> f32 {
    // The bits of √½: subtracting them puts the exponent boundary at √½ instead of 1.
    const SQRT_HALF_BITS: i32 = 0x3f35_04f3;
    let bits = x.to_bits() as i32;
    let exponent = bits.wrapping_sub(SQRT_HALF_BITS) >> 23;
    let m = f32::from_bits(bits.wrapping_sub(exponent << 23) as u32);
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let series = 1.0 + s2 * (1.0 / 3.0 + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0))));
    exponent as f32 + (2.0 * std::f32::consts::LOG2_E) * s * series
}

pub(crate) fn check_cancel(cancel: &AtomicBool) -> Result<(), SpectrumError> {
    if cancel.load(Ordering::Relaxed) {
        Err(SpectrumError::Cancelled)
    } else {
        Ok(())
    }
}

/// A request made safe: sizes clamped to `1..=MAX_*`, times finite, the window at least 1 ms.
pub(crate) fn sanitize(
    start_secs: f64,
    end_secs: f64,
    width: usize,
    height: usize,
) -> (f64, f64, usize, usize) {
    let start = if start_secs.is_finite() {
        start_secs
    } else {
        0.0
    };
    let end = if end_secs.is_finite() && end_secs >= start + 1e-3 {
        end_secs
    } else {
        start + 1e-3
    };
    (
        start,
        end,
        width.clamp(1, MAX_COLUMNS),
        height.clamp(1, MAX_ROWS),
    )
}

/// STFT when `end_secs - start_secs` > 30 s (linear axis up to Nyquist), Morlet CWT (log
/// axis 20 Hz … Nyquist, band-limited per scale) when ≤ 30 s. Checks `cancel` often enough
/// to stop within 20 ms. Uses the FFT plans kept inside `audio`. Sizes are clamped to
/// `1..=MAX_COLUMNS` / `1..=MAX_ROWS`; times past the end of the track read as silence.
pub fn viewport(
    audio: &AudioCache,
    start_secs: f64,
    end_secs: f64,
    width: usize,
    height: usize,
    cancel: &AtomicBool,
) -> Result<Spectrogram, SpectrumError> {
    let mut planner = audio.planner();
    viewport_with(
        &mut planner,
        audio,
        start_secs,
        end_secs,
        width,
        height,
        cancel,
    )
}

/// [`viewport`] on any [`SampleSource`] with the caller's [`Planner`].
pub fn viewport_with(
    planner: &mut Planner,
    source: &dyn SampleSource,
    start_secs: f64,
    end_secs: f64,
    width: usize,
    height: usize,
    cancel: &AtomicBool,
) -> Result<Spectrogram, SpectrumError> {
    let (start, end, width, height) = sanitize(start_secs, end_secs, width, height);
    let nyquist_hz = source.sample_rate() as f32 / 2.0;
    if end - start > CWT_MAX_WINDOW_SECS {
        planner.stft(source, start, end, width, height, cancel)
    } else {
        let min_hz = CWT_MIN_HZ.min(nyquist_hz / 4.0);
        planner.cwt(
            source, start, end, width, height, min_hz, nyquist_hz, cancel,
        )
    }
}

#[cfg(test)]
pub(crate) mod test_signals {
    //! Signals generated in Rust for the transform tests.
    use std::f64::consts::PI;

    pub fn sine(freq_hz: f64, amplitude: f64, sample_rate: u32, secs: f64) -> Vec<f32> {
        let n = (secs * sample_rate as f64) as usize;
        (0..n)
            .map(|i| {
                (amplitude * (2.0 * PI * freq_hz * i as f64 / sample_rate as f64).sin()) as f32
            })
            .collect()
    }

    /// A linear chirp from `f0_hz` at t=0 to `f1_hz` at t=`secs`.
    pub fn chirp(f0_hz: f64, f1_hz: f64, sample_rate: u32, secs: f64) -> Vec<f32> {
        let n = (secs * sample_rate as f64) as usize;
        let rate = (f1_hz - f0_hz) / secs;
        (0..n)
            .map(|i| {
                let t = i as f64 / sample_rate as f64;
                (0.5 * (2.0 * PI * (f0_hz * t + 0.5 * rate * t * t)).sin()) as f32
            })
            .collect()
    }

    /// The instantaneous frequency of [`chirp`] at `t`.
    pub fn chirp_hz(f0_hz: f64, f1_hz: f64, secs: f64, t: f64) -> f64 {
        f0_hz + (f1_hz - f0_hz) * t / secs
    }

    /// Deterministic white noise in [-amplitude, amplitude] (xorshift).
    pub fn noise(amplitude: f32, n: usize, seed: u64) -> Vec<f32> {
        let mut state = seed.max(1);
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let unit = (state >> 11) as f64 / (1u64 << 53) as f64;
                ((unit * 2.0 - 1.0) * amplitude as f64) as f32
            })
            .collect()
    }

    /// The row with the largest value in `column`.
    pub fn peak_row(spec: &super::Spectrogram, column: usize) -> usize {
        (0..spec.height)
            .max_by(|&a, &b| {
                let va = spec.db[a * spec.width + column];
                let vb = spec.db[b * spec.width + column];
                va.total_cmp(&vb)
            })
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_map_rows_to_frequencies_and_back() {
        let lin = FreqAxis::Linear { max_hz: 24_000.0 };
        assert_eq!(lin.row_hz(0, 101), 24_000.0);
        assert_eq!(lin.row_hz(100, 101), 0.0);
        assert!((lin.row_hz(50, 101) - 12_000.0).abs() < 1e-3);
        assert!((lin.hz_to_row(6_000.0, 101) - 75.0).abs() < 1e-3);
        let log = FreqAxis::Log {
            min_hz: 20.0,
            max_hz: 20_480.0,
        };
        assert!((log.row_hz(0, 11) - 20_480.0).abs() < 0.1);
        assert!((log.row_hz(10, 11) - 20.0).abs() < 1e-3);
        assert!((log.row_hz(5, 11) - 640.0).abs() < 0.01);
        assert!((log.hz_to_row(640.0, 11) - 5.0).abs() < 1e-4);
    }

    #[test]
    fn requests_are_sanitized() {
        assert_eq!(sanitize(1.0, 2.0, 0, 0), (1.0, 2.0, 1, 1));
        assert_eq!(sanitize(f64::NAN, f64::INFINITY, 10, 99_999).3, MAX_ROWS);
        let (start, end, ..) = sanitize(5.0, 3.0, 1, 1);
        assert!(end > start);
    }

    #[test]
    fn overlap_clips_to_the_track() {
        assert_eq!(overlap(-2, 5, 10), (Some(2..5), Some(0..3)));
        assert_eq!(overlap(8, 5, 10), (Some(0..2), Some(8..10)));
        assert_eq!(overlap(12, 5, 10), (None, None));
        let src = SliceSource {
            samples: &[1.0, 2.0, 3.0],
            sample_rate: 8000,
        };
        let mut out = [9.0; 6];
        src.read(-1, &mut out).unwrap();
        assert_eq!(out, [0.0, 1.0, 2.0, 3.0, 0.0, 0.0]);
    }

    #[test]
    fn decibels_match_log10_and_floor_silence() {
        let mut worst = 0.0f64;
        let mut x = 1.0001e-12f64;
        while x < 1e6 {
            for v in [
                x,
                x * 1.0000001,
                x * std::f64::consts::SQRT_2,
                x * 1.4142134,
            ] {
                let power = v as f32;
                let exact = 10.0 * (power as f64).log10();
                worst = worst.max((power_db(power) as f64 - exact).abs());
            }
            x *= 1.0137;
        }
        assert!(worst < 2e-5, "worst error {worst} dB");
        assert_eq!(power_db(1.0), 0.0);
        assert_eq!(amplitude_db(1.0), 0.0);
        assert!((amplitude_db(0.5) + 6.020_6).abs() < 1e-4);
        for silent in [0.0, 1e-12, 1e-30, f32::MIN_POSITIVE / 4.0, -1.0, f32::NAN] {
            assert_eq!(power_db(silent), DB_FLOOR, "{silent}");
        }
        assert_eq!(amplitude_db(9e-7), DB_FLOOR);
    }

    #[test]
    fn auto_range_follows_the_loudest_cell() {
        let mut spec = Spectrogram::floor(
            4,
            2,
            FreqAxis::Linear { max_hz: 100.0 },
            0.0,
            1.0,
            Transform::Stft,
        );
        assert_eq!(spec.auto_range(), (DEFAULT_FLOOR_DB, DEFAULT_CEIL_DB));
        spec.db[1] = -12.0;
        spec.columns_done = 4;
        assert_eq!(spec.auto_range(), (-100.0, -10.0));
    }
}
