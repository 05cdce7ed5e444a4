//! The operator web UI in a real browser: `tests/ui/test_*.py` under pytest, Playwright driving
//! Debian's Chromium against the real binary. moto runs with IAM enforcement on (after an
//! administrator is made), so keys with a wrong secret are refused as AWS refuses them.
//!
//! The browser is `$KEYMINT_UI_CHROMIUM`, else `/usr/bin/chromium`; axe-core is
//! `tests/ui/node_modules/axe-core` (both installed by `scripts/test.sh`). With
//! `KEYMINT_UI_SCREENSHOTS` set (an absolute directory), every checked page is photographed
//! there: `scripts/ui-screenshots.sh` regenerates `docs/ui` that way.

use std::path::PathBuf;

use keymint_tests::*;

use crate::run_suite;

fn ui_dir() -> PathBuf {
    workspace_root().join("tests/ui")
}

fn chromium() -> String {
    std::env::var("KEYMINT_UI_CHROMIUM")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "/usr/bin/chromium".into())
}

/// One SQLite-backed keymint is enough: the UI is a client of the same API the other suites
/// run on both backends.
#[tokio::test]
async fn browser_suite() {
    let axe = ui_dir().join("node_modules/axe-core/axe.min.js");
    assert!(axe.is_file(), "{} is missing: run scripts/test.sh (npm ci in tests/ui)", axe.display());
    let storage = Storage::new(Backend::Sqlite);
    let (moto, km) = tokio::join!(
        Moto::start_with_env(&[("INITIAL_NO_AUTH_ACTION_COUNT", ADMIN_BOOTSTRAP_CALLS)]),
        Keymint::start(storage.url())
    );
    let (admin_key, admin_secret) = moto.bootstrap_admin("ui-harness-admin").await;
    let env = TestEnv { km, moto, storage };

    let mut vars = vec![
        ("PYTHONDONTWRITEBYTECODE", "1".to_owned()),
        ("KEYMINT_URL", env.km.url().to_owned()),
        ("KEYMINT_ROOT_TOKEN", ROOT_TOKEN.to_owned()),
        ("KEYMINT_UI_MOTO_ACCESS_KEY", admin_key),
        ("KEYMINT_UI_MOTO_SECRET_KEY", admin_secret),
        ("KEYMINT_UI_CHROMIUM", chromium()),
        ("KEYMINT_UI_AXE", axe.display().to_string()),
        ("KEYMINT_UI_MOTO_RECORDING", env.moto.recording_path().display().to_string()),
    ];
    if let Ok(dir) = std::env::var("KEYMINT_UI_SCREENSHOTS") {
        vars.push(("KEYMINT_UI_SCREENSHOTS", dir));
    }
    run_suite(
        &env,
        &python(),
        &["-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE", "--color=no", "."],
        &ui_dir(),
        &vars,
    )
    .await;
}
