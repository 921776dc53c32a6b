//! Event-source mappings: created once, changed in place, duplicates reported and left alone.

use stagehand_crds::lambda_stage::EventSourceMapping as MappingSpec;

use super::action::Action;
use super::function::differing;
use super::{DriftField, Planner, reason, requeue};
use crate::aws::lambda::{EventSourceMapping, MappingSettings};
use crate::lambda_stage::observed::{DeclaredAs, MappingKey, ObservedFunction};

impl Planner<'_> {
    /// Mappings come after the functions; while the stack is not settled, what is missing or
    /// differs is reported but nothing is changed (its functions may not exist yet).
    pub(super) fn plan_mappings(&mut self, stack_settled: bool) {
        for mapping in &self.spec.event_source_mappings {
            self.plan_mapping(mapping, stack_settled);
        }
    }

    /// Creates the mapping if none exists, else changes the one kept in place.
    fn plan_mapping(&mut self, mapping: &MappingSpec, stack_settled: bool) {
        let subject = format!("{} → {}", mapping.queue, mapping.function);
        let Some(function) = resolve_mapping_function(&self.observed.functions, &mapping.function)
        else {
            if stack_settled {
                self.stall(
                    reason::MAPPING_FUNCTION_NOT_FOUND,
                    format!(
                        "mapping {subject}: {} is not a selected function",
                        mapping.function
                    ),
                );
            }
            return;
        };
        let Some(queue) = self.observed.queues.get(&mapping.queue) else {
            if stack_settled {
                self.stall(
                    reason::QUEUE_NOT_FOUND,
                    format!("mapping {subject}: queue {} does not exist", mapping.queue),
                );
            }
            return;
        };
        let key = MappingKey::new(&function.name, &queue.arn);
        let found = self
            .observed
            .mappings
            .get(&key)
            .map_or(&[][..], Vec::as_slice);
        let Some(kept) = keep_mapping(found, self.recorded_uuid(mapping)) else {
            self.drift(DriftField::Mapping, &subject, "missing".to_owned());
            self.mapping_problems.push(format!("{subject}: missing"));
            if stack_settled {
                self.act(Action::CreateMapping {
                    function: function.name.clone(),
                    queue: mapping.queue.clone(),
                    event_source_arn: queue.arn.clone(),
                    settings: declared_settings(mapping),
                });
            }
            return;
        };
        if found.len() > 1 {
            self.report_duplicates(&subject, kept, found);
        }
        let Some(settings) = mapping_changes(mapping, kept) else {
            self.wait(
                reason::MAPPING_TRANSITIONING,
                format!(
                    "mapping {} {}",
                    kept.uuid,
                    kept.state.as_deref().unwrap_or("")
                ),
                requeue::MAPPING_SECONDS,
            );
            return;
        };
        if settings == MappingSettings::default() {
            return;
        }
        self.drift(
            DriftField::Mapping,
            &subject,
            describe_mapping_change(&settings),
        );
        self.mapping_problems
            .push(format!("{subject}: {}", describe_mapping_change(&settings)));
        if stack_settled {
            self.act(Action::UpdateMapping {
                function: function.name.clone(),
                queue: mapping.queue.clone(),
                uuid: kept.uuid.clone(),
                settings,
            });
        }
    }

    /// Mappings beside the kept one are reported and left alone: a human deletes them.
    fn report_duplicates(
        &mut self,
        subject: &str,
        kept: &EventSourceMapping,
        found: &[EventSourceMapping],
    ) {
        let others: Vec<&str> = found
            .iter()
            .filter(|m| m.uuid != kept.uuid)
            .map(|m| m.uuid.as_str())
            .collect();
        self.drift(
            DriftField::Mapping,
            subject,
            format!(
                "duplicates of {}: {} (left alone; delete them by hand)",
                kept.uuid,
                others.join(", ")
            ),
        );
        self.mapping_problems
            .push(format!("{subject}: {} duplicates", others.len()));
    }

    /// Why a declared mapping is not healthy (missing, disabled, in between), if it is not.
    pub(super) fn mapping_health_problem(&self, mapping: &MappingSpec) -> Option<String> {
        let name = format!("{} → {}", mapping.queue, mapping.function);
        let Some(existing) = self.find_mappings(mapping) else {
            return Some(format!("{name}: missing"));
        };
        let Some(kept) = keep_mapping(existing, self.recorded_uuid(mapping)) else {
            return Some(format!("{name}: missing"));
        };
        match kept.enabled() {
            Some(enabled) if enabled == mapping.enabled => None,
            Some(_) if !mapping.enabled => None,
            _ => Some(format!(
                "{name}: {}",
                kept.state.as_deref().unwrap_or("state unknown")
            )),
        }
    }

    /// The mapping's UUID status recorded, which wins over the lowest among duplicates.
    fn recorded_uuid(&self, mapping: &MappingSpec) -> Option<&str> {
        self.observed
            .previous
            .mapping_uuids
            .get(&(mapping.function.clone(), mapping.queue.clone()))
            .map(String::as_str)
    }

    /// The mappings found for a declared mapping; `None` when its function or queue is unknown.
    fn find_mappings(&self, mapping: &MappingSpec) -> Option<&[EventSourceMapping]> {
        let function = resolve_mapping_function(&self.observed.functions, &mapping.function)?;
        let queue = self.observed.queues.get(&mapping.queue)?;
        let key = MappingKey::new(&function.name, &queue.arn);
        Some(
            self.observed
                .mappings
                .get(&key)
                .map_or(&[][..], Vec::as_slice),
        )
    }
}

/// The settings of `existing` that differ from the spec (all `None`: nothing to change);
/// `None` when the mapping is between states and must not be touched yet.
pub fn mapping_changes(
    declared: &MappingSpec,
    existing: &EventSourceMapping,
) -> Option<MappingSettings> {
    let enabled = existing.enabled()?;
    Some(MappingSettings {
        batch_size: differing(Some(&declared.batch_size), existing.batch_size.as_ref()),
        batching_window_seconds: differing(
            declared.maximum_batching_window_seconds.as_ref(),
            existing.batching_window_seconds.as_ref(),
        ),
        enabled: (enabled != declared.enabled).then_some(declared.enabled),
        max_concurrency: differing(
            declared.maximum_concurrency.as_ref(),
            existing.max_concurrency.as_ref(),
        ),
    })
}

/// The settings a new mapping is created with: everything the spec declares.
fn declared_settings(declared: &MappingSpec) -> MappingSettings {
    MappingSettings {
        batch_size: Some(declared.batch_size),
        batching_window_seconds: declared.maximum_batching_window_seconds,
        enabled: Some(declared.enabled),
        max_concurrency: declared.maximum_concurrency,
    }
}

/// The mapping to keep among those found for one (function, queue): the UUID status recorded
/// when it is still there, else the lowest UUID (the adapter's choice too), so the answer is
/// stable across reconciles and restarts. Never `None` when any exists.
pub fn keep_mapping<'m>(
    found: &'m [EventSourceMapping],
    recorded_uuid: Option<&str>,
) -> Option<&'m EventSourceMapping> {
    recorded_uuid
        .and_then(|uuid| found.iter().find(|m| m.uuid == uuid))
        .or_else(|| found.iter().min_by(|a, b| a.uuid.cmp(&b.uuid)))
}

/// The function a mapping names: a Lambda name, a `spec.functions` name or a `fromStack` id.
fn resolve_mapping_function<'o>(
    functions: &'o [ObservedFunction],
    reference: &str,
) -> Option<&'o ObservedFunction> {
    functions
        .iter()
        .filter(|f| f.deployed.is_some())
        .find(|f| {
            f.name == reference
                || matches!(&f.declared_as, Some(DeclaredAs::FromStack(id) | DeclaredAs::Name(id)) if id == reference)
        })
}

/// The settings a mapping update changes, for drift details and `MappingsHealthy`.
fn describe_mapping_change(settings: &MappingSettings) -> String {
    let mut parts = Vec::new();
    if let Some(enabled) = settings.enabled {
        parts.push(if enabled {
            "enable".to_owned()
        } else {
            "disable".to_owned()
        });
    }
    if let Some(size) = settings.batch_size {
        parts.push(format!("batch size {size}"));
    }
    if let Some(window) = settings.batching_window_seconds {
        parts.push(format!("batching window {window}s"));
    }
    if let Some(concurrency) = settings.max_concurrency {
        parts.push(format!("max concurrency {concurrency}"));
    }
    parts.join(", ")
}
