//! A job on a Slurm cluster (`reframe run --cluster slurm`): the same steps as a local run,
//! spread over processes on other machines.
//!
//! * The submitting process validates and plans exactly as locally (same session, same
//!   `plan.json`), folds in the chunks earlier tasks finished, and submits the chunks still to
//!   do as job arrays (task → chunk `base + $SLURM_ARRAY_TASK_ID`) plus one package job that
//!   runs only if every array succeeds (`afterok`, `--kill-on-invalid-dep=yes`). It then
//!   releases the session and follows: chunk markers for progress, `squeue` for the jobs,
//!   `progress.json` (written by the package task) for the end.
//! * A chunk task ([`chunk_task`], `reframe worker chunk`) rebuilds the job from the spec in
//!   `cluster.json`, checks it is still the same session, encodes its one chunk with the
//!   pipeline's own chunk encoder, and writes its marker. It never touches `progress.json`.
//! * The package task ([`package_task`], `reframe worker package`) takes the session's lock,
//!   folds the markers in, and runs the remaining steps (package, verify) as a local resume
//!   would; it leaves the session marked completed (chunks removed), and the follower
//!   removes it.
//!
//! So the output is the one a local run makes, and running the same command again after a
//! failed node, a timeout or a cancelled task submits only the chunks that are missing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, anyhow, bail};

use super::plan::Plan;
use super::validate::{self, Job, PLAN_FILE};
use super::{Context, JobFailure, Outcome, Reporter, Stop, upscale};
use crate::cluster::slurm::{self, SbatchRequest, Slurm};
use crate::cluster::storage::{self, NeededPath};
use crate::cluster::{
    self, ClusterOptions, ClusterRecord, RECORD_FILE, RECORD_VERSION, SubmittedArray,
};
use crate::engine::EngineKind;
use crate::protocol::{Event, JobId, JobSpec};
use crate::session::progress::{JobStatus, Progress, Step, StepStatus};
use crate::session::{Session, SessionStore, session_id};

mod follow;
mod tasks;

use follow::{follow, live_jobs};
pub use tasks::{chunk_task, package_task};

/// Run one job on the cluster: submit what is left of it, then follow it to its end (or
/// return once submitted with `--detach`). `ask_cancel` is asked, after a Ctrl-C, whether
/// the cluster jobs (their ids given) should be cancelled too.
pub fn run_job(
    ctx: &Context,
    job: JobId,
    spec: &JobSpec,
    options: &ClusterOptions,
    ask_cancel: &dyn Fn(&[String]) -> bool,
) -> Outcome {
    let reporter = Reporter {
        job,
        events: ctx.events.clone(),
    };
    let started = Instant::now();
    let result = submit(ctx, &reporter, spec, options).and_then(|submitted| {
        if options.detach {
            Ok(Followed::Detached(submitted.session_id))
        } else {
            follow(ctx, &reporter, &submitted, ask_cancel)
        }
    });
    finish(&reporter, started, result)
}

/// Follow the cluster run of session `session_id` again (`reframe sessions status ID`).
pub fn attach(
    ctx: &Context,
    job: JobId,
    session_id: &str,
    ask_cancel: &dyn Fn(&[String]) -> bool,
) -> Outcome {
    let reporter = Reporter {
        job,
        events: ctx.events.clone(),
    };
    let started = Instant::now();
    let result = reattach(ctx, &reporter, session_id)
        .and_then(|submitted| follow(ctx, &reporter, &submitted, ask_cancel));
    finish(&reporter, started, result)
}

/// How following a cluster run ended, when it did not fail.
enum Followed {
    Finished(PathBuf),
    /// The jobs are on the cluster and this process returns (`--detach`, or a Ctrl-C that
    /// left them running).
    Detached(String),
}

fn finish(reporter: &Reporter, started: Instant, result: Result<Followed, JobFailure>) -> Outcome {
    let outcome = match result {
        Ok(Followed::Finished(output)) => Outcome::Finished { output },
        Ok(Followed::Detached(session_id)) => Outcome::Detached { session_id },
        Err(failure) => failure.into(),
    };
    super::report_outcome(reporter, started, &outcome);
    outcome
}

/// What the follower needs to know about a submitted run.
struct Submitted {
    slurm: Slurm,
    session_id: String,
    record: ClusterRecord,
    /// Frames of each chunk of the plan.
    chunk_frames: Vec<u64>,
    output: PathBuf,
    /// Chunks already done when following starts.
    done_before: BTreeSet<usize>,
}

fn failed(error: impl Into<anyhow::Error>) -> JobFailure {
    JobFailure::Failed {
        error: error.into(),
        resumable: true,
    }
}

fn submit(
    ctx: &Context,
    reporter: &Reporter,
    spec: &JobSpec,
    options: &ClusterOptions,
) -> Result<Submitted, JobFailure> {
    let slurm = Slurm::locate().map_err(JobFailure::before_session)?;
    let spec = absolute_spec(spec).map_err(JobFailure::before_session)?;
    let job = validate::prepare(ctx, reporter, &spec).map_err(JobFailure::before_session)?;
    let exe = std::env::current_exe()
        .context("cannot find this program's own path for the cluster's tasks")
        .map_err(JobFailure::before_session)?;
    check_storage(&slurm, ctx.store.root(), &job, &exe, options, reporter)
        .map_err(JobFailure::before_session)?;

    let validate::Prepared {
        session,
        mut progress,
        plan,
        resumed,
    } = job.open_session(ctx, reporter, &spec)?;
    let job = job.with_plan(plan);
    if resumed {
        fold_chunk_markers(&job, &session, &mut progress);
        super::repair_resumed(reporter, &job, &session, &mut progress);
    }
    let id = session.id().to_owned();
    let job_name = cluster::job_name(&id);

    // A run of this session still on the cluster is followed, never submitted twice.
    if let Ok(Some(record)) = session.read_json::<ClusterRecord>(RECORD_FILE)
        && record.version == RECORD_VERSION
    {
        let live = live_jobs(&slurm, &record).map_err(failed)?;
        if !live.is_empty() {
            reporter.warn(format!(
                "this job is already on the cluster (jobs {}); following it",
                live.join(", ")
            ));
            drop(session);
            return following(slurm, &id, record, progress, &job);
        }
    }

    progress.status = JobStatus::InProgress;
    if progress.steps.get(Step::Validate).status != StepStatus::Completed {
        progress.begin_step(Step::Validate);
        validate::check_space(&job, &session).map_err(|stop| match stop {
            Stop::Failed(e) => failed(e),
            Stop::Cancelled => JobFailure::Cancelled,
        })?;
        progress.finish_step(Step::Validate);
    }
    let pending = progress.pending_chunks();
    if pending.is_empty() {
        if progress.steps.get(Step::Upscale).status != StepStatus::Completed {
            progress.finish_step(Step::Upscale);
        }
    } else {
        progress.begin_step(Step::Upscale);
    }
    for step in [Step::Package, Step::Verify] {
        if progress.steps.get(step).status == StepStatus::Failed {
            *progress.steps.get_mut(step) = Default::default();
        }
    }
    session
        .save_progress(&mut progress)
        .context("cannot record the job's state in its session")
        .map_err(failed)?;
    cluster::clear_failed(session.dir(), &pending);
    let (chunk_script, package_script) =
        cluster::write_scripts(session.dir(), &exe).map_err(failed)?;
    let mut record = ClusterRecord {
        version: RECORD_VERSION,
        spec: spec.clone(),
        job_name: job_name.clone(),
        arrays: Vec::new(),
        package: None,
        chunks: pending.clone(),
        submitted_at: crate::fsutil::now_iso8601(),
    };
    // Written before anything is submitted: the tasks read the job from it.
    session
        .write_json(RECORD_FILE, &record)
        .context("cannot write the cluster record")
        .map_err(failed)?;

    let cpus_per_task = match job.engine.kind {
        // A neural engine uses every core of its node for each frame.
        EngineKind::Frames if job.engine.uses_all_cores() => None,
        // One single-threaded encoder per chunk, as locally.
        _ => Some(1),
    };
    let logs = session.logs_dir();
    let plans = slurm::array_plans(&pending, slurm.max_array_size(), options.max_parallel);
    for array in &plans {
        let request = SbatchRequest {
            job_name: job_name.clone(),
            log: logs.join("slurm-chunk-%A_%a.log"),
            array: Some(array.spec.clone()),
            after_ok: Vec::new(),
            partition: options.partition.clone(),
            cpus_per_task,
            extra: options.sbatch_args.clone(),
            script: chunk_script.clone(),
            script_args: vec!["--index-base".into(), array.base.to_string()],
        };
        match slurm.submit(&request) {
            Ok(id) => record.arrays.push(SubmittedArray {
                id,
                base: array.base,
                spec: array.spec.clone(),
            }),
            Err(e) => {
                let submitted: Vec<String> = record.arrays.iter().map(|a| a.id.clone()).collect();
                let _ = slurm.cancel(&submitted);
                return Err(failed(e.context("cannot submit the chunk tasks")));
            }
        }
    }
    let package = SbatchRequest {
        job_name: job_name.clone(),
        log: logs.join("slurm-package-%j.log"),
        array: None,
        after_ok: record.arrays.iter().map(|a| a.id.clone()).collect(),
        partition: options.partition.clone(),
        cpus_per_task: Some(1),
        extra: options.sbatch_args.clone(),
        script: package_script,
        script_args: Vec::new(),
    };
    match slurm.submit(&package) {
        Ok(id) => record.package = Some(id),
        Err(e) => {
            let _ = slurm.cancel(&record.job_ids());
            return Err(failed(e.context("cannot submit the package task")));
        }
    }
    if let Err(e) = session.write_json(RECORD_FILE, &record) {
        let _ = slurm.cancel(&record.job_ids());
        return Err(failed(
            anyhow::Error::new(e).context("cannot record the submitted cluster jobs"),
        ));
    }
    reporter.send(Event::JobStarted {
        job: reporter.job,
        input: job.input.clone(),
        output: job.output.clone(),
        session_id: id.clone(),
        resumed,
        chunks_total: job.plan().chunks.len(),
        chunks_done: progress.completed_chunks.len(),
        frames_total: job.plan().frame_count() as u64,
    });
    reporter.send(Event::ClusterSubmitted {
        job: reporter.job,
        session_id: id.clone(),
        chunks: pending,
        arrays: record.arrays.iter().map(|a| a.id.clone()).collect(),
        package: record.package.clone().unwrap_or_default(),
    });
    // The package task takes the session's lock.
    drop(session);
    following(slurm, &id, record, progress, &job)
}

fn following(
    slurm: Slurm,
    session_id: &str,
    record: ClusterRecord,
    progress: Progress,
    job: &Job,
) -> Result<Submitted, JobFailure> {
    Ok(Submitted {
        slurm,
        session_id: session_id.to_owned(),
        record,
        chunk_frames: job
            .plan()
            .chunks
            .iter()
            .map(|c| c.frame_count as u64)
            .collect(),
        output: job.output.clone(),
        done_before: progress.completed_chunks,
    })
}

/// Follow a session from its files alone (no validation, no lock).
fn reattach(ctx: &Context, reporter: &Reporter, id: &str) -> Result<Submitted, JobFailure> {
    let slurm = Slurm::locate().map_err(JobFailure::before_session)?;
    let record: ClusterRecord = ctx
        .store
        .peek_json(id, RECORD_FILE)
        .map_err(JobFailure::before_session)?
        .ok_or_else(|| {
            JobFailure::before_session(anyhow!(
                "session {id} was not run on a cluster (it has no {RECORD_FILE})"
            ))
        })?;
    let plan: Plan = ctx
        .store
        .peek_json(id, PLAN_FILE)
        .map_err(JobFailure::before_session)?
        .ok_or_else(|| JobFailure::before_session(anyhow!("session {id} has no chunk plan")))?;
    let progress = ctx
        .store
        .peek_progress(id)
        .map_err(JobFailure::before_session)?
        .ok_or_else(|| JobFailure::before_session(anyhow!("session {id} has no progress yet")))?;
    let output = progress.output.clone().unwrap_or_default();
    let mut done_before = progress.completed_chunks.clone();
    done_before.extend(cluster::read_done(&session_dir(&ctx.store, id)?).keys());
    reporter.send(Event::JobStarted {
        job: reporter.job,
        input: progress.input.path.clone(),
        output: output.clone(),
        session_id: id.to_owned(),
        resumed: true,
        chunks_total: plan.chunks.len(),
        chunks_done: done_before.len(),
        frames_total: plan.frame_count() as u64,
    });
    Ok(Submitted {
        slurm,
        session_id: id.to_owned(),
        record,
        chunk_frames: plan.chunks.iter().map(|c| c.frame_count as u64).collect(),
        output,
        done_before,
    })
}

fn session_dir(store: &SessionStore, id: &str) -> Result<PathBuf, JobFailure> {
    store.session_dir(id).map_err(JobFailure::before_session)
}

/// The spec as the tasks must see it: every path absolute (they start in other folders),
/// the models folder decided here.
fn absolute_spec(spec: &JobSpec) -> anyhow::Result<JobSpec> {
    let absolute = |p: &Path| {
        std::path::absolute(p).with_context(|| format!("cannot resolve {}", p.display()))
    };
    let mut spec = spec.clone();
    spec.input = absolute(&spec.input)?;
    if let Some(output) = &spec.output {
        // A trailing separator means "a folder": keep it.
        let folder = output.as_os_str().to_string_lossy().ends_with('/');
        let mut resolved = absolute(output)?.into_os_string();
        if folder && !resolved.to_string_lossy().ends_with('/') {
            resolved.push("/");
        }
        spec.output = Some(resolved.into());
    }
    spec.models_dir = crate::engine::models::models_dir(spec.models_dir.as_deref())
        .map(|d| absolute(&d))
        .transpose()?;
    let preset = Path::new(&spec.preset);
    if preset.is_file() {
        spec.preset = absolute(preset)?.to_string_lossy().into_owned();
    }
    Ok(spec)
}

/// Refuse paths the compute nodes cannot see (when the cluster is more than this machine).
fn check_storage(
    slurm: &Slurm,
    work_dir: &Path,
    job: &Job,
    exe: &Path,
    options: &ClusterOptions,
    reporter: &Reporter,
) -> anyhow::Result<()> {
    let output_dir = job.output.parent().unwrap_or(Path::new("/"));
    let work_remedy = if options.work_dir_given {
        "choose a folder on storage the nodes share"
    } else {
        "put the session folder on storage the nodes share with --work-dir DIR"
    };
    let needed = [
        NeededPath {
            what: "session folder",
            path: work_dir,
            remedy: work_remedy,
        },
        NeededPath {
            what: "input",
            path: &job.input,
            remedy: "copy it to storage the nodes share",
        },
        NeededPath {
            what: "output folder",
            path: output_dir,
            remedy: "choose an output on storage the nodes share with -o",
        },
        NeededPath {
            what: "reframe program",
            path: exe,
            remedy: "install reframe at the same path on every node, or run it from storage the nodes share",
        },
    ];
    let nodes = slurm.nodes(options.partition.as_deref());
    let warnings = storage::check_shared(
        &needed,
        nodes.as_deref(),
        &cluster::short_host_name(),
        storage::sharing_of,
    )
    .map_err(|e| anyhow!(e))?;
    for warning in warnings {
        reporter.warn(warning);
    }
    Ok(())
}

/// The job rebuilt from a cluster record must be the session it was submitted for: same
/// input file (size, time) and settings.
pub(super) fn check_same_session(job: &Job, id: &str) -> anyhow::Result<()> {
    let now = session_id(&job.identity, &job.settings);
    if now != id {
        bail!(
            "the input file or the settings changed since the job was submitted (session {id}, now {now}); run the command again to start over: {}",
            job.input.display()
        );
    }
    Ok(())
}

/// Chunks that cluster tasks finished (marker written, files in place) join the session's
/// record. Only the holder of the session's lock calls this.
pub(super) fn fold_chunk_markers(job: &Job, session: &Session, progress: &mut Progress) {
    let chunks_dir = session.chunks_dir();
    for chunk in cluster::read_done(session.dir()).into_keys() {
        if upscale::chunk_in_place(&chunks_dir, job.targets.len(), chunk)
            && progress.mark_chunk_done(chunk)
        {
            log::info!("chunk {chunk} was made by a cluster task");
        }
    }
}

/// A local run must not work on a session whose chunks are being made on the cluster.
pub(super) fn check_not_on_cluster(session: &Session) -> anyhow::Result<()> {
    let Ok(Some(record)) = session.read_json::<ClusterRecord>(RECORD_FILE) else {
        return Ok(());
    };
    let Ok(slurm) = Slurm::locate() else {
        return Ok(());
    };
    let live = live_jobs(&slurm, &record).unwrap_or_default();
    if live.is_empty() {
        return Ok(());
    }
    bail!(
        "this file is being processed on the Slurm cluster (jobs {}): follow it with `reframe sessions status {}`, or cancel it with `scancel {}`",
        live.join(", "),
        session.id(),
        live.join(" ")
    )
}

/// `3, 5, 7` (the first ten, then how many more).
pub(super) fn list_of(chunks: &[usize]) -> String {
    let mut text: Vec<String> = chunks.iter().take(10).map(ToString::to_string).collect();
    if chunks.len() > 10 {
        text.push(format!("and {} more", chunks.len() - 10));
    }
    text.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_chunk_lists_are_cut() {
        assert_eq!(list_of(&[3, 5]), "3, 5");
        let many: Vec<usize> = (0..13).collect();
        assert_eq!(list_of(&many), "0, 1, 2, 3, 4, 5, 6, 7, 8, 9, and 3 more");
    }
}
