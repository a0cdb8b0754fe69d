//! What `berth-oci features` reports about seccomp.

use libseccomp::{ScmpAction, ScmpFilterContext};
use oci_spec::runtime::Seccomp;

use super::convert;

/// The seccomp part of `berth-oci features`: every action and operator of the runtime spec, the
/// architectures this libseccomp knows, every flag of the spec as known and those this
/// libseccomp and kernel can honour as supported.
///
/// Architectures and flags are found by trying them on throwaway filter contexts, which load
/// nothing. If libseccomp cannot even create a context, seccomp is reported as disabled.
pub fn features() -> Seccomp {
    let mut seccomp = Seccomp::default();
    let Ok(mut probe) = ScmpFilterContext::new(ScmpAction::Allow) else {
        seccomp.set_enabled(Some(false));
        return seccomp;
    };
    seccomp.set_enabled(Some(true));
    seccomp.set_actions(Some(convert::ACTIONS.to_vec()));
    seccomp.set_operators(Some(
        convert::OPERATORS
            .iter()
            .map(|(_, name)| (*name).to_owned())
            .collect(),
    ));
    seccomp.set_archs(Some(
        convert::ARCHS
            .into_iter()
            .filter(|&arch| arch_known(arch))
            .collect(),
    ));
    seccomp.set_known_flags(Some(
        convert::FLAGS
            .iter()
            .map(|&flag| convert::flag_name(flag).to_owned())
            .collect(),
    ));
    seccomp.set_supported_flags(Some(
        convert::FLAGS
            .into_iter()
            .filter(|&flag| convert::apply_flag(&mut probe, flag).is_ok())
            .map(|flag| convert::flag_name(flag).to_owned())
            .collect(),
    ));
    seccomp
}

/// Whether this libseccomp knows `arch`. Each one is tried alone on an empty context: one filter
/// cannot mix little- and big-endian architectures, so trying them on the native context would
/// hide every architecture of the other endianness.
fn arch_known(arch: oci_spec::runtime::Arch) -> bool {
    if arch == oci_spec::runtime::Arch::ScmpArchNative {
        return true;
    }
    let Ok(mut ctx) = ScmpFilterContext::new(ScmpAction::Allow) else {
        return false;
    };
    ctx.remove_arch(libseccomp::ScmpArch::Native).is_ok()
        && ctx.add_arch(convert::arch(arch)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{Arch, LinuxSeccompAction};

    #[test]
    fn reports_everything_the_spec_names() {
        let f = features();
        assert_eq!(f.enabled(), &Some(true));
        assert_eq!(f.actions().as_ref().unwrap().len(), 9);
        assert!(
            f.actions()
                .as_ref()
                .unwrap()
                .contains(&LinuxSeccompAction::ScmpActNotify)
        );
        assert_eq!(f.operators().as_ref().unwrap().len(), 7);
        assert_eq!(f.known_flags().as_ref().unwrap().len(), 4);
        let archs = f.archs().as_ref().unwrap();
        // Big-endian ones too (s390x, ppc64), which cannot share a filter with x86_64.
        for arch in [
            Arch::ScmpArchX86_64,
            Arch::ScmpArchX86,
            Arch::ScmpArchX32,
            Arch::ScmpArchS390x,
            Arch::ScmpArchPpc64,
        ] {
            assert!(archs.contains(&arch), "{arch:?} missing from {archs:?}");
        }
        let supported = f.supported_flags().as_ref().unwrap();
        assert!(
            supported
                .iter()
                .all(|s| f.known_flags().as_ref().unwrap().contains(s))
        );
        assert!(
            supported.contains(&"SECCOMP_FILTER_FLAG_LOG".to_owned()),
            "{supported:?}"
        );
    }

    #[test]
    fn serializes_with_spec_names() {
        let json = serde_json::to_value(features()).unwrap();
        assert_eq!(json["actions"][0], "SCMP_ACT_KILL");
        assert_eq!(json["operators"][6], "SCMP_CMP_MASKED_EQ");
        assert_eq!(json["knownFlags"][0], "SECCOMP_FILTER_FLAG_TSYNC");
    }
}
