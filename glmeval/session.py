"""Wiring shared by the CLI and the pytest plugin: where to send calls, and one suite run.

A :class:`Target` says where calls go (the real API, a base URL, or a local server started
in-process) and owns the client; :func:`suite_options` turns a suite's settings and the
command line's :class:`Overrides` into the runner's options; :func:`run_plan` runs one
planned suite into the store. What happens after the run is :mod:`glmeval.afterrun`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard, get_args

from glmeval.errors import GlmevalError
from glmeval.records import RunStatus
from glmeval.redact import redact_url
from glmeval.run.ratelimit import Budget, ModelLimit, parse_model_values

if TYPE_CHECKING:  # the CLI imports this module for --help: the runner and the SDK load on use
    from glmeval.plan import MissingJobs, Plan
    from glmeval.records import Job, Result
    from glmeval.run.client import Endpoint, GLMClient
    from glmeval.run.runner import RunCounts, Runner, RunOptions, RunOutcome
    from glmeval.shard import Shard
    from glmeval.simulator import FaultConfig
    from glmeval.store import Store
    from glmeval.store.lease import RunLease
    from glmeval.store.refs import GitProbe
    from glmeval.suite import Suite
    from glmeval.suite.providers import ProviderInfo

LOCAL_SPEED = 0.05

RUN_STATUSES: tuple[RunStatus, ...] = get_args(RunStatus)


def is_status(text: str) -> TypeGuard[RunStatus]:
    """Whether a status string from the runner or the store is one glmeval knows."""
    return text in RUN_STATUSES


@dataclass
class Target:
    """Where calls go. Use as a context manager: a local server is stopped on exit.

    ``providers`` are the providers the plans use (``Plan.providers``; none: zhipu alone).
    Each gets its own client (``clients``), with its key from its own environment variable,
    behind the one :class:`GLMClient` the runner calls; ``base_url`` / ``api_key`` are the
    default zhipu provider's. With ``local`` every provider is sent to the local server, at
    ``/p/<name>/api/paas/v4`` (zhipuai, zai-sdk) or ``/p/<name>/v1`` (openai), in its dialect.
    """

    local: bool = False
    base_url: str | None = None
    api_key: str | None = None
    timeout: float = 60.0
    poll_timeout: float = 300.0
    speed: float = LOCAL_SPEED
    seed: int = 0
    max_stream_chunks: int = 0
    rules: Path | None = None
    faults: Any = None
    replay: bool = False
    concurrency: int = 8
    # --record FILE: calls go through a recording proxy; --cassette FILE: the local server
    # answers from a recording (glmeval.cassette); the jobs of `plans` label the recording.
    record: Path | None = None
    cassette: Path | None = None
    cassette_miss: str = "error"
    providers: dict[str, ProviderInfo] = field(default_factory=dict)
    server: Any = field(default=None, init=False)
    client: GLMClient | None = field(default=None, init=False)
    recorder: Any = field(default=None, init=False)
    plans: list[Plan] = field(default_factory=list, init=False)

    @property
    def clients(self) -> dict[str, Any]:
        """One client (transport) per provider."""
        return dict(self.client.transports) if self.client is not None else {}

    def __enter__(self) -> Target:
        from glmeval.run.client import GLMClient

        if self.local or self.cassette is not None:
            endpoints = self._start_local()
        else:
            endpoints = self._real_endpoints()
        url = self.base_url
        if self.record is not None:
            endpoints, url = self._start_recorder(endpoints)
        if self.api_key or endpoints:
            self.client = GLMClient(
                self.api_key,
                url,
                timeout=self.timeout,
                poll_timeout=self.poll_timeout,
                max_connections=max(16, self.concurrency * 2),
                endpoints=endpoints,
            )
            self.client.cache_namespace = self.cache_namespace
            if self.recorder is not None:  # messages name the real endpoints, not the proxy's mounts
                for name, transport in self.client.transports.items():
                    transport.base_url = self.recorder.upstreams.get(name, transport.base_url)
                self.client.base_url = self.recorder.upstreams.get("zhipu", self.client.base_url)
        return self

    def _start_local(self) -> list[Endpoint]:
        """Start the local server (answering from the cassette with ``--cassette``) with every
        provider mounted in its dialect; their endpoints."""
        from glmeval.run.client import Endpoint
        from glmeval.simulator import LocalServer

        cassette = None
        if self.cassette is not None:
            from glmeval.cassette import load_cassette

            cassette = load_cassette(self.cassette)
        try:
            self.server = LocalServer(
                rules_path=self.rules, speed=self.speed, faults=self.faults, seed=self.seed,
                max_stream_chunks=self.max_stream_chunks, providers={n: p.dialect for n, p in self.providers.items()},
                cassette=cassette, cassette_miss="rules" if self.cassette_miss == "rules" else "error",
            ).start()
        except Exception as exc:
            raise GlmevalError(f"cannot start the local GLM server: {exc}") from None
        self.base_url = self.server.base_url
        self.api_key = self.server.api_key
        endpoints = []
        for name, info in self.providers.items():
            url = self.server.provider_url(name, "openai" if info.sdk == "openai" else "zhipu")
            endpoints.append(Endpoint(name, info.sdk, url, self.api_key, info.dialect, info.models, info.api_key_env))
        return endpoints

    def _start_recorder(self, endpoints: list[Endpoint]) -> tuple[list[Endpoint], str | None]:
        """``--record``: put the recording proxy in front of every provider's endpoint; the
        endpoints (and the default base URL) now pointing at it."""
        from dataclasses import replace

        from glmeval.cassette.recorder import start_recorder
        from glmeval.run.client import DEFAULT_BASE_URL

        upstreams = {e.name: e.base_url or DEFAULT_BASE_URL for e in endpoints}
        if not upstreams:
            upstreams = {"zhipu": self.base_url or os.environ.get("ZHIPUAI_BASE_URL") or DEFAULT_BASE_URL}
        self.recorder = start_recorder(upstreams, self.record, secrets=self._secrets(endpoints))  # type: ignore[arg-type]
        moved = [replace(e, base_url=self.recorder.base_urls[e.name]) for e in endpoints]
        return moved, self.recorder.base_urls.get("zhipu")

    def _secrets(self, endpoints: list[Endpoint] | None = None) -> list[str]:
        """Every key this target holds: the recorder scrubs each from what it writes."""
        keys = [e.api_key for e in endpoints or []]
        if self.client is not None:
            keys += [t.endpoint.api_key for t in self.client.transports.values()]
        return [k for k in {*keys, self.api_key or ""} if k]

    def _real_endpoints(self) -> list[Endpoint]:
        """Each provider's endpoint with its key from its environment variable; every missing
        key named in one line (none needed for --replay, which sends nothing)."""
        from glmeval.run.client import KEY_VARS, Endpoint, find_api_key, find_key

        self.api_key = self.api_key or find_api_key()
        endpoints: list[Endpoint] = []
        missing: list[str] = []
        for name, info in self.providers.items():
            names = KEY_VARS if info.api_key_env == "ZHIPUAI_API_KEY" else (info.api_key_env,)
            key = self.api_key if name == "zhipu" and info.sdk == "zhipuai" and info.base_url is None else find_key(names)
            if not key:
                missing.append(f"{name} ({' or '.join(names)})")
                continue
            url = info.base_url or (self.base_url if info.sdk == "zhipuai" else None)
            endpoints.append(Endpoint(name, info.sdk, url, key, info.dialect, info.models, info.api_key_env))
        if not self.providers and not self.api_key:
            missing.append("zhipu (ZHIPUAI_API_KEY or ZHIPU_API_KEY)")
        if missing and not self.replay:
            if missing == ["zhipu (ZHIPUAI_API_KEY or ZHIPU_API_KEY)"]:
                raise GlmevalError(
                    "no API key: set ZHIPUAI_API_KEY (or ZHIPU_API_KEY), or pass --local to use the local GLM server"
                )
            raise GlmevalError(f"no API key for provider {', '.join(missing)}: set it, or pass --local to use the local GLM server")
        return endpoints

    @property
    def cache_namespace(self) -> str:
        """Where this target's answers live in the response cache: --local answers apart
        (the port changes every run), other endpoints by URL, the official API as ""."""
        from glmeval.run.client import endpoint_namespace

        if self.cassette is not None:
            return "cassette"
        if self.recorder is not None:
            # Judge and embedding replies are read from the cache in every mode; a namespace of
            # this recording's own keeps them out of it, so each one reaches the cassette.
            return f"record:{id(self.recorder):x}:{self.recorder.started_at}"
        return "local" if self.local else endpoint_namespace(self.base_url)

    def __exit__(self, *exc: Any) -> None:
        if self.client is not None:
            self.client.close()
        if self.server is not None:
            self.server.stop()
        if self.recorder is not None:
            self.recorder.stop([job for plan in self.plans for job in plan], secrets=self._secrets())

    def label_jobs(self, plan: Plan) -> None:
        """Remember a plan whose jobs label a recording (``--record``): its jobs are made again
        when the cassette is written, never kept."""
        if self.record is not None:
            self.plans.append(plan)


def plan_providers(plans: list[Plan]) -> dict[str, ProviderInfo]:
    """The providers a ``glmeval run`` of ``plans`` calls, one definition each (a name two
    suites define differently is one line: a name gets one client)."""
    from glmeval.suite.providers import merge_providers

    used = {name for plan in plans for name in plan.providers}
    return merge_providers(((str(plan.suite.path or plan.suite.name), plan.providers) for plan in plans), used)


@dataclass
class Resume:
    """What ``--resume`` found: the run to continue and the jobs it still lacks.

    ``counts`` holds the totals of the results already stored (errors excluded: they run
    again), so progress and totals continue where the run stopped. ``lease`` is this
    process's hold on the run, taken before the missing jobs were listed; :func:`run_plan`
    releases it.
    """

    run_id: str
    status: str
    jobs: MissingJobs
    counts: RunCounts
    suite_changed: bool
    lease: RunLease | None = None


def find_resume(store: Store, plan: Plan, ref: str = "latest") -> Resume:
    """Resolve ``ref`` (``latest`` = this suite's latest run), take its lease, and list the
    jobs without a result. Works for a run that was killed outright (it reads as
    ``interrupted``); a run another live process holds is refused with one line naming it
    (:class:`~glmeval.store.lease.LeaseHeld`, exit 2).

    The jobs are listed only once the lease is held: a resumer that lost the race to one
    that has since finished then finds nothing left to send, rather than sending it again.
    """
    from glmeval.store.lease import RunLease

    suite = plan.suite
    run_id = store.resolve_run(ref, suite=suite.name)
    info = store.get_run(run_id)
    assert info is not None
    if info.suite != suite.name:
        raise GlmevalError(f"run {run_id} is of suite {info.suite!r}, not {suite.name!r}; pass that suite to --resume it")
    lease = RunLease(store, run_id).acquire()
    try:
        return _remaining(store, plan, run_id, was=info.status, lease=lease)
    except BaseException:
        lease.release()
        raise


def _remaining(store: Store, plan: Plan, run_id: str, *, was: str, lease: RunLease) -> Resume:
    """What a held run still lacks, and the totals of what it has (``was``: its status as
    it read before this process took it)."""
    from glmeval.run.runner import RunCounts

    suite = plan.suite
    info = store.require_run(run_id)
    done = store.done_job_ids(run_id)
    counts = RunCounts(total=len(plan))
    # Totals of the stored results, so the resumed run's progress starts where it stopped.
    rows = store.conn.execute(
        "SELECT status, COUNT(*), SUM(total_tokens), SUM(cost), SUM(cached), SUM(CASE WHEN attempts > 1 THEN 1 ELSE 0 END) "
        "FROM results "
        "WHERE run_id = ? AND status != 'error' GROUP BY status",
        (run_id,),
    ).fetchall()
    for status, n, tokens, cost, cached, retried in rows:
        counts.done += n
        counts.passed += n if status == "pass" else 0
        counts.failed += n if status == "fail" else 0
        counts.tokens += int(tokens or 0)
        counts.cost += float(cost or 0.0)
        counts.cached += int(cached or 0)
        counts.retried += int(retried or 0)
    jobs = plan.missing(done)
    changed = bool(info.suite_hash and suite.content_hash and info.suite_hash != suite.content_hash)
    return Resume(run_id=run_id, status=was, jobs=jobs, counts=counts, suite_changed=changed, lease=lease)


def run_plan(
    plan: Plan,
    store: Store,
    target: Target,
    options: RunOptions,
    on_result: Callable[[Result, RunCounts], None] | None = None,
    run_id: str | None = None,
    settings: dict[str, Any] | None = None,
    resume: Resume | None = None,
    shard: Shard | None = None,
    git: GitProbe | None = None,
) -> RunOutcome:
    """Run every job of ``plan`` into ``store`` as one stored run; with ``resume``, run only
    the jobs that run still lacks, into the same run id; with ``shard``, only that slice, into
    the shared run ``run_id`` (:mod:`glmeval.shard`, where each shard process runs unleased:
    the shards table says which have ended).

    ``git`` is the git facts of the suite's folder, probed while the suite loaded (asked when
    the run starts without it).

    The process holds the run's lease while it runs (taken here for a new run, by
    :func:`find_resume` for a resumed one) and gives it up when the run ends, however it ends.
    """
    lease = resume.lease if resume is not None else None
    try:
        return _run_held(plan, store, target, options, on_result, run_id, settings, resume, shard, git)
    finally:
        if lease is not None:
            lease.release()


def _run_held(
    plan: Plan,
    store: Store,
    target: Target,
    options: RunOptions,
    on_result: Callable[[Result, RunCounts], None] | None,
    run_id: str | None,
    settings: dict[str, Any] | None,
    resume: Resume | None,
    shard: Shard | None = None,
    git: GitProbe | None = None,
) -> RunOutcome:
    from glmeval.run.runner import Runner
    from glmeval.store.lease import RunLease

    if shard is not None:
        from glmeval.shard import run_shard

        target.label_jobs(plan)
        return run_shard(plan, store, target.client, target.local, options, shard, run_id, settings, on_result)

    suite = plan.suite
    if "batch" in plan.modes:
        _check_batch_target(suite.path or suite.name, target, options)
    target.label_jobs(plan)
    runner = Runner(target.client, store, options, on_result=on_result)
    # Nothing stored yet: --replay with an empty cache or a budget too small for one job stops
    # here with one line; a partial cache miss is a warning.
    for warning in runner.preflight(resume.jobs if resume is not None else plan):  # type: ignore[arg-type]  # any iterable
        if options.notify is not None:
            options.notify(warning)
    if resume is not None:
        if resume.lease is not None:
            resume.lease.on_lost = _on_lost(runner, resume.lease, options)
        # Back to 'running' until the runner stores how this session ended.
        store.conn.execute("UPDATE runs SET status = 'running', ended_at = NULL WHERE id = ?", (resume.run_id,))
        outcome = _run_jobs(runner, plan, resume.jobs, resume.run_id, counts=resume.counts)
        _mark_if_simulated(store, target, resume.run_id)
        return outcome
    run_id = store.start_run(
        suite.name,
        suite_hash=suite.content_hash,
        suite_path=str(suite.path) if suite.path else None,
        settings=settings or {},
        local=target.local,
        replay=options.cache == "replay",
        total_jobs=len(plan),
        variants=plan.variants,
        run_id=run_id,
        cwd=suite.path.parent if suite.path else None,
        git=git.result() if git is not None else None,
    )
    lease = RunLease(store, run_id)
    lease.on_lost = _on_lost(runner, lease, options)
    with lease.acquire():
        outcome = _run_jobs(runner, plan, plan, run_id)
    _mark_if_simulated(store, target, run_id)
    return outcome


def _run_jobs(runner: Runner, plan: Plan, jobs: Iterable[Job], run_id: str, counts: RunCounts | None = None) -> RunOutcome:
    """The jobs through the runner as the plan makes them; a plan with batch-mode jobs goes
    through :func:`glmeval.run.batch.run_jobs`, which needs them all at once."""
    if "batch" in plan.modes:
        from glmeval.run.batch import run_jobs

        return run_jobs(runner, jobs, run_id, total=len(plan), counts=counts)
    return runner.run(jobs, run_id, total=len(plan), counts=counts)


def _check_batch_target(where: object, target: Target, options: RunOptions) -> None:
    """What mode batch cannot do, refused in one line before anything is stored or sent."""
    if target.record is not None or target.cassette is not None:
        flag = "--record" if target.record is not None else "--cassette"
        raise GlmevalError(f"{where}: mode batch goes through the Batch API, which {flag} cannot "
                           "record or replay; run it without that flag, or pass --mode sync")
    if options.budget is not None:
        raise GlmevalError(f"{where}: mode batch submits whole files at once, so --max-cost / --max-tokens cannot "
                           "stop it midway; drop the budget, or pass --mode sync")


def _on_lost(runner: Any, lease: RunLease, options: RunOptions) -> Callable[[], None]:
    """What the heartbeat does when another process took the run over (this one stalled
    past the stale time): stop sending, so no job goes out from both."""

    def lost() -> None:
        if options.notify is not None:
            options.notify(f"run {lease.run_id} was taken over by another process; stopping (no new calls)")
        runner.stop()

    return lost


def _mark_if_simulated(store: Store, target: Target, run_id: str) -> None:
    """A run whose answers came from the local server (reached by --base-url rather than
    --local) is stored as simulated, so reports and history never show it as real."""
    if not target.local and target.client is not None and getattr(target.client, "simulated", False):
        store.conn.execute("UPDATE runs SET local = 1 WHERE id = ?", (run_id,))


@dataclass(frozen=True)
class Overrides:
    """Command-line values over each suite's settings (None: the suite's own)."""

    concurrency: int | None = None
    retries: int | None = None
    retry_budget: float | None = None
    cache: str | None = None
    judge_model: str | None = None
    embedding_model: str | None = None
    limits: dict[str, ModelLimit] = field(default_factory=dict)
    budget: Budget | None = None
    faults: FaultConfig | None = None


def suite_options(
    suite: Suite, target: Target, overrides: Overrides, notify: Callable[[str], None] | None = None
) -> RunOptions:
    """The runner's options for one suite of a ``glmeval run``."""
    from glmeval.run.retry import DEFAULT_RETRY_BUDGET
    from glmeval.run.runner import RunOptions

    return RunOptions(
        cache_namespace=target.cache_namespace,
        concurrency=overrides.concurrency or suite.settings.concurrency,
        retries=suite.settings.retries if overrides.retries is None else overrides.retries,
        retry_budget=overrides.retry_budget or suite.settings.retry_budget or DEFAULT_RETRY_BUDGET,
        cache=overrides.cache or "off",
        judge_model=overrides.judge_model or suite.settings.judge_model,
        embedding_model=overrides.embedding_model or suite.settings.embedding_model,
        suite_dir=suite.base_dir,
        prices=suite.prices or None,
        model_limits=suite_limits(suite, overrides.limits),
        budget=overrides.budget,
        notify=notify,
        checks=suite.check_registry,
        provider_prices={name: info.prices for name, info in suite.provider_table.items() if info.prices},
    )


def run_settings(options: RunOptions, target: Target, overrides: Overrides) -> dict[str, Any]:
    """The settings worth keeping with a stored run (``glmeval show`` prints them)."""
    settings: dict[str, Any] = {
        "concurrency": options.concurrency,
        "retry_budget": options.retry_budget,
        "cache": options.cache,
        "timeout": target.timeout,
        "base_url": "local" if target.local else redact_url(target.base_url) if target.base_url else None,
    }
    if options.retries is not None:
        settings["retries"] = options.retries
    if options.model_limits:
        settings["limits"] = {
            m: {k: v for k, v in vars(lim).items() if v is not None} for m, lim in options.model_limits.items()
        }
    if overrides.budget is not None:
        settings["budget"] = {"max_cost": overrides.budget.max_cost, "max_tokens": overrides.budget.max_tokens}
    if overrides.faults is not None:
        settings["faults"] = {k: v for k, v in vars(overrides.faults).items() if v}
    if target.record is not None or target.cassette is not None:  # the cassette package loads only for them
        from glmeval.cassette.settings import cassette_settings

        settings.update(cassette_settings(target.record, target.cassette, target.cassette_miss))
    return settings


def parse_limits(concurrency: tuple[str, ...], rpm: tuple[str, ...], tpm: tuple[str, ...]) -> dict[str, ModelLimit]:
    """``--model-concurrency``/``--rpm``/``--tpm`` items into per-model limits (``*`` = every model)."""
    try:
        conc = parse_model_values(concurrency, "--model-concurrency", integer=True)
        per_min = parse_model_values(rpm, "--rpm")
        tokens = parse_model_values(tpm, "--tpm")
    except ValueError as exc:
        raise GlmevalError(str(exc)) from None
    limits: dict[str, ModelLimit] = {}
    for model in {*conc, *per_min, *tokens}:
        c = conc.get(model)
        limits[model] = ModelLimit(int(c) if c is not None else None, per_min.get(model), tokens.get(model))
    return limits


def suite_limits(suite: Suite, cli: dict[str, ModelLimit]) -> dict[str, ModelLimit]:
    """Per-model limits: the suite's ``settings.limits`` (``{model: {concurrency, rpm, tpm}}``)
    with the command line's on top."""
    merged: dict[str, ModelLimit] = {}
    for model, spec in suite.settings.limits.items():
        merged[str(model)] = ModelLimit(spec.concurrency, spec.rpm, spec.tpm)
    for model, limit in cli.items():
        merged[model] = merged.get(model, ModelLimit()).merged(limit)
    return merged


def parse_faults(items: tuple[str, ...], seed: int | None, local: bool) -> FaultConfig | None:
    """``--fault KIND=RATE`` items (and ``--fault-seed``) into the local server's FaultConfig."""
    if not items and seed is None:
        return None
    if not local:
        raise GlmevalError("--fault and --fault-seed inject faults at the local server: add --local")
    from glmeval.simulator import FaultConfig

    spec = ",".join(items)
    if seed is not None:
        spec += f",seed={seed}"
    try:
        return FaultConfig.parse(spec)
    except ValueError as exc:
        raise GlmevalError(f"--fault: {exc}") from None


__all__ = [
    "LOCAL_SPEED", "RUN_STATUSES", "is_status", "Target", "plan_providers", "Resume", "find_resume", "run_plan",
    "Overrides", "suite_options", "run_settings", "parse_limits", "suite_limits", "parse_faults",
]
