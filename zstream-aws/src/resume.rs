//! Long reads that resume where a dropped connection stopped.

use std::time::Duration;

/// Resuming a read whose connection dropped: up to 10 times, after a growing pause.
#[derive(Default)]
pub struct Resume(u32);

impl Resume {
    const MAX: u32 = 10;

    /// Another try after a pause, or the error when the tries are used up.
    pub async fn again(
        &mut self,
        url: &str,
        at: u64,
        why: impl std::fmt::Display,
    ) -> anyhow::Result<()> {
        self.0 += 1;
        if self.0 > Resume::MAX {
            anyhow::bail!(
                "reading {url} at byte {at}: {why} ({} resumptions failed)",
                Resume::MAX
            );
        }
        tokio::time::sleep(Duration::from_millis(100 << self.0.min(6))).await;
        Ok(())
    }
}

/// A long read that resumes where a dropped connection stopped: after each response body, `again` says whether
/// the read is over (the body ended whole, at or past `end` when that is known) or must go on from the byte it
/// reached, after a pause, up to `Resume::MAX` times.
pub struct Resuming<'a> {
    url: &'a str,
    end: Option<u64>,
    resume: Resume,
}

impl<'a> Resuming<'a> {
    pub fn new(url: &'a str, end: Option<u64>) -> Self {
        Resuming {
            url,
            end,
            resume: Resume::default(),
        }
    }

    /// A body ended at byte `at`, cut for the reason given if it was: false when the read is done, true to read
    /// again from `at` (after the pause), or the error when the tries are used up.
    pub async fn again(&mut self, at: u64, cut: Option<String>) -> anyhow::Result<bool> {
        let short = self.end.is_some_and(|e| at < e);
        if cut.is_none() && !short {
            return Ok(false);
        }
        let why = cut.unwrap_or_else(|| "the body ended early".into());
        self.resume.again(self.url, at, why).await?;
        Ok(true)
    }
}
