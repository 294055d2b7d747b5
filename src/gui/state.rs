//! What the GUI remembers across restarts: the user's settings and the job queue. Plain serde
//! data with `#[serde(default)]` everywhere, so that a file written by an older or newer build
//! still loads; runtime handles (channels, children) live in `App`, never here.
//!
//! Both files live in the config dir (`$REFRAME_CONFIG_DIR`, else the platform's config dir)
//! and are written atomically by the persister thread (`persist.rs`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::engine::EngineInfo;
use crate::i18n::{Localizer, tr};
use crate::protocol::{JobId, JobSpec, ResumeMode, Step, StepStatus};

pub const SETTINGS_FILE: &str = "gui-settings.json";
pub const QUEUE_FILE: &str = "gui-queue.json";

/// Target heights offered in the settings panel.
pub const HEIGHTS: [u32; 5] = [720, 1080, 1440, 2160, 4320];

/// The config dir: `$REFRAME_CONFIG_DIR`, else the platform's (e.g. `~/.config/reframe`).
pub fn default_config_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("REFRAME_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    directories::ProjectDirs::from("", "", "reframe").map(|dirs| dirs.config_dir().to_owned())
}

/// How big the output is: a scale factor or a target height.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub enum OutputSize {
    Scale(f64),
    Height(u32),
}

impl Default for OutputSize {
    fn default() -> Self {
        OutputSize::Scale(2.0)
    }
}

impl OutputSize {
    pub fn label(self) -> String {
        match self {
            OutputSize::Scale(scale) => format!("{}×", format_scale(scale)),
            OutputSize::Height(height) => format!("{height}p"),
        }
    }
}

pub fn format_scale(scale: f64) -> String {
    if scale.fract() == 0.0 {
        format!("{scale:.0}")
    } else {
        format!("{scale}")
    }
}

/// The settings panel, remembered across restarts.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(default)]
pub struct UserSettings {
    pub engine: String,
    pub size: OutputSize,
    /// The denoise level picked for engines that have levels; `None`: off (see
    /// [`UserSettings::denoise_for`]).
    pub denoise: Option<u8>,
    pub preset: String,
    /// `None`: each output goes beside its input.
    pub output_dir: Option<PathBuf>,
    pub chunk_seconds: f64,
    pub deinterlace: bool,
    pub overwrite: bool,
    pub show_log: bool,
    /// Where the before/after split line sits: share of the view showing "before".
    pub preview_split: f32,
    /// Folder of the neural engines' model files; `None`: `$REFRAME_MODELS_DIR`, else
    /// `<config dir>/models`.
    pub models_dir: Option<PathBuf>,
    /// The window's language, a catalog tag (`"ja"`); `None`: the system's.
    pub language: Option<String>,
}

impl Default for UserSettings {
    fn default() -> Self {
        Self {
            engine: "lanczos".into(),
            size: OutputSize::default(),
            denoise: None,
            preset: "h264_hq".into(),
            output_dir: None,
            chunk_seconds: 5.0,
            deinterlace: false,
            overwrite: false,
            show_log: false,
            preview_split: 0.5,
            models_dir: None,
            language: None,
        }
    }
}

impl UserSettings {
    /// The models folder in effect: the panel's, else `$REFRAME_MODELS_DIR`, else the default.
    pub fn models_folder(&self) -> Option<PathBuf> {
        crate::engine::models::models_dir(self.models_dir.as_deref())
    }

    /// The denoise level asked of the panel's engine (one of `engines`, what the models folder
    /// holds): `None` for an engine without levels and for "off". A level the folder lacks, or
    /// the engine lacks at the chosen scale, falls back to off, or to the lowest level when the
    /// plain model is missing too.
    pub fn denoise_for(&self, engines: &[EngineInfo]) -> Option<u8> {
        let info = engines.iter().find(|info| info.name == self.engine)?;
        let levels = self.denoise_levels(info);
        match self.denoise {
            _ if levels.is_empty() => None,
            Some(level) if levels.contains(&level) => Some(level),
            _ if self.runs_without_denoise(info) => None,
            _ => levels.first().copied(),
        }
    }

    /// The denoise levels the panel offers for `info` at its size.
    pub fn denoise_levels(&self, info: &EngineInfo) -> Vec<u8> {
        info.denoise_levels_at(self.scale())
    }

    /// Whether the panel offers "off" for `info` at its size (cunet at 1× only denoises).
    pub fn runs_without_denoise(&self, info: &EngineInfo) -> bool {
        info.runs_without_denoise_at(self.scale())
    }

    /// The chosen scale factor (`None`: a target height).
    fn scale(&self) -> Option<f64> {
        match self.size {
            OutputSize::Scale(scale) => Some(scale),
            OutputSize::Height(_) => None,
        }
    }

    /// The job this panel describes for `input` (`engines`: what the models folder holds).
    pub fn job_spec(&self, input: &Path, resume: ResumeMode, engines: &[EngineInfo]) -> JobSpec {
        let (scale, height) = match self.size {
            OutputSize::Scale(scale) => (Some(scale), None),
            OutputSize::Height(height) => (None, Some(height)),
        };
        JobSpec {
            input: input.to_owned(),
            engine: self.engine.clone(),
            scale,
            height,
            denoise: self.denoise_for(engines),
            preset: self.preset.clone(),
            output: self.output_dir.clone(),
            overwrite: self.overwrite,
            resume,
            chunk_seconds: self.chunk_seconds,
            deinterlace: self.deinterlace,
            models_dir: self.models_dir.clone(),
        }
    }
}

/// Where a job is in its life.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum JobState {
    #[default]
    Queued,
    /// Sent to the worker (from `run` to its final event).
    Running,
    Finished,
    Failed,
    Cancelled,
    /// Was running when the app stopped (closed, crashed, killed).
    Interrupted,
}

impl JobState {
    /// The state as the window names it ("queued", "待機中").
    pub fn label(self, i18n: &Localizer) -> String {
        match self {
            JobState::Queued => tr!(i18n, "state-queued"),
            JobState::Running => tr!(i18n, "state-running"),
            JobState::Finished => tr!(i18n, "state-done"),
            JobState::Failed => tr!(i18n, "state-failed"),
            JobState::Cancelled => tr!(i18n, "state-cancelled"),
            JobState::Interrupted => tr!(i18n, "state-interrupted"),
        }
    }

    pub fn is_unfinished(self) -> bool {
        matches!(
            self,
            JobState::Failed | JobState::Cancelled | JobState::Interrupted
        )
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Default)]
#[serde(default)]
pub struct StepProgress {
    pub status: StepStatus,
    /// 0–100.
    pub percent: f64,
}

/// One entry of the queue.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(default)]
pub struct Job {
    pub id: JobId,
    pub input: PathBuf,
    pub state: JobState,
    /// How the next run treats an existing session.
    pub resume: ResumeMode,
    /// The settings of this job once fixed (first start, or chosen in the resume dialog);
    /// `None` while queued: it takes the settings panel's values when it starts.
    pub spec: Option<JobSpec>,
    pub output: Option<PathBuf>,
    pub session_id: Option<String>,
    /// Progress of validate, upscale, package, verify (in [`Step::ALL`] order).
    pub steps: [StepProgress; 4],
    pub chunks_done: usize,
    pub chunks_total: usize,
    /// True when an unfinished job's session was kept, so a new run goes on from it.
    pub resumable: bool,
    pub error: Option<String>,
    /// The worker's log tail when it crashed.
    pub log_tail: Option<String>,
    pub warnings: Vec<String>,
    pub elapsed_secs: Option<f64>,
    #[serde(skip)]
    pub fps: f64,
    #[serde(skip)]
    pub eta_secs: Option<f64>,
}

impl Default for Job {
    fn default() -> Self {
        Self {
            id: 0,
            input: PathBuf::new(),
            state: JobState::Queued,
            resume: ResumeMode::Auto,
            spec: None,
            output: None,
            session_id: None,
            steps: Default::default(),
            chunks_done: 0,
            chunks_total: 0,
            resumable: false,
            error: None,
            log_tail: None,
            warnings: Vec::new(),
            elapsed_secs: None,
            fps: 0.0,
            eta_secs: None,
        }
    }
}

pub fn step_index(step: Step) -> usize {
    match step {
        Step::Validate => 0,
        Step::Upscale => 1,
        Step::Package => 2,
        Step::Verify => 3,
    }
}

impl Job {
    pub fn new(id: JobId, input: PathBuf, resume: ResumeMode) -> Self {
        Self {
            id,
            input,
            resume,
            ..Self::default()
        }
    }

    pub fn file_name(&self) -> String {
        self.input
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.input.display().to_string())
    }

    pub fn step(&self, step: Step) -> &StepProgress {
        &self.steps[step_index(step)]
    }

    pub fn step_mut(&mut self, step: Step) -> &mut StepProgress {
        &mut self.steps[step_index(step)]
    }

    /// The step being worked on (or the last one touched), for one-line summaries.
    pub fn current_step(&self) -> Option<(Step, &StepProgress)> {
        Step::ALL
            .iter()
            .rev()
            .map(|step| (*step, self.step(*step)))
            .find(|(_, progress)| progress.status != StepStatus::Pending)
    }

    /// Overall progress 0–1, with the steps weighted by their usual share of the time.
    pub fn overall_fraction(&self) -> f32 {
        const WEIGHTS: [f64; 4] = [0.02, 0.88, 0.07, 0.03];
        let done: f64 = self
            .steps
            .iter()
            .zip(WEIGHTS)
            .map(|(step, weight)| match step.status {
                StepStatus::Completed => weight,
                _ => weight * step.percent.clamp(0.0, 100.0) / 100.0,
            })
            .sum();
        done.clamp(0.0, 1.0) as f32
    }

    /// Back to the queue for another run that resumes when it can.
    pub fn requeue(&mut self, resume: ResumeMode) {
        self.state = JobState::Queued;
        self.resume = resume;
        self.error = None;
        self.log_tail = None;
        self.fps = 0.0;
        self.eta_secs = None;
        if let Some(spec) = &mut self.spec {
            spec.resume = resume;
        }
    }
}

/// The queue, in order.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[serde(default)]
pub struct Queue {
    pub next_id: JobId,
    pub jobs: Vec<Job>,
}

impl Queue {
    pub fn push(&mut self, input: PathBuf, resume: ResumeMode) -> JobId {
        self.next_id += 1;
        let id = self.next_id;
        self.jobs.push(Job::new(id, input, resume));
        id
    }

    pub fn get(&self, id: JobId) -> Option<&Job> {
        self.jobs.iter().find(|job| job.id == id)
    }

    pub fn get_mut(&mut self, id: JobId) -> Option<&mut Job> {
        self.jobs.iter_mut().find(|job| job.id == id)
    }

    pub fn position(&self, id: JobId) -> Option<usize> {
        self.jobs.iter().position(|job| job.id == id)
    }

    /// True when `input` is already waiting or running (a second entry would redo the work).
    pub fn has_pending(&self, input: &Path) -> bool {
        self.jobs.iter().any(|job| {
            job.input == input && matches!(job.state, JobState::Queued | JobState::Running)
        })
    }

    pub fn next_queued(&self) -> Option<JobId> {
        self.jobs
            .iter()
            .find(|job| job.state == JobState::Queued)
            .map(|job| job.id)
    }

    /// After loading from disk: a job that was running when the app stopped is interrupted,
    /// and resumable (its session is on disk); ids stay unique.
    pub fn recover(&mut self) {
        for job in &mut self.jobs {
            if job.state == JobState::Running {
                job.state = JobState::Interrupted;
                job.resumable = true;
                job.fps = 0.0;
                job.eta_secs = None;
                for step in &mut job.steps {
                    if step.status == StepStatus::InProgress {
                        step.status = StepStatus::Pending;
                    }
                }
            }
        }
        let max_id = self.jobs.iter().map(|job| job.id).max().unwrap_or(0);
        self.next_id = self.next_id.max(max_id);
    }
}

/// Why a saved file was not loaded (the window says it in its language once it knows it).
#[derive(Debug)]
pub enum LoadProblem {
    Unreadable {
        error: String,
        path: PathBuf,
    },
    /// Not valid JSON of the expected shape; the file was renamed to `aside`.
    Broken {
        error: String,
        aside: PathBuf,
    },
}

impl LoadProblem {
    pub fn message(&self, i18n: &Localizer) -> String {
        match self {
            LoadProblem::Unreadable { error, path } => tr!(
                i18n,
                "log-state-unreadable",
                error = error.as_str(),
                path = path.display().to_string()
            ),
            LoadProblem::Broken { error, aside } => tr!(
                i18n,
                "log-state-broken",
                error = error.as_str(),
                path = aside.display().to_string()
            ),
        }
    }
}

/// Loads a JSON file written by this module; a missing file gives the default, a broken one
/// gives the default and what was wrong (the broken file is kept aside).
pub fn load_json<T: serde::de::DeserializeOwned + Default>(
    path: &Path,
) -> (T, Option<LoadProblem>) {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return (T::default(), None),
        Err(error) => {
            let problem = LoadProblem::Unreadable {
                error: error.to_string(),
                path: path.to_owned(),
            };
            return (T::default(), Some(problem));
        }
    };
    match serde_json::from_slice(&bytes) {
        Ok(value) => (value, None),
        Err(error) => {
            let aside = path.with_extension("json.broken");
            let _ = std::fs::rename(path, &aside);
            let problem = LoadProblem::Broken {
                error: error.to_string(),
                aside,
            };
            (T::default(), Some(problem))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_load_with_missing_and_unknown_fields() {
        let settings: UserSettings =
            serde_json::from_str(r#"{"engine":"lanczos","size":{"height":1080},"future":1}"#)
                .unwrap();
        assert_eq!(settings.size, OutputSize::Height(1080));
        assert_eq!(settings.preset, "h264_hq");
        assert_eq!(settings.chunk_seconds, 5.0);
        assert_eq!(
            settings.language, None,
            "older files follow the system's language"
        );
    }

    #[test]
    fn denoise_follows_what_the_models_folder_holds() {
        let waifu2x = |levels: &'static [u8], plain: bool| crate::engine::EngineInfo {
            name: "waifu2x-anime".to_owned(),
            description: String::new(),
            kind: crate::engine::EngineKind::Frames,
            scales: vec![2.0],
            denoise_levels: levels.to_vec(),
            runs_without_denoise: plain,
            model: None,
        };
        let mut settings = UserSettings {
            engine: "waifu2x-anime".into(),
            ..UserSettings::default()
        };
        let all = [waifu2x(&[0, 1, 2, 3], true)];
        assert_eq!(settings.denoise_for(&all), None, "off by default");
        settings.denoise = Some(2);
        assert_eq!(settings.denoise_for(&all), Some(2));
        // Level 2 is not in this folder: off when the plain model is there, else the lowest.
        assert_eq!(settings.denoise_for(&[waifu2x(&[1, 3], true)]), None);
        assert_eq!(settings.denoise_for(&[waifu2x(&[1, 3], false)]), Some(1));
        settings.denoise = None;
        assert_eq!(settings.denoise_for(&[waifu2x(&[1, 3], false)]), Some(1));
        // No levels, or an engine the folder does not have: no denoise asked.
        assert_eq!(settings.denoise_for(&[waifu2x(&[], true)]), None);
        settings.denoise = Some(1);
        assert_eq!(settings.denoise_for(&[]), None);
        let spec = settings.job_spec(Path::new("/v/a.mp4"), ResumeMode::Auto, &all);
        assert_eq!(spec.denoise, Some(1));
        // Settings written before "off" existed keep their level.
        let old: UserSettings = serde_json::from_str(r#"{"denoise":3}"#).unwrap();
        assert_eq!(old.denoise, Some(3));
    }

    #[test]
    fn cunet_at_1x_never_asks_for_no_denoise() {
        use crate::engine::models::Family;
        let cunet = crate::engine::EngineInfo {
            name: "waifu2x-cunet".to_owned(),
            description: String::new(),
            kind: crate::engine::EngineKind::Frames,
            scales: vec![1.0, 2.0],
            denoise_levels: vec![1, 2],
            runs_without_denoise: true,
            model: Some(crate::engine::ModelSource::Family(
                Family::Waifu2xCunet,
                PathBuf::from("/models"),
            )),
        };
        let mut settings = UserSettings {
            engine: "waifu2x-cunet".into(),
            ..UserSettings::default()
        };
        let engines = [cunet.clone()];
        assert!(settings.runs_without_denoise(&cunet));
        assert_eq!(settings.denoise_for(&engines), None, "2×: off");
        settings.size = OutputSize::Scale(1.0);
        assert!(!settings.runs_without_denoise(&cunet));
        assert_eq!(
            settings.denoise_for(&engines),
            Some(1),
            "1×: the lowest level"
        );
        let spec = settings.job_spec(Path::new("/v/a.mp4"), ResumeMode::Auto, &engines);
        assert_eq!((spec.scale, spec.denoise), (Some(1.0), Some(1)));
        settings.denoise = Some(2);
        assert_eq!(settings.denoise_for(&engines), Some(2));
    }

    #[test]
    fn job_spec_takes_scale_or_height() {
        let mut settings = UserSettings::default();
        let spec = settings.job_spec(Path::new("/v/a.mp4"), ResumeMode::Auto, &[]);
        assert_eq!((spec.scale, spec.height), (Some(2.0), None));
        assert_eq!(spec.denoise, None);
        settings.size = OutputSize::Height(720);
        settings.output_dir = Some("/out".into());
        let spec = settings.job_spec(Path::new("/v/a.mp4"), ResumeMode::Restart, &[]);
        assert_eq!((spec.scale, spec.height), (None, Some(720)));
        assert_eq!(spec.output.as_deref(), Some(Path::new("/out")));
        assert_eq!(spec.resume, ResumeMode::Restart);
    }

    #[test]
    fn a_running_job_comes_back_interrupted_and_resumable() {
        let mut queue = Queue::default();
        let a = queue.push("/v/a.mp4".into(), ResumeMode::Auto);
        let b = queue.push("/v/b.mp4".into(), ResumeMode::Auto);
        let job = queue.get_mut(a).unwrap();
        job.state = JobState::Running;
        job.step_mut(Step::Validate).status = StepStatus::Completed;
        job.step_mut(Step::Upscale).status = StepStatus::InProgress;
        let text = serde_json::to_string(&queue).unwrap();
        let mut loaded: Queue = serde_json::from_str(&text).unwrap();
        loaded.next_id = 0;
        loaded.recover();
        let job = loaded.get(a).unwrap();
        assert_eq!(job.state, JobState::Interrupted);
        assert!(job.resumable);
        assert_eq!(job.step(Step::Upscale).status, StepStatus::Pending);
        assert_eq!(job.step(Step::Validate).status, StepStatus::Completed);
        assert_eq!(loaded.get(b).unwrap().state, JobState::Queued);
        assert_eq!(loaded.push("/v/c.mp4".into(), ResumeMode::Auto), b + 1);
    }

    #[test]
    fn has_pending_ignores_finished_jobs() {
        let mut queue = Queue::default();
        let a = queue.push("/v/a.mp4".into(), ResumeMode::Auto);
        assert!(queue.has_pending(Path::new("/v/a.mp4")));
        queue.get_mut(a).unwrap().state = JobState::Finished;
        assert!(!queue.has_pending(Path::new("/v/a.mp4")));
    }

    #[test]
    fn overall_fraction_weights_the_upscale_step() {
        let mut job = Job::new(1, "/v/a.mp4".into(), ResumeMode::Auto);
        assert_eq!(job.overall_fraction(), 0.0);
        job.step_mut(Step::Validate).status = StepStatus::Completed;
        job.step_mut(Step::Upscale).percent = 50.0;
        assert!((job.overall_fraction() - 0.46).abs() < 1e-6);
    }

    #[test]
    fn a_broken_file_loads_as_default_and_is_kept_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(QUEUE_FILE);
        std::fs::write(&path, b"{ torn").unwrap();
        let (queue, message): (Queue, _) = load_json(&path);
        assert!(queue.jobs.is_empty());
        let message = message.unwrap().message(&Localizer::english());
        assert!(message.contains("unreadable"), "{message}");
        assert!(dir.path().join("gui-queue.json.broken").exists());
        let (_, message): (Queue, _) = load_json(&path);
        assert!(message.is_none());
    }
}
