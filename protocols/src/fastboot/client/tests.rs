//! The client against a scripted fake device: a thread on the device end of an in-memory link
//! that expects literal commands and answers literal responses.

use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::*;
use crate::fastboot::command::FlashingAction;
use crate::fastboot::response::ResponseError;
use crate::transport::memory::{self, LinkControl, MemoryLink};
use crate::transport::{read_exact, TransportError};

const T: Duration = Duration::from_secs(5);

pub(crate) enum Step {
    /// The next packet from the host must be exactly these bytes.
    Expect(&'static [u8]),
    /// Send one packet.
    Send(Vec<u8>),
    /// Receive a data phase of this many bytes (kept for the test to check).
    Receive(usize),
    /// Stay silent this long (the host should time out first).
    Sleep(Duration),
    /// Send INFO lines until the host goes away.
    InfoForever,
}

use Step::*;

pub(crate) fn send(bytes: &[u8]) -> Step {
    Send(bytes.to_vec())
}

/// A device thread running `script`; it returns the data-phase bytes it received. It panics
/// (failing the test on join) when the host sends something unexpected.
pub(crate) fn scripted(script: Vec<Step>) -> (MemoryLink, JoinHandle<Vec<u8>>, LinkControl) {
    let (host, device, control) = memory::pair("fake");
    (host, play(device, script), control)
}

/// Run `script` on the device end of any link.
pub(crate) fn play<D: Transport + 'static>(
    mut device: D,
    script: Vec<Step>,
) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut received = Vec::new();
        let mut packet = vec![0u8; 4096];
        for step in script {
            match step {
                Expect(want) => {
                    let n = device.read_packet(&mut packet, T).expect("host command");
                    assert_eq!(
                        packet[..n].escape_ascii().to_string(),
                        want.escape_ascii().to_string()
                    );
                }
                Send(bytes) => {
                    if device.write(&bytes, T).is_err() {
                        break;
                    }
                }
                Receive(len) => {
                    let mut data = vec![0u8; len];
                    if read_exact(&mut device, &mut data, T).is_err() {
                        break;
                    }
                    received.extend_from_slice(&data);
                }
                Sleep(d) => thread::sleep(d),
                InfoForever => while device.write(b"INFOstill working", T).is_ok() {},
            }
        }
        // Keep the device end open until the host is done, like a phone that stays plugged.
        // The host closing its end ends this at once; the timeout only bounds a test that
        // forgets to, and must not be short: on a loaded machine a host can pause for hundreds
        // of milliseconds between two commands, and a device that left early made tests flaky.
        let mut sink = [0u8; 64];
        while !matches!(
            device.read_packet(&mut sink, T),
            Err(TransportError::Disconnected) | Err(TransportError::Timeout(_))
        ) {}
        received
    })
}

fn client<L: Transport>(link: L) -> Fastboot<L> {
    let mut fb = Fastboot::new(link);
    fb.options_mut().response_timeout = Duration::from_secs(2);
    fb
}

#[test]
fn getvar_returns_the_okay_text() {
    let (link, dev, _c) = scripted(vec![Expect(b"getvar:product"), send(b"OKAYsim-phone")]);
    let mut fb = client(link);
    assert_eq!(fb.getvar("product").unwrap(), "sim-phone");
    drop(fb);
    dev.join().unwrap();
}

#[test]
fn device_fail_carries_message_and_command() {
    let (link, dev, _c) = scripted(vec![
        Expect(b"getvar:nonexistent"),
        send(b"FAILUnknown variable"),
    ]);
    let mut fb = client(link);
    match fb.getvar("nonexistent").unwrap_err() {
        FastbootError::DeviceFail { command, message } => {
            assert_eq!(command, "getvar:nonexistent");
            assert_eq!(message, "Unknown variable");
        }
        other => panic!("{other:?}"),
    }
    drop(fb);
    dev.join().unwrap();
}

#[test]
fn garbage_is_a_protocol_violation() {
    let (link, dev, _c) = scripted(vec![Expect(b"getvar:product"), send(b"\x00\x01garbage")]);
    let mut fb = client(link);
    let err = fb.getvar("product").unwrap_err();
    assert!(
        matches!(
            &err,
            FastbootError::Protocol {
                violation: Violation::BadResponse(ResponseError::UnknownStatus { .. }),
                ..
            }
        ),
        "{err:?}"
    );
    drop(fb);
    dev.join().unwrap();
}

#[test]
fn over_long_response_is_a_protocol_violation() {
    let mut long = b"OKAY".to_vec();
    long.extend_from_slice(&[b'x'; 300]);
    let (link, dev, _c) = scripted(vec![Expect(b"getvar:product"), Send(long)]);
    let mut fb = client(link);
    let err = fb.getvar("product").unwrap_err();
    assert!(
        matches!(
            err,
            FastbootError::Protocol {
                violation: Violation::ResponseTooLong { len: 304 },
                ..
            }
        ),
        "{err:?}"
    );
    drop(fb);
    dev.join().unwrap();
}

#[test]
fn endless_info_stream_ends_in_an_error() {
    let (link, dev, _c) = scripted(vec![Expect(b"oem stress"), InfoForever]);
    let mut fb = client(link);
    fb.options_mut().max_messages = 500;
    let err = fb.oem("stress").unwrap_err();
    assert!(
        matches!(
            err,
            FastbootError::Protocol {
                violation: Violation::TooManyMessages { limit: 500 },
                ..
            }
        ),
        "{err:?}"
    );
    drop(fb);
    dev.join().unwrap();
}

#[test]
fn silent_device_times_out() {
    let (link, dev, _c) = scripted(vec![
        Expect(b"getvar:product"),
        Sleep(Duration::from_millis(400)),
    ]);
    let mut fb = client(link);
    fb.options_mut().response_timeout = Duration::from_millis(100);
    let err = fb.getvar("product").unwrap_err();
    assert!(
        matches!(&err, FastbootError::Timeout { command, .. } if command == "getvar:product"),
        "{err:?}"
    );
    drop(fb);
    dev.join().unwrap();
}

#[test]
fn info_lines_restart_the_response_timer() {
    // Five INFO lines 300 ms apart: 1.5 s in all, with a 1 s per-response timeout (wide
    // margins: the machine running the tests may be busy).
    let mut script = vec![Expect(b"flash:system_a")];
    for i in 0..5 {
        script.push(Sleep(Duration::from_millis(300)));
        script.push(Send(format!("INFOwriting {i}").into_bytes()));
    }
    script.push(send(b"OKAY"));
    let (link, dev, _c) = scripted(script);
    let mut fb = client(link);
    fb.options_mut().response_timeout = Duration::from_secs(1);
    let reply = fb.flash("system_a").unwrap();
    assert_eq!(reply.messages.len(), 5);
    assert_eq!(reply.messages[4], "writing 4");
    drop(fb);
    dev.join().unwrap();
}

#[test]
fn download_streams_exact_bytes_and_reports_progress() {
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let (link, dev, _c) = scripted(vec![
        Expect(b"download:002dc6c0"),
        send(b"DATA002dc6c0"),
        Receive(3_000_000),
        send(b"INFOchecking"),
        send(b"OKAY"),
    ]);
    let mut fb = client(link);
    fb.options_mut().chunk_size = 64 * 1024;
    let events = Arc::new(Mutex::new((0u64, Vec::<String>::new())));
    let seen = events.clone();
    fb.set_progress(Arc::new(move |e: ProgressEvent<'_>| {
        let mut s = seen.lock().unwrap();
        match e {
            ProgressEvent::Bytes { bytes } => s.0 += bytes,
            ProgressEvent::DeviceMessage { text } => s.1.push(text.to_string()),
            _ => {}
        }
    }));
    let reply = fb.download(&mut &data[..], 3_000_000).unwrap();
    assert_eq!(reply.messages, vec!["checking".to_string()]);
    drop(fb);
    assert_eq!(dev.join().unwrap(), data);
    let s = events.lock().unwrap();
    assert_eq!(s.0, 3_000_000);
    assert_eq!(s.1, vec!["checking".to_string()]);
}

#[test]
fn download_data_size_mismatch_is_refused_before_sending() {
    let (link, dev, c) = scripted(vec![Expect(b"download:00001000"), send(b"DATA00000800")]);
    let mut fb = client(link);
    let err = fb.download(&mut &[0u8; 0x1000][..], 0x1000).unwrap_err();
    assert!(
        matches!(
            err,
            FastbootError::Protocol {
                violation: Violation::DataSizeMismatch {
                    requested: 0x1000,
                    offered: 0x800
                },
                ..
            }
        ),
        "{err:?}"
    );
    // Only the command went out.
    assert_eq!(c.host_bytes_written(), 17);
    drop(fb);
    dev.join().unwrap();
}

#[test]
fn download_refused_by_device_is_a_device_fail() {
    let (link, dev, _c) = scripted(vec![
        Expect(b"download:10000000"),
        send(b"FAILdata too large"),
    ]);
    let mut fb = client(link);
    let mut source = std::io::repeat(0).take(0x1000_0000);
    let err = fb.download(&mut source, 0x1000_0000).unwrap_err();
    assert!(
        matches!(err, FastbootError::DeviceFail { ref message, .. } if message == "data too large")
    );
    drop(fb);
    dev.join().unwrap();
}

#[test]
fn disconnect_mid_download_is_typed() {
    let (link, dev, c) = scripted(vec![
        Expect(b"download:00400000"),
        send(b"DATA00400000"),
        Receive(0x40_0000),
    ]);
    c.cut_after_host_bytes(17 + 1_000_000);
    let mut fb = client(link);
    fb.options_mut().chunk_size = 256 * 1024;
    let err = fb
        .download(&mut std::io::repeat(0xa5).take(0x40_0000), 0x40_0000)
        .unwrap_err();
    assert!(err.is_disconnect(), "{err:?}");
    drop(fb);
    dev.join().unwrap();
}

#[test]
fn short_source_is_an_io_error_naming_the_shortfall() {
    let (link, dev, _c) = scripted(vec![Expect(b"download:00000010"), send(b"DATA00000010")]);
    let mut fb = client(link);
    let err = fb.download(&mut &[1u8; 10][..], 16).unwrap_err();
    assert!(matches!(err, FastbootError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("10 of 16"), "{err}");
    drop(fb);
    dev.join().unwrap();
}

#[test]
fn data_where_none_belongs_is_a_violation() {
    let (link, dev, _c) = scripted(vec![Expect(b"erase:cache"), send(b"DATA00000100")]);
    let mut fb = client(link);
    let err = fb.erase("cache").unwrap_err();
    assert!(matches!(
        err,
        FastbootError::Protocol {
            violation: Violation::UnexpectedData { size: 0x100 },
            ..
        }
    ));
    drop(fb);
    dev.join().unwrap();
}

#[test]
fn fetch_writes_the_offered_bytes_into_the_writer() {
    let payload: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
    let (link, dev, _c) = scripted(vec![
        Expect(b"fetch:boot_a:0x00001000:0x00001388"),
        send(b"DATA00001388"),
        Send(payload[..3000].to_vec()),
        Send(payload[3000..].to_vec()),
        send(b"OKAY"),
    ]);
    let mut fb = client(link);
    let mut out = Vec::new();
    assert_eq!(fb.fetch("boot_a", 0x1000, 5000, &mut out).unwrap(), 5000);
    assert_eq!(out, payload);
    drop(fb);
    dev.join().unwrap();
}

#[test]
fn fetch_with_a_different_data_size_is_refused() {
    let (link, dev, _c) = scripted(vec![
        Expect(b"fetch:boot_a:0x00000000:0x00001000"),
        send(b"DATA00002000"),
    ]);
    let mut fb = client(link);
    let err = fb.fetch("boot_a", 0, 0x1000, &mut Vec::new()).unwrap_err();
    assert!(matches!(
        err,
        FastbootError::Protocol {
            violation: Violation::DataSizeMismatch {
                requested: 0x1000,
                offered: 0x2000
            },
            ..
        }
    ));
    drop(fb);
    dev.join().unwrap();
}

#[test]
fn upload_streams_what_the_device_staged() {
    let (link, dev, _c) = scripted(vec![
        Expect(b"upload"),
        send(b"DATA00000005"),
        send(b"hello"),
        send(b"OKAY"),
    ]);
    let mut fb = client(link);
    let mut out = Vec::new();
    assert_eq!(fb.upload(&mut out).unwrap(), 5);
    assert_eq!(out, b"hello");
    drop(fb);
    dev.join().unwrap();
}

#[test]
fn getvar_all_splits_names_and_values() {
    let (link, dev, _c) = scripted(vec![
        Expect(b"getvar:all"),
        send(b"INFOproduct: sim"),
        send(b"INFOpartition-size:system_a: 0x40000000"),
        send(b"INFOhas-slot:system: yes"),
        send(b"INFOpartition-size:boot_b:0x6000000"),
        send(b"INFOcurrent-slot:a"),
        send(b"OKAY"),
    ]);
    let mut fb = client(link);
    let all = fb.getvar_all().unwrap();
    assert_eq!(
        all,
        vec![
            ("product".to_string(), "sim".to_string()),
            (
                "partition-size:system_a".to_string(),
                "0x40000000".to_string()
            ),
            ("has-slot:system".to_string(), "yes".to_string()),
            ("partition-size:boot_b".to_string(), "0x6000000".to_string()),
            ("current-slot".to_string(), "a".to_string()),
        ]
    );
    drop(fb);
    dev.join().unwrap();
}

#[test]
fn oem_captures_info_lines_and_zero_length_packets_are_ignored() {
    let (link, dev, _c) = scripted(vec![
        Expect(b"oem sha256 system_a"),
        send(b"INFOdeadbeef"),
        send(b""),
        send(b"TEXTraw"),
        send(b"OKAY"),
    ]);
    let mut fb = client(link);
    let reply = fb.oem("sha256 system_a").unwrap();
    assert_eq!(
        reply.messages,
        vec!["deadbeef".to_string(), "raw".to_string()]
    );
    drop(fb);
    dev.join().unwrap();
}

#[test]
fn over_long_command_is_refused_without_touching_the_link() {
    let (link, dev, c) = scripted(vec![]);
    let mut fb = client(link);
    let long = "x".repeat(70);
    assert!(matches!(
        fb.flash(&long).unwrap_err(),
        FastbootError::Command(crate::fastboot::command::CommandError::TooLong { .. })
    ));
    assert_eq!(c.host_bytes_written(), 0);
    drop(fb);
    dev.join().unwrap();
}

#[test]
fn download_with_streams_produced_bytes_and_checks_the_count() {
    let (link, dev, _c) = scripted(vec![
        Expect(b"download:00000006"),
        send(b"DATA00000006"),
        Receive(6),
        send(b"OKAY"),
        Expect(b"download:00000006"),
        send(b"DATA00000006"),
    ]);
    let mut fb = client(link);
    fb.options_mut().chunk_size = 4096;
    fb.download_with(6, &mut |w| {
        w.write_all(b"abc")?;
        w.write_all(b"def")
    })
    .unwrap();
    let err = fb
        .download_with(6, &mut |w| w.write_all(b"abcdefg"))
        .unwrap_err();
    assert!(matches!(err, FastbootError::Io { .. }), "{err:?}");
    drop(fb);
    assert_eq!(dev.join().unwrap(), b"abcdef");
}

#[test]
fn works_over_fastboot_tcp_framing() {
    use crate::transport::tcp::TcpLink;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let image: Vec<u8> = (0..2_500_000u32).map(|i| (i % 251) as u8).collect();
    let back = image[..4096].to_vec();
    let device = thread::spawn(move || {
        let link = TcpLink::accept(&listener, T).unwrap();
        play(
            link,
            vec![
                Expect(b"getvar:product"),
                send(b"OKAYsim"),
                Expect(b"download:002625a0"),
                send(b"DATA002625a0"),
                Receive(2_500_000),
                send(b"OKAY"),
                Expect(b"fetch:boot:0x00000000:0x00001000"),
                send(b"DATA00001000"),
                Send(back[..1000].to_vec()),
                Send(back[1000..].to_vec()),
                send(b"OKAY"),
            ],
        )
        .join()
        .unwrap()
    });
    let mut fb = client(TcpLink::connect(&addr, T).unwrap());
    assert_eq!(fb.getvar("product").unwrap(), "sim");
    fb.download(&mut &image[..], 2_500_000).unwrap();
    let mut out = Vec::new();
    fb.fetch("boot", 0, 4096, &mut out).unwrap();
    assert_eq!(out, image[..4096]);
    drop(fb);
    assert_eq!(device.join().unwrap(), image);
}

#[test]
fn command_deadline_stops_a_trickle_of_info_lines() {
    let mut script = vec![Expect(b"erase:userdata")];
    for _ in 0..40 {
        script.push(Sleep(Duration::from_millis(20)));
        script.push(send(b"INFOerasing"));
    }
    let (link, dev, _c) = scripted(script);
    let mut fb = client(link);
    fb.options_mut().command_deadline = Some(Duration::from_millis(200));
    let err = fb.erase("userdata").unwrap_err();
    assert!(
        matches!(err, FastbootError::Timeout { timeout, .. } if timeout == Duration::from_millis(200)),
        "{err:?}"
    );
    drop(fb);
    dev.join().unwrap();
}

/// An INFO line every `every`, for much longer than any deadline in these tests.
fn info_every(every: Duration) -> Vec<Step> {
    (0..250)
        .flat_map(|_| [Sleep(every), send(b"INFOstill working")])
        .collect()
}

#[test]
fn command_deadline_holds_however_many_info_lines_keep_coming() {
    let mut script = vec![Expect(b"getvar:product")];
    script.extend(info_every(Duration::from_millis(20)));
    let (link, dev, _c) = scripted(script);
    let mut fb = client(link);
    fb.options_mut().command_deadline = Some(Duration::from_millis(300));
    let err = fb.getvar("product").unwrap_err();
    assert!(
        matches!(err, FastbootError::Timeout { timeout, .. } if timeout == Duration::from_millis(300)),
        "{err:?}"
    );
    drop(fb);
    dev.join().unwrap();
}

#[test]
fn a_storage_write_may_be_silent_until_the_write_deadline_and_no_longer() {
    let (link, dev, _c) = scripted(vec![
        Expect(b"flash:boot_a"),
        // Longer than the silence allowed to other commands.
        Sleep(Duration::from_millis(400)),
        send(b"OKAY"),
        Expect(b"getvar:product"),
        Sleep(Duration::from_secs(1)),
        send(b"OKAYlate"),
    ]);
    let mut fb = client(link);
    fb.options_mut().response_timeout = Duration::from_millis(200);
    fb.options_mut().command_deadline = Some(Duration::from_millis(200));
    fb.options_mut().write_deadline = Some(Duration::from_secs(3));
    fb.flash("boot_a").unwrap();
    let err = fb.getvar("product").unwrap_err();
    assert!(
        matches!(err, FastbootError::Timeout { timeout, .. } if timeout == Duration::from_millis(200)),
        "{err:?}"
    );
    drop(fb);
    dev.join().unwrap();

    let mut script = vec![Expect(b"erase:userdata")];
    script.extend(info_every(Duration::from_millis(20)));
    let (link, dev, _c) = scripted(script);
    let mut fb = client(link);
    fb.options_mut().write_deadline = Some(Duration::from_millis(300));
    let err = fb.erase("userdata").unwrap_err();
    assert!(
        matches!(err, FastbootError::Timeout { timeout, .. } if timeout == Duration::from_millis(300)),
        "{err:?}"
    );
    drop(fb);
    dev.join().unwrap();
}

#[test]
fn answer_bounds_give_storage_writes_the_write_deadline() {
    let options = ClientOptions {
        response_timeout: Duration::from_secs(3),
        command_deadline: Some(Duration::from_secs(5)),
        write_deadline: Some(Duration::from_secs(600)),
        ..ClientOptions::default()
    };
    let ordinary = AnswerBounds {
        silence: Duration::from_secs(3),
        whole: Some(Duration::from_secs(5)),
    };
    let write = AnswerBounds {
        silence: Duration::from_secs(600),
        whole: Some(Duration::from_secs(600)),
    };
    for (command, bounds) in [
        (Command::Flash("system_a"), write),
        (Command::Erase("userdata"), write),
        (
            Command::UpdateSuper {
                partition: "super",
                wipe: false,
            },
            write,
        ),
        (Command::Flashing(FlashingAction::Unlock), write),
        (
            Command::Flashing(FlashingAction::GetUnlockAbility),
            ordinary,
        ),
        (Command::Download(0x1000), ordinary),
        (Command::GetVar(Variable::Product), ordinary),
        (Command::SetActive("a"), ordinary),
        (Command::Oem("device-info"), ordinary),
    ] {
        assert_eq!(options.answer_bounds(&command), bounds, "{command}");
    }
    // Without a write deadline, writes are bound like the rest.
    let plain = ClientOptions {
        write_deadline: None,
        ..options
    };
    assert_eq!(plain.answer_bounds(&Command::Flash("boot")), ordinary);
}
