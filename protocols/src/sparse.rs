//! The Android sparse image format (AOSP libsparse `sparse_format.h`).
