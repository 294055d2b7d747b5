//! Sessions: one (input file, settings) pair being processed, stored on disk so that a killed,
//! crashed or cancelled job can resume where it stopped.
//!
//! * [`identity`]: the input's identity and the output-changing settings, hashed into the
//!   session id ([`session_id`]).
//! * [`progress`]: the versioned `progress.json` record and its step transitions.
//! * [`store`]: the sessions directory (`$REFRAME_CACHE_DIR/sessions` or the user cache dir):
//!   acquiring a session under an exclusive lock, listing, discovery by input, retention.
//!
//! Layout of one session: `<root>/<id>/{progress.json, lock, chunks/, logs/, <other>.json}`.
//! Every state file is replaced atomically ([`crate::fsutil::write_atomic`]); a file that
//! cannot be trusted is reported as [`SessionError::Corrupt`], never a panic.

pub mod identity;
pub mod progress;
pub mod store;

use std::io;
use std::path::PathBuf;

pub use identity::{
    InputIdentity, Setting, SettingDifference, SettingValue, Settings, canonical_identity_json,
    session_id,
};
pub use progress::{
    JobStatus, Progress, SCHEMA_VERSION, Step, StepState, StepStatus, Steps, VideoSummary,
};
pub use store::{CleanReport, RemovedSession, Session, SessionEntry, SessionStore};

/// How long an unfinished session is kept after its last update before `reframe run` and the
/// worker remove it (`REFRAME_SESSION_MAX_AGE_HOURS`, default 14 days).
pub fn abandoned_after() -> std::time::Duration {
    let hours = std::env::var("REFRAME_SESSION_MAX_AGE_HOURS")
        .ok()
        .and_then(|h| h.parse::<f64>().ok())
        .filter(|h| h.is_finite() && *h > 0.0)
        .unwrap_or(14.0 * 24.0);
    std::time::Duration::from_secs_f64(hours * 3600.0)
}

/// Errors of the session store. Callers branch on [`SessionError::Locked`] (another process
/// owns the session) and [`SessionError::Corrupt`] (offer a restart).
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(
        "session {id} is being processed by another reframe process: wait for it to finish or stop it ({})",
        dir.display()
    )]
    Locked { id: String, dir: PathBuf },

    #[error(
        "session file cannot be trusted: {reason}; restart the job to discard the session ({})",
        path.display()
    )]
    Corrupt { path: PathBuf, reason: String },

    #[error(
        "session has no progress.json yet (just created, reset, or stopped before its first save) ({})",
        dir.display()
    )]
    NoProgress { dir: PathBuf },

    #[error("no session {id} ({})", dir.display())]
    NotFound { id: String, dir: PathBuf },

    #[error("invalid session id {id:?}: use letters, digits, '-' and '_' only (at most 64)")]
    InvalidId { id: String },

    #[error(
        "invalid session file name {name:?}: use a plain file name other than `lock` and `progress.json`"
    )]
    InvalidName { name: String },

    #[error(
        "progress of session {found} cannot be saved into session {expected}: build it with the id of the session it belongs to"
    )]
    IdMismatch { expected: String, found: String },

    #[error(
        "cannot find a cache directory for sessions: set REFRAME_CACHE_DIR (or HOME) to a writable directory"
    )]
    NoCacheDir,

    #[error("cannot {action}: {error} ({})", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        error: io::Error,
    },
}

impl SessionError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, error: io::Error) -> Self {
        SessionError::Io {
            action,
            path: path.into(),
            error,
        }
    }
}
