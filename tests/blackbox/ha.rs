//! The HA proof end to end: three replicas on one PostgreSQL behind a TCP balancer, clients
//! issuing and revoking `iam_user` credentials through it the whole time, while one replica is
//! killed with SIGKILL and started again, and then PostgreSQL itself is restarted.
//!
//! What must hold at the end: every credential a client got has its one lease (and its own
//! user); every revoked or expired lease's user is gone from moto, and nothing else is left
//! there; and no answer was a 5xx but a 503 in Vault's error shape while the database was
//! down. Requests cut by the kill reach their clients as connection errors, counted apart.
//! The summary printed at the end is what docs/ha-postgresql.md reports.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keymint_tests::*;

/// A short claim timeout, so the killed replica's claims lapse within the test. The intent
/// grace must outlast the longest request, or the sweeper could undo a creation still under
/// way: a request waiting for a database connection while PostgreSQL restarts takes seconds.
/// (A production config refuses a grace no longer than `[listener] request_timeout`; dev mode
/// has no such check.) The sweeper looks as often as the grace.
const FLAGS: &[&str] =
    &["--lease-claim-timeout", "3s", "--intent-grace", "15s", "--iam-consistency-window", "1s"];
const ROLE: &str = "ha";
const USER_PATH: &str = "/km-ha/";
/// Short, so leases issued early expire during the test, across the failures.
const TTL_SECS: u64 = 15;
const CLIENTS: usize = 3;
/// Each client's pause between two rounds: a steady load, not a flood, on a 2-core runner.
const PAUSE: Duration = Duration::from_millis(100);
/// How long each phase lasts before the next failure.
const PHASE: Duration = Duration::from_secs(5);
/// After every replica is ready again, how long a 503 may still be seen: a request that was
/// waiting for a connection when the database came back.
const RECONNECT_MARGIN: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Steady,
    ReplicaKilled,
    ReplicaRestarted,
    DatabaseDown,
    DatabaseBack,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Issue,
    Revoke,
}

/// One request as its client saw it.
#[derive(Debug)]
struct Record {
    op: Op,
    /// The phase when it was sent.
    phase: Phase,
    /// Since the start of the client loop.
    sent: Duration,
    answered: Duration,
    /// `None` when no HTTP answer came: connection refused, reset or closed.
    status: Option<u16>,
    /// The body, or the connection error.
    text: String,
    lease_id: Option<String>,
    access_key: Option<String>,
}

impl Record {
    fn ok(&self) -> bool {
        matches!(self.status, Some(200 | 204))
    }

    fn outcome(&self) -> String {
        self.status.map_or_else(|| "connection error".to_owned(), |s| s.to_string())
    }
}

/// What the clients share with the test: the clock, the phase, the stop flag and the records.
struct Timeline {
    t0: Instant,
    phase: Mutex<Phase>,
    stop: AtomicBool,
    records: Mutex<Vec<Record>>,
}

impl Timeline {
    fn now(&self) -> Duration {
        self.t0.elapsed()
    }

    fn phase(&self) -> Phase {
        *self.phase.lock().unwrap()
    }

    fn enter(&self, phase: Phase) -> Duration {
        *self.phase.lock().unwrap() = phase;
        self.now()
    }

    /// Sends one request and records what came back; the parsed body on a 2xx.
    async fn send(
        &self,
        op: Op,
        request: reqwest::RequestBuilder,
        lease_id: Option<String>,
    ) -> Option<Value> {
        let phase = self.phase();
        let sent = self.now();
        let answer = match request.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                resp.text().await.map(|text| (status, text))
            }
            Err(e) => Err(e),
        };
        let answered = self.now();
        let (status, text) = match answer {
            Ok((status, text)) => (Some(status), text),
            Err(e) => (None, format!("{e:?}")),
        };
        let body: Option<Value> = serde_json::from_str(&text).ok();
        let mut record = Record { op, phase, sent, answered, status, text, lease_id, access_key: None };
        if op == Op::Issue && status == Some(200) {
            let body = body.as_ref().expect("a credential answer is JSON");
            record.lease_id = Some(body["lease_id"].as_str().expect("lease_id").to_owned());
            record.access_key = Some(body["data"]["access_key"].as_str().expect("access_key").to_owned());
            assert_eq!(body["lease_duration"], TTL_SECS, "{body}");
        }
        self.records.lock().unwrap().push(record);
        body.filter(|_| matches!(status, Some(200..=299)))
    }
}

/// When each failure happened, since the start of the client loop.
struct Marks {
    /// Each phase and when it began.
    phases: Vec<(Phase, Duration)>,
    /// Just before the SIGKILL (the phase begins just after it).
    kill_sent: Duration,
    db_down: Duration,
    db_started: Duration,
    /// Every replica's `sys/ready` answered 200 again.
    db_ready: Duration,
    /// The clients' last answers.
    stopped: Duration,
}

impl Marks {
    fn phase_start(&self, phase: Phase) -> Duration {
        self.phases.iter().find(|(p, _)| *p == phase).map(|(_, at)| *at).unwrap()
    }
}

/// One client: issues a credential, revokes every other one it gets, pauses, again, until told
/// to stop. A connection per request, so the balancer places every request.
async fn client(timeline: Arc<Timeline>, base: String, index: usize) {
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let creds = format!("{base}/v1/aws/creds/{ROLE}");
    let revoke = format!("{base}/v1/sys/leases/revoke");
    let mut round = index;
    while !timeline.stop.load(Ordering::Relaxed) {
        let got = timeline.send(Op::Issue, http.get(&creds).header("X-Vault-Token", ROOT_TOKEN), None).await;
        if let Some(body) = got
            && round.is_multiple_of(2)
        {
            let id = body["lease_id"].as_str().unwrap().to_owned();
            let request =
                http.put(&revoke).header("X-Vault-Token", ROOT_TOKEN).json(&json!({ "lease_id": id }));
            timeline.send(Op::Revoke, request, Some(id)).await;
        }
        round += 1;
        tokio::time::sleep(PAUSE).await;
    }
}

/// Waits until every replica answers `sys/ready` with 200.
async fn all_ready(replicas: &[Keymint]) {
    eventually("every replica to be ready", Duration::from_secs(60), async || {
        for km in replicas {
            if km.anonymous().get("sys/ready").await.status != 200 {
                return None;
            }
        }
        Some(())
    })
    .await;
}

/// The users under the role's path, all of them (ListUsers stops at 100 unless asked).
async fn users(moto: &Moto) -> BTreeSet<String> {
    let out = moto.iam().list_users().path_prefix(USER_PATH).max_items(1000).send().await.unwrap();
    assert!(!out.is_truncated(), "more than 1000 users");
    out.users().iter().map(|u| u.user_name().to_owned()).collect()
}

/// `id -> username` of every lease row of the role.
fn lease_rows(url: &str) -> BTreeMap<String, String> {
    let rows = psql(
        url,
        &format!("SELECT id, (internal::json)->>'username' FROM leases WHERE id LIKE 'aws/creds/{ROLE}/%'"),
    );
    rows.lines()
        .map(|line| {
            let (id, user) = line.split_once('|').unwrap();
            (id.to_owned(), user.to_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clients_see_only_connection_errors_and_503s_through_a_replica_kill_and_a_database_restart() {
    let pg = PgCluster::start();
    let url = pg.url();
    let moto = Moto::start().await;
    let first = Keymint::start_with(&url, FLAGS).await;
    let (second, third) = tokio::join!(Keymint::start_with(&url, FLAGS), Keymint::start_with(&url, FLAGS));
    let mut replicas = vec![first, second, third];
    replicas[0].post("aws/config/root", root_config(&moto)).await.expect(200);
    let role = json!({
        "credential_type": "iam_user",
        "policy_document": S3_READ_POLICY,
        "user_path": USER_PATH,
        "default_ttl": TTL_SECS,
    });
    replicas[0].post(&format!("aws/roles/{ROLE}"), role).await.expect(204);
    let balancer = Balancer::start(replicas.iter().map(|km| km.addr().to_owned()).collect()).await;

    let timeline = Arc::new(Timeline {
        t0: Instant::now(),
        phase: Mutex::new(Phase::Steady),
        stop: AtomicBool::new(false),
        records: Mutex::new(Vec::new()),
    });
    let clients: Vec<_> =
        (0..CLIENTS).map(|i| tokio::spawn(client(timeline.clone(), balancer.url(), i))).collect();
    let mut phases = vec![(Phase::Steady, Duration::ZERO)];

    tokio::time::sleep(PHASE).await;
    let killed = replicas[1].addr().to_owned();
    let kill_sent = timeline.now();
    replicas[1].kill9();
    phases.push((Phase::ReplicaKilled, timeline.enter(Phase::ReplicaKilled)));
    tokio::time::sleep(PHASE).await;

    replicas[1].restart().await;
    balancer.replace(&killed, replicas[1].addr());
    phases.push((Phase::ReplicaRestarted, timeline.enter(Phase::ReplicaRestarted)));
    tokio::time::sleep(PHASE).await;

    let db_down = timeline.enter(Phase::DatabaseDown);
    phases.push((Phase::DatabaseDown, db_down));
    tokio::task::block_in_place(|| pg.stop());
    tokio::time::sleep(PHASE).await;
    tokio::task::block_in_place(|| pg.start_again());
    let db_started = timeline.now();
    all_ready(&replicas).await;
    let db_ready = timeline.enter(Phase::DatabaseBack);
    phases.push((Phase::DatabaseBack, db_ready));
    tokio::time::sleep(PHASE).await;

    timeline.stop.store(true, Ordering::Relaxed);
    for task in clients {
        task.await.unwrap();
    }
    let stopped = timeline.now();
    let marks = Marks { phases, kill_sent, db_down, db_started, db_ready, stopped };
    let records = std::mem::take(&mut *timeline.records.lock().unwrap());
    eprintln!("{}", summary(&records, &marks));

    assert_answers(&records, &marks);
    assert_leases(&records, &url, &moto, timeline.now()).await;
    // Then every lease expires: all of their users go, and so do the half-made ones. An intent
    // whose user was torn down by its own request, but which the outage kept from being
    // deleted, is retired by the sweeper once past its grace.
    eventually("every lease, user and intent to go", Duration::from_secs(90), async || {
        let intents = psql(&url, "SELECT count(*) FROM wal_intents");
        (lease_rows(&url).is_empty() && users(&moto).await.is_empty() && intents == "0").then_some(())
    })
    .await;
    eprintln!(
        "every lease revoked, every user and intent gone {:?} after the clients stopped",
        timeline.now() - stopped
    );
}

/// No 5xx but 503s in Vault's shape, and those only while the database was down; connection
/// errors only for requests in flight on the replica when it was killed.
fn assert_answers(records: &[Record], marks: &Marks) {
    let window_end = marks.db_ready + RECONNECT_MARGIN;
    for r in records {
        match r.status {
            Some(200 | 204) | None => {}
            Some(503) => {
                let body: Value =
                    serde_json::from_str(&r.text).unwrap_or_else(|_| panic!("503 not JSON: {r:?}"));
                let errors = body["errors"].as_array().unwrap_or_else(|| panic!("503 without errors: {r:?}"));
                assert!(
                    !errors.is_empty() && errors.iter().all(|e| e.as_str().is_some_and(|s| !s.is_empty())),
                    "{r:?}"
                );
                assert!(
                    r.answered >= marks.db_down && r.sent <= window_end,
                    "a 503 outside the database outage ({:?}..{window_end:?}): {r:?}",
                    marks.db_down
                );
            }
            Some(_) => panic!("an answer other than 200, 204 or 503: {r:?}"),
        }
    }
    // The balancer sends nothing to a dead backend: no connection error after the kill.
    let killed = marks.phase_start(Phase::ReplicaKilled);
    for r in records.iter().filter(|r| r.status.is_none()) {
        assert!(
            r.sent <= killed && r.answered >= marks.kill_sent,
            "a connection error for a request not in flight at the kill: {r:?}"
        );
    }
}

/// Right after the clients stop: every credential not revoked and not yet due has its lease,
/// naming a user of its own that holds the answered key; no revoked lease is left.
async fn assert_leases(records: &[Record], url: &str, moto: &Moto, checked_at: Duration) {
    let issued: Vec<&Record> =
        records.iter().filter(|r| r.op == Op::Issue && r.status == Some(200)).collect();
    assert!(issued.len() > 50, "too few credentials issued to prove anything: {}", issued.len());
    let ids: BTreeSet<&str> = issued.iter().map(|r| r.lease_id.as_deref().unwrap()).collect();
    let keys: BTreeSet<&str> = issued.iter().map(|r| r.access_key.as_deref().unwrap()).collect();
    assert_eq!(ids.len(), issued.len(), "two answers share a lease id");
    assert_eq!(keys.len(), issued.len(), "two answers share an access key");
    let revoked: BTreeSet<&str> = records
        .iter()
        .filter(|r| r.op == Op::Revoke && r.status == Some(204))
        .map(|r| r.lease_id.as_deref().unwrap())
        .collect();
    assert!(!revoked.is_empty());
    // A revocation answered with a 503 or cut by the kill may have happened all the same (the
    // user deleted, then the lease record left claimed): another replica finishes it once its
    // claim lapses. Those leases may or may not be recorded still.
    let revoke_tried: BTreeSet<&str> =
        records.iter().filter(|r| r.op == Op::Revoke).map(|r| r.lease_id.as_deref().unwrap()).collect();

    let rows = lease_rows(url);
    let mut users_seen = BTreeSet::new();
    for user in rows.values() {
        assert!(users_seen.insert(user), "two leases name user {user}");
    }
    let mut live = 0;
    for r in &issued {
        let id = r.lease_id.as_deref().unwrap();
        if revoked.contains(id) {
            assert!(!rows.contains_key(id), "revoked lease {id} still recorded");
            continue;
        }
        // Issued at `sent` at the earliest, so due no sooner than `sent + TTL`.
        let due = r.sent + Duration::from_secs(TTL_SECS) <= checked_at + Duration::from_secs(1);
        let uncertain = due || revoke_tried.contains(id);
        let Some(user) = rows.get(id) else {
            assert!(uncertain, "credential {id} has no lease at {checked_at:?}: {r:?}");
            continue;
        };
        if uncertain {
            continue;
        }
        let held = moto.iam().list_access_keys().user_name(user).send().await.unwrap();
        let held: Vec<&str> = held.access_key_metadata().iter().filter_map(|k| k.access_key_id()).collect();
        assert_eq!(held, [r.access_key.as_deref().unwrap()], "user {user} of lease {id}");
        live += 1;
    }
    assert!(live > 0, "no live lease was checked");
    // Leases nobody was told of: requests whose answer a connection error lost.
    let unseen = rows.keys().filter(|id| !ids.contains(id.as_str())).count();
    let cut = records.iter().filter(|r| r.op == Op::Issue && r.status.is_none()).count();
    assert!(unseen <= cut, "{unseen} leases no client got, with {cut} requests cut");
}

/// What the clients saw: counts per phase and outcome, the slowest answers, the longest time
/// without a credential, and when the 503s and connection errors came.
fn summary(records: &[Record], marks: &Marks) -> String {
    let mut out = String::from("HA proof, what the clients saw:\n");
    for (i, (phase, start)) in marks.phases.iter().enumerate() {
        let end = marks.phases.get(i + 1).map_or(marks.stopped, |m| m.1);
        let _ = write!(out, "  {phase:?} ({:.1}s to {:.1}s):", start.as_secs_f64(), end.as_secs_f64());
        for op in [Op::Issue, Op::Revoke] {
            let mut counts: BTreeMap<String, usize> = BTreeMap::new();
            let mut slowest = Duration::ZERO;
            for r in records.iter().filter(|r| r.phase == *phase && r.op == op) {
                *counts.entry(r.outcome()).or_default() += 1;
                slowest = slowest.max(r.answered - r.sent);
            }
            let _ = write!(out, " {op:?} {counts:?} slowest {:.2}s;", slowest.as_secs_f64());
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "  database stopped at {:.1}s, started again at {:.1}s, every replica ready at {:.1}s",
        marks.db_down.as_secs_f64(),
        marks.db_started.as_secs_f64(),
        marks.db_ready.as_secs_f64()
    );
    // The longest time no client got a credential: between two successful answers.
    let mut answered: Vec<Duration> =
        records.iter().filter(|r| r.op == Op::Issue && r.ok()).map(|r| r.answered).collect();
    answered.sort();
    if let Some((from, to)) = answered.windows(2).map(|w| (w[0], w[1])).max_by_key(|(a, b)| *b - *a) {
        let _ = writeln!(
            out,
            "  longest time without a credential: {:.2}s, from {:.2}s to {:.2}s",
            (to - from).as_secs_f64(),
            from.as_secs_f64(),
            to.as_secs_f64()
        );
    }
    for (what, status) in [("503s", Some(503)), ("connection errors", None)] {
        let times: Vec<&Record> = records.iter().filter(|r| r.status == status).collect();
        if let (Some(first), Some(last)) =
            (times.iter().min_by_key(|r| r.answered), times.iter().max_by_key(|r| r.answered))
        {
            let _ = writeln!(
                out,
                "  {} {what}, answered from {:.2}s to {:.2}s",
                times.len(),
                first.answered.as_secs_f64(),
                last.answered.as_secs_f64()
            );
        }
    }
    if let Some(r) = records.iter().find(|r| r.status == Some(503)) {
        let _ = writeln!(out, "  a 503 body: {}", r.text);
    }
    out
}
