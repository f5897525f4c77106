//! Runs the `chromatica` binary for the CLI crate's tests. Everything else
//! the tests share (data, reference answers, the workload model) is in
//! `chromatica::testing`.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output};

/// The binary with `args`, not yet started.
pub fn command<S: AsRef<OsStr>>(args: &[S]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_chromatica"));
    c.args(args);
    c
}

/// Runs the binary to completion.
pub fn run<S: AsRef<OsStr>>(args: &[S]) -> Output {
    command(args).output().expect("run the chromatica binary")
}

/// Output bytes as text (lossy).
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The arguments as strings, for messages.
pub fn argv<S: AsRef<OsStr>>(args: &[S]) -> Vec<String> {
    args.iter().map(|a| a.as_ref().to_string_lossy().into_owned()).collect()
}

/// Runs a command that must succeed; returns (stdout, stderr).
pub fn ok<S: AsRef<OsStr>>(args: &[S]) -> (String, String) {
    let out = run(args);
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{:?} failed ({}):\nstdout: {so}\nstderr: {se}", argv(args), out.status);
    (so, se)
}

/// Runs a command that must fail with exit status 1 and exactly one stderr
/// line starting with "error: "; returns that line.
pub fn fails<S: AsRef<OsStr>>(args: &[S]) -> String {
    let out = run(args);
    let se = text(&out.stderr);
    assert!(!out.status.success(), "{:?} succeeded; stdout: {}", argv(args), text(&out.stdout));
    assert_eq!(out.status.code(), Some(1), "{:?}: exit status {}; stderr: {se}", argv(args), out.status);
    let lines: Vec<&str> = se.lines().collect();
    assert_eq!(lines.len(), 1, "{:?}: stderr is not one line: {se:?}", argv(args));
    assert!(lines[0].starts_with("error: "), "{:?}: stderr {se:?}", argv(args));
    assert_no_doubled_prefix(lines[0]);
    lines[0].to_owned()
}

/// [`fails`], and the error line contains `want`.
pub fn fails_with<S: AsRef<OsStr>>(args: &[S], want: &str) -> String {
    let line = fails(args);
    assert!(line.contains(want), "error {line:?} does not contain {want:?}");
    line
}

/// Runs a command that clap must reject (exit status 2).
pub fn usage_error<S: AsRef<OsStr>>(args: &[S]) -> String {
    let out = run(args);
    let se = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{:?}: status {}; stderr: {se}", argv(args), out.status);
    assert!(se.starts_with("error: "), "{se}");
    se
}

/// A path as an argument (test paths are UTF-8).
pub fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

/// The prefixes error messages start with (`chromatica::Error`'s Display):
/// a message wrapped twice would carry one twice ("invalid input: invalid
/// input: …").
pub const PREFIXES: [&str; 5] =
    ["error: ", "invalid input: ", "invalid argument: ", "invalid configuration: ", "nothing was committed: "];

/// Every failure `fails` sees is checked with this.
pub fn assert_no_doubled_prefix(line: &str) {
    for p in PREFIXES {
        assert!(line.matches(p).count() <= 1, "{p:?} appears twice in {line:?}");
    }
}
