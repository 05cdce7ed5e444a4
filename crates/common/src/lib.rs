//! keymint-common: small building blocks every keymint crate shares.

pub mod clock;
