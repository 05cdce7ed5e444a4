//! keymint-common: small helpers more than one keymint crate needs, kept once.
//!
//! What belongs here: pure, dependency-light code with no keymint domain state (no store, no
//! AWS, no HTTP): the Go compatibility layer that makes keymint's inputs and messages match
//! Vault's byte for byte (`go`), random strings (`random`), the clock, and the time limit of
//! the request being served (`deadline`). It depends on no other keymint crate, so any of them
//! can use it.

pub mod clock;
pub mod deadline;
pub mod go;
pub mod random;
