//! `reframe worker process`: the processing worker child of the window (and `reframe worker
//! preview`, the preview worker, whose loop lives in [`reframe::preview::worker`]). Reads
//! [`Request`]s on stdin, runs one job at a time, writes [`Event`]s on stdout (one JSON
//! object per line; logs go to stderr). Exits when its stdin closes, so a window that dies
//! takes its worker with it, and the job's session stays resumable.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, anyhow};
use clap::{Parser, Subcommand};
use crossbeam_channel::{Sender, unbounded};

use reframe::media::tools::Tools;
use reframe::pipeline::{self, CancelToken, Context};
use reframe::protocol::{Event, JobId, PROTOCOL_VERSION, Request};
use reframe::session::SessionStore;

#[derive(Parser, Debug)]
pub struct Args {
    #[command(subcommand)]
    role: Role,
}

#[derive(Subcommand, Debug)]
enum Role {
    /// Run jobs sent on stdin.
    Process,
    /// Answer frame and spectrogram preview requests sent on stdin.
    Preview,
    /// A chunk task of a cluster run: encode one chunk of the session (started by Slurm).
    Chunk {
        /// The session folder.
        #[arg(long)]
        session: PathBuf,
        /// The chunk.
        #[arg(long, conflicts_with = "index_base")]
        index: Option<usize>,
        /// The chunk is this plus the array task id ($SLURM_ARRAY_TASK_ID).
        #[arg(long)]
        index_base: Option<usize>,
    },
    /// The package task of a cluster run: package and verify once every chunk is done.
    Package {
        /// The session folder.
        #[arg(long)]
        session: PathBuf,
    },
}

enum Input {
    Request(Request),
    Closed,
}

pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    match args.role {
        Role::Preview => {
            let tools = Tools::locate()?;
            reframe::preview::worker::run(tools)?;
            return Ok(ExitCode::SUCCESS);
        }
        Role::Chunk {
            session,
            index,
            index_base,
        } => {
            let index = chunk_index(index, index_base, std::env::var("SLURM_ARRAY_TASK_ID").ok())?;
            pipeline::cluster::chunk_task(Tools::locate()?, &session, index)?;
            return Ok(ExitCode::SUCCESS);
        }
        Role::Package { session } => {
            pipeline::cluster::package_task(Tools::locate()?, &session)?;
            return Ok(ExitCode::SUCCESS);
        }
        Role::Process => {}
    }
    let (events_tx, events_rx) = unbounded::<Event>();
    let writer = std::thread::Builder::new()
        .name("worker-stdout".into())
        .spawn(move || {
            let stdout = std::io::stdout();
            for event in events_rx {
                let mut out = stdout.lock();
                if writeln!(out, "{}", event.to_line())
                    .and_then(|()| out.flush())
                    .is_err()
                {
                    break;
                }
            }
        })
        .context("cannot start the output thread")?;
    let _ = events_tx.send(Event::Hello {
        version: PROTOCOL_VERSION,
        pid: std::process::id(),
    });

    let (input_tx, input_rx) = unbounded::<Input>();
    std::thread::Builder::new()
        .name("worker-stdin".into())
        .spawn(move || read_requests(&input_tx))
        .context("cannot start the input thread")?;

    let mut running: Option<(JobId, CancelToken, std::thread::JoinHandle<()>)> = None;
    for input in input_rx {
        if let Some((_, _, handle)) = &running
            && handle.is_finished()
        {
            running = None;
        }
        match input {
            Input::Request(Request::Hello { version }) if version != PROTOCOL_VERSION => {
                log::error!("protocol version {version} is not {PROTOCOL_VERSION}; exiting");
                break;
            }
            Input::Request(Request::Hello { .. }) => {}
            Input::Request(Request::Run { job, spec }) => {
                if running.is_some() {
                    let _ = events_tx.send(Event::JobFailed {
                        job,
                        error: "another job is running in this worker".into(),
                        resumable: false,
                    });
                    continue;
                }
                let cancel = CancelToken::default();
                let handle = spawn_job(job, spec, cancel.clone(), events_tx.clone())?;
                running = Some((job, cancel, handle));
            }
            Input::Request(Request::Cancel { job }) => {
                if let Some((id, cancel, _)) = &running
                    && *id == job
                {
                    cancel.cancel();
                }
            }
            Input::Request(Request::Shutdown) | Input::Closed => break,
        }
    }
    if let Some((_, cancel, handle)) = running.take() {
        cancel.cancel();
        let _ = handle.join();
    }
    drop(events_tx);
    let _ = writer.join();
    Ok(ExitCode::SUCCESS)
}

fn read_requests(tx: &Sender<Input>) {
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Request>(&line) {
            Ok(request) => {
                if tx.send(Input::Request(request)).is_err() {
                    return;
                }
            }
            Err(e) => log::error!("ignoring a request that is not valid: {e}: {line}"),
        }
    }
    let _ = tx.send(Input::Closed);
}

fn spawn_job(
    job: JobId,
    spec: reframe::protocol::JobSpec,
    cancel: CancelToken,
    events: Sender<Event>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("job-{job}"))
        .spawn(move || {
            let setup = Tools::locate()
                .map_err(anyhow::Error::from)
                .and_then(|tools| {
                    let store = SessionStore::open_default()?;
                    Ok((tools, store))
                });
            match setup {
                Ok((tools, store)) => {
                    let ctx = Context {
                        tools,
                        store,
                        cancel,
                        events: events.clone(),
                        parallel_chunks: Context::default_parallelism(),
                    };
                    pipeline::run_job(&ctx, job, &spec);
                }
                Err(e) => {
                    let _ = events.send(Event::JobFailed {
                        job,
                        error: format!("{e:#}"),
                        resumable: false,
                    });
                }
            }
        })
        .context("cannot start the job thread")
}

/// The chunk of a chunk task: `--index`, or `--index-base` plus the array task id.
fn chunk_index(
    index: Option<usize>,
    base: Option<usize>,
    task: Option<String>,
) -> anyhow::Result<usize> {
    match (index, base) {
        (Some(index), _) => Ok(index),
        (None, Some(base)) => {
            let task = task.ok_or_else(|| {
                anyhow!("--index-base needs SLURM_ARRAY_TASK_ID (this runs as a Slurm array task)")
            })?;
            let task: usize = task
                .trim()
                .parse()
                .map_err(|_| anyhow!("SLURM_ARRAY_TASK_ID is {task:?}, not a task number"))?;
            Ok(base + task)
        }
        (None, None) => Err(anyhow!("give the chunk with --index or --index-base")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_task_finds_its_chunk() {
        assert_eq!(chunk_index(Some(4), None, None).unwrap(), 4);
        assert_eq!(
            chunk_index(None, Some(1001), Some("7".into())).unwrap(),
            1008
        );
        assert!(chunk_index(None, Some(0), None).is_err());
        assert!(chunk_index(None, Some(0), Some("x".into())).is_err());
        assert!(chunk_index(None, None, None).is_err());
    }
}
