//! Fastboot over TCP (AOSP `fastboot` README, "TCP Protocol v1").
//!
//! After connecting, the host sends `FB01` and the device answers `FB` plus its two-digit version.
//! From then on every packet in either direction is an 8-byte big-endian length followed by that
//! many bytes. A data phase may arrive in frames of any size, so [`Transport::read_stream`] reads
//! across frame boundaries, while [`Transport::read_packet`] returns one whole frame.

use std::io::{ErrorKind, IoSlice, Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::{Transport, TransportError};

const HANDSHAKE: &[u8; 4] = b"FB01";
const HEADER_LEN: usize = 8;

pub struct TcpLink {
    stream: TcpStream,
    name: String,
    header: [u8; HEADER_LEN],
    header_filled: usize,
    /// Bytes of the current frame not yet read.
    frame_left: u64,
}

fn io_to_transport(e: std::io::Error, timeout: Duration) -> TransportError {
    match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => TransportError::Timeout(timeout),
        ErrorKind::UnexpectedEof
        | ErrorKind::ConnectionReset
        | ErrorKind::ConnectionAborted
        | ErrorKind::BrokenPipe
        | ErrorKind::NotConnected => TransportError::Disconnected,
        _ => TransportError::Io(e),
    }
}

fn set_timeouts(stream: &TcpStream, timeout: Duration) -> Result<(), TransportError> {
    // A zero duration means "block forever" to std; never let that happen.
    let t = Some(timeout.max(Duration::from_millis(1)));
    stream.set_read_timeout(t)?;
    stream.set_write_timeout(t)?;
    Ok(())
}

fn read_full(
    stream: &mut TcpStream,
    buf: &mut [u8],
    timeout: Duration,
) -> Result<(), TransportError> {
    let mut filled = 0;
    while filled < buf.len() {
        match stream.read(&mut buf[filled..]) {
            Ok(0) => return Err(TransportError::Disconnected),
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(io_to_transport(e, timeout)),
        }
    }
    Ok(())
}

fn check_handshake(reply: &[u8; 4]) -> Result<u32, TransportError> {
    if &reply[..2] != b"FB" || !reply[2..].iter().all(u8::is_ascii_digit) {
        return Err(TransportError::Protocol(format!(
            "bad fastboot TCP handshake {:?} (expected \"FBnn\")",
            String::from_utf8_lossy(reply)
        )));
    }
    let version = u32::from(reply[2] - b'0') * 10 + u32::from(reply[3] - b'0');
    if version < 1 {
        return Err(TransportError::Protocol(format!(
            "fastboot TCP protocol version {version} is not supported (need 1 or later)"
        )));
    }
    Ok(version)
}

impl TcpLink {
    /// Connect to a device (host side) and do the `FB01` handshake.
    pub fn connect(addr: &str, timeout: Duration) -> Result<Self, TransportError> {
        let sockaddr = addr
            .to_socket_addrs()
            .map_err(TransportError::Io)?
            .next()
            .ok_or_else(|| TransportError::Protocol(format!("cannot resolve {addr}")))?;
        let mut stream = TcpStream::connect_timeout(&sockaddr, timeout)
            .map_err(|e| io_to_transport(e, timeout))?;
        stream.set_nodelay(true)?;
        set_timeouts(&stream, timeout)?;
        stream
            .write_all(HANDSHAKE)
            .map_err(|e| io_to_transport(e, timeout))?;
        let mut reply = [0u8; 4];
        read_full(&mut stream, &mut reply, timeout)?;
        check_handshake(&reply)?;
        Ok(Self::from_stream(stream, format!("tcp:{addr}")))
    }

    /// Accept one host (device side): wait for its `FBnn` and answer `FB01`.
    pub fn accept(
        listener: &TcpListener,
        handshake_timeout: Duration,
    ) -> Result<Self, TransportError> {
        let (mut stream, peer) = listener.accept()?;
        stream.set_nodelay(true)?;
        set_timeouts(&stream, handshake_timeout)?;
        let mut hello = [0u8; 4];
        read_full(&mut stream, &mut hello, handshake_timeout)?;
        check_handshake(&hello)?;
        stream
            .write_all(HANDSHAKE)
            .map_err(|e| io_to_transport(e, handshake_timeout))?;
        Ok(Self::from_stream(stream, format!("tcp-host:{peer}")))
    }

    fn from_stream(stream: TcpStream, name: String) -> Self {
        TcpLink {
            stream,
            name,
            header: [0; HEADER_LEN],
            header_filled: 0,
            frame_left: 0,
        }
    }

    /// Make sure a frame is open (read its header if needed); a timeout mid-header keeps the
    /// bytes read so far, so the next call resumes where this one stopped.
    fn open_frame(&mut self, timeout: Duration) -> Result<(), TransportError> {
        while self.frame_left == 0 {
            while self.header_filled < HEADER_LEN {
                match self.stream.read(&mut self.header[self.header_filled..]) {
                    Ok(0) => return Err(TransportError::Disconnected),
                    Ok(n) => self.header_filled += n,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(io_to_transport(e, timeout)),
                }
            }
            self.header_filled = 0;
            // Empty frames carry nothing; keep looking for data.
            self.frame_left = u64::from_be_bytes(self.header);
        }
        Ok(())
    }

    fn read_frame_bytes(
        &mut self,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<usize, TransportError> {
        let want = (buf.len() as u64).min(self.frame_left) as usize;
        loop {
            match self.stream.read(&mut buf[..want]) {
                Ok(0) => return Err(TransportError::Disconnected),
                Ok(n) => {
                    self.frame_left -= n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(io_to_transport(e, timeout)),
            }
        }
    }
}

impl Transport for TcpLink {
    fn write(&mut self, data: &[u8], timeout: Duration) -> Result<(), TransportError> {
        set_timeouts(&self.stream, timeout)?;
        // Header and payload leave in one vectored write (one segment for a small frame, and
        // no copy of a large one into a frame buffer); the kernel may take less, so go on
        // from wherever it stopped.
        let header = (data.len() as u64).to_be_bytes();
        let total = HEADER_LEN + data.len();
        let mut sent = 0;
        while sent < total {
            let result = if sent < HEADER_LEN {
                self.stream
                    .write_vectored(&[IoSlice::new(&header[sent..]), IoSlice::new(data)])
            } else {
                self.stream.write(&data[sent - HEADER_LEN..])
            };
            match result {
                Ok(0) => return Err(TransportError::Disconnected),
                Ok(n) => sent += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(io_to_transport(e, timeout)),
            }
        }
        Ok(())
    }

    fn read_packet(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        set_timeouts(&self.stream, timeout)?;
        self.open_frame(timeout)?;
        if self.frame_left > buf.len() as u64 {
            return Err(TransportError::Overflow {
                len: usize::try_from(self.frame_left).unwrap_or(usize::MAX),
                max: buf.len(),
            });
        }
        let mut filled = 0;
        while self.frame_left > 0 {
            filled += self.read_frame_bytes(&mut buf[filled..], timeout)?;
        }
        Ok(filled)
    }

    fn read_stream(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        if buf.is_empty() {
            return Ok(0);
        }
        set_timeouts(&self.stream, timeout)?;
        self.open_frame(timeout)?;
        self.read_frame_bytes(buf, timeout)
    }

    fn describe(&self) -> String {
        self.name.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    const T: Duration = Duration::from_secs(2);

    fn connected() -> (TcpLink, TcpLink) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let device = thread::spawn(move || TcpLink::accept(&listener, T).unwrap());
        let host = TcpLink::connect(&addr, T).unwrap();
        (host, device.join().unwrap())
    }

    #[test]
    fn frames_are_length_prefixed_big_endian() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let raw_device = thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut hello = [0u8; 4];
            s.read_exact(&mut hello).unwrap();
            assert_eq!(&hello, b"FB01");
            s.write_all(b"FB01").unwrap();
            let mut frame = [0u8; 8 + 14];
            s.read_exact(&mut frame).unwrap();
            assert_eq!(&frame[..8], &[0, 0, 0, 0, 0, 0, 0, 14]);
            assert_eq!(&frame[8..], b"getvar:product");
            // Answer split over two TCP writes but one frame.
            s.write_all(&[0, 0, 0, 0, 0, 0, 0, 7, b'O', b'K']).unwrap();
            s.write_all(b"AYsim").unwrap();
        });
        let mut host = TcpLink::connect(&addr, T).unwrap();
        host.write(b"getvar:product", T).unwrap();
        let mut buf = [0u8; 256];
        let n = host.read_packet(&mut buf, T).unwrap();
        assert_eq!(&buf[..n], b"OKAYsim");
        raw_device.join().unwrap();
    }

    #[test]
    fn data_phase_reads_across_frames_and_packets_are_whole() {
        let (mut host, mut dev) = connected();
        dev.write(b"abc", T).unwrap();
        dev.write(b"defgh", T).unwrap();
        dev.write(b"OKAY", T).unwrap();
        let mut data = [0u8; 8];
        super::super::read_exact(&mut host, &mut data, T).unwrap();
        assert_eq!(&data, b"abcdefgh");
        let mut buf = [0u8; 256];
        let n = host.read_packet(&mut buf, T).unwrap();
        assert_eq!(&buf[..n], b"OKAY");
    }

    #[test]
    fn a_frame_larger_than_the_socket_buffers_arrives_whole_and_in_order() {
        // The kernel takes such a write in parts (the header possibly with only some of the
        // payload): every byte must still arrive once, with the next frame right behind.
        let (mut host, mut dev) = connected();
        let big: Vec<u8> = (0..(3 << 20) + 5u32)
            .map(|i| (i * 7 + i / 4093) as u8)
            .collect();
        let expected = big.clone();
        let reader = thread::spawn(move || {
            let mut got = vec![0u8; expected.len()];
            super::super::read_exact(&mut dev, &mut got, T).unwrap();
            assert!(got == expected, "payload differs");
            let mut buf = [0u8; 16];
            let n = dev.read_packet(&mut buf, T).unwrap();
            assert_eq!(&buf[..n], b"next");
        });
        host.write(&big, T).unwrap();
        host.write(b"next", T).unwrap();
        reader.join().unwrap();
    }

    #[test]
    fn oversized_frame_is_overflow() {
        let (mut host, mut dev) = connected();
        dev.write(&[b'I'; 300], T).unwrap();
        let mut buf = [0u8; 256];
        assert!(matches!(
            host.read_packet(&mut buf, T),
            Err(TransportError::Overflow { len: 300, max: 256 })
        ));
    }

    #[test]
    fn bad_handshake_is_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let t = thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut hello = [0u8; 4];
            s.read_exact(&mut hello).unwrap();
            s.write_all(b"HTTP").unwrap();
        });
        assert!(matches!(
            TcpLink::connect(&addr, T),
            Err(TransportError::Protocol(_))
        ));
        t.join().unwrap();
    }

    #[test]
    fn silent_device_times_out() {
        let (mut host, _dev) = connected();
        let mut buf = [0u8; 64];
        assert!(matches!(
            host.read_packet(&mut buf, Duration::from_millis(50)),
            Err(TransportError::Timeout(_))
        ));
    }
}
