//! Supervisor tests against small shell scripts that speak the protocol (canned lines), so that
//! crash, watchdog, cancel and version handling are checked without the real worker.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::*;
use crate::protocol::ResumeMode;

const HELLO: &str = r#"{"type":"hello","version":1,"pid":1}"#;

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn spec() -> JobSpec {
    JobSpec {
        input: PathBuf::from("/tmp/in.mp4"),
        engine: "lanczos".into(),
        scale: Some(2.0),
        height: None,
        denoise: None,
        preset: "h264_hq".into(),
        output: None,
        overwrite: false,
        resume: ResumeMode::Auto,
        chunk_seconds: 5.0,
        deinterlace: false,
        models_dir: None,
    }
}

fn supervisor(program: PathBuf, silence: Duration, grace: Duration) -> Supervisor {
    let mut config = SupervisorConfig::new(WorkerCommand::new(program));
    config.silence_timeout = silence;
    config.cancel_grace = grace;
    Supervisor::new(config, Arc::new(|| {}))
}

/// Collects events until `stop` says so, failing after `timeout`.
fn collect_until(
    sup: &Supervisor,
    timeout: Duration,
    mut stop: impl FnMut(&SupervisorEvent) -> bool,
) -> Vec<SupervisorEvent> {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match sup.events().recv_timeout(left) {
            Ok(event) => {
                let done = stop(&event);
                seen.push(event);
                if done {
                    return seen;
                }
            }
            Err(_) => panic!("timed out; events so far: {seen:#?}"),
        }
    }
}

fn is_exit(event: &SupervisorEvent) -> bool {
    matches!(event, SupervisorEvent::WorkerExited { .. })
}

fn exit_of(events: &[SupervisorEvent]) -> (Option<JobId>, ExitInfo, ExitReason, String) {
    match events.last() {
        Some(SupervisorEvent::WorkerExited {
            job,
            exit,
            reason,
            stderr_tail,
            ..
        }) => (*job, *exit, *reason, stderr_tail.clone()),
        other => panic!("expected an exit, got {other:?}"),
    }
}

fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // A zombie is dead; its reaping belongs to its parent.
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[test]
fn runs_a_job_and_stops_cleanly_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let program = script(
        dir.path(),
        "worker.sh",
        &format!(
            r#"read -r hello
echo '{HELLO}'
read -r run
case "$run" in *'"type":"run"'*'"job":7'*) ;; *) echo "bad run line: $run" >&2; exit 3;; esac
echo 'working on it' >&2
echo '{{"type":"job-started","job":7,"input":"/tmp/in.mp4","output":"/tmp/in.2x.mp4","session_id":"abcdef012345","resumed":false,"chunks_total":2,"chunks_done":0,"frames_total":48}}'
echo '{{"type":"progress","job":7,"step":"upscale","percent":50.0,"frames_done":24,"frames_total":48,"fps":30.0,"eta_secs":1.0}}'
echo '{{"type":"job-finished","job":7,"output":"/tmp/in.2x.mp4","elapsed_secs":1.5}}'
cat > /dev/null
exit 0"#
        ),
    );
    let mut sup = supervisor(program, Duration::from_secs(10), Duration::from_secs(5));
    assert!(sup.is_ready());
    sup.run(7, spec()).unwrap();
    assert_eq!(sup.active_job(), Some(7));
    let events = collect_until(&sup, Duration::from_secs(10), |e| {
        matches!(e, SupervisorEvent::Worker(Event::JobFinished { .. }))
    });
    assert!(matches!(events[0], SupervisorEvent::WorkerStarted { .. }));
    assert!(events.iter().any(|e| matches!(
        e,
        SupervisorEvent::Worker(Event::Progress { percent, .. }) if *percent == 50.0
    )));
    assert_eq!(sup.active_job(), None);
    assert!(sup.is_ready());
    let pid = sup.worker_pid().unwrap();
    sup.shutdown();
    let rest = collect_until(&sup, Duration::from_secs(10), is_exit);
    let (job, exit, reason, _) = exit_of(&rest);
    assert_eq!(
        (job, exit.code, reason),
        (None, Some(0), ExitReason::Stopped)
    );
    // stderr has its own reader: its line comes before the exit report, in no set order
    // relative to stdout.
    let log = SupervisorEvent::Log("working on it".into());
    assert!(events.contains(&log) || rest.contains(&log));
    assert!(!process_alive(pid));
    assert_eq!(sup.worker_pid(), None);
}

#[test]
fn a_crash_reports_the_job_status_and_stderr_tail() {
    let dir = tempfile::tempdir().unwrap();
    let program = script(
        dir.path(),
        "crash.sh",
        &format!(
            r#"read -r hello
echo '{HELLO}'
read -r run
echo 'decoder exploded at frame 12' >&2
kill -9 $$"#
        ),
    );
    let mut sup = supervisor(program, Duration::from_secs(10), Duration::from_secs(5));
    sup.run(3, spec()).unwrap();
    let events = collect_until(&sup, Duration::from_secs(10), is_exit);
    let (job, exit, reason, tail) = exit_of(&events);
    assert_eq!(job, Some(3));
    assert_eq!(exit.signal, Some(9));
    assert_eq!(exit.to_string(), "killed by signal 9 (SIGKILL)");
    assert_eq!(reason, ExitReason::Crashed);
    assert!(tail.contains("decoder exploded at frame 12"), "{tail}");
    // The next job gets a fresh worker.
    assert!(sup.is_ready());
}

#[test]
fn a_non_zero_exit_mid_job_is_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let program = script(
        dir.path(),
        "exit.sh",
        &format!("read -r hello\necho '{HELLO}'\nread -r run\nexit 101"),
    );
    let mut sup = supervisor(program, Duration::from_secs(10), Duration::from_secs(5));
    sup.run(4, spec()).unwrap();
    let events = collect_until(&sup, Duration::from_secs(10), is_exit);
    let (job, exit, reason, _) = exit_of(&events);
    assert_eq!(
        (job, exit.code, reason),
        (Some(4), Some(101), ExitReason::Crashed)
    );
    assert_eq!(exit.to_string(), "exit code 101");
}

#[test]
fn the_watchdog_kills_a_silent_worker_and_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("child.pid");
    let program = script(
        dir.path(),
        "silent.sh",
        &format!(
            "read -r hello\necho '{HELLO}'\nread -r run\nsleep 1000 &\necho $! > {}\nwait",
            pid_file.display()
        ),
    );
    let mut sup = supervisor(program, Duration::from_millis(600), Duration::from_secs(5));
    sup.run(5, spec()).unwrap();
    let events = collect_until(&sup, Duration::from_secs(10), is_exit);
    let (job, _, reason, _) = exit_of(&events);
    assert_eq!((job, reason), (Some(5), ExitReason::Unresponsive));
    let child: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(!process_alive(child), "the worker's child {child} survived");
}

#[test]
fn cancel_kills_a_worker_that_ignores_it_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("child.pid");
    // Ignores requests and never reads stdin again, like a worker stuck in a computation.
    let program = script(
        dir.path(),
        "stuck.sh",
        &format!(
            "read -r hello\necho '{HELLO}'\nread -r run\nsleep 1000 &\necho $! > {}\nwait",
            pid_file.display()
        ),
    );
    let mut sup = supervisor(program, Duration::from_secs(30), Duration::from_millis(300));
    sup.run(6, spec()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !pid_file.exists() {
        assert!(
            Instant::now() < deadline,
            "the script never started its child"
        );
        thread::sleep(Duration::from_millis(20));
    }
    let worker = sup.worker_pid().unwrap();
    sup.cancel();
    assert!(!sup.is_ready(), "a stopping worker must not take a new job");
    assert!(matches!(
        sup.run(8, spec()),
        Err(SupervisorError::Busy { job: 6 })
    ));
    let events = collect_until(&sup, Duration::from_secs(10), is_exit);
    let (job, _, reason, _) = exit_of(&events);
    assert_eq!((job, reason), (Some(6), ExitReason::Cancelled));
    let child: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(!process_alive(worker));
    assert!(!process_alive(child));
    assert!(sup.is_ready());
}

#[test]
fn a_worker_of_another_protocol_version_is_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let program = script(
        dir.path(),
        "old.sh",
        r#"read -r hello
echo '{"type":"hello","version":999,"pid":1}'
cat > /dev/null"#,
    );
    let mut sup = supervisor(program, Duration::from_secs(10), Duration::from_secs(5));
    sup.run(1, spec()).unwrap();
    let events = collect_until(&sup, Duration::from_secs(10), is_exit);
    let (_, _, reason, _) = exit_of(&events);
    assert_eq!(
        reason,
        ExitReason::VersionMismatch {
            worker_version: 999
        }
    );
}

#[test]
fn a_missing_program_is_a_spawn_error_naming_it() {
    let mut sup = supervisor(
        PathBuf::from("/nonexistent/reframe"),
        Duration::from_secs(1),
        Duration::from_secs(1),
    );
    let error = sup.run(1, spec()).unwrap_err();
    assert!(matches!(error, SupervisorError::Spawn { .. }));
    assert!(
        error.to_string().ends_with("/nonexistent/reframe"),
        "{error}"
    );
    assert!(sup.is_ready());
}

#[test]
fn stdout_garbage_becomes_a_log_line() {
    let dir = tempfile::tempdir().unwrap();
    let program = script(
        dir.path(),
        "noisy.sh",
        &format!("read -r hello\necho '{HELLO}'\necho 'not json'\ncat > /dev/null"),
    );
    let mut sup = supervisor(program, Duration::from_secs(10), Duration::from_secs(5));
    sup.run(1, spec()).unwrap();
    let events = collect_until(&sup, Duration::from_secs(10), |e| {
        matches!(e, SupervisorEvent::Log(_))
    });
    assert_eq!(
        events.last(),
        Some(&SupervisorEvent::Log(
            "worker wrote a line that is not a protocol message: not json".into()
        ))
    );
}
