//! Production mode: `keymint server --config FILE`. A bad file is refused whole, before a port
//! is bound; a good one starts, prints the initial root token once, and keeps its state.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use keymint_tests::*;

const KEY: &str = "8b8f2b6c3a1e4d5f6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b";
const OTHER_KEY: &str = "0000000000000000000000000000000000000000000000000000000000000001";

fn server(config: &std::path::Path, seal_key: &str) -> Command {
    let mut cmd = Command::new(keymint_binary());
    cmd.args(["server", "--config"])
        .arg(config)
        .env("TEST_SEAL_KEY", seal_key)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// A started server: its process, the lines it printed before it listened, and its address.
struct Running {
    child: Child,
    printed: Vec<String>,
    base: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(config: &std::path::Path, seal_key: &str) -> Running {
    let mut child = server(config, seal_key).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut printed = Vec::new();
    loop {
        let Ok(line) = rx.recv_timeout(STARTUP_DEADLINE) else {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "no Api Address line; printed {printed:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        };
        if let Some((_, addr)) = line.split_once("Api Address: ") {
            let base = addr.trim().to_string();
            printed.push(line);
            return Running { child, printed, base };
        }
        printed.push(line);
    }
}

fn write_config(dir: &std::path::Path, storage_url: &str) -> std::path::PathBuf {
    let path = dir.join("keymint.toml");
    std::fs::write(
        &path,
        format!(
            "[listener]\naddress = \"127.0.0.1:0\"\ntls_disable = true\n[storage]\nurl = \"{storage_url}\"\n\
             [seal]\nkey_env = \"TEST_SEAL_KEY\"\n[log]\nformat = \"json\"\nlevel = \"info\"\n"
        ),
    )
    .unwrap();
    path
}

#[test]
fn a_bad_config_is_refused_whole_before_binding() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[listener]\naddress = \"not-an-address\"\nport = 8200\n[storage]\nurl = \"mysql://db\"\n\
         [seal]\nkey_env = \"TEST_SEAL_KEY\"\n[log]\nformat = \"xml\"\n[cache]\n",
    )
    .unwrap();
    let out = server(&path, "too-short").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("Api Address"), "it must not listen: {stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for problem in [
        "listener.address \"not-an-address\"",
        "unknown key listener.port",
        "storage.url",
        "TEST_SEAL_KEY",
        "log.format",
        "unknown section [cache]",
    ] {
        assert!(stderr.contains(problem), "{problem:?} not reported in:\n{stderr}");
    }
}

/// A production server refuses a store made in dev mode, and says how to open it instead.
#[tokio::test]
async fn a_dev_store_is_refused_with_a_remedy_that_exists() {
    let storage = Storage::new(Backend::Sqlite);
    drop(Keymint::start(storage.url()).await);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), storage.url());
    let out = server(&config, KEY).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("this database was created in dev mode"), "{stderr}");
    assert!(stderr.contains("keymint server --dev --storage <url>"), "{stderr}");
    assert!(!stderr.contains("migrate"), "no such command: {stderr}");
}

async fn state_survives_and_the_initial_token_is_printed_once(backend: Backend) {
    let storage = Storage::new(backend);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), storage.url());

    let first = start(&config, KEY);
    let token = first
        .printed
        .iter()
        .find_map(|l| l.strip_prefix("Initial Root Token: "))
        .unwrap_or_else(|| panic!("no initial root token in {:?}", first.printed))
        .trim()
        .to_string();
    assert!(token.starts_with("hvs."), "{token}");
    let client = Client::new(&first.base, Auth::VaultToken(token.clone()));
    // Production mode mounts nothing by itself.
    let mounts = client.get("sys/mounts").await.expect(200);
    assert!(mounts.data().get("aws/").is_none(), "{mounts}");
    client.post("sys/mounts/team-aws", json!({"type": "aws"})).await.expect(204);
    client.with_auth(Auth::None).get("sys/mounts").await.expect(403);
    drop(first);

    let second = start(&config, KEY);
    assert!(
        !second.printed.iter().any(|l| l.contains("Initial Root Token")),
        "the initial token is printed once: {:?}",
        second.printed
    );
    let client = Client::new(&second.base, Auth::VaultToken(token));
    let mounts = client.get("sys/mounts").await.expect(200);
    assert_eq!(mounts.data()["team-aws/"]["type"], "aws", "{mounts}");
    drop(second);

    // Another seal key must not open this database.
    let mut wrong = server(&config, OTHER_KEY).spawn().unwrap();
    let status = wait_exit(&mut wrong, Duration::from_secs(30));
    assert!(!status.success(), "a wrong seal key must stop the server");
}

fn wait_exit(child: &mut Child, deadline: Duration) -> std::process::ExitStatus {
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            panic!("the server did not exit within {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

both_backends!(state_survives_and_the_initial_token_is_printed_once);

/// `--check-config` reports what a start would refuse, and takes nothing: no database file is
/// created, no port bound.
#[test]
fn check_config_validates_without_opening_anything() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("never-created.db");
    let good = write_config(dir.path(), &format!("sqlite://{}", db.display()));
    let check = |path: &std::path::Path, key: &str| {
        Command::new(keymint_binary())
            .args(["server", "--check-config"])
            .arg(path)
            .env("TEST_SEAL_KEY", key)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = check(&good, KEY);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("configuration is valid"), "{out:?}");
    assert!(!db.exists(), "checking must not create the database");

    // A seal key that does not parse, from the environment the file names.
    let out = check(&good, "too-short");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("TEST_SEAL_KEY"), "{out:?}");

    // TLS files are loaded too: a broken certificate is a problem a start would hit.
    std::fs::write(dir.path().join("broken.crt"), "not a certificate").unwrap();
    std::fs::write(dir.path().join("broken.key"), "not a key").unwrap();
    let tls = dir.path().join("tls.toml");
    std::fs::write(
        &tls,
        format!(
            "[listener]\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n[storage]\nurl = \"sqlite://{}\"\n\
             [seal]\nkey_env = \"TEST_SEAL_KEY\"\n",
            dir.path().join("broken.crt").display(),
            dir.path().join("broken.key").display(),
            db.display()
        ),
    )
    .unwrap();
    let out = check(&tls, KEY);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("broken.crt"), "{out:?}");

    // A missing file is reported, not a panic.
    let out = check(&dir.path().join("absent.toml"), KEY);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read config file"), "{out:?}");
}

/// With a certificate the API is served over TLS only; a certificate that cannot be loaded
/// stops the start before the port is taken.
#[tokio::test]
async fn the_listener_serves_tls_when_given_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::new(Backend::Sqlite);
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let (cert_pem, key_pem) = (cert.cert.pem(), cert.key_pair.serialize_pem());
    std::fs::write(dir.path().join("tls.crt"), &cert_pem).unwrap();
    std::fs::write(dir.path().join("tls.key"), &key_pem).unwrap();
    let config = dir.path().join("tls.toml");
    let write = |cert_file: &str| {
        std::fs::write(
            &config,
            format!(
                "[listener]\naddress = \"127.0.0.1:0\"\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n\
                 [storage]\nurl = \"{}\"\n[seal]\nkey_env = \"TEST_SEAL_KEY\"\n",
                dir.path().join(cert_file).display(),
                dir.path().join("tls.key").display(),
                storage.url()
            ),
        )
        .unwrap();
    };

    write("tls.crt");
    let running = start(&config, KEY);
    assert!(running.base.starts_with("https://127.0.0.1:"), "{}", running.base);
    let tls_client = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let health = tls_client.get(format!("{}/v1/sys/health", running.base)).send().await.unwrap();
    assert_eq!(health.status(), 200);
    // Plain HTTP to the same port gets no answer.
    let plain = running.base.replace("https://", "http://");
    let refused = local_client().get(format!("{plain}/v1/sys/health")).send().await;
    assert!(refused.is_err() || refused.unwrap().status() != 200, "plain HTTP must not be served");
    drop(running);

    std::fs::write(dir.path().join("broken.crt"), "not a certificate").unwrap();
    write("broken.crt");
    let out = server(&config, KEY).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("tls_cert_file") && stderr.contains("broken.crt"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Api Address"), "no port may be taken");
}

fn local_client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap()
}

fn operator(args: &[&str], config: &std::path::Path, seal_key: &str) -> std::process::Output {
    Command::new(keymint_binary())
        .arg("operator")
        .args(args)
        .arg("--config")
        .arg(config)
        .env("TEST_SEAL_KEY", seal_key)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn printed_token(out: &std::process::Output, prefix: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| {
            panic!("no {prefix:?} in {stdout}; stderr {}", String::from_utf8_lossy(&out.stderr))
        })
        .trim()
        .to_string()
}

/// `operator init` prepares an empty store and prints its root token once; `operator
/// generate-root` mints a new one for whoever holds the seal key and the database.
async fn operator_init_and_generate_root(backend: Backend) {
    let storage = Storage::new(backend);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), storage.url());

    let init = operator(&["init"], &config, KEY);
    assert!(init.status.success());
    let first = printed_token(&init, "Initial Root Token: ");
    let again = operator(&["init"], &config, KEY);
    assert_eq!(again.status.code(), Some(2), "a second init changes nothing");
    assert!(String::from_utf8_lossy(&again.stderr).contains("initialized already"));

    let running = start(&config, KEY);
    assert!(!running.printed.iter().any(|l| l.contains("Initial Root Token")), "{:?}", running.printed);
    let me =
        Client::new(&running.base, Auth::VaultToken(first)).get("auth/token/lookup-self").await.expect(200);
    assert_eq!(me.data()["policies"], json!(["root"]));

    let recovered = operator(&["generate-root"], &config, KEY);
    assert!(recovered.status.success());
    let second = printed_token(&recovered, "Root Token: ");
    let me =
        Client::new(&running.base, Auth::VaultToken(second)).get("auth/token/lookup-self").await.expect(200);
    assert_eq!(me.data()["policies"], json!(["root"]));
    assert!(
        !operator(&["generate-root"], &config, OTHER_KEY).status.success(),
        "a wrong seal key gets nothing"
    );
}

both_backends!(operator_init_and_generate_root);

/// `operator rotate` re-seals the root secret under a new data key while the server runs; the
/// server goes on using it, and after a restart too.
async fn operator_rotate_while_serving(backend: Backend) {
    let storage = Storage::new(backend);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), storage.url());
    let moto = Moto::start().await;
    let init = operator(&["init"], &config, KEY);
    let token = printed_token(&init, "Initial Root Token: ");
    let running = start(&config, KEY);
    let client = Client::new(&running.base, Auth::VaultToken(token.clone()));
    client.post("sys/mounts/aws", json!({"type": "aws"})).await.expect(204);
    client.post("aws/config/root", root_config(&moto)).await.expect(200);
    client.post("aws/roles/deploy", json!({"credential_type": "iam_user"})).await.expect(204);

    for version in 1..=2 {
        let rotated = operator(&["rotate"], &config, KEY);
        assert!(rotated.status.success(), "{}", String::from_utf8_lossy(&rotated.stderr));
        let said = String::from_utf8_lossy(&rotated.stdout);
        assert!(said.contains(&format!("version {version} is active")), "{said}");
        assert!(said.contains("1 secret(s) re-sealed"), "{said}");
        // The running server opens the re-sealed secret: creds need it to call AWS.
        client.get("aws/config/root").await.expect(200);
        client.get("aws/creds/deploy").await.expect(200);
    }
    assert!(!operator(&["rotate"], &config, OTHER_KEY).status.success(), "a wrong seal key rotates nothing");
    drop(running);
    let restarted = start(&config, KEY);
    let client = Client::new(&restarted.base, Auth::VaultToken(token));
    client.get("aws/creds/deploy").await.expect(200);
}

both_backends!(operator_rotate_while_serving);

/// `operator backup` while a server runs, `operator restore` into a new database of the other
/// backend: the restored server starts with automatic revocation paused, so a lease whose
/// backed-up expiry has passed (it was renewed after the backup) is kept, with its IAM user,
/// until an operator has renewed it and resumed.
async fn backup_and_restore_pause_revocation(backend: Backend) {
    let other = match backend {
        Backend::Sqlite => Backend::Postgres,
        Backend::Postgres => Backend::Sqlite,
    };
    let (source, target) = (Storage::new(backend), Storage::new(other));
    let dir = tempfile::tempdir().unwrap();
    let source_config = write_config(dir.path(), source.url());
    let target_dir = dir.path().join("target");
    std::fs::create_dir(&target_dir).unwrap();
    let target_config = write_config(&target_dir, target.url());
    let moto = Moto::start().await;
    let token = printed_token(&operator(&["init"], &source_config, KEY), "Initial Root Token: ");

    let running = start(&source_config, KEY);
    let client = Client::new(&running.base, Auth::VaultToken(token.clone()));
    client.post("sys/mounts/aws", json!({"type": "aws"})).await.expect(204);
    client.post("aws/config/root", root_config(&moto)).await.expect(200);
    client.post("aws/config/lease", json!({"lease": "4s", "lease_max": "1h"})).await.expect(204);
    write_iam_user_role_with(&client, "deploy", "/keymint-backup/").await;
    let creds = client.get("aws/creds/deploy").await.expect(200);
    let lease_id = creds.json()["lease_id"].as_str().unwrap().to_owned();

    let file = dir.path().join("keymint.backup");
    let backup = operator(&["backup", file.to_str().unwrap()], &source_config, KEY);
    assert!(backup.status.success(), "{}", String::from_utf8_lossy(&backup.stderr));
    assert!(String::from_utf8_lossy(&backup.stdout).contains("(1 leases)"), "{backup:?}");
    // In use: renewed after the backup was taken, so the backup's expiry time is stale.
    client.put("sys/leases/renew", json!({"lease_id": lease_id, "increment": "1h"})).await.expect(200);
    drop(running);

    // A wrong key and a store that is not empty are refused with exit status 2.
    let wrong = operator(&["restore", file.to_str().unwrap()], &target_config, OTHER_KEY);
    assert!(!wrong.status.success(), "{wrong:?}");
    let restored = operator(&["restore", file.to_str().unwrap()], &target_config, KEY);
    assert!(restored.status.success(), "{}", String::from_utf8_lossy(&restored.stderr));
    assert!(
        String::from_utf8_lossy(&restored.stdout).contains("Automatic revocation is paused"),
        "{restored:?}"
    );
    let again = operator(&["restore", file.to_str().unwrap()], &target_config, KEY);
    assert_eq!(again.status.code(), Some(2), "{again:?}");
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"), "{again:?}");

    let running = start(&target_config, KEY);
    assert!(running.printed.iter().any(|l| l.contains("Revocation: PAUSED")), "{:?}", running.printed);
    let client = Client::new(&running.base, Auth::VaultToken(token.clone()));
    let health = client.get("sys/health").await.expect(200);
    assert_eq!(health.json()["revocation_paused"], true);
    assert_eq!(client.get("sys/leases/revocation").await.expect(200).data()["paused"], true);
    // Well past the backed-up expiry: the lease and its user are still there.
    tokio::time::sleep(Duration::from_secs(6)).await;
    client.put("sys/leases/lookup", json!({"lease_id": lease_id})).await.expect(200);
    assert_eq!(moto.user_names("/keymint-backup/").await.len(), 1);

    // The operator renews what is in use, then resumes (the API route needs sudo; root has it).
    client.put("sys/leases/renew", json!({"lease_id": lease_id, "increment": "1h"})).await.expect(200);
    client.put("sys/leases/revocation", json!({})).await.assert_error_prefix(400, "missing paused");
    let resumed = client.put("sys/leases/revocation", json!({"paused": false})).await.expect(200);
    assert_eq!(resumed.data()["paused"], false);
    assert_eq!(client.get("sys/health").await.expect(200).json()["revocation_paused"], false);
    tokio::time::sleep(Duration::from_secs(2)).await;
    client.put("sys/leases/lookup", json!({"lease_id": lease_id})).await.expect(200);
    assert_eq!(moto.user_names("/keymint-backup/").await.len(), 1, "the renewed lease is kept");
    // Revoked on request, it goes as usual.
    client.put("sys/leases/revoke", json!({"lease_id": lease_id})).await.expect(204);
    assert!(moto.user_names("/keymint-backup/").await.is_empty());

    // The CLI resume is the same switch.
    let paused = client
        .put("sys/leases/revocation", json!({"paused": true, "reason": "maintenance"}))
        .await
        .expect(200);
    assert_eq!((&paused.data()["paused"], &paused.data()["reason"]), (&json!(true), &json!("maintenance")));
    assert_eq!(client.get("sys/health").await.expect(200).json()["revocation_paused"], true);
    let resumed = operator(&["resume-revocation"], &target_config, KEY);
    assert!(String::from_utf8_lossy(&resumed.stdout).contains("resumed"), "{resumed:?}");
    assert_eq!(client.get("sys/leases/revocation").await.expect(200).data()["paused"], false);
}

both_backends!(backup_and_restore_pause_revocation);

async fn write_iam_user_role_with(client: &Client, name: &str, user_path: &str) {
    client
        .post(
            &format!("aws/roles/{name}"),
            json!({"credential_type": "iam_user", "policy_document": S3_READ_POLICY, "user_path": user_path}),
        )
        .await
        .expect(204);
}
