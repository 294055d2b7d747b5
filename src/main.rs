//! The `reframe` binary: picks a role from the command line — the GUI (no subcommand), a
//! headless job (`run`), preset and session management, or a worker child of the GUI.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    Run(command::run::Args),
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
        Some(Cmd::Run(args)) => command::run::main(args),
        Some(Cmd::Presets(args)) => command::presets::main(args),
        Some(Cmd::Sessions(args)) => command::sessions::main(args),
        Some(Cmd::Engines(args)) => command::engines::main(args),
        Some(Cmd::Worker(args)) => command::worker::main(args),
        None => command::gui::main(cli.files),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
