//! The bad-input corpus (`tests/bad-inputs/cases.txt`): every broken scenario, artifact and
//! report, and every impossible request, ends with its documented exit status and a message
//! naming the problem, never a panic. Adding a case is adding a line.

use std::path::Path;
use std::process::Command;

#[test]
fn every_bad_input_is_named_and_exits_as_documented() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad-inputs");
    let cases = std::fs::read_to_string(corpus.join("cases.txt")).unwrap();
    let mut failures = Vec::new();
    let mut count = 0;
    for line in cases
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let [exit, words, args] = line.splitn(3, " | ").collect::<Vec<_>>()[..] else {
            panic!("malformed case: {line}");
        };
        let args: Vec<String> = args
            .split_whitespace()
            .map(|a| match a.strip_prefix('@') {
                Some(name) => corpus.join(name).display().to_string(),
                None => a.to_string(),
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_harness"))
            .args(&args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let code = out.status.code();
        count += 1;
        if code != Some(exit.parse().unwrap())
            || !stderr.contains(words)
            || stderr.contains("panicked")
        {
            failures.push(format!("{line}\n  exited {code:?}: {stderr}"));
        }
    }
    assert!(count >= 20, "the corpus lost its cases");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
