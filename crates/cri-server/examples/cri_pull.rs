//! A tiny CRI image client for hack/bench/pull: pulls an image N times over a CRI socket
//! (berthd's or containerd's), removing it after each pull, and prints each pull's time
//! and the median, in milliseconds.
//!
//!   cri_pull SOCKET IMAGE N

use std::time::Instant;

use berth_api::runtime::v1::image_service_client::ImageServiceClient;
use berth_api::runtime::v1::{ImageSpec, PullImageRequest, RemoveImageRequest};
use hyper_util::rt::TokioIo;
use tonic::transport::{Endpoint, Uri};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, socket, image, n] = &args[..] else {
        anyhow::bail!("usage: cri_pull SOCKET IMAGE N");
    };
    let n: usize = n.parse()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let socket = socket.clone();
        // tonic wants a URI; every connection goes to the socket.
        let channel = Endpoint::try_from("http://[::1]:50051")?
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let socket = socket.clone();
                async move {
                    let stream = tokio::net::UnixStream::connect(socket).await?;
                    Ok::<_, std::io::Error>(TokioIo::new(stream))
                }
            }))
            .await?;
        let mut client = ImageServiceClient::new(channel)
            .max_decoding_message_size(16 << 20)
            .max_encoding_message_size(16 << 20);
        let spec = |name: &str| {
            Some(ImageSpec {
                image: name.to_string(),
                ..Default::default()
            })
        };
        // Start cold: whatever an earlier run left goes first.
        client
            .remove_image(RemoveImageRequest { image: spec(image) })
            .await?;
        let mut times = Vec::with_capacity(n);
        for i in 0..n {
            let started = Instant::now();
            let id = client
                .pull_image(PullImageRequest {
                    image: spec(image),
                    auth: None,
                    sandbox_config: None,
                })
                .await?
                .into_inner()
                .image_ref;
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            println!("pull {i}: {ms:.1} ms ({id})");
            times.push(ms);
            client
                .remove_image(RemoveImageRequest { image: spec(&id) })
                .await?;
        }
        times.sort_by(f64::total_cmp);
        let median = if n == 0 {
            0.0
        } else if n % 2 == 1 {
            times[n / 2]
        } else {
            (times[n / 2 - 1] + times[n / 2]) / 2.0
        };
        println!("median_ms {median:.1}");
        anyhow::Ok(())
    })
}
