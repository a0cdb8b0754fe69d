//! PullImage: fetches an image (through the configured mirrors) into the store, and
//! answers with its id (the config digest), as containerd does.

use berth_api::runtime::v1::{AuthConfig, PullImageRequest, PullImageResponse};
use berth_image::{Reference, RegistryAuth};
use tracing::info;

use super::{ImageService, image_name};
use crate::error::{Error, Result};

impl ImageService {
    pub async fn pull_image(&self, request: PullImageRequest) -> Result<PullImageResponse> {
        let name = image_name(request.image.as_ref())?;
        let reference: Reference = name.parse()?;
        let auth = registry_auth(request.auth.as_ref())?;
        // sandbox_config is not used: no runtime-handler or namespace specific behaviour.
        let pulled = self.puller.pull(&reference, &auth).await;
        self.metrics
            .pull(pulled.is_ok(), pulled.as_ref().map_or(0, |r| r.size));
        let mut record = pulled?;
        if self.is_pinned(&reference) && !record.pinned {
            let id = record.id.to_string();
            record = self.store.set_pinned(&id, true)?.unwrap_or(record);
        }
        info!(reference = %reference, image_id = %record.id, "PullImage done");
        Ok(PullImageResponse {
            image_ref: record.id.to_string(),
        })
    }
}

/// The CRI credentials as a registry credential: a registry token is a bearer token;
/// username/password, or `auth` (base64 `user:password`), is basic auth; nothing is
/// anonymous (and lets the docker config.json answer). Identity tokens (OAuth refresh
/// tokens) are refused: oci-client cannot exchange them.
pub(super) fn registry_auth(auth: Option<&AuthConfig>) -> Result<RegistryAuth> {
    let Some(a) = auth else {
        return Ok(RegistryAuth::Anonymous);
    };
    if !a.registry_token.is_empty() {
        return Ok(RegistryAuth::Bearer(a.registry_token.clone()));
    }
    if !a.username.is_empty() || !a.password.is_empty() {
        return Ok(RegistryAuth::Basic(a.username.clone(), a.password.clone()));
    }
    if !a.auth.is_empty() {
        return berth_image::auth::decode_basic(&a.auth)
            .map_err(|e| Error::InvalidArgument(format!("auth config: {e}")));
    }
    if !a.identity_token.is_empty() {
        return Err(Error::InvalidArgument(
            "auth config: identity_token is not supported; give username/password, auth or registry_token".into(),
        ));
    }
    Ok(RegistryAuth::Anonymous)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_config_becomes_a_registry_credential() {
        let none = registry_auth(None).unwrap();
        assert_eq!(none, RegistryAuth::Anonymous);
        let cases = [
            (
                AuthConfig {
                    username: "u".into(),
                    password: "p".into(),
                    ..Default::default()
                },
                RegistryAuth::Basic("u".into(), "p".into()),
            ),
            (
                AuthConfig {
                    auth: "dTpw".into(),
                    ..Default::default()
                },
                RegistryAuth::Basic("u".into(), "p".into()),
            ),
            (
                AuthConfig {
                    registry_token: "tok".into(),
                    ..Default::default()
                },
                RegistryAuth::Bearer("tok".into()),
            ),
            (AuthConfig::default(), RegistryAuth::Anonymous),
        ];
        for (cfg, want) in cases {
            assert_eq!(registry_auth(Some(&cfg)).unwrap(), want);
        }
        let err = registry_auth(Some(&AuthConfig {
            identity_token: "x".into(),
            ..Default::default()
        }))
        .unwrap_err();
        assert!(err.to_string().contains("identity_token"), "{err}");
        let err = registry_auth(Some(&AuthConfig {
            auth: "!!".into(),
            ..Default::default()
        }))
        .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    }
}
