//! The seal and par testkits (docs/formats/testkit/): writing a generator's files, and checking that the
//! committed ones are what the generator makes today.

use std::path::Path;

/// Writes every (name, bytes) file into `dir`, for the examples that regenerate a testkit.
pub fn write(dir: &Path, files: Vec<(String, Vec<u8>)>) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes)?;
    }
    Ok(())
}

/// Asserts that `dir` holds exactly the files `generated`; `regenerate` says how to rewrite them.
#[track_caller]
pub fn assert_committed(dir: &Path, mut generated: Vec<(String, Vec<u8>)>, regenerate: &str) {
    let mut committed: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    committed.sort();
    generated.sort();
    assert!(
        committed == generated,
        "{} differs from the generator: rewrite it with `{regenerate}` if the change is intended",
        dir.display()
    );
}
