//! Building a libseccomp filter from a profile, and loading it.

use std::os::fd::OwnedFd;

use libseccomp::{ScmpAction, ScmpArgCompare, ScmpFilterContext, ScmpSyscall};
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompArg};
use tracing::debug;

use super::{Result, SeccompError, convert, profile};

/// A compiled filter, built in the container init process and loaded right before `execve` (or
/// before capabilities are dropped when `noNewPrivileges` is false).
pub struct Filter {
    ctx: ScmpFilterContext,
    /// Some rule uses SCMP_ACT_NOTIFY, so loading creates a listener fd.
    notify: bool,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter")
            .field("notify", &self.notify)
            .finish_non_exhaustive()
    }
}

/// Compiles a profile into a filter, without loading it.
pub fn compile(profile: &LinuxSeccomp) -> Result<Filter> {
    profile::check(profile)?;
    build(profile)
}

impl Filter {
    /// Whether loading creates a listener fd (some rule uses SCMP_ACT_NOTIFY).
    pub fn uses_notify(&self) -> bool {
        self.notify
    }

    /// Loads the filter into the calling thread (into every thread of the process with
    /// SECCOMP_FILTER_FLAG_TSYNC). Returns the listener fd when the profile uses
    /// SCMP_ACT_NOTIFY.
    ///
    /// `load` does not set `no_new_privs`: the caller sets it first when
    /// `process.noNewPrivileges` is true, and otherwise must still hold `CAP_SYS_ADMIN`.
    ///
    /// After the kernel accepts the filter, `load` makes no further syscall: the context's
    /// memory is deliberately leaked (the process is about to `execve`) so that freeing it
    /// cannot trip a profile that denies `munmap` or `brk`. The listener fd is taken over from
    /// libseccomp as is; libseccomp still records its number in its global state, so nothing in
    /// this process may call `libseccomp::reset_global_state` afterwards, and a process can
    /// load at most one notifying filter (the kernel allows one listener per filter chain).
    pub fn load(self) -> Result<Option<OwnedFd>> {
        debug!(notify = self.notify, "loading seccomp filter");
        self.ctx
            .load()
            .map_err(|source| SeccompError::Load { source })?;
        let listener = if self.notify {
            let raw = self
                .ctx
                .get_notify_fd()
                .map_err(|e| SeccompError::Listener {
                    reason: e.to_string(),
                })?;
            if raw < 0 {
                return Err(SeccompError::Listener {
                    reason: format!("libseccomp returned fd {raw}"),
                });
            }
            // SAFETY: `raw` is the listener fd the kernel created (O_CLOEXEC) for this process
            // when the filter above was loaded with SECCOMP_FILTER_FLAG_NEW_LISTENER; libseccomp
            // only stores the number and closes it solely in seccomp_reset(NULL), which berth
            // never calls (see the doc comment). So the OwnedFd is its only owner.
            Some(unsafe { crate::sys::adopt_fd(raw) })
        } else {
            None
        };
        std::mem::forget(self.ctx);
        Ok(listener)
    }
}

/// Builds the libseccomp filter for a profile (in memory only). Errors name the field at fault.
pub(super) fn build(profile: &LinuxSeccomp) -> Result<Filter> {
    let default = convert::action(
        profile.default_action(),
        profile.default_errno_ret(),
        "defaultErrnoRet",
    )?;
    let mut ctx = ScmpFilterContext::new(default).map_err(|source| SeccompError::Context {
        step: "create filter",
        source,
    })?;
    // no_new_privs follows process.noNewPrivileges and is the caller's to set.
    ctx.set_ctl_nnp(false)
        .map_err(|source| SeccompError::Context {
            step: "leave no_new_privs to the caller",
            source,
        })?;
    // Report the kernel's errno from load rather than libseccomp's catch-all ECANCELED.
    ctx.set_api_sysrawrc(true)
        .map_err(|source| SeccompError::Context {
            step: "ask for raw kernel errors",
            source,
        })?;

    // The native architecture is always in a new context; the listed ones are added to it
    // (adding the native one again is a no-op).
    for (i, &arch) in profile.architectures().iter().flatten().enumerate() {
        ctx.add_arch(convert::arch(arch))
            .map_err(|source| SeccompError::Unsupported {
                field: format!("architectures[{i}]"),
                what: format!("architecture {}", arch_name(arch)),
                source,
            })?;
    }
    for (i, &flag) in profile.flags().iter().flatten().enumerate() {
        convert::apply_flag(&mut ctx, flag).map_err(|source| SeccompError::Unsupported {
            field: format!("flags[{i}]"),
            what: format!("flag {}", convert::flag_name(flag)),
            source,
        })?;
    }

    let mut notify = false;
    for (i, rule) in profile.syscalls().iter().flatten().enumerate() {
        let action = convert::action(
            rule.action(),
            rule.errno_ret(),
            &format!("syscalls[{i}].errnoRet"),
        )?;
        let conditions = rule
            .args()
            .iter()
            .flatten()
            .enumerate()
            .map(|(k, arg)| convert::condition(arg, &format!("syscalls[{i}].args[{k}]")))
            .collect::<Result<Vec<_>>>()?;
        // libseccomp refuses a rule whose action is the filter's default (EACCES); it would
        // change nothing anyway.
        if action == default {
            debug!(
                rule = i,
                ?action,
                "seccomp rule has the default action, skipped"
            );
            continue;
        }
        let split = repeats_an_argument(rule.args().as_deref().unwrap_or_default());
        if split {
            debug!(
                rule = i,
                "seccomp rule compares one argument twice, its conditions become separate rules"
            );
        }
        notify |= action == ScmpAction::Notify;
        for (j, name) in rule.names().iter().enumerate() {
            let Ok(syscall) = ScmpSyscall::from_name(name) else {
                debug!(rule = i, syscall = %name, "syscall unknown to libseccomp, skipped");
                continue;
            };
            add_rule(&mut ctx, action, syscall, &conditions, split).map_err(|source| {
                SeccompError::AddRule {
                    field: format!("syscalls[{i}].names[{j}]"),
                    syscall: name.clone(),
                    source,
                }
            })?;
        }
    }
    Ok(Filter { ctx, notify })
}

/// Adds the rule(s) for one syscall of a profile entry.
///
/// The conditions of one entry are ANDed, which is what one libseccomp rule with several
/// conditions does. libseccomp cannot AND two comparisons of the same argument (it refuses the
/// rule with EINVAL), so for such an entry every condition becomes a rule of its own, which ORs
/// them: the behaviour runc has and profiles written for runc expect.
fn add_rule(
    ctx: &mut ScmpFilterContext,
    action: ScmpAction,
    syscall: ScmpSyscall,
    conditions: &[ScmpArgCompare],
    split: bool,
) -> std::result::Result<(), libseccomp::error::SeccompError> {
    if conditions.is_empty() {
        ctx.add_rule(action, syscall)?;
    } else if split {
        for condition in conditions {
            ctx.add_rule_conditional(action, syscall, std::slice::from_ref(condition))?;
        }
    } else {
        ctx.add_rule_conditional(action, syscall, conditions)?;
    }
    Ok(())
}

/// Whether two conditions compare the same argument (indexes were checked in range).
fn repeats_an_argument(args: &[LinuxSeccompArg]) -> bool {
    let mut seen = [false; convert::MAX_ARG_INDEX + 1];
    args.iter()
        .any(|arg| std::mem::replace(&mut seen[arg.index()], true))
}

fn arch_name(arch: oci_spec::runtime::Arch) -> String {
    serde_json::to_value(arch)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{arch:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use libseccomp::ScmpCompareOp;

    fn profile(json: &str) -> LinuxSeccomp {
        serde_json::from_str(json).unwrap()
    }

    /// The filter as libseccomp's pseudo-code, to check what a profile compiled to.
    fn pfc(filter: &Filter) -> String {
        let mut file = tempfile::tempfile().unwrap();
        filter.ctx.export_pfc(&file).unwrap();
        use std::io::{Read, Seek};
        file.rewind().unwrap();
        let mut text = String::new();
        file.read_to_string(&mut text).unwrap();
        text
    }

    #[test]
    fn libseccomp_refuses_two_comparisons_of_one_argument() {
        // Why add_rule splits such entries: pin libseccomp's own behaviour.
        let mut ctx = ScmpFilterContext::new(ScmpAction::Allow).unwrap();
        let both = [
            ScmpArgCompare::new(0, ScmpCompareOp::GreaterEqual, 5),
            ScmpArgCompare::new(0, ScmpCompareOp::LessOrEqual, 10),
        ];
        let personality = ScmpSyscall::from_name("personality").unwrap();
        assert!(
            ctx.add_rule_conditional(ScmpAction::Errno(1), personality, &both)
                .is_err()
        );
    }

    #[test]
    fn repeated_argument_is_split_into_rules() {
        let filter = compile(&profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["personality"],
                "action":"SCMP_ACT_ERRNO","errnoRet":22,
                "args":[{"index":0,"value":5,"op":"SCMP_CMP_EQ"},
                        {"index":0,"value":9,"op":"SCMP_CMP_EQ"}]}]}"#,
        ))
        .unwrap();
        let text = pfc(&filter);
        // Two rules, each with one comparison: ORed.
        assert!(text.contains("if ($a0.lo32 == 5)"), "{text}");
        assert!(text.contains("if ($a0.lo32 == 9)"), "{text}");
    }

    #[test]
    fn conditions_on_different_arguments_are_anded() {
        let filter = compile(&profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["socket"],
                "action":"SCMP_ACT_ERRNO",
                "args":[{"index":0,"value":10,"op":"SCMP_CMP_EQ"},
                        {"index":1,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#,
        ))
        .unwrap();
        assert!(!filter.notify);
        let text = pfc(&filter);
        // One rule: the second comparison nests inside the first.
        let indent = |needle: &str| {
            let line = text.lines().find(|l| l.contains(needle)).expect(&text);
            line.len() - line.trim_start().len()
        };
        assert!(
            indent("if ($a1.lo32 == 1)") > indent("if ($a0.lo32 == 10)"),
            "{text}"
        );
    }

    #[test]
    fn rule_with_default_action_is_skipped() {
        // libseccomp would refuse it with EACCES; compile must not.
        let filter = compile(&profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,"syscalls":[
                {"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":38},
                {"names":["rmdir"],"action":"SCMP_ACT_ERRNO","errnoRet":1},
                {"names":["getpid"],"action":"SCMP_ACT_ALLOW"}]}"#,
        ))
        .unwrap();
        let text = pfc(&filter);
        assert!(!text.contains("mkdir"), "{text}");
        assert!(text.contains("rmdir"), "{text}");
    }

    #[test]
    fn kill_and_kill_thread_are_one_action() {
        compile(&profile(
            r#"{"defaultAction":"SCMP_ACT_KILL","syscalls":[
                {"names":["getpid"],"action":"SCMP_ACT_KILL_THREAD"}]}"#,
        ))
        .unwrap();
    }

    #[test]
    fn unknown_syscalls_are_skipped() {
        let filter = compile(&profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
                {"names":["no_such_syscall_2099","mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#,
        ))
        .unwrap();
        assert!(pfc(&filter).contains("mkdir"));
    }

    #[test]
    fn listed_architectures_are_in_the_filter() {
        let filter = compile(&profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW",
                "architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],
                "syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#,
        ))
        .unwrap();
        for arch in [libseccomp::ScmpArch::X86, libseccomp::ScmpArch::X32] {
            assert!(filter.ctx.is_arch_present(arch).unwrap(), "{arch:?}");
        }
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn architecture_of_other_endianness_names_its_field() {
        // libseccomp cannot mix endiannesses in one filter; s390x cannot join x86_64.
        let err = validate_err(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86","SCMP_ARCH_S390X"]}"#,
        );
        assert!(
            err.starts_with(
                "linux.seccomp.architectures[1]: architecture SCMP_ARCH_S390X is not supported here: "
            ),
            "{err}"
        );
    }

    fn validate_err(json: &str) -> String {
        super::super::validate(&profile(json))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn every_action_compiles() {
        for action in convert::ACTIONS {
            let action = convert::action_name(action);
            let json = format!(
                r#"{{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/x.sock",
                    "syscalls":[{{"names":["mkdir"],"action":"{action}"}}]}}"#
            );
            let filter = compile(&profile(&json)).unwrap_or_else(|e| panic!("{action}: {e}"));
            assert_eq!(filter.notify, action == "SCMP_ACT_NOTIFY", "{action}");
        }
    }

    #[test]
    fn every_operator_compiles() {
        for (_, op) in convert::OPERATORS {
            let json = format!(
                r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{{"names":["personality"],
                    "action":"SCMP_ACT_ERRNO","args":[{{"index":0,"value":8,"op":"{op}"}}]}}]}}"#
            );
            compile(&profile(&json)).unwrap_or_else(|e| panic!("{op}: {e}"));
        }
    }

    #[test]
    fn flags_set_filter_attributes() {
        let filter = compile(&profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW",
                "flags":["SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_TSYNC",
                         "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]}"#,
        ))
        .unwrap();
        assert!(filter.ctx.get_ctl_log().unwrap());
        assert!(filter.ctx.get_ctl_tsync().unwrap());
        assert!(filter.ctx.get_ctl_ssb().unwrap());
        assert!(!filter.ctx.get_ctl_nnp().unwrap());
    }

    #[test]
    fn unsupported_flag_names_its_field() {
        // libseccomp < 2.6 cannot ask for WAIT_KILLABLE_RECV; where it can, the profile is fine.
        let result = compile(&profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW",
                "flags":["SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}"#,
        ));
        let supported =
            libseccomp::check_api(7, libseccomp::ScmpVersion::from((2, 6, 0))).unwrap_or(false);
        match result {
            Ok(_) => assert!(supported),
            Err(e) => {
                assert!(!supported);
                assert!(
                    e.to_string().starts_with(
                        "linux.seccomp.flags[1]: flag SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV is \
                         not supported here: "
                    ),
                    "{e}"
                );
            }
        }
    }
}
