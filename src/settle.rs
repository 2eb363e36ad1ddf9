//! The read pool's Promises, settled on the main thread through one thread-safe function per
//! JavaScript environment.
//!
//! napi-rs's `JsDeferred` makes a thread-safe function for every Promise (an async resource, a
//! libuv handle, a cleanup hook, all made and torn down again on the main thread): with 16
//! searches in flight on 2 cores that was 7 % of the main thread's time, which the read threads
//! need. Here each environment has one, made on its first read. A finished read queues its
//! answer on it; the main thread drains the queue in one wake-up however many answers it holds,
//! and turns each into its Promise's value. The function keeps the event loop alive only while
//! Promises are pending, as a per-Promise one did.

use std::cell::RefCell;
use std::ffi::c_void;
use std::ptr;
use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::*;
use napi::{sys, JsError};

/// Turns a read's outcome into its Promise's value, on the main thread.
pub type Deliver = Box<dyn FnOnce(&Env) -> Result<sys::napi_value> + Send>;

/// The thread-safe function, while its environment lives.
struct Channel {
    tsfn: Mutex<Option<Handle>>,
}

#[derive(Clone, Copy)]
struct Handle(sys::napi_threadsafe_function);

// SAFETY: a thread-safe function is made to be called from any thread; the handle is only
// used under `Channel::tsfn`'s lock, which the environment's cleanup hook takes to clear it
// before Node frees the function.
unsafe impl Send for Handle {}

/// The main thread's side of its environment's channel.
struct Local {
    env: sys::napi_env,
    channel: Arc<Channel>,
    tsfn: sys::napi_threadsafe_function,
    /// Promises made and not yet settled: the function is referenced (keeps the loop alive)
    /// while this is above 0.
    pending: usize,
}

thread_local! {
    // An environment lives on one thread and a thread runs one environment at a time (the
    // main thread, or a worker_thread's own thread).
    static LOCAL: RefCell<Option<Local>> = const { RefCell::new(None) };
}

/// A pending Promise, to be settled from any thread. Dropped unsettled (a job that unwound
/// past its own panic handling), it rejects with ERR_HANNOY_INTERNAL, so no Promise waits
/// forever.
pub struct Promised {
    deferred: Option<Deferred>,
    channel: Arc<Channel>,
}

struct Deferred(sys::napi_deferred);

// SAFETY: the deferred is only read on the main thread (in `deliver`), where it was made; other
// threads only carry it there.
unsafe impl Send for Deferred {}

/// What travels through the thread-safe function's queue.
struct Delivery {
    deferred: Deferred,
    deliver: Deliver,
}

/// A new Promise and its settling half. Main thread only.
pub fn promise<'env>(env: &'env Env) -> Result<(Object<'env>, Promised)> {
    let raw_env = env.raw();
    let channel = LOCAL.with(|local| -> Result<Arc<Channel>> {
        let mut local = local.borrow_mut();
        if local.as_ref().is_none_or(|l| l.env != raw_env) {
            *local = Some(open(raw_env)?);
        }
        let Some(local) = local.as_mut() else {
            return Err(Error::from_reason("no channel"));
        };
        if local.pending == 0 {
            // SAFETY: main thread, the function of this environment, not released (the
            // cleanup hook clears `LOCAL` when it releases it).
            check(unsafe { sys::napi_ref_threadsafe_function(raw_env, local.tsfn) })?;
        }
        local.pending += 1;
        Ok(local.channel.clone())
    })?;
    let mut deferred = ptr::null_mut();
    let mut promise = ptr::null_mut();
    // SAFETY: main thread, a live environment, out-pointers to locals.
    let made = check(unsafe { sys::napi_create_promise(raw_env, &mut deferred, &mut promise) });
    if let Err(e) = made {
        LOCAL.with(|local| settled(&mut local.borrow_mut()));
        return Err(e);
    }
    let promised = Promised {
        deferred: Some(Deferred(deferred)),
        channel,
    };
    Ok((Object::from_raw(raw_env, promise), promised))
}

impl Promised {
    /// Settles the Promise with what `deliver` makes on the main thread (any thread).
    pub fn settle(mut self, deliver: Deliver) {
        if let Some(deferred) = self.deferred.take() {
            self.send(Delivery { deferred, deliver });
        }
    }

    fn send(&self, delivery: Delivery) {
        let data = Box::into_raw(Box::new(delivery));
        let tsfn = self.channel.tsfn.lock().unwrap_or_else(|p| p.into_inner());
        let sent = match *tsfn {
            // SAFETY: the function is live while it is in `tsfn` (the cleanup hook takes this
            // lock to clear it before releasing it); `data` is a leaked Box that `deliver`
            // takes back.
            Some(Handle(f)) => unsafe {
                sys::napi_call_threadsafe_function(
                    f,
                    data.cast(),
                    sys::ThreadsafeFunctionCallMode::nonblocking,
                )
            },
            None => sys::Status::napi_closing,
        };
        drop(tsfn);
        if sent != sys::Status::napi_ok {
            // The environment is going away: nobody waits for this Promise any more.
            // SAFETY: not queued, so still ours.
            drop(unsafe { Box::from_raw(data) });
        }
    }
}

impl Drop for Promised {
    fn drop(&mut self) {
        if let Some(deferred) = self.deferred.take() {
            let failure = crate::errors::Failure::internal(
                "internal error (a bug in hannoy): a read ended unsettled",
            );
            self.send(Delivery {
                deferred,
                deliver: Box::new(move |env| Err(failure.to_js(env))),
            });
        }
    }
}

/// Makes this environment's thread-safe function (not referenced) and the cleanup hook that
/// closes it.
fn open(env: sys::napi_env) -> Result<Local> {
    let channel = Arc::new(Channel {
        tsfn: Mutex::new(None),
    });
    let mut name = ptr::null_mut();
    // SAFETY: main thread, a live environment; the name is a valid C string of that length.
    check(unsafe { sys::napi_create_string_utf8(env, c"hannoy.read".as_ptr(), 11, &mut name) })?;
    let mut tsfn = ptr::null_mut();
    // SAFETY: as above; no JS function (`deliver` settles Promises itself), an unbounded queue
    // (calls never block), one thread count that is never released but by the cleanup hook.
    check(unsafe {
        sys::napi_create_threadsafe_function(
            env,
            ptr::null_mut(),
            ptr::null_mut(),
            name,
            0,
            1,
            ptr::null_mut(),
            None,
            ptr::null_mut(),
            Some(deliver),
            &mut tsfn,
        )
    })?;
    // Node registers the function's own teardown as a cleanup hook when it is made, and runs
    // hooks in reverse order: this one runs first, so no read thread calls a freed function.
    let hook_data = Arc::into_raw(channel.clone()) as *mut c_void;
    // SAFETY: main thread; `close` takes back the Arc leaked here.
    let hooked = check(unsafe { sys::napi_add_env_cleanup_hook(env, Some(close), hook_data) });
    if let Err(e) = hooked {
        // SAFETY: the hook was not registered, so the Arc is still ours; the function was made
        // above and nothing else holds it.
        unsafe {
            drop(Arc::from_raw(hook_data as *const Channel));
            sys::napi_release_threadsafe_function(tsfn, sys::ThreadsafeFunctionReleaseMode::abort);
        }
        return Err(e);
    }
    // SAFETY: main thread, the function just made.
    check(unsafe { sys::napi_unref_threadsafe_function(env, tsfn) })?;
    *channel.tsfn.lock().unwrap_or_else(|p| p.into_inner()) = Some(Handle(tsfn));
    Ok(Local {
        env,
        channel,
        tsfn,
        pending: 0,
    })
}

/// The environment's cleanup hook: clears the channel (later settles are dropped) and releases
/// the function; what is still queued reaches `deliver` with a null environment.
unsafe extern "C" fn close(data: *mut c_void) {
    // SAFETY: the Arc leaked in `open` for this hook, which Node runs once.
    let channel = unsafe { Arc::from_raw(data as *const Channel) };
    let taken = channel
        .tsfn
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    if let Some(Handle(f)) = taken {
        // SAFETY: the function is live (Node frees it after this hook) and no read thread can
        // call it any more (cleared above, under the lock).
        unsafe {
            sys::napi_release_threadsafe_function(f, sys::ThreadsafeFunctionReleaseMode::abort)
        };
    }
    let _ = LOCAL.try_with(|local| {
        if let Ok(mut local) = local.try_borrow_mut() {
            if local
                .as_ref()
                .is_some_and(|l| Arc::ptr_eq(&l.channel, &channel))
            {
                *local = None;
            }
        }
    });
}

/// One fewer pending Promise: the function stops keeping the loop alive at 0.
fn settled(local: &mut Option<Local>) {
    if let Some(local) = local.as_mut() {
        local.pending = local.pending.saturating_sub(1);
        if local.pending == 0 {
            // SAFETY: main thread, the live function of this environment.
            unsafe { sys::napi_unref_threadsafe_function(local.env, local.tsfn) };
        }
    }
}

/// The thread-safe function's callback, on the main thread: settles one Promise.
unsafe extern "C" fn deliver(
    env: sys::napi_env,
    _js_callback: sys::napi_value,
    _context: *mut c_void,
    data: *mut c_void,
) {
    // SAFETY: every queued item is a Box leaked by `Promised::send`, delivered once.
    let delivery = unsafe { Box::from_raw(data as *mut Delivery) };
    if env.is_null() {
        return; // the environment is being torn down: its Promises are gone
    }
    let _ = LOCAL.try_with(|local| {
        if let Ok(mut local) = local.try_borrow_mut() {
            settled(&mut local);
        }
    });
    let Delivery { deferred, deliver } = *delivery;
    let env_ref = Env::from_raw(env);
    let value = deliver(&env_ref);
    // SAFETY: main thread inside the function's callback (Node opened a handle scope); the
    // deferred was made in this environment and is settled once, here.
    unsafe {
        let mut pending = false;
        sys::napi_is_exception_pending(env, &mut pending);
        let mut thrown = ptr::null_mut();
        if pending {
            sys::napi_get_and_clear_last_exception(env, &mut thrown);
        }
        if pending {
            sys::napi_reject_deferred(env, deferred.0, thrown);
            return;
        }
        match value {
            Ok(value) => sys::napi_resolve_deferred(env, deferred.0, value),
            Err(error) => {
                let error = JsError::from(error).into_value(env);
                sys::napi_reject_deferred(env, deferred.0, error)
            }
        };
    }
}

fn check(status: sys::napi_status) -> Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(Error::new(
            Status::from(status),
            "cannot make the read's Promise",
        ))
    }
}
