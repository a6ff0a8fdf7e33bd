//! Realtime: the `/ws` gateway. Frames for a user reach every socket they
//! hold on any process (Redis pub/sub between processes, in process without
//! Redis); each socket has its own byte-bounded queue, so a slow reader is
//! cut off (4008) without slowing anyone else; a resume back-fills missed
//! messages from the message store; presence is kept per user across devices
//! and processes.

pub mod api;
#[cfg(feature = "local")]
pub mod fanout;
#[cfg(feature = "local")]
pub mod hub;
#[cfg(feature = "local")]
pub mod presence;
#[cfg(feature = "local")]
pub mod service;
#[cfg(feature = "local")]
pub mod socket;
#[cfg(feature = "local")]
pub mod store;
