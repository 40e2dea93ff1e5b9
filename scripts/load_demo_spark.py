#!/usr/bin/env python3
"""Load the demo CSVs (seeds/demo) into Spark, where `dbt seed` cannot load them faithfully.

Usage::

    python scripts/load_demo_spark.py [--seeds seeds/demo] [--target spark]

then `dbt build --target spark --vars '{tiktok_load_demo_data: false}'`.

dbt-spark's seed loads an empty CSV cell as an empty string, not as null (dbt-labs/dbt-adapters
#487), so on Spark the demo's missing emails, phones and click ids would look present; it also
inserts row by row, about two minutes for the demo. This loader reads each CSV with Spark's own
reader (an empty cell is null, as in dbt's other seed loaders), casts the columns to the types of
seeds/demo/_demo__seeds.yml rendered for Spark, and writes one parquet table per CSV into
var('tiktok_source_schema'), replacing what is there. The models are untouched: they read the
same sources whichever loader filled them.

The Spark session is the one the dbt profile's target describes (its `server_side_parameters`,
rendered with the same environment), so the tables land in the metastore and warehouse directory
dbt then builds from. The metastore is an embedded Derby database: run this before dbt, not
beside it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import jinja2
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def render(value: Any, target_type: str) -> Any:
    """A profile or seed-config value rendered the way dbt renders it: env_var(), var(), target."""
    if not isinstance(value, str) or "{{" not in value:
        return value

    def env_var(name: str, default: str | None = None) -> str:
        if name in os.environ:
            return os.environ[name]
        if default is None:
            sys.exit(f"environment variable {name} is not set (the dbt profile reads it)")
        return default

    def var(name: str) -> Any:
        return project_vars()[name]

    template = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(value)
    return template.render(env_var=env_var, var=var, target={"type": target_type})


def project_vars() -> dict[str, Any]:
    return yaml.safe_load((PROJECT_ROOT / "dbt_project.yml").read_text())["vars"]


def spark_conf(target: str) -> dict[str, str]:
    profiles_dir = Path(os.environ.get("DBT_PROFILES_DIR", Path.home() / ".dbt"))
    profiles = yaml.safe_load((profiles_dir / "profiles.yml").read_text())
    output = profiles["tiktok_outbox"]["outputs"].get(target)
    if not output or output.get("type") != "spark" or output.get("method") != "session":
        sys.exit(f"{profiles_dir / 'profiles.yml'}: target {target!r} is not a spark target with method: session")
    return {key: str(render(value, "spark")) for key, value in output.get("server_side_parameters", {}).items()}


def seed_types(seeds_dir: Path) -> dict[str, dict[str, str]]:
    config = yaml.safe_load((seeds_dir / "_demo__seeds.yml").read_text())
    return {
        seed["name"]: {column: render(kind, "spark") for column, kind in seed["config"]["column_types"].items()}
        for seed in config["seeds"]
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=Path, default=PROJECT_ROOT / "seeds" / "demo")
    parser.add_argument("--target", default="spark", help="the dbt profile's spark target (method: session)")
    args = parser.parse_args()

    from pyspark.sql import SparkSession  # a JVM starts: only once the arguments are known good
    from pyspark.sql import functions as F  # noqa: N812 (pyspark's own convention)

    conf = spark_conf(args.target)
    # as dbt-spark does: the Spark Connect server of spark.remote, or a local Spark in this process
    remote = "spark.remote" in conf or "SPARK_REMOTE" in os.environ
    builder = SparkSession.builder if remote else SparkSession.builder.enableHiveSupport()
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    schema = render(project_vars()["tiktok_source_schema"], "spark")
    try:
        spark.sql(f"create schema if not exists `{schema}`")
        for name, types in seed_types(args.seeds).items():
            path = args.seeds / f"{name}.csv"
            raw = spark.read.csv(str(path), header=True, inferSchema=False, multiLine=True, escape='"')
            columns = [F.col(c).cast(types.get(c, "string")).alias(c) for c in raw.columns]
            frame = raw.select(*columns)
            frame.write.mode("overwrite").format("parquet").saveAsTable(f"`{schema}`.`{name}`")
            print(f"{schema}.{name}: {spark.table(f'`{schema}`.`{name}`').count()} rows")
    finally:
        if not remote:
            spark.stop()


if __name__ == "__main__":
    main()
