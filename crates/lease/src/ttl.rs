//! Vault's lease TTL rules (`CalculateTTL`), as pure functions.

use crate::SYSTEM_DEFAULT_TTL_SECS;

/// A mount's tuning; 0 means "the system default".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MountTtls {
    pub default_lease_ttl: u64,
    pub max_lease_ttl: u64,
}

impl MountTtls {
    pub fn effective_default(self) -> u64 {
        if self.default_lease_ttl > 0 { self.default_lease_ttl } else { SYSTEM_DEFAULT_TTL_SECS }
    }

    pub fn effective_max(self) -> u64 {
        if self.max_lease_ttl > 0 { self.max_lease_ttl } else { SYSTEM_DEFAULT_TTL_SECS }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TtlDecision {
    /// The TTL granted, in seconds.
    pub ttl: u64,
    /// The effective maximum it was held to.
    pub max: u64,
    /// Set when the asked TTL was over the maximum and was cut: (asked, max), for Vault's
    /// warning `TTL of "<ttl>" exceeded the effective max_ttl of "<max>"; ...`.
    pub capped_from: Option<u64>,
}

/// Vault's `CalculateTTL` for a new lease: the backend's TTL (or the mount default) held to the
/// mount maximum, lowered further by the backend's maximum when that is set and smaller.
pub fn calculate_ttl(backend_ttl: u64, backend_max: u64, mount: MountTtls) -> TtlDecision {
    let mut max = mount.effective_max();
    if backend_max > 0 && backend_max < max {
        max = backend_max;
    }
    let asked = if backend_ttl > 0 { backend_ttl } else { mount.effective_default() };
    if asked > max {
        TtlDecision { ttl: max, max, capped_from: Some(asked) }
    } else {
        TtlDecision { ttl: asked, max, capped_from: None }
    }
}

/// The TTL for an STS credential request: the request's `ttl`, else the role's default, else
/// one hour; silently held to the role's maximum, else the mount's.
pub fn sts_ttl(requested: Option<u64>, role_default: u64, role_max: u64, mount: MountTtls) -> u64 {
    let ttl = match requested {
        Some(t) if t > 0 => t,
        _ if role_default > 0 => role_default,
        _ => 3600,
    };
    let max = if role_max > 0 { role_max } else { mount.effective_max() };
    ttl.min(max)
}

/// Renewing a lease: the increment (or the backend's TTL, or the mount default), held so that
/// the lease never outlives `issue + max`. Err when that point has passed already.
pub fn renew_ttl(
    now_ms: i64,
    issue_ms: i64,
    increment: u64,
    backend_ttl: u64,
    backend_max: u64,
    mount: MountTtls,
) -> Result<TtlDecision, PastMaxTtl> {
    let mut max = mount.effective_max();
    if backend_max > 0 && backend_max < max {
        max = backend_max;
    }
    let deadline =
        issue_ms.saturating_add(i64::try_from(max).unwrap_or(i64::MAX / 1000).saturating_mul(1000));
    let remaining = (deadline - now_ms) / 1000;
    if remaining <= 0 {
        return Err(PastMaxTtl);
    }
    let remaining = remaining as u64;
    let asked = if increment > 0 {
        increment
    } else if backend_ttl > 0 {
        backend_ttl
    } else {
        mount.effective_default()
    };
    if asked > remaining {
        Ok(TtlDecision { ttl: remaining, max, capped_from: Some(asked) })
    } else {
        Ok(TtlDecision { ttl: asked, max, capped_from: None })
    }
}

/// The lease has reached its maximum lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PastMaxTtl;

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT_MOUNT: MountTtls = MountTtls { default_lease_ttl: 0, max_lease_ttl: 0 };

    #[test]
    fn defaults_are_768_hours() {
        let d = calculate_ttl(0, 0, DEFAULT_MOUNT);
        assert_eq!(d, TtlDecision { ttl: 2_764_800, max: 2_764_800, capped_from: None });
    }

    #[test]
    fn backend_ttl_wins_and_is_capped_by_the_smaller_max() {
        assert_eq!(calculate_ttl(1800, 43200, DEFAULT_MOUNT).ttl, 1800);
        let d = calculate_ttl(7200, 3600, DEFAULT_MOUNT);
        assert_eq!(d, TtlDecision { ttl: 3600, max: 3600, capped_from: Some(7200) });
        // A backend max above the mount max does not raise it.
        let mount = MountTtls { default_lease_ttl: 60, max_lease_ttl: 600 };
        assert_eq!(calculate_ttl(0, 100_000, mount), TtlDecision { ttl: 60, max: 600, capped_from: None });
        assert_eq!(calculate_ttl(900, 100_000, mount).capped_from, Some(900));
    }

    #[test]
    fn mount_default_above_max_is_capped() {
        let mount = MountTtls { default_lease_ttl: 7200, max_lease_ttl: 3600 };
        assert_eq!(calculate_ttl(0, 0, mount).ttl, 3600);
    }

    #[test]
    fn sts_ttl_order_and_clamp() {
        assert_eq!(sts_ttl(None, 0, 0, DEFAULT_MOUNT), 3600);
        assert_eq!(sts_ttl(None, 900, 0, DEFAULT_MOUNT), 900);
        assert_eq!(sts_ttl(Some(1200), 900, 0, DEFAULT_MOUNT), 1200);
        assert_eq!(sts_ttl(Some(7200), 0, 3600, DEFAULT_MOUNT), 3600);
        let mount = MountTtls { default_lease_ttl: 0, max_lease_ttl: 1000 };
        assert_eq!(sts_ttl(Some(7200), 0, 0, mount), 1000);
        assert_eq!(sts_ttl(Some(0), 0, 0, DEFAULT_MOUNT), 3600);
    }

    #[test]
    fn renewals_never_pass_issue_plus_max() {
        let mount = MountTtls { default_lease_ttl: 0, max_lease_ttl: 0 };
        // Issued at t=0 with max 1h; at t=10min an increment of 30m fits.
        let d = renew_ttl(600_000, 0, 1800, 0, 3600, mount).unwrap();
        assert_eq!((d.ttl, d.capped_from), (1800, None));
        // At t=50min only 10 minutes are left.
        let d = renew_ttl(3_000_000, 0, 1800, 0, 3600, mount).unwrap();
        assert_eq!((d.ttl, d.capped_from), (600, Some(1800)));
        // No increment: the backend TTL, then the mount default.
        assert_eq!(renew_ttl(0, 0, 0, 900, 3600, mount).unwrap().ttl, 900);
        assert_eq!(renew_ttl(0, 0, 0, 0, 0, mount).unwrap().ttl, 2_764_800);
        assert_eq!(renew_ttl(3_600_000, 0, 60, 0, 3600, mount), Err(PastMaxTtl));
    }
}
