//! Qualcomm Sahara: the boot ROM protocol that uploads a programmer (and reads identity in command mode).
