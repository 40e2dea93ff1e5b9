#!/usr/bin/env python3
"""A local Spark with a Spark Connect endpoint: the `spark` target for dbt and `sender push`.

Usage::

    python scripts/spark_server.py [--dir target/spark] [--port 15002] [--catalog hive|in-memory]

then, in another shell, `SPARK_REMOTE=sc://127.0.0.1:15002 dbt build --target spark`.

One Spark driver (local[2], OpenJDK 17, pyspark's own jars) runs in this process with the Spark
Connect plugin listening on 127.0.0.1 only. dbt-spark's session method and the sender are both
Spark Connect clients of it, exactly as they would be of a cluster's Spark Connect server, so
nothing here is specific to running locally. Tables are parquet files under DIR/warehouse; with
`--catalog hive` (the default) their definitions persist in an embedded Derby metastore under
DIR, with `--catalog in-memory` they last as long as the server (the tests' choice: no Derby,
a faster start).

Prints `ready sc://127.0.0.1:PORT` once clients can connect, then serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

# Spark's settings for a small local engine: times in UTC, as the models expect of the session;
# a few shuffle partitions, not the default 200, for data that fits one core.
LOCAL_CONF = {
    "spark.master": "local[2]",
    "spark.driver.memory": "2g",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.shuffle.partitions": "4",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.plugins": "org.apache.spark.sql.connect.SparkConnectPlugin",
    "spark.connect.grpc.binding.address": "127.0.0.1",
}


def conf(directory: Path, port: int, catalog: str) -> dict[str, str]:
    settings = {
        **LOCAL_CONF,
        "spark.connect.grpc.binding.port": str(port),
        "spark.sql.warehouse.dir": str(directory / "warehouse"),
        "spark.sql.catalogImplementation": catalog,
    }
    if catalog == "hive":
        settings["spark.hadoop.javax.jdo.option.ConnectionURL"] = (
            f"jdbc:derby:;databaseName={directory / 'metastore_db'};create=true")
        settings["spark.driver.extraJavaOptions"] = f"-Dderby.system.home={directory}"
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("target/spark"), help="tables and metastore")
    parser.add_argument("--port", type=int, default=15002)
    parser.add_argument("--catalog", choices=("hive", "in-memory"), default="hive")
    args = parser.parse_args()
    directory = args.dir.resolve()
    directory.mkdir(parents=True, exist_ok=True)

    from pyspark.sql import SparkSession  # the JVM starts here

    builder = SparkSession.builder.appName("tiktok-outbox-spark-server")
    for key, value in conf(directory, args.port, args.catalog).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    print(f"ready sc://127.0.0.1:{args.port}", flush=True)
    stop.wait()
    spark.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
