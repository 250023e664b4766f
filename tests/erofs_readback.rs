//! An erofs `system` the way a modern phone carries it: Debian's `mkfs.erofs -zlz4hc` makes
//! the image, `img2simg` makes it sparse, pre-flight finds the client through the sparse index,
//! the image is flashed to a simulated phone, and verification hashes the client by fetching
//! only the blocks erofs needs. Every digest must equal what `fsck.erofs --extract` gives.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::thread;

use protocols::external_tool;
use protocols::fastboot::{Fastboot, FlashOptions, SlotChoice};
use protocols::sim::{FastbootConfig, FastbootDevice, FetchAllow, Phone};
use protocols::sparse::SparseIndex;
use protocols::transport::{memory, Transport};
use sha2::{Digest, Sha256};
use station::erofs::{hash_file_in_erofs, list_dir, ErofsFileError, ErofsFileType};
use station::read_at::ReadAt;

const MIB: u64 = 1 << 20;
const CLIENT: &str = "/system/priv-app/ActivationClient/ActivationClient.apk";

fn run(tool: &str, args: &[&str]) {
    let output = external_tool::command(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running `{tool}`: {e}"));
    assert!(
        output.status.success(),
        "`{tool} {args:?}` failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Deterministic bytes: runs of noise and of text, like an APK's stored and deflated entries.
fn apk_like(len: usize) -> Vec<u8> {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    (0..len)
        .map(|i| {
            if (i / 3000) % 2 == 0 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            } else {
                b"AndroidManifest.xml classes.dex\n"[i % 32]
            }
        })
        .collect()
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

struct FetchReader {
    client: Fastboot<Box<dyn Transport>>,
    partition: String,
}

impl ReadAt for FetchReader {
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let wanted = buf.len() as u64;
        let mut out: &mut [u8] = buf;
        let got = self
            .client
            .fetch_partition(&self.partition, offset, Some(wanted), &mut out)
            .map_err(io::Error::other)?;
        if got != wanted {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("fetch returned {got} of {wanted} bytes"),
            ));
        }
        Ok(())
    }
}

#[test]
fn an_lz4hc_erofs_system_is_verified_in_the_sparse_image_and_on_the_phone() {
    let work = tempfile::tempdir().unwrap();
    let tree = work.path().join("tree");
    let client_bytes = apk_like(700_001);
    let client_path = tree.join(CLIENT.trim_start_matches('/'));
    fs::create_dir_all(client_path.parent().unwrap()).unwrap();
    fs::write(&client_path, &client_bytes).unwrap();
    for app in 0..30 {
        let dir = tree.join(format!("system/app/App{app}"));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(format!("App{app}.apk")), apk_like(app * 5000)).unwrap();
    }
    // Filler the client must not cost: 24 MiB that compress poorly.
    fs::write(tree.join("system/filler.bin"), apk_like(24 << 20)).unwrap();
    symlink("/product/app", tree.join("system/product-app")).unwrap();

    let raw = work.path().join("system.raw");
    let sparse = work.path().join("system.img");
    let extracted = work.path().join("extracted");
    let path = |p: &Path| p.display().to_string();
    run(
        "mkfs.erofs",
        &[
            "--quiet",
            "-T0",
            "-zlz4hc",
            "-Eztailpacking",
            &path(&raw),
            &path(&tree),
        ],
    );
    run(
        "fsck.erofs",
        &[&format!("--extract={}", path(&extracted)), &path(&raw)],
    );
    run("img2simg", &[&path(&raw), &path(&sparse)]);
    let expected = sha256(&fs::read(extracted.join(CLIENT.trim_start_matches('/'))).unwrap());
    assert_eq!(expected, sha256(&client_bytes));

    // Pre-flight: through the sparse image's index, as image files are read.
    let index = SparseIndex::build(File::open(&sparse).unwrap()).unwrap();
    let (index, found) = hash_file_in_erofs(index, CLIENT, 64 * MIB);
    let found = found.expect("client in the sparse image");
    assert_eq!(found.sha256.0, expected);
    let (_, listed) = list_dir(index, "/system");
    let listed = listed.unwrap();
    let link = listed.iter().find(|e| e.name == b"product-app").unwrap();
    assert_eq!(link.file_type, ErofsFileType::Symlink);

    // Verification: the image flashed to a phone, the client read back through `fetch:`.
    let storage = tempfile::tempdir().unwrap();
    let phone = Phone::builder()
        .product("flashgate_sim")
        .serial("FGEROFS1")
        .slotted_partition("boot", MIB)
        .slotted_partition("system", 64 * MIB)
        .storage_dir(storage.path())
        .build()
        .expect("simulated phone");
    let mut device = FastbootDevice::new(
        phone,
        FastbootConfig {
            fetch_allow: FetchAllow::All,
            ..FastbootConfig::default()
        },
    );
    let (host, mut end, control) = memory::pair("sim-phone");
    let served = thread::spawn(move || device.serve(&mut end));
    let mut client = Fastboot::new(Box::new(host) as Box<dyn Transport>);
    let options = FlashOptions {
        slot: SlotChoice::Slot("a".into()),
        ..FlashOptions::default()
    };
    client
        .flash_image("system", &mut File::open(&sparse).unwrap(), &options)
        .expect("flash");
    let reader = FetchReader {
        client,
        partition: "system_a".into(),
    };
    let (reader, on_phone) = hash_file_in_erofs(reader, CLIENT, 64 * MIB);
    let on_phone = on_phone.expect("client on the phone");
    assert_eq!(on_phone.sha256.0, expected);
    println!(
        "erofs client verified through fetch: {} bytes in {} reads for a {}-byte file in a \
         {}-byte partition",
        on_phone.bytes_read,
        on_phone.reads,
        on_phone.size,
        64 * MIB
    );
    assert!(
        on_phone.bytes_read < on_phone.size + 64 * 1024,
        "read {} bytes for a {}-byte client",
        on_phone.bytes_read,
        on_phone.size
    );
    let (reader, missing) = hash_file_in_erofs(reader, "/system/priv-app/Other.apk", 64 * MIB);
    assert!(
        matches!(missing, Err(ErofsFileError::NotFound { .. })),
        "{missing:?}"
    );

    // A phone that stops answering is a source failure, not a corrupt filesystem.
    control.cut();
    let (reader, cut) = hash_file_in_erofs(reader, CLIENT, 64 * MIB);
    assert!(matches!(cut, Err(ErofsFileError::Source(_))), "{cut:?}");
    drop(reader);
    let _ = served.join().expect("simulator thread");
}
