//! v1 devices: "a" to devices.deny first, then each OCI rule, in order, to devices.allow or
//! devices.deny as "<type> <major>:<minor> <access>" ("*" for a missing number).

use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

use crate::cgroups::controller::Controller;
use crate::cgroups::{CgroupError, Result, fs};

pub(crate) struct Devices;

impl Controller for Devices {
    const NAME: &'static str = "devices";
    const FIELD: &'static str = "linux.resources.devices";

    fn needed(r: &LinuxResources) -> bool {
        r.devices().is_some()
    }

    fn apply(dir: &Path, r: &LinuxResources) -> Result<()> {
        let Some(rules) = r.devices() else {
            return Ok(());
        };
        // validate everything before the first write: a half-applied list could lock the
        // container out of /dev/null
        let lines = rules
            .iter()
            .map(|d| Ok((d.allow(), rule_line(d)?)))
            .collect::<Result<Vec<_>>>()?;
        fs::write(dir, "devices.deny", "a")?;
        for (allow, line) in lines.into_iter().flat_map(|(a, l)| l.map(|l| (a, l))) {
            fs::write(
                dir,
                if allow {
                    "devices.allow"
                } else {
                    "devices.deny"
                },
                &line,
            )?;
        }
        Ok(())
    }
}

/// A validated device rule, shared by the v1 writer and the v2 eBPF program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rule {
    pub allow: bool,
    /// 'a', 'b' or 'c' ('u' is a char device)
    pub kind: char,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// bits: 1 mknod, 2 read, 4 write (the kernel's BPF_DEVCG_ACC_* values)
    pub access: u32,
}

/// Validates one OCI rule. `None` for rules the device cgroup cannot express (FIFOs).
pub(crate) fn rule(d: &LinuxDeviceCgroup) -> Result<Option<Rule>> {
    let kind = match d.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::A => 'a',
        LinuxDeviceType::B => 'b',
        LinuxDeviceType::C | LinuxDeviceType::U => 'c',
        LinuxDeviceType::P => return Ok(None),
    };
    let num = |v: Option<i64>, what: &str| -> Result<Option<u32>> {
        match v {
            None | Some(-1) => Ok(None),
            Some(n) if (0..=i64::from(i32::MAX)).contains(&n) => Ok(Some(n as u32)),
            Some(n) => Err(CgroupError::invalid(
                format!("linux.resources.devices.{what}"),
                format!("{n} is not a device number"),
            )),
        }
    };
    let access_str = d.access().as_deref().unwrap_or("rwm");
    let mut access = 0;
    for c in access_str.chars() {
        access |= match c {
            'm' => 1,
            'r' => 2,
            'w' => 4,
            _ => {
                return Err(CgroupError::invalid(
                    "linux.resources.devices.access",
                    format!("{access_str:?} has a letter other than r, w, m"),
                ));
            }
        };
    }
    if access == 0 {
        access = 7;
    }
    Ok(Some(Rule {
        allow: d.allow(),
        kind,
        major: num(d.major(), "major")?,
        minor: num(d.minor(), "minor")?,
        access,
    }))
}

fn rule_line(d: &LinuxDeviceCgroup) -> Result<Option<String>> {
    let Some(r) = rule(d)? else { return Ok(None) };
    let n = |v: Option<u32>| v.map_or_else(|| "*".to_string(), |v| v.to_string());
    let mut access = String::new();
    for (bit, c) in [(2, 'r'), (4, 'w'), (1, 'm')] {
        if r.access & bit != 0 {
            access.push(c);
        }
    }
    Ok(Some(format!(
        "{} {}:{} {access}",
        r.kind,
        n(r.major),
        n(r.minor)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::controller::fixture::{dir, read, resources};

    #[test]
    fn deny_all_first_then_rules_in_order() {
        let d = dir(&["devices.allow", "devices.deny"]);
        let r = resources(
            r#"{"devices":[
                {"allow":false,"access":"rwm"},
                {"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"},
                {"allow":true,"type":"c","major":136,"access":"rw"},
                {"allow":false,"type":"b","major":8,"minor":0,"access":"w"},
                {"allow":true,"type":"p","access":"rwm"},
                {"allow":true,"type":"u","major":5,"minor":-1,"access":"m"}]}"#,
        );
        Devices::apply(d.path(), &r).unwrap();
        assert_eq!(read(d.path(), "devices.deny"), "a\na *:* rwm\nb 8:0 w\n");
        assert_eq!(
            read(d.path(), "devices.allow"),
            "c 1:3 rwm\nc 136:* rw\nc 5:* m\n"
        );
    }

    #[test]
    fn bad_access_writes_nothing() {
        let d = dir(&["devices.allow", "devices.deny"]);
        let r = resources(
            r#"{"devices":[{"allow":true,"type":"c","major":1,"minor":3,"access":"rx"}]}"#,
        );
        let e = Devices::apply(d.path(), &r).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("linux.resources.devices.access: "),
            "{e}"
        );
        assert_eq!(read(d.path(), "devices.deny"), "");
    }

    #[test]
    fn absent_list_touches_nothing() {
        assert!(!Devices::needed(&resources(r#"{}"#)));
        assert!(Devices::needed(&resources(r#"{"devices":[]}"#)));
    }
}
