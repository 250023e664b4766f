use std::io::Write;

use super::private_copy::PrivateStore;
use super::*;
use crate::config::ImagePath;

fn image(dir: &Path, name: &str, data: &[u8]) -> ImageFile {
    let path = dir.join(name);
    std::fs::write(&path, data).unwrap();
    ImageFile {
        key: name.to_string(),
        relative: ImagePath::parse(name).unwrap(),
        path,
        size: data.len() as u64,
        sha256: Sha256Digest::of_bytes(data),
    }
}

fn data() -> Vec<u8> {
    (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect()
}

#[test]
fn checks_size_and_hash() {
    let dir = tempfile::tempdir().unwrap();
    let good = image(dir.path(), "boot", &data());
    let verified = VerifiedImage::check(&good).unwrap();
    assert_eq!(verified.format(), ImageFormat::Raw);
    assert_eq!(verified.sha256(), Sha256Digest::of_bytes(&data()));

    let mut wrong_size = good.clone();
    wrong_size.size += 1;
    assert!(matches!(
        VerifiedImage::check(&wrong_size),
        Err(ImageCheckError::Size { .. })
    ));
    let mut wrong_hash = good.clone();
    wrong_hash.sha256 = Sha256Digest::of_bytes(b"other");
    let error = VerifiedImage::check(&wrong_hash).unwrap_err();
    assert!(matches!(error, ImageCheckError::Hash { .. }));
    assert!(error.to_string().contains("image `boot`"), "{error}");
    let mut missing = good;
    missing.path = dir.path().join("nope");
    assert!(matches!(
        VerifiedImage::check(&missing),
        Err(ImageCheckError::Missing { .. })
    ));
    missing.path = dir.path().to_path_buf();
    let error = VerifiedImage::check(&missing).unwrap_err();
    assert!(
        matches!(
            error,
            ImageCheckError::NotRegularFile {
                kind: "a directory",
                ..
            }
        ),
        "{error}"
    );
    assert!(!error.is_mismatch());
}

#[test]
fn a_full_sequential_stream_proves_the_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let verified = VerifiedImage::check(&image(dir.path(), "system", &data())).unwrap();
    let mut stream = verified.open_stream().unwrap();
    // The way fastboot's flash reads: sniff the magic, measure, rewind, read everything.
    let mut magic = [0u8; 4];
    stream.read_exact(&mut magic).unwrap();
    let len = stream.seek(SeekFrom::End(0)).unwrap();
    assert_eq!(len, data().len() as u64);
    stream.seek(SeekFrom::Start(0)).unwrap();
    let mut sent = Vec::new();
    stream.read_to_end(&mut sent).unwrap();
    assert_eq!(sent, data());
    assert_eq!(
        stream.proof(),
        StreamProof::AllBytesMatched(Sha256Digest::of_bytes(&data()))
    );
}

#[test]
fn a_skipping_stream_proves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let verified = VerifiedImage::check(&image(dir.path(), "system", &data())).unwrap();
    let mut stream = verified.open_stream().unwrap();
    let mut head = [0u8; 100];
    stream.read_exact(&mut head).unwrap();
    stream.seek(SeekFrom::Start(1000)).unwrap();
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    assert_eq!(stream.proof(), StreamProof::Partial { hashed: 100 });
}

#[test]
fn a_scan_then_an_ordered_pass_proves_the_bytes() {
    // How a client treats a sparse image: hop between chunk headers, then send it all.
    let dir = tempfile::tempdir().unwrap();
    let verified = VerifiedImage::check(&image(dir.path(), "system", &data())).unwrap();
    let mut stream = verified.open_stream().unwrap();
    let mut header = [0u8; 28];
    for at in [0u64, 5000, 90_000, 250_000] {
        stream.seek(SeekFrom::Start(at)).unwrap();
        stream.read_exact(&mut header).unwrap();
    }
    stream.seek(SeekFrom::Start(0)).unwrap();
    let mut sent = Vec::new();
    stream.read_to_end(&mut sent).unwrap();
    assert_eq!(sent, data());
    assert_eq!(
        stream.proof(),
        StreamProof::AllBytesMatched(Sha256Digest::of_bytes(&data()))
    );
}

#[test]
fn a_file_changed_after_the_check_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = image(dir.path(), "system", &data());
    let verified = VerifiedImage::check(&file).unwrap();
    // Same length, different bytes, and a different modification time.
    let mut changed = data();
    changed[123_456] ^= 0xff;
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(&file.path, &changed).unwrap();
    let error = verified.open_stream().unwrap_err();
    assert!(
        matches!(error, ImageCheckError::ChangedSinceCheck { .. }),
        "{error}"
    );
    assert!(verified.open_partition_view().is_err());
    assert!(verified.recheck().is_err());
}

#[test]
fn bytes_changed_under_an_open_stream_are_withheld() {
    let dir = tempfile::tempdir().unwrap();
    let file = image(dir.path(), "system", &data());
    let verified = VerifiedImage::check(&file).unwrap();
    let mut stream = verified.open_stream().unwrap();
    let mut first = vec![0u8; 1000];
    stream.read_exact(&mut first).unwrap();
    // Modified in place after the stream was opened (the stamp check already passed).
    let mut writer = std::fs::OpenOptions::new()
        .write(true)
        .open(&file.path)
        .unwrap();
    writer.seek(SeekFrom::Start(200_000)).unwrap();
    writer.write_all(&[0xee; 10]).unwrap();
    drop(writer);
    let mut rest = Vec::new();
    let error = stream.read_to_end(&mut rest).unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    assert!(error.to_string().contains("changed on disk"), "{error}");
    assert!(
        (rest.len() as u64) < data().len() as u64 - 1000,
        "the final bytes must not be handed out"
    );
    assert!(matches!(stream.proof(), StreamProof::Partial { .. }));
}

#[test]
fn a_private_copy_is_sent_without_hashing_and_later_source_edits_do_not_reach_phones() {
    let dir = tempfile::tempdir().unwrap();
    let store = PrivateStore::new(dir.path().join("state/images"));
    let file = image(dir.path(), "boot", &data());
    let verified = VerifiedImage::check_and_copy(&file, &store).unwrap();
    let copy = verified
        .private_copy()
        .expect("a copy was made")
        .to_path_buf();
    assert!(copy.starts_with(store.dir()));
    assert_eq!(verified.send_path(), copy);
    // The build's file is edited after pre-flight: the phones are sent the checked bytes.
    std::fs::write(&file.path, vec![0xee; data().len()]).unwrap();
    let mut stream = verified.open_stream().unwrap();
    let mut sent = Vec::new();
    stream.read_to_end(&mut sent).unwrap();
    assert_eq!(sent, data());
    assert_eq!(
        stream.proof(),
        StreamProof::FromSealedCopy(Sha256Digest::of_bytes(&data()))
    );
    // A second pre-flight of the same content reuses the sealed copy (same inode).
    std::fs::write(&file.path, data()).unwrap();
    let again = VerifiedImage::check_and_copy(&file, &store).unwrap();
    assert_eq!(again.private_copy(), Some(copy.as_path()));
}

#[test]
fn a_source_that_does_not_match_leaves_no_copy() {
    let dir = tempfile::tempdir().unwrap();
    let store = PrivateStore::new(dir.path().join("images"));
    let mut file = image(dir.path(), "boot", &data());
    file.sha256 = Sha256Digest::of_bytes(b"other");
    let error = VerifiedImage::check_and_copy(&file, &store).unwrap_err();
    assert!(matches!(error, ImageCheckError::Hash { .. }), "{error}");
    assert_eq!(std::fs::read_dir(store.dir()).unwrap().count(), 0);
}

#[test]
fn a_sparse_image_is_walked_while_it_is_copied() {
    let dir = tempfile::tempdir().unwrap();
    let store = PrivateStore::new(dir.path().join("images"));
    let mut sparse = Vec::new();
    let mut writer = protocols::sparse::SparseWriter::new(&mut sparse, 4096, 8, 2).unwrap();
    writer.write_raw(&[3u8; 4096]).unwrap();
    writer.write_dont_care(7).unwrap();
    writer.finish().unwrap();
    let file = image(dir.path(), "system", &sparse);
    let verified = VerifiedImage::check_and_copy(&file, &store).unwrap();
    assert_eq!(verified.format(), ImageFormat::Sparse);
    assert_eq!(verified.partition_bytes(), 8 * 4096);
    let copy = std::fs::read(verified.private_copy().unwrap()).unwrap();
    assert_eq!(copy, sparse);
}
