//! Links the `canary` binary as a position-dependent executable on Linux with glibc.
//!
//! canary is a short-lived command, run dozens of times in a release, and much of a read
//! command's time is process start. A position-independent executable of this size carries
//! about 24,700 relative relocations: the dynamic loader applies each one at every start, and
//! each page they touch is copied (260 page faults for `canary --version`). Linked at a fixed
//! address, the binary needs none: 143 page faults, and 1.3 ms to start instead of 1.8
//! (README, "Performance").
//!
//! The price is that the executable's own code is not at a random address (the stack, heap and
//! shared libraries still are). Set `CANARY_BUILD_PIE=1` at build time to keep the toolchain's
//! default position-independent executable.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CANARY_BUILD_PIE");
    let cfg = |key: &str, value: &str| std::env::var(key).is_ok_and(|v| v == value);
    // glibc's dynamic loader; a static musl build relocates itself and is left as it is.
    let linux_gnu = cfg("CARGO_CFG_TARGET_OS", "linux") && cfg("CARGO_CFG_TARGET_ENV", "gnu");
    if linux_gnu && std::env::var_os("CANARY_BUILD_PIE").is_none() {
        // The crates stay compiled as position-independent code, which links fine into a
        // fixed-address executable; only the final link changes, after rustc's own `-pie`.
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
