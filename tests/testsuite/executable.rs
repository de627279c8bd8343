//! The executable itself, as the toolchain links it.

/// The binary is a position-independent executable (ELF type DYN, as `readelf -h` shows it), the
/// toolchain's default: its code is loaded at a random address like the stack, heap and
/// libraries, whatever that costs the dynamic loader at each start.
#[test]
#[cfg(target_os = "linux")]
fn canary_is_a_position_independent_executable() {
    let elf = std::fs::read(env!("CARGO_BIN_EXE_canary")).unwrap();
    assert_eq!(&elf[..4], b"\x7fELF");
    // e_type, after the 16 bytes of e_ident, in the byte order e_ident gives.
    let kind = [elf[16], elf[17]];
    let kind = match elf[5] {
        1 => u16::from_le_bytes(kind),
        2 => u16::from_be_bytes(kind),
        other => panic!("no ELF byte order {other}"),
    };
    const ET_EXEC: u16 = 2;
    const ET_DYN: u16 = 3;
    assert_ne!(kind, ET_EXEC, "canary is linked at a fixed address (EXEC)");
    assert_eq!(
        kind, ET_DYN,
        "canary should be a position-independent executable (DYN)"
    );
    // It runs.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_canary"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("canary "));
}

/// On linux-gnu the unwinder is linked in from GCC's `libgcc_eh` (build.rs): the binary does not
/// load `libgcc_s.so.1`, whose start-up probe of the processor costs every command's start
/// under a hypervisor. Panics still unwind: the test harness itself catches every failing
/// assertion of this suite by unwinding through code linked the same way.
#[test]
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn canary_does_not_load_libgcc_s() {
    let elf = std::fs::read(env!("CARGO_BIN_EXE_canary")).unwrap();
    // A library the loader must load is named in the dynamic string table.
    let name = b"libgcc_s.so.1";
    assert!(
        !elf.windows(name.len()).any(|w| w == name),
        "canary names libgcc_s.so.1: build.rs no longer links the unwinder in"
    );
}
