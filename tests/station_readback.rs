//! The pre-flight building blocks reused the way the orchestrator will: the demo 00EEA build is
//! flashed to a simulated fastboot phone through a `VerifiedStream` from the station's private
//! copy made at pre-flight (proving the bytes sent are the bytes checked), then the activation client is verified by reading back only the blocks
//! ext4 needs through fastboot `fetch:` — the generic `hash_file_in_ext4` over a `ReadAt` that
//! drives the fastboot client.

use std::io;
use std::path::Path;
use std::thread;

use protocols::external_tool;
use protocols::fastboot::{Fastboot, FastbootError, FlashOptions, SlotChoice};
use protocols::sim::{FastbootConfig, FastbootDevice, FetchAllow, Phone};
use protocols::transport::{memory, Transport};
use station::ext4::hash_file_in_ext4;
use station::preflight::{load_and_check, MAX_CLIENT_SIZE};
use station::read_at::ReadAt;
use station::verified_image::StreamProof;

const MIB: u64 = 1 << 20;

/// A phone partition as a random-access source: each read is one (or, past `max-fetch-size`,
/// several) `fetch:` commands.
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
            .map_err(|e| match e {
                FastbootError::Disconnected { .. } => {
                    io::Error::new(io::ErrorKind::ConnectionAborted, e)
                }
                FastbootError::Timeout { .. } => io::Error::new(io::ErrorKind::TimedOut, e),
                other => io::Error::other(other),
            })?;
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
fn flash_through_verified_streams_then_verify_the_client_by_fetching_only_ext4_blocks() {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/demo");
    let (_, batch) = load_and_check(
        &demo.join("station.yaml"),
        &demo.join("work-orders/WO-DEMO-EEA.yaml"),
    )
    .expect("pre-flight");
    let storage = tempfile::tempdir().unwrap();
    let phone = Phone::builder()
        .product("flashgate_sim")
        .serial("FGREADBACK1")
        .slotted_partition("boot", 16 * MIB)
        .slotted_partition("system", 64 * MIB)
        .slotted_partition("vbmeta", MIB)
        .storage_dir(storage.path())
        .build()
        .expect("simulated phone");
    let mut device = FastbootDevice::new(
        phone.clone(),
        FastbootConfig {
            fetch_allow: FetchAllow::All,
            ..FastbootConfig::default()
        },
    );
    let (host, mut end, _control) = memory::pair("sim-phone");
    let served = thread::spawn(move || device.serve(&mut end));
    let mut client = Fastboot::new(Box::new(host) as Box<dyn Transport>);

    let plan = batch.image_set.fastboot.as_ref().expect("fastboot plan");
    let options = FlashOptions {
        slot: SlotChoice::Slot("a".into()),
        ..FlashOptions::default()
    };
    for step in &plan.steps {
        let image = batch.image(&step.file).expect("checked image");
        let mut stream = image.open_stream().expect("unchanged since pre-flight");
        client
            .flash_image(&step.partition, &mut stream, &options)
            .unwrap_or_else(|e| panic!("flash {}: {e}", step.partition));
        assert_eq!(
            stream.proof(),
            StreamProof::FromSealedCopy(image.sha256()),
            "{}: the bytes sent must be the bytes pre-flight checked",
            step.partition
        );
    }

    let client_config = &batch.image_set.activation_client;
    let path = match &client_config.location {
        station::config::ClientLocation::File {
            logical_partition: None,
            path,
        } => path.clone(),
        other => panic!("demo client is inside ext4, not {other}"),
    };
    let reader = FetchReader {
        client,
        partition: format!("{}_a", client_config.partition),
    };
    let (reader, result) = hash_file_in_ext4(reader, &path, MAX_CLIENT_SIZE);
    let digest = result.expect("client found on the phone");
    assert_eq!(digest.sha256, client_config.sha256);
    println!(
        "client verified through fetch: {} bytes in {} reads from a {}-byte partition",
        digest.bytes_read,
        digest.reads,
        64 * MIB
    );
    assert!(
        digest.bytes_read < MIB,
        "read {} bytes of a {}-byte partition",
        digest.bytes_read,
        64 * MIB
    );
    // The same client object keeps working after verification.
    let mut client = reader.client;
    assert_eq!(
        client.getvar("product").expect("getvar").as_str(),
        "flashgate_sim"
    );
    drop(client);
    served.join().expect("simulator thread");
}

/// The number after `label` in debugfs output.
fn debugfs_number(image: &Path, request: &str, label: &str, radix: u32) -> u64 {
    let out = external_tool::command("debugfs")
        .args(["-R", request])
        .arg(image)
        .output()
        .expect("running debugfs");
    let text = String::from_utf8_lossy(&out.stdout);
    let at = text
        .find(label)
        .unwrap_or_else(|| panic!("{label} in {text}"))
        + label.len();
    let digits: String = text[at..]
        .trim_start()
        .chars()
        .take_while(|c| c.is_digit(radix))
        .collect();
    u64::from_str_radix(&digits, radix).unwrap()
}

/// The two hostile filesystems that took a station down through ext4-view (one allocated
/// without bound, one panicked), read back from a phone the way verification reads them: each
/// is a typed error after a handful of fetches, and the phone's client keeps working.
#[test]
fn hostile_filesystems_read_back_from_a_phone_are_typed_errors_after_a_few_fetches() {
    const CLIENT: &str = "/priv-app/ActivationClient/ActivationClient.apk";
    let image_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/demo/images/00WW/system.img");
    let clean = std::fs::read(&image_path).unwrap();
    let le32 = |image: &mut Vec<u8>, at: usize, v: u32| {
        image[at..at + 4].copy_from_slice(&v.to_le_bytes())
    };
    let le16 = |image: &mut Vec<u8>, at: usize, v: u16| {
        image[at..at + 2].copy_from_slice(&v.to_le_bytes())
    };
    // Without metadata_csum the edits need no checksum fixing: the structure checks refuse them.
    let mut base = clean.clone();
    let ro_compat = u32::from_le_bytes(base[1024 + 0x64..1024 + 0x68].try_into().unwrap());
    le32(&mut base, 1024 + 0x64, ro_compat & !0x400);

    let mut zero_blocks_per_group = base.clone();
    le32(&mut zero_blocks_per_group, 1024 + 0x20, 0);

    let mut self_index = base.clone();
    let inode = debugfs_number(&image_path, &format!("stat {CLIENT}"), "Inode:", 10);
    let block = debugfs_number(
        &image_path,
        &format!("imap <{inode}>"),
        "located at block",
        10,
    );
    let offset = debugfs_number(&image_path, &format!("imap <{inode}>"), "offset 0x", 16);
    let free = debugfs_number(&image_path, "ffb 1 100", "Free blocks found:", 10) as usize;
    let root = (block * 4096 + offset) as usize + 0x28;
    for (at, max) in [(root, 4u16), (free * 4096, 340)] {
        // A depth-1 index whose one entry points at block `free`, which is the same node.
        le16(&mut self_index, at, 0xF30A);
        le16(&mut self_index, at + 2, 1);
        le16(&mut self_index, at + 4, max);
        le16(&mut self_index, at + 6, 1);
        le32(&mut self_index, at + 12, 0);
        le32(&mut self_index, at + 16, free as u32);
        le16(&mut self_index, at + 20, 0);
    }

    for (name, image, expected) in [
        (
            "s_blocks_per_group = 0",
            zero_blocks_per_group,
            "s_blocks_per_group is 0",
        ),
        (
            "self-pointing extent index",
            self_index,
            "depth 1 where its parent index requires 0",
        ),
    ] {
        let storage = tempfile::tempdir().unwrap();
        let phone = Phone::builder()
            .product("flashgate_sim")
            .serial("FGHOSTILE1")
            .slotted_partition("system", 4 * MIB)
            .storage_dir(storage.path())
            .build()
            .expect("simulated phone");
        phone.write_partition("system_a", 0, &image).unwrap();
        let mut device = FastbootDevice::new(
            phone.clone(),
            FastbootConfig {
                fetch_allow: FetchAllow::All,
                ..FastbootConfig::default()
            },
        );
        let (host, mut end, _control) = memory::pair("sim-phone");
        let served = thread::spawn(move || device.serve(&mut end));
        let reader = station::read_at::CountingReader::new(FetchReader {
            client: Fastboot::new(Box::new(host) as Box<dyn Transport>),
            partition: "system_a".into(),
        });
        let (reader, result) = hash_file_in_ext4(reader, CLIENT, MAX_CLIENT_SIZE);
        match result {
            Err(station::ext4::Ext4FileError::Corrupt { detail, .. }) => {
                assert!(detail.contains(expected), "{name}: {detail}")
            }
            other => panic!("{name}: expected a Corrupt error, got {other:?}"),
        }
        assert!(
            reader.reads() < 16 && reader.bytes_read() < 64 * 1024,
            "{name}: {} fetches, {} bytes",
            reader.reads(),
            reader.bytes_read()
        );
        let mut client = reader.into_inner().client;
        assert_eq!(client.getvar("product").unwrap().as_str(), "flashgate_sim");
        drop(client);
        served.join().expect("simulator thread");
    }
}
