//! The OCI runtime, driven through its command line with runc's contract.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::Error;

/// A runc-compatible runtime binary and its state root.
pub struct Runtime {
    pub binary: PathBuf,
    pub root: PathBuf,
}

/// Stdio for a runtime command that starts a process (create, exec): the process inherits it.
pub struct ProcStdio {
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
}

impl Runtime {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.binary);
        c.arg("--root").arg(&self.root).args(args);
        crate::sys::clear_signal_mask_in_child(&mut c);
        c
    }

    /// `create --bundle B --pid-file P [--console-socket S] ID`; returns the container's pid.
    pub fn create(
        &self,
        id: &str,
        bundle: &Path,
        pid_file: &Path,
        console_socket: Option<&Path>,
        stdio: ProcStdio,
    ) -> Result<i32, Error> {
        let mut c = self.command(&["create", "--bundle"]);
        c.arg(bundle).arg("--pid-file").arg(pid_file);
        if let Some(s) = console_socket {
            c.arg("--console-socket").arg(s);
        }
        c.arg(id);
        self.run_spawning(c, stdio, "create")?;
        read_pid(pid_file)
    }

    /// `exec --process F [--tty --console-socket S] --pid-file P --detach ID`, started and not
    /// waited for: the shim's loop reaps it. Returns the runtime's pid.
    pub fn spawn_exec(
        &self,
        id: &str,
        process_file: &Path,
        pid_file: &Path,
        console_socket: Option<&Path>,
        stdio: ProcStdio,
    ) -> Result<i32, Error> {
        let mut c = self.command(&["exec", "--process"]);
        c.arg(process_file).arg("--pid-file").arg(pid_file);
        if let Some(s) = console_socket {
            c.arg("--tty").arg("--console-socket").arg(s);
        }
        c.arg("--detach").arg(id);
        c.stdin(stdio.stdin)
            .stdout(stdio.stdout)
            .stderr(stdio.stderr);
        let child = c.spawn().map_err(|e| Error::Spawn {
            binary: self.binary.clone(),
            source: e,
        })?;
        Ok(child.id() as i32)
    }

    /// A runtime command (`start`, `kill`, `delete`), started and not waited for; returns its
    /// pid and the read end of its stderr.
    pub fn spawn(&self, args: &[&str]) -> Result<(i32, File), Error> {
        let mut child = self
            .command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::Spawn {
                binary: self.binary.clone(),
                source: e,
            })?;
        let stderr = child
            .stderr
            .take()
            .map(OwnedFd::from)
            .ok_or_else(|| Error::Spawn {
                binary: self.binary.clone(),
                source: std::io::Error::other("no stderr pipe"),
            })?;
        // Dropping `child` neither kills nor waits: the loop reaps the pid.
        Ok((child.id() as i32, File::from(stderr)))
    }

    /// Runs a command whose stdio the new process inherits. The runtime's own error text then
    /// goes to the process's stderr; the caller reads it from there on failure.
    fn run_spawning(
        &self,
        mut c: Command,
        stdio: ProcStdio,
        op: &'static str,
    ) -> Result<(), Error> {
        c.stdin(stdio.stdin)
            .stdout(stdio.stdout)
            .stderr(stdio.stderr);
        let status = c.status().map_err(|e| Error::Spawn {
            binary: self.binary.clone(),
            source: e,
        })?;
        if status.success() {
            Ok(())
        } else {
            Err(Error::Runtime {
                op,
                status: status.to_string(),
                stderr: String::new(),
            })
        }
    }
}

/// `start ID`.
pub fn start_args(id: &str) -> Vec<String> {
    vec!["start".into(), id.into()]
}

/// `kill [--all] ID SIG`.
pub fn kill_args(id: &str, signal: i32, all: bool) -> Vec<String> {
    let mut v = vec!["kill".to_owned()];
    if all {
        v.push("--all".into());
    }
    v.extend([id.to_owned(), signal.to_string()]);
    v
}

/// `delete [--force] ID`.
pub fn delete_args(id: &str, force: bool) -> Vec<String> {
    let mut v = vec!["delete".to_owned()];
    if force {
        v.push("--force".into());
    }
    v.push(id.into());
    v
}

pub fn read_pid(path: &Path) -> Result<i32, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
        what: "read pid file",
        path: path.to_owned(),
        source: e,
    })?;
    text.trim().parse().map_err(|_| Error::BadPidFile {
        path: path.to_owned(),
    })
}
