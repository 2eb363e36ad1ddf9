//! AbortSignal support: a flag the engine polls, set by an 'abort' listener on the signal.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use napi::bindgen_prelude::*;

use crate::errors::{Failure, Outcome};

type Listener = FunctionRef<(), ()>;
type EventMethod<'a> = Function<'a, FnArgs<(&'static str, Function<'a, (), ()>)>, Unknown<'a>>;

/// Watches one optional AbortSignal for the length of one operation. `detach` must run on the
/// main thread when the operation ends, so the listener does not outlive it.
pub struct AbortWatch {
    flag: Arc<AtomicBool>,
    attached: Option<(ObjectRef<false>, Listener)>,
}

impl AbortWatch {
    pub fn none() -> AbortWatch {
        AbortWatch {
            flag: Arc::new(AtomicBool::new(false)),
            attached: None,
        }
    }

    /// Starts watching `signal` (`undefined` watches nothing). An already aborted signal
    /// sets the flag at once.
    pub fn new(env: &Env, signal: Option<Unknown<'_>>) -> Outcome<AbortWatch> {
        let mut watch = AbortWatch::none();
        let Some(signal) = signal else {
            return Ok(watch);
        };
        let not_a_signal = || Failure::invalid("signal must be an AbortSignal");
        if signal.get_type().ok() != Some(ValueType::Object) {
            return Err(not_a_signal());
        }
        // SAFETY: checked to be an object of the current call's scope.
        let object = unsafe { Object::from_napi_value(signal.env(), signal.raw()) }
            .map_err(|_| not_a_signal())?;
        let aborted: bool = object
            .get_named_property("aborted")
            .map_err(|_| not_a_signal())?;
        if aborted {
            watch.flag.store(true, Ordering::SeqCst);
            return Ok(watch);
        }
        let add: EventMethod = object
            .get_named_property("addEventListener")
            .map_err(|_| not_a_signal())?;
        let flag = watch.flag.clone();
        let listener = env
            .create_function_from_closure::<(), (), _>("onabort", move |_| {
                flag.store(true, Ordering::SeqCst);
                Ok(())
            })
            .map_err(|e| Failure::invalid(e.reason))?;
        add.apply(object, FnArgs::from(("abort", listener)))
            .map_err(|_| not_a_signal())?;
        let listener = listener
            .create_ref()
            .map_err(|e| Failure::invalid(e.reason))?;
        let signal = object
            .create_ref::<false>()
            .map_err(|e| Failure::invalid(e.reason))?;
        watch.attached = Some((signal, listener));
        Ok(watch)
    }

    pub fn flag(&self) -> Arc<AtomicBool> {
        self.flag.clone()
    }

    pub fn is_aborted(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Removes the listener (main thread only).
    pub fn detach(&mut self, env: &Env) {
        let Some((signal, listener)) = self.attached.take() else {
            return;
        };
        if let (Ok(object), Ok(function)) = (signal.get_value(env), listener.borrow_back(env)) {
            if let Ok(remove) = object.get_named_property::<EventMethod>("removeEventListener") {
                let _ = remove.apply(object, FnArgs::from(("abort", function)));
            }
        }
        let _ = signal.unref(env);
    }
}
