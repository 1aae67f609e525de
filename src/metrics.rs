//! Prometheus metrics: what Tidings counts and how `/metrics` shows it.
//!
//! One [`Metrics`] is made at startup and shared through
//! [`crate::services::Context`]; there is no global registry, so every test
//! app (and every process) counts on its own. Counters are per process:
//! with `serve --no-workers` and `tidings worker` apart, the web server
//! counts requests, subscriptions, confirmations and unsubscribes, and the
//! worker counts deliveries and transactional mail (a worker serves its own
//! `/metrics` when `TIDINGS_METRICS_BIND` is set). Prometheus sums them
//! across instances, as usual.
//!
//! Queue depths are not counted here but sampled from the database when
//! `/metrics` is scraped (see [`crate::store::QueueDepth`]), so every
//! instance reports the same, shared queue. So are the complaint and hard
//! bounce figures of the sends of the last 30 days
//! ([`crate::store::SendQuality`]): sums over all updates, nothing about
//! any one person.
//!
//! The text is the OpenMetrics text exposition format (Prometheus asks for
//! it and reads it; it ends with `# EOF`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

/// The window over which the current send rate is averaged.
pub const SEND_RATE_WINDOW: Duration = Duration::from_secs(60);

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Method {
    method: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Class {
    class: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Measure {
    measure: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Queue {
    queue: &'static str,
}

/// Labels of one HTTP request. `route` is the route template (`/confirm/{token}`),
/// never the raw path, so tokens stay out of the metrics and the number of
/// series stays bounded.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpRequest {
    method: String,
    route: String,
    status: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 1 ms … ~16 s, doubling: subscribe answers in milliseconds, a large
    // export or a slow database in seconds.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.001, 2.0, 15))
}

/// Every metric Tidings exports, and the registry that encodes them.
pub struct Metrics {
    registry: Registry,
    subscribe_requests: Family<Outcome, Counter>,
    confirmations: Family<Outcome, Counter>,
    unsubscribes: Family<Method, Counter>,
    deliveries: Family<Outcome, Counter>,
    transactional: Family<Outcome, Counter>,
    queue_depth: Family<Queue, Gauge>,
    bounce_reports: Family<Class, Counter>,
    send_quality: Family<Measure, Gauge>,
    complaint_rate: Gauge<f64, AtomicU64>,
    hard_bounce_rate: Gauge<f64, AtomicU64>,
    send_rate: Gauge<f64, AtomicU64>,
    http_requests: HistogramFamily<HttpRequest>,
    subscribe_batch_size: Histogram,
    /// Messages accepted by the relay, by when: for the current send rate.
    recent_sends: Mutex<VecDeque<(Instant, u64)>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let subscribe_requests = Family::<Outcome, Counter>::default();
        registry.register(
            "tidings_subscribe_requests",
            "Subscribe requests by outcome (accepted, invalid, rate_limited, error)",
            subscribe_requests.clone(),
        );
        let confirmations = Family::<Outcome, Counter>::default();
        registry.register(
            "tidings_confirmations",
            "Confirmation link submissions by outcome (confirmed, gone)",
            confirmations.clone(),
        );
        let unsubscribes = Family::<Method, Counter>::default();
        registry.register(
            "tidings_unsubscribes",
            "Subscriptions withdrawn, by method (one-click, page, preferences)",
            unsubscribes.clone(),
        );
        let deliveries = Family::<Outcome, Counter>::default();
        registry.register(
            "tidings_deliveries",
            "Bulk messages by outcome (sent, retried, failed, bounced), counted by the worker that sent them",
            deliveries.clone(),
        );
        let transactional = Family::<Outcome, Counter>::default();
        registry.register(
            "tidings_transactional_mail",
            "Transactional messages (confirmations, data copies) by outcome (sent, retried, failed)",
            transactional.clone(),
        );
        let queue_depth = Family::<Queue, Gauge>::default();
        registry.register(
            "tidings_queue_depth",
            "Work waiting in the database, sampled at scrape time (deliveries_pending, deliveries_sending, outbox_pending)",
            queue_depth.clone(),
        );
        let bounce_reports = Family::<Class, Counter>::default();
        registry.register(
            "tidings_bounce_reports",
            "Bounce and complaint reports acted on, by class (hard, soft, policy, complaint, delayed), counted by the process that received them",
            bounce_reports.clone(),
        );
        let send_quality = Family::<Measure, Gauge>::default();
        registry.register(
            "tidings_sends_30d",
            "Over the updates started in the last 30 days, sampled at scrape time: copies attempted, complaints and hard bounces tied to them, and sends paused by the complaint or bounce limits (attempted, complaints, hard_bounces, auto_paused)",
            send_quality.clone(),
        );
        let complaint_rate = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "tidings_complaint_rate_30d",
            "Complaints per copy attempted, over the updates started in the last 30 days (Gmail and Yahoo act above 0.003)",
            complaint_rate.clone(),
        );
        let hard_bounce_rate = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "tidings_hard_bounce_rate_30d",
            "Hard bounces per copy attempted, over the updates started in the last 30 days",
            hard_bounce_rate.clone(),
        );
        let send_rate = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "tidings_send_rate_messages_per_second",
            "Bulk messages accepted by the relay per second, averaged over the last 60 seconds, by this process",
            send_rate.clone(),
        );
        let http_requests: HistogramFamily<HttpRequest> = Family::new_with_constructor(latency_histogram);
        registry.register(
            "tidings_http_request_duration_seconds",
            "HTTP request latency by method, route template and status class",
            http_requests.clone(),
        );
        // 1 … 256 requests, doubling (the queue's largest batch is 256).
        let subscribe_batch_size =
            Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(1.0, 2.0, 9));
        registry.register(
            "tidings_subscribe_batch_size",
            "Subscribe requests committed together in one transaction (group commit)",
            subscribe_batch_size.clone(),
        );
        // Every known series starts at 0, so rates are defined from the first
        // scrape and a dashboard shows "none yet" rather than "no data".
        for outcome in ["accepted", "invalid", "rate_limited", "error"] {
            let _ = subscribe_requests.get_or_create(&Outcome { outcome });
        }
        for outcome in ["confirmed", "gone"] {
            let _ = confirmations.get_or_create(&Outcome { outcome });
        }
        for method in ["one-click", "page", "preferences"] {
            let _ = unsubscribes.get_or_create(&Method { method });
        }
        for outcome in ["sent", "retried", "failed", "bounced"] {
            let _ = deliveries.get_or_create(&Outcome { outcome });
        }
        for outcome in ["sent", "retried", "failed"] {
            let _ = transactional.get_or_create(&Outcome { outcome });
        }
        for class in ["hard", "soft", "policy", "complaint", "delayed"] {
            let _ = bounce_reports.get_or_create(&Class { class });
        }
        Self {
            registry,
            subscribe_requests,
            confirmations,
            unsubscribes,
            deliveries,
            transactional,
            queue_depth,
            bounce_reports,
            send_quality,
            complaint_rate,
            hard_bounce_rate,
            send_rate,
            http_requests,
            subscribe_batch_size,
            recent_sends: Mutex::new(VecDeque::new()),
        }
    }

    /// One group commit of `requests` subscribe requests.
    pub fn subscribe_batch(&self, requests: usize) {
        self.subscribe_batch_size.observe(requests as f64);
    }

    /// One `POST /subscribe`: `accepted`, `invalid`, `rate_limited`,
    /// `challenge_failed` or `error`.
    pub fn subscribe_request(&self, outcome: &'static str) {
        self.subscribe_requests.get_or_create(&Outcome { outcome }).inc();
    }

    /// One `POST /confirm/{token}`: `confirmed` or `gone`.
    pub fn confirmation(&self, outcome: &'static str) {
        self.confirmations.get_or_create(&Outcome { outcome }).inc();
    }

    /// One subscription withdrawn, and how.
    pub fn unsubscribed(&self, method: &'static str) {
        self.unsubscribes.get_or_create(&Method { method }).inc();
    }

    /// Outcomes of bulk messages, once recorded in the database.
    pub fn deliveries(&self, sent: usize, retried: usize, failed: usize, bounced: usize) {
        for (outcome, n) in [("sent", sent), ("retried", retried), ("failed", failed), ("bounced", bounced)] {
            if n > 0 {
                self.deliveries.get_or_create(&Outcome { outcome }).inc_by(n as u64);
            }
        }
        if sent > 0 {
            let mut recent = self.recent_sends.lock().unwrap_or_else(|p| p.into_inner());
            recent.push_back((Instant::now(), sent as u64));
            prune(&mut recent, Instant::now());
        }
    }

    /// One bounce or complaint report acted on, by its class.
    pub fn bounce_report(&self, class: &str) {
        let class = match class {
            "hard" => "hard",
            "soft" => "soft",
            "policy" => "policy",
            "complaint" => "complaint",
            _ => "delayed",
        };
        self.bounce_reports.get_or_create(&Class { class }).inc();
    }

    /// Outcomes of transactional messages, once recorded.
    pub fn transactional_mail(&self, sent: usize, retried: usize, failed: usize) {
        for (outcome, n) in [("sent", sent), ("retried", retried), ("failed", failed)] {
            if n > 0 {
                self.transactional.get_or_create(&Outcome { outcome }).inc_by(n as u64);
            }
        }
    }

    /// One HTTP request. `route` is the matched route template, or
    /// `unmatched` for requests no route took.
    pub fn http_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let status = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        let labels = HttpRequest { method: method.to_owned(), route: route.to_owned(), status };
        self.http_requests.get_or_create(&labels).observe(elapsed.as_secs_f64());
    }

    /// The metrics as text, with the queue depths just sampled (when the
    /// database could be asked).
    pub fn render(
        &self,
        queue: Option<crate::store::QueueDepth>,
        sends: Option<crate::store::SendQuality>,
    ) -> Result<String, std::fmt::Error> {
        // Without a fresh sample, no queue series at all: a stale depth would
        // look like a stuck queue.
        self.queue_depth.clear();
        if let Some(q) = queue {
            for (name, n) in [
                ("deliveries_pending", q.deliveries_pending),
                ("deliveries_sending", q.deliveries_sending),
                ("outbox_pending", q.outbox_pending),
            ] {
                self.queue_depth.get_or_create(&Queue { queue: name }).set(n);
            }
        }
        self.send_quality.clear();
        if let Some(q) = sends {
            for (measure, n) in [
                ("attempted", q.attempted),
                ("complaints", q.complaints),
                ("hard_bounces", q.hard_bounces),
                ("auto_paused", q.auto_paused),
            ] {
                self.send_quality.get_or_create(&Measure { measure }).set(n);
            }
            let rate = |n: i64| if q.attempted > 0 { n as f64 / q.attempted as f64 } else { 0.0 };
            self.complaint_rate.set(rate(q.complaints));
            self.hard_bounce_rate.set(rate(q.hard_bounces));
        }
        self.send_rate.set(self.send_rate_now());
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }

    /// Messages per second over the last [`SEND_RATE_WINDOW`].
    fn send_rate_now(&self) -> f64 {
        let mut recent = self.recent_sends.lock().unwrap_or_else(|p| p.into_inner());
        prune(&mut recent, Instant::now());
        let sent: u64 = recent.iter().map(|(_, n)| n).sum();
        sent as f64 / SEND_RATE_WINDOW.as_secs_f64()
    }
}

fn prune(recent: &mut VecDeque<(Instant, u64)>, now: Instant) {
    while recent.front().is_some_and(|(at, _)| now.duration_since(*at) > SEND_RATE_WINDOW) {
        recent.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_histograms_are_encoded_with_their_labels() {
        let m = Metrics::new();
        m.subscribe_request("accepted");
        m.subscribe_request("accepted");
        m.deliveries(3, 0, 1, 0);
        m.http_request("GET", "/confirm/{token}", 200, Duration::from_millis(3));
        let text = m.render(None, None).unwrap();
        assert!(text.contains("tidings_subscribe_requests_total{outcome=\"accepted\"} 2"), "{text}");
        assert!(text.contains("tidings_deliveries_total{outcome=\"sent\"} 3"), "{text}");
        assert!(text.contains("tidings_deliveries_total{outcome=\"failed\"} 1"), "{text}");
        assert!(text.contains("tidings_send_rate_messages_per_second 0.05"), "{text}");
        assert!(
            text.contains(
                "tidings_http_request_duration_seconds_count{method=\"GET\",route=\"/confirm/{token}\",status=\"2xx\"} 1"
            ),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn the_send_rate_forgets_sends_older_than_the_window() {
        let mut recent = VecDeque::from([(Instant::now() - Duration::from_secs(61), 100), (Instant::now(), 6)]);
        prune(&mut recent, Instant::now());
        assert_eq!(recent.iter().map(|(_, n)| n).sum::<u64>(), 6);
    }
}
