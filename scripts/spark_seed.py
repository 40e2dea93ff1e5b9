#!/usr/bin/env python3
"""Load the project's seeds into Spark, where `dbt seed` cannot load them faithfully.

Usage::

    SPARK_REMOTE=sc://127.0.0.1:15002 python scripts/spark_seed.py [--demo seeds/demo] [--target spark]

then `dbt build --target spark --exclude resource_type:seed`.

dbt-spark's seed, with the session method, loads an empty CSV cell as the string 'None' or an
empty string instead of null (dbt-labs/dbt-adapters#487): on Spark the demo's missing emails,
phones and click ids would look present, and the reference seed country_calling_codes' missing
trunk prefixes (101 of 245 countries) would be strings; it also inserts row by row, about two
minutes for the demo. This loader reads each CSV with Spark's own reader (an empty cell is null,
as in dbt's other seed loaders), casts the columns to the `column_types` of the seeds' yml
rendered for Spark, and writes one parquet table per seed where dbt would: the reference seeds
(seeds/reference) in the target's schema, the demo seeds (`--demo`, seeds/demo by default;
`--no-demo` leaves them out) in var('tiktok_source_schema'), replacing what is there. The models
are untouched: they read the same relations whichever loader filled them.

The Spark session is the one the dbt profile's target describes (its `server_side_parameters`,
rendered with the same environment): with `spark.remote` (the repository's `spark` target) a
Spark Connect client of the server dbt builds on; without, a local Spark in this process, whose
embedded Derby metastore dbt must not open at the same time.
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


def target_output(target: str) -> dict[str, Any]:
    profiles_dir = Path(os.environ.get("DBT_PROFILES_DIR", Path.home() / ".dbt"))
    profiles = yaml.safe_load((profiles_dir / "profiles.yml").read_text())
    output = profiles["tiktok_outbox"]["outputs"].get(target)
    if not output or output.get("type") != "spark" or output.get("method") != "session":
        sys.exit(f"{profiles_dir / 'profiles.yml'}: target {target!r} is not a spark target with method: session")
    return output


def spark_conf(output: dict[str, Any]) -> dict[str, str]:
    return {key: str(render(value, "spark")) for key, value in output.get("server_side_parameters", {}).items()}


def seed_types(seeds_dir: Path) -> dict[str, dict[str, str]]:
    """Seed name -> column -> Spark type, from the directory's `_*__seeds.yml`."""
    (config_file,) = seeds_dir.glob("_*__seeds.yml")
    config = yaml.safe_load(config_file.read_text())
    return {
        seed["name"]: {column: render(kind, "spark")
                       for column, kind in seed.get("config", {}).get("column_types", {}).items()}
        for seed in config["seeds"]
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--demo", type=Path, default=PROJECT_ROOT / "seeds" / "demo", help="the demo CSVs")
    parser.add_argument("--no-demo", action="store_true", help="load the reference seeds only")
    parser.add_argument("--target", default="spark", help="the dbt profile's spark target (method: session)")
    args = parser.parse_args()
    output = target_output(args.target)
    conf = spark_conf(output)
    schema = str(render(output["schema"], "spark"))
    loads = [(PROJECT_ROOT / "seeds" / "reference", schema),
             (PROJECT_ROOT / "sender" / "src" / "tiktok_sender" / "reference", schema)]
    if not args.no_demo:
        loads.append((args.demo, str(render(project_vars()["tiktok_source_schema"], "spark"))))

    from pyspark.sql import SparkSession  # a JVM starts: only once the arguments are known good
    from pyspark.sql import functions as F  # noqa: N812 (pyspark's own convention)

    # as dbt-spark does: the Spark Connect server of spark.remote, or a local Spark in this process
    remote = "spark.remote" in conf or "SPARK_REMOTE" in os.environ
    builder = SparkSession.builder if remote else SparkSession.builder.enableHiveSupport()
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    try:
        for seeds_dir, schema in loads:
            spark.sql(f"create schema if not exists `{schema}`")
            for name, types in seed_types(seeds_dir).items():
                raw = spark.read.csv(str(seeds_dir / f"{name}.csv"), header=True, inferSchema=False,
                                     multiLine=True, escape='"')
                frame = raw.select(*[F.col(c).cast(types.get(c, "string")).alias(c) for c in raw.columns])
                frame.write.mode("overwrite").format("parquet").saveAsTable(f"`{schema}`.`{name}`")
                print(f"{schema}.{name}: {spark.table(f'`{schema}`.`{name}`').count()} rows")
    finally:
        if not remote:
            spark.stop()


if __name__ == "__main__":
    main()
