//! Finding the external programs reframe drives (ffmpeg, ffprobe, mkvmerge) and naming input
//! files to them safely.
//!
//! Everything else in `media` takes a [`Tools`] so that the program paths are decided once, at
//! start-up, with one clear error ("install it or set REFRAME_FFMPEG") instead of a confusing
//! spawn failure deep inside a job. [`file_arg`] exists because a file name is attacker- or
//! accident-controlled text: `-i -y.mp4` would be read as an option and `-i http:x.mp4` or
//! `-i concat:a|b` as a protocol; `file:/abs/path` is neither.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Environment variable holding an explicit path to ffmpeg.
pub const FFMPEG_ENV: &str = "REFRAME_FFMPEG";
/// Environment variable holding an explicit path to ffprobe.
pub const FFPROBE_ENV: &str = "REFRAME_FFPROBE";
/// Environment variable holding an explicit path to mkvmerge.
pub const MKVMERGE_ENV: &str = "REFRAME_MKVMERGE";

/// Paths of the ffmpeg and ffprobe executables, each checked to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tools {
    pub ffmpeg: PathBuf,
    pub ffprobe: PathBuf,
}

/// Why a tool could not be used. Every message says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// Not set by environment variable and not on `PATH`.
    #[error("{tool} was not found on PATH: {hint}")]
    NotFound { tool: &'static str, hint: String },
    /// The environment variable names something that is not an executable file.
    #[error(
        "{var} does not name an executable file: set it to the full path of {tool}, or unset it to search PATH: {}",
        path.display()
    )]
    BadOverride {
        tool: &'static str,
        var: &'static str,
        path: PathBuf,
    },
    /// The executable exists but `<tool> -version` did not succeed.
    #[error(
        "{tool} is installed but does not run ({detail}): reinstall it, or set {var} to a working {tool}: {}",
        path.display()
    )]
    NotRunnable {
        tool: &'static str,
        var: &'static str,
        path: PathBuf,
        detail: String,
    },
}

/// What is needed to find one tool.
struct ToolSpec {
    /// Executable name searched on `PATH`.
    name: &'static str,
    /// Environment variable overriding the search.
    var: &'static str,
    /// Debian/Ubuntu package providing it.
    package: &'static str,
    /// Argument that prints the version and exits 0.
    version_arg: &'static str,
}

const FFMPEG: ToolSpec = ToolSpec {
    name: "ffmpeg",
    var: FFMPEG_ENV,
    package: "ffmpeg",
    version_arg: "-version",
};
const FFPROBE: ToolSpec = ToolSpec {
    name: "ffprobe",
    var: FFPROBE_ENV,
    package: "ffmpeg",
    version_arg: "-version",
};
const MKVMERGE: ToolSpec = ToolSpec {
    name: "mkvmerge",
    var: MKVMERGE_ENV,
    package: "mkvtoolnix",
    version_arg: "--version",
};

impl Tools {
    /// Finds ffmpeg and ffprobe: `REFRAME_FFMPEG` / `REFRAME_FFPROBE` when set, else the first
    /// executable of that name on `PATH`; each is run once with `-version` to prove it works
    /// (both at once, and only the first time this binary is seen: see [`verify_once`]).
    pub fn locate() -> Result<Tools, ToolError> {
        let (ffmpeg, ffprobe) = std::thread::scope(|scope| {
            let ffprobe = scope.spawn(|| locate_spec(&FFPROBE));
            let ffmpeg = locate_spec(&FFMPEG);
            (ffmpeg, ffprobe.join())
        });
        let ffprobe = match ffprobe {
            Ok(found) => found,
            // The check itself panicked: only a bug could; check again here to report it.
            Err(_) => locate_spec(&FFPROBE),
        };
        Ok(Tools {
            ffmpeg: ffmpeg?,
            ffprobe: ffprobe?,
        })
    }
}

/// Finds mkvmerge (package mkvtoolnix): `REFRAME_MKVMERGE` when set, else `PATH`; checked with
/// `mkvmerge --version`. Only the pipe path of the pipeline needs it, so it is located apart.
pub fn locate_mkvmerge() -> Result<PathBuf, ToolError> {
    locate_spec(&MKVMERGE)
}

fn locate_spec(spec: &ToolSpec) -> Result<PathBuf, ToolError> {
    let override_path = std::env::var_os(spec.var).filter(|v| !v.is_empty());
    let path = find_tool(
        spec,
        override_path.as_deref(),
        std::env::var_os("PATH").as_deref(),
    )?;
    let record = crate::fsutil::cache_dir()
        .ok()
        .flatten()
        .map(|dir| dir.join(VERIFIED_FILE));
    verify_once(spec, &path, record.as_deref())?;
    Ok(path)
}

/// The file, in reframe's cache folder, listing the tools that passed their version check.
const VERIFIED_FILE: &str = "tools-verified.txt";
/// How many tools it remembers (the latest ones).
const VERIFIED_KEEP: usize = 16;

/// [`verify_runs`], unless this very binary passed it before. A check is a process start
/// (0.1–0.2 s: ffmpeg loads its libraries) per tool, paid by every `reframe run` and every
/// worker; as cargo remembers `rustc -vV`, the binary is known by its path, inode, size and
/// modification time in `record`, so an upgraded or replaced tool is checked again.
/// Without a record (no cache folder), every call checks.
fn verify_once(spec: &ToolSpec, path: &Path, record: Option<&Path>) -> Result<(), ToolError> {
    let key = verified_key(path);
    let known = record
        .and_then(|r| std::fs::read_to_string(r).ok())
        .unwrap_or_default();
    if let Some(key) = &key
        && known.lines().any(|line| line == key)
    {
        return Ok(());
    }
    verify_runs(spec, path)?;
    if let (Some(record), Some(key)) = (record, key) {
        remember_verified(record, &key);
    }
    Ok(())
}

/// Adds `key` to the record, keeping the latest [`VERIFIED_KEEP`]. Two processes writing at
/// once may lose one key: that tool is only checked once more.
fn remember_verified(record: &Path, key: &str) {
    // ffmpeg and ffprobe are checked side by side: one writer at a time in this process.
    static WRITING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _writing = WRITING.lock();
    let known = std::fs::read_to_string(record).unwrap_or_default();
    let mut lines: Vec<&str> = known
        .lines()
        .filter(|l| !l.is_empty() && *l != key)
        .collect();
    lines.push(key);
    let start = lines.len().saturating_sub(VERIFIED_KEEP);
    let text = lines[start..].join("\n") + "\n";
    let written = record
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| crate::fsutil::write_atomic(record, text.as_bytes()));
    if let Err(e) = written {
        log::debug!(
            "cannot record the tools found to run in {}: {e}",
            record.display()
        );
    }
}

/// `inode size mtime path` of the file `path` resolves to; `None` where it cannot be read
/// or its name cannot be written on one line.
fn verified_key(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    let name = path.to_str().filter(|n| !n.contains('\n'))?;
    Some(format!(
        "{} {} {}.{:09} {name}",
        meta.ino(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec()
    ))
}

/// The path decision, apart from the process environment so that it can be tested.
fn find_tool(
    spec: &ToolSpec,
    override_path: Option<&OsStr>,
    path_var: Option<&OsStr>,
) -> Result<PathBuf, ToolError> {
    if let Some(explicit) = override_path {
        let path = PathBuf::from(explicit);
        return if is_executable_file(&path) {
            Ok(path)
        } else {
            Err(ToolError::BadOverride {
                tool: spec.name,
                var: spec.var,
                path,
            })
        };
    }
    path_var
        .into_iter()
        .flat_map(std::env::split_paths)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(spec.name))
        .find(|candidate| is_executable_file(candidate))
        .ok_or_else(|| ToolError::NotFound {
            tool: spec.name,
            hint: format!(
                "install it (Debian/Ubuntu: sudo apt install {}) or set {} to its full path",
                spec.package, spec.var
            ),
        })
}

fn is_executable_file(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn verify_runs(spec: &ToolSpec, path: &Path) -> Result<(), ToolError> {
    let not_runnable = |detail: String| ToolError::NotRunnable {
        tool: spec.name,
        var: spec.var,
        path: path.to_path_buf(),
        detail,
    };
    let output = Command::new(path)
        .arg(spec.version_arg)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| not_runnable(e.to_string()))?;
    if output.status.success() {
        log::debug!(
            "{} found: {} ({})",
            spec.name,
            path.display(),
            String::from_utf8_lossy(output.stdout.split(|&b| b == b'\n').next().unwrap_or(&[]))
        );
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let first = stderr.lines().map(str::trim).find(|l| !l.is_empty());
        Err(not_runnable(match first {
            Some(line) => format!(
                "`{}` exited with {}: {line}",
                spec.version_arg, output.status
            ),
            None => format!("`{}` exited with {}", spec.version_arg, output.status),
        }))
    }
}

/// Names `path` for ffmpeg/ffprobe as `file:` + its absolute path, so that no file name (a
/// leading `-`, a colon as in `http:x`, `|`, spaces, quotes, any bytes) is taken for an option
/// or a protocol. A relative path is made absolute against the current directory; the file
/// need not exist. Pass the result as one argument (after `-i`, or as an output).
pub fn file_arg(path: &Path) -> OsString {
    // `absolute` fails only for an empty path or an unreadable current directory; a relative
    // `file:` URL is still never an option nor another protocol, so fall back to it.
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut arg = OsString::from("file:");
    arg.push(absolute.as_os_str());
    arg
}

/// `secs` in the microseconds ffmpeg reads, rounded down: a seek on a keyframe's own time
/// must not pass it, or the accurate seek drops that frame. Below it by less than a
/// microsecond, the demuxer still lands on it (in any time base coarser than 2 µs; in finer
/// ones it lands on the keyframe before: slower, not wrong). The thousandth of a microsecond
/// absorbs floating-point error in times that are whole microseconds.
pub fn seek_arg(secs: f64) -> String {
    let micros = (secs * 1e6 + 1e-3).floor().max(0.0);
    format!("{:.6}", micros / 1e6)
}

/// True if `arg` is a `file:` argument as produced by [`file_arg`] (for callers that assert
/// their command lines never name a bare path).
pub fn is_file_arg(arg: &OsStr) -> bool {
    arg.as_bytes().starts_with(b"file:")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    fn touch_executable(path: &Path) {
        std::fs::write(path, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn not_found_message_is_actionable() {
        let dir = tempfile::tempdir().unwrap();
        let err = find_tool(&FFMPEG, None, Some(dir.path().as_os_str())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ffmpeg was not found on PATH: install it (Debian/Ubuntu: sudo apt install ffmpeg) \
             or set REFRAME_FFMPEG to its full path"
        );
        let err = find_tool(&MKVMERGE, None, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "mkvmerge was not found on PATH: install it (Debian/Ubuntu: sudo apt install \
             mkvtoolnix) or set REFRAME_MKVMERGE to its full path"
        );
    }

    #[test]
    fn path_search_takes_first_executable_and_skips_non_executables() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let c = tempfile::tempdir().unwrap();
        // a: not executable; b: a directory of that name; c: the real one.
        std::fs::write(a.path().join("ffprobe"), "").unwrap();
        std::fs::create_dir(b.path().join("ffprobe")).unwrap();
        touch_executable(&c.path().join("ffprobe"));
        let path_var = std::env::join_paths([a.path(), b.path(), c.path()]).unwrap();
        let found = find_tool(&FFPROBE, None, Some(&path_var)).unwrap();
        assert_eq!(found, c.path().join("ffprobe"));
    }

    #[test]
    fn override_wins_and_a_bad_override_says_which_variable() {
        let dir = tempfile::tempdir().unwrap();
        let custom = dir.path().join("my-ffmpeg");
        touch_executable(&custom);
        let found = find_tool(&FFMPEG, Some(custom.as_os_str()), Some(OsStr::new(""))).unwrap();
        assert_eq!(found, custom);

        let missing = dir.path().join("nope");
        let err = find_tool(&FFMPEG, Some(missing.as_os_str()), None).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("REFRAME_FFMPEG does not name an executable file"),
            "{msg}"
        );
        assert!(msg.ends_with(&missing.display().to_string()), "{msg}");
    }

    #[test]
    fn verify_reports_a_broken_binary() {
        let dir = tempfile::tempdir().unwrap();
        let broken = dir.path().join("ffmpeg");
        std::fs::write(
            &broken,
            "#!/bin/sh\necho 'libfoo.so: cannot open' >&2\nexit 127\n",
        )
        .unwrap();
        std::fs::set_permissions(&broken, std::fs::Permissions::from_mode(0o755)).unwrap();
        let msg = verify_runs(&FFMPEG, &broken).unwrap_err().to_string();
        assert!(msg.contains("libfoo.so: cannot open"), "{msg}");
        assert!(msg.contains("REFRAME_FFMPEG"), "{msg}");
    }

    #[test]
    fn a_tool_that_ran_is_not_checked_again_until_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let calls = dir.path().join("calls");
        let tool = dir.path().join("ffmpeg");
        let script = format!("#!/bin/sh\necho run >> '{}'\n", calls.display());
        std::fs::write(&tool, &script).unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let record = dir.path().join("cache").join(VERIFIED_FILE);
        let runs = || {
            std::fs::read_to_string(&calls)
                .unwrap_or_default()
                .lines()
                .count()
        };
        verify_once(&FFMPEG, &tool, Some(&record)).unwrap();
        verify_once(&FFMPEG, &tool, Some(&record)).unwrap();
        assert_eq!(runs(), 1, "checked twice");
        // Without a record, every call checks.
        verify_once(&FFMPEG, &tool, None).unwrap();
        assert_eq!(runs(), 2);
        // Replaced by a broken build: checked again, and the failure is reported.
        std::fs::write(
            &tool,
            "#!/bin/sh\necho 'libavcodec.so.59: cannot open' >&2\nexit 127\n",
        )
        .unwrap();
        let msg = verify_once(&FFMPEG, &tool, Some(&record))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("libavcodec.so.59"), "{msg}");
        // Many tools: only the latest are kept.
        for n in 0..VERIFIED_KEEP + 4 {
            let other = dir.path().join(format!("tool{n}"));
            std::fs::write(&other, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o755)).unwrap();
            verify_once(&FFMPEG, &other, Some(&record)).unwrap();
        }
        let kept = std::fs::read_to_string(&record).unwrap();
        assert_eq!(kept.lines().count(), VERIFIED_KEEP, "{kept}");
        assert!(kept.contains("tool19"), "{kept}");
    }

    #[test]
    fn locate_finds_installed_tools() {
        let tools = Tools::locate().unwrap_or_else(|e| {
            panic!("this test needs ffmpeg and ffprobe installed (sudo apt install ffmpeg): {e}")
        });
        assert!(
            is_executable_file(&tools.ffmpeg),
            "{}",
            tools.ffmpeg.display()
        );
        assert!(
            is_executable_file(&tools.ffprobe),
            "{}",
            tools.ffprobe.display()
        );
    }

    #[test]
    fn file_arg_is_absolute_with_file_prefix() {
        let arg = file_arg(Path::new("-y.mp4"));
        let text = arg.to_str().unwrap();
        assert!(text.starts_with("file:/"), "{text}");
        assert!(text.ends_with("/-y.mp4"), "{text}");
        assert!(is_file_arg(&arg));
        assert_eq!(
            file_arg(Path::new("/a b/c:d.mkv")),
            OsString::from("file:/a b/c:d.mkv")
        );
        // Non-UTF-8 bytes survive untouched.
        let raw = OsStr::from_bytes(b"/tmp/\xff\xfe.mp4");
        assert_eq!(
            file_arg(Path::new(raw)).as_bytes(),
            b"file:/tmp/\xff\xfe.mp4"
        );
    }

    /// Every awkward name reaches ffprobe as one file, not an option or a protocol.
    #[test]
    fn ffprobe_opens_awkward_names_through_file_arg() {
        let tools = Tools::locate().unwrap_or_else(|e| {
            panic!("this test needs ffmpeg and ffprobe installed (sudo apt install ffmpeg): {e}")
        });
        let dir = tempfile::tempdir().unwrap();
        let clip = dir.path().join("clip.mkv");
        let status = Command::new(&tools.ffmpeg)
            .args(["-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i"])
            .arg("testsrc=size=64x36:rate=5")
            .args(["-t", "0.4", "-c:v", "ffv1"])
            .arg(file_arg(&clip))
            .status()
            .unwrap();
        assert!(status.success());
        let names = [
            "-i.mkv",
            "-version",
            "a b 'c\" d.mkv",
            "http:x.mkv",
            "concat:a|b.mkv",
            "ünïcødé 映像.mkv",
            "100%d.mkv",
        ];
        for name in names {
            let path = dir.path().join(name);
            std::fs::copy(&clip, &path).unwrap();
            let output = Command::new(&tools.ffprobe)
                .args([
                    "-v",
                    "error",
                    "-show_entries",
                    "format=nb_streams",
                    "-of",
                    "csv=p=0",
                ])
                .arg(file_arg(&path))
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "{name}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            assert_eq!(
                String::from_utf8_lossy(&output.stdout).trim(),
                "1",
                "{name}"
            );
        }
        // Relative form too: run from inside the directory.
        let output = Command::new(&tools.ffprobe)
            .current_dir(dir.path())
            .args([
                "-v",
                "error",
                "-show_entries",
                "format=nb_streams",
                "-of",
                "csv=p=0",
            ])
            .arg(OsString::from("file:-i.mkv"))
            .output()
            .unwrap();
        assert!(output.status.success());
    }

    #[test]
    fn seeks_never_pass_the_time_asked() {
        // 139/24 s, a keyframe's time: rounding to nearest would give …667, past it.
        assert_eq!(seek_arg(139.0 / 24.0), "5.791666");
        // Whole microseconds stay as they are, even a hair under in floating point.
        assert_eq!(seek_arg(5.5 - 1e-12), "5.500000");
        assert_eq!(seek_arg(0.1 + 0.2), "0.300000");
        assert_eq!(seek_arg(-0.0), "0.000000");
    }
}
