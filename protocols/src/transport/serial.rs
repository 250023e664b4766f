//! Serial links: the Qualcomm QDLoader tty (`/dev/ttyUSB*`), a COM port, or a pty served by a
//! simulated phone. A byte stream: Sahara frames by its length field, Firehose by `</data>`.

use std::io::{ErrorKind, Read, Write};
use std::time::Duration;

use super::{Framing, Transport, TransportError};

pub struct SerialLink {
    port: Box<dyn serialport::SerialPort>,
    name: String,
}

impl SerialLink {
    pub fn open(path: &str) -> Result<Self, TransportError> {
        let port = serialport::new(path, 115_200)
            .timeout(Duration::from_secs(1))
            .open()
            .map_err(|e| match e.kind() {
                serialport::ErrorKind::NoDevice => TransportError::Disconnected,
                _ => TransportError::Usb(format!("cannot open serial port {path}: {e}")),
            })?;
        Ok(SerialLink {
            port,
            name: format!("serial:{path}"),
        })
    }
}

fn serial_error(e: std::io::Error, timeout: Duration) -> TransportError {
    match e.kind() {
        ErrorKind::TimedOut | ErrorKind::WouldBlock => TransportError::Timeout(timeout),
        ErrorKind::BrokenPipe | ErrorKind::UnexpectedEof | ErrorKind::NotConnected => {
            TransportError::Disconnected
        }
        _ => TransportError::Io(e),
    }
}

impl Transport for SerialLink {
    fn write(&mut self, data: &[u8], timeout: Duration) -> Result<(), TransportError> {
        self.port
            .set_timeout(timeout)
            .map_err(|e| TransportError::Usb(e.to_string()))?;
        self.port
            .write_all(data)
            .and_then(|_| self.port.flush())
            .map_err(|e| serial_error(e, timeout))
    }

    fn read_packet(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        self.port
            .set_timeout(timeout)
            .map_err(|e| TransportError::Usb(e.to_string()))?;
        loop {
            match self.port.read(buf) {
                Ok(0) => return Err(TransportError::Disconnected),
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(serial_error(e, timeout)),
            }
        }
    }

    fn framing(&self) -> Framing {
        Framing::Stream
    }

    fn describe(&self) -> String {
        self.name.clone()
    }
}
