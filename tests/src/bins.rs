//! The workspace's binaries, as the test command built them. A test in one package cannot name another package's
//! binary through `CARGO_BIN_EXE_*`, and running cargo from a test rebuilds with other features (minutes), so the
//! binaries are found next to the test executable, where `cargo build --workspace --bins` (run by scripts/test
//! before `cargo test`) puts them.

use std::path::PathBuf;

/// The path of the workspace binary `name`, e.g. `bin("zstream-hash")`.
pub fn bin(name: &str) -> PathBuf {
    // target/<profile>/deps/<test>-<hash> -> target/<profile>
    let exe = std::env::current_exe().expect("the test executable's path");
    let dir = exe
        .parent()
        .and_then(|p| p.parent())
        .expect("a test executable under target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first with `cargo build --workspace --bins` in the same profile \
         (scripts/test does)",
        path.display()
    );
    path
}
