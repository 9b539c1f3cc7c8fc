//! [`EventStore`] over SQLite: every statement lives in [`crate::sql::events`].

use crow_core::model::{Enrichment, Interaction, InteractionText, Millis, Session};
use crow_core::ports::{
    AppendOutcome, EntityCount, EntityQuery, EventStore, FunnelRow, FunnelStep, InteractionQuery, NewJob, Page,
    SentimentBucket, SentimentSource, SessionQuery, TrafficSummary,
};

use super::SqliteStore;
use crate::error::StoreError;
use crate::sql::events as sql;

impl SqliteStore {
    /// [`EventStore::append`] with this crate's error type.
    pub async fn append_events(
        &self,
        org_id: &str,
        events: Vec<Interaction>,
        follow_up: Vec<NewJob>,
    ) -> Result<AppendOutcome, StoreError> {
        sql::append(self, org_id, events, follow_up).await
    }
}

#[async_trait::async_trait]
impl EventStore for SqliteStore {
    async fn append(
        &self,
        org_id: &str,
        events: Vec<Interaction>,
        follow_up: Vec<NewJob>,
    ) -> crow_core::Result<AppendOutcome> {
        Ok(self.append_events(org_id, events, follow_up).await?)
    }

    async fn get_interactions(&self, org_id: &str, ids: &[String]) -> crow_core::Result<Vec<Interaction>> {
        Ok(sql::get_interactions(self, org_id, ids).await?)
    }

    async fn interactions_ndjson(&self, org_id: &str, ids: &[String]) -> crow_core::Result<(Vec<u8>, usize)> {
        Ok(sql::interactions_ndjson(self, org_id, ids).await?)
    }

    async fn list_interactions(&self, org_id: &str, query: &InteractionQuery) -> crow_core::Result<Page<Interaction>> {
        Ok(sql::list_interactions(self, org_id, query).await?)
    }

    async fn store_texts(&self, org_id: &str, texts: &[InteractionText]) -> crow_core::Result<()> {
        Ok(sql::store_texts(self, org_id, texts).await?)
    }

    async fn apply_enrichment(&self, org_id: &str, enrichment: &[Enrichment]) -> crow_core::Result<()> {
        Ok(sql::apply_enrichment(self, org_id, enrichment).await?)
    }

    async fn link_identity(&self, org_id: &str, alias_id: &str, person_id: &str, at: Millis) -> crow_core::Result<()> {
        Ok(sql::link_identity(self, org_id, alias_id, person_id, at).await?)
    }

    async fn resolve_person(&self, org_id: &str, id: &str) -> crow_core::Result<Option<String>> {
        Ok(sql::resolve_person(self, org_id, id).await?)
    }

    async fn latest_session(&self, org_id: &str, person_id: &str, at: Millis) -> crow_core::Result<Option<Session>> {
        Ok(sql::latest_session(self, org_id, person_id, at).await?)
    }

    async fn refresh_sessions(&self, org_id: &str, session_ids: &[String]) -> crow_core::Result<()> {
        Ok(sql::refresh_sessions(self, org_id, session_ids).await?)
    }

    async fn get_session(&self, org_id: &str, id: &str) -> crow_core::Result<Option<Session>> {
        Ok(sql::get_session(self, org_id, id).await?)
    }

    async fn list_sessions(&self, org_id: &str, query: &SessionQuery) -> crow_core::Result<Page<Session>> {
        Ok(sql::list_sessions(self, org_id, query).await?)
    }

    async fn traffic_summary(
        &self,
        org_id: &str,
        since: Millis,
        until: Millis,
        top: usize,
    ) -> crow_core::Result<TrafficSummary> {
        Ok(sql::traffic_summary(self, org_id, since, until, top).await?)
    }

    async fn funnel(
        &self,
        org_id: &str,
        steps: &[FunnelStep],
        since: Millis,
        until: Millis,
    ) -> crow_core::Result<Vec<FunnelRow>> {
        Ok(sql::funnel(self, org_id, steps, since, until).await?)
    }

    async fn sentiment_series(
        &self,
        org_id: &str,
        source: SentimentSource,
        since: Millis,
        until: Millis,
        bucket_ms: i64,
    ) -> crow_core::Result<Vec<SentimentBucket>> {
        Ok(sql::sentiment_series(self, org_id, source, since, until, bucket_ms).await?)
    }

    async fn top_entities(&self, org_id: &str, query: &EntityQuery) -> crow_core::Result<Vec<EntityCount>> {
        Ok(sql::top_entities(self, org_id, query).await?)
    }
}

#[cfg(test)]
mod tests {
    use crow_core::model::EventType;
    use rusqlite::types::Value as SqlValue;
    use rusqlite::{Connection, params_from_iter};

    use super::*;
    use crate::sql::events::{encode_session_cursor, list_interactions_stmt, list_sessions_stmt, top_entities_sql};
    use crate::sql::{Stmt, encode_cursor};

    fn plan<P: rusqlite::ToSql>(conn: &Connection, sql: &str, params: &[P]) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = stmt
            .query_map(params_from_iter(params), |r| r.get::<_, String>(3))
            .unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
    }

    fn stmt_plan(conn: &Connection, stmt: &Stmt) -> String {
        plan(conn, stmt.sql(), stmt.params())
    }

    /// Every page of every listing is an index range read in order: no full scan, no sort.
    #[test]
    fn listings_use_an_index_and_no_sort() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::migrate::apply(&mut conn).unwrap();
        let cursor = Some(encode_cursor(1_000, 5));
        let queries = [
            InteractionQuery::default(),
            InteractionQuery {
                cursor: cursor.clone(),
                ..Default::default()
            },
            InteractionQuery {
                cursor: cursor.clone(),
                event_type: Some(EventType::Track),
                since: Some(0),
                until: Some(10),
                ..Default::default()
            },
            InteractionQuery {
                cursor: cursor.clone(),
                person_id: Some("p".into()),
                ..Default::default()
            },
            InteractionQuery {
                cursor,
                session_id: Some("s".into()),
                ..Default::default()
            },
        ];
        for q in &queries {
            let p = stmt_plan(&conn, &list_interactions_stmt("o", q, 10).unwrap());
            assert!(p.contains("USING INDEX interactions_"), "{q:?}: {p}");
            assert!(!p.contains("TEMP B-TREE") && !p.starts_with("SCAN"), "{q:?}: {p}");
        }
        let cursor = Some(encode_session_cursor(1_000, "s-1"));
        for q in [
            SessionQuery {
                cursor: cursor.clone(),
                ..Default::default()
            },
            SessionQuery {
                cursor,
                person_id: Some("p".into()),
                since: Some(5),
                ..Default::default()
            },
        ] {
            let p = stmt_plan(&conn, &list_sessions_stmt("o", &q, 10).unwrap());
            assert!(p.contains("USING INDEX sessions_"), "{q:?}: {p}");
            assert!(!p.contains("TEMP B-TREE"), "{q:?}: {p}");
        }
    }

    /// The entity aggregate reads the texts of the window through the time index.
    #[test]
    fn top_entities_read_the_window_through_the_time_index() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::migrate::apply(&mut conn).unwrap();
        for (source, index) in [
            (SentimentSource::Interactions, "interaction_texts_time"),
            (SentimentSource::Mentions, "social_mentions_time"),
        ] {
            let params: Vec<SqlValue> = vec!["o".to_owned().into(), 0.into(), 10.into(), SqlValue::Null, 5.into()];
            let p = plan(&conn, &top_entities_sql(source), &params);
            assert!(p.contains(&format!("USING INDEX {index}")), "{source:?}: {p}");
        }
    }
}

/// Plans of the statements moved onto the SQL layer with this port.
#[cfg(test)]
mod plans {
    use rusqlite::{Connection, params_from_iter};

    use crate::sql::Stmt;
    use crate::sql::events::{
        enrichment_stmt, funnel_stmt, link_stmts, session_events_stmt, traffic_stmt, upsert_sessions_stmt,
    };

    fn plan(conn: &Connection, stmt: &Stmt) -> String {
        let mut q = conn.prepare(&format!("EXPLAIN QUERY PLAN {}", stmt.sql())).unwrap();
        let rows = q
            .query_map(params_from_iter(stmt.params()), |r| r.get::<_, String>(3))
            .unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
    }

    /// No full scan of a table, by name or alias (`SCAN j`, json_each, constant rows, subqueries
    /// and materialized CTEs are fine).
    fn assert_no_table_scan(what: &str, p: &str, tables: &[&str]) {
        for step in p.split("; ") {
            for t in tables {
                let scan = format!("SCAN {t}");
                assert!(
                    step != scan && !step.starts_with(&format!("{scan} ")),
                    "{what} scans {t}: {p}"
                );
            }
        }
    }

    /// The reports read their window through the time indexes; enrichment, identity links and
    /// session refreshes reach their rows through the unique, person and session indexes.
    #[test]
    fn reports_and_writes_use_the_indexes() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::migrate::apply(&mut conn).unwrap();
        let tables = ["interactions", "sessions", "identities", "i", "d"];

        let p = plan(&conn, &traffic_stmt("o", 0, 10, 5));
        assert!(p.contains("SEARCH i USING INDEX interactions_time"), "{p}");
        assert!(p.contains("SEARCH interactions USING INDEX interactions_time"), "{p}");
        assert_eq!(p.matches("SEARCH sessions USING INDEX sessions_time").count(), 2, "{p}");
        assert_no_table_scan("traffic", &p, &tables);

        let p = plan(&conn, &funnel_stmt("o", &["page", "track"], 0, 10));
        assert!(p.contains("SEARCH i USING INDEX interactions_time"), "{p}");
        assert_no_table_scan("funnel", &p, &tables);

        let p = plan(&conn, &session_events_stmt("o", &["s1", "s2"]));
        assert!(p.contains("SEARCH i USING INDEX interactions_session"), "{p}");
        assert!(!p.contains("TEMP B-TREE"), "{p}");
        assert_no_table_scan("session events", &p, &tables);

        let p = plan(&conn, &upsert_sessions_stmt("o", "[]".into()));
        assert!(p.contains("SEARCH i USING INTEGER PRIMARY KEY"), "{p}");
        assert!(p.contains("SEARCH e USING COVERING INDEX interactions_session"), "{p}");
        assert_no_table_scan(
            "session upsert",
            &p,
            &["interactions", "sessions", "identities", "i", "d", "e"],
        );

        let p = plan(&conn, &enrichment_stmt("o", "[]".into()));
        assert!(
            p.contains("SEARCH i USING COVERING INDEX sqlite_autoindex_interactions_1"),
            "{p}"
        );
        assert!(p.contains("SEARCH interactions USING INTEGER PRIMARY KEY"), "{p}");
        assert_no_table_scan("enrichment", &p, &tables);

        for s in link_stmts("o", "a", "p", 1) {
            let p = plan(&conn, &s);
            assert_no_table_scan("link", &p, &["interactions", "sessions", "identities", "r"]);
        }
    }
}
