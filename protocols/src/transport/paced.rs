//! The device end of a link that takes in host data no faster than a set byte rate: a phone
//! writing to slow flash, or behind a full-speed hub. While the device is not reading, USB
//! flow control (NAK) holds the host's transfer, exactly as a slow phone does. Simulated phones
//! use it so an operator (or a test) has time to pull a cable in the middle of a flash.

use std::time::{Duration, Instant};

use super::{Framing, Transport, TransportError};

/// How often, at most, the pace is checked while streaming: a stream read asks for no more
/// than this much time's worth of bytes, so a slow phone's transfer advances smoothly.
const STREAM_SLICE: Duration = Duration::from_millis(50);

/// When the next host byte may be taken in, for a given byte rate. Bytes are paid for after
/// they are read, back to back: idle time earns no credit, so every burst runs at the rate.
#[derive(Debug, Clone)]
pub struct Pacer {
    bytes_per_second: u64,
    next_free: Option<Instant>,
}

impl Pacer {
    /// `bytes_per_second` of 0 is taken as 1 (never infinitely slow, never a division by 0).
    pub fn new(bytes_per_second: u64) -> Pacer {
        Pacer {
            bytes_per_second: bytes_per_second.max(1),
            next_free: None,
        }
    }

    pub fn bytes_per_second(&self) -> u64 {
        self.bytes_per_second
    }

    /// `bytes` were just read at `now`: how long to wait before reading again.
    pub fn delay_after(&mut self, bytes: usize, now: Instant) -> Duration {
        let start = self.next_free.map_or(now, |t| t.max(now));
        let cost = Duration::from_secs_f64(bytes as f64 / self.bytes_per_second as f64);
        let next = start + cost;
        self.next_free = Some(next);
        next.saturating_duration_since(now)
    }

    /// The most bytes a stream read should ask for: [`STREAM_SLICE`] worth, in whole
    /// `packet`-byte units (a USB device controller reads whole packets), at least one packet.
    pub fn stream_slice(&self, packet: usize) -> usize {
        let packet = packet.max(1);
        let bytes = (self.bytes_per_second as f64 * STREAM_SLICE.as_secs_f64()) as usize;
        (bytes / packet).max(1) * packet
    }
}

/// A device-side link that reads at most [`Pacer::bytes_per_second`]; writes are not slowed.
pub struct Paced<'a> {
    inner: &'a mut dyn Transport,
    pacer: Pacer,
}

impl<'a> Paced<'a> {
    pub fn new(inner: &'a mut dyn Transport, bytes_per_second: u64) -> Paced<'a> {
        Paced {
            inner,
            pacer: Pacer::new(bytes_per_second),
        }
    }

    fn pay(&mut self, bytes: usize) {
        let wait = self.pacer.delay_after(bytes, Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

impl Transport for Paced<'_> {
    fn write(&mut self, data: &[u8], timeout: Duration) -> Result<(), TransportError> {
        self.inner.write(data, timeout)
    }

    fn read_packet(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        // A packet is taken whole (splitting it would change what the protocol sees); the wait
        // comes after it instead.
        let n = self.inner.read_packet(buf, timeout)?;
        self.pay(n);
        Ok(n)
    }

    fn read_stream(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        let packet = self.inner.max_packet_size().unwrap_or(512);
        let want = buf.len().min(self.pacer.stream_slice(packet));
        let n = self.inner.read_stream(&mut buf[..want], timeout)?;
        self.pay(n);
        Ok(n)
    }

    fn framing(&self) -> Framing {
        self.inner.framing()
    }

    fn max_packet_size(&self) -> Option<usize> {
        self.inner.max_packet_size()
    }

    fn write_zero_length(&mut self, timeout: Duration) -> Result<(), TransportError> {
        self.inner.write_zero_length(timeout)
    }

    fn describe(&self) -> String {
        format!(
            "{} (taking in {} bytes/s)",
            self.inner.describe(),
            self.pacer.bytes_per_second
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::memory;

    const T: Duration = Duration::from_secs(5);

    #[test]
    fn bytes_are_paid_back_to_back_and_idle_time_earns_no_credit() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(1000);
        assert_eq!(pacer.delay_after(500, t0), Duration::from_millis(500));
        // Read again before the 500 ms are up: the new bytes queue behind the old ones.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(pacer.delay_after(250, t1), Duration::from_millis(650));
        // A long pause, then a burst: it costs its full time again.
        let t2 = t0 + Duration::from_secs(60);
        assert_eq!(pacer.delay_after(2000, t2), Duration::from_secs(2));
        assert_eq!(
            pacer.delay_after(0, t2 + Duration::from_secs(2)),
            Duration::ZERO
        );
    }

    #[test]
    fn a_zero_rate_is_one_byte_per_second() {
        let mut pacer = Pacer::new(0);
        assert_eq!(pacer.bytes_per_second(), 1);
        assert_eq!(pacer.delay_after(3, Instant::now()), Duration::from_secs(3));
    }

    #[test]
    fn stream_slices_are_whole_packets_and_at_least_one() {
        // 128 KiB/s: 50 ms is 6553 bytes, 12 packets of 512.
        assert_eq!(Pacer::new(128 * 1024).stream_slice(512), 12 * 512);
        assert_eq!(Pacer::new(10).stream_slice(512), 512);
        assert_eq!(Pacer::new(1 << 30).stream_slice(0), 53_687_091);
    }

    #[test]
    fn stream_reads_are_cut_to_a_slice_and_packets_stay_whole() {
        let (mut host, mut device, _control) = memory::pair("paced");
        let mut paced = Paced::new(&mut device, 20 * 1024);
        assert!(paced.describe().ends_with("(taking in 20480 bytes/s)"));
        host.write(&[7u8; 3000], T).unwrap();
        let mut buf = [0u8; 4096];
        // 20 KiB/s: a 50 ms slice is 1024 bytes, two packets of 512.
        assert_eq!(paced.read_stream(&mut buf, T).unwrap(), 1024);
        assert_eq!(paced.read_stream(&mut buf, T).unwrap(), 1024);
        assert_eq!(paced.read_stream(&mut buf, T).unwrap(), 952);
        host.write(&[9u8; 1500], T).unwrap();
        assert_eq!(paced.read_packet(&mut buf, T).unwrap(), 1500);
        assert!(buf[..1500].iter().all(|&b| b == 9));
        // Answers go out unpaced.
        paced.write(b"OKAY", T).unwrap();
        assert_eq!(host.read_packet(&mut buf, T).unwrap(), 4);
    }
}
