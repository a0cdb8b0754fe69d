//! The OCI runtime, driven through its command line with runc's contract.

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

    /// `exec --process F [--console-socket S] --pid-file P --detach ID`; returns the pid.
    pub fn exec(
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
        self.run_spawning(c, stdio, "exec")?;
        read_pid(pid_file)
    }

    pub fn start(&self, id: &str) -> Result<(), Error> {
        self.run(&["start", id], "start")
    }

    pub fn kill(&self, id: &str, signal: i32, all: bool) -> Result<(), Error> {
        let sig = signal.to_string();
        let mut args = vec!["kill"];
        if all {
            args.push("--all");
        }
        args.extend([id, &sig]);
        self.run(&args, "kill")
    }

    pub fn delete(&self, id: &str, force: bool) -> Result<(), Error> {
        let mut args = vec!["delete"];
        if force {
            args.push("--force");
        }
        args.push(id);
        self.run(&args, "delete")
    }

    fn run(&self, args: &[&str], op: &'static str) -> Result<(), Error> {
        let out = self
            .command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| Error::Spawn {
                binary: self.binary.clone(),
                source: e,
            })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(Error::Runtime {
                op,
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            })
        }
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

fn read_pid(path: &Path) -> Result<i32, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
        what: "read pid file",
        path: path.to_owned(),
        source: e,
    })?;
    text.trim().parse().map_err(|_| Error::BadPidFile {
        path: path.to_owned(),
    })
}
