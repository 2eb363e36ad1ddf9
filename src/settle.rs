//! The read pool's Promises, settled on the main thread through one queue and one thread-safe
//! function per JavaScript environment.
//!
//! napi-rs's `JsDeferred` makes a thread-safe function for every Promise (an async resource, a
//! libuv handle, a cleanup hook, all made and torn down again on the main thread), and its lock
//! and Node's are taken by the read thread that settles it and the main thread that runs it:
//! with 16 searches in flight on 2 cores the main thread waited on them about once every three
//! searches. Here each environment has one lock-free queue of answers and one thread-safe
//! function, made on its first read, that only wakes the main thread: a read thread queues its
//! answer (or, handing over several, all of them first) and calls the function only if no
//! wake-up is already on its way, and the main thread drains the queue in one wake-up however
//! many answers it holds, turning each into its Promise's value. The function keeps the event
//! loop alive only while Promises are pending, as a per-Promise one did.

use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam_queue::SegQueue;
use napi::bindgen_prelude::*;
use napi::{sys, JsError};

use crate::errors::Failure;

/// Turns a read's outcome into its Promise's value, on the main thread.
pub type Deliver = Box<dyn FnOnce(&Env) -> Result<sys::napi_value> + Send>;

/// One environment's thread-safe function and the Promises pending on it.
struct Channel {
    env: sys::napi_env,
    /// The function, for any thread, while the environment lives: `close` clears it, under
    /// this lock, before Node frees it.
    tsfn: Mutex<Option<Handle>>,
    /// The same function, for its environment's thread only (ref and unref).
    raw: sys::napi_threadsafe_function,
    /// Promises made and not yet settled: the function is referenced (keeps the loop alive)
    /// while this is above 0. Changed on the environment's thread only.
    pending: AtomicUsize,
    /// Answers waiting for the main thread.
    answers: SegQueue<Delivery>,
    /// Whether a wake-up is on its way: set by the thread that calls the function, cleared by
    /// the main thread before it drains `answers`.
    signaled: AtomicBool,
    /// Whether the main thread is polling (`poll`): answers then need no wake-up. Changed on
    /// the environment's thread only.
    polling: AtomicBool,
}

/// Most answers settled in one wake-up; the rest get another, so that I/O and timers wait
/// for no more than this many.
const DRAIN: usize = 256;

// SAFETY: `env` and `raw` are only used on the environment's own thread (`promise`, `deliver`,
// `close` and `settled` run there); other threads only reach `tsfn`, under its lock, and the
// queue and flag, which are made for any thread.
unsafe impl Send for Channel {}
unsafe impl Sync for Channel {}

#[derive(Clone, Copy)]
struct Handle(sys::napi_threadsafe_function);

// SAFETY: a thread-safe function is made to be called from any thread; the handle is only
// called under `Channel::tsfn`'s lock, which the cleanup hook takes to clear it.
unsafe impl Send for Handle {}

thread_local! {
    // The channels of the environments on this thread: one, but for Electron, which can run
    // several environments on one thread (frames with Node integration).
    static LOCAL: RefCell<Vec<Arc<Channel>>> = const { RefCell::new(Vec::new()) };
    /// While this thread settles several answers together (`together`), the channels they went
    /// to, to be woken once each at the end; `None` otherwise. The rule that keeps every
    /// Promise settling: each push onto a channel's queue is followed, on the pushing thread,
    /// by a `signal` of that channel, at once (`send`) or when `together` ends.
    static DEFERRED: Cell<Option<Vec<Arc<Channel>>>> = const { Cell::new(None) };
}

/// Runs `settle_all`, which settles several Promises (`Promised::settle`), and wakes each
/// main thread they went to once, after all of them are queued. Waking on the first would let
/// the main thread drain it while the others are still being queued, and the next one would
/// then wake it again: with 16 searches in flight on 2 cores and workers handing over up to 3
/// answers at once, the main thread was woken about twice per hand-over.
pub fn together(settle_all: impl FnOnce()) {
    // Inside another `together`, the outer one wakes for these answers too. Where the
    // thread-local is gone (a thread being torn down) each answer wakes as it is queued.
    let started = DEFERRED
        .try_with(|d| {
            let outer = d.take();
            let started = outer.is_none();
            d.set(Some(outer.unwrap_or_default()));
            started
        })
        .unwrap_or(false);
    if !started {
        return settle_all();
    }
    // Woken however `settle_all` ends: an answer queued without its wake-up would wait forever.
    struct Wake;
    impl Drop for Wake {
        fn drop(&mut self) {
            let channels = DEFERRED.try_with(Cell::take).ok().flatten();
            for channel in channels.iter().flatten() {
                signal(channel);
            }
        }
    }
    let _wake = Wake;
    settle_all();
}

/// A pending Promise, to be settled from any thread. Dropped unsettled (a job that unwound
/// past its own panic handling), it rejects with ERR_HANNOY_INTERNAL, so no Promise waits
/// forever.
pub struct Promised {
    deferred: Option<Deferred>,
    channel: Arc<Channel>,
}

struct Deferred(sys::napi_deferred);

// SAFETY: the deferred is only read on the main thread (in `settle_one`), where it was made;
// other threads only carry it there.
unsafe impl Send for Deferred {}

/// What travels through a channel's answer queue.
struct Delivery {
    deferred: Deferred,
    deliver: Deliver,
}

/// The channel of `env`, an environment of this thread, if it has one yet.
fn channel_of(env: sys::napi_env) -> Option<Arc<Channel>> {
    LOCAL.with(|local| {
        local
            .try_borrow()
            .ok()
            .and_then(|local| local.iter().find(|c| c.env == env).cloned())
    })
}

/// A new Promise and its settling half. Main thread only.
pub fn promise<'env>(env: &'env Env) -> Result<(Object<'env>, Promised)> {
    let raw_env = env.raw();
    let channel = match channel_of(raw_env) {
        Some(channel) => channel,
        None => {
            let channel = open(raw_env)?;
            LOCAL.with(|local| local.borrow_mut().push(channel.clone()));
            channel
        }
    };
    let mut deferred = ptr::null_mut();
    let mut promise = ptr::null_mut();
    // SAFETY: main thread, a live environment, out-pointers to locals.
    check(unsafe { sys::napi_create_promise(raw_env, &mut deferred, &mut promise) })?;
    if channel.pending.fetch_add(1, Ordering::Relaxed) == 0 {
        // SAFETY: main thread, the function of this environment, not released (`close`
        // removes the channel from `LOCAL` when it releases it).
        unsafe { sys::napi_ref_threadsafe_function(raw_env, channel.raw) };
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
        let channel = &self.channel;
        channel.answers.push(delivery);
        let deferred = DEFERRED
            .try_with(|d| match d.take() {
                Some(mut channels) => {
                    if !channels.iter().any(|c| Arc::ptr_eq(c, channel)) {
                        channels.push(channel.clone());
                    }
                    d.set(Some(channels));
                    true
                }
                None => false,
            })
            .unwrap_or(false);
        if !deferred {
            signal(channel);
        }
    }
}

/// Wakes `channel`'s main thread for the answers just queued, unless it is polling or a
/// wake-up is already on its way.
fn signal(channel: &Arc<Channel>) {
    // Orders the pushes before the read of `polling` (and `poll`'s store before its pops):
    // either this thread sees the main thread poll, or the main thread sees the answers.
    fence(Ordering::SeqCst);
    // The main thread is polling: it takes the answers on its next turn (see `poll`).
    if channel.polling.load(Ordering::SeqCst) {
        return;
    }
    // SeqCst with `deliver`'s clearing: either the main thread, draining after it cleared the
    // flag, sees these answers, or this call sees the flag cleared and wakes it again.
    if !channel.signaled.swap(true, Ordering::SeqCst) {
        wake(channel);
    }
}

/// Calls `channel`'s function once (a wake-up for the main thread), carrying a reference to the
/// channel that `deliver` takes back. If the environment is going away the answers stay queued
/// and are dropped with the channel: nobody waits for them any more.
fn wake(channel: &Arc<Channel>) {
    let data = Arc::into_raw(channel.clone()) as *mut c_void;
    let tsfn = channel.tsfn.lock().unwrap_or_else(|p| p.into_inner());
    let sent = match *tsfn {
        // SAFETY: the function is live while it is in `tsfn` (the cleanup hook takes this lock
        // to clear it before releasing it); `data` is a leaked Arc that `deliver` takes back.
        Some(Handle(f)) => unsafe {
            sys::napi_call_threadsafe_function(
                f,
                data,
                sys::ThreadsafeFunctionCallMode::nonblocking,
            )
        },
        None => sys::Status::napi_closing,
    };
    drop(tsfn);
    if sent != sys::Status::napi_ok {
        // Dropping queued answers off the main thread is sound with napi-rs 3: the JS
        // references they may hold (an AbortWatch's) are an ObjectRef<false>, whose drop does
        // nothing, and a FunctionRef, whose drop hands the release to its environment's thread.
        // SAFETY: not queued, so the Arc leaked above is still ours.
        drop(unsafe { Arc::from_raw(data as *const Channel) });
    }
}

impl Drop for Promised {
    fn drop(&mut self) {
        if let Some(deferred) = self.deferred.take() {
            let failure =
                Failure::internal("internal error (a bug in hannoy): a read ended unsettled");
            self.send(Delivery {
                deferred,
                deliver: Box::new(move |env| Err(failure.to_js(env))),
            });
        }
    }
}

/// Makes this environment's thread-safe function (not referenced) and the cleanup hook that
/// closes it.
fn open(env: sys::napi_env) -> Result<Arc<Channel>> {
    let mut name = ptr::null_mut();
    // SAFETY: main thread, a live environment; the name is a valid C string of that length.
    check(unsafe { sys::napi_create_string_utf8(env, c"hannoy.read".as_ptr(), 11, &mut name) })?;
    let mut tsfn = ptr::null_mut();
    // SAFETY: as above; no JS function (`deliver` settles Promises itself), an unbounded queue
    // (calls never block), one thread count that only the cleanup hook releases, no context
    // (each call carries its channel).
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
    let channel = Arc::new(Channel {
        env,
        tsfn: Mutex::new(Some(Handle(tsfn))),
        raw: tsfn,
        pending: AtomicUsize::new(0),
        answers: SegQueue::new(),
        signaled: AtomicBool::new(false),
        polling: AtomicBool::new(false),
    });
    // SAFETY: main thread, the function just made, which nothing else holds yet.
    unsafe { sys::napi_unref_threadsafe_function(env, tsfn) };
    // Node registers the function's own teardown as a cleanup hook when it is made, and runs
    // hooks in reverse order: this one runs first, so no read thread calls a freed function.
    let hook_data = Arc::into_raw(channel.clone()) as *mut c_void;
    // SAFETY: main thread; `close` takes back the Arc leaked here.
    let hooked = check(unsafe { sys::napi_add_env_cleanup_hook(env, Some(close), hook_data) });
    if let Err(e) = hooked {
        // SAFETY: the hook was not registered, so the Arc is still ours; the function was made
        // above and nothing has been queued on it.
        unsafe {
            drop(Arc::from_raw(hook_data as *const Channel));
            sys::napi_release_threadsafe_function(tsfn, sys::ThreadsafeFunctionReleaseMode::abort);
        }
        return Err(e);
    }
    Ok(channel)
}

/// The environment's cleanup hook: clears the channel (later settles are dropped), releases
/// the function and drops the answers still queued (a wake-up still on its way reaches
/// `deliver` with a null environment).
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
    while channel.answers.pop().is_some() {}
    let _ = LOCAL.try_with(|local| {
        if let Ok(mut local) = local.try_borrow_mut() {
            local.retain(|c| !Arc::ptr_eq(c, &channel));
        }
    });
}

/// One fewer pending Promise on `channel`: its function stops keeping the loop alive at 0.
fn settled(env: sys::napi_env, channel: &Channel) {
    if channel.pending.fetch_sub(1, Ordering::Relaxed) == 1 {
        // SAFETY: main thread, the live function of this environment (`deliver` runs with a
        // live environment only before the cleanup hook releases it).
        unsafe { sys::napi_unref_threadsafe_function(env, channel.raw) };
    }
}

/// The thread-safe function's callback, on the main thread: settles the queued answers.
unsafe extern "C" fn deliver(
    env: sys::napi_env,
    _js_callback: sys::napi_value,
    _context: *mut c_void,
    data: *mut c_void,
) {
    // SAFETY: every call carries an Arc leaked by `wake`, delivered once.
    let channel = unsafe { Arc::from_raw(data as *const Channel) };
    if env.is_null() {
        // the environment is being torn down: its Promises are gone
        while channel.answers.pop().is_some() {}
        return;
    }
    channel.signaled.store(false, Ordering::SeqCst);
    // The store before the pops, as in `poll`.
    fence(Ordering::SeqCst);
    // SAFETY: main thread inside the function's callback, a live environment.
    let emptied = unsafe { drain(env, &channel) };
    // More than one wake-up's worth: the rest in the next, after the loop's other work.
    if !emptied && !channel.signaled.swap(true, Ordering::SeqCst) {
        wake(&channel);
    }
}

/// Settles up to `DRAIN` of `channel`'s queued answers; whether that emptied the queue.
///
/// # Safety
/// Main thread of `env`, the channel's environment, inside a callback or a call from
/// JavaScript (a handle scope is open).
unsafe fn drain(env: sys::napi_env, channel: &Channel) -> bool {
    for _ in 0..DRAIN {
        let Some(delivery) = channel.answers.pop() else {
            return true;
        };
        settled(env, channel);
        // SAFETY: the caller's promise; the channel's deferreds were made in `env`.
        unsafe { settle_one(env, delivery) };
    }
    channel.answers.is_empty()
}

/// Settles one Promise with its answer.
///
/// # Safety
/// Main thread of `env`, inside a callback (a handle scope is open); `delivery`'s deferred was
/// made in `env`.
unsafe fn settle_one(env: sys::napi_env, delivery: Delivery) {
    let Delivery { deferred, deliver } = delivery;
    // Node frees a deferred when it settles it, even when settling fails, so it is handed to
    // Node once: `handed` records that. A panic must not unwind out of `deliver` (an
    // `extern "C"` callback: the process would abort).
    let handed = std::cell::Cell::new(false);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let env_ref = Env::from_raw(env);
        let value = catch_unwind(AssertUnwindSafe(|| deliver(&env_ref))).unwrap_or_else(|_| {
            let failure = Failure::internal(
                "internal error (a bug in hannoy): an answer's conversion panicked",
            );
            Err(failure.to_js(&env_ref))
        });
        // SAFETY: the caller's promise (main thread, a scope, the deferred's own environment).
        unsafe {
            let mut pending = false;
            sys::napi_is_exception_pending(env, &mut pending);
            if pending {
                let mut thrown = ptr::null_mut();
                sys::napi_get_and_clear_last_exception(env, &mut thrown);
                handed.set(true);
                sys::napi_reject_deferred(env, deferred.0, thrown);
                return;
            }
            let value = value.map_err(|error| JsError::from(error).into_value(env));
            handed.set(true);
            match value {
                Ok(value) => sys::napi_resolve_deferred(env, deferred.0, value),
                Err(error) => sys::napi_reject_deferred(env, deferred.0, error),
            };
        }
    }));
    if outcome.is_err() && !handed.get() {
        // Making the answer or its error panicked: reject plainly.
        // SAFETY: as above; the deferred has not been handed to Node.
        unsafe {
            let mut message = ptr::null_mut();
            let mut error = ptr::null_mut();
            let text = c"hannoy: the answer could not be converted";
            sys::napi_create_string_utf8(
                env,
                text.as_ptr(),
                text.count_bytes() as isize,
                &mut message,
            );
            sys::napi_create_error(env, ptr::null_mut(), message, &mut error);
            sys::napi_reject_deferred(env, deferred.0, error);
        }
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

/// While the main thread polls (index.js schedules an Immediate on every turn of the loop while
/// fewer searches are in flight than there are cores), it takes this environment's answers
/// itself, on every turn (`on`), and read threads queue theirs without waking it: a wake-up
/// (a lock and a system call on the read thread, an event and a dispatch on the main thread)
/// is most of what an awaited search costs beyond the search on small sets. Called with `on`
/// false when polling stops: answers queued from then on wake the main thread as usual, and
/// those already queued are settled here or, past `DRAIN`, by a wake-up.
///
/// Returns whether polling should go on: not while readers' background work on a file in the
/// page cache (`prefetch::running`) and the `in_flight` searches leave no core to spare, as the
/// work needs the core a polling loop keeps busy; the call then acts as one with `on` false.
pub fn poll(env: &Env, on: bool, in_flight: u32) -> bool {
    let background = crate::prefetch::running();
    let on = on && (background == 0 || in_flight as usize + background < cores());
    let raw = env.raw();
    let Some(channel) = channel_of(raw) else {
        return on;
    };
    // SeqCst with `signal`'s read of it: an answer queued by a thread that read `true` is seen by
    // the drain below, or by the next call.
    channel.polling.store(on, Ordering::SeqCst);
    // The store before the pops (see `signal`).
    fence(Ordering::SeqCst);
    // SAFETY: main thread, in a call from JavaScript (a handle scope is open), a live
    // environment: the channel's own.
    let emptied = unsafe { drain(raw, &channel) };
    // More than one turn's worth: the next call takes the rest, or, if polling stops, a wake-up.
    if !on && !emptied && !channel.signaled.swap(true, Ordering::SeqCst) {
        wake(&channel);
    }
    on
}

/// The machine's cores, as the JavaScript side counts them (`os.availableParallelism()`).
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
