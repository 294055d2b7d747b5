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
        Cmd::List => print!("{}", list_table(&presets::list_all())),
        Cmd::Show { name } => {
            let preset = presets::resolve(&name)?;
            println!("{}", serde_json::to_string_pretty(&preset)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One line a preset under a header: name, origin (`built-in` or `user`), then the description,
/// which may be of any length since nothing follows it but a user preset's file.
fn list_table(list: &[(presets::Preset, PresetSource)]) -> String {
    let width = list
        .iter()
        .map(|(preset, _)| preset.name.chars().count())
        .chain(["NAME".len()])
        .max()
        .unwrap_or(0);
    let mut out = format!("{:<width$}  {:<8}  DESCRIPTION\n", "NAME", "ORIGIN");
    for (preset, source) in list {
        let (origin, file) = match source {
            PresetSource::Builtin => ("built-in", String::new()),
            PresetSource::User(path) => ("user", format!(" ({})", path.display())),
        };
        let name = &preset.name;
        let description = &preset.description;
        out.push_str(&format!(
            "{name:<width$}  {origin:<8}  {description}{file}\n"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_stays_aligned_after_long_descriptions() {
        let mut list = presets::list_all();
        let (mut long, _) = list[0].clone();
        long.name = "a_much_longer_preset_name".into();
        long.description = "x".repeat(120);
        list.push((long, PresetSource::User("/home/u/mine.json".into())));
        let table = list_table(&list);
        let origin_at: Vec<usize> = table
            .lines()
            .map(|line| {
                ["ORIGIN", "built-in", "user"]
                    .iter()
                    .filter_map(|word| line.find(&format!("  {word}  ")))
                    .min()
                    .expect("an origin column")
            })
            .collect();
        assert!(origin_at.len() > 2);
        assert!(origin_at.iter().all(|&at| at == origin_at[0]), "{table}");
        assert!(table.ends_with(&format!("{} (/home/u/mine.json)\n", "x".repeat(120))));
    }
}
