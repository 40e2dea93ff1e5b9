"""`tiktok-emulator` (`python -m tiktok_emulator`): parse the command line, serve until SIGINT or
SIGTERM, map a configuration error to its exit code."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from tiktok_emulator import serve_forever
from tiktok_emulator.faults import FaultSpec
from tiktok_sender.errors import SenderError
from tiktok_sender.logs import setup_logging
from tiktok_sender.settings import Secret, redact

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def emulator(
    port: Annotated[int, typer.Option(envvar="TIKTOK_EMULATOR_PORT", min=0, max=65535,
                                      help="Port (0 picks a free one).")] = 8765,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    token: Annotated[
        str | None,
        typer.Option(envvar="TIKTOK_EMULATOR_TOKEN", show_default=False,
                     help="The only access token accepted (else any non-empty token)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the fault injection.")] = 0,
    faults: Annotated[
        str | None, typer.Option(help="Faults to inject, e.g. 'throttle=0.1,http5xx=0.05*3'.")
    ] = None,
    lean: Annotated[
        bool,
        typer.Option("--lean", help="Benchmark mode: validate each request's envelope and first "
                     "event only, keep dedup keys but not the events (/_emulator/events is empty)."),
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug log lines.")] = False,
) -> None:
    """Run a local stand-in for the TikTok Events API until interrupted."""
    secret = Secret(token) if token else None
    setup_logging(verbose, secret, logger="tiktok_emulator")

    def announce(url: str) -> None:
        typer.echo(f"emulator listening on {url}")
        sys.stdout.flush()

    try:
        spec = FaultSpec.parse(faults or "")
        serve_forever(host=host, port=port, token=secret, seed=seed, faults=spec,
                      on_ready=announce, lean=lean)
    except SenderError as exc:
        typer.echo(f"error: {redact(str(exc), secret)}", err=True)
        raise typer.Exit(exc.exit_code) from None
