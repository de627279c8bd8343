//! The executable itself, as build.rs links it.

/// On Linux with glibc the binary is linked at a fixed address (ELF type EXEC): nothing for the
/// dynamic loader to relocate at each start. `CANARY_BUILD_PIE=1` at build time keeps the
/// position-independent default (type DYN).
#[test]
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn canary_is_linked_at_a_fixed_address_unless_asked_otherwise() {
    let elf = std::fs::read(env!("CARGO_BIN_EXE_canary")).unwrap();
    assert_eq!(&elf[..4], b"\x7fELF");
    let kind = u16::from_le_bytes([elf[16], elf[17]]);
    let (want, what) = match option_env!("CANARY_BUILD_PIE") {
        None => (2, "a fixed-address executable (EXEC)"),
        Some(_) => (3, "a position-independent executable (DYN)"),
    };
    assert_eq!(kind, want, "canary should be {what}");
    // It runs.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_canary"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("canary "));
}
