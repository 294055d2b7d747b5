//! The error type of model loading and inference: every message names the layer and the
//! `.param` line it comes from, so a broken or mismatched model file can be found and fixed.

use std::path::PathBuf;

/// What went wrong loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A model file could not be read.
    #[error("cannot read the model file ({source}): {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The `.param` text is malformed or uses something this engine does not support.
    #[error("{}{}", describe("model .param", *line, layer.as_deref(), reason), file_suffix(file))]
    Param {
        line: usize,
        layer: Option<String>,
        reason: String,
        file: Option<PathBuf>,
    },
    /// The `.bin` weights do not match what the `.param` declares.
    #[error("{}{}", describe("model .bin weights", *line, Some(layer.as_str()), reason), file_suffix(file))]
    Weights {
        line: usize,
        layer: String,
        reason: String,
        file: Option<PathBuf>,
    },
    /// A layer cannot run on the blob shapes it was given.
    #[error("{}", describe("model", *line, Some(layer.as_str()), reason))]
    Shape {
        line: usize,
        layer: String,
        reason: String,
    },
    /// The caller's input or options are unusable.
    #[error("{0}")]
    Input(String),
    /// The machine refused something (e.g. starting the tile threads).
    #[error("{0}")]
    Runtime(String),
}

fn describe(what: &str, line: usize, layer: Option<&str>, reason: &str) -> String {
    match layer {
        Some(layer) => format!("{what}, line {line}, layer `{layer}`: {reason}"),
        None => format!("{what}, line {line}: {reason}"),
    }
}

fn file_suffix(file: &Option<PathBuf>) -> String {
    match file {
        Some(path) => format!(": {}", path.display()),
        None => String::new(),
    }
}

impl ModelError {
    /// Attaches the file the error was found in (for errors from `.param` / `.bin` text).
    pub(crate) fn in_file(mut self, path: &std::path::Path) -> ModelError {
        match &mut self {
            ModelError::Param { file, .. } | ModelError::Weights { file, .. } => {
                *file = Some(path.to_path_buf());
            }
            _ => {}
        }
        self
    }
}
