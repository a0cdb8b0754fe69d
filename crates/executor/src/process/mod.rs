//! Starting processes inside a container: the container's init (create) and extra processes
//! (exec) share the same path from fork to execve.
//!
//! ```text
//!  runtime (P) ──fork──► stage-1 child (C): join namespaces, new user namespace (P writes
//!                        the id maps), unshare the rest, then fork with CLONE_PARENT
//!                                 └──► container process (I), P's child: pid 1 of a new pid
//!                                      namespace when there is one; sets up and execs
//! ```
//! C moves itself into the container's cgroup before anything else, so every descendant lands
//! there and a new cgroup namespace is rooted at it.

pub mod channel;
pub mod init;
pub mod notify;
pub mod spawn;
