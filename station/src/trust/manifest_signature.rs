//! Signed product manifests: the release signs each manifest with minisign (Ed25519, a detached
//! `<manifest>.minisig` beside it, made by `minisign -S`); `station.yaml` pins the public keys
//! the station trusts (`trusted_manifest_keys`). Pre-flight refuses a manifest that is unsigned,
//! whose signature does not match its bytes, or that a key the station does not pin signed —
//! before any phone is touched — unless the station runs in engineering mode, which every
//! verdict then records.
//!
//! The signature is checked on the very bytes the manifest is then parsed from, so a file
//! swapped between the check and the parse cannot slip through.

use std::fmt;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use minisign::{PublicKey, SignatureBox};

use crate::verdict::FailureCode;

/// A `.minisig` is four short lines; anything past this is not one.
const MAX_SIGNATURE_FILE: u64 = 16 << 10;

/// A minisign key id (8 bytes), shown as the `minisign` tool shows it: the bytes as a
/// little-endian 64-bit number in upper-case hex, without leading zeros (`A9513B5348B46D55`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 8]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}", u64::from_le_bytes(self.0))
    }
}

/// A public key the station trusts to sign product manifests.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    /// Who holds the secret key (`release-2025`), as station.yaml names it.
    pub name: String,
    pub key_id: KeyId,
    /// The key as minisign prints it (`RW…`, base64).
    pub public_key: String,
    key: PublicKey,
}

impl TrustedKey {
    /// A key from its minisign base64 form (the second line of a `minisign.pub`, what
    /// `minisign -P` takes).
    pub fn parse(name: &str, public_key: &str) -> Result<Self, String> {
        let text = public_key.trim();
        let not_a_key = || "not a minisign public key (42 bytes in base64, starting `RW`)";
        let key = PublicKey::from_base64(text).map_err(|_| not_a_key())?;
        if !key.to_bytes().starts_with(b"Ed") {
            return Err("not an Ed25519 minisign public key (its first bytes are not `Ed`)".into());
        }
        let key_id = KeyId(key.keynum().try_into().map_err(|_| not_a_key())?);
        Ok(Self {
            name: name.to_string(),
            key_id,
            public_key: text.to_string(),
            key,
        })
    }
}

/// Two pinned keys are the same when their names and their key text are (the parsed key follows
/// from the text).
impl PartialEq for TrustedKey {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.public_key == other.public_key
    }
}

impl Eq for TrustedKey {}

/// How the manifest of a batch came to be trusted; every attempt records it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ManifestTrust {
    /// Loaded without the station's signature check (a tool or test that called the manifest
    /// loader itself; never a station run).
    #[default]
    NotChecked,
    /// Its signature verified with a key the station pins.
    Signed { key_name: String, key_id: KeyId },
    /// The station runs in engineering mode: the manifest was used whatever its signature.
    /// `signed` is the pinned key that verified it, if one did; `refusal` why it would have
    /// been refused otherwise.
    Engineering {
        signed: Option<(String, KeyId)>,
        refusal: Option<String>,
    },
}

impl ManifestTrust {
    /// The pinned key that verified the manifest, `name (key id ID)`, for the journal.
    pub fn signed_by(&self) -> Option<String> {
        match self {
            Self::Signed { key_name, key_id }
            | Self::Engineering {
                signed: Some((key_name, key_id)),
                ..
            } => Some(format!("{key_name} (key id {key_id})")),
            Self::NotChecked | Self::Engineering { signed: None, .. } => None,
        }
    }

    /// The trust an engineering-mode station gives a manifest whose check gave `checked`.
    pub fn engineering(checked: Result<ManifestTrust, UntrustedManifest>) -> Self {
        match checked {
            Ok(Self::Signed { key_name, key_id }) => Self::Engineering {
                signed: Some((key_name, key_id)),
                refusal: None,
            },
            Ok(other) => other,
            Err(refusal) => Self::Engineering {
                signed: None,
                refusal: Some(refusal.to_string()),
            },
        }
    }

    /// The operator's warning for a run in engineering mode (None otherwise).
    pub fn engineering_warning(&self) -> Option<String> {
        let Self::Engineering { signed, refusal } = self else {
            return None;
        };
        let state = match (signed, refusal) {
            (_, Some(refusal)) => {
                format!("the manifest is NOT trusted and is flashed anyway ({refusal})")
            }
            (Some((name, id)), None) => {
                format!("the manifest is signed by {name} (key id {id}), but signatures are not enforced")
            }
            (None, None) => "signatures are not enforced".to_string(),
        };
        Some(format!(
            "ENGINEERING MODE: {state}; every attempt of this run is recorded as engineering \
             (journal column engineering_mode): do not ship these units"
        ))
    }

    pub fn is_engineering(&self) -> bool {
        matches!(self, Self::Engineering { .. })
    }
}

/// Why a manifest is not trusted. Each sentence names the manifest, the signature file and the
/// key id where there is one, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UntrustedManifest {
    #[error("{code}: manifest {} is not signed (no {}); flash only a release's signed manifest: copy its .minisig beside it, or sign it (`minisign -S -m {}` with a release key station.yaml pins)", manifest.display(), signature.display(), manifest.display(), code = FailureCode::ManifestUntrusted)]
    Unsigned {
        manifest: PathBuf,
        signature: PathBuf,
    },
    #[error("{code}: manifest {}: its signature {} cannot be read ({detail}); copy the release's .minisig again", manifest.display(), signature.display(), code = FailureCode::ManifestUntrusted)]
    Unreadable {
        manifest: PathBuf,
        signature: PathBuf,
        detail: String,
    },
    #[error("{code}: manifest {}: {} is not a minisign signature ({detail}); copy the release's .minisig again", manifest.display(), signature.display(), code = FailureCode::ManifestUntrusted)]
    Malformed {
        manifest: PathBuf,
        signature: PathBuf,
        detail: String,
    },
    #[error("{code}: manifest {} is signed by key id {key_id} ({}), which station.yaml does not pin ({}); do not flash it: ask release engineering which key signs its releases and pin that key in `trusted_manifest_keys`", manifest.display(), signature.display(), pinned_list(pinned), code = FailureCode::ManifestUntrusted)]
    KeyNotPinned {
        manifest: PathBuf,
        signature: PathBuf,
        key_id: KeyId,
        /// `name (key id ID)` of each pinned key.
        pinned: Vec<String>,
    },
    #[error("{code}: manifest {}: its signature {} by {key_name} (key id {key_id}) does not match the manifest's bytes: the manifest (or the signature) was changed after the release signed it; do not flash it: restore the release's manifest, or have release engineering sign the corrected one", manifest.display(), signature.display(), code = FailureCode::ManifestUntrusted)]
    BadSignature {
        manifest: PathBuf,
        signature: PathBuf,
        key_name: String,
        key_id: KeyId,
    },
}

fn pinned_list(pinned: &[String]) -> String {
    if pinned.is_empty() {
        "it pins no key: `trusted_manifest_keys` is empty".into()
    } else {
        format!("it pins {}", pinned.join(", "))
    }
}

/// The detached signature of `manifest`: `<manifest>.minisig`, as `minisign -S` writes it.
pub fn signature_path(manifest: &Path) -> PathBuf {
    let mut name = manifest.as_os_str().to_os_string();
    name.push(".minisig");
    PathBuf::from(name)
}

/// Checks that `bytes` (the manifest `manifest` as read) carry a valid minisign signature in
/// `<manifest>.minisig` by one of `keys`.
pub fn verify_manifest(
    manifest: &Path,
    bytes: &[u8],
    keys: &[TrustedKey],
) -> Result<ManifestTrust, UntrustedManifest> {
    let signature_file = signature_path(manifest);
    let text = read_signature(manifest, &signature_file)?;
    let malformed = |detail: String| UntrustedManifest::Malformed {
        manifest: manifest.to_path_buf(),
        signature: signature_file.clone(),
        detail,
    };
    let signature = SignatureBox::from_string(&text).map_err(|e| malformed(e.to_string()))?;
    let key_id = signature_key_id(&signature)
        .ok_or_else(|| malformed("its signature line holds no 8-byte key id".into()))?;
    let Some(key) = keys.iter().find(|k| k.key_id == key_id) else {
        return Err(UntrustedManifest::KeyNotPinned {
            manifest: manifest.to_path_buf(),
            signature: signature_file,
            key_id,
            pinned: keys
                .iter()
                .map(|k| format!("{} (key id {})", k.name, k.key_id))
                .collect(),
        });
    };
    // Legacy (not pre-hashed) signatures are refused: minisign has made pre-hashed ones since
    // 0.8, and only those bind the whole file through BLAKE2b-512.
    minisign::verify(&key.key, &signature, Cursor::new(bytes), true, false, false).map_err(
        |_| UntrustedManifest::BadSignature {
            manifest: manifest.to_path_buf(),
            signature: signature_file,
            key_name: key.name.clone(),
            key_id,
        },
    )?;
    Ok(ManifestTrust::Signed {
        key_name: key.name.clone(),
        key_id,
    })
}

fn read_signature(manifest: &Path, signature: &Path) -> Result<String, UntrustedManifest> {
    let unreadable = |detail: String| UntrustedManifest::Unreadable {
        manifest: manifest.to_path_buf(),
        signature: signature.to_path_buf(),
        detail,
    };
    let file = match std::fs::File::open(signature) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(UntrustedManifest::Unsigned {
                manifest: manifest.to_path_buf(),
                signature: signature.to_path_buf(),
            })
        }
        Err(e) => return Err(unreadable(e.to_string())),
    };
    let mut bytes = Vec::new();
    file.take(MAX_SIGNATURE_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| unreadable(e.to_string()))?;
    if bytes.len() as u64 > MAX_SIGNATURE_FILE {
        return Err(UntrustedManifest::Malformed {
            manifest: manifest.to_path_buf(),
            signature: signature.to_path_buf(),
            detail: format!("larger than {MAX_SIGNATURE_FILE} bytes"),
        });
    }
    String::from_utf8(bytes).map_err(|_| UntrustedManifest::Malformed {
        manifest: manifest.to_path_buf(),
        signature: signature.to_path_buf(),
        detail: "not text".into(),
    })
}

/// The key id a signature names (the signature line's bytes 2..10).
fn signature_key_id(signature: &SignatureBox) -> Option<KeyId> {
    signature.keynum().try_into().ok().map(KeyId)
}

#[cfg(test)]
mod tests;
