//! An in-memory link between a host and a simulated device, with injectable link faults.
//!
//! Messages keep their boundaries (like USB bulk transfers). Each direction holds a bounded number
//! of bytes in flight, so a fast writer blocks (and can time out) like a real endpoint whose peer
//! is not reading, and memory stays bounded whatever the image size.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use super::{too_long, Framing, SendBuffer, Transport, TransportError};

/// Bytes that may wait in one direction before a writer blocks: about one host transfer, as a
/// real bulk pipe holds (the host's URB and the device controller's FIFO), so a simulated phone
/// costs the process no more memory than the transfer it is being sent (a 4 MiB queue per link
/// was 100 of the 264 MiB peak at 32 benchmark phones, and no faster).
pub const DEFAULT_IN_FLIGHT_LIMIT: usize = 1024 * 1024;
/// Packets at least this large are handed back to the writer once read, to lend again
/// ([`Transport::send_buffer`]); smaller ones (commands, answers) are just dropped.
const RECYCLED_MIN: usize = 64 * 1024;
/// Read buffers kept for the writer per direction: enough to keep a paced data phase going
/// without a fresh allocation per chunk (a fresh buffer costs page faults and zeroing, more
/// than the copy it replaces), few enough to keep memory bounded.
const SPARE_BUFFERS: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Host,
    Device,
}

#[derive(Default)]
struct Direction {
    queue: VecDeque<Vec<u8>>,
    queued_bytes: usize,
    /// Total bytes ever written in this direction.
    written: u64,
    /// Large packets the reader is done with, for the writer's next [`Transport::send_buffer`].
    spare: Vec<Vec<u8>>,
}

impl Direction {
    /// Keep `buf` for this direction's writer to be lent, up to [`SPARE_BUFFERS`].
    fn keep_spare(&mut self, buf: Vec<u8>) {
        if self.spare.len() < SPARE_BUFFERS {
            self.spare.push(buf);
        }
    }
}

struct State {
    to_device: Direction,
    to_host: Direction,
    cut: bool,
    stalled: bool,
    /// Cut the link once this many bytes have gone host → device.
    cut_after_host_bytes: Option<u64>,
    /// Link speed limit in bytes per second (None: as fast as memory).
    bytes_per_second: Option<u64>,
    in_flight_limit: usize,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    /// Capacity of the packet the device end is part-way through reading (see [`held_bytes`]).
    device_pending: AtomicUsize,
}

/// Every link made in this process, for [`held_bytes`] (dead ones are pruned as links come).
static LINKS: Mutex<Vec<Weak<Shared>>> = Mutex::new(Vec::new());

/// Bytes of packet buffers the process's memory links hold now: queued on the wire, kept spare
/// for the next send, or being read by a device end. Simulated phones run in the station's
/// process (tests, the line benchmark), so the process's RSS counts their links too; this is
/// what to take off it to see the station's own (the buffer a host is lent to fill is the
/// host's, as a USB transfer buffer is, and is not counted).
pub fn held_bytes() -> usize {
    let links: Vec<Arc<Shared>> = LINKS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .filter_map(Weak::upgrade)
        .collect();
    links.iter().map(|link| link.held()).sum()
}

fn register(link: &Arc<Shared>) {
    let mut links = LINKS.lock().unwrap_or_else(PoisonError::into_inner);
    links.retain(|l| l.strong_count() > 0);
    links.push(Arc::downgrade(link));
}

impl Shared {
    /// Sleep until the state changes or `deadline` passes; `None` once the deadline has passed.
    fn wait_until<'a>(
        &'a self,
        state: MutexGuard<'a, State>,
        deadline: Instant,
    ) -> Option<MutexGuard<'a, State>> {
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        Some(
            self.changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0,
        )
    }

    fn held(&self) -> usize {
        let state = self.lock();
        let buffers = |dir: &Direction| {
            dir.queue
                .iter()
                .chain(&dir.spare)
                .map(Vec::capacity)
                .sum::<usize>()
        };
        buffers(&state.to_device)
            + buffers(&state.to_host)
            + self.device_pending.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock means a thread panicked mid-update; the queues are still consistent
        // (every update is a single push/pop), so keep going rather than propagate the panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One end of an in-memory link.
pub struct MemoryLink {
    shared: Arc<Shared>,
    side: Side,
    framing: Framing,
    max_packet_size: Option<usize>,
    /// The unread rest of a packet partly consumed by `read_stream`.
    pending: Vec<u8>,
    pending_pos: usize,
    name: String,
}

/// Test and demo control over a link: unplug it, stall it, slow it down.
#[derive(Clone)]
pub struct LinkControl {
    shared: Arc<Shared>,
}

/// Link faults to arm on each new link to a device (a bad cable or a slow hub stays bad for
/// every connection), applied with [`LinkControl::arm`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkFaults {
    /// See [`LinkControl::set_bytes_per_second`].
    pub bytes_per_second: Option<u64>,
    /// See [`LinkControl::cut_after_host_bytes`]: counted per link.
    pub cut_after_host_bytes: Option<u64>,
}

/// Create a connected (host end, device end, control) triple.
pub fn pair(name: &str) -> (MemoryLink, MemoryLink, LinkControl) {
    pair_with(name, Framing::Packets, None)
}

/// Like [`pair`], with a chosen framing (a `Stream` link models a serial port) and an optional
/// USB max packet size reported by both ends.
pub fn pair_with(
    name: &str,
    framing: Framing,
    max_packet_size: Option<usize>,
) -> (MemoryLink, MemoryLink, LinkControl) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            to_device: Direction::default(),
            to_host: Direction::default(),
            cut: false,
            stalled: false,
            cut_after_host_bytes: None,
            bytes_per_second: None,
            in_flight_limit: DEFAULT_IN_FLIGHT_LIMIT,
        }),
        changed: Condvar::new(),
        device_pending: AtomicUsize::new(0),
    });
    register(&shared);
    let end = |side| MemoryLink {
        shared: shared.clone(),
        side,
        framing,
        max_packet_size,
        pending: Vec::new(),
        pending_pos: 0,
        name: format!("mem:{name}"),
    };
    let control = LinkControl {
        shared: shared.clone(),
    };
    (end(Side::Host), end(Side::Device), control)
}

impl LinkControl {
    /// Arm `faults` on this link (faults left `None` are not touched).
    pub fn arm(&self, faults: &LinkFaults) {
        if faults.bytes_per_second.is_some() {
            self.set_bytes_per_second(faults.bytes_per_second);
        }
        if let Some(bytes) = faults.cut_after_host_bytes {
            self.cut_after_host_bytes(bytes);
        }
    }

    /// Unplug: both ends fail with `Disconnected` from now on, including blocked calls.
    pub fn cut(&self) {
        self.shared.lock().cut = true;
        self.shared.changed.notify_all();
    }

    pub fn is_cut(&self) -> bool {
        self.shared.lock().cut
    }

    /// Unplug once the host has sent this many bytes in total (counted from link creation).
    pub fn cut_after_host_bytes(&self, bytes: u64) {
        self.shared.lock().cut_after_host_bytes = Some(bytes);
    }

    /// A stalled link delivers nothing in either direction: reads and full writes time out.
    pub fn set_stalled(&self, stalled: bool) {
        self.shared.lock().stalled = stalled;
        self.shared.changed.notify_all();
    }

    /// Limit throughput to model a slow cable or hub (None: unlimited).
    pub fn set_bytes_per_second(&self, rate: Option<u64>) {
        self.shared.lock().bytes_per_second = rate;
    }

    /// Bytes the host has written so far.
    pub fn host_bytes_written(&self) -> u64 {
        self.shared.lock().to_device.written
    }

    /// Wait until the device has written at least `bytes` in all, so a test can act at a known
    /// point of a device's script (its HELLO queued, say) instead of pausing and hoping; false
    /// when `timeout` passes or the link is cut first.
    pub fn wait_for_device_bytes(&self, bytes: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        while state.to_host.written < bytes {
            if state.cut {
                return false;
            }
            match self.shared.wait_until(state, deadline) {
                Some(next) => state = next,
                None => return false,
            }
        }
        true
    }
}

impl MemoryLink {
    fn outgoing(state: &mut State, side: Side) -> &mut Direction {
        match side {
            Side::Host => &mut state.to_device,
            Side::Device => &mut state.to_host,
        }
    }

    fn incoming(state: &mut State, side: Side) -> &mut Direction {
        match side {
            Side::Host => &mut state.to_host,
            Side::Device => &mut state.to_device,
        }
    }

    /// Wait for the next packet; `None` in `Ok` never happens: timeouts and cuts are errors.
    fn next_packet(&mut self, timeout: Duration) -> Result<Vec<u8>, TransportError> {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        loop {
            if state.cut {
                return Err(TransportError::Disconnected);
            }
            if !state.stalled {
                let dir = Self::incoming(&mut state, self.side);
                if let Some(packet) = dir.queue.pop_front() {
                    dir.queued_bytes -= packet.len();
                    self.shared.changed.notify_all();
                    return Ok(packet);
                }
            }
            state = self
                .shared
                .wait_until(state, deadline)
                .ok_or(TransportError::Timeout(timeout))?;
        }
    }

    fn take_pending(&mut self, buf: &mut [u8]) -> usize {
        let rest = &self.pending[self.pending_pos..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.pending_pos += n;
        if self.pending_pos == self.pending.len() {
            let done = std::mem::take(&mut self.pending);
            self.pending_pos = 0;
            self.note_pending();
            self.recycle(done);
        }
        n
    }

    /// Keep `packet` to be read over the next calls.
    fn hold_pending(&mut self, packet: Vec<u8>) {
        self.pending = packet;
        self.note_pending();
    }

    /// The device end's partly read packet is the link's memory, not the host's.
    fn note_pending(&self) {
        if self.side == Side::Device {
            self.shared
                .device_pending
                .store(self.pending.capacity(), Ordering::Relaxed);
        }
    }

    /// Hand a large packet that was read back to the writer of its direction.
    fn recycle(&self, packet: Vec<u8>) {
        if packet.capacity() >= RECYCLED_MIN {
            Self::incoming(&mut self.shared.lock(), self.side).keep_spare(packet);
        }
    }

    /// A buffer the reader of this end's writes is done with, if one is spare.
    fn take_spare(&self) -> Option<Vec<u8>> {
        Self::outgoing(&mut self.shared.lock(), self.side)
            .spare
            .pop()
    }

    /// Keep a lent buffer the writer is done with for its next data phase.
    fn keep_spare(&self, buf: Vec<u8>) {
        if buf.capacity() >= RECYCLED_MIN {
            Self::outgoing(&mut self.shared.lock(), self.side).keep_spare(buf);
        }
    }

    /// Queue `packet` as one message: wait for room, apply the armed cut, take the link's time
    /// on a slow link.
    fn send(&mut self, mut packet: Vec<u8>, timeout: Duration) -> Result<(), TransportError> {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        loop {
            if state.cut {
                return Err(TransportError::Disconnected);
            }
            let limit = state.in_flight_limit;
            let queued = Self::outgoing(&mut state, self.side).queued_bytes;
            // An empty queue always accepts, so one write larger than the limit still goes.
            if !state.stalled && (queued == 0 || queued + packet.len() <= limit) {
                break;
            }
            state = self
                .shared
                .wait_until(state, deadline)
                .ok_or(TransportError::Timeout(timeout))?;
        }
        let mut cut_now = false;
        if self.side == Side::Host {
            if let Some(limit) = state.cut_after_host_bytes {
                let room = limit.saturating_sub(state.to_device.written);
                if (packet.len() as u64) >= room {
                    packet.truncate(room as usize);
                    cut_now = true;
                }
            }
        }
        if let Some(rate) = state.bytes_per_second.filter(|r| *r > 0) {
            // On a slow link the bytes are on the wire this long before the peer has them; an
            // unplug meanwhile fails the transfer in flight, as a real cable pull does. Once
            // delivered they are the peer's, whatever happens to the link after.
            let until = Instant::now() + Duration::from_secs_f64(packet.len() as f64 / rate as f64);
            loop {
                if state.cut {
                    return Err(TransportError::Disconnected);
                }
                match self.shared.wait_until(state, until) {
                    Some(next) => state = next,
                    None => break,
                }
            }
            state = self.shared.lock();
            if state.cut {
                return Err(TransportError::Disconnected);
            }
        }
        let dir = Self::outgoing(&mut state, self.side);
        dir.written += packet.len() as u64;
        if !packet.is_empty() || !cut_now {
            dir.queued_bytes += packet.len();
            dir.queue.push_back(packet);
        }
        if cut_now {
            state.cut = true;
        }
        drop(state);
        self.shared.changed.notify_all();
        if cut_now {
            return Err(TransportError::Disconnected);
        }
        Ok(())
    }
}

impl Transport for MemoryLink {
    fn write(&mut self, data: &[u8], timeout: Duration) -> Result<(), TransportError> {
        self.send(data.to_vec(), timeout)
    }

    fn send_buffer(&mut self, len: usize) -> Box<dyn SendBuffer + '_> {
        let mut buf = self.take_spare().unwrap_or_default();
        buf.resize(len, 0);
        Box::new(MemorySendBuffer { link: self, buf })
    }

    fn read_packet(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        if !self.pending.is_empty() {
            return Ok(self.take_pending(buf));
        }
        let packet = self.next_packet(timeout)?;
        if self.framing == Framing::Stream {
            self.hold_pending(packet);
            return Ok(self.take_pending(buf));
        }
        if packet.len() > buf.len() {
            return Err(TransportError::Overflow {
                len: packet.len(),
                max: buf.len(),
            });
        }
        let len = packet.len();
        buf[..len].copy_from_slice(&packet);
        self.recycle(packet);
        Ok(len)
    }

    fn read_stream(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if !self.pending.is_empty() {
                return Ok(self.take_pending(buf));
            }
            let packet = self.next_packet(timeout)?;
            // Zero-length packets carry no data-phase bytes; skip them.
            if !packet.is_empty() {
                self.hold_pending(packet);
            }
        }
    }

    fn framing(&self) -> Framing {
        self.framing
    }

    fn max_packet_size(&self) -> Option<usize> {
        self.max_packet_size
    }

    fn write_zero_length(&mut self, timeout: Duration) -> Result<(), TransportError> {
        if self.max_packet_size.is_some() {
            self.write(&[], timeout)
        } else {
            Ok(())
        }
    }

    fn describe(&self) -> String {
        self.name.clone()
    }
}

/// What a memory link lends: a large send hands the filled buffer itself to the peer and lends
/// one the peer is done with (or a new one) in its place, so the host's bytes are not copied
/// again; a small one is copied, as `write` does.
struct MemorySendBuffer<'a> {
    link: &'a mut MemoryLink,
    buf: Vec<u8>,
}

impl SendBuffer for MemorySendBuffer<'_> {
    fn buffer(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    fn send(&mut self, len: usize, timeout: Duration) -> Result<(), TransportError> {
        let capacity = self.buf.len();
        if len > capacity {
            return Err(too_long(len, capacity));
        }
        if len < RECYCLED_MIN {
            return self.link.write(&self.buf[..len], timeout);
        }
        let next = self.link.take_spare().unwrap_or_default();
        let mut packet = std::mem::replace(&mut self.buf, next);
        self.buf.resize(capacity, 0);
        packet.truncate(len);
        self.link.send(packet, timeout)
    }

    fn send_zero_length(&mut self, timeout: Duration) -> Result<(), TransportError> {
        self.link.write_zero_length(timeout)
    }
}

impl Drop for MemorySendBuffer<'_> {
    fn drop(&mut self) {
        self.link.keep_spare(std::mem::take(&mut self.buf));
    }
}

impl Drop for MemoryLink {
    /// Dropping either end is an unplug for the other one.
    fn drop(&mut self) {
        self.shared.lock().cut = true;
        self.shared.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_millis(200);

    #[test]
    fn a_link_holds_its_queued_spare_and_part_read_packets_until_it_is_gone() {
        let (mut host, mut device, control) = pair("held");
        let shared = Arc::downgrade(&host.shared);
        let held = |link: &MemoryLink| link.shared.held();
        assert_eq!(held(&host), 0);
        host.write(&vec![7u8; 300_000], T).unwrap();
        assert_eq!(held(&host), 300_000, "queued on the wire");
        assert!(held_bytes() >= 300_000, "and counted for the process");
        let mut buf = vec![0u8; 100_000];
        assert_eq!(device.read_stream(&mut buf, T).unwrap(), 100_000);
        assert_eq!(held(&host), 300_000, "part read by the device");
        for _ in 0..2 {
            device.read_stream(&mut buf, T).unwrap();
        }
        assert_eq!(
            held(&device),
            300_000,
            "read, and kept spare for the host's next send"
        );
        let link = host.shared.clone();
        let mut lent = host.send_buffer(300_000);
        lent.buffer()[0] = 1;
        assert_eq!(link.held(), 0, "a buffer lent to the host is the host's");
        drop(lent);
        drop((link, host, device, control));
        assert!(
            shared.upgrade().is_none(),
            "a link no end holds is not counted"
        );
    }

    #[test]
    fn packets_keep_their_boundaries() {
        let (mut host, mut dev, _c) = pair("t");
        host.write(b"getvar:product", T).unwrap();
        host.write(b"x", T).unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(dev.read_packet(&mut buf, T).unwrap(), 14);
        assert_eq!(&buf[..14], b"getvar:product");
        assert_eq!(dev.read_packet(&mut buf, T).unwrap(), 1);
    }

    #[test]
    fn oversized_packet_is_an_overflow_not_a_split() {
        let (mut host, mut dev, _c) = pair("t");
        dev.write(&[b'A'; 300], T).unwrap();
        let mut buf = [0u8; 256];
        assert!(matches!(
            host.read_packet(&mut buf, T),
            Err(TransportError::Overflow { len: 300, max: 256 })
        ));
    }

    #[test]
    fn stream_reads_span_packets() {
        let (mut host, mut dev, _c) = pair("t");
        dev.write(b"hello ", T).unwrap();
        dev.write(b"world", T).unwrap();
        let mut buf = [0u8; 11];
        super::super::read_exact(&mut host, &mut buf, T).unwrap();
        assert_eq!(&buf, b"hello world");
    }

    #[test]
    fn silent_peer_times_out() {
        let (mut host, _dev, _c) = pair("t");
        let mut buf = [0u8; 8];
        assert!(matches!(
            host.read_packet(&mut buf, Duration::from_millis(20)),
            Err(TransportError::Timeout(_))
        ));
    }

    #[test]
    fn cut_after_bytes_disconnects_both_ends() {
        let (mut host, mut dev, c) = pair("t");
        c.cut_after_host_bytes(10);
        host.write(&[1; 6], T).unwrap();
        assert!(matches!(
            host.write(&[2; 6], T),
            Err(TransportError::Disconnected)
        ));
        let mut buf = [0u8; 16];
        // What was delivered before the cut is lost with the device: reads fail.
        assert!(matches!(
            dev.read_packet(&mut buf, T),
            Err(TransportError::Disconnected)
        ));
        assert_eq!(c.host_bytes_written(), 10);
    }

    #[test]
    fn a_test_can_wait_for_what_the_device_has_written() {
        let (_host, mut dev, c) = pair("t");
        assert!(!c.wait_for_device_bytes(1, Duration::from_millis(20)));
        let writer = std::thread::spawn(move || {
            dev.write(b"HELLO", T).unwrap();
            dev
        });
        assert!(c.wait_for_device_bytes(5, Duration::from_secs(5)));
        let dev = writer.join().unwrap();
        drop(dev);
        assert!(!c.wait_for_device_bytes(6, Duration::from_secs(5)), "cut");
    }

    #[test]
    fn dropping_one_end_unplugs_the_other() {
        let (mut host, dev, _c) = pair("t");
        drop(dev);
        let mut buf = [0u8; 8];
        assert!(host.read_packet(&mut buf, T).unwrap_err().is_disconnect());
    }

    #[test]
    fn writer_blocks_when_peer_does_not_read() {
        let (mut host, _dev, _c) = pair("t");
        let chunk = vec![0u8; DEFAULT_IN_FLIGHT_LIMIT];
        host.write(&chunk, T).unwrap();
        assert!(matches!(
            host.write(&chunk, Duration::from_millis(20)),
            Err(TransportError::Timeout(_))
        ));
    }

    #[test]
    fn unplug_interrupts_a_slow_transfer() {
        let (mut host, _dev, c) = pair("t");
        c.set_bytes_per_second(Some(1000));
        let cutter = c.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            cutter.cut();
        });
        let started = Instant::now();
        // 100 kB at 1 kB/s would take 100 s; the cut must end it long before.
        assert!(matches!(
            host.write(&[0u8; 100_000], Duration::from_secs(1)),
            Err(TransportError::Disconnected)
        ));
        assert!(started.elapsed() < Duration::from_secs(50));
        t.join().unwrap();
    }

    #[test]
    fn slow_link_delivers_after_the_wire_time_and_a_later_unplug_does_not_undo_it() {
        let (mut host, mut dev, c) = pair("t");
        // Four bytes take 100 ms on the wire.
        c.set_bytes_per_second(Some(40));
        let device = std::thread::spawn(move || {
            let sent = dev.write(b"OKAY", T);
            (sent, dev)
        });
        let mut buf = [0u8; 8];
        assert_eq!(
            host.read_packet(&mut buf, Duration::from_secs(5)).unwrap(),
            4
        );
        // The host got the answer and goes (as after a reboot's OKAY): the device's transfer
        // had completed, so its write succeeded.
        drop(host);
        let (sent, _dev) = device.join().unwrap();
        assert!(sent.is_ok(), "{sent:?}");
    }

    #[test]
    fn stalled_link_times_out() {
        let (mut host, mut dev, c) = pair("t");
        host.write(b"x", T).unwrap();
        c.set_stalled(true);
        let mut buf = [0u8; 8];
        assert!(matches!(
            dev.read_packet(&mut buf, Duration::from_millis(20)),
            Err(TransportError::Timeout(_))
        ));
        c.set_stalled(false);
        assert_eq!(dev.read_packet(&mut buf, T).unwrap(), 1);
    }

    #[test]
    fn buffers_handed_to_the_link_arrive_whole_and_come_back_to_the_writer_once_read() {
        let (mut host, mut dev, c) = pair("t");
        let data: Vec<u8> = (0..3 * RECYCLED_MIN as u32)
            .map(|i| (i % 253) as u8)
            .collect();
        let mut out = host.send_buffer(2 * RECYCLED_MIN);
        let mut first_packet = None;
        let mut lent = Vec::new();
        let mut received = Vec::new();
        for piece in data.chunks(RECYCLED_MIN + 1000) {
            let buf = out.buffer();
            assert_eq!(
                buf.len(),
                2 * RECYCLED_MIN,
                "a buffer of the same length to fill"
            );
            buf[..piece.len()].copy_from_slice(piece);
            first_packet.get_or_insert(buf.as_ptr());
            lent.push(buf.as_ptr());
            out.send(piece.len(), T).unwrap();
            let mut into = vec![0u8; piece.len()];
            super::super::read_exact(&mut dev, &mut into, T).unwrap();
            received.extend(into);
        }
        assert!(received == data, "the bytes arrive in order");
        assert_eq!(c.host_bytes_written(), data.len() as u64);
        // The first packet, read, went back to the writer and was lent again.
        assert!(
            lent[1..].contains(&first_packet.unwrap()) || out.buffer().as_ptr() == lent[0],
            "read packets are reused: {lent:?}"
        );
        // A send longer than the buffer is the caller's error, not a panic or a short send.
        assert!(matches!(
            out.send(2 * RECYCLED_MIN + 1, T),
            Err(TransportError::Protocol(_))
        ));
        // Small sends are copied as before; a cut armed mid-buffer still cuts there.
        c.cut_after_host_bytes(data.len() as u64 + 10);
        assert!(matches!(
            out.send(RECYCLED_MIN, T),
            Err(TransportError::Disconnected)
        ));
        assert_eq!(c.host_bytes_written(), data.len() as u64 + 10);
    }

    #[test]
    fn a_lent_buffer_is_kept_for_the_next_data_phase_and_small_sends_are_copied() {
        let (mut host, mut dev, c) = pair("t");
        let mut out = host.send_buffer(RECYCLED_MIN);
        let first = out.buffer().as_ptr();
        out.buffer()[..5].copy_from_slice(b"hello");
        out.send(5, T).unwrap();
        assert_eq!(
            out.buffer().as_ptr(),
            first,
            "a small send copies and keeps the buffer"
        );
        drop(out);
        let mut into = [0u8; 5];
        assert_eq!(dev.read_packet(&mut into, T).unwrap(), 5);
        assert_eq!(&into, b"hello");
        let mut out = host.send_buffer(RECYCLED_MIN);
        assert_eq!(
            out.buffer().as_ptr(),
            first,
            "the next data phase is lent the same buffer"
        );
        // Filling fails: nothing is sent and the error says it was the source.
        let err = out
            .send_filled(10, &mut |_| Err(std::io::Error::other("bad sector")), T)
            .unwrap_err();
        assert!(
            matches!(err, crate::transport::SendFilledError::Fill(_)),
            "{err}"
        );
        assert_eq!(c.host_bytes_written(), 5);
        // The link fails: the error is the link's.
        c.cut();
        let mut ones = |b: &mut [u8]| {
            b.fill(1);
            Ok(())
        };
        let err = out.send_filled(10, &mut ones, T).unwrap_err();
        assert!(
            matches!(
                err,
                crate::transport::SendFilledError::Link(TransportError::Disconnected)
            ),
            "{err}"
        );
        let err = out
            .send_filled(RECYCLED_MIN + 1, &mut |_| Ok(()), T)
            .unwrap_err();
        assert!(
            matches!(
                err,
                crate::transport::SendFilledError::Link(TransportError::Protocol(_))
            ),
            "{err}"
        );
    }
}
