//! The merge, the shares and the time conversions; then replicas on one PostgreSQL database
//! (`KEYMINT_TEST_POSTGRES_URL`) in real time: exchanges, cuts heard, caps shared.

use super::*;

fn cut(max: f64, at_ms: i64) -> pacing::Learned {
    pacing::Learned { max, at_ms, ceiling: None }
}

#[test]
fn the_first_report_of_a_throttle_is_a_cut_measured_across_the_fleet() {
    let (merged, new) = merge(FleetRate::default(), Some(cut(7.0, 1_000)), 21.0, 1_100);
    assert!(new);
    assert_eq!(merged.epoch, 1);
    assert_eq!(merged.learned.unwrap().max, 21.0, "what the fleet had accepted, not one replica");
    // Nothing accepted yet (AWS answers throttles at once): the replica's own measure.
    let (merged, _) = merge(FleetRate::default(), Some(cut(7.0, 1_000)), 0.0, 1_000);
    assert_eq!(merged.learned.unwrap().max, 7.0);
}

#[test]
fn throttles_of_the_same_burst_are_one_cut_and_late_successes_raise_its_measure() {
    let stored = FleetRate { learned: Some(cut(14.0, 1_000)), epoch: 3 };
    // Another replica's cut 400 ms later: the same burst.
    let (merged, new) = merge(stored, Some(cut(5.0, 1_400)), 20.0, 1_450);
    assert!(!new);
    assert_eq!(merged.epoch, 3);
    assert_eq!(merged.learned.unwrap().max, 20.0);
    assert_eq!(merged.learned.unwrap().at_ms, 1_000);
    // Never lowered, and never raised above the rate in force when AWS throttled.
    let capped =
        FleetRate { learned: Some(pacing::Learned { ceiling: Some(18.0), ..cut(14.0, 1_000) }), epoch: 3 };
    let (merged, _) = merge(capped, None, 30.0, 1_500);
    assert_eq!(merged.learned.unwrap().max, 18.0);
    let (merged, _) = merge(capped, None, 3.0, 1_500);
    assert_eq!(merged.learned.unwrap().max, 14.0);
    // After the spacing, reports no longer move it; a new throttle is a new cut.
    let (merged, _) = merge(stored, None, 40.0, 2_500);
    assert_eq!(merged, stored);
    let (merged, new) = merge(stored, Some(cut(9.0, 2_500)), 12.0, 2_600);
    assert!(new);
    assert_eq!((merged.epoch, merged.learned.unwrap().max), (4, 12.0));
}

#[test]
fn a_cut_is_forgotten_after_long_calm() {
    let stored = FleetRate { learned: Some(cut(14.0, 0)), epoch: 1 };
    let (merged, _) = merge(stored, None, 0.0, millis(FORGET_AFTER) + 1);
    assert_eq!(merged, FleetRate { learned: None, epoch: 1 });
}

#[test]
fn shares_follow_demand_and_an_idle_fleet_shares_evenly() {
    let report = |demand| Report { demand, queued: 0.0, accepted: 0.0, cut: None, cuts: 0 };
    let idle = Others { replicas: 2, ..Others::default() };
    assert!((share(&report(0.0), &idle) - 1.0 / 3.0).abs() < 1e-9);
    // After a pause, the others' slices have lapsed, but they still count.
    let paused = Others { lapsed: 2, ..Others::default() };
    assert!((share(&report(0.0), &paused) - 1.0 / 3.0).abs() < 1e-9);
    let busy = Others { replicas: 2, demand: 198.0, ..Others::default() };
    assert!((share(&report(99.0), &busy) - 1.0 / 3.0).abs() < 1e-9);
    // A replica with no calls keeps a sliver: its first call is not stuck until the next
    // exchange.
    let s = share(&report(0.0), &busy);
    assert!(s > 0.0 && s < 0.01, "{s}");
    assert_eq!(share(&report(5.0), &Others::default()), 1.0, "alone: the whole rate");
}

#[test]
fn instants_and_stored_milliseconds_round_trip() {
    let now = Instant::now() + Duration::from_secs(10);
    let l = Learned { max: 12.0, at: now - Duration::from_millis(1_500), ceiling: f64::INFINITY };
    let stored = to_stored(l, now, 1_000_000);
    assert_eq!(stored.at_ms, 998_500);
    assert_eq!(stored.ceiling, None);
    assert_eq!(from_stored(stored, now, 1_000_000), Some(l));
}

/// Replicas on one PostgreSQL database (`KEYMINT_TEST_POSTGRES_URL`), in real time.
mod on_postgres {
    use std::sync::Arc;

    use aws_sdk_iam::error::SdkError;
    use aws_sdk_iam::operation::get_user::GetUserError;
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use keymint_store::KeySource;
    use keymint_store::mounts::{self, MountRow};
    use keymint_store::testing::TestDb;

    use super::super::super::{Limits, Op, Pacer};
    use super::*;

    type Answer = Result<(), SdkError<GetUserError, HttpResponse>>;

    async fn mount(db: &TestDb) -> (Store, String) {
        let store = db.open(KeySource::DevStored).await.unwrap();
        let id = another_mount(&store, "aws/").await;
        (store, id)
    }

    async fn another_mount(store: &Store, path: &str) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let row = MountRow {
            id: id.clone(),
            path: path.into(),
            mount_type: "aws".into(),
            description: String::new(),
            accessor: format!("aws_{path}"),
            default_lease_ttl: 0,
            max_lease_ttl: 0,
            options: "{}".into(),
            created_at: 0,
        };
        assert!(mounts::insert(store.pool(), &row).await.unwrap());
        id
    }

    fn replicas(store: &Store, mount: &str, limits: Limits, n: usize) -> Vec<Arc<Pacer>> {
        (0..n).map(|i| Pacer::in_fleet(limits, Fleet::new(store.clone(), mount, &format!("r{i}")))).collect()
    }

    async fn ok(pacer: &Pacer) {
        pacer.run(Op::iam("DeleteUser"), || std::future::ready(Answer::Ok(()))).await.unwrap();
    }

    /// Polls `check` every 50 ms for up to 10 s.
    async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
        for _ in 0..200 {
            if check() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("not within 10 s: {what}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_throttle_seen_by_one_replica_slows_the_others() {
        let db = TestDb::new(true).await;
        let (store, mount) = mount(&db).await;
        let fleet = replicas(&store, &mount, Limits::default(), 2);
        for p in &fleet {
            ok(p).await;
        }
        for _ in 0..10 {
            ok(&fleet[0]).await;
        }
        // The first replica's call is throttled once, then goes through.
        let mut first = true;
        fleet[0]
            .run(Op::iam("DeleteUser"), || {
                let throttle = std::mem::replace(&mut first, false);
                std::future::ready(if throttle {
                    Err(crate::pace::pacer::tests::throttling())
                } else {
                    Ok(())
                })
            })
            .await
            .unwrap();
        assert!(fleet[0].current_rate(Family::IamWrite).is_some());
        // The other never saw a throttle, and keeps to the fleet's rate all the same.
        eventually("the second replica keeps to the learned rate", || {
            fleet[1].current_rate(Family::IamWrite).is_some()
        })
        .await;
        let stored = sqlx::query_as::<_, (f64, i64)>(
            "SELECT learned_max, epoch FROM aws_pace_fleet WHERE mount_id = $1 AND family = 'iam_write'",
        )
        .bind(&mount)
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert_eq!(stored.1, 1, "one cut");
        assert!(stored.0 >= 11.0, "measured from what the fleet had accepted: {}", stored.0);
        // Together they keep under what was throttled.
        eventually("both replicas' rates add up to the fleet's", || {
            let sum: f64 = fleet.iter().filter_map(|p| p.current_rate(Family::IamWrite)).sum();
            sum > 0.0 && sum <= stored.0 * 1.05
        })
        .await;
        assert_eq!(fleet[0].current_rate(Family::Sts), None, "other families are not touched");
    }

    #[tokio::test]
    async fn an_exchange_sees_live_and_lapsed_slices_and_stores_the_merge() {
        let db = TestDb::new(true).await;
        let (store, mount) = mount(&db).await;
        let slice = |demand| [("iam_write", Slice { demand, queued: 3.0, accepted: 2.0 })];
        let keep = |_: &str, stored: FleetRate, _: Others| stored;
        let mine = slice(1.0);
        let at = |ms| pacing::exchange(&store, &mount, "me", ms, &mine, Upkeep::Rows, keep);
        // Three others: one reported now, one 10 s ago (lapsed), one two minutes ago (gone).
        for (replica, ms) in [("now", 200_000), ("idle", 190_000), ("gone", 80_000)] {
            pacing::exchange(&store, &mount, replica, ms, &slice(5.0), Upkeep::Rows, keep).await.unwrap();
        }
        let seen = at(200_500).await.unwrap()[0];
        assert_eq!(seen.others, Others { replicas: 1, demand: 5.0, queued: 3.0, accepted: 2.0, lapsed: 1 });
        // A merge that differs is stored, and the next exchange reads it back.
        let cut = FleetRate {
            learned: Some(pacing::Learned { max: 12.0, at_ms: 200_600, ceiling: None }),
            epoch: 1,
        };
        pacing::exchange(&store, &mount, "me", 200_600, &mine, Upkeep::None, |_, _, _| cut).await.unwrap();
        assert_eq!(at(200_700).await.unwrap()[0].rate, cut);
    }

    #[tokio::test]
    async fn a_new_cut_is_told_to_the_replicas_listening() {
        let db = TestDb::new(true).await;
        let (store, mount) = mount(&db).await;
        let mut listener = pacing::CutListener::connect(&store).await.unwrap().expect("PostgreSQL");
        let slices = [("iam_write", Slice { demand: 1.0, queued: 0.0, accepted: 0.0 })];
        let exchange = |ms, epoch| {
            pacing::exchange(
                &store,
                &mount,
                "r",
                ms,
                &slices,
                Upkeep::Rows,
                move |_, stored: FleetRate, _| FleetRate { epoch, ..stored },
            )
        };
        // An exchange that changes nothing is not told; one that makes a cut is.
        exchange(1_000, 0).await.unwrap();
        exchange(2_000, 1).await.unwrap();
        let heard = tokio::time::timeout(Duration::from_secs(10), listener.next()).await;
        assert_eq!(heard.expect("told within 10 s").unwrap(), mount);
        exchange(3_000, 1).await.unwrap();
        let quiet = tokio::time::timeout(Duration::from_millis(500), listener.next()).await;
        assert!(quiet.is_err(), "an exchange without a new cut told: {quiet:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cut_heard_from_the_fleet_wakes_that_mounts_pacer() {
        let db = TestDb::new(true).await;
        let (store, mount) = mount(&db).await;
        let other = another_mount(&store, "aws2/").await;
        // Pacers without their exchange task, so nothing but the listener takes their kicks.
        let paced =
            |id: &str| Arc::new(Pacer::in_fleet_idle(Limits::default(), Fleet::new(store.clone(), id, "me")));
        let (cut, quiet) = (paced(&mount), paced(&other));
        let pacers: Arc<Pacers> = Arc::default();
        lock(&pacers).extend([(mount.clone(), cut.clone()), (other.clone(), quiet.clone())]);
        tokio::spawn(listen_for_cuts(store.clone(), Arc::downgrade(&pacers)));
        let kicked = |p: &Arc<Pacer>| {
            let p = p.clone();
            async move {
                let fleet = p.fleet().unwrap();
                tokio::time::timeout(Duration::from_millis(200), fleet.kick.notified()).await.is_ok()
            }
        };
        // Another replica's cuts of the first mount, until the listener (connecting
        // meanwhile) hears one.
        let slices = [("iam_write", Slice { demand: 1.0, queued: 0.0, accepted: 0.0 })];
        let mut heard = false;
        for epoch in 1..50 {
            pacing::exchange(&store, &mount, "other", epoch * 1_000, &slices, Upkeep::Rows, |_, s, _| {
                FleetRate { epoch, ..s }
            })
            .await
            .unwrap();
            if kicked(&cut).await {
                heard = true;
                break;
            }
        }
        assert!(heard, "the cut's mount's pacer was not woken within 10 s");
        assert!(!kicked(&quiet).await, "another mount's pacer was woken too");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cap_holds_for_the_fleet_not_for_each_replica() {
        let db = TestDb::new(true).await;
        let (store, mount) = mount(&db).await;
        let limits = Limits { caps: [Some(30.0), None, None], ..Limits::default() };
        let fleet = replicas(&store, &mount, limits, 3);
        for p in &fleet {
            ok(p).await;
        }
        eventually("three slices of 30 calls a second", || {
            let rates: Vec<f64> = fleet.iter().filter_map(|p| p.current_rate(Family::IamWrite)).collect();
            let sum: f64 = rates.iter().sum();
            rates.len() == 3 && rates.iter().all(|r| *r < 20.0) && (27.0..=33.0).contains(&sum)
        })
        .await;
        // A replica that stops making calls gives its slice back once it lapses.
        eventually("the two busy replicas share the whole cap", || {
            for p in &fleet[..2] {
                let p = p.clone();
                tokio::spawn(async move { ok(&p).await });
            }
            let sum: f64 = fleet[..2].iter().filter_map(|p| p.current_rate(Family::IamWrite)).sum();
            sum > 27.0 && sum <= 30.5
        })
        .await;
    }
}
