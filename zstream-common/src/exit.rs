//! Exit codes are a type, the same for every tool (documented in the README).

use std::fmt;

/// The process exit codes of every zstream tool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// Everything held.
    Ok = 0,
    /// I/O, network or a failed command.
    Runtime = 1,
    /// The command line was wrong.
    Usage = 2,
    /// A digest, authentication tag or parity does not hold and cannot be repaired.
    Integrity = 3,
    /// Try again later (archive restores that are not ready yet); EX_TEMPFAIL from sysexits.h.
    TempFail = 75,
}

impl Code {
    pub fn as_i32(self) -> i32 {
        self as i32
    }
}

/// An error that carries the exit code it must end the process with. It is found anywhere in an `anyhow` chain,
/// so context added on top of it does not change the code.
#[derive(Debug)]
pub struct Coded {
    pub code: Code,
    inner: anyhow::Error,
}

impl Coded {
    pub fn new(code: Code, inner: impl Into<anyhow::Error>) -> Self {
        Coded {
            code,
            inner: inner.into(),
        }
    }
}

impl fmt::Display for Coded {
    // Only this level's message: the chain below is reached through `source`, so `{:#}` prints each cause once.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl std::error::Error for Coded {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.source()
    }
}

/// An integrity failure (exit 3): the data is not what it claims to be.
pub fn integrity(msg: impl fmt::Display) -> anyhow::Error {
    anyhow::Error::new(Coded::new(Code::Integrity, anyhow::anyhow!("{msg}")))
}

/// A usage error (exit 2) found after argument parsing, e.g. a conflicting combination.
pub fn usage(msg: impl fmt::Display) -> anyhow::Error {
    anyhow::Error::new(Coded::new(Code::Usage, anyhow::anyhow!("{msg}")))
}

/// The exit code an error ends the process with: the outermost `Coded` in its chain, else a runtime error.
pub fn code_of(err: &anyhow::Error) -> Code {
    err.chain()
        .find_map(|e| e.downcast_ref::<Coded>())
        .map_or(Code::Runtime, |c| c.code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn code_survives_context() {
        let e: anyhow::Result<()> = Err(integrity("digest mismatch"));
        let e = e.context("checking stdin").unwrap_err();
        assert_eq!(code_of(&e), Code::Integrity);
        assert_eq!(format!("{e:#}"), "checking stdin: digest mismatch");
    }

    #[test]
    fn plain_errors_are_runtime() {
        let e = anyhow::anyhow!("disk on fire");
        assert_eq!(code_of(&e), Code::Runtime);
    }
}
