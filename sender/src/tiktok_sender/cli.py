"""Command line entry point (filled in by the sender)."""

import typer

app = typer.Typer(help="Deliver the TikTok events outbox.", no_args_is_help=True)


@app.command()
def version() -> None:
    """Print the sender version."""
    from tiktok_sender import __version__

    typer.echo(__version__)
