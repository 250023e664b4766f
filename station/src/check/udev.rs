//! On a line, the station's user reaches phones through the udev rules flashgate ships: they
//! must be installed (every rule of this flashgate's version), the group they grant must exist,
//! and the user must be in it.

use std::path::PathBuf;

use super::Status;

/// The rules this flashgate ships (`udev/60-flashgate.rules`).
pub const SHIPPED_RULES: &str = include_str!("../../../udev/60-flashgate.rules");

/// Where installed rules and groups are looked up, and who asks.
#[derive(Debug, Clone)]
pub struct UdevRules {
    /// Rule folders in udev's order of precedence (a file in an earlier one hides a file of
    /// the same name in a later one).
    pub rule_dirs: Vec<PathBuf>,
    /// `/etc/group`.
    pub group_file: PathBuf,
    /// The user asking (for messages).
    pub user: String,
    /// The effective and supplementary group ids of this process.
    pub gids: Vec<u32>,
    pub is_root: bool,
}

impl UdevRules {
    /// The system's folders and this process's user and groups.
    pub fn system() -> Self {
        Self {
            rule_dirs: [
                "/etc/udev/rules.d",
                "/run/udev/rules.d",
                "/usr/local/lib/udev/rules.d",
                "/usr/lib/udev/rules.d",
                "/lib/udev/rules.d",
            ]
            .iter()
            .map(PathBuf::from)
            .collect(),
            group_file: PathBuf::from("/etc/group"),
            user: std::env::var("USER")
                .or_else(|_| std::env::var("LOGNAME"))
                .unwrap_or_else(|_| "this user".into()),
            gids: process_gids(),
            is_root: is_root(),
        }
    }

    pub fn findings(&self) -> Vec<(Status, String)> {
        let mut out = Vec::new();
        let shipped = rule_lines(SHIPPED_RULES);
        let Some(group) = granted_group(SHIPPED_RULES) else {
            out.push((
                Status::Fail,
                "the shipped rules grant no GROUP; this flashgate build is broken".into(),
            ));
            return out;
        };
        match self.installed() {
            None => out.push((
                Status::Fail,
                format!(
                    "no flashgate rules in {}: phones on USB are not reachable by group {group}; \
                     install udev/60-flashgate.rules into /etc/udev/rules.d, then `udevadm \
                     control --reload` and `udevadm trigger` (see udev/README.md)",
                    self.rule_dirs
                        .iter()
                        .map(|d| d.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
            Some((path, text)) => {
                let installed = rule_lines(&text);
                let missing = shipped
                    .iter()
                    .filter(|rule| !installed.contains(rule))
                    .count();
                if missing == 0 {
                    out.push((Status::Ok, format!("{} installed", path.display())));
                } else {
                    out.push((
                        Status::Fail,
                        format!(
                            "{} lacks {missing} of the {} rules this flashgate ships (an older \
                             version?); install udev/60-flashgate.rules over it and reload udev",
                            path.display(),
                            shipped.len()
                        ),
                    ));
                }
            }
        }
        match self.group_id(&group) {
            None => out.push((
                Status::Fail,
                format!(
                    "group {group} does not exist ({}); `groupadd --system {group}` and add the \
                     station's user to it",
                    self.group_file.display()
                ),
            )),
            Some(gid) if self.gids.contains(&gid) => {
                out.push((Status::Ok, format!("{} is in group {group}", self.user)))
            }
            Some(_) if self.is_root => out.push((
                Status::Note,
                format!(
                    "running as root, which reaches the phones without group {group}; the \
                     station's own user must be in that group"
                ),
            )),
            Some(_) => out.push((
                Status::Fail,
                format!(
                    "{} is not in group {group}, so phones on USB cannot be opened; `usermod -aG \
                     {group} {}` and log in again",
                    self.user, self.user
                ),
            )),
        }
        out
    }

    /// The first file named like flashgate's rules, in precedence order.
    fn installed(&self) -> Option<(PathBuf, String)> {
        self.rule_dirs.iter().find_map(|dir| {
            let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
                .ok()?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.contains("flashgate") && n.ends_with(".rules"))
                })
                .collect();
            names.sort();
            names
                .into_iter()
                .find_map(|p| Some((p.clone(), std::fs::read_to_string(&p).ok()?)))
        })
    }

    fn group_id(&self, name: &str) -> Option<u32> {
        group_id_in(&std::fs::read_to_string(&self.group_file).ok()?, name)
    }
}

/// The rules of a rules file: comments and blank lines dropped, continuation lines joined,
/// whitespace normalised.
fn rule_lines(text: &str) -> Vec<String> {
    let mut rules = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if current.is_empty() && (line.is_empty() || line.starts_with('#')) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part.trim());
                current.push(' ');
            }
            None => {
                current.push_str(line);
                rules.push(current.split_whitespace().collect::<Vec<_>>().join(" "));
                current.clear();
            }
        }
    }
    rules
}

/// The `GROUP="…"` the rules grant.
fn granted_group(rules: &str) -> Option<String> {
    let at = rules.find("GROUP=\"")? + "GROUP=\"".len();
    let rest = &rules[at..];
    Some(rest[..rest.find('"')?].to_string())
}

fn group_id_in(groups: &str, name: &str) -> Option<u32> {
    groups.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == name).then_some(())?;
        fields.nth(1)?.parse().ok()
    })
}

#[cfg(unix)]
fn process_gids() -> Vec<u32> {
    // SAFETY: getgroups with a zero count only returns the number of groups; the second call
    // writes at most `count` ids into a buffer of that many.
    unsafe {
        let count = libc::getgroups(0, std::ptr::null_mut());
        let mut gids = vec![0 as libc::gid_t; usize::try_from(count).unwrap_or(0)];
        let filled = libc::getgroups(count.max(0), gids.as_mut_ptr());
        gids.truncate(usize::try_from(filled).unwrap_or(0));
        gids.push(libc::getegid());
        gids
    }
}

#[cfg(not(unix))]
fn process_gids() -> Vec<u32> {
    Vec::new()
}

#[cfg(unix)]
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(not(unix))]
fn is_root() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn rules_in(dir: &Path, groups: &str, gids: Vec<u32>, is_root: bool) -> UdevRules {
        let group_file = dir.join("group");
        std::fs::write(&group_file, groups).unwrap();
        UdevRules {
            rule_dirs: vec![dir.join("etc"), dir.join("lib")],
            group_file,
            user: "line".into(),
            gids,
            is_root,
        }
    }

    fn statuses(findings: &[(Status, String)]) -> Vec<Status> {
        findings.iter().map(|(s, _)| *s).collect()
    }

    #[test]
    fn installed_rules_and_group_membership() {
        let dir = tempfile::tempdir().unwrap();
        let groups = "root:x:0:\nflashgate:x:977:line\n";
        std::fs::create_dir_all(dir.path().join("lib")).unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();

        let rules = rules_in(dir.path(), groups, vec![1000, 977], false);
        let findings = rules.findings();
        assert_eq!(
            statuses(&findings),
            [Status::Fail, Status::Ok],
            "{findings:?}"
        );
        assert!(findings[0].1.contains("no flashgate rules"), "{findings:?}");
        assert!(findings[1].1.contains("line is in group flashgate"));

        std::fs::write(dir.path().join("lib/60-flashgate.rules"), SHIPPED_RULES).unwrap();
        let findings = rules.findings();
        assert_eq!(
            statuses(&findings),
            [Status::Ok, Status::Ok],
            "{findings:?}"
        );

        // An older copy in /etc hides the packaged one and lacks a rule.
        let older: String =
            SHIPPED_RULES.replace("ATTR{idVendor}==\"05c6\"", "ATTR{idVendor}==\"05c7\"");
        std::fs::write(dir.path().join("etc/60-flashgate.rules"), older).unwrap();
        let findings = rules.findings();
        assert_eq!(statuses(&findings)[0], Status::Fail, "{findings:?}");
        assert!(
            findings[0].1.contains("etc/60-flashgate.rules lacks 1 of"),
            "{findings:?}"
        );

        // Reformatting and comments are not differences.
        let reformatted = format!("# local copy\n{}", SHIPPED_RULES.replace(", ", ",  "));
        std::fs::write(dir.path().join("etc/60-flashgate.rules"), reformatted).unwrap();
        assert_eq!(statuses(&rules.findings())[0], Status::Ok);

        let outsider = rules_in(dir.path(), groups, vec![1000], false);
        let findings = outsider.findings();
        assert_eq!(statuses(&findings)[1], Status::Fail);
        assert!(
            findings[1].1.contains("usermod -aG flashgate line"),
            "{findings:?}"
        );
        let root = rules_in(dir.path(), groups, vec![0], true);
        assert_eq!(statuses(&root.findings())[1], Status::Note);
        let no_group = rules_in(dir.path(), "root:x:0:\n", vec![0], false);
        let findings = no_group.findings();
        assert!(
            findings[1].1.contains("groupadd --system flashgate"),
            "{findings:?}"
        );
    }

    #[test]
    fn rules_are_compared_as_rules() {
        let rules = rule_lines("# c\n\nA==\"1\", \\\n  B=\"2\"\n  C=\"3\"\n");
        assert_eq!(rules, ["A==\"1\", B=\"2\"", "C=\"3\""]);
        assert_eq!(granted_group(SHIPPED_RULES).as_deref(), Some("flashgate"));
        assert_eq!(
            group_id_in("a:x:1:\nflashgate:x:977:u\n", "flashgate"),
            Some(977)
        );
        assert_eq!(group_id_in("a:x:1:\n", "flashgate"), None);
    }
}
