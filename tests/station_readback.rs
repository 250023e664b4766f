//! The pre-flight building blocks reused the way the orchestrator will: the demo 00EEA build is
//! flashed to a simulated fastboot phone through a `VerifiedStream` (proving the bytes sent are
//! the bytes checked), then the activation client is verified by reading back only the blocks
//! ext4 needs through fastboot `fetch:` — the generic `hash_file_in_ext4` over a `ReadAt` that
//! drives the fastboot client.

use std::io;
use std::path::Path;
use std::thread;

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
            StreamProof::AllBytesMatched(image.sha256()),
            "{}: the bytes sent must be the bytes pre-flight checked",
            step.partition
        );
    }

    let client_config = &batch.image_set.activation_client;
    let path = match &client_config.location {
        station::config::ClientLocation::Ext4File { path } => path.clone(),
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
