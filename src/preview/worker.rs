//! `reframe worker preview`: the preview child process. Reads [`WorkerRequest`]s on stdin and
//! answers each request id with replies on stdout ([`super::wire`]); logs go to stderr.
//!
//! One lane (thread) per kind runs side by side, so a long audio decode never delays a frame or
//! a zoom: frames (with [`FramePreviewer`]'s caches), overviews and viewports (each with the
//! current input's [`AudioCache`]). A new request of a kind cancels the previous one of that
//! kind at once (the client also sends `cancel`); a cancelled request answers `cancelled` —
//! at once if it was still queued — so the client knows the lane is free. The worker exits when its
//! stdin closes; its ffmpeg children die with it (parent-death signal).

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use crossbeam_channel::{Receiver, Sender, TryRecvError, unbounded};

use super::decode::{ApproximateFrame, FrameError, FramePreviewer};
use super::wire::{
    self, ImageHeader, PREVIEW_PROTOCOL_VERSION, WorkerReply, WorkerRequest, spectrogram_to_wire,
};
use super::{PreviewRequest, RequestKind, RgbaImage};
use crate::media::tools::Tools;
use crate::spectrum::{self, AudioCache, Spectrogram, SpectrumError};

/// A reply and its payload parts, queued for the stdout writer.
type Outgoing = (WorkerReply, Vec<Vec<u8>>);

struct Job {
    id: u64,
    request: PreviewRequest,
    cancel: Arc<AtomicBool>,
    state: Arc<AtomicU8>,
    /// When the request was read (for the log: how long it waited for its lane).
    received: std::time::Instant,
}

/// [`Job::state`]: waiting in its lane's queue, running, or cancelled before it started (then
/// `cancelled` was already sent and the lane skips it).
const QUEUED: u8 = 0;
const RUNNING: u8 = 1;
const DROPPED: u8 = 2;

/// Cancel flags and states of requests not finished yet, by id.
type Outstanding = Arc<Mutex<HashMap<u64, (Arc<AtomicBool>, Arc<AtomicU8>)>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs the preview worker on this process's stdin and stdout until stdin closes.
pub fn run(tools: Tools) -> anyhow::Result<()> {
    limit_malloc_arenas();
    let (out_tx, out_rx) = unbounded::<Outgoing>();
    let writer = std::thread::Builder::new()
        .name("preview-stdout".into())
        .spawn(move || write_replies(&out_rx))
        .context("cannot start the output thread")?;
    let _ = out_tx.send((
        WorkerReply::Hello {
            version: PREVIEW_PROTOCOL_VERSION,
            pid: std::process::id(),
        },
        Vec::new(),
    ));

    let outstanding: Outstanding = Arc::default();
    // Set when a frame request is sent to the frame lane: interrupts its prefetching at once.
    let frame_waiting = Arc::new(AtomicBool::new(false));
    let frame_lane = {
        let (out, outstanding) = (out_tx.clone(), Arc::clone(&outstanding));
        let state = (
            FramePreviewer::new(tools.clone()),
            Arc::clone(&frame_waiting),
        );
        spawn_lane_with_idle(
            "preview-frames",
            state,
            move |(previewer, waiting), job: Job| {
                waiting.store(false, Ordering::SeqCst);
                let reply = run_frame(previewer, &job, &out);
                finish(&out, &outstanding, job.id, reply);
                previewer.resume_background();
            },
            |(previewer, waiting)| previewer.prefetch_step(waiting),
        )?
    };
    // Overviews and viewports in lanes of their own: a long overview decode never holds up a
    // zoom, and a superseded viewport queued behind an overview is answered at once.
    let audio_lane = |name: &str| {
        let (out, outstanding) = (out_tx.clone(), Arc::clone(&outstanding));
        let mut audio = AudioLane {
            tools: tools.clone(),
            cache: None,
        };
        spawn_lane(name, move |job: Job| {
            let reply = audio.run(&job, &out);
            finish(&out, &outstanding, job.id, reply);
        })
    };
    let overview_lane = audio_lane("preview-overview")?;
    let spectrogram_lane = audio_lane("preview-spectrogram")?;

    let mut latest: [Option<u64>; 3] = [None; 3];
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let request = match serde_json::from_str::<WorkerRequest>(&line) {
            Ok(request) => request,
            Err(e) => {
                log::error!("ignoring a request that is not valid: {e}: {line}");
                continue;
            }
        };
        match request {
            WorkerRequest::Hello { version } if version != PREVIEW_PROTOCOL_VERSION => {
                log::error!(
                    "preview protocol version {version} is not {PREVIEW_PROTOCOL_VERSION}; exiting"
                );
                break;
            }
            WorkerRequest::Hello { .. } => {}
            WorkerRequest::Preview { id, request } => {
                let kind = request.kind();
                let cancel = Arc::new(AtomicBool::new(false));
                let state = Arc::new(AtomicU8::new(QUEUED));
                // The previous request of this kind is stale now.
                if let Some(previous) = latest[kind.index()] {
                    cancel_request(&outstanding, &out_tx, previous);
                }
                lock(&outstanding).insert(id, (Arc::clone(&cancel), Arc::clone(&state)));
                latest[kind.index()] = Some(id);
                if kind == RequestKind::Frame {
                    frame_waiting.store(true, Ordering::SeqCst);
                }
                let lane = match kind {
                    RequestKind::Frame => &frame_lane,
                    RequestKind::Overview => &overview_lane,
                    RequestKind::Spectrogram => &spectrogram_lane,
                };
                let _ = lane.send(Job {
                    id,
                    request,
                    cancel,
                    state,
                    received: std::time::Instant::now(),
                });
            }
            WorkerRequest::Cancel { id } => cancel_request(&outstanding, &out_tx, id),
            WorkerRequest::Shutdown => break,
        }
    }
    for (flag, _) in lock(&outstanding).values() {
        flag.store(true, Ordering::SeqCst);
    }
    drop(out_tx);
    // Lanes stop at their next cancellation check; an engine call in progress is not waited
    // for: returning ends the process, and the parent-death signal ends its ffmpeg children.
    drop((frame_lane, overview_lane, spectrogram_lane));
    let _ = writer;
    Ok(())
}

/// Stops request `id`: one still queued is answered `cancelled` now (its lane will skip it);
/// a running one is told through its flag and answers when it stops.
/// Frames (megabytes each) are allocated by reader threads and freed by others. glibc gives
/// each thread an arena of its own (up to 8 per core) and raises its mmap threshold after the
/// first large free, so those buffers land in arenas that keep their free memory: the worker
/// peaked at 1.18 GB with 400 MiB of frames stored. Two arenas: 644 MB, at the same speed (a
/// fixed 1 MiB mmap threshold also bounds it, but every frame then costs its page faults:
/// requests took 40 % longer).
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt(3) before this process starts its threads; it only tunes the allocator.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

fn cancel_request(outstanding: &Outstanding, out: &Sender<Outgoing>, id: u64) {
    let mut outstanding = lock(outstanding);
    let Some((flag, state)) = outstanding.get(&id) else {
        return;
    };
    flag.store(true, Ordering::SeqCst);
    if state
        .compare_exchange(QUEUED, DROPPED, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok()
    {
        outstanding.remove(&id);
        let _ = out.send(cancelled(id));
    }
}

fn write_replies(replies: &Receiver<Outgoing>) {
    // Straight to fd 1, not through std's line-buffered stdout, which would scan every
    // multi-megabyte payload for newlines.
    let mut out: Box<dyn Write> = match std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
    {
        Ok(file) => {
            super::converter::enlarge_pipe(&file);
            Box::new(file)
        }
        Err(_) => Box::new(std::io::stdout()),
    };
    for (header, parts) in replies {
        let parts: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        let started = std::time::Instant::now();
        let written = wire::write_message(&mut out, &header, &parts);
        log::debug!(
            "reply of {} bytes written in {:.0} ms",
            header.payload_bytes(),
            started.elapsed().as_secs_f64() * 1000.0
        );
        if written.is_err() {
            // The client is gone.
            break;
        }
    }
}

fn spawn_lane(
    name: &str,
    mut handle: impl FnMut(Job) + Send + 'static,
) -> anyhow::Result<Sender<Job>> {
    spawn_lane_with_idle(name, (), move |(), job| handle(job), |()| false)
}

/// A lane owning `state` that runs `idle` steps while no job waits (each returns whether there
/// is more to do; a step must return soon once a job is sent to the lane).
fn spawn_lane_with_idle<S: Send + 'static>(
    name: &str,
    mut state: S,
    mut handle: impl FnMut(&mut S, Job) + Send + 'static,
    mut idle: impl FnMut(&mut S) -> bool + Send + 'static,
) -> anyhow::Result<Sender<Job>> {
    let (tx, rx) = unbounded::<Job>();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let mut idle_work = false;
            loop {
                let job = if idle_work {
                    match rx.try_recv() {
                        Ok(job) => job,
                        Err(TryRecvError::Empty) => {
                            idle_work = idle(&mut state);
                            continue;
                        }
                        Err(TryRecvError::Disconnected) => break,
                    }
                } else {
                    match rx.recv() {
                        Ok(job) => job,
                        Err(_) => break,
                    }
                };
                // Cancelled while queued: already answered.
                if job
                    .state
                    .compare_exchange(QUEUED, RUNNING, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
                {
                    handle(&mut state, job);
                    idle_work = true;
                }
            }
        })
        .with_context(|| format!("cannot start the {name} thread"))?;
    Ok(tx)
}

fn finish(out: &Sender<Outgoing>, outstanding: &Outstanding, id: u64, reply: Outgoing) {
    lock(outstanding).remove(&id);
    let _ = out.send(reply);
}

fn error(id: u64, message: impl Into<String>) -> Outgoing {
    (
        WorkerReply::Error {
            id,
            message: message.into(),
        },
        Vec::new(),
    )
}

fn cancelled(id: u64) -> Outgoing {
    (WorkerReply::Cancelled { id }, Vec::new())
}

fn run_frame(previewer: &mut FramePreviewer, job: &Job, out: &Sender<Outgoing>) -> Outgoing {
    let PreviewRequest::Frame {
        input,
        frame_index,
        engine,
        scale,
        denoise,
        models_dir,
        approximate,
    } = &job.request
    else {
        return error(job.id, "not a frame request");
    };
    // The user waits for this frame: nothing else of ours runs meanwhile.
    previewer.pause_background();
    log::debug!(
        "frame request {} started after {:.1} ms in the queue",
        job.id,
        job.received.elapsed().as_secs_f64() * 1000.0
    );
    if job.cancel.load(Ordering::SeqCst) {
        // Still worth starting the probe: the user is likely to come back to this input.
        previewer.warm(input);
        return cancelled(job.id);
    }
    let models_dir = crate::engine::models::models_dir(models_dir.as_deref());
    let engine =
        match crate::engine::resolve_in(models_dir.as_deref(), engine, Some(*scale), *denoise) {
            Ok(engine) => engine,
            Err(e) => return error(job.id, e.to_string()),
        };
    // A keyframe's picture at once, while the exact frame decodes.
    let started = std::time::Instant::now();
    if let Some(approx) = previewer.approximation(input, *frame_index) {
        log::debug!(
            "frame {frame_index}: keyframe {} pictured in {:.1} ms",
            approx.approximation.picture_index,
            started.elapsed().as_secs_f64() * 1000.0
        );
        let reply = approximation_reply(job.id, *frame_index, approx, *approximate);
        if *approximate {
            return reply;
        }
        let _ = out.send(reply);
    }
    // The frame before a slow engine's result, so the user sees where the cursor is at once.
    let mut send_before = |before: &RgbaImage, time_secs: f64| {
        let header = ImageHeader::of(before);
        let _ = out.send((
            WorkerReply::FrameBefore {
                id: job.id,
                frame_index: *frame_index,
                time_secs,
                before: header,
                payload_bytes: header.rgba_bytes(),
            },
            vec![before.pixels.clone()],
        ));
    };
    let preview = previewer.preview(
        input,
        *frame_index,
        &engine,
        *scale,
        *denoise,
        &job.cancel,
        &mut send_before,
    );
    match preview {
        Ok(p) => {
            let (before, after) = (ImageHeader::of(&p.before), ImageHeader::of(&p.after));
            (
                WorkerReply::Frame {
                    id: job.id,
                    frame_index: p.frame_index,
                    time_secs: p.time_secs,
                    before,
                    after,
                    payload_bytes: before.rgba_bytes() + after.rgba_bytes(),
                },
                vec![p.before.pixels, p.after.pixels],
            )
        }
        Err(FrameError::Cancelled) => cancelled(job.id),
        Err(FrameError::Failed(message)) => error(
            job.id,
            format!(
                "cannot preview frame {frame_index}: {message}: {}",
                input.display()
            ),
        ),
    }
}

fn approximation_reply(
    id: u64,
    frame_index: u64,
    approx: ApproximateFrame,
    done: bool,
) -> Outgoing {
    let header = ImageHeader::of(&approx.approximation.picture);
    (
        WorkerReply::FrameApprox {
            id,
            frame_index,
            picture_index: approx.approximation.picture_index,
            time_secs: approx.time_secs,
            picture: header,
            display: ImageHeader {
                width: approx.display.0,
                height: approx.display.1,
            },
            done,
            payload_bytes: header.rgba_bytes(),
        },
        vec![approx.approximation.picture.pixels],
    )
}

struct AudioLane {
    tools: Tools,
    /// The current input's decoded audio, kept while the worker is warm.
    cache: Option<(PathBuf, AudioCache)>,
}

impl AudioLane {
    fn run(&mut self, job: &Job, out: &Sender<Outgoing>) -> Outgoing {
        if job.cancel.load(Ordering::SeqCst) {
            return cancelled(job.id);
        }
        let result = match &job.request {
            PreviewRequest::Overview {
                input,
                width,
                height,
            } => self.overview(job, input, *width as usize, *height as usize, out),
            PreviewRequest::Spectrogram {
                input,
                start_secs,
                end_secs,
                width,
                height,
            } => self
                .audio(input, *width as usize, *height as usize, &job.cancel)
                .and_then(|audio| {
                    spectrum::viewport(
                        audio,
                        *start_secs,
                        *end_secs,
                        *width as usize,
                        *height as usize,
                        &job.cancel,
                    )
                })
                .map(|s| spectrogram_reply(job.id, false, true, &s)),
            PreviewRequest::Frame { .. } => return error(job.id, "not an audio request"),
        };
        let input = match &job.request {
            PreviewRequest::Overview { input, .. }
            | PreviewRequest::Spectrogram { input, .. }
            | PreviewRequest::Frame { input, .. } => input,
        };
        match result {
            Ok(reply) => reply,
            Err(SpectrumError::Cancelled) => cancelled(job.id),
            Err(SpectrumError::NoAudio) => error(job.id, "no audio track"),
            Err(e) => error(
                job.id,
                format!(
                    "cannot show the audio spectrogram: {e}: {}",
                    input.display()
                ),
            ),
        }
    }

    /// The AudioCache of `input`, opened (decoded) if it is not the current one.
    fn audio(
        &mut self,
        input: &Path,
        width: usize,
        height: usize,
        cancel: &AtomicBool,
    ) -> Result<&AudioCache, SpectrumError> {
        let current = self.cache.as_ref().is_some_and(|(path, _)| path == input);
        if !current {
            self.cache = None;
            let audio = AudioCache::open(&self.tools, input, width, height, cancel, &mut |_| {})?;
            self.cache = Some((input.to_path_buf(), audio));
        }
        match &self.cache {
            Some((_, audio)) => Ok(audio),
            None => Err(SpectrumError::Cancelled),
        }
    }

    fn overview(
        &mut self,
        job: &Job,
        input: &Path,
        width: usize,
        height: usize,
        out: &Sender<Outgoing>,
    ) -> Result<Outgoing, SpectrumError> {
        let mut last: Option<Spectrogram> = None;
        let mut report = |s: &Spectrogram| {
            let _ = out.send(spectrogram_reply(job.id, true, false, s));
            last = Some(s.clone());
        };
        self.cache = None;
        let audio = AudioCache::open(&self.tools, input, width, height, &job.cancel, &mut report)?;
        let complete = match last {
            Some(s) if s.columns_done >= s.width => s,
            _ => spectrum::viewport(
                &audio,
                0.0,
                audio.duration_secs(),
                width,
                height,
                &job.cancel,
            )?,
        };
        self.cache = Some((input.to_path_buf(), audio));
        Ok(spectrogram_reply(job.id, true, true, &complete))
    }
}

fn spectrogram_reply(id: u64, overview: bool, done: bool, s: &Spectrogram) -> Outgoing {
    let (header, payload) = spectrogram_to_wire(s);
    (
        WorkerReply::Spectrogram {
            id,
            overview,
            done,
            spectrogram: header,
            payload_bytes: payload.len() as u64,
        },
        vec![payload],
    )
}
