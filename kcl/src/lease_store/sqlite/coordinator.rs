//! The KCL 3.x side tables (leader lock and worker metrics) in the lease file
//! (docs/kcl3-coordination.md).

use std::sync::Arc;

use rusqlite::OptionalExtension;

use super::SqliteLeaseStore;
use crate::coordinator_store::CoordinatorStore;
use crate::error::Error;
use crate::leader_lock::LockItem;
use crate::store_future::StoreFuture;
use crate::worker_metrics::WorkerMetricStats;

impl CoordinatorStore for SqliteLeaseStore {
    fn get_lock<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<LockItem>> {
        let table = Arc::clone(&self.coordinator_table);
        let key = key.to_string();
        Box::pin(self.run("get_lock", move |conn, _| {
            let sql = format!(
                "SELECT ownerName, leaseDuration, recordVersionNumber, isReleased FROM {table} WHERE key = ?1"
            );
            let row = conn
                .query_row(&sql, [&key], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, bool>(3)?,
                    ))
                })
                .optional()
                .map_err(|e| Error::store("get_lock", e))?;
            row.map(|(owner_name, duration, record_version_number, released)| {
                let lease_duration_ms = duration
                    .parse()
                    .map_err(|_| Error::corrupt(&key, format!("leaseDuration {duration:?}")))?;
                Ok(LockItem {
                    owner_name,
                    lease_duration_ms,
                    record_version_number,
                    released,
                })
            })
            .transpose()
        }))
    }

    fn put_lock<'a>(
        &'a self,
        key: &'a str,
        item: &'a LockItem,
        expected: Option<&'a str>,
    ) -> StoreFuture<'a, bool> {
        let table = Arc::clone(&self.coordinator_table);
        let key = key.to_string();
        let item = item.clone();
        let expected = expected.map(str::to_string);
        Box::pin(self.run("put_lock", move |conn, _| {
            let sql = |e| Error::store("put_lock", e);
            let values = rusqlite::params![
                key,
                item.owner_name,
                item.lease_duration_ms.to_string(),
                item.record_version_number,
                item.released
            ];
            let changed = match &expected {
                None => conn
                    .execute(
                        &format!(
                            "INSERT INTO {table} (key, ownerName, leaseDuration, recordVersionNumber, isReleased) \
                             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(key) DO NOTHING"
                        ),
                        values,
                    )
                    .map_err(sql)?,
                Some(version) => conn
                    .execute(
                        &format!(
                            "UPDATE {table} SET ownerName = ?2, leaseDuration = ?3, recordVersionNumber = ?4, \
                             isReleased = ?5 WHERE key = ?1 AND recordVersionNumber = ?6"
                        ),
                        rusqlite::params![
                            key,
                            item.owner_name,
                            item.lease_duration_ms.to_string(),
                            item.record_version_number,
                            item.released,
                            version
                        ],
                    )
                    .map_err(sql)?,
            };
            Ok(changed == 1)
        }))
    }

    fn delete_lock<'a>(&'a self, key: &'a str, version: &'a str) -> StoreFuture<'a, bool> {
        let table = Arc::clone(&self.coordinator_table);
        let key = key.to_string();
        let version = version.to_string();
        Box::pin(self.run("delete_lock", move |conn, _| {
            let changed = conn
                .execute(
                    &format!("DELETE FROM {table} WHERE key = ?1 AND recordVersionNumber = ?2"),
                    [&key, &version],
                )
                .map_err(|e| Error::store("delete_lock", e))?;
            Ok(changed == 1)
        }))
    }

    fn put_worker_metrics<'a>(&'a self, stats: &'a WorkerMetricStats) -> StoreFuture<'a, ()> {
        let table = Arc::clone(&self.metrics_table);
        let stats = stats.clone();
        Box::pin(self.run("put_worker_metrics", move |conn, _| {
            let json = |e| Error::store("put_worker_metrics", e);
            let sts = serde_json::to_string(&stats.metric_stats).map_err(json)?;
            let opr = serde_json::to_string(&stats.operating_range).map_err(json)?;
            let lut = i64::try_from(stats.last_update_time).unwrap_or(i64::MAX);
            conn.execute(
                &format!(
                    "INSERT INTO {table} (wid, lut, sts, opr) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT(wid) DO UPDATE SET lut = excluded.lut, sts = excluded.sts, opr = excluded.opr"
                ),
                rusqlite::params![stats.worker_id, lut, sts, opr],
            )
            .map_err(|e| Error::store("put_worker_metrics", e))?;
            Ok(())
        }))
    }

    fn list_worker_metrics(&self) -> StoreFuture<'_, Vec<WorkerMetricStats>> {
        let table = Arc::clone(&self.metrics_table);
        Box::pin(self.run("list_worker_metrics", move |conn, _| {
            let sql = |e| Error::store("list_worker_metrics", e);
            let mut statement = conn
                .prepare(&format!(
                    "SELECT wid, lut, sts, opr FROM {table} ORDER BY wid"
                ))
                .map_err(sql)?;
            let rows = statement
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                })
                .map_err(sql)?;
            let mut out = Vec::new();
            for row in rows {
                let (wid, lut, sts, opr) = row.map_err(sql)?;
                let corrupt = |what: &str| Error::corrupt(&wid, format!("worker metrics {what}"));
                out.push(WorkerMetricStats {
                    last_update_time: u64::try_from(lut).map_err(|_| corrupt("lut"))?,
                    metric_stats: serde_json::from_str(&sts).map_err(|_| corrupt("sts"))?,
                    operating_range: serde_json::from_str(&opr).map_err(|_| corrupt("opr"))?,
                    worker_id: wid,
                });
            }
            Ok(out)
        }))
    }
}
