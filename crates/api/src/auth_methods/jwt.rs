//! JWT/OIDC.

/// Drops what is cached for a disabled mount.
pub(crate) fn forget_mount(_mount_id: &str) {}
