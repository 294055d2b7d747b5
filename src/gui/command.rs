//! What the user asked for. Drawing code returns these instead of changing the app while it
//! draws; `App::apply` carries them out in one place, which tests call without a window.

use std::path::PathBuf;

use crate::protocol::JobId;

#[must_use]
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Files and folders to queue (folders are walked recursively).
    AddPaths(Vec<PathBuf>),
    /// The native "open files" dialog (Ctrl+O).
    OpenFilesDialog,
    OpenFolderDialog,
    PickOutputFolder,
    /// Outputs go beside their inputs again.
    OutputBesideInput,
    Select(JobId),
    Remove(JobId),
    MoveUp(JobId),
    MoveDown(JobId),
    /// Puts a failed, cancelled or interrupted job back in the queue (it resumes from its
    /// session when it can) and starts the queue.
    Retry(JobId),
    /// Removes finished jobs from the list.
    ClearFinished,
    StartQueue,
    /// Cancels the running job (the worker is stopped; the job stays resumable).
    Cancel,
    /// Opens the folder holding this path in the file manager.
    ShowInFolder(PathBuf),
    /// Resume dialog: go on from the previous run.
    Resume,
    /// Resume dialog: start over with the settings panel's values.
    Restart,
    /// Resume dialog: do not queue the file.
    DismissOffer,
    /// A settings widget changed: save them.
    SettingsChanged,
    ToggleLog,
    ClearLog,
    /// Looks for ffmpeg again (after the user installed it).
    RecheckTools,
    /// Close-while-running confirmation: cancel the job and close.
    ConfirmClose,
    /// Close-while-running confirmation: keep the window.
    KeepOpen,
    /// Saves the selected preset under a new user preset name.
    SavePresetAs(String),
}
