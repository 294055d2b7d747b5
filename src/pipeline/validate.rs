//! The validate step: everything checked before any encoding starts — the input (probe, frame
//! list), the settings (preset, engine, sizes), the output path (exists? writable?), the
//! session (resume or start over) and the free disk space.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread::JoinHandle;

use anyhow::{Context as _, anyhow, bail};

use super::colour::HdrPlan;
use super::plan::{Plan, Reach};
use super::{Context, JobFailure, Reporter, output, resume_decision};
use crate::engine::{self, EngineInfo};
use crate::fsutil;
use crate::media::frames::{self, FrameTimes};
use crate::media::probe::{self, MediaInfo, ProbeError};
use crate::presets::{self, OutputKind, Preset, RateControl, VideoCodec};
use crate::protocol::{JobSpec, ResumeMode};
use crate::session::progress::{Progress, VideoSummary};
use crate::session::{InputIdentity, Session, SessionError, Settings, session_id};

/// Name of the stored chunk plan inside a session directory.
pub(crate) const PLAN_FILE: &str = "plan.json";

/// One output rendition: its frame size and the preset rendition it encodes.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub width: u32,
    pub height: u32,
    pub rendition: presets::Rendition,
}

/// A validated job: input probed, settings resolved, output decided.
pub(crate) struct Job {
    pub input: PathBuf,
    pub output: PathBuf,
    pub overwrite: bool,
    pub info: MediaInfo,
    pub preset: Preset,
    pub engine: EngineInfo,
    pub settings: Settings,
    pub identity: InputIdentity,
    pub targets: Vec<Target>,
    pub deinterlace: bool,
    pub frame_rate: f64,
    /// Scale the engine itself runs at (a `--height` fit then resizes its output).
    pub engine_scale: f64,
    /// Tone-map or keep an HDR source; `None` for SDR.
    pub hdr: Option<HdrPlan>,
    listing_ahead: ListingAhead,
    plan: Option<Plan>,
}

pub(crate) struct Prepared {
    pub session: Session,
    pub progress: Progress,
    pub plan: Plan,
    pub resumed: bool,
}

/// Check the input, settings and output; nothing is written yet.
pub(crate) fn prepare(ctx: &Context, reporter: &Reporter, spec: &JobSpec) -> anyhow::Result<Job> {
    let preset = presets::resolve(&spec.preset)?;
    let scale = if spec.height.is_some() {
        None
    } else {
        Some(spec.scale.unwrap_or(2.0))
    };
    let models_dir = engine::models::models_dir(spec.models_dir.as_deref());
    let engine = engine::resolve_in(models_dir.as_deref(), &spec.engine, scale, spec.denoise)?;
    let input = std::path::absolute(&spec.input)
        .with_context(|| format!("cannot resolve the input path {}", spec.input.display()))?;
    let identity =
        InputIdentity::of(&input).with_context(|| format!("cannot read {}", input.display()))?;
    // Checked before the input is read: a job whose output is in the way stops at once.
    // HLS and DASH outputs are folders named like files: `clip.2x.hls`.
    let extension = match preset.output_kind() {
        OutputKind::File { .. } => preset.output_extension(),
        OutputKind::Hls { .. } => "hls",
        OutputKind::Dash { .. } => "dash",
    };
    let default_name = output::default_output_name(&input, scale, spec.height, extension);
    let output_path = output::resolve(&input, spec.output.as_deref(), &default_name);
    let output_path = std::path::absolute(&output_path).unwrap_or(output_path);
    let folder = !matches!(preset.output_kind(), OutputKind::File { .. });
    check_output(&output_path, &input, extension, folder, spec.overwrite)?;

    let listing_ahead = ListingAhead::start(ctx, spec, &input, &identity);
    let info = probe::probe(&ctx.tools, &input)?;

    let (src_w, src_h) = info.video.display_size();
    let engine_size = engine_output_size((src_w, src_h), scale, spec.height)?;
    let mut targets: Vec<Target> = Vec::new();
    for rendition in preset.renditions() {
        let (width, height) = match rendition.height.or(preset.height) {
            Some(h) => presets::fit_to_height(engine_size.0, engine_size.1, h, false),
            None => engine_size,
        };
        // A rung above the upscaled size would repeat the one below it.
        if targets
            .iter()
            .any(|t| (t.width, t.height) == (width, height))
        {
            reporter.warn(format!(
                "the {}p rendition is larger than the upscaled video ({width}x{height}); it is left out",
                rendition.height.unwrap_or(height)
            ));
            continue;
        }
        targets.push(Target {
            width,
            height,
            rendition,
        });
    }

    let engine_scale = engine.engine_scale_with(
        scale.unwrap_or(engine_size.1 as f64 / src_h as f64),
        spec.denoise,
    );
    let settings = Settings {
        engine: engine.name.clone(),
        model: engine.model_identity(engine_scale, spec.denoise)?,
        scale: scale.unwrap_or(engine_size.1 as f64 / src_h.max(1) as f64),
        target_height: spec.height,
        denoise: spec.denoise,
        preset: preset.name.clone(),
        preset_digest: preset.digest(),
        chunk_seconds: spec.chunk_seconds,
        deinterlace: spec.deinterlace,
    };
    let frame_rate = info.video.frame_rate().unwrap_or(25.0);
    let hdr = HdrPlan::for_source(&ctx.tools, &input, &info.video, &preset)?;
    warn_about_source(reporter, &info, &preset, spec.deinterlace);
    if let Some(hdr) = &hdr {
        reporter.warn(hdr.notice(&preset));
    }
    Ok(Job {
        input,
        output: output_path,
        overwrite: spec.overwrite,
        info,
        preset,
        engine,
        settings,
        identity,
        targets,
        deinterlace: spec.deinterlace,
        frame_rate,
        engine_scale,
        hdr,
        listing_ahead,
        plan: None,
    })
}

/// The source's frame listing, started beside the probe: it needs only the file, and it is
/// the first thing a new plan needs, so the two ffprobe runs overlap instead of following
/// each other (a short job's fixed cost is mostly process starts). Not started where the job
/// will probably resume (a resumable session of this input exists): a resumed job reads its
/// saved plan instead.
pub(crate) struct ListingAhead(Mutex<Option<JoinHandle<Result<FrameTimes, ProbeError>>>>);

impl ListingAhead {
    fn start(ctx: &Context, spec: &JobSpec, input: &Path, identity: &InputIdentity) -> Self {
        let may_resume = spec.resume != ResumeMode::Restart
            && ctx
                .store
                .find_for_input(identity)
                .iter()
                .any(|s| matches!(&s.progress, Ok(p) if p.is_resumable()));
        let listing = (!may_resume)
            .then(|| {
                let (tools, input) = (ctx.tools.clone(), input.to_owned());
                std::thread::Builder::new()
                    .name("frame-listing".into())
                    .spawn(move || frames::main_video_frame_times(&tools, &input))
                    .ok()
            })
            .flatten();
        ListingAhead(Mutex::new(listing))
    }

    /// The listing of stream `index`, if one was started and it found that stream (on any
    /// error the caller lists the stream again, and reports what that finds).
    fn take(&self, index: usize) -> Option<FrameTimes> {
        let listing = self.0.lock().ok()?.take()?;
        match listing.join() {
            Ok(Ok(times)) if times.stream_index == index => Some(times),
            Ok(Ok(_)) | Ok(Err(_)) | Err(_) => None,
        }
    }
}

/// The size the engine makes of a `src` frame: `scale ×`, or fitted to `height`; even sizes.
pub(crate) fn engine_output_size(
    (src_w, src_h): (u32, u32),
    scale: Option<f64>,
    height: Option<u32>,
) -> anyhow::Result<(u32, u32)> {
    if src_w == 0 || src_h == 0 {
        bail!("the video stream has no frame size");
    }
    let even = |v: f64| ((v / 2.0).round() as u32).max(1) * 2;
    Ok(match (height, scale) {
        (Some(h), _) => (even(src_w as f64 * h as f64 / src_h as f64), even(h as f64)),
        (None, Some(s)) => (even(src_w as f64 * s), even(src_h as f64 * s)),
        (None, None) => (even(src_w as f64), even(src_h as f64)),
    })
}

fn check_output(
    output: &Path,
    input: &Path,
    extension: &str,
    folder: bool,
    overwrite: bool,
) -> anyhow::Result<()> {
    if output == input {
        bail!("the output would replace the input: choose another output path");
    }
    let actual = output.extension().and_then(|e| e.to_str()).unwrap_or("");
    // A folder output (HLS, DASH) may have any name; a file's extension must match its format.
    if !folder && !actual.eq_ignore_ascii_case(extension) {
        bail!(
            "this preset writes .{extension} output, but the output path ends in \"{actual}\": {}",
            output.display()
        );
    }
    if output.exists() && !overwrite {
        bail!(
            "the output already exists (use --overwrite to replace it): {}",
            output.display()
        );
    }
    let dir = output
        .parent()
        .ok_or_else(|| anyhow!("the output has no parent folder: {}", output.display()))?;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the output folder {}", dir.display()))?;
    let probe = dir.join(format!(".reframe-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"")
        .with_context(|| format!("the output folder is not writable: {}", dir.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

fn warn_about_source(reporter: &Reporter, info: &MediaInfo, preset: &Preset, deinterlace: bool) {
    let v = &info.video;
    if v.bit_depth > 8 && preset.video.pix_fmt.bit_depth() <= 8 && !v.hdr {
        reporter.warn(format!(
            "the source is {}-bit; this preset encodes 8-bit, so fine gradients may band",
            v.bit_depth
        ));
    }
    if v.interlaced && !deinterlace {
        reporter
            .warn("the source is interlaced; add --deinterlace to deinterlace it before scaling");
    }
    if v.rotation_deg != 0 {
        reporter.warn(format!(
            "the source is rotated by {}°; the output is stored upright",
            v.rotation_deg
        ));
    }
    if info.audio.is_empty() {
        reporter.warn("the source has no audio track");
    }
}

impl Job {
    pub(crate) fn plan(&self) -> &Plan {
        // A Job only leaves this module after `with_plan`.
        self.plan
            .as_ref()
            .expect("plan is set before the steps run")
    }

    pub(crate) fn with_plan(mut self, plan: Plan) -> Job {
        self.plan = Some(plan);
        self
    }

    /// Take the session of this input and settings: resume it, or start it over.
    pub(crate) fn open_session(
        &self,
        ctx: &Context,
        reporter: &Reporter,
        spec: &JobSpec,
    ) -> Result<Prepared, JobFailure> {
        let id = session_id(&self.identity, &self.settings);
        for other in ctx.store.find_for_input(&self.identity) {
            if other.id != id
                && let Ok(p) = &other.progress
                && p.is_resumable()
            {
                reporter.warn(format!(
                    "an unfinished run of this file with other settings exists (session {}: {}); it is left as it is",
                    other.id,
                    p.settings
                        .differences(&self.settings)
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        let session = ctx
            .store
            .acquire(&id)
            .map_err(|e| JobFailure::before_session(anyhow::Error::new(e)))?;
        let fail = |e: anyhow::Error| JobFailure::Failed {
            error: e,
            resumable: false,
        };

        let stored = match (session.load_progress(), spec.resume) {
            (_, ResumeMode::Restart) => None,
            (Ok(p), _) => p.filter(|p| p.is_resumable()),
            (Err(SessionError::Corrupt { path, reason }), _) => {
                return Err(fail(anyhow!(
                    "the saved progress of this job is damaged ({reason}); run again with --restart to start over: {}",
                    path.display()
                )));
            }
            (Err(e), _) => return Err(fail(e.into())),
        };
        let stored_plan = match &stored {
            Some(progress) => match session.read_json::<Plan>(PLAN_FILE) {
                Ok(Some(plan))
                    if plan.version == super::plan::PLAN_VERSION
                        && plan.chunks.len() == progress.chunks_total
                        && plan.is_consistent() =>
                {
                    Some(plan)
                }
                Ok(_) | Err(_) => {
                    reporter.warn(
                        "the saved chunk plan is missing or damaged; starting this file over",
                    );
                    None
                }
            },
            None => None,
        };
        let resume = resume_decision(spec.resume, stored.is_some() && stored_plan.is_some())
            .map_err(fail)?;
        if let (true, Some(progress), Some(plan)) = (resume, stored, stored_plan) {
            let mut progress = progress;
            // Chunk files that the progress does not list are leftovers of chunks in flight.
            progress.output = Some(self.output.clone());
            return Ok(Prepared {
                session,
                progress,
                plan,
                resumed: true,
            });
        }

        session.reset().map_err(|e| {
            fail(anyhow::Error::new(e).context("cannot clear the session directory"))
        })?;
        let plan = self.make_plan(ctx, reporter).map_err(fail)?;
        session
            .write_json(PLAN_FILE, &plan)
            .map_err(|e| fail(anyhow::Error::new(e).context("cannot write the chunk plan")))?;
        let v = &self.info.video;
        let (width, height) = v.display_size();
        let video = VideoSummary {
            width,
            height,
            duration_secs: self.info.duration_secs.unwrap_or(0.0),
            frame_rate: self.frame_rate,
            frame_count: plan.frame_count() as u64,
            codec: v.codec.clone(),
            size_bytes: self.info.size_bytes,
            format: self.info.format_name.clone(),
        };
        let mut progress = Progress::new(
            id,
            self.identity.clone(),
            video,
            self.settings.clone(),
            Some(self.output.clone()),
        );
        progress.chunks_total = plan.chunks.len();
        if let Some(gaps) = missing_frames(&plan) {
            let total: usize = gaps.iter().map(|g| g.1).sum();
            let places: Vec<String> = gaps
                .iter()
                .map(|(after, n)| format!("{n} after {after:.3} s"))
                .collect();
            reporter.warn(format!(
                "{total} video frame(s) are missing from the file ({}): a damaged or cut recording? The frames around them keep their times",
                places.join(", ")
            ));
        } else if is_vfr(&plan) {
            reporter.warn("the source has a variable frame rate; every frame keeps its own time");
        }
        Ok(Prepared {
            session,
            progress,
            plan,
            resumed: false,
        })
    }

    fn make_plan(&self, ctx: &Context, reporter: &Reporter) -> anyhow::Result<Plan> {
        let index = self.info.video.index;
        let mut times = match self.listing_ahead.take(index) {
            Some(times) => times,
            None => frames::frame_times(&ctx.tools, &self.input, index)?,
        };
        if times.frames.is_empty() {
            bail!("the video stream has no frames: {}", self.input.display());
        }
        let dropped = self.drop_undecodable_head(ctx, &mut times)?;
        if dropped > 0 {
            let first = times.frames.first().map_or(0.0, |f| f.time_secs);
            reporter.warn(format!(
                "the video does not start on a keyframe (a recording cut mid-stream?): its first {dropped} frame(s), before {first:.3} s, cannot be decoded and are left out: the output starts at the first frame that can, with the audio in step"
            ));
        }
        if times.frames.is_empty() {
            bail!(
                "no frame of the video stream can be decoded: {}",
                self.input.display()
            );
        }
        if let Some(indexed) = self.info.video.frame_count
            && let Some(missing) = frames_missing(indexed, times.len() as u64)
        {
            bail!(
                "this file is cut short: its index lists {indexed} video frames but only {} can be read ({missing} missing; an incomplete download or copy?), so it cannot be processed as it is: {}",
                times.len(),
                self.input.display()
            );
        }
        let frames: Vec<(f64, bool)> = times
            .frames
            .iter()
            .map(|f| (f.time_secs, f.keyframe))
            .collect();
        // Frames per chunk from the frame times themselves: a variable-rate source may report
        // a nominal rate far from its real one.
        let span = frames.last().map_or(0.0, |f| f.0) - frames[0].0;
        let measured_fps = if frames.len() > 1 && span > 0.0 {
            (frames.len() - 1) as f64 / span
        } else {
            self.frame_rate
        };
        let target = (self.settings.chunk_seconds * measured_fps)
            .round()
            .max(1.0) as usize;
        let plan = if seeks_to_keyframes(&self.info.format_name) {
            // Decoding from the keyframe before a chunk matters only where decoding is a
            // noticeable share of the work.
            let reach = if self.engine.uses_all_cores() {
                Reach::Near
            } else {
                Reach::Wide
            };
            Plan::new(&frames, target, reach)
        } else {
            Plan::at_keyframes(&frames, target)
        };
        Ok(if self.engine.uses_all_cores() {
            plan
        } else {
            plan.share_cores(ctx.parallel_chunks)
        })
    }
}

impl Job {
    /// Leaves out the frames before the first one the decoder outputs, when the stream does
    /// not start on a keyframe (a cut MPEG-TS recording): they reference pictures that are
    /// not in the file, so no decoder makes them and no chunk could hold them. Returns how
    /// many were left out.
    fn drop_undecodable_head(
        &self,
        ctx: &Context,
        times: &mut frames::FrameTimes,
    ) -> anyhow::Result<usize> {
        if times.frames.first().is_none_or(|f| f.keyframe) {
            return Ok(0);
        }
        let Some(first_key) = times.frames.iter().position(|f| f.keyframe) else {
            // No keyframe flags at all (some intra-refresh streams): nothing to go by.
            return Ok(0);
        };
        // In decode order the first keyframe comes at most a reorder window after its
        // position in presentation order.
        let packets = first_key + REORDER_WINDOW;
        let Some(first_pts) =
            frames::first_decoded_pts(&ctx.tools, &self.input, self.info.video.index, packets)?
        else {
            return Ok(0);
        };
        let before = times.frames.len();
        times.frames.retain(|f| f.pts >= first_pts);
        Ok(before - times.frames.len())
    }
}

/// Whether ffmpeg's seek in this container lands on a keyframe at or before the time asked
/// (it has an index: MP4, Matroska, AVI…). MPEG-TS/PS and raw streams have none: their seek
/// lands near the time, and the decoder starts at the next keyframe.
fn seeks_to_keyframes(format_name: &str) -> bool {
    !format_name.split(',').any(|f| {
        matches!(
            f,
            "mpegts" | "mpeg" | "mpegvideo" | "h264" | "hevc" | "m4v" | "vc1" | "cavsvideo"
        )
    })
}

/// Packets decoded past the first keyframe to find the first frame a decoder outputs: more
/// than any codec's reordering delay (H.264/HEVC: 16 frames).
const REORDER_WINDOW: usize = 32;

/// How many of the `indexed` frames the container's index lists are missing from the `listed`
/// packets, when that is more than an edit list's dropped pre-roll can explain (a couple of
/// frames, or 2 %): the file was cut after its index was written (MP4 with the index first).
fn frames_missing(indexed: u64, listed: u64) -> Option<u64> {
    let missing = indexed.saturating_sub(listed);
    (missing > 2 && missing * 50 > indexed).then_some(missing)
}

/// Frame intervals differing by more than 10 % from the typical one.
fn is_vfr(plan: &Plan) -> bool {
    let gaps: Vec<f64> = plan
        .frame_times_secs
        .windows(2)
        .map(|w| w[1] - w[0])
        .collect();
    let (Some(min), Some(max)) = (
        gaps.iter().copied().reduce(f64::min),
        gaps.iter().copied().reduce(f64::max),
    ) else {
        return false;
    };
    max > min * 1.1 + 1e-4
}

/// Frames missing from a constant-rate stream (packets lost to damage): every interval is a
/// whole number of frame intervals, and at most three are longer than one. Each gap as
/// (time of the frame before it, frames missing). `None` for a stream without such gaps,
/// and for a variable-rate one.
fn missing_frames(plan: &Plan) -> Option<Vec<(f64, usize)>> {
    const MAX_GAPS: usize = 3;
    let times = &plan.frame_times_secs;
    let step = times
        .windows(2)
        .map(|w| w[1] - w[0])
        .reduce(f64::min)
        .filter(|s| *s > 0.0)?;
    let mut gaps = Vec::new();
    for w in times.windows(2) {
        let intervals = (w[1] - w[0]) / step;
        let whole = intervals.round();
        if (intervals - whole).abs() > 0.1 {
            return None;
        }
        if whole >= 2.0 {
            gaps.push((w[0], whole as usize - 1));
            if gaps.len() > MAX_GAPS {
                return None;
            }
        }
    }
    (!gaps.is_empty()).then_some(gaps)
}

/// Estimated bytes of the encoded video (for the free-space check).
pub(crate) fn estimated_output_bytes(job: &Job) -> u64 {
    let frames = job.plan().frame_count() as f64;
    job.targets
        .iter()
        .map(|t| {
            let bits_per_frame = match t.rendition.rate {
                RateControl::BitrateKbps(kbps) => kbps as f64 * 1000.0 / job.frame_rate,
                RateControl::Crf(_) | RateControl::Lossless => {
                    estimated_bits_per_pixel(job.preset.video.codec, t.rendition.rate)
                        * t.width as f64
                        * t.height as f64
                }
            };
            (bits_per_frame * frames / 8.0) as u64
        })
        .sum()
}

/// Generous bits per pixel of quality-based encodes (high-quality CRF on detailed sources),
/// so the free-space check errs on the side of asking for more room.
fn estimated_bits_per_pixel(codec: VideoCodec, rate: RateControl) -> f64 {
    match (codec, rate) {
        (VideoCodec::Ffv1, _) | (_, RateControl::Lossless) => 8.0,
        (VideoCodec::H264, _) => 0.25,
        (VideoCodec::H265 | VideoCodec::Vp9, _) => 0.15,
        (VideoCodec::Av1, _) => 0.12,
    }
}

/// The codec name ffprobe reports for what this preset encodes.
pub(crate) fn probed_codec_name(codec: VideoCodec) -> &'static str {
    match codec {
        VideoCodec::H264 => "h264",
        VideoCodec::H265 => "hevc",
        VideoCodec::Av1 => "av1",
        VideoCodec::Ffv1 => "ffv1",
        VideoCodec::Vp9 => "vp9",
    }
}

/// Extra room kept free while chunks are written.
pub(crate) const SPACE_MARGIN_BYTES: u64 = 64 << 20;

/// Before the first chunk: is there room for the chunks and the packaged output?
pub(crate) fn check_space(job: &Job, session: &Session) -> Result<(), super::Stop> {
    let estimate = estimated_output_bytes(job);
    let chunks_free = fsutil::available_space(session.dir()).unwrap_or(u64::MAX);
    let out_dir = job.output.parent().unwrap_or(Path::new("/"));
    let out_free = fsutil::available_space(out_dir).unwrap_or(u64::MAX);
    let same_fs = same_filesystem(session.dir(), out_dir);
    let need_chunks = estimate + SPACE_MARGIN_BYTES + if same_fs { estimate } else { 0 };
    if chunks_free < need_chunks {
        return Err(super::Stop::Failed(anyhow!(
            "not enough free disk space: about {} needed, {} free on {}",
            fsutil::human_bytes(need_chunks),
            fsutil::human_bytes(chunks_free),
            session.dir().display()
        )));
    }
    if !same_fs && out_free < estimate + SPACE_MARGIN_BYTES {
        return Err(super::Stop::Failed(anyhow!(
            "not enough free disk space for the output: about {} needed, {} free on {}",
            fsutil::human_bytes(estimate + SPACE_MARGIN_BYTES),
            fsutil::human_bytes(out_free),
            out_dir.display()
        )));
    }
    Ok(())
}

fn same_filesystem(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev(),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(times: &[f64]) -> Plan {
        Plan::new(
            &times.iter().map(|&t| (t, true)).collect::<Vec<_>>(),
            10,
            Reach::Near,
        )
    }

    #[test]
    fn a_file_cut_after_its_index_is_told_from_dropped_pre_roll() {
        // The test suite's truncated MP4: 72 frames in the index, 44 packets left.
        assert_eq!(frames_missing(72, 44), Some(28));
        // Edit-list pre-roll and rounding: a couple of frames, or up to 2 %.
        assert_eq!(frames_missing(72, 72), None);
        assert_eq!(frames_missing(72, 70), None);
        assert_eq!(frames_missing(10_000, 9_850), None);
        assert_eq!(frames_missing(10_000, 9_700), Some(300));
        // More frames than the index says is not a cut.
        assert_eq!(frames_missing(10, 12), None);
    }

    #[test]
    fn vfr_detection() {
        assert!(!is_vfr(&plan_of(&[0.0, 0.04, 0.08, 0.12])));
        assert!(is_vfr(&plan_of(&[0.0, 0.04, 0.12, 0.16])));
        assert!(!is_vfr(&plan_of(&[0.0])));
    }

    #[test]
    fn missing_frames_are_told_apart_from_variable_rate() {
        assert_eq!(missing_frames(&plan_of(&[0.0, 0.04, 0.08, 0.12])), None);
        assert_eq!(
            missing_frames(&plan_of(&[0.0, 0.04, 0.16, 0.2])),
            Some(vec![(0.04, 2)])
        );
        // Not whole frame intervals: variable rate.
        assert_eq!(missing_frames(&plan_of(&[0.0, 0.04, 0.1, 0.14])), None);
        // Many gaps: a variable-rate source (frames dropped on purpose), not damage.
        let many: Vec<f64> = (0..40)
            .filter(|i| i % 3 != 1)
            .map(|i| i as f64 * 0.04)
            .collect();
        assert_eq!(missing_frames(&plan_of(&many)), None);
    }

    #[test]
    fn engine_sizes_are_even() {
        assert_eq!(
            engine_output_size((320, 240), Some(2.0), None).unwrap(),
            (640, 480)
        );
        assert_eq!(
            engine_output_size((321, 241), Some(1.5), None).unwrap(),
            (482, 362)
        );
        assert_eq!(
            engine_output_size((640, 360), None, Some(1080)).unwrap(),
            (1920, 1080)
        );
        assert!(engine_output_size((0, 0), Some(2.0), None).is_err());
    }
}
