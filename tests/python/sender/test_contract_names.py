"""TikTok's names (standard events per source, currencies) live in one place: the CSVs the sender
ships as package data, which dbt loads as seeds from the same files."""

from __future__ import annotations

import csv
from pathlib import Path

import yaml

from tiktok_sender.api import contract

REPO = Path(__file__).resolve().parents[3]
REFERENCE = REPO / "sender" / "src" / "tiktok_sender" / "reference"


def test_dbt_loads_the_senders_files_and_no_copy_of_them():
    project = yaml.safe_load((REPO / "dbt_project.yml").read_text())
    assert "sender/src/tiktok_sender/reference" in project["seed-paths"]
    for name in ("tiktok_standard_events.csv", "tiktok_currencies.csv"):
        assert (REFERENCE / name).is_file()
        assert not list((REPO / "seeds").rglob(name)), f"{name} is copied under seeds/"


def test_the_sender_reads_every_row():
    with (REFERENCE / "tiktok_standard_events.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert sum(len(names) for names in contract.STANDARD_EVENTS.values()) == len(rows) == 77
    assert {s: len(n) for s, n in contract.STANDARD_EVENTS.items()} == {
        "app": 27, "crm": 14, "offline": 14, "web": 22}
    # CRM event sets take the offline names: no TikTok page found lists CRM names of their own
    assert contract.STANDARD_EVENTS["crm"] == contract.STANDARD_EVENTS["offline"]
    assert len(contract.CURRENCIES) == 62 and "USD" in contract.CURRENCIES
