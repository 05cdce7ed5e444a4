//! A PostgreSQL cluster of one test's own, on its own loopback port, to stop and start again:
//! what the suite's shared cluster (scripts/test.sh) must never be put through. `initdb` and
//! `pg_ctl` come from PATH or Debian's newest `/usr/lib/postgresql/<version>/bin`; as root they
//! run as the `postgres` user, since postgres refuses to run as root.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::process::free_port;

/// A private cluster. Dropping it stops the server (immediate mode) and deletes its files.
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl PgCluster {
    /// `initdb` in a fresh directory under /tmp, then started on a free port of 127.0.0.1.
    pub fn start() -> PgCluster {
        let bin = pg_bin();
        let as_postgres = is_root();
        // Under /tmp, not $TMPDIR: the postgres user must be able to reach it.
        let dir = tempfile::Builder::new()
            .prefix("keymint-own-pg-")
            .tempdir_in("/tmp")
            .expect("temp dir for a cluster");
        if as_postgres {
            run(Command::new("chown").args(["postgres:postgres"]).arg(dir.path()), "chown the cluster dir");
        }
        let mut cluster = PgCluster { dir, bin, port: 0, as_postgres };
        let mut initdb = cluster.pg("initdb");
        let data = cluster.data();
        run(
            initdb.arg("-D").arg(&data).args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ]),
            "initdb",
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"include = 'keymint-test.conf'\n"))
            .expect("include the test settings in postgresql.conf");
        // A free port may be taken before postgres binds it: try a few.
        for _ in 0..5 {
            cluster.port = free_port();
            let settings = format!(
                "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\n\
                 fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n",
                cluster.port,
                cluster.dir.path().display()
            );
            std::fs::write(data.join("keymint-test.conf"), settings).expect("write the cluster's settings");
            if cluster.try_start() {
                return cluster;
            }
        }
        let log = std::fs::read_to_string(cluster.dir.path().join("server.log")).unwrap_or_default();
        panic!("a private PostgreSQL cluster did not start:\n{log}");
    }

    /// An admin URL of the cluster's `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server (fast mode: clients are disconnected at once).
    pub fn stop(&self) {
        let mut stop = self.pg("pg_ctl");
        stop.arg("-D").arg(self.data()).args(["-m", "fast", "-w", "-t", "30", "stop"]);
        run(&mut stop, "pg_ctl stop");
    }

    /// Starts the stopped server again, on the same port.
    pub fn start_again(&self) {
        assert!(self.try_start(), "the private PostgreSQL cluster did not start again");
    }

    fn try_start(&self) -> bool {
        let mut start = self.pg("pg_ctl");
        start.arg("-D").arg(self.data()).arg("-l").arg(self.dir.path().join("server.log"));
        start.args(["-w", "-t", "30", "start"]);
        start.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `tool` from the PostgreSQL bin dir, as the postgres user when we are root.
    fn pg(&self, tool: &str) -> Command {
        let mut cmd = if self.as_postgres {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(self.bin.join(tool));
            cmd
        } else {
            Command::new(self.bin.join(tool))
        };
        cmd.current_dir(self.dir.path()).stdin(Stdio::null());
        cmd
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.data().join("postmaster.pid").exists() {
            let mut stop = self.pg("pg_ctl");
            stop.arg("-D").arg(self.data()).args(["-m", "immediate", "-w", "-t", "20", "stop"]);
            let _ = stop.stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
    }
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: cannot run ({e})"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// The directory holding `initdb` and `pg_ctl`.
fn pg_bin() -> PathBuf {
    crate::storage::postgres_bin_dir(&["initdb", "pg_ctl"])
        .expect("initdb and pg_ctl: install PostgreSQL (scripts/test.sh does)")
}
