//! OCI lifecycle hooks: each runs with the container's state JSON on stdin, its own args and
//! env, and an optional timeout. Whether a failure is fatal depends on the hook point and is
//! decided by the caller (prestart, createRuntime, createContainer and startContainer failures
//! fail the operation; poststart and poststop failures are logged and the rest go on).

use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

use crate::error::{Error, Result};

/// Runs `hooks` in order, stopping at the first failure.
pub fn run_all(hooks: Option<&Vec<Hook>>, state: &serde_json::Value) -> Result<()> {
    for hook in hooks.into_iter().flatten() {
        run(hook, state)?;
    }
    Ok(())
}

/// Runs every hook in `hooks`, logging failures: for poststart and poststop.
pub fn run_all_logged(hooks: Option<&Vec<Hook>>, state: &serde_json::Value, point: &str) {
    for hook in hooks.into_iter().flatten() {
        if let Err(e) = run(hook, state) {
            tracing::warn!(hook = point, error = %e, "hook failed; continuing");
        }
    }
}

pub fn run(hook: &Hook, state: &serde_json::Value) -> Result<()> {
    let path = hook.path();
    let fail = |reason: String| Error::Hook {
        path: path.clone(),
        reason,
    };
    let mut cmd = Command::new(path);
    if let Some(args) = hook.args() {
        if let Some((arg0, rest)) = args.split_first() {
            cmd.arg0(arg0).args(rest);
        }
    }
    cmd.env_clear();
    for kv in hook.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    let mut child = cmd.spawn().map_err(|e| fail(format!("start: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin must not fail because of it.
        let _ = stdin.write_all(state.to_string().as_bytes());
    }
    let deadline = hook
        .timeout()
        .map(|t| Instant::now() + Duration::from_secs(t.max(1) as u64));
    let status = loop {
        if deadline.is_none() {
            break child.wait().map_err(|e| fail(format!("wait: {e}")))?;
        }
        if let Some(status) = child.try_wait().map_err(|e| fail(format!("wait: {e}")))? {
            break status;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail(format!(
                "timed out after {}s",
                hook.timeout().unwrap_or(0)
            )));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    if status.success() {
        return Ok(());
    }
    match (status.code(), status.signal()) {
        (Some(code), _) => Err(fail(format!("exited with status {code}"))),
        (_, Some(sig)) => Err(fail(format!("killed by signal {sig}"))),
        _ => Err(fail("failed".into())),
    }
}
