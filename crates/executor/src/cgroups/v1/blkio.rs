//! v1 blkio: blkio.weight (or blkio.bfq.weight), blkio.leaf_weight, per-device weights, and
//! the four throttles, one "major:minor value" write per device.

use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxResources, LinuxThrottleDevice};

use crate::cgroups::controller::Controller;
use crate::cgroups::{CgroupError, Result, fs};

pub(crate) struct Blkio;

impl Controller for Blkio {
    const NAME: &'static str = "blkio";
    const FIELD: &'static str = "linux.resources.blockIO";

    fn needed(r: &LinuxResources) -> bool {
        r.block_io().as_ref().is_some_and(has_any)
    }

    fn apply(dir: &Path, r: &LinuxResources) -> Result<()> {
        let Some(b) = r.block_io() else { return Ok(()) };
        let weight_file = if fs::exists(dir, "blkio.weight") {
            "blkio.weight"
        } else {
            "blkio.bfq.weight"
        };
        if let Some(w) = b.weight().filter(|w| *w != 0) {
            check_weight("linux.resources.blockIO.weight", w)?;
            fs::write(dir, weight_file, &w.to_string())?;
        }
        if let Some(w) = b.leaf_weight().filter(|w| *w != 0) {
            check_weight("linux.resources.blockIO.leafWeight", w)?;
            fs::write(dir, "blkio.leaf_weight", &w.to_string())?;
        }
        for d in b.weight_device().iter().flatten() {
            if let Some(w) = d.weight().filter(|w| *w != 0) {
                check_weight("linux.resources.blockIO.weightDevice.weight", w)?;
                let file = if weight_file == "blkio.weight" {
                    "blkio.weight_device"
                } else {
                    "blkio.bfq.weight_device"
                };
                fs::write(dir, file, &format!("{}:{} {w}", d.major(), d.minor()))?;
            }
            if let Some(w) = d.leaf_weight().filter(|w| *w != 0) {
                check_weight("linux.resources.blockIO.weightDevice.leafWeight", w)?;
                fs::write(
                    dir,
                    "blkio.leaf_weight_device",
                    &format!("{}:{} {w}", d.major(), d.minor()),
                )?;
            }
        }
        throttle(
            dir,
            "blkio.throttle.read_bps_device",
            b.throttle_read_bps_device(),
        )?;
        throttle(
            dir,
            "blkio.throttle.write_bps_device",
            b.throttle_write_bps_device(),
        )?;
        throttle(
            dir,
            "blkio.throttle.read_iops_device",
            b.throttle_read_iops_device(),
        )?;
        throttle(
            dir,
            "blkio.throttle.write_iops_device",
            b.throttle_write_iops_device(),
        )?;
        Ok(())
    }
}

pub(crate) fn has_any(b: &LinuxBlockIo) -> bool {
    b.weight().is_some_and(|w| w != 0)
        || b.leaf_weight().is_some_and(|w| w != 0)
        || b.weight_device().as_ref().is_some_and(|v| !v.is_empty())
        || [
            b.throttle_read_bps_device(),
            b.throttle_write_bps_device(),
            b.throttle_read_iops_device(),
            b.throttle_write_iops_device(),
        ]
        .iter()
        .any(|t| t.as_ref().is_some_and(|v| !v.is_empty()))
}

/// blkio weights are 10..=1000.
pub(crate) fn check_weight(field: &str, w: u16) -> Result<()> {
    if !(10..=1000).contains(&w) {
        return Err(CgroupError::invalid(
            field,
            format!("{w} is outside 10..=1000"),
        ));
    }
    Ok(())
}

fn throttle(dir: &Path, file: &str, devs: &Option<Vec<LinuxThrottleDevice>>) -> Result<()> {
    for d in devs.iter().flatten() {
        fs::write(
            dir,
            file,
            &format!("{}:{} {}", d.major(), d.minor(), d.rate()),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::controller::fixture::{dir, read, resources};

    const FILES: &[&str] = &[
        "blkio.weight",
        "blkio.leaf_weight",
        "blkio.weight_device",
        "blkio.leaf_weight_device",
        "blkio.throttle.read_bps_device",
        "blkio.throttle.write_bps_device",
        "blkio.throttle.read_iops_device",
        "blkio.throttle.write_iops_device",
    ];

    #[test]
    fn writes_weights_and_throttles_per_device() {
        let d = dir(FILES);
        let r = resources(
            r#"{"blockIO":{"weight":500,"leafWeight":300,
              "weightDevice":[{"major":8,"minor":0,"weight":600,"leafWeight":200}],
              "throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1048576},{"major":8,"minor":16,"rate":2048}],
              "throttleWriteBpsDevice":[{"major":8,"minor":0,"rate":4096}],
              "throttleReadIOPSDevice":[{"major":8,"minor":0,"rate":100}],
              "throttleWriteIOPSDevice":[{"major":8,"minor":0,"rate":50}]}}"#,
        );
        assert!(Blkio::needed(&r));
        Blkio::apply(d.path(), &r).unwrap();
        assert_eq!(read(d.path(), "blkio.weight"), "500\n");
        assert_eq!(read(d.path(), "blkio.leaf_weight"), "300\n");
        assert_eq!(read(d.path(), "blkio.weight_device"), "8:0 600\n");
        assert_eq!(read(d.path(), "blkio.leaf_weight_device"), "8:0 200\n");
        assert_eq!(
            read(d.path(), "blkio.throttle.read_bps_device"),
            "8:0 1048576\n8:16 2048\n"
        );
        assert_eq!(
            read(d.path(), "blkio.throttle.write_bps_device"),
            "8:0 4096\n"
        );
        assert_eq!(
            read(d.path(), "blkio.throttle.read_iops_device"),
            "8:0 100\n"
        );
        assert_eq!(
            read(d.path(), "blkio.throttle.write_iops_device"),
            "8:0 50\n"
        );
    }

    #[test]
    fn bfq_weight_when_no_cfq_file() {
        let d = dir(&["blkio.bfq.weight"]);
        Blkio::apply(d.path(), &resources(r#"{"blockIO":{"weight":100}}"#)).unwrap();
        assert_eq!(read(d.path(), "blkio.bfq.weight"), "100\n");
    }

    #[test]
    fn weight_out_of_range_names_the_field() {
        let d = dir(FILES);
        let e = Blkio::apply(d.path(), &resources(r#"{"blockIO":{"weight":5}}"#)).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("linux.resources.blockIO.weight: "),
            "{e}"
        );
    }
}
