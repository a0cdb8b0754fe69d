//! `update`: change running containers' resources (UpdateContainerResources).

use berth_api::runtime::v1::{LinuxContainerResources, UpdateContainerResourcesRequest};

use crate::client::Ctx;
use crate::commands::resolve_containers;
use crate::error::Error;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container ids (or unique prefixes)
    #[arg(required = true)]
    ids: Vec<String>,
    /// CPU CFS period (microseconds)
    #[arg(long, default_value_t = 0)]
    cpu_period: i64,
    /// CPU CFS quota (microseconds)
    #[arg(long, default_value_t = 0)]
    cpu_quota: i64,
    /// CPU shares (relative weight)
    #[arg(long, default_value_t = 0)]
    cpu_share: i64,
    /// CPUs allowed (0-3, 0,1)
    #[arg(long, default_value = "")]
    cpuset_cpus: String,
    /// Memory nodes allowed (0-3, 0,1)
    #[arg(long, default_value = "")]
    cpuset_mems: String,
    /// Memory limit: bytes, or with a k, m or g suffix
    #[arg(long, value_parser = parse_bytes)]
    memory: Option<i64>,
}

/// "512m" style sizes (binary units, as the kernel's memory.max reads them).
pub fn parse_bytes(s: &str) -> Result<i64, String> {
    let lower = s.trim().to_ascii_lowercase();
    let lower = lower.trim_end_matches('b');
    let (num, mult) = match lower.char_indices().last() {
        Some((i, 'k')) => (&lower[..i], 1i64 << 10),
        Some((i, 'm')) => (&lower[..i], 1 << 20),
        Some((i, 'g')) => (&lower[..i], 1 << 30),
        _ => (lower, 1),
    };
    num.parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("{s:?}: want bytes, or a number with k, m or g"))
}

pub async fn run(ctx: &mut Ctx, args: Args) -> Result<(), Error> {
    let linux = LinuxContainerResources {
        cpu_period: args.cpu_period,
        cpu_quota: args.cpu_quota,
        cpu_shares: args.cpu_share,
        cpuset_cpus: args.cpuset_cpus.clone(),
        cpuset_mems: args.cpuset_mems.clone(),
        memory_limit_in_bytes: args.memory.unwrap_or(0),
        ..Default::default()
    };
    for id in resolve_containers(ctx, &args.ids).await? {
        let mut rt = ctx.runtime().await?;
        ctx.call(
            "UpdateContainerResources",
            rt.update_container_resources(UpdateContainerResourcesRequest {
                container_id: id.clone(),
                linux: Some(linux.clone()),
                ..Default::default()
            }),
        )
        .await?;
        println!("{id}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_take_suffixes() {
        assert_eq!(parse_bytes("1048576"), Ok(1 << 20));
        assert_eq!(parse_bytes("512m"), Ok(512 << 20));
        assert_eq!(parse_bytes("1G"), Ok(1 << 30));
        assert_eq!(parse_bytes("64kb"), Ok(64 << 10));
        assert!(parse_bytes("lots").is_err());
    }
}
