"""`python -m tiktok_emulator`: the same command as `tiktok-emulator`, without its console script."""

from tiktok_emulator.cli import app

app(prog_name="tiktok-emulator")
