//! GLACIER and DEEP_ARCHIVE objects cannot be read until a restore makes a temporary copy (hours). A get asks
//! for the restore once and then exits 75 ("try again later", so a cron job does not hang for 12 hours), or
//! with `--wait` polls with backoff, saying the state on stderr, until the copy is there. The object's
//! x-amz-restore header says whether a restore is under way, so running again never asks twice.

use super::S3Target;
use crate::aws::{describe, expected, later, ready, Archive, Ready};
use anyhow::anyhow;
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::types::{GlacierJobParameters, RestoreRequest, StorageClass, Tier};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Not in an archive class: readable now.
    Available,
    /// Archived, no restore asked for.
    Archived,
    Restoring,
    /// A restored copy is readable.
    Restored,
}

impl State {
    pub fn of(head: &HeadObjectOutput) -> State {
        State::from_parts(head.storage_class(), head.restore())
    }

    pub fn from_parts(class: Option<&StorageClass>, restore: Option<&str>) -> State {
        if !matches!(
            class,
            Some(StorageClass::Glacier | StorageClass::DeepArchive)
        ) {
            return State::Available;
        }
        match restore {
            None => State::Archived,
            Some(r) if r.contains("ongoing-request=\"true\"") => State::Restoring,
            Some(_) => State::Restored,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            State::Available => "available",
            State::Archived => "archived",
            State::Restoring => "restoring",
            State::Restored => "restored",
        }
    }
}

/// The object's HEAD once it is readable; until then a restore is asked for (once) and, without --wait, the
/// error says so with exit 75.
pub async fn readable(t: &S3Target) -> anyhow::Result<HeadObjectOutput> {
    let h = t.head().await?;
    match State::of(&h) {
        State::Available | State::Restored => Ok(h),
        _ => match ensure(t, t.opts.thaw.wait).await? {
            Ready::Now(_) => t.head().await,
            Ready::Later(why) => Err(later(&t.url(&t.key), why)),
        },
    }
}

/// The restore command: asks for a restore unless one is under way or done; with `wait` waits for it.
pub async fn restore(t: &S3Target, wait: bool) -> anyhow::Result<String> {
    Ok(match ensure(t, wait).await? {
        Ready::Now(s) | Ready::Later(s) => s,
    })
}

/// Asks for a restore unless one is under way or done; with `wait` waits for it.
async fn ensure(t: &S3Target, wait: bool) -> anyhow::Result<Ready<String>> {
    let url = t.url(&t.key);
    let h = t.head().await?;
    let class = h
        .storage_class()
        .map_or("STANDARD".to_string(), |c| c.as_str().to_string());
    let state = State::of(&h);
    match state {
        State::Available => return Ok(Ready::Now(format!("in {class}: readable now"))),
        State::Restored => return Ok(Ready::Now("restored, readable now".into())),
        State::Restoring => zstream_common::say!("{url}: a restore is already under way"),
        State::Archived => {
            ask(t).await?;
            zstream_common::say!(
                "{url}: restore requested ({} tier, {} days)",
                t.opts.thaw.tier.as_str(),
                t.opts.thaw.days
            );
            // Some restores are ready at once (Expedited on GLACIER can be, and test servers are).
            if State::of(&t.head().await?) == State::Restored {
                return Ok(Ready::Now("restored, readable now".into()));
            }
        }
    }
    let archive = if class == "DEEP_ARCHIVE" {
        Archive::DeepArchive
    } else {
        Archive::Glacier
    };
    let come_back = format!(
        "in {class} and being restored; run this again in {} or pass --wait",
        expected(archive, t.opts.thaw.tier.as_str())
    );
    ready(
        wait,
        &format!("{url}: restore under way"),
        come_back,
        async || {
            let restoring = State::of(&t.head().await?) == State::Restoring;
            Ok((!restoring).then(|| "restored, readable now".to_string()))
        },
    )
    .await
}

async fn ask(t: &S3Target) -> anyhow::Result<()> {
    let req = RestoreRequest::builder()
        .days(t.opts.thaw.days)
        .glacier_job_parameters(
            GlacierJobParameters::builder()
                .tier(Tier::from(t.opts.thaw.tier.as_str()))
                .build()?,
        )
        .build();
    match t
        .client
        .restore_object()
        .bucket(&t.bucket)
        .key(&t.key)
        .restore_request(req)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        // Another run asked in the meantime: that is what we wanted.
        Err(e) if describe(&e).contains("RestoreAlreadyInProgress") => Ok(()),
        Err(e) => Err(anyhow!(
            "asking for a restore of {}: {}",
            t.url(&t.key),
            describe(&e)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_states_follow_the_header() {
        let da = Some(&StorageClass::DeepArchive);
        assert_eq!(
            State::from_parts(Some(&StorageClass::Standard), None),
            State::Available
        );
        assert_eq!(State::from_parts(None, None), State::Available);
        assert_eq!(State::from_parts(da, None), State::Archived);
        assert_eq!(
            State::from_parts(da, Some("ongoing-request=\"true\"")),
            State::Restoring
        );
        assert_eq!(
            State::from_parts(
                da,
                Some("ongoing-request=\"false\", expiry-date=\"Fri, 21 Dec 2012 00:00:00 GMT\"")
            ),
            State::Restored
        );
    }
}
