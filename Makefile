# Stagehand developer entry points. The README's test command is `make test`; .ci/run calls it.
#
# The cargo target dir lives outside the clone so that repeated runs (and CI runs on the same
# machine) reuse the build: a clean debug build of the AWS SDK crates takes 5–8 minutes here.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/stagehand/target
CARGO ?= cargo

.PHONY: test fmt lint unit moto prometheus helm crds build dev demo bench bench-scale soak help

help:
	@echo "make demo   - the main job end to end: emulators, seed, controller, Chalice stage, a new build, metrics; stops it all"
	@echo "make test   - everything CI runs: fmt check, clippy -D warnings, all tests"
	@echo "make crds   - regenerate crds/yaml/ and charts/stagehand/crds/ from the Rust types"
	@echo "make dev    - local emulators + CRDs + examples + the controller, in the foreground"
	@echo "make build  - build the stagehand binary (debug)"
	@echo "make bench  - LambdaStage, SpotFleet and StaticSite AWS-call benchmarks, StaticSite beside aws s3 sync (docs/benchmarks.md)"
	@echo "make soak   - chaos soak: 200 objects, two replicas, ~20% AWS faults, leader SIGKILLs, spec changes; then the invariants (SOAK_OBJECTS=N)"
	@echo "make bench-scale - one real stagehand run with 10,000 objects: peak RSS, time to observe all, calls and status writes per resync (long; BENCH_SCALE_ARGS=\"900 50 50 2 60\" for 1,000)"

test: fmt lint unit

fmt:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

# moto (the AWS emulator) and the AWS CLI live in .venv/, installed from PyPI at pinned versions.
moto:
	scripts/ensure-moto

# promtool (the alert rules' unit tests) from Debian's `prometheus` package, when missing.
prometheus:
	scripts/ensure-prometheus >/dev/null

# The Helm v4 library (helm-python-sdk) and kubernetes-validate render and check the chart in
# the tests; pinned, from PyPI, into .venv/ (75 MB once, 0.3 s after).
helm:
	scripts/ensure-helm >/dev/null

# Every operation the controller makes through the test proxy is appended to AWS_CALLS (the
# proxy knows Stagehand's requests by their SDK app name); the IAM policy must grant them all.
AWS_CALLS ?= $(CARGO_TARGET_DIR)/stagehand-aws-calls.txt

unit: moto prometheus helm
	rm -f $(AWS_CALLS)
	STAGEHAND_TESTENV_CALLS_FILE=$(AWS_CALLS) $(CARGO) test --workspace --locked --no-fail-fast
	$(CARGO) run --locked -q -p stagehand -- iam-policy --check-calls $(AWS_CALLS)

crds:
	STAGEHAND_UPDATE_CRDS=1 $(CARGO) test -p stagehand-crds --test generated_yaml --locked

build:
	$(CARGO) build -p stagehand --locked

dev:
	scripts/dev

demo:
	scripts/demo

# Counts AWS calls (through the test floor's proxy) for N = 50 and 200 functions, for 100
# fleets of 4 instances, and for a 5,000-file site beside `aws s3 sync`, with the site's peak
# memory at 5,000 objects (observe + plan alone also at 50,000); not timed.
bench: moto
	$(CARGO) run --locked -p stagehand --example bench_lambda
	$(CARGO) run --locked -p stagehand --example bench_fleet
	$(CARGO) run --locked -p stagehand --example bench_site

# The chaos soak (docs/testing.md, "Chaos soak"): SOAK_OBJECTS objects (LambdaStages, SpotFleets,
# StaticSites) reconciled by two `stagehand run --leader-election` replicas through a 3-minute
# window of faults, kills and spec changes; then convergence, the invariants, deletion and the
# orphan check. Bounded (each wait has a limit); fails when an invariant breaks.
SOAK_OBJECTS ?= 200
soak: moto
	$(CARGO) build --locked -p stagehand --bin stagehand --example soak
	nice $(CARGO_TARGET_DIR)/debug/examples/soak --objects $(SOAK_OBJECTS)

# One real `stagehand run` (debug build) serving 10,000 objects (9,000 LambdaStages of 2 functions,
# 500 StaticSites, 500 SpotFleets) against the API stand-in and moto through the proxy: peak RSS,
# time until every object is observed and Ready, AWS calls and status writes over one resync
# (docs/benchmarks.md, "10,000 objects"). Seeding moto alone takes minutes; on a shared 2-core
# machine moto is the bottleneck at this size (STAGEHAND_MOTO_BIN=scripts/moto-quiet drops its log
# line per request: faster). Arguments: STAGES SITES FLEETS FUNCTIONS RESYNC_SECS.
BENCH_SCALE_ARGS ?=
bench-scale: moto
	$(CARGO) build --locked -p stagehand --bin stagehand --example bench_scale
	nice -n 10 $(CARGO_TARGET_DIR)/debug/examples/bench_scale $(BENCH_SCALE_ARGS)
