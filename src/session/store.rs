//! The sessions directory and the sessions in it.
//!
//! A [`SessionStore`] is a root directory holding one directory per session id. A process
//! works on a session only through a [`Session`], which holds an exclusive lock on the
//! session's `lock` file (`flock` semantics through [`File::try_lock`]) for its whole
//! lifetime: a second process, or a second handle in the same process, is refused with
//! [`SessionError::Locked`]. The kernel drops the lock when the holder exits, however it
//! exits, so a killed job never leaves a session stuck.
//!
//! Listing, discovery and retention never trust the files they read: a torn or foreign
//! `progress.json` shows up as [`SessionError::Corrupt`] in the [`SessionEntry`], and removal
//! takes the lock first, so a session in use is never deleted.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::SessionError;
use super::identity::InputIdentity;
use super::progress::Progress;
use crate::fsutil;

/// The session's progress record.
pub const PROGRESS_FILE: &str = "progress.json";
/// Held (flock) by the process working on the session; holds that process's pid.
pub const LOCK_FILE: &str = "lock";
/// Encoded chunks.
pub const CHUNKS_DIR: &str = "chunks";
/// Logs of the tools run for the session (kept by [`Session::reset`]).
pub const LOGS_DIR: &str = "logs";

/// How often to try the lock before reporting [`SessionError::Locked`]: a listing process
/// probes locks for an instant, which must not make a real acquire fail.
const LOCK_ATTEMPTS: u32 = 5;
const LOCK_RETRY: Duration = Duration::from_millis(20);

/// The directory holding all sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStore {
    root: PathBuf,
}

/// One session found on disk, as seen by [`SessionStore::list`].
#[derive(Debug)]
pub struct SessionEntry {
    pub id: String,
    pub dir: PathBuf,
    /// The parsed `progress.json`, or why it cannot be used
    /// ([`SessionError::Corrupt`], [`SessionError::NoProgress`], …).
    pub progress: Result<Progress, SessionError>,
    /// Bytes used by the session directory.
    pub disk_bytes: u64,
    /// Whether a process held the session's lock when it was listed.
    pub locked: bool,
}

/// What [`SessionStore::clean`] did.
#[derive(Debug, Default)]
pub struct CleanReport {
    pub removed: Vec<RemovedSession>,
    /// Ids of sessions that would have been removed but are in use by a process.
    pub skipped_locked: Vec<String>,
    /// Number of sessions kept because they were updated more recently than the limit.
    pub kept_recent: usize,
    /// Sessions whose removal failed, with the reason.
    pub failed: Vec<(String, SessionError)>,
}

/// One removed session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedSession {
    pub id: String,
    pub dir: PathBuf,
    pub bytes_freed: u64,
}

/// A session owned by this process: its directory and the held lock. Dropping it releases
/// the lock; the files stay for a later resume.
#[derive(Debug)]
pub struct Session {
    id: String,
    dir: PathBuf,
    /// Holds the exclusive lock while open.
    lock: File,
}

impl SessionStore {
    /// The default store: `$REFRAME_CACHE_DIR/sessions` when that variable is set and not
    /// empty, else `sessions` in the user cache directory (`~/.cache/reframe/sessions` on
    /// Linux). Nothing is created until a session is acquired.
    pub fn open_default() -> Result<SessionStore, SessionError> {
        default_root(std::env::var_os(crate::fsutil::CACHE_DIR_ENV)).map(SessionStore::at)
    }

    /// A store rooted at `root` (the directory that holds the session directories).
    pub fn at(root: impl Into<PathBuf>) -> SessionStore {
        SessionStore { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of session `id` (which need not exist).
    pub fn session_dir(&self, id: &str) -> Result<PathBuf, SessionError> {
        if is_valid_id(id) {
            Ok(self.root.join(id))
        } else {
            Err(SessionError::InvalidId { id: id.to_owned() })
        }
    }

    /// Opens session `id` for this process, creating its directory if needed, and locks it.
    /// Fails with [`SessionError::Locked`] while another process (or another `Session` of
    /// this process) holds it. Temporary files left by a killed writer are removed.
    pub fn acquire(&self, id: &str) -> Result<Session, SessionError> {
        let dir = self.session_dir(id)?;
        let lock = lock_session(id, &dir, true)?;
        for sub in [CHUNKS_DIR, LOGS_DIR] {
            let path = dir.join(sub);
            fs::create_dir_all(&path)
                .map_err(|e| SessionError::io("create the session directory", path, e))?;
        }
        for path in [dir.clone(), dir.join(CHUNKS_DIR)] {
            let removed = fsutil::remove_atomic_temps(&path)
                .map_err(|e| SessionError::io("clean the session directory", &path, e))?;
            if removed > 0 {
                log::info!(
                    "removed {removed} unfinished temporary file(s) of session {id} in {}",
                    path.display()
                );
            }
        }
        Ok(Session {
            id: id.to_owned(),
            dir,
            lock,
        })
    }

    /// Every session directory in the store, sorted by id. A missing store is empty.
    pub fn list(&self) -> Vec<SessionEntry> {
        let entries = match fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => {
                log::warn!("cannot list sessions: {e} ({})", self.root.display());
                return Vec::new();
            }
        };
        let mut ids: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|name| is_valid_id(name))
            .collect();
        ids.sort();
        ids.into_iter()
            .map(|id| {
                let dir = self.root.join(&id);
                read_entry(id, dir)
            })
            .collect()
    }

    /// The entry of session `id`, or [`SessionError::NotFound`].
    pub fn entry(&self, id: &str) -> Result<SessionEntry, SessionError> {
        let dir = self.session_dir(id)?;
        if !dir.is_dir() {
            return Err(SessionError::NotFound {
                id: id.to_owned(),
                dir,
            });
        }
        Ok(read_entry(id.to_owned(), dir))
    }

    /// The saved progress of session `id`, read without its lock: for a process that follows
    /// a session another process (or a cluster's package job) owns. `Ok(None)` when there is
    /// none yet.
    pub fn peek_progress(&self, id: &str) -> Result<Option<Progress>, SessionError> {
        load_progress_file(id, &self.session_dir(id)?)
    }

    /// A state file of session `id` written by [`Session::write_json`], read without the
    /// session's lock; `Ok(None)` when missing.
    pub fn peek_json<T: DeserializeOwned>(
        &self,
        id: &str,
        name: &str,
    ) -> Result<Option<T>, SessionError> {
        let path = state_file_in(&self.session_dir(id)?, name)?;
        let Some(bytes) = read_state_file(&path)? else {
            return Ok(None);
        };
        parse_json(&bytes)
            .map(Some)
            .map_err(|reason| SessionError::Corrupt { path, reason })
    }

    /// Sessions of the file `input` (same absolute path, size and modification time), with
    /// any settings. Sessions whose progress cannot be read are not included.
    pub fn find_for_input(&self, input: &InputIdentity) -> Vec<SessionEntry> {
        self.list()
            .into_iter()
            .filter(|entry| matches!(&entry.progress, Ok(p) if p.input == *input))
            .collect()
    }

    /// Removes every session not in use whose last update (its `progress.json`
    /// `last_updated`, or the directory's modification time when that cannot be read) is
    /// older than `older_than`; `None` removes every session not in use.
    pub fn clean(&self, older_than: Option<Duration>) -> CleanReport {
        let now = SystemTime::now();
        let mut report = CleanReport::default();
        for entry in self.list() {
            if let Some(limit) = older_than {
                // A session whose age cannot be told is kept: it is never wrong to keep one.
                let age = entry
                    .last_updated()
                    .and_then(|t| now.duration_since(t).ok())
                    .unwrap_or(Duration::ZERO);
                if age < limit {
                    report.kept_recent += 1;
                    continue;
                }
            }
            if entry.locked {
                report.skipped_locked.push(entry.id);
                continue;
            }
            match remove_locked(&entry.id, &entry.dir) {
                Ok(bytes_freed) => report.removed.push(RemovedSession {
                    id: entry.id,
                    dir: entry.dir,
                    bytes_freed,
                }),
                Err(SessionError::Locked { id, .. }) => report.skipped_locked.push(id),
                Err(SessionError::NotFound { .. }) => {}
                Err(e) => report.failed.push((entry.id, e)),
            }
        }
        if !report.removed.is_empty() {
            let _ = fsutil::sync_dir(&self.root);
        }
        report
    }

    /// Removes session `id`; returns the bytes freed. Refuses a session in use
    /// ([`SessionError::Locked`]).
    pub fn remove(&self, id: &str) -> Result<u64, SessionError> {
        let dir = self.session_dir(id)?;
        if !dir.is_dir() {
            return Err(SessionError::NotFound {
                id: id.to_owned(),
                dir,
            });
        }
        let bytes = remove_locked(id, &dir)?;
        let _ = fsutil::sync_dir(&self.root);
        Ok(bytes)
    }
}

impl SessionEntry {
    /// When the session was last updated: `last_updated` of its progress, else the
    /// modification time of its directory.
    pub fn last_updated(&self) -> Option<SystemTime> {
        self.progress
            .as_ref()
            .ok()
            .and_then(|p| fsutil::parse_iso8601(&p.last_updated))
            .or_else(|| fs::metadata(&self.dir).and_then(|m| m.modified()).ok())
    }

    /// The pid written into the lock file by the last process that acquired the session
    /// (informative: that process may have exited since; see `locked`).
    pub fn holder_pid(&self) -> Option<u32> {
        fs::read_to_string(self.dir.join(LOCK_FILE))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl CleanReport {
    /// Total bytes freed.
    pub fn bytes_freed(&self) -> u64 {
        self.removed.iter().map(|r| r.bytes_freed).sum()
    }
}

impl Session {
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where encoded chunks go (exists while the session is held).
    pub fn chunks_dir(&self) -> PathBuf {
        self.dir.join(CHUNKS_DIR)
    }

    /// Where tool logs go (exists while the session is held).
    pub fn logs_dir(&self) -> PathBuf {
        self.dir.join(LOGS_DIR)
    }

    pub fn progress_path(&self) -> PathBuf {
        self.dir.join(PROGRESS_FILE)
    }

    /// Bytes used by the session directory.
    pub fn disk_bytes(&self) -> u64 {
        fsutil::dir_size(&self.dir)
    }

    /// The saved progress: `Ok(None)` when there is none yet, [`SessionError::Corrupt`] when
    /// the file is torn, not JSON, of another schema version or of another session.
    pub fn load_progress(&self) -> Result<Option<Progress>, SessionError> {
        load_progress_file(&self.id, &self.dir)
    }

    /// Saves `progress` atomically, setting its `last_updated` to now.
    pub fn save_progress(&self, progress: &mut Progress) -> Result<(), SessionError> {
        if progress.session_id != self.id {
            return Err(SessionError::IdMismatch {
                expected: self.id.clone(),
                found: progress.session_id.clone(),
            });
        }
        progress.last_updated = fsutil::now_iso8601();
        let path = self.progress_path();
        fsutil::write_atomic(&path, &progress.to_json())
            .map_err(|e| SessionError::io("save the session progress", path, e))
    }

    /// Starts the session over: removes `progress.json` (first, so that a crash part-way
    /// never leaves a progress record pointing at deleted chunks), the other state files
    /// (plans) and the chunks. Keeps the lock and the logs.
    pub fn reset(&self) -> Result<(), SessionError> {
        remove_contents(&self.dir, &[LOCK_FILE, LOGS_DIR])?;
        for sub in [CHUNKS_DIR, LOGS_DIR] {
            let path = self.dir.join(sub);
            fs::create_dir_all(&path)
                .map_err(|e| SessionError::io("create the session directory", path, e))?;
        }
        Ok(())
    }

    /// Writes `value` as pretty JSON to the file `name` (for example `plan.json`) in the
    /// session directory, atomically.
    pub fn write_json<T: Serialize + ?Sized>(
        &self,
        name: &str,
        value: &T,
    ) -> Result<(), SessionError> {
        let path = self.state_file(name)?;
        let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| {
            SessionError::io("serialise the session file", &path, io::Error::other(e))
        })?;
        bytes.push(b'\n');
        fsutil::write_atomic(&path, &bytes)
            .map_err(|e| SessionError::io("write the session file", path, e))
    }

    /// Reads the file `name` written by [`Session::write_json`]: `Ok(None)` when missing,
    /// [`SessionError::Corrupt`] when it does not parse as `T`.
    pub fn read_json<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, SessionError> {
        let path = self.state_file(name)?;
        let Some(bytes) = read_state_file(&path)? else {
            return Ok(None);
        };
        parse_json(&bytes)
            .map(Some)
            .map_err(|reason| SessionError::Corrupt { path, reason })
    }

    /// Removes the file `name` written by [`Session::write_json`]; false if it did not exist.
    pub fn remove_json(&self, name: &str) -> Result<bool, SessionError> {
        let path = self.state_file(name)?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(SessionError::io("remove the session file", path, e)),
        }
    }

    /// Removes the whole session directory (for example after the output was verified);
    /// returns the bytes freed. The lock is held until everything else is gone.
    pub fn delete(self) -> Result<u64, SessionError> {
        let bytes = fsutil::dir_size(&self.dir);
        remove_dir_holding_lock(&self.dir)?;
        drop(self.lock);
        Ok(bytes)
    }

    /// Path of a state file, refusing names that would escape the directory or clash with
    /// the lock, the progress record or temporary files.
    fn state_file(&self, name: &str) -> Result<PathBuf, SessionError> {
        state_file_in(&self.dir, name)
    }
}

/// Path of a state file in session directory `dir`, refusing names that would escape the
/// directory or clash with the lock, the progress record or temporary files.
fn state_file_in(dir: &Path, name: &str) -> Result<PathBuf, SessionError> {
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && !name.contains(['/', '\0'])
        && name != LOCK_FILE
        && name != PROGRESS_FILE;
    if plain {
        Ok(dir.join(name))
    } else {
        Err(SessionError::InvalidName {
            name: name.to_owned(),
        })
    }
}

/// `$REFRAME_CACHE_DIR/sessions` (made absolute) when set and not empty, else the user
/// cache directory's `sessions`.
fn default_root(env_cache_dir: Option<OsString>) -> Result<PathBuf, SessionError> {
    match crate::fsutil::cache_dir_from(env_cache_dir.clone()) {
        Ok(Some(dir)) => Ok(dir.join("sessions")),
        Ok(None) => Err(SessionError::NoCacheDir),
        Err(e) => Err(SessionError::io(
            "resolve REFRAME_CACHE_DIR",
            env_cache_dir.unwrap_or_default(),
            e,
        )),
    }
}

/// Session ids are 12 hex digits in practice; any short name of letters, digits, `-` and
/// `_` is accepted so that nothing can address a path outside the store.
fn is_valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Takes the exclusive lock of the session in `dir`, creating the directory and the lock
/// file when `create`. Retries briefly so that a concurrent probe does not cause a refusal.
fn lock_session(id: &str, dir: &Path, create: bool) -> Result<File, SessionError> {
    let path = dir.join(LOCK_FILE);
    let mut attempt = 1;
    loop {
        if create {
            fs::create_dir_all(dir)
                .map_err(|e| SessionError::io("create the session directory", dir, e))?;
        }
        let opened = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path);
        let file = match opened {
            Ok(file) => Some(file),
            // The directory went away: removed by a concurrent clean.
            Err(e) if e.kind() == io::ErrorKind::NotFound && !create => {
                return Err(SessionError::NotFound {
                    id: id.to_owned(),
                    dir: dir.to_owned(),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && attempt < LOCK_ATTEMPTS => None,
            Err(e) => return Err(SessionError::io("open the session lock", path, e)),
        };
        if let Some(file) = file {
            match file.try_lock() {
                // Between our open and our lock, a remover may have unlinked the file we
                // locked; only the file still at `path` counts.
                Ok(()) if is_same_file(&file, &path) => {
                    write_pid(&file, &path);
                    return Ok(file);
                }
                Ok(()) | Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => {
                    return Err(SessionError::io("lock the session", path, e));
                }
            }
        }
        if attempt >= LOCK_ATTEMPTS {
            return Err(SessionError::Locked {
                id: id.to_owned(),
                dir: dir.to_owned(),
            });
        }
        attempt += 1;
        std::thread::sleep(LOCK_RETRY);
    }
}

fn is_same_file(file: &File, path: &Path) -> bool {
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Records the holder's pid in the lock file, for people looking at the session.
fn write_pid(file: &File, path: &Path) {
    let pid = format!("{}\n", std::process::id());
    if let Err(e) = file
        .set_len(0)
        .and_then(|()| file.write_all_at(pid.as_bytes(), 0))
    {
        log::warn!(
            "cannot write the pid into the session lock: {e} ({})",
            path.display()
        );
    }
}

/// Whether some process holds the session lock in `dir` right now. Probes with a shared
/// lock, released at once.
fn is_locked(dir: &Path) -> bool {
    match File::open(dir.join(LOCK_FILE)) {
        Ok(file) => matches!(file.try_lock_shared(), Err(TryLockError::WouldBlock)),
        Err(_) => false,
    }
}

fn read_entry(id: String, dir: PathBuf) -> SessionEntry {
    let progress = match load_progress_file(&id, &dir) {
        Ok(Some(p)) => Ok(p),
        Ok(None) => Err(SessionError::NoProgress { dir: dir.clone() }),
        Err(e) => Err(e),
    };
    SessionEntry {
        disk_bytes: fsutil::dir_size(&dir),
        locked: is_locked(&dir),
        progress,
        id,
        dir,
    }
}

fn load_progress_file(id: &str, dir: &Path) -> Result<Option<Progress>, SessionError> {
    let path = dir.join(PROGRESS_FILE);
    let Some(bytes) = read_state_file(&path)? else {
        return Ok(None);
    };
    let progress = Progress::from_json(&bytes).map_err(|reason| SessionError::Corrupt {
        path: path.clone(),
        reason,
    })?;
    if progress.session_id != id {
        return Err(SessionError::Corrupt {
            path,
            reason: format!("it belongs to session {}, not to {id}", progress.session_id),
        });
    }
    Ok(Some(progress))
}

/// The bytes of a state file, `None` when it does not exist.
fn read_state_file(path: &Path) -> Result<Option<Vec<u8>>, SessionError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SessionError::io("read the session file", path, e)),
    }
}

/// Parses a JSON state file; the error says why it cannot be trusted.
fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err("the file is empty".to_owned());
    }
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Eof => format!("the file is truncated ({e})"),
        serde_json::error::Category::Data => {
            format!("the content does not match the expected layout ({e})")
        }
        _ => format!("the file is not valid JSON ({e})"),
    })
}

/// Takes the session's lock (refusing a session in use), then removes its directory.
fn remove_locked(id: &str, dir: &Path) -> Result<u64, SessionError> {
    let lock = lock_session(id, dir, false)?;
    let bytes = fsutil::dir_size(dir);
    remove_dir_holding_lock(dir)?;
    drop(lock);
    Ok(bytes)
}

/// Removes a session directory whose lock the caller holds: the content first, the lock
/// file last. If another process created a new lock file meanwhile (it now owns a fresh
/// session of the same id), the directory is left to it.
fn remove_dir_holding_lock(dir: &Path) -> Result<(), SessionError> {
    remove_contents(dir, &[LOCK_FILE])?;
    let lock_path = dir.join(LOCK_FILE);
    match fs::remove_file(&lock_path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(SessionError::io("remove the session lock", lock_path, e)),
    }
    match fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e)
            if e.kind() == io::ErrorKind::NotFound
                || e.kind() == io::ErrorKind::DirectoryNotEmpty =>
        {
            Ok(())
        }
        Err(e) => Err(SessionError::io("remove the session directory", dir, e)),
    }
}

/// Removes everything in `dir` but the entries named in `keep`, `progress.json` first (made
/// durable before anything else goes).
fn remove_contents(dir: &Path, keep: &[&str]) -> Result<(), SessionError> {
    let progress = dir.join(PROGRESS_FILE);
    match fs::remove_file(&progress) {
        Ok(()) => {
            fsutil::sync_dir(dir)
                .map_err(|e| SessionError::io("sync the session directory", dir, e))?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(SessionError::io("remove the session progress", progress, e)),
    }
    let entries =
        fs::read_dir(dir).map_err(|e| SessionError::io("list the session directory", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| SessionError::io("list the session directory", dir, e))?;
        if keep.iter().any(|k| entry.file_name() == *k) {
            continue;
        }
        let path = entry.path();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        let removed = if is_dir {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        match removed {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(SessionError::io("remove a session file", path, e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::identity::tests::{sample_input, sample_settings};
    use crate::session::progress::{JobStatus, Step, VideoSummary};
    use crate::session::session_id;

    fn store() -> (tempfile::TempDir, SessionStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SessionStore::at(dir.path().join("sessions"));
        (dir, store)
    }

    fn progress_for(id: &str, input: InputIdentity) -> Progress {
        let mut p = Progress::new(id, input, VideoSummary::default(), sample_settings(), None);
        p.chunks_total = 4;
        p
    }

    /// Rewrites the saved progress of `session` with `last_updated` set `age` ago.
    fn age_session(session: &Session, age: Duration) {
        let mut p = session.load_progress().unwrap().unwrap();
        p.last_updated = fsutil::iso8601(SystemTime::now() - age);
        fsutil::write_atomic(&session.progress_path(), &p.to_json()).unwrap();
    }

    #[test]
    fn acquire_creates_the_layout_and_records_the_pid() {
        let (_tmp, store) = store();
        let session = store.acquire("0123456789ab").unwrap();
        assert_eq!(session.id(), "0123456789ab");
        assert_eq!(session.dir(), store.root().join("0123456789ab"));
        assert!(session.chunks_dir().is_dir());
        assert!(session.logs_dir().is_dir());
        let pid = fs::read_to_string(session.dir().join(LOCK_FILE)).unwrap();
        assert_eq!(pid.trim(), std::process::id().to_string());
        assert_eq!(session.load_progress().unwrap(), None);
        let entry = store.entry("0123456789ab").unwrap();
        assert_eq!(entry.holder_pid(), Some(std::process::id()));
        assert!(matches!(
            entry.progress,
            Err(SessionError::NoProgress { .. })
        ));
    }

    #[test]
    fn second_holder_is_refused_and_the_lock_is_released_on_drop() {
        let (_tmp, store) = store();
        let first = store.acquire("abc").unwrap();
        let err = store.acquire("abc").unwrap_err();
        let SessionError::Locked { id, dir } = &err else {
            panic!("expected Locked, got {err:?}");
        };
        assert_eq!(id, "abc");
        assert_eq!(dir, first.dir());
        assert_eq!(
            err.to_string(),
            format!(
                "session abc is being processed by another reframe process: wait for it to finish or stop it ({})",
                first.dir().display()
            )
        );
        // Another store object on the same root is another holder too.
        assert!(matches!(
            SessionStore::at(store.root()).acquire("abc"),
            Err(SessionError::Locked { .. })
        ));
        // Other sessions are independent.
        let _other = store.acquire("def").unwrap();
        drop(first);
        let again = store.acquire("abc").unwrap();
        assert_eq!(again.id(), "abc");
    }

    #[test]
    fn a_lock_held_by_another_process_is_refused() {
        let (_tmp, store) = store();
        drop(store.acquire("abc").unwrap());
        let lock_path = store.root().join("abc").join(LOCK_FILE);
        // util-linux `flock` takes the same kind of lock (flock(2)) in a separate process and
        // holds it while `cat` runs; `cat` (without the lock's fd) exits when stdin closes.
        let Ok(mut child) = std::process::Command::new("flock")
            .args(["--exclusive", "--close"])
            .arg(&lock_path)
            .arg("cat")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
        else {
            eprintln!("flock(1) is not installed; cross-process lock test not run");
            return;
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !is_locked(&store.root().join("abc")) {
            assert!(
                std::time::Instant::now() < deadline,
                "flock never took the lock"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let refused = store.acquire("abc");
        let listed_locked = store.list()[0].locked;
        let remove_refused = store.remove("abc");
        drop(child.stdin.take());
        child.wait().unwrap();
        assert!(matches!(refused, Err(SessionError::Locked { .. })));
        assert!(listed_locked);
        assert!(matches!(remove_refused, Err(SessionError::Locked { .. })));
        // The kernel released the lock when the holder died.
        assert!(store.acquire("abc").is_ok());
    }

    #[test]
    fn progress_round_trip_and_last_updated() {
        let (_tmp, store) = store();
        let session = store.acquire("abc").unwrap();
        let mut p = progress_for("abc", sample_input());
        p.last_updated = "2000-01-01T00:00:00Z".to_owned();
        p.begin_step(Step::Validate);
        p.mark_chunk_done(3);
        session.save_progress(&mut p).unwrap();
        assert_ne!(p.last_updated, "2000-01-01T00:00:00Z");
        assert_eq!(session.load_progress().unwrap(), Some(p.clone()));

        let mut foreign = progress_for("other", sample_input());
        assert!(matches!(
            session.save_progress(&mut foreign),
            Err(SessionError::IdMismatch { .. })
        ));
        assert_eq!(session.load_progress().unwrap(), Some(p));
    }

    #[test]
    fn corrupt_progress_is_reported_not_trusted() {
        let (_tmp, store) = store();
        let session = store.acquire("abc").unwrap();
        let mut p = progress_for("abc", sample_input());
        session.save_progress(&mut p).unwrap();
        let good = fs::read(session.progress_path()).unwrap();

        let mut wrong_version: serde_json::Value = serde_json::from_slice(&good).unwrap();
        wrong_version["schema_version"] = 99.into();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (good[..good.len() / 3].to_vec(), "truncated"),
            (b"garbage\x00\xff".to_vec(), "not valid JSON"),
            (Vec::new(), "empty"),
            (wrong_version.to_string().into_bytes(), "schema version 99"),
        ];
        for (bytes, expected) in cases {
            fs::write(session.progress_path(), &bytes).unwrap();
            let err = session.load_progress().unwrap_err();
            let SessionError::Corrupt { path, reason } = &err else {
                panic!("expected Corrupt, got {err:?}");
            };
            assert_eq!(path, &session.progress_path());
            assert!(reason.contains(expected), "{reason}");
            assert!(err.to_string().contains("restart"), "{err}");
            let entry = store.entry("abc").unwrap();
            assert!(matches!(entry.progress, Err(SessionError::Corrupt { .. })));
        }

        // A progress record copied from another session is not this session's.
        let mut other = progress_for("xyz", sample_input());
        other.session_id = "xyz".to_owned();
        fs::write(session.progress_path(), other.to_json()).unwrap();
        let err = session.load_progress().unwrap_err();
        assert!(err.to_string().contains("belongs to session xyz"), "{err}");
    }

    #[test]
    fn stray_temp_files_are_ignored_and_cleaned_on_acquire() {
        let (_tmp, store) = store();
        let session = store.acquire("abc").unwrap();
        let mut p = progress_for("abc", sample_input());
        session.save_progress(&mut p).unwrap();
        let stray = session.dir().join(".progress.json.reframe-tmp-99999-0-0");
        fs::write(&stray, b"{\"schema_version\": 1, \"sess").unwrap();
        let chunk_stray = session.chunks_dir().join(".c0.reframe-tmp-99999-1-0");
        fs::write(&chunk_stray, b"half").unwrap();
        assert_eq!(session.load_progress().unwrap(), Some(p.clone()));
        drop(session);

        let session = store.acquire("abc").unwrap();
        assert!(!stray.exists());
        assert!(!chunk_stray.exists());
        assert_eq!(session.load_progress().unwrap(), Some(p));
    }

    #[test]
    fn reset_keeps_the_lock_and_the_logs() {
        let (_tmp, store) = store();
        let session = store.acquire("abc").unwrap();
        let mut p = progress_for("abc", sample_input());
        session.save_progress(&mut p).unwrap();
        session.write_json("plan.json", &vec![1, 2, 3]).unwrap();
        fs::write(session.chunks_dir().join("c0.mkv"), b"chunk").unwrap();
        fs::write(session.logs_dir().join("run.log"), b"log").unwrap();

        session.reset().unwrap();
        assert_eq!(session.load_progress().unwrap(), None);
        assert_eq!(session.read_json::<Vec<u32>>("plan.json").unwrap(), None);
        assert!(session.chunks_dir().is_dir());
        assert_eq!(fs::read_dir(session.chunks_dir()).unwrap().count(), 0);
        assert!(session.logs_dir().join("run.log").exists());
        assert!(matches!(
            store.acquire("abc"),
            Err(SessionError::Locked { .. })
        ));
        // Still usable after the reset.
        session.save_progress(&mut p).unwrap();
        assert!(session.load_progress().unwrap().is_some());
    }

    #[test]
    fn other_json_files_are_atomic_and_checked() {
        #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
        struct Plan {
            chunks: Vec<(u64, u64)>,
        }
        let (_tmp, store) = store();
        let session = store.acquire("abc").unwrap();
        assert_eq!(session.read_json::<Plan>("plan.json").unwrap(), None);
        let plan = Plan {
            chunks: vec![(0, 125), (125, 250)],
        };
        session.write_json("plan.json", &plan).unwrap();
        assert_eq!(session.read_json::<Plan>("plan.json").unwrap(), Some(plan));

        let path = session.dir().join("plan.json");
        fs::write(&path, b"{\"chunks\": [[0, 12").unwrap();
        let err = session.read_json::<Plan>("plan.json").unwrap_err();
        assert!(
            matches!(&err, SessionError::Corrupt { reason, .. } if reason.contains("truncated"))
        );
        fs::write(&path, b"{\"chunks\": \"no\"}").unwrap();
        let err = session.read_json::<Plan>("plan.json").unwrap_err();
        assert!(matches!(&err, SessionError::Corrupt { reason, .. } if reason.contains("layout")));

        assert!(session.remove_json("plan.json").unwrap());
        assert!(!session.remove_json("plan.json").unwrap());

        for bad in [
            "",
            "lock",
            "progress.json",
            "../x.json",
            "a/b.json",
            ".hidden",
        ] {
            assert!(
                matches!(
                    session.write_json(bad, &1),
                    Err(SessionError::InvalidName { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn list_reports_progress_disk_usage_and_locks() {
        let (_tmp, store) = store();
        assert!(store.list().is_empty());
        let held = store.acquire("aaa").unwrap();
        let mut p = progress_for("aaa", sample_input());
        held.save_progress(&mut p).unwrap();
        fs::write(held.chunks_dir().join("c0.mkv"), vec![0u8; 1000]).unwrap();
        let released = store.acquire("bbb").unwrap();
        fs::write(released.progress_path(), b"{").unwrap();
        drop(released);
        // Not session directories: ignored.
        fs::write(store.root().join("stray-file"), b"x").unwrap();
        fs::create_dir(store.root().join("bad name")).unwrap();

        let entries = store.list();
        assert_eq!(
            entries.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            ["aaa", "bbb"]
        );
        assert!(entries[0].locked);
        assert_eq!(entries[0].progress.as_ref().unwrap(), &p);
        assert!(entries[0].disk_bytes >= 1000);
        assert!(entries[0].last_updated().is_some());
        assert!(!entries[1].locked);
        assert!(matches!(
            entries[1].progress,
            Err(SessionError::Corrupt { .. })
        ));
        // Listing did not disturb the holder, nor block the next acquire.
        assert!(store.acquire("bbb").is_ok());
        assert!(matches!(
            store.entry("zzz"),
            Err(SessionError::NotFound { .. })
        ));
    }

    #[test]
    fn find_for_input_matches_path_size_and_mtime() {
        let (_tmp, store) = store();
        let input = sample_input();
        let mut other_settings = sample_settings();
        other_settings.scale = 4.0;
        let id_a = session_id(&input, &sample_settings());
        let id_b = session_id(&input, &other_settings);
        let touched = InputIdentity {
            mtime_secs: input.mtime_secs + 1,
            ..input.clone()
        };
        let id_c = session_id(&touched, &sample_settings());

        for (id, ident, settings) in [
            (&id_a, &input, sample_settings()),
            (&id_b, &input, other_settings),
            (&id_c, &touched, sample_settings()),
        ] {
            let session = store.acquire(id).unwrap();
            let mut p = Progress::new(
                id.as_str(),
                ident.clone(),
                VideoSummary::default(),
                settings,
                None,
            );
            session.save_progress(&mut p).unwrap();
        }
        let mut found: Vec<String> = store
            .find_for_input(&input)
            .into_iter()
            .map(|e| e.id)
            .collect();
        found.sort();
        let mut expected = vec![id_a, id_b];
        expected.sort();
        assert_eq!(found, expected);
        assert_eq!(store.find_for_input(&touched).len(), 1);
        let elsewhere = InputIdentity {
            path: PathBuf::from("/elsewhere.mp4"),
            ..input
        };
        assert!(store.find_for_input(&elsewhere).is_empty());
    }

    #[test]
    fn clean_removes_old_unlocked_sessions_only() {
        let (_tmp, store) = store();
        let hour = Duration::from_secs(3600);
        let make = |id: &str| {
            let session = store.acquire(id).unwrap();
            let mut p = progress_for(id, sample_input());
            session.save_progress(&mut p).unwrap();
            fs::write(session.chunks_dir().join("c0.mkv"), vec![0u8; 500]).unwrap();
            session
        };
        let old = make("old");
        age_session(&old, 3 * hour);
        drop(old);
        drop(make("recent"));
        let old_locked = make("oldlocked");
        age_session(&old_locked, 3 * hour);
        let corrupt = make("corrupt");
        fs::write(corrupt.progress_path(), b"{\"sche").unwrap();
        drop(corrupt);

        let report = store.clean(Some(2 * hour));
        assert_eq!(
            report
                .removed
                .iter()
                .map(|r| r.id.as_str())
                .collect::<Vec<_>>(),
            ["old"]
        );
        assert!(report.removed[0].bytes_freed >= 500);
        assert_eq!(report.bytes_freed(), report.removed[0].bytes_freed);
        assert_eq!(report.skipped_locked, ["oldlocked"]);
        // "recent", and "corrupt" whose directory was modified just now.
        assert_eq!(report.kept_recent, 2);
        assert!(report.failed.is_empty());
        assert!(!store.root().join("old").exists());

        let report = store.clean(None);
        let mut removed: Vec<_> = report.removed.iter().map(|r| r.id.as_str()).collect();
        removed.sort();
        assert_eq!(removed, ["corrupt", "recent"]);
        assert_eq!(report.skipped_locked, ["oldlocked"]);
        assert_eq!(
            store
                .list()
                .iter()
                .map(|e| e.id.as_str())
                .collect::<Vec<_>>(),
            ["oldlocked"]
        );
        assert_eq!(
            old_locked.load_progress().unwrap().unwrap().status,
            JobStatus::Created
        );
    }

    #[test]
    fn remove_and_delete() {
        let (_tmp, store) = store();
        let session = store.acquire("abc").unwrap();
        fs::write(session.chunks_dir().join("c0.mkv"), vec![0u8; 300]).unwrap();
        assert!(matches!(
            store.remove("abc"),
            Err(SessionError::Locked { .. })
        ));
        assert!(session.dir().exists());
        drop(session);
        assert!(store.remove("abc").unwrap() >= 300);
        assert!(!store.root().join("abc").exists());
        assert!(matches!(
            store.remove("abc"),
            Err(SessionError::NotFound { .. })
        ));
        assert!(matches!(
            store.remove("../etc"),
            Err(SessionError::InvalidId { .. })
        ));
        assert!(matches!(
            store.acquire(""),
            Err(SessionError::InvalidId { .. })
        ));

        let session = store.acquire("def").unwrap();
        fs::write(session.chunks_dir().join("c0.mkv"), vec![0u8; 200]).unwrap();
        let dir = session.dir().to_owned();
        assert!(session.delete().unwrap() >= 200);
        assert!(!dir.exists());
        // A deleted session can be started again from scratch.
        let again = store.acquire("def").unwrap();
        assert_eq!(again.load_progress().unwrap(), None);
    }

    #[test]
    fn default_root_uses_the_env_var_then_the_cache_dir() {
        let root = default_root(Some(OsString::from("/tmp/reframe-cache"))).unwrap();
        assert_eq!(root, PathBuf::from("/tmp/reframe-cache/sessions"));
        let relative = default_root(Some(OsString::from("cache"))).unwrap();
        assert!(relative.is_absolute());
        assert!(relative.ends_with("cache/sessions"));
        // Empty counts as unset.
        if let Ok(root) = default_root(Some(OsString::new())) {
            assert!(root.ends_with("reframe/sessions"), "{}", root.display());
        }
    }
}
