//! TEMPORARY placeholder, replaced by the seccomp branch before merge.
pub type Result<T> = std::result::Result<T, SeccompError>;
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp is not supported yet")]
    Unsupported,
}
pub struct Filter;
pub fn validate(_p: &oci_spec::runtime::LinuxSeccomp) -> Result<()> {
    Ok(())
}
pub fn compile(_p: &oci_spec::runtime::LinuxSeccomp) -> Result<Filter> {
    Err(SeccompError::Unsupported)
}
impl Filter {
    pub fn load(self) -> Result<Option<std::os::fd::OwnedFd>> {
        Ok(None)
    }
}
pub fn features() -> serde_json::Value {
    serde_json::json!({"enabled": false})
}
