//! Audio spectrograms for the preview worker: the input's audio track decoded once into a
//! cache file, an overview of the whole track while it decodes, and viewports read back from
//! the cache.
//!
//! This is the small STFT-only implementation the preview worker is built against (its API is
//! the one in the project's contracts); the full module (Morlet CWT for short windows, cached
//! plans, log axes) replaces it.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use realfft::RealFftPlanner;

use crate::media::process;
use crate::media::tools::{Tools, file_arg};

/// Which transform produced a spectrogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    Stft,
    Cwt,
}

/// How rows map to frequencies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FreqAxis {
    Linear { max_hz: f32 },
    Log { min_hz: f32, max_hz: f32 },
}

/// dB values, row-major, row 0 = the highest frequency, `width` columns spanning
/// `[start_secs, end_secs)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Spectrogram {
    pub width: usize,
    pub height: usize,
    pub db: Vec<f32>,
    pub freq_axis: FreqAxis,
    pub start_secs: f64,
    pub end_secs: f64,
    pub transform: Transform,
    /// Columns computed so far (`< width` while an overview is still streaming).
    pub columns_done: usize,
}

impl Spectrogram {
    /// RGBA pixels (`width × height × 4`) through a perceptual dark-to-bright colour map.
    pub fn to_rgba(&self, floor_db: f32, ceil_db: f32) -> Vec<u8> {
        const STOPS: [[f32; 3]; 5] = [
            [0.0, 0.0, 4.0],
            [80.0, 18.0, 123.0],
            [182.0, 54.0, 121.0],
            [251.0, 136.0, 97.0],
            [252.0, 253.0, 191.0],
        ];
        let span = (ceil_db - floor_db).max(1e-6);
        let mut out = Vec::with_capacity(self.db.len() * 4);
        for &v in &self.db {
            let t = ((v - floor_db) / span).clamp(0.0, 1.0) * (STOPS.len() - 1) as f32;
            let i = (t.floor() as usize).min(STOPS.len() - 2);
            let f = t - i as f32;
            for (lo, hi) in STOPS[i].iter().zip(&STOPS[i + 1]) {
                out.push((lo + (hi - lo) * f).round() as u8);
            }
            out.push(255);
        }
        out
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpectrumError {
    #[error("this file has no audio track")]
    NoAudio,
    #[error("cancelled")]
    Cancelled,
    #[error("cannot decode the audio track: {0}")]
    Decode(String),
    #[error("cannot use the audio cache: {0}")]
    Io(#[from] std::io::Error),
}

/// Lowest value a spectrogram holds (silence).
const FLOOR_DB: f32 = -120.0;
/// STFT window length in samples.
const WINDOW: usize = 2048;
/// How often the overview is reported while it fills.
const OVERVIEW_PERIOD: Duration = Duration::from_millis(300);

/// The audio track decoded to mono f32 (native endianness) in a cache file.
#[derive(Debug)]
pub struct AudioCache {
    path: PathBuf,
    sample_rate: u32,
    samples: u64,
}

impl AudioCache {
    /// Decodes the first audio track of `input` (or reuses a complete cache file), reporting a
    /// progressively filled `width × height` overview through `on_overview`.
    pub fn open(
        tools: &Tools,
        input: &Path,
        width: usize,
        height: usize,
        cancel: &AtomicBool,
        on_overview: &mut dyn FnMut(&Spectrogram),
    ) -> Result<AudioCache, SpectrumError> {
        let (sample_rate, duration_secs) = probe_audio(tools, input)?;
        let dir = cache_dir()?;
        std::fs::create_dir_all(&dir)?;
        let meta = std::fs::metadata(input)?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let identity = format!(
            "{}\n{}\n{mtime}\n{sample_rate}",
            std::path::absolute(input)?.display(),
            meta.len()
        );
        let path = dir.join(format!(
            "{}.f32",
            crate::fsutil::md5_hex(identity.as_bytes())
        ));
        let expected = (duration_secs * sample_rate as f64).round().max(1.0) as u64;
        let mut overview = Overview::new(width, height, sample_rate, expected, duration_secs);
        if let Ok(meta) = std::fs::metadata(&path) {
            let cache = AudioCache {
                path: path.clone(),
                sample_rate,
                samples: meta.len() / 4,
            };
            let spec = viewport(&cache, 0.0, cache.duration_secs(), width, height, cancel)?;
            on_overview(&spec);
            return Ok(cache);
        }
        let part = path.with_extension("f32.part");
        let mut cmd = Command::new(&tools.ffmpeg);
        cmd.args(["-hide_banner", "-nostdin", "-loglevel", "error", "-i"])
            .arg(file_arg(input))
            .args(["-map", "0:a:0", "-vn", "-ac", "1", "-f", "f32le", "pipe:1"])
            .stdout(Stdio::piped());
        let mut child = process::spawn(cmd, "audio-decode")
            .map_err(|e| SpectrumError::Decode(e.to_string()))?;
        let mut stdout = child
            .take_stdout()
            .ok_or_else(|| SpectrumError::Decode("no output pipe".into()))?;
        let mut out = BufWriter::new(File::create(&part)?);
        let mut buf = vec![0u8; 64 * 1024];
        let mut pending: Vec<u8> = Vec::new();
        let mut written = 0u64;
        let mut last_report = Instant::now();
        loop {
            if cancel.load(Ordering::Relaxed) {
                let _ = child.kill();
                drop(out);
                let _ = std::fs::remove_file(&part);
                return Err(SpectrumError::Cancelled);
            }
            let n = stdout.read(&mut buf)?;
            if n == 0 {
                break;
            }
            pending.extend_from_slice(&buf[..n]);
            let whole = pending.len() / 4 * 4;
            let samples: Vec<f32> = pending[..whole]
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            pending.drain(..whole);
            for s in &samples {
                out.write_all(&s.to_ne_bytes())?;
            }
            written += samples.len() as u64;
            overview.push(&samples);
            if last_report.elapsed() >= OVERVIEW_PERIOD {
                last_report = Instant::now();
                on_overview(&overview.spectrogram);
            }
        }
        out.flush()?;
        drop(out);
        if let Err(e) = child.wait() {
            let _ = std::fs::remove_file(&part);
            return Err(SpectrumError::Decode(e.to_string()));
        }
        std::fs::rename(&part, &path)?;
        overview.finish();
        on_overview(&overview.spectrogram);
        Ok(AudioCache {
            path,
            sample_rate,
            samples: written,
        })
    }

    pub fn duration_secs(&self) -> f64 {
        self.samples as f64 / f64::from(self.sample_rate.max(1))
    }

    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Samples `[start, start + out.len())`, zeros outside the track.
    fn read(&self, file: &mut File, start: i64, out: &mut [f32]) -> std::io::Result<()> {
        out.fill(0.0);
        let first = start.max(0) as u64;
        let end = (start + out.len() as i64).clamp(0, self.samples as i64) as u64;
        if end <= first {
            return Ok(());
        }
        file.seek(SeekFrom::Start(first * 4))?;
        let mut bytes = vec![0u8; ((end - first) * 4) as usize];
        file.read_exact(&mut bytes)?;
        let offset = (first as i64 - start) as usize;
        for (i, b) in bytes.chunks_exact(4).enumerate() {
            out[offset + i] = f32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
        }
        Ok(())
    }
}

fn cache_dir() -> Result<PathBuf, SpectrumError> {
    if let Some(dir) = std::env::var_os("REFRAME_CACHE_DIR").filter(|d| !d.is_empty()) {
        return Ok(std::path::absolute(PathBuf::from(dir))?.join("audio"));
    }
    directories::ProjectDirs::from("", "", "reframe")
        .map(|dirs| dirs.cache_dir().join("audio"))
        .ok_or_else(|| {
            SpectrumError::Io(std::io::Error::other(
                "no cache directory: set REFRAME_CACHE_DIR",
            ))
        })
}

/// Sample rate and duration of the first audio track.
fn probe_audio(tools: &Tools, input: &Path) -> Result<(u32, f64), SpectrumError> {
    let mut cmd = Command::new(&tools.ffprobe);
    cmd.args(["-v", "error", "-select_streams", "a:0"])
        .args([
            "-show_entries",
            "stream=sample_rate:format=duration",
            "-of",
            "default=nw=1",
        ])
        .arg(file_arg(input));
    let out = process::run_capture(cmd, "ffprobe-audio")
        .map_err(|e| SpectrumError::Decode(e.to_string()))?;
    let text = String::from_utf8_lossy(&out);
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    let Some(rate) = value("sample_rate=") else {
        return Err(SpectrumError::NoAudio);
    };
    Ok((rate as u32, value("duration=").unwrap_or(0.0)))
}

/// One STFT column of `window` samples (Hann) in dB, resampled to `height` rows (row 0 = top).
struct ColumnFft {
    fft: std::sync::Arc<dyn realfft::RealToComplex<f32>>,
    hann: Vec<f32>,
    input: Vec<f32>,
    spectrum: Vec<realfft::num_complex::Complex<f32>>,
}

impl ColumnFft {
    fn new() -> Self {
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(WINDOW);
        let hann = (0..WINDOW)
            .map(|i| 0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / WINDOW as f32).cos())
            .collect();
        let spectrum = fft.make_output_vec();
        Self {
            fft,
            hann,
            input: vec![0.0; WINDOW],
            spectrum,
        }
    }

    /// Writes column `x` of a `width`-wide, `height`-high dB image.
    fn column(&mut self, samples: &[f32], db: &mut [f32], x: usize, width: usize, height: usize) {
        for (i, v) in self.input.iter_mut().enumerate() {
            *v = samples.get(i).copied().unwrap_or(0.0) * self.hann[i];
        }
        if self
            .fft
            .process(&mut self.input, &mut self.spectrum)
            .is_err()
        {
            return;
        }
        let bins = self.spectrum.len();
        // Hann's coherent gain is 1/2: a full-scale sine reads 0 dB.
        let norm = 4.0 / WINDOW as f32;
        for row in 0..height {
            let lo = (height - 1 - row) * bins / height;
            let hi = ((height - row) * bins / height).max(lo + 1).min(bins);
            let peak = self.spectrum[lo..hi]
                .iter()
                .map(|c| c.norm() * norm)
                .fold(0.0f32, f32::max);
            db[row * width + x] = (20.0 * peak.max(1e-12).log10()).max(FLOOR_DB);
        }
    }
}

/// The overview, filled column by column as samples stream in; keeps only the samples the
/// next columns need.
struct Overview {
    spectrogram: Spectrogram,
    expected_samples: u64,
    buffer: Vec<f32>,
    buffer_start: u64,
    fft: ColumnFft,
}

impl Overview {
    fn new(
        width: usize,
        height: usize,
        sample_rate: u32,
        expected_samples: u64,
        duration_secs: f64,
    ) -> Self {
        Self {
            spectrogram: Spectrogram {
                width,
                height,
                db: vec![FLOOR_DB; width * height],
                freq_axis: FreqAxis::Linear {
                    max_hz: sample_rate as f32 / 2.0,
                },
                start_secs: 0.0,
                end_secs: duration_secs,
                transform: Transform::Stft,
                columns_done: 0,
            },
            expected_samples,
            buffer: Vec::new(),
            buffer_start: 0,
            fft: ColumnFft::new(),
        }
    }

    fn push(&mut self, samples: &[f32]) {
        self.buffer.extend_from_slice(samples);
        self.compute(false);
    }

    fn finish(&mut self) {
        self.compute(true);
        self.spectrogram.columns_done = self.spectrogram.width;
    }

    fn compute(&mut self, all: bool) {
        let s = &mut self.spectrogram;
        let mut window = vec![0.0f32; WINDOW];
        while s.columns_done < s.width {
            let x = s.columns_done;
            let width = s.width.max(1) as f64;
            let centre = (x as f64 + 0.5) * self.expected_samples as f64 / width;
            let start = centre as i64 - (WINDOW / 2) as i64;
            let end = self.buffer_start + self.buffer.len() as u64;
            if !all && start + WINDOW as i64 > end as i64 {
                break;
            }
            for (i, v) in window.iter_mut().enumerate() {
                let at = start + i as i64 - self.buffer_start as i64;
                *v = if at >= 0 {
                    self.buffer.get(at as usize).copied().unwrap_or(0.0)
                } else {
                    0.0
                };
            }
            self.fft.column(&window, &mut s.db, x, s.width, s.height);
            s.columns_done += 1;
        }
        let keep_from = if s.columns_done < s.width {
            self_window_start(self.expected_samples, s.width, s.columns_done).max(0) as u64
        } else {
            self.buffer_start + self.buffer.len() as u64
        };
        if keep_from > self.buffer_start {
            let drop = ((keep_from - self.buffer_start) as usize).min(self.buffer.len());
            self.buffer.drain(..drop);
            self.buffer_start += drop as u64;
        }
    }
}

fn self_window_start(expected_samples: u64, width: usize, x: usize) -> i64 {
    let centre = (x as f64 + 0.5) * expected_samples as f64 / width.max(1) as f64;
    centre as i64 - (WINDOW / 2) as i64
}

/// The spectrogram of `[start_secs, end_secs)`: `width` STFT columns, `height` rows on a linear
/// axis up to half the sample rate. Checks `cancel` between columns.
pub fn viewport(
    audio: &AudioCache,
    start_secs: f64,
    end_secs: f64,
    width: usize,
    height: usize,
    cancel: &AtomicBool,
) -> Result<Spectrogram, SpectrumError> {
    let mut db = vec![FLOOR_DB; width * height];
    let mut file = File::open(&audio.path)?;
    let mut fft = ColumnFft::new();
    let mut window = vec![0.0f32; WINDOW];
    let rate = f64::from(audio.sample_rate);
    let span = (end_secs - start_secs).max(0.0);
    for x in 0..width {
        if cancel.load(Ordering::Relaxed) {
            return Err(SpectrumError::Cancelled);
        }
        let centre = (start_secs + (x as f64 + 0.5) * span / width.max(1) as f64) * rate;
        audio.read(&mut file, centre as i64 - (WINDOW / 2) as i64, &mut window)?;
        fft.column(&window, &mut db, x, width, height);
    }
    Ok(Spectrogram {
        width,
        height,
        db,
        freq_axis: FreqAxis::Linear {
            max_hz: audio.sample_rate as f32 / 2.0,
        },
        start_secs,
        end_secs,
        transform: Transform::Stft,
        columns_done: width,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sine_peaks_in_its_row() {
        let dir = tempfile::tempdir().unwrap();
        let rate = 48_000u32;
        let path = dir.path().join("a.f32");
        let mut bytes = Vec::new();
        for i in 0..rate {
            let v = (2.0 * std::f32::consts::PI * 6000.0 * i as f32 / rate as f32).sin();
            bytes.extend_from_slice(&v.to_ne_bytes());
        }
        std::fs::write(&path, bytes).unwrap();
        let cache = AudioCache {
            path,
            sample_rate: rate,
            samples: u64::from(rate),
        };
        let s = viewport(&cache, 0.0, 1.0, 4, 8, &AtomicBool::new(false)).unwrap();
        // 6 kHz of 24 kHz: the 2nd row from the bottom of 8 (rows cover 3 kHz each).
        let column: Vec<f32> = (0..8).map(|r| s.db[r * 4 + 1]).collect();
        let loudest = (0..8)
            .max_by(|&a, &b| column[a].total_cmp(&column[b]))
            .unwrap();
        assert_eq!(loudest, 5, "{column:?}");
        assert!(column[5] > -3.0, "{column:?}");
        assert_eq!(s.to_rgba(-100.0, 0.0).len(), 4 * 8 * 4);
    }
}
