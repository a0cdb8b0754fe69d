//! v2 io: io.bfq.weight (blkio weight as is) or else io.weight (weight mapped from 10..=1000
//! onto 1..=10000), per-device weights the same way, and io.max "<maj>:<min> rbps=.. wbps=..
//! riops=.. wiops=.." per device. leafWeight has no v2 equivalent: ignored.

use std::collections::BTreeMap;
use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::cgroups::controller::Controller;
use crate::cgroups::v1::blkio::{check_weight, has_any};
use crate::cgroups::{Result, fs};

pub(crate) struct Io;

/// blkio weight 10..=1000 -> io.weight 1..=10000, as runc does.
pub(crate) fn blkio_to_io_weight(w: u16) -> u64 {
    1 + (u64::from(w).clamp(10, 1000) - 10) * 9999 / 990
}

impl Controller for Io {
    const NAME: &'static str = "io";
    const FIELD: &'static str = "linux.resources.blockIO";

    fn needed(r: &LinuxResources) -> bool {
        r.block_io().as_ref().is_some_and(has_any)
    }

    fn apply(dir: &Path, r: &LinuxResources) -> Result<()> {
        let Some(b) = r.block_io() else { return Ok(()) };
        let bfq = fs::exists(dir, "io.bfq.weight");
        let write_weight = |dev: Option<(i64, i64)>, w: u16| -> Result<()> {
            let (file, v) = if bfq {
                ("io.bfq.weight", u64::from(w))
            } else {
                ("io.weight", blkio_to_io_weight(w))
            };
            let line = match dev {
                None if bfq => v.to_string(),
                None => format!("default {v}"),
                Some((ma, mi)) => format!("{ma}:{mi} {v}"),
            };
            fs::write(dir, file, &line)
        };
        if let Some(w) = b.weight().filter(|w| *w != 0) {
            check_weight("linux.resources.blockIO.weight", w)?;
            write_weight(None, w)?;
        }
        for d in b.weight_device().iter().flatten() {
            if let Some(w) = d.weight().filter(|w| *w != 0) {
                check_weight("linux.resources.blockIO.weightDevice.weight", w)?;
                write_weight(Some((d.major(), d.minor())), w)?;
            }
        }
        // one io.max line per device, keys in OCI order
        let mut max: BTreeMap<(i64, i64), Vec<String>> = BTreeMap::new();
        for (key, list) in [
            ("rbps", b.throttle_read_bps_device()),
            ("wbps", b.throttle_write_bps_device()),
            ("riops", b.throttle_read_iops_device()),
            ("wiops", b.throttle_write_iops_device()),
        ] {
            for d in list.iter().flatten() {
                let v = if d.rate() == 0 {
                    "max".to_string()
                } else {
                    d.rate().to_string()
                };
                max.entry((d.major(), d.minor()))
                    .or_default()
                    .push(format!("{key}={v}"));
            }
        }
        for ((ma, mi), kvs) in max {
            fs::write(dir, "io.max", &format!("{ma}:{mi} {}", kvs.join(" ")))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::controller::fixture::{dir, read, resources};

    #[test]
    fn weight_mapping() {
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(1000), 10000);
        assert_eq!(blkio_to_io_weight(500), 4950);
    }

    #[test]
    fn io_weight_and_max() {
        let d = dir(&["io.weight", "io.max"]);
        let r = resources(
            r#"{"blockIO":{"weight":500,"weightDevice":[{"major":8,"minor":0,"weight":1000}],
              "throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1048576}],
              "throttleWriteIOPSDevice":[{"major":8,"minor":0,"rate":10},{"major":254,"minor":1,"rate":0}]}}"#,
        );
        Io::apply(d.path(), &r).unwrap();
        assert_eq!(read(d.path(), "io.weight"), "default 4950\n8:0 10000\n");
        assert_eq!(
            read(d.path(), "io.max"),
            "8:0 rbps=1048576 wiops=10\n254:1 wiops=max\n"
        );
    }

    #[test]
    fn bfq_weight_is_not_converted() {
        let d = dir(&["io.bfq.weight"]);
        Io::apply(d.path(), &resources(r#"{"blockIO":{"weight":500}}"#)).unwrap();
        assert_eq!(read(d.path(), "io.bfq.weight"), "500\n");
    }
}
