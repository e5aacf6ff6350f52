//! Waiting with backoff for what takes hours on AWS (archive restores, retrieval jobs).

use std::time::Duration;

/// Waiting for an archive restore or retrieval job (hours on AWS): the first look after 1 s, each pause twice
/// the last, at most 15 minutes.
pub struct Poll(Duration);

impl Default for Poll {
    fn default() -> Poll {
        Poll(Duration::from_secs(1))
    }
}

impl Poll {
    /// Says on stderr what is awaited and when the next look is, then sleeps until it.
    pub async fn wait(&mut self, what: std::fmt::Arguments<'_>) {
        zstream_common::say!("{what}; checking again in {}s", self.0.as_secs());
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(Duration::from_secs(15 * 60));
    }
}

/// Where an archived object waits to be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Archive {
    /// S3 GLACIER (Flexible Retrieval).
    Glacier,
    DeepArchive,
    /// A Glacier vault's retrieval job.
    Vault,
}

/// How long AWS says making an archived object readable takes at `tier`, for the message that tells a cron job
/// when to come back: one table for every service.
pub fn expected(archive: Archive, tier: &str) -> &'static str {
    match (archive, tier) {
        (Archive::Glacier | Archive::Vault, "Expedited") => "1-5 minutes",
        (Archive::Glacier | Archive::Vault, "Standard") => "3-5 hours",
        (Archive::Glacier | Archive::Vault, _) => "5-12 hours",
        (Archive::DeepArchive, "Bulk") => "up to 48 hours",
        (Archive::DeepArchive, _) => "up to 12 hours",
    }
}

/// A slow thing asked for: ready now, or not yet with what to tell the user.
pub enum Ready<T> {
    Now(T),
    Later(String),
}

/// Waits for something slow that has been asked for (a restore, a retrieval job). Without `wait`: `Later` at
/// once, saying `come_back` (the caller exits 75 with `later`), so that a cron job does not hang for hours. With
/// `wait`: `check` again and again, with backoff, saying `what` is under way, until it gives the thing.
pub async fn ready<T>(
    wait: bool,
    what: &str,
    come_back: String,
    mut check: impl AsyncFnMut() -> anyhow::Result<Option<T>>,
) -> anyhow::Result<Ready<T>> {
    if !wait {
        return Ok(Ready::Later(come_back));
    }
    let mut poll = Poll::default();
    loop {
        poll.wait(format_args!("{what}")).await;
        if let Some(t) = check().await? {
            return Ok(Ready::Now(t));
        }
    }
}

/// "Try again later" (exit 75): what a `Later` becomes when the caller needed the thing now.
pub fn later(url: &str, why: impl std::fmt::Display) -> anyhow::Error {
    anyhow::Error::new(zstream_common::Coded::new(
        zstream_common::Code::TempFail,
        anyhow::anyhow!("{url}: {why}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_table_for_every_service() {
        assert_eq!(expected(Archive::Glacier, "Expedited"), "1-5 minutes");
        assert_eq!(expected(Archive::Vault, "Bulk"), "5-12 hours");
        assert_eq!(expected(Archive::DeepArchive, "Standard"), "up to 12 hours");
        assert_eq!(expected(Archive::DeepArchive, "Bulk"), "up to 48 hours");
    }
}
