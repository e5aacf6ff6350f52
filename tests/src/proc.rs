//! Running a binary with given input and showing everything about it when an assertion fails.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// What a finished command did, with the command line for messages.
pub struct Run {
    pub cmd: String,
    pub out: Output,
}

impl Run {
    pub fn code(&self) -> Option<i32> {
        self.out.status.code()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
    pub fn stdout(&self) -> &[u8] {
        &self.out.stdout
    }

    /// Asserts the exit code, printing the command, its status and stderr otherwise.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code(), Some(code), "{}", self.describe());
        self
    }

    /// Asserts that stderr is the tool's one line (or none), never a panic or a backtrace.
    #[track_caller]
    pub fn expect_clean_stderr(&self, prog: &str) -> &Self {
        let err = self.stderr();
        assert!(
            !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
            "a panic: {}",
            self.describe()
        );
        for line in err.lines() {
            assert!(
                line.starts_with(&format!("{prog}: ")),
                "stderr line not prefixed with '{prog}: ': {}",
                self.describe()
            );
        }
        self
    }

    pub fn describe(&self) -> String {
        format!(
            "command: {}\nstatus: {}\nstdout: {} bytes\nstderr:\n{}",
            self.cmd,
            self.out.status,
            self.out.stdout.len(),
            self.stderr()
        )
    }
}

/// Runs `bin args` with `input` on stdin (written from a thread, so large inputs cannot deadlock) and collects the
/// outputs. stdin and stdout are pipes.
pub fn run(bin: &Path, args: &[&str], input: &[u8]) -> Run {
    run_env(bin, args, input, &[])
}

/// `run` with extra environment variables (the AWS SDK's settings for a test server).
pub fn run_env(bin: &Path, args: &[&str], input: &[u8], env: &[(String, String)]) -> Run {
    let mut child = Command::new(bin)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {}: {e}", bin.display()));
    let mut stdin = child.stdin.take().expect("stdin piped");
    let out = std::thread::scope(|s| {
        s.spawn(move || {
            // A tool that exits early closes its stdin: that is the tool's business, not a test failure.
            let _ = stdin.write_all(input);
        });
        child.wait_with_output().expect("waiting for the child")
    });
    Run {
        cmd: format!("{} {}", bin.display(), args.join(" ")),
        out,
    }
}

/// Runs a command line through `bash -o pipefail -c`, for pipes between real tools.
pub fn sh(script: &str) -> Run {
    sh_env(script, &[])
}

/// `sh` with extra environment variables.
pub fn sh_env(script: &str, env: &[(String, String)]) -> Run {
    let out = Command::new("bash")
        .args(["-o", "pipefail", "-euc", script])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("running bash");
    Run {
        cmd: script.to_string(),
        out,
    }
}
