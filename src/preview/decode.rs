//! Frame extraction for previews: the decoded frame at an index ("before") and what the
//! engine makes of it ("after"), with the caches that make the next request fast.
//!
//! One ffmpeg decodes from just before the frame (input `-ss` half-way between the previous
//! frame's time and this one's, with `-copyts`, exactly as the pipeline's chunks seek) and
//! writes two raw streams: the decoded frame as RGBA on stdout, and on fd 3 either the
//! Lanczos-scaled frame as RGBA (ffmpeg engines: the pipeline's own `scale=W:H:flags=…` on the
//! decoded frame) or the decoded frame as yuv420p for a frame engine ([`Upscaler`]), whose
//! output is converted to RGBA by ffmpeg. The decoder is kept running: the next frame is
//! already on its way, so stepping forward reads on instead of seeking again.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime};

use crossbeam_channel::{Receiver, RecvTimeoutError, bounded};

use super::RgbaImage;
use crate::engine::{self, ColorMatrix, EngineKind, Frame, FrameSetup, Upscaler};
use crate::media::frames::{FrameTimes, frame_times};
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
    fn failed(e: impl std::fmt::Display) -> Self {
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

/// A running decoder positioned at `next_index`.
struct Decoder {
    input: InputKey,
    after: After,
    next_index: u64,
    before_len: usize,
    after_len: usize,
    before_rx: Receiver<Vec<u8>>,
    after_rx: Receiver<Vec<u8>>,
    child: Spawned,
}

/// A frame engine instance and the settings it was made for: name, scale (bits), denoise.
type LoadedEngine = (String, u64, Option<u8>, Box<dyn Upscaler>);

/// The frame lane's state: kept between requests while the worker is warm.
pub struct FramePreviewer {
    tools: Tools,
    inputs: VecDeque<(InputKey, Arc<Slot>)>,
    decoder: Option<Decoder>,
    /// The last frame engine used, with its settings.
    engine: Option<LoadedEngine>,
}

impl FramePreviewer {
    pub fn new(tools: Tools) -> Self {
        Self {
            tools,
            inputs: VecDeque::new(),
            decoder: None,
            engine: None,
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

    /// Before and after images of frame `frame_index`.
    pub fn preview(
        &mut self,
        input: &Path,
        frame_index: u64,
        engine_name: &str,
        scale: f64,
        denoise: Option<u8>,
        cancel: &AtomicBool,
    ) -> Result<FramePreview, FrameError> {
        let engine =
            engine::resolve(engine_name, Some(scale), denoise).map_err(FrameError::failed)?;
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

        let reusable = self.decoder.as_ref().is_some_and(|d| {
            d.input == key
                && d.after == after
                && frame_index >= d.next_index
                && frame_index - d.next_index <= MAX_FORWARD_SKIP
        });
        if !reusable {
            // Dropping the old decoder kills and reaps it.
            self.decoder = None;
            self.decoder = Some(Decoder::start(
                &self.tools,
                &key,
                &loaded,
                frame_index,
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
        let (before_px, after_px) = match read {
            Ok(pair) => pair,
            Err(e) => {
                // A half-read decoder is out of step: never reuse it.
                self.decoder = None;
                return Err(e);
            }
        };
        let before = RgbaImage {
            width: src_w,
            height: src_h,
            pixels: before_px,
        };
        let after = match after {
            After::Scale { width, height, .. } => RgbaImage {
                width,
                height,
                pixels: after_px,
            },
            After::Yuv420p => {
                let matrix =
                    ColorMatrix::for_source(loaded.info.video.color_space.as_deref(), src_h);
                let upscaler = self.upscaler(&engine, scale, denoise, matrix)?;
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
            time_secs: (frame.time_secs - loaded.info.start_time_secs).max(0.0),
        })
    }

    fn upscaler(
        &mut self,
        engine: &engine::EngineInfo,
        scale: f64,
        denoise: Option<u8>,
        matrix: ColorMatrix,
    ) -> Result<&mut Box<dyn Upscaler>, FrameError> {
        let same = self.engine.as_ref().is_some_and(|(name, s, d, _)| {
            name == engine.name && *s == scale.to_bits() && *d == denoise
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
            self.engine = Some((engine.name.to_owned(), scale.to_bits(), denoise, instance));
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
        frame_index: u64,
        after: After,
    ) -> Result<Decoder, FrameError> {
        let (src_w, src_h) = loaded.info.video.display_size();
        let index = frame_index as usize;
        let mut cmd = Command::new(&tools.ffmpeg);
        cmd.args(["-hide_banner", "-nostdin", "-nostats", "-loglevel", "error"]);
        if index > 0 {
            // Half-way between the previous frame and this one: a rounded timestamp can
            // neither keep the previous frame nor drop this one (the pipeline seeks the same way).
            let frames = &loaded.times.frames;
            let seek = (frames[index - 1].time_secs + frames[index].time_secs) / 2.0;
            let from_start = (seek - loaded.info.start_time_secs).max(0.0);
            cmd.args(["-ss", &format!("{from_start:.6}")]);
        }
        cmd.arg("-copyts").arg("-i").arg(file_arg(&key.path));
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
        let graph = format!(
            "[0:{}]split=2[b][a];[b]scale,format=rgba[before];[a]{second}[after]",
            loaded.info.video.index
        );
        cmd.args(["-filter_complex", &graph]);
        for (label, target) in [("[before]", "pipe:1"), ("[after]", "pipe:3")] {
            cmd.args(["-map", label, "-fps_mode", "passthrough"]);
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
        let mut child = process::spawn(cmd, "preview-decode").map_err(FrameError::failed)?;
        // Only the child may hold the write end, or the reader never sees end of file.
        drop(fd3_writer);
        let stdout = child
            .take_stdout()
            .ok_or_else(|| FrameError::Failed("the decoder has no output pipe".into()))?;

        let before_len = src_w as usize * src_h as usize * 4;
        let after_len = match &after {
            After::Scale { width, height, .. } => *width as usize * *height as usize * 4,
            After::Yuv420p => Frame::yuv420p_len(src_w, src_h),
        };
        let before_rx = spawn_reader(stdout, before_len, "preview-before")?;
        let after_rx = spawn_reader(fd3_reader, after_len, "preview-after")?;
        Ok(Decoder {
            input: key.clone(),
            after,
            next_index: frame_index,
            before_len,
            after_len,
            before_rx,
            after_rx,
            child,
        })
    }

    /// The next frame's two images.
    fn read(&mut self, cancel: &AtomicBool) -> Result<(Vec<u8>, Vec<u8>), FrameError> {
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

/// A thread reading whole frames of `len` bytes from `from` into a one-frame queue (so the
/// decoder runs at most a frame or two ahead of what is asked).
fn spawn_reader(
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
