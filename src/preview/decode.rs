//! Frame extraction for previews: the decoded frame at an index ("before") and what the
//! engine makes of it ("after"), with the caches that make the next request fast.
//!
//! Two ways to the decoded frame. Normally the [`Seeker`] (a warm ffmpeg per input that seeks
//! on command) and its [`FrameStore`]: a request is served from the store, else by reading on
//! or seeking to the keyframe before the frame; while no request waits, the worker makes the
//! next and previous frames' images and prefetches the next frames and (on a second seeker)
//! the group of pictures before the current one. A warm converter ffmpeg
//! (raw frames on stdin) then writes both images. Inputs the seeker cannot serve (rotated,
//! untimestamped, unusual pixel formats, or a seek that missed) use the file decoder: one
//! ffmpeg decoding from just before the frame (input `-ss` half-way between the previous
//! frame's time and this one's, with `-copyts`, exactly as the pipeline's chunks seek), kept
//! running so stepping forward reads on instead of seeking again.
//!
//! Either way the images come from the same filter graph: the decoded frame as RGBA on stdout,
//! and on fd 3 either the Lanczos-scaled frame as RGBA (ffmpeg engines: the pipeline's own
//! `scale=W:H:flags=…` on the decoded frame) or the decoded frame as yuv420p for a frame engine
//! ([`Upscaler`]), whose output is converted to RGBA by ffmpeg.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, RecvTimeoutError, bounded};

use super::RgbaImage;
use super::seek::{FrameStore, Seeker, raw_frame_len, read_until};
use crate::engine::{self, ColorMatrix, EngineKind, Frame, FrameSetup, Upscaler};
use crate::media::frames::{FrameTimes, TimestampSource, frame_times};
use crate::media::probe::{MediaInfo, probe};
use crate::media::process::{self, Spawned};
use crate::media::tools::{Tools, file_arg};

/// How often a wait checks for cancellation.
const CANCEL_POLL: Duration = Duration::from_millis(2);
/// A running decoder is read forward (frames skipped) rather than restarted when the wanted
/// frame is at most this far ahead of it. Skipped frames are scaled too, so keep it small.
const MAX_FORWARD_SKIP: u64 = 3;
/// Inputs whose probe and frame list are kept.
const INPUTS_KEPT: usize = 4;
/// Memory for decoded frames kept around the cursor (~130 frames of 1080p 8-bit 4:2:0).
const FRAME_STORE_BYTES: usize = 400 << 20;
/// A seek may first deliver frames decoded before it took effect (ffmpeg reads its commands
/// every 100 ms at most), and may land a little early: this many frames beyond the distance
/// from the keyframe are read before the seek is given up as failed.
const SEEK_SLACK: u64 = 64;
/// Frames read on (rather than sought) when the wanted frame is this close ahead.
const READ_ON_MAX: u64 = 12;
/// Frames decoded ahead of the last one asked for while the user looks.
const PREFETCH_AHEAD: u64 = 12;

/// Why a frame preview did not produce images.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("cancelled")]
    Cancelled,
    /// User-facing text.
    #[error("{0}")]
    Failed(String),
}

impl FrameError {
    pub(super) fn failed(e: impl std::fmt::Display) -> Self {
        FrameError::Failed(e.to_string())
    }
}

/// What the worker sends back for a frame.
#[derive(Debug)]
pub struct FramePreview {
    pub before: RgbaImage,
    pub after: RgbaImage,
    pub frame_index: u64,
    /// Seconds from the start of the file.
    pub time_secs: f64,
}

/// The probe and frame list of one input.
#[derive(Debug)]
pub struct InputInfo {
    pub info: MediaInfo,
    pub times: FrameTimes,
}

/// An input as found on disk: a changed file is probed again.
#[derive(Debug, Clone, PartialEq, Eq)]
struct InputKey {
    path: PathBuf,
    size_bytes: u64,
    modified: Option<SystemTime>,
}

impl InputKey {
    fn of(path: &Path) -> Result<InputKey, FrameError> {
        let path = std::path::absolute(path).map_err(|e| {
            FrameError::Failed(format!("cannot resolve the path ({e}): {}", path.display()))
        })?;
        let meta = std::fs::metadata(&path).map_err(|e| {
            FrameError::Failed(format!("cannot read the video ({e}): {}", path.display()))
        })?;
        Ok(InputKey {
            size_bytes: meta.len(),
            modified: meta.modified().ok(),
            path,
        })
    }
}

/// Filled by a loader thread; waited on with cancellation checks.
#[derive(Default)]
struct Slot {
    result: Mutex<Option<Result<Arc<InputInfo>, String>>>,
    ready: Condvar,
}

/// Which second stream the decoder writes on fd 3.
#[derive(Debug, Clone, PartialEq)]
enum After {
    /// `scale=W:H:flags=<flags>` then RGBA.
    Scale {
        width: u32,
        height: u32,
        flags: &'static str,
    },
    /// The decoded frame as yuv420p, for a frame engine.
    Yuv420p,
}

/// Where a [`Decoder`] takes its frames from.
#[derive(Debug, Clone, PartialEq)]
enum Source {
    /// The input file, from frame `frame_index` on.
    File { frame_index: u64 },
    /// Raw frames written to its stdin one at a time ([`Decoder::render`]): decoded frames
    /// from the [`Seeker`], in the decoder's pixel format, tagged with the stream's colour
    /// range and matrix as the decoder tags them.
    Raw {
        pix_fmt: String,
        width: u32,
        height: u32,
        params: String,
    },
}

/// A running ffmpeg writing the before and after images of each frame it gets: decoding the
/// input (positioned at `next_index`), or converting raw frames fed to it.
struct Decoder {
    input: InputKey,
    after: After,
    next_index: u64,
    before_len: usize,
    after_len: usize,
    before_rx: Receiver<Vec<u8>>,
    after_rx: Receiver<Vec<u8>>,
    stdin: Option<ChildStdin>,
    child: Spawned,
}

/// A frame's before and after pixels (RGBA; the after of a frame engine is yuv420p).
type Images = (Vec<u8>, Vec<u8>);

/// A frame engine instance and the settings it was made for: the engine (with its models
/// folder), scale (bits), denoise.
type LoadedEngine = (engine::EngineInfo, u64, Option<u8>, Box<dyn Upscaler>);

/// The frame lane's state: kept between requests while the worker is warm.
pub struct FramePreviewer {
    tools: Tools,
    inputs: VecDeque<(InputKey, Arc<Slot>)>,
    decoder: Option<Decoder>,
    /// The last frame engine used, with its settings.
    engine: Option<LoadedEngine>,
    /// The seeker, frame store and converter of the input last shown.
    fast: Option<FastPath>,
    /// False when `REFRAME_PREVIEW_SEEKER=0`: every input goes through [`Source::File`] (the
    /// benchmark's baseline; a way out should a source confuse the seeker).
    seeking: bool,
}

impl FramePreviewer {
    pub fn new(tools: Tools) -> Self {
        Self {
            tools,
            inputs: VecDeque::new(),
            decoder: None,
            engine: None,
            fast: None,
            seeking: std::env::var_os("REFRAME_PREVIEW_SEEKER").is_none_or(|v| v != "0"),
        }
    }

    /// Starts loading an input's probe and frame list in the background (or finds it loaded).
    fn slot(&mut self, key: &InputKey) -> Arc<Slot> {
        if let Some((_, slot)) = self.inputs.iter().find(|(k, _)| k == key) {
            return Arc::clone(slot);
        }
        let slot = Arc::new(Slot::default());
        let (tools, path, filled) = (self.tools.clone(), key.path.clone(), Arc::clone(&slot));
        let spawned = std::thread::Builder::new()
            .name("preview-probe".into())
            .spawn(move || {
                let result = probe(&tools, &path)
                    .and_then(|info| {
                        let times = frame_times(&tools, &path, info.video.index)?;
                        Ok(Arc::new(InputInfo { info, times }))
                    })
                    .map_err(|e| format!("{e}"));
                let mut guard = filled.result.lock().unwrap_or_else(|p| p.into_inner());
                *guard = Some(result);
                filled.ready.notify_all();
            });
        if let Err(e) = spawned {
            let mut guard = slot.result.lock().unwrap_or_else(|p| p.into_inner());
            *guard = Some(Err(format!("cannot start a thread: {e}")));
        }
        self.inputs.push_back((key.clone(), Arc::clone(&slot)));
        while self.inputs.len() > INPUTS_KEPT {
            self.inputs.pop_front();
        }
        slot
    }

    /// The probe and frame list of `key`, loaded once per input. A cancel returns at once;
    /// the loading goes on, so the next request finds it done.
    fn input_info(
        &mut self,
        key: &InputKey,
        cancel: &AtomicBool,
    ) -> Result<Arc<InputInfo>, FrameError> {
        let slot = self.slot(key);
        let mut guard = slot.result.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(result) = guard.as_ref() {
                let result = result.clone();
                drop(guard);
                if result.is_err() {
                    // Do not keep a failure: the file may be fixed or finish copying.
                    self.inputs.retain(|(k, _)| k != key);
                }
                return result.map_err(FrameError::Failed);
            }
            if cancel.load(Ordering::Relaxed) {
                return Err(FrameError::Cancelled);
            }
            guard = slot
                .ready
                .wait_timeout(guard, CANCEL_POLL)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Loads an input's probe and frame list ahead of a request (e.g. when a file is chosen).
    pub fn warm(&mut self, input: &Path) {
        if let Ok(key) = InputKey::of(input) {
            self.slot(&key);
        }
    }

    /// Before and after images of frame `frame_index` (`engine`, `scale` and `denoise` as
    /// [`engine::resolve_in`] checked them). With a frame engine, `on_before` gets the "before"
    /// image and the frame's time as soon as they are known, before the engine runs.
    #[allow(clippy::too_many_arguments)]
    pub fn preview(
        &mut self,
        input: &Path,
        frame_index: u64,
        engine: &engine::EngineInfo,
        scale: f64,
        denoise: Option<u8>,
        cancel: &AtomicBool,
        on_before: &mut dyn FnMut(&RgbaImage, f64),
    ) -> Result<FramePreview, FrameError> {
        let key = InputKey::of(input)?;
        let loaded = self.input_info(&key, cancel)?;
        let count = loaded.times.len() as u64;
        let Some(frame) = loaded.times.frames.get(frame_index as usize).copied() else {
            return Err(FrameError::Failed(format!(
                "frame {frame_index} is past the end: the video has {count} frames (0 to {})",
                count.saturating_sub(1)
            )));
        };
        let (src_w, src_h) = loaded.info.video.display_size();
        let after = match engine.kind {
            EngineKind::FfmpegScale { flags } => {
                let (width, height) =
                    crate::pipeline::engine_output_size((src_w, src_h), Some(scale), None)
                        .map_err(FrameError::failed)?;
                After::Scale {
                    width,
                    height,
                    flags,
                }
            }
            EngineKind::Frames => After::Yuv420p,
        };

        let (before_px, after_px) =
            match self.fast_images(&key, &loaded, frame_index, &after, cancel) {
                Ok(Some(pair)) => pair,
                Ok(None) => self.file_images(&key, &loaded, frame_index, &after, cancel)?,
                Err(FrameError::Cancelled) => return Err(FrameError::Cancelled),
                Err(FrameError::Failed(why)) => {
                    // The file path decodes anything ffmpeg can; use it for this input from now on.
                    log::warn!("seeking decoder failed, decoding from the file instead: {why}");
                    if let Some(fast) = self.fast.as_mut() {
                        fast.failed = true;
                        fast.seeker = None;
                        fast.renderer = None;
                        fast.store.clear();
                    }
                    self.file_images(&key, &loaded, frame_index, &after, cancel)?
                }
            };
        let before = RgbaImage {
            width: src_w,
            height: src_h,
            pixels: before_px,
        };
        let time_secs = (frame.time_secs - loaded.info.start_time_secs).max(0.0);
        let after = match after {
            After::Scale { width, height, .. } => RgbaImage {
                width,
                height,
                pixels: after_px,
            },
            After::Yuv420p => {
                // A frame engine takes long (seconds on the CPU): the frame itself first.
                on_before(&before, time_secs);
                let matrix =
                    ColorMatrix::for_source(loaded.info.video.color_space.as_deref(), src_h);
                let upscaler = self.upscaler(engine, scale, denoise, matrix)?;
                let out = upscaler
                    .process(&Frame {
                        width: src_w,
                        height: src_h,
                        data: after_px,
                    })
                    .map_err(|e| FrameError::Failed(format!("the engine failed: {e:#}")))?;
                if cancel.load(Ordering::Relaxed) {
                    return Err(FrameError::Cancelled);
                }
                yuv420p_to_rgba(&self.tools, &out)?
            }
        };
        Ok(FramePreview {
            before,
            after,
            frame_index,
            time_secs,
        })
    }

    /// Both images of frame `frame_index` from an ffmpeg decoding the file (kept running, so
    /// the next frames are read on rather than sought).
    fn file_images(
        &mut self,
        key: &InputKey,
        loaded: &InputInfo,
        frame_index: u64,
        after: &After,
        cancel: &AtomicBool,
    ) -> Result<Images, FrameError> {
        let reusable = self.decoder.as_ref().is_some_and(|d| {
            d.input == *key
                && d.after == *after
                && frame_index >= d.next_index
                && frame_index - d.next_index <= MAX_FORWARD_SKIP
        });
        if !reusable {
            // Dropping the old decoder kills and reaps it.
            self.decoder = None;
            self.decoder = Some(Decoder::start(
                &self.tools,
                key,
                loaded,
                Source::File { frame_index },
                after.clone(),
            )?);
        }
        let Some(decoder) = self.decoder.as_mut() else {
            return Err(FrameError::Failed("the decoder did not start".into()));
        };
        let read = (|| {
            while decoder.next_index < frame_index {
                decoder.read(cancel)?;
            }
            decoder.read(cancel)
        })();
        if read.is_err() {
            // A half-read decoder is out of step: never reuse it.
            self.decoder = None;
        }
        read
    }

    /// Both images of frame `frame_index` through the seeker, its frame store and a converter;
    /// `None` when this input is not one the seeker handles (see [`seek_layout`]).
    fn fast_images(
        &mut self,
        key: &InputKey,
        loaded: &InputInfo,
        frame_index: u64,
        after: &After,
        cancel: &AtomicBool,
    ) -> Result<Option<Images>, FrameError> {
        let Some((pix_fmt, size)) = seek_layout(loaded).filter(|_| self.seeking) else {
            return Ok(None);
        };
        if self.fast.as_ref().is_none_or(|f| f.input != *key) {
            self.fast = None;
            self.fast = Some(FastPath::new(key, pix_fmt, size));
        }
        let Some(fast) = self.fast.as_mut() else {
            return Ok(None);
        };
        if fast.failed {
            return Ok(None);
        }
        let ready = fast
            .rendered
            .iter()
            .position(|(i, a, _)| *i == frame_index && a == after);
        let started = Instant::now();
        let pair = match ready.and_then(|at| fast.rendered.remove(at)) {
            Some((_, _, pair)) => pair,
            None => {
                let frame = fast.frame(&self.tools, loaded, frame_index, cancel)?;
                let decoded = started.elapsed();
                let pair = fast.render(&self.tools, loaded, after, &frame, cancel)?;
                log::debug!(
                    "frame {frame_index}: decoded in {:.0} ms, images in {:.0} ms",
                    decoded.as_secs_f64() * 1000.0,
                    (started.elapsed() - decoded).as_secs_f64() * 1000.0
                );
                pair
            }
        };
        fast.plan_prefetch(loaded, frame_index);
        Ok(Some(pair))
    }

    /// Decodes ahead of the user while no request waits: the frames after the last one asked
    /// for, then the group of pictures before it. One frame per call; `stop` interrupts the
    /// wait for it. False when there is nothing (more) to do.
    pub fn prefetch_step(&mut self, stop: &AtomicBool) -> bool {
        let Some(fast) = self.fast.as_mut() else {
            return false;
        };
        let Some(loaded) =
            self.inputs
                .iter()
                .find(|(k, _)| *k == fast.input)
                .and_then(|(_, slot)| {
                    let guard = slot.result.lock().unwrap_or_else(|p| p.into_inner());
                    guard.as_ref().and_then(|r| r.as_ref().ok().cloned())
                })
        else {
            return false;
        };
        match fast.prefetch_step(&self.tools, &loaded, stop) {
            Ok(more) => more,
            Err(e) => {
                if let FrameError::Failed(why) = e {
                    log::debug!("prefetch stopped: {why}");
                    fast.prefetch = Prefetch::default();
                    fast.seeker = None;
                    fast.back_seeker = None;
                }
                false
            }
        }
    }

    fn upscaler(
        &mut self,
        engine: &engine::EngineInfo,
        scale: f64,
        denoise: Option<u8>,
        matrix: ColorMatrix,
    ) -> Result<&mut Box<dyn Upscaler>, FrameError> {
        // The same engine from another models folder is another model.
        let same = self.engine.as_ref().is_some_and(|(info, s, d, _)| {
            info == engine && *s == scale.to_bits() && *d == denoise
        });
        if !same {
            self.engine = None;
            let setup = FrameSetup {
                scale: engine.engine_scale(scale),
                denoise,
                matrix,
            };
            let instance = engine
                .instantiate(&setup)
                .map_err(|e| FrameError::Failed(format!("{e:#}")))?;
            self.engine = Some((engine.clone(), scale.to_bits(), denoise, instance));
        }
        match self.engine.as_mut() {
            Some((_, _, _, instance)) => Ok(instance),
            None => Err(FrameError::Failed("the engine is not loaded".into())),
        }
    }
}

impl Decoder {
    fn start(
        tools: &Tools,
        key: &InputKey,
        loaded: &InputInfo,
        source: Source,
        after: After,
    ) -> Result<Decoder, FrameError> {
        let (src_w, src_h) = loaded.info.video.display_size();
        let mut cmd = Command::new(&tools.ffmpeg);
        cmd.args(["-hide_banner", "-nostdin", "-nostats", "-loglevel", "error"]);
        let input_label = match &source {
            Source::File { frame_index } => {
                let index = *frame_index as usize;
                if index > 0 {
                    // Half-way between the previous frame and this one: a rounded timestamp
                    // can neither keep the previous frame nor drop this one (the pipeline
                    // seeks the same way).
                    let frames = &loaded.times.frames;
                    let seek = (frames[index - 1].time_secs + frames[index].time_secs) / 2.0;
                    let from_start = (seek - loaded.info.start_time_secs).max(0.0);
                    cmd.args(["-ss", &format!("{from_start:.6}")]);
                }
                cmd.arg("-copyts").arg("-i").arg(file_arg(&key.path));
                format!("[0:{}]", loaded.info.video.index)
            }
            Source::Raw {
                pix_fmt,
                width,
                height,
                params,
            } => {
                // Nothing to probe: every parameter is given, and probing would wait for
                // frames that only come with the first request.
                cmd.args([
                    "-fpsprobesize",
                    "0",
                    "-probesize",
                    "32",
                    "-analyzeduration",
                    "0",
                ]);
                cmd.args(["-f", "rawvideo", "-pix_fmt", pix_fmt, "-video_size"]);
                cmd.arg(format!("{width}x{height}"));
                cmd.args(["-framerate", "25", "-i", "pipe:0"]);
                format!("[0:v]{params}")
            }
        };
        // Every conversion is an explicit `scale` after the split: `split` shares one format
        // across its outputs, and a bare `format=rgba` branch would make ffmpeg convert before
        // the split, so the engine would scale RGBA instead of the decoded frame.
        let second = match &after {
            After::Scale {
                width,
                height,
                flags,
            } => {
                // The engine's output keeps the decoded frame's format (what the encoder gets).
                let pix_fmt = loaded
                    .info
                    .video
                    .pix_fmt
                    .as_deref()
                    .filter(|p| p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or("yuv420p");
                format!("scale={width}:{height}:flags={flags},format={pix_fmt},scale,format=rgba")
            }
            After::Yuv420p => "scale,format=yuv420p".to_owned(),
        };
        let graph =
            format!("{input_label}split=2[b][a];[b]scale,format=rgba[before];[a]{second}[after]");
        cmd.args(["-filter_complex", &graph]);
        for (label, target) in [("[before]", "pipe:1"), ("[after]", "pipe:3")] {
            // One encoder thread: a frame-threaded rawvideo encoder holds each frame back
            // until the next one arrives.
            cmd.args(["-map", label, "-threads", "1", "-fps_mode", "passthrough"]);
            cmd.args(["-f", "rawvideo", target]);
        }
        cmd.stdout(Stdio::piped());

        let (fd3_reader, fd3_writer) = std::io::pipe()
            .map_err(|e| FrameError::Failed(format!("cannot create a pipe: {e}")))?;
        let fd = fd3_writer.as_raw_fd();
        // SAFETY: runs in the forked child before exec; dup2 and fcntl are async-signal-safe
        // and nothing is allocated. fd 3 becomes the pipe's write end, inherited by ffmpeg.
        unsafe {
            cmd.pre_exec(move || {
                if fd == 3 {
                    let flags = libc::fcntl(3, libc::F_GETFD);
                    if flags == -1 || libc::fcntl(3, libc::F_SETFD, flags & !libc::FD_CLOEXEC) == -1
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                } else if libc::dup2(fd, 3) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let (label, stdin) = match &source {
            Source::File { .. } => ("preview-decode", Stdio::null()),
            Source::Raw { .. } => ("preview-render", Stdio::piped()),
        };
        let mut child = process::spawn_with_stdin(cmd, label, stdin).map_err(FrameError::failed)?;
        // Only the child may hold the write end, or the reader never sees end of file.
        drop(fd3_writer);
        let stdin = child.take_stdin();
        let stdout = child
            .take_stdout()
            .ok_or_else(|| FrameError::Failed("the decoder has no output pipe".into()))?;

        let before_len = src_w as usize * src_h as usize * 4;
        let after_len = match &after {
            After::Scale { width, height, .. } => *width as usize * *height as usize * 4,
            After::Yuv420p => Frame::yuv420p_len(src_w, src_h),
        };
        enlarge_pipe(&stdout);
        enlarge_pipe(&fd3_reader);
        let before_rx = spawn_reader(stdout, before_len, "preview-before")?;
        let after_rx = spawn_reader(fd3_reader, after_len, "preview-after")?;
        let next_index = match &source {
            Source::File { frame_index } => *frame_index,
            Source::Raw { .. } => 0,
        };
        Ok(Decoder {
            input: key.clone(),
            after,
            next_index,
            before_len,
            after_len,
            before_rx,
            after_rx,
            stdin,
            child,
        })
    }

    /// The two images of one raw frame (a [`Source::Raw`] decoder).
    fn render(&mut self, frame: &[u8], cancel: &AtomicBool) -> Result<Images, FrameError> {
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(FrameError::Failed("the converter has no input pipe".into()));
        };
        // ffmpeg reads the whole frame before it writes anything, so this cannot deadlock
        // with the readers.
        if let Err(e) = stdin.write_all(frame).and_then(|()| stdin.flush()) {
            return Err(FrameError::Failed(format!(
                "the converter stopped ({e}): {}",
                self.child.stderr_tail()
            )));
        }
        self.read(cancel)
    }

    /// The next frame's two images.
    fn read(&mut self, cancel: &AtomicBool) -> Result<Images, FrameError> {
        let before = self.receive(true, cancel)?;
        let after = self.receive(false, cancel)?;
        self.next_index += 1;
        Ok((before, after))
    }

    fn receive(&mut self, before: bool, cancel: &AtomicBool) -> Result<Vec<u8>, FrameError> {
        let (rx, len) = if before {
            (&self.before_rx, self.before_len)
        } else {
            (&self.after_rx, self.after_len)
        };
        loop {
            if cancel.load(Ordering::Relaxed) {
                return Err(FrameError::Cancelled);
            }
            match rx.recv_timeout(CANCEL_POLL) {
                Ok(data) if data.len() == len => return Ok(data),
                Ok(_) => return Err(FrameError::Failed("the decoder sent a torn frame".into())),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.child.kill();
                    return Err(match self.child.wait() {
                        Err(e) => FrameError::Failed(format!("cannot decode this frame: {e}")),
                        Ok(()) => FrameError::Failed(format!(
                            "the video ended before frame {}: it may be damaged or cut",
                            self.next_index
                        )),
                    });
                }
            }
        }
    }
}

/// Asks for a 1 MiB pipe buffer (Linux allows that unprivileged; the default is 64 KiB):
/// images of tens of megabytes then cross in fewer, larger copies. Best effort.
pub(crate) fn enlarge_pipe(pipe: &impl AsRawFd) {
    // SAFETY: fcntl on a descriptor the caller owns; F_SETPIPE_SZ only resizes the buffer.
    let _ = unsafe { libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20) };
}

/// A thread reading whole frames of `len` bytes from `from` into a one-frame queue (so the
/// decoder runs at most a frame or two ahead of what is asked).
pub(super) fn spawn_reader(
    mut from: impl Read + Send + 'static,
    len: usize,
    name: &str,
) -> Result<Receiver<Vec<u8>>, FrameError> {
    let (tx, rx) = bounded::<Vec<u8>>(1);
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            while let Ok(data) = super::wire::read_exact_vec(&mut from, len) {
                if tx.send(data).is_err() {
                    return;
                }
            }
        })
        .map_err(|e| FrameError::Failed(format!("cannot start a thread: {e}")))?;
    Ok(rx)
}

/// The pixel format and size the seeker delivers for this input, when it can serve it: the
/// frames must be stored unrotated (the `movie` source does not rotate), timestamped (frames
/// are matched by pts), and in a format with a known raw layout.
fn seek_layout(loaded: &InputInfo) -> Option<(String, (u32, u32))> {
    let video = &loaded.info.video;
    if video.rotation_deg != 0
        || loaded.times.source == TimestampSource::Synthesized
        || loaded.times.is_empty()
    {
        return None;
    }
    let pix_fmt = video.pix_fmt.as_deref()?;
    raw_frame_len(pix_fmt, video.width, video.height)?;
    Some((pix_fmt.to_owned(), (video.width, video.height)))
}

/// `setparams=…,` giving raw frames the colour range and matrix the decoder gives them, so the
/// converter's RGBA equals the one made from decoded frames ("" when the stream has neither).
fn colour_params(loaded: &InputInfo) -> String {
    let video = &loaded.info.video;
    let known = |v: &Option<String>| {
        v.as_deref()
            .filter(|v| !matches!(*v, "unknown" | "reserved" | "unspecified"))
            .filter(|v| v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
            .map(str::to_owned)
    };
    let mut options = Vec::new();
    if let Some(range) = known(&video.color_range) {
        options.push(format!("range={range}"));
    }
    if let Some(space) = known(&video.color_space) {
        options.push(format!("colorspace={space}"));
    }
    if options.is_empty() {
        String::new()
    } else {
        format!("setparams={},", options.join(":"))
    }
}

/// The index of the frame with this pts.
fn index_of(times: &FrameTimes, pts: i64) -> Option<u64> {
    times
        .frames
        .binary_search_by_key(&pts, |f| f.pts)
        .ok()
        .map(|i| i as u64)
}

/// The last keyframe at or before `index` (0 when none is marked).
fn keyframe_before(times: &FrameTimes, index: u64) -> u64 {
    let end = (index as usize + 1).min(times.frames.len());
    times.frames[..end]
        .iter()
        .rposition(|f| f.keyframe)
        .unwrap_or(0) as u64
}

/// What [`FastPath::prefetch_step`] still has to do.
#[derive(Debug, Default)]
struct Prefetch {
    /// Read on up to this frame.
    forward_to: Option<u64>,
    /// Decode from keyframe `.0` up to frame `.1`; `.2` once the seek was sent, with the
    /// frames read since.
    back: Option<(u64, u64, Option<u64>)>,
    /// Frames whose images to make ahead (the neighbours of the one shown), once decoded.
    render: Vec<u64>,
}

/// Images made ahead of a request, kept for the neighbours of the frame shown.
const RENDERED_KEPT: usize = 2;

/// Frame previews of one input through a [`Seeker`], a [`FrameStore`] and a raw-frame
/// converter.
struct FastPath {
    input: InputKey,
    pix_fmt: String,
    size: (u32, u32),
    seeker: Option<Seeker>,
    /// The index of the frame the seeker delivers next, when known.
    seeker_next: Option<u64>,
    /// Decodes the group of pictures before the current one while the user looks.
    back_seeker: Option<Seeker>,
    store: FrameStore,
    renderer: Option<Decoder>,
    prefetch: Prefetch,
    /// Images made ahead, by frame index and the `After` they were made for.
    rendered: VecDeque<(u64, After, Images)>,
    /// The seeker could not serve this input: it goes through [`Source::File`].
    failed: bool,
}

impl FastPath {
    fn new(input: &InputKey, pix_fmt: String, size: (u32, u32)) -> FastPath {
        FastPath {
            input: input.clone(),
            pix_fmt,
            size,
            seeker: None,
            seeker_next: None,
            back_seeker: None,
            store: FrameStore::new(FRAME_STORE_BYTES),
            renderer: None,
            prefetch: Prefetch::default(),
            rendered: VecDeque::new(),
            failed: false,
        }
    }

    /// Starts a seeker (at frame 0) if there is none or it ended.
    fn ensure_seeker(&mut self, tools: &Tools, loaded: &InputInfo) -> Result<(), FrameError> {
        if !self.seeker.as_mut().is_some_and(Seeker::alive) {
            self.seeker = None;
            self.seeker = Some(self.start_seeker(tools, loaded)?);
            self.seeker_next = Some(0);
        }
        Ok(())
    }

    fn start_seeker(&self, tools: &Tools, loaded: &InputInfo) -> Result<Seeker, FrameError> {
        Seeker::start(
            tools,
            &self.input.path,
            loaded.info.video.index,
            &self.pix_fmt,
            self.size,
        )
    }

    /// The decoded frame `index`: from the store, else read on or sought by the seeker.
    fn frame(
        &mut self,
        tools: &Tools,
        loaded: &InputInfo,
        index: u64,
        cancel: &AtomicBool,
    ) -> Result<Arc<Vec<u8>>, FrameError> {
        self.prefetch = Prefetch::default();
        if let Some(frame) = self.store.get(index) {
            return Ok(frame);
        }
        self.ensure_seeker(tools, loaded)?;
        let times = &loaded.times;
        let keyframe = keyframe_before(times, index);
        let read_on = self
            .seeker_next
            .is_some_and(|next| index >= next && (keyframe <= next || index - next <= READ_ON_MAX));
        let next = self.seeker_next.take();
        let Some(seeker) = self.seeker.as_mut() else {
            return Err(FrameError::Failed("the seeker did not start".into()));
        };
        let (seek, max_frames) = match (read_on, next) {
            (true, Some(next)) => (None, index - next + SEEK_SLACK),
            _ => (
                Some(times.frames[keyframe as usize].pts),
                index - keyframe + SEEK_SLACK,
            ),
        };
        let lookup = |pts| index_of(times, pts);
        let frame = read_until(
            seeker,
            &mut self.store,
            seek,
            index,
            max_frames,
            &lookup,
            cancel,
        );
        if frame.is_ok() {
            self.seeker_next = Some(index + 1);
        } else if !seeker.alive() {
            self.seeker = None;
        }
        frame
    }

    /// The before and after images of a decoded frame.
    fn render(
        &mut self,
        tools: &Tools,
        loaded: &InputInfo,
        after: &After,
        frame: &[u8],
        cancel: &AtomicBool,
    ) -> Result<Images, FrameError> {
        if self.renderer.as_ref().is_none_or(|r| r.after != *after) {
            self.renderer = None;
            let source = Source::Raw {
                pix_fmt: self.pix_fmt.clone(),
                width: self.size.0,
                height: self.size.1,
                params: colour_params(loaded),
            };
            self.renderer = Some(Decoder::start(
                tools,
                &self.input,
                loaded,
                source,
                after.clone(),
            )?);
        }
        let Some(renderer) = self.renderer.as_mut() else {
            return Err(FrameError::Failed("the converter did not start".into()));
        };
        let rendered = renderer.render(frame, cancel);
        if rendered.is_err() {
            // Out of step (or dead): start a fresh one next time.
            self.renderer = None;
        }
        rendered
    }

    /// Makes frame `index`'s images with the converter of the last request and keeps them.
    /// Runs to the end even if a request comes meanwhile (a converter stopped half-way is out
    /// of step, and restarting it costs more than finishing).
    fn render_ahead(&mut self, index: u64) {
        let (Some(frame), Some(renderer)) = (self.store.get(index), self.renderer.as_mut()) else {
            return;
        };
        if self
            .rendered
            .iter()
            .any(|(i, a, _)| *i == index && *a == renderer.after)
        {
            return;
        }
        let after = renderer.after.clone();
        match renderer.render(&frame, &AtomicBool::new(false)) {
            Ok(pair) => {
                self.rendered.push_back((index, after, pair));
                while self.rendered.len() > RENDERED_KEPT {
                    self.rendered.pop_front();
                }
            }
            Err(e) => {
                log::debug!("rendering frame {index} ahead failed: {e}");
                self.renderer = None;
            }
        }
    }

    /// Plans the prefetch after frame `index` was shown: the frames just after it, then the
    /// group of pictures before its own, as far as the store holds them beside it.
    fn plan_prefetch(&mut self, loaded: &InputInfo, index: u64) {
        let times = &loaded.times;
        let last = times.len() as u64 - 1;
        let capacity = self
            .store
            .capacity(raw_frame_len(&self.pix_fmt, self.size.0, self.size.1).unwrap_or(1));
        let keyframe = keyframe_before(times, index);
        let ahead = PREFETCH_AHEAD.min(capacity as u64 / 4);
        let forward_to = (index + ahead).min(last);
        let mut plan = Prefetch {
            forward_to: (forward_to > index).then_some(forward_to),
            back: None,
            // The next frame first (→ is the commonest step), then the previous one (←).
            render: [
                index.checked_add(1).filter(|&i| i <= last),
                index.checked_sub(1),
            ]
            .into_iter()
            .flatten()
            .collect(),
        };
        if keyframe > 0 && !self.store.contains(keyframe - 1) {
            let previous = keyframe_before(times, keyframe - 1);
            let needed = (keyframe - previous) + (index - keyframe) + ahead;
            if needed <= capacity as u64 * 3 / 4 {
                plan.back = Some((previous, keyframe - 1, None));
            }
        }
        self.prefetch = plan;
    }

    /// One step of the planned prefetch; false when there is nothing more to do.
    fn prefetch_step(
        &mut self,
        tools: &Tools,
        loaded: &InputInfo,
        stop: &AtomicBool,
    ) -> Result<bool, FrameError> {
        if let Some(at) = self
            .prefetch
            .render
            .iter()
            .position(|&i| self.store.contains(i))
        {
            let index = self.prefetch.render.remove(at);
            self.render_ahead(index);
            return Ok(true);
        }
        let times = &loaded.times;
        let Some(seeker) = self.seeker.as_mut() else {
            return Ok(false);
        };
        if let Some(to) = self.prefetch.forward_to {
            match self.seeker_next {
                Some(next) if next <= to => {
                    let Some(frame) = seeker.next(stop)? else {
                        // The end of the file: the seeker has exited (reap it now).
                        self.seeker = None;
                        self.seeker_next = None;
                        self.prefetch = Prefetch::default();
                        return Ok(false);
                    };
                    match frame.pts.and_then(|pts| index_of(times, pts)) {
                        Some(index) => {
                            self.store.insert(index, frame.data);
                            self.seeker_next = Some(index + 1);
                        }
                        None => self.seeker_next = None,
                    }
                    return Ok(true);
                }
                _ => self.prefetch.forward_to = None,
            }
        }
        let Some((from, until, sent)) = self.prefetch.back else {
            return Ok(false);
        };
        // A seeker of its own: the request seeker stays idle, so the next seek is read at once
        // (ffmpeg reads commands at most every 100 ms while it decodes). When a request comes,
        // nobody reads this one and it stalls within a few frames.
        if !self.back_seeker.as_mut().is_some_and(Seeker::alive) {
            self.back_seeker = None;
            self.back_seeker = Some(self.start_seeker(tools, loaded)?);
        }
        let Some(back) = self.back_seeker.as_mut() else {
            return Ok(false);
        };
        let read = match sent {
            None => {
                back.seek(times.frames[from as usize].pts, stop)?;
                0
            }
            Some(read) => read,
        };
        if read > until - from + SEEK_SLACK {
            self.prefetch.back = None;
            return Ok(false);
        }
        self.prefetch.back = Some((from, until, Some(read + 1)));
        let Some(frame) = back.next(stop)? else {
            self.back_seeker = None;
            self.prefetch.back = None;
            return Ok(false);
        };
        if let Some(index) = frame.pts.and_then(|pts| index_of(times, pts)) {
            self.store.insert(index, frame.data);
            if index == until {
                self.prefetch.back = None;
                return Ok(true);
            }
        }
        Ok(true)
    }
}

/// A yuv420p frame as RGBA, converted by ffmpeg exactly as the decoder converts "before".
fn yuv420p_to_rgba(tools: &Tools, frame: &Frame) -> Result<RgbaImage, FrameError> {
    let mut cmd = Command::new(&tools.ffmpeg);
    cmd.args(["-hide_banner", "-nostdin", "-nostats", "-loglevel", "error"]);
    cmd.args(["-f", "rawvideo", "-pix_fmt", "yuv420p", "-video_size"]);
    cmd.arg(format!("{}x{}", frame.width, frame.height));
    cmd.args([
        "-i",
        "pipe:0",
        "-vf",
        "format=rgba",
        "-f",
        "rawvideo",
        "pipe:1",
    ]);
    cmd.stdout(Stdio::piped());
    let mut child = process::spawn_with_stdin(cmd, "preview-convert", Stdio::piped())
        .map_err(FrameError::failed)?;
    let mut stdin = child
        .take_stdin()
        .ok_or_else(|| FrameError::Failed("the converter has no input pipe".into()))?;
    let mut stdout = child
        .take_stdout()
        .ok_or_else(|| FrameError::Failed("the converter has no output pipe".into()))?;
    let mut pixels = Vec::new();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let _ = stdin.write_all(&frame.data);
        });
        let _ = stdout.read_to_end(&mut pixels);
    });
    child.wait().map_err(FrameError::failed)?;
    let expected = frame.width as usize * frame.height as usize * 4;
    if pixels.len() != expected {
        return Err(FrameError::Failed(format!(
            "the colour conversion gave {} bytes instead of {expected}",
            pixels.len()
        )));
    }
    Ok(RgbaImage {
        width: frame.width,
        height: frame.height,
        pixels,
    })
}
