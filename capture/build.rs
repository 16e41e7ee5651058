//! Compiles the TC capture program (bpf/tc_capture.c) with clang's BPF
//! target. Without clang the eBPF backend is left out, and `trawl
//! capture` says so (README: install clang and libbpf-dev).
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = "bpf/tc_capture.c";
    println!("cargo:rerun-if-changed={src}");
    // Installing clang (or libbpf's headers) later must bring the backend
    // in: a build made without them is not reused once they exist.
    println!("cargo:rerun-if-changed=/usr/bin/clang");
    println!("cargo:rerun-if-changed=/usr/include/bpf/bpf_helpers.h");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default()).join("tc_capture.o");
    let arch = match std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default().as_str() {
        "x86_64" => "x86_64",
        "aarch64" => "aarch64",
        other => {
            println!("cargo:warning=no eBPF capture for {other}");
            return;
        }
    };
    let status = Command::new("clang")
        .args(["-O2", "-g", "-target", "bpf", &format!("-I/usr/include/{arch}-linux-gnu"), "-c", src, "-o"])
        .arg(&out)
        .status();
    match status {
        Ok(s) if s.success() => println!("cargo:rustc-cfg=trawl_ebpf"),
        Ok(s) => println!("cargo:warning=clang failed ({s}) compiling {src}: the eBPF capture backend is left out"),
        Err(e) => println!(
            "cargo:warning=clang not found ({e}): the eBPF capture backend is left out; apt-get install clang libbpf-dev"
        ),
    }
    println!("cargo:rustc-check-cfg=cfg(trawl_ebpf)");
}
