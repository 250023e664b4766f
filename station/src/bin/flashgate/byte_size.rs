//! Byte counts on the command line: the station library's one parser (also used by the phones
//! file).

pub use station::byte_size::parse_byte_size;
