//! Evidence that survives: Ctrl-C during a `--keep-going` sweep stops it with exit status 130
//! and a partial report marked incomplete, leaving only whole, loadable artifacts; a failed
//! write to standard output is exit status 3 with one line, not a panic's 101.

use harness::artifact::Artifact;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Polls `ready` every 50 ms for at most `limit`: real signals need real time, but bounded.
fn wait_until(limit: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if ready() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn artifacts(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[test]
fn sigint_during_a_keep_going_sweep_leaves_only_whole_artifacts_and_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let failures = dir.path().join("failures");
    let mut child = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["explore", "--bug", "store-no-dedup", "--keep-going"])
        .args(["--seeds", "0..1000000", "--jobs", "2", "--failures"])
        .arg(&failures)
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let found = wait_until(Duration::from_secs(60), || artifacts(&failures).len() >= 3);
    // SAFETY: kill(2) on the child we started, by its id.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGINT);
    }
    let ended = wait_until(Duration::from_secs(60), || {
        matches!(child.try_wait(), Ok(Some(_)))
    });
    if !ended {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    assert!(found && ended, "no artifacts, or no stop after SIGINT");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stdout}{stderr}");
    assert!(stdout.starts_with("INCOMPLETE"), "{stdout}");
    let written = artifacts(&failures);
    assert!(written.len() >= 3);
    for path in written {
        assert_eq!(path.extension().and_then(|e| e.to_str()), Some("json"));
        Artifact::load(&path).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn a_failed_write_to_standard_output_is_exit_3_with_one_line() {
    let Ok(full) = std::fs::File::create("/dev/full") else {
        return; // not on Linux: nothing to test with
    };
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .arg("list")
        .stdout(full)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.starts_with("harness: internal error:")
            && stderr.contains("cannot write to standard output"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}
