//! Following a submitted job: chunk markers for progress, `squeue` for the tasks, the
//! package task's `progress.json` for the end, and what to tell the user when a task fails.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::anyhow;

use crate::cluster::slurm::{QueueEntry, Slurm};
use crate::cluster::{self, ClusterRecord};
use crate::pipeline::damage::EncodedFrames;
use crate::pipeline::plan::Plan;
use crate::pipeline::validate::PLAN_FILE;
use crate::pipeline::{Context, JobFailure, Reporter};
use crate::session::progress::{JobStatus, Step, StepStatus};
use crate::session::store::CHUNKS_DIR;
use crate::session::{SessionError, SessionStore};

use super::{Followed, Submitted, failed, list_of, session_dir};

/// How often the follower looks at the markers and `progress.json`.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(500);
/// How often it asks `squeue` (a call to the controller: kept rarer).
const QUEUE_INTERVAL: Duration = Duration::from_secs(2);
/// Lines of a task's log quoted when it failed.
const LOG_TAIL_LINES: usize = 12;

/// Watch the run until the package task has finished (or failed, or the user stops).
pub(super) fn follow(
    ctx: &Context,
    reporter: &Reporter,
    run: &Submitted,
    ask_cancel: &dyn Fn(&[String]) -> bool,
) -> Result<Followed, JobFailure> {
    let id = run.session_id.as_str();
    let dir = session_dir(&ctx.store, id)?;
    let chunks_total = run.chunk_frames.len();
    let frames_total: u64 = run.chunk_frames.iter().sum();
    let frames_of = |chunks: &BTreeSet<usize>| -> u64 {
        chunks.iter().filter_map(|&i| run.chunk_frames.get(i)).sum()
    };
    let mut done = run.done_before.clone();
    let frames_before = frames_of(&done);
    let mut frames_shown = frames_before;
    let started = Instant::now();
    let mut announced: Vec<(Step, StepStatus)> = Vec::new();
    let mut announce = |step: Step, status: StepStatus| {
        if !announced.contains(&(step, status)) {
            announced.push((step, status));
            reporter.step(step, status);
        }
    };
    announce(Step::Upscale, StepStatus::InProgress);
    let mut last_queue: Option<Instant> = None;
    let mut queue_warned = false;
    loop {
        for (chunk, _) in cluster::read_done(&dir) {
            if chunk < chunks_total && done.insert(chunk) {
                reporter.chunk_done(chunk, done.len(), chunks_total);
            }
        }
        // Never backwards: a task that ends between the two reads is briefly in neither.
        let running = cluster::read_running(&dir);
        frames_shown = frames_shown.max(cluster::frames_done(&run.chunk_frames, &done, &running));
        let frames_done = frames_shown;
        let elapsed = started.elapsed().as_secs_f64();
        let fps = if elapsed > 0.0 {
            frames_done.saturating_sub(frames_before) as f64 / elapsed
        } else {
            0.0
        };
        let eta = (fps > 0.0).then(|| (frames_total - frames_done) as f64 / fps);
        reporter.progress(Step::Upscale, frames_done, frames_total, fps, eta);
        if done.len() == chunks_total {
            announce(Step::Upscale, StepStatus::Completed);
        }

        if let Some(ended) = read_end(ctx, reporter, run, &dir, &mut announce)? {
            return Ok(ended);
        }

        if last_queue.is_none_or(|t| t.elapsed() >= QUEUE_INTERVAL) {
            last_queue = Some(Instant::now());
            match run.slurm.queue(&run.record.job_name) {
                Ok(entries) => {
                    let ours = ours(&entries, &run.record);
                    let package_alive = ours
                        .iter()
                        .any(|e| Some(e.job()) == run.record.package.as_deref() && e.is_alive());
                    if ours.iter().any(|e| {
                        Some(e.job()) == run.record.package.as_deref() && e.state == "RUNNING"
                    }) {
                        announce(Step::Upscale, StepStatus::Completed);
                        announce(Step::Package, StepStatus::InProgress);
                    }
                    if !package_alive {
                        // It may have just finished: its record says how.
                        if let Some(ended) = read_end(ctx, reporter, run, &dir, &mut announce)? {
                            return Ok(ended);
                        }
                        let error = diagnose(&dir, run, &ours);
                        let live: Vec<String> = live_ids(&ours);
                        let error = if live.is_empty() {
                            error
                        } else {
                            let _ = run.slurm.cancel(&live);
                            error.context(format!(
                                "the job cannot finish; its {} other task(s) still queued or running were cancelled",
                                live.len()
                            ))
                        };
                        // A chunk the source cannot give fails again on every run.
                        if cluster::read_failed(&dir).values().any(|f| f.recurs) {
                            return Err(JobFailure::Failed {
                                error: error.context(
                                    "this file cannot be processed as it is (running again fails the same way)",
                                ),
                                resumable: false,
                            });
                        }
                        return Err(failed(error));
                    }
                }
                Err(e) if !queue_warned => {
                    queue_warned = true;
                    reporter.warn(format!("cannot ask Slurm about the jobs ({e:#}); retrying"));
                }
                Err(_) => {}
            }
        }

        if ctx.cancel.is_cancelled() {
            let live = run
                .slurm
                .queue(&run.record.job_name)
                .map(|entries| live_ids(&ours(&entries, &run.record)))
                .unwrap_or_else(|_| run.record.job_ids());
            if !live.is_empty() && ask_cancel(&live) {
                run.slurm.cancel(&live).map_err(failed)?;
                return Err(JobFailure::Cancelled);
            }
            return Ok(Followed::Detached(id.to_owned()));
        }
        let wake = Instant::now() + FOLLOW_INTERVAL;
        while Instant::now() < wake && !ctx.cancel.is_cancelled() {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The end of the run as the package task recorded it in `progress.json`, if it has ended:
/// completed (the session is then removed) or failed at packaging or verification.
fn read_end(
    ctx: &Context,
    reporter: &Reporter,
    run: &Submitted,
    dir: &Path,
    announce: &mut dyn FnMut(Step, StepStatus),
) -> Result<Option<Followed>, JobFailure> {
    let progress = match ctx.store.peek_progress(&run.session_id) {
        Ok(Some(p)) => p,
        // Torn or missing for an instant while it is replaced: next time.
        Ok(None) | Err(SessionError::Corrupt { .. }) => return Ok(None),
        Err(e) => return Err(failed(e)),
    };
    for step in [Step::Package, Step::Verify] {
        let status = progress.steps.get(step).status;
        if matches!(status, StepStatus::InProgress | StepStatus::Completed) {
            announce(Step::Upscale, StepStatus::Completed);
            announce(step, StepStatus::InProgress);
        }
        if status == StepStatus::Completed {
            announce(step, StepStatus::Completed);
        }
    }
    if progress.status == JobStatus::Completed {
        // The package task told its own log; the user hears it here.
        if let Ok(Some(plan)) = ctx.store.peek_json::<Plan>(&run.session_id, PLAN_FILE)
            && let Ok(encoded) = EncodedFrames::load(&plan, &dir.join(CHUNKS_DIR))
            && let Some(warning) = encoded.dropped_warning()
        {
            reporter.warn(warning);
        }
        remove_finished_session(&ctx.store, &run.session_id);
        return Ok(Some(Followed::Finished(run.output.clone())));
    }
    for step in [Step::Package, Step::Verify] {
        let state = progress.steps.get(step);
        if state.status == StepStatus::Failed {
            announce(step, StepStatus::Failed);
            let tail = run
                .record
                .package
                .as_ref()
                .map(|id| log_tail(&dir.join("logs").join(format!("slurm-package-{id}.log"))))
                .unwrap_or_default();
            return Err(failed(anyhow!(
                "the package task failed at {}: {}{tail}",
                step.label(),
                state.error.clone().unwrap_or_default()
            )));
        }
    }
    Ok(None)
}

/// The package task has exited (it holds the lock a moment longer): take the lock and remove
/// the finished session.
fn remove_finished_session(store: &SessionStore, id: &str) {
    for _ in 0..50 {
        match store.acquire(id) {
            Ok(session) => {
                if let Err(e) = session.delete() {
                    log::warn!("could not remove the finished session {id}: {e}");
                }
                return;
            }
            Err(SessionError::Locked { .. }) => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => {
                log::warn!("could not remove the finished session {id}: {e}");
                return;
            }
        }
    }
}

/// The queue entries of the latest submission.
fn ours<'a>(entries: &'a [QueueEntry], record: &ClusterRecord) -> Vec<&'a QueueEntry> {
    let ids = record.job_ids();
    entries
        .iter()
        .filter(|e| ids.iter().any(|id| id == e.job()))
        .collect()
}

fn live_ids(entries: &[&QueueEntry]) -> Vec<String> {
    let mut jobs: Vec<String> = entries
        .iter()
        .filter(|e| e.is_alive())
        .map(|e| e.job().to_owned())
        .collect();
    jobs.sort();
    jobs.dedup();
    jobs
}

pub(super) fn live_jobs(slurm: &Slurm, record: &ClusterRecord) -> anyhow::Result<Vec<String>> {
    let entries = slurm.queue(&record.job_name)?;
    Ok(live_ids(&ours(&entries, record)))
}

/// Why the package task will not run (or did not finish): the failed chunks with their
/// reasons and log tails, else the tasks Slurm ended, else the package task's own log.
fn diagnose(dir: &Path, run: &Submitted, entries: &[&QueueEntry]) -> anyhow::Error {
    let failures = cluster::read_failed(dir);
    if let Some((chunk, failure)) = failures.iter().next() {
        let others = failures.len() - 1;
        let tail = failure.log.as_deref().map(log_tail).unwrap_or_default();
        let also = if others > 0 {
            format!(" ({others} other chunk(s) failed too)")
        } else {
            String::new()
        };
        return anyhow!(
            "chunk {chunk} failed on {}{also}: {}{tail}",
            failure.host,
            failure.error
        );
    }
    let ended: Vec<(&QueueEntry, usize)> = entries
        .iter()
        .filter(|e| e.is_failure())
        .filter_map(|e| Some((*e, run.record.chunk_of(e)?)))
        .collect();
    if let Some((entry, chunk)) = ended.first() {
        let log = dir.join("logs").join(format!(
            "slurm-chunk-{}_{}.log",
            entry.job(),
            entry.task().unwrap_or(0)
        ));
        let reason = if entry.reason.is_empty() || entry.reason == "None" {
            String::new()
        } else {
            format!(" ({})", entry.reason)
        };
        return anyhow!(
            "chunk {chunk}'s task ended {}{reason} on the cluster{}{}",
            entry.state,
            if ended.len() > 1 {
                format!(" ({} other task(s) too)", ended.len() - 1)
            } else {
                String::new()
            },
            log_tail(&log)
        );
    }
    // A task cancelled before it started leaves no trace in squeue: what is known is which
    // chunks have no completion marker.
    let done = cluster::read_done(dir);
    let missing: Vec<usize> = run
        .record
        .chunks
        .iter()
        .copied()
        .filter(|c| !done.contains_key(c))
        .collect();
    if !missing.is_empty() {
        let (noun, verb) = if missing.len() == 1 {
            ("chunk", "was")
        } else {
            ("chunks", "were")
        };
        return anyhow!(
            "{noun} {} {verb} not made: {} task ended without finishing (cancelled, timed out, \
             or its node failed), so the package task was cancelled",
            list_of(&missing),
            if missing.len() == 1 { "its" } else { "each" }
        );
    }
    let package = run.record.package.clone().unwrap_or_default();
    let state = entries
        .iter()
        .find(|e| e.job() == package)
        .map(|e| format!("ended {}", e.state))
        .unwrap_or_else(|| "is no longer known to Slurm".to_owned());
    anyhow!(
        "the package task {package} {state} without finishing the job{}",
        log_tail(
            &dir.join("logs")
                .join(format!("slurm-package-{package}.log"))
        )
    )
}

/// The last lines of a task's log, as a suffix for an error message (empty if unreadable).
fn log_tail(path: &Path) -> String {
    let Ok(text) = std::fs::read(path) else {
        return String::new();
    };
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return String::new();
    }
    let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
    format!(
        "\n  last lines of {}:\n    {}",
        path.display(),
        tail.join("\n    ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_log_tail_quotes_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("slurm-chunk-1_2.log");
        let text: String = (0..20).map(|n| format!("line {n}\n")).collect();
        std::fs::write(&log, text).unwrap();
        let tail = log_tail(&log);
        assert!(
            tail.contains("line 19") && tail.contains("line 8"),
            "{tail}"
        );
        assert!(!tail.contains("line 7\n"), "{tail}");
        assert_eq!(log_tail(&dir.path().join("missing.log")), "");
    }
}
