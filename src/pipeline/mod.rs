//! The processing pipeline of one job: validate → upscale (by chunks) → package → verify
//! (and, in `batch`, of many jobs, each one's package and verify overlapping the next one's
//! chunks).
//!
//! This module owns the order of the steps, the session bookkeeping around them (what is
//! recorded in `progress.json` and when), failure and cancellation handling, and the events a
//! job reports. The steps themselves live in their own modules.

mod batch;
pub mod cluster;
mod colour;
mod damage;
mod output;
mod package;
pub mod plan;
mod streams;
mod thumbnail;
mod upscale;
mod validate;
mod verify;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context as _, anyhow};
use crossbeam_channel::Sender;

use crate::media::tools::Tools;
use crate::protocol::{Event, JobId, JobSpec, ResumeMode};
use crate::session::progress::{JobStatus, Progress, Step, StepStatus};
use crate::session::{Session, SessionStore};

pub use batch::run_batch;
pub use output::{VIDEO_EXTENSIONS, default_output_name, is_video_path};
pub use plan::Plan;
pub(crate) use validate::engine_output_size;

/// Shared, cloneable cancellation flag: set once, seen by every thread of a job.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// What a job needs from its surroundings.
pub struct Context {
    pub tools: Tools,
    pub store: SessionStore,
    pub cancel: CancelToken,
    pub events: Sender<Event>,
    /// Chunks encoded at the same time (one single-threaded encoder each).
    pub parallel_chunks: usize,
}

impl Context {
    /// Chunks in parallel: one per core, or `REFRAME_CHUNK_WORKERS`.
    pub fn default_parallelism() -> usize {
        std::env::var("REFRAME_CHUNK_WORKERS")
            .ok()
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
    }
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Finished {
        output: PathBuf,
    },
    Failed {
        error: String,
        resumable: bool,
    },
    Cancelled,
    /// The job runs on a cluster and this process stopped following it
    /// (`reframe sessions status ID` follows it again).
    Detached {
        session_id: String,
    },
}

/// Why a step stopped early.
#[derive(Debug)]
pub(crate) enum Stop {
    Cancelled,
    Failed(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for Stop {
    fn from(e: E) -> Self {
        Stop::Failed(e.into())
    }
}

/// Sends a job's events; a closed receiver is not the job's problem.
#[derive(Clone)]
pub(crate) struct Reporter {
    job: JobId,
    events: Sender<Event>,
}

impl Reporter {
    fn send(&self, event: Event) {
        let _ = self.events.send(event);
    }
    pub(crate) fn warn(&self, message: impl Into<String>) {
        let message = message.into();
        // The event is what people see (the CLI's `warning:` line, the window's log); a
        // warn-level log line too would print the same warning twice.
        log::info!("warning: {message}");
        self.send(Event::Warning {
            job: self.job,
            message,
        });
    }
    fn step(&self, step: Step, status: StepStatus) {
        self.send(Event::StepChanged {
            job: self.job,
            step,
            status,
        });
    }
    pub(crate) fn progress(
        &self,
        step: Step,
        frames_done: u64,
        frames_total: u64,
        fps: f64,
        eta_secs: Option<f64>,
    ) {
        let percent = if frames_total == 0 {
            100.0
        } else {
            100.0 * frames_done as f64 / frames_total as f64
        };
        self.send(Event::Progress {
            job: self.job,
            step,
            percent,
            frames_done,
            frames_total,
            fps,
            eta_secs,
        });
    }
    pub(crate) fn thumbnail(&self, chunk: usize, path: PathBuf) {
        self.send(Event::Thumbnail {
            job: self.job,
            chunk,
            path,
        });
    }
    pub(crate) fn chunk_done(&self, index: usize, chunks_done: usize, chunks_total: usize) {
        self.send(Event::ChunkDone {
            job: self.job,
            index,
            chunks_done,
            chunks_total,
        });
    }
}

/// Run one job to its end and report it. Never panics on bad input: every problem becomes
/// [`Outcome::Failed`] with a message that says what to do.
pub fn run_job(ctx: &Context, job: JobId, spec: &JobSpec) -> Outcome {
    let reporter = Reporter {
        job,
        events: ctx.events.clone(),
    };
    let started = Instant::now();
    let outcome = match prepare_and_run(ctx, &reporter, spec, Role::Local) {
        Ok(output) => Outcome::Finished { output },
        Err(failure) => failure.into(),
    };
    report_outcome(&reporter, started, &outcome);
    outcome
}

/// The job's last event.
fn report_outcome(reporter: &Reporter, started: Instant, outcome: &Outcome) {
    let job = reporter.job;
    reporter.send(match outcome {
        Outcome::Finished { output } => Event::JobFinished {
            job,
            output: output.clone(),
            elapsed_secs: started.elapsed().as_secs_f64(),
        },
        Outcome::Failed { error, resumable } => Event::JobFailed {
            job,
            error: error.clone(),
            resumable: *resumable,
        },
        Outcome::Cancelled => Event::JobCancelled { job },
        // Still running elsewhere: no end to report.
        Outcome::Detached { .. } => return,
    });
}

impl From<JobFailure> for Outcome {
    fn from(failure: JobFailure) -> Outcome {
        match failure {
            JobFailure::Cancelled => Outcome::Cancelled,
            JobFailure::Failed { error, resumable } => Outcome::Failed {
                error: format!("{error:#}"),
                resumable,
            },
        }
    }
}

enum JobFailure {
    Cancelled,
    Failed {
        error: anyhow::Error,
        resumable: bool,
    },
}

impl JobFailure {
    fn before_session(error: impl Into<anyhow::Error>) -> Self {
        JobFailure::Failed {
            error: error.into(),
            resumable: false,
        }
    }
}

/// Who runs a job's steps.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Role<'a> {
    /// This process does everything, and removes the session once the output is verified.
    Local,
    /// A cluster's package task: the chunk tasks made every chunk; this packages and
    /// verifies, and leaves the session (marked completed, chunks removed) for the submitting
    /// process to see. It runs only on the session it was submitted for.
    ClusterPackage { session_id: &'a str },
}

fn prepare_and_run(
    ctx: &Context,
    reporter: &Reporter,
    spec: &JobSpec,
    role: Role,
) -> Result<PathBuf, JobFailure> {
    let mut open = open_job(ctx, reporter, spec, role)?;
    open.run(ctx, reporter, &Step::ALL)?;
    Ok(open.close(reporter))
}

/// A job with its session open, between its steps.
struct OpenJob<'a> {
    job: validate::Job,
    session: Session,
    progress: Progress,
    role: Role<'a>,
}

/// Validate the input, plan the job and open (or resume) its session; announces the job.
fn open_job<'a>(
    ctx: &Context,
    reporter: &Reporter,
    spec: &JobSpec,
    role: Role<'a>,
) -> Result<OpenJob<'a>, JobFailure> {
    let job = validate::prepare(ctx, reporter, spec).map_err(JobFailure::before_session)?;
    if let Role::ClusterPackage { session_id } = role {
        cluster::check_same_session(&job, session_id).map_err(JobFailure::before_session)?;
    }
    let validate::Prepared {
        session,
        mut progress,
        plan,
        resumed,
        ..
    } = job.open_session(ctx, reporter, spec)?;
    let job = job.with_plan(plan);
    if resumed {
        cluster::fold_chunk_markers(&job, &session, &mut progress);
        repair_resumed(reporter, &job, &session, &mut progress);
    }
    match role {
        Role::Local => {
            cluster::check_not_on_cluster(&session).map_err(JobFailure::before_session)?
        }
        Role::ClusterPackage { .. } => {
            let pending = progress.pending_chunks();
            if !pending.is_empty() {
                return Err(JobFailure::Failed {
                    error: anyhow!(
                        "chunk(s) {} are not done (their tasks failed or were cancelled); run the same command again to submit them",
                        cluster::list_of(&pending)
                    ),
                    resumable: true,
                });
            }
        }
    }
    reporter.send(Event::JobStarted {
        job: reporter.job,
        input: job.input.clone(),
        output: job.output.clone(),
        session_id: session.id().to_owned(),
        resumed,
        chunks_total: job.plan().chunks.len(),
        chunks_done: progress.completed_chunks.len(),
        frames_total: job.plan().frame_count() as u64,
    });
    Ok(OpenJob {
        job,
        session,
        progress,
        role,
    })
}

impl OpenJob<'_> {
    /// Run those of `steps` that are not done yet. A failure is recorded in the session (and
    /// says whether running again can help).
    fn run(
        &mut self,
        ctx: &Context,
        reporter: &Reporter,
        steps: &[Step],
    ) -> Result<(), JobFailure> {
        let Err((step, stop)) = run_steps(
            ctx,
            reporter,
            &self.job,
            &self.session,
            &mut self.progress,
            steps,
        ) else {
            return Ok(());
        };
        // A child that died because the job was being cancelled is a cancel, not a failure.
        let stop = if ctx.cancel.is_cancelled() {
            Stop::Cancelled
        } else {
            stop
        };
        let (status, failure) = match stop {
            Stop::Cancelled => (JobStatus::Cancelled, JobFailure::Cancelled),
            Stop::Failed(error) => {
                // Damage in the source fails again on every run: say so, and do not
                // offer to resume.
                let recurs = upscale::SourceDamaged::is_in(&error);
                let error = if recurs {
                    error.context(
                        "this file cannot be processed as it is (running again fails the same way)",
                    )
                } else {
                    error
                };
                self.progress.fail_step(step, format!("{error:#}"));
                (
                    JobStatus::Failed,
                    JobFailure::Failed {
                        error,
                        resumable: !recurs,
                    },
                )
            }
        };
        self.progress.status = status;
        if let Err(e) = self.session.save_progress(&mut self.progress) {
            log::error!("could not record the job's state in its session: {e:#}");
        }
        Err(failure)
    }

    /// After the last step: a local job removes its session; a cluster's package task keeps
    /// the record (completed) for the submitting process, and the records of frames left out
    /// (it tells the user), and removes the chunks.
    fn close(self, reporter: &Reporter) -> PathBuf {
        match self.role {
            Role::ClusterPackage { .. } => {
                if let Err(e) = damage::remove_all_but_records(&self.session.chunks_dir()) {
                    log::warn!("could not remove the packaged chunks: {e}");
                }
            }
            Role::Local => {
                if let Err(e) = self.session.delete() {
                    reporter.warn(format!(
                        "could not remove the finished session directory: {e:#}"
                    ));
                }
            }
        }
        self.job.output
    }
}

fn run_steps(
    ctx: &Context,
    reporter: &Reporter,
    job: &validate::Job,
    session: &Session,
    progress: &mut Progress,
    steps: &[Step],
) -> Result<(), (Step, Stop)> {
    progress.status = JobStatus::InProgress;
    for &step in steps {
        if progress.steps.get(step).status == StepStatus::Completed {
            continue;
        }
        if ctx.cancel.is_cancelled() {
            return Err((step, Stop::Cancelled));
        }
        progress.begin_step(step);
        save(session, progress).map_err(|e| (step, e))?;
        reporter.step(step, StepStatus::InProgress);
        let result = match step {
            Step::Validate => validate::check_space(job, session),
            Step::Upscale => upscale::run(ctx, reporter, job, session, progress),
            Step::Package => package::run(ctx, reporter, job, session),
            Step::Verify => verify::run(ctx, job, &session.chunks_dir()),
        };
        if let Err(stop) = result {
            if matches!(stop, Stop::Failed(_)) {
                reporter.step(step, StepStatus::Failed);
            }
            return Err((step, stop));
        }
        progress.finish_step(step);
        if step == Step::Verify {
            progress.status = JobStatus::Completed;
        }
        save(session, progress).map_err(|e| (step, e))?;
        reporter.step(step, StepStatus::Completed);
    }
    Ok(())
}

/// Make a resumed session's record agree with its files: a chunk recorded as done whose file
/// is gone or empty is done again, and a packaged output that is gone (or failed its check)
/// is packaged again.
fn repair_resumed(
    reporter: &Reporter,
    job: &validate::Job,
    session: &Session,
    progress: &mut Progress,
) {
    let chunks_dir = session.chunks_dir();
    let missing: Vec<usize> = progress
        .completed_chunks
        .iter()
        .copied()
        .filter(|&i| !upscale::chunk_in_place(&chunks_dir, job.targets.len(), i))
        .collect();
    if !missing.is_empty() {
        reporter.warn(format!(
            "{} finished chunk(s) are missing from the session folder; they are encoded again",
            missing.len()
        ));
        for i in missing {
            progress.completed_chunks.remove(&i);
        }
        for step in [Step::Upscale, Step::Package, Step::Verify] {
            *progress.steps.get_mut(step) = Default::default();
        }
    }
    let packaged = package::temp_output_path(&job.output);
    if progress.steps.get(Step::Package).status == StepStatus::Completed
        && (!packaged.exists() || progress.steps.get(Step::Verify).status == StepStatus::Failed)
    {
        for step in [Step::Package, Step::Verify] {
            *progress.steps.get_mut(step) = Default::default();
        }
    }
}

fn save(session: &Session, progress: &mut Progress) -> Result<(), Stop> {
    session
        .save_progress(progress)
        .with_context(|| {
            format!(
                "could not write the session's progress file in {}",
                session.dir().display()
            )
        })
        .map_err(Stop::Failed)
}

/// Resolve `--resume` / `--restart` against what the session holds.
fn resume_decision(mode: ResumeMode, has_state: bool) -> Result<bool, anyhow::Error> {
    match (mode, has_state) {
        (ResumeMode::Restart, _) => Ok(false),
        (ResumeMode::Resume, false) => Err(anyhow!(
            "there is no earlier run of this file with these settings to resume"
        )),
        (_, has) => Ok(has),
    }
}
