//! `pull`: pull an image (PullImage), with credentials and an elapsed-time line.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use berth_api::runtime::v1::{AuthConfig, ImageSpec, PodSandboxConfig, PullImageRequest};

use crate::client::Ctx;
use crate::commands::load_config;
use crate::error::Error;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Image reference, e.g. docker.io/library/busybox:latest
    image: String,
    /// Registry credentials, user[:password] (asked for nothing: give both)
    #[arg(long)]
    creds: Option<String>,
    /// Registry credentials as base64 of user:password
    #[arg(long)]
    auth: Option<String>,
    /// Registry user (with --password)
    #[arg(short, long)]
    username: Option<String>,
    /// Registry password (with --username)
    #[arg(short, long)]
    password: Option<String>,
    /// The pod config to pull for (JSON or YAML)
    #[arg(long)]
    pod_config: Option<String>,
    /// Image annotations key=value (repeatable)
    #[arg(short, long)]
    annotation: Vec<String>,
    /// Give up after this long (0: never) [default: 0]
    #[arg(long, value_parser = humantime::parse_duration)]
    pull_timeout: Option<Duration>,
}

/// The AuthConfig the flags ask for, if any.
pub fn auth_config(
    args_creds: Option<&str>,
    auth: Option<&str>,
    user: Option<&str>,
    password: Option<&str>,
) -> Result<Option<AuthConfig>, Error> {
    if let Some(creds) = args_creds {
        let (u, p) = creds.split_once(':').unwrap_or((creds, ""));
        if u.is_empty() {
            return Err(Error::Usage("--creds: want user:password".into()));
        }
        return Ok(Some(AuthConfig {
            username: u.to_string(),
            password: p.to_string(),
            ..Default::default()
        }));
    }
    if let Some(auth) = auth {
        return Ok(Some(AuthConfig {
            auth: auth.to_string(),
            ..Default::default()
        }));
    }
    if let Some(u) = user {
        return Ok(Some(AuthConfig {
            username: u.to_string(),
            password: password.unwrap_or_default().to_string(),
            ..Default::default()
        }));
    }
    Ok(None)
}

pub async fn run(ctx: &mut Ctx, args: Args) -> Result<(), Error> {
    let auth = auth_config(
        args.creds.as_deref(),
        args.auth.as_deref(),
        args.username.as_deref(),
        args.password.as_deref(),
    )?;
    let sandbox_config: Option<PodSandboxConfig> = match &args.pod_config {
        Some(p) => Some(load_config(p)?),
        None => None,
    };
    let annotations = crate::commands::parse_labels(&args.annotation)?;
    let mut img = ctx.image().await?;
    let request = PullImageRequest {
        image: Some(ImageSpec {
            image: args.image.clone(),
            annotations,
            ..Default::default()
        }),
        auth,
        sandbox_config,
    };
    let limit = args.pull_timeout.filter(|d| !d.is_zero());
    let started = Instant::now();
    let pull = ctx.call_within("PullImage", limit, img.pull_image(request));
    tokio::pin!(pull);
    // A progress line on a terminal: CRI's PullImage reports nothing until it is done,
    // so berthctl shows the time it has waited.
    let show = std::io::stderr().is_terminal();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let res = loop {
        tokio::select! {
            res = &mut pull => break res,
            _ = tick.tick(), if show => {
                eprint!("\rPulling {} ... {}s", args.image, started.elapsed().as_secs());
                let _ = std::io::stderr().flush();
            }
        }
    };
    if show {
        eprintln!(
            "\rPulled {} in {:.1}s          ",
            args.image,
            started.elapsed().as_secs_f64()
        );
    }
    println!("Image is up to date for {}", res?.image_ref);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creds_split_user_and_password() {
        let a = auth_config(Some("u:p:x"), None, None, None)
            .unwrap()
            .unwrap();
        assert_eq!((a.username.as_str(), a.password.as_str()), ("u", "p:x"));
        let a = auth_config(None, Some("dTpw"), None, None)
            .unwrap()
            .unwrap();
        assert_eq!(a.auth, "dTpw");
        assert!(auth_config(None, None, None, None).unwrap().is_none());
        assert!(auth_config(Some(":p"), None, None, None).is_err());
    }
}
