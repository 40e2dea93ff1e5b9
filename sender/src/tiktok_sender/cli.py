"""`sender`: parse the command line, call the package, map its exceptions to exit codes."""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import click
import typer

from tiktok_sender import __version__
from tiktok_sender.api.contract import DEFAULT_API_URL, MAX_BATCH_SIZE
from tiktok_sender.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, SenderError
from tiktok_sender.logs import setup_logging
from tiktok_sender.settings import (
    DEFAULT_DUCKDB_MEMORY_LIMIT,
    PushSettings,
    Secret,
    load_token,
    redact,
)
from tiktok_sender.shard import Shard

app = typer.Typer(
    help="Deliver the tiktok_events_outbox table to the TikTok Events API, with receipts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
T = TypeVar("T")


def _guard(fn: Callable[[], T], secrets: Sequence[Secret | None] = ()) -> T:
    """Run `fn`; a SenderError becomes one line on stderr and its exit code, no traceback. Any
    other exception is a bug: one line too (exit 70), the traceback only with --verbose. The
    `secrets` (the token, the warehouse password; a list `fn` may add to) are redacted from what
    is printed."""
    try:
        return fn()
    except SenderError as exc:
        typer.echo(f"error: {redact(str(exc), *secrets)}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except (click.exceptions.Exit, click.exceptions.ClickException):
        raise
    except Exception as exc:  # noqa: BLE001  (the last resort: a bug still prints one line)
        if logging.getLogger("tiktok_sender").isEnabledFor(logging.DEBUG):
            trace = "".join(traceback.format_exception(exc))
            typer.echo(redact(trace, *secrets).rstrip(), err=True)
        detail = redact(str(exc).strip().splitlines()[0] if str(exc).strip() else "", *secrets)
        typer.echo(
            f"error: internal error ({exc.__class__.__name__}: {detail[:300]}); "
            "run with --verbose for the traceback and report it",
            err=True,
        )
        raise typer.Exit(EXIT_INTERNAL) from None


def _version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    profiles_dir: Annotated[
        Path | None,
        typer.Option("--profiles-dir", envvar="DBT_PROFILES_DIR",
                     help="Directory of profiles.yml (else ./profiles.yml, else ~/.dbt)."),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option("--target", "-t", envvar="DBT_TARGET", help="dbt target (else the profile's)."),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option("--profile", help="dbt profile (else `profile:` of ./dbt_project.yml)."),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug log lines.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Deliver the tiktok_events_outbox table to the TikTok Events API, with receipts."""
    ctx.obj = {"profiles_dir": profiles_dir, "target": target, "profile": profile, "verbose": verbose}


def _target(ctx: typer.Context, secrets: list[Secret | None] | None = None) -> Any:
    """The resolved dbt target; its secrets (a postgres password) are added to `secrets` and to
    what log lines redact."""
    from tiktok_sender.profiles import load_target

    target = load_target(
        profiles_dir_flag=ctx.obj["profiles_dir"],
        target_flag=ctx.obj["target"],
        profile_flag=ctx.obj["profile"],
    )
    if secrets is not None and target.secrets():
        secrets.extend(target.secrets())
        setup_logging(ctx.obj["verbose"], *secrets)
    return target


def _use_lean_arrow_pool() -> None:
    """Arrow's jemalloc pool, which hands freed pages back to the system within about a second,
    instead of its default (mimalloc), which kept about 40 MB more at the peak of a push of a
    million events (README "Performance"). ARROW_DEFAULT_MEMORY_POOL, when set, chooses instead;
    a pyarrow built without jemalloc keeps its default."""
    import pyarrow as pa

    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return
    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
    except NotImplementedError:
        return


def _parse_shard(value: str | None) -> str | None:
    """Reject a bad --shard as a usage error (exit 2) before anything runs."""
    if value is not None:
        try:
            Shard.parse(value)
        except SenderError as exc:
            raise typer.BadParameter(str(exc).removeprefix("--shard ")) from None
    return value


@app.command()
def push(
    ctx: typer.Context,
    api_url: Annotated[
        str, typer.Option(envvar="TIKTOK_API_URL", help="Events API track endpoint.")
    ] = DEFAULT_API_URL,
    token_file: Annotated[
        Path | None,
        typer.Option(envvar="TIKTOK_ACCESS_TOKEN_FILE",
                     help="File holding the access token (else $TIKTOK_ACCESS_TOKEN)."),
    ] = None,
    test_event_code: Annotated[
        str | None,
        typer.Option(envvar="TIKTOK_TEST_EVENT_CODE", help="Send to Test Events with this code."),
    ] = None,
    batch_size: Annotated[
        int,
        typer.Option(envvar="TIKTOK_BATCH_SIZE", min=1, max=MAX_BATCH_SIZE, help="Events per request."),
    ] = MAX_BATCH_SIZE,
    concurrency: Annotated[
        int, typer.Option(envvar="TIKTOK_CONCURRENCY", min=1, max=256, help="Requests in flight.")
    ] = 4,
    rate_limit: Annotated[
        float | None,
        typer.Option(envvar="TIKTOK_RATE_LIMIT", min=0.001, help="Max requests per second."),
    ] = None,
    max_attempts: Annotated[
        int, typer.Option(envvar="TIKTOK_MAX_ATTEMPTS", min=1, help="Sends per event for transient errors.")
    ] = 5,
    backoff_base: Annotated[
        float, typer.Option(envvar="TIKTOK_BACKOFF_BASE", min=0, help="First backoff, seconds.")
    ] = 0.5,
    backoff_max: Annotated[
        float, typer.Option(envvar="TIKTOK_BACKOFF_MAX", min=0, help="Longest backoff, seconds.")
    ] = 30.0,
    timeout: Annotated[
        float, typer.Option(envvar="TIKTOK_TIMEOUT", min=0.001, help="Read timeout, seconds.")
    ] = 30.0,
    connect_timeout: Annotated[
        float, typer.Option(envvar="TIKTOK_CONNECT_TIMEOUT", min=0.001, help="Connect timeout, seconds.")
    ] = 10.0,
    max_age_days: Annotated[
        float,
        typer.Option(envvar="TIKTOK_MAX_EVENT_AGE_DAYS", min=0.001,
                     help="Older events get an `expired` receipt instead of being sent."),
    ] = 28.0,
    max_failure_rate: Annotated[
        float,
        typer.Option(envvar="TIKTOK_MAX_FAILURE_RATE", min=0.0, max=1.0,
                     help="Share of rejected + failed events tolerated before exit code 1."),
    ] = 0.0,
    retry_rejected: Annotated[
        bool, typer.Option("--retry-rejected", help="Send events with a `rejected` receipt again.")
    ] = False,
    rescan: Annotated[
        bool, typer.Option("--rescan", help="Read every outbox row against every receipt, not only "
                           "what is new since the last complete run and the events still open.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Build and validate payloads; send and record nothing.")
    ] = False,
    dump: Annotated[
        Path | None, typer.Option(help="Write every request body to this file (JSON Lines).")
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=0, help="Send at most N pending events (oldest first).")
    ] = None,
    allow_insecure_http: Annotated[
        bool,
        typer.Option("--allow-insecure-http", envvar="TIKTOK_ALLOW_INSECURE_HTTP",
                     help="Allow http:// to a non-loopback host."),
    ] = False,
    lock_timeout: Annotated[
        float,
        typer.Option(envvar="TIKTOK_LOCK_TIMEOUT", min=0,
                     help="Seconds to wait while another run holds the warehouse (else exit 5)."),
    ] = 0.0,
    read_chunk: Annotated[
        int,
        typer.Option(envvar="TIKTOK_READ_CHUNK", min=256, max=1_000_000,
                     help="Outbox rows read and encoded at a time: more is faster and uses more "
                          "memory (2048: about 330 MB peak, 8192: about 400 MB)."),
    ] = 2048,
    shard: Annotated[
        str | None,
        typer.Option(envvar="TIKTOK_SHARD", callback=_parse_shard, metavar="K/N",
                     help="Send only shard K of N (1-based): events whose first 8 hex digits of "
                          "sha256(event_id), mod N, equal K-1. N runs 1/N..N/N send everything "
                          "once."),
    ] = None,
    duckdb_memory_limit: Annotated[
        str,
        typer.Option(envvar="TIKTOK_DUCKDB_MEMORY_LIMIT",
                     help="DuckDB targets: the warehouse's memory limit for the run (a size such "
                          "as 512MB or 2GB). Too low for the delivery history fails the run."),
    ] = DEFAULT_DUCKDB_MEMORY_LIMIT,
    proxy: Annotated[
        str | None,
        typer.Option(envvar="TIKTOK_PROXY",
                     help="Send the API requests through this http(s) proxy. Without it (or "
                          "--use-env-proxy) the sender connects directly and ignores HTTPS_PROXY."),
    ] = None,
    use_env_proxy: Annotated[
        bool,
        typer.Option("--use-env-proxy", envvar="TIKTOK_USE_ENV_PROXY",
                     help="Use HTTPS_PROXY / NO_PROXY (and SSL_CERT_FILE / SSL_CERT_DIR) from the "
                          "environment for the API requests."),
    ] = False,
    clock_start: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"],
                     help="Replay: start the run's clock at this past UTC instant, for demos and "
                          "tests that replay time. Receipts, the run row and event ages follow it; "
                          "the run's settings record it. Never in production."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Send every outbox event that has no terminal receipt yet, and record receipts."""
    from tiktok_sender.console import render_run
    from tiktok_sender.delivery.progress import progress_for
    from tiktok_sender.delivery.run import Delivery
    from tiktok_sender.warehouse import open_warehouse

    _use_lean_arrow_pool()
    token = _guard(lambda: load_token(os.environ.get("TIKTOK_ACCESS_TOKEN"), token_file))
    secrets: list[Secret | None] = [token]
    setup_logging(ctx.obj["verbose"], *secrets)

    def build() -> Delivery:
        settings = PushSettings(
            api_url=api_url,
            token=token,
            test_event_code=test_event_code,
            batch_size=batch_size,
            concurrency=concurrency,
            rate_limit=rate_limit,
            max_attempts=max_attempts,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            connect_timeout=connect_timeout,
            read_timeout=timeout,
            max_age_days=max_age_days,
            max_failure_rate=max_failure_rate,
            retry_rejected=retry_rejected,
            rescan=rescan,
            dry_run=dry_run,
            limit=limit,
            dump=dump,
            allow_insecure_http=allow_insecure_http,
            lock_timeout=lock_timeout,
            shard=Shard.parse(shard) if shard is not None else None,
            read_chunk_rows=read_chunk,
            duckdb_memory_limit=duckdb_memory_limit,
            proxy=proxy,
            use_env_proxy=use_env_proxy,
            clock_start=clock_start,
        )
        target = _target(ctx, secrets)
        return Delivery(
            settings,
            lambda abort: open_warehouse(
                target, lock_timeout=settings.lock_timeout, abort=abort, shard=settings.shard,
                memory_limit=settings.duckdb_memory_limit,
            ),
            progress=progress_for(sys.stderr),
        )

    delivery = _guard(build, secrets)
    result = _guard(delivery.run, secrets)
    typer.echo(redact(render_run(result, as_json=as_json), *secrets))
    if result.error is not None:
        typer.echo(f"error: {redact(str(result.error), *secrets)}", err=True)
    raise typer.Exit(result.exit_code)


@app.command()
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """Delivery counts, the last run, top errors, and the audit figures once `dbt build` made them."""
    from tiktok_sender.audit.text import audit_json, audit_section
    from tiktok_sender.console import render_json, render_status, status_dict
    from tiktok_sender.warehouse import open_warehouse

    setup_logging(ctx.obj["verbose"])
    secrets: list[Secret | None] = []

    def report() -> str:
        target = _target(ctx, secrets)
        warehouse = open_warehouse(target, read_only=True)
        try:
            state = warehouse.status()
        finally:
            warehouse.close()
        if as_json:
            return render_json({**status_dict(state), "audit": audit_json(target)})
        return render_status(state, as_json=False) + "\n\n" + audit_section(target)

    typer.echo(_guard(report, secrets))


@app.command("report")
def report_command(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write.")] = Path("report.html"),
) -> None:
    """Write the audit report: one self-contained HTML file with charts that opens offline."""
    from tiktok_sender.audit.report import write_report

    setup_logging(ctx.obj["verbose"])
    secrets: list[Secret | None] = []
    path = _guard(lambda: write_report(_target(ctx, secrets), out), secrets)
    typer.echo(f"report written to {path}")
