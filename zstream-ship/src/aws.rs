//! What the S3 and Glacier backends share: the async runtime they run on inside the blocking `Backend` calls, the
//! SDK configuration (the standard AWS sources, then `--endpoint`/`--region`), retries, and errors in one line.

use anyhow::Context;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use std::time::Duration;
use tokio::runtime::Runtime;

/// Where to reach the service; everything else (credentials, profile) comes from the standard AWS sources.
#[derive(Clone, Debug, Default)]
pub struct Endpoint {
    pub url: Option<String>,
    pub region: Option<String>,
}

/// A runtime with enough threads to keep `concurrency` transfers moving while the caller blocks on stdin/stdout.
pub fn runtime(concurrency: usize) -> anyhow::Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(concurrency.clamp(2, 16))
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// The SDK configuration. Transient failures (connection resets, 5xx, throttling) are retried by the SDK with
/// exponential backoff and full jitter; every request body is held in memory, so a retry resends the same bytes.
pub async fn config(ep: &Endpoint) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(10)
                .with_initial_backoff(Duration::from_millis(200))
                .with_max_backoff(Duration::from_secs(20)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(10))
                .read_timeout(Duration::from_secs(120))
                .build(),
        );
    if let Some(r) = &ep.region {
        loader = loader.region(aws_config::Region::new(r.clone()));
    }
    if let Some(u) = &ep.url {
        loader = loader.endpoint_url(u);
    }
    loader.load().await
}

/// An SDK error as one line: the service's error code and message when it answered, else the transport's story.
pub fn describe<E>(e: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let text = match e {
        SdkError::ServiceError(s) => {
            let err = s.err();
            match (err.code(), err.message()) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => c.to_string(),
                // The service answered something the SDK could not read (an HTML error page, a missing API).
                _ => format!(
                    "HTTP {} with an answer that is not the service's API",
                    s.raw().status().as_u16()
                ),
            }
        }
        // No answer of the service's: say what went wrong underneath (a refused connection, a DNS failure), not
        // the SDK's whole debug story.
        SdkError::TimeoutError(_) => "the request timed out".to_string(),
        SdkError::DispatchFailure(_) => format!("no answer from the service: {}", root_cause(e)),
        SdkError::ResponseError(_) => {
            format!("the service's answer could not be read: {}", root_cause(e))
        }
        SdkError::ConstructionFailure(_) => {
            format!("the request could not be made: {}", root_cause(e))
        }
        _ => DisplayErrorContext(e).to_string(),
    };
    // One line, and not the SDK's whole debug dump of the response.
    let mut line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.len() > 300 {
        let cut = (0..=300)
            .rev()
            .find(|&i| line.is_char_boundary(i))
            .unwrap_or(0);
        line.truncate(cut);
        line.push_str(" ...");
    }
    line
}

/// The innermost cause of an error, which names the real trouble ("Connection refused (os error 111)").
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

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

/// The error of an upload that failed, with what became of aborting it.
pub fn after_abort(e: anyhow::Error, abort: anyhow::Result<()>) -> anyhow::Error {
    match abort {
        Ok(()) => e.context("the upload was aborted; nothing was stored"),
        Err(a) => e.context(format!(
            "aborting the upload failed too ({a:#}); `zstream-ship gc` removes what is left"
        )),
    }
}

/// The HTTP status of the answer behind an SDK error, if the service answered.
pub fn status<E>(e: &SdkError<E, HttpResponse>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

/// `map_err` for SDK calls: "what: service says".
pub fn err<E>(
    what: impl std::fmt::Display,
) -> impl FnOnce(SdkError<E, HttpResponse>) -> anyhow::Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    move |e| anyhow::anyhow!("{what}: {}", describe(&e))
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::operation::head_object::HeadObjectError;
    use aws_smithy_runtime_api::client::result::{ConnectorError, SdkError};

    #[test]
    fn transport_errors_are_one_line_with_their_cause() {
        let io = std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused (os error 111)",
        );
        let e: SdkError<HeadObjectError, super::HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::io(Box::new(io)));
        let line = super::describe(&e);
        assert_eq!(
            line,
            "no answer from the service: Connection refused (os error 111)"
        );
    }
}
