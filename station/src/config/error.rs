//! Configuration errors: every one names the file, the line and the key, and says what to do.

use std::fmt;
use std::path::PathBuf;

/// A key inside a YAML document, e.g. `regions.00EEA.activation_client.sha256` or `slots[2].port`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyPath(pub Vec<KeySegment>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySegment {
    Key(String),
    Index(usize),
}

impl KeyPath {
    pub fn root() -> Self {
        Self(Vec::new())
    }

    /// Builds a path from dotted segments; `"slots"`, `2usize` style pieces via [`KeyPath::index`].
    pub fn of(keys: &[&str]) -> Self {
        Self(
            keys.iter()
                .map(|k| KeySegment::Key((*k).to_string()))
                .collect(),
        )
    }

    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.0.push(KeySegment::Key(key.into()));
        self
    }

    pub fn index(mut self, index: usize) -> Self {
        self.0.push(KeySegment::Index(index));
        self
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(document)");
        }
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                KeySegment::Key(key) if i == 0 => f.write_str(key)?,
                KeySegment::Key(key) => write!(f, ".{key}")?,
                KeySegment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// Why a configuration file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read it: {source}; check the path and its permissions", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is {kind}, not a regular file; give the path of the YAML file itself", file.display())]
    NotRegularFile { file: PathBuf, kind: &'static str },
    #[error("{}", render_invalid(file, *line, key, problem, fix))]
    Invalid {
        file: PathBuf,
        /// 1-based line, when the YAML parser could place the problem.
        line: Option<usize>,
        key: KeyPath,
        problem: String,
        /// What the person editing the file should do.
        fix: String,
    },
}

impl ConfigError {
    pub fn file(&self) -> &std::path::Path {
        match self {
            Self::Read { file, .. }
            | Self::NotRegularFile { file, .. }
            | Self::Invalid { file, .. } => file,
        }
    }

    pub fn line(&self) -> Option<usize> {
        match self {
            Self::Read { .. } | Self::NotRegularFile { .. } => None,
            Self::Invalid { line, .. } => *line,
        }
    }

    pub fn key(&self) -> Option<&KeyPath> {
        match self {
            Self::Read { .. } | Self::NotRegularFile { .. } => None,
            Self::Invalid { key, .. } => Some(key),
        }
    }
}

fn render_invalid(
    file: &std::path::Path,
    line: Option<usize>,
    key: &KeyPath,
    problem: &str,
    fix: &str,
) -> String {
    let place = match line {
        Some(line) => format!("{}:{line}", file.display()),
        None => format!("{} (line unknown)", file.display()),
    };
    if fix.is_empty() {
        format!("{place}: key `{key}`: {problem}")
    } else {
        format!("{place}: key `{key}`: {problem}; {fix}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_read_like_the_yaml() {
        let path = KeyPath::of(&["regions", "00EEA"])
            .key("files")
            .key("system");
        assert_eq!(path.to_string(), "regions.00EEA.files.system");
        assert_eq!(
            KeyPath::of(&["slots"]).index(2).key("port").to_string(),
            "slots[2].port"
        );
        assert_eq!(KeyPath::root().to_string(), "(document)");
    }

    #[test]
    fn message_names_file_line_key_and_fix() {
        let error = ConfigError::Invalid {
            file: PathBuf::from("products/p.yaml"),
            line: Some(12),
            key: KeyPath::of(&["regions", "00WW", "build_id"]),
            problem: "must not be empty".into(),
            fix: "write the build id the factory image was built as".into(),
        };
        assert_eq!(
            error.to_string(),
            "products/p.yaml:12: key `regions.00WW.build_id`: must not be empty; \
             write the build id the factory image was built as"
        );
    }
}
