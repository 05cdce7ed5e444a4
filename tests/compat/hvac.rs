//! hvac, the Python client, against keymint: `hvac/test_*.py` under pytest, on both storage
//! backends.

use keymint_tests::*;

use crate::{compat_dir, run_suite};

async fn hvac_suite(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let dir = compat_dir().join("hvac");
    run_suite(
        &env,
        &python(),
        &["-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE", "--color=no", "."],
        &dir,
        &[("PYTHONDONTWRITEBYTECODE", "1".to_owned())],
    )
    .await;
}

both_backends!(hvac_suite);
