//! berth-oci: a runc-compatible OCI runtime, as a library and a CLI.

pub mod cgroups;
