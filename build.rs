//! Link the unwinder into canary rather than load it from `libgcc_s.so.1`.
//!
//! Rust's standard library on linux-gnu takes its unwinder (for panics and backtraces) from
//! the shared `libgcc_s`, whose load-time constructor probes the processor with a series of
//! `cpuid` instructions for `__builtin_cpu_supports`, which nothing in canary calls. Under a
//! hypervisor each `cpuid` traps to it: on the 2-core VMs canary is measured on, loading
//! `libgcc_s` costs about 0.2 ms of every command, a tenth of a step's dry run. The same
//! unwinder from GCC's static `libgcc_eh` (what `gcc -static-libgcc` links) leaves that
//! constructor out; panics unwind and backtraces print as before. A static build
//! (`crt-static`) links it this way already, and other targets do not use libgcc.
fn main() {
    let var = |name| std::env::var(name).unwrap_or_default();
    let linux_gnu = var("CARGO_CFG_TARGET_OS") == "linux" && var("CARGO_CFG_TARGET_ENV") == "gnu";
    let crt_static = var("CARGO_CFG_TARGET_FEATURE")
        .split(',')
        .any(|feature| feature == "crt-static");
    if linux_gnu && !crt_static {
        println!("cargo:rustc-link-lib=static:-bundle=gcc_eh");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
