"""`medkg`: run the pipeline on a namespace from the terminal."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any

from medkg_assets.settings import PROJECT_ROOT, Settings, configure_logging, load_settings


def _instance():
    """The persistent local instance ($DAGSTER_HOME, default `.dagster_home`), so runs show in the UI."""
    from dagster import DagsterInstance

    home = Path(os.environ.setdefault("DAGSTER_HOME", str(PROJECT_ROOT / ".dagster_home")))
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    return DagsterInstance.get()


def _materialisations(result) -> list[tuple[str, str]]:
    rows = []
    for event in result.get_asset_materialization_events():
        meta = event.materialization.metadata
        summary = ", ".join(
            f"{k}={meta[k].value}" for k in ("documents", "chunks", "vectors", "ntotal") if k in meta
        )
        rows.append((event.asset_key.to_user_string(), summary))
    return rows


def _settings() -> Settings:
    """The command's settings, built once from the environment (banner and warnings logged)."""
    configure_logging()
    return load_settings()


def run_command(args: argparse.Namespace) -> int:
    from medkg_assets.definitions import build_definitions
    from medkg_assets.orchestration.partitions import namespace_profile_key, register_namespaces

    config = _settings()
    defs = build_definitions(config)
    print(config.banner())
    namespace = config.namespace(args.namespace).name
    profile = config.profiles.get(args.profile or config.resolution.profile).name
    instance = _instance()
    register_namespaces(instance, config.namespaces)
    _release_dead_runs(instance)
    rows: list[tuple[str, str, float]] = []
    for job_name, partition_key in (
        ("ingest_job", namespace),
        ("index_job", namespace_profile_key(namespace, profile)),
    ):
        job = defs.resolve_job_def(job_name)
        if not job.asset_layer.executable_asset_keys:
            continue
        result, stopped_by = _execute_watched(instance, job, partition_key)
        if stopped_by is not None:
            return stopped_by
        step_seconds = {
            stats.step_key: stats.end_time - stats.start_time
            for stats in instance.get_run_step_stats(result.run_id)
            if stats.end_time and stats.start_time
        }
        if not result.success:
            print(
                f"{job_name} failed for {partition_key}; see the run {result.run_id} in the UI "
                "(`make dev`) or the log above",
                file=sys.stderr,
            )
            return 1
        rows += [
            (asset, summary, _asset_seconds(step_seconds, asset))
            for asset, summary in _materialisations(result)
        ]
    print(f"\nnamespace={namespace} profile={profile} data_dir={config.data_dir}")
    print(f"{'asset':<24} {'step s':>7}  result")
    for asset, summary, elapsed in rows:
        print(f"{asset:<24} {elapsed:7.1f}  {summary}")
    _print_summary(config, namespace, profile)
    return 0


def _asset_seconds(step_seconds: dict[str, float], asset: str) -> float:
    """An asset's step time; a graph-backed asset's is the sum of its op steps (`asset.op[key]`)."""
    return step_seconds.get(asset, 0.0) + sum(
        t for key, t in step_seconds.items() if key.startswith(f"{asset}.")
    )


def _release_dead_runs(instance) -> None:
    """Free what runs of dead `medkg` processes (and finished runs past the grace period) hold."""
    from medkg_assets.automation.stale_runs import release_dead_runs

    for released in release_dead_runs(instance):
        print(released.describe(), flush=True)


def _execute_watched(instance, job, partition_key: str | None):
    """Execute `job` in this process once its pools have a free slot, tagged with this process.

    Returns (result, None), or (result or None, exit status) when SIGINT/SIGTERM stopped it; a
    stopped run leaves no pool claim behind (automation/pool_wait.py says how).
    """
    import signal
    import uuid

    from medkg_assets.automation.pool_wait import (
        PoolWaitGuard,
        PoolWaitInterrupted,
        job_pools,
        wait_for_pools,
    )
    from medkg_assets.automation.stale_runs import process_tags

    pools = job_pools(job)
    run_id = str(uuid.uuid4())
    guard = None
    try:
        wait_for_pools(instance, pools)
        with PoolWaitGuard(instance, run_id, pools) as guard:
            result = job.execute_in_process(
                partition_key=partition_key,
                instance=instance,
                raise_on_error=False,
                run_id=run_id,
                tags=process_tags(),
            )
    except PoolWaitInterrupted as interrupt:
        instance.event_log_storage.free_concurrency_slots_for_run(run_id)
        where = "waiting for a pool slot before the run started" if guard is None else f"run {run_id} waited"
        print(
            f"{interrupt.signal_name} while {where} ({job.name}, pools {', '.join(sorted(pools))}): stopped; "
            "no pool claim left behind",
            file=sys.stderr,
        )
        return None, interrupt.exit_code
    if guard.signum is None:
        return result, None
    instance.event_log_storage.free_concurrency_slots_for_run(run_id)
    outcome = (
        "was canceled while it waited for a pool slot"
        if guard.interrupted
        else ("finished" if result.success else "failed")
    )
    print(
        f"{signal.Signals(guard.signum).name}: stopped; run {run_id} of {job.name} {outcome}; "
        "no pool claim left behind",
        file=sys.stderr,
    )
    return result, 128 + guard.signum


def release_run_command(args: argparse.Namespace) -> int:
    """Free the pool claims of runs whose process is gone (whoever started them); unfinished ones
    are marked FAILURE. Refuses a run a live `medkg` process still executes, unless --force."""
    from medkg_assets.automation.stale_runs import claims_of, describe_process, process_alive, release_run

    instance = _instance()
    status = 0
    for run_id in args.run_ids:
        run = instance.get_run_by_id(run_id)
        if run is None and not claims_of(instance, {run_id}):
            home = os.environ["DAGSTER_HOME"]
            print(f"no run {run_id} and no pool claims of it in {home}", file=sys.stderr)
            status = 1
            continue
        if run is not None and process_alive(dict(run.tags)) and not args.force:
            print(
                f"run {run_id} is still executed by a live process ({describe_process(dict(run.tags))}); "
                "not released (stop that process, or pass --force)",
                file=sys.stderr,
            )
            status = 1
            continue
        print(release_run(instance, run_id, "Released by `medkg release-run`.").describe())
    return status


def _print_summary(config, namespace: str, profile: str) -> None:
    from medkg_assets.storage.layout import ArtifactLayout

    path = ArtifactLayout(config.data_dir).processing_summary(namespace, profile)
    if not path.exists():
        return
    summary = json.loads(path.read_text())
    quality = summary["metrics"]["quality"]
    print(f"\nretrieval quality on the eval set (final stage: {summary['metrics']['final_stage']})")
    print(f"{'stage':<10} {'Recall@10':>9} {'nDCG@10':>8} {'MRR@10':>7} {'Recall@100':>10}")
    for stage, figures in quality.items():
        print(
            f"{stage:<10} {figures['recall@10']:>9.4f} {figures['ndcg@10']:>8.4f} "
            f"{figures['mrr@10']:>7.4f} {figures['recall@100']:>10.4f}"
        )
    for warning in summary["warnings"]:
        print(f"warning: {warning}")
    print(f"\nprocessing_summary.json (schema {summary['schema_version']}): {path}")


def _open_reader(config: Settings, namespace_name: str, profile_name: str | None) -> Any:
    """(namespace, profile, resources, retriever, fusion settings) for `search` and `eval`: readers
    follow the serving alias, the live profile, unless one is asked for."""
    from medkg_assets.definitions import build_resources
    from medkg_assets.stages.context import StageContext
    from medkg_assets.stages.fusion_tuning import load_fusion
    from medkg_assets.stages.reader import open_retriever
    from medkg_assets.stages.serving import live_profile
    from medkg_assets.storage.layout import ArtifactLayout

    namespace = config.namespace(namespace_name).name
    profile = config.profiles.get(
        profile_name or live_profile(ArtifactLayout(config.data_dir), namespace) or config.resolution.profile
    )
    resources = build_resources(config)
    ctx = StageContext.build(config, namespace, profile.name)
    retriever = open_retriever(
        ctx, resources["dense_encoder"], resources["sparse_encoder"], resources["lucene"]
    )
    return namespace, profile, resources, retriever, load_fusion(ctx)


def search_command(args: argparse.Namespace) -> int:
    """The runbook's smoke test: rank a query against a materialised namespace × profile."""
    from medkg_assets.search.query import searchable_query

    query = searchable_query(args.query)  # before anything slow loads
    from medkg_assets.encoders.rerank import RerankerUnavailableError
    from medkg_assets.stages.reader import rank_stages

    config = _settings()
    namespace, profile, resources, retriever, fusion = _open_reader(config, args.namespace, args.profile)
    if args.mode == "sparse" and not retriever.has_sparse:
        print(
            f"sparse search unavailable: sparse vectors are disabled for {namespace}|{profile.name}",
            file=sys.stderr,
        )
        return 2
    if args.mode == "rerank":
        try:
            model = resources["reranker"].open(profile, config.models_dir)
        except RerankerUnavailableError as error:
            print(f"rerank unavailable: {error}", file=sys.stderr)
            return 2
        ranking = rank_stages(retriever, [query], fusion, args.k, model, resources["reranker"].batch_cap)
        ranking = ranking.runs["reranked"][0]
    elif args.mode == "hybrid":
        ranking = retriever.first_stage([query], args.k, fusion)["hybrid"][0]
    else:
        ranking = getattr(retriever, args.mode)([query], args.k)[0]
    hits = retriever.hits(ranking[: args.k])
    if args.json:
        print(json.dumps([h.to_record() for h in hits], indent=2))
        return 0
    print(f"namespace={namespace} profile={profile.name} mode={args.mode} query={query!r}")
    print(f"{'#':>3} {'score':>10}  {'doc_id':<28} {'tenant':<12} title")
    for hit in hits:
        print(f"{hit.rank:>3} {hit.score:>10.4f}  {hit.doc_id:<28} {hit.tenant_id:<12} {hit.title[:50]}")
    return 0


def eval_command(args: argparse.Namespace) -> int:
    """Score a BEIR/TREC query set against a built namespace × profile, per stage, with the rerank
    manifest's pipeline; one TREC run file per stage into --run-dir."""
    from medkg_assets.stages.reader import STAGES

    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown or not stages:
        print(
            f"medkg: unknown stage(s) {', '.join(unknown) or '(none)'}; choose from {','.join(STAGES)}",
            file=sys.stderr,
        )
        return 2
    for path in (args.queries, args.qrels):
        if not path.is_file():
            print(f"medkg: no such file: {path}", file=sys.stderr)
            return 2
    from medkg_assets.encoders.rerank import RerankerUnavailableError
    from medkg_assets.evaluation.eval_set import load_eval_set
    from medkg_assets.stages.query_eval import format_table, rank_query_set, write_trec_runs
    from medkg_assets.stages.rerank import RetrievalOptions

    config = _settings()
    # The manifest's depth (a deeper -k deepens the first stage, which can change the fusion)
    k = max(args.k, RetrievalOptions().first_stage_k)
    namespace, profile, resources, retriever, fusion = _open_reader(config, args.namespace, args.profile)
    try:  # judgments of documents outside the collection are dropped, as the rerank manifest does
        eval_set = load_eval_set(args.queries, args.qrels, retriever.documents_present)
    except (ValueError, KeyError) as error:
        print(f"medkg: bad eval set {args.queries} / {args.qrels}: {error}", file=sys.stderr)
        return 2
    if not eval_set.queries:
        print(
            f"medkg: no judged query of {args.queries} has a judgment in {args.qrels} for a document "
            f"of {namespace}",
            file=sys.stderr,
        )
        return 2
    model = None
    if "reranked" in stages:
        try:
            model = resources["reranker"].open(profile, config.models_dir)
        except RerankerUnavailableError as error:
            print(f"medkg: rerank unavailable: {error}", file=sys.stderr)
            return 2
    batch_cap = resources["reranker"].batch_cap
    result = rank_query_set(retriever, eval_set, stages, fusion, k, model, batch_cap)
    print(
        f"namespace={namespace} profile={profile.name} queries={result.queries} "
        f"chunk_version={retriever.chunk_version}"
    )
    print(format_table(result))
    for warning in result.warnings:
        print(f"warning: {warning}")
    if args.run_dir is not None:
        for path in write_trec_runs(result, args.run_dir, args.k):
            print(f"run file: {path}")
    return 0


def _failure_reason(result) -> str:
    """The step failure's own description (a Dagster `Failure`), else the error message."""
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE").event_specific_data
    if failure.user_failure_data is not None and failure.user_failure_data.description:
        return failure.user_failure_data.description
    return failure.error.message.strip()


def promote_command(args: argparse.Namespace) -> int:
    """Materialise `serving_alias` for a namespace (the checks + Recall@10 gate decides)."""
    from medkg_assets.definitions import build_definitions
    from medkg_assets.orchestration.partitions import register_namespaces

    config = _settings()
    defs = build_definitions(config)
    namespace = config.namespace(args.namespace).name
    instance = _instance()
    register_namespaces(instance, config.namespaces)
    run_config = {"ops": {"serving_alias": {"config": {"profile": args.profile}}}} if args.profile else None
    result = defs.resolve_job_def("serving_job").execute_in_process(
        partition_key=namespace, instance=instance, run_config=run_config, raise_on_error=False
    )
    if not result.success:
        print(f"promotion refused: {_failure_reason(result)}", file=sys.stderr)
        return 1
    _print_status(config, instance, [namespace])
    return 0


def rollback_command(args: argparse.Namespace) -> int:
    """Run `rollback_job` for a namespace and say how long the switch took."""
    import time

    from medkg_assets.definitions import build_definitions

    config = _settings()
    defs = build_definitions(config)
    namespace = config.namespace(args.namespace).name
    instance = _instance()
    started = time.perf_counter()
    result = defs.resolve_job_def("rollback_job").execute_in_process(
        instance=instance,
        run_config={"ops": {"roll_back_serving": {"config": {"namespace": namespace}}}},
        raise_on_error=False,
    )
    elapsed = time.perf_counter() - started
    if not result.success:
        print(f"rollback failed: {_failure_reason(result)}", file=sys.stderr)
        return 1
    print(f"rolled back {namespace} in {elapsed:.2f}s (run {result.run_id})")
    _print_status(config, instance, [namespace])
    return 0


def _last_checks(instance, namespace: str, profile: str | None) -> str:
    if profile is None:
        return "-"
    from medkg_assets.orchestration.check_status import failing_checks

    failing = failing_checks(instance, namespace, profile)
    return "all passed" if not failing else "failing: " + ", ".join(failing)


def _print_status(config: Settings, instance, namespaces: list[str]) -> None:
    from medkg_assets.stages.serving import live_profile
    from medkg_assets.storage.layout import ArtifactLayout

    candidate = config.candidate_profile
    print(
        f"environment={config.environment.name} baseline={config.resolution.baseline} "
        f"candidate={candidate or 'none'} rollout={config.rollout_percentage}% "
        f"canary={','.join(config.environment.rollout.canary_namespaces) or 'none'}"
    )
    print(
        f"{'namespace':<20} {'live':<16} {'candidate':<16} {'in rollout':<10}  last checks (live | candidate)"
    )
    for name in namespaces:
        live = live_profile(ArtifactLayout(config.data_dir), name)
        target = candidate if config.in_rollout(name) else None
        print(
            f"{name:<20} {live or 'none':<16} {target or '-':<16} {'yes' if target else 'no':<10}  "
            f"{_last_checks(instance, name, live)} | {_last_checks(instance, name, target)}"
        )


def status_command(args: argparse.Namespace) -> int:
    """Per namespace: live profile, candidate, rollout percentage, last check results."""
    config = _settings()
    names = [config.namespace(args.namespace).name] if args.namespace else sorted(config.namespaces)
    _print_status(config, _instance(), names)
    return 0


def register_namespaces_command(args: argparse.Namespace) -> int:
    """Add every configured namespace as a partition of the instance ($DAGSTER_HOME), so the UI,
    backfills and `dagster asset materialize` can address it before the source sensor has ticked."""
    from medkg_assets.orchestration.partitions import register_namespaces

    config = _settings()
    instance = _instance()
    added = register_namespaces(instance, config.namespaces)
    home = os.environ["DAGSTER_HOME"]
    print(
        f"registered namespace partitions in {home}: {', '.join(added)}"
        if added
        else f"every configured namespace is already a partition in {home} ({len(config.namespaces)})"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medkg", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="materialise every stage for one namespace × profile")
    run.add_argument("--namespace", default="medquad_sample")
    run.add_argument("--profile", default=None, help="default: the environment's resolved profile")
    run.set_defaults(handler=run_command)
    search = commands.add_parser("search", help="query a namespace × profile from the terminal")
    search.add_argument("query")
    search.add_argument("--namespace", default="medquad_sample")
    search.add_argument("--profile", default=None, help="default: the live profile, else the resolved one")
    search.add_argument("--mode", choices=["dense", "sparse", "bm25", "hybrid", "rerank"], default="hybrid")
    search.add_argument("-k", type=positive_int, default=10, help="hits to show (≥ 1)")
    search.add_argument("--json", action="store_true", help="print hits as JSON")
    search.set_defaults(handler=search_command)
    evaluate = commands.add_parser(
        "eval", help="score a BEIR/TREC query set against a built namespace × profile, per stage"
    )
    evaluate.add_argument("--namespace", required=True)
    evaluate.add_argument("--profile", default=None, help="default: the live profile, else the resolved one")
    evaluate.add_argument("--queries", type=Path, required=True, help="BEIR queries.jsonl (_id, text)")
    evaluate.add_argument("--qrels", type=Path, required=True, help="qrels TSV: query-id, corpus-id, score")
    evaluate.add_argument("--stages", default="dense,sparse,bm25,hybrid,reranked", help="comma-separated")
    evaluate.add_argument("--run-dir", type=Path, default=None, help="write <stage>.run TREC run files here")
    evaluate.add_argument("-k", type=positive_int, default=100, help="documents per query in the run files")
    evaluate.set_defaults(handler=eval_command)
    promote = commands.add_parser("promote", help="make a profile live for a namespace (gated)")
    promote.add_argument("--namespace", required=True)
    promote.add_argument("--profile", default=None, help="default: candidate in rollout, else baseline")
    promote.set_defaults(handler=promote_command)
    rollback = commands.add_parser("rollback", help="serve a namespace's previous profile again")
    rollback.add_argument("--namespace", required=True)
    rollback.set_defaults(handler=rollback_command)
    register = commands.add_parser(
        "register-namespaces", help="make every configured namespace a partition of the Dagster instance"
    )
    register.set_defaults(handler=register_namespaces_command)
    release = commands.add_parser(
        "release-run", help="free the pool claims of dead runs (unfinished ones are marked FAILURE)"
    )
    release.add_argument("run_ids", nargs="+", metavar="RUN_ID")
    release.add_argument("--force", action="store_true", help="even if a live medkg process executes it")
    release.set_defaults(handler=release_run_command)
    status = commands.add_parser("status", help="live profile, candidate, rollout and checks per namespace")
    status.add_argument("--namespace", default=None)
    status.set_defaults(handler=status_command)
    args = parser.parse_args(argv)
    if not args.debug:  # Dagster's beta/preview notices are for developers, not operators
        warnings.filterwarnings("ignore", message=".* is currently in (beta|preview)")
    try:
        return args.handler(args)
    except Exception as error:
        if args.debug:
            raise
        return _report(error)


def positive_int(text: str) -> int:
    """argparse type: an integer ≥ 1 (argparse turns the ValueError into a usage error, rc 2)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _report(error: Exception) -> int:
    """One line for the operator instead of a traceback: rc 2 for input to fix, 1 for a failure."""
    from medkg_assets.config.loading import ConfigError
    from medkg_assets.search.query import QueryError
    from medkg_assets.storage.pinning import ArtefactSetError

    if isinstance(error, ConfigError | QueryError | ArtefactSetError | FileNotFoundError):
        print(f"medkg: {error}", file=sys.stderr)
        return 2
    print(f"medkg: {type(error).__name__}: {error} (rerun with --debug for the traceback)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
