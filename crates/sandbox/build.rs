//! Builds the built-in infra process (pause/pause.rs) as a static executable in OUT_DIR;
//! `berth_sandbox::pause` embeds it. rustc alone, no crates: the program is 80 lines.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = "pause/pause.rs";
    println!("cargo:rerun-if-changed={src}");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("berth-pause");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let status = Command::new(rustc)
        .args([
            "--edition=2024",
            "--crate-type=bin",
            "--crate-name=berth_pause",
        ])
        .args([
            "-C",
            "opt-level=s",
            "-C",
            "panic=abort",
            "-C",
            "strip=symbols",
        ])
        .args([
            "-C",
            "target-feature=+crt-static",
            "-C",
            "relocation-model=static",
        ])
        .arg("-o")
        .arg(&out)
        .arg(src)
        .env(
            "CARGO_PKG_VERSION",
            std::env::var("CARGO_PKG_VERSION").unwrap_or_default(),
        )
        .status()
        .expect("run rustc for pause/pause.rs");
    assert!(
        status.success(),
        "compiling pause/pause.rs failed: {status}"
    );
}
