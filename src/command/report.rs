//! What a job says while it runs, on the terminal: a progress bar and one line per event
//! (or the events as JSON lines with `--json`), for `reframe run` and for a cluster run
//! followed again with `reframe sessions status`. Also the Ctrl-C handling those share.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use crossbeam_channel::{Receiver, Sender, unbounded};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use reframe::pipeline::CancelToken;
use reframe::protocol::{Event, JobId};

/// Job id → input, for messages about a job that failed before it started.
pub type JobInputs = Arc<Mutex<HashMap<JobId, PathBuf>>>;

/// How to tell the user to follow a detached cluster run again.
#[derive(Clone, Default)]
pub struct FollowHint {
    /// `--detach` was given: the bar ends once the jobs are submitted.
    pub detach: bool,
    /// The `--work-dir` option to repeat, if one was given.
    pub work_dir: Option<PathBuf>,
}

impl FollowHint {
    pub fn command(&self, session_id: &str) -> String {
        match &self.work_dir {
            Some(dir) => format!(
                "reframe sessions --work-dir {} status {session_id}",
                reframe::media::process::shell_quote(dir.as_os_str())
            ),
            None => format!("reframe sessions status {session_id}"),
        }
    }
}

/// The thread printing a run's events.
pub struct Printer {
    pub events: Sender<Event>,
    pub inputs: JobInputs,
    thread: std::thread::JoinHandle<()>,
}

impl Printer {
    pub fn start(json: bool, hint: FollowHint) -> anyhow::Result<Printer> {
        let (events, rx) = unbounded::<Event>();
        let inputs: JobInputs = Arc::new(Mutex::new(HashMap::new()));
        let printer_inputs = inputs.clone();
        let thread = std::thread::Builder::new()
            .name("events".into())
            .spawn(move || {
                if json {
                    print_json(&rx)
                } else {
                    print_human(&rx, &printer_inputs, &hint)
                }
            })
            .context("cannot start the output thread")?;
        Ok(Printer {
            events,
            inputs,
            thread,
        })
    }

    /// Waits until every event sent so far is printed (every other sender must be gone).
    pub fn finish(self) {
        drop(self.events);
        let _ = self.thread.join();
    }
}

/// First Ctrl-C: `cancel` (the job stops cleanly and stays resumable); second: exit at once.
pub fn install_ctrl_c(cancel: &CancelToken) -> anyhow::Result<()> {
    let cancel = cancel.clone();
    let mut presses = 0;
    ctrlc::set_handler(move || {
        presses += 1;
        if presses == 1 {
            eprintln!("\nstopping… (the job stays resumable; press Ctrl-C again to quit at once)");
            cancel.cancel();
        } else {
            std::process::exit(130);
        }
    })
    .context("cannot install the Ctrl-C handler")
}

/// After a Ctrl-C while following a cluster run: cancel its jobs too? Asked on the terminal;
/// without one, they are left running.
pub fn ask_cancel_cluster_jobs(jobs: &[String]) -> bool {
    if !std::io::stdin().is_terminal() {
        eprintln!(
            "the cluster jobs are left running ({}); cancel them with `scancel {}`",
            jobs.join(", "),
            jobs.join(" ")
        );
        return false;
    }
    eprint!(
        "cancel the cluster jobs too ({})? They keep running otherwise. [y/N] ",
        jobs.join(", ")
    );
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim(), "y" | "Y" | "yes" | "Yes")
}

fn print_json(rx: &Receiver<Event>) {
    let stdout = std::io::stdout();
    for event in rx {
        let mut out = stdout.lock();
        let _ = writeln!(out, "{}", event.to_line());
        let _ = out.flush();
    }
}

fn print_human(rx: &Receiver<Event>, inputs: &JobInputs, hint: &FollowHint) {
    let tty = std::io::stderr().is_terminal();
    let style = ProgressStyle::with_template("{prefix:>9} [{bar:32}] {percent:>3}% {msg}")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    let mut bar: Option<ProgressBar> = None;
    for event in rx {
        match event {
            Event::JobStarted {
                input,
                output,
                session_id,
                resumed,
                chunks_total,
                chunks_done,
                ..
            } => {
                eprintln!("{} → {}", input.display(), output.display());
                if resumed {
                    eprintln!(
                        "resuming session {session_id}: {chunks_done}/{chunks_total} chunks done"
                    );
                }
                let b = ProgressBar::with_draw_target(Some(100), ProgressDrawTarget::stderr());
                b.set_style(style.clone());
                b.enable_steady_tick(Duration::from_millis(200));
                bar = Some(b);
            }
            Event::StepChanged { step, status, .. } => {
                if let Some(b) = &bar {
                    b.set_prefix(step.label());
                    if status == reframe::protocol::StepStatus::InProgress {
                        b.set_position(0);
                        b.set_message("");
                    }
                }
                if !tty && status == reframe::protocol::StepStatus::InProgress {
                    eprintln!("  {}…", step.label());
                }
            }
            Event::Progress {
                percent,
                frames_done,
                frames_total,
                fps,
                eta_secs,
                ..
            } => {
                if let Some(b) = &bar {
                    b.set_position(percent.round() as u64);
                    let eta = eta_secs
                        .map(|s| format!(" · ETA {}", format_eta(s)))
                        .unwrap_or_default();
                    let fps = if fps > 0.0 {
                        format!(" · {fps:.1} fps")
                    } else {
                        String::new()
                    };
                    b.set_message(format!("{frames_done}/{frames_total} frames{fps}{eta}"));
                }
            }
            Event::Warning { message, .. } => match &bar {
                Some(b) => b.suspend(|| eprintln!("warning: {message}")),
                None => eprintln!("warning: {message}"),
            },
            Event::JobFinished { output, .. } => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
                println!("done: {}", output.display());
            }
            Event::JobFailed {
                job,
                error,
                resumable,
            } => {
                if let Some(b) = bar.take() {
                    b.abandon();
                }
                eprintln!("error: {}", with_input(&error, &input_of(inputs, job)));
                if resumable {
                    eprintln!("  the finished part is kept: run the same command again to resume");
                }
            }
            Event::JobCancelled { job } => {
                if let Some(b) = bar.take() {
                    b.abandon();
                }
                eprintln!(
                    "stopped: {} (run the same command again to resume)",
                    input_of(inputs, job).display()
                );
            }
            Event::ClusterSubmitted {
                session_id,
                chunks,
                arrays,
                package,
                ..
            } => {
                let line = format!(
                    "submitted {} chunk(s) to Slurm as session {session_id} (array job(s) {}, package job {package})",
                    chunks.len(),
                    if arrays.is_empty() {
                        "none".to_owned()
                    } else {
                        arrays.join(", ")
                    }
                );
                match &bar {
                    Some(b) => b.suspend(|| eprintln!("{line}")),
                    None => eprintln!("{line}"),
                }
                if hint.detach {
                    if let Some(b) = bar.take() {
                        b.finish_and_clear();
                    }
                    eprintln!("follow it with: {}", hint.command(&session_id));
                }
            }
            Event::Hello { .. } | Event::ChunkDone { .. } | Event::Thumbnail { .. } => {}
        }
    }
}

fn input_of(inputs: &JobInputs, job: JobId) -> PathBuf {
    inputs
        .lock()
        .ok()
        .and_then(|m| m.get(&job).cloned())
        .unwrap_or_default()
}

/// How many examples of a reason the summary of skipped files names.
/// `input: error`, with the input named once: errors end with the path they are about, which
/// is then moved to the front ("error: clip.mp4: the file is empty", not the path twice).
pub fn with_input(error: &str, input: &Path) -> String {
    let path = input.display().to_string();
    if path.is_empty() {
        return error.to_owned();
    }
    if let Some(reason) = error.strip_suffix(&path).and_then(|e| e.strip_suffix(": ")) {
        format!("{path}: {reason}")
    } else if error.contains(&path) {
        error.to_owned()
    } else {
        format!("{path}: {error}")
    }
}

fn format_eta(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{:02}:{:02}", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_their_input_once() {
        let input = Path::new("/v/clip.mp4");
        assert_eq!(
            with_input("cannot probe the file: /v/clip.mp4", input),
            "/v/clip.mp4: cannot probe the file"
        );
        assert_eq!(
            with_input("chunk 0 failed", input),
            "/v/clip.mp4: chunk 0 failed"
        );
        assert_eq!(
            with_input("cannot write /v/clip.mp4.part here", input),
            "cannot write /v/clip.mp4.part here"
        );
        assert_eq!(
            with_input("chunk 0 failed", Path::new("")),
            "chunk 0 failed"
        );
    }

    #[test]
    fn eta_format() {
        assert_eq!(format_eta(75.0), "01:15");
        assert_eq!(format_eta(3725.0), "1:02:05");
    }
}
