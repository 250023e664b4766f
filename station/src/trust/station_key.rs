//! The station's signing key, in minisign's formats (Ed25519): station.yaml pins the public key
//! (the base64 line of a `minisign.pub` file, what `minisign -P` takes), and the secret key is
//! a minisign secret key file without a password (a station signs unattended) that only the
//! service user may read.
//!
//! Keys come from `flashgate station keygen` or Debian's `minisign -G -W`. Debian's minisign
//! 0.11 leaves the checksum of a key without a password zero, which the minisign crate takes
//! for a corrupted or encrypted key; the station fills that checksum in before loading such a
//! key (nothing is lost: the key must still be the pinned public key's pair).

use std::path::{Path, PathBuf};

use minisign::{KeyPair, PublicKey, SecretKey, SecretKeyBox};

/// The public key of `configs/demo/keys/demo-station.key`. Its secret half is in flashgate's
/// repository for everyone to read, so a proof it signs proves nothing: the station says so,
/// `unit verify` says so, and its file may be readable by anyone (a checkout cannot keep 0600).
pub const DEMO_PUBLIC_KEY: &str = "RWQRuBCARrUdaacSrjpFCtzIEm6ZeZZmSUOKiMl85xsO/RcWeC6WIVDK";

#[derive(Debug, thiserror::Error)]
pub enum StationKeyError {
    #[error("station key: `{key}` is not a minisign public key ({detail}); give the base64 line of the station's .pub file (starts with `RW`)")]
    PublicKey { key: String, detail: String },
    #[error("station key {}: cannot read it: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("station key {}: readable by group or others (mode {mode:04o}); the station's secret key must be readable only by the user the station runs as: chmod 600 {} (and chown it to that user)", path.display(), path.display())]
    Exposed { path: PathBuf, mode: u32 },
    #[error("station key {}: not a minisign secret key ({detail}); make one with `flashgate station keygen`", path.display())]
    Malformed { path: PathBuf, detail: String },
    #[error("station key {}: protected by a password, but a station signs unattended; make a key without one with `flashgate station keygen`", path.display())]
    Encrypted { path: PathBuf },
    #[error("station key {}: its public key is {found}, but station.yaml pins {pinned}; use the secret key that belongs to the pinned public key, or pin this key's public key", path.display())]
    Mismatch {
        path: PathBuf,
        found: String,
        pinned: String,
    },
    #[error("station key {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("station key: {0}")]
    Sign(String),
}

/// A minisign public key, parsed from its base64 line.
pub fn parse_public_key(text: &str) -> Result<PublicKey, StationKeyError> {
    PublicKey::from_base64(text.trim()).map_err(|e| StationKeyError::PublicKey {
        key: text.trim().to_string(),
        detail: e.to_string(),
    })
}

/// The base64 line of `key` (what station.yaml pins).
pub fn public_key_line(key: &PublicKey) -> String {
    key.to_base64()
}

/// Whether `key` is the published demo key.
pub fn is_demo_key(key: &PublicKey) -> bool {
    public_key_line(key) == DEMO_PUBLIC_KEY
}

/// The minisign key id of `key`, as `minisign` prints it (16 hex digits, upper case).
pub fn key_id(key: &PublicKey) -> String {
    let bytes = key.keynum();
    let mut id = [0u8; 8];
    id.copy_from_slice(&bytes[..8.min(bytes.len())]);
    format!("{:016X}", u64::from_le_bytes(id))
}

/// The station's signing key, loaded and checked against the public key station.yaml pins.
pub struct StationSigner {
    secret: SecretKey,
    public: PublicKey,
}

impl std::fmt::Debug for StationSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StationSigner")
            .field("public", &public_key_line(&self.public))
            .finish_non_exhaustive()
    }
}

impl StationSigner {
    /// Loads the secret key at `path`: refused when group or others may read it (unless it is
    /// the published demo key), when it has a password, or when it is not the pinned key's.
    pub fn load(path: &Path, pinned: &PublicKey) -> Result<Self, StationKeyError> {
        let demo = is_demo_key(pinned);
        if !demo {
            check_private(path)?;
        }
        let text = std::fs::read_to_string(path).map_err(|source| StationKeyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let malformed = |detail: String| StationKeyError::Malformed {
            path: path.to_path_buf(),
            detail,
        };
        // The key's second line is base64 of "Ed" and its KDF: "EdSc" (scrypt, a password)
        // starts "RWRT"; a key without a password ("Ed\0\0") starts "RWQA".
        if text.lines().nth(1).is_some_and(|l| l.starts_with("RWRT")) {
            return Err(StationKeyError::Encrypted {
                path: path.to_path_buf(),
            });
        }
        let text = with_checksum_filled_in(&text).unwrap_or(text);
        let boxed = SecretKeyBox::from_string(&text).map_err(|e| malformed(e.to_string()))?;
        // Never the box's password prompt: a station has no one at its keyboard.
        let secret = boxed
            .into_unencrypted_secret_key()
            .map_err(|e| malformed(e.to_string()))?;
        if secret.is_encrypted() {
            return Err(StationKeyError::Encrypted {
                path: path.to_path_buf(),
            });
        }
        let public = PublicKey::from_secret_key(&secret).map_err(|e| malformed(e.to_string()))?;
        if public_key_line(&public) != public_key_line(pinned) {
            return Err(StationKeyError::Mismatch {
                path: path.to_path_buf(),
                found: public_key_line(&public),
                pinned: public_key_line(pinned),
            });
        }
        Ok(Self { secret, public })
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    pub fn is_demo(&self) -> bool {
        is_demo_key(&self.public)
    }

    /// A minisign signature (the text of a `.minisig` file) of `data`, with `trusted_comment`
    /// signed along (`minisign -V` prints it).
    pub fn sign(&self, data: &[u8], trusted_comment: &str) -> Result<String, StationKeyError> {
        let signature = minisign::sign(
            Some(&self.public),
            &self.secret,
            data,
            Some(trusted_comment),
            Some("signature from a flashgate station key"),
        )
        .map_err(|e| StationKeyError::Sign(e.to_string()))?;
        Ok(signature.into_string())
    }
}

/// Where the parts of a minisign secret key (decoded from its second line) lie: the
/// algorithms, then the KDF's salt and limits, the key id, the Ed25519 secret key, and the
/// BLAKE2b-256 checksum of the signature algorithm, key id and secret key.
const SECRET_KEY_LEN: usize = 158;
const KDF_ALG: std::ops::Range<usize> = 2..4;
const SIG_ALG: std::ops::Range<usize> = 0..2;
const KEYNUM_AND_SECRET: std::ops::Range<usize> = 54..126;
const CHECKSUM: std::ops::Range<usize> = 126..158;

/// `text` with its checksum computed, when it is a key without a password whose checksum is
/// all zeros (Debian's `minisign -G -W`); None for any other text, which loads as it is.
fn with_checksum_filled_in(text: &str) -> Option<String> {
    use base64::Engine;
    use blake2::digest::consts::U32;
    use blake2::{Blake2b, Digest};

    let mut lines: Vec<&str> = text.lines().collect();
    let engine = base64::engine::general_purpose::STANDARD;
    let mut key = engine.decode(lines.get(1)?.trim()).ok()?;
    if key.len() != SECRET_KEY_LEN
        || key[KDF_ALG] != [0, 0]
        || key[CHECKSUM].iter().any(|&b| b != 0)
    {
        return None;
    }
    let mut checksum = Blake2b::<U32>::new();
    checksum.update(&key[SIG_ALG]);
    checksum.update(&key[KEYNUM_AND_SECRET]);
    key[CHECKSUM].copy_from_slice(&checksum.finalize());
    let line = engine.encode(&key);
    lines[1] = &line;
    Some(lines.join("\n") + "\n")
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), StationKeyError> {
    use std::os::unix::fs::PermissionsExt;
    let metadata = std::fs::metadata(path).map_err(|source| StationKeyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(StationKeyError::Exposed {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), StationKeyError> {
    Ok(())
}

/// A new station key pair: the secret key written to `secret_path` (created, never replaced;
/// mode 0600 from the start) and the public key to `secret_path` + `.pub`, both in minisign's
/// file formats. Returns the public key.
pub fn generate(secret_path: &Path) -> Result<PublicKey, StationKeyError> {
    let KeyPair { pk, sk } = KeyPair::generate_unencrypted_keypair()
        .map_err(|e| StationKeyError::Sign(e.to_string()))?;
    let secret_text = sk
        .to_box(Some("flashgate station secret key"))
        .map_err(|e| StationKeyError::Sign(e.to_string()))?
        .into_string();
    let public_text = pk
        .to_box()
        .map_err(|e| StationKeyError::Sign(e.to_string()))?
        .into_string();
    write_new(secret_path, secret_text.as_bytes(), 0o600)?;
    let mut public_path = secret_path.as_os_str().to_owned();
    public_path.push(".pub");
    write_new(Path::new(&public_path), public_text.as_bytes(), 0o644)?;
    Ok(pk)
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), StationKeyError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let error = |source| StationKeyError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut file = options.open(path).map_err(error)?;
    file.write_all(bytes).map_err(error)?;
    file.sync_all().map_err(error)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn keygen(dir: &Path) -> (PathBuf, PublicKey) {
        let path = dir.join("station.key");
        let public = generate(&path).unwrap();
        (path, public)
    }

    #[test]
    fn a_new_key_is_private_loads_and_signs() {
        let dir = tempfile::tempdir().unwrap();
        let (path, public) = keygen(dir.path());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let pub_file = std::fs::read_to_string(dir.path().join("station.key.pub")).unwrap();
        assert_eq!(
            pub_file.lines().nth(1),
            Some(public_key_line(&public).as_str())
        );
        let signer = StationSigner::load(&path, &public).unwrap();
        assert!(!signer.is_demo());
        let signature = signer.sign(b"statement", "comment").unwrap();
        assert!(
            signature.contains("trusted comment: comment"),
            "{signature}"
        );
        // Never overwritten.
        assert!(matches!(
            generate(&path),
            Err(StationKeyError::Write { .. })
        ));
    }

    #[test]
    fn a_key_others_can_read_is_refused_naming_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let (path, public) = keygen(dir.path());
        for mode in [0o640, 0o604, 0o644] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let error = StationSigner::load(&path, &public).unwrap_err();
            assert!(matches!(error, StationKeyError::Exposed { .. }), "{error}");
            assert!(error.to_string().contains("chmod 600"), "{error}");
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        StationSigner::load(&path, &public).unwrap();
    }

    /// Made by Debian's minisign 0.11: `minisign -G -W -p k.pub -s k.key` (its checksum is
    /// zero), kept as literals.
    const DEBIAN_PUBLIC: &str = "RWQwWV+mxeFi+3F7U9cF/1LQP+IulILaE9M6PTpOkB1Jdj+havo+hgRI";
    const DEBIAN_SECRET: &str = "untrusted comment: minisign encrypted secret key
RWQAAEIyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAMFlfpsXhYvvUlD5m2RYdvQTQU96uKYynAE7zu+WgYjr95BXIKnRwIHF7U9cF/1LQP+IulILaE9M6PTpOkB1Jdj+havo+hgRIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
";

    #[test]
    fn a_key_debians_minisign_made_without_a_password_loads_and_signs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("station.key");
        write_new(&path, DEBIAN_SECRET.as_bytes(), 0o600).unwrap();
        let pinned = parse_public_key(DEBIAN_PUBLIC).unwrap();
        let signer = StationSigner::load(&path, &pinned).unwrap();
        assert_eq!(key_id(signer.public_key()), "FB62E1C5A65F5930");
        let signature = signer.sign(b"hello\n", "a comment").unwrap();
        let signature = minisign::SignatureBox::from_string(&signature).unwrap();
        let verify = |data: &[u8]| {
            minisign::verify(
                &pinned,
                &signature,
                std::io::Cursor::new(data),
                true,
                false,
                false,
            )
        };
        assert!(verify(b"hello\n").is_ok());
        assert!(verify(b"hello!").is_err());

        // Only the zero checksum is filled in: a wrong one still says the key is damaged.
        use base64::Engine;
        let engine = base64::engine::general_purpose::STANDARD;
        let mut key = engine
            .decode(DEBIAN_SECRET.lines().nth(1).unwrap())
            .unwrap();
        key[SECRET_KEY_LEN - 1] = 1;
        let damaged = format!(
            "{}\n{}\n",
            DEBIAN_SECRET.lines().next().unwrap(),
            engine.encode(&key)
        );
        let path = dir.path().join("damaged.key");
        write_new(&path, damaged.as_bytes(), 0o600).unwrap();
        let refused = StationSigner::load(&path, &pinned).unwrap_err();
        assert!(
            matches!(refused, StationKeyError::Malformed { .. }),
            "{refused}"
        );
    }

    #[test]
    fn another_stations_key_or_a_password_protected_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = keygen(dir.path());
        let other = tempfile::tempdir().unwrap();
        let (_, other_public) = keygen(other.path());
        let error = StationSigner::load(&path, &other_public).unwrap_err();
        assert!(matches!(error, StationKeyError::Mismatch { .. }), "{error}");

        let encrypted = dir.path().join("encrypted.key");
        let KeyPair { pk, sk } =
            KeyPair::generate_encrypted_keypair(Some("secret".into())).unwrap();
        write_new(
            &encrypted,
            sk.to_box(None).unwrap().into_string().as_bytes(),
            0o600,
        )
        .unwrap();
        let error = StationSigner::load(&encrypted, &pk).unwrap_err();
        assert!(
            matches!(error, StationKeyError::Encrypted { .. }),
            "{error}"
        );

        let garbage = dir.path().join("garbage.key");
        write_new(&garbage, b"untrusted comment: x\nRWQAAEIy\n", 0o600).unwrap();
        let error = StationSigner::load(&garbage, &pk).unwrap_err();
        assert!(
            matches!(error, StationKeyError::Malformed { .. }),
            "{error}"
        );
    }

    #[test]
    fn the_demo_station_pins_the_published_demo_key_which_may_be_readable() {
        let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/demo");
        let yaml = std::fs::read_to_string(demo.join("station.yaml")).unwrap();
        assert!(yaml.contains(&format!("public_key: {DEMO_PUBLIC_KEY}")));
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("demo.key");
        std::fs::copy(demo.join("keys/demo-station.key"), &key).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let signer =
            StationSigner::load(&key, &parse_public_key(DEMO_PUBLIC_KEY).unwrap()).unwrap();
        assert!(signer.is_demo());
        assert_eq!(key_id(signer.public_key()), "691DB5468010B811");
    }
}
