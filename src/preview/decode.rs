//! Frame extraction for previews: the decoded frame at an index ("before") and what the
//! engine makes of it ("after"), with the caches that make the next request fast.
//!
//! [`FramePreviewer`] is the frame lane's state: each input's probe and frame list (loaded on
//! a thread, a few inputs kept), the engine instance, and the two ways to a decoded frame.
//! Normally the fast path ([`super::fast_path`]: the seeker, its frame store and a converter
//! fed raw frames). Inputs the seeker cannot serve (rotated, untimestamped, unusual pixel
//! formats, or a seek that missed) use the file decoder: one converter ffmpeg
//! ([`super::converter`]) decoding from just before the frame (input `-ss` half-way between
//! the previous frame's time and this one's, with `-copyts`, exactly as the pipeline's chunks
//! seek), kept running so stepping forward reads on instead of seeking again. Either way the
//! images come from the same filter graph. Until they come, the input's keyframe pictures
//! ([`super::keyframes`]) give an approximate one.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::RgbaImage;
use super::converter::{After, Decoder, Images, Source, yuv420p_to_rgba};
use super::fast_path::{FastPath, Prefetch, seek_layout};
use super::keyframes::{Approximation, KeyframePictures};
use crate::engine::{self, ColorMatrix, EngineKind, Frame, FrameSetup, Upscaler};
use crate::media::frames::{FrameTimes, frame_times};
use crate::media::probe::{MediaInfo, probe};
use crate::media::tools::Tools;

/// How often a wait checks for cancellation.
pub(super) const CANCEL_POLL: Duration = Duration::from_millis(2);
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

impl InputInfo {
    /// Seconds from the start of the file to frame `index`, if there is such a frame.
    fn time_of(&self, index: u64) -> Option<f64> {
        let frame = self.times.frames.get(usize::try_from(index).ok()?)?;
        Some((frame.time_secs - self.info.start_time_secs).max(0.0))
    }
}

/// An input as found on disk: a changed file is probed again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct InputKey {
    pub(super) path: PathBuf,
    pub(super) size_bytes: u64,
    pub(super) modified: Option<SystemTime>,
}

impl InputKey {
    pub(super) fn of(path: &Path) -> Result<InputKey, FrameError> {
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
    /// The keyframe pictures of the input last shown.
    keyframes: Option<(InputKey, KeyframePictures)>,
    /// False when `REFRAME_PREVIEW_KEYFRAMES=0`: no approximate pictures (the benchmark's
    /// baseline).
    approximating: bool,
}

/// A picture shown for a frame until its exact images come.
#[derive(Debug)]
pub struct ApproximateFrame {
    pub approximation: Approximation,
    /// The frame's own time, seconds from the start of the file.
    pub time_secs: f64,
    /// The size of the frame's exact "before" image (the picture is smaller).
    pub display: (u32, u32),
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
            keyframes: None,
            approximating: std::env::var_os("REFRAME_PREVIEW_KEYFRAMES").is_none_or(|v| v != "0"),
        }
    }

    /// The probe and frame list of `key` if they are loaded already (never waits).
    fn loaded_now(&self, key: &InputKey) -> Option<Arc<InputInfo>> {
        let (_, slot) = self.inputs.iter().find(|(k, _)| k == key)?;
        let guard = slot.result.lock().unwrap_or_else(|p| p.into_inner());
        guard.as_ref().and_then(|r| r.as_ref().ok().cloned())
    }

    /// The keyframe pictures of `key`, started (paused, from frame `cursor`) if this input has
    /// none yet.
    fn keyframes_for(
        &mut self,
        key: &InputKey,
        loaded: &Arc<InputInfo>,
        cursor: u64,
    ) -> Option<&KeyframePictures> {
        if !self.approximating {
            return None;
        }
        if self.keyframes.as_ref().is_none_or(|(k, _)| k != key) {
            // Dropping the old ones stops their filling.
            self.keyframes = None;
            let pictures =
                KeyframePictures::start(&self.tools, &key.path, Arc::clone(loaded), cursor);
            // Started while a request runs: it goes on once the frame lane is idle.
            pictures.pause();
            self.keyframes = Some((key.clone(), pictures));
        }
        self.keyframes.as_ref().map(|(_, pictures)| pictures)
    }

    /// A picture to show for frame `frame_index` of `input` at once: the nearer of its
    /// keyframe's and the next keyframe's, once made in the background. `None` when there is
    /// none yet, or when the exact images are at hand anyway (decoded or made ahead).
    pub fn approximation(&mut self, input: &Path, frame_index: u64) -> Option<ApproximateFrame> {
        let key = InputKey::of(input).ok()?;
        let loaded = self.loaded_now(&key)?;
        let at_hand = self.fast.as_ref().is_some_and(|fast| {
            fast.input == key
                && !fast.failed
                && (fast.store.contains(frame_index)
                    || fast.rendered.iter().any(|(i, _, _)| *i == frame_index))
        });
        if at_hand {
            return None;
        }
        let time_secs = loaded.time_of(frame_index)?;
        let display = loaded.info.video.display_size();
        let approximation = self
            .keyframes_for(&key, &loaded, frame_index)?
            .approximation(frame_index)?;
        Some(ApproximateFrame {
            approximation,
            time_secs,
            display,
        })
    }

    /// Stops the background work that is not for the request now running (keyframe pictures).
    pub fn pause_background(&self) {
        if let Some((_, pictures)) = &self.keyframes {
            pictures.pause();
        }
    }

    /// Lets the background work go on (beside the prefetching, once the request is answered).
    pub fn resume_background(&self) {
        if let Some((_, pictures)) = &self.keyframes {
            pictures.resume();
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
        if let Some(pictures) = self.keyframes_for(&key, &loaded, frame_index) {
            pictures.look_at(frame_index);
        }
        let count = loaded.times.len() as u64;
        let Some(time_secs) = loaded.time_of(frame_index) else {
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
        let Some(input) = self.fast.as_ref().map(|fast| fast.input.clone()) else {
            return false;
        };
        let Some(loaded) = self.loaded_now(&input) else {
            return false;
        };
        let Some(fast) = self.fast.as_mut() else {
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
                scale: engine.engine_scale_with(scale, denoise),
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
