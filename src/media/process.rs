//! Spawning ffmpeg-family child processes defensively.
//!
//! Every external program reframe runs goes through [`spawn`] (or [`run_capture`]) so that the
//! same guarantees hold everywhere:
//! - stderr is always drained, on its own named thread (`stderr-<label>`), into a bounded ring
//!   buffer that keeps the last [`STDERR_TAIL_BYTES`]: a child can never block on a full stderr
//!   pipe, memory stays bounded, and a failure carries the tail of what the child said;
//! - stdin is `/dev/null` unless the caller passes one ([`spawn_with_stdin`]), so ffmpeg never
//!   reads the terminal or a worker's protocol channel;
//! - the child gets `SIGKILL` when its parent goes away (`PR_SET_PDEATHSIG`), and dropping a
//!   [`Spawned`] kills and reaps a still-running child, so no orphan or zombie outlives us;
//! - the full command line, shell-quoted, is logged at debug level before spawning and kept
//!   in errors.
//!
//! stdout is left exactly as the caller configured it on the `Command` (std's default is to
//! inherit ours: a worker whose stdout is a protocol channel must set `Stdio::piped()` or
//! `Stdio::null()` itself).

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::fmt;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

/// How much of a child's stderr is kept (the end of it).
pub const STDERR_TAIL_BYTES: usize = 32 * 1024;

/// How long `wait` waits, after the child exited, for its stderr to reach end of file. Only a
/// grandchild that inherited the pipe can keep it open that long; the tail is then taken as is.
const STDERR_EOF_GRACE: Duration = Duration::from_secs(5);

/// How a child ended, when it did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    /// It called `exit` with this code.
    Code(i32),
    /// It was killed by this signal.
    Signal(i32),
}

impl ExitKind {
    pub fn from_status(status: ExitStatus) -> ExitKind {
        match (status.code(), status.signal()) {
            (Some(code), _) => ExitKind::Code(code),
            (None, Some(signal)) => ExitKind::Signal(signal),
            // Neither an exit code nor a signal: not produced on Linux for a waited child.
            (None, None) => ExitKind::Code(-1),
        }
    }
}

impl fmt::Display for ExitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ExitKind::Code(code) => write!(f, "exit code {code}"),
            ExitKind::Signal(signal) => match signal_name(signal) {
                Some(name) => write!(f, "signal {signal} ({name})"),
                None => write!(f, "signal {signal}"),
            },
        }
    }
}

fn signal_name(signal: i32) -> Option<&'static str> {
    Some(match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGTERM => "SIGTERM",
        _ => return None,
    })
}

/// Why a child process did not do its job.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The program could not be started at all.
    #[error("could not start {label} ({})", program.display())]
    Spawn {
        label: String,
        program: PathBuf,
        #[source]
        source: io::Error,
    },
    /// It ran and ended unsuccessfully.
    #[error(
        "{label} failed ({status}){}\ncommand: {cmdline}",
        tail_excerpt(stderr_tail)
    )]
    Failed {
        label: String,
        cmdline: String,
        status: ExitKind,
        stderr_tail: String,
    },
    /// Waiting for it or reading its output failed (an OS error, not the child's).
    #[error("lost track of {label}")]
    Io {
        label: String,
        #[source]
        source: io::Error,
    },
}

/// The last few non-empty lines of a stderr tail, for an error message.
fn tail_excerpt(tail: &str) -> String {
    const LINES: usize = 8;
    let lines: Vec<&str> = tail
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect();
    if lines.is_empty() {
        return String::new();
    }
    let start = lines.len().saturating_sub(LINES);
    format!(":\n  {}", lines[start..].join("\n  "))
}

/// A bounded byte buffer keeping the most recent bytes written to it.
#[derive(Debug)]
struct TailBuffer {
    bytes: VecDeque<u8>,
    capacity: usize,
    dropped_bytes: u64,
}

impl TailBuffer {
    fn new(capacity: usize) -> TailBuffer {
        TailBuffer {
            bytes: VecDeque::with_capacity(capacity),
            capacity,
            dropped_bytes: 0,
        }
    }

    fn push(&mut self, chunk: &[u8]) {
        if chunk.len() >= self.capacity {
            self.dropped_bytes += (self.bytes.len() + chunk.len() - self.capacity) as u64;
            self.bytes.clear();
            self.bytes.extend(&chunk[chunk.len() - self.capacity..]);
            return;
        }
        let excess = (self.bytes.len() + chunk.len()).saturating_sub(self.capacity);
        self.bytes.drain(..excess);
        self.dropped_bytes += excess as u64;
        self.bytes.extend(chunk);
    }

    /// The kept bytes as text: lossy UTF-8, carriage returns (ffmpeg's status line) turned
    /// into newlines, and when the start was cut off, the partial first line removed.
    fn text(&self) -> String {
        let (a, b) = self.bytes.as_slices();
        let mut raw = Vec::with_capacity(a.len() + b.len());
        raw.extend_from_slice(a);
        raw.extend_from_slice(b);
        let mut text = String::from_utf8_lossy(&raw).replace('\r', "\n");
        if self.dropped_bytes > 0
            && let Some(newline) = text.find('\n')
        {
            text.drain(..=newline);
        }
        text
    }
}

fn lock_tail(tail: &Mutex<TailBuffer>) -> std::sync::MutexGuard<'_, TailBuffer> {
    // The drain thread cannot panic while holding the lock (push does not panic), but a
    // poisoned buffer still holds valid bytes.
    tail.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running (or finished, not yet dropped) child process. Dropping it kills and reaps the
/// child if it is still running.
#[derive(Debug)]
pub struct Spawned {
    label: String,
    cmdline: String,
    child: Child,
    exit: Option<ExitStatus>,
    tail: Arc<Mutex<TailBuffer>>,
    /// Disconnected once the drain thread saw end of file on stderr.
    stderr_eof: mpsc::Receiver<()>,
}

impl Spawned {
    /// The child's stdout, if the caller configured `Stdio::piped()` (once).
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.stdout.take()
    }

    /// The child's stdin, if it was started with [`spawn_with_stdin`]`(…, Stdio::piped())`
    /// (once). Drop it to send end of file.
    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.child.stdin.take()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// The shell-quoted command line, as logged.
    pub fn cmdline(&self) -> &str {
        &self.cmdline
    }

    /// The exit status if the child has ended (reaping it), `None` while it runs.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(status) = self.exit {
            return Ok(Some(status));
        }
        let status = self.child.try_wait()?;
        self.exit = status;
        Ok(status)
    }

    /// Sends `SIGKILL` to a running child; does nothing if it has already been reaped. Call
    /// [`Spawned::wait`] afterwards to reap it (drop does that too).
    pub fn kill(&mut self) -> io::Result<()> {
        if self.exit.is_some() {
            return Ok(());
        }
        self.child.kill()
    }

    /// Closes our end of its stdin (if still held), waits for the child to end and for its
    /// stderr to be drained, and reports anything but exit code 0 as [`ProcessError::Failed`].
    pub fn wait(&mut self) -> Result<(), ProcessError> {
        let status = match self.exit {
            Some(status) => status,
            None => {
                let status = self.child.wait().map_err(|source| ProcessError::Io {
                    label: self.label.clone(),
                    source,
                })?;
                self.exit = Some(status);
                status
            }
        };
        match self.stderr_eof.recv_timeout(STDERR_EOF_GRACE) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => log::warn!(
                "{}: stderr still open {:?} after the process ended (a child of it holds it?)",
                self.label,
                STDERR_EOF_GRACE
            ),
        }
        if status.success() {
            Ok(())
        } else {
            Err(ProcessError::Failed {
                label: self.label.clone(),
                cmdline: self.cmdline.clone(),
                status: ExitKind::from_status(status),
                stderr_tail: self.stderr_tail(),
            })
        }
    }

    /// The last [`STDERR_TAIL_BYTES`] the child wrote to stderr so far (see the module doc).
    pub fn stderr_tail(&self) -> String {
        lock_tail(&self.tail).text()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if self.exit.is_some() {
            return;
        }
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        log::debug!("killing {} (pid {}) on drop", self.label, self.child.id());
        if let Err(e) = self.child.kill() {
            log::warn!(
                "could not kill {} (pid {}): {e}",
                self.label,
                self.child.id()
            );
        }
        if let Err(e) = self.child.wait() {
            log::warn!(
                "could not reap {} (pid {}): {e}",
                self.label,
                self.child.id()
            );
        }
    }
}

/// Starts `cmd` with stdin from `/dev/null`, stderr drained into the tail buffer, stdout as
/// the caller configured it. `label` names the process in logs, errors and the drain thread
/// ("ffprobe", "encode-chunk-7").
///
/// The child is killed when the *thread* that spawned it exits (that is how
/// `PR_SET_PDEATHSIG` works on Linux), not only when the process does: spawn from a thread
/// that outlives the child (the worker's main or job thread), never from a short-lived helper.
pub fn spawn(cmd: Command, label: &str) -> Result<Spawned, ProcessError> {
    spawn_with_stdin(cmd, label, Stdio::null())
}

/// [`spawn`] with the child's stdin given explicitly: `Stdio::piped()` to feed it through
/// [`Spawned::take_stdin`], or another child's stdout, or a file.
pub fn spawn_with_stdin(cmd: Command, label: &str, stdin: Stdio) -> Result<Spawned, ProcessError> {
    spawn_inner(cmd, label, stdin, None)
}

/// [`spawn_with_stdin`] that also hands every complete line the child writes to stderr to
/// `on_line` (on the drain thread, in order), for programs that report progress there
/// (`showinfo`). The tail buffer is kept as usual.
pub fn spawn_watching_stderr(
    cmd: Command,
    label: &str,
    stdin: Stdio,
    on_line: impl FnMut(&str) + Send + 'static,
) -> Result<Spawned, ProcessError> {
    spawn_inner(cmd, label, stdin, Some(Box::new(on_line)))
}

type LineHook = Box<dyn FnMut(&str) + Send>;

fn spawn_inner(
    mut cmd: Command,
    label: &str,
    stdin: Stdio,
    mut on_line: Option<LineHook>,
) -> Result<Spawned, ProcessError> {
    cmd.stdin(stdin).stderr(Stdio::piped());
    set_parent_death_signal(&mut cmd);
    let cmdline = command_line(&cmd);
    log::debug!("starting {label}: {cmdline}");
    let program = PathBuf::from(cmd.get_program());
    let spawn_error = |source| ProcessError::Spawn {
        label: label.to_string(),
        program: program.clone(),
        source,
    };
    let mut child = cmd.spawn().map_err(spawn_error)?;

    let tail = Arc::new(Mutex::new(TailBuffer::new(STDERR_TAIL_BYTES)));
    let (eof_tx, stderr_eof) = mpsc::channel::<()>();
    if let Some(mut stderr) = child.stderr.take() {
        let thread_tail = Arc::clone(&tail);
        let drained = std::thread::Builder::new()
            .name(format!("stderr-{label}"))
            .spawn(move || {
                let mut buf = [0u8; 8192];
                let mut line = Vec::new();
                loop {
                    match stderr.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            lock_tail(&thread_tail).push(&buf[..n]);
                            if let Some(hook) = on_line.as_mut() {
                                for &byte in &buf[..n] {
                                    if byte == b'\n' || byte == b'\r' {
                                        if !line.is_empty() {
                                            hook(&String::from_utf8_lossy(&line));
                                            line.clear();
                                        }
                                    } else {
                                        line.push(byte);
                                    }
                                }
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(_) => break,
                    }
                }
                drop(eof_tx);
            });
        if let Err(source) = drained {
            let _ = child.kill();
            let _ = child.wait();
            return Err(spawn_error(source));
        }
    }
    log::debug!("{label} started, pid {}", child.id());
    Ok(Spawned {
        label: label.to_string(),
        cmdline,
        child,
        exit: None,
        tail,
        stderr_eof,
    })
}

/// Runs `cmd` to completion (stdin `/dev/null`) and returns everything it wrote to stdout.
/// stdout is read on the calling thread while stderr drains on its own, so neither pipe can
/// fill up and stall the child.
pub fn run_capture(mut cmd: Command, label: &str) -> Result<Vec<u8>, ProcessError> {
    cmd.stdout(Stdio::piped());
    let mut child = spawn(cmd, label)?;
    let mut stdout = Vec::new();
    if let Some(mut pipe) = child.take_stdout()
        && let Err(source) = pipe.read_to_end(&mut stdout)
    {
        // Dropping `child` kills and reaps it.
        return Err(ProcessError::Io {
            label: label.to_string(),
            source,
        });
    }
    child.wait()?;
    Ok(stdout)
}

#[cfg(target_os = "linux")]
fn set_parent_death_signal(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    // Its own process group: a Ctrl-C in the terminal reaches reframe only, which then stops
    // its children itself (and keeps the session consistent) instead of racing them.
    cmd.process_group(0);
    // SAFETY: the closure runs in the forked child before exec. It only calls prctl(2) and
    // getppid(2), both async-signal-safe, and allocates nothing (errors are raw OS errors).
    unsafe {
        cmd.pre_exec(move || {
            let signal = libc::SIGKILL as libc::c_ulong;
            if libc::prctl(libc::PR_SET_PDEATHSIG, signal, 0, 0, 0) == -1 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl: then nobody would kill us.
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn set_parent_death_signal(_cmd: &mut Command) {}

/// The command as a shell would need it typed: environment overrides, program, arguments,
/// each quoted when needed. For logs and error messages (lossy for non-UTF-8 bytes).
pub fn command_line(cmd: &Command) -> String {
    let mut words = Vec::new();
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            let mut assignment = key.to_os_string();
            assignment.push("=");
            assignment.push(value);
            words.push(shell_quote(&assignment));
        }
    }
    words.push(shell_quote(cmd.get_program()));
    words.extend(cmd.get_args().map(shell_quote));
    words.join(" ")
}

/// Quotes one word for a POSIX shell: unchanged when it holds only safe characters, else in
/// single quotes with embedded `'` written as `'\''`.
pub fn shell_quote(word: &OsStr) -> String {
    let bytes = word.as_bytes();
    let safe = |b: &u8| b.is_ascii_alphanumeric() || b"_-+=/.,:@%^".contains(b);
    let text = String::from_utf8_lossy(bytes);
    if !bytes.is_empty() && bytes.iter().all(safe) {
        text.into_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Instant;

    fn command(program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(args);
        cmd
    }

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(script);
        cmd
    }

    /// About 1.3 MB on stderr: 20000 numbered lines, then `END`.
    const LOUD: &str = r#"i=0; while [ $i -lt 20000 ]; do echo "line $i xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" >&2; i=$((i+1)); done; echo END >&2"#;

    fn process_gone(pid: u32) -> bool {
        // SAFETY: kill with signal 0 only checks whether the pid exists.
        let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
        rc == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
    }

    #[test]
    fn tail_buffer_keeps_the_end_and_cuts_partial_lines() {
        let mut tail = TailBuffer::new(10);
        tail.push(b"abc\n");
        assert_eq!(tail.text(), "abc\n");
        tail.push(b"defgh\nij\n");
        // 13 bytes written, last 10 kept: "\ndefgh\nij\n" -> partial first line removed.
        assert_eq!(tail.text(), "defgh\nij\n");
        tail.push(b"0123456789ABCDEF");
        assert_eq!(tail.bytes.len(), 10);
        assert_eq!(tail.dropped_bytes, 19);
        let mut status = TailBuffer::new(100);
        status.push(b"frame=1\rframe=2\rError x\n");
        assert_eq!(status.text(), "frame=1\nframe=2\nError x\n");
    }

    #[test]
    fn megabytes_of_stderr_do_not_deadlock_and_the_tail_is_kept() {
        let mut cmd = sh(&format!("{LOUD}; exit 3"));
        cmd.stdout(Stdio::null());
        let mut child = spawn(cmd, "loud").unwrap();
        let err = child.wait().unwrap_err();
        let ProcessError::Failed {
            label,
            status,
            stderr_tail,
            cmdline,
        } = &err
        else {
            panic!("expected Failed, got {err:?}");
        };
        assert_eq!(label, "loud");
        assert_eq!(*status, ExitKind::Code(3));
        assert!(cmdline.starts_with("sh -c 'i=0;"), "{cmdline}");
        assert!(stderr_tail.len() <= STDERR_TAIL_BYTES);
        assert!(stderr_tail.len() > STDERR_TAIL_BYTES - 200);
        assert!(stderr_tail.starts_with("line "), "{}", &stderr_tail[..40]);
        assert!(
            stderr_tail
                .ends_with("line 19999 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\nEND\n")
        );
        let message = err.to_string();
        assert!(
            message.starts_with("loud failed (exit code 3):\n"),
            "{message}"
        );
        assert!(message.contains("\n  END\ncommand: sh -c "), "{message}");
    }

    #[test]
    fn run_capture_reads_big_stdout_and_big_stderr_together() {
        let script = format!("head -c 3000000 /dev/zero & {LOUD}; wait");
        let stdout = run_capture(sh(&script), "both").unwrap();
        assert_eq!(stdout.len(), 3_000_000);
    }

    #[test]
    fn run_capture_reports_exit_code_with_tail() {
        let err = run_capture(sh("echo partial; echo 'bad thing' >&2; exit 2"), "x").unwrap_err();
        match err {
            ProcessError::Failed {
                status,
                stderr_tail,
                ..
            } => {
                assert_eq!(status, ExitKind::Code(2));
                assert_eq!(stderr_tail, "bad thing\n");
            }
            other => panic!("expected Failed, got {other:?}"),
        }
    }

    #[test]
    fn death_by_signal_is_reported() {
        let mut child = spawn(sh("kill -TERM $$"), "sig").unwrap();
        match child.wait().unwrap_err() {
            ProcessError::Failed { status, .. } => {
                assert_eq!(status, ExitKind::Signal(libc::SIGTERM));
                assert_eq!(status.to_string(), "signal 15 (SIGTERM)");
            }
            other => panic!("expected Failed, got {other:?}"),
        }
    }

    #[test]
    fn drop_kills_and_reaps_a_running_child() {
        let child = spawn(command("sleep", &["30"]), "sleeper").unwrap();
        let pid = child.pid();
        assert!(!process_gone(pid));
        let started = Instant::now();
        drop(child);
        assert!(started.elapsed() < Duration::from_secs(5));
        // Reaped, not a zombie: the pid no longer exists at all.
        assert!(process_gone(pid), "pid {pid} still exists after drop");
    }

    #[test]
    fn kill_then_wait_reports_sigkill_and_try_wait_sees_it() {
        let mut child = spawn(command("sleep", &["30"]), "k").unwrap();
        assert!(child.try_wait().unwrap().is_none());
        child.kill().unwrap();
        match child.wait().unwrap_err() {
            ProcessError::Failed { status, .. } => assert_eq!(status, ExitKind::Signal(9)),
            other => panic!("expected Failed, got {other:?}"),
        }
        assert!(child.try_wait().unwrap().is_some());
        child.kill().unwrap();
    }

    #[test]
    fn child_dies_when_its_spawning_thread_exits() {
        let child = std::thread::spawn(|| spawn(command("sleep", &["30"]), "orphan").unwrap())
            .join()
            .unwrap();
        let mut child = child;
        let started = Instant::now();
        match child.wait().unwrap_err() {
            ProcessError::Failed { status, .. } => {
                assert_eq!(status, ExitKind::Signal(libc::SIGKILL))
            }
            other => panic!("expected Failed, got {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn stdin_is_null_by_default_and_can_be_piped() {
        // `cat` with stdin from /dev/null ends at once instead of reading our stdin.
        let out = run_capture(command("cat", &[]), "cat").unwrap();
        assert!(out.is_empty());

        let mut cmd = Command::new("cat");
        cmd.stdout(Stdio::piped());
        let mut child = spawn_with_stdin(cmd, "cat", Stdio::piped()).unwrap();
        let mut stdin = child.take_stdin().unwrap();
        stdin.write_all(b"hello").unwrap();
        drop(stdin);
        let mut text = String::new();
        child
            .take_stdout()
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        child.wait().unwrap();
        assert_eq!(text, "hello");
    }

    #[test]
    fn a_missing_program_is_a_spawn_error() {
        let err = spawn(Command::new("/nonexistent/ffmpeg"), "encode").unwrap_err();
        assert!(matches!(err, ProcessError::Spawn { .. }));
        assert_eq!(
            format!("{:#}", anyhow::Error::from(err)),
            "could not start encode (/nonexistent/ffmpeg): No such file or directory (os error 2)"
        );
    }

    #[test]
    fn command_lines_are_shell_quoted() {
        let mut cmd = Command::new("/usr/bin/ffmpeg");
        cmd.env("AV_LOG_FORCE_NOCOLOR", "1").args([
            "-v",
            "error",
            "-i",
            "file:/a b/it's.mp4",
            "-vf",
            "scale=2*iw:-2",
            "",
        ]);
        assert_eq!(
            command_line(&cmd),
            r"AV_LOG_FORCE_NOCOLOR=1 /usr/bin/ffmpeg -v error -i 'file:/a b/it'\''s.mp4' -vf 'scale=2*iw:-2' ''"
        );
    }
}
