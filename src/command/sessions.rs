//! `reframe sessions list|clean`: the saved sessions (resumable jobs) and their disk usage.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde::Serialize;

use reframe::fsutil;
use reframe::session::SessionStore;

#[derive(Parser, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// List sessions with status, progress and disk usage.
    List {
        /// Print a JSON array instead of a table.
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
    let store = SessionStore::open_default()?;
    match args.command {
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
