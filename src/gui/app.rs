//! The application: persisted state (settings, queue) beside runtime state (supervisor,
//! channels, dialogs), one logic step that reads every channel, and [`App::apply`], the one
//! place where [`Command`]s change anything. Drawing lives in `panels.rs` and `dialogs.rs`.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

use super::command::Command;
use super::persist::Persister;
use super::preview::{MediaFacts, PreviewPanel};
use super::scan::{self, ResumeOffer, ScanContext, ScanResult};
use super::source::PreviewSource;
use super::state::{self, JobState, OutputSize, QUEUE_FILE, Queue, SETTINGS_FILE, UserSettings};
use super::thumbs::Thumbnails;
use super::{dialogs, fonts, panels};
use crate::i18n::{self, Localizer, tr};
use crate::protocol::{Event, JobId, JobSpec, PROTOCOL_VERSION, ResumeMode, StepStatus};
use crate::session::Settings;
use crate::supervisor::{ExitReason, Supervisor, SupervisorConfig, SupervisorEvent, WorkerCommand};

/// Most lines kept in the activity log.
const LOG_MAX_LINES: usize = 2000;
/// Most "skipped" lines one scan writes to the log.
const SKIPPED_LOG_MAX: usize = 40;

/// Where the app keeps its files and how it starts its worker.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// Settings and queue files; `None` keeps them in memory only.
    pub config_dir: Option<PathBuf>,
    /// Session store root; `None` is the store's default (`$REFRAME_CACHE_DIR`, …).
    pub sessions_root: Option<PathBuf>,
    pub supervisor: SupervisorConfig,
    /// How to start the preview worker.
    pub preview_worker: WorkerCommand,
    /// The system locale (`ja-JP`, `en_US.UTF-8`), which the window's language follows unless
    /// one is chosen in Settings; `None`: English (tests pass it, so they never depend on the
    /// machine's locale).
    pub locale: Option<String>,
}

impl AppConfig {
    /// The installed app: config dir from the environment, this executable as the worker.
    pub fn from_env() -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let worker = WorkerCommand::processing_worker()
            .context("cannot find this program's own path to start its processing worker")?;
        let exe = std::env::current_exe()
            .context("cannot find this program's own path to start its preview worker")?;
        Ok(Self {
            config_dir: state::default_config_dir(),
            sessions_root: None,
            supervisor: SupervisorConfig::new(worker),
            preview_worker: WorkerCommand::new(exe).arg("worker").arg("preview"),
            locale: i18n::system_locale(),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Info,
    Warning,
    Error,
    /// A line of the worker's own log.
    Worker,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub time: String,
    pub level: LogLevel,
    pub text: String,
}

/// A preset as the picker shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct PresetChoice {
    pub name: String,
    pub summary: String,
    pub user: bool,
}

/// Results of the native dialogs, which run on their own thread.
enum DialogResult {
    Files(Vec<PathBuf>),
    Folder(PathBuf),
    OutputFolder(PathBuf),
    ModelsFolder(PathBuf),
    /// Closed without a choice; `quick` when it came back too fast for a person, which is
    /// what happens when no dialog could be shown at all.
    Closed {
        quick: bool,
    },
}

/// A dialog answered faster than this was most likely never shown.
const DIALOG_MIN_HUMAN_SECS: f64 = 0.3;

pub struct App {
    // Persisted.
    pub(super) settings: UserSettings,
    pub(super) queue: Queue,

    // Runtime.
    pub(super) ctx: egui::Context,
    /// The window's words in the language in effect (see `crate::i18n`); also kept in `ctx`
    /// for the drawing code that does not get the app.
    pub(super) i18n: Arc<Localizer>,
    /// The catalog the system locale picks, used while no language is chosen.
    pub(super) system_language: &'static str,
    config: AppConfig,
    supervisor: Supervisor,
    persister: Persister,
    persist_errors: Receiver<String>,
    /// Scripts met in the window that no system font can draw (see [`fonts::install`]).
    missing_fonts: Receiver<fonts::MissingFont>,
    scans_tx: Sender<ScanResult>,
    scans_rx: Receiver<ScanResult>,
    pub(super) scans_in_flight: usize,
    dialogs_tx: Sender<DialogResult>,
    dialogs_rx: Receiver<DialogResult>,
    pub(super) dialog_open: bool,
    /// `Err(message)` when ffmpeg or ffprobe cannot be found.
    pub(super) tools: Result<(), String>,
    pub(super) presets: Vec<PresetChoice>,
    pub(super) engines: Vec<crate::engine::EngineInfo>,
    /// Models of the custom folder that cannot run, with the reason (name, reason).
    pub(super) unusable_models: Vec<(String, String)>,
    pub(super) log: VecDeque<LogLine>,
    pub(super) selected: Option<JobId>,
    /// Start was pressed: jobs run one after another until the queue is empty or cancelled.
    pub(super) queue_running: bool,
    pub(super) cancelling: bool,
    pub(super) offers: VecDeque<ResumeOffer>,
    pub(super) confirm_close: bool,
    allow_close: bool,
    /// A one-line notice for the status bar (e.g. what a scan skipped).
    pub(super) notice: Option<String>,
    pub(super) save_preset_name: Option<String>,
    /// The preview panel (frame, timeline, spectrogram) of the selected job.
    pub(super) preview: PreviewPanel,
    pub(super) thumbnails: Thumbnails,
    /// The selected job's details are shown above the preview.
    pub(super) details_open: bool,
    /// The start-up time is logged once, at the first frame.
    first_frame_drawn: bool,
}

impl App {
    /// Loads the saved state, looks for ffmpeg and queues `files` (command-line arguments).
    pub fn new(ctx: egui::Context, config: AppConfig, files: Vec<PathBuf>) -> Self {
        let repaint_ctx = ctx.clone();
        let client = crate::preview::PreviewClient::new(config.preview_worker.clone(), move || {
            repaint_ctx.request_repaint();
        });
        Self::with_preview_source(ctx, config, files, Box::new(client))
    }

    /// [`App::new`] with previews answered by `source` (tests pass a fake).
    pub fn with_preview_source(
        ctx: egui::Context,
        config: AppConfig,
        files: Vec<PathBuf>,
        source: Box<dyn PreviewSource>,
    ) -> Self {
        ctx.options_mut(|options| options.theme_preference = egui::ThemePreference::System);
        let mut messages = Vec::new();
        let (settings, queue) = match &config.config_dir {
            Some(dir) => {
                let (settings, settings_msg): (UserSettings, _) =
                    state::load_json(&dir.join(SETTINGS_FILE));
                let (mut queue, queue_msg): (Queue, _) = state::load_json(&dir.join(QUEUE_FILE));
                queue.recover();
                messages.extend(settings_msg);
                messages.extend(queue_msg);
                (settings, queue)
            }
            None => (UserSettings::default(), Queue::default()),
        };
        let (fonts_tx, missing_fonts) = crossbeam_channel::unbounded();
        // A language the user chose picks the forms of shared ideographs (else the system's).
        // Only a channel send: the provider runs inside egui's text layout, where asking the
        // context for a repaint would wait on the lock it holds.
        fonts::install(&ctx, settings.language.as_deref(), move |missing| {
            let _ = fonts_tx.send(missing);
        });
        let system_language = i18n::for_locale(config.locale.as_deref());
        let language = settings.language.as_deref().unwrap_or(system_language);
        let localizer = Arc::new(Localizer::new(language));
        Localizer::install(&ctx, Arc::clone(&localizer));
        let repaint_ctx = ctx.clone();
        let notify: Arc<dyn Fn() + Send + Sync> = Arc::new(move || repaint_ctx.request_repaint());
        let supervisor = Supervisor::new(config.supervisor.clone(), Arc::clone(&notify));
        let (persist_tx, persist_errors) = crossbeam_channel::unbounded();
        let persist_notify = Arc::clone(&notify);
        let persister = Persister::start(persist_tx, move || persist_notify());
        let (scans_tx, scans_rx) = crossbeam_channel::unbounded();
        let (dialogs_tx, dialogs_rx) = crossbeam_channel::unbounded();
        let mut app = Self {
            settings,
            queue,
            ctx,
            i18n: localizer,
            system_language,
            config,
            supervisor,
            persister,
            persist_errors,
            missing_fonts,
            scans_tx,
            scans_rx,
            scans_in_flight: 0,
            dialogs_tx,
            dialogs_rx,
            dialog_open: false,
            tools: Ok(()),
            presets: Vec::new(),
            engines: Vec::new(),
            unusable_models: Vec::new(),
            log: VecDeque::new(),
            selected: None,
            queue_running: false,
            cancelling: false,
            offers: VecDeque::new(),
            confirm_close: false,
            allow_close: false,
            notice: None,
            save_preset_name: None,
            preview: PreviewPanel::new(source),
            thumbnails: Thumbnails::new(),
            details_open: false,
            first_frame_drawn: false,
        };
        for problem in messages {
            let text = problem.message(&app.i18n);
            app.log(LogLevel::Warning, text);
        }
        app.locate_tools();
        app.load_presets();
        app.refresh_engines();
        app.selected = app.queue.jobs.first().map(|job| job.id);
        let unfinished = app
            .queue
            .jobs
            .iter()
            .filter(|job| job.state == JobState::Interrupted)
            .count();
        if unfinished > 0 {
            let text = tr!(app.i18n, "log-interrupted-last-time", count = unfinished);
            app.log(LogLevel::Info, text);
        }
        if !files.is_empty() {
            app.apply(Command::AddPaths(files));
        }
        app
    }

    // ---- Read access (tests and drawing) -------------------------------------------------

    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    pub fn settings(&self) -> &UserSettings {
        &self.settings
    }

    pub fn settings_mut(&mut self) -> &mut UserSettings {
        &mut self.settings
    }

    /// The catalog tag of the language the window speaks now ("en", "ja").
    pub fn language(&self) -> &'static str {
        self.i18n.language()
    }

    pub fn resume_offer(&self) -> Option<&ResumeOffer> {
        self.offers.front()
    }

    pub fn log_lines(&self) -> impl Iterator<Item = &LogLine> {
        self.log.iter()
    }

    pub fn selected(&self) -> Option<JobId> {
        self.selected
    }

    /// The timeline cursor (frame index).
    pub fn preview_cursor(&self) -> u64 {
        self.preview.cursor
    }

    /// What ffprobe said about the previewed file, once it has.
    pub fn preview_facts(&self) -> Option<&MediaFacts> {
        self.preview.facts()
    }

    /// Where the preview's parts were drawn last frame.
    pub fn preview_layout(&self) -> &super::preview::PreviewLayout {
        &self.preview.layout
    }

    /// The spectrogram's time window.
    pub fn spectrum_window(&self) -> Option<super::preview_view::TimeWindow> {
        self.preview.window
    }

    /// The before/after view (zoom, pan).
    pub fn frame_view(&self) -> super::preview_view::FrameView {
        self.preview.view
    }

    /// The frame index of the before/after images shown, if any.
    pub fn shown_frame(&self) -> Option<u64> {
        self.preview.frame.as_ref().map(|frame| frame.frame_index)
    }

    /// The keyframe whose picture stands for the shown frame until it is decoded.
    pub fn shown_frame_approximate_of(&self) -> Option<u64> {
        self.preview.frame.as_ref().and_then(|f| f.approximate_of)
    }

    /// True while the shown frame's "after" image is still being made (a frame engine).
    pub fn shown_frame_after_pending(&self) -> bool {
        self.preview
            .frame
            .as_ref()
            .is_some_and(|frame| frame.after.is_none())
    }

    /// The message of the last failed frame preview, while it is the latest answer.
    pub fn preview_frame_error(&self) -> Option<&str> {
        self.preview.frame_error.as_deref()
    }

    /// The size of the live thumbnail shown for `job`, if any.
    pub fn thumbnail_size(&self, job: JobId) -> Option<[usize; 2]> {
        self.thumbnails.get(job).map(egui::TextureHandle::size)
    }

    /// Pid of the live processing worker, if any.
    pub fn worker_pid(&mut self) -> Option<u32> {
        self.supervisor.worker_pid()
    }

    /// True while a scan is in flight or a job runs (tests wait for this to clear).
    pub fn is_busy(&mut self) -> bool {
        self.scans_in_flight > 0 || self.supervisor.active_job().is_some()
    }

    pub fn is_running(&self) -> bool {
        self.queue
            .jobs
            .iter()
            .any(|job| job.state == JobState::Running)
    }

    /// Waits until the settings and queue files are written (exit and tests).
    pub fn flush_saves(&self) {
        self.persister.flush();
    }

    // ---- Logic step ------------------------------------------------------------------------

    /// Reads every channel and input that changes state; called once per frame before drawing.
    pub fn logic(&mut self, ctx: &egui::Context) {
        let events: Vec<_> = self.supervisor.try_events().collect();
        for event in events {
            self.on_supervisor_event(event);
        }
        while let Ok(result) = self.scans_rx.try_recv() {
            self.scans_in_flight = self.scans_in_flight.saturating_sub(1);
            self.on_scan(result);
        }
        while let Ok(result) = self.dialogs_rx.try_recv() {
            self.dialog_open = false;
            match result {
                DialogResult::Files(paths) => self.apply(Command::AddPaths(paths)),
                DialogResult::Folder(path) => self.apply(Command::AddPaths(vec![path])),
                DialogResult::OutputFolder(path) => {
                    self.settings.output_dir = Some(path);
                    self.save_settings();
                }
                DialogResult::ModelsFolder(path) => {
                    self.apply(Command::SetModelsFolder(Some(path)))
                }
                DialogResult::Closed { quick: false } => {}
                DialogResult::Closed { quick: true } => {
                    let text = tr!(self.i18n, "log-no-file-dialog");
                    self.log(LogLevel::Warning, text);
                }
            }
        }
        while let Ok(message) = self.persist_errors.try_recv() {
            self.log(LogLevel::Error, message);
        }
        while let Ok(missing) = self.missing_fonts.try_recv() {
            self.log(
                LogLevel::Warning,
                tr!(
                    self.i18n,
                    "log-missing-font",
                    script = missing.script,
                    example = missing.example.to_string(),
                    package = missing.debian_package
                ),
            );
        }
        let dropped: Vec<PathBuf> = ctx.input(|input| {
            input
                .raw
                .dropped_files
                .iter()
                .map(|file| file.path().to_owned())
                .collect()
        });
        if !dropped.is_empty() {
            self.apply(Command::AddPaths(dropped));
        }
        for command in self.shortcuts(ctx) {
            self.apply(command);
        }
        for message in self.thumbnails.update(ctx, &self.i18n) {
            self.log(LogLevel::Warning, message);
        }
        let queue = &self.queue;
        self.thumbnails.retain(|id| {
            queue
                .get(id)
                .is_some_and(|job| job.state == JobState::Running)
        });
        let now = ctx.input(|input| input.time);
        let selected = self.selected_job().map(|job| job.input.clone());
        if let Some(wait_secs) =
            self.preview
                .update(ctx, now, selected.as_deref(), &self.settings, &self.engines)
        {
            ctx.request_repaint_after(std::time::Duration::from_secs_f64(wait_secs.max(0.001)));
        }
        if ctx.input(|input| input.viewport().close_requested())
            && self.is_running()
            && !self.allow_close
        {
            ctx.send_viewport_cmd(egui::ViewportCommand::CancelClose);
            self.confirm_close = true;
        }
        self.pump();
    }

    fn shortcuts(&mut self, ctx: &egui::Context) -> Vec<Command> {
        let mut commands = Vec::new();
        let modal_open = !self.offers.is_empty() || self.confirm_close;
        if ctx.input_mut(|input| input.consume_key(egui::Modifiers::COMMAND, egui::Key::O))
            && !modal_open
        {
            commands.push(Command::OpenFilesDialog);
        }
        // Plain keys only when no text field has the keyboard.
        if modal_open || ctx.egui_wants_keyboard_input() {
            return commands;
        }
        if ctx.input_mut(|input| input.consume_key(egui::Modifiers::NONE, egui::Key::Delete))
            && let Some(id) = self.selected
        {
            commands.push(Command::Remove(id));
        }
        if ctx.input_mut(|input| input.consume_key(egui::Modifiers::NONE, egui::Key::Space)) {
            commands.push(if self.is_running() {
                Command::Cancel
            } else {
                Command::StartQueue
            });
        }
        if let Some(facts) = self.preview.facts() {
            let cursor = self.preview.cursor;
            let second = facts.frame_rate.round().max(1.0) as u64;
            // Shift first: a plain-key match would also take the shifted key.
            let keys = [
                (
                    egui::Modifiers::SHIFT,
                    egui::Key::ArrowLeft,
                    cursor.saturating_sub(second),
                ),
                (
                    egui::Modifiers::SHIFT,
                    egui::Key::ArrowRight,
                    cursor + second,
                ),
                (
                    egui::Modifiers::NONE,
                    egui::Key::ArrowLeft,
                    cursor.saturating_sub(1),
                ),
                (egui::Modifiers::NONE, egui::Key::ArrowRight, cursor + 1),
                (egui::Modifiers::NONE, egui::Key::Home, 0),
                (egui::Modifiers::NONE, egui::Key::End, facts.last_frame()),
            ];
            for (modifiers, key, frame_index) in keys {
                if ctx.input_mut(|input| input.consume_key(modifiers, key)) {
                    commands.push(Command::Seek {
                        frame_index,
                        immediate: true,
                    });
                }
            }
        }
        commands
    }

    /// The job whose file the preview shows: the selected one, else the first.
    /// What the settings panel shows and edits.
    pub(super) fn settings_panel(&mut self) -> super::settings_panel::SettingsPanel<'_> {
        super::settings_panel::SettingsPanel {
            settings: &mut self.settings,
            engines: &self.engines,
            unusable_models: &self.unusable_models,
            presets: &self.presets,
            system_language: self.system_language,
            i18n: &self.i18n,
            save_preset_name: &mut self.save_preset_name,
        }
    }

    pub(super) fn selected_job(&self) -> Option<&super::state::Job> {
        self.selected
            .and_then(|id| self.queue.get(id))
            .or_else(|| self.queue.jobs.first())
    }

    // ---- Commands --------------------------------------------------------------------------

    /// Carries out one command.
    pub fn apply(&mut self, command: Command) {
        match command {
            Command::AddPaths(paths) => self.start_scan(paths),
            Command::OpenFilesDialog => self.open_dialog(DialogKind::Files),
            Command::OpenFolderDialog => self.open_dialog(DialogKind::Folder),
            Command::PickOutputFolder => self.open_dialog(DialogKind::OutputFolder),
            Command::PickModelsFolder => self.open_dialog(DialogKind::ModelsFolder),
            Command::RescanModels => self.refresh_engines(),
            Command::SetModelsFolder(dir) => {
                self.settings.models_dir = dir;
                self.refresh_engines();
                self.save_settings();
                let folder = self.settings.models_folder();
                let found: Vec<&str> = self
                    .engines
                    .iter()
                    .filter(|info| info.model.is_some())
                    .map(|info| info.name.as_str())
                    .collect();
                let text = match (&folder, found.is_empty()) {
                    (None, _) => tr!(self.i18n, "log-no-models-folder"),
                    (Some(dir), true) => tr!(
                        self.i18n,
                        "log-models-folder-empty",
                        path = dir.display().to_string()
                    ),
                    (Some(dir), false) => tr!(
                        self.i18n,
                        "log-models-folder-found",
                        path = dir.display().to_string(),
                        engines = found.join(", ")
                    ),
                };
                self.log(LogLevel::Info, text);
            }
            Command::OutputBesideInput => {
                self.settings.output_dir = None;
                self.save_settings();
            }
            Command::Select(id) => self.selected = Some(id),
            Command::Remove(id) => self.remove(id),
            Command::MoveUp(id) => self.move_job(id, -1),
            Command::MoveDown(id) => self.move_job(id, 1),
            Command::Retry(id) => {
                if let Some(job) = self.queue.get_mut(id)
                    && job.state != JobState::Running
                {
                    job.requeue(ResumeMode::Auto);
                    self.save_queue();
                    self.apply(Command::StartQueue);
                }
            }
            Command::ClearFinished => {
                self.queue
                    .jobs
                    .retain(|job| job.state != JobState::Finished);
                if self.selected.is_some_and(|id| self.queue.get(id).is_none()) {
                    self.selected = self.queue.jobs.first().map(|job| job.id);
                }
                self.save_queue();
            }
            Command::StartQueue => self.start_queue(),
            Command::Cancel => self.cancel(),
            Command::ShowInFolder(path) => self.show_in_folder(&path),
            Command::Resume => self.answer_offer(OfferAnswer::Resume),
            Command::Restart => self.answer_offer(OfferAnswer::Restart),
            Command::DismissOffer => self.answer_offer(OfferAnswer::Dismiss),
            Command::SettingsChanged => self.save_settings(),
            Command::SetLanguage(language) => {
                self.settings.language = language;
                self.apply_language();
                self.save_settings();
            }
            Command::ToggleLog => {
                self.settings.show_log = !self.settings.show_log;
                self.save_settings();
            }
            Command::ClearLog => self.log.clear(),
            Command::RecheckTools => self.locate_tools(),
            Command::ConfirmClose => {
                self.confirm_close = false;
                self.allow_close = true;
                self.cancel();
                self.save_queue();
                self.ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            }
            Command::KeepOpen => self.confirm_close = false,
            Command::SavePresetAs(name) => self.save_preset_as(&name),
            Command::Seek {
                frame_index,
                immediate,
            } => {
                let now = self.ctx.input(|input| input.time);
                self.preview.seek(frame_index, immediate, now);
                self.ctx.request_repaint();
            }
            Command::SetSplit(fraction) => {
                self.settings.preview_split = fraction.clamp(0.0, 1.0);
            }
            Command::SetFrameView(view) => self.preview.view = view,
            Command::SetSpectrumWindow(window) => {
                let now = self.ctx.input(|input| input.time);
                self.preview.set_window(window, now);
                self.ctx.request_repaint();
            }
            Command::ToggleDetails => self.details_open = !self.details_open,
            Command::RetryPreview => {
                let now = self.ctx.input(|input| input.time);
                self.preview.retry(now);
                self.ctx.request_repaint();
            }
        }
    }

    fn start_scan(&mut self, paths: Vec<PathBuf>) {
        if paths.is_empty() {
            return;
        }
        let context = ScanContext {
            sessions_root: self.config.sessions_root.clone(),
            current: self.session_settings(),
            i18n: Arc::clone(&self.i18n),
        };
        let ctx = self.ctx.clone();
        match scan::spawn_scan(paths, context, self.scans_tx.clone(), move || {
            ctx.request_repaint();
        }) {
            Ok(()) => self.scans_in_flight += 1,
            Err(error) => {
                let text = tr!(self.i18n, "log-scan-failed", error = error.to_string());
                self.log(LogLevel::Error, text);
            }
        }
    }

    fn on_scan(&mut self, result: ScanResult) {
        let mut added = 0usize;
        let mut skipped = result.skipped;
        for video in result.videos {
            if self.queue.has_pending(&video.path) {
                skipped.push((video.path, tr!(self.i18n, "skip-already-queued")));
                continue;
            }
            match video.offer {
                Some(offer) => self.offers.push_back(offer),
                None => {
                    let id = self.queue.push(video.path, ResumeMode::Auto);
                    self.selected.get_or_insert(id);
                    added += 1;
                }
            }
        }
        for note in result.notes {
            self.log(LogLevel::Warning, note);
        }
        for (path, reason) in skipped.iter().take(SKIPPED_LOG_MAX) {
            let text = tr!(
                self.i18n,
                "log-skipped",
                reason = reason.as_str(),
                path = path.display().to_string()
            );
            self.log(LogLevel::Info, text);
        }
        if skipped.len() > SKIPPED_LOG_MAX {
            let more = skipped.len() - SKIPPED_LOG_MAX;
            let text = tr!(self.i18n, "log-skipped-more", count = more);
            self.log(LogLevel::Info, text);
        }
        self.notice = match (added, skipped.len()) {
            (0, 0) => None,
            (added, 0) => Some(tr!(self.i18n, "notice-added", count = added)),
            (added, skipped) => Some(tr!(
                self.i18n,
                "notice-added-skipped",
                count = added,
                skipped = skipped
            )),
        };
        if added > 0 {
            let text = tr!(self.i18n, "log-added", count = added);
            self.log(LogLevel::Info, text);
            self.save_queue();
        }
    }

    fn answer_offer(&mut self, answer: OfferAnswer) {
        let Some(offer) = self.offers.pop_front() else {
            return;
        };
        let (resume, spec) = match answer {
            OfferAnswer::Dismiss => {
                let text = tr!(
                    self.i18n,
                    "log-not-queued",
                    path = offer.input.display().to_string()
                );
                self.log(LogLevel::Info, text);
                return;
            }
            OfferAnswer::Resume => {
                let mut spec = spec_from_session(&offer.settings, &offer.input, &self.settings);
                spec.resume = ResumeMode::Resume;
                (ResumeMode::Resume, Some(spec))
            }
            OfferAnswer::Restart => (ResumeMode::Restart, None),
        };
        if self.queue.has_pending(&offer.input) {
            return;
        }
        let id = self.queue.push(offer.input.clone(), resume);
        if let Some(job) = self.queue.get_mut(id) {
            job.spec = spec;
            if resume == ResumeMode::Resume {
                job.session_id = Some(offer.session_id.clone());
                job.chunks_done = offer.chunks_done;
                job.chunks_total = offer.chunks_total;
                job.resumable = true;
                for (step, status, percent) in &offer.steps {
                    let progress = job.step_mut(*step);
                    progress.status = match status {
                        StepStatus::InProgress | StepStatus::Failed => StepStatus::Pending,
                        other => *other,
                    };
                    progress.percent = *percent;
                }
            }
        }
        self.selected = Some(id);
        self.save_queue();
        self.apply(Command::StartQueue);
    }

    fn remove(&mut self, id: JobId) {
        let Some(index) = self.queue.position(id) else {
            return;
        };
        if self.queue.jobs[index].state == JobState::Running {
            let text = tr!(self.i18n, "log-cannot-remove-running");
            self.log(LogLevel::Warning, text);
            return;
        }
        self.queue.jobs.remove(index);
        if self.selected == Some(id) {
            let next = index.min(self.queue.jobs.len().saturating_sub(1));
            self.selected = self.queue.jobs.get(next).map(|job| job.id);
        }
        self.save_queue();
    }

    fn move_job(&mut self, id: JobId, delta: isize) {
        let Some(index) = self.queue.position(id) else {
            return;
        };
        let target = index.saturating_add_signed(delta);
        if target < self.queue.jobs.len() && target != index {
            self.queue.jobs.swap(index, target);
            self.save_queue();
        }
    }

    fn start_queue(&mut self) {
        if let Err(message) = &self.tools {
            let message = message.clone();
            let text = tr!(self.i18n, "log-cannot-start", error = message);
            self.log(LogLevel::Error, text);
            return;
        }
        if self.queue.next_queued().is_none() {
            self.notice = Some(tr!(self.i18n, "notice-nothing-queued"));
            return;
        }
        self.queue_running = true;
        self.notice = None;
        self.pump();
    }

    /// "2 done, 1 failed".
    fn queue_summary(&self) -> String {
        let count = |state: JobState| self.queue.jobs.iter().filter(|j| j.state == state).count();
        let i18n = &self.i18n;
        let parts: Vec<String> = [JobState::Finished, JobState::Failed, JobState::Cancelled]
            .into_iter()
            .filter_map(|state| {
                let count = count(state);
                (count > 0).then(|| match state {
                    JobState::Finished => tr!(i18n, "summary-done", count = count),
                    JobState::Failed => tr!(i18n, "summary-failed", count = count),
                    _ => tr!(i18n, "summary-cancelled", count = count),
                })
            })
            .collect();
        if parts.is_empty() {
            tr!(i18n, "summary-nothing-left")
        } else {
            parts.join(&tr!(i18n, "list-separator"))
        }
    }

    fn cancel(&mut self) {
        self.queue_running = false;
        if self.supervisor.active_job().is_some() {
            self.cancelling = true;
            let text = tr!(self.i18n, "log-cancelling");
            self.log(LogLevel::Info, text);
        }
        self.supervisor.cancel();
    }

    /// Starts the next queued job when the queue runs and the worker is free.
    fn pump(&mut self) {
        if !self.queue_running || !self.supervisor.is_ready() {
            return;
        }
        let Some(id) = self.queue.next_queued() else {
            self.queue_running = false;
            self.supervisor.shutdown();
            let summary = self.queue_summary();
            let text = tr!(self.i18n, "log-queue-finished", summary = summary.as_str());
            self.log(LogLevel::Info, text);
            self.notice = Some(tr!(self.i18n, "notice-queue-finished", summary = summary));
            return;
        };
        let settings = self.settings.clone();
        let Some(job) = self.queue.get_mut(id) else {
            return;
        };
        let engines = &self.engines;
        let spec = job
            .spec
            .get_or_insert_with(|| settings.job_spec(&job.input, job.resume, engines));
        spec.resume = job.resume;
        let spec = spec.clone();
        let name = job.file_name();
        match self.supervisor.run(id, spec) {
            Ok(()) => {
                if let Some(job) = self.queue.get_mut(id) {
                    job.state = JobState::Running;
                    job.error = None;
                    job.log_tail = None;
                    if job.resume == ResumeMode::Restart {
                        job.steps = Default::default();
                        job.chunks_done = 0;
                    }
                }
                self.selected = Some(id);
                let text = tr!(self.i18n, "log-starting", name = name);
                self.log(LogLevel::Info, text);
            }
            Err(error) => {
                if let Some(job) = self.queue.get_mut(id) {
                    job.state = JobState::Failed;
                    job.error = Some(error.to_string());
                }
                self.queue_running = false;
                self.log(LogLevel::Error, format!("{name}: {error}"));
            }
        }
        self.save_queue();
    }

    // ---- Worker events ---------------------------------------------------------------------

    fn on_supervisor_event(&mut self, event: SupervisorEvent) {
        match event {
            SupervisorEvent::WorkerStarted { pid } => {
                let text = tr!(self.i18n, "log-worker-started", pid = pid.to_string());
                self.log(LogLevel::Info, text);
            }
            SupervisorEvent::Log(line) => self.log(LogLevel::Worker, line),
            SupervisorEvent::Worker(event) => self.on_worker_event(event),
            SupervisorEvent::WorkerExited {
                pid,
                job,
                exit,
                reason,
                stderr_tail,
            } => {
                self.cancelling = false;
                if reason != ExitReason::Stopped {
                    let text = tr!(
                        self.i18n,
                        "log-worker-ended",
                        pid = pid.to_string(),
                        exit = exit.to_string()
                    );
                    self.log(LogLevel::Info, text);
                }
                let silence_secs = self.config.supervisor.silence_timeout.as_secs();
                let i18n = Arc::clone(&self.i18n);
                if let Some(job) = job.and_then(|id| self.queue.get_mut(id))
                    && job.state == JobState::Running
                {
                    let error = match reason {
                        ExitReason::Cancelled => None,
                        ExitReason::Unresponsive => Some(tr!(
                            i18n,
                            "error-worker-unresponsive",
                            seconds = silence_secs
                        )),
                        ExitReason::VersionMismatch { worker_version } => Some(tr!(
                            i18n,
                            "error-worker-version",
                            worker = worker_version.to_string(),
                            window = PROTOCOL_VERSION.to_string()
                        )),
                        ExitReason::Crashed | ExitReason::Stopped => {
                            Some(tr!(i18n, "error-worker-crashed", exit = exit.to_string()))
                        }
                    };
                    job.fps = 0.0;
                    job.eta_secs = None;
                    job.resumable = true;
                    for step in &mut job.steps {
                        if step.status == StepStatus::InProgress {
                            step.status = if error.is_some() {
                                StepStatus::Failed
                            } else {
                                StepStatus::Pending
                            };
                        }
                    }
                    match error {
                        None => job.state = JobState::Cancelled,
                        Some(error) => {
                            job.state = JobState::Failed;
                            job.log_tail = Some(stderr_tail).filter(|tail| !tail.is_empty());
                            let name = job.file_name();
                            job.error = Some(error.clone());
                            self.log(LogLevel::Error, format!("{name}: {error}"));
                        }
                    }
                    self.save_queue();
                }
            }
        }
    }

    fn on_worker_event(&mut self, event: Event) {
        let mut log = None;
        let mut save = false;
        match event {
            // The window runs jobs on this machine only.
            Event::Hello { .. } | Event::ClusterSubmitted { .. } => {}
            Event::JobStarted {
                job,
                output,
                session_id,
                resumed,
                chunks_total,
                chunks_done,
                ..
            } => {
                if let Some(job) = self.queue.get_mut(job) {
                    log = Some((
                        LogLevel::Info,
                        if resumed {
                            tr!(
                                self.i18n,
                                "log-job-resuming",
                                name = job.file_name(),
                                done = chunks_done,
                                total = chunks_total
                            )
                        } else {
                            tr!(
                                self.i18n,
                                "log-job-chunks",
                                name = job.file_name(),
                                count = chunks_total,
                                seconds = state::format_scale(
                                    job.spec.as_ref().map_or(0.0, |spec| spec.chunk_seconds)
                                )
                            )
                        },
                    ));
                    job.output = Some(output);
                    job.session_id = Some(session_id);
                    job.chunks_total = chunks_total;
                    job.chunks_done = chunks_done;
                    job.resumable = true;
                    save = true;
                }
            }
            Event::Warning { job, message } => {
                if let Some(job) = self.queue.get_mut(job) {
                    log = Some((LogLevel::Warning, format!("{}: {message}", job.file_name())));
                    job.warnings.push(message);
                }
            }
            Event::StepChanged { job, step, status } => {
                if let Some(job) = self.queue.get_mut(job) {
                    let progress = job.step_mut(step);
                    progress.status = status;
                    if status == StepStatus::Completed {
                        progress.percent = 100.0;
                    }
                    save = true;
                }
            }
            Event::Progress {
                job,
                step,
                percent,
                fps,
                eta_secs,
                ..
            } => {
                if let Some(job) = self.queue.get_mut(job) {
                    let progress = job.step_mut(step);
                    progress.percent = percent.clamp(0.0, 100.0);
                    if progress.status == StepStatus::Pending {
                        progress.status = StepStatus::InProgress;
                    }
                    job.fps = fps;
                    job.eta_secs = eta_secs;
                }
            }
            Event::ChunkDone {
                job,
                chunks_done,
                chunks_total,
                ..
            } => {
                if let Some(job) = self.queue.get_mut(job) {
                    job.chunks_done = chunks_done;
                    job.chunks_total = chunks_total;
                    save = true;
                }
            }
            Event::JobFinished {
                job,
                output,
                elapsed_secs,
            } => {
                if let Some(job) = self.queue.get_mut(job) {
                    log = Some((
                        LogLevel::Info,
                        tr!(
                            self.i18n,
                            "log-job-done",
                            path = output.display().to_string()
                        ),
                    ));
                    job.state = JobState::Finished;
                    job.output = Some(output);
                    job.elapsed_secs = Some(elapsed_secs);
                    job.resumable = false;
                    job.fps = 0.0;
                    job.eta_secs = None;
                    for step in &mut job.steps {
                        step.status = StepStatus::Completed;
                        step.percent = 100.0;
                    }
                    save = true;
                }
            }
            Event::JobFailed {
                job,
                error,
                resumable,
            } => {
                if let Some(job) = self.queue.get_mut(job) {
                    log = Some((LogLevel::Error, format!("{}: {error}", job.file_name())));
                    job.state = JobState::Failed;
                    job.error = Some(error);
                    job.resumable = resumable;
                    job.fps = 0.0;
                    job.eta_secs = None;
                    for step in &mut job.steps {
                        if step.status == StepStatus::InProgress {
                            step.status = StepStatus::Failed;
                        }
                    }
                    save = true;
                }
            }
            Event::Thumbnail { job, path, .. } => {
                if self.queue.get(job).is_some()
                    && let Err(error) = self.thumbnails.load(&self.ctx, job, path)
                {
                    log = Some((
                        LogLevel::Warning,
                        tr!(self.i18n, "log-thumbnail-failed", error = error.to_string()),
                    ));
                }
            }
            Event::JobCancelled { job } => {
                if let Some(job) = self.queue.get_mut(job) {
                    log = Some((
                        LogLevel::Info,
                        tr!(self.i18n, "log-job-cancelled", name = job.file_name()),
                    ));
                    job.state = JobState::Cancelled;
                    job.resumable = true;
                    job.fps = 0.0;
                    job.eta_secs = None;
                    for step in &mut job.steps {
                        if step.status == StepStatus::InProgress {
                            step.status = StepStatus::Pending;
                        }
                    }
                    save = true;
                }
            }
        }
        if let Some((level, text)) = log {
            self.log(level, text);
        }
        if save {
            self.save_queue();
        }
    }

    // ---- Helpers ---------------------------------------------------------------------------

    pub(super) fn log(&mut self, level: LogLevel, text: String) {
        match level {
            LogLevel::Error => log::error!("{text}"),
            LogLevel::Warning => log::warn!("{text}"),
            LogLevel::Info => log::info!("{text}"),
            LogLevel::Worker => log::debug!("worker: {text}"),
        }
        if self.log.len() >= LOG_MAX_LINES {
            self.log.pop_front();
        }
        self.log.push_back(LogLine {
            time: clock_time(),
            level,
            text,
        });
    }

    /// Makes the language setting (or the system's) the one the window speaks, from the next
    /// frame on.
    fn apply_language(&mut self) {
        let language = self
            .settings
            .language
            .as_deref()
            .unwrap_or(self.system_language);
        self.i18n = Arc::new(Localizer::new(language));
        Localizer::install(&self.ctx, Arc::clone(&self.i18n));
    }

    /// The engines the models folder allows, looked up again (after the folder changed). A
    /// panel engine that is no longer there falls back to the built-in one.
    fn refresh_engines(&mut self) {
        let folder = self.settings.models_folder();
        self.engines = crate::engine::available_in(folder.as_deref());
        self.unusable_models = folder
            .map(|dir| {
                crate::engine::custom_models(&dir)
                    .into_iter()
                    .filter_map(|m| m.status.err().map(|reason| (m.name, reason)))
                    .collect()
            })
            .unwrap_or_default();
        if !self.engines.iter().any(|e| e.name == self.settings.engine)
            && let Some(first) = self.engines.first()
        {
            self.settings.engine = first.name.clone();
        }
    }

    fn save_settings(&mut self) {
        if let Some(dir) = &self.config.config_dir
            && let Ok(bytes) = serde_json::to_vec_pretty(&self.settings)
        {
            self.persister.save(dir.join(SETTINGS_FILE), bytes);
        }
    }

    fn save_queue(&mut self) {
        if let Some(dir) = &self.config.config_dir
            && let Ok(bytes) = serde_json::to_vec_pretty(&self.queue)
        {
            self.persister.save(dir.join(QUEUE_FILE), bytes);
        }
    }

    fn locate_tools(&mut self) {
        self.tools = crate::media::tools::Tools::locate()
            .map(|_| ())
            .map_err(|error| format!("{error:#}"));
        if let Err(message) = &self.tools {
            let message = message.clone();
            self.log(LogLevel::Error, message);
        }
    }

    /// The user presets folder: `presets` in the window's config folder, where the workers
    /// (given that folder) look for them too.
    fn presets_dir(&self) -> Option<PathBuf> {
        self.config
            .config_dir
            .as_ref()
            .map(|dir| dir.join("presets"))
    }

    fn load_presets(&mut self) {
        self.presets = crate::presets::list_all_in(self.presets_dir().as_deref())
            .into_iter()
            .map(|(preset, source)| PresetChoice {
                name: preset.name.clone(),
                summary: preset.description.clone(),
                user: matches!(source, crate::presets::PresetSource::User(..)),
            })
            .collect();
    }

    /// The settings panel as session settings (what a session id is made of).
    fn session_settings(&self) -> Option<Settings> {
        let preset =
            crate::presets::resolve_in(&self.settings.preset, self.presets_dir().as_deref())
                .ok()?;
        let (scale, target_height) = match self.settings.size {
            OutputSize::Scale(scale) => (scale, None),
            // The pipeline derives the scale from the video; the scan compares heights only.
            OutputSize::Height(height) => (0.0, Some(height)),
        };
        Some(Settings {
            engine: self.settings.engine.clone(),
            model: None,
            scale,
            target_height,
            denoise: self.settings.denoise_for(&self.engines),
            preset: self.settings.preset.clone(),
            preset_digest: preset.digest(),
            chunk_seconds: self.settings.chunk_seconds,
            deinterlace: self.settings.deinterlace,
        })
    }

    fn save_preset_as(&mut self, name: &str) {
        let name = name.trim();
        let dir = self.presets_dir();
        let result = crate::presets::resolve_in(&self.settings.preset, dir.as_deref()).and_then(
            |mut preset| {
                preset.name = name.to_owned();
                crate::presets::save_user_to(&preset, dir.as_deref())
            },
        );
        match result {
            Ok(path) => {
                let text = tr!(
                    self.i18n,
                    "log-preset-saved",
                    name = name,
                    path = path.display().to_string()
                );
                self.log(LogLevel::Info, text);
                self.settings.preset = name.to_owned();
                self.save_settings();
                self.load_presets();
            }
            Err(error) => {
                let text = tr!(
                    self.i18n,
                    "log-preset-save-failed",
                    name = name,
                    error = error.to_string()
                );
                self.log(LogLevel::Error, text);
            }
        }
    }

    fn open_dialog(&mut self, kind: DialogKind) {
        if self.dialog_open {
            return;
        }
        let tx = self.dialogs_tx.clone();
        let ctx = self.ctx.clone();
        let i18n = Arc::clone(&self.i18n);
        // The folder pickers open where the current choice is.
        let start_dir = match kind {
            DialogKind::OutputFolder => self.settings.output_dir.clone(),
            DialogKind::ModelsFolder => self.settings.models_folder().filter(|d| d.is_dir()),
            DialogKind::Files | DialogKind::Folder => None,
        };
        let spawned = std::thread::Builder::new()
            .name("gui-file-dialog".into())
            .spawn(move || {
                let started = std::time::Instant::now();
                let dialog = match start_dir {
                    Some(dir) => rfd::FileDialog::new().set_directory(dir),
                    None => rfd::FileDialog::new(),
                };
                let result = match kind {
                    DialogKind::Files => dialog
                        .set_title(tr!(i18n, "dialog-add-videos"))
                        .add_filter(tr!(i18n, "dialog-filter-videos"), scan::VIDEO_EXTENSIONS)
                        .add_filter(tr!(i18n, "dialog-filter-all"), &["*"])
                        .pick_files()
                        .map(DialogResult::Files),
                    DialogKind::Folder => dialog
                        .set_title(tr!(i18n, "dialog-add-folder"))
                        .pick_folder()
                        .map(DialogResult::Folder),
                    DialogKind::OutputFolder => dialog
                        .set_title(tr!(i18n, "dialog-output-folder"))
                        .pick_folder()
                        .map(DialogResult::OutputFolder),
                    DialogKind::ModelsFolder => dialog
                        .set_title(tr!(i18n, "dialog-models-folder"))
                        .pick_folder()
                        .map(DialogResult::ModelsFolder),
                };
                let quick = started.elapsed().as_secs_f64() < DIALOG_MIN_HUMAN_SECS;
                let _ = tx.send(result.unwrap_or(DialogResult::Closed { quick }));
                ctx.request_repaint();
            });
        match spawned {
            Ok(_) => self.dialog_open = true,
            Err(error) => {
                let text = tr!(self.i18n, "log-dialog-failed", error = error.to_string());
                self.log(LogLevel::Error, text);
            }
        }
    }

    fn show_in_folder(&mut self, path: &Path) {
        let folder = if path.is_dir() {
            path.to_owned()
        } else {
            path.parent().map(Path::to_owned).unwrap_or_default()
        };
        let mut command = if cfg!(target_os = "macos") {
            let mut command = std::process::Command::new("open");
            command.arg("-R").arg(path);
            command
        } else if cfg!(windows) {
            let mut command = std::process::Command::new("explorer");
            command.arg(&folder);
            command
        } else {
            let mut command = std::process::Command::new("xdg-open");
            command.arg(&folder);
            command
        };
        command
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        match command.spawn() {
            Ok(mut child) => {
                // Reap it off the UI thread.
                let _ = std::thread::Builder::new()
                    .name("gui-show-folder".into())
                    .spawn(move || child.wait());
            }
            Err(error) => {
                let text = tr!(
                    self.i18n,
                    "log-file-manager-failed",
                    error = error.to_string(),
                    path = folder.display().to_string()
                );
                self.log(LogLevel::Error, text);
            }
        }
    }
}

#[derive(Clone, Copy)]
enum DialogKind {
    Files,
    Folder,
    OutputFolder,
    ModelsFolder,
}

#[derive(Clone, Copy)]
enum OfferAnswer {
    Resume,
    Restart,
    Dismiss,
}

/// The job that continues a session: its settings, with the panel's output choices.
fn spec_from_session(settings: &Settings, input: &Path, panel: &UserSettings) -> JobSpec {
    JobSpec {
        input: input.to_owned(),
        engine: settings.engine.clone(),
        scale: settings.target_height.is_none().then_some(settings.scale),
        height: settings.target_height,
        denoise: settings.denoise,
        preset: settings.preset.clone(),
        output: panel.output_dir.clone(),
        overwrite: panel.overwrite,
        resume: ResumeMode::Resume,
        chunk_seconds: settings.chunk_seconds,
        deinterlace: settings.deinterlace,
        models_dir: panel.models_dir.clone(),
    }
}

/// Local wall-clock time as HH:MM:SS (UTC when the local offset is unknown).
fn clock_time() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    #[cfg(unix)]
    if let Ok(time) = libc::time_t::try_from(secs) {
        // SAFETY: localtime_r only writes into the zeroed `tm` we own (thread-safe variant).
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        if !unsafe { libc::localtime_r(&time, &mut tm) }.is_null() {
            return format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec);
        }
    }
    let day_secs = secs % 86_400;
    format!(
        "{:02}:{:02}:{:02}",
        day_secs / 3600,
        day_secs % 3600 / 60,
        day_secs % 60
    )
}

impl eframe::App for App {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        App::logic(self, ctx);
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        if !self.first_frame_drawn {
            self.first_frame_drawn = true;
            if let Some(called) = super::RUN_CALLED.get() {
                log::info!(
                    "first frame drawn {:.0} ms after start",
                    called.elapsed().as_secs_f64() * 1000.0
                );
            }
        }
        let mut commands = panels::main_ui(ui, self);
        commands.extend(dialogs::dialogs_ui(ui.ctx(), self));
        for command in commands {
            self.apply(command);
        }
    }

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        self.supervisor.shutdown();
        self.preview.shutdown();
        self.save_queue();
        self.save_settings();
        self.persister.flush();
    }
}
