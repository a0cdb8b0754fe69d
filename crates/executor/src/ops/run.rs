//! `run`: create and start in one step; in the foreground it waits for the container,
//! forwarding signals to it, and returns its exit code.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use super::Runtime;
use super::create::{CreateOptions, create_from};
use crate::error::{Error, Result};
use crate::spec::{Bundle, load_bundle};

#[derive(Debug, Default, Clone)]
pub struct RunOptions {
    pub create: CreateOptions,
    pub detach: bool,
    pub keep: bool,
}

pub fn run(rt: &Runtime, id: &str, opts: &RunOptions) -> Result<i32> {
    // The id names a path below: check it before anything is created.
    crate::state::check_id(id)?;
    let bundle = load_bundle(&opts.create.bundle)?;
    // In the foreground, a terminal with nowhere to send it is ours: receive the pty master on
    // a private socket and relay it to our own stdio, as runc does.
    let needs_tty = !opts.detach && opts.create.console_socket.is_none() && wants_terminal(&bundle);
    let mut create_opts = opts.create.clone();
    let console = if needs_tty {
        let path = rt.root.join(format!(".{id}.console"));
        std::fs::create_dir_all(&rt.root).map_err(|e| Error::io("create", &rt.root, e))?;
        let _ = std::fs::remove_file(&path);
        let l = UnixListener::bind(&path).map_err(|e| Error::io("bind", &path, e))?;
        create_opts.console_socket = Some(path.clone());
        Some((l, path))
    } else {
        None
    };
    let created = create_from(rt, id, &bundle, &create_opts);
    let master = match console {
        Some((l, path)) => {
            let _ = std::fs::remove_file(&path);
            match created.as_ref() {
                Ok(_) => Some(receive_master(&l)?),
                Err(_) => None,
            }
        }
        None => None,
    };
    let pid = created?;
    if let Err(e) = super::start::start(rt, id) {
        let _ = super::delete::delete(rt, id, true);
        return Err(e);
    }
    if opts.detach {
        return Ok(0);
    }
    let code = match master {
        Some(m) => relay_terminal(pid, m)?,
        None => wait_forwarding_signals(pid)?,
    };
    if !opts.keep {
        super::delete::delete(rt, id, true)?;
    }
    Ok(code)
}

fn wants_terminal(bundle: &Bundle) -> bool {
    bundle
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false)
}

fn receive_master(l: &UnixListener) -> Result<OwnedFd> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    let (conn, _) = l
        .accept()
        .map_err(|e| Error::sys("accept console socket", e))?;
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| Error::sys("receive the pty master", e))?;
    for c in msg
        .cmsgs()
        .map_err(|e| Error::sys("receive the pty master", e))?
    {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&raw) = fds.first() {
                // SAFETY: the kernel just installed this descriptor for us alone.
                return Ok(unsafe { crate::sys::adopt_fd(raw) });
            }
        }
    }
    Err(Error::Init("the container sent no terminal".into()))
}

/// Copies our stdin to the pty and the pty to our stdout until the container exits; our
/// terminal (if stdin is one) is raw meanwhile, and window size changes follow.
fn relay_terminal(pid: i32, master: OwnedFd) -> Result<i32> {
    use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    let saved = tcgetattr(stdin.as_fd()).ok();
    if let Some(t) = &saved {
        let mut raw = t.clone();
        cfmakeraw(&mut raw);
        let _ = tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        copy_winsize(&master);
    }
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(*s);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
        .map_err(|e| Error::sys("block signals", e))?;
    let sfd =
        SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC).map_err(|e| Error::sys("signalfd", e))?;
    let pidfd = crate::sys::pidfd_open(pid).map_err(|e| Error::sys("pidfd_open", e))?;
    let mut stdin_open = true;
    let mut master_open = true;
    let mut buf = [0u8; 8192];
    let result = loop {
        // Order: pidfd, signals, then the pty and stdin while they are open.
        let mut fds = vec![
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
        ];
        let master_at = master_open.then(|| {
            fds.push(PollFd::new(master.as_fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        let stdin_at = stdin_open.then(|| {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => break Err(Error::sys("poll", e)),
            Ok(_) => {}
        }
        let ready = |i: Option<usize>| {
            i.and_then(|i| fds[i].revents())
                .is_some_and(|r| !r.is_empty())
        };
        let (exited, signalled, output, input) = (
            ready(Some(0)),
            ready(Some(1)),
            ready(master_at),
            ready(stdin_at),
        );
        if output {
            match nix::unistd::read(&master, &mut buf) {
                Ok(n) if n > 0 => {
                    let _ = std::io::Write::write_all(&mut std::io::stdout(), &buf[..n]);
                    let _ = std::io::Write::flush(&mut std::io::stdout());
                    continue;
                }
                // EIO: the last holder of the terminal's other end is gone.
                _ => master_open = false,
            }
        }
        if input {
            match nix::unistd::read(stdin.as_fd(), &mut buf) {
                Ok(n) if n > 0 => {
                    let _ = nix::unistd::write(&master, &buf[..n]);
                }
                _ => stdin_open = false,
            }
        }
        if signalled {
            if let Ok(Some(info)) = sfd.read_signal() {
                if info.ssi_signo as i32 == libc::SIGWINCH {
                    copy_winsize(&master);
                } else {
                    let _ = crate::sys::pidfd_send_signal(pidfd.as_fd(), info.ssi_signo as i32);
                }
            }
        }
        if exited && (!output || !master_open) {
            let status = crate::sys::waitpid(pid).map_err(|e| Error::sys("waitpid", e));
            break status.map(crate::sys::exit_code);
        }
    };
    if let Some(t) = &saved {
        let _ = tcsetattr(stdin.as_fd(), SetArg::TCSANOW, t);
    }
    result
}

fn copy_winsize(master: &OwnedFd) {
    if let Some((rows, cols)) = crate::sys::get_winsize(std::io::stdin().as_fd()) {
        let _ = crate::sys::set_winsize(master.as_fd(), rows, cols);
    }
}

const FORWARDED: &[Signal] = &[
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCONT,
    Signal::SIGTSTP,
];

/// Waits for our child `pid` to exit, passing the signals we receive on to it.
pub fn wait_forwarding_signals(pid: i32) -> Result<i32> {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(*s);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
        .map_err(|e| Error::sys("block signals", e))?;
    let sfd =
        SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC).map_err(|e| Error::sys("signalfd", e))?;
    let pidfd = crate::sys::pidfd_open(pid).map_err(|e| Error::sys("pidfd_open", e))?;
    loop {
        let mut fds = [
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("poll", e)),
            Ok(_) => {}
        }
        if fds[1].revents().is_some_and(|r| !r.is_empty()) {
            if let Ok(Some(info)) = sfd.read_signal() {
                let _ = crate::sys::pidfd_send_signal(pidfd.as_fd(), info.ssi_signo as i32);
            }
        }
        if fds[0].revents().is_some_and(|r| !r.is_empty()) {
            let status = crate::sys::waitpid(pid).map_err(|e| Error::sys("waitpid", e))?;
            return Ok(crate::sys::exit_code(status));
        }
    }
}
