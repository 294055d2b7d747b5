//! Small file-system helpers shared by the whole crate: crash-safe (atomic) file replacement,
//! free space and disk usage, timestamps and digests, and where reframe's caches live.
//!
//! Every state file reframe keeps (session progress, plans, user presets, GUI settings) is
//! written with [`write_atomic`], so that a `kill -9` or a power cut at any instruction leaves
//! either the old or the new content on disk, never a mix. A killed writer can leave its
//! temporary file behind; those are recognised by [`is_atomic_temp`] and swept by
//! [`remove_atomic_temps`].

use std::ffi::{CString, OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use md5::{Digest, Md5};

/// The environment variable that moves reframe's cache folder.
pub const CACHE_DIR_ENV: &str = "REFRAME_CACHE_DIR";

/// reframe's cache folder (sessions, decoded audio, the tools found to run):
/// `$REFRAME_CACHE_DIR`, made absolute, when it is set and not empty, else the user's cache
/// folder (`~/.cache/reframe` on Linux); `Ok(None)` when there is none. Nothing is created.
pub fn cache_dir() -> io::Result<Option<PathBuf>> {
    cache_dir_from(std::env::var_os(CACHE_DIR_ENV))
}

/// [`cache_dir`] with the variable's value given (for tests).
pub fn cache_dir_from(env_cache_dir: Option<OsString>) -> io::Result<Option<PathBuf>> {
    if let Some(dir) = env_cache_dir.filter(|d| !d.is_empty()) {
        return std::path::absolute(PathBuf::from(dir)).map(Some);
    }
    Ok(directories::ProjectDirs::from("", "", "reframe").map(|d| d.cache_dir().to_owned()))
}

/// Marker inside the name of every temporary file made by [`write_atomic`].
const TEMP_MARKER: &str = ".reframe-tmp-";

/// Distinguishes temporary files made by different threads of one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Replaces `path` with `bytes` atomically.
///
/// Writes a uniquely named temporary file in the same directory, flushes it to disk
/// (`sync_all`), renames it over `path`, then fsyncs the directory so the rename itself is
/// durable. On error the temporary file is removed and `path` keeps its previous content.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a file path: {}", path.display()),
        )
    })?;
    let dir = parent_dir(path);
    let temp = dir.join(temp_name(file_name));

    let result = write_synced(&temp, bytes).and_then(|()| fs::rename(&temp, path));
    if let Err(e) = result {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    sync_dir(dir)
}

/// The directory holding `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// `.<name>.reframe-tmp-<pid>-<counter>-<nanos>`: hidden, unique per process and call.
fn temp_name(file_name: &OsStr) -> PathBuf {
    let counter = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mut name = std::ffi::OsString::from(".");
    name.push(file_name);
    name.push(format!(
        "{TEMP_MARKER}{}-{counter}-{nanos}",
        std::process::id()
    ));
    PathBuf::from(name)
}

fn write_synced(temp: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).open(temp)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Makes a rename or unlink inside `dir` durable. File systems that cannot fsync a directory
/// (they report `EINVAL`) are accepted as they are.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    match File::open(dir).and_then(|d| d.sync_all()) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()),
        other => other,
    }
}

/// True for the name of a temporary file left by [`write_atomic`] (for example by a writer
/// killed between writing and renaming). Such files never hold committed state.
pub fn is_atomic_temp(file_name: &OsStr) -> bool {
    let bytes = file_name.as_bytes();
    bytes.starts_with(b".")
        && bytes
            .windows(TEMP_MARKER.len())
            .any(|w| w == TEMP_MARKER.as_bytes())
}

/// Removes the temporary files of [`write_atomic`] found directly in `dir`; returns how many.
///
/// Only call this while no other writer can be active in `dir` (for a session: while holding
/// its lock). A missing directory counts as clean.
pub fn remove_atomic_temps(dir: &Path) -> io::Result<usize> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        if is_atomic_temp(&entry.file_name()) && entry.file_type()?.is_file() {
            match fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

/// Bytes available to an unprivileged user on the file system holding `path`
/// (`statvfs`: `f_bavail * f_frsize`).
pub fn available_space(path: &Path) -> io::Result<u64> {
    let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("path contains a NUL byte: {}", path.display()),
        )
    })?;
    // SAFETY: `statvfs` is plain old data, valid when zeroed; `c_path` is a valid
    // NUL-terminated string and `stat` a valid, writable out-pointer for the call.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    #[allow(clippy::useless_conversion)] // the field widths differ between platforms
    let bytes = u64::from(stat.f_bavail).saturating_mul(u64::from(stat.f_frsize));
    Ok(bytes)
}

/// Total size in bytes of the regular files under `path` (or of `path` itself if it is a
/// file). Symbolic links are not followed; unreadable entries are skipped.
pub fn dir_size(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if meta.is_file() {
        return meta.len();
    }
    if !meta.is_dir() {
        return 0;
    }
    let Ok(entries) = fs::read_dir(path) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| dir_size(&entry.path()))
        .sum()
}

/// The current time in UTC as ISO 8601 / RFC 3339 with seconds: `2026-11-23T18:40:00Z`.
pub fn now_iso8601() -> String {
    iso8601(SystemTime::now())
}

/// `time` in UTC as ISO 8601 / RFC 3339 with seconds: `2026-11-23T18:40:00Z`.
pub fn iso8601(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

/// Parses a timestamp written by [`now_iso8601`] (any RFC 3339 UTC form is accepted).
pub fn parse_iso8601(text: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(text.trim()).ok()
}

/// MD5 of `bytes` as 32 lowercase hex digits.
pub fn md5_hex(bytes: &[u8]) -> String {
    let digest = Md5::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes for people: "812 B", "3.4 MiB", "1.2 GiB".
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    use std::time::Duration;

    #[test]
    fn write_atomic_creates_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomic(&path, b"old").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"old");
        write_atomic(&path, b"new content").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new content");
        // Nothing but the target is left in the directory.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![OsStr::new("state.json").to_owned()]);
    }

    #[test]
    fn leftover_temp_from_killed_writer_never_mixes_into_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("progress.json");
        write_atomic(&path, b"{\"old\":true}").unwrap();

        // A writer killed after writing half of its temp file, before the rename.
        let stray = dir.path().join(temp_name(OsStr::new("progress.json")));
        fs::write(&stray, b"{\"new\":tr").unwrap();
        assert!(is_atomic_temp(stray.file_name().unwrap()));
        assert_eq!(fs::read(&path).unwrap(), b"{\"old\":true}");

        // The next writer is not disturbed by the leftover and commits whole content.
        write_atomic(&path, b"{\"new\":true}").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"{\"new\":true}");

        assert_eq!(remove_atomic_temps(dir.path()).unwrap(), 1);
        assert!(!stray.exists());
        assert!(path.exists());
        assert_eq!(remove_atomic_temps(dir.path()).unwrap(), 0);
    }

    #[test]
    fn concurrent_readers_see_old_or_new_never_a_mix() {
        let dir = tempfile::tempdir().unwrap();
        let path = Arc::new(dir.path().join("state"));
        let a = vec![b'a'; 256 * 1024];
        let b = vec![b'b'; 300 * 1024];
        write_atomic(&path, &a).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (path, stop, a, b) = (path.clone(), stop.clone(), a.clone(), b.clone());
            std::thread::spawn(move || {
                let mut reads = 0;
                while !stop.load(Ordering::Relaxed) {
                    let got = fs::read(&*path).unwrap();
                    assert!(got == a || got == b, "read a mix of {} bytes", got.len());
                    reads += 1;
                }
                reads
            })
        };
        for i in 0..20 {
            write_atomic(&path, if i % 2 == 0 { &b } else { &a }).unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
    }

    #[test]
    fn write_atomic_into_missing_dir_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("x.json");
        assert!(write_atomic(&path, b"x").is_err());
        assert!(write_atomic(Path::new("/"), b"x").is_err());
    }

    #[test]
    fn temp_names_are_recognised_and_unique() {
        let one = temp_name(OsStr::new("plan.json"));
        let two = temp_name(OsStr::new("plan.json"));
        assert_ne!(one, two);
        assert!(is_atomic_temp(one.as_os_str()));
        assert!(!is_atomic_temp(OsStr::new("plan.json")));
        assert!(!is_atomic_temp(OsStr::new(".hidden")));
        assert!(!is_atomic_temp(OsStr::new("x.reframe-tmp-1")));
    }

    #[test]
    fn dir_size_counts_files_recursively() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a"), vec![0u8; 100]).unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        fs::write(dir.path().join("sub").join("b"), vec![0u8; 23]).unwrap();
        assert_eq!(dir_size(dir.path()), 123);
        assert_eq!(dir_size(&dir.path().join("a")), 100);
        assert_eq!(dir_size(&dir.path().join("nope")), 0);
    }

    #[test]
    fn available_space_reports_something() {
        let dir = tempfile::tempdir().unwrap();
        assert!(available_space(dir.path()).unwrap() > 0);
        assert!(available_space(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn iso8601_format_and_round_trip() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_459_200);
        let text = iso8601(t);
        assert_eq!(text, "2026-11-23T18:40:00Z");
        assert_eq!(parse_iso8601(&text), Some(t));
        let now = now_iso8601();
        assert_eq!(now.len(), 20);
        assert!(now.ends_with('Z'));
        assert!(parse_iso8601(&now).is_some());
        assert_eq!(parse_iso8601("yesterday"), None);
    }

    #[test]
    fn md5_hex_known_values() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
    }

    #[test]
    fn human_bytes_picks_a_readable_unit() {
        assert_eq!(human_bytes(812), "812 B");
        assert_eq!(human_bytes(3 * 1024 * 1024 + 400 * 1024), "3.4 MiB");
        assert_eq!(human_bytes(5 << 30), "5.0 GiB");
    }
}
