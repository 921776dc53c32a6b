//! A pure multi-round simulator: each round plans on the observed state, applies the plan's
//! actions to it as EC2 would (a terminated instance shuts down, a launched one is pending),
//! then lets time pass (shutting-down instances are gone, pending ones come up healthy, except
//! those scripted to fail). Over every round it checks the strategy's promise:
//! - Surge: never more than `capacity + maxSurge` live instances, never fewer than
//!   `capacity - maxUnavailable` healthy ones once the fleet had them;
//! - Recreate: never a launch while an old instance is still listed, even shutting down;
//! - both: a launch template version is pruned only once no live instance carries its hash.

use std::collections::{BTreeMap, BTreeSet};

use stagehand_crds::spot_fleet::ReplacementStrategy;
use stagehand_crds::{SPEC_HASH_TAG, SpotFleetSpec};

use super::fixtures::*;
use crate::spot_fleet::observed::{
    Ec2Checks, InstanceState, Observed, ObservedInstance, TemplateVersions,
};
use crate::spot_fleet::plan::{Action, Plan, is_healthy, plan};

const MAX_ROUNDS: usize = 40;

struct Sim {
    spec: SpotFleetSpec,
    observed: Observed,
    launched: u32,
    /// Launches (by order, from 1) that never become healthy.
    failing_launches: BTreeSet<u32>,
}

impl Sim {
    fn new(spec: SpotFleetSpec, instances: Vec<ObservedInstance>) -> Self {
        Self {
            spec,
            launched: 100,
            observed: fleet(instances),
            failing_launches: BTreeSet::new(),
        }
    }

    fn live(&self) -> impl Iterator<Item = &ObservedInstance> {
        self.observed.instances.iter().filter(|i| i.state.is_live())
    }

    fn healthy(&self) -> usize {
        self.live()
            .filter(|i| is_healthy(&self.spec.health_check, i))
            .count()
    }

    fn apply(&mut self, plan: &Plan) {
        for action in &plan.actions {
            match action {
                Action::Adopt { ids, tags } | Action::Restamp { ids, tags } => {
                    for instance in self.instances_mut(ids) {
                        instance.tags.extend(tags.clone());
                    }
                }
                Action::Terminate { ids, .. } => {
                    for instance in self.instances_mut(ids) {
                        instance.state = InstanceState::ShuttingDown;
                    }
                }
                Action::PruneVersions { versions, .. } => {
                    if let Some(template) = &mut self.observed.template {
                        template.versions.retain(|_, n| !versions.contains(n));
                    }
                }
                Action::Launch { count, .. } => {
                    // A launch writes (or finds) the version of the desired hash.
                    if let Some(template) = &mut self.observed.template {
                        let next = template.versions.values().max().map_or(1, |n| n + 1);
                        template.versions.entry(HASH.to_owned()).or_insert(next);
                    }
                    for _ in 0..*count {
                        self.launched += 1;
                        let failing = self.failing_launches.contains(&(self.launched - 100));
                        let id = format!("i-{}", self.launched);
                        self.observed.instances.push(pending(&id).edit(|i| {
                            // Scripted to fail: comes up impaired.
                            if failing {
                                i.ec2_checks = Ec2Checks::Impaired;
                            }
                        }));
                    }
                }
            }
        }
    }

    fn instances_mut<'s>(
        &'s mut self,
        ids: &'s [String],
    ) -> impl Iterator<Item = &'s mut ObservedInstance> + 's {
        self.observed
            .instances
            .iter_mut()
            .filter(move |i| ids.contains(&i.id))
    }

    /// A round's worth of time: shutting down → terminated, pending → running and past grace
    /// (healthy unless scripted to fail).
    fn advance(&mut self) {
        for instance in &mut self.observed.instances {
            match instance.state {
                InstanceState::ShuttingDown => instance.state = InstanceState::Terminated,
                InstanceState::Pending => {
                    instance.state = InstanceState::Running;
                    instance.past_grace = true;
                    if instance.ec2_checks == Ec2Checks::Initializing {
                        instance.ec2_checks = Ec2Checks::Ok;
                    }
                }
                _ => {}
            }
        }
    }

    /// Plans and applies rounds until a plan has nothing to do or wait for; `check` sees every
    /// plan with the state it was made on, and the state after its actions.
    fn run(&mut self, mut check: impl FnMut(&Sim, &Plan, &Sim)) -> usize {
        for round in 1..=MAX_ROUNDS {
            let plan = plan(&self.spec, &context(), &self.observed);
            if plan.actions.is_empty() && plan.waits.is_empty() {
                return round;
            }
            let before = self.snapshot();
            self.apply(&plan);
            check(&before, &plan, self);
            self.advance();
        }
        panic!(
            "no convergence in {MAX_ROUNDS} rounds: {:#?}",
            self.observed.instances
        );
    }

    fn snapshot(&self) -> Self {
        Self {
            spec: self.spec.clone(),
            observed: self.observed.clone(),
            launched: self.launched,
            failing_launches: self.failing_launches.clone(),
        }
    }

    fn assert_converged(&self) {
        let plan = plan(&self.spec, &context(), &self.observed);
        assert_eq!(plan.ready_capacity, self.spec.capacity);
        assert_eq!(self.live().count(), self.ready_capacity());
        assert!(
            self.live().all(|i| i.tags == current_tags()),
            "{:#?}",
            self.observed
        );
    }

    fn ready_capacity(&self) -> usize {
        usize::try_from(self.spec.capacity).unwrap()
    }
}

fn surge(capacity: i32, max_surge: i32, max_unavailable: i32) -> SpotFleetSpec {
    spec_with(|s| {
        s.capacity = capacity;
        s.replacement.max_surge = max_surge;
        s.replacement.max_unavailable = max_unavailable;
    })
}

fn outdated_fleet(capacity: usize) -> Vec<ObservedInstance> {
    (1..=capacity)
        .map(|n| healthy(&format!("i-{n}")).outdated())
        .collect()
}

/// Surge's bounds, checked after each round's actions.
fn surge_bounds(spec: &SpotFleetSpec) -> impl FnMut(&Sim, &Plan, &Sim) + use<> {
    let capacity = usize::try_from(spec.capacity).unwrap();
    let max_surge = usize::try_from(spec.replacement.max_surge).unwrap();
    let min_healthy = capacity - usize::try_from(spec.replacement.max_unavailable).unwrap();
    move |before, plan, after| {
        let live = after.live().count();
        assert!(
            live <= capacity + max_surge,
            "{live} live > {capacity} + {max_surge} after {:?}",
            plan.actions
        );
        // Instances that were healthy before the round and are still listed as such.
        let floor = min_healthy.min(before.healthy());
        assert!(
            after.healthy() >= floor,
            "{} healthy < {floor} after {:?}",
            after.healthy(),
            plan.actions
        );
    }
}

#[test]
fn surge_replaces_the_whole_fleet_within_its_bounds() {
    for (capacity, max_surge, max_unavailable) in
        [(3, 1, 0), (4, 2, 0), (4, 1, 1), (5, 3, 2), (1, 1, 0)]
    {
        let spec = surge(capacity, max_surge, max_unavailable);
        let mut sim = Sim::new(
            spec.clone(),
            outdated_fleet(usize::try_from(capacity).unwrap()),
        );
        let rounds = sim.run(surge_bounds(&spec));
        sim.assert_converged();
        assert!(rounds > 1, "{capacity}/{max_surge}/{max_unavailable}");
    }
}

#[test]
fn surge_retries_a_replacement_that_never_comes_up_while_the_old_one_serves() {
    let spec = surge(3, 1, 0);
    let mut sim = Sim::new(spec.clone(), outdated_fleet(3));
    sim.failing_launches = BTreeSet::from([1, 3]);
    let mut bounds = surge_bounds(&spec);
    sim.run(|before, plan, after| {
        bounds(before, plan, after);
        // The old instances keep serving: capacity never drops.
        assert!(after.healthy() >= 3, "{:?}", plan.actions);
    });
    sim.assert_converged();
    assert_eq!(sim.launched - 100, 5, "two failed launches retried");
}

#[test]
fn surge_handles_an_interruption_and_a_hand_stopped_instance() {
    let spec = surge(3, 1, 0);
    let mut sim = Sim::new(spec.clone(), steady());
    sim.observed.instances[1].state = InstanceState::Stopped;
    sim.observed.interruption_notices = BTreeSet::from(["i-3".to_owned()]);
    let mut bounds = surge_bounds(&spec);
    sim.run(|before, plan, after| bounds(before, plan, after));
    sim.assert_converged();
    let live: Vec<&str> = sim.live().map(|i| i.id.as_str()).collect();
    assert!(!live.contains(&"i-2") && !live.contains(&"i-3"), "{live:?}");
}

#[test]
fn surge_reaches_capacity_from_nothing_and_back_to_zero() {
    let mut sim = Sim::new(surge(4, 1, 0), vec![]);
    sim.run(|_, _, _| {});
    sim.assert_converged();
    sim.spec.capacity = 0;
    sim.run(|_, _, _| {});
    assert_eq!(sim.live().count(), 0);
}

#[test]
fn recreate_never_launches_while_an_old_instance_is_listed() {
    for capacity in [1, 3, 5] {
        let spec = spec_with(|s| {
            s.capacity = capacity;
            s.replacement.strategy = ReplacementStrategy::Recreate;
        });
        let old: BTreeSet<String> = (1..=capacity).map(|n| format!("i-{n}")).collect();
        let mut sim = Sim::new(spec, outdated_fleet(usize::try_from(capacity).unwrap()));
        let mut launched = false;
        sim.run(|before, plan, _| {
            if plan
                .actions
                .iter()
                .any(|a| matches!(a, Action::Launch { .. }))
            {
                launched = true;
                let listed: Vec<&ObservedInstance> = before
                    .observed
                    .instances
                    .iter()
                    .filter(|i| old.contains(&i.id) && i.state != InstanceState::Terminated)
                    .collect();
                assert!(listed.is_empty(), "launch while {listed:#?} listed");
            }
        });
        assert!(launched);
        sim.assert_converged();
    }
}

/// How one instance of a starting fleet is.
#[derive(Clone, Copy, Debug)]
enum Start {
    Current,
    Outdated,
    Stopped,
    ImpairedPastGrace,
    Pending,
    Interrupted,
}

const STARTS: [Start; 6] = [
    Start::Current,
    Start::Outdated,
    Start::Stopped,
    Start::ImpairedPastGrace,
    Start::Pending,
    Start::Interrupted,
];

fn starting_fleet(starts: [Start; 3]) -> Observed {
    let mut observed = fleet(Vec::new());
    for (n, start) in starts.into_iter().enumerate() {
        let id = format!("i-{}", n + 1);
        let instance = match start {
            Start::Current | Start::Interrupted => healthy(&id),
            Start::Outdated => healthy(&id).outdated(),
            Start::Stopped => healthy(&id).in_state(InstanceState::Stopped),
            Start::ImpairedPastGrace => healthy(&id).impaired(),
            Start::Pending => pending(&id),
        };
        if matches!(start, Start::Interrupted) {
            observed.interruption_notices.insert(id);
        }
        observed.instances.push(instance);
    }
    observed
}

#[test]
fn surge_keeps_its_bounds_from_every_starting_fleet() {
    let params = [
        (3, 1, 0),
        (2, 1, 1),
        (4, 2, 0),
        (1, 1, 0),
        (0, 1, 0),
        (3, 3, 3),
    ];
    for (capacity, max_surge, max_unavailable) in params {
        let spec = surge(capacity, max_surge, max_unavailable);
        for a in STARTS {
            for b in STARTS {
                for c in STARTS {
                    let mut sim = Sim::new(spec.clone(), Vec::new());
                    sim.observed = starting_fleet([a, b, c]);
                    let started_over =
                        sim.live().count() > usize::try_from(capacity + max_surge).unwrap();
                    let mut bounds = surge_bounds(&spec);
                    sim.run(|before, plan, after| {
                        if !started_over {
                            bounds(before, plan, after);
                        }
                    });
                    sim.assert_converged();
                }
            }
        }
    }
}

#[test]
fn recreate_never_launches_beside_an_old_instance_from_every_starting_fleet() {
    for capacity in [0, 2, 3, 4] {
        let spec = spec_with(|s| {
            s.capacity = capacity;
            s.replacement.strategy = ReplacementStrategy::Recreate;
        });
        for a in STARTS {
            for b in STARTS {
                for c in STARTS {
                    let mut sim = Sim::new(spec.clone(), Vec::new());
                    sim.observed = starting_fleet([a, b, c]);
                    let context = context();
                    sim.run(|before, plan, _| {
                        if !plan
                            .actions
                            .iter()
                            .any(|a| matches!(a, Action::Launch { .. }))
                        {
                            return;
                        }
                        // What this very plan judged out of date, or saw shutting down.
                        let judged =
                            crate::spot_fleet::plan::plan(&before.spec, &context, &before.observed);
                        assert!(
                            judged.instances.iter().all(|i| i.replacement.is_none()),
                            "launch beside out-of-date instances: {:?}",
                            judged.instances
                        );
                        assert!(
                            !before
                                .observed
                                .instances
                                .iter()
                                .any(|i| i.state == InstanceState::ShuttingDown),
                            "launch while an instance is shutting down"
                        );
                    });
                    sim.assert_converged();
                }
            }
        }
    }
}

/// Pruning over a whole replacement: a version goes only once no live instance carries its
/// hash, the default version stays, and the fleet ends with its default and desired versions.
#[test]
fn either_strategy_prunes_the_old_version_only_once_its_last_instance_is_gone() {
    for strategy in [surge(3, 1, 0), recreate(3)] {
        let mut sim = Sim::new(strategy, outdated_fleet(3));
        sim.observed.template = Some(TemplateVersions {
            template_id: "lt-1".into(),
            default_version: Some(1),
            versions: BTreeMap::from([("hash-first".to_owned(), 1), (OLD_HASH.to_owned(), 2)]),
        });
        let mut pruned_rounds = 0;
        sim.run(|_, plan, after| {
            let template = after.observed.template.as_ref().unwrap();
            for instance in after.live() {
                let hash = &instance.tags[SPEC_HASH_TAG];
                assert!(
                    template.versions.contains_key(hash),
                    "the version of live {} was pruned: {plan:?}",
                    instance.id
                );
            }
            if plan
                .actions
                .iter()
                .any(|a| matches!(a, Action::PruneVersions { .. }))
            {
                pruned_rounds += 1;
            }
        });
        sim.assert_converged();
        let template = sim.observed.template.as_ref().unwrap();
        assert_eq!(
            template.versions,
            BTreeMap::from([("hash-first".to_owned(), 1), (HASH.to_owned(), 3)])
        );
        assert_eq!(pruned_rounds, 1, "pruned once");
    }
}
