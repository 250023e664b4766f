//! What a line PC installs beside the binary: completions and the man page generated from the
//! parser, the udev rules, the systemd unit; and the listing commands' exit codes without USB.

use std::path::Path;
use std::process::{Command, Output};

use flashgate_scenarios::flashgate_bin;

fn flashgate(args: &[&str]) -> Output {
    Command::new(flashgate_bin())
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("running flashgate")
}

/// Every subcommand a user can type, from `flashgate --help`.
fn subcommands() -> Vec<String> {
    let help = flashgate(&["--help"]);
    let text = String::from_utf8_lossy(&help.stdout).into_owned();
    let commands: Vec<String> = text
        .split("Commands:")
        .nth(1)
        .expect("--help lists commands")
        .lines()
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .filter(|name| name != "help")
        .collect();
    assert!(commands.len() >= 10, "{text}");
    commands
}

#[test]
fn completions_name_every_subcommand_in_each_shell() {
    let commands = subcommands();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = flashgate(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {out:?}");
        let script = String::from_utf8_lossy(&out.stdout);
        for command in &commands {
            assert!(
                script.contains(command.as_str()),
                "{shell} completion lacks `{command}`"
            );
        }
    }
    // Options of a subcommand are completed too.
    let bash = flashgate(&["completions", "bash"]);
    assert!(String::from_utf8_lossy(&bash.stdout).contains("--work-order"));
    let unknown = flashgate(&["completions", "tcsh"]);
    assert!(!unknown.status.success());
}

#[test]
fn man_page_is_roff_with_a_section_per_subcommand() {
    let out = flashgate(&["man"]);
    assert!(out.status.success(), "{out:?}");
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.contains(".TH flashgate 1"), "{page}");
    assert!(page.contains(".SH SYNOPSIS"));
    for command in subcommands() {
        assert!(
            page.contains(&format!(".SH \"FLASHGATE {}\"", command.to_uppercase())),
            "no section for `{command}`"
        );
    }
    // Global and per-command options, escaped for roff.
    assert!(page.contains(r"\-\-quiet"));
    assert!(page.contains(r"\-\-work\-order"));
}

#[test]
fn quiet_is_accepted_before_and_after_any_subcommand() {
    for args in [
        &["-q", "completions", "bash"][..],
        &["completions", "-q", "bash"],
    ] {
        let out = flashgate(args);
        assert!(out.status.success(), "{args:?}: {out:?}");
    }
}

#[test]
fn listing_commands_fail_with_a_sentence_when_usb_cannot_be_reached() {
    if Path::new("/dev/bus/usb").exists() {
        // A machine with USB: listing succeeds whatever is plugged in.
        for args in [&["devices"][..], &["ports"]] {
            assert!(flashgate(args).status.success(), "{args:?}");
        }
        return;
    }
    for args in [&["devices"][..], &["ports"], &["ports", "--watch"]] {
        let out = flashgate(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("error: cannot list USB devices: libusb could not start"),
            "{args:?}: {stderr}"
        );
        assert!(!String::from_utf8_lossy(&out.stdout).contains("no devices"));
    }
}

fn repo_file(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn udev_rules_cover_every_qualcomm_edl_id_for_libusb_and_the_tty() {
    let rules = repo_file("udev/60-flashgate.rules");
    let rule_lines: Vec<String> = rules
        .replace("\\\n", " ")
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    for subsystem in ["SUBSYSTEM==\"usb\"", "SUBSYSTEM==\"tty\""] {
        let edl: Vec<&String> = rule_lines
            .iter()
            .filter(|l| l.contains(subsystem) && l.contains("\"05c6\""))
            .collect();
        assert_eq!(edl.len(), 1, "{subsystem}: {edl:?}");
        for id in ["9008", "900e", "901d"] {
            assert!(edl[0].contains(id), "{subsystem} lacks 05c6:{id}");
        }
        assert!(edl[0].contains("GROUP=\"flashgate\"") && edl[0].contains("MODE=\"0660\""));
        assert!(edl[0].contains("ENV{ID_MM_DEVICE_IGNORE}=\"1\""));
    }
}

/// `key=value` lines of the unit's `[Service]` section.
fn service_keys(unit: &str) -> Vec<(String, String)> {
    unit.lines()
        .skip_while(|l| l.trim() != "[Service]")
        .skip(1)
        .take_while(|l| !l.starts_with('['))
        .filter(|l| !l.trim_start().starts_with('#') && l.contains('='))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect()
}

#[test]
fn the_systemd_unit_is_hardened_and_its_paths_are_writable() {
    let unit = repo_file("udev/flashgate.service");
    let keys = service_keys(&unit);
    let has = |key: &str, value: &str| keys.iter().any(|(k, v)| k == key && v == value);
    for (key, value) in [
        ("User", "flashgate"),
        ("Group", "flashgate"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("NoNewPrivileges", "yes"),
        ("PrivateTmp", "yes"),
        ("CapabilityBoundingSet", ""),
        ("DevicePolicy", "closed"),
        ("DeviceAllow", "char-usb_device rw"),
        ("DeviceAllow", "char-ttyUSB rw"),
        // The journal, the logs and the dashboard socket each have a writable home.
        ("StateDirectory", "flashgate"),
        ("LogsDirectory", "flashgate"),
        ("RuntimeDirectory", "flashgate"),
        ("RuntimeDirectoryMode", "0750"),
        ("WorkingDirectory", "/var/lib/flashgate"),
    ] {
        assert!(has(key, value), "the unit lacks {key}={value}");
    }
    let exec = keys
        .iter()
        .find(|(k, _)| k == "ExecStart")
        .map(|(_, v)| v.clone())
        .unwrap();
    // The path the .deb installs, and a command line the binary accepts.
    assert!(exec.starts_with("/usr/bin/flashgate run --station /etc/flashgate/station.yaml"));
    let args: Vec<&str> = exec.split_whitespace().skip(1).collect();
    let mut check = args.clone();
    check.push("--help");
    assert!(flashgate(&check).status.success(), "{exec}");
    // `systemd-analyze security` where systemd is installed: the exposure stays below 4.0.
    let analyze = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("udev/flashgate.service"))
        .output();
    if let Ok(out) = analyze {
        let text = String::from_utf8_lossy(&out.stdout);
        let exposure: f64 = text
            .lines()
            .find_map(|l| {
                l.split("Overall exposure level for flashgate.service: ")
                    .nth(1)
            })
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no exposure figure in:\n{text}"))
            .parse()
            .unwrap();
        assert!(exposure < 4.0, "exposure {exposure}:\n{text}");
    }
}

#[test]
fn the_package_lists_only_files_that_exist_and_the_build_makes_the_rest() {
    let manifest = repo_file("station/Cargo.toml");
    let deb = manifest
        .split("[package.metadata.deb]")
        .nth(1)
        .expect("station/Cargo.toml has [package.metadata.deb]");
    let script = repo_file(".ci/build-deb");
    let mut assets = 0;
    for line in deb.lines().filter(|l| l.trim_start().starts_with("[\"")) {
        let source = line.trim_start().trim_start_matches("[\"");
        let source = source.split('"').next().unwrap();
        assets += 1;
        if let Some(generated) = source.strip_prefix("target/release/deb-extra/") {
            assert!(
                script.contains(generated.rsplit('/').next().unwrap()),
                "{generated}"
            );
        } else if source != "target/release/flashgate" {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("station")
                .join(source);
            assert!(path.exists(), "{source}");
        }
    }
    assert_eq!(assets, 8);
    for script in ["postinst", "postrm"] {
        assert!(Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("station/debian")
            .join(script)
            .exists());
    }
}
