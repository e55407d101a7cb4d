//! Counters and latency histograms for `GET /metrics` (Prometheus text format): decisions by
//! endpoint and result, Datalog run-limit hits (apart from denials: they are no verdict), the
//! sync state, and request latency per endpoint. Nothing here names a token or a caller.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (bound, count) in BUCKETS.iter().zip(self.counts.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    decisions: Mutex<BTreeMap<(String, &'static str), u64>>,
    run_limit_hits: AtomicU64,
    latency: Mutex<BTreeMap<String, Histogram>>,
    limits: [AtomicU64; Limit::ALL.len()],
    open_connections: AtomicU64,
}

/// What a server limit cut off, counted in `hessra_limit_total{limit}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// A connection idle past `idle_timeout` (or the first-request deadline) was closed.
    IdleClose,
    /// The same, sooner, while every connection slot was taken.
    IdleCloseWhenFull,
    /// A connection older than `max_connection_age` was closed gracefully.
    AgeClose,
    BodyTooLarge,
    BodyTimeout,
    RequestTimeout,
    /// The verification pool had no worker free within the queue wait (503).
    VerifyBusy,
    /// An open connection's client certificate no longer chains to a trusted CA (401).
    CertificateUntrusted,
}

impl Limit {
    const ALL: [Limit; 8] = [
        Limit::IdleClose,
        Limit::IdleCloseWhenFull,
        Limit::AgeClose,
        Limit::BodyTooLarge,
        Limit::BodyTimeout,
        Limit::RequestTimeout,
        Limit::VerifyBusy,
        Limit::CertificateUntrusted,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Limit::IdleClose => "idle_close",
            Limit::IdleCloseWhenFull => "idle_close_when_full",
            Limit::AgeClose => "age_close",
            Limit::BodyTooLarge => "body_too_large",
            Limit::BodyTimeout => "body_timeout",
            Limit::RequestTimeout => "request_timeout",
            Limit::VerifyBusy => "verify_busy",
            Limit::CertificateUntrusted => "certificate_untrusted",
        }
    }
}

/// What the sync state contributes, read when scraped.
pub struct SyncGauges {
    pub policy_age_seconds: i64,
    pub sync_failing: bool,
    pub clients: usize,
    pub revocations: usize,
    pub revision: String,
    /// Root keys: id (none for a single key file), state, and until when a retiring key verifies.
    pub keys: Vec<(Option<u32>, &'static str, Option<i64>)>,
    pub key_set_failing: bool,
    /// Keys of the repository's key set (next or active) with no private key in this
    /// replica's key directory.
    pub missing_private_keys: Vec<u32>,
}

impl Metrics {
    pub fn decision(&self, endpoint: &str, result: &'static str) {
        let mut decisions = self.decisions.lock().unwrap_or_else(|p| p.into_inner());
        *decisions.entry((endpoint.to_string(), result)).or_default() += 1;
    }

    pub fn run_limit_hit(&self) {
        self.run_limit_hits.fetch_add(1, Ordering::Relaxed);
    }

    pub fn limit_hit(&self, limit: Limit) {
        self.limits[limit as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_opened(&self) {
        self.open_connections.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_closed(&self) {
        self.open_connections.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn latency(&self, endpoint: &str, elapsed: Duration) {
        let mut latency = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        latency
            .entry(endpoint.to_string())
            .or_default()
            .observe(elapsed.as_secs_f64());
    }

    /// The Prometheus text exposition.
    pub fn render(&self, sync: &SyncGauges) -> String {
        let mut out = String::new();
        let decisions = self
            .decisions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        header(
            &mut out,
            "hessra_requests_total",
            "counter",
            "Requests by endpoint and result (allow, deny, error).",
        );
        for ((endpoint, result), count) in &decisions {
            let _ = writeln!(
                out,
                "hessra_requests_total{{endpoint=\"{}\",result=\"{result}\"}} {count}",
                escape(endpoint)
            );
        }
        header(
            &mut out,
            "hessra_datalog_run_limit_total",
            "counter",
            "Token evaluations stopped by a Datalog run limit (not counted as denials).",
        );
        let hits = self.run_limit_hits.load(Ordering::Relaxed);
        let _ = writeln!(out, "hessra_datalog_run_limit_total {hits}");
        gauge(
            &mut out,
            "hessra_policy_age_seconds",
            "Seconds since the applied policy was loaded.",
            sync.policy_age_seconds,
        );
        gauge(
            &mut out,
            "hessra_policy_sync_failing",
            "1 while the last sync was refused (the last good policy keeps serving).",
            i64::from(sync.sync_failing),
        );
        gauge(
            &mut out,
            "hessra_policy_clients",
            "Clients in the applied policy.",
            sync.clients as i64,
        );
        gauge(
            &mut out,
            "hessra_revocations",
            "Revoked block ids in the applied revocation list.",
            sync.revocations as i64,
        );
        header(
            &mut out,
            "hessra_policy_info",
            "gauge",
            "The applied policy revision.",
        );
        let _ = writeln!(
            out,
            "hessra_policy_info{{revision=\"{}\"}} 1",
            escape(&sync.revision)
        );
        header(
            &mut out,
            "hessra_root_key_info",
            "gauge",
            "Root keys by id and state (next, active, retiring, retired).",
        );
        for (id, state, _) in &sync.keys {
            let id = id.map_or("none".to_string(), |id| id.to_string());
            let _ = writeln!(
                out,
                "hessra_root_key_info{{id=\"{id}\",state=\"{state}\"}} 1"
            );
        }
        header(
            &mut out,
            "hessra_root_key_verify_until_seconds",
            "gauge",
            "Until when (Unix seconds) a retiring root key verifies; retire it after this.",
        );
        for (id, state, until) in &sync.keys {
            if let (Some(id), Some(until), &"retiring") = (id, until, state) {
                let _ = writeln!(
                    out,
                    "hessra_root_key_verify_until_seconds{{id=\"{id}\"}} {until}"
                );
            }
        }
        gauge(
            &mut out,
            "hessra_key_set_failing",
            "1 while the key set on disk is refused (the keys in use stay).",
            i64::from(sync.key_set_failing),
        );
        header(
            &mut out,
            "hessra_root_key_private_missing",
            "gauge",
            "Root keys (next or active) of the repository's keys.toml whose private key is not in this replica's key directory: activating one would be refused here.",
        );
        for id in &sync.missing_private_keys {
            let _ = writeln!(out, "hessra_root_key_private_missing{{id=\"{id}\"}} 1");
        }
        header(
            &mut out,
            "hessra_limit_total",
            "counter",
            "Connections and requests cut off by a server limit (deadlines, sizes, busy verification pool, untrusted certificates).",
        );
        for limit in Limit::ALL {
            let count = self.limits[limit as usize].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "hessra_limit_total{{limit=\"{}\"}} {count}",
                limit.name()
            );
        }
        gauge(
            &mut out,
            "hessra_connections_open",
            "Client connections open (TLS handshakes included).",
            self.open_connections.load(Ordering::Relaxed) as i64,
        );
        let latency = self
            .latency
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        header(
            &mut out,
            "hessra_request_duration_seconds",
            "histogram",
            "Request latency by endpoint.",
        );
        for (endpoint, histogram) in &latency {
            let endpoint = escape(endpoint);
            for (bound, count) in BUCKETS.iter().zip(histogram.counts.iter()) {
                let _ = writeln!(
                    out,
                    "hessra_request_duration_seconds_bucket{{endpoint=\"{endpoint}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "hessra_request_duration_seconds_bucket{{endpoint=\"{endpoint}\",le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(
                out,
                "hessra_request_duration_seconds_sum{{endpoint=\"{endpoint}\"}} {}",
                histogram.sum
            );
            let _ = writeln!(
                out,
                "hessra_request_duration_seconds_count{{endpoint=\"{endpoint}\"}} {}",
                histogram.count
            );
        }
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn gauge(out: &mut String, name: &str, help: &str, value: i64) {
    header(out, name, "gauge", help);
    let _ = writeln!(out, "{name} {value}");
}

/// A label value: backslash, quote and newline escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The audit log's counters, in the same exposition format.
pub fn audit(counters: &super::audit::AuditCounters) -> String {
    let mut out = String::new();
    header(
        &mut out,
        "hessra_audit_dropped_total",
        "counter",
        "Audit events not written to the file (the writer's queue was full, or the write failed); the in-memory ring still has them.",
    );
    let dropped = counters.dropped.load(Ordering::Relaxed);
    let _ = writeln!(out, "hessra_audit_dropped_total {dropped}");
    header(
        &mut out,
        "hessra_audit_summarised_total",
        "counter",
        "Refusals of callers without credentials counted into a summary event instead of recorded one by one.",
    );
    let summarised = counters.summarised.load(Ordering::Relaxed);
    let _ = writeln!(out, "hessra_audit_summarised_total {summarised}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_cumulative_buckets() {
        let metrics = Metrics::default();
        metrics.decision("/request_token", "allow");
        metrics.decision("/request_token", "allow");
        metrics.decision("/request_token", "deny");
        metrics.run_limit_hit();
        metrics.latency("/request_token", Duration::from_micros(800));
        metrics.latency("/request_token", Duration::from_millis(30));
        metrics.limit_hit(Limit::VerifyBusy);
        metrics.connection_opened();
        metrics.connection_opened();
        metrics.connection_closed();
        let text = metrics.render(&SyncGauges {
            policy_age_seconds: 12,
            sync_failing: false,
            clients: 7,
            revocations: 1,
            revision: "abc\"def".into(),
            keys: vec![
                (Some(1), "retiring", Some(1_795_800_000)),
                (Some(2), "active", None),
            ],
            key_set_failing: true,
            missing_private_keys: vec![3],
        });
        for line in [
            "hessra_requests_total{endpoint=\"/request_token\",result=\"allow\"} 2",
            "hessra_requests_total{endpoint=\"/request_token\",result=\"deny\"} 1",
            "hessra_datalog_run_limit_total 1",
            "hessra_policy_age_seconds 12",
            "hessra_policy_sync_failing 0",
            "hessra_revocations 1",
            "hessra_root_key_info{id=\"1\",state=\"retiring\"} 1",
            "hessra_root_key_info{id=\"2\",state=\"active\"} 1",
            "hessra_root_key_verify_until_seconds{id=\"1\"} 1795800000",
            "hessra_key_set_failing 1",
            "hessra_root_key_private_missing{id=\"3\"} 1",
            "hessra_limit_total{limit=\"verify_busy\"} 1",
            "hessra_limit_total{limit=\"idle_close_when_full\"} 0",
            "hessra_connections_open 1",
            "hessra_policy_info{revision=\"abc\\\"def\"} 1",
            "hessra_request_duration_seconds_bucket{endpoint=\"/request_token\",le=\"0.0005\"} 0",
            "hessra_request_duration_seconds_bucket{endpoint=\"/request_token\",le=\"0.001\"} 1",
            "hessra_request_duration_seconds_bucket{endpoint=\"/request_token\",le=\"0.05\"} 2",
            "hessra_request_duration_seconds_bucket{endpoint=\"/request_token\",le=\"+Inf\"} 2",
            "hessra_request_duration_seconds_count{endpoint=\"/request_token\"} 2",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in:\n{text}"
            );
        }
    }
}
