//! JWT validation (being written).
