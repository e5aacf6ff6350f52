//! Many small objects of one bucket read at once (a catalog's records): one client, a bounded number of GETs in
//! flight, each object's length capped before its body is read, so that an object planted under the prefix cannot
//! make the reader hold more than the cap. No checksum is checked here: what these objects hold authenticates
//! itself (the catalog's records are signed), and the caller refuses what does not.

use super::S3Target;
use crate::aws::err;
use anyhow::anyhow;

/// GETs in flight at once: enough to hide the round trips of a distant region, few enough for any service.
const IN_FLIGHT: usize = 32;

pub async fn read_many(
    t: &S3Target,
    keys: &[String],
    max_bytes: u64,
) -> Vec<anyhow::Result<Vec<u8>>> {
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let tasks: Vec<_> = keys
        .iter()
        .map(|key| {
            let (client, bucket, key, url) =
                (t.client.clone(), t.bucket.clone(), key.clone(), t.url(key));
            let permits = permits.clone();
            tokio::spawn(async move {
                let _turn = permits.acquire_owned().await;
                read_one(client, &bucket, &key, &url, max_bytes).await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        out.push(
            task.await
                .unwrap_or_else(|e| Err(anyhow!("a read task failed: {e}"))),
        );
    }
    out
}

async fn read_one(
    client: aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    url: &str,
    max_bytes: u64,
) -> anyhow::Result<Vec<u8>> {
    let o = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(err(format!("reading {url}")))?;
    let len = o.content_length().unwrap_or(0).max(0) as u64;
    if len > max_bytes {
        return Err(anyhow!(
            "{url}: {len} bytes, more than the {max_bytes} such an object may hold"
        ));
    }
    let body = o
        .body
        .collect()
        .await
        .map_err(|e| anyhow!("reading {url}: {e}"))?
        .into_bytes();
    if body.len() as u64 > max_bytes {
        return Err(anyhow!("{url}: more than the {max_bytes} bytes it said"));
    }
    Ok(body.to_vec())
}
