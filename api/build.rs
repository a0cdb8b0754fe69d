//! Compiles berth's protos with protox (a protobuf compiler written in Rust, so no
//! `protoc` is needed) and generates prost messages plus tonic clients and servers.
//! Everything is written to OUT_DIR; nothing generated lands in src/.

use std::path::PathBuf;

use prost::Message;

const PROTOS: &[&str] = &["proto/runtime/v1/api.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let fds = protox::compile(PROTOS, ["proto"])?;

    // Keep the descriptor set: tests pin field numbers with it, and gRPC reflection
    // can serve it later.
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("runtime_v1_descriptor.bin"),
        fds.encode_to_vec(),
    )?;

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .emit_rerun_if_changed(false)
        // Credentials: lib.rs implements a Debug that redacts them.
        .skip_debug([".runtime.v1.AuthConfig"])
        // berthd persists the pod and container configs it was given as JSON records.
        .message_attribute(
            ".runtime.v1",
            "#[derive(serde::Serialize, serde::Deserialize)] #[serde(default)]",
        )
        .enum_attribute(
            ".runtime.v1",
            "#[derive(serde::Serialize, serde::Deserialize)]",
        )
        .compile_fds(fds)?;
    Ok(())
}
