//! Drawing of the main window (DESIGN §5): toolbar, queue on the left, settings on the right
//! (`settings_panel`), the selected job in the middle (`job_details`, then the preview),
//! activity log and status bar at the bottom. Functions read the app and return [`Command`]s;
//! only settings widgets edit their values in place (and return `SettingsChanged` so that they
//! are saved).

use egui::{Align, Color32, Layout, RichText, Sense, Stroke, Ui, UiBuilder, Vec2};

use super::app::{App, LogLevel};
use super::command::Command;
use super::job_details::{job_details_ui, job_header_ui};
use super::state::{Job, JobState};
use crate::i18n::{Localizer, tr};
use crate::protocol::{Step, StepStatus};

pub const GREEN: Color32 = Color32::from_rgb(0x3f, 0xa8, 0x5a);
pub const RED: Color32 = Color32::from_rgb(0xd9, 0x4a, 0x45);
pub const AMBER: Color32 = Color32::from_rgb(0xd8, 0x9b, 0x2b);
/// Height of a running job's live thumbnail in the queue.
const THUMBNAIL_HEIGHT: f32 = 72.0;

pub fn main_ui(ui: &mut Ui, app: &mut App) -> Vec<Command> {
    let mut commands = Vec::new();
    let i18n = std::sync::Arc::clone(&app.i18n);
    egui::Panel::top("toolbar")
        .frame(egui::Frame::side_top_panel(ui.style()).inner_margin(egui::Margin::symmetric(10, 6)))
        .show(ui, |ui| toolbar_ui(ui, app, &mut commands));
    if let Err(message) = &app.tools {
        let message = message.clone();
        egui::Panel::top("tools-banner")
            .frame(
                egui::Frame::new()
                    .fill(RED.gamma_multiply(0.25))
                    .inner_margin(egui::Margin::symmetric(10, 6)),
            )
            .show(ui, |ui| {
                ui.horizontal_wrapped(|ui| {
                    ui.label(
                        RichText::new(tr!(i18n, "tools-missing"))
                            .strong()
                            .color(RED),
                    );
                    ui.label(message);
                    if ui.button(tr!(i18n, "tools-check-again")).clicked() {
                        commands.push(Command::RecheckTools);
                    }
                });
            });
    }
    egui::Panel::bottom("status-bar")
        .frame(egui::Frame::side_top_panel(ui.style()).inner_margin(egui::Margin::symmetric(10, 8)))
        .show(ui, |ui| status_bar_ui(ui, app, &mut commands));
    if app.settings.show_log {
        egui::Panel::bottom("activity-log")
            .resizable(true)
            .default_size(170.0)
            .min_size(80.0)
            .show(ui, |ui| log_ui(ui, app, &mut commands));
    }
    egui::Panel::left("queue")
        .resizable(true)
        .default_size(310.0)
        .min_size(240.0)
        .show(ui, |ui| queue_ui(ui, app, &mut commands));
    egui::Panel::right("settings")
        .resizable(false)
        .exact_size(290.0)
        .show(ui, |ui| {
            super::settings_panel::settings_ui(ui, app.settings_panel(), &mut commands)
        });
    egui::CentralPanel::default().show(ui, |ui| match app.selected_job().cloned() {
        Some(job) => {
            job_header_ui(ui, &job, app.details_open, &i18n, &mut commands);
            if app.details_open || job.error.is_some() {
                egui::ScrollArea::vertical()
                    .id_salt("job-details")
                    .max_height(ui.available_height() * 0.45)
                    .show(ui, |ui| {
                        job_details_ui(ui, &job, &app.settings, &app.engines, &i18n)
                    });
                ui.separator();
            }
            super::preview_ui::preview_ui(ui, app, &mut commands);
        }
        None => empty_state_ui(ui, app, &mut commands),
    });
    drop_overlay_ui(ui.ctx(), &i18n);
    commands
}

fn toolbar_ui(ui: &mut Ui, app: &App, commands: &mut Vec<Command>) {
    let i18n = &app.i18n;
    ui.horizontal(|ui| {
        ui.label(RichText::new("reframe").heading().strong());
        ui.add_space(12.0);
        let busy = app.dialog_open;
        if ui
            .add_enabled(!busy, egui::Button::new(tr!(i18n, "toolbar-add-files")))
            .on_hover_text(tr!(i18n, "toolbar-add-files-hint"))
            .clicked()
        {
            commands.push(Command::OpenFilesDialog);
        }
        if ui
            .add_enabled(!busy, egui::Button::new(tr!(i18n, "toolbar-add-folder")))
            .on_hover_text(tr!(i18n, "toolbar-add-folder-hint"))
            .clicked()
        {
            commands.push(Command::OpenFolderDialog);
        }
        if app.scans_in_flight > 0 {
            ui.spinner();
            ui.label(RichText::new(tr!(i18n, "toolbar-scanning")).weak());
        }
        ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
            if ui
                .selectable_label(app.settings.show_log, tr!(i18n, "activity-log"))
                .on_hover_text(tr!(i18n, "activity-log-hint"))
                .clicked()
            {
                commands.push(Command::ToggleLog);
            }
        });
    });
}

pub(super) fn state_icon(job: &Job) -> (&'static str, Color32) {
    match job.state {
        JobState::Queued => ("⏳", Color32::GRAY),
        JobState::Running => ("▶", AMBER),
        JobState::Finished => ("✔", GREEN),
        JobState::Failed => ("✖", RED),
        JobState::Cancelled | JobState::Interrupted => ("⏸", AMBER),
    }
}

/// One line saying where a job is: "upscale 42% · 12.3 fps · ETA 3:12", "done in 1:23", …
pub fn job_summary(job: &Job, i18n: &Localizer) -> String {
    match job.state {
        JobState::Queued if job.resume == crate::protocol::ResumeMode::Resume => {
            tr!(i18n, "summary-queued-resume")
        }
        JobState::Queued if job.resume == crate::protocol::ResumeMode::Restart => {
            tr!(i18n, "summary-queued-restart")
        }
        JobState::Queued => JobState::Queued.label(i18n),
        JobState::Running => {
            let mut parts = Vec::new();
            match job.current_step() {
                Some((step, progress)) => parts.push(tr!(
                    i18n,
                    "summary-step-percent",
                    step = step_id(step),
                    percent = format!("{:.0}", progress.percent)
                )),
                None => parts.push(tr!(i18n, "summary-starting")),
            }
            if job.fps > 0.0 {
                parts.push(tr!(i18n, "summary-fps", fps = format!("{:.1}", job.fps)));
            }
            if let Some(eta) = job.eta_secs {
                parts.push(tr!(i18n, "summary-eta", time = format_duration(eta)));
            }
            parts.join(" · ")
        }
        JobState::Finished => match job.elapsed_secs {
            Some(secs) => tr!(i18n, "summary-done-in", time = format_duration(secs)),
            None => JobState::Finished.label(i18n),
        },
        state if job.resumable => tr!(i18n, "summary-resumable", state = state.label(i18n)),
        state => state.label(i18n),
    }
}

/// The step's id in the catalogs' selectors (`step-title`, `summary-step-percent`).
pub(super) fn step_id(step: Step) -> &'static str {
    match step {
        Step::Validate => "validate",
        Step::Upscale => "upscale",
        Step::Package => "package",
        Step::Verify => "verify",
    }
}

pub(super) fn step_color(ui: &Ui, status: StepStatus) -> Color32 {
    match status {
        StepStatus::Completed => GREEN,
        StepStatus::InProgress => ui.visuals().selection.bg_fill,
        StepStatus::Failed => RED,
        StepStatus::Pending => ui.visuals().widgets.inactive.bg_fill,
    }
}

/// Four thin bars, one per step, each filled to its percentage.
fn mini_steps_ui(ui: &mut Ui, job: &Job) {
    let gap = 4.0;
    let width = ui.available_width();
    let (rect, _) = ui.allocate_exact_size(Vec2::new(width, 5.0), Sense::hover());
    let bar_width = (width - gap * 3.0) / 4.0;
    let painter = ui.painter();
    let track = ui.visuals().widgets.inactive.bg_fill;
    for (i, step) in Step::ALL.iter().enumerate() {
        let progress = job.step(*step);
        let x = rect.left() + i as f32 * (bar_width + gap);
        let bar = egui::Rect::from_min_size(egui::pos2(x, rect.top()), Vec2::new(bar_width, 5.0));
        painter.rect_filled(bar, 2.0, track);
        let fraction = match progress.status {
            StepStatus::Completed => 1.0,
            StepStatus::Pending => 0.0,
            _ => (progress.percent / 100.0).clamp(0.0, 1.0) as f32,
        };
        let fraction = if progress.status == StepStatus::Failed {
            1.0
        } else {
            fraction
        };
        if fraction > 0.0 {
            let filled = egui::Rect::from_min_size(bar.min, Vec2::new(bar_width * fraction, 5.0));
            painter.rect_filled(filled, 2.0, step_color(ui, progress.status));
        }
    }
}

fn queue_ui(ui: &mut Ui, app: &App, commands: &mut Vec<Command>) {
    let i18n = &app.i18n;
    ui.add_space(6.0);
    ui.horizontal(|ui| {
        ui.heading(tr!(i18n, "queue-heading"));
        ui.label(RichText::new(format!("{}", app.queue.jobs.len())).weak());
        ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
            if app.queue.jobs.iter().any(|j| j.state == JobState::Finished)
                && ui
                    .small_button(tr!(i18n, "queue-clear-finished"))
                    .on_hover_text(tr!(i18n, "queue-clear-finished-hint"))
                    .clicked()
            {
                commands.push(Command::ClearFinished);
            }
        });
    });
    ui.separator();
    if app.queue.jobs.is_empty() {
        ui.add_space(8.0);
        ui.label(RichText::new(tr!(i18n, "queue-empty")).weak());
        return;
    }
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .show(ui, |ui| {
            let count = app.queue.jobs.len();
            for (index, job) in app.queue.jobs.iter().enumerate() {
                job_row_ui(ui, app, job, index, count, commands);
            }
        });
}

fn job_row_ui(
    ui: &mut Ui,
    app: &App,
    job: &Job,
    index: usize,
    count: usize,
    commands: &mut Vec<Command>,
) {
    let selected = app.selected == Some(job.id);
    let visuals = ui.visuals().clone();
    let response = ui
        .scope_builder(UiBuilder::new().sense(Sense::click()), |ui| {
            let fill = if selected {
                visuals.selection.bg_fill.gamma_multiply(0.35)
            } else {
                Color32::TRANSPARENT
            };
            egui::Frame::new()
                .fill(fill)
                .corner_radius(4.0)
                .inner_margin(egui::Margin::symmetric(8, 6))
                .show(ui, |ui| {
                    ui.set_width(ui.available_width());
                    let (icon, color) = state_icon(job);
                    ui.horizontal(|ui| {
                        ui.label(RichText::new(icon).color(color));
                        ui.add(
                            egui::Label::new(RichText::new(job.file_name()).strong())
                                .truncate()
                                .selectable(false),
                        )
                        .on_hover_text(job.input.display().to_string());
                    });
                    ui.add(
                        egui::Label::new(RichText::new(job_summary(job, &app.i18n)).small())
                            .truncate()
                            .selectable(false),
                    );
                    if job.state != JobState::Queued
                        || job.resume == crate::protocol::ResumeMode::Resume
                    {
                        mini_steps_ui(ui, job);
                    }
                    if job.state == JobState::Running
                        && let Some(texture) = app.thumbnails.get(job.id)
                    {
                        ui.add_space(4.0);
                        ui.add(
                            egui::Image::new(texture)
                                .max_height(THUMBNAIL_HEIGHT)
                                .max_width(ui.available_width())
                                .corner_radius(3.0)
                                .alt_text(tr!(
                                    app.i18n,
                                    "queue-thumbnail-alt",
                                    name = job.file_name()
                                )),
                        );
                    }
                });
        })
        .response;
    let response = response.on_hover_cursor(egui::CursorIcon::PointingHand);
    if response.clicked() {
        commands.push(Command::Select(job.id));
    }
    response.context_menu(|ui| {
        job_actions_menu_ui(ui, job, index, count, &app.i18n, commands);
    });
    ui.add_space(2.0);
}

fn job_actions_menu_ui(
    ui: &mut Ui,
    job: &Job,
    index: usize,
    count: usize,
    i18n: &Localizer,
    commands: &mut Vec<Command>,
) {
    if job.state.is_unfinished() {
        let label = if job.resumable {
            tr!(i18n, "menu-resume")
        } else {
            tr!(i18n, "menu-retry")
        };
        if ui.button(label).clicked() {
            commands.push(Command::Retry(job.id));
        }
    }
    if let Some(output) = &job.output
        && ui.button(tr!(i18n, "show-in-folder")).clicked()
    {
        commands.push(Command::ShowInFolder(output.clone()));
    }
    if ui
        .add_enabled(index > 0, egui::Button::new(tr!(i18n, "menu-move-up")))
        .clicked()
    {
        commands.push(Command::MoveUp(job.id));
    }
    if ui
        .add_enabled(
            index + 1 < count,
            egui::Button::new(tr!(i18n, "menu-move-down")),
        )
        .clicked()
    {
        commands.push(Command::MoveDown(job.id));
    }
    if ui
        .add_enabled(
            job.state != JobState::Running,
            egui::Button::new(tr!(i18n, "remove")),
        )
        .clicked()
    {
        commands.push(Command::Remove(job.id));
    }
}

fn empty_state_ui(ui: &mut Ui, app: &App, commands: &mut Vec<Command>) {
    let i18n = &app.i18n;
    let available = ui.available_rect_before_wrap();
    let drop_zone = available.shrink(24.0);
    ui.painter().rect_stroke(
        drop_zone,
        12.0,
        Stroke::new(1.5, ui.visuals().weak_text_color()),
        egui::StrokeKind::Inside,
    );
    ui.scope_builder(
        UiBuilder::new()
            .max_rect(drop_zone)
            .layout(Layout::top_down(Align::Center)),
        |ui| {
            ui.add_space((drop_zone.height() / 2.0 - 110.0).max(12.0));
            ui.label(RichText::new("🎞").size(48.0));
            ui.add_space(8.0);
            ui.label(RichText::new(tr!(i18n, "empty-title")).size(22.0).strong());
            ui.add_space(6.0);
            ui.label(RichText::new(tr!(i18n, "empty-subtitle")).weak());
            ui.add_space(14.0);
            ui.horizontal(|ui| {
                let width = 2.0 * 130.0 + ui.spacing().item_spacing.x;
                ui.add_space((ui.available_width() - width).max(0.0) / 2.0);
                if ui
                    .add_enabled(
                        !app.dialog_open,
                        egui::Button::new(tr!(i18n, "empty-add-files"))
                            .min_size(Vec2::new(130.0, 30.0)),
                    )
                    .on_hover_text("Ctrl+O")
                    .clicked()
                {
                    commands.push(Command::OpenFilesDialog);
                }
                if ui
                    .add_enabled(
                        !app.dialog_open,
                        egui::Button::new(tr!(i18n, "empty-add-folder"))
                            .min_size(Vec2::new(130.0, 30.0)),
                    )
                    .clicked()
                {
                    commands.push(Command::OpenFolderDialog);
                }
            });
            ui.add_space(14.0);
            ui.label(RichText::new(tr!(i18n, "empty-output-note")).small().weak());
        },
    );
}

fn status_bar_ui(ui: &mut Ui, app: &App, commands: &mut Vec<Command>) {
    let i18n = &app.i18n;
    ui.horizontal(|ui| {
        let running = app.is_running();
        let can_start =
            !running && app.tools.is_ok() && app.queue.next_queued().is_some() && !app.cancelling;
        if ui
            .add_enabled(
                can_start,
                egui::Button::new(RichText::new(tr!(i18n, "start")).strong())
                    .min_size(Vec2::new(90.0, 28.0)),
            )
            .on_hover_text(tr!(i18n, "start-hint"))
            .clicked()
        {
            commands.push(Command::StartQueue);
        }
        if ui
            .add_enabled(
                running && !app.cancelling,
                egui::Button::new(tr!(i18n, "cancel")).min_size(Vec2::new(90.0, 28.0)),
            )
            .on_hover_text(tr!(i18n, "cancel-hint"))
            .clicked()
        {
            commands.push(Command::Cancel);
        }
        ui.separator();
        let running_job = app.queue.jobs.iter().find(|j| j.state == JobState::Running);
        if app.cancelling {
            ui.spinner();
            ui.label(tr!(i18n, "status-cancelling"));
        } else if let Some(job) = running_job {
            ui.spinner();
            let mut text = format!("{} · {}", job.file_name(), job_summary(job, i18n));
            if job.chunks_total > 0 {
                text.push_str(" · ");
                text.push_str(&tr!(
                    i18n,
                    "status-chunk",
                    done = job.chunks_done,
                    total = job.chunks_total
                ));
            }
            ui.add(egui::Label::new(text).truncate());
        } else {
            let queued = app
                .queue
                .jobs
                .iter()
                .filter(|j| j.state == JobState::Queued)
                .count();
            let text = match &app.notice {
                Some(notice) => notice.clone(),
                None if queued > 0 => tr!(i18n, "status-ready-queued", count = queued),
                None => tr!(i18n, "status-ready"),
            };
            ui.add(egui::Label::new(text).truncate());
        }
    });
}

fn log_ui(ui: &mut Ui, app: &App, commands: &mut Vec<Command>) {
    let i18n = &app.i18n;
    ui.add_space(4.0);
    ui.horizontal(|ui| {
        ui.label(RichText::new(tr!(i18n, "activity-log")).strong());
        ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
            if ui.small_button(tr!(i18n, "log-clear")).clicked() {
                commands.push(Command::ClearLog);
            }
            if ui.small_button(tr!(i18n, "log-copy")).clicked() {
                let text: Vec<String> = app
                    .log
                    .iter()
                    .map(|line| format!("{} {}", line.time, line.text))
                    .collect();
                ui.ctx().copy_text(text.join("\n"));
            }
        });
    });
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .stick_to_bottom(true)
        .show(ui, |ui| {
            if app.log.is_empty() {
                ui.label(RichText::new(tr!(i18n, "log-empty")).weak());
            }
            for line in &app.log {
                let color = match line.level {
                    LogLevel::Error => RED,
                    LogLevel::Warning => AMBER,
                    LogLevel::Info => ui.visuals().text_color(),
                    LogLevel::Worker => ui.visuals().weak_text_color(),
                };
                ui.horizontal_top(|ui| {
                    ui.label(RichText::new(&line.time).monospace().weak());
                    ui.add(
                        egui::Label::new(RichText::new(&line.text).monospace().color(color)).wrap(),
                    );
                });
            }
        });
}

/// Darkens the window while files are dragged over it.
fn drop_overlay_ui(ctx: &egui::Context, i18n: &Localizer) {
    if ctx.input(|input| input.raw.hovered_files.is_empty()) {
        return;
    }
    let rect = ctx.content_rect();
    let painter = ctx.layer_painter(egui::LayerId::new(
        egui::Order::Foreground,
        egui::Id::unique("drop-overlay"),
    ));
    painter.rect_filled(rect, 0.0, Color32::from_black_alpha(170));
    painter.text(
        rect.center(),
        egui::Align2::CENTER_CENTER,
        tr!(i18n, "drop-overlay"),
        egui::FontId::proportional(26.0),
        Color32::WHITE,
    );
}

/// "3:12", "1:02:03".
pub fn format_duration(secs: f64) -> String {
    let total = secs.max(0.0).round() as u64;
    let (hours, minutes, seconds) = (total / 3600, total % 3600 / 60, total % 60);
    if hours > 0 {
        format!("{hours}:{minutes:02}:{seconds:02}")
    } else {
        format!("{minutes}:{seconds:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ResumeMode;

    #[test]
    fn durations_read_like_a_clock() {
        assert_eq!(format_duration(0.0), "0:00");
        assert_eq!(format_duration(192.4), "3:12");
        assert_eq!(format_duration(3723.0), "1:02:03");
        assert_eq!(format_duration(-5.0), "0:00");
    }

    #[test]
    fn summaries_say_where_a_job_is() {
        let en = &Localizer::english();
        let ja = &Localizer::new("ja");
        let mut job = Job::new(1, "/v/a.mp4".into(), ResumeMode::Auto);
        assert_eq!(job_summary(&job, en), "queued");
        assert_eq!(job_summary(&job, ja), "待機中");
        job.state = JobState::Running;
        job.step_mut(Step::Validate).status = StepStatus::Completed;
        job.step_mut(Step::Upscale).status = StepStatus::InProgress;
        job.step_mut(Step::Upscale).percent = 42.4;
        job.fps = 12.3;
        job.eta_secs = Some(192.0);
        assert_eq!(job_summary(&job, en), "upscale 42% · 12.3 fps · ETA 3:12");
        assert_eq!(
            job_summary(&job, ja),
            "アップスケール 42% · 12.3 fps · 残り 3:12"
        );
        job.state = JobState::Interrupted;
        job.resumable = true;
        assert_eq!(job_summary(&job, en), "interrupted · resumable");
        assert_eq!(job_summary(&job, ja), "中断 · 再開できます");
        job.state = JobState::Finished;
        job.elapsed_secs = Some(83.0);
        assert_eq!(job_summary(&job, en), "done in 1:23");
        assert_eq!(job_summary(&job, ja), "完了（1:23）");
    }
}
