//! The declared `rust-version` is the true minimum: no locked dependency built for this platform
//! asks for a newer compiler, and it is exactly the highest of what the dependencies and our own
//! code need, so it neither lies nor overstates.
//!
//! Only one toolchain can be installed on these machines, so the minimum is not proven by
//! building with it. Two checks stand in: this test for the dependencies (`cargo metadata` lists
//! each package's `rust_version`), and clippy's `incompatible_msrv` lint for our own code (clippy
//! takes the MSRV from `rust-version`; `.ci/run` runs it with `-D warnings`), which refuses any
//! standard-library item stabilised after it.

use std::process::Command;

/// What our own code needs: `u64::is_multiple_of` and `std::io::pipe` (1.87). Clippy's
/// `incompatible_msrv` fails the build when code needs more than `rust-version`; when that makes
/// you raise `rust-version` past the dependencies' need, raise this too.
const OWN_CODE_NEEDS: &str = "1.87";

fn version(text: &str) -> (u32, u32, u32) {
    let mut parts = text.split('.').map(|p| {
        p.parse::<u32>()
            .unwrap_or_else(|_| panic!("rust-version {text:?} is not N.N[.N]"))
    });
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    let patch = parts.next().unwrap_or(0);
    (major, minor, patch)
}

fn host_triple() -> String {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("running rustc -vV");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV names its host")
        .to_string()
}

#[test]
fn rust_version_is_the_highest_any_locked_package_or_our_code_needs() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version=1", "--locked", "--offline"])
        .args(["--filter-platform", &host_triple()])
        .arg("--manifest-path")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .output()
        .expect("running cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let members: Vec<&str> = metadata["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    // `--filter-platform` trims the resolve graph, not the package list: count only the
    // packages that are built here.
    let built: Vec<&str> = metadata["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();

    let mut ours = Vec::new();
    let mut needed = (version(OWN_CODE_NEEDS), "our own code".to_string());
    for package in metadata["packages"].as_array().unwrap() {
        let id = package["id"].as_str().unwrap();
        let name = format!(
            "{} {}",
            package["name"].as_str().unwrap(),
            package["version"].as_str().unwrap()
        );
        let declared = package["rust_version"].as_str();
        if members.contains(&id) {
            let declared =
                declared.unwrap_or_else(|| panic!("{name} has no `rust-version.workspace = true`"));
            ours.push((version(declared), name));
        } else if let Some(declared) = declared.filter(|_| built.contains(&id)) {
            if version(declared) > needed.0 {
                needed = (version(declared), name);
            }
        }
    }
    let (declared, _) = ours[0].clone();
    assert!(
        ours.iter().all(|(v, _)| *v == declared),
        "workspace members disagree on rust-version: {ours:?}"
    );
    let show = |(a, b, c): (u32, u32, u32)| format!("{a}.{b}.{c}");
    assert!(
        declared >= needed.0,
        "{} declares rust-version {}, above the workspace's {}: raise rust-version in Cargo.toml",
        needed.1,
        show(needed.0),
        show(declared)
    );
    assert_eq!(
        declared,
        needed.0,
        "the workspace declares rust-version {} but the highest need is {} ({}): lower it (or, \
         if our code needs more, raise OWN_CODE_NEEDS in tests/msrv.rs)",
        show(declared),
        show(needed.0),
        needed.1
    );
}
