//! No subcommand: the desktop window.

use std::path::PathBuf;
use std::process::ExitCode;

pub fn main(files: Vec<PathBuf>) -> anyhow::Result<ExitCode> {
    reframe::gui::run(files)?;
    Ok(ExitCode::SUCCESS)
}
