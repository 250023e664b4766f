//! Qualcomm Firehose: the XML protocol spoken by a running programmer.
