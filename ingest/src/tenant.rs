//! Which tenant a request belongs to.

use axum::http::HeaderMap;
use slotel_proto::{TENANT_HEADER, Tenant, parse_tenant};

/// The tenant named by `X-Scope-OrgID`, or `default`; an invalid value is an error
/// message for the client.
pub fn from_headers(headers: &HeaderMap) -> Result<Tenant, String> {
    parse_tenant(headers.get(TENANT_HEADER).map(|v| v.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_named_and_invalid() {
        let mut h = HeaderMap::new();
        assert_eq!(&*from_headers(&h).unwrap(), "default");
        h.insert(TENANT_HEADER, "team-a".parse().unwrap());
        assert_eq!(&*from_headers(&h).unwrap(), "team-a");
        h.insert(TENANT_HEADER, "a b".parse().unwrap());
        assert!(from_headers(&h).is_err());
    }
}
