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
    // A fingerprint of the binary (FNV-1a 64 and length), so that berthd can tell the
    // installed copy is this one without reading (and so paging in) the embedded bytes.
    let bytes = std::fs::read(&out).expect("read the built pause");
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in &bytes {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    println!(
        "cargo:rustc-env=BERTH_PAUSE_FINGERPRINT={h:016x}-{}",
        bytes.len()
    );
}
