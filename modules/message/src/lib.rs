//! The message module: conversations between a guest and a listing's host.
//! This first part holds its pure rules (`domain`): contact masking. The
//! service, store, routes and client come with the rest of the module.

pub mod domain;
