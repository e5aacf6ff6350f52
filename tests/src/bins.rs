//! The workspace's binaries, built fresh. A test in one package cannot name another package's binary through
//! `CARGO_BIN_EXE_*`, so the first call runs `cargo build --bins` (a no-op when up to date) and then finds the
//! binaries next to the test executable.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// The path of the workspace binary `name`, e.g. `bin("zstream-hash")`.
pub fn bin(name: &str) -> PathBuf {
    let dir = BUILT
        .get_or_init(build)
        .as_ref()
        .unwrap_or_else(|e| panic!("{e}"));
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing after cargo build --workspace --bins",
        path.display()
    );
    path
}

fn build() -> Result<PathBuf, String> {
    // target/<profile>/deps/<test>-<hash> -> target/<profile>
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot find the test executable: {e}"))?;
    let dir = exe
        .parent()
        .and_then(|p| p.parent())
        .ok_or("unexpected test executable path")?
        .to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--workspace", "--bins", "--quiet"]);
    if dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let status = cmd
        .status()
        .map_err(|e| format!("running cargo build for the binaries under test: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build --workspace --bins failed ({status})"));
    }
    Ok(dir)
}
