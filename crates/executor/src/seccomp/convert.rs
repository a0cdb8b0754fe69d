//! One-to-one translations between the OCI names (oci-spec enums) and libseccomp's types.
//! Everything that can be refused for a single value (an errnoRet on the wrong action, an
//! argument index out of range) is refused here, with the field that carries it.

use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext};
use oci_spec::runtime::{
    Arch, LinuxSeccompAction as Action, LinuxSeccompArg, LinuxSeccompFilterFlag as Flag,
    LinuxSeccompOperator as Op,
};

use super::{Result, SeccompError};

/// What `errnoRet`/`defaultErrnoRet` defaults to, as the runtime spec says.
const DEFAULT_ERRNO: u16 = libc::EPERM as u16;

/// Highest argument index a syscall has (x86_64 and every other Linux ABI pass six).
pub(super) const MAX_ARG_INDEX: usize = 5;

/// Every action of the runtime spec, in the order `features` reports them.
pub(super) const ACTIONS: [Action; 9] = [
    Action::ScmpActKill,
    Action::ScmpActKillProcess,
    Action::ScmpActKillThread,
    Action::ScmpActTrap,
    Action::ScmpActErrno,
    Action::ScmpActTrace,
    Action::ScmpActAllow,
    Action::ScmpActLog,
    Action::ScmpActNotify,
];

/// Every operator of the runtime spec, with its name.
pub(super) const OPERATORS: [(Op, &str); 7] = [
    (Op::ScmpCmpNe, "SCMP_CMP_NE"),
    (Op::ScmpCmpLt, "SCMP_CMP_LT"),
    (Op::ScmpCmpLe, "SCMP_CMP_LE"),
    (Op::ScmpCmpEq, "SCMP_CMP_EQ"),
    (Op::ScmpCmpGe, "SCMP_CMP_GE"),
    (Op::ScmpCmpGt, "SCMP_CMP_GT"),
    (Op::ScmpCmpMaskedEq, "SCMP_CMP_MASKED_EQ"),
];

/// Every filter flag of the runtime spec.
pub(super) const FLAGS: [Flag; 4] = [
    Flag::SeccompFilterFlagTsync,
    Flag::SeccompFilterFlagLog,
    Flag::SeccompFilterFlagSpecAllow,
    Flag::SeccompFilterFlagWaitKillableRecv,
];

/// Every architecture of the runtime spec except `SCMP_ARCH_NATIVE`.
pub(super) const ARCHS: [Arch; 24] = [
    Arch::ScmpArchX86,
    Arch::ScmpArchX86_64,
    Arch::ScmpArchX32,
    Arch::ScmpArchArm,
    Arch::ScmpArchAarch64,
    Arch::ScmpArchMips,
    Arch::ScmpArchMips64,
    Arch::ScmpArchMips64n32,
    Arch::ScmpArchMipsel,
    Arch::ScmpArchMipsel64,
    Arch::ScmpArchMipsel64n32,
    Arch::ScmpArchPpc,
    Arch::ScmpArchPpc64,
    Arch::ScmpArchPpc64le,
    Arch::ScmpArchS390,
    Arch::ScmpArchS390x,
    Arch::ScmpArchParisc,
    Arch::ScmpArchParisc64,
    Arch::ScmpArchRiscv64,
    Arch::ScmpArchLoongarch64,
    Arch::ScmpArchM68k,
    Arch::ScmpArchSh,
    Arch::ScmpArchSheb,
    Arch::ScmpArchNative,
];

pub(super) fn action_name(action: Action) -> &'static str {
    match action {
        Action::ScmpActKill => "SCMP_ACT_KILL",
        Action::ScmpActKillThread => "SCMP_ACT_KILL_THREAD",
        Action::ScmpActKillProcess => "SCMP_ACT_KILL_PROCESS",
        Action::ScmpActTrap => "SCMP_ACT_TRAP",
        Action::ScmpActErrno => "SCMP_ACT_ERRNO",
        Action::ScmpActNotify => "SCMP_ACT_NOTIFY",
        Action::ScmpActTrace => "SCMP_ACT_TRACE",
        Action::ScmpActLog => "SCMP_ACT_LOG",
        Action::ScmpActAllow => "SCMP_ACT_ALLOW",
    }
}

pub(super) fn flag_name(flag: Flag) -> &'static str {
    match flag {
        Flag::SeccompFilterFlagLog => "SECCOMP_FILTER_FLAG_LOG",
        Flag::SeccompFilterFlagTsync => "SECCOMP_FILTER_FLAG_TSYNC",
        Flag::SeccompFilterFlagSpecAllow => "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        Flag::SeccompFilterFlagWaitKillableRecv => "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
    }
}

/// The libseccomp action for an OCI action and its optional errno/trace value.
///
/// `field` names the errnoRet field (`defaultErrnoRet` or `syscalls[i].errnoRet`). The spec says
/// an errnoRet on an action that takes none is an error; the value travels in the 16-bit
/// SECCOMP_RET_DATA, so anything wider would be silently cut and is refused too. (The kernel
/// further caps an ERRNO value at 4095.)
pub(super) fn action(action: Action, errno_ret: Option<u32>, field: &str) -> Result<ScmpAction> {
    let data = match (action, errno_ret) {
        (_, None) => DEFAULT_ERRNO,
        (Action::ScmpActErrno | Action::ScmpActTrace, Some(value)) => u16::try_from(value)
            .map_err(|_| {
                SeccompError::invalid(field, format!("{value} does not fit in 16 bits"))
            })?,
        (other, Some(_)) => {
            return Err(SeccompError::invalid(
                field,
                format!(
                    "only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an errno, not {}",
                    action_name(other)
                ),
            ));
        }
    };
    Ok(match action {
        // SCMP_ACT_KILL is the historical name of SCMP_ACT_KILL_THREAD.
        Action::ScmpActKill | Action::ScmpActKillThread => ScmpAction::KillThread,
        Action::ScmpActKillProcess => ScmpAction::KillProcess,
        Action::ScmpActTrap => ScmpAction::Trap,
        Action::ScmpActErrno => ScmpAction::Errno(i32::from(data)),
        Action::ScmpActTrace => ScmpAction::Trace(data),
        Action::ScmpActLog => ScmpAction::Log,
        Action::ScmpActNotify => ScmpAction::Notify,
        Action::ScmpActAllow => ScmpAction::Allow,
    })
}

pub(super) fn arch(arch: Arch) -> ScmpArch {
    match arch {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

/// The libseccomp condition for one `args[]` entry.
///
/// For SCMP_CMP_MASKED_EQ, `value` is the mask and `valueTwo` the value the masked argument
/// must equal (`(arg & value) == valueTwo`), as libseccomp's SCMP_CMP_MASKED_EQ takes them. Every
/// other operator compares with `value` alone, so a non-zero `valueTwo` there is refused rather
/// than silently ignored.
pub(super) fn condition(arg: &LinuxSeccompArg, field: &str) -> Result<ScmpArgCompare> {
    let index = arg.index();
    if index > MAX_ARG_INDEX {
        return Err(SeccompError::invalid(
            format!("{field}.index"),
            format!("{index} is out of range (a syscall has 6 arguments, 0 to {MAX_ARG_INDEX})"),
        ));
    }
    let value_two = arg.value_two().unwrap_or(0);
    let op = match arg.op() {
        Op::ScmpCmpNe => ScmpCompareOp::NotEqual,
        Op::ScmpCmpLt => ScmpCompareOp::Less,
        Op::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        Op::ScmpCmpEq => ScmpCompareOp::Equal,
        Op::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        Op::ScmpCmpGt => ScmpCompareOp::Greater,
        Op::ScmpCmpMaskedEq => {
            // ScmpArgCompare::new takes the mask in the operator and the datum apart.
            let compare = ScmpCompareOp::MaskedEqual(arg.value());
            return Ok(ScmpArgCompare::new(index as u32, compare, value_two));
        }
    };
    if value_two != 0 {
        return Err(SeccompError::invalid(
            format!("{field}.valueTwo"),
            "only SCMP_CMP_MASKED_EQ uses valueTwo",
        ));
    }
    Ok(ScmpArgCompare::new(index as u32, op, arg.value()))
}

/// Sets on `ctx` the attribute that asks libseccomp for a filter flag. libseccomp refuses an
/// attribute its API level (its own version and the kernel's) cannot honour.
pub(super) fn apply_flag(
    ctx: &mut ScmpFilterContext,
    flag: Flag,
) -> std::result::Result<(), libseccomp::error::SeccompError> {
    match flag {
        Flag::SeccompFilterFlagTsync => ctx.set_ctl_tsync(true),
        Flag::SeccompFilterFlagLog => ctx.set_ctl_log(true),
        Flag::SeccompFilterFlagSpecAllow => ctx.set_ctl_ssb(true),
        Flag::SeccompFilterFlagWaitKillableRecv => ctx.set_ctl_waitkill(true),
    }
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxSeccompArgBuilder;

    fn arg(index: usize, value: u64, value_two: Option<u64>, op: Op) -> LinuxSeccompArg {
        let mut builder = LinuxSeccompArgBuilder::default()
            .index(index)
            .value(value)
            .op(op);
        if let Some(v) = value_two {
            builder = builder.value_two(v);
        }
        builder.build().unwrap()
    }

    #[test]
    fn errno_defaults_to_eperm() {
        let got = action(Action::ScmpActErrno, None, "defaultErrnoRet").unwrap();
        assert_eq!(got, ScmpAction::Errno(libc::EPERM));
        let got = action(Action::ScmpActTrace, None, "defaultErrnoRet").unwrap();
        assert_eq!(got, ScmpAction::Trace(libc::EPERM as u16));
    }

    #[test]
    fn errno_ret_is_carried() {
        let got = action(Action::ScmpActErrno, Some(38), "x").unwrap();
        assert_eq!(got, ScmpAction::Errno(38));
        let got = action(Action::ScmpActTrace, Some(7), "x").unwrap();
        assert_eq!(got, ScmpAction::Trace(7));
    }

    #[test]
    fn errno_ret_on_other_action_is_refused() {
        let err = action(Action::ScmpActAllow, Some(1), "syscalls[2].errnoRet").unwrap_err();
        assert_eq!(
            err.to_string(),
            "linux.seccomp.syscalls[2].errnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an \
             errno, not SCMP_ACT_ALLOW"
        );
    }

    #[test]
    fn errno_ret_wider_than_16_bits_is_refused() {
        let err = action(Action::ScmpActErrno, Some(70000), "defaultErrnoRet").unwrap_err();
        assert!(
            err.to_string().contains("70000 does not fit in 16 bits"),
            "{err}"
        );
    }

    #[test]
    fn kill_is_kill_thread() {
        let got = action(Action::ScmpActKill, None, "x").unwrap();
        assert_eq!(got, ScmpAction::KillThread);
    }

    #[test]
    fn masked_eq_takes_value_as_mask() {
        let got = condition(&arg(0, 0x7e02_0000, Some(0), Op::ScmpCmpMaskedEq), "a").unwrap();
        let want = ScmpArgCompare::new(0, ScmpCompareOp::MaskedEqual(0x7e02_0000), 0);
        assert_eq!(got, want);
    }

    #[test]
    fn value_two_outside_masked_eq_is_refused() {
        let err = condition(&arg(1, 3, Some(4), Op::ScmpCmpEq), "syscalls[0].args[0]").unwrap_err();
        assert_eq!(
            err.to_string(),
            "linux.seccomp.syscalls[0].args[0].valueTwo: only SCMP_CMP_MASKED_EQ uses valueTwo"
        );
    }

    #[test]
    fn arg_index_out_of_range_is_refused() {
        let err = condition(&arg(6, 0, None, Op::ScmpCmpEq), "syscalls[1].args[2]").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("linux.seccomp.syscalls[1].args[2].index: 6 is out of range"),
            "{err}"
        );
    }

    #[test]
    fn every_arch_maps() {
        for a in ARCHS {
            // Serde's name and libseccomp's resolve to the same architecture.
            let name = serde_json::to_value(a).unwrap();
            let name = name.as_str().unwrap();
            if a == Arch::ScmpArchNative {
                continue;
            }
            let parsed: ScmpArch = name.parse().unwrap();
            assert_eq!(arch(a), parsed, "{name}");
        }
    }

    #[test]
    fn names_match_serde() {
        for a in ACTIONS {
            assert_eq!(serde_json::to_value(a).unwrap(), action_name(a));
        }
        for f in FLAGS {
            assert_eq!(serde_json::to_value(f).unwrap(), flag_name(f));
        }
        for (op, name) in OPERATORS {
            assert_eq!(serde_json::to_value(op).unwrap(), name);
        }
    }
}
