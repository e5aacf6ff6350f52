//! Running a binary with given input and showing everything about it when an assertion fails.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long one command of a test may take. Every command here finishes in seconds; one that has not after this
/// is hung (a wedged zfs-fuse, a stage nobody reads), and the test fails saying what was running instead of
/// holding CI until its deadline.
pub const LIMIT: Duration = Duration::from_secs(300);

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
    let mut cmd = Command::new(bin);
    cmd.args(args).envs(env.iter().map(|(k, v)| (k, v)));
    let what = format!("{} {}", bin.display(), args.join(" "));
    let out = output_within(cmd, input, LIMIT, &what);
    Run { cmd: what, out }
}

/// Runs `cmd` with `input` on stdin (written from a thread, so large inputs cannot deadlock) and collects its
/// outputs, waiting at most `limit` for it and for whatever it started that still holds its stdout or stderr. A
/// command still running then fails the test with the processes that were running, after its process group (its
/// own, so that this kills exactly what it started) is killed.
#[track_caller]
pub fn output_within(mut cmd: Command, input: &[u8], limit: Duration, what: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {what}: {e}"));
    let (tx, rx) = mpsc::channel();
    let mut stdin = child.stdin.take().expect("stdin piped");
    let input = input.to_vec();
    // Detached threads: a hung command must not hold the test up on a join.
    std::thread::spawn(move || {
        // A tool that exits early closes its stdin: that is the tool's business, not a test failure.
        let _ = stdin.write_all(&input);
    });
    for (i, mut pipe) in [
        Box::new(child.stdout.take().expect("stdout piped")) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().expect("stderr piped")),
    ]
    .into_iter()
    .enumerate()
    {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            let _ = tx.send((i, buf));
        });
    }
    let deadline = Instant::now() + limit;
    let mut outs = [Vec::new(), Vec::new()];
    let mut got = 0;
    while got < 2 {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok((i, buf)) => {
                outs[i] = buf;
                got += 1;
            }
            Err(_) => hung(&mut child, what, limit),
        }
    }
    let status = loop {
        if let Some(s) = child.try_wait().expect("waiting for the child") {
            break s;
        }
        if Instant::now() > deadline {
            hung(&mut child, what, limit);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let [stdout, stderr] = outs;
    Output {
        status,
        stdout,
        stderr,
    }
}

/// Kills a hung command's process group and fails the test with what was running.
#[track_caller]
fn hung(child: &mut std::process::Child, what: &str, limit: Duration) -> ! {
    let ps = Command::new("ps")
        .args(["-eo", "pid,pgid,etime,stat,args", "--forest"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_else(|e| format!("(ps: {e})"));
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .status();
    let _ = child.wait();
    panic!(
        "{what}: still running after {} s, so it is hung and was killed. What was running then:\n{ps}",
        limit.as_secs()
    );
}

/// Runs a command line through `bash -o pipefail -c`, for pipes between real tools.
pub fn sh(script: &str) -> Run {
    sh_env(script, &[])
}

/// `sh` with extra environment variables.
pub fn sh_env(script: &str, env: &[(String, String)]) -> Run {
    let mut cmd = Command::new("bash");
    cmd.args(["-o", "pipefail", "-euc", script])
        .envs(env.iter().map(|(k, v)| (k, v)));
    let out = output_within(cmd, b"", LIMIT, script);
    Run {
        cmd: script.to_string(),
        out,
    }
}
