//! The SDK configuration every AWS tool here uses (the standard AWS sources, then `--endpoint`/`--region`,
//! retries, timeouts), and the runtime the blocking tools run it on.

use anyhow::Context;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
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
