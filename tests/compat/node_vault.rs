//! node-vault, the Node.js client, against keymint: `node-vault/test/*.test.js` under Node's
//! built-in test runner, on both storage backends. Node is `$KEYMINT_NODE` (which
//! `scripts/test.sh` exports), else `node` on PATH.

use std::path::PathBuf;

use keymint_tests::*;

use crate::{compat_dir, run_suite};

/// The suite's files, in the order they run (one at a time: they share one keymint).
const TEST_FILES: &[&str] = &["test/aws.test.js", "test/sys.test.js", "test/tokens.test.js"];

fn node() -> PathBuf {
    std::env::var_os("KEYMINT_NODE").filter(|p| !p.is_empty()).map_or_else(|| "node".into(), PathBuf::from)
}

async fn node_vault_suite(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let dir = compat_dir().join("node-vault");
    let mut args = vec!["--test", "--test-concurrency=1", "--test-reporter=spec"];
    args.extend_from_slice(TEST_FILES);
    run_suite(&env, &node(), &args, &dir, &[("NO_COLOR", "1".to_owned())]).await;
}

both_backends!(node_vault_suite);
