//! StaticSite's own metrics: what deploys move (objects and bytes uploaded, invalidation
//! paths), how long a content sync takes, how often sites roll back, and whether a site's
//! CloudFront invalidation is still running. The `site` label is `<namespace>/<name>`: one
//! series set per site, never per object.

use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGaugeVec, Opts, Registry};
use stagehand_crds::static_site::InvalidationStatus;

use super::series::remove_object_series;

/// The metrics, registered once in the runtime's registry.
#[derive(Clone, Debug)]
pub struct SiteMetrics {
    /// `stagehand_site_objects_uploaded_total{site}`: `PutObject`s of content.
    pub objects_uploaded_total: IntCounterVec,
    /// `stagehand_site_bytes_uploaded_total{site}`.
    pub bytes_uploaded_total: IntCounterVec,
    /// `stagehand_site_invalidation_paths_total{site}`: paths sent to CloudFront (`/*` is one).
    pub invalidation_paths_total: IntCounterVec,
    /// `stagehand_site_rollbacks_total{site}`: rounds that recorded a `rollbackTo` revision
    /// as served.
    pub rollbacks_total: IntCounterVec,
    /// `stagehand_site_sync_duration_seconds`: rounds that changed content, observe to served
    /// record (not per site: a histogram per site would be hundreds of series).
    pub sync_duration_seconds: Histogram,
    /// `stagehand_site_invalidation_in_progress{site}`: 1 while the site's last invalidation
    /// (`status.lastInvalidation`) has not completed, 0 once it has. CloudFront finishes one in
    /// minutes, so a site at 1 for half an hour is stuck (the `StagehandSiteInvalidationStuck`
    /// alert); a per-site gauge says which site, where the `Reconciling` census cannot.
    pub invalidation_in_progress: IntGaugeVec,
}

impl SiteMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let counter = |name: &str, help: &str| -> prometheus::Result<IntCounterVec> {
            let metric = IntCounterVec::new(Opts::new(name, help), &["site"])?;
            registry.register(Box::new(metric.clone()))?;
            Ok(metric)
        };
        let sync_duration_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "stagehand_site_sync_duration_seconds",
                "Duration of StaticSite rounds that changed content",
            )
            .buckets(vec![
                0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 180.0, 600.0,
            ]),
        )?;
        registry.register(Box::new(sync_duration_seconds.clone()))?;
        let invalidation_in_progress = IntGaugeVec::new(
            Opts::new(
                "stagehand_site_invalidation_in_progress",
                "1 while a StaticSite's last CloudFront invalidation has not completed, by site",
            ),
            &["site"],
        )?;
        registry.register(Box::new(invalidation_in_progress.clone()))?;
        Ok(Self {
            objects_uploaded_total: counter(
                "stagehand_site_objects_uploaded_total",
                "Objects of content uploaded to StaticSite buckets, by site",
            )?,
            bytes_uploaded_total: counter(
                "stagehand_site_bytes_uploaded_total",
                "Bytes of content uploaded to StaticSite buckets, by site",
            )?,
            invalidation_paths_total: counter(
                "stagehand_site_invalidation_paths_total",
                "CloudFront invalidation paths created for StaticSites, by site",
            )?,
            rollbacks_total: counter(
                "stagehand_site_rollbacks_total",
                "StaticSite rollbacks completed (rollbackTo recorded as served), by site",
            )?,
            sync_duration_seconds,
            invalidation_in_progress,
        })
    }

    /// Sets the in-progress gauge from the status just written: CloudFront says `InProgress`
    /// until `Completed` (moto: `COMPLETED`, hence the case-insensitive compare). A site that
    /// never invalidated has no series.
    pub fn record_last_invalidation(&self, site: &str, last: Option<&InvalidationStatus>) {
        let Some(last) = last else {
            return;
        };
        let completed = last
            .status
            .as_deref()
            .is_some_and(|status| status.eq_ignore_ascii_case("Completed"));
        self.invalidation_in_progress
            .with_label_values(&[site])
            .set(i64::from(!completed));
    }

    /// Drops the site's series (the site is being deleted: nothing of it is waited on any
    /// more), its counters too: a controller whose sites come and go (one per preview branch)
    /// must not grow a series set per site it ever served.
    pub fn forget(&self, site: &str) {
        let _ = self.invalidation_in_progress.remove_label_values(&[site]);
        for counter in [
            &self.objects_uploaded_total,
            &self.bytes_uploaded_total,
            &self.invalidation_paths_total,
            &self.rollbacks_total,
        ] {
            remove_object_series(counter, "site", site);
        }
    }

    /// Counts one round's uploads.
    pub fn record_uploads(&self, site: &str, objects: usize, bytes: u64) {
        self.objects_uploaded_total
            .with_label_values(&[site])
            .inc_by(u64::try_from(objects).unwrap_or(u64::MAX));
        self.bytes_uploaded_total
            .with_label_values(&[site])
            .inc_by(bytes);
    }

    pub fn record_invalidation(&self, site: &str, paths: usize) {
        self.invalidation_paths_total
            .with_label_values(&[site])
            .inc_by(u64::try_from(paths).unwrap_or(u64::MAX));
    }

    pub fn record_rollback(&self, site: &str) {
        self.rollbacks_total.with_label_values(&[site]).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_per_site() {
        let registry = Registry::new();
        let metrics = SiteMetrics::register(&registry).unwrap();
        metrics.record_uploads("web/shop", 3, 1200);
        metrics.record_uploads("web/shop", 1, 100);
        metrics.record_invalidation("web/shop", 2);
        metrics.record_rollback("web/blog");
        metrics.sync_duration_seconds.observe(0.7);
        let invalidation = |status: &str| InvalidationStatus {
            id: "I1".to_owned(),
            paths: 2,
            status: Some(status.to_owned()),
        };
        metrics.record_last_invalidation("web/shop", Some(&invalidation("InProgress")));
        metrics.record_last_invalidation("web/blog", Some(&invalidation("InProgress")));
        metrics.record_last_invalidation("web/blog", Some(&invalidation("COMPLETED")));
        metrics.record_last_invalidation("web/docs", None);
        let mut buffer = Vec::new();
        prometheus::Encoder::encode(
            &prometheus::TextEncoder::new(),
            &registry.gather(),
            &mut buffer,
        )
        .unwrap();
        let text = String::from_utf8(buffer).unwrap();
        for expected in [
            r#"stagehand_site_objects_uploaded_total{site="web/shop"} 4"#,
            r#"stagehand_site_bytes_uploaded_total{site="web/shop"} 1300"#,
            r#"stagehand_site_invalidation_paths_total{site="web/shop"} 2"#,
            r#"stagehand_site_rollbacks_total{site="web/blog"} 1"#,
            "stagehand_site_sync_duration_seconds_count 1",
            r#"stagehand_site_invalidation_in_progress{site="web/shop"} 1"#,
            r#"stagehand_site_invalidation_in_progress{site="web/blog"} 0"#,
        ] {
            assert!(text.lines().any(|l| l == expected), "{expected} in {text}");
        }
        assert!(
            !text.contains(r#"site="web/docs""#),
            "no invalidation, no series"
        );
        metrics.forget("web/shop");
        let sites: Vec<String> = registry
            .gather()
            .iter()
            .filter(|family| family.name() == "stagehand_site_invalidation_in_progress")
            .flat_map(prometheus::proto::MetricFamily::get_metric)
            .map(|metric| metric.get_label()[0].value().to_owned())
            .collect();
        assert_eq!(sites, ["web/blog"]);
        let shop = registry
            .gather()
            .iter()
            .flat_map(prometheus::proto::MetricFamily::get_metric)
            .filter(|metric| metric.get_label().iter().any(|l| l.value() == "web/shop"))
            .count();
        assert_eq!(
            shop, 0,
            "every series of a forgotten site goes, counters too"
        );
    }
}
