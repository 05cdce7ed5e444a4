//! The in-process suite: the store and the lease manager's workers called as libraries against
//! real databases (a SQLite file, or a fresh database on `KEYMINT_TEST_POSTGRES_URL`), with no
//! server and no AWS. One binary for all of them, so they link once. Each test opens its own
//! `TestDb`: tests run concurrently in this one process and share nothing.

mod auth_store;
mod store;
mod worker;
