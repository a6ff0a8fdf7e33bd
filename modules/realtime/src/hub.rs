//! The sockets of this process, by user, each with its own outgoing queue.
//!
//! Delivering a frame only appends it to each recipient socket's queue (a
//! lock, a push): it never waits on a socket. Each socket's writer task
//! drains its queue into actix-ws at that client's pace; once more than the
//! byte budget waits, the queue is dropped and the socket closed with 4008,
//! so the slowest client costs the others nothing.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use hometrip_kernel::Id;
use tokio::sync::Notify;

/// One frame on its way to a socket.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// A JSON text frame, with its conversation and `seq` when it is a
    /// `message.created` (the writer keeps those gap-free and in order).
    Frame { text: Arc<str>, order: Option<(Id, i64)> },
    /// A client's resume: back-fill these conversations after these seqs,
    /// and the notifications after this one (`Some(None)`: all of them).
    Resume(Vec<(Id, i64)>, Option<Option<Id>>),
}

impl Outgoing {
    fn bytes(&self) -> usize {
        match self {
            Outgoing::Frame { text, .. } => text.len(),
            Outgoing::Resume(c, _) => c.len() * 48 + 64,
        }
    }
}

/// What a socket's writer finds in its queue.
#[derive(Debug)]
pub enum Next {
    Item(Outgoing),
    Empty,
    /// Overflowed or closed: the writer stops.
    Stopped,
}

#[derive(Default)]
struct QueueState {
    items: VecDeque<Outgoing>,
    bytes: usize,
    overflowed: bool,
    closed: bool,
}

/// A socket's outgoing queue.
pub struct SocketQueue {
    pub id: u64,
    pub user: Id,
    max_bytes: usize,
    state: Mutex<QueueState>,
    /// Something was queued (or the queue overflowed or closed).
    pub ready: Notify,
    /// The queue overflowed: the writer stops what it is doing and closes.
    pub overflow: Notify,
}

impl SocketQueue {
    fn state(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `item` unless the budget would be exceeded; then the queue is
    /// emptied and marked overflowed (the writer closes with 4008).
    pub fn push(&self, item: Outgoing) {
        let mut s = self.state();
        if s.overflowed || s.closed {
            return;
        }
        let len = item.bytes();
        if s.bytes + len > self.max_bytes {
            s.overflowed = true;
            s.items.clear();
            s.bytes = 0;
            drop(s);
            metrics::counter!("realtime_slow_consumers_total").increment(1);
            self.overflow.notify_one();
            self.ready.notify_one();
            return;
        }
        s.bytes += len;
        // A resume goes before the live frames already waiting: they are then
        // recognised as sent (or as gaps), never sent ahead of what they follow.
        if matches!(item, Outgoing::Resume(..)) {
            s.items.push_front(item);
        } else {
            s.items.push_back(item);
        }
        drop(s);
        self.ready.notify_one();
    }

    /// The next item, if any, unless the queue overflowed or closed.
    pub fn pop(&self) -> Next {
        let mut s = self.state();
        if s.overflowed || s.closed {
            return Next::Stopped;
        }
        match s.items.pop_front() {
            Some(item) => {
                s.bytes -= item.bytes();
                Next::Item(item)
            }
            None => Next::Empty,
        }
    }

    pub fn overflowed(&self) -> bool {
        self.state().overflowed
    }

    pub fn close(&self) {
        self.state().closed = true;
        self.ready.notify_one();
    }
}

/// This process's sockets.
pub struct Hub {
    sockets: Mutex<HashMap<Id, Vec<Arc<SocketQueue>>>>,
    next_id: AtomicU64,
    max_queued_bytes: usize,
}

impl Hub {
    pub fn new(max_queued_bytes: usize) -> Arc<Hub> {
        Arc::new(Hub { sockets: Mutex::new(HashMap::new()), next_id: AtomicU64::new(1), max_queued_bytes })
    }

    fn sockets(&self) -> MutexGuard<'_, HashMap<Id, Vec<Arc<SocketQueue>>>> {
        self.sockets.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a socket of `user`; also whether it is the user's first here.
    pub fn register(&self, user: Id) -> (Arc<SocketQueue>, bool) {
        let queue = Arc::new(SocketQueue {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            user,
            max_bytes: self.max_queued_bytes,
            state: Mutex::new(QueueState::default()),
            ready: Notify::new(),
            overflow: Notify::new(),
        });
        let mut sockets = self.sockets();
        let of_user = sockets.entry(user).or_default();
        of_user.push(Arc::clone(&queue));
        let first = of_user.len() == 1;
        metrics::gauge!("realtime_sockets").increment(1.0);
        (queue, first)
    }

    /// Removes a socket; whether it was the user's last here.
    pub fn unregister(&self, queue: &SocketQueue) -> bool {
        queue.close();
        let mut sockets = self.sockets();
        let Some(of_user) = sockets.get_mut(&queue.user) else { return false };
        let before = of_user.len();
        of_user.retain(|q| q.id != queue.id);
        if of_user.len() < before {
            metrics::gauge!("realtime_sockets").decrement(1.0);
        }
        if of_user.is_empty() {
            sockets.remove(&queue.user);
            true
        } else {
            false
        }
    }

    /// Queues a frame on every socket of these users held here.
    pub fn deliver(&self, users: &[Id], item: &Outgoing) {
        let targets: Vec<Arc<SocketQueue>> = {
            let sockets = self.sockets();
            users.iter().filter_map(|u| sockets.get(u)).flatten().cloned().collect()
        };
        for q in targets {
            q.push(item.clone());
        }
    }

    /// Users with a socket here.
    pub fn users(&self) -> Vec<Id> {
        self.sockets().keys().copied().collect()
    }

    pub fn is_here(&self, user: Id) -> bool {
        self.sockets().contains_key(&user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: usize) -> Outgoing {
        Outgoing::Frame { text: Arc::from("x".repeat(n)), order: None }
    }

    #[test]
    fn a_full_queue_overflows_without_touching_other_sockets() {
        let hub = Hub::new(1000);
        let (slow_user, fast_user) = (Id::new(), Id::new());
        let (slow, first) = hub.register(slow_user);
        assert!(first);
        let (fast, _) = hub.register(fast_user);
        for _ in 0..3 {
            hub.deliver(&[slow_user, fast_user], &frame(300));
            // The fast socket's writer keeps up.
            assert!(matches!(fast.pop(), Next::Item(_)));
        }
        assert!(!slow.overflowed());
        hub.deliver(&[slow_user, fast_user], &frame(300));
        assert!(slow.overflowed());
        assert!(matches!(slow.pop(), Next::Stopped));
        assert!(matches!(fast.pop(), Next::Item(_)));
        assert!(hub.unregister(&slow));
        assert!(!hub.is_here(slow_user));
    }

    #[test]
    fn the_last_socket_of_a_user_is_known() {
        let hub = Hub::new(1000);
        let user = Id::new();
        let (a, first) = hub.register(user);
        let (b, second_first) = hub.register(user);
        assert!(first && !second_first);
        assert!(!hub.unregister(&a));
        assert!(hub.unregister(&b));
    }
}
