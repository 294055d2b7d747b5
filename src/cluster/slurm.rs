//! Slurm's command-line tools, as reframe uses them: `sbatch` to submit a job array and its
//! dependent package job, `squeue` to follow them (never `sacct`, which needs the accounting
//! database), `scancel` to stop them, `scontrol show config` for `MaxArraySize` and `sinfo` for
//! the nodes. Building the arguments and parsing the answers are pure functions, tested with
//! exact strings; [`Slurm`] runs them.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, anyhow, bail};

use crate::media::process;

/// Slurm's default `MaxArraySize`: array indices go from 0 to 1000.
pub const DEFAULT_MAX_ARRAY_SIZE: usize = 1001;

/// The Slurm commands found on `PATH`.
#[derive(Debug, Clone)]
pub struct Slurm {
    sbatch: PathBuf,
    squeue: PathBuf,
    scancel: PathBuf,
    /// Optional: without them, the defaults apply (`MaxArraySize` 1001, nodes unknown).
    scontrol: Option<PathBuf>,
    sinfo: Option<PathBuf>,
}

impl Slurm {
    /// Finds `sbatch`, `squeue` and `scancel` on `PATH` (`scontrol` and `sinfo` if there).
    pub fn locate() -> anyhow::Result<Slurm> {
        Self::locate_in(std::env::var_os("PATH").as_deref())
    }

    pub fn locate_in(path: Option<&std::ffi::OsStr>) -> anyhow::Result<Slurm> {
        let find = |name: &str| -> Option<PathBuf> {
            std::env::split_paths(path?)
                .map(|dir| dir.join(name))
                .find(|candidate| is_executable(candidate))
        };
        let missing: Vec<&str> = ["sbatch", "squeue", "scancel"]
            .into_iter()
            .filter(|name| find(name).is_none())
            .collect();
        if !missing.is_empty() {
            bail!(
                "--cluster slurm needs Slurm's commands, and {} {} not on PATH: run reframe on a login node of the cluster, or install the client (Debian/Ubuntu: apt install slurm-client) and set SLURM_CONF",
                missing.join(", "),
                if missing.len() == 1 { "is" } else { "are" }
            );
        }
        Ok(Slurm {
            sbatch: find("sbatch").unwrap_or_default(),
            squeue: find("squeue").unwrap_or_default(),
            scancel: find("scancel").unwrap_or_default(),
            scontrol: find("scontrol"),
            sinfo: find("sinfo"),
        })
    }

    /// Submits a batch job; returns its id.
    pub fn submit(&self, request: &SbatchRequest) -> anyhow::Result<String> {
        let mut cmd = Command::new(&self.sbatch);
        cmd.args(request.args());
        let out = process::run_capture(cmd, "sbatch").context("sbatch refused the job")?;
        parse_job_id(&String::from_utf8_lossy(&out))
    }

    /// Every job (array elements one by one) named `name`, in any state Slurm still shows.
    pub fn queue(&self, name: &str) -> anyhow::Result<Vec<QueueEntry>> {
        let mut cmd = Command::new(&self.squeue);
        cmd.args(squeue_args(name));
        let out = process::run_capture(cmd, "squeue").context("squeue failed")?;
        Ok(parse_squeue(&String::from_utf8_lossy(&out)))
    }

    /// Cancels the jobs (whole arrays or single elements such as `12_3`).
    pub fn cancel(&self, ids: &[String]) -> anyhow::Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut cmd = Command::new(&self.scancel);
        cmd.args(ids);
        process::run_capture(cmd, "scancel").context("scancel failed")?;
        Ok(())
    }

    /// The cluster's `MaxArraySize` (Slurm's default when `scontrol` is missing or silent).
    pub fn max_array_size(&self) -> usize {
        let Some(scontrol) = &self.scontrol else {
            return DEFAULT_MAX_ARRAY_SIZE;
        };
        let mut cmd = Command::new(scontrol);
        cmd.args(["show", "config"]);
        match process::run_capture(cmd, "scontrol") {
            Ok(out) => parse_max_array_size(&String::from_utf8_lossy(&out))
                .unwrap_or(DEFAULT_MAX_ARRAY_SIZE),
            Err(e) => {
                log::info!("cannot read the cluster's configuration ({e}); MaxArraySize 1001");
                DEFAULT_MAX_ARRAY_SIZE
            }
        }
    }

    /// Host names of the nodes (of `partition`, else of every partition); `None` when
    /// `sinfo` is missing or fails.
    pub fn nodes(&self, partition: Option<&str>) -> Option<Vec<String>> {
        let sinfo = self.sinfo.as_ref()?;
        let mut cmd = Command::new(sinfo);
        cmd.args(["-h", "-N", "-o", "%n"]);
        if let Some(p) = partition {
            cmd.arg(format!("--partition={p}"));
        }
        let out = process::run_capture(cmd, "sinfo").ok()?;
        let mut nodes: Vec<String> = String::from_utf8_lossy(&out)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        nodes.sort();
        nodes.dedup();
        Some(nodes)
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// One `sbatch` submission.
#[derive(Debug, Clone, PartialEq)]
pub struct SbatchRequest {
    pub job_name: String,
    /// `--output`: where the job's stdout and stderr go (`%A`, `%a`, `%j` patterns allowed).
    pub log: PathBuf,
    /// `--array` value, `%K` included.
    pub array: Option<String>,
    /// Job ids that must all end successfully first (`afterok`); the job is removed if one
    /// of them fails (`--kill-on-invalid-dep=yes`).
    pub after_ok: Vec<String>,
    pub partition: Option<String>,
    /// CPUs per task, or `None` for a whole node (`--exclusive`).
    pub cpus_per_task: Option<u32>,
    /// The user's own options, last so that they win.
    pub extra: Vec<String>,
    pub script: PathBuf,
    pub script_args: Vec<String>,
}

impl SbatchRequest {
    pub fn args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "--parsable".into(),
            format!("--job-name={}", self.job_name).into(),
        ];
        let mut output = OsString::from("--output=");
        output.push(&self.log);
        args.push(output);
        if let Some(array) = &self.array {
            args.push(format!("--array={array}").into());
        }
        if !self.after_ok.is_empty() {
            args.push(format!("--dependency=afterok:{}", self.after_ok.join(":")).into());
            args.push("--kill-on-invalid-dep=yes".into());
        }
        match self.cpus_per_task {
            Some(n) => args.push(format!("--cpus-per-task={n}").into()),
            None => args.push("--exclusive".into()),
        }
        if let Some(p) = &self.partition {
            args.push(format!("--partition={p}").into());
        }
        args.extend(self.extra.iter().map(OsString::from));
        args.push(self.script.clone().into_os_string());
        args.extend(self.script_args.iter().map(OsString::from));
        args
    }
}

/// `sbatch --parsable` prints `jobid` or `jobid;cluster`.
pub fn parse_job_id(out: &str) -> anyhow::Result<String> {
    let line = out
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .ok_or_else(|| anyhow!("sbatch printed no job id"))?;
    let id = line.split(';').next().unwrap_or(line);
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        bail!("sbatch printed {line:?}, not a job id");
    }
    Ok(id.to_owned())
}

pub fn squeue_args(name: &str) -> Vec<String> {
    [
        "--noheader",
        "--array",
        "--states=all",
        &format!("--name={name}"),
        "--format=%i|%T|%r",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// One line of `squeue --array --format=%i|%T|%r`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    /// `12` for a plain job, `12_3` for an array element (`12_[4-9]` while elements are
    /// still pending as one record).
    pub id: String,
    pub state: String,
    pub reason: String,
}

impl QueueEntry {
    /// The job id without the array element (`12_3` → `12`).
    pub fn job(&self) -> &str {
        self.id.split('_').next().unwrap_or(&self.id)
    }

    /// The array element (`12_3` → 3).
    pub fn task(&self) -> Option<usize> {
        self.id.split_once('_')?.1.parse().ok()
    }

    /// Still queued or running: it may yet do work.
    pub fn is_alive(&self) -> bool {
        matches!(
            self.state.as_str(),
            "PENDING"
                | "RUNNING"
                | "CONFIGURING"
                | "COMPLETING"
                | "SUSPENDED"
                | "REQUEUED"
                | "REQUEUE_FED"
                | "REQUEUE_HOLD"
                | "RESIZING"
                | "RESV_DEL_HOLD"
                | "SIGNALING"
                | "STAGE_OUT"
                | "STOPPED"
        )
    }

    /// Ended without success (the dependent job will not run).
    pub fn is_failure(&self) -> bool {
        !self.is_alive() && self.state != "COMPLETED"
    }
}

pub fn parse_squeue(out: &str) -> Vec<QueueEntry> {
    out.lines()
        .filter_map(|line| {
            let mut fields = line.trim().splitn(3, '|');
            let id = fields.next()?.trim();
            let state = fields.next()?.trim();
            let reason = fields.next().unwrap_or("").trim();
            (!id.is_empty() && !state.is_empty()).then(|| QueueEntry {
                id: id.to_owned(),
                state: state.to_owned(),
                reason: reason.to_owned(),
            })
        })
        .collect()
}

/// `MaxArraySize = 1001` in `scontrol show config`.
pub fn parse_max_array_size(config: &str) -> Option<usize> {
    config.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim() == "MaxArraySize")
            .then(|| value.trim().parse::<usize>().ok())
            .flatten()
            .filter(|n| *n > 0)
    })
}

/// One job array covering chunks `base + task` for its tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrayPlan {
    pub base: usize,
    /// `--array` value: ranges of task ids, then `%K` when limited.
    pub spec: String,
}

/// Chunks to arrays: task ids must stay below `max_array_size`, so chunk `i` goes to the array
/// with base `i - i % max_array_size`. Tasks are written as ranges (`0-3,7,9-12`).
pub fn array_plans(
    chunks: &[usize],
    max_array_size: usize,
    max_parallel: Option<usize>,
) -> Vec<ArrayPlan> {
    let size = max_array_size.max(1);
    let mut sorted = chunks.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut plans: Vec<(usize, Vec<usize>)> = Vec::new();
    for chunk in sorted {
        let base = chunk - chunk % size;
        match plans.last_mut() {
            Some((b, tasks)) if *b == base => tasks.push(chunk - base),
            _ => plans.push((base, vec![chunk - base])),
        }
    }
    plans
        .into_iter()
        .map(|(base, tasks)| {
            let mut spec = ranges(&tasks);
            if let Some(k) = max_parallel {
                spec.push_str(&format!("%{k}"));
            }
            ArrayPlan { base, spec }
        })
        .collect()
}

/// Sorted, distinct numbers as `a-b,c,…`.
fn ranges(sorted: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_array_submission_is_exact() {
        let request = SbatchRequest {
            job_name: "reframe-0123456789ab".into(),
            log: "/w/0123456789ab/logs/slurm-chunk-%A_%a.log".into(),
            array: Some("0-3,7%2".into()),
            after_ok: vec![],
            partition: Some("gpu".into()),
            cpus_per_task: Some(1),
            extra: vec!["--time=02:00:00".into()],
            script: "/w/0123456789ab/cluster/chunk.sh".into(),
            script_args: vec!["--index-base".into(), "0".into()],
        };
        let args: Vec<String> = request
            .args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args.join(" "),
            "--parsable --job-name=reframe-0123456789ab --output=/w/0123456789ab/logs/slurm-chunk-%A_%a.log \
             --array=0-3,7%2 --cpus-per-task=1 --partition=gpu --time=02:00:00 \
             /w/0123456789ab/cluster/chunk.sh --index-base 0"
        );
    }

    #[test]
    fn package_submission_depends_on_every_array() {
        let request = SbatchRequest {
            job_name: "reframe-x".into(),
            log: "/w/x/logs/slurm-package-%j.log".into(),
            array: None,
            after_ok: vec!["41".into(), "42".into()],
            partition: None,
            cpus_per_task: None,
            extra: vec![],
            script: "/w/x/cluster/package.sh".into(),
            script_args: vec![],
        };
        let args: Vec<String> = request
            .args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args.join(" "),
            "--parsable --job-name=reframe-x --output=/w/x/logs/slurm-package-%j.log \
             --dependency=afterok:41:42 --kill-on-invalid-dep=yes --exclusive /w/x/cluster/package.sh"
        );
    }

    #[test]
    fn sbatch_answers_are_parsed() {
        assert_eq!(parse_job_id("1234\n").unwrap(), "1234");
        assert_eq!(parse_job_id("1234;cluster_a\n").unwrap(), "1234");
        assert!(parse_job_id("").is_err());
        assert!(parse_job_id("sbatch: error: Batch job submission failed\n").is_err());
    }

    #[test]
    fn squeue_lines_are_parsed() {
        assert_eq!(
            squeue_args("reframe-ab").join(" "),
            "--noheader --array --states=all --name=reframe-ab --format=%i|%T|%r"
        );
        let entries = parse_squeue(
            "12_0|COMPLETED|None\n12_1|RUNNING|None\n12_[2-3%1]|PENDING|JobArrayTaskLimit\n13|PENDING|Dependency\n\n14_2|CANCELLED|None\n",
        );
        assert_eq!(entries.len(), 5);
        assert_eq!(entries[0].job(), "12");
        assert_eq!(entries[0].task(), Some(0));
        assert!(!entries[0].is_alive() && !entries[0].is_failure());
        assert!(entries[1].is_alive());
        assert_eq!(entries[2].task(), None);
        assert!(entries[2].is_alive());
        assert_eq!(entries[3].reason, "Dependency");
        assert_eq!(entries[3].task(), None);
        assert!(entries[4].is_failure());
    }

    #[test]
    fn max_array_size_comes_from_the_config() {
        let config = "Configuration data as of 2026-12-02T10:00:00\nMaxArraySize            = 1001\nMaxJobCount = 10000\n";
        assert_eq!(parse_max_array_size(config), Some(1001));
        assert_eq!(parse_max_array_size("MaxArraySize = 0\n"), None);
        assert_eq!(parse_max_array_size("nothing"), None);
    }

    #[test]
    fn chunks_are_split_into_arrays_below_the_limit() {
        assert_eq!(
            array_plans(&[0, 1, 2, 3, 7, 9, 10, 11, 12], 1001, Some(2)),
            [ArrayPlan {
                base: 0,
                spec: "0-3,7,9-12%2".into()
            }]
        );
        assert_eq!(
            array_plans(&[2, 998, 999, 1000, 1001, 2500], 1000, None),
            [
                ArrayPlan {
                    base: 0,
                    spec: "2,998-999".into()
                },
                ArrayPlan {
                    base: 1000,
                    spec: "0-1".into()
                },
                ArrayPlan {
                    base: 2000,
                    spec: "500".into()
                },
            ]
        );
        assert!(array_plans(&[], 1001, None).is_empty());
    }

    #[test]
    fn missing_commands_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let error = Slurm::locate_in(Some(dir.path().as_os_str()))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("sbatch, squeue, scancel are not on PATH"),
            "{error}"
        );
        assert!(error.contains("apt install slurm-client"), "{error}");
        let sbatch = dir.path().join("sbatch");
        std::fs::write(&sbatch, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&sbatch, std::fs::Permissions::from_mode(0o755)).unwrap();
        let error = Slurm::locate_in(Some(dir.path().as_os_str()))
            .unwrap_err()
            .to_string();
        assert!(error.contains("squeue, scancel are not on PATH"), "{error}");
    }
}
