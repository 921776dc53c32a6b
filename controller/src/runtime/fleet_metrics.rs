//! SpotFleet's own metrics: how many instances each fleet has in each EC2 state, how many it
//! wants and how many are ready, why instances were replaced, and which AWS error codes its
//! launches met. The `fleet` label is `<namespace>/<name>`: one series set per fleet a team
//! owns (tens to hundreds), never per instance. The gauges of a fleet are removed when the
//! fleet goes away; its counters stay until the process restarts, as counters do.

use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};

use super::series::remove_object_series;

/// The EC2 states counted per fleet. `terminated` is left out: EC2 keeps describing terminated
/// instances for about an hour, which says nothing about the fleet now.
pub const INSTANCE_STATES: &[&str] =
    &["pending", "running", "shutting-down", "stopping", "stopped"];

/// The metrics, registered once in the runtime's registry.
#[derive(Clone, Debug)]
pub struct FleetMetrics {
    /// `stagehand_fleet_instances{fleet,state}`.
    pub instances: IntGaugeVec,
    /// `stagehand_fleet_desired_capacity{fleet}`: `spec.capacity`.
    pub desired_capacity: IntGaugeVec,
    /// `stagehand_fleet_ready_capacity{fleet}`: live, in-date, healthy instances.
    pub ready_capacity: IntGaugeVec,
    /// `stagehand_fleet_replacements_total{fleet,reason}`: instances terminated because they
    /// were out of date (`spec_hash`, `unhealthy`, `stopped`, `interruption`, ...).
    pub replacements_total: IntCounterVec,
    /// `stagehand_fleet_launch_errors_total{fleet,code}`: pools `CreateFleet` refused, by AWS
    /// error code (`InsufficientInstanceCapacity`, ...).
    pub launch_errors_total: IntCounterVec,
}

/// What one round saw of a fleet, for the gauges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FleetSnapshot<'a> {
    /// The EC2 state of each of the fleet's instances (terminated ones are not counted).
    pub states: Vec<&'a str>,
    pub desired_capacity: i64,
    pub ready_capacity: i64,
}

impl FleetMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let gauge = |name: &str, help: &str, labels: &[&str]| -> prometheus::Result<IntGaugeVec> {
            let metric = IntGaugeVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(metric.clone()))?;
            Ok(metric)
        };
        let counter =
            |name: &str, help: &str, labels: &[&str]| -> prometheus::Result<IntCounterVec> {
                let metric = IntCounterVec::new(Opts::new(name, help), labels)?;
                registry.register(Box::new(metric.clone()))?;
                Ok(metric)
            };
        Ok(Self {
            instances: gauge(
                "stagehand_fleet_instances",
                "SpotFleet instances by fleet and EC2 state (terminated not counted)",
                &["fleet", "state"],
            )?,
            desired_capacity: gauge(
                "stagehand_fleet_desired_capacity",
                "SpotFleet spec.capacity, by fleet",
                &["fleet"],
            )?,
            ready_capacity: gauge(
                "stagehand_fleet_ready_capacity",
                "SpotFleet instances running, in date and healthy, by fleet",
                &["fleet"],
            )?,
            replacements_total: counter(
                "stagehand_fleet_replacements_total",
                "SpotFleet instances terminated because they were out of date, by fleet and reason",
                &["fleet", "reason"],
            )?,
            launch_errors_total: counter(
                "stagehand_fleet_launch_errors_total",
                "Pools CreateFleet refused for a SpotFleet, by fleet and AWS error code",
                &["fleet", "code"],
            )?,
        })
    }

    /// Sets the gauges of `fleet` from one round; states without instances read 0.
    pub fn set(&self, fleet: &str, snapshot: &FleetSnapshot<'_>) {
        for state in INSTANCE_STATES {
            let count = snapshot.states.iter().filter(|s| *s == state).count();
            self.instances
                .with_label_values(&[fleet, state])
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        self.desired_capacity
            .with_label_values(&[fleet])
            .set(snapshot.desired_capacity);
        self.ready_capacity
            .with_label_values(&[fleet])
            .set(snapshot.ready_capacity);
    }

    /// Counts `count` instances replaced for `reason`.
    pub fn record_replacements(&self, fleet: &str, reason: &str, count: usize) {
        self.replacements_total
            .with_label_values(&[fleet, reason])
            .inc_by(u64::try_from(count).unwrap_or(u64::MAX));
    }

    /// Counts one pool refused with AWS error `code`.
    pub fn record_launch_error(&self, fleet: &str, code: &str) {
        self.launch_errors_total
            .with_label_values(&[fleet, code])
            .inc();
    }

    /// `fleet` is gone: its gauges go too (a dashboard must not show a deleted fleet's last
    /// count forever), and so do its counters (a controller whose fleets come and go must not
    /// grow a series set per fleet it ever served).
    pub fn forget(&self, fleet: &str) {
        remove_object_series(&self.replacements_total, "fleet", fleet);
        remove_object_series(&self.launch_errors_total, "fleet", fleet);
        for state in INSTANCE_STATES {
            // Absent series are fine: the fleet may never have completed a round.
            let _ = self.instances.remove_label_values(&[fleet, state]);
        }
        let _ = self.desired_capacity.remove_label_values(&[fleet]);
        let _ = self.ready_capacity.remove_label_values(&[fleet]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every series of `registry` in the text exposition format, comments left out.
    fn series(registry: &Registry) -> Vec<String> {
        let mut buffer = Vec::new();
        prometheus::Encoder::encode(
            &prometheus::TextEncoder::new(),
            &registry.gather(),
            &mut buffer,
        )
        .unwrap();
        String::from_utf8(buffer)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn gauges_follow_the_last_round_and_every_series_goes_with_the_fleet() {
        let registry = Registry::new();
        let metrics = FleetMetrics::register(&registry).unwrap();
        metrics.set(
            "ml/gpu",
            &FleetSnapshot {
                states: vec!["running", "running", "pending", "terminated"],
                desired_capacity: 3,
                ready_capacity: 2,
            },
        );
        metrics.set(
            "ml/cpu",
            &FleetSnapshot {
                states: vec!["running"],
                desired_capacity: 1,
                ready_capacity: 1,
            },
        );
        metrics.record_replacements("ml/gpu", "spec_hash", 2);
        metrics.record_launch_error("ml/gpu", "InsufficientInstanceCapacity");
        let all = series(&registry);
        for expected in [
            r#"stagehand_fleet_instances{fleet="ml/gpu",state="running"} 2"#,
            r#"stagehand_fleet_instances{fleet="ml/gpu",state="pending"} 1"#,
            r#"stagehand_fleet_instances{fleet="ml/gpu",state="stopped"} 0"#,
            r#"stagehand_fleet_desired_capacity{fleet="ml/gpu"} 3"#,
            r#"stagehand_fleet_ready_capacity{fleet="ml/gpu"} 2"#,
            r#"stagehand_fleet_replacements_total{fleet="ml/gpu",reason="spec_hash"} 2"#,
            r#"stagehand_fleet_launch_errors_total{code="InsufficientInstanceCapacity",fleet="ml/gpu"} 1"#,
        ] {
            assert!(all.iter().any(|s| s == expected), "{expected} in {all:#?}");
        }
        assert!(!all.iter().any(|s| s.contains("terminated")), "{all:#?}");

        metrics.forget("ml/gpu");
        let all = series(&registry);
        assert!(!all.iter().any(|s| s.contains("ml/gpu")), "{all:#?}");
        assert!(
            all.iter()
                .any(|s| s == r#"stagehand_fleet_ready_capacity{fleet="ml/cpu"} 1"#)
        );
    }
}
