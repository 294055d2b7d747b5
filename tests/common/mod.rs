//! Shared harness of the integration tests: a private temp dir per test (cache and config dirs
//! inside it, so tests never see each other's sessions or presets), the real `reframe` binary
//! run with a timeout or spawned with its `--json` events read as they come (so a test can
//! kill -9 it at a chosen event), small lavfi-generated fixtures, and ffprobe/ffmpeg helpers to
//! check outputs.
//!
//! Every test file uses only part of this module.
#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use reframe::protocol::Event;
use serde_json::Value;
use tempfile::TempDir;

/// How long one `reframe` invocation may take before the test gives up and kills it.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// Path of the binary under test.
pub fn reframe_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_reframe"))
}

// ---------------------------------------------------------------------------------------------
// Per-test environment
// ---------------------------------------------------------------------------------------------

/// A private temp dir with `cache/`, `config/` and `work/` inside. `work/` is the current
/// directory of every command started through it.
pub struct TestEnv {
    dir: TempDir,
    pub cache_dir: PathBuf,
    pub config_dir: PathBuf,
    pub work_dir: PathBuf,
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl TestEnv {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("reframe-it-")
            .tempdir()
            .expect("create temp dir");
        let cache_dir = dir.path().join("cache");
        let config_dir = dir.path().join("config");
        let work_dir = dir.path().join("work");
        for d in [&cache_dir, &config_dir, &work_dir] {
            fs::create_dir_all(d).expect("create test dirs");
        }
        TestEnv {
            dir,
            cache_dir,
            config_dir,
            work_dir,
        }
    }

    /// The temp dir holding everything of this test.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the work dir.
    pub fn path(&self, name: impl AsRef<Path>) -> PathBuf {
        self.work_dir.join(name)
    }

    /// Creates (if needed) and returns a directory inside the work dir.
    pub fn subdir(&self, name: impl AsRef<Path>) -> PathBuf {
        let d = self.work_dir.join(name);
        fs::create_dir_all(&d).expect("create subdir");
        d
    }

    /// `$REFRAME_CACHE_DIR/sessions`.
    pub fn sessions_dir(&self) -> PathBuf {
        self.cache_dir.join("sessions")
    }

    /// Names of the session directories that exist now.
    pub fn session_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = match fs::read_dir(self.sessions_dir()) {
            Ok(rd) => rd
                .filter_map(|e| e.ok())
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        };
        ids.sort();
        ids
    }

    /// `$REFRAME_CONFIG_DIR/presets`, created.
    pub fn user_presets_dir(&self) -> PathBuf {
        let d = self.config_dir.join("presets");
        fs::create_dir_all(&d).expect("create presets dir");
        d
    }

    /// A `reframe` command with this test's environment: private cache/config/home dirs, no
    /// inherited `REFRAME_*` tool overrides, current dir = work dir.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(reframe_bin());
        self.apply_env(&mut cmd);
        cmd
    }

    /// Applies this test's environment to any command (used when `reframe` is wrapped, e.g. in
    /// `unshare`).
    pub fn apply_env(&self, cmd: &mut Command) {
        let home = self.dir.path().join("home");
        let _ = fs::create_dir_all(&home);
        cmd.current_dir(&self.work_dir)
            .env("REFRAME_CACHE_DIR", &self.cache_dir)
            .env("REFRAME_CONFIG_DIR", &self.config_dir)
            .env("HOME", &home)
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("NO_COLOR", "1")
            .env_remove("REFRAME_FFMPEG")
            .env_remove("REFRAME_FFPROBE")
            .env_remove("REFRAME_TEST_ENGINES")
            .env_remove("RUST_LOG");
    }

    /// Runs `reframe ARGS` to completion (with [`RUN_TIMEOUT`]).
    pub fn run<I, S>(&self, args: I) -> RunOutput
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.run_with(args, |_| {})
    }

    /// Like [`TestEnv::run`], letting the caller adjust the command (env vars…) first.
    pub fn run_with<I, S>(&self, args: I, adjust: impl FnOnce(&mut Command)) -> RunOutput
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command();
        cmd.args(args);
        adjust(&mut cmd);
        run_command(cmd, RUN_TIMEOUT)
    }

    /// Spawns `reframe ARGS --json` and returns a handle reading its events as they come.
    pub fn spawn_json<I, S>(&self, args: I) -> JsonRun
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.spawn_json_with(args, |_| {})
    }

    pub fn spawn_json_with<I, S>(&self, args: I, adjust: impl FnOnce(&mut Command)) -> JsonRun
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command();
        let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        cmd.args(&args);
        if !args.iter().any(|a| a == "--json") {
            cmd.arg("--json");
        }
        adjust(&mut cmd);
        JsonRun::spawn(cmd)
    }
}

/// The usual `run` arguments of these tests: one input, an explicit output, small chunks.
pub fn run_args(input: &Path, output: &Path, chunk_seconds: f64, extra: &[&str]) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec![
        "run".into(),
        input.as_os_str().to_owned(),
        "-o".into(),
        output.as_os_str().to_owned(),
        "--chunk-seconds".into(),
        chunk_seconds.to_string().into(),
    ];
    v.extend(extra.iter().map(OsString::from));
    v
}

// ---------------------------------------------------------------------------------------------
// Running to completion
// ---------------------------------------------------------------------------------------------

/// What a finished `reframe` invocation left.
#[derive(Debug)]
pub struct RunOutput {
    pub cmdline: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    /// Processes started by the command that were still alive 5 s after it exited.
    pub leftovers: Vec<String>,
}

fn describe_command(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&format!("{:?}", a.to_string_lossy()));
    }
    s
}

fn read_all_thread(mut r: impl Read + Send + 'static, name: &str) -> thread::JoinHandle<Vec<u8>> {
    thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
        .expect("spawn reader thread")
}

/// Runs a command to completion, killing it (and everything it started) after `timeout`.
pub fn run_command(mut cmd: Command, timeout: Duration) -> RunOutput {
    let cmdline = describe_command(&cmd);
    let watch = ProcWatch::tag(&mut cmd);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmdline}: {e}"));
    let watch = watch.with_pgid(child.id() as i32);
    let out_t = read_all_thread(child.stdout.take().expect("stdout"), "it-stdout");
    let err_t = read_all_thread(child.stderr.take().expect("stderr"), "it-stderr");
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if start.elapsed() > timeout {
            watch.kill_all();
            let _ = child.wait();
            let stdout = String::from_utf8_lossy(&out_t.join().unwrap_or_default()).into_owned();
            let stderr = String::from_utf8_lossy(&err_t.join().unwrap_or_default()).into_owned();
            panic!(
                "timed out after {timeout:?}: {cmdline}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    // Whatever the product left running after it exited is a leak: record it, then kill it so
    // it cannot disturb other tests (and cannot hold our pipes open).
    let leftovers = watch.wait_gone(Duration::from_secs(5));
    watch.kill_all();
    let stdout = String::from_utf8_lossy(&out_t.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&err_t.join().unwrap_or_default()).into_owned();
    RunOutput {
        cmdline,
        status,
        stdout,
        stderr,
        elapsed: start.elapsed(),
        leftovers,
    }
}

impl RunOutput {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Everything the command printed, for error messages.
    pub fn describe(&self) -> String {
        format!(
            "command: {}\nexit: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmdline, self.status, self.stdout, self.stderr
        )
    }

    /// stdout + stderr, lowercased, for keyword checks.
    pub fn text_lower(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr).to_lowercase()
    }

    pub fn assert_no_panic(&self) -> &Self {
        assert!(
            !self.stderr.contains("panicked") && !self.stdout.contains("panicked"),
            "the process panicked\n{}",
            self.describe()
        );
        assert_ne!(
            self.code(),
            Some(101),
            "exit 101 is a panic\n{}",
            self.describe()
        );
        self
    }

    pub fn assert_success(&self) -> &Self {
        self.assert_no_panic();
        assert!(
            self.status.success(),
            "expected success\n{}",
            self.describe()
        );
        self.assert_no_leftovers()
    }

    /// Nothing the command started outlived it.
    pub fn assert_no_leftovers(&self) -> &Self {
        assert!(
            self.leftovers.is_empty(),
            "processes outlived the command: {:?}\n{}",
            self.leftovers,
            self.describe()
        );
        self
    }

    pub fn assert_code(&self, code: i32) -> &Self {
        self.assert_no_panic();
        assert_eq!(
            self.code(),
            Some(code),
            "unexpected exit code\n{}",
            self.describe()
        );
        self
    }

    /// Non-zero exit by itself (not a signal, not a panic).
    pub fn assert_failure(&self) -> &Self {
        self.assert_no_panic();
        match self.code() {
            Some(0) => panic!("expected a failure\n{}", self.describe()),
            Some(_) => {}
            None => panic!("killed by a signal\n{}", self.describe()),
        }
        self
    }

    /// At least one of `needles` (case-insensitive) appears in stdout or stderr.
    pub fn assert_mentions_any(&self, needles: &[&str]) -> &Self {
        let text = self.text_lower();
        assert!(
            needles.iter().any(|n| text.contains(&n.to_lowercase())),
            "expected one of {needles:?} in the output\n{}",
            self.describe()
        );
        self
    }

    /// Every one of `needles` (case-insensitive) appears in stdout or stderr.
    pub fn assert_mentions_all(&self, needles: &[&str]) -> &Self {
        let text = self.text_lower();
        for n in needles {
            assert!(
                text.contains(&n.to_lowercase()),
                "expected {n:?} in the output\n{}",
                self.describe()
            );
        }
        self
    }

    /// stdout parsed as `--json` events; panics on a line that is not an event.
    pub fn events(&self) -> Vec<Event> {
        parse_event_lines(&self.stdout).unwrap_or_else(|bad| {
            panic!(
                "stdout line is not a protocol event: {bad:?}\n{}",
                self.describe()
            )
        })
    }
}

/// Parses stdout of a `--json` run; `Err(line)` for the first line that is not an event.
pub fn parse_event_lines(stdout: &str) -> Result<Vec<Event>, String> {
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<Event>(l).map_err(|e| format!("{l} ({e})")))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Spawned runs with live events
// ---------------------------------------------------------------------------------------------

enum Line {
    Event(Box<Event>),
    Garbage(String),
}

/// A `reframe run --json` in progress. Killed (with its whole process group) on drop.
pub struct JsonRun {
    pub cmdline: String,
    child: Child,
    pid: i32,
    watch: ProcWatch,
    lines: Receiver<Line>,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_thread: Option<thread::JoinHandle<()>>,
    /// Every event received so far, in order.
    pub events: Vec<Event>,
    /// Lines of stdout that were not protocol events.
    pub garbage: Vec<String>,
    eof: bool,
    started: Instant,
    /// Held open for a worker, which exits when its input closes.
    input: Option<ChildStdin>,
}

impl JsonRun {
    /// Spawns any command whose stdout carries event lines, in its own process group.
    pub fn spawn(cmd: Command) -> JsonRun {
        Self::spawn_inner(cmd, None)
    }

    /// Spawns a worker (`reframe worker process`) and writes `requests` (JSON lines) to its
    /// input, which stays open until [`JsonRun::close_input`].
    pub fn spawn_with_requests(cmd: Command, requests: &[String]) -> JsonRun {
        Self::spawn_inner(cmd, Some(requests))
    }

    /// Closes the worker's input: it finishes its job, if any, and exits.
    pub fn close_input(&mut self) {
        self.input = None;
    }

    fn spawn_inner(mut cmd: Command, requests: Option<&[String]>) -> JsonRun {
        let cmdline = describe_command(&cmd);
        let watch = ProcWatch::tag(&mut cmd);
        cmd.stdin(if requests.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmdline}: {e}"));
        let watch = watch.with_pgid(child.id() as i32);
        let input = requests.map(|lines| {
            let mut stdin = child.stdin.take().expect("stdin");
            for line in lines {
                writeln!(stdin, "{line}").expect("write a request");
            }
            stdin.flush().expect("write a request");
            stdin
        });
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        thread::Builder::new()
            .name("it-events".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if line.trim().is_empty() {
                        continue;
                    }
                    let item = match serde_json::from_str::<Event>(&line) {
                        Ok(e) => Line::Event(Box::new(e)),
                        Err(_) => Line::Garbage(line),
                    };
                    if tx.send(item).is_err() {
                        break;
                    }
                }
            })
            .expect("spawn event reader");
        let stderr_buf = Arc::new(Mutex::new(Vec::new()));
        let sb = Arc::clone(&stderr_buf);
        let mut stderr = child.stderr.take().expect("stderr");
        let stderr_thread = thread::Builder::new()
            .name("it-stderr".into())
            .spawn(move || {
                let mut chunk = [0u8; 4096];
                loop {
                    match stderr.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => sb
                            .lock()
                            .expect("stderr lock")
                            .extend_from_slice(&chunk[..n]),
                    }
                }
            })
            .expect("spawn stderr reader");
        let pid = child.id() as i32;
        JsonRun {
            cmdline,
            child,
            pid,
            watch,
            lines: rx,
            stderr: stderr_buf,
            stderr_thread: Some(stderr_thread),
            events: Vec::new(),
            garbage: Vec::new(),
            eof: false,
            started: Instant::now(),
            input,
        }
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Processes of this run still alive.
    pub fn alive(&self) -> Vec<String> {
        self.watch.alive().into_iter().map(|(_, n)| n).collect()
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().expect("stderr lock")).into_owned()
    }

    fn context(&self) -> String {
        format!(
            "command: {}\nevents so far:\n{}\nnon-event stdout: {:?}\n--- stderr ---\n{}",
            self.cmdline,
            self.events
                .iter()
                .map(|e| format!("  {}", e.to_line()))
                .collect::<Vec<_>>()
                .join("\n"),
            self.garbage,
            self.stderr_text()
        )
    }

    /// Receives events until one satisfies `pred` and returns a copy of it. Panics when the
    /// process ends first or `timeout` passes.
    pub fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Event) -> bool,
    ) -> Event {
        match self.wait_until(Instant::now() + timeout, pred) {
            Some(e) => e,
            None if self.eof => panic!("process ended before {what}\n{}", self.context()),
            None => panic!(
                "timed out after {timeout:?} waiting for {what}\n{}",
                self.context()
            ),
        }
    }

    /// Receives events until one satisfies `pred` (returned), or `deadline` passes or the
    /// process ends (`None`).
    pub fn wait_until(
        &mut self,
        deadline: Instant,
        pred: impl Fn(&Event) -> bool,
    ) -> Option<Event> {
        while !self.eof {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(Line::Event(e)) => {
                    let e = *e;
                    self.events.push(e.clone());
                    if pred(&e) {
                        return Some(e);
                    }
                }
                Ok(Line::Garbage(l)) => self.garbage.push(l),
                Err(RecvTimeoutError::Timeout) => return None,
                Err(RecvTimeoutError::Disconnected) => self.eof = true,
            }
        }
        None
    }

    /// SIGKILL to the `reframe` process only (as `kill -9 <pid>` would), then checks that every
    /// process it started goes away by itself within a few seconds (children must not outlive
    /// their parent). Whatever is left is killed and reported.
    pub fn kill9(&mut self) {
        let left = self.kill9_leftovers();
        if !left.is_empty() {
            panic!(
                "processes outlived the killed reframe (pid {}): {left:?}\n{}",
                self.pid,
                self.context()
            );
        }
    }

    /// Like [`JsonRun::kill9`] but returns the processes that outlived the killed one (after
    /// killing them) instead of failing.
    pub fn kill9_leftovers(&mut self) -> Vec<String> {
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
        }
        let _ = self.child.wait();
        let left = self.watch.wait_gone(Duration::from_secs(10));
        self.watch.kill_all();
        self.drain_after_exit();
        left
    }

    /// Sends a signal to the whole process group, as a terminal does on Ctrl-C.
    pub fn signal_group(&self, sig: i32) {
        // SAFETY: kill(2) with a negative pid targets the process group we created.
        unsafe {
            libc::kill(-self.pid, sig);
        }
    }

    /// Sends a signal to the `reframe` process only.
    pub fn signal(&self, sig: i32) {
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.pid, sig);
        }
    }

    fn drain_after_exit(&mut self) {
        // The reader thread ends at EOF once every writer of the pipe is gone.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.eof {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(Line::Event(e)) => self.events.push(*e),
                Ok(Line::Garbage(l)) => self.garbage.push(l),
                Err(RecvTimeoutError::Disconnected) => self.eof = true,
                Err(RecvTimeoutError::Timeout) => break,
            }
        }
        if let Some(t) = self.stderr_thread.take() {
            let _ = t.join();
        }
    }

    /// Waits for the process to exit (reading the remaining events) and returns its output.
    /// `stdout` of the result holds every event line received, in order.
    pub fn finish(mut self, timeout: Duration) -> FinishedRun {
        let deadline = Instant::now() + timeout;
        let status = loop {
            loop {
                match self.lines.try_recv() {
                    Ok(Line::Event(e)) => self.events.push(*e),
                    Ok(Line::Garbage(l)) => self.garbage.push(l),
                    Err(mpsc::TryRecvError::Disconnected) => {
                        self.eof = true;
                        break;
                    }
                    Err(mpsc::TryRecvError::Empty) => break,
                }
            }
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                break st;
            }
            if Instant::now() > deadline {
                self.watch.kill_all();
                panic!(
                    "timed out after {timeout:?} waiting for the end\n{}",
                    self.context()
                );
            }
            thread::sleep(Duration::from_millis(20));
        };
        let leftovers = self.watch.wait_gone(Duration::from_secs(5));
        self.watch.kill_all();
        self.drain_after_exit();
        FinishedRun {
            output: RunOutput {
                cmdline: self.cmdline.clone(),
                status,
                stdout: self
                    .events
                    .iter()
                    .map(|e| e.to_line() + "\n")
                    .chain(self.garbage.iter().map(|g| g.clone() + "\n"))
                    .collect(),
                stderr: self.stderr_text(),
                elapsed: self.started.elapsed(),
                leftovers,
            },
            events: std::mem::take(&mut self.events),
            garbage: std::mem::take(&mut self.garbage),
        }
    }
}

impl Drop for JsonRun {
    fn drop(&mut self) {
        self.watch.kill_all();
        let _ = self.child.wait();
    }
}

/// A spawned run that ended.
pub struct FinishedRun {
    pub output: RunOutput,
    pub events: Vec<Event>,
    pub garbage: Vec<String>,
}

impl FinishedRun {
    /// Exit 0, no panic, every stdout line an event, and a `job-finished` for each job.
    pub fn assert_success(&self) -> &Self {
        self.output.assert_success();
        assert!(
            self.garbage.is_empty(),
            "stdout of --json had non-event lines: {:?}\n{}",
            self.garbage,
            self.output.describe()
        );
        self
    }
}

/// SIGKILL to every process of the group `pgid` (ignored when none is left).
pub fn kill_group(pgid: i32) {
    if pgid > 0 {
        // SAFETY: kill(2) with a negative pid targets the process group we created.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

/// Finds every process a command started, even after it died and its children were
/// re-parented: those of its process group, and those carrying its unique environment tag
/// (children inherit the environment even when they start a group of their own).
pub struct ProcWatch {
    tag: String,
    pgid: i32,
}

const TAG_VAR: &str = "REFRAME_IT_RUN_TAG";

impl ProcWatch {
    /// Tags `cmd` with a fresh environment value.
    pub fn tag(cmd: &mut Command) -> ProcWatch {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let tag = format!("{}-{n}-{nanos}", std::process::id());
        cmd.env(TAG_VAR, &tag);
        ProcWatch { tag, pgid: 0 }
    }

    pub fn with_pgid(mut self, pgid: i32) -> ProcWatch {
        self.pgid = pgid;
        self
    }

    /// Live (not zombie) processes of this command, as (pid, "name(pid)").
    pub fn alive(&self) -> Vec<(i32, String)> {
        let mut out = Vec::new();
        let Ok(rd) = fs::read_dir("/proc") else {
            return out;
        };
        let needle = format!("{TAG_VAR}={}", self.tag);
        for entry in rd.filter_map(|e| e.ok()) {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                continue;
            };
            let comm = &stat[open + 1..close];
            let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
            if rest.len() < 3 || rest[0] == "Z" || rest[0] == "X" {
                continue;
            }
            let in_group = self.pgid > 0 && rest[2].parse::<i32>().ok() == Some(self.pgid);
            let tagged = fs::read(entry.path().join("environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()));
            if in_group || tagged {
                out.push((pid, format!("{comm}({pid})")));
            }
        }
        out
    }

    /// Waits up to `grace` for every process to exit; returns the ones still alive.
    pub fn wait_gone(&self, grace: Duration) -> Vec<String> {
        let deadline = Instant::now() + grace;
        loop {
            let left = self.alive();
            if left.is_empty() || Instant::now() >= deadline {
                return left.into_iter().map(|(_, n)| n).collect();
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL to all of them.
    pub fn kill_all(&self) {
        kill_group(self.pgid);
        for (pid, _) in self.alive() {
            // SAFETY: kill(2) on a process this test started (found by its tag).
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reading events
// ---------------------------------------------------------------------------------------------

/// The fields of a `job-started` event.
#[derive(Debug, Clone, PartialEq)]
pub struct Started {
    pub job: u64,
    pub input: PathBuf,
    pub output: PathBuf,
    pub session_id: String,
    pub resumed: bool,
    pub chunks_total: usize,
    pub chunks_done: usize,
    pub frames_total: u64,
}

pub fn as_started(e: &Event) -> Option<Started> {
    match e {
        Event::JobStarted {
            job,
            input,
            output,
            session_id,
            resumed,
            chunks_total,
            chunks_done,
            frames_total,
        } => Some(Started {
            job: *job,
            input: input.clone(),
            output: output.clone(),
            session_id: session_id.clone(),
            resumed: *resumed,
            chunks_total: *chunks_total,
            chunks_done: *chunks_done,
            frames_total: *frames_total,
        }),
        _ => None,
    }
}

/// Every `job-started` event.
pub fn started_events(events: &[Event]) -> Vec<Started> {
    events.iter().filter_map(as_started).collect()
}

/// The single `job-started` event of a one-input run.
pub fn single_start(events: &[Event]) -> Started {
    let s = started_events(events);
    assert_eq!(s.len(), 1, "expected exactly one job-started: {events:#?}");
    s.into_iter().next().expect("one element")
}

/// Indices of every `chunk-done` event, in order.
pub fn chunk_done_indices(events: &[Event]) -> Vec<usize> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ChunkDone { index, .. } => Some(*index),
            _ => None,
        })
        .collect()
}

/// Outputs of every `job-finished` event.
pub fn finished_outputs(events: &[Event]) -> Vec<PathBuf> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::JobFinished { output, .. } => Some(output.clone()),
            _ => None,
        })
        .collect()
}

/// The single output of a one-input run that finished.
pub fn single_output(events: &[Event]) -> PathBuf {
    let o = finished_outputs(events);
    assert_eq!(o.len(), 1, "expected exactly one job-finished: {events:#?}");
    o.into_iter().next().expect("one element")
}

/// Messages of every `warning` event.
pub fn warnings(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Warning { message, .. } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

/// (error, resumable) of every `job-failed` event.
pub fn failures(events: &[Event]) -> Vec<(String, bool)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::JobFailed {
                error, resumable, ..
            } => Some((error.clone(), *resumable)),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// External tools
// ---------------------------------------------------------------------------------------------

/// Runs a tool (ffmpeg, ffprobe, …) and returns its stdout; panics with stderr on failure.
pub fn tool<I, S>(program: &str, args: I) -> Vec<u8>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null());
    let cmdline = describe_command(&cmd);
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmdline}: {e}"));
    assert!(
        out.status.success(),
        "{cmdline} failed: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `file:` + absolute path: a path ffmpeg never reads as an option or a protocol.
pub fn ff_path(p: &Path) -> OsString {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().expect("cwd").join(p)
    };
    let mut s = OsString::from("file:");
    s.push(abs.as_os_str());
    s
}

fn ffmpeg_gen(args: Vec<OsString>) {
    let mut full: Vec<OsString> = ["-nostdin", "-v", "error", "-y", "-threads", "1"]
        .iter()
        .map(OsString::from)
        .collect();
    full.extend(args);
    tool("ffmpeg", full);
}

/// `ffprobe -v error ARGS file:PATH`, stdout. Panics when ffprobe fails.
pub fn ffprobe(args: &str, path: &Path) -> Vec<u8> {
    let mut a = words("-v error");
    a.extend(words(args));
    a.push(ff_path(path));
    tool("ffprobe", a)
}

/// `ffprobe -show_format -show_streams -show_chapters` as JSON. Panics when ffprobe fails.
pub fn ffprobe_json(path: &Path) -> Value {
    let out = ffprobe(
        "-print_format json -show_format -show_streams -show_chapters",
        path,
    );
    serde_json::from_slice(&out).expect("ffprobe JSON")
}

/// `ffprobe` succeeds on `path` (used on fixtures meant to be broken).
pub fn ffprobe_ok(path: &Path) -> bool {
    Command::new("ffprobe")
        .args([OsString::from("-v"), "error".into(), ff_path(path)])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Streams of one `codec_type` ("video", "audio", "subtitle", "attachment").
pub fn streams_of(probe: &Value, codec_type: &str) -> Vec<Value> {
    probe["streams"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|s| s["codec_type"] == codec_type)
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// The first video stream.
pub fn video_stream(probe: &Value) -> Value {
    streams_of(probe, "video")
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no video stream in {probe:#}"))
}

/// Coded width × height of the first video stream.
pub fn video_size(path: &Path) -> (u64, u64) {
    let v = video_stream(&ffprobe_json(path));
    (
        v["width"].as_u64().expect("width"),
        v["height"].as_u64().expect("height"),
    )
}

/// Rotation of a stream in degrees (display matrix side data or a `rotate` tag), 0 if none.
pub fn rotation_deg(stream: &Value) -> i64 {
    if let Some(list) = stream["side_data_list"].as_array() {
        for sd in list {
            if let Some(r) = sd["rotation"].as_i64()
                && r != 0
            {
                return r;
            }
        }
    }
    stream["tags"]["rotate"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// `format.duration` in seconds.
pub fn duration_secs(probe: &Value) -> f64 {
    probe["format"]["duration"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no format.duration in {probe:#}"))
}

/// `ffmpeg -f framemd5` of the first video stream: one line per decoded frame
/// (stream, dts, pts, duration, size, md5), header comments dropped.
pub fn framemd5(path: &Path) -> Vec<String> {
    let mut args = words("-nostdin -v error -i");
    args.push(ff_path(path));
    args.extend(words("-map 0:v:0 -f framemd5 -"));
    let out = tool("ffmpeg", args);
    String::from_utf8_lossy(&out)
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// Only the md5 column of [`framemd5`]: the decoded pictures, whatever their timestamps.
pub fn frame_hashes(path: &Path) -> Vec<String> {
    framemd5(path)
        .iter()
        .map(|l| l.rsplit(',').next().unwrap_or("").trim().to_string())
        .collect()
}

/// Every video frame's presentation time in seconds (ffprobe packet pts_time), sorted.
pub fn frame_times(path: &Path) -> Vec<f64> {
    let out = ffprobe(
        "-select_streams v:0 -show_entries packet=pts_time -of csv=p=0",
        path,
    );
    let mut v: Vec<f64> = String::from_utf8_lossy(&out)
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect();
    v.sort_by(f64::total_cmp);
    v
}

/// Number of video packets (frames) of the first video stream, counted by reading them.
pub fn count_video_frames(path: &Path) -> u64 {
    let out = ffprobe(
        "-select_streams v:0 -count_packets -show_entries stream=nb_read_packets -of json",
        path,
    );
    let v: Value = serde_json::from_slice(&out).expect("ffprobe JSON");
    v["streams"][0]["nb_read_packets"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("cannot count frames of {}: {v}", path.display()))
}

/// Asserts that `out` has as many frames as `src` and every frame time, counted from the first
/// frame, within `tol_secs` of the source's. A constant shift of the whole timeline is allowed
/// (Matroska cannot start a stream before 0, so a copied AAC track with encoder delay moves
/// everything by 21 ms); audio sync is checked separately.
pub fn assert_same_frame_times(src: &[f64], out: &[f64], tol_secs: f64) {
    assert_eq!(
        src.len(),
        out.len(),
        "frame count differs: source {} vs output {}\nsource: {src:?}\noutput: {out:?}",
        src.len(),
        out.len()
    );
    let (s0, o0) = (
        src.first().copied().unwrap_or(0.0),
        out.first().copied().unwrap_or(0.0),
    );
    for (i, (a, b)) in src.iter().zip(out).enumerate() {
        let (a, b) = (a - s0, b - o0);
        assert!(
            (a - b).abs() <= tol_secs,
            "frame {i}: source at +{a:.6}s, output at +{b:.6}s from the first frame (tolerance {tol_secs}s)\nsource: {src:?}\noutput: {out:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// "Nothing of the user's lost"
// ---------------------------------------------------------------------------------------------

/// Content and modification time of a file, to check it was left untouched.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    pub bytes: Vec<u8>,
    pub modified: SystemTime,
}

pub fn snapshot(path: &Path) -> Snapshot {
    Snapshot {
        bytes: fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())),
        modified: fs::metadata(path)
            .and_then(|m| m.modified())
            .unwrap_or_else(|e| panic!("stat {}: {e}", path.display())),
    }
}

pub fn assert_untouched(path: &Path, before: &Snapshot) {
    let now = snapshot(path);
    assert!(
        now.bytes == before.bytes,
        "{} was modified ({} bytes before, {} after)",
        path.display(),
        before.bytes.len(),
        now.bytes.len()
    );
    assert_eq!(
        now.modified,
        before.modified,
        "mtime of {} changed",
        path.display()
    );
}

/// Every file below `dir` (relative paths, sorted).
pub fn list_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(base: &Path, d: &Path, out: &mut Vec<PathBuf>) {
        if let Ok(rd) = fs::read_dir(d) {
            for e in rd.filter_map(|e| e.ok()) {
                let p = e.path();
                if p.is_dir() {
                    walk(base, &p, out);
                } else {
                    out.push(p.strip_prefix(base).unwrap_or(&p).to_path_buf());
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

// ---------------------------------------------------------------------------------------------
// Fixtures (ffmpeg lavfi)
// ---------------------------------------------------------------------------------------------

/// Shape of a generated clip.
#[derive(Debug, Clone, Copy)]
pub struct Clip {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub duration_secs: f64,
}

impl Default for Clip {
    fn default() -> Self {
        Clip {
            width: 320,
            height: 240,
            fps: 24,
            duration_secs: 3.0,
        }
    }
}

impl Clip {
    pub fn secs(duration_secs: f64) -> Clip {
        Clip {
            duration_secs,
            ..Clip::default()
        }
    }

    pub fn frames(&self) -> u64 {
        (self.duration_secs * self.fps as f64).round() as u64
    }

    fn testsrc(&self) -> String {
        format!(
            "testsrc2=size={}x{}:rate={}:duration={}",
            self.width, self.height, self.fps, self.duration_secs
        )
    }

    fn sine(&self, freq_hz: u32) -> String {
        format!(
            "sine=frequency={freq_hz}:sample_rate=48000:duration={}",
            self.duration_secs
        )
    }
}

/// Arguments from a space-separated string (for arguments without spaces).
fn words(s: &str) -> Vec<OsString> {
    s.split_whitespace().map(OsString::from).collect()
}

/// H.264 with B-frames (so the mp4 gets an edit list, as real files do), keyframe every second.
fn h264_args(fps: u32) -> Vec<OsString> {
    words(&format!(
        "-c:v libx264 -preset veryfast -crf 28 -pix_fmt yuv420p -g {fps}"
    ))
}

/// Video (testsrc2) + one AAC audio track; the container follows the extension of `path`.
pub fn make_plain(path: &Path, clip: Clip) -> PathBuf {
    let mut a = words(&format!(
        "-f lavfi -i {} -f lavfi -i {} -map 0:v -map 1:a",
        clip.testsrc(),
        clip.sine(440)
    ));
    a.extend(h264_args(clip.fps));
    a.extend(words("-c:a aac -b:a 64k"));
    a.push(ff_path(path));
    ffmpeg_gen(a);
    path.to_path_buf()
}

/// Like [`make_plain`], with x264's own keyframe interval (250 frames; one encoder thread,
/// so that scene-cut decisions never depend on the load): chunks of half a second
/// then start between keyframes, as chunks shorter than the keyframe interval do in real
/// files (the Lanczos path ends its chunks on keyframes when one is within reach, which with
/// [`make_plain`]'s one-second interval would make its chunks a second long).
pub fn make_long_gop(path: &Path, clip: Clip) -> PathBuf {
    make_custom(path, clip, None, "-g 250 -threads 1")
}

/// Video + AAC audio with extra video options: `vf` (a filter chain, e.g. `setsar=4/3`) and
/// `video_opts` (space-separated encoder options that override the defaults, e.g.
/// `-pix_fmt yuv420p10le`).
pub fn make_custom(path: &Path, clip: Clip, vf: Option<&str>, video_opts: &str) -> PathBuf {
    let mut a = words(&format!(
        "-f lavfi -i {} -f lavfi -i {} -map 0:v -map 1:a",
        clip.testsrc(),
        clip.sine(440)
    ));
    if let Some(vf) = vf {
        a.extend([OsString::from("-vf"), vf.into()]);
    }
    a.extend(h264_args(clip.fps));
    a.extend(words(video_opts));
    a.extend(words("-c:a aac -b:a 64k"));
    a.push(ff_path(path));
    ffmpeg_gen(a);
    path.to_path_buf()
}

/// An MPEG-TS of `clip` (H.264, keyframe every `gop` frames, AAC) whose middle is damaged: the
/// payload of the packets from 45 % to 60 % of the file scrambled, headers kept, as a bad
/// sector or a broken transmission leaves it. Written to `path`; `path` with `.full.ts`
/// appended holds the undamaged file.
pub fn make_damaged_ts(path: &Path, clip: Clip, gop: u32) -> PathBuf {
    let mut full_name = path.as_os_str().to_owned();
    full_name.push(".full.ts");
    let full = make_custom(Path::new(&full_name), clip, None, &format!("-g {gop}"));
    let mut bytes = fs::read(&full).expect("test setup");
    let packets = bytes.len() / 188;
    let mut state: u32 = 0x9e37_79b9;
    for packet in packets * 45 / 100..packets * 60 / 100 {
        // Keep the 4-byte packet header, scramble the payload (xorshift).
        for byte in &mut bytes[packet * 188 + 4..(packet + 1) * 188] {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            *byte = state as u8;
        }
    }
    fs::write(path, &bytes).expect("test setup");
    path.to_path_buf()
}

/// An MPEG-TS of `clip` (H.264, keyframe every `gop` frames, AAC) that lost the packets of
/// its keyframe nearest the middle: the rest of that GOP is listed but cannot be decoded
/// (its parameter sets and reference went with the keyframe). Small frames fit in one or two
/// transport packets, so scrambling bytes (as [`make_damaged_ts`] does) would only lose
/// whole frames; this damages tiny clips too.
pub fn make_ts_with_lost_keyframe(path: &Path, clip: Clip, gop: u32) -> PathBuf {
    const VIDEO_PID: u16 = 0x100;
    let mut full_name = path.as_os_str().to_owned();
    full_name.push(".full.ts");
    let full = make_custom(Path::new(&full_name), clip, None, &format!("-g {gop}"));
    let bytes = fs::read(&full).expect("test setup");
    let packets: Vec<&[u8]> = bytes.chunks_exact(188).collect();
    let pid = |p: &[u8]| (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2]);
    let starts_pes = |p: &[u8]| pid(p) == VIDEO_PID && p[1] & 0x40 != 0;
    // Random access indicator in the adaptation field.
    let random_access = |p: &[u8]| p[3] & 0x20 != 0 && p[4] > 0 && p[5] & 0x40 != 0;
    let keyframes: Vec<usize> = (0..packets.len())
        .filter(|&i| starts_pes(packets[i]) && random_access(packets[i]))
        .collect();
    let middle = packets.len() / 2;
    let lost = *keyframes
        .iter()
        .skip(1)
        .min_by_key(|&&i| i.abs_diff(middle))
        .expect("test setup: the clip has a second keyframe");
    let end = (lost + 1..packets.len())
        .find(|&i| starts_pes(packets[i]))
        .unwrap_or(packets.len());
    let kept: Vec<u8> = packets
        .iter()
        .enumerate()
        .filter(|&(i, p)| !(pid(p) == VIDEO_PID && (lost..end).contains(&i)))
        .flat_map(|(_, p)| p.iter().copied())
        .collect();
    fs::write(path, kept).expect("test setup");
    path.to_path_buf()
}

/// Interlaced (top field first) H.264, flagged as such.
pub fn make_interlaced(path: &Path, clip: Clip) -> PathBuf {
    make_custom(
        path,
        clip,
        Some("setfield=tff"),
        "-flags +ildct+ilme -top 1",
    )
}

/// 10-bit 4:2:0 H.264 (High 10).
pub fn make_10bit(path: &Path, clip: Clip) -> PathBuf {
    make_custom(path, clip, None, "-pix_fmt yuv420p10le")
}

/// Anamorphic: 320x240 stored pixels shown at 16:9 (sample aspect ratio 4:3).
pub fn make_anamorphic(path: &Path, clip: Clip) -> PathBuf {
    make_custom(path, clip, Some("setsar=4/3"), "")
}

/// Odd dimensions, 321x241 (4:4:4, since 4:2:0 needs even sizes).
pub fn make_odd_size(path: &Path, clip: Clip) -> PathBuf {
    make_custom(path, clip, Some("scale=321:241"), "-pix_fmt yuv444p")
}

/// Video only, no audio.
pub fn make_silent(path: &Path, clip: Clip) -> PathBuf {
    let mut a = words(&format!("-f lavfi -i {}", clip.testsrc()));
    a.extend(h264_args(clip.fps));
    a.push(ff_path(path));
    ffmpeg_gen(a);
    path.to_path_buf()
}

/// A variable-frame-rate clip: frames dropped irregularly and some shifted by 7 ms, so frame
/// times are neither evenly spaced nor on a 1/fps grid. With audio.
pub fn make_vfr(path: &Path, clip: Clip) -> PathBuf {
    let select = "select='not(eq(mod(n\\,5)\\,2))*not(eq(mod(n\\,7)\\,4))*not(between(n\\,30\\,33))',\
                  settb=1/1000,setpts=PTS+if(eq(mod(N\\,3)\\,1)\\,7\\,0)";
    let mut a = words(&format!(
        "-f lavfi -i {} -f lavfi -i {} -map 0:v -map 1:a",
        clip.testsrc(),
        clip.sine(440)
    ));
    a.extend([OsString::from("-vf"), select.into()]);
    a.extend(words("-fps_mode vfr -enc_time_base:v 1:1000"));
    a.extend(h264_args(clip.fps));
    a.extend(words("-c:a aac -b:a 64k"));
    a.push(ff_path(path));
    ffmpeg_gen(a);
    path.to_path_buf()
}

/// Names and contents of the extra streams of [`make_rich_mkv`], for assertions.
pub const RICH_AUDIO_LANGUAGES: [&str; 2] = ["eng", "fra"];
pub const RICH_CHAPTER_TITLES: [&str; 2] = ["Opening", "Ending"];
pub const RICH_FONT_NAME: &str = "fixture.ttf";
pub const RICH_SUBTITLE_TEXT: &str = "Hello from reframe";

/// Matroska with video, two audio tracks (AAC "eng", Opus "fra"), an ASS subtitle track, a
/// font attachment (mimetype application/x-truetype-font) and two chapters.
pub fn make_rich_mkv(path: &Path, clip: Clip) -> PathBuf {
    let dir = path.parent().expect("fixture path has a parent");
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ass = dir.join(format!(".{stem}.ass"));
    let chapters = dir.join(format!(".{stem}.ffmeta"));
    let font = dir.join(format!(".{stem}.{RICH_FONT_NAME}"));
    let end_cs = (clip.duration_secs * 100.0) as u64;
    fs::write(
        &ass,
        format!(
            "[Script Info]\nScriptType: v4.00+\nPlayResX: {w}\nPlayResY: {h}\n\n\
             [V4+ Styles]\nFormat: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n\
             Style: Default,Fixture Sans,20,&H00FFFFFF,&H000000FF,&H00000000,&H00000000,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,1\n\n\
             [Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n\
             Dialogue: 0,0:00:00.20,0:00:01.00,Default,,0,0,0,,{RICH_SUBTITLE_TEXT}\n\
             Dialogue: 0,0:00:01.20,0:00:{s:02}.{cs:02},Default,,0,0,0,,Second line\n",
            w = clip.width,
            h = clip.height,
            s = end_cs / 100,
            cs = end_cs % 100,
        ),
    )
    .expect("write ass");
    let half_ms = (clip.duration_secs * 500.0) as u64;
    let end_ms = (clip.duration_secs * 1000.0) as u64;
    fs::write(
        &chapters,
        format!(
            ";FFMETADATA1\ntitle=reframe rich fixture\n\n\
             [CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND={half_ms}\ntitle={}\n\n\
             [CHAPTER]\nTIMEBASE=1/1000\nSTART={half_ms}\nEND={end_ms}\ntitle={}\n",
            RICH_CHAPTER_TITLES[0], RICH_CHAPTER_TITLES[1]
        ),
    )
    .expect("write chapters");
    // Not a real font: the muxers only carry the bytes; what matters is the mimetype.
    let mut font_bytes = vec![0x00, 0x01, 0x00, 0x00, 0x00, 0x04];
    font_bytes.extend((0..2048u32).map(|i| (i * 31 % 251) as u8));
    fs::write(&font, font_bytes).expect("write font");

    let mut a = words(&format!(
        "-f lavfi -i {} -f lavfi -i {} -f lavfi -i {}",
        clip.testsrc(),
        clip.sine(440),
        clip.sine(660)
    ));
    a.extend([OsString::from("-i"), ff_path(&ass)]);
    a.extend([
        OsString::from("-f"),
        "ffmetadata".into(),
        "-i".into(),
        ff_path(&chapters),
    ]);
    a.extend(words(
        "-map 0:v -map 1:a -map 2:a -map 3:s -map_chapters 4 -map_metadata 4",
    ));
    a.extend(h264_args(clip.fps));
    a.extend(words(
        "-c:a:0 aac -b:a:0 64k -c:a:1 libopus -b:a:1 48k -c:s ass",
    ));
    a.extend(words(&format!(
        "-metadata:s:a:0 language={} -metadata:s:a:0 title=Main \
         -metadata:s:a:1 language={} -metadata:s:a:1 title=Commentary \
         -metadata:s:s:0 language=eng",
        RICH_AUDIO_LANGUAGES[0], RICH_AUDIO_LANGUAGES[1]
    )));
    a.extend([OsString::from("-attach"), ff_path(&font)]);
    a.extend(words(&format!(
        "-metadata:s:t:0 mimetype=application/x-truetype-font \
         -metadata:s:t:0 filename={RICH_FONT_NAME}"
    )));
    a.push(ff_path(path));
    ffmpeg_gen(a);
    for f in [&ass, &chapters, &font] {
        let _ = fs::remove_file(f);
    }
    path.to_path_buf()
}

/// The plain clip with a display rotation of `degrees` (ffmpeg 5.1 `rotate` metadata).
pub fn make_rotated(path: &Path, clip: Clip, degrees: i32) -> PathBuf {
    let dir = path.parent().expect("fixture path has a parent");
    let tmp = dir.join(".unrotated.mp4");
    make_plain(&tmp, clip);
    let mut a = vec![OsString::from("-i"), ff_path(&tmp)];
    a.extend(words(&format!(
        "-map 0 -c copy -metadata:s:v:0 rotate={degrees}"
    )));
    a.push(ff_path(path));
    ffmpeg_gen(a);
    let _ = fs::remove_file(&tmp);
    path.to_path_buf()
}

/// An mp4 holding only an AAC track.
pub fn make_audio_only(path: &Path, duration_secs: f64) -> PathBuf {
    let clip = Clip::secs(duration_secs);
    let mut a = words(&format!("-f lavfi -i {} -c:a aac -b:a 64k", clip.sine(440)));
    a.push(ff_path(path));
    ffmpeg_gen(a);
    path.to_path_buf()
}

/// An empty file.
pub fn make_zero_byte(path: &Path) -> PathBuf {
    fs::write(path, b"").expect("write empty file");
    path.to_path_buf()
}

/// A text file (named whatever the caller likes, e.g. `notes.mp4`).
pub fn make_text_file(path: &Path) -> PathBuf {
    fs::write(
        path,
        "These are notes, not a video.\nShopping list: milk, eggs, a faster GPU.\n".repeat(20),
    )
    .expect("write text file");
    path.to_path_buf()
}

/// How [`make_truncated`] cuts the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truncation {
    /// An interrupted download of an ordinary mp4 (index at the end): the index is missing,
    /// nothing can be read.
    NoIndex,
    /// An interrupted download of a "faststart" mp4 (index first): it probes fine, but frames
    /// past the cut are missing.
    MissingFrames,
}

/// An mp4 cut to 60 % of its length.
pub fn make_truncated(path: &Path, clip: Clip, how: Truncation) -> PathBuf {
    let dir = path.parent().expect("fixture path has a parent");
    let full = dir.join(".full-before-truncation.mp4");
    let mut a = words(&format!(
        "-f lavfi -i {} -f lavfi -i {} -map 0:v -map 1:a",
        clip.testsrc(),
        clip.sine(440)
    ));
    a.extend(h264_args(clip.fps));
    a.extend(words("-c:a aac -b:a 64k"));
    if how == Truncation::MissingFrames {
        a.extend(words("-movflags +faststart"));
    }
    a.push(ff_path(&full));
    ffmpeg_gen(a);
    let bytes = fs::read(&full).expect("read full mp4");
    fs::write(path, &bytes[..bytes.len() * 6 / 10]).expect("write truncated mp4");
    let _ = fs::remove_file(&full);
    path.to_path_buf()
}

/// File names that break naive command building: spaces, quotes, unicode, a leading dash, and
/// things ffmpeg would take for a protocol or an option.
pub const AWKWARD_NAMES: [&str; 5] = [
    "my holiday clip.mp4",
    "it's a \"quoted\" name.mp4",
    "ünïcødé 日本語 🎬.mp4",
    "-i leading dash.mp4",
    "pipe:0 concat:x.mp4",
];

/// The first frame as displayed (rotation applied by ffmpeg), scaled to `w`×`h` gray pixels.
pub fn display_thumbnail(path: &Path, w: u32, h: u32) -> Vec<u8> {
    let mut args = words("-nostdin -v error -i");
    args.push(ff_path(path));
    args.extend(words(&format!(
        "-vf scale={w}:{h},format=gray -frames:v 1 -f rawvideo -"
    )));
    tool("ffmpeg", args)
}

/// Mean absolute difference of two equally sized 8-bit images.
pub fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len(), "images of different sizes");
    let sum: u64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    sum as f64 / a.len().max(1) as f64
}

/// Subtitle track `index` of a file, converted to ASS text.
pub fn subtitle_text(path: &Path, index: usize) -> String {
    let mut args = words("-nostdin -v error -i");
    args.push(ff_path(path));
    args.extend(words(&format!("-map 0:s:{index} -f ass -")));
    String::from_utf8_lossy(&tool("ffmpeg", args)).into_owned()
}

/// `start_time` of a stream in seconds (0 when absent).
pub fn start_secs(stream: &Value) -> f64 {
    stream["start_time"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0)
}

/// A user preset file (JSON) written into the work dir; returns its path.
pub fn write_preset_file(env: &TestEnv, file_name: &str, json: &str) -> PathBuf {
    let p = env.path(file_name);
    fs::write(&p, json).expect("write preset file");
    p
}

/// A lossless 8-bit FFV1 preset in Matroska: decoded output frames equal the engine's output
/// bit for bit.
pub const FFV1_8BIT_PRESET: &str = r#"{
  "name": "test_ffv1_8bit",
  "description": "Lossless FFV1 8-bit 4:2:0 in MKV (tests).",
  "output": { "kind": "file", "container": "mkv" },
  "video": { "codec": "ffv1", "pix_fmt": "yuv420p" },
  "audio": { "mode": "copy" }
}
"#;
