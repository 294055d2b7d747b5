//! `reframe run`: upscale and encode files and folders headless, one job after another, with
//! a progress bar (or `--json` events), a summary of what failed, and Ctrl-C handling (first:
//! stop cleanly and keep the session resumable; second: exit at once).

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser;
use crossbeam_channel::{Receiver, unbounded};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use reframe::media::tools::Tools;
use reframe::pipeline::{self, CancelToken, Context, Outcome};
use reframe::protocol::{Event, JobId, JobSpec, ResumeMode};
use reframe::session::SessionStore;
use reframe::{engine, presets};

#[derive(Parser, Debug)]
pub struct Args {
    /// Video files and/or folders (searched recursively).
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<PathBuf>,
    /// Scale factor: 1.5, 2, 3 or 4.
    #[arg(long, conflicts_with = "height", value_parser = parse_scale)]
    scale: Option<f64>,
    /// Target output height in pixels instead of a scale factor.
    #[arg(long, value_parser = clap::value_parser!(u32).range(16..=8640))]
    height: Option<u32>,
    /// Upscaling engine (see `reframe engines`).
    #[arg(long, default_value = "lanczos")]
    engine: String,
    /// Denoise level, for engines that have one.
    #[arg(long)]
    denoise: Option<u8>,
    /// Folder of the neural engines' model files (default: $REFRAME_MODELS_DIR, else
    /// <config dir>/models).
    #[arg(long, value_name = "DIR")]
    models_dir: Option<PathBuf>,
    /// Output preset name (see `reframe presets list`) or path to a preset JSON file.
    #[arg(long, default_value = "h264_hq")]
    preset: String,
    /// Output file (one input) or folder. A path that does not exist and has no extension (or
    /// ends in a separator) is a folder, created if needed.
    #[arg(short, long, value_name = "FILE|DIR")]
    output: Option<PathBuf>,
    /// Replace an existing output.
    #[arg(long)]
    overwrite: bool,
    /// Resume an interrupted run; fail if there is none.
    #[arg(long, conflicts_with = "restart")]
    resume: bool,
    /// Discard an interrupted run of the same file and settings and start over.
    #[arg(long)]
    restart: bool,
    /// Length of a chunk, the unit of resumable progress, in seconds.
    #[arg(long, default_value_t = 5.0, value_parser = parse_chunk_seconds)]
    chunk_seconds: f64,
    /// Deinterlace before scaling.
    #[arg(long)]
    deinterlace: bool,
    /// Print progress as JSON events on stdout, one per line.
    #[arg(long)]
    json: bool,
}

fn parse_scale(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if [1.5, 2.0, 3.0, 4.0].contains(&v) => Ok(v),
        _ => Err(format!("{s} is not a supported scale; use 1.5, 2, 3 or 4")),
    }
}

fn parse_chunk_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.1..=600.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "{s} is not a chunk length between 0.1 and 600 seconds"
        )),
    }
}

/// One input to process, with where its output goes.
#[derive(Debug)]
struct Planned {
    input: PathBuf,
    output: Option<PathBuf>,
}

pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    // Settings problems stop everything before any work (exit 2).
    presets::resolve(&args.preset)?;
    let models_dir = engine::models::models_dir(args.models_dir.as_deref());
    engine::resolve_in(
        models_dir.as_deref(),
        &args.engine,
        args.height.is_none().then(|| args.scale.unwrap_or(2.0)),
        args.denoise,
    )?;
    let tools = Tools::locate()?;
    let store = SessionStore::open_default()?;
    let max_age = reframe::session::abandoned_after();
    let expired = store.clean(Some(max_age));
    if !expired.removed.is_empty() {
        eprintln!(
            "removed {} abandoned session(s) not touched for {:.0} hours",
            expired.removed.len(),
            max_age.as_secs_f64() / 3600.0
        );
    }

    let (planned, skipped, mut failures) = expand_inputs(&args)?;
    // `-v` (info logging) lists every skipped file; otherwise a line per reason.
    for line in skipped_summary(&skipped, log::log_enabled!(log::Level::Info)) {
        eprintln!("{line}");
    }

    let cancel = CancelToken::default();
    {
        let cancel = cancel.clone();
        let mut presses = 0;
        ctrlc::set_handler(move || {
            presses += 1;
            if presses == 1 {
                eprintln!(
                    "\nstopping… (the job stays resumable; press Ctrl-C again to quit at once)"
                );
                cancel.cancel();
            } else {
                std::process::exit(130);
            }
        })
        .context("cannot install the Ctrl-C handler")?;
    }

    let (tx, rx) = unbounded::<Event>();
    let json = args.json;
    // Job id → input, for messages about a job that failed before it started.
    let inputs: JobInputs = Arc::new(Mutex::new(HashMap::new()));
    let printer_inputs = inputs.clone();
    let printer = std::thread::Builder::new()
        .name("events".into())
        .spawn(move || {
            if json {
                print_json(&rx)
            } else {
                print_human(&rx, &printer_inputs)
            }
        })
        .context("cannot start the output thread")?;

    let ctx = Context {
        tools,
        store,
        cancel: cancel.clone(),
        events: tx,
        parallel_chunks: Context::default_parallelism(),
    };
    let mut succeeded = 0usize;
    let mut cancelled = false;
    for (n, job) in planned.iter().enumerate() {
        if cancel.is_cancelled() {
            cancelled = true;
            break;
        }
        let spec = JobSpec {
            input: job.input.clone(),
            engine: args.engine.clone(),
            scale: args.scale,
            height: args.height,
            denoise: args.denoise,
            preset: args.preset.clone(),
            output: job.output.clone(),
            overwrite: args.overwrite,
            resume: match (args.resume, args.restart) {
                (true, _) => ResumeMode::Resume,
                (_, true) => ResumeMode::Restart,
                _ => ResumeMode::Auto,
            },
            chunk_seconds: args.chunk_seconds,
            deinterlace: args.deinterlace,
            models_dir: args.models_dir.clone(),
        };
        let id = n as u64 + 1;
        if let Ok(mut map) = inputs.lock() {
            map.insert(id, job.input.clone());
        }
        match pipeline::run_job(&ctx, id, &spec) {
            Outcome::Finished { .. } => succeeded += 1,
            Outcome::Failed { error, .. } => failures.push((job.input.clone(), error)),
            Outcome::Cancelled => {
                cancelled = true;
                break;
            }
        }
    }
    drop(ctx);
    let _ = printer.join();

    let total = succeeded + failures.len();
    if !json && (total > 1 || !failures.is_empty()) {
        println!(
            "{succeeded} succeeded, {} failed{}",
            failures.len(),
            if cancelled { ", stopped early" } else { "" }
        );
        for (input, error) in &failures {
            println!("  failed: {}", with_input(error, input));
        }
    }
    Ok(if cancelled {
        ExitCode::from(130)
    } else if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

type JobInputs = Arc<Mutex<HashMap<JobId, PathBuf>>>;
type Skipped = Vec<(PathBuf, String)>;
type Failed = Vec<(PathBuf, String)>;

/// Files and folders → jobs. Folders are searched recursively; their non-video files are
/// skipped with a reason; an input that cannot be used is a failure of its own.
fn expand_inputs(args: &Args) -> anyhow::Result<(Vec<Planned>, Skipped, Failed)> {
    let mut planned = Vec::new();
    let mut skipped = Vec::new();
    let mut failed = Vec::new();
    let many = args.inputs.len() > 1 || args.inputs.iter().any(|p| p.is_dir());
    let out_dir = match (&args.output, many) {
        (Some(out), true) => {
            if out.exists() && !out.is_dir() {
                bail!(
                    "with several inputs, --output must be a folder: {}",
                    out.display()
                );
            }
            std::fs::create_dir_all(out)
                .with_context(|| format!("cannot create the output folder {}", out.display()))?;
            Some(out.clone())
        }
        _ => None,
    };
    for input in &args.inputs {
        if input.is_dir() {
            let mut files = Vec::new();
            walk(input, &mut files, &mut skipped);
            files.sort();
            if files.is_empty() {
                failed.push((input.clone(), "the folder holds no video files".to_owned()));
            }
            for file in files {
                let output = out_dir.as_ref().map(|dir| {
                    let relative = file
                        .parent()
                        .and_then(|p| p.strip_prefix(input).ok())
                        .unwrap_or(Path::new(""));
                    with_trailing_separator(&dir.join(relative))
                });
                planned.push(Planned {
                    input: file,
                    output,
                });
            }
        } else if input.exists() || !many {
            let output = match &out_dir {
                Some(dir) => Some(with_trailing_separator(dir)),
                None => args.output.clone(),
            };
            planned.push(Planned {
                input: input.clone(),
                output,
            });
        } else {
            failed.push((input.clone(), "no such file or folder".to_owned()));
        }
    }
    Ok((planned, skipped, failed))
}

fn with_trailing_separator(dir: &Path) -> PathBuf {
    let mut s = dir.as_os_str().to_owned();
    if !s.to_string_lossy().ends_with(std::path::MAIN_SEPARATOR) {
        s.push(std::path::MAIN_SEPARATOR_STR);
    }
    PathBuf::from(s)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>, skipped: &mut Skipped) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            skipped.push((dir.to_path_buf(), format!("cannot read the folder ({e})")));
            return;
        }
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            if !name.ends_with(".hls") && !name.ends_with(".dash") {
                walk(&path, files, skipped);
            }
        } else if name.ends_with(".part") {
            skipped.push((path, "an unfinished output".to_owned()));
        } else if !pipeline::is_video_path(&path) {
            skipped.push((path, "not a video file".to_owned()));
        } else if looks_like_output(&path) {
            skipped.push((path, "looks like a reframe output".to_owned()));
        } else {
            files.push(path);
        }
    }
}

/// `clip.2x.mp4` or `clip.1080p.mkv` beside a `clip.*` video: an output of an earlier run.
/// (`Show.S01E01.720p.mkv` alone is an input like any other.)
fn looks_like_output(path: &Path) -> bool {
    let (Some(name), Some(dir)) = (path.file_name().and_then(|n| n.to_str()), path.parent()) else {
        return false;
    };
    let Some((stem, _extension)) = name.rsplit_once('.') else {
        return false;
    };
    let is_label = |label: &str| {
        (label.ends_with('x') && label[..label.len() - 1].parse::<f64>().is_ok())
            || (label.ends_with('p') && label[..label.len() - 1].parse::<u32>().is_ok())
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let sibling = e.path();
        sibling != path
            && pipeline::is_video_path(&sibling)
            && sibling
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|source| stem.strip_prefix(source)?.strip_prefix('.'))
                .is_some_and(is_label)
    })
}

fn print_json(rx: &Receiver<Event>) {
    let stdout = std::io::stdout();
    for event in rx {
        let mut out = stdout.lock();
        let _ = writeln!(out, "{}", event.to_line());
        let _ = out.flush();
    }
}

fn print_human(rx: &Receiver<Event>, inputs: &JobInputs) {
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
const SKIPPED_EXAMPLES: usize = 3;

/// The skipped files, one line each when `all`, else one line per reason (in the order the
/// reasons were first met) with its count and a few examples.
fn skipped_summary(skipped: &Skipped, all: bool) -> Vec<String> {
    if all {
        return skipped
            .iter()
            .map(|(path, reason)| format!("skipped: {reason}: {}", path.display()))
            .collect();
    }
    let mut reasons: Vec<(&str, Vec<&Path>)> = Vec::new();
    for (path, reason) in skipped {
        match reasons.iter_mut().find(|(r, _)| r == reason) {
            Some((_, paths)) => paths.push(path),
            None => reasons.push((reason, vec![path])),
        }
    }
    reasons
        .into_iter()
        .map(|(reason, paths)| {
            let examples: Vec<String> = paths
                .iter()
                .take(SKIPPED_EXAMPLES)
                .map(|p| p.display().to_string())
                .collect();
            let more = paths.len().saturating_sub(SKIPPED_EXAMPLES);
            let files = if paths.len() == 1 { "file" } else { "files" };
            let tail = if more > 0 {
                format!(", and {more} more; -v lists them all")
            } else {
                String::new()
            };
            format!(
                "skipped {} {files}, {reason}: {}{tail}",
                paths.len(),
                examples.join(", ")
            )
        })
        .collect()
}

/// `input: error`, with the input named once: errors end with the path they are about, which
/// is then moved to the front ("error: clip.mp4: the file is empty", not the path twice).
fn with_input(error: &str, input: &Path) -> String {
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
    fn output_names_are_recognised_beside_their_source() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "clip.mp4",
            "clip.2x.mp4",
            "clip.1.5x.mp4",
            "clip.1080p.mkv",
            "Show.S01E01.720p.mkv",
        ] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        assert!(looks_like_output(&dir.path().join("clip.2x.mp4")));
        assert!(looks_like_output(&dir.path().join("clip.1080p.mkv")));
        assert!(looks_like_output(&dir.path().join("clip.1.5x.mp4")));
        assert!(!looks_like_output(&dir.path().join("clip.mp4")));
        assert!(!looks_like_output(&dir.path().join("Show.S01E01.720p.mkv")));
    }

    #[test]
    fn skipped_files_are_summarised_by_reason() {
        let mut skipped: Skipped = (0..11_000)
            .map(|n| {
                (
                    PathBuf::from(format!("/d/doc{n}.txt")),
                    "not a video file".to_owned(),
                )
            })
            .collect();
        skipped.insert(
            1,
            ("/d/a.mp4.part".into(), "an unfinished output".to_owned()),
        );
        assert_eq!(
            skipped_summary(&skipped, false),
            [
                "skipped 11000 files, not a video file: /d/doc0.txt, /d/doc1.txt, /d/doc2.txt, and 10997 more; -v lists them all",
                "skipped 1 file, an unfinished output: /d/a.mp4.part",
            ]
        );
        let all = skipped_summary(&skipped, true);
        assert_eq!(all.len(), 11_001);
        assert_eq!(all[1], "skipped: an unfinished output: /d/a.mp4.part");
    }

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

    #[test]
    fn scale_and_chunk_parsers() {
        assert_eq!(parse_scale("2"), Ok(2.0));
        assert!(parse_scale("2.5").is_err());
        assert!(parse_chunk_seconds("0").is_err());
        assert_eq!(parse_chunk_seconds("0.5"), Ok(0.5));
    }
}
