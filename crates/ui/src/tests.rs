//! The UI in process, over the real API ([`keymint_api::testing::TestApp`]): headers, sessions,
//! CSRF, and pages holding a token to its policies.

#![allow(clippy::unwrap_used, clippy::expect_used)]
