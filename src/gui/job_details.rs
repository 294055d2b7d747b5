//! The selected job in the middle of the window: its header (name, state, actions) and its
//! details (steps with their progress, chunks, the settings it runs with, the error), and the
//! step list the resume dialog shows too.

use egui::{Align, Color32, Layout, RichText, Stroke, Ui};

use super::command::Command;
use super::panels::{AMBER, GREEN, RED, format_duration, job_summary, state_icon, step_id};
use super::state::{Job, JobState, UserSettings, format_scale};
use crate::i18n::{Localizer, tr};
use crate::protocol::{Step, StepStatus};

pub fn step_icon(status: StepStatus) -> (&'static str, Color32) {
    match status {
        StepStatus::Completed => ("✔", GREEN),
        StepStatus::InProgress => ("▶", AMBER),
        StepStatus::Failed => ("✖", RED),
        StepStatus::Pending => ("○", Color32::GRAY),
    }
}

/// The "Chunks: N of M done" row of a details grid (a job's, or a previous run's); nothing
/// while the chunks are not known.
pub fn chunks_row_ui(ui: &mut Ui, i18n: &Localizer, done: usize, total: usize) {
    if total > 0 {
        ui.label(RichText::new(tr!(i18n, "details-chunks")).weak());
        ui.label(tr!(i18n, "chunks-done-of", done = done, total = total));
        ui.end_row();
    }
}

/// Labelled per-step progress bars: validate, upscale, package, verify.
pub fn steps_ui(ui: &mut Ui, id_salt: &str, steps: &[(Step, StepStatus, f64)], i18n: &Localizer) {
    egui::Grid::new(id_salt)
        .num_columns(3)
        .spacing([8.0, 6.0])
        .show(ui, |ui| {
            for (step, status, percent) in steps {
                let (icon, color) = step_icon(*status);
                ui.label(RichText::new(icon).color(color));
                ui.label(tr!(i18n, "step-title", step = step_id(*step)));
                let fraction = match status {
                    StepStatus::Completed => 1.0,
                    _ => (percent / 100.0).clamp(0.0, 1.0) as f32,
                };
                let bar = egui::ProgressBar::new(fraction)
                    .desired_width(ui.available_width().clamp(140.0, 360.0))
                    .text(format!("{:.0}%", fraction * 100.0));
                let bar = match status {
                    StepStatus::Completed => bar.fill(GREEN.gamma_multiply(0.8)),
                    StepStatus::Failed => bar.fill(RED),
                    // egui draws a dot for 0%: hide it, nothing has happened yet.
                    _ if fraction <= 0.0 => bar.fill(ui.visuals().extreme_bg_color),
                    _ => bar,
                };
                ui.add(bar);
                ui.end_row();
            }
        });
}

fn spec_summary(spec: &crate::protocol::JobSpec, i18n: &Localizer) -> String {
    let size = match (spec.height, spec.scale) {
        (Some(height), _) => format!("{height}p"),
        (None, Some(scale)) => format!("{}×", format_scale(scale)),
        (None, None) => "2×".into(),
    };
    tr!(
        i18n,
        "details-spec",
        engine = spec.engine.as_str(),
        size = size,
        preset = spec.preset.as_str(),
        seconds = format_scale(spec.chunk_seconds)
    )
}

/// The selected job's name, state and actions, above its preview.
pub(super) fn job_header_ui(
    ui: &mut Ui,
    job: &Job,
    details_open: bool,
    i18n: &Localizer,
    commands: &mut Vec<Command>,
) {
    ui.horizontal(|ui| {
        ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
            if ui
                .selectable_label(details_open, tr!(i18n, "header-details"))
                .on_hover_text(tr!(i18n, "header-details-hint"))
                .clicked()
            {
                commands.push(Command::ToggleDetails);
            }
            if ui
                .add_enabled(
                    job.state != JobState::Running,
                    egui::Button::new(tr!(i18n, "remove")),
                )
                .on_hover_text(tr!(i18n, "header-remove-hint"))
                .clicked()
            {
                commands.push(Command::Remove(job.id));
            }
            if let Some(output) = &job.output
                && ui
                    .button(tr!(i18n, "show-in-folder"))
                    .on_hover_text(output.display().to_string())
                    .clicked()
            {
                commands.push(Command::ShowInFolder(output.clone()));
            }
            if job.state.is_unfinished() {
                let (label, hint) = if job.resumable {
                    (tr!(i18n, "header-resume"), tr!(i18n, "header-resume-hint"))
                } else {
                    (tr!(i18n, "header-retry"), tr!(i18n, "header-retry-hint"))
                };
                if ui.button(label).on_hover_text(hint).clicked() {
                    commands.push(Command::Retry(job.id));
                }
            }
            ui.with_layout(Layout::left_to_right(Align::Center), |ui| {
                let (icon, color) = state_icon(job);
                ui.label(RichText::new(icon).color(color).size(18.0));
                ui.add(
                    egui::Label::new(RichText::new(job.file_name()).size(18.0).strong()).truncate(),
                )
                .on_hover_text(job.input.display().to_string());
                ui.add(
                    egui::Label::new(RichText::new(job_summary(job, i18n)).color(color)).truncate(),
                );
            });
        });
    });
    ui.add_space(2.0);
}

pub(super) fn job_details_ui(
    ui: &mut Ui,
    job: &Job,
    panel: &UserSettings,
    engines: &[crate::engine::EngineInfo],
    i18n: &Localizer,
) {
    egui::Grid::new("job-facts")
        .num_columns(2)
        .spacing([12.0, 6.0])
        .show(ui, |ui| {
            ui.label(RichText::new(tr!(i18n, "details-input")).weak());
            ui.add(egui::Label::new(job.input.display().to_string()).truncate());
            ui.end_row();
            ui.label(RichText::new(tr!(i18n, "details-output")).weak());
            match &job.output {
                Some(output) => {
                    ui.add(egui::Label::new(output.display().to_string()).truncate());
                }
                None => {
                    ui.label(RichText::new(tr!(i18n, "details-output-later")).weak());
                }
            }
            ui.end_row();
            ui.label(RichText::new(tr!(i18n, "details-settings")).weak());
            match &job.spec {
                Some(spec) => {
                    ui.label(spec_summary(spec, i18n));
                }
                None => {
                    let spec = panel.job_spec(&job.input, job.resume, engines);
                    ui.label(tr!(
                        i18n,
                        "details-spec-from-panel",
                        spec = spec_summary(&spec, i18n)
                    ));
                }
            }
            ui.end_row();
            chunks_row_ui(ui, i18n, job.chunks_done, job.chunks_total);
            if job.state == JobState::Running && job.fps > 0.0 {
                ui.label(RichText::new(tr!(i18n, "details-speed")).weak());
                ui.label(tr!(i18n, "details-fps", fps = format!("{:.1}", job.fps)));
                ui.end_row();
            }
            if let Some(eta) = job.eta_secs {
                ui.label(RichText::new(tr!(i18n, "details-time-left")).weak());
                ui.label(format_duration(eta));
                ui.end_row();
            }
            if let Some(session) = &job.session_id {
                ui.label(RichText::new(tr!(i18n, "details-session")).weak());
                ui.label(RichText::new(session).monospace());
                ui.end_row();
            }
        });
    ui.add_space(8.0);
    let steps: Vec<_> = Step::ALL
        .iter()
        .map(|step| {
            let progress = job.step(*step);
            (*step, progress.status, progress.percent)
        })
        .collect();
    steps_ui(ui, "job-steps", &steps, i18n);
    if let Some(error) = &job.error {
        ui.add_space(8.0);
        egui::Frame::new()
            .fill(RED.gamma_multiply(0.15))
            .stroke(Stroke::new(1.0, RED))
            .corner_radius(4.0)
            .inner_margin(10.0)
            .show(ui, |ui| {
                ui.set_width(ui.available_width());
                ui.label(
                    RichText::new(tr!(i18n, "details-error"))
                        .strong()
                        .color(RED),
                );
                ui.label(error);
                if let Some(tail) = &job.log_tail {
                    ui.add_space(6.0);
                    egui::CollapsingHeader::new(tr!(i18n, "details-worker-log"))
                        .default_open(true)
                        .show(ui, |ui| {
                            egui::ScrollArea::vertical()
                                .id_salt("worker-log-tail")
                                .max_height(160.0)
                                .stick_to_bottom(true)
                                .show(ui, |ui| {
                                    ui.label(RichText::new(tail).monospace().small());
                                });
                        });
                }
            });
    }
    if !job.warnings.is_empty() {
        ui.add_space(8.0);
        ui.label(
            RichText::new(tr!(i18n, "details-warnings"))
                .strong()
                .color(AMBER),
        );
        for warning in &job.warnings {
            ui.label(format!("• {warning}"));
        }
    }
}
