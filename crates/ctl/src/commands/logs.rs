//! `logs`: print a container's CRI log file (from ContainerStatus.log_path), joining
//! partial records; `-f` follows it until the container exits.

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::time::{Instant, SystemTime};

use berth_api::runtime::v1::{ContainerState, ContainerStatusRequest};

use crate::client::Ctx;
use crate::commands::resolve_containers;
use crate::error::Error;
use crate::logs::{FOLLOW_POLL, Joiner, Line, Options, parse_since, select};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id (or unique prefix)
    id: String,
    /// Follow the log until the container exits
    #[arg(short, long)]
    follow: bool,
    /// Only the last N lines (-1: all)
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    tail: i64,
    /// Only lines since a time: a duration back from now (10s, 5m) or RFC3339
    #[arg(long)]
    since: Option<String>,
    /// Prefix each line with its time
    #[arg(short, long)]
    timestamps: bool,
    /// The previous instance's log (not supported by this berthctl yet)
    #[arg(short, long)]
    previous: bool,
}

pub async fn run(ctx: &mut Ctx, args: Args) -> Result<(), Error> {
    if args.previous {
        return Err(Error::Unsupported {
            what: "logs --previous",
            why: "CRI has no call for a previous attempt's log path",
        });
    }
    let id = resolve_containers(ctx, std::slice::from_ref(&args.id))
        .await?
        .remove(0);
    let (path, mut running) = status(ctx, &id).await?;
    if path.is_empty() {
        return Err(Error::Usage(format!("container {id} has no log path")));
    }
    let opts = Options {
        tail: usize::try_from(args.tail).ok(),
        since: match &args.since {
            Some(s) => Some(parse_since(s, SystemTime::now()).map_err(Error::Usage)?),
            None => None,
        },
        timestamps: args.timestamps,
    };
    let read_err = |source| Error::Read {
        path: path.clone(),
        source,
    };
    let mut file = std::fs::File::open(&path).map_err(read_err)?;
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(read_err)?;
    // A last record without its newline is still being written: keep it for -f.
    let complete = text.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let rest = text.split_off(complete);
    for line in select(&text, &opts) {
        emit(&opts, &line)?;
    }
    if !args.follow {
        return Ok(());
    }
    let mut joiner = Joiner::default();
    let mut pending = rest;
    let mut inode = file.metadata().map_err(read_err)?.ino();
    let mut last_check = Instant::now();
    loop {
        let mut chunk = String::new();
        file.read_to_string(&mut chunk).map_err(read_err)?;
        if chunk.is_empty() {
            // Rotated or truncated: start over on the new file.
            if let Ok(meta) = std::fs::metadata(&path)
                && (meta.ino() != inode || meta.len() < file.stream_position().unwrap_or(0))
            {
                file = std::fs::File::open(&path).map_err(read_err)?;
                file.seek(SeekFrom::Start(0)).map_err(read_err)?;
                inode = meta.ino();
                continue;
            }
            if !running {
                return Ok(());
            }
            if last_check.elapsed() >= std::time::Duration::from_secs(1) {
                running = status(ctx, &id).await?.1;
                last_check = Instant::now();
                continue;
            }
            tokio::time::sleep(FOLLOW_POLL).await;
            continue;
        }
        pending.push_str(&chunk);
        while let Some(i) = pending.find('\n') {
            let record: String = pending.drain(..=i).collect();
            if let Some(line) = joiner.push(&record)
                && opts.wants(&line)
            {
                emit(&opts, &line)?;
            }
        }
    }
}

async fn status(ctx: &mut Ctx, id: &str) -> Result<(String, bool), Error> {
    let mut rt = ctx.runtime().await?;
    let res = ctx
        .call(
            "ContainerStatus",
            rt.container_status(ContainerStatusRequest {
                container_id: id.to_string(),
                verbose: false,
            }),
        )
        .await?;
    let s = res.status.unwrap_or_default();
    let running = s.state == ContainerState::ContainerRunning as i32
        || s.state == ContainerState::ContainerCreated as i32;
    Ok((s.log_path, running))
}

/// stdout lines to stdout, stderr lines to stderr, as crictl does.
fn emit(opts: &Options, line: &Line) -> Result<(), Error> {
    let text = opts.format(line);
    if line.stream == "stderr" {
        std::io::stderr().write_all(text.as_bytes())?;
    } else {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.flush()?;
    }
    Ok(())
}
