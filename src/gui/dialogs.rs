//! Modal dialogs: the resume dialog (DESIGN §2 mock-up), the close-while-running
//! confirmation, and the name prompt of "Save as preset…".

use egui::{RichText, Ui};

use super::app::App;
use super::command::Command;
use super::panels::{AMBER, steps_ui};
use super::scan::ResumeOffer;
use super::state::format_scale;

pub fn dialogs_ui(ctx: &egui::Context, app: &mut App) -> Vec<Command> {
    let mut commands = Vec::new();
    if let Some(offer) = app.offers.front() {
        let pending = app.offers.len() - 1;
        let response = egui::Modal::new(egui::Id::unique("resume-dialog")).show(ctx, |ui| {
            resume_dialog_ui(ui, offer, pending, &mut commands)
        });
        if response.should_close() && commands.is_empty() {
            commands.push(Command::DismissOffer);
        }
    } else if app.confirm_close {
        let response = egui::Modal::new(egui::Id::unique("close-dialog")).show(ctx, |ui| {
            ui.set_width(380.0);
            ui.heading("A job is running");
            ui.add_space(6.0);
            ui.label("Closing stops it. It can be resumed from its last finished chunk the next time you open reframe.");
            ui.add_space(12.0);
            ui.horizontal(|ui| {
                if ui.button("Stop and close").clicked() {
                    commands.push(Command::ConfirmClose);
                }
                if ui.button("Keep working").clicked() {
                    commands.push(Command::KeepOpen);
                }
            });
        });
        if response.should_close() && commands.is_empty() {
            commands.push(Command::KeepOpen);
        }
    } else if let Some(name) = &mut app.save_preset_name {
        let mut close = false;
        let preset = app.settings.preset.clone();
        let response = egui::Modal::new(egui::Id::unique("save-preset-dialog")).show(ctx, |ui| {
            ui.set_width(340.0);
            ui.heading("Save as preset");
            ui.add_space(6.0);
            ui.label(format!("A copy of “{preset}” under your own name:"));
            let edit = ui.add(egui::TextEdit::singleline(name).hint_text("my_preset"));
            if ui.memory(|memory| memory.focused().is_none()) {
                edit.request_focus();
            }
            let valid = is_valid_preset_name(name);
            if !name.is_empty() && !valid {
                ui.label(
                    RichText::new("Use letters, digits, - and _ only.")
                        .small()
                        .color(AMBER),
                );
            }
            ui.add_space(10.0);
            ui.horizontal(|ui| {
                let enter = ui.input(|i| i.key_pressed(egui::Key::Enter));
                if ui.add_enabled(valid, egui::Button::new("Save")).clicked() || (enter && valid) {
                    commands.push(Command::SavePresetAs(name.clone()));
                    close = true;
                }
                if ui.button("Cancel").clicked() {
                    close = true;
                }
            });
        });
        if close || response.should_close() {
            app.save_preset_name = None;
        }
    }
    commands
}

fn is_valid_preset_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// "2025-01-16T21:13:32Z" → "2025-01-16 21:13:32 UTC".
fn readable_time(iso: &str) -> String {
    match iso.strip_suffix('Z') {
        Some(rest) => format!("{} UTC", rest.replacen('T', " ", 1)),
        None => iso.replacen('T', " ", 1),
    }
}

fn resume_dialog_ui(ui: &mut Ui, offer: &ResumeOffer, pending: usize, commands: &mut Vec<Command>) {
    ui.set_width(460.0);
    ui.heading("A previous run was found");
    ui.add_space(8.0);
    let file = offer
        .input
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| offer.input.display().to_string());
    let settings = &offer.settings;
    let size = match settings.target_height {
        Some(height) => format!("{height}p"),
        None => format!("{}×", format_scale(settings.scale)),
    };
    egui::Grid::new("resume-facts")
        .num_columns(2)
        .spacing([12.0, 6.0])
        .show(ui, |ui| {
            ui.label(RichText::new("File").weak());
            ui.label(RichText::new(file).strong())
                .on_hover_text(offer.input.display().to_string());
            ui.end_row();
            ui.label(RichText::new("Last updated").weak());
            ui.label(readable_time(&offer.last_updated));
            ui.end_row();
            ui.label(RichText::new("Settings").weak());
            ui.label(format!(
                "Scale: {size}   Engine: {}   Preset: {}",
                settings.engine, settings.preset
            ));
            ui.end_row();
            if offer.chunks_total > 0 {
                ui.label(RichText::new("Chunks").weak());
                ui.label(format!(
                    "{} of {} done",
                    offer.chunks_done, offer.chunks_total
                ));
                ui.end_row();
            }
        });
    ui.add_space(8.0);
    steps_ui(ui, "resume-steps", &offer.steps);
    ui.add_space(8.0);
    if offer.differences.is_empty() {
        ui.label("Resume goes on from the last finished chunk. Restart discards that work and starts over.");
    } else {
        egui::Frame::new()
            .fill(AMBER.gamma_multiply(0.15))
            .stroke(egui::Stroke::new(1.0, AMBER))
            .corner_radius(4.0)
            .inner_margin(8.0)
            .show(ui, |ui| {
                ui.set_width(ui.available_width());
                ui.label(RichText::new("Your current settings differ from that run:").strong());
                for difference in &offer.differences {
                    ui.label(format!("• {difference}"));
                }
                ui.label("Resume continues with that run's settings. Restart starts over with your current settings.");
            });
    }
    if pending > 0 {
        ui.add_space(4.0);
        ui.label(
            RichText::new(format!(
                "{pending} more file(s) with a previous run after this one."
            ))
            .small()
            .weak(),
        );
    }
    ui.add_space(12.0);
    ui.horizontal(|ui| {
        if ui
            .button(RichText::new("Resume").strong())
            .on_hover_text("Go on from where it stopped")
            .clicked()
        {
            commands.push(Command::Resume);
        }
        if ui
            .button("Restart")
            .on_hover_text("Start over with the current settings")
            .clicked()
        {
            commands.push(Command::Restart);
        }
        if ui
            .button("Cancel")
            .on_hover_text("Do not add this file to the queue")
            .clicked()
        {
            commands.push(Command::DismissOffer);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_without_iso_letters() {
        assert_eq!(
            readable_time("2025-01-16T21:13:32Z"),
            "2025-01-16 21:13:32 UTC"
        );
        assert_eq!(
            readable_time("2025-01-16T21:13:32+01:00"),
            "2025-01-16 21:13:32+01:00"
        );
    }

    #[test]
    fn preset_names_are_file_safe() {
        assert!(is_valid_preset_name("my_preset-2"));
        assert!(!is_valid_preset_name(""));
        assert!(!is_valid_preset_name("../etc"));
        assert!(!is_valid_preset_name("a b"));
    }
}
