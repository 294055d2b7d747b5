//! The upscale step: every chunk not yet done is scaled and encoded into the session's
//! `chunks/` folder, several chunks at a time, and recorded in `progress.json` only once its
//! files are complete and hold the expected number of frames.
//!
//! Each chunk is encoded by its own encoder instance starting on a keyframe, so no encoder
//! state crosses a chunk boundary: a resumed run encodes exactly what an uninterrupted one
//! would. Two ways to run a chunk (DESIGN §3):
//! * ffmpeg scale engines run inside one ffmpeg filter graph (no frames leave ffmpeg);
//! * frame engines sit between a decoding ffmpeg (yuv420p on a pipe) and an encoding ffmpeg,
//!   with bounded queues between the three; the encoder's constant-rate timestamps are then
//!   replaced by the source's own frame times with mkvmerge.

use std::collections::{BTreeMap, VecDeque};
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded, unbounded};

use super::plan::Chunk;
use super::thumbnail;
use super::validate::{Job, SPACE_MARGIN_BYTES, estimated_output_bytes};
use super::{Context, Reporter, Stop};
use crate::engine::{ColorMatrix, EngineKind, Frame, FrameSetup, Upscaler};
use crate::fsutil;
use crate::media::frames::frame_times;
use crate::media::process::{self, Spawned};
use crate::media::progress::ProgressParser;
use crate::media::tools::{self, file_arg};
use crate::session::Session;
use crate::session::progress::{Progress, Step};

/// How often a running chunk checks for cancellation and its child's exit.
const POLL: Duration = Duration::from_millis(50);
/// Minimum interval between two progress events.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);
/// Frames buffered between decoder, engine and encoder on the pipe path (per queue).
const PIPE_QUEUE_FRAMES: usize = 3;

/// File of rendition `r` of chunk `index` inside the chunks folder.
pub(crate) fn chunk_file(chunks_dir: &Path, rendition: usize, index: usize) -> PathBuf {
    chunks_dir.join(format!("r{rendition}_{index:05}.mkv"))
}

enum Msg {
    Frames {
        chunk: usize,
        frames: u64,
    },
    /// `thumbnail`: JPEG bytes of the chunk's last frame, small.
    Done {
        chunk: usize,
        thumbnail: Option<Vec<u8>>,
    },
    Failed {
        chunk: usize,
        error: anyhow::Error,
    },
}

pub(crate) fn run(
    ctx: &Context,
    reporter: &Reporter,
    job: &Job,
    session: &Session,
    progress: &mut Progress,
) -> Result<(), Stop> {
    let plan = job.plan();
    let chunks_dir = session.chunks_dir();
    std::fs::create_dir_all(&chunks_dir)
        .with_context(|| format!("cannot create {}", chunks_dir.display()))?;
    remove_partial_files(&chunks_dir);

    let pending: VecDeque<usize> = plan
        .chunks
        .iter()
        .map(|c| c.index)
        .filter(|i| !progress.completed_chunks.contains(i))
        .collect();
    let mkvmerge = match job.engine.kind {
        EngineKind::Frames => Some(tools::locate_mkvmerge()?),
        EngineKind::FfmpegScale { .. } => None,
    };

    let frames_total = plan.frame_count() as u64;
    let frames_done_before: u64 = progress
        .completed_chunks
        .iter()
        .map(|&i| plan.chunks[i].frame_count as u64)
        .sum();
    let chunk_bytes_estimate = estimated_output_bytes(job) / plan.chunks.len().max(1) as u64;
    // A neural engine already keeps every core busy inside each frame.
    let parallel = if job.engine.uses_all_cores() {
        1
    } else {
        ctx.parallel_chunks
    };
    let workers = parallel.clamp(1, pending.len().max(1));
    let queue = Mutex::new(pending);
    let stop = AtomicBool::new(false);
    let should_stop = || stop.load(Ordering::SeqCst) || ctx.cancel.is_cancelled();
    let (tx, rx) = unbounded::<Msg>();
    let started = Instant::now();

    let mut first_error: Option<anyhow::Error> = None;
    std::thread::scope(|scope| {
        for w in 0..workers {
            let tx = tx.clone();
            let (queue, should_stop, chunks_dir, mkvmerge) =
                (&queue, &should_stop, &chunks_dir, &mkvmerge);
            let spawned = std::thread::Builder::new()
                .name(format!("chunk-worker-{w}"))
                .spawn_scoped(scope, move || {
                    loop {
                        if should_stop() {
                            return;
                        }
                        let next = queue.lock().map(|mut q| q.pop_front()).unwrap_or(None);
                        let Some(index) = next else { return };
                        let chunk = &job.plan().chunks[index];
                        let result =
                            ensure_space(chunks_dir, chunk_bytes_estimate).and_then(|()| {
                                let report = |frames: u64| {
                                    let _ = tx.send(Msg::Frames {
                                        chunk: index,
                                        frames,
                                    });
                                };
                                encode_chunk(
                                    ctx,
                                    job,
                                    chunk,
                                    chunks_dir,
                                    mkvmerge.as_deref(),
                                    should_stop,
                                    &report,
                                )
                            });
                        match result {
                            Ok(thumbnail) => {
                                let _ = tx.send(Msg::Done {
                                    chunk: index,
                                    thumbnail,
                                });
                            }
                            Err(Stop::Cancelled) => return,
                            Err(Stop::Failed(error)) => {
                                let _ = tx.send(Msg::Failed {
                                    chunk: index,
                                    error,
                                });
                                return;
                            }
                        }
                    }
                });
            if let Err(e) = spawned {
                first_error.get_or_insert(anyhow!("cannot start a chunk worker thread: {e}"));
                stop.store(true, Ordering::SeqCst);
            }
        }
        drop(tx);

        let mut in_flight: BTreeMap<usize, u64> = BTreeMap::new();
        let mut frames_done_now = 0u64;
        let mut last_event = Instant::now() - PROGRESS_INTERVAL;
        loop {
            let msg = match rx.recv_timeout(PROGRESS_INTERVAL) {
                Ok(msg) => Some(msg),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            match msg {
                Some(Msg::Frames { chunk, frames }) => {
                    in_flight.insert(chunk, frames);
                }
                Some(Msg::Done { chunk, thumbnail }) => {
                    in_flight.remove(&chunk);
                    frames_done_now += plan.chunks[chunk].frame_count as u64;
                    progress.mark_chunk_done(chunk);
                    let done = frames_done_before + frames_done_now;
                    progress.set_step_progress(Step::Upscale, percent(done, frames_total));
                    match session.save_progress(progress) {
                        Ok(()) => {
                            reporter.chunk_done(
                                chunk,
                                progress.completed_chunks.len(),
                                plan.chunks.len(),
                            );
                            if let Some(jpeg) = thumbnail {
                                let path = session.dir().join(thumbnail::THUMBNAIL_FILE);
                                match fsutil::write_atomic(&path, &jpeg) {
                                    Ok(()) => reporter.thumbnail(chunk, path),
                                    Err(e) => log::warn!(
                                        "cannot write the thumbnail ({e}): {}",
                                        path.display()
                                    ),
                                }
                            }
                        }
                        Err(e) => {
                            // Not recorded, so not done: a resumed run encodes it again.
                            progress.completed_chunks.remove(&chunk);
                            first_error.get_or_insert(
                                anyhow::Error::new(e).context("cannot record a finished chunk"),
                            );
                            stop.store(true, Ordering::SeqCst);
                        }
                    }
                }
                Some(Msg::Failed { chunk, error }) => {
                    in_flight.remove(&chunk);
                    first_error.get_or_insert(error.context(format!("chunk {chunk} failed")));
                    stop.store(true, Ordering::SeqCst);
                }
                None => {}
            }
            if last_event.elapsed() >= PROGRESS_INTERVAL {
                last_event = Instant::now();
                let this_run = frames_done_now + in_flight.values().sum::<u64>();
                let done = (frames_done_before + this_run).min(frames_total);
                let elapsed = started.elapsed().as_secs_f64();
                let fps = if elapsed > 0.0 {
                    this_run as f64 / elapsed
                } else {
                    0.0
                };
                let eta = (fps > 0.0).then(|| (frames_total - done) as f64 / fps);
                reporter.progress(Step::Upscale, done, frames_total, fps, eta);
            }
        }
    });

    if let Some(error) = first_error {
        return Err(Stop::Failed(error));
    }
    if ctx.cancel.is_cancelled() {
        return Err(Stop::Cancelled);
    }
    if progress.completed_chunks.len() != plan.chunks.len() {
        return Err(Stop::Failed(anyhow!("not every chunk was encoded")));
    }
    reporter.progress(Step::Upscale, frames_total, frames_total, 0.0, Some(0.0));
    Ok(())
}

fn percent(done: u64, total: u64) -> f64 {
    if total == 0 {
        100.0
    } else {
        100.0 * done as f64 / total as f64
    }
}

/// Leftovers of chunks that were in flight when a run stopped.
fn remove_partial_files(chunks_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(chunks_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_string_lossy().contains(".part") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Keep checking free space while chunks are written: a full disk stops the job cleanly
/// (the session stays resumable) instead of failing in the middle of an encoder.
pub(super) fn ensure_space(chunks_dir: &Path, chunk_bytes_estimate: u64) -> Result<(), Stop> {
    let free = fsutil::available_space(chunks_dir).unwrap_or(u64::MAX);
    let needed = chunk_bytes_estimate.saturating_mul(2) + SPACE_MARGIN_BYTES / 4;
    if free < needed {
        return Err(Stop::Failed(anyhow!(
            "the disk is nearly full ({} MiB free, about {} MiB needed for the next chunk); free some space and run again to resume: {}",
            free >> 20,
            needed >> 20,
            chunks_dir.display()
        )));
    }
    Ok(())
}

pub(super) fn encode_chunk(
    ctx: &Context,
    job: &Job,
    chunk: &Chunk,
    chunks_dir: &Path,
    mkvmerge: Option<&Path>,
    should_stop: &(dyn Fn() -> bool + Sync),
    report: &dyn Fn(u64),
) -> Result<Option<Vec<u8>>, Stop> {
    let parts: Vec<PathBuf> = (0..job.targets.len())
        .map(|r| chunks_dir.join(format!("r{r}_{:05}.part.mkv", chunk.index)))
        .collect();
    let thumbnail = match (job.engine.kind, mkvmerge) {
        (EngineKind::FfmpegScale { flags }, _) => {
            encode_in_ffmpeg(ctx, job, chunk, flags, &parts, should_stop, report)?
        }
        (EngineKind::Frames, Some(mkvmerge)) => {
            let raw_parts: Vec<PathBuf> = (0..job.targets.len())
                .map(|r| chunks_dir.join(format!("r{r}_{:05}.raw.part.mkv", chunk.index)))
                .collect();
            let thumbnail =
                encode_through_engine(ctx, job, chunk, &raw_parts, should_stop, report)?;
            let stamps = chunks_dir.join(format!("{:05}.timestamps.part.txt", chunk.index));
            write_timestamps(&stamps, job.plan().chunk_frame_times(chunk))?;
            for (raw, part) in raw_parts.iter().zip(&parts) {
                restore_timestamps(mkvmerge, raw, &stamps, part)?;
                let _ = std::fs::remove_file(raw);
            }
            let _ = std::fs::remove_file(&stamps);
            thumbnail
        }
        (EngineKind::Frames, None) => {
            return Err(Stop::Failed(anyhow!("mkvmerge is needed for this engine")));
        }
    };
    let expected = job.plan().chunk_frame_times(chunk);
    for (r, part) in parts.iter().enumerate() {
        let written = frame_times(&ctx.tools, part, 0)?;
        check_chunk_frames(
            expected,
            &written
                .frames
                .iter()
                .map(|f| f.time_secs)
                .collect::<Vec<_>>(),
        )?;
        // Durable before it is recorded as done.
        std::fs::File::open(part)
            .and_then(|f| f.sync_all())
            .with_context(|| format!("cannot flush {} to disk", part.display()))?;
        let done = chunk_file(chunks_dir, r, chunk.index);
        std::fs::rename(part, &done)
            .with_context(|| format!("cannot move {} into place", done.display()))?;
    }
    crate::fsutil::sync_dir(chunks_dir)
        .with_context(|| format!("cannot flush {} to disk", chunks_dir.display()))?;
    Ok(thumbnail)
}

/// A chunk holds exactly the planned frames: same count, and its first and last frames at the
/// planned times (Matroska stores milliseconds). Catches sources whose listed packets do not
/// all decode (a stream cut mid-GOP), which would otherwise shift frames between chunks.
fn check_chunk_frames(expected_secs: &[f64], written_secs: &[f64]) -> Result<(), Stop> {
    let (Some(first), Some(last)) = (expected_secs.first(), expected_secs.last()) else {
        return Ok(());
    };
    let near = |a: f64, b: f64| (a - b).abs() <= 0.0015;
    let damaged = |text: String| Stop::Failed(anyhow::Error::new(SourceDamaged(text)));
    if written_secs.len() != expected_secs.len() {
        return Err(damaged(format!(
            "expected {} frames, the decoder gave {} (the source is damaged around {first:.3} s)",
            expected_secs.len(),
            written_secs.len()
        )));
    }
    if !near(written_secs[0], *first) || !near(written_secs[written_secs.len() - 1], *last) {
        return Err(damaged(format!(
            "the chunk's frames are not the planned ones (first at {:.3} s instead of {first:.3} s): \
             the source cannot be decoded exactly at that point (damaged or cut stream)",
            written_secs[0]
        )));
    }
    Ok(())
}

/// A chunk the source cannot give as planned (frames missing or out of place): the same
/// decoder on the same bytes fails the same way on every run, so the job is not resumable.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct SourceDamaged(String);

impl SourceDamaged {
    /// Whether `error` (or anything it wraps) is one.
    pub(crate) fn is_in(error: &anyhow::Error) -> bool {
        error.chain().any(|e| e.is::<SourceDamaged>())
    }
}

/// `[-ss <seek>] -copyts -i file:<input>`: decode the chunk's frames with their source times.
fn input_args(job: &Job, chunk: &Chunk) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    if let Some(seek) = chunk.seek_secs {
        // With -copyts, -ss counts from the file's start time.
        let from_start = (seek - job.info.start_time_secs).max(0.0);
        args.extend(["-ss".into(), format!("{from_start:.6}").into()]);
    }
    args.extend(["-copyts".into(), "-i".into(), file_arg(&job.input)]);
    args
}

const FFMPEG_COMMON: [&str; 6] = [
    "-hide_banner",
    "-nostdin",
    "-nostats",
    "-loglevel",
    "error",
    "-y",
];
/// Machine-readable progress on stdout (read by [`supervise`]).
const PROGRESS_ON_STDOUT: [&str; 2] = ["-progress", "pipe:1"];

/// Filter graph from `[in]` to one `[o<r>]` label per rendition.
fn scale_graph(
    input_label: &str,
    pre: Option<&str>,
    targets: &[(u32, u32)],
    flags: &str,
    sar: Option<&str>,
) -> String {
    let mut graph = format!("[{input_label}]");
    if let Some(pre) = pre {
        graph.push_str(pre);
        graph.push(',');
    }
    let scale = |(w, h): (u32, u32)| {
        let mut s = format!("scale={w}:{h}:flags={flags}");
        if let Some(sar) = sar {
            s.push_str(&format!(",setsar={sar}"));
        }
        s
    };
    if targets.len() == 1 {
        graph.push_str(&scale(targets[0]));
        graph.push_str("[o0]");
        return graph;
    }
    graph.push_str(&format!("split={}", targets.len()));
    for r in 0..targets.len() {
        graph.push_str(&format!("[s{r}]"));
    }
    for (r, &t) in targets.iter().enumerate() {
        graph.push_str(&format!(";[s{r}]{}[o{r}]", scale(t)));
    }
    graph
}

/// Deinterlacer keeping one frame per frame (frame count and times unchanged).
const DEINTERLACE: &str = "bwdif=mode=send_frame";

/// What runs on decoded frames before scaling: the deinterlacer, then the HDR tone map (to
/// `pix_fmt`). `None` when neither applies.
fn pre_filters(job: &Job, pix_fmt: &str) -> Option<String> {
    let filters: Vec<String> = [
        job.deinterlace.then(|| DEINTERLACE.to_owned()),
        job.hdr
            .as_ref()
            .and_then(|hdr| hdr.tone_map_filter(pix_fmt)),
    ]
    .into_iter()
    .flatten()
    .collect();
    (!filters.is_empty()).then(|| filters.join(","))
}

fn output_args(job: &Job, chunk: &Chunk, parts: &[PathBuf]) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    for (r, (target, part)) in job.targets.iter().zip(parts).enumerate() {
        args.extend(["-map".into(), format!("[o{r}]").into()]);
        args.extend([
            "-frames:v".into(),
            chunk.frame_count.to_string().into(),
            "-fps_mode".into(),
            "passthrough".into(),
            // Encode in the source's time base: the default, 1/frame rate, would move
            // variable-rate frames onto a fixed grid.
            "-enc_time_base:v".into(),
            job.info.video.time_base.to_string().into(),
        ]);
        let codec_params = job
            .hdr
            .as_ref()
            .map(|hdr| hdr.codec_params(job.preset.video.codec))
            .unwrap_or_default();
        args.extend(
            job.preset
                .video_encoder_args(&target.rendition, job.frame_rate, Some(1), &codec_params)
                .into_iter()
                .map(OsString::from),
        );
        if let Some(hdr) = &job.hdr {
            args.extend(hdr.encoder_tag_args().into_iter().map(OsString::from));
        }
        args.extend([
            "-an".into(),
            "-sn".into(),
            "-dn".into(),
            "-f".into(),
            "matroska".into(),
            file_arg(part),
        ]);
    }
    args
}

fn encode_in_ffmpeg(
    ctx: &Context,
    job: &Job,
    chunk: &Chunk,
    flags: &str,
    parts: &[PathBuf],
    should_stop: &(dyn Fn() -> bool + Sync),
    report: &dyn Fn(u64),
) -> Result<Option<Vec<u8>>, Stop> {
    let mut cmd = Command::new(&ctx.tools.ffmpeg);
    cmd.args(FFMPEG_COMMON).args(PROGRESS_ON_STDOUT);
    cmd.args(input_args(job, chunk));
    let sizes: Vec<(u32, u32)> = job.targets.iter().map(|t| (t.width, t.height)).collect();
    let graph = scale_graph(
        &format!("0:{}", job.info.video.index),
        pre_filters(job, job.preset.video.pix_fmt.as_str()).as_deref(),
        &sizes,
        flags,
        None,
    );
    // One more output: the chunk's last frame, small (see `thumbnail`).
    // Beside the chunk's parts; a `.part` name, so a stopped run's leftover is swept.
    let raw_thumb = parts
        .first()
        .map(|p| p.with_file_name(format!("{:05}.thumb.part.rgb", chunk.index)));
    let thumb_size = sizes
        .first()
        .map(|&(w, h)| thumbnail::thumbnail_size(w, h))
        .filter(|_| chunk.frame_count > 0 && raw_thumb.is_some());
    let graph = match thumb_size {
        Some(size) => thumbnail::graph_with_thumbnail(&graph, chunk.frame_count - 1, size),
        None => graph,
    };
    cmd.args(["-filter_complex", &graph]);
    cmd.args(output_args(job, chunk, parts));
    if let (Some(_), Some(raw)) = (thumb_size, &raw_thumb) {
        cmd.args([
            "-map",
            "[thumb]",
            "-frames:v",
            thumbnail::THUMBNAIL_OUTPUT_FRAMES,
        ]);
        // Passthrough: a constant-rate output would repeat frame 0 to fill the time up to the
        // last frame, and stop at the repeat.
        cmd.args(["-fps_mode", "passthrough", "-f", "rawvideo"]);
        cmd.arg(file_arg(raw));
    }
    cmd.stdout(Stdio::piped());
    let child = process::spawn(cmd, &format!("chunk-{}", chunk.index))?;
    supervise(child, should_stop, report)?;
    Ok(match (thumb_size, raw_thumb) {
        (Some(size), Some(raw)) => thumbnail::jpeg_from_raw_file(&raw, size),
        _ => None,
    })
}

/// Wait for an ffmpeg that reports `-progress` on stdout, forwarding its frame count and
/// killing it when the job stops.
fn supervise(
    mut child: Spawned,
    should_stop: &(dyn Fn() -> bool + Sync),
    report: &dyn Fn(u64),
) -> Result<(), Stop> {
    let (tx, rx) = bounded::<u64>(16);
    let reader = child.take_stdout().map(|stdout| {
        std::thread::Builder::new()
            .name("ffmpeg-progress".into())
            .spawn(move || {
                let mut parser = ProgressParser::default();
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Some(update) = parser.feed_line(&line)
                        && let Some(frame) = update.frame
                        && tx.send(frame).is_err()
                    {
                        break;
                    }
                }
            })
    });
    let result = loop {
        if should_stop() {
            let _ = child.kill();
            break Err(Stop::Cancelled);
        }
        match rx.recv_timeout(POLL) {
            Ok(frames) => report(frames),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                break child.wait().map_err(|e| Stop::Failed(e.into()));
            }
        }
        if let Ok(Some(_)) = child.try_wait() {
            // Drain what is left; the channel disconnects when the reader sees EOF.
            while let Ok(frames) = rx.recv_timeout(Duration::from_secs(5)) {
                report(frames);
            }
            break child.wait().map_err(|e| Stop::Failed(e.into()));
        }
    };
    drop(rx);
    if let Some(Ok(handle)) = reader {
        let _ = handle.join();
    }
    result
}

/// Pipe path: decoder → engine (this thread) → encoder, each hand-off a bounded queue.
fn encode_through_engine(
    ctx: &Context,
    job: &Job,
    chunk: &Chunk,
    raw_parts: &[PathBuf],
    should_stop: &(dyn Fn() -> bool + Sync),
    report: &dyn Fn(u64),
) -> Result<Option<Vec<u8>>, Stop> {
    let (src_w, src_h) = job.info.video.display_size();
    let setup = FrameSetup {
        scale: job.engine_scale,
        denoise: job.settings.denoise,
        matrix: match &job.hdr {
            Some(hdr) => hdr.engine_matrix(),
            None => ColorMatrix::for_source(job.info.video.color_space.as_deref(), src_h),
        },
    };
    let mut engine: Box<dyn Upscaler> = job.engine.instantiate(&setup)?;
    let (eng_w, eng_h) = engine.output_size(src_w, src_h);

    let mut decoder_cmd = Command::new(&ctx.tools.ffmpeg);
    decoder_cmd.args(FFMPEG_COMMON);
    decoder_cmd.args(input_args(job, chunk));
    decoder_cmd.args(["-map", &format!("0:{}", job.info.video.index)]);
    if let Some(filters) = pre_filters(job, "yuv420p") {
        decoder_cmd.args(["-vf", &filters]);
    }
    decoder_cmd.args([
        "-frames:v",
        &chunk.frame_count.to_string(),
        "-fps_mode",
        "passthrough",
    ]);
    decoder_cmd.args(["-f", "rawvideo", "-pix_fmt", "yuv420p", "pipe:1"]);
    decoder_cmd.stdout(Stdio::piped());

    let mut encoder_cmd = Command::new(&ctx.tools.ffmpeg);
    encoder_cmd.args(FFMPEG_COMMON);
    encoder_cmd.args([
        "-f",
        "rawvideo",
        "-pix_fmt",
        "yuv420p",
        "-video_size",
        &format!("{eng_w}x{eng_h}"),
    ]);
    encoder_cmd.args([
        "-framerate",
        &format!("{:.6}", job.frame_rate),
        "-i",
        "pipe:0",
    ]);
    let sizes: Vec<(u32, u32)> = job.targets.iter().map(|t| (t.width, t.height)).collect();
    let sar = job.info.video.sar;
    let sar = if sar.num > 0 && sar.den > 0 {
        sar.to_string()
    } else {
        "1/1".to_owned()
    };
    encoder_cmd.args([
        "-filter_complex",
        &scale_graph("0:v", None, &sizes, "lanczos", Some(&sar)),
    ]);
    encoder_cmd.args(output_args(job, chunk, raw_parts));
    // stdout may be the event channel (`run --json`, the worker): never let a child write there.
    encoder_cmd.stdout(Stdio::null());

    let mut decoder = process::spawn(decoder_cmd, &format!("decode-{}", chunk.index))?;
    let mut encoder = process::spawn_with_stdin(
        encoder_cmd,
        &format!("encode-{}", chunk.index),
        Stdio::piped(),
    )?;
    let decoded = decoder
        .take_stdout()
        .ok_or_else(|| anyhow!("the decoder has no output pipe"))?;
    let encoder_in = encoder
        .take_stdin()
        .ok_or_else(|| anyhow!("the encoder has no input pipe"))?;

    let frame_len = Frame::yuv420p_len(src_w, src_h);
    let (frames_tx, frames_rx) = bounded::<Frame>(PIPE_QUEUE_FRAMES);
    let (out_tx, out_rx) = bounded::<Frame>(PIPE_QUEUE_FRAMES);
    let mut thumb: Option<(u32, u32, Vec<u8>)> = None;
    let last_frame = (chunk.frame_count as u64).saturating_sub(1);
    let result = std::thread::scope(|scope| -> Result<(), Stop> {
        let reader = std::thread::Builder::new()
            .name(format!("decode-reader-{}", chunk.index))
            .spawn_scoped(scope, move || {
                read_frames(decoded, src_w, src_h, frame_len, &frames_tx)
            })
            .context("cannot start the decoder reader thread")?;
        let writer = std::thread::Builder::new()
            .name(format!("encode-writer-{}", chunk.index))
            .spawn_scoped(scope, move || write_frames(encoder_in, &out_rx))
            .context("cannot start the encoder writer thread")?;
        let mut at_last = |frame: &Frame| thumb = thumbnail::thumbnail_from_yuv420p(frame);
        let processed = run_engine(
            engine.as_mut(),
            &frames_rx,
            out_tx,
            should_stop,
            report,
            (last_frame, &mut at_last),
        );
        drop(frames_rx);
        let read = reader
            .join()
            .map_err(|_| anyhow!("the decoder reader thread panicked"))?;
        let written = writer
            .join()
            .map_err(|_| anyhow!("the encoder writer thread panicked"))?;
        // The engine's own failure first; a cancel next.
        let processed = processed?;
        if should_stop() {
            return Err(Stop::Cancelled);
        }
        // Both children have seen their pipes close by now. A child's own error (with its log
        // tail: disk full, bad arguments) explains more than the broken pipe it left behind.
        let encoded = encoder.wait();
        let decoded = decoder.wait();
        encoded.map_err(anyhow::Error::from)?;
        decoded.map_err(anyhow::Error::from)?;
        let read = read?;
        written?;
        if processed != read {
            return Err(Stop::Failed(anyhow!(
                "the encoder stopped after {processed} of {read} frames"
            )));
        }
        if read != chunk.frame_count as u64 {
            return Err(Stop::Failed(anyhow!(
                "the decoder gave {read} frames, expected {}",
                chunk.frame_count
            )));
        }
        Ok(())
    });
    if result.is_err() {
        let _ = decoder.kill();
        let _ = encoder.kill();
    }
    result?;
    Ok(thumb.and_then(|(w, h, rgb)| thumbnail::encode_jpeg(w, h, &rgb)))
}

fn run_engine(
    engine: &mut dyn Upscaler,
    frames: &Receiver<Frame>,
    out: Sender<Frame>,
    should_stop: &(dyn Fn() -> bool + Sync),
    report: &dyn Fn(u64),
    (last_frame, at_last): (u64, &mut dyn FnMut(&Frame)),
) -> Result<u64, Stop> {
    let mut count = 0u64;
    loop {
        if should_stop() {
            return Err(Stop::Cancelled);
        }
        match frames.recv_timeout(POLL) {
            Ok(frame) => {
                let upscaled = engine
                    .process(&frame)
                    .map_err(|e| Stop::Failed(e.context("the engine failed")))?;
                if count == last_frame {
                    at_last(&upscaled);
                }
                if out.send(upscaled).is_err() {
                    // The encoder is gone; its exit status says why.
                    return Ok(count);
                }
                count += 1;
                report(count);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Ok(count),
        }
    }
}

fn read_frames(
    mut from: impl Read,
    width: u32,
    height: u32,
    frame_len: usize,
    to: &Sender<Frame>,
) -> anyhow::Result<u64> {
    let mut count = 0u64;
    loop {
        let mut data = vec![0u8; frame_len];
        let mut filled = 0;
        while filled < frame_len {
            match from.read(&mut data[filled..]) {
                Ok(0) if filled == 0 => return Ok(count),
                Ok(0) => bail!("the decoder stopped in the middle of a frame"),
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(anyhow::Error::new(e).context("cannot read decoded frames")),
            }
        }
        if to
            .send(Frame {
                width,
                height,
                data,
            })
            .is_err()
        {
            return Ok(count);
        }
        count += 1;
    }
}

fn write_frames(mut to: impl Write, from: &Receiver<Frame>) -> anyhow::Result<()> {
    for frame in from {
        to.write_all(&frame.data)
            .context("cannot send frames to the encoder")?;
    }
    to.flush().context("cannot send frames to the encoder")?;
    Ok(())
}

/// A v2 timestamps file (milliseconds, one line per frame) for mkvmerge.
fn write_timestamps(path: &Path, times_secs: &[f64]) -> Result<(), Stop> {
    let mut text = String::from("# timestamp format v2\n");
    for t in times_secs {
        text.push_str(&format!("{:.6}\n", t * 1000.0));
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn restore_timestamps(mkvmerge: &Path, raw: &Path, stamps: &Path, out: &Path) -> Result<(), Stop> {
    let mut cmd = Command::new(mkvmerge);
    cmd.arg("--quiet")
        .arg("-o")
        .arg(out)
        .arg("--timestamps")
        .arg({
            let mut s = OsString::from("0:");
            s.push(stamps);
            s
        });
    cmd.arg(raw).stdout(Stdio::null());
    match process::spawn(cmd, "mkvmerge")?.wait() {
        Ok(()) => Ok(()),
        // mkvmerge exits 1 for warnings only.
        Err(process::ProcessError::Failed {
            status: process::ExitKind::Code(1),
            ..
        }) => Ok(()),
        Err(e) => Err(Stop::Failed(e.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rendition_graph() {
        assert_eq!(
            scale_graph("0:0", None, &[(640, 480)], "lanczos", None),
            "[0:0]scale=640:480:flags=lanczos[o0]"
        );
        assert_eq!(
            scale_graph(
                "0:v",
                Some(DEINTERLACE),
                &[(640, 480)],
                "lanczos",
                Some("1/1")
            ),
            "[0:v]bwdif=mode=send_frame,scale=640:480:flags=lanczos,setsar=1/1[o0]"
        );
    }

    #[test]
    fn ladder_graph_splits_once() {
        assert_eq!(
            scale_graph("0:1", None, &[(1280, 720), (854, 480)], "lanczos", None),
            "[0:1]split=2[s0][s1];[s0]scale=1280:720:flags=lanczos[o0];[s1]scale=854:480:flags=lanczos[o1]"
        );
    }

    #[test]
    fn frames_are_read_whole_and_torn_frames_are_errors() {
        let (tx, rx) = unbounded();
        let len = Frame::yuv420p_len(2, 2);
        let bytes = vec![7u8; len * 2];
        assert_eq!(read_frames(&bytes[..], 2, 2, len, &tx).unwrap(), 2);
        assert_eq!(rx.try_iter().count(), 2);
        let torn = vec![7u8; len + 1];
        assert!(read_frames(&torn[..], 2, 2, len, &tx).is_err());
    }

    #[test]
    fn chunk_frames_must_be_the_planned_ones() {
        let planned = [1.0, 1.0417, 1.0833];
        assert!(check_chunk_frames(&planned, &[1.0, 1.042, 1.083]).is_ok());
        assert!(check_chunk_frames(&planned, &[1.0, 1.042]).is_err());
        // Shifted by one frame: same count, wrong frames.
        assert!(check_chunk_frames(&planned, &[0.9583, 1.0, 1.042]).is_err());
    }

    #[test]
    fn timestamps_file_is_in_milliseconds() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.txt");
        write_timestamps(&p, &[0.0, 0.041708, 1.5]).unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "# timestamp format v2\n0.000000\n41.708000\n1500.000000\n"
        );
    }
}
