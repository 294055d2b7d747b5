//! No subcommand: the desktop window.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;

pub fn main(files: Vec<PathBuf>) -> anyhow::Result<ExitCode> {
    let _ = files;
    bail!("this build has no window yet; use `reframe run <video>` (see `reframe --help`)")
}
