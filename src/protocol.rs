//! Messages that cross a process boundary: job requests going into a processing worker, and the
//! events it reports back (also printed by `reframe run --json`, one JSON object per line).
//!
//! This module is the single definition of that wire format. Every message is one line of JSON
//! with a `type` tag; logs never go to stdout. Bump [`PROTOCOL_VERSION`] on any incompatible
//! change: a GUI and a worker of different versions refuse each other at `hello`. A new event
//! type alone is compatible (readers turn a line they cannot parse into a log line, as the
//! supervisor does); changing or removing a field is not.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use crate::session::progress::{JobStatus, Step, StepStatus};

/// Version of the wire format; exchanged in [`Request::Hello`] / [`Event::Hello`].
pub const PROTOCOL_VERSION: u32 = 1;

/// Identifies one job within one worker's lifetime (assigned by whoever submits it).
pub type JobId = u64;

/// How to treat an existing session of the same input and settings.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ResumeMode {
    /// Resume a resumable session if there is one, else start fresh.
    #[default]
    Auto,
    /// Resume; fail if there is nothing to resume.
    Resume,
    /// Discard any previous session of this input and settings and start over.
    Restart,
}

/// Everything that defines one job: the input and the settings chosen by the user.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    pub input: PathBuf,
    /// Engine name as listed by `reframe engines` (`lanczos`, …).
    pub engine: String,
    /// Scale factor applied by the engine (1.5, 2, 3, 4). Ignored when `height` is set.
    pub scale: Option<f64>,
    /// Target output height instead of a scale factor.
    pub height: Option<u32>,
    /// Denoise level, for engines that have one.
    pub denoise: Option<u8>,
    /// Preset name (built-in or user) or path to a preset JSON file.
    pub preset: String,
    /// Output file or directory; `None` puts the output beside the input.
    pub output: Option<PathBuf>,
    pub overwrite: bool,
    pub resume: ResumeMode,
    /// Target chunk length in seconds.
    pub chunk_seconds: f64,
    /// Deinterlace interlaced sources before scaling.
    pub deinterlace: bool,
    /// Folder of the neural engines' model files; `None`: `$REFRAME_MODELS_DIR`, else
    /// `<config dir>/models`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models_dir: Option<PathBuf>,
}

/// Requests read by a processing worker on its stdin.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Request {
    Hello {
        version: u32,
    },
    Run {
        job: JobId,
        spec: JobSpec,
    },
    /// Stop the running job after killing its children; its session stays resumable.
    Cancel {
        job: JobId,
    },
    Shutdown,
}

/// Events written by a processing worker on its stdout (and by `reframe run --json`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Event {
    Hello {
        version: u32,
        pid: u32,
    },
    /// The job was validated and planned; the session exists.
    JobStarted {
        job: JobId,
        input: PathBuf,
        output: PathBuf,
        session_id: String,
        resumed: bool,
        chunks_total: usize,
        chunks_done: usize,
        frames_total: u64,
    },
    Warning {
        job: JobId,
        message: String,
    },
    StepChanged {
        job: JobId,
        step: Step,
        status: StepStatus,
    },
    Progress {
        job: JobId,
        step: Step,
        /// 0–100 within the step.
        percent: f64,
        frames_done: u64,
        frames_total: u64,
        fps: f64,
        eta_secs: Option<f64>,
    },
    ChunkDone {
        job: JobId,
        index: usize,
        chunks_done: usize,
        chunks_total: usize,
    },
    /// A small JPEG of the last frame of chunk `chunk`, just finished (the session's
    /// `thumbnail.jpg`, replaced atomically by each later chunk).
    Thumbnail {
        job: JobId,
        chunk: usize,
        path: PathBuf,
    },
    JobFinished {
        job: JobId,
        output: PathBuf,
        elapsed_secs: f64,
    },
    JobFailed {
        job: JobId,
        error: String,
        /// True when the session was kept and the job can be resumed.
        resumable: bool,
    },
    JobCancelled {
        job: JobId,
    },
    /// The job's unfinished chunks were submitted to a Slurm cluster
    /// (`reframe run --cluster slurm`): one array per range of chunks, then the package job.
    ClusterSubmitted {
        job: JobId,
        session_id: String,
        chunks: Vec<usize>,
        arrays: Vec<String>,
        package: String,
    },
}

impl Event {
    /// The job the event is about (every event but the worker's greeting).
    pub fn job(&self) -> Option<JobId> {
        match self {
            Event::Hello { .. } => None,
            Event::JobStarted { job, .. }
            | Event::Warning { job, .. }
            | Event::StepChanged { job, .. }
            | Event::Progress { job, .. }
            | Event::ChunkDone { job, .. }
            | Event::Thumbnail { job, .. }
            | Event::JobFinished { job, .. }
            | Event::JobFailed { job, .. }
            | Event::JobCancelled { job }
            | Event::ClusterSubmitted { job, .. } => Some(*job),
        }
    }

    /// One line of JSON (no trailing newline).
    pub fn to_line(&self) -> String {
        // Serialising these plain structs cannot fail (no maps with non-string keys).
        serde_json::to_string(self)
            .unwrap_or_else(|e| format!("{{\"type\":\"error\",\"error\":\"{e}\"}}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wire format is a contract with other processes: these exact strings must not change
    /// without bumping [`PROTOCOL_VERSION`].
    #[test]
    fn events_have_pinned_json() {
        let e = Event::Progress {
            job: 3,
            step: Step::Upscale,
            percent: 50.0,
            frames_done: 10,
            frames_total: 20,
            fps: 12.5,
            eta_secs: Some(0.8),
        };
        assert_eq!(
            e.to_line(),
            r#"{"type":"progress","job":3,"step":"upscale","percent":50.0,"frames_done":10,"frames_total":20,"fps":12.5,"eta_secs":0.8}"#
        );
        let e = Event::StepChanged {
            job: 1,
            step: Step::Package,
            status: StepStatus::InProgress,
        };
        assert_eq!(
            e.to_line(),
            r#"{"type":"step-changed","job":1,"step":"package","status":"in-progress"}"#
        );
        let e = Event::Thumbnail {
            job: 4,
            chunk: 2,
            path: "/c/sessions/0123456789ab/thumbnail.jpg".into(),
        };
        assert_eq!(
            e.to_line(),
            r#"{"type":"thumbnail","job":4,"chunk":2,"path":"/c/sessions/0123456789ab/thumbnail.jpg"}"#
        );
        let e = Event::JobFailed {
            job: 2,
            error: "x".into(),
            resumable: true,
        };
        assert_eq!(
            e.to_line(),
            r#"{"type":"job-failed","job":2,"error":"x","resumable":true}"#
        );
    }

    #[test]
    fn requests_round_trip_and_reject_unknown_fields() {
        let spec = JobSpec {
            input: "/v/a b.mp4".into(),
            engine: "lanczos".into(),
            scale: Some(2.0),
            height: None,
            denoise: None,
            preset: "h264_hq".into(),
            output: None,
            overwrite: false,
            resume: ResumeMode::Auto,
            chunk_seconds: 5.0,
            deinterlace: false,
            models_dir: None,
        };
        let line = serde_json::to_string(&Request::Run {
            job: 7,
            spec: spec.clone(),
        })
        .unwrap();
        assert!(line.starts_with(r#"{"type":"run","job":7,"spec":{"input":"/v/a b.mp4""#));
        assert_eq!(
            serde_json::from_str::<Request>(&line).unwrap(),
            Request::Run {
                job: 7,
                spec: spec.clone()
            }
        );
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"type":"cancel","job":7}"#).unwrap(),
            Request::Cancel { job: 7 }
        );
        // A spec without a models folder leaves the field out; one with it carries it.
        assert!(!line.contains("models_dir"));
        let with_models = Request::Run {
            job: 8,
            spec: JobSpec {
                models_dir: Some("/m/o dels".into()),
                ..spec
            },
        };
        let line = serde_json::to_string(&with_models).unwrap();
        assert!(line.ends_with(r#","models_dir":"/m/o dels"}}"#), "{line}");
        assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), with_models);
        let bad = r#"{"type":"run","job":1,"spec":{"input":"a","engine":"lanczos","scale":2,"height":null,"denoise":null,"preset":"p","output":null,"overwrite":false,"resume":"auto","chunk_seconds":5,"deinterlace":false,"extra":1}}"#;
        assert!(serde_json::from_str::<Request>(bad).is_err());
    }
}
