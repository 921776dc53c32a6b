//! When a converged object is looked at again: its resync interval (from `spec.resyncInterval`
//! or the controller default), jittered by ±10% so that objects created together do not resync
//! together and burst the account's shared AWS API rate.

use std::time::Duration;

use kube::runtime::controller::Action;
use rand::Rng;
use stagehand_crds::Lifecycle;

use crate::base::duration::DurationError;
use crate::settings::parse_resync_interval;

/// Relative jitter applied to resync intervals: ±10%.
pub const JITTER_FRACTION: f64 = 0.10;

/// `interval` scaled by a random factor in `[0.9, 1.1]`.
pub fn jittered<R: Rng + ?Sized>(interval: Duration, rng: &mut R) -> Duration {
    let factor = rng.random_range((1.0 - JITTER_FRACTION)..=(1.0 + JITTER_FRACTION));
    interval.mul_f64(factor)
}

/// The object's resync interval: `spec.resyncInterval` when set, else `default`. An invalid
/// value (the CRD's validation should prevent it) is an error so the caller can report it.
pub fn resync_interval(
    lifecycle: &Lifecycle,
    default: Duration,
) -> Result<Duration, DurationError> {
    lifecycle
        .resync_interval
        .as_deref()
        .map_or(Ok(default), parse_resync_interval)
}

/// Like [`resync_interval`], but falls back to `default` (with a warning) on an invalid value:
/// a typo in the interval must not stop the object from being re-checked.
pub fn resync_interval_or_default(lifecycle: &Lifecycle, default: Duration) -> Duration {
    resync_interval(lifecycle, default).unwrap_or_else(|error| {
        tracing::warn!(%error, "ignoring spec.resyncInterval, using the controller default");
        default
    })
}

/// The action after a converged reconcile: requeue after the jittered resync interval.
pub fn resync_action<R: Rng + ?Sized>(
    lifecycle: &Lifecycle,
    default: Duration,
    rng: &mut R,
) -> Action {
    Action::requeue(jittered(
        resync_interval_or_default(lifecycle, default),
        rng,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn jitter_stays_within_ten_percent_and_spreads() {
        let base = Duration::from_secs(300);
        let (low, high) = (Duration::from_secs(270), Duration::from_secs(330));
        let mut rng = StdRng::seed_from_u64(7);
        let samples: Vec<Duration> = (0..10_000).map(|_| jittered(base, &mut rng)).collect();
        assert!(samples.iter().all(|d| (low..=high).contains(d)));
        // It actually jitters: both halves of the range are used, well towards the edges.
        let min = samples.iter().min().unwrap();
        let max = samples.iter().max().unwrap();
        assert!(*min < Duration::from_secs(273), "min {min:?}");
        assert!(*max > Duration::from_secs(327), "max {max:?}");
    }

    #[test]
    fn jitter_is_reproducible_with_a_seed() {
        let base = Duration::from_secs(90);
        let a = jittered(base, &mut StdRng::seed_from_u64(42));
        let b = jittered(base, &mut StdRng::seed_from_u64(42));
        assert_eq!(a, b);
    }

    fn lifecycle(resync: Option<&str>) -> Lifecycle {
        Lifecycle {
            resync_interval: resync.map(str::to_owned),
            ..Lifecycle::default()
        }
    }

    #[test]
    fn spec_interval_wins_over_default() {
        let default = Duration::from_secs(300);
        assert_eq!(resync_interval(&lifecycle(None), default), Ok(default));
        assert_eq!(
            resync_interval(&lifecycle(Some("1h30m")), default),
            Ok(Duration::from_secs(5400))
        );
        assert!(resync_interval(&lifecycle(Some("10s")), default).is_err());
        assert!(resync_interval(&lifecycle(Some("soon")), default).is_err());
        assert_eq!(
            resync_interval_or_default(&lifecycle(Some("10s")), default),
            default
        );
        assert_eq!(
            resync_interval_or_default(&lifecycle(Some("2m")), default),
            Duration::from_secs(120)
        );
    }

    #[test]
    fn resync_action_requeues_within_the_jittered_window() {
        let mut rng = StdRng::seed_from_u64(1);
        let default = Duration::from_secs(300);
        let action = resync_action(&lifecycle(Some("1m")), default, &mut rng);
        let expected = jittered(Duration::from_secs(60), &mut StdRng::seed_from_u64(1));
        assert_eq!(action, Action::requeue(expected));
        assert_ne!(action, Action::await_change());
    }
}
