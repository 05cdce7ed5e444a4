//! Go compatibility: behaviour of Go's standard library (and the HashiCorp Go libraries Vault
//! builds on) reimplemented, so that what keymint accepts and prints matches Vault exactly.
//!
//! - [`duration`]: `time.ParseDuration`, `time.Duration.String` and parseutil's
//!   `ParseDurationSecond`, with Go's error texts.
//! - [`strconv`]: `strconv.ParseInt`, with Go's error texts.
//! - [`template`]: the subset of `text/template` Vault's `username_template` uses.
//! - [`text`]: `strconv.Quote` (`%q`) and go-multierror's message layout.

pub mod duration;
pub mod strconv;
pub mod template;
pub mod text;
