//! The decoded audio track on disk, and the overview computed while it decodes.
//!
//! [`AudioCache::open`] runs `ffmpeg … -map 0:a:0 -ac 1 -f f32le pipe:1` once per input and
//! streams its output, chunk by chunk, into `<cache>/audio/.<key>.f32.partial-<pid>-<n>`
//! while the overview STFT takes each column's frame as soon as it has arrived. Only a small
//! rolling buffer is kept in memory (the frames still to come), so a 2-hour track costs
//! megabytes, not gigabytes. When ffmpeg has finished, the header (sample rate, sample count)
//! is written and the file renamed to `<key>.f32`: a file under its final name is always
//! complete, and the next open of the same input reuses it. A partial file left by a killed
//! process is never read and is swept once its process is gone.
//!
//! A complete file is mapped read-only ([`memmap2`]): a viewport takes its frames straight
//! from the page cache, with no system call or copy per request (reading a 60 s window with
//! `pread` cost as much as transforming it). Complete files are never written again (only
//! renamed into place, or unlinked, which leaves a mapping valid); if one is truncated from
//! outside, touching the lost pages kills the process with SIGBUS, which the preview client
//! already handles as a dead worker. When mapping fails, reads fall back to `pread`.
//!
//! File layout: a 32-byte header (`REFRAMEA`, format version u32, sample rate u32, sample
//! count u64, 8 reserved bytes; little-endian), then the samples as little-endian f32.
//! The key is the MD5 of the input's absolute path, size and modification time, so an edited
//! file gets a new cache entry. Complete files beyond [`CACHE_BUDGET_BYTES`] are evicted,
//! least recently used first. The cache is not fsynced: it is only a cache, and the header's
//! sample count must match the file length before a file is reused.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use crate::fsutil;
use crate::media::{self, Tools, file_arg};

use super::fft::Planner;
use super::stft::{ColumnBuffers, ColumnKernel};
use super::{
    FreqAxis, SampleSource, Spectrogram, SpectrumError, Transform, check_cancel, overlap, sanitize,
};

/// Complete cache files kept beyond this total size are removed, oldest use first (the file
/// just decoded is always kept). A 2-hour 48 kHz track takes 1.4 GB.
pub const CACHE_BUDGET_BYTES: u64 = 8 << 30;

const MAGIC: &[u8; 8] = b"REFRAMEA";
const FORMAT_VERSION: u32 = 1;
const HEADER_BYTES: u64 = 32;
const PARTIAL_MARKER: &str = ".f32.partial-";
/// Bytes read from ffmpeg at a time, and the pipe size asked for (256 Ki samples): fewer
/// wake-ups of both processes.
const READ_CHUNK_BYTES: usize = 1 << 20;
/// Least time between two progressive overview callbacks.
const OVERVIEW_INTERVAL: Duration = Duration::from_millis(100);

static PARTIAL_COUNTER: AtomicU64 = AtomicU64::new(0);

/// `$REFRAME_CACHE_DIR/audio` (made absolute) when that variable is set and not empty, else
/// the user cache directory's `audio`.
pub fn cache_root() -> Result<PathBuf, SpectrumError> {
    match crate::fsutil::cache_dir() {
        Ok(Some(dir)) => Ok(dir.join("audio")),
        Ok(None) => Err(SpectrumError::Io(
            "cannot find a cache directory for decoded audio: set REFRAME_CACHE_DIR (or \
             HOME) to a writable directory"
                .to_string(),
            io::Error::from(io::ErrorKind::NotFound),
        )),
        Err(e) => Err(SpectrumError::io(
            "cannot resolve REFRAME_CACHE_DIR",
            &PathBuf::from(std::env::var_os(crate::fsutil::CACHE_DIR_ENV).unwrap_or_default()),
            e,
        )),
    }
}

/// The audio track decoded once to mono f32 at its own rate into a cache file
/// (`$REFRAME_CACHE_DIR/audio/<md5 of input identity>.f32`), streamed (never the whole track
/// in memory), so later viewport requests read only the samples they need. Also keeps the
/// FFT plans used by [`super::viewport`].
#[derive(Debug)]
pub struct AudioCache {
    path: PathBuf,
    file: File,
    /// The whole file mapped read-only (`None` where mapping failed: reads use `pread`).
    map: Option<memmap2::Mmap>,
    sample_rate: u32,
    len_samples: u64,
    planner: Mutex<Planner>,
}

impl AudioCache {
    /// Decode (or reuse a complete cache file). `on_overview` gets progressively filled
    /// overview spectrograms (STFT, linear axis, `width × height`, the first within ~0.5 s,
    /// then about every 100 ms while decoding, the complete one last); returns when decoding
    /// is complete.
    pub fn open(
        tools: &Tools,
        input: &Path,
        width: usize,
        height: usize,
        cancel: &AtomicBool,
        on_overview: &mut dyn FnMut(&Spectrogram),
    ) -> Result<AudioCache, SpectrumError> {
        let dir = cache_root()?;
        AudioCache::open_in(tools, input, &dir, width, height, cancel, on_overview)
    }

    /// [`AudioCache::open`] with the cache directory given (tests, other layouts).
    pub fn open_in(
        tools: &Tools,
        input: &Path,
        cache_dir: &Path,
        width: usize,
        height: usize,
        cancel: &AtomicBool,
        on_overview: &mut dyn FnMut(&Spectrogram),
    ) -> Result<AudioCache, SpectrumError> {
        let (_, _, width, height) = sanitize(0.0, 1.0, width, height);
        let input = std::path::absolute(input).unwrap_or_else(|_| input.to_path_buf());
        let key = cache_key(&input)?;
        let final_path = cache_dir.join(format!("{key}.f32"));
        let mut planner = Planner::new();

        if let Some(cache) = AudioCache::reuse(&final_path)? {
            log::debug!("audio cache reused: {}", final_path.display());
            let overview =
                cache
                    .planner()
                    .stft(&cache, 0.0, cache.duration_secs(), width, height, cancel)?;
            on_overview(&overview);
            return Ok(cache);
        }

        let probe = probe_audio(tools, &input)?;
        check_cancel(cancel)?;
        fs::create_dir_all(cache_dir).map_err(|e| {
            SpectrumError::io("cannot create the audio cache directory", cache_dir, e)
        })?;
        sweep_dead_partials(cache_dir);
        let partial_path = cache_dir.join(format!(
            ".{key}{PARTIAL_MARKER}{}-{}",
            std::process::id(),
            PARTIAL_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let result = decode(
            tools,
            &input,
            &partial_path,
            &probe,
            &mut planner,
            width,
            height,
            cancel,
            on_overview,
        );
        let (len_samples, overview) = match result {
            Ok(done) => done,
            Err(e) => {
                let _ = fs::remove_file(&partial_path);
                return Err(e);
            }
        };
        if let Err(e) = fs::rename(&partial_path, &final_path) {
            let _ = fs::remove_file(&partial_path);
            return Err(SpectrumError::io(
                "cannot store the decoded audio in the cache",
                &final_path,
                e,
            ));
        }
        evict(cache_dir, &final_path, CACHE_BUDGET_BYTES);
        let file = File::open(&final_path).map_err(|e| {
            SpectrumError::io("cannot open the decoded audio cache", &final_path, e)
        })?;
        let cache = AudioCache {
            map: map_samples(&file, len_samples, &final_path),
            path: final_path,
            file,
            sample_rate: probe.sample_rate,
            len_samples,
            planner: Mutex::new(planner),
        };
        let overview = match overview {
            Some(overview) => overview,
            // The duration was unknown, or off by more than half a column: redo it exactly.
            None => {
                cache
                    .planner()
                    .stft(&cache, 0.0, cache.duration_secs(), width, height, cancel)?
            }
        };
        on_overview(&overview);
        Ok(cache)
    }

    /// A complete cache file at `path`, or `None` when there is none (an invalid one is
    /// removed so that it is redone).
    fn reuse(path: &Path) -> Result<Option<AudioCache>, SpectrumError> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(SpectrumError::io("cannot open the audio cache", path, e)),
        };
        let valid = read_header(&file).filter(|&(_, count)| {
            file.metadata()
                .is_ok_and(|m| m.len() == HEADER_BYTES + 4 * count)
        });
        let Some((sample_rate, len_samples)) = valid else {
            log::warn!(
                "audio cache file is damaged, decoding again: {}",
                path.display()
            );
            let _ = fs::remove_file(path);
            return Ok(None);
        };
        // Mark it used (eviction is least recently used first); failure only affects that.
        let _ = file.set_modified(SystemTime::now());
        Ok(Some(AudioCache {
            map: map_samples(&file, len_samples, path),
            path: path.to_path_buf(),
            file,
            sample_rate,
            len_samples,
            planner: Mutex::new(Planner::new()),
        }))
    }

    pub fn duration_secs(&self) -> f64 {
        self.len_samples as f64 / self.sample_rate as f64
    }

    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// The cache file holding the samples.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The FFT plans kept for this track's requests.
    pub fn planner(&self) -> MutexGuard<'_, Planner> {
        self.planner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl SampleSource for AudioCache {
    fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    fn len_samples(&self) -> u64 {
        self.len_samples
    }

    fn read(&self, start: i64, out: &mut [f32]) -> Result<(), SpectrumError> {
        match self.samples() {
            Some(samples) => {
                super::read_slice(samples, start, out);
                Ok(())
            }
            None => self.read_at(start, out),
        }
    }

    fn samples(&self) -> Option<&[f32]> {
        let bytes = self.map.as_deref()?.get(HEADER_BYTES as usize..)?;
        samples_of(bytes, self.len_samples)
    }
}

impl AudioCache {
    /// [`SampleSource::read`] with `pread`, for when the file is not mapped.
    fn read_at(&self, start: i64, out: &mut [f32]) -> Result<(), SpectrumError> {
        out.fill(0.0);
        let (Some(dst), Some(src)) = overlap(start, out.len(), self.len_samples) else {
            return Ok(());
        };
        let mut bytes = vec![0u8; dst.len() * 4];
        self.file
            .read_exact_at(&mut bytes, HEADER_BYTES + 4 * src.start)
            .map_err(|e| SpectrumError::io("cannot read the audio cache", &self.path, e))?;
        for (slot, raw) in out[dst].iter_mut().zip(bytes.chunks_exact(4)) {
            *slot = f32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
        }
        Ok(())
    }
}

/// The cache file at `path` (already checked: `HEADER_BYTES + 4 * len_samples` long) mapped
/// read-only, or `None` (logged) when it cannot be mapped or viewed as samples.
fn map_samples(file: &File, len_samples: u64, path: &Path) -> Option<memmap2::Mmap> {
    // SAFETY: the map is read-only and a complete cache file is never written again (see the
    // module header); truncation from outside would end the process with SIGBUS, not let it
    // read freed memory.
    let map = match unsafe { memmap2::Mmap::map(file) } {
        Ok(map) => map,
        Err(e) => {
            log::debug!(
                "cannot map the audio cache, reading it instead ({e}): {}",
                path.display()
            );
            return None;
        }
    };
    let usable = map
        .get(HEADER_BYTES as usize..)
        .and_then(|bytes| samples_of(bytes, len_samples))
        .is_some();
    usable.then_some(map)
}

/// `bytes` (little-endian f32 samples, the part of a mapped cache file after the header) as
/// `len_samples` samples: on a little-endian machine the same memory, when aligned (a map
/// starts on a page and the header is 32 bytes, so it is); `None` otherwise.
fn samples_of(bytes: &[u8], len_samples: u64) -> Option<&[f32]> {
    if cfg!(target_endian = "big") {
        return None;
    }
    let bytes = bytes.get(..usize::try_from(len_samples).ok()?.checked_mul(4)?)?;
    // SAFETY: every bit pattern is a valid f32; `align_to` only yields an aligned middle.
    let (head, samples, tail) = unsafe { bytes.align_to::<f32>() };
    (head.is_empty() && tail.is_empty()).then_some(samples)
}

/// What ffprobe says about the first audio track.
#[derive(Debug, Clone, PartialEq)]
struct AudioProbe {
    sample_rate: u32,
    /// The track's (else the container's) duration, when known.
    duration_secs: Option<f64>,
}

fn probe_audio(tools: &Tools, input: &Path) -> Result<AudioProbe, SpectrumError> {
    let mut cmd = Command::new(&tools.ffprobe);
    cmd.args(["-v", "error", "-select_streams", "a:0"])
        .args([
            "-show_entries",
            "stream=sample_rate,duration:format=duration",
        ])
        .args(["-of", "json"])
        .arg(file_arg(input));
    let stdout = media::run_capture(cmd, "ffprobe (audio)").map_err(|e| {
        SpectrumError::Decode(format!(
            "ffprobe could not read the file ({e}): {}",
            input.display()
        ))
    })?;
    parse_probe(&String::from_utf8_lossy(&stdout), input)
}

fn parse_probe(json: &str, input: &Path) -> Result<AudioProbe, SpectrumError> {
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| {
        SpectrumError::Decode(format!(
            "ffprobe gave output that is not JSON ({e}): {}",
            input.display()
        ))
    })?;
    let Some(stream) = value["streams"].as_array().and_then(|s| s.first()) else {
        return Err(SpectrumError::NoAudio);
    };
    let number = |v: &serde_json::Value| v.as_str().and_then(|s| s.trim().parse::<f64>().ok());
    let sample_rate = number(&stream["sample_rate"])
        .filter(|&rate| rate >= 1.0 && rate <= u32::MAX as f64)
        .ok_or_else(|| {
            SpectrumError::Decode(format!(
                "the audio track has no sample rate: {}",
                input.display()
            ))
        })? as u32;
    let duration_secs = number(&stream["duration"])
        .or_else(|| number(&value["format"]["duration"]))
        .filter(|&d| d.is_finite() && d > 0.0);
    Ok(AudioProbe {
        sample_rate,
        duration_secs,
    })
}

/// MD5 (hex) of the input's identity: absolute path, size, modification time.
fn cache_key(input: &Path) -> Result<String, SpectrumError> {
    let meta =
        fs::metadata(input).map_err(|e| SpectrumError::io("cannot read the input", input, e))?;
    let mut identity = b"reframe-audio-v1\0".to_vec();
    identity.extend_from_slice(input.as_os_str().as_bytes());
    identity.push(0);
    identity.extend_from_slice(
        format!("{} {} {}", meta.len(), meta.mtime(), meta.mtime_nsec()).as_bytes(),
    );
    Ok(fsutil::md5_hex(&identity))
}

fn header(sample_rate: u32, len_samples: u64) -> [u8; HEADER_BYTES as usize] {
    let mut bytes = [0u8; HEADER_BYTES as usize];
    bytes[..8].copy_from_slice(MAGIC);
    bytes[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    bytes[12..16].copy_from_slice(&sample_rate.to_le_bytes());
    bytes[16..24].copy_from_slice(&len_samples.to_le_bytes());
    bytes
}

/// (sample rate, sample count) from a valid header.
fn read_header(file: &File) -> Option<(u32, u64)> {
    let mut bytes = [0u8; HEADER_BYTES as usize];
    file.read_exact_at(&mut bytes, 0).ok()?;
    let word = |range: std::ops::Range<usize>| bytes[range].try_into().ok();
    let version = u32::from_le_bytes(word(8..12)?);
    let sample_rate = u32::from_le_bytes(word(12..16)?);
    let len_samples = u64::from_le_bytes(bytes[16..24].try_into().ok()?);
    (&bytes[..8] == MAGIC && version == FORMAT_VERSION && sample_rate > 0)
        .then_some((sample_rate, len_samples))
}

/// Runs ffmpeg into `partial_path` (header last) while streaming the overview. Returns the
/// sample count and the complete overview, or `None` for the overview when it must be
/// computed again from the file (duration unknown or wrong).
#[allow(clippy::too_many_arguments)]
fn decode(
    tools: &Tools,
    input: &Path,
    partial_path: &Path,
    probe: &AudioProbe,
    planner: &mut Planner,
    width: usize,
    height: usize,
    cancel: &AtomicBool,
    on_overview: &mut dyn FnMut(&Spectrogram),
) -> Result<(u64, Option<Spectrogram>), SpectrumError> {
    let write_error =
        |e: io::Error| SpectrumError::io("cannot write the audio cache", partial_path, e);
    // Written in the chunks read (up to 1 MiB each), so no buffering layer copies them again.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(partial_path)
        .map_err(write_error)?;
    // A zero header until the end: an interrupted file never looks valid.
    file.write_all(&[0u8; HEADER_BYTES as usize])
        .map_err(write_error)?;

    let mut cmd = Command::new(&tools.ffmpeg);
    cmd.args(["-v", "error", "-nostdin", "-i"])
        .arg(file_arg(input))
        .args(["-map", "0:a:0", "-vn", "-sn", "-dn", "-ac", "1"])
        .args(["-c:a", "pcm_f32le", "-f", "f32le", "pipe:1"])
        .stdout(Stdio::piped());
    let mut child = media::spawn(cmd, "ffmpeg (audio decode)")
        .map_err(|e| SpectrumError::Decode(format!("{e}: {}", input.display())))?;
    let mut stdout = child.take_stdout().ok_or_else(|| {
        SpectrumError::Decode(format!(
            "ffmpeg's output was not captured: {}",
            input.display()
        ))
    })?;
    // A larger pipe (the default is 64 KiB) halves the context switches per megabyte; when
    // refused (pipe-max-size), the default works as well, only slower.
    // SAFETY: F_SETPIPE_SZ on a pipe descriptor we own changes only its buffer size.
    unsafe {
        libc::fcntl(
            stdout.as_raw_fd(),
            libc::F_SETPIPE_SZ,
            READ_CHUNK_BYTES as libc::c_int,
        )
    };

    let mut overview = probe
        .duration_secs
        .map(|secs| StreamingOverview::new(planner, probe.sample_rate, secs, width, height));
    let started = Instant::now();
    let mut last_emit: Option<Instant> = None;
    let mut emitted_columns = 0;

    let mut raw = vec![0u8; READ_CHUNK_BYTES];
    let mut carry = 0usize; // bytes of an incomplete sample at the start of `raw`
    let mut len_samples = 0u64;
    let mut pending: Vec<f32> = Vec::new();
    let mut pending_start = 0u64;
    loop {
        check_cancel(cancel)?;
        let read = match stdout.read(&mut raw[carry..]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(SpectrumError::Decode(format!(
                    "reading ffmpeg's output failed ({e}): {}",
                    input.display()
                )));
            }
        };
        let available = carry + read;
        let whole = available / 4 * 4;
        file.write_all(&raw[..whole]).map_err(write_error)?;
        let chunk_start = len_samples;
        len_samples += (whole / 4) as u64;
        if let Some(overview) = overview.as_mut() {
            // Only the samples some column's frame needs are converted and kept: for a long
            // track the frames are far apart and most samples are only written to disk.
            let skip = if pending.is_empty() {
                let skip = overview
                    .needed_from()
                    .saturating_sub(chunk_start)
                    .min((whole / 4) as u64);
                pending_start = chunk_start + skip;
                skip as usize
            } else {
                0
            };
            pending.extend(
                raw[skip * 4..whole]
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            );
            overview.advance(pending_start, &pending, false);
            overview.release(&mut pending_start, &mut pending);
            let done = overview.spec.columns_done;
            let due = last_emit.is_none_or(|at| at.elapsed() >= OVERVIEW_INTERVAL);
            if done > emitted_columns && done < width && due {
                on_overview(&overview.spec);
                emitted_columns = done;
                last_emit = Some(Instant::now());
            }
        }
        raw.copy_within(whole..available, 0);
        carry = available - whole;
    }
    drop(stdout);
    child
        .wait()
        .map_err(|e| SpectrumError::Decode(format!("{e}\ninput: {}", input.display())))?;
    if len_samples == 0 {
        return Err(SpectrumError::Decode(format!(
            "the audio track decoded to no samples: {}",
            input.display()
        )));
    }
    file.write_all_at(&header(probe.sample_rate, len_samples), 0)
        .map_err(write_error)?;
    file.flush().map_err(write_error)?;
    log::debug!(
        "decoded {len_samples} samples at {} Hz in {:.2} s: {}",
        probe.sample_rate,
        started.elapsed().as_secs_f64(),
        input.display()
    );

    let overview = overview.and_then(|mut overview| {
        let expected = overview.expected_samples;
        let half_column = overview.column_samples / 2.0;
        if (len_samples as f64 - expected as f64).abs() > half_column.max(1.0) {
            return None;
        }
        overview.advance(pending_start, &pending, true);
        Some(overview.spec)
    });
    Ok((len_samples, overview))
}

/// The overview STFT computed column by column as samples arrive.
struct StreamingOverview {
    kernel: ColumnKernel,
    buffers: ColumnBuffers,
    spec: Spectrogram,
    /// First sample of each column's frame.
    frame_starts: Vec<i64>,
    /// Whether the frame of column `spec.columns_done` is in `first_frame`, waiting for its
    /// partner.
    held: bool,
    first_frame: Vec<f32>,
    expected_samples: u64,
    column_samples: f64,
}

impl StreamingOverview {
    fn new(
        planner: &mut Planner,
        sample_rate: u32,
        duration_secs: f64,
        width: usize,
        height: usize,
    ) -> StreamingOverview {
        let kernel = ColumnKernel::new(planner, sample_rate, height);
        let first_frame = vec![0.0; kernel.n_fft];
        let frame_starts = (0..width)
            .map(|c| kernel.frame_start(sample_rate, 0.0, duration_secs, width, c))
            .collect();
        StreamingOverview {
            buffers: kernel.buffers(),
            kernel,
            spec: Spectrogram::floor(
                width,
                height,
                FreqAxis::Linear {
                    max_hz: sample_rate as f32 / 2.0,
                },
                0.0,
                duration_secs,
                Transform::Stft,
            ),
            frame_starts,
            held: false,
            first_frame,
            expected_samples: (duration_secs * sample_rate as f64).round() as u64,
            column_samples: duration_secs * sample_rate as f64 / width as f64,
        }
    }

    /// The first sample a column still to do needs (earlier ones may be dropped).
    fn needed_from(&self) -> u64 {
        self.frame_starts
            .get(self.next_frame())
            .map_or(u64::MAX, |&start| start.max(0) as u64)
    }

    /// Drops the samples at the front of `pending` (which starts at sample `pending_start`)
    /// that no column still to do needs.
    fn release(&self, pending_start: &mut u64, pending: &mut Vec<f32>) {
        let drop = self
            .needed_from()
            .saturating_sub(*pending_start)
            .min(pending.len() as u64);
        pending.drain(..drop as usize);
        *pending_start += drop;
    }

    /// The column whose frame is to be loaded next: the first not done, or the one after it
    /// when that one's frame already waits in the pair.
    fn next_frame(&self) -> usize {
        self.spec.columns_done + usize::from(self.held)
    }

    /// Computes every column whose frame lies within `pending` (samples from
    /// `pending_start`); at the end of the stream (`eof`) all remaining ones, zero-padded.
    /// Columns go by pairs as in [`Planner::stft`]: the first frame of a pair is loaded (and
    /// its samples may be dropped) before the second has arrived.
    fn advance(&mut self, pending_start: u64, pending: &[f32], eof: bool) {
        let pending_end = pending_start as i64 + pending.len() as i64;
        let n_fft = self.kernel.n_fft as i64;
        let width = self.spec.width;
        while let Some(&first) = self.frame_starts.get(self.next_frame()) {
            if !eof && first + n_fft > pending_end {
                break;
            }
            let relative = first - pending_start as i64;
            if !self.held {
                super::read_slice(pending, relative, &mut self.first_frame);
                self.held = true;
                if self.next_frame() < width {
                    continue;
                }
                // An odd last column: its partner is silence.
                self.kernel
                    .load(&mut self.buffers, (&self.first_frame, 0), (&[], 0));
            } else {
                self.kernel.load(
                    &mut self.buffers,
                    (&self.first_frame, 0),
                    (pending, relative),
                );
            }
            let column = self.spec.columns_done;
            let rows = self.kernel.columns(&mut self.buffers);
            for (row, pair) in rows.iter().enumerate() {
                for (column, &value) in (column..width).zip(pair) {
                    self.spec.db[row * width + column] = value;
                }
            }
            self.spec.columns_done = (column + 2).min(width);
            self.held = false;
        }
    }
}

/// Removes partial files whose writing process no longer exists.
fn sweep_dead_partials(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = partial_pid(&name) else {
            continue;
        };
        if pid != std::process::id() && !process_exists(pid) {
            log::debug!(
                "removing an abandoned partial audio cache: {}",
                entry.path().display()
            );
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// The writer's pid in a partial file's name `.<key>.f32.partial-<pid>-<n>`.
fn partial_pid(name: &OsString) -> Option<u32> {
    let name = name.to_str()?;
    let rest = &name[name.find(PARTIAL_MARKER)? + PARTIAL_MARKER.len()..];
    rest.split('-').next()?.parse().ok()
}

fn process_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks whether the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Removes complete cache files, least recently used first, until the rest fit in
/// `budget_bytes`; `keep` is never removed.
fn evict(dir: &Path, keep: &Path, budget_bytes: u64) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(SystemTime, u64, PathBuf)> = entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let bytes = name.as_bytes();
            !bytes.starts_with(b".") && bytes.ends_with(b".f32")
        })
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            Some((meta.modified().ok()?, meta.len(), e.path()))
        })
        .collect();
    files.sort_by_key(|f| std::cmp::Reverse(f.0));
    let mut total = 0u64;
    for (_, len, path) in files {
        total += len;
        if total > budget_bytes && path != keep {
            log::debug!("evicting audio cache file: {}", path.display());
            let _ = fs::remove_file(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_signals::peak_row;
    use super::super::{DB_FLOOR, viewport};
    use super::*;
    use crate::media::test_support::{ffmpeg, tools};

    /// A 3 s clip: small video plus a 1 kHz sine (−18 dBFS, lavfi's default amplitude) at
    /// 16 kHz, FLAC in Matroska.
    fn sine_clip(dir: &Path) -> PathBuf {
        let path = dir.join("sine clip.mkv");
        ffmpeg(
            &tools(),
            &[
                "-f",
                "lavfi",
                "-i",
                "testsrc=size=64x36:rate=5",
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=1000:sample_rate=16000",
            ],
            &["-t", "3", "-c:v", "ffv1", "-c:a", "flac"],
            &path,
        );
        path
    }

    fn open(
        input: &Path,
        cache: &Path,
        overviews: &mut Vec<Spectrogram>,
    ) -> Result<AudioCache, SpectrumError> {
        AudioCache::open_in(
            &tools(),
            input,
            cache,
            60,
            81,
            &AtomicBool::new(false),
            &mut |spec| overviews.push(spec.clone()),
        )
    }

    #[test]
    fn decodes_streams_the_overview_and_reuses_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let input = sine_clip(dir.path());
        let cache_dir = dir.path().join("cache");
        let mut overviews = Vec::new();
        let cache = open(&input, &cache_dir, &mut overviews).unwrap();
        assert_eq!(cache.sample_rate(), 16_000);
        assert!(
            (cache.duration_secs() - 3.0).abs() < 0.05,
            "{}",
            cache.duration_secs()
        );
        let last = overviews.last().unwrap();
        assert_eq!(last.columns_done, 60);
        assert!(
            overviews
                .windows(2)
                .all(|w| w[0].columns_done <= w[1].columns_done)
        );
        for column in 1..59 {
            let row = peak_row(last, column);
            assert!(
                (last.row_hz(row) - 1000.0).abs() <= 100.0,
                "column {column}"
            );
            let db = last.db[row * 60 + column];
            assert!((-19.5..=-17.0).contains(&db), "{db} dB");
        }
        // Only the complete file is left, under its final name.
        let names: Vec<_> = fs::read_dir(&cache_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert_eq!(cache.path().parent(), Some(cache_dir.as_path()));

        // Viewports read from the cache: CWT for 1 s, STFT for 40 s (past the end = floor).
        let cwt = viewport(&cache, 1.0, 2.0, 50, 60, &AtomicBool::new(false)).unwrap();
        assert_eq!(cwt.transform, Transform::Cwt);
        let target = cwt.freq_axis.hz_to_row(1000.0, 60);
        assert!((peak_row(&cwt, 25) as f32 - target).abs() <= 1.0);
        let stft = viewport(&cache, 0.0, 40.0, 40, 30, &AtomicBool::new(false)).unwrap();
        assert_eq!(stft.transform, Transform::Stft);
        assert!(
            stft.db[stft.width - 1..]
                .iter()
                .step_by(stft.width)
                .all(|&v| v == DB_FLOOR)
        );

        // The next open reuses the same file (same inode) and gives the same overview.
        let inode = fs::metadata(cache.path()).unwrap().ino();
        let mut again = Vec::new();
        let reused = open(&input, &cache_dir, &mut again).unwrap();
        assert_eq!(fs::metadata(reused.path()).unwrap().ino(), inode);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].columns_done, 60);
        for column in 0..60 {
            assert_eq!(peak_row(&again[0], column), peak_row(last, column));
        }
    }

    #[test]
    fn a_damaged_cache_file_is_redone_and_dead_partials_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let input = sine_clip(dir.path());
        let cache_dir = dir.path().join("cache");
        let first = open(&input, &cache_dir, &mut Vec::new()).unwrap();
        let path = first.path().to_path_buf();
        drop(first);
        // Truncated: the header's count no longer matches.
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(1000).unwrap();
        // A partial file of a process that no longer exists.
        let dead = cache_dir.join(format!(".abc{PARTIAL_MARKER}{}-0", i32::MAX));
        fs::write(&dead, b"junk").unwrap();
        let redone = open(&input, &cache_dir, &mut Vec::new()).unwrap();
        assert!((redone.duration_secs() - 3.0).abs() < 0.05);
        assert!(!dead.exists());
        assert_eq!(fs::read_dir(&cache_dir).unwrap().count(), 1);
    }

    #[test]
    fn a_file_without_audio_is_no_audio() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("video only.mkv");
        ffmpeg(
            &tools(),
            &["-f", "lavfi", "-i", "testsrc=size=64x36:rate=5"],
            &["-t", "1", "-c:v", "ffv1"],
            &input,
        );
        let result = open(&input, &dir.path().join("cache"), &mut Vec::new());
        assert!(matches!(result, Err(SpectrumError::NoAudio)), "{result:?}");
    }

    #[test]
    fn cancelled_and_failed_opens_leave_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let input = sine_clip(dir.path());
        let cache_dir = dir.path().join("cache");
        let result = AudioCache::open_in(
            &tools(),
            &input,
            &cache_dir,
            10,
            10,
            &AtomicBool::new(true),
            &mut |_| {},
        );
        assert!(
            matches!(result, Err(SpectrumError::Cancelled)),
            "{result:?}"
        );
        assert_eq!(fs::read_dir(&cache_dir).map_or(0, |d| d.count()), 0);

        let missing = open(&dir.path().join("nope.mkv"), &cache_dir, &mut Vec::new());
        let message = missing.unwrap_err().to_string();
        assert!(message.starts_with("cannot read the input: "), "{message}");
        assert!(message.ends_with("nope.mkv"), "{message}");

        let garbage = dir.path().join("garbage.mkv");
        fs::write(&garbage, vec![7u8; 4096]).unwrap();
        let result = open(&garbage, &cache_dir, &mut Vec::new());
        assert!(
            matches!(result, Err(SpectrumError::Decode(_))),
            "{result:?}"
        );
    }

    #[test]
    fn probe_output_is_parsed() {
        let path = Path::new("/x.mkv");
        let probe = parse_probe(
            r#"{"programs":[],"streams":[{"sample_rate":"48000"}],"format":{"duration":"12.5"}}"#,
            path,
        )
        .unwrap();
        assert_eq!(
            probe,
            AudioProbe {
                sample_rate: 48_000,
                duration_secs: Some(12.5)
            }
        );
        let probe = parse_probe(
            r#"{"streams":[{"sample_rate":"44100","duration":"3.0"}],"format":{}}"#,
            path,
        )
        .unwrap();
        assert_eq!(probe.duration_secs, Some(3.0));
        assert!(matches!(
            parse_probe(r#"{"streams":[],"format":{"duration":"1"}}"#, path),
            Err(SpectrumError::NoAudio)
        ));
        assert!(matches!(
            parse_probe("nope", path),
            Err(SpectrumError::Decode(_))
        ));
    }

    #[test]
    fn streaming_overview_equals_the_stft_of_the_same_span() {
        use super::super::SliceSource;
        let rate = 8000;
        let samples = super::super::test_signals::chirp(200.0, 3000.0, rate, 5.0);
        let mut planner = Planner::new();
        // Dense frames, an odd last column, and frames far apart (most samples skipped).
        for width in [70, 71, 7] {
            let mut streaming = StreamingOverview::new(&mut planner, rate, 5.0, width, 40);
            let mut pending: Vec<f32> = Vec::new();
            let mut pending_start = 0u64;
            for chunk in samples.chunks(3001) {
                pending.extend_from_slice(chunk);
                streaming.advance(pending_start, &pending, false);
                streaming.release(&mut pending_start, &mut pending);
                assert!(pending.len() < 3001 + streaming.kernel.n_fft);
            }
            streaming.advance(pending_start, &pending, true);
            let source = SliceSource {
                samples: &samples,
                sample_rate: rate,
            };
            let direct = planner
                .stft(&source, 0.0, 5.0, width, 40, &AtomicBool::new(false))
                .unwrap();
            assert_eq!(streaming.spec, direct, "width {width}");
        }
    }

    /// A cache file written by hand (header and samples), opened as a complete one.
    fn cache_file(dir: &Path, samples: &[f32], rate: u32) -> AudioCache {
        let path = dir.join("hand.f32");
        let mut bytes = header(rate, samples.len() as u64).to_vec();
        bytes.extend(samples.iter().flat_map(|s| s.to_le_bytes()));
        fs::write(&path, bytes).unwrap();
        AudioCache::reuse(&path)
            .unwrap()
            .expect("a valid cache file")
    }

    /// Only [`SampleSource::read`], as a source that is not mapped.
    struct ReadOnly<'a>(&'a AudioCache);

    impl SampleSource for ReadOnly<'_> {
        fn sample_rate(&self) -> u32 {
            self.0.sample_rate
        }
        fn len_samples(&self) -> u64 {
            self.0.len_samples
        }
        fn read(&self, start: i64, out: &mut [f32]) -> Result<(), SpectrumError> {
            self.0.read_at(start, out)
        }
    }

    #[test]
    fn the_mapped_file_reads_like_pread_and_gives_the_same_images() {
        let rate = 8000;
        let dir = tempfile::tempdir().unwrap();
        let samples = super::super::test_signals::noise(0.7, rate as usize * 40 + 13, 3);
        let cache = cache_file(dir.path(), &samples, rate);
        assert_eq!(cache.samples(), Some(samples.as_slice()));
        let total = samples.len() as i64;
        for (start, len) in [
            (0, 1),
            (-5, 20),
            (1234, 4096),
            (total - 7, 30),
            (total + 3, 8),
            (-100, 50),
            (-10, total as usize + 20),
        ] {
            let mut mapped = vec![f32::NAN; len];
            let mut pread = vec![f32::NAN; len];
            cache.read(start, &mut mapped).unwrap();
            cache.read_at(start, &mut pread).unwrap();
            assert_eq!(mapped, pread, "{start} +{len}");
        }
        // Frames from the map, from one read per block (dense) and one read per frame
        // (sparse), past both ends too: the same images.
        let cancel = AtomicBool::new(false);
        let mut planner = Planner::new();
        for (start, end, width) in [(-1.0, 39.0, 301), (2.0, 3.0, 64), (-3.0, 45.0, 9)] {
            let mapped = planner
                .stft(&cache, start, end, width, 50, &cancel)
                .unwrap();
            let read = planner
                .stft(&ReadOnly(&cache), start, end, width, 50, &cancel)
                .unwrap();
            assert_eq!(mapped, read, "{start}..{end} × {width}");
        }
    }

    #[test]
    fn the_cache_can_live_in_a_worker_thread() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<AudioCache>();
        send_sync::<Spectrogram>();
        send_sync::<SpectrumError>();
    }

    #[test]
    fn eviction_keeps_the_newest_within_budget() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        for (i, name) in ["a.f32", "b.f32", "c.f32"].iter().enumerate() {
            let path = dir.path().join(name);
            fs::write(&path, vec![0u8; 100]).unwrap();
            let file = File::options().write(true).open(&path).unwrap();
            file.set_modified(now - Duration::from_secs(100 * (3 - i as u64)))
                .unwrap();
        }
        fs::write(dir.path().join(".x.f32.partial-1-0"), b"p").unwrap();
        evict(dir.path(), &dir.path().join("a.f32"), 150);
        assert!(dir.path().join("a.f32").exists(), "kept though oldest");
        assert!(!dir.path().join("b.f32").exists());
        assert!(dir.path().join("c.f32").exists());
        assert!(dir.path().join(".x.f32.partial-1-0").exists());
    }
}
