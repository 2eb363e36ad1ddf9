//! The write queue: one thread per open database runs the writes in call order, so a write that
//! waits for LMDB's lock (held by another process) never parks a libuv pool thread.

use std::sync::mpsc::{channel, Sender};
use std::sync::Mutex;

use crate::errors::{Failure, Outcome};

pub type Job = Box<dyn FnOnce() + Send>;

pub struct WriteQueue {
    sender: Mutex<Option<Sender<Job>>>,
}

impl WriteQueue {
    pub fn new() -> Outcome<WriteQueue> {
        let (sender, receiver) = channel::<Job>();
        std::thread::Builder::new()
            .name("hannoy-writer".into())
            .spawn(move || {
                for job in receiver {
                    job();
                }
            })
            .map_err(|e| {
                Failure::new(
                    crate::errors::IO,
                    format!("cannot start the writer thread: {e}"),
                )
            })?;
        Ok(WriteQueue {
            sender: Mutex::new(Some(sender)),
        })
    }

    /// Queues `job`; fails once the queue is closed.
    pub fn submit(&self, job: Job) -> Outcome<()> {
        let guard = self.sender.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(sender) => sender.send(job).map_err(|_| Failure::closed()),
            None => Err(Failure::closed()),
        }
    }

    /// Queues a last job and closes the queue: the thread ends after running it.
    pub fn close(&self, last: Job) -> Outcome<()> {
        let mut guard = self.sender.lock().unwrap_or_else(|p| p.into_inner());
        match guard.take() {
            Some(sender) => sender.send(last).map_err(|_| Failure::closed()),
            None => Err(Failure::closed()),
        }
    }
}
