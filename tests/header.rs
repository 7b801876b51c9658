//! The committed C header must equal a fresh cbindgen generation, and the
//! version macros must match Cargo.toml and `msrp_version()`.
//!
//! To regenerate after changing the C API: `MSRP_UPDATE_HEADER=1 cargo test --test header`.

use std::path::Path;

fn generate() -> String {
    let dir = env!("CARGO_MANIFEST_DIR");
    let config =
        cbindgen::Config::from_file(Path::new(dir).join("cbindgen.toml")).expect("cbindgen.toml");
    let mut out = Vec::new();
    cbindgen::Builder::new()
        .with_crate(dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate the header")
        .write(&mut out);
    let text = String::from_utf8(out).expect("header is UTF-8");
    // The Rust docs' `# Safety` sections say what each pointer argument
    // must be: in C that is the arguments' contract, under a C heading.
    text.replace("\n * # Safety\n", "\n * Pointer arguments:\n")
}

#[test]
fn committed_header_is_fresh() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("include/msrp.h");
    let fresh = generate();
    if std::env::var_os("MSRP_UPDATE_HEADER").is_some() {
        std::fs::write(&path, &fresh).expect("write include/msrp.h");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "include/msrp.h is stale: regenerate it with `MSRP_UPDATE_HEADER=1 cargo test --test header` and commit it"
    );
}

fn define(header: &str, name: &str) -> String {
    header
        .lines()
        .find_map(|l| l.strip_prefix(&format!("#define {name} ")))
        .unwrap_or_else(|| panic!("{name} not defined in msrp.h"))
        .trim()
        .to_owned()
}

#[test]
fn version_macros_and_runtime_version_match_cargo_toml() {
    let header =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("include/msrp.h"))
            .unwrap();
    let v = format!(
        "{}.{}.{}",
        define(&header, "MSRP_VERSION_MAJOR"),
        define(&header, "MSRP_VERSION_MINOR"),
        define(&header, "MSRP_VERSION_PATCH")
    );
    assert_eq!(v, env!("CARGO_PKG_VERSION"));
    // SAFETY: msrp_version returns a static NUL-terminated string.
    let rt = unsafe { std::ffi::CStr::from_ptr(msrp::ffi::misc::msrp_version()) };
    assert_eq!(rt.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
}

#[test]
fn every_name_the_header_defines_is_prefixed() {
    // An unprefixed macro or type (a library-internal constant that slipped
    // into the generated header) would collide with the application's own.
    let header = generate();
    for line in header.lines() {
        let name = if let Some(rest) = line.strip_prefix("#define ") {
            rest.split([' ', '(']).next()
        } else if let Some(rest) = line.strip_prefix("typedef ") {
            match rest.split_once("(*") {
                // A function pointer: `typedef void (*name)(...`.
                Some((_, f)) => f.split(')').next(),
                None => rest
                    .trim_end_matches(['{', ';', ' '])
                    .rsplit([' ', '*'])
                    .next(),
            }
        } else if let Some(rest) = line.strip_prefix("} ") {
            // The end of `typedef struct name { ... } name;`.
            rest.strip_suffix(';')
        } else {
            None
        };
        if let Some(name) = name {
            let lower = name.to_ascii_lowercase();
            assert!(
                lower.starts_with("msrp_"),
                "msrp.h defines `{name}` without the MSRP_/msrp_ prefix: `{line}`"
            );
        }
    }
}
