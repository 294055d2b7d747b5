//! `reframe sessions list|clean`: the saved sessions (resumable jobs) and their disk usage.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use serde::Serialize;

use reframe::cluster::{ClusterRecord, RECORD_FILE};
use reframe::fsutil;
use reframe::media::tools::Tools;
use reframe::pipeline::{self, CancelToken, Context, Outcome};
use reframe::session::SessionStore;

use super::report::{self, FollowHint, Printer};

#[derive(Parser, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: Cmd,
    /// The sessions folder given to `reframe run --work-dir` (default: the user cache folder).
    #[arg(long, global = true, value_name = "DIR")]
    work_dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// List sessions with status, progress and disk usage.
    List {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one session; a cluster run is followed until it ends (Ctrl-C stops following).
    Status {
        /// The session id (see `reframe sessions list`).
        id: String,
        /// Print the events of a followed cluster run as JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Delete sessions that no process is using.
    Clean {
        /// Only sessions not updated for this many hours.
        #[arg(long, value_name = "HOURS")]
        older_than: Option<f64>,
    },
}

#[derive(Serialize)]
struct Row {
    id: String,
    status: String,
    input: Option<String>,
    chunks_done: Option<usize>,
    chunks_total: Option<usize>,
    last_updated: Option<String>,
    disk_bytes: u64,
    locked: bool,
    error: Option<String>,
    dir: String,
}

pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    let store = match &args.work_dir {
        Some(dir) => SessionStore::at(
            std::path::absolute(dir)
                .with_context(|| format!("cannot resolve {}", dir.display()))?,
        ),
        None => SessionStore::open_default()?,
    };
    match args.command {
        Cmd::Status { id, json } => return status(store, &id, json, args.work_dir),
        Cmd::List { json } => {
            let rows: Vec<Row> = store
                .list()
                .into_iter()
                .map(|e| {
                    let dir = e.dir.display().to_string();
                    match e.progress {
                        Ok(p) => Row {
                            id: e.id,
                            status: if e.locked {
                                "running".into()
                            } else {
                                serde_json::to_value(p.status)
                                    .ok()
                                    .and_then(|v| v.as_str().map(str::to_owned))
                                    .unwrap_or_default()
                            },
                            input: Some(p.input.path.display().to_string()),
                            chunks_done: Some(p.completed_chunks.len()),
                            chunks_total: Some(p.chunks_total),
                            last_updated: Some(p.last_updated),
                            disk_bytes: e.disk_bytes,
                            locked: e.locked,
                            error: None,
                            dir,
                        },
                        Err(err) => Row {
                            id: e.id,
                            status: if e.locked {
                                "running".into()
                            } else {
                                "unreadable".into()
                            },
                            input: None,
                            chunks_done: None,
                            chunks_total: None,
                            last_updated: None,
                            disk_bytes: e.disk_bytes,
                            locked: e.locked,
                            error: Some(err.to_string()),
                            dir,
                        },
                    }
                })
                .collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else if rows.is_empty() {
                println!("no sessions in {}", store.root().display());
            } else {
                println!(
                    "{:<12}  {:<11}  {:>9}  {:>9}  {:<20}  input",
                    "id", "status", "chunks", "size", "updated"
                );
                for r in rows {
                    let chunks = match (r.chunks_done, r.chunks_total) {
                        (Some(d), Some(t)) => format!("{d}/{t}"),
                        _ => "-".into(),
                    };
                    println!(
                        "{:<12}  {:<11}  {:>9}  {:>9}  {:<20}  {}",
                        r.id,
                        r.status,
                        chunks,
                        fsutil::human_bytes(r.disk_bytes),
                        r.last_updated.unwrap_or_else(|| "-".into()),
                        r.input.or(r.error).unwrap_or_default()
                    );
                }
            }
        }
        Cmd::Clean { older_than } => {
            let older_than = older_than.map(|h| Duration::from_secs_f64(h.max(0.0) * 3600.0));
            let report = store.clean(older_than);
            let freed = report.bytes_freed();
            for removed in &report.removed {
                println!(
                    "removed {} ({})",
                    removed.id,
                    fsutil::human_bytes(removed.bytes_freed)
                );
            }
            for (id, error) in &report.failed {
                println!("could not remove {id}: {error}");
            }
            for id in &report.skipped_locked {
                println!("kept {id}: in use by a running reframe");
            }
            println!(
                "{} session(s) removed, {} freed",
                report.removed.len(),
                fsutil::human_bytes(freed)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `reframe sessions status ID`: follow a cluster run again, or describe a local session.
fn status(
    store: SessionStore,
    id: &str,
    json: bool,
    work_dir: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let entry = store.entry(id)?;
    let on_cluster = store.peek_json::<ClusterRecord>(id, RECORD_FILE)?.is_some();
    if !on_cluster {
        let progress = entry.progress?;
        let state = if entry.locked {
            "running".to_owned()
        } else {
            serde_json::to_value(progress.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        };
        println!("session {id}: {state}");
        println!("  input: {}", progress.input.path.display());
        if let Some(output) = &progress.output {
            println!("  output: {}", output.display());
        }
        println!(
            "  chunks: {}/{}",
            progress.completed_chunks.len(),
            progress.chunks_total
        );
        for (step, state) in progress.steps.iter() {
            let status = serde_json::to_value(state.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            match &state.error {
                Some(error) => println!("  {}: {status}: {error}", step.label()),
                None => println!("  {}: {status}", step.label()),
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let cancel = CancelToken::default();
    report::install_ctrl_c(&cancel)?;
    let printer = Printer::start(
        json,
        FollowHint {
            detach: false,
            work_dir: work_dir.clone(),
        },
    )?;
    if let (Ok(progress), Ok(mut inputs)) = (&entry.progress, printer.inputs.lock()) {
        inputs.insert(1, progress.input.path.clone());
    }
    let ctx = Context {
        tools: Tools::locate()?,
        store,
        cancel: cancel.clone(),
        events: printer.events.clone(),
        parallel_chunks: 1,
    };
    let outcome = pipeline::cluster::attach(&ctx, 1, id, &report::ask_cancel_cluster_jobs);
    drop(ctx);
    printer.finish();
    Ok(match outcome {
        Outcome::Finished { .. } => ExitCode::SUCCESS,
        Outcome::Failed { .. } => ExitCode::from(1),
        Outcome::Cancelled => ExitCode::from(130),
        Outcome::Detached { session_id } => {
            let hint = FollowHint {
                detach: false,
                work_dir,
            };
            eprintln!(
                "still on the cluster; follow it with: {}",
                hint.command(&session_id)
            );
            ExitCode::from(130)
        }
    })
}
