//! berth's gRPC APIs, generated at build time from the protos under `api/proto`.
//!
//! - [`runtime::v1`]: the Kubernetes CRI v1 (`runtime.v1.RuntimeService` and
//!   `runtime.v1.ImageService`), messages plus tonic clients and servers.

pub mod runtime {
    pub mod v1 {
        #![allow(clippy::all, clippy::pedantic, missing_docs)]
        tonic::include_proto!("runtime.v1");

        /// The encoded `FileDescriptorSet` of `runtime/v1/api.proto`.
        pub const FILE_DESCRIPTOR_SET: &[u8] =
            include_bytes!(concat!(env!("OUT_DIR"), "/runtime_v1_descriptor.bin"));

        /// Registry credentials must never reach a log: show only which fields are set.
        impl std::fmt::Debug for AuthConfig {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                fn redacted(s: &str) -> &'static str {
                    if s.is_empty() { "" } else { "<redacted>" }
                }
                f.debug_struct("AuthConfig")
                    .field("username", &self.username)
                    .field("password", &redacted(&self.password))
                    .field("auth", &redacted(&self.auth))
                    .field("server_address", &self.server_address)
                    .field("identity_token", &redacted(&self.identity_token))
                    .field("registry_token", &redacted(&self.registry_token))
                    .finish()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use prost_types::{DescriptorProto, FileDescriptorProto, FileDescriptorSet};

    use super::runtime::v1::FILE_DESCRIPTOR_SET;

    fn api_file() -> FileDescriptorProto {
        let set = FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).expect("descriptor set decodes");
        set.file
            .into_iter()
            .find(|f| f.package() == "runtime.v1")
            .expect("runtime.v1 file in the set")
    }

    fn message<'a>(file: &'a FileDescriptorProto, name: &str) -> &'a DescriptorProto {
        file.message_type
            .iter()
            .find(|m| m.name() == name)
            .unwrap_or_else(|| panic!("message {name} missing"))
    }

    fn field_number(file: &FileDescriptorProto, msg: &str, field: &str) -> i32 {
        message(file, msg)
            .field
            .iter()
            .find(|f| f.name() == field)
            .unwrap_or_else(|| panic!("field {msg}.{field} missing"))
            .number()
    }

    #[test]
    fn critical_field_numbers_match_upstream_cri() {
        let file = api_file();
        for (msg, field, number) in [
            ("PodSandboxConfig", "metadata", 1),
            ("PodSandboxConfig", "linux", 8),
            // upstream has reason = 10 and message = 11 (not reason = 11)
            ("ContainerStatus", "reason", 10),
            ("ContainerStatus", "message", 11),
            ("ContainerStatus", "image_ref", 9),
            ("RuntimeConfigResponse", "linux", 1),
            ("LinuxRuntimeConfiguration", "cgroup_driver", 1),
            ("StatusResponse", "info", 2),
            ("CreateContainerRequest", "sandbox_config", 3),
            ("UpdateRuntimeConfigRequest", "runtime_config", 1),
        ] {
            assert_eq!(field_number(&file, msg, field), number, "{msg}.{field}");
        }
    }

    #[test]
    fn services_have_upstream_names_and_streaming() {
        let file = api_file();
        let runtime = file
            .service
            .iter()
            .find(|s| s.name() == "RuntimeService")
            .expect("RuntimeService");
        let image = file
            .service
            .iter()
            .find(|s| s.name() == "ImageService")
            .expect("ImageService");
        assert_eq!(runtime.method.len(), 35);
        assert_eq!(image.method.len(), 6);
        let events = runtime
            .method
            .iter()
            .find(|m| m.name() == "GetContainerEvents")
            .expect("GetContainerEvents");
        assert!(events.server_streaming() && !events.client_streaming());
        assert_eq!(events.input_type(), ".runtime.v1.GetEventsRequest");
    }

    #[test]
    fn auth_config_debug_redacts_secrets() {
        let auth = super::runtime::v1::AuthConfig {
            username: "alice".into(),
            password: "hunter2".into(),
            auth: "YWxpY2U6aHVudGVyMg==".into(),
            registry_token: "tok".into(),
            ..Default::default()
        };
        let shown = format!("{auth:?}");
        assert!(shown.contains("alice"), "{shown}");
        for secret in ["hunter2", "YWxpY2U6aHVudGVyMg==", "\"tok\""] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn cgroup_driver_enum_values() {
        use super::runtime::v1::CgroupDriver;
        assert_eq!(CgroupDriver::Systemd as i32, 0);
        assert_eq!(CgroupDriver::Cgroupfs as i32, 1);
    }
}
