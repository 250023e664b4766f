//! Signatures made by Debian's `minisign` 0.11 (`minisign -G -W`, then `minisign -S -t …`) over
//! the bytes `hello\n`, kept as literals; `tests/manifest_trust.rs` runs the tool itself.

use super::*;

const KEY: &str = "RWRVbbRIUztRqau4MgwRIBhgh0vXvgknIkg2NQbmrlml1FLj1ffT/15z";
const SIGNATURE: &str = "untrusted comment: untrusted
RURVbbRIUztRqXQkQw4YHwc3RLRcLibtL8jmuINy1C5mjUYWcl+nuydpjU3BEj/NqbYIK3BV0zMRwYis0DumzwStEvRU1aJzPQE=
trusted comment: fixed comment
Ga1WawQnDQgjAnYd1U8c+K4r57TyhT1fAODqje+nEDetNE64ua8zQbGtGnzoboCClbbtRyMnsEIOMorItGOxAw==
";
const OTHER_KEY: &str = "RWRxq8vOfb4EPK1IybPSCxE3ddip2NViywNIzpgTHmsWcCouajHlEnwQ";
const SIGNED_BY_OTHER_KEY: &str = "untrusted comment: signature from minisign secret key
RURxq8vOfb4EPFZ71n/dJO5M+0e+Kpt76OVX1EF4MvqDXFRkDeBM97pcxWR/BaWaZe8USBQg1hU0kahNkT270owP9wZHXg440Ac=
trusted comment: other
JkrlzdlpYJo3/1iumXWYoA9V7LEtERGL0vupi7h8DAJ4x1VzC0WZStDX8FiYBSbHtsLdZvCvaoNIiLrJcVBgAA==
";

fn manifest_with(signature: Option<&str>) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("fgdemo.yaml");
    std::fs::write(&manifest, b"hello\n").unwrap();
    if let Some(signature) = signature {
        std::fs::write(signature_path(&manifest), signature).unwrap();
    }
    (dir, manifest)
}

fn pinned() -> Vec<TrustedKey> {
    vec![TrustedKey::parse("release", KEY).unwrap()]
}

#[test]
fn key_ids_read_as_minisign_prints_them() {
    let key = TrustedKey::parse("release", KEY).unwrap();
    // `minisign -G` said: "minisign public key A9513B5348B46D55".
    assert_eq!(key.key_id.to_string(), "A9513B5348B46D55");
    assert_eq!(
        signature_key_id(&SignatureBox::from_string(SIGNED_BY_OTHER_KEY).unwrap())
            .unwrap()
            .to_string(),
        "3C04BE7DCECBAB71"
    );
    // minisign prints no leading zeros: "minisign public key 617AEEDFFE1A4F8".
    assert_eq!(
        KeyId(0x0617_AEED_FFE1_A4F8u64.to_le_bytes()).to_string(),
        "617AEEDFFE1A4F8"
    );
    assert!(TrustedKey::parse("x", "RWRVbbRIUztR").is_err());
    assert!(TrustedKey::parse("x", "not base64 at all!").is_err());
}

#[test]
fn a_signature_by_a_pinned_key_verifies_and_one_byte_changed_does_not() {
    let (_dir, manifest) = manifest_with(Some(SIGNATURE));
    let trust = verify_manifest(&manifest, b"hello\n", &pinned()).unwrap();
    assert_eq!(
        trust.signed_by().as_deref(),
        Some("release (key id A9513B5348B46D55)")
    );
    let refused = verify_manifest(&manifest, b"hellp\n", &pinned()).unwrap_err();
    assert!(matches!(refused, UntrustedManifest::BadSignature { .. }));
    let text = refused.to_string();
    assert!(text.starts_with("MANIFEST_UNTRUSTED: manifest "), "{text}");
    assert!(
        text.contains("by release (key id A9513B5348B46D55) does not match"),
        "{text}"
    );
}

#[test]
fn unsigned_malformed_and_unpinned_signatures_are_refused_naming_the_key() {
    let (_dir, manifest) = manifest_with(None);
    let refused = verify_manifest(&manifest, b"hello\n", &pinned()).unwrap_err();
    assert!(
        matches!(refused, UntrustedManifest::Unsigned { .. }),
        "{refused}"
    );
    assert!(
        refused.to_string().contains("fgdemo.yaml.minisig"),
        "{refused}"
    );

    let (_dir, manifest) = manifest_with(Some("untrusted comment: x\nnot a signature\n"));
    let refused = verify_manifest(&manifest, b"hello\n", &pinned()).unwrap_err();
    assert!(
        matches!(refused, UntrustedManifest::Malformed { .. }),
        "{refused}"
    );

    let (_dir, manifest) = manifest_with(Some(SIGNED_BY_OTHER_KEY));
    let refused = verify_manifest(&manifest, b"hello\n", &pinned()).unwrap_err();
    assert_eq!(
        refused.to_string(),
        format!(
            "MANIFEST_UNTRUSTED: manifest {} is signed by key id 3C04BE7DCECBAB71 ({}), which \
             station.yaml does not pin (it pins release (key id A9513B5348B46D55)); do not flash \
             it: ask release engineering which key signs its releases and pin that key in \
             `trusted_manifest_keys`",
            manifest.display(),
            signature_path(&manifest).display()
        )
    );
    // Pinned, it verifies.
    let both = vec![
        TrustedKey::parse("release", KEY).unwrap(),
        TrustedKey::parse("second", OTHER_KEY).unwrap(),
    ];
    let trust = verify_manifest(&manifest, b"hello\n", &both).unwrap();
    assert_eq!(
        trust,
        ManifestTrust::Signed {
            key_name: "second".into(),
            key_id: signature_key_id(&SignatureBox::from_string(SIGNED_BY_OTHER_KEY).unwrap())
                .unwrap()
        }
    );
}
