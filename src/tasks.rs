//! How work leaves the main thread: reads as libuv pool tasks, writes through the write queue,
//! and both settle their Promise on the main thread with the contract's errors.

use napi::bindgen_prelude::*;

use crate::abort::AbortWatch;
use crate::errors::{Failure, Outcome};
use crate::queue::WriteQueue;

type Work<T> = Box<dyn FnOnce() -> Outcome<T> + Send>;
type Convert<T, R> = fn(&Env, T) -> Result<R>;

/// A read on the libuv pool: `work` runs there, `convert` turns its output into JS.
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

    pub fn from_outcome(outcome: Outcome<Self>, convert: Convert<T, R>) -> AsyncTask<Self>
    where
        Self: Task,
    {
        AsyncTask::new(outcome.unwrap_or_else(|failure| ReadTask::failed(failure, convert)))
    }
}

impl<T: Send + 'static, R: ToNapiValue + TypeName> Task for ReadTask<T, R> {
    type Output = T;
    type JsValue = R;

    fn compute(&mut self) -> Result<T> {
        let outcome = match (self.failure.take(), self.work.take()) {
            (Some(failure), _) => Err(failure),
            (None, Some(work)) => work(),
            (None, None) => Err(Failure::invalid("the task ran twice")),
        };
        outcome.map_err(|failure| {
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
