//! Rules about the profile as a whole, the ones no single-value translation can see.

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction as Action};

use super::{Result, SeccompError, filter};

/// The syscall the init process needs, after the filter is loaded, to hand the listener fd over
/// to its parent: notifying on it would block init before anyone holds the listener.
const HANDOVER_SYSCALL: &str = "write";

/// Checks a profile without loading anything.
///
/// Called early in `create`, before any fork, so that a bad profile fails cleanly. It checks the
/// rules of the runtime spec that span fields, then builds the libseccomp filter (in memory
/// only) so that anything libseccomp or this kernel would refuse is refused here, with the field
/// at fault. Unknown actions, architectures, operators and flags cannot reach this function:
/// they are refused when the spec is parsed. Unknown syscall *names* are skipped with a debug
/// log, as runc does, because profiles list syscalls newer than this kernel or libseccomp.
pub fn validate(profile: &LinuxSeccomp) -> Result<()> {
    check(profile)?;
    filter::build(profile).map(drop)
}

/// The cross-field rules, without libseccomp.
pub(super) fn check(profile: &LinuxSeccomp) -> Result<()> {
    // A notifying default action would also notify on the handover write (and on everything
    // else init does before execve). runc refuses it for the same reason.
    if profile.default_action() == Action::ScmpActNotify {
        return Err(SeccompError::invalid(
            "defaultAction",
            "SCMP_ACT_NOTIFY cannot be the default action",
        ));
    }
    if profile.listener_metadata().is_some() && profile.listener_path().is_none() {
        return Err(SeccompError::invalid(
            "listenerMetadata",
            "set without listenerPath",
        ));
    }
    if let Some(path) = profile.listener_path() {
        if path.as_os_str().is_empty() {
            return Err(SeccompError::invalid("listenerPath", "empty path"));
        }
    }

    let mut notifies = false;
    for (i, rule) in profile.syscalls().iter().flatten().enumerate() {
        if rule.names().is_empty() {
            return Err(SeccompError::invalid(
                format!("syscalls[{i}].names"),
                "must name at least one syscall",
            ));
        }
        let rule_notifies = rule.action() == Action::ScmpActNotify;
        notifies |= rule_notifies;
        for (j, name) in rule.names().iter().enumerate() {
            if name.is_empty() {
                return Err(SeccompError::invalid(
                    format!("syscalls[{i}].names[{j}]"),
                    "empty syscall name",
                ));
            }
            if rule_notifies && name == HANDOVER_SYSCALL {
                return Err(SeccompError::invalid(
                    format!("syscalls[{i}].names[{j}]"),
                    "SCMP_ACT_NOTIFY cannot be used for the write syscall",
                ));
            }
        }
    }
    // Without a listener path nobody would ever receive the listener fd; runc finds out only
    // after the filter is loaded, we refuse the profile up front.
    if notifies && profile.listener_path().is_none() {
        return Err(SeccompError::invalid(
            "listenerPath",
            "required when a rule uses SCMP_ACT_NOTIFY",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(json: &str) -> LinuxSeccomp {
        serde_json::from_str(json).unwrap()
    }

    fn err(json: &str) -> String {
        validate(&profile(json)).unwrap_err().to_string()
    }

    #[test]
    fn minimal_profile_is_valid() {
        validate(&profile(r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#)).unwrap();
    }

    #[test]
    fn docker_like_profile_is_valid() {
        validate(&profile(
            r#"{
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
                {"names": ["read", "write", "close", "execve", "exit_group", "futex"],
                 "action": "SCMP_ACT_ALLOW"},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 2114060288, "valueTwo": 0,
                           "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
                {"names": ["socketcall", "not_a_syscall_at_all"], "action": "SCMP_ACT_ALLOW"}
            ]
        }"#,
        ))
        .unwrap();
    }

    #[test]
    fn notify_as_default_is_refused() {
        assert_eq!(
            err(r#"{"defaultAction":"SCMP_ACT_NOTIFY","listenerPath":"/run/a.sock"}"#),
            "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action"
        );
    }

    #[test]
    fn notify_on_write_is_refused() {
        assert_eq!(
            err(
                r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/a.sock",
                    "syscalls":[{"names":["mkdir","write"],"action":"SCMP_ACT_NOTIFY"}]}"#
            ),
            "linux.seccomp.syscalls[0].names[1]: SCMP_ACT_NOTIFY cannot be used for the write \
             syscall"
        );
    }

    #[test]
    fn notify_needs_a_listener_path() {
        assert_eq!(
            err(r#"{"defaultAction":"SCMP_ACT_ALLOW",
                    "syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#),
            "linux.seccomp.listenerPath: required when a rule uses SCMP_ACT_NOTIFY"
        );
    }

    #[test]
    fn metadata_needs_a_listener_path() {
        assert_eq!(
            err(r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerMetadata":"x"}"#),
            "linux.seccomp.listenerMetadata: set without listenerPath"
        );
    }

    #[test]
    fn empty_names_are_refused() {
        assert_eq!(
            err(r#"{"defaultAction":"SCMP_ACT_ALLOW",
                    "syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"},
                                {"names":[],"action":"SCMP_ACT_ERRNO"}]}"#),
            "linux.seccomp.syscalls[1].names: must name at least one syscall"
        );
        assert_eq!(
            err(r#"{"defaultAction":"SCMP_ACT_ALLOW",
                    "syscalls":[{"names":["mkdir",""],"action":"SCMP_ACT_ERRNO"}]}"#),
            "linux.seccomp.syscalls[0].names[1]: empty syscall name"
        );
    }

    #[test]
    fn default_errno_ret_needs_errno_or_trace() {
        assert_eq!(
            err(r#"{"defaultAction":"SCMP_ACT_KILL_PROCESS","defaultErrnoRet":1}"#),
            "linux.seccomp.defaultErrnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an \
             errno, not SCMP_ACT_KILL_PROCESS"
        );
        validate(&profile(
            r#"{"defaultAction":"SCMP_ACT_TRACE","defaultErrnoRet":3}"#,
        ))
        .unwrap();
    }

    #[test]
    fn rule_errno_ret_needs_errno_or_trace() {
        assert_eq!(
            err(r#"{"defaultAction":"SCMP_ACT_ALLOW",
                    "syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":38},
                                {"names":["rmdir"],"action":"SCMP_ACT_LOG","errnoRet":1}]}"#),
            "linux.seccomp.syscalls[1].errnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an \
             errno, not SCMP_ACT_LOG"
        );
    }

    #[test]
    fn bad_args_name_their_field() {
        assert_eq!(
            err(r#"{"defaultAction":"SCMP_ACT_ALLOW",
                    "syscalls":[{"names":["socket"],"action":"SCMP_ACT_ERRNO",
                                 "args":[{"index":0,"value":10,"op":"SCMP_CMP_EQ"},
                                         {"index":7,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#),
            "linux.seccomp.syscalls[0].args[1].index: 7 is out of range (a syscall has 6 \
             arguments, 0 to 5)"
        );
    }

    #[test]
    fn unknown_enum_values_fail_at_parse() {
        // Unknown actions, architectures, operators and flags never reach validate: the spec
        // does not parse. Pin that, since validate relies on it.
        for json in [
            r#"{"defaultAction":"SCMP_ACT_EXPLODE"}"#,
            r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_VAX"]}"#,
            r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_NOPE"]}"#,
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],
                "action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_XX"}]}]}"#,
        ] {
            assert!(
                serde_json::from_str::<LinuxSeccomp>(json).is_err(),
                "{json}"
            );
        }
    }
}
