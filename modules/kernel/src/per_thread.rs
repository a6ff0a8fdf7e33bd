//! A value per OS thread, made on a thread's first use. A database or Redis
//! connection is driven by a task on the runtime that opened it: handed to a
//! task on another thread, every call crosses threads twice (and waits while
//! that thread is busy), so each single-threaded runtime keeps its own.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};
use std::thread::ThreadId;

pub struct PerThread<T> {
    by_thread: RwLock<HashMap<ThreadId, T>>,
}

impl<T> Default for PerThread<T> {
    fn default() -> Self {
        PerThread { by_thread: RwLock::new(HashMap::new()) }
    }
}

impl<T: Clone> PerThread<T> {
    /// The calling thread's value, made by `make` the first time. A thread
    /// whose runtime ended (a finished test's) leaves its value here, its
    /// connections closed with the tasks that drove them.
    pub fn get_or_try_make<E>(&self, make: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        let thread = std::thread::current().id();
        // The map only gains whole entries: one a panicking thread held is still sound.
        if let Some(value) = self.by_thread.read().unwrap_or_else(PoisonError::into_inner).get(&thread) {
            return Ok(value.clone());
        }
        let value = make()?;
        let mut by_thread = self.by_thread.write().unwrap_or_else(PoisonError::into_inner);
        Ok(by_thread.entry(thread).or_insert(value).clone())
    }

    /// Calls `f` with every thread's value.
    pub fn for_each(&self, f: impl FnMut(&T)) {
        self.by_thread.read().unwrap_or_else(PoisonError::into_inner).values().for_each(f);
    }
}

/// Whether the calling task runs on a single-threaded runtime (an HTTP
/// worker's, the background one), where a value per thread pays; tasks of a
/// multi-threaded runtime move between threads.
pub fn on_own_runtime() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread)
}
