"""`make bench`: load the service under gunicorn with wrk and compare it with a bare Flask route.

For each backend (SQLite always; PostgreSQL when BENCH_DATABASE_URL is set, in a schema of
its own that is dropped afterwards) the driver migrates a fresh database, seeds a client and
pools of users in bulk, starts `gunicorn wsgi:app` with the service's gunicorn.conf.py, and
drives it with wrk from a separate process on 127.0.0.1:

* POST ticket: every request a ticket for a new (seeded) user;
* POST vasco: every request a new extId, two token blocks of 248 bytes;
* GET ticket: walking users that hold a ticket.

The reference, bench/reference_app.py, is served by the same gunicorn settings and driven the
same way, and measured in turns with every scenario (half the scenario, the reference, the
other half), so that a change in the load of a shared machine falls on both alike; each
ratio is taken against the reference run of its own scenario.

With BENCH_SCALE=1, POST ticket also runs on an SQLite database already holding
BENCH_SCALE_CREDENTIALS (1,000,000) ticket credentials, seeded in bulk once and cached in
bench-results/cache/, in turns with the database the other scenarios left behind.

Figures: requests/s, p50 and p99 latency, non-2xx responses (and socket errors), the peak RSS
(VmHWM) of each gunicorn worker, the CPU time the workers spent per request (their own, from
/proc: a cost that the machine's other load moves much less than requests/s), and each one's
ratio to the reference. They are printed, written to bench-results/<timestamp>.json and
appended as a row to BENCHMARKS.md (without the CPU figures, which are in the JSON).

Settings (environment): BENCH_WORKERS (2), BENCH_DURATION (10 s per scenario),
BENCH_WARMUP (2 s per scenario, not measured), BENCH_CONNECTIONS (16), BENCH_THREADS (2),
BENCH_USERS (users seeded per measured POST ticket run, 100000), BENCH_DATABASE_URL,
BENCH_SCALE (0), BENCH_SCALE_CREDENTIALS (1000000), BENCH_LABEL (a note for the
BENCHMARKS.md row), BENCH_SCENARIOS (comma-separated subset of ticket,vasco,get).

Modules (bench/): settings.py (the settings, paths, log line), seeding.py (migrating and
seeding the databases, the scale cache), server.py (gunicorn for the service and the
reference), load.py (wrk runs and measuring), scenarios.py (the scenarios and the order of a
run), report.py (ratios, table, targets, the JSON file and the BENCHMARKS.md row).
"""

from __future__ import annotations

import base64
import os
import shutil
import sys
from datetime import UTC, datetime

from report import complete_report, new_report, print_report, write_report
from scenarios import run_all
from settings import RESULTS, Settings, log


def main() -> int:
    if shutil.which("wrk") is None:
        print("wrk is missing: `apt-get install -y wrk` (make bench does it)", file=sys.stderr)
        return 2
    settings = Settings.from_environment()
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    encryption_key = base64.b64encode(os.urandom(32)).decode()
    report = new_report(settings)
    log(f"load average {report['load_average_before']} on {os.cpu_count()} CPUs")
    figures = run_all(settings, encryption_key)
    complete_report(report, figures)
    result_file = write_report(report, stamp)
    print_report(report, settings, result_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
