//! How work leaves the main thread: a reader's calls on the read pool, other reads as libuv pool
//! tasks, writes through the write queue; all settle their Promise on the main thread with the
//! contract's errors.

use napi::bindgen_prelude::*;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::abort::AbortWatch;
use crate::errors::{Failure, Outcome};
use crate::pool;
use crate::queue::WriteQueue;
use crate::settle;

type Work<T> = Box<dyn FnOnce() -> Outcome<T> + Send>;
type Convert<T, R> = fn(&Env, T) -> Result<R>;

/// A read off the main thread (on libuv's pool, or on the read pool with `on_pool`): `work`
/// runs there, `convert` turns its output into JS on the main thread.
pub struct ReadTask<T: Send + 'static, R> {
    work: Option<Work<T>>,
    convert: Convert<T, R>,
    failure: Option<Failure>,
    abort: AbortWatch,
}

impl<T: Send + 'static, R> ReadTask<T, R> {
    pub fn new(work: impl FnOnce() -> Outcome<T> + Send + 'static, convert: Convert<T, R>) -> Self {
        ReadTask {
            work: Some(Box::new(work)),
            convert,
            failure: None,
            abort: AbortWatch::none(),
        }
    }

    /// A task that only rejects (bad arguments found on the main thread, or a closed database).
    pub fn failed(failure: Failure, convert: Convert<T, R>) -> Self {
        ReadTask {
            work: None,
            convert,
            failure: Some(failure),
            abort: AbortWatch::none(),
        }
    }

    pub fn with_abort(mut self, abort: AbortWatch) -> Self {
        if abort.is_aborted() && self.failure.is_none() {
            self.failure = Some(Failure::aborted());
            self.work = None;
        }
        self.abort = abort;
        self
    }

    /// The work to run, or the failure to reject with.
    fn take_work(&mut self) -> Outcome<Work<T>> {
        match (self.failure.take(), self.work.take()) {
            (Some(failure), _) => Err(failure),
            (None, Some(work)) => Ok(work),
            (None, None) => Err(Failure::invalid("the task ran twice")),
        }
    }

    pub fn from_outcome(outcome: Outcome<Self>, convert: Convert<T, R>) -> AsyncTask<Self>
    where
        Self: Task,
    {
        AsyncTask::new(outcome.unwrap_or_else(|failure| ReadTask::failed(failure, convert)))
    }
}

impl<T: Send + 'static, R: ToNapiValue + 'static> ReadTask<T, R> {
    /// Runs the task on the read pool (see `pool`) and returns the Promise of its result.
    pub fn on_pool<'env>(
        outcome: Outcome<Self>,
        convert: Convert<T, R>,
        env: &'env Env,
    ) -> Result<Object<'env>> {
        let mut task = outcome.unwrap_or_else(|failure| ReadTask::failed(failure, convert));
        let ready = task
            .take_work()
            .and_then(|work| pool::get().map(|pool| (pool, work)));
        let (pool, work) = match ready {
            Ok(ready) => ready,
            Err(failure) => {
                task.abort.detach(env);
                return rejected(env, failure);
            }
        };
        let (promise, job) = settled_job(env, work, task.abort, convert)?;
        pool.submit(job);
        Ok(promise)
    }
}

/// A Promise and the job that settles it, from any thread (see `settle`): the job runs `work`
/// (a panic in it rejects with ERR_HANNOY_INTERNAL), then hands its answer over (see
/// `pool::answer`), which on the main thread detaches `abort` and converts the outcome.
fn settled_job<'env, T, R>(
    env: &'env Env,
    work: impl FnOnce() -> Outcome<T> + Send + 'static,
    mut abort: AbortWatch,
    convert: Convert<T, R>,
) -> Result<(Object<'env>, Box<dyn FnOnce() + Send>)>
where
    T: Send + 'static,
    R: ToNapiValue + 'static,
{
    let (promise, promised) = match settle::promise(env) {
        Ok(pair) => pair,
        Err(e) => {
            abort.detach(env);
            return Err(e);
        }
    };
    let job = Box::new(move || {
        let outcome = catch_unwind(AssertUnwindSafe(work))
            .unwrap_or_else(|panic| Err(Failure::internal(panic_message(panic.as_ref()))));
        pool::answer(Box::new(move || {
            promised.settle(Box::new(move |env: &Env| {
                abort.detach(env);
                let value = outcome.map_err(|failure| failure.to_js(env))?;
                // SAFETY: main thread, inside the settling callback's handle scope.
                unsafe { R::to_napi_value(env.raw(), convert(env, value)?) }
            }))
        }));
    });
    Ok((promise, job))
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into());
    format!("internal error (a bug in hannoy, please report it): {what}")
}

impl<T: Send + 'static, R: ToNapiValue + TypeName> Task for ReadTask<T, R> {
    type Output = T;
    type JsValue = R;

    fn compute(&mut self) -> Result<T> {
        self.take_work().and_then(|work| work()).map_err(|failure| {
            let error = Error::new(Status::GenericFailure, failure.message.clone());
            self.failure = Some(failure);
            error
        })
    }

    fn resolve(&mut self, env: Env, output: T) -> Result<R> {
        (self.convert)(&env, output)
    }

    fn reject(&mut self, env: Env, err: Error) -> Result<R> {
        match self.failure.take() {
            Some(failure) => Err(failure.to_js(&env)),
            None => Err(err),
        }
    }

    fn finally(mut self, env: Env) -> Result<()> {
        self.abort.detach(&env);
        Ok(())
    }
}

type Resolver<R> = Box<dyn FnOnce(Env) -> Result<R> + Send>;

/// Runs `work` on the write queue and returns the Promise of its result. `settle` runs on the
/// main thread with the outcome (it may call JS, e.g. a last progress report, before resolving).
pub fn write<'env, T, R>(
    env: &'env Env,
    queue: Outcome<&WriteQueue>,
    work: impl FnOnce() -> Outcome<T> + Send + 'static,
    settle: impl FnOnce(&Env, Outcome<T>) -> Outcome<R> + Send + 'static,
) -> Result<Object<'env>>
where
    T: Send + 'static,
    R: ToNapiValue + 'static,
{
    let (deferred, promise) = env.create_deferred::<R, Resolver<R>>()?;
    let job = move || {
        let outcome = work();
        deferred.resolve(Box::new(move |env: Env| {
            settle(&env, outcome).map_err(|f| f.to_js(&env))
        }));
    };
    match queue {
        Ok(queue) => {
            if let Err(failure) = queue.submit(Box::new(job)) {
                return rejected(env, failure);
            }
        }
        Err(failure) => return rejected(env, failure),
    }
    Ok(promise)
}

/// A Promise already rejected with `failure`.
pub fn rejected<'env>(env: &'env Env, failure: Failure) -> Result<Object<'env>> {
    let (deferred, promise) = env.create_deferred::<(), Resolver<()>>()?;
    deferred.reject(failure.to_js(env));
    Ok(promise)
}

/// Runs `work` on a thread of its own and returns the Promise of its result: for long calls
/// (a whole-file check, a copy that may wait for LMDB's write lock, a warm-up) that must hold
/// up neither libuv's pool nor the read pool. `abort` (if any) is detached when it settles.
pub fn on_thread<'env, T, R>(
    env: &'env Env,
    name: &str,
    work: Outcome<(impl FnOnce() -> Outcome<T> + Send + 'static, AbortWatch)>,
    convert: Convert<T, R>,
) -> Result<Object<'env>>
where
    T: Send + 'static,
    R: ToNapiValue + 'static,
{
    let (work, mut abort) = match work {
        Ok(work) => work,
        Err(failure) => return rejected(env, failure),
    };
    if abort.is_aborted() {
        abort.detach(env);
        return rejected(env, Failure::aborted());
    }
    // The thread first, then the Promise: a thread that cannot start rejects the one Promise
    // returned, and the job reaches the thread once it exists.
    let (send, receive) = std::sync::mpsc::channel::<Box<dyn FnOnce() + Send>>();
    let spawned = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            if let Ok(job) = receive.recv() {
                job();
            }
        });
    if let Err(e) = spawned {
        abort.detach(env);
        return rejected(
            env,
            Failure::new(crate::errors::IO, format!("cannot start a thread: {e}")),
        );
    }
    // On an error here `send` is dropped and the thread ends without a job.
    let (promise, job) = settled_job(env, work, abort, convert)?;
    // The thread waits in `recv` until this arrives, so the send cannot fail.
    let _ = send.send(job);
    Ok(promise)
}
