//! The outside tools the tests run (real peers such as Debian's `fastboot`, fixture makers such
//! as `mke2fs`), each with where it comes from, so a missing one fails its test with what to
//! install rather than an `ENOENT` panic.
//!
//! One rule everywhere, on CI and on a developer's machine: a test whose tool is missing
//! fails, naming the tool and its package. Not a skip: libtest hides what a passing test prints,
//! so a skipped interop check would read as a pass nobody ran. `.ci/run` installs every tool
//! listed here.
//!
//! For tests only (this crate's, the station's, the scenarios'); built with `sim` or in tests.

use std::path::Path;
use std::process::Command;

/// Each tool and where it comes from.
const TOOLS: &[(&str, &str)] = &[
    ("fastboot", "Debian package fastboot"),
    ("img2simg", "Debian package android-sdk-libsparse-utils"),
    ("simg2img", "Debian package android-sdk-libsparse-utils"),
    ("simg2simg", "Debian package android-sdk-libsparse-utils"),
    ("mke2fs", "Debian package e2fsprogs"),
    ("debugfs", "Debian package e2fsprogs"),
    ("e2fsck", "Debian package e2fsprogs"),
    ("tune2fs", "Debian package e2fsprogs"),
    ("sgdisk", "Debian package gdisk"),
    ("mkfs.erofs", "Debian package erofs-utils"),
    ("fsck.erofs", "Debian package erofs-utils"),
    ("dump.erofs", "Debian package erofs-utils"),
    ("python3", "Debian package python3"),
    ("minisign", "Debian package minisign"),
];

/// `Command::new(tool)`, after checking that `tool` is on `PATH`; a missing tool fails the test
/// with [`missing`]. `tool` must be listed in this module (a new one is added here, with its
/// package, and to `.ci/run`).
pub fn command(tool: &str) -> Command {
    require(tool);
    Command::new(tool)
}

/// Fails the test unless `tool` is on `PATH`.
pub fn require(tool: &str) {
    let Some(&(_, source)) = TOOLS.iter().find(|(name, _)| *name == tool) else {
        panic!("`{tool}` is not listed in protocols/src/external_tool.rs: add it with its package");
    };
    if !on_path(tool) {
        missing(&format!("`{tool}`"), source);
    }
}

/// Fails the test for a need that is not a command on `PATH` (a Python module, say):
/// "this test needs `mkfs.erofs` (Debian package erofs-utils; `.ci/run` installs it)".
pub fn missing(what: &str, source: &str) -> ! {
    panic!("this test needs {what} ({source}; `.ci/run` installs it)")
}

fn on_path(tool: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let executable = |path: &Path| {
        path.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| executable(&dir.join(tool))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_names_itself_and_its_package() {
        let panic =
            std::panic::catch_unwind(|| missing("`mkfs.erofs`", "Debian package erofs-utils"))
                .unwrap_err();
        assert_eq!(
            panic.downcast_ref::<String>().map(String::as_str),
            Some(
                "this test needs `mkfs.erofs` (Debian package erofs-utils; `.ci/run` installs it)"
            )
        );
    }

    #[test]
    fn finds_tools_on_path_and_only_those() {
        assert!(on_path("sh"));
        assert!(!on_path("flashgate-no-such-tool"));
        let unlisted = std::panic::catch_unwind(|| require("flashgate-no-such-tool")).unwrap_err();
        assert!(unlisted
            .downcast_ref::<String>()
            .is_some_and(|m| m.contains("is not listed")));
    }
}
