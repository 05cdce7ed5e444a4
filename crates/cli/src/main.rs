//! The `keymint` binary: parses the command line, loads config, starts tracing and calls the
//! library crates. Everything it does is reachable from tests through those crates too.

mod agent;
mod auto_auth;
mod client;
mod commands;
mod config;
mod credential_process;
mod login;
mod output;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use keymint_api::AppState;
use keymint_store::{KeySource, Store, StoreOptions};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

#[derive(Parser)]
#[command(name = "keymint", version, about = "Short-lived AWS credentials on demand, speaking Vault's API")]
// A flag given twice takes its last value, as the vault CLI does (and tests rely on to pin a port).
#[command(args_override_self = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Server(ServerArgs),
    /// Read a path: `keymint read aws/creds/deploy` mints credentials.
    Read(commands::ReadArgs),
    /// Write K=V data to a path (a role, config/root...).
    Write(commands::WriteArgs),
    /// List the keys under a path.
    #[command(
        after_help = "Examples:\n  keymint list aws/roles\n  keymint list -format=json sys/policies/acl"
    )]
    List(commands::PathArgs),
    /// Delete a path.
    #[command(after_help = "Examples:\n  keymint delete aws/roles/deploy")]
    Delete(commands::PathArgs),
    /// Show the server's status.
    Status(commands::StatusArgs),
    /// Log in (with a token, or -method=approle|jwt|kubernetes) and keep the token in
    /// ~/.keymint-token for the commands that follow.
    Login(login::LoginArgs),
    /// Renew, revoke or look up leases.
    #[command(subcommand)]
    Lease(commands::LeaseCommand),
    /// Create, look up or revoke tokens.
    #[command(subcommand)]
    Token(commands::TokenCommand),
    /// Print credentials for the AWS CLI's and SDKs' `credential_process`, cached until close
    /// to expiry.
    CredentialProcess(credential_process::CredentialProcessArgs),
    /// Sidecar: keep fresh credentials and serve them on loopback to any AWS SDK
    /// (container-credentials format).
    Agent(agent::AgentArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Operator tasks on a production store, with the server's config file and seal key.
    #[command(subcommand)]
    Operator(OperatorCommand),
}

#[derive(Subcommand)]
enum OperatorCommand {
    /// Prepare an empty store (schema, installation id) and print its first root token, once.
    /// Fails on a store that has tokens already.
    Init(OperatorArgs),
    /// Recovery when every root token is lost: print a new root token. It takes the seal key
    /// and the database, which only an operator has; revoke the token once access is restored.
    GenerateRoot(OperatorArgs),
    /// Add a new data key and re-seal every stored secret under it, while servers run (they
    /// pick the new key up within seconds). The master seal key stays the same.
    Rotate(OperatorArgs),
    /// Write a consistent copy of the whole store to a file, while servers run. Secrets stay
    /// sealed in it, but keep it as safe as the database (it is written with mode 0600).
    Backup(BackupArgs),
    /// Load a backup into an empty store (or, with --force, replace a store's contents). Stop
    /// the servers first. The restored store starts with automatic revocation paused.
    Restore(RestoreArgs),
    /// Resume automatic revocation (lease expiry, the intent sweeper, token expiry) after a
    /// restore, once the restored leases look right.
    ResumeRevocation(OperatorArgs),
}

#[derive(Args)]
struct BackupArgs {
    /// The server's TOML config file (storage URL and seal key source are used).
    #[arg(long)]
    config: PathBuf,
    /// Where to write the backup (replaced only once the copy is complete).
    path: PathBuf,
}

#[derive(Args)]
struct RestoreArgs {
    /// The TOML config file of the store to restore into (its seal key must be the backup's).
    #[arg(long)]
    config: PathBuf,
    /// The backup file `keymint operator backup` wrote.
    path: PathBuf,
    /// Replace whatever the target store holds.
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
struct OperatorArgs {
    /// The server's TOML config file (storage URL and seal key source are used).
    #[arg(long)]
    config: PathBuf,
}

#[derive(Args)]
struct ServerArgs {
    /// Development mode: root token, `aws/` mounted, throwaway SQLite unless --storage is given.
    #[arg(long)]
    dev: bool,
    /// Dev mode: the root token to create (random and printed if absent).
    #[arg(long, requires = "dev", env = "KEYMINT_DEV_ROOT_TOKEN_ID")]
    dev_root_token_id: Option<String>,
    /// Dev mode: where to listen.
    #[arg(long, requires = "dev", default_value = "127.0.0.1:8200")]
    dev_listen_address: SocketAddr,
    /// Dev mode: keep state in this database (sqlite:///abs/path.db or postgres://...).
    #[arg(long, requires = "dev")]
    storage: Option<String>,
    /// How long a missing IAM user may be IAM's eventual consistency (overrides the config
    /// file's `[leases] iam_consistency_window`), e.g. `5m`.
    #[arg(long, value_parser = config::parse_duration)]
    iam_consistency_window: Option<Duration>,
    /// Age after which an unfinished user creation is undone (overrides `[leases]
    /// intent_grace`), e.g. `5m`.
    #[arg(long, value_parser = config::parse_duration)]
    intent_grace: Option<Duration>,
    /// How soon another replica takes over the leases, key rotations and periodic jobs of a
    /// dead one (overrides `[leases] claim_timeout`), e.g. `1m`.
    #[arg(long, value_parser = config::parse_duration)]
    lease_claim_timeout: Option<Duration>,
    /// Revocations one replica runs at once (overrides `[leases] revocation_concurrency`).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    revocation_concurrency: Option<u16>,
    /// The least time between two fetches of a JWT issuer's keys (overrides `[auth]
    /// jwks_refetch_interval`), e.g. `1m`.
    #[arg(long, value_parser = config::parse_duration)]
    jwks_refetch_interval: Option<Duration>,
    /// Production mode: the TOML config file (see config/keymint.example.toml).
    #[arg(long, conflicts_with = "dev", required_unless_present_any = ["dev", "check_config"])]
    config: Option<PathBuf>,
    /// Validate this config file (with its `KEYMINT_*` overrides, the lease flags given with
    /// it, the seal key and the TLS files) and exit: 0 when it is good, 2 with every problem
    /// listed. Opens no storage and binds no port.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["dev", "config"])]
    check_config: Option<PathBuf>,
}

fn init_tracing(log: &config::LogConfig) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEYMINT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&log.level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if log.json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse_from(commands::vault_style_args(std::env::args()));
    // AWS SDK futures nest deep; the default 2 MiB worker stack is tight for them.
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().thread_stack_size(8 << 20).build()?;
    let env = client::Env::from_process();
    let outcome = match cli.command {
        Command::Server(args) => return runtime.block_on(server(args)),
        Command::Operator(cmd) => return runtime.block_on(operator(cmd)),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "keymint",
                &mut std::io::stdout(),
            );
            return Ok(());
        }
        Command::Read(args) => runtime.block_on(commands::read(&env, args)),
        Command::Write(args) => runtime.block_on(commands::write(&env, args)),
        Command::List(args) => runtime.block_on(commands::list(&env, args)),
        Command::Delete(args) => runtime.block_on(commands::delete(&env, args)),
        Command::Status(args) => runtime.block_on(commands::status(&env, args)),
        Command::Login(args) => runtime.block_on(login::login(&env, args)),
        Command::Lease(cmd) => runtime.block_on(commands::lease(&env, cmd)),
        Command::Token(cmd) => runtime.block_on(commands::token(&env, cmd)),
        Command::Agent(args) => runtime.block_on(agent::run(&env, args)),
        Command::CredentialProcess(args) => runtime.block_on(credential_process::run(&env, args)),
    };
    if let Err(exit) = outcome {
        eprintln!("{}", exit.message);
        std::process::exit(exit.code);
    }
    Ok(())
}

async fn server(args: ServerArgs) -> Result<()> {
    let flags = config::Flags {
        iam_consistency_window: args.iam_consistency_window,
        intent_grace: args.intent_grace,
        claim_timeout: args.lease_claim_timeout,
        revocation_concurrency: args.revocation_concurrency.map(usize::from),
    };
    if let Some(path) = &args.check_config {
        check_config(path, &flags);
    }
    // Keeps a dev server's throwaway database alive until the process ends.
    let mut _scratch: Option<tempfile::TempDir> = None;
    let timing;
    let jwks_refetch_interval;
    // Dev mode always serves the web UI; a config file may turn it off.
    let mut ui_enabled = true;
    let mut audit_file: Option<String> = None;
    let mut tls_files: Option<config::TlsFiles> = None;
    let mut request_timeout = keymint_api::DEFAULT_REQUEST_TIMEOUT;
    let mut forwarded_for = None;
    let (listen, options, key, log, dev_token) = if args.dev {
        // Dev mode has a known root token and plain HTTP: it will not listen on every
        // interface. A single address of the host's (a container's, say) is the caller's call.
        let listen = args.dev_listen_address;
        if listen.ip().is_unspecified() {
            bail!(
                "--dev-listen-address {listen}: dev mode refuses the unspecified address {} (every \
                 interface); give one address, such as 127.0.0.1:{}",
                listen.ip(),
                listen.port()
            );
        }
        let url = match args.storage {
            Some(url) => url,
            None => {
                let dir = tempfile::Builder::new().prefix("keymint-dev-").tempdir()?;
                let url = format!("sqlite://{}", dir.path().join("keymint.db").display());
                _scratch = Some(dir);
                url
            }
        };
        let token = args.dev_root_token_id.unwrap_or_else(keymint_auth::generate_token);
        // Dev mode has no config file; its flag problems stop the start as they always have.
        timing = flags.over_defaults().map_err(|problems| anyhow::anyhow!(problems.join("; ")))?;
        jwks_refetch_interval = args.jwks_refetch_interval.unwrap_or(config::JWKS_REFETCH_INTERVAL);
        (listen, StoreOptions::new(url), KeySource::DevStored, config::LogConfig::default(), Some(token))
    } else {
        let path = args.config.as_deref().context("--config is required outside dev mode")?;
        let cfg = load_config_or_exit(path, &flags);
        let options =
            StoreOptions { url: cfg.storage_url.as_str().to_string(), max_connections: cfg.max_connections };
        timing = cfg.leases;
        jwks_refetch_interval = args.jwks_refetch_interval.unwrap_or(cfg.jwks_refetch_interval);
        ui_enabled = cfg.ui_enabled;
        audit_file = cfg.audit_file.clone();
        tls_files = cfg.tls.clone();
        request_timeout = cfg.request_timeout;
        forwarded_for = cfg.forwarded_for.clone();
        (cfg.listen, options, KeySource::Given(cfg.seal_key), cfg.log, None)
    };
    init_tracing(&log);

    let store = Store::open(&options, key).await.context("opening storage")?;
    let policy = keymint_lease::RetryPolicy {
        intent_grace: timing.intent_grace,
        claim_for: timing.claim_timeout,
        concurrency: timing.revocation_concurrency,
        ..Default::default()
    };
    let state = AppState::with_timing(store.clone(), policy, timing.iam_consistency_window)
        .with_audit_file(audit_file)
        .with_jwks_refetch_interval(jwks_refetch_interval.max(Duration::from_secs(1)))
        .with_request_timeout(request_timeout);
    state.start_audit().await.map_err(|e| anyhow::anyhow!("audit: {e}"))?;
    let now = chrono_now_ms();
    let mut stdout = std::io::stdout().lock();
    match &dev_token {
        Some(token) => {
            keymint_auth::ensure_root_token(&store, token, now).await?;
            keymint_api::ensure_default_mount(&state).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        None => {
            if !keymint_auth::has_tokens(&store).await? {
                let token = keymint_auth::generate_token();
                keymint_auth::ensure_root_token(&store, &token, now).await?;
                writeln!(stdout, "Initial Root Token: {token}")?;
                writeln!(stdout, "  (shown once: store it safely; it is kept only as a keyed hash)")?;
            }
        }
    }

    // The certificate is read before the port is taken: a bad file is a startup error.
    let tls = match &tls_files {
        Some(files) => Some(
            keymint_api::tls::server_config(&files.cert_file, &files.key_file)
                .map_err(|e| anyhow::anyhow!(e))?,
        ),
        None => None,
    };
    let listener = TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
    let bound = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    writeln!(stdout, "==> keymint server started{}", if args.dev { " in dev mode" } else { "" })?;
    if let Some(pause) = keymint_store::revocation::paused(store.pool()).await? {
        writeln!(stdout, "    Revocation: PAUSED ({})", pause.reason)?;
        writeln!(stdout, "      expired leases are kept until: keymint operator resume-revocation")?;
    }
    writeln!(stdout, "    Api Address: {scheme}://{bound}")?;
    if ui_enabled {
        writeln!(stdout, "    Web UI: {scheme}://{bound}/ui/")?;
    }
    if let Some(token) = &dev_token {
        writeln!(stdout, "    Root Token: {token}")?;
        writeln!(stdout, "    Storage: {}", options.url)?;
    }
    stdout.flush()?;
    drop(stdout);
    info!(address = %bound, "listening");

    let shutdown = CancellationToken::new();
    let tasks = tokio_util::task::TaskTracker::new();
    tokio::spawn(watch_signals(shutdown.clone()));
    keymint_api::spawn_background(&state, &tasks, shutdown.clone());
    let mut app = keymint_api::router(state.clone());
    if ui_enabled {
        app = app.merge(keymint_ui::router(state.clone(), keymint_ui::UiOptions { tls: tls.is_some() }));
    }
    // Outermost, over the UI too: everything that reads the caller's address sees the client.
    if let Some(rules) = forwarded_for {
        let trusted: Vec<String> = rules.authorized_addrs.iter().map(ToString::to_string).collect();
        info!(trusted = ?trusted, hop_skips = rules.hop_skips, "X-Forwarded-For is believed from these addresses");
        app = keymint_api::forwarded::behind_proxies(app, rules);
    }
    match tls {
        Some(config) => {
            let listener = keymint_api::tls::TlsListener::new(listener, config)?;
            keymint_api::serve_tls(listener, app, shutdown.clone()).await?;
        }
        None => keymint_api::serve(listener, app, shutdown.clone()).await?,
    }
    shutdown.cancel();
    tasks.close();
    if tokio::time::timeout(Duration::from_secs(20), tasks.wait()).await.is_err() {
        tracing::warn!("background work did not stop within 20s; its claims will lapse and be retried");
    }
    info!("draining done, closing storage");
    // Bounded, so a stuck connection cannot hold the process past its grace period.
    let _ = tokio::time::timeout(Duration::from_secs(10), store.close()).await;
    Ok(())
}

/// Loads a config file with its `KEYMINT_*` overrides; on problems, lists them all and exits
/// with status 2 (before anything is opened or bound).
fn load_config_or_exit(path: &std::path::Path, flags: &config::Flags) -> config::Config {
    match config::load(path, &process_env(), flags) {
        Ok(cfg) => cfg,
        Err(errors) => {
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "keymint: {} problem(s) in {}:", errors.len(), path.display());
            for e in &errors {
                let _ = writeln!(stderr, "  - {e}");
            }
            std::process::exit(2);
        }
    }
}

/// The process environment, for the config's `KEYMINT_*` layer and `seal.key_env`. A variable
/// whose name or value is not UTF-8 is left out, as `std::env::var` would not return it.
fn process_env() -> config::Env {
    std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).collect()
}

/// `server --check-config`: everything a start would check before opening storage.
fn check_config(path: &std::path::Path, flags: &config::Flags) -> ! {
    let mut problems = match config::load(path, &process_env(), flags) {
        Ok(cfg) => {
            let mut problems = Vec::new();
            if let Some(files) = &cfg.tls
                && let Err(e) = keymint_api::tls::server_config(&files.cert_file, &files.key_file)
            {
                problems.push(e);
            }
            problems
        }
        Err(errors) => errors,
    };
    if problems.is_empty() {
        println!("{}: configuration is valid", path.display());
        std::process::exit(0);
    }
    problems.dedup();
    eprintln!("keymint: {} problem(s) in {}:", problems.len(), path.display());
    for e in &problems {
        eprintln!("  - {e}");
    }
    std::process::exit(2);
}

/// The store a production config names, opened with its seal key; config problems exit 2.
async fn open_configured(config: &std::path::Path) -> Result<Store> {
    let cfg = load_config_or_exit(config, &config::Flags::default());
    let options = StoreOptions { url: cfg.storage_url.as_str().to_string(), max_connections: 2 };
    // Opening checks the seal key against the store: a wrong key stops here.
    Store::open(&options, KeySource::Given(cfg.seal_key)).await.context("opening storage")
}

async fn rotate(args: OperatorArgs) -> Result<()> {
    let store = open_configured(&args.config).await?;
    let done = store.rotate_seal_key().await?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "Data key rotated: version {} is active", done.version)?;
    writeln!(
        stdout,
        "  {} secret(s) re-sealed, {} rewritten meanwhile by a server",
        done.resealed, done.skipped
    )?;
    if done.skipped > 0 {
        writeln!(stdout, "  (run the rotation again to re-seal those too)")?;
    }
    store.close().await;
    Ok(())
}

async fn backup(args: BackupArgs) -> Result<()> {
    let store = open_configured(&args.config).await?;
    let done = keymint_store::backup::backup(&store, &args.path)
        .await
        .with_context(|| format!("backing up to {}", args.path.display()))?;
    store.close().await;
    println!(
        "Backup written to {}: {} rows ({} leases), schema version {}, taken at {}",
        args.path.display(),
        done.rows,
        done.leases,
        done.schema_version,
        done.taken_at
    );
    Ok(())
}

async fn restore(args: RestoreArgs) -> Result<()> {
    let cfg = load_config_or_exit(&args.config, &config::Flags::default());
    let options = StoreOptions { url: cfg.storage_url.as_str().to_string(), max_connections: 2 };
    // A database never started stays untouched until the backup's key check passes.
    let store = Store::open(&options, KeySource::Restoring(cfg.seal_key)).await.context("opening storage")?;
    let done = match keymint_store::backup::restore(&store, &args.path, args.force).await {
        Ok(done) => done,
        Err(e) => {
            eprintln!("keymint: nothing was restored: {e}");
            std::process::exit(2);
        }
    };
    store.close().await;
    println!(
        "Restored {} rows ({} leases) from the backup taken at {} (installation {})",
        done.rows, done.leases, done.taken_at, done.installation_id
    );
    println!("Automatic revocation is paused: leases keep the expiry times they had in the backup.");
    println!("  Check them (keymint list sys/leases/lookup/<mount>/creds/<role>), renew what is in use,");
    println!("  then: keymint operator resume-revocation --config {}", args.config.display());
    Ok(())
}

async fn resume_revocation(args: OperatorArgs) -> Result<()> {
    let store = open_configured(&args.config).await?;
    let was = keymint_store::revocation::resume(store.pool()).await?;
    store.close().await;
    if was {
        println!("Automatic revocation resumed: servers pick it up within seconds.");
    } else {
        println!("Automatic revocation was not paused; nothing changed.");
    }
    Ok(())
}

async fn operator(cmd: OperatorCommand) -> Result<()> {
    let (args, init) = match cmd {
        OperatorCommand::Init(a) => (a, true),
        OperatorCommand::GenerateRoot(a) => (a, false),
        OperatorCommand::Rotate(a) => return rotate(a).await,
        OperatorCommand::Backup(a) => return backup(a).await,
        OperatorCommand::Restore(a) => return restore(a).await,
        OperatorCommand::ResumeRevocation(a) => return resume_revocation(a).await,
    };
    let store = open_configured(&args.config).await?;
    if init && keymint_auth::has_tokens(&store).await? {
        eprintln!("keymint: the store is initialized already (it has tokens); nothing was changed");
        std::process::exit(2);
    }
    let token = keymint_auth::generate_token();
    keymint_auth::ensure_root_token(&store, &token, chrono_now_ms()).await?;
    let mut stdout = std::io::stdout().lock();
    if init {
        writeln!(stdout, "Initial Root Token: {token}")?;
    } else {
        writeln!(stdout, "Root Token: {token}")?;
    }
    writeln!(stdout, "  (shown once: store it safely; it is kept only as a keyed hash)")?;
    store.close().await;
    Ok(())
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

async fn watch_signals(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    info!("shutdown requested");
    shutdown.cancel();
}
