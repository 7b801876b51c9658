//! The context: owns the Tokio runtime that drives every connection, and the
//! dispatcher through which completion callbacks reach the application.
//!
//! No protocol rules here. Callbacks are delivered either at once on the
//! library thread that finished the operation (direct mode) or queued until
//! the application calls `dispatch` on its own thread (queued mode), with a
//! file descriptor that is readable while callbacks wait.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::runtime::{Builder, Handle, Runtime};

use super::error::{Error, ErrorKind};

/// A callback waiting to run.
pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// How completion callbacks reach the application.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryMode {
    /// On the library thread that completed the operation.
    Direct,
    /// Queued until `dispatch` runs them on the application's thread.
    Queued,
}

/// Context options.
#[derive(Clone, Copy, Debug)]
pub struct ContextOptions {
    /// Runtime worker threads (at least 1).
    pub worker_threads: usize,
    /// Callback delivery.
    pub delivery: DeliveryMode,
    /// Whether an application thread waiting for a quick response may
    /// busy-wait briefly before it sleeps (see [`super::slot::SpinHint`]).
    pub busy_wait: bool,
}

impl Default for ContextOptions {
    fn default() -> Self {
        ContextOptions {
            worker_threads: 1,
            delivery: DeliveryMode::Direct,
            busy_wait: true,
        }
    }
}

#[cfg(unix)]
struct Wake {
    rx: std::os::unix::net::UnixStream,
    tx: std::os::unix::net::UnixStream,
}

struct Dispatcher {
    mode: DeliveryMode,
    queue: Mutex<VecDeque<Job>>,
    #[cfg(unix)]
    wake: Option<Wake>,
}

impl Dispatcher {
    fn new(mode: DeliveryMode) -> Result<Dispatcher, Error> {
        #[cfg(unix)]
        let wake = match mode {
            DeliveryMode::Direct => None,
            DeliveryMode::Queued => {
                let (rx, tx) = std::os::unix::net::UnixStream::pair().map_err(|e| {
                    Error::new(
                        ErrorKind::Io,
                        format!("cannot create the wake-up socket pair: {e}"),
                    )
                })?;
                rx.set_nonblocking(true)
                    .and_then(|_| tx.set_nonblocking(true))
                    .map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?;
                Some(Wake { rx, tx })
            }
        };
        #[cfg(not(unix))]
        if mode == DeliveryMode::Queued {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "queued delivery with a file descriptor is only available on Unix",
            ));
        }
        Ok(Dispatcher {
            mode,
            queue: Mutex::new(VecDeque::new()),
            #[cfg(unix)]
            wake,
        })
    }

    fn deliver(&self, job: impl FnOnce() + Send + 'static) {
        match self.mode {
            DeliveryMode::Direct => run_guarded(job),
            DeliveryMode::Queued => {
                let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
                q.push_back(Box::new(job));
                #[cfg(unix)]
                if q.len() == 1 {
                    if let Some(w) = &self.wake {
                        use std::io::Write;
                        let _ = (&w.tx).write(&[1]);
                    }
                }
            }
        }
    }

    /// Runs up to `max` queued jobs on the calling thread; the queue lock is
    /// not held while a job runs, so jobs may call back into the library.
    fn run(&self, max: usize) -> usize {
        let mut ran = 0;
        while ran < max {
            let job = {
                let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
                let job = q.pop_front();
                if q.is_empty() {
                    self.drain_wake();
                }
                job
            };
            match job {
                Some(j) => {
                    run_guarded(j);
                    ran += 1;
                }
                None => break,
            }
        }
        ran
    }

    fn drain_wake(&self) {
        #[cfg(unix)]
        if let Some(w) = &self.wake {
            use std::io::Read;
            let mut buf = [0u8; 64];
            while matches!((&w.rx).read(&mut buf), Ok(n) if n > 0) {}
        }
    }

    fn pending(&self) -> usize {
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

fn run_guarded(job: impl FnOnce()) {
    // A panic in a callback wrapper must not take a runtime thread down.
    let _ = catch_unwind(AssertUnwindSafe(job));
}

/// Something that has callbacks to deliver when the context shuts down.
pub trait ShutdownHook: Send + Sync {
    /// Called once on the thread that shuts the context down, after the
    /// runtime's threads stopped and before queued callbacks are run.
    fn shutdown(&self);
}

/// The runtime context shared (through `Arc`) by every connector, server
/// and transport created from it.
pub struct Context {
    rt: Mutex<Option<Runtime>>,
    handle: Handle,
    dispatcher: Dispatcher,
    closed: AtomicBool,
    /// What must still happen when the context shuts down, after its
    /// threads stopped (sessions deliver their last callbacks).
    on_shutdown: Mutex<Vec<Weak<dyn ShutdownHook>>>,
    next_id: AtomicU64,
    /// State that the layers above keep once per context (e.g. the shared
    /// connections of `transport::shared`), by type.
    extensions: Mutex<Vec<Arc<dyn std::any::Any + Send + Sync>>>,
    /// Busy-waits allowed: asked for, and more than one CPU (on one, the
    /// waiter would only hold off the thread that brings its value).
    busy_wait: bool,
}

/// Writing to a connection the peer has reset raises SIGPIPE, whose default
/// action ends the process. A C application that left SIGPIPE at its
/// default gets it ignored (writes then fail with EPIPE, which the library
/// reports as "closed"); a handler or mask the application set is kept.
#[cfg(unix)]
fn ignore_sigpipe() {
    // SAFETY: sigaction with a zeroed struct only reads the current action;
    // the second call installs SIG_IGN, which is async-signal-safe.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_DFL
        {
            let mut ign: libc::sigaction = std::mem::zeroed();
            ign.sa_sigaction = libc::SIG_IGN;
            libc::sigaction(libc::SIGPIPE, &ign, std::ptr::null_mut());
        }
    }
}

#[cfg(not(unix))]
fn ignore_sigpipe() {}

/// The library's own threads never take SIGPIPE, whatever the application
/// sets later: the signal is blocked on them, so a write to a broken
/// connection only fails with EPIPE. (Writes made on an application thread
/// use `MSG_NOSIGNAL`.)
#[cfg(unix)]
fn block_sigpipe_on_this_thread() {
    // SAFETY: a zeroed sigset is valid input to sigemptyset; the calls only
    // change this thread's signal mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

#[cfg(not(unix))]
fn block_sigpipe_on_this_thread() {}

/// `f`, or a timeout error after `wait`.
async fn within<T>(
    wait: Duration,
    what: &str,
    f: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    match tokio::time::timeout(wait, f).await {
        Ok(r) => r,
        Err(_) => Err(Error::new(
            ErrorKind::Timeout,
            format!("no {what} within {} ms", wait.as_millis()),
        )),
    }
}

/// Whether the calling thread is one of the library's runtime threads
/// (a callback runs there), where blocking calls are refused.
pub fn on_library_thread() -> bool {
    Handle::try_current().is_ok()
}

impl Context {
    /// Starts the runtime.
    pub fn new(opts: ContextOptions) -> Result<Arc<Context>, Error> {
        ignore_sigpipe();
        let rt = Builder::new_multi_thread()
            .worker_threads(opts.worker_threads.max(1))
            .thread_name("msrp-worker")
            .on_thread_start(block_sigpipe_on_this_thread)
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| Error::new(ErrorKind::Io, format!("cannot start the runtime: {e}")))?;
        let handle = rt.handle().clone();
        Ok(Arc::new(Context {
            rt: Mutex::new(Some(rt)),
            handle,
            dispatcher: Dispatcher::new(opts.delivery)?,
            closed: AtomicBool::new(false),
            on_shutdown: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
            extensions: Mutex::new(Vec::new()),
            busy_wait: opts.busy_wait
                && std::thread::available_parallelism().is_ok_and(|n| n.get() > 1),
        }))
    }

    /// A process-unique id for transports (logger callbacks name them by it).
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The context's one `T` (made with `T::default()` on first use).
    pub fn extension<T: std::any::Any + Default + Send + Sync>(&self) -> Arc<T> {
        let mut v = self.extensions.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = v.iter().find_map(|e| e.clone().downcast::<T>().ok()) {
            return t;
        }
        let t = Arc::new(T::default());
        v.push(t.clone());
        t
    }

    /// Whether the context was shut down.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn check_open(&self) -> Result<(), Error> {
        if self.is_closed() {
            Err(Error::closed("the context was freed"))
        } else {
            Ok(())
        }
    }

    /// Spawns a task on the runtime.
    pub fn spawn<F>(&self, f: F) -> Option<tokio::task::AbortHandle>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if self.is_closed() {
            return None;
        }
        Some(self.handle.spawn(f).abort_handle())
    }

    /// Whether the calling thread may block: not on the library's own
    /// threads (inside a callback), where waiting could deadlock.
    pub fn check_may_block(&self) -> Result<(), Error> {
        if on_library_thread() {
            return Err(Error::new(
                ErrorKind::InCallback,
                "blocking call made on a libmsrp thread (inside a callback): use the callback form of this call instead",
            ));
        }
        self.check_open()
    }

    /// Waits on an application thread (at most `timeout`) for a value a
    /// runtime thread sends through `rx`. With `hint`, the wait busy-waits
    /// first when the previous one of the series was quick, and is noted
    /// in it.
    pub fn wait_slot<T>(
        &self,
        timeout: Duration,
        rx: super::slot::SlotRx<T>,
        gone: &str,
        hint: Option<&super::slot::SpinHint>,
    ) -> Result<T, Error> {
        self.check_may_block()?;
        let spin = match hint {
            Some(h) if self.busy_wait => h.budget(),
            _ => Duration::ZERO,
        };
        let start = std::time::Instant::now();
        let r = rx.wait(timeout, spin);
        if let Some(h) = hint {
            h.record(start.elapsed());
        }
        r.map_err(|e| match e {
            super::slot::SlotError::Timeout => Error::new(
                ErrorKind::Timeout,
                format!("no result within {} ms", timeout.as_millis()),
            ),
            super::slot::SlotError::Gone => Error::closed(gone),
        })
    }

    /// Runs `f` to completion from an application thread, with a timeout.
    /// Refused on the library's own threads, where waiting could deadlock.
    pub fn block_on<T, F>(&self, timeout: Duration, f: F) -> Result<T, Error>
    where
        F: Future<Output = Result<T, Error>>,
    {
        self.check_may_block()?;
        let _guard = self.handle.enter();
        self.handle.block_on(within(timeout, "result", f))
    }

    /// Runs `f` on the runtime for at most `wait` and hands its result to
    /// `done` on a runtime thread: an [`ErrorKind::Timeout`] error saying
    /// "no `what` within …" when it took longer. The callback forms of the
    /// blocking calls are built on this. When the context is closed nothing
    /// runs and `done` is dropped unused.
    pub fn spawn_within<T, F, D>(&self, wait: Duration, what: &'static str, f: F, done: D)
    where
        T: Send + 'static,
        F: Future<Output = Result<T, Error>> + Send + 'static,
        D: FnOnce(Result<T, Error>) + Send + 'static,
    {
        self.spawn(async move { done(within(wait, what, f).await) });
    }

    /// Runs `hook` when the context shuts down (unless it is gone by then).
    pub fn on_shutdown(&self, hook: Weak<dyn ShutdownHook>) {
        let mut v = self.on_shutdown.lock().unwrap_or_else(|p| p.into_inner());
        // Hooks of objects gone since are dropped now and then.
        if v.len() >= 64 && v.len().is_power_of_two() {
            v.retain(|h| h.strong_count() > 0);
        }
        v.push(hook);
    }

    /// Hands a finished callback to the application (direct or queued).
    pub fn deliver(&self, job: impl FnOnce() + Send + 'static) {
        self.dispatcher.deliver(job);
    }

    /// Queued mode: runs up to `max` waiting callbacks on this thread.
    pub fn dispatch(&self, max: usize) -> usize {
        self.dispatcher.run(max)
    }

    /// Queued mode: callbacks waiting.
    pub fn pending_callbacks(&self) -> usize {
        self.dispatcher.pending()
    }

    /// Queued mode: the descriptor that is readable while callbacks wait.
    #[cfg(unix)]
    pub fn wake_fd(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        self.dispatcher.wake.as_ref().map(|w| w.rx.as_raw_fd())
    }

    /// Whether callbacks are queued.
    pub fn is_queued(&self) -> bool {
        self.dispatcher.mode == DeliveryMode::Queued
    }

    /// Shuts the runtime down: every task is dropped (their pending callbacks
    /// fire with a "closed" result), the worker threads are joined, and queued
    /// callbacks are run on the calling thread. Nothing runs afterwards.
    pub fn shutdown(&self) {
        self.closed.store(true, Ordering::Release);
        let rt = self.rt.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(rt) = rt {
            if Handle::try_current().is_ok() {
                // Called on a runtime thread (from a callback): a runtime
                // cannot be dropped from inside itself, so let it wind down
                // in the background.
                rt.shutdown_background();
            } else {
                rt.shutdown_timeout(Duration::from_secs(10));
            }
        }
        let hooks =
            std::mem::take(&mut *self.on_shutdown.lock().unwrap_or_else(|p| p.into_inner()));
        for h in hooks.iter().filter_map(Weak::upgrade) {
            run_guarded(|| h.shutdown());
        }
        while self.dispatcher.run(usize::MAX) > 0 {}
        // What the layers above kept here may point back at the context
        // (shared connections do): let it go, so nothing keeps it alive.
        drop(std::mem::take(
            &mut *self.extensions.lock().unwrap_or_else(|p| p.into_inner()),
        ));
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        if !self.is_closed() {
            self.shutdown();
        }
    }
}
