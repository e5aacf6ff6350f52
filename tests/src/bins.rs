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

/// The four filters' paths as strings, for shell pipelines: [hash, seal, par, ship].
pub fn filters() -> [String; 4] {
    [
        "zstream-hash",
        "zstream-seal",
        "zstream-par",
        "zstream-ship",
    ]
    .map(|b| bin(b).to_str().expect("a UTF-8 path").to_string())
}

/// New key files `dir/NAME` from `zstream-seal keygen`; returns their paths.
pub fn keygen(dir: &std::path::Path, names: &[&str]) -> Vec<String> {
    names
        .iter()
        .map(|n| {
            let p = dir.join(n).to_str().expect("a UTF-8 path").to_string();
            let out = std::process::Command::new(bin("zstream-seal"))
                .args(["keygen", "-o", &p])
                .output()
                .expect("running zstream-seal keygen");
            assert!(
                out.status.success(),
                "keygen: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            p
        })
        .collect()
}
