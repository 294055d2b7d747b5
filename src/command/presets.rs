//! `reframe presets list|show`: the output presets, built in and the user's own.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use reframe::presets::{self, PresetSource};

#[derive(Parser, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// List every preset with its description and origin.
    List,
    /// Print one preset as JSON.
    Show {
        /// Preset name or path to a preset file.
        name: String,
    },
}

pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Cmd::List => {
            for (preset, source) in presets::list_all() {
                let origin = match source {
                    PresetSource::Builtin => "built-in".to_owned(),
                    PresetSource::User(path) => path.display().to_string(),
                };
                println!("{:<16} {:<64} {origin}", preset.name, preset.description);
            }
        }
        Cmd::Show { name } => {
            let preset = presets::resolve(&name)?;
            println!("{}", serde_json::to_string_pretty(&preset)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}
