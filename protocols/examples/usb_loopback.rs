//! Loopback checks of the real USB path: a FunctionFS gadget (device end) and a libusb host
//! (`UsbLink`) that exercises it through the kernel's USB stack. Run by `tests/usbvm/run`
//! inside a VM with `dummy_hcd`; useless without a USB device controller.
//!
//! ```text
//! usb_loopback device DIR KIND [GADGET_DIR UDC]   # serve on a mounted functionfs instance;
//!                                            # KIND: loopback | fastboot | edl (interface)
//! usb_loopback host PORT_PATH [MiB]          # run every check against it, print one line each
//! ```
//! The host drives the device with short text commands (one packet each):
//! `echo` (next packet comes back, with a ZLP if it is a whole number of packets), `sink N` /
//! `source N` (N pattern bytes to / from the device), `halt-in` / `halt-out` (stall an
//! endpoint), `expect-timeout MS` (the device's own read must time out), `unbind-sink N` /
//! `unbind-source N` (the device detaches from the bus mid-transfer and comes back),
//! `status` (what the device saw).

#[cfg(target_os = "linux")]
fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("device") if args.len() >= 2 => device::run(&args[1..]),
        Some("host") if args.len() >= 2 => host::run(&args[1..]),
        _ => Err("usage: usb_loopback device DIR loopback|fastboot|edl [GADGET_DIR UDC] | host PORT_PATH [MiB]".into()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("usb_loopback: FAILED: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("usb_loopback needs Linux (FunctionFS)");
}

/// Byte `i` of the test pattern (both ends generate it; nothing else is exchanged).
fn pattern(i: u64) -> u8 {
    let x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (x >> 56) as u8 ^ (i as u8)
}

fn fill(offset: u64, buf: &mut [u8]) {
    for (k, b) in buf.iter_mut().enumerate() {
        *b = pattern(offset + k as u64);
    }
}

fn check(offset: u64, buf: &[u8]) -> Option<u64> {
    buf.iter()
        .enumerate()
        .find(|(k, b)| **b != pattern(offset + *k as u64))
        .map(|(k, _)| offset + k as u64)
}

#[cfg(target_os = "linux")]
mod device {
    use std::path::Path;
    use std::time::Duration;

    use flashgate_protocols::transport::functionfs::{
        self, descriptors, FunctionFsLink, Gadget, Next, Personality,
    };
    use flashgate_protocols::transport::{read_exact, Transport, TransportError};

    const T: Duration = Duration::from_secs(20);

    pub fn run(args: &[String]) -> Result<(), String> {
        let dir = Path::new(&args[0]);
        let gadget = match (args.get(2), args.get(3)) {
            (Some(g), Some(udc)) => Some(Gadget::new(Path::new(g), udc)),
            _ => None,
        };
        // `fastboot`/`edl` serve the loopback commands behind that personality's interface,
        // so discovery (`flashgate devices`) can be checked before a simulated phone serves it.
        let loopback = match args.get(1).map(String::as_str) {
            Some("fastboot") => descriptors::fastboot(),
            Some("edl") => descriptors::edl(),
            _ => {
                let mut d = descriptors::fastboot();
                d.interface.protocol = 0x7f; // vendor-specific: no fastboot client picks it up
                d.interface_name = "flashgate loopback".into();
                d
            }
        };
        let mut seen = Vec::<String>::new();
        // The identity stays what the set-up script wrote in configfs.
        let personality = Personality {
            descriptors: loopback,
            identity: functionfs::DeviceIdentity {
                vendor_id: 0,
                product_id: 0,
                manufacturer: String::new(),
                product: String::new(),
                serial: String::new(),
            },
            terminate_whole_packets: false,
        };
        functionfs::serve(dir, &personality, gadget.as_ref(), |link, session| {
            eprintln!("device: session {session} on {}", link.describe());
            match serve_session(link, gadget.as_ref(), &mut seen) {
                Ok(next) => next,
                Err(e) => {
                    eprintln!("device: session {session} ended: {e}");
                    seen.push(format!("session-{session}-{}", short(&e)));
                    Next::Continue
                }
            }
        })
        .map_err(|e| e.to_string())
    }

    fn short(e: &TransportError) -> &'static str {
        match e {
            TransportError::Disconnected => "disconnected",
            TransportError::Timeout(_) => "timeout",
            TransportError::Stall => "stall",
            TransportError::Overflow { .. } => "overflow",
            _ => "error",
        }
    }

    fn reply(link: &mut FunctionFsLink, text: &str) -> Result<(), TransportError> {
        link.write(text.as_bytes(), T)
    }

    fn serve_session(
        link: &mut FunctionFsLink,
        gadget: Option<&Gadget>,
        seen: &mut Vec<String>,
    ) -> Result<Next, TransportError> {
        let mut cmd = [0u8; 512];
        loop {
            match command(link, gadget, seen, &mut cmd) {
                Ok(None) => {}
                Ok(Some(next)) => return Ok(next),
                Err(e) if e.is_disconnect() => return Err(e),
                // A failed command (an overflow the host provoked, a timeout) is reported and
                // the device keeps serving, like firmware would.
                Err(e) => eprintln!("device: command failed: {e}"),
            }
        }
    }

    fn command(
        link: &mut FunctionFsLink,
        gadget: Option<&Gadget>,
        seen: &mut Vec<String>,
        cmd: &mut [u8; 512],
    ) -> Result<Option<Next>, TransportError> {
        {
            let n = link.read_packet(cmd, Duration::from_secs(3600))?;
            let text = String::from_utf8_lossy(&cmd[..n]).to_string();
            let mut words = text.split_whitespace();
            let verb = words.next().unwrap_or("");
            let arg: u64 = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
            match verb {
                "echo" => {
                    let mut buf = vec![0u8; functionfs::MAX_REQUEST];
                    let n = link.read_packet(&mut buf, T)?;
                    link.write(&buf[..n], T)?;
                    let mps = link.max_packet_size().unwrap_or(512);
                    if n > 0 && n.is_multiple_of(mps) {
                        link.write_zero_length(T)?;
                    }
                }
                "sink" => {
                    let got = sink(link, arg, None)?;
                    reply(link, &got)?;
                }
                "source" => source(link, arg, None)?,
                "halt-in" => {
                    reply(link, "OKAY")?;
                    link.halt_in()?;
                }
                "halt-out" => {
                    reply(link, "OKAY")?;
                    link.halt_out()?;
                }
                "expect-timeout" => {
                    let mut buf = [0u8; 512];
                    let r = link.read_packet(&mut buf, Duration::from_millis(arg));
                    match r {
                        Err(TransportError::Timeout(_)) => reply(link, "OKAY timed out")?,
                        other => reply(link, &format!("FAIL {other:?}"))?,
                    }
                }
                "unbind-sink" => {
                    let Some(g) = gadget else {
                        return reply(link, "FAIL no gadget dir").map(|_| None);
                    };
                    reply(link, "OKAY")?;
                    let r = sink(link, arg, Some(g));
                    seen.push(format!(
                        "unbind-sink:{}",
                        r.as_ref().err().map(short).unwrap_or("completed")
                    ));
                    return Ok(Some(Next::Reenumerate {
                        gone_for: Duration::ZERO,
                    }));
                }
                "unbind-source" => {
                    let Some(g) = gadget else {
                        return reply(link, "FAIL no gadget dir").map(|_| None);
                    };
                    let r = source(link, arg, Some(g));
                    seen.push(format!(
                        "unbind-source:{}",
                        r.err().as_ref().map(short).unwrap_or("completed")
                    ));
                    return Ok(Some(Next::Reenumerate {
                        gone_for: Duration::ZERO,
                    }));
                }
                "status" => reply(link, &format!("OKAY {}", seen.join(" ")))?,
                "mps" => reply(
                    link,
                    &format!("OKAY {}", link.max_packet_size().unwrap_or(0)),
                )?,
                _ => reply(link, &format!("FAIL unknown command {text:?}"))?,
            }
        }
        Ok(None)
    }

    /// Receive `total` pattern bytes; with `unbind`, detach from the bus after the first MiB.
    fn sink(
        link: &mut FunctionFsLink,
        total: u64,
        unbind: Option<&Gadget>,
    ) -> Result<String, TransportError> {
        let mut buf = vec![0u8; 1 << 20];
        let mut done = 0u64;
        while done < total {
            let want = (total - done).min(buf.len() as u64) as usize;
            read_exact(link, &mut buf[..want], T)?;
            if let Some(bad) = super::check(done, &buf[..want]) {
                return Ok(format!("FAIL pattern mismatch at byte {bad}"));
            }
            done += want as u64;
            if let Some(g) = unbind {
                g.unbind().map_err(TransportError::Io)?;
            }
        }
        Ok(format!("OKAY {done}"))
    }

    fn source(
        link: &mut FunctionFsLink,
        total: u64,
        unbind: Option<&Gadget>,
    ) -> Result<(), TransportError> {
        let mut buf = vec![0u8; 1 << 20];
        let mut done = 0u64;
        while done < total {
            let n = (total - done).min(buf.len() as u64) as usize;
            super::fill(done, &mut buf[..n]);
            link.write(&buf[..n], T)?;
            done += n as u64;
            if let Some(g) = unbind {
                g.unbind().map_err(TransportError::Io)?;
            }
        }
        Ok(())
    }
}

#[cfg(target_os = "linux")]
mod host {
    use std::time::{Duration, Instant};

    use flashgate_protocols::transport::usb::{DeviceSelector, InterfaceMatch, SendPath, UsbLink};
    use flashgate_protocols::transport::{read_exact, Transport, TransportError};

    const T: Duration = Duration::from_secs(20);
    const LOOPBACK: InterfaceMatch = InterfaceMatch {
        vendor_id: None,
        class: 0xff,
        subclass: 0x42,
        protocols: &[0x7f],
    };

    fn open(port: &str, within: Duration) -> Result<UsbLink, String> {
        let deadline = Instant::now() + within;
        loop {
            match UsbLink::open(&DeviceSelector::PortPath(port.to_string()), &LOOPBACK) {
                Ok(link) => return Ok(link),
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!("cannot open loopback device at {port}: {e}"))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    fn command(link: &mut UsbLink, text: &str) -> Result<String, String> {
        link.write(text.as_bytes(), T)
            .map_err(|e| format!("`{text}`: {e}"))?;
        response(link, text)
    }

    fn response(link: &mut UsbLink, what: &str) -> Result<String, String> {
        let mut buf = [0u8; 512];
        let n = link
            .read_packet(&mut buf, T)
            .map_err(|e| format!("`{what}` reply: {e}"))?;
        let reply = String::from_utf8_lossy(&buf[..n]).to_string();
        if !reply.starts_with("OKAY") {
            return Err(format!("`{what}`: device answered {reply:?}"));
        }
        Ok(reply)
    }

    fn echo(link: &mut UsbLink, len: usize, mps: usize) -> Result<(), String> {
        link.write(b"echo", T).map_err(|e| e.to_string())?;
        let mut data = vec![0u8; len];
        super::fill(len as u64, &mut data);
        link.write(&data, T)
            .map_err(|e| format!("echo {len}: {e}"))?;
        // The device reads with a large buffer, so it needs the transfer terminated.
        if len.is_multiple_of(mps) {
            link.write_zero_length(T)
                .map_err(|e| format!("echo {len} ZLP: {e}"))?;
        }
        let mut back = vec![0u8; 256 * 1024];
        let n = link
            .read_packet(&mut back, T)
            .map_err(|e| format!("echo {len} back: {e}"))?;
        if back[..n] != data[..] {
            return Err(format!("echo {len}: got {n} bytes back, different"));
        }
        Ok(())
    }

    /// Send `total` pattern bytes for the device to check: with `write` (copied into the
    /// kernel), or filled into the buffer the link lends (`send_buffer`: usbfs memory, sent in
    /// place).
    fn sink(link: &mut UsbLink, total: u64, lent: bool) -> Result<f64, String> {
        link.write(format!("sink {total}").as_bytes(), T)
            .map_err(|e| e.to_string())?;
        let start = Instant::now();
        if lent {
            let mut out = link.send_buffer(1 << 20);
            let mut done = 0u64;
            while done < total {
                let n = (total - done).min(out.buffer().len() as u64) as usize;
                super::fill(done, &mut out.buffer()[..n]);
                out.send(n, T)
                    .map_err(|e| format!("sink (lent buffer) at {done}: {e}"))?;
                done += n as u64;
            }
        } else {
            let mut buf = vec![0u8; 1 << 20];
            let mut done = 0u64;
            while done < total {
                let n = (total - done).min(buf.len() as u64) as usize;
                super::fill(done, &mut buf[..n]);
                link.write(&buf[..n], T)
                    .map_err(|e| format!("sink at {done}: {e}"))?;
                done += n as u64;
            }
        }
        let reply = response(link, "sink")?;
        if reply != format!("OKAY {total}") {
            return Err(format!("sink: device answered {reply:?}"));
        }
        Ok(total as f64 / start.elapsed().as_secs_f64() / 1e6)
    }

    fn source(link: &mut UsbLink, total: u64, chunk: usize) -> Result<f64, String> {
        link.write(format!("source {total}").as_bytes(), T)
            .map_err(|e| e.to_string())?;
        let start = Instant::now();
        let mut buf = vec![0u8; chunk];
        let mut done = 0u64;
        while done < total {
            let n = (total - done).min(buf.len() as u64) as usize;
            read_exact(link, &mut buf[..n], T).map_err(|e| format!("source at {done}: {e}"))?;
            if let Some(bad) = super::check(done, &buf[..n]) {
                return Err(format!("source: pattern mismatch at byte {bad}"));
            }
            done += n as u64;
        }
        Ok(total as f64 / start.elapsed().as_secs_f64() / 1e6)
    }

    fn expect_err(
        what: &str,
        r: Result<impl std::fmt::Debug, TransportError>,
        ok: impl Fn(&TransportError) -> bool,
    ) -> Result<String, String> {
        match r {
            Err(e) if ok(&e) => Ok(format!("{e}")),
            other => Err(format!("{what}: expected an error, got {other:?}")),
        }
    }

    pub fn run(args: &[String]) -> Result<(), String> {
        let port = &args[0];
        let mib: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(16);
        let mut link = open(port, Duration::from_secs(10))?;
        let mps = link.max_packet_size().unwrap_or(512);
        let device_mps = command(&mut link, "mps")?;
        println!(
            "ok open {} wMaxPacketSize host={mps} device={}",
            link.describe(),
            &device_mps[5..]
        );

        for len in [
            1,
            63,
            64,
            511,
            512,
            513,
            1023,
            1024,
            4096,
            65536,
            65537,
            256 * 1024 - 1,
        ] {
            echo(&mut link, len, mps)?;
        }
        println!("ok echo 1..256KiB (ZLP after whole-packet transfers both ways)");

        // A device packet bigger than the host's buffer is an overflow, never a silent split.
        link.write(b"echo", T).map_err(|e| e.to_string())?;
        link.write(&[7u8; 100], T).map_err(|e| e.to_string())?;
        let mut small = [0u8; 10];
        let e = expect_err("overflow", link.read_packet(&mut small, T), |e| {
            matches!(e, TransportError::Overflow { .. })
        })?;
        println!("ok overflow: 100-byte packet into a 10-byte buffer -> {e}");

        // read_stream with odd buffer sizes keeps the rest of a packet for the next call.
        link.write(b"source 1000", T).map_err(|e| e.to_string())?;
        let mut got = Vec::new();
        while got.len() < 1000 {
            let mut b = [0u8; 7];
            let n = link.read_stream(&mut b, T).map_err(|e| e.to_string())?;
            got.extend_from_slice(&b[..n]);
        }
        if let Some(bad) = super::check(0, &got) {
            return Err(format!("read_stream in 7-byte steps: mismatch at {bad}"));
        }
        println!("ok read_stream in 7-byte steps across 512-byte packets");

        let e = expect_err(
            "host timeout",
            link.read_packet(&mut small, Duration::from_millis(300)),
            |e| matches!(e, TransportError::Timeout(_)),
        )?;
        println!("ok host read timeout: {e}");
        let r = command(&mut link, "expect-timeout 300")?;
        println!("ok device read timeout: {r}");
        echo(&mut link, 4096, mps)?;
        println!("ok link still works after both timeouts");

        // A UDC refuses to halt an IN endpoint that still has a request queued (dummy_hcd:
        // -EAGAIN, which FunctionFS passes on); the device side repeats its halt until it
        // takes. Should the host's read still come first, ask again and say so: that is the
        // device side's timing, not the host transport under test.
        let mut halted = None;
        for attempt in 1..=3 {
            command(&mut link, "halt-in")?;
            match link.read_packet(&mut small, Duration::from_secs(3)) {
                Err(TransportError::Timeout(_)) if attempt < 3 => {
                    println!("note: the device's IN halt did not take (attempt {attempt}); again");
                }
                r => {
                    halted = Some(expect_err("halt-in", r, |e| {
                        matches!(e, TransportError::Stall)
                    })?);
                    break;
                }
            }
        }
        let e = halted.ok_or("halt-in: no attempt reached the host")?;
        echo(&mut link, 1000, mps)?;
        println!("ok device stalls IN: host gets `{e}`, clears the halt, link works again");

        command(&mut link, "halt-out")?;
        std::thread::sleep(Duration::from_millis(100));
        let e = expect_err("halt-out", link.write(b"echo", T), |e| {
            matches!(e, TransportError::Stall)
        })?;
        echo(&mut link, 1000, mps)?;
        println!("ok device stalls OUT: host gets `{e}`, clears the halt, link works again");

        let total = mib << 20;
        let down = sink(&mut link, total, false)?;
        if link.send_path() != SendPath::NotYet {
            return Err(format!(
                "write alone set the send path: {:?}",
                link.send_path()
            ));
        }
        let down_lent = sink(&mut link, total, true)?;
        // dummy_hcd maps usbfs memory (kmalloc'ed, as for any controller without DMA): the
        // zero-copy path must be the one taken here, and the device checked every byte.
        if link.send_path() != SendPath::ZeroCopy {
            return Err(format!(
                "send_buffer on {}: expected the zero-copy path (usbfs memory), got {:?}",
                link.describe(),
                link.send_path()
            ));
        }
        let up = source(&mut link, total, 1 << 20)?;
        let up_odd = source(&mut link, 4 << 20, 100_000)?;
        println!(
            "ok bulk {mib} MiB: host->device {down:.1} MB/s copied, {down_lent:.1} MB/s from the \
             lent buffer (send path {:?}), device->host {up:.1} MB/s (odd 100000-byte reads \
             {up_odd:.1} MB/s)",
            link.send_path()
        );

        // The device goes away while the link holds usbfs memory: the send fails as a
        // disconnect, and dropping the link frees the memory of a gone device.
        command(&mut link, "unbind-sink 8388608")?;
        let mut r = Ok(());
        {
            let mut out = link.send_buffer(1 << 20);
            for i in 0..8u64 {
                let n = out.buffer().len();
                super::fill(i * n as u64, out.buffer());
                r = out.send(n, Duration::from_secs(5));
                if r.is_err() {
                    break;
                }
            }
        }
        let e = expect_err("unbind mid-write", r, |e| e.is_disconnect())?;
        drop(link);
        println!("ok gadget unbound mid-write (lent buffer): host gets `{e}`");
        let mut buf = vec![0u8; 1 << 20];
        let mut link = open(port, Duration::from_secs(15))?;
        echo(&mut link, 512, mps)?;
        println!("ok re-enumerated on the same port {port}");

        link.write(b"unbind-source 8388608", T)
            .map_err(|e| e.to_string())?;
        let mut r = Ok(());
        for _ in 0..8 {
            r = read_exact(&mut link, &mut buf, Duration::from_secs(5));
            if r.is_err() {
                break;
            }
        }
        let e = expect_err("unbind mid-read", r, |e| e.is_disconnect())?;
        drop(link);
        println!("ok gadget unbound mid-read: host gets `{e}`");
        let mut link = open(port, Duration::from_secs(15))?;
        let status = command(&mut link, "status")?;
        for want in ["unbind-sink:disconnected", "unbind-source:disconnected"] {
            if !status.contains(want) {
                return Err(format!(
                    "device should have seen {want}; it says {status:?}"
                ));
            }
        }
        println!("ok device saw both disconnects: {}", &status[5..]);
        println!("ALL LOOPBACK CHECKS PASSED");
        Ok(())
    }
}
