//! `reframe run`: upscale and encode files and folders headless, one job after another, with
//! a progress bar (or `--json` events), a summary of what failed, and Ctrl-C handling (first:
//! stop cleanly and keep the session resumable; second: exit at once).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Parser;

use reframe::cluster::ClusterOptions;
use reframe::media::tools::Tools;
use reframe::pipeline::{self, CancelToken, Context, Outcome};
use reframe::protocol::{JobSpec, ResumeMode};
use reframe::session::SessionStore;
use reframe::{engine, presets};

use super::report::{self, FollowHint, Printer};

#[derive(Parser, Debug)]
pub struct Args {
    /// Video files and/or folders (searched recursively).
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<PathBuf>,
    /// Scale factor: 1.5, 2, 3 or 4; 1 removes noise without upscaling (waifu2x-cunet with
    /// --denoise).
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
    /// Folder for the sessions (resume state and finished chunks); default: the user cache
    /// folder. On a cluster it must be on storage every node shares.
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// Run the chunks on a cluster instead of this machine: `slurm` (submit from a login
    /// node; input, output and --work-dir on shared storage).
    #[arg(long, value_name = "KIND", value_parser = ["slurm"])]
    cluster: Option<String>,
    /// Slurm partition for the tasks.
    #[arg(long, requires = "cluster")]
    partition: Option<String>,
    /// At most this many chunk tasks at once on the cluster.
    #[arg(long, requires = "cluster", value_parser = clap::value_parser!(u32).range(1..))]
    max_parallel: Option<u32>,
    /// One more sbatch option for every task, e.g. --sbatch-arg=--time=04:00:00 (repeatable).
    #[arg(
        long = "sbatch-arg",
        requires = "cluster",
        allow_hyphen_values = true,
        value_name = "OPTION"
    )]
    sbatch_args: Vec<String>,
    /// Return once the cluster jobs are submitted; `reframe sessions status ID` follows them.
    #[arg(long, requires = "cluster")]
    detach: bool,
}

fn parse_scale(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if [1.0, 1.5, 2.0, 3.0, 4.0].contains(&v) => Ok(v),
        _ => Err(format!(
            "{s} is not a supported scale; use 1 (denoise only), 1.5, 2, 3 or 4"
        )),
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
    let store = match &args.work_dir {
        Some(dir) => SessionStore::at(
            std::path::absolute(dir)
                .with_context(|| format!("cannot resolve {}", dir.display()))?,
        ),
        None => SessionStore::open_default()?,
    };
    let cluster = args.cluster.as_ref().map(|_| ClusterOptions {
        partition: args.partition.clone(),
        max_parallel: args.max_parallel.map(|k| k as usize),
        sbatch_args: args.sbatch_args.clone(),
        detach: args.detach,
        work_dir_given: args.work_dir.is_some(),
    });
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
    report::install_ctrl_c(&cancel)?;
    let hint = FollowHint {
        detach: args.detach,
        work_dir: args.work_dir.clone(),
    };
    let printer = Printer::start(args.json, hint.clone())?;
    let inputs = printer.inputs.clone();

    let ctx = Context {
        tools,
        store,
        cancel: cancel.clone(),
        events: printer.events.clone(),
        parallel_chunks: Context::default_parallelism(),
    };
    let mut succeeded = 0usize;
    let mut cancelled = false;
    let mut detached = Vec::new();
    // Counts the outcome; true when the job was cancelled (the run stops there).
    let mut record = |input: &Path, outcome: Outcome| {
        match outcome {
            Outcome::Finished { .. } => succeeded += 1,
            Outcome::Failed { error, .. } => failures.push((input.to_path_buf(), error)),
            Outcome::Cancelled => return true,
            Outcome::Detached { session_id } => detached.push(session_id),
        }
        false
    };
    let specs = planned.iter().enumerate().map(|(n, job)| {
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
        (id, spec)
    });
    match &cluster {
        // One job after another: each follows its cluster jobs to their end (or detaches).
        Some(options) => {
            for (id, spec) in specs {
                if cancel.is_cancelled() {
                    cancelled = true;
                    break;
                }
                let outcome = pipeline::cluster::run_job(
                    &ctx,
                    id,
                    &spec,
                    options,
                    &report::ask_cancel_cluster_jobs,
                );
                if record(&spec.input, outcome) || cancel.is_cancelled() {
                    cancelled = true;
                    break;
                }
            }
        }
        // Here: each job's package and verify overlap the next job's chunks.
        None => {
            let input_of = |id: u64| planned[id as usize - 1].input.clone();
            pipeline::run_batch(&ctx, specs, |id, outcome| {
                cancelled |= record(&input_of(id), outcome);
            });
            cancelled |= cancel.is_cancelled();
        }
    }
    drop(ctx);
    printer.finish();
    if cancelled && !args.json {
        for id in &detached {
            eprintln!("still on the cluster; follow it with: {}", hint.command(id));
        }
    }

    let total = succeeded + failures.len() + detached.len();
    if !args.json && (total > 1 || !failures.is_empty()) {
        let submitted = if detached.is_empty() {
            String::new()
        } else {
            format!(", {} running on the cluster", detached.len())
        };
        println!(
            "{succeeded} succeeded, {} failed{submitted}{}",
            failures.len(),
            if cancelled { ", stopped early" } else { "" }
        );
        for (input, error) in &failures {
            println!("  failed: {}", report::with_input(error, input));
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
    fn scale_and_chunk_parsers() {
        assert_eq!(parse_scale("2"), Ok(2.0));
        assert!(parse_scale("2.5").is_err());
        assert!(parse_chunk_seconds("0").is_err());
        assert_eq!(parse_chunk_seconds("0.5"), Ok(0.5));
    }
}
