//! The auth methods' rows against real databases, on SQLite and on PostgreSQL: AppRole's
//! use-limited secret ids are spent exactly once however logins race.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test crate: failing loudly is the point

use keymint_store::auth_methods::{self, EntryRow, ROLE, ROLE_ID, SecretIdRow, Spent};
use keymint_store::mounts::{self, MountRow};
use keymint_store::testing::TestDb as Db;
use keymint_store::{KeySource, Store};

macro_rules! both {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::$body(super::Db::new(false).await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                super::$body(super::Db::new(true).await).await
            }
        }
    };
}

async fn store_with_mount(db: &Db) -> (Store, String) {
    let store = db.open(KeySource::DevStored).await.unwrap();
    let mount = MountRow {
        id: uuid::Uuid::new_v4().to_string(),
        path: "auth/approle/".into(),
        mount_type: "approle".into(),
        description: String::new(),
        accessor: "auth_approle_1".into(),
        default_lease_ttl: 0,
        max_lease_ttl: 0,
        options: "{}".into(),
        created_at: 0,
    };
    assert!(mounts::insert(store.pool(), &mount).await.unwrap());
    (store, mount.id)
}

fn secret(mount: &str, hash: &str, uses: i64) -> SecretIdRow {
    SecretIdRow {
        mount_id: mount.into(),
        role_name: "ci".into(),
        hash: hash.into(),
        accessor: format!("acc-{hash}"),
        uses_left: uses,
        expire_at: None,
        body: "{}".into(),
        created_at: 0,
    }
}

both!(limited_secret_ids_are_spent_once_per_use, limited_body);
async fn limited_body(db: Db) {
    let (store, m) = store_with_mount(&db).await;
    let pool = store.pool();
    assert!(auth_methods::insert_secret_id(pool, &secret(&m, "h2", 2)).await.unwrap());
    assert!(!auth_methods::insert_secret_id(pool, &secret(&m, "h2", 2)).await.unwrap(), "taken");
    assert_eq!(auth_methods::spend_secret_id(pool, &m, "h2").await.unwrap(), Spent::Used);
    assert_eq!(auth_methods::spend_secret_id(pool, &m, "h2").await.unwrap(), Spent::LastUse);
    assert_eq!(auth_methods::spend_secret_id(pool, &m, "h2").await.unwrap(), Spent::Gone);
    assert!(auth_methods::secret_id_by_hash(pool, &m, "h2").await.unwrap().is_none());

    assert!(auth_methods::insert_secret_id(pool, &secret(&m, "h0", 0)).await.unwrap());
    assert_eq!(auth_methods::spend_secret_id(pool, &m, "h0").await.unwrap(), Spent::Unlimited);
    assert!(auth_methods::secret_id_by_hash(pool, &m, "h0").await.unwrap().is_some());
}

both!(racing_logins_spend_each_use_exactly_once, racing_body);
async fn racing_body(db: Db) {
    let (store, m) = store_with_mount(&db).await;
    // Two stores on one database: two replicas.
    let other = db.open(KeySource::DevStored).await.unwrap();
    assert!(auth_methods::insert_secret_id(store.pool(), &secret(&m, "h5", 5)).await.unwrap());
    let mut tasks = Vec::new();
    for i in 0..20 {
        let pool = if i % 2 == 0 { store.pool().clone() } else { other.pool().clone() };
        let m = m.clone();
        tasks
            .push(tokio::spawn(async move { auth_methods::spend_secret_id(&pool, &m, "h5").await.unwrap() }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    let count = |s: Spent| outcomes.iter().filter(|o| **o == s).count();
    assert_eq!((count(Spent::Used), count(Spent::LastUse), count(Spent::Gone)), (4, 1, 15), "{outcomes:?}");
}

both!(entries_are_kept_by_kind_and_name, entries_body);
async fn entries_body(db: Db) {
    let (store, m) = store_with_mount(&db).await;
    let pool = store.pool();
    let row = EntryRow { body: "ci".into(), secret: None, updated_at: 1 };
    assert!(auth_methods::insert_if_absent(pool, &m, ROLE_ID, "rid", &row).await.unwrap());
    assert!(
        !auth_methods::insert_if_absent(pool, &m, ROLE_ID, "rid", &row).await.unwrap(),
        "one role per id"
    );
    let role = EntryRow { body: "{}".into(), secret: Some(vec![1, 2]), updated_at: 2 };
    auth_methods::put(pool, &m, ROLE, "ci", &role).await.unwrap();
    assert_eq!(auth_methods::names(pool, &m, ROLE).await.unwrap(), ["ci"]);
    assert_eq!(auth_methods::get(pool, &m, ROLE, "ci").await.unwrap(), Some(role));
    assert!(auth_methods::delete(pool, &m, ROLE, "ci").await.unwrap());
    assert!(!auth_methods::delete(pool, &m, ROLE, "ci").await.unwrap());
    // A disabled mount takes its rows with it.
    auth_methods::put(pool, &m, ROLE, "ci", &row).await.unwrap();
    assert!(auth_methods::insert_secret_id(pool, &secret(&m, "h1", 1)).await.unwrap());
    mounts::delete(pool, &m).await.unwrap();
    assert!(auth_methods::get(pool, &m, ROLE, "ci").await.unwrap().is_none());
    assert!(auth_methods::secret_id_by_hash(pool, &m, "h1").await.unwrap().is_none());
}
