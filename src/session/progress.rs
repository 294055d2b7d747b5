//! The `progress.json` schema of a session, and the state transitions a job makes on it.
//!
//! One `progress.json` per session records what the input was, with which settings it is
//! being processed, the status of each of the four steps, and which chunks are done. It is
//! versioned ([`SCHEMA_VERSION`]); a file that does not parse, is truncated, or has another
//! version is reported as corrupt by [`Progress::from_json`], never trusted and never a panic.
//! Writing it (atomically) is the job of [`super::Session::save_progress`].

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::identity::{InputIdentity, Settings, path_serde};
use crate::fsutil;

/// Version of the `progress.json` layout. Bump on any incompatible change: older files are
/// then reported as corrupt (and restarted) instead of being misread.
pub const SCHEMA_VERSION: u32 = 1;

/// The four steps of a job, in order.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    Validate,
    Upscale,
    Package,
    Verify,
}

impl Step {
    pub const ALL: [Step; 4] = [Step::Validate, Step::Upscale, Step::Package, Step::Verify];

    pub fn label(self) -> &'static str {
        match self {
            Step::Validate => "validate",
            Step::Upscale => "upscale",
            Step::Package => "package",
            Step::Verify => "verify",
        }
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum StepStatus {
    #[default]
    Pending,
    InProgress,
    Completed,
    Failed,
}

/// Status of a whole session.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    #[default]
    Created,
    InProgress,
    Completed,
    Failed,
    Cancelled,
}

/// What the session knows about the input video (from the probe at validation).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct VideoSummary {
    pub width: u32,
    pub height: u32,
    pub duration_secs: f64,
    pub frame_rate: f64,
    pub frame_count: u64,
    pub codec: String,
    pub size_bytes: u64,
    /// Container format name as ffprobe reports it (`mov,mp4,m4a,3gp,3g2,mj2`, …).
    pub format: String,
}

/// State of one step.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct StepState {
    pub status: StepStatus,
    /// 0–100.
    pub progress: f64,
    /// ISO 8601, set when the step first starts (kept across resumes).
    pub start_time: Option<String>,
    /// ISO 8601, set when the step completes or fails.
    pub end_time: Option<String>,
    /// Why the step failed.
    pub error: Option<String>,
}

/// The four steps' states, by name.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Steps {
    pub validate: StepState,
    pub upscale: StepState,
    pub package: StepState,
    pub verify: StepState,
}

impl Steps {
    pub fn get(&self, step: Step) -> &StepState {
        match step {
            Step::Validate => &self.validate,
            Step::Upscale => &self.upscale,
            Step::Package => &self.package,
            Step::Verify => &self.verify,
        }
    }

    pub fn get_mut(&mut self, step: Step) -> &mut StepState {
        match step {
            Step::Validate => &mut self.validate,
            Step::Upscale => &mut self.upscale,
            Step::Package => &mut self.package,
            Step::Verify => &mut self.verify,
        }
    }

    /// The steps in order with their states.
    pub fn iter(&self) -> impl Iterator<Item = (Step, &StepState)> {
        Step::ALL.into_iter().map(|step| (step, self.get(step)))
    }
}

/// Content of `progress.json`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Progress {
    /// Always [`SCHEMA_VERSION`] when written by this build.
    pub schema_version: u32,
    pub session_id: String,
    pub input: InputIdentity,
    pub video: VideoSummary,
    pub settings: Settings,
    /// Where the finished output goes (file, or folder for HLS/DASH), once decided.
    #[serde(with = "path_serde::option")]
    pub output: Option<PathBuf>,
    /// ISO 8601.
    pub created_at: String,
    /// ISO 8601, refreshed by every save.
    pub last_updated: String,
    pub status: JobStatus,
    pub steps: Steps,
    /// Number of chunks in the plan (0 until the job is planned).
    pub chunks_total: usize,
    /// Indices (0-based, `< chunks_total`) of the chunks whose output is complete on disk.
    pub completed_chunks: BTreeSet<usize>,
}

impl Progress {
    /// A fresh progress record: status `created`, every step pending, no chunks planned.
    pub fn new(
        session_id: impl Into<String>,
        input: InputIdentity,
        video: VideoSummary,
        settings: Settings,
        output: Option<PathBuf>,
    ) -> Progress {
        let now = fsutil::now_iso8601();
        Progress {
            schema_version: SCHEMA_VERSION,
            session_id: session_id.into(),
            input,
            video,
            settings,
            output,
            created_at: now.clone(),
            last_updated: now,
            status: JobStatus::Created,
            steps: Steps::default(),
            chunks_total: 0,
            completed_chunks: BTreeSet::new(),
        }
    }

    /// Parses and checks a `progress.json`. The error is the reason the content cannot be
    /// trusted (truncated, not JSON, wrong schema version, inconsistent).
    pub fn from_json(bytes: &[u8]) -> Result<Progress, String> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err("the file is empty".to_owned());
        }
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
            if e.is_eof() {
                format!("the file is truncated ({e})")
            } else {
                format!("the file is not valid JSON ({e})")
            }
        })?;
        match value.get("schema_version").map(serde_json::Value::as_u64) {
            None => return Err("the file has no schema_version".to_owned()),
            Some(Some(v)) if v == u64::from(SCHEMA_VERSION) => {}
            Some(Some(v)) => {
                return Err(format!(
                    "schema version {v} is not supported (this reframe reads version {SCHEMA_VERSION})"
                ));
            }
            Some(None) => return Err("schema_version is not a number".to_owned()),
        }
        let progress: Progress = serde_json::from_value(value)
            .map_err(|e| format!("the content does not match the schema ({e})"))?;
        progress.check()?;
        Ok(progress)
    }

    /// Pretty JSON, as written to `progress.json`.
    pub fn to_json(&self) -> Vec<u8> {
        // A plain struct with string keys and our own path serialiser cannot fail to
        // serialise; the fallback keeps the signature infallible without a panic.
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    /// Consistency checks beyond the types.
    fn check(&self) -> Result<(), String> {
        if let Some(&last) = self.completed_chunks.last()
            && last >= self.chunks_total
        {
            return Err(format!(
                "completed chunk {last} is beyond the {} planned chunks",
                self.chunks_total
            ));
        }
        for (step, state) in self.steps.iter() {
            if !(0.0..=100.0).contains(&state.progress) {
                return Err(format!(
                    "step {} has progress {} outside 0–100",
                    step.label(),
                    state.progress
                ));
            }
        }
        Ok(())
    }

    /// Marks `step` as running and the job as in progress. A step resumed after a failure or
    /// an interruption keeps its original start time and progress; a step run again after it
    /// completed starts over.
    pub fn begin_step(&mut self, step: Step) {
        let now = fsutil::now_iso8601();
        let state = self.steps.get_mut(step);
        if state.status == StepStatus::Completed {
            state.progress = 0.0;
            state.start_time = None;
        }
        if state.start_time.is_none() {
            state.start_time = Some(now);
        }
        state.status = StepStatus::InProgress;
        state.end_time = None;
        state.error = None;
        self.status = JobStatus::InProgress;
    }

    /// Marks `step` as completed (100 %). When every step is completed the job is too.
    pub fn finish_step(&mut self, step: Step) {
        let now = fsutil::now_iso8601();
        let state = self.steps.get_mut(step);
        if state.start_time.is_none() {
            state.start_time = Some(now.clone());
        }
        state.status = StepStatus::Completed;
        state.progress = 100.0;
        state.end_time = Some(now);
        state.error = None;
        if self
            .steps
            .iter()
            .all(|(_, s)| s.status == StepStatus::Completed)
        {
            self.status = JobStatus::Completed;
        } else {
            self.status = JobStatus::InProgress;
        }
    }

    /// Marks `step` and the job as failed because of `message`.
    pub fn fail_step(&mut self, step: Step, message: impl Into<String>) {
        let state = self.steps.get_mut(step);
        state.status = StepStatus::Failed;
        state.end_time = Some(fsutil::now_iso8601());
        state.error = Some(message.into());
        self.status = JobStatus::Failed;
    }

    /// Marks the job as cancelled by the user; the step that was running stays in progress so
    /// that a resume continues it.
    pub fn cancel(&mut self) {
        self.status = JobStatus::Cancelled;
    }

    /// Sets the progress of `step` in percent, clamped to 0–100 (NaN is ignored).
    pub fn set_step_progress(&mut self, step: Step, percent: f64) {
        if !percent.is_nan() {
            self.steps.get_mut(step).progress = percent.clamp(0.0, 100.0);
        }
    }

    /// Records chunk `index` as done; returns false if it was already recorded or is not part
    /// of the plan (`index >= chunks_total`).
    pub fn mark_chunk_done(&mut self, index: usize) -> bool {
        index < self.chunks_total && self.completed_chunks.insert(index)
    }

    /// Number of chunks done.
    pub fn chunks_done(&self) -> usize {
        self.completed_chunks.len()
    }

    /// Indices of the planned chunks not yet done, in order.
    pub fn pending_chunks(&self) -> Vec<usize> {
        (0..self.chunks_total)
            .filter(|i| !self.completed_chunks.contains(i))
            .collect()
    }

    /// True when the session can be continued: it holds a valid progress record and the job
    /// has not completed (created, in progress, failed and cancelled sessions all resume).
    pub fn is_resumable(&self) -> bool {
        self.status != JobStatus::Completed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::identity::tests::{sample_input, sample_settings};

    fn sample() -> Progress {
        let mut p = Progress::new(
            "0123456789ab",
            sample_input(),
            VideoSummary {
                width: 640,
                height: 360,
                duration_secs: 12.5,
                frame_rate: 25.0,
                frame_count: 312,
                codec: "h264".to_owned(),
                size_bytes: 123_456_789,
                format: "mov,mp4,m4a,3gp,3g2,mj2".to_owned(),
            },
            sample_settings(),
            Some(PathBuf::from("/videos/sample.2x.mp4")),
        );
        p.chunks_total = 3;
        p
    }

    #[test]
    fn json_round_trip_and_field_names() {
        let mut p = sample();
        p.begin_step(Step::Validate);
        p.finish_step(Step::Validate);
        p.mark_chunk_done(1);
        let json = p.to_json();
        let back = Progress::from_json(&json).unwrap();
        assert_eq!(back, p);

        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(value["schema_version"], 1);
        assert_eq!(value["status"], "in_progress");
        assert_eq!(value["steps"]["validate"]["status"], "completed");
        assert_eq!(value["steps"]["validate"]["progress"], 100.0);
        assert_eq!(value["steps"]["upscale"]["status"], "pending");
        assert_eq!(value["completed_chunks"], serde_json::json!([1]));
        assert_eq!(value["video"]["frame_count"], 312);
        assert_eq!(value["input"]["path"], "/videos/sample.mp4");
        assert_eq!(value["output"], "/videos/sample.2x.mp4");
    }

    #[test]
    fn corrupt_truncated_and_foreign_files_are_rejected() {
        let json = sample().to_json();
        // Every strict prefix of a valid file is detected, never misread.
        for len in 0..json.len() - 1 {
            let reason = Progress::from_json(&json[..len]).unwrap_err();
            assert!(!reason.is_empty());
        }
        assert!(
            Progress::from_json(&json[..json.len() / 2])
                .unwrap_err()
                .contains("truncated")
        );
        assert!(Progress::from_json(b"").unwrap_err().contains("empty"));
        assert!(
            Progress::from_json(b"\0\0\0\0")
                .unwrap_err()
                .contains("not valid JSON")
        );
        assert!(
            Progress::from_json(b"{\"hello\": 1}")
                .unwrap_err()
                .contains("no schema_version")
        );

        let mut value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        value["schema_version"] = 2.into();
        let reason = Progress::from_json(value.to_string().as_bytes()).unwrap_err();
        assert!(reason.contains("schema version 2"), "{reason}");

        let mut value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        value["status"] = "exploded".into();
        let reason = Progress::from_json(value.to_string().as_bytes()).unwrap_err();
        assert!(reason.contains("schema"), "{reason}");

        let mut value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        value["completed_chunks"] = serde_json::json!([0, 7]);
        let reason = Progress::from_json(value.to_string().as_bytes()).unwrap_err();
        assert!(reason.contains("chunk 7"), "{reason}");

        let mut value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        value["steps"]["upscale"]["progress"] = 250.0.into();
        assert!(Progress::from_json(value.to_string().as_bytes()).is_err());
    }

    #[test]
    fn step_transitions_keep_times_and_status() {
        let mut p = sample();
        assert_eq!(p.status, JobStatus::Created);
        assert!(p.is_resumable());

        p.begin_step(Step::Upscale);
        assert_eq!(p.status, JobStatus::InProgress);
        let started = p.steps.upscale.start_time.clone();
        assert!(started.is_some());
        p.set_step_progress(Step::Upscale, 42.0);
        p.set_step_progress(Step::Upscale, f64::NAN);
        assert_eq!(p.steps.upscale.progress, 42.0);

        p.fail_step(Step::Upscale, "encoder crashed");
        assert_eq!(p.status, JobStatus::Failed);
        assert_eq!(p.steps.upscale.status, StepStatus::Failed);
        assert_eq!(p.steps.upscale.error.as_deref(), Some("encoder crashed"));
        assert!(p.steps.upscale.end_time.is_some());
        assert!(p.is_resumable());

        // Resuming keeps the first start time and the progress made.
        p.begin_step(Step::Upscale);
        assert_eq!(p.steps.upscale.start_time, started);
        assert_eq!(p.steps.upscale.progress, 42.0);
        assert_eq!(p.steps.upscale.error, None);
        assert_eq!(p.steps.upscale.end_time, None);

        p.cancel();
        assert_eq!(p.status, JobStatus::Cancelled);
        assert!(p.is_resumable());

        p.set_step_progress(Step::Upscale, 140.0);
        assert_eq!(p.steps.upscale.progress, 100.0);

        for step in Step::ALL {
            p.begin_step(step);
            p.finish_step(step);
            assert_eq!(p.steps.get(step).status, StepStatus::Completed);
            assert!(p.steps.get(step).end_time.is_some());
        }
        assert_eq!(p.status, JobStatus::Completed);
        assert!(!p.is_resumable());

        // Running a completed step again starts it over.
        p.begin_step(Step::Verify);
        assert_eq!(p.steps.verify.progress, 0.0);
        assert_eq!(p.status, JobStatus::InProgress);
    }

    #[test]
    fn chunks_are_tracked_within_the_plan() {
        let mut p = sample();
        assert_eq!(p.pending_chunks(), vec![0, 1, 2]);
        assert!(p.mark_chunk_done(2));
        assert!(!p.mark_chunk_done(2));
        assert!(!p.mark_chunk_done(3));
        assert_eq!(p.chunks_done(), 1);
        assert_eq!(p.pending_chunks(), vec![0, 1]);
    }
}
