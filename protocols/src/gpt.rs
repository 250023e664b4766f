//! GUID Partition Table codec (UEFI spec), shared by hosts resolving labels and simulated phones.
