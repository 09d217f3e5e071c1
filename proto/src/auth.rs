//! Who is calling: bearer tokens mapped to tenants, or the `X-Scope-OrgID` header when no
//! tokens are configured. Shared by the receivers and the API.

use subtle::ConstantTimeEq;

use crate::{TENANT_HEADER, Tenant, parse_tenant};

/// Why a caller was not given a tenant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Tokens are configured and the request has none, or an unknown one.
    #[error("missing or invalid bearer token")]
    Unauthenticated,
    /// The tenant header is malformed.
    #[error("{0}")]
    InvalidTenant(String),
}

/// Resolves the tenant of a request.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    tokens: Vec<(Vec<u8>, Tenant)>,
    /// Tokens that may also act for every tenant (reload the SLO files).
    admins: Vec<Vec<u8>>,
}

impl Auth {
    /// Without tokens: every request is trusted to name its tenant.
    pub fn open() -> Self {
        Self::default()
    }

    /// With `tokens` (token, tenant): every request must carry one of them as
    /// `Authorization: Bearer TOKEN`, and belongs to its tenant.
    pub fn with_tokens(tokens: impl IntoIterator<Item = (String, Tenant)>) -> Self {
        Self {
            tokens: tokens
                .into_iter()
                .map(|(t, tenant)| (t.into_bytes(), tenant))
                .collect(),
            admins: Vec::new(),
        }
    }

    /// These tokens (also among the tenants' tokens) as admin tokens.
    pub fn with_admins(mut self, admins: impl IntoIterator<Item = String>) -> Self {
        self.admins = admins.into_iter().map(String::into_bytes).collect();
        self
    }

    /// Whether a request with this `Authorization` value may act for every tenant
    /// (reload the SLO files): any request without tokens, with tokens only an admin
    /// token's. Every admin token is compared, in constant time.
    pub fn is_admin(&self, authorization: Option<&[u8]>) -> bool {
        if self.tokens.is_empty() {
            return true;
        }
        let Some(presented) = authorization.and_then(|v| {
            v.strip_prefix(b"Bearer ")
                .or_else(|| v.strip_prefix(b"bearer "))
        }) else {
            return false;
        };
        let mut found = false;
        for token in &self.admins {
            found |= bool::from(token.as_slice().ct_eq(presented));
        }
        found
    }

    /// Whether tokens are required.
    pub fn requires_token(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// The tenant for a request with these `Authorization` and `X-Scope-OrgID` values.
    /// With tokens, the token decides and the tenant header is ignored. Every configured
    /// token is compared, in constant time, whatever matches.
    pub fn tenant(
        &self,
        authorization: Option<&[u8]>,
        org_id: Option<&[u8]>,
    ) -> Result<Tenant, AuthError> {
        if self.tokens.is_empty() {
            return parse_tenant(org_id).map_err(AuthError::InvalidTenant);
        }
        let presented = authorization
            .and_then(|v| {
                v.strip_prefix(b"Bearer ")
                    .or_else(|| v.strip_prefix(b"bearer "))
            })
            .ok_or(AuthError::Unauthenticated)?;
        let mut found: Option<&Tenant> = None;
        for (token, tenant) in &self.tokens {
            if bool::from(token.as_slice().ct_eq(presented)) {
                found = Some(tenant);
            }
        }
        found.cloned().ok_or(AuthError::Unauthenticated)
    }
}

/// The header names [`Auth::tenant`] reads, for callers that pass raw header maps.
pub const HEADERS: [&str; 2] = ["authorization", TENANT_HEADER];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_uses_the_header() {
        let a = Auth::open();
        assert_eq!(&*a.tenant(None, None).unwrap(), "default");
        assert_eq!(
            &*a.tenant(Some(b"Bearer x"), Some(b"team-a")).unwrap(),
            "team-a"
        );
        assert!(matches!(
            a.tenant(None, Some(b"a b")),
            Err(AuthError::InvalidTenant(_))
        ));
    }

    #[test]
    fn tokens_decide_the_tenant() {
        let a = Auth::with_tokens([
            ("s3cret-a".to_string(), Tenant::from("team-a")),
            ("s3cret-b".to_string(), Tenant::from("team-b")),
        ]);
        assert_eq!(
            &*a.tenant(Some(b"Bearer s3cret-b"), Some(b"team-a")).unwrap(),
            "team-b"
        );
        assert_eq!(
            a.tenant(Some(b"Bearer s3cret-c"), None),
            Err(AuthError::Unauthenticated)
        );
        assert_eq!(
            a.tenant(Some(b"s3cret-a"), None),
            Err(AuthError::Unauthenticated)
        );
        assert_eq!(
            a.tenant(None, Some(b"team-a")),
            Err(AuthError::Unauthenticated)
        );
    }
}
