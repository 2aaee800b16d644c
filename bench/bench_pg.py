"""bench/run's "pg" benchmark (issue 14, DESIGN §13): the shared queue on PostgreSQL.

bench/bench-pg (C) against a PostgreSQL 15 of its own (tests/pg/with-postgres, with fsync on,
as a real server has it), each figure against a raw libpq program doing the same work in the
same run (bench/bench-pg.c says what each does):

1. claim + fenced end, 100 jobs a claim, 1 and 4 consumer processes: jobs/s, queue / raw;
2. adds of 1 000 jobs a statement: jobs/s, queue / raw;
3. one job added at a time to its claim by an idle consumer: p99, queue / raw;
4. a node holding 1 000 jobs SIGKILLed: to the commit that re-queued the last of them, at the
   default lease (5 s) and renewal period (lease / 3);
5. CPU per job (the consumers' and the server's) with 1, 2 and 3 consumer nodes.

1-5 measure bulkhead's queue layer (daemon/pg-queue.c and its statements); then whole
bulkheadd nodes (bench/bench_pg_daemon.py):

6. one submit of 40 000 noop jobs to 1, 3 and 4 bulkheadd nodes (2 workers × 4 threads
   each): jobs/s from the submit's answer to the last end, against raw claim + fenced end
   with 1 and 4 consumers; CPU per job (nodes and server) with 1 and 3 nodes; and the
   submit itself (`bulkhead submit`, its jobs sleeping so that nothing else runs) against
   raw adds.

Runs alternate between raw and bulkhead; figures are medians. Nothing is asserted.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_pg_daemon  # noqa: E402

CLAIM_JOBS = 20000
DAEMON_JOBS = 40000
SUBMIT_JOBS, SUBMIT_BATCH = 50000, 1000
LATENCY_SAMPLES = 1000
REQUEUE_JOBS = 1000
LEASE_S, RENEW_S = 5.0, 5.0 / 3


def _inner(build, runs, shrink):
    """Runs under with-postgres: every measurement, one JSON object on stdout."""
    exe = os.path.join(build, "bench", "bench-pg")

    def one(*args):
        p = subprocess.run([exe] + [str(a) for a in args], capture_output=True, text=True,
                           timeout=300)
        if p.returncode != 0:
            return {"error": f"bench-pg {' '.join(map(str, args))}: exit {p.returncode}: "
                             + p.stderr.strip()[-300:]}
        return json.loads(p.stdout)

    out = {"claim": {}, "submit": {"raw": [], "queue": []},
           "latency": {"raw": [], "queue": []}, "requeue": [], "nodes": {}}
    for consumers in (1, 4):
        out["claim"][consumers] = {"raw": [], "queue": []}
    for n in (1, 2, 3):
        out["nodes"][n] = []
    out["daemon"] = {1: [], 3: [], 4: []}
    out["daemon_submit"] = []
    for run_i in range(runs):
        for n in (1, 3, 4):
            out["daemon"][n].append(bench_pg_daemon.measure(build, n, DAEMON_JOBS // shrink,
                                                            f"bench_d{n}_{run_i}"))
        out["daemon_submit"].append(bench_pg_daemon.measure(
            build, 1, DAEMON_JOBS // shrink, f"bench_s{run_i}", "builtin:sleep", "ms=600000"))
        for consumers in (1, 4):
            for mode in ("raw", "queue"):
                out["claim"][consumers][mode].append(
                    one("claim-end", mode, consumers, CLAIM_JOBS // shrink))
        for n in (1, 2, 3):
            out["nodes"][n].append(one("claim-end", "queue", n, CLAIM_JOBS // shrink))
        for mode in ("raw", "queue"):
            out["submit"][mode].append(one("submit", mode, SUBMIT_JOBS // shrink, SUBMIT_BATCH))
            out["latency"][mode].append(one("latency", mode, LATENCY_SAMPLES // shrink))
        out["requeue"].append(one("requeue", REQUEUE_JOBS // shrink))
    json.dump(out, sys.stdout)


def run(ctx, h):
    cfg = ctx["cfg"]
    runs, shrink = cfg["durable_runs"], cfg["durable_shrink"]
    summary, notes = [], []
    wrapper = os.path.join(h.ROOT, "tests", "pg", "with-postgres")
    env = dict(os.environ, BULKHEAD_PG_FSYNC="on")
    h.progress(f"  {runs} runs of each, under tests/pg/with-postgres")
    p = subprocess.run([wrapper, sys.executable, os.path.abspath(__file__), "--inner",
                        ctx["build"], str(runs), str(shrink)], capture_output=True, text=True,
                       env=env, timeout=h.CMD_TIMEOUT * 4)
    if p.returncode == 77:
        notes.append("not measured: " + p.stderr.strip()[-300:])
        return "Not measured: no PostgreSQL server could be started here.\n", [], notes
    if p.returncode != 0:
        h.failed(ctx, notes, f"with-postgres: exit {p.returncode}: {p.stderr.strip()[-300:]}")
        return "Not measured.\n", [], notes
    data = json.loads(p.stdout)

    def ok(rs, what):
        good = [r for r in rs if "error" not in r]
        for r in rs:
            if "error" in r:
                h.failed(ctx, notes, f"{what}: {r['error']}")
        return good

    def med(rs, key):
        return statistics.median(r[key] for r in rs) if rs else None

    def ratio(a, b):
        return a / b if a and b else None

    body = ("bench/bench-pg against a PostgreSQL 15 of its own (tests/pg/with-postgres, "
            "fsync on, a Unix socket). **raw**: blocking libpq, prepared statements, the claim "
            "as one `UPDATE ... "
            "FOR UPDATE SKIP LOCKED ... RETURNING` of 100, the ends as one fenced `UPDATE` "
            "from arrays. **queue**: bulkhead's `daemon/pg-queue.c` on an sd-event loop (the "
            "statements of `daemon/pg-jobs.c`, prepared once per connection, leases renewed, "
            "flushes once per pass): the queue layer alone; whole bulkheadd nodes below. "
            f"Medians of {runs} runs each, alternating.\n\n")
    rows = []
    for consumers in ("1", "4"):
        raw = ok(data["claim"][consumers]["raw"], f"claim-end raw {consumers}")
        q = ok(data["claim"][consumers]["queue"], f"claim-end queue {consumers}")
        r = ratio(med(q, "jobs_per_s"), med(raw, "jobs_per_s"))
        rows.append([f"claim + fenced end, {consumers} consumer(s)",
                     h.fmt_num(med(raw, "jobs_per_s")), h.fmt_num(med(q, "jobs_per_s")),
                     h.fmt_ratio(r)])
        summary.append(("pg", f"claim+end, {consumers} consumer(s): queue / raw libpq jobs/s",
                        h.fmt_ratio(r), "≥ 0.7", h.yes_no(r is not None and r >= 0.7)))
    raw = ok(data["submit"]["raw"], "submit raw")
    q = ok(data["submit"]["queue"], "submit queue")
    r = ratio(med(q, "jobs_per_s"), med(raw, "jobs_per_s"))
    rows.append([f"adds of {SUBMIT_BATCH}", h.fmt_num(med(raw, "jobs_per_s")),
                 h.fmt_num(med(q, "jobs_per_s")), h.fmt_ratio(r)])
    summary.append(("pg", "batched submit: queue / raw libpq jobs/s", h.fmt_ratio(r), "≥ 0.8",
                    h.yes_no(r is not None and r >= 0.8)))
    body += h.table(["what", "raw jobs/s", "queue jobs/s", "ratio"], rows, "lrrr")

    raw = ok(data["latency"]["raw"], "latency raw")
    q = ok(data["latency"]["queue"], "latency queue")
    r = ratio(med(q, "p99_us"), med(raw, "p99_us"))
    body += ("\n## Submit to claimed\n\nOne job added at a time (its NOTIFY in the same "
             "statement), 2 ms apart, to the moment an idle consumer's claim returns it.\n\n")
    body += h.table(["side", "p50 µs", "p99 µs"],
                    [["raw", h.fmt_num(med(raw, "p50_us")), h.fmt_num(med(raw, "p99_us"))],
                     ["queue", h.fmt_num(med(q, "p50_us")), h.fmt_num(med(q, "p99_us"))]],
                    "lrr")
    summary.append(("pg", "submit → claimed p99: queue / raw libpq", h.fmt_ratio(r), "≤ 2",
                    h.yes_no(r is not None and r <= 2)))

    rq = ok(data["requeue"], "requeue")
    secs = med(rq, "seconds")
    target = LEASE_S + RENEW_S + 1
    body += (f"\n## A dead node's jobs\n\nA node holding {REQUEUE_JOBS // shrink} jobs "
             "(renewing its leases) is SIGKILLed; another node's re-queue of the last of them "
             f"commits this long after: {secs:.2f} s (median; lease {LEASE_S:.0f} s, renewal "
             f"every {RENEW_S:.2f} s).\n" if secs is not None else "")
    summary.append(("pg", "dead node's jobs re-queued", f"{secs:.2f} s" if secs else "—",
                    f"≤ {target:.2f} s", h.yes_no(secs is not None and secs <= target)))

    rows, per = [], {}
    for n in ("1", "2", "3"):
        rs = ok(data["nodes"][n], f"nodes {n}")
        cpu = (statistics.median((r["client_cpu_s"] + r["server_cpu_s"]) * 1e6 / r["jobs"]
                                 for r in rs) if rs else None)
        per[n] = cpu
        rows.append([n, h.fmt_num(med(rs, "jobs_per_s")), h.fmt_num(cpu, 1)])
    r = ratio(per["3"], per["1"])
    body += ("\n## Per-job cost with 1 to 3 nodes\n\nclaim + fenced end of "
             f"{CLAIM_JOBS // shrink} jobs by N queue nodes; CPU of the nodes and of every "
             "server process (the server's background processes included) per job.\n\n")
    body += h.table(["nodes", "jobs/s", "CPU µs per job"], rows, "rrr")
    summary.append(("pg", "per-job CPU, 3 nodes / 1 node (flat: ≤ 1.25)", h.fmt_ratio(r),
                    "≤ 1.25", h.yes_no(r is not None and r <= 1.25)))

    d = {n: ok(data["daemon"][n], f"bulkheadd x{n}") for n in ("1", "3", "4")}
    raw_claim = {c: ok(data["claim"][c]["raw"], f"claim-end raw {c}") for c in ("1", "4")}
    raw_add = ok(data["submit"]["raw"], "submit raw")
    body += ("\n## Through bulkheadd\n\nOne `bulkhead submit` of "
             f"{DAEMON_JOBS // shrink} noop jobs to the first of N bulkheadd nodes "
             f"({bench_pg_daemon.WORKERS} workers × {bench_pg_daemon.THREADS} threads each, "
             "`store = postgresql:`): jobs/s from the submit's answer (every job committed) "
             "to the last end in the table; the submit's own jobs/s; CPU per job of the "
             "nodes (masters, workers) and of the server over that time. Raw: the same "
             "run's claim + fenced end and adds above.\n\n")
    rows = []
    for n in ("1", "3", "4"):
        rows.append([n, h.fmt_num(med(d[n], "jobs_per_s")),
                     h.fmt_num(med(d[n], "submit_jobs_per_s")),
                     h.fmt_num(med(d[n], "cpu_us_per_job"), 1),
                     h.fmt_num(med(d[n], "server_us_per_job"), 1)])
    body += h.table(["nodes", "jobs/s", "submit jobs/s", "CPU µs/job", "of it server"],
                    rows, "rrrrr")
    for n, c in (("1", "1"), ("4", "4")):
        r = ratio(med(d[n], "jobs_per_s"), med(raw_claim[c], "jobs_per_s"))
        summary.append(("pg", f"claim+end through {n} bulkheadd node(s) / raw libpq with {c} "
                        "consumer(s)", h.fmt_ratio(r), "≥ 0.7",
                        h.yes_no(r is not None and r >= 0.7)))
    alone = ok(data["daemon_submit"], "bulkheadd submit alone")
    body += (f"\nThe submit alone (its jobs sleep: the workers take a window each and wait): "
             f"{h.fmt_num(med(alone, 'submit_jobs_per_s'))} jobs/s, against raw adds of "
             f"{SUBMIT_BATCH} a statement {h.fmt_num(med(raw_add, 'jobs_per_s'))} jobs/s; "
             "above, the same submit while the nodes run the jobs it adds.\n")
    r = ratio(med(alone, "submit_jobs_per_s"), med(raw_add, "jobs_per_s"))
    summary.append(("pg", "bulkhead submit (the CLI, one node) / raw libpq adds, jobs/s",
                    h.fmt_ratio(r), "≥ 0.8", h.yes_no(r is not None and r >= 0.8)))
    r = ratio(med(d["3"], "cpu_us_per_job"), med(d["1"], "cpu_us_per_job"))
    summary.append(("pg", "per-job CPU through bulkheadd, 3 nodes / 1 node", h.fmt_ratio(r),
                    "≤ 1.25", h.yes_no(r is not None and r <= 1.25)))
    return body, summary, notes


if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[1] == "--inner":
    _inner(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
