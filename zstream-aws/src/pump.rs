//! The upload loop S3 and Glacier share: read stdin in parts on the calling thread while up to `concurrency`
//! earlier parts upload on the runtime, so memory stays within part size x (concurrency + 1) and the reading
//! never waits for the network unless the network is the slower side. And what undoing such an upload takes:
//! the parts still in flight are cancelled and awaited before the upload is aborted, since a part that is still
//! sending when the abort lands can survive it (AWS says so of AbortMultipartUpload).

use anyhow::{anyhow, bail};
use std::collections::VecDeque;
use std::future::Future;
use std::io::Read;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use tokio::task::{AbortHandle, JoinHandle};
use zstream_common::interrupt::{self, Armed};
use zstream_common::pipe::{in_error, read_full};

pub struct Parts<'a> {
    pub rt: &'a Runtime,
    pub concurrency: usize,
    /// The size of part `n` (from 1).
    pub size: &'a dyn Fn(u64) -> u64,
    pub max_parts: u64,
    /// Said when the stream is longer than `max_parts` parts hold.
    pub too_long: &'a str,
    /// The parts in flight, for an interrupt to cancel.
    pub in_flight: &'a InFlight,
}

/// The part uploads running now, shared with the interrupt cleanup.
#[derive(Clone, Default)]
pub struct InFlight(Arc<Mutex<Vec<AbortHandle>>>);

impl InFlight {
    fn add(&self, h: AbortHandle) {
        let mut v = self.0.lock().unwrap_or_else(|p| p.into_inner());
        v.retain(|h| !h.is_finished());
        v.push(h);
    }

    /// Cancels every part in flight and waits (at most `limit`) until their tasks have ended, which drops
    /// their connections mid-body: S3 and Glacier store no part whose body did not arrive whole.
    fn cancel(&self, limit: Duration) {
        let v = std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()));
        v.iter().for_each(AbortHandle::abort);
        let end = Instant::now() + limit;
        while v.iter().any(|h| !h.is_finished()) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Parts<'_> {
    /// Uploads `first` (already read, a full part) and the rest of `input`: `start(n, offset, bytes)` spawns the
    /// upload of part n. Returns every part's result in order and the byte count. The first failure stops it,
    /// and every part still in flight is cancelled and has ended before the error returns.
    pub fn run<T: Send + 'static>(
        &self,
        first: Vec<u8>,
        input: &mut dyn Read,
        mut start: impl FnMut(u64, u64, Vec<u8>) -> JoinHandle<anyhow::Result<T>>,
    ) -> anyhow::Result<(Vec<T>, u64)> {
        let mut in_flight: VecDeque<JoinHandle<anyhow::Result<T>>> = VecDeque::new();
        let mut done = Vec::new();
        let result = self.pump(first, input, &mut start, &mut in_flight, &mut done);
        if result.is_err() {
            for h in &in_flight {
                h.abort();
            }
            for h in in_flight.drain(..) {
                // Cancelled, finished or failed: all that matters is that it no longer runs.
                let _ = self.rt.block_on(h);
            }
        }
        result.map(|total| (done, total))
    }

    fn pump<T: Send + 'static>(
        &self,
        first: Vec<u8>,
        input: &mut dyn Read,
        start: &mut impl FnMut(u64, u64, Vec<u8>) -> JoinHandle<anyhow::Result<T>>,
        in_flight: &mut VecDeque<JoinHandle<anyhow::Result<T>>>,
        done: &mut Vec<T>,
    ) -> anyhow::Result<u64> {
        let mut total = 0u64;
        let mut data = first;
        let mut n = 1u64;
        loop {
            let len = data.len() as u64;
            let h = start(n, total, data);
            self.in_flight.add(h.abort_handle());
            in_flight.push_back(h);
            total += len;
            if in_flight.len() >= self.concurrency.max(1) {
                done.push(self.join(in_flight.pop_front())?);
            }
            if n == self.max_parts {
                // More input than the parts hold must not be cut short: refuse it.
                let mut probe = [0u8; 1];
                if read_full(&mut &mut *input, &mut probe).map_err(in_error)? > 0 {
                    bail!("{}", self.too_long);
                }
                break;
            }
            n += 1;
            let mut buf = vec![0u8; (self.size)(n) as usize];
            let got = read_full(&mut &mut *input, &mut buf).map_err(in_error)?;
            if got == 0 {
                break;
            }
            buf.truncate(got);
            data = buf;
        }
        while !in_flight.is_empty() {
            done.push(self.join(in_flight.pop_front())?);
        }
        Ok(total)
    }

    fn join<T>(&self, h: Option<JoinHandle<anyhow::Result<T>>>) -> anyhow::Result<T> {
        let h = h.expect("joined only while parts are in flight");
        self.rt
            .block_on(h)
            .map_err(|e| anyhow!("an upload task failed: {e}"))?
    }
}

/// The multipart upload a put starts, as its interrupt cleanup sees it. The cleanup is armed before the call that
/// starts the upload: a signal can come while that call is unanswered, and the upload it then creates must still
/// be aborted, or it stays for `gc`, unseen by a put that died saying nothing.
#[derive(Clone, Default)]
pub struct Upload(Arc<(Mutex<Stage>, Condvar)>);

#[derive(Clone, Default)]
enum Stage {
    #[default]
    NotYet,
    Starting,
    Started(String),
}

impl Upload {
    fn set(&self, stage: Stage) {
        *self.0 .0.lock().unwrap_or_else(|p| p.into_inner()) = stage;
        self.0 .1.notify_all();
    }

    /// The call that starts it is about to go out.
    pub fn starting(&self) {
        self.set(Stage::Starting);
    }

    /// The service answered with the upload's id.
    pub fn started(&self, id: &str) {
        self.set(Stage::Started(id.to_string()));
    }

    /// The call failed: there is no upload.
    pub fn not_started(&self) {
        self.set(Stage::NotYet);
    }

    /// The stage, once it is not `Starting` or after `limit`.
    fn settled(&self, limit: Duration) -> Stage {
        let (m, cv) = &*self.0;
        let g = m.lock().unwrap_or_else(|p| p.into_inner());
        let (g, _) = cv
            .wait_timeout_while(g, limit, |s| matches!(s, Stage::Starting))
            .unwrap_or_else(|p| p.into_inner());
        g.clone()
    }
}

/// Aborting an upload by its id: a future that owns what it needs (the cleanup runs it on the signal thread).
pub type Abort = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// Arms the interrupt cleanup of the multipart upload to `url`, before it is started: on SIGTERM, SIGINT or SIGHUP
/// the parts in flight are cancelled, then the upload is aborted (at most 60 s) once `upload` names it. The
/// returned guard's `commit` wraps the call that completes it (or the single put that stands for it).
pub fn arm_abort(
    rt: &Runtime,
    url: String,
    in_flight: &InFlight,
    upload: &Upload,
    abort: impl FnOnce(String) -> Abort + Send + 'static,
) -> Armed {
    let handle = rt.handle().clone();
    let in_flight = in_flight.clone();
    let upload = upload.clone();
    interrupt::arm(move || {
        in_flight.cancel(Duration::from_secs(10));
        let id = match upload.settled(Duration::from_secs(30)) {
            Stage::NotYet => return "nothing was uploaded".to_string(),
            Stage::Starting => {
                return format!(
                    "the upload to {url} was being started and may be left: `zstream-ship gc` removes it"
                )
            }
            Stage::Started(id) => id,
        };
        match handle.block_on(async { tokio::time::timeout(Duration::from_secs(60), abort(id)).await }) {
            Ok(Ok(())) => format!("the upload to {url} was aborted; nothing was stored"),
            Ok(Err(e)) => format!(
                "aborting the upload to {url} failed ({e:#}); `zstream-ship gc` removes what is left"
            ),
            Err(_) => format!(
                "aborting the upload to {url} took over 60 s; `zstream-ship gc` removes what is left"
            ),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering::SeqCst};

    /// Counts a task's end, whether it finished or was dropped (cancelled).
    struct Ended(Arc<AtomicU32>);
    impl Drop for Ended {
        fn drop(&mut self) {
            self.0.fetch_add(1, SeqCst);
        }
    }

    #[test]
    fn a_failed_part_cancels_the_parts_in_flight_before_the_error_returns() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (ended, finished) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
        let in_flight = InFlight::default();
        let input = vec![7u8; 10 * 1024];
        let parts = Parts {
            rt: &rt,
            concurrency: 4,
            size: &|_| 1024,
            max_parts: 100,
            too_long: "too long",
            in_flight: &in_flight,
        };
        let mut started = 0u32;
        let r = parts.run(vec![7u8; 1024], &mut &input[..], |n, _, _| {
            started += 1;
            let (ended, finished) = (Arc::clone(&ended), Arc::clone(&finished));
            rt.spawn(async move {
                let _guard = Ended(ended);
                if n == 1 {
                    // The first part fails once the others are in flight.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    anyhow::bail!("part 1 refused");
                }
                tokio::time::sleep(Duration::from_secs(30)).await;
                finished.fetch_add(1, SeqCst);
                Ok(())
            })
        });
        assert_eq!(r.unwrap_err().to_string(), "part 1 refused");
        assert!(started >= 4, "{started} parts started");
        // Every task has ended (none still sending when the caller aborts the upload), none by finishing.
        assert_eq!(ended.load(SeqCst), started);
        assert_eq!(finished.load(SeqCst), 0);
    }
}
