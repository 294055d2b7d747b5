//! The `reframe` binary: picks a role from the command line — the GUI (no subcommand), a
//! headless job (`run`), preset and session management, or a worker child of the GUI.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

mod command;

#[derive(Parser, Debug)]
#[command(
    name = "reframe",
    version,
    about = "Upscale and re-encode video files, resumably"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    /// Videos or folders to queue in the window.
    files: Vec<PathBuf>,
    /// More log output on stderr (-v info, -vv debug). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Upscale and encode videos (files or folders) without the window.
    Run(Box<command::run::Args>),
    /// List or show output presets.
    Presets(command::presets::Args),
    /// List or clean saved sessions (resumable jobs).
    Sessions(command::sessions::Args),
    /// List the upscaling engines available here (and the models that are missing).
    Engines(command::engines::Args),
    /// Child roles started by the window (not for direct use).
    #[command(hide = true)]
    Worker(command::worker::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format_timestamp_millis()
        .target(env_logger::Target::Stderr)
        .init();
    let result = match cli.command {
        Some(Cmd::Run(args)) => command::run::main(*args),
        Some(Cmd::Presets(args)) => command::presets::main(args),
        Some(Cmd::Sessions(args)) => command::sessions::main(args),
        Some(Cmd::Engines(args)) => command::engines::main(args),
        Some(Cmd::Worker(args)) => command::worker::main(args),
        None => match unknown_word(&cli.files) {
            Some(message) => Err(anyhow::anyhow!(message)),
            None => command::gui::main(cli.files),
        },
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// `reframe devcies`: an argument that names no file and looks like a word (no folder, no
/// extension) is a mistyped command, not a video for the window. The message lists the
/// commands and suggests the closest one.
fn unknown_word(files: &[PathBuf]) -> Option<String> {
    let word = files.iter().find(|path| {
        !path.exists() && path.extension().is_none() && path.components().count() == 1
    })?;
    let word = word.to_string_lossy();
    let cli = Cli::command();
    let commands: Vec<&str> = cli
        .get_subcommands()
        .filter(|command| !command.is_hide_set())
        .map(|command| command.get_name())
        .collect();
    let closest = commands
        .iter()
        .map(|name| (strsim::damerau_levenshtein(&word, name), *name))
        .filter(|(distance, _)| *distance <= 2)
        .min();
    let suggestion = closest
        .map(|(_, name)| format!("did you mean `reframe {name}`? "))
        .unwrap_or_default();
    Some(format!(
        "\"{word}\" is neither a file here nor a reframe command; {suggestion}the commands are: {} (see `reframe --help`)",
        commands.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mistyped_command_is_named_with_the_closest_one() {
        let message = unknown_word(&[PathBuf::from("enignes")]).expect("a word");
        assert!(message.contains("\"enignes\""), "{message}");
        assert!(
            message.contains("did you mean `reframe engines`?"),
            "{message}"
        );
        assert!(
            message.contains("run, presets, sessions, engines"),
            "{message}"
        );
        assert!(!message.contains("worker"), "{message}");
        let message = unknown_word(&[PathBuf::from("zzzzzzzz")]).expect("a word");
        assert!(!message.contains("did you mean"), "{message}");
    }

    #[test]
    fn files_and_paths_open_the_window() {
        let dir = tempfile::tempdir().expect("temp dir");
        let existing = dir.path().join("notes");
        std::fs::write(&existing, b"").expect("file");
        for path in [
            existing,
            dir.path().join("missing.mp4"),
            PathBuf::from("sub/clip"),
            PathBuf::from("クリップ.mkv"),
        ] {
            assert_eq!(
                unknown_word(std::slice::from_ref(&path)),
                None,
                "{}",
                path.display()
            );
        }
    }
}
