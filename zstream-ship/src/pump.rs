//! The upload loop S3 and Glacier share: read stdin in parts on the calling thread while up to `concurrency`
//! earlier parts upload on the runtime, so memory stays within part size x (concurrency + 1) and the reading
//! never waits for the network unless the network is the slower side.

use anyhow::{anyhow, bail};
use std::collections::VecDeque;
use std::io::Read;
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;
use zstream_common::pipe::{in_error, read_full};

pub struct Parts<'a> {
    pub rt: &'a Runtime,
    pub concurrency: usize,
    /// The size of part `n` (from 1).
    pub size: &'a dyn Fn(u64) -> u64,
    pub max_parts: u64,
    /// Said when the stream is longer than `max_parts` parts hold.
    pub too_long: &'a str,
}

impl Parts<'_> {
    /// Uploads `first` (already read, a full part) and the rest of `input`: `start(n, offset, bytes)` spawns the
    /// upload of part n. Returns every part's result in order and the byte count; the first failure stops it.
    pub fn run<T: Send + 'static>(
        &self,
        first: Vec<u8>,
        input: &mut dyn Read,
        mut start: impl FnMut(u64, u64, Vec<u8>) -> JoinHandle<anyhow::Result<T>>,
    ) -> anyhow::Result<(Vec<T>, u64)> {
        let mut in_flight: VecDeque<JoinHandle<anyhow::Result<T>>> = VecDeque::new();
        let mut done = Vec::new();
        let mut total = 0u64;
        let mut data = first;
        let mut n = 1u64;
        loop {
            let len = data.len() as u64;
            in_flight.push_back(start(n, total, data));
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
        Ok((done, total))
    }

    fn join<T>(&self, h: Option<JoinHandle<anyhow::Result<T>>>) -> anyhow::Result<T> {
        let h = h.expect("joined only while parts are in flight");
        self.rt
            .block_on(h)
            .map_err(|e| anyhow!("an upload task failed: {e}"))?
    }
}
