//! USB bulk links through libusb (rusb, vendored libusb).
//!
//! A device is chosen by port path (`1-4.2`, as in sysfs) or serial string, and an interface by
//! its class triple — never by a vendor/product allow-list, because phone makers reuse the
//! standard fastboot and Qualcomm interfaces under many IDs.

use std::ptr::NonNull;
use std::time::Duration;

use rusb::{Context, Device, DeviceHandle, Direction, TransferType, UsbContext};

use super::{too_long, SendBuffer, Transport, TransportError};

/// Which interface to claim: class, subclass and any of the accepted protocols; optionally the
/// device's vendor id (Qualcomm EDL is 05c6 plus its interface).
#[derive(Debug, Clone)]
pub struct InterfaceMatch {
    pub vendor_id: Option<u16>,
    pub class: u8,
    pub subclass: u8,
    pub protocols: &'static [u8],
}

/// The fastboot interface (AOSP: class 0xff, subclass 0x42, protocol 0x03).
pub const FASTBOOT_INTERFACE: InterfaceMatch = InterfaceMatch {
    vendor_id: None,
    class: 0xff,
    subclass: 0x42,
    protocols: &[0x03],
};

/// Qualcomm EDL / QDLoader (vendor 05c6, class 0xff, subclass 0xff, protocol 0x10/0x11/0x13/0xff).
pub const EDL_INTERFACE: InterfaceMatch = InterfaceMatch {
    vendor_id: Some(0x05c6),
    class: 0xff,
    subclass: 0xff,
    protocols: &[0x10, 0x11, 0x13, 0xff],
};

/// How to pick one device among those attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceSelector {
    PortPath(String),
    Serial(String),
    /// The only matching device; an error if there are none or several.
    Any,
}

/// `1-4.2`: bus number, then the chain of hub port numbers, as Linux names it in sysfs.
pub fn port_path_of<T: UsbContext>(device: &Device<T>) -> String {
    let ports = device.port_numbers().unwrap_or_default();
    let chain: Vec<String> = ports.iter().map(u8::to_string).collect();
    if chain.is_empty() {
        // A root hub itself: `usb1` in sysfs.
        format!("usb{}", device.bus_number())
    } else {
        format!("{}-{}", device.bus_number(), chain.join("."))
    }
}

fn usb_error(e: rusb::Error, timeout: Duration) -> TransportError {
    match e {
        rusb::Error::Timeout => TransportError::Timeout(timeout),
        rusb::Error::NoDevice | rusb::Error::NotFound => TransportError::Disconnected,
        rusb::Error::Pipe => TransportError::Stall,
        rusb::Error::Io => TransportError::Disconnected,
        other => TransportError::Usb(other.to_string()),
    }
}

/// The endpoints of a matching interface.
#[derive(Debug, Clone, Copy)]
pub struct Endpoints {
    pub interface: u8,
    pub alt_setting: u8,
    pub bulk_in: u8,
    pub bulk_out: u8,
    pub max_packet_out: u16,
}

/// Find the interface of `device` matching `want`, with one bulk IN and one bulk OUT endpoint.
pub fn find_interface<T: UsbContext>(
    device: &Device<T>,
    want: &InterfaceMatch,
) -> Option<Endpoints> {
    let desc = device.device_descriptor().ok()?;
    if want.vendor_id.is_some_and(|v| v != desc.vendor_id()) {
        return None;
    }
    let config = device.active_config_descriptor().ok()?;
    for interface in config.interfaces() {
        for alt in interface.descriptors() {
            if alt.class_code() != want.class
                || alt.sub_class_code() != want.subclass
                || !want.protocols.contains(&alt.protocol_code())
            {
                continue;
            }
            let mut bulk_in = None;
            let mut bulk_out = None;
            for ep in alt.endpoint_descriptors() {
                if ep.transfer_type() != TransferType::Bulk {
                    continue;
                }
                match ep.direction() {
                    Direction::In => bulk_in = bulk_in.or(Some(ep.address())),
                    Direction::Out => {
                        bulk_out = bulk_out.or(Some((ep.address(), ep.max_packet_size())))
                    }
                }
            }
            if let (Some(bulk_in), Some((bulk_out, mps))) = (bulk_in, bulk_out) {
                return Some(Endpoints {
                    interface: alt.interface_number(),
                    alt_setting: alt.setting_number(),
                    bulk_in,
                    bulk_out,
                    max_packet_out: mps,
                });
            }
        }
    }
    None
}

/// Read the serial-number string descriptor (None if the device has none or will not say).
pub fn serial_of<T: UsbContext>(device: &Device<T>, timeout: Duration) -> Option<String> {
    let desc = device.device_descriptor().ok()?;
    desc.serial_number_string_index()?;
    let handle = device.open().ok()?;
    let lang = *handle.read_languages(timeout).ok()?.first()?;
    handle.read_serial_number_string(lang, &desc, timeout).ok()
}

/// One attached device that has a matching interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedDevice {
    pub port_path: String,
    pub vendor_id: u16,
    pub product_id: u16,
    pub serial: Option<String>,
    pub product: Option<String>,
}

/// Why devices could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// The machine has no USB subsystem (no usbfs): nothing can be attached.
    #[error("no USB subsystem: {0}")]
    NoUsbSubsystem(String),
    #[error("cannot list USB devices: {0}")]
    Usb(String),
}

/// Every attached device with an interface matching `want`, in port-path order.
pub fn list_devices(want: &InterfaceMatch) -> Result<Vec<AttachedDevice>, ListError> {
    let context = Context::new().map_err(|e| ListError::NoUsbSubsystem(e.to_string()))?;
    let devices = context
        .devices()
        .map_err(|e| ListError::Usb(e.to_string()))?;
    let timeout = Duration::from_millis(500);
    let mut out = Vec::new();
    for device in devices.iter() {
        if find_interface(&device, want).is_none() {
            continue;
        }
        let Ok(desc) = device.device_descriptor() else {
            continue;
        };
        let strings = device.open().ok().and_then(|h| {
            let lang = *h.read_languages(timeout).ok()?.first()?;
            Some((
                h.read_serial_number_string(lang, &desc, timeout).ok(),
                h.read_product_string(lang, &desc, timeout).ok(),
            ))
        });
        let (serial, product) = strings.unwrap_or((None, None));
        out.push(AttachedDevice {
            port_path: port_path_of(&device),
            vendor_id: desc.vendor_id(),
            product_id: desc.product_id(),
            serial,
            product,
        });
    }
    out.sort_by(|a, b| a.port_path.cmp(&b.port_path));
    Ok(out)
}

pub struct UsbLink {
    handle: DeviceHandle<Context>,
    endpoints: Endpoints,
    name: String,
    /// Bytes of the last IN transfer that did not fit the caller's `read_stream` buffer.
    pending: Vec<u8>,
    pending_at: usize,
    /// Receive buffer for `read_stream` (whole packets, see there).
    rx: Vec<u8>,
    /// What [`Transport::send_buffer`] lends; freed in `drop`, before the handle closes.
    tx: TxBuffer,
}

/// How a USB link sends what the host streams through [`Transport::send_buffer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendPath {
    /// Nothing lent yet.
    NotYet,
    /// From memory mapped from usbfs: the kernel sends it in place (one copy on the host, the
    /// read that filled it).
    ZeroCopy,
    /// From ordinary memory, which usbfs copies into the kernel (libusb or the kernel could not
    /// map transfer memory: not Linux, Linux before 4.6, or the usbfs memory budget spent).
    Copying,
}

/// The transfer buffer a link lends, one per link.
enum TxBuffer {
    None,
    Mapped(DevMem),
    Heap(Vec<u8>),
}

/// Memory from `libusb_dev_mem_alloc`: a `MAP_SHARED` mapping of the usbfs file that a bulk
/// transfer whose buffer lies inside it is sent from without a copy.
struct DevMem {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory that only this link's `TxBuffer` refers to; which thread
// touches it does not matter, the kernel only reads it during a transfer this link makes.
unsafe impl Send for DevMem {}

// libusb ≥ 1.0.21 has these (the vendored copy is newer); rusb's ffi does not declare them.
extern "system" {
    fn libusb_dev_mem_alloc(
        dev_handle: *mut rusb::ffi::libusb_device_handle,
        length: usize,
    ) -> *mut u8;
    fn libusb_dev_mem_free(
        dev_handle: *mut rusb::ffi::libusb_device_handle,
        buffer: *mut u8,
        length: usize,
    ) -> i32;
}

/// Largest bulk transfer handed to libusb at once, and the largest send buffer a link lends.
/// usbfs allocates kernel memory for every byte in flight, and for the mapped send buffer while
/// the link is open (16 MiB for all devices by default), so one huge write would fail with
/// ENOMEM on a busy hub; a multiple of every wMaxPacketSize, so the split is invisible on the
/// wire. A mapped buffer is also physically contiguous on controllers without DMA (kmalloc), so
/// larger ones would often be refused.
const MAX_TRANSFER: usize = 1 << 20;

impl UsbLink {
    /// Open the device chosen by `selector` and claim its interface matching `want`.
    pub fn open(selector: &DeviceSelector, want: &InterfaceMatch) -> Result<Self, TransportError> {
        let context = Context::new().map_err(|e| {
            TransportError::Usb(format!(
                "no USB subsystem: cannot start libusb ({e}); is /dev/bus/usb present?"
            ))
        })?;
        let devices = context
            .devices()
            .map_err(|e| TransportError::Usb(format!("cannot list USB devices: {e}")))?;
        let timeout = Duration::from_secs(1);
        let mut found = Vec::new();
        for device in devices.iter() {
            let Some(endpoints) = find_interface(&device, want) else {
                continue;
            };
            let port = port_path_of(&device);
            let selected = match selector {
                DeviceSelector::PortPath(p) => *p == port,
                DeviceSelector::Serial(s) => serial_of(&device, timeout).as_deref() == Some(s),
                DeviceSelector::Any => true,
            };
            if selected {
                found.push((device, endpoints, port));
            }
        }
        let (device, endpoints, port) = match found.len() {
            0 => {
                return Err(TransportError::NotFound(format!(
                "no matching USB device for {selector:?} (check the cable and `flashgate devices`)"
            )))
            }
            1 => found.pop().expect("one element"),
            n => {
                return Err(TransportError::Usb(format!(
                    "{n} matching USB devices; choose one with usb:PORT_PATH or usb-serial:SERIAL"
                )))
            }
        };
        let handle = device.open().map_err(|e| match e {
            rusb::Error::Access => TransportError::Usb(format!(
                "permission denied opening USB device at {port}: install udev/ rules and join the flashgate group"
            )),
            other => usb_error(other, timeout),
        })?;
        // Kernel drivers (e.g. qcserial on EDL) may hold the interface; detach them if libusb can.
        let _ = handle.set_auto_detach_kernel_driver(true);
        handle
            .claim_interface(endpoints.interface)
            .map_err(|e| usb_error(e, timeout))?;
        if endpoints.alt_setting != 0 {
            handle
                .set_alternate_setting(endpoints.interface, endpoints.alt_setting)
                .map_err(|e| usb_error(e, timeout))?;
        }
        Ok(UsbLink {
            handle,
            endpoints,
            name: format!("usb:{port}"),
            pending: Vec::new(),
            pending_at: 0,
            rx: Vec::new(),
            tx: TxBuffer::None,
        })
    }

    /// Which way the data the host streams goes out ([`Transport::send_buffer`]): tests and
    /// logs use it to see whether usbfs's zero-copy path is taken.
    pub fn send_path(&self) -> SendPath {
        match self.tx {
            TxBuffer::None => SendPath::NotYet,
            TxBuffer::Mapped(_) => SendPath::ZeroCopy,
            TxBuffer::Heap(_) => SendPath::Copying,
        }
    }

    /// Make the transfer buffer at least `len` bytes long: usbfs memory while the kernel
    /// gives it, ordinary memory from the first refusal on.
    fn ensure_tx(&mut self, len: usize) {
        match &mut self.tx {
            TxBuffer::Mapped(mem) if mem.len >= len => return,
            TxBuffer::Heap(buf) => {
                if buf.len() < len {
                    buf.resize(len, 0);
                }
                return;
            }
            TxBuffer::Mapped(_) | TxBuffer::None => {}
        }
        self.free_tx();
        // SAFETY: the handle is open for the lifetime of `self`; libusb returns NULL or a
        // mapping of `len` bytes, which `free_tx` unmaps before the handle closes.
        let ptr = unsafe { libusb_dev_mem_alloc(self.handle.as_raw(), len) };
        self.tx = match NonNull::new(ptr) {
            Some(ptr) => {
                tracing::debug!(link = %self.name, bytes = len, "zero-copy send buffer (usbfs memory)");
                TxBuffer::Mapped(DevMem { ptr, len })
            }
            None => {
                tracing::info!(
                    link = %self.name,
                    bytes = len,
                    "no usbfs transfer memory (libusb_dev_mem_alloc failed): sends are copied into the kernel"
                );
                TxBuffer::Heap(vec![0; len])
            }
        };
    }

    /// Give usbfs memory back (the kernel counts it against usbfs_memory_mb until then).
    fn free_tx(&mut self) {
        if let TxBuffer::Mapped(mem) = std::mem::replace(&mut self.tx, TxBuffer::None) {
            // SAFETY: `mem` came from `libusb_dev_mem_alloc` on this open handle with this
            // length, and no slice of it outlives this call (lent slices borrow `self`).
            let code =
                unsafe { libusb_dev_mem_free(self.handle.as_raw(), mem.ptr.as_ptr(), mem.len) };
            if code != 0 {
                tracing::warn!(link = %self.name, code, "freeing usbfs transfer memory failed");
            }
        }
    }

    /// The transfer buffer (as long as [`Self::ensure_tx`] made it).
    fn tx_bytes(&self) -> &[u8] {
        match &self.tx {
            // SAFETY: the mapping is `mem.len` bytes of readable memory that lives until
            // `free_tx`, which needs `&mut self`, so not while this borrow lasts.
            TxBuffer::Mapped(mem) => unsafe {
                std::slice::from_raw_parts(mem.ptr.as_ptr(), mem.len)
            },
            TxBuffer::Heap(buf) => buf,
            TxBuffer::None => &[],
        }
    }

    fn tx_bytes_mut(&mut self) -> &mut [u8] {
        match &mut self.tx {
            // SAFETY: as in `tx_bytes`; the mapping is also writable, and this borrow of `self`
            // is the only way to it, so the slice is not aliased.
            TxBuffer::Mapped(mem) => unsafe {
                std::slice::from_raw_parts_mut(mem.ptr.as_ptr(), mem.len)
            },
            TxBuffer::Heap(buf) => buf,
            TxBuffer::None => &mut [],
        }
    }
}

/// The rusb error for a libusb return code (rusb keeps its own conversion private).
fn libusb_error(code: i32) -> rusb::Error {
    use rusb::constants::*;
    match code {
        LIBUSB_ERROR_IO => rusb::Error::Io,
        LIBUSB_ERROR_INVALID_PARAM => rusb::Error::InvalidParam,
        LIBUSB_ERROR_ACCESS => rusb::Error::Access,
        LIBUSB_ERROR_NO_DEVICE => rusb::Error::NoDevice,
        LIBUSB_ERROR_NOT_FOUND => rusb::Error::NotFound,
        LIBUSB_ERROR_BUSY => rusb::Error::Busy,
        LIBUSB_ERROR_TIMEOUT => rusb::Error::Timeout,
        LIBUSB_ERROR_OVERFLOW => rusb::Error::Overflow,
        LIBUSB_ERROR_PIPE => rusb::Error::Pipe,
        LIBUSB_ERROR_INTERRUPTED => rusb::Error::Interrupted,
        LIBUSB_ERROR_NO_MEM => rusb::Error::NoMem,
        LIBUSB_ERROR_NOT_SUPPORTED => rusb::Error::NotSupported,
        _ => rusb::Error::Other,
    }
}

impl UsbLink {
    /// One bulk IN transfer. Unlike rusb's `read_bulk`, bytes that arrived before a timeout are
    /// returned, not dropped: a device that ends a message on a packet boundary without a
    /// zero-length packet leaves the host waiting for more until the timeout, and what it did
    /// send is the message (seen with Firehose logs of 512·n bytes on the virtual bus).
    fn bulk_read(
        &self,
        endpoint: u8,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<usize, rusb::Error> {
        let mut transferred: i32 = 0;
        let len = i32::try_from(buf.len()).unwrap_or(i32::MAX);
        // libusb reads 0 as "wait forever": every read here has a deadline.
        let ms = u32::try_from(timeout.as_millis())
            .unwrap_or(u32::MAX)
            .max(1);
        // SAFETY: `buf` is valid for `len` bytes for the duration of this synchronous call and
        // the handle is open for the lifetime of `self`.
        let code = unsafe {
            rusb::ffi::libusb_bulk_transfer(
                self.handle.as_raw(),
                endpoint,
                buf.as_mut_ptr(),
                len,
                &mut transferred,
                ms,
            )
        };
        let got = usize::try_from(transferred).unwrap_or(0).min(buf.len());
        match code {
            0 => Ok(got),
            rusb::constants::LIBUSB_ERROR_TIMEOUT | rusb::constants::LIBUSB_ERROR_INTERRUPTED
                if got > 0 =>
            {
                Ok(got)
            }
            other => Err(libusb_error(other)),
        }
    }

    /// Map a libusb error; a stalled endpoint is cleared so the link stays usable once the
    /// protocol has dealt with the [`TransportError::Stall`] (libusb leaves it halted).
    fn transfer_error(&self, e: rusb::Error, endpoint: u8, timeout: Duration) -> TransportError {
        if e == rusb::Error::Pipe {
            let _ = self.handle.clear_halt(endpoint);
        }
        usb_error(e, timeout)
    }

    fn take_pending(&mut self, buf: &mut [u8]) -> usize {
        let rest = &self.pending[self.pending_at..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.pending_at += n;
        if self.pending_at == self.pending.len() {
            self.pending.clear();
            self.pending_at = 0;
        }
        n
    }

    fn max_packet_in(&self) -> usize {
        // The IN endpoint has the same wMaxPacketSize as OUT on every fastboot/EDL device;
        // 512 (high speed) is the safe multiple when a descriptor says 0.
        match usize::from(self.endpoints.max_packet_out) {
            0 => 512,
            n => n,
        }
    }
}

impl UsbLink {
    /// Send `data` in bulk OUT transfers of at most [`MAX_TRANSFER`] bytes, straight from where
    /// it lies (so from usbfs memory without a copy into the kernel).
    fn bulk_write(&self, data: &[u8], timeout: Duration) -> Result<(), TransportError> {
        let out = self.endpoints.bulk_out;
        if data.is_empty() {
            return self
                .handle
                .write_bulk(out, &[], timeout)
                .map(|_| ())
                .map_err(|e| self.transfer_error(e, out, timeout));
        }
        for chunk in data.chunks(MAX_TRANSFER) {
            let mut sent = 0;
            // libusb may complete a bulk OUT transfer partially; keep going until all is out.
            while sent < chunk.len() {
                let n = self
                    .handle
                    .write_bulk(out, &chunk[sent..], timeout)
                    .map_err(|e| self.transfer_error(e, out, timeout))?;
                if n == 0 {
                    return Err(TransportError::Timeout(timeout));
                }
                sent += n;
            }
        }
        Ok(())
    }
}

/// What a USB link lends: its transfer buffer (see [`SendPath`]).
struct UsbSendBuffer<'a> {
    link: &'a mut UsbLink,
    len: usize,
}

impl SendBuffer for UsbSendBuffer<'_> {
    fn buffer(&mut self) -> &mut [u8] {
        let lent = self.link.tx_bytes_mut();
        let len = self.len.min(lent.len());
        &mut lent[..len]
    }

    fn send(&mut self, len: usize, timeout: Duration) -> Result<(), TransportError> {
        let lent = self.link.tx_bytes();
        let capacity = self.len.min(lent.len());
        if len > capacity {
            return Err(too_long(len, capacity));
        }
        self.link.bulk_write(&lent[..len], timeout)
    }

    fn send_zero_length(&mut self, timeout: Duration) -> Result<(), TransportError> {
        self.link.write_zero_length(timeout)
    }
}

impl Transport for UsbLink {
    fn write(&mut self, data: &[u8], timeout: Duration) -> Result<(), TransportError> {
        self.bulk_write(data, timeout)
    }

    /// The link's transfer buffer, at most [`MAX_TRANSFER`] bytes: usbfs memory where the kernel
    /// maps it (see [`SendPath`]), kept for the link's next data phases.
    fn send_buffer(&mut self, len: usize) -> Box<dyn SendBuffer + '_> {
        let len = len.min(MAX_TRANSFER);
        if len > 0 {
            self.ensure_tx(len);
        }
        Box::new(UsbSendBuffer { link: self, len })
    }

    fn read_packet(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        if self.pending_at < self.pending.len() {
            let left = self.pending.len() - self.pending_at;
            if left > buf.len() {
                self.pending.clear();
                self.pending_at = 0;
                return Err(TransportError::Overflow {
                    len: left,
                    max: buf.len(),
                });
            }
            return Ok(self.take_pending(buf));
        }
        let endpoint = self.endpoints.bulk_in;
        let packet = self.max_packet_in();
        if buf.len().is_multiple_of(packet) {
            return self.bulk_read(endpoint, buf, timeout).map_err(|e| match e {
                rusb::Error::Overflow => TransportError::Overflow {
                    len: buf.len() + 1,
                    max: buf.len(),
                },
                other => self.transfer_error(other, endpoint, timeout),
            });
        }
        // Receive whole packets so that a packet longer than `buf` is measured, not just
        // refused by the host controller, and the error can say how long it was.
        let whole = buf.len().div_ceil(packet) * packet;
        let mut rx = std::mem::take(&mut self.rx);
        rx.resize(whole, 0);
        let result = self.bulk_read(endpoint, &mut rx, timeout);
        let outcome = match result {
            Ok(n) if n <= buf.len() => {
                buf[..n].copy_from_slice(&rx[..n]);
                Ok(n)
            }
            Ok(n) => Err(TransportError::Overflow {
                len: n,
                max: buf.len(),
            }),
            Err(rusb::Error::Overflow) => Err(TransportError::Overflow {
                len: whole + 1,
                max: buf.len(),
            }),
            Err(e) => Err(self.transfer_error(e, endpoint, timeout)),
        };
        self.rx = rx;
        outcome
    }

    /// Data phases: a buffer that is not a whole number of packets would make the host
    /// controller report an overflow when the device's packet does not fit (the AOSP client
    /// hits this with odd sizes), so read whole packets and keep the excess for the next call.
    fn read_stream(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.pending_at < self.pending.len() {
            return Ok(self.take_pending(buf));
        }
        let packet = self.max_packet_in();
        let want = buf.len().min(MAX_TRANSFER);
        if want.is_multiple_of(packet) {
            let endpoint = self.endpoints.bulk_in;
            return self
                .bulk_read(endpoint, &mut buf[..want], timeout)
                .map_err(|e| self.transfer_error(e, endpoint, timeout));
        }
        let whole = want.div_ceil(packet) * packet;
        let mut rx = std::mem::take(&mut self.rx);
        rx.resize(whole, 0);
        let endpoint = self.endpoints.bulk_in;
        let result = self.bulk_read(endpoint, &mut rx, timeout);
        let n = match result {
            Ok(n) => n,
            Err(e) => {
                self.rx = rx;
                return Err(self.transfer_error(e, endpoint, timeout));
            }
        };
        let direct = n.min(buf.len());
        buf[..direct].copy_from_slice(&rx[..direct]);
        if n > direct {
            self.pending.clear();
            self.pending.extend_from_slice(&rx[direct..n]);
            self.pending_at = 0;
        }
        self.rx = rx;
        Ok(direct)
    }

    fn max_packet_size(&self) -> Option<usize> {
        Some(usize::from(self.endpoints.max_packet_out))
    }

    fn write_zero_length(&mut self, timeout: Duration) -> Result<(), TransportError> {
        let out = self.endpoints.bulk_out;
        self.handle
            .write_bulk(out, &[], timeout)
            .map(|_| ())
            .map_err(|e| self.transfer_error(e, out, timeout))
    }

    fn describe(&self) -> String {
        self.name.clone()
    }
}

impl Drop for UsbLink {
    fn drop(&mut self) {
        // Before the handle (a field, dropped after this) closes the usbfs file.
        self.free_tx();
        let _ = self.handle.release_interface(self.endpoints.interface);
    }
}
