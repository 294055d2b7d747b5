//! The processes a cluster runs: one chunk per array task, then the package task.

use std::cell::Cell;
use std::fs::TryLockError;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use crossbeam_channel::unbounded;

use crate::cluster::{
    self, ChunkFailure, ChunkMarker, ChunkRunning, ClusterRecord, RECORD_FILE, RECORD_VERSION,
};
use crate::engine::EngineKind;
use crate::media::tools::{self, Tools};
use crate::pipeline::plan::Plan;
use crate::pipeline::validate::{self, PLAN_FILE};
use crate::pipeline::{Context, JobFailure, Reporter, Role, Stop, upscale};
use crate::protocol::{Event, ResumeMode};
use crate::session::progress::StepStatus;
use crate::session::store::CHUNKS_DIR;
use crate::session::{SessionError, SessionStore};

use super::check_same_session;

/// How often a chunk task rewrites its in-chunk progress (`cluster/running/`).
const RUNNING_INTERVAL: Duration = Duration::from_secs(2);

/// The session store and id of a session folder given on a task's command line.
fn store_of(session_dir: &Path) -> anyhow::Result<(SessionStore, String)> {
    let dir = std::path::absolute(session_dir)
        .with_context(|| format!("cannot resolve {}", session_dir.display()))?;
    let (Some(root), Some(id)) = (dir.parent(), dir.file_name().and_then(|n| n.to_str())) else {
        bail!("{} is not a session folder", dir.display());
    };
    let store = SessionStore::at(root);
    store.session_dir(id)?;
    Ok((store, id.to_owned()))
}

/// A task's context: its events become log lines on stderr (the task's Slurm log).
fn task_context(tools: Tools, store: SessionStore) -> (Context, Reporter) {
    let (events, rx) = unbounded::<Event>();
    std::thread::spawn(move || {
        for event in rx {
            match event {
                Event::Warning { message, .. } => eprintln!("warning: {message}"),
                Event::JobFailed { error, .. } => eprintln!("error: {error}"),
                Event::StepChanged {
                    step,
                    status: StepStatus::InProgress,
                    ..
                } => eprintln!("{}…", step.label()),
                Event::JobFinished { output, .. } => eprintln!("done: {}", output.display()),
                _ => {}
            }
        }
    });
    let reporter = Reporter {
        job: 0,
        events: events.clone(),
    };
    let ctx = Context {
        tools,
        store,
        cancel: crate::pipeline::CancelToken::default(),
        events,
        parallel_chunks: 1,
    };
    (ctx, reporter)
}

fn read_record(store: &SessionStore, id: &str) -> anyhow::Result<ClusterRecord> {
    let record: ClusterRecord = store.peek_json(id, RECORD_FILE)?.ok_or_else(|| {
        anyhow!("session {id} has no {RECORD_FILE}: it was not submitted to a cluster")
    })?;
    if record.version != RECORD_VERSION {
        bail!(
            "session {id} was submitted by another version of reframe (cluster record version {})",
            record.version
        );
    }
    Ok(record)
}

/// `reframe worker chunk`: encode chunk `index` of the session in `session_dir` and write its
/// marker; a failure is written as the chunk's failure marker too, for the follower.
pub fn chunk_task(tools: Tools, session_dir: &Path, index: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    let result = encode_one_chunk(tools, session_dir, index, started);
    if let Err(error) = &result {
        let log = match (
            std::env::var("SLURM_ARRAY_JOB_ID"),
            std::env::var("SLURM_ARRAY_TASK_ID"),
        ) {
            (Ok(job), Ok(task)) => Some(
                session_dir
                    .join("logs")
                    .join(format!("slurm-chunk-{job}_{task}.log")),
            ),
            _ => None,
        };
        let failure = ChunkFailure {
            chunk: index,
            host: cluster::short_host_name(),
            error: format!("{error:#}"),
            log,
            recurs: upscale::SourceDamaged::is_in(error),
        };
        if let Err(e) = cluster::write_failed(session_dir, &failure) {
            eprintln!("error: {e:#}");
        }
    }
    result
}

fn encode_one_chunk(
    tools: Tools,
    session_dir: &Path,
    index: usize,
    started: Instant,
) -> anyhow::Result<()> {
    let (store, id) = store_of(session_dir)?;
    let record = read_record(&store, &id)?;
    let (ctx, reporter) = task_context(tools, store.clone());
    let job = validate::prepare(&ctx, &reporter, &record.spec)?;
    check_same_session(&job, &id)?;
    let plan: Plan = store
        .peek_json(&id, PLAN_FILE)?
        .ok_or_else(|| anyhow!("session {id} has no chunk plan"))?;
    let job = job.with_plan(plan);
    let chunks_total = job.plan().chunks.len();
    let chunk = job.plan().chunks.get(index).ok_or_else(|| {
        anyhow!("the session's plan has {chunks_total} chunks; there is no chunk {index}")
    })?;
    let chunks_dir = session_dir.join(CHUNKS_DIR);
    if cluster::read_done(session_dir).contains_key(&index)
        && upscale::chunk_in_place(&chunks_dir, job.targets.len(), index)
    {
        eprintln!("chunk {index} is already done");
        return Ok(());
    }
    std::fs::create_dir_all(&chunks_dir)
        .with_context(|| format!("cannot create {}", chunks_dir.display()))?;
    // One task per chunk at a time, even if the chunk was submitted twice.
    let lock_path = chunks_dir.join(format!("{index:05}.lock"));
    let lock = std::fs::File::create(&lock_path)
        .with_context(|| format!("cannot create {}", lock_path.display()))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            eprintln!("another task is encoding chunk {index}; leaving it to that task");
            return Ok(());
        }
        Err(TryLockError::Error(e)) => {
            return Err(anyhow::Error::new(e).context("cannot lock the chunk"));
        }
    }
    remove_partial_files_of(&chunks_dir, index);
    let estimate = validate::estimated_output_bytes(&job) / chunks_total.max(1) as u64;
    let mkvmerge = match job.engine.kind {
        EngineKind::Frames => Some(tools::locate_mkvmerge()?),
        EngineKind::FfmpegScale { .. } => None,
    };
    let never = || false;
    let host = cluster::short_host_name();
    let last_report = Cell::new(None::<Instant>);
    let report = |frames: u64| {
        if last_report
            .get()
            .is_some_and(|t| t.elapsed() < RUNNING_INTERVAL)
        {
            return;
        }
        last_report.set(Some(Instant::now()));
        let running = ChunkRunning {
            chunk: index,
            host: host.clone(),
            frames,
        };
        if let Err(e) = cluster::write_running(session_dir, &running) {
            log::debug!("cannot report chunk {index}'s progress: {e:#}");
        }
    };
    let result = upscale::ensure_space(&chunks_dir, estimate).and_then(|()| {
        upscale::encode_chunk(
            &ctx,
            &job,
            chunk,
            &chunks_dir,
            mkvmerge.as_deref(),
            &never,
            &report,
        )
    });
    cluster::clear_running(session_dir, index);
    match result {
        Ok(_thumbnail) => {}
        Err(Stop::Failed(e)) => return Err(e.context(format!("chunk {index} failed"))),
        Err(Stop::Cancelled) => bail!("chunk {index} was stopped"),
    }
    cluster::write_done(
        session_dir,
        &ChunkMarker {
            chunk: index,
            host,
            seconds: started.elapsed().as_secs_f64(),
            frames: chunk.frame_count as u64,
        },
    )?;
    let _ = std::fs::remove_file(&lock_path);
    eprintln!(
        "chunk {index} done in {:.1} s on {}",
        started.elapsed().as_secs_f64(),
        cluster::short_host_name()
    );
    Ok(())
}

/// Leftovers of an earlier attempt at chunk `index` (another chunk's are another task's).
fn remove_partial_files_of(chunks_dir: &Path, index: usize) {
    let Ok(entries) = std::fs::read_dir(chunks_dir) else {
        return;
    };
    let own = format!("_{index:05}.");
    let own_side = format!("{index:05}.");
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.contains(".part") && (name.contains(&own) || name.starts_with(&own_side)) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// How long the package task waits for the submitting process to release the session.
const PACKAGE_LOCK_WAIT: Duration = Duration::from_secs(120);

/// `reframe worker package`: once every chunk task succeeded, package and verify the output
/// as a local resume would, leaving the session marked completed for the follower.
pub fn package_task(tools: Tools, session_dir: &Path) -> anyhow::Result<()> {
    let (store, id) = store_of(session_dir)?;
    let record = read_record(&store, &id)?;
    let waited = Instant::now();
    loop {
        match store.acquire(&id) {
            Ok(session) => break drop(session),
            Err(SessionError::Locked { .. }) if waited.elapsed() < PACKAGE_LOCK_WAIT => {
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let (ctx, reporter) = task_context(tools, store);
    let mut spec = record.spec;
    // Never start over here: the chunks are the cluster's work.
    spec.resume = ResumeMode::Resume;
    match crate::pipeline::prepare_and_run(
        &ctx,
        &reporter,
        &spec,
        Role::ClusterPackage { session_id: &id },
    ) {
        Ok(output) => {
            eprintln!("done: {}", output.display());
            Ok(())
        }
        Err(JobFailure::Cancelled) => bail!("the package task was stopped"),
        Err(JobFailure::Failed { error, .. }) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_removes_only_its_own_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "r0_00003.part.mkv",
            "r0_00003.raw.part.mkv",
            "00003.timestamps.part.txt",
            "r0_00004.part.mkv",
            "r0_00003.mkv",
            "r1_00013.part.mkv",
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        remove_partial_files_of(dir.path(), 3);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["r0_00003.mkv", "r0_00004.part.mkv", "r1_00013.part.mkv"]
        );
    }
}
