//! Running a job's chunks on a Slurm cluster: the job becomes one `sbatch --array` of chunk
//! tasks and one package task that depends on it (`afterok`). What lives here is what the
//! submitting process and the tasks share besides the pipeline itself:
//!
//! * [`slurm`]: the Slurm commands (arguments built and answers parsed by pure functions);
//! * [`storage`]: whether a path is on storage the compute nodes can see;
//! * the session's `cluster.json` ([`ClusterRecord`]: the job spec the tasks rebuild the job
//!   from, and the Slurm jobs submitted), the per-chunk completion and failure markers the
//!   tasks write (`cluster/done/NNNNN.json`, `cluster/failed/NNNNN.json`), and the two batch
//!   scripts.
//!
//! Who writes what: a chunk task writes only its chunk's files and its marker; `progress.json`
//! is written only by the process holding the session's lock — the submitting process while
//! it submits, and the package task, which folds the markers in. The flow itself is in
//! `pipeline::cluster`.

pub mod model;
pub mod slurm;
pub mod storage;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::fsutil;
use crate::protocol::JobSpec;

/// The session file describing a cluster run.
pub const RECORD_FILE: &str = "cluster.json";
/// Folder of the batch scripts and markers inside a session directory.
pub const CLUSTER_DIR: &str = "cluster";

/// How to run on the cluster (from `reframe run --cluster slurm …`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterOptions {
    pub partition: Option<String>,
    /// At most this many chunk tasks at once (`--array=…%K`).
    pub max_parallel: Option<usize>,
    /// More `sbatch` options, passed as given, after reframe's own.
    pub sbatch_args: Vec<String>,
    /// Return once submitted; `reframe sessions status ID` follows later.
    pub detach: bool,
    /// The session folder was chosen by the user (`--work-dir`), not the default.
    pub work_dir_given: bool,
}

/// `cluster.json`: what the tasks need to rebuild the job and what was submitted.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ClusterRecord {
    pub version: u32,
    /// The job with every path absolute, as the tasks run it.
    pub spec: JobSpec,
    /// Slurm job name shared by every submission of this session.
    pub job_name: String,
    /// The chunk arrays of the latest submission.
    pub arrays: Vec<SubmittedArray>,
    /// The package job of the latest submission.
    pub package: Option<String>,
    /// Chunks the latest submission asked for.
    pub chunks: Vec<usize>,
    pub submitted_at: String,
}

pub const RECORD_VERSION: u32 = 1;

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct SubmittedArray {
    pub id: String,
    /// Chunk index of task 0.
    pub base: usize,
    /// The `--array` value.
    pub spec: String,
}

impl ClusterRecord {
    /// Every Slurm job id of the latest submission.
    pub fn job_ids(&self) -> Vec<String> {
        self.arrays
            .iter()
            .map(|a| a.id.clone())
            .chain(self.package.clone())
            .collect()
    }

    /// The chunk a queue entry of one of our arrays works on.
    pub fn chunk_of(&self, entry: &slurm::QueueEntry) -> Option<usize> {
        let array = self.arrays.iter().find(|a| a.id == entry.job())?;
        Some(array.base + entry.task()?)
    }
}

/// Slurm job name of a session: short enough for `squeue`'s columns, unique per session.
pub fn job_name(session_id: &str) -> String {
    format!("reframe-{session_id}")
}

/// Written by the task that made chunk `chunk`, once its files are complete and in place.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ChunkMarker {
    pub chunk: usize,
    pub host: String,
    pub seconds: f64,
    pub frames: u64,
}

/// Rewritten every few seconds by the task making chunk `chunk`: the frames it has encoded so
/// far, so the follower's progress moves inside chunks that take minutes (neural engines).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ChunkRunning {
    pub chunk: usize,
    pub host: String,
    pub frames: u64,
}

/// Written by a chunk task that failed: why, and where its log is.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ChunkFailure {
    pub chunk: usize,
    pub host: String,
    pub error: String,
    pub log: Option<PathBuf>,
    /// The source is damaged there: running the chunk again fails the same way.
    #[serde(default)]
    pub recurs: bool,
}

fn done_dir(session_dir: &Path) -> PathBuf {
    session_dir.join(CLUSTER_DIR).join("done")
}

fn failed_dir(session_dir: &Path) -> PathBuf {
    session_dir.join(CLUSTER_DIR).join("failed")
}

fn running_dir(session_dir: &Path) -> PathBuf {
    session_dir.join(CLUSTER_DIR).join("running")
}

fn marker_name(chunk: usize) -> String {
    format!("{chunk:05}.json")
}

/// Records chunk `marker.chunk` as done (atomically; its failure marker, if any, goes).
pub fn write_done(session_dir: &Path, marker: &ChunkMarker) -> anyhow::Result<()> {
    write_marker(&done_dir(session_dir), marker.chunk, marker)?;
    let _ = std::fs::remove_file(failed_dir(session_dir).join(marker_name(marker.chunk)));
    Ok(())
}

pub fn write_running(session_dir: &Path, running: &ChunkRunning) -> anyhow::Result<()> {
    write_marker(&running_dir(session_dir), running.chunk, running)
}

/// Forgets the in-chunk progress of `chunk` (its task ended, or it is submitted again).
pub fn clear_running(session_dir: &Path, chunk: usize) {
    let _ = std::fs::remove_file(running_dir(session_dir).join(marker_name(chunk)));
}

pub fn write_failed(session_dir: &Path, failure: &ChunkFailure) -> anyhow::Result<()> {
    write_marker(&failed_dir(session_dir), failure.chunk, failure)
}

fn write_marker<T: Serialize>(dir: &Path, chunk: usize, value: &T) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(marker_name(chunk));
    let bytes = serde_json::to_vec(value).context("cannot serialise a chunk marker")?;
    fsutil::write_atomic(&path, &bytes)
        .with_context(|| format!("cannot write the chunk marker {}", path.display()))
}

/// The done markers, by chunk. Unreadable ones are skipped (the chunk is done again).
pub fn read_done(session_dir: &Path) -> BTreeMap<usize, ChunkMarker> {
    read_markers(&done_dir(session_dir))
}

pub fn read_failed(session_dir: &Path) -> BTreeMap<usize, ChunkFailure> {
    read_markers(&failed_dir(session_dir))
}

/// The in-chunk progress of the chunk tasks running (or killed while running), by chunk.
pub fn read_running(session_dir: &Path) -> BTreeMap<usize, ChunkRunning> {
    read_markers(&running_dir(session_dir))
}

/// Frames done: those of the `done` chunks, plus what the tasks of the others reported (at
/// most each chunk's size). `chunk_frames` is the plan's frames per chunk.
pub fn frames_done(
    chunk_frames: &[u64],
    done: &std::collections::BTreeSet<usize>,
    running: &BTreeMap<usize, ChunkRunning>,
) -> u64 {
    let finished: u64 = done.iter().filter_map(|&i| chunk_frames.get(i)).sum();
    let in_flight: u64 = running
        .values()
        .filter(|r| !done.contains(&r.chunk))
        .filter_map(|r| Some(r.frames.min(*chunk_frames.get(r.chunk)?)))
        .sum();
    finished + in_flight
}

/// Forgets the failure and in-chunk progress of `chunks` before they are submitted again.
pub fn clear_failed(session_dir: &Path, chunks: &[usize]) {
    for &chunk in chunks {
        let _ = std::fs::remove_file(failed_dir(session_dir).join(marker_name(chunk)));
        clear_running(session_dir, chunk);
    }
}

fn read_markers<T: serde::de::DeserializeOwned + HasChunk>(dir: &Path) -> BTreeMap<usize, T> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    let mut markers = BTreeMap::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if fsutil::is_atomic_temp(entry.file_name().as_os_str()) || !name.ends_with(".json") {
            continue;
        }
        match std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<T>(&b).ok())
        {
            Some(marker) if name == marker_name(marker.chunk()) => {
                markers.insert(marker.chunk(), marker);
            }
            _ => log::warn!("ignoring an unreadable chunk marker: {}", path.display()),
        }
    }
    markers
}

trait HasChunk {
    fn chunk(&self) -> usize;
}
impl HasChunk for ChunkMarker {
    fn chunk(&self) -> usize {
        self.chunk
    }
}
impl HasChunk for ChunkRunning {
    fn chunk(&self) -> usize {
        self.chunk
    }
}
impl HasChunk for ChunkFailure {
    fn chunk(&self) -> usize {
        self.chunk
    }
}

/// The two batch scripts of a session: `cluster/chunk.sh` (arguments: `--index-base N`; the
/// chunk is N + `$SLURM_ARRAY_TASK_ID`) and `cluster/package.sh`. Each runs `exe` (this
/// binary, which the nodes must see at the same path) on the session folder.
pub fn write_scripts(session_dir: &Path, exe: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    use std::os::unix::fs::PermissionsExt;
    let dir = session_dir.join(CLUSTER_DIR);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut paths = Vec::new();
    for (name, role) in [("chunk.sh", "chunk"), ("package.sh", "package")] {
        let path = dir.join(name);
        fsutil::write_atomic(&path, batch_script(exe, role, session_dir).as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("cannot make {} executable", path.display()))?;
        paths.push(path);
    }
    Ok((paths[0].clone(), paths[1].clone()))
}

fn batch_script(exe: &Path, role: &str, session_dir: &Path) -> String {
    let quote = |p: &Path| crate::media::process::shell_quote(p.as_os_str());
    format!(
        "#!/bin/sh\n# reframe: the {role} task of a session, submitted by `reframe run --cluster slurm`.\nexec {} worker {role} --session {} \"$@\"\n",
        quote(exe),
        quote(session_dir)
    )
}

/// This machine's short host name (as Slurm names nodes).
pub fn short_host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into the buffer we own.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).into_owned();
    name.split('.').next().unwrap_or("").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_inside_chunks_counts_each_running_chunk_once_and_at_most_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let running = |chunk, frames| ChunkRunning {
            chunk,
            host: "n1".into(),
            frames,
        };
        write_running(dir.path(), &running(1, 30)).unwrap();
        write_running(dir.path(), &running(1, 50)).unwrap();
        write_running(dir.path(), &running(2, 999)).unwrap();
        write_running(dir.path(), &running(0, 10)).unwrap();
        let chunk_frames = [100, 100, 80];
        let done = std::collections::BTreeSet::from([0]);
        let read = read_running(dir.path());
        assert_eq!(read[&1].frames, 50);
        // Chunk 0 is done (its stale report is ignored), 1 is half-way, 2 is capped at 80.
        assert_eq!(frames_done(&chunk_frames, &done, &read), 100 + 50 + 80);
        clear_running(dir.path(), 1);
        clear_failed(dir.path(), &[2]);
        assert_eq!(
            read_running(dir.path()).keys().copied().collect::<Vec<_>>(),
            [0]
        );
        assert_eq!(
            frames_done(&chunk_frames, &done, &read_running(dir.path())),
            100
        );
    }

    #[test]
    fn markers_round_trip_and_a_done_chunk_forgets_its_failure() {
        let dir = tempfile::tempdir().unwrap();
        write_failed(
            dir.path(),
            &ChunkFailure {
                chunk: 3,
                host: "n1".into(),
                error: "boom".into(),
                log: None,
                recurs: false,
            },
        )
        .unwrap();
        assert_eq!(read_failed(dir.path())[&3].error, "boom");
        let marker = ChunkMarker {
            chunk: 3,
            host: "n2".into(),
            seconds: 1.5,
            frames: 120,
        };
        write_done(dir.path(), &marker).unwrap();
        assert_eq!(read_done(dir.path())[&3], marker);
        assert!(read_failed(dir.path()).is_empty());
        // A marker under another chunk's name is not trusted.
        std::fs::write(
            dir.path().join("cluster/done/00007.json"),
            serde_json::to_vec(&marker).unwrap(),
        )
        .unwrap();
        std::fs::write(dir.path().join("cluster/done/00008.json"), b"{").unwrap();
        assert_eq!(
            read_done(dir.path()).keys().copied().collect::<Vec<_>>(),
            [3]
        );
    }

    #[test]
    fn batch_scripts_quote_every_path() {
        let script = batch_script(
            Path::new("/opt/re frame/reframe"),
            "chunk",
            Path::new("/shared/work/it's/0123456789ab"),
        );
        assert_eq!(
            script.lines().last().unwrap(),
            r#"exec '/opt/re frame/reframe' worker chunk --session '/shared/work/it'\''s/0123456789ab' "$@""#
        );
        assert!(script.starts_with("#!/bin/sh\n"));
    }
}
