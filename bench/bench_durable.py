"""bench/run's "durable" benchmark (issue 13, DESIGN §12): bulkheadd's SQLite store.

1. Durable submit + end through the control socket, against a raw SQLite group-commit server
   (bench/bench-durable.c raw-server) with the same clients (bench-durable clients): 1 × 1,
   64 × 1 and 16 × 16 clients × requests in flight, one job per request. Figures: jobs/s
   (first request to the reply that says every job has ended: a `wait` for bulkheadd, a
   `sync` after the last end's commit for the raw server), ack latency p50/p99, and jobs per
   commit (bulkheadd: `status` store.commits before and after; raw: its own count).
2. 100 µs jobs (builtin:spin us=100) with the SQLite store against `store = memory`.
3. A restart on a store of 1 000 000 jobs of which 100 000 have not ended: spawn of the new
   bulkheadd to the first job it starts (that job's started_at), after a SIGKILL.

Runs alternate between the two sides of each comparison; figures are medians. Nothing is
asserted: targets are reported as met or missed.
"""
import json
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time

REQUEST = '{"command":"submit","pool":"main","run":"builtin:noop","count":1}'
SHAPES = [("1 × 1", 1, 1, 3000), ("64 × 1", 64, 1, 30000), ("16 × 16", 16, 16, 60000)]
POOL = dict(workers=2, threads=4)
SPIN_JOBS = 20000
BIG_TOTAL, BIG_UNFINISHED = 1000000, 100000


def _status(h, d):
    rc, out, err, _ = h.run_cmd([os.path.join(d.build, "bulkhead"), "status", "--json",
                                 "--socket", d.sock_path], env=d.env)
    return json.loads(out) if rc == 0 else None


def _clients(h, ctx, sock, clients, inflight, total, final):
    exe = os.path.join(ctx["build"], "bench", "bench-durable")
    rc, out, err, _ = h.run_cmd([exe, "clients", sock, str(clients), str(inflight), str(total),
                                 REQUEST, final])
    if rc != 0:
        return None, f"bench-durable clients: exit {rc}: {err.strip()[-300:]}"
    return json.loads(out), None


def _raw_run(h, ctx, clients, inflight, total):
    exe = os.path.join(ctx["build"], "bench", "bench-durable")
    d = tempfile.mkdtemp(prefix="raw-", dir=ctx["tmp"])
    sock, db = os.path.join(d, "raw.sock"), os.path.join(d, "raw.db")
    p = subprocess.Popen([exe, "raw-server", sock, db], stdout=subprocess.PIPE, text=True,
                         stderr=subprocess.PIPE)
    try:
        if p.stdout.readline().strip() != "ready":
            return None, "raw-server did not start: " + p.stderr.read()[-300:]
        r, err = _clients(h, ctx, sock, clients, inflight, total, '{"command":"sync"}')
        p.send_signal(signal.SIGTERM)
        out, e = p.communicate(timeout=60)
        if r is None:
            return None, err
        stats = json.loads(out.strip().splitlines()[-1])
        r["commits"] = stats["commits"]
        return r, None
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        shutil.rmtree(d, ignore_errors=True)


def _daemon(h, ctx, **kw):
    d = h.Daemon(ctx["build"], POOL["workers"], POOL["threads"], ctx["tmp"], **kw)
    d.build = ctx["build"]
    if d.wait_for("READY=1", 60) is None:
        err = d.stderr_tail()
        d.close()
        return None, f"bulkheadd did not get ready: {err}"
    return d, None


def _bulkheadd_run(h, ctx, clients, inflight, total):
    d, err = _daemon(h, ctx)
    if d is None:
        return None, err
    try:
        s0 = _status(h, d)
        r, err = _clients(h, ctx, d.sock_path, clients, inflight, total,
                          '{"command":"wait","group":"noop@1"}')
        s1 = _status(h, d)
        if r is None:
            return None, err
        if not s0 or not s1:
            return None, "status failed"
        r["commits"] = s1["store"]["commits"] - s0["store"]["commits"]
        return r, None
    finally:
        d.stop()
        d.close()


def _spin_run(h, ctx, store):
    d, err = _daemon(h, ctx, store=store)
    if d is None:
        return None, err
    try:
        n = SPIN_JOBS // ctx["cfg"]["durable_shrink"]
        cli = os.path.join(ctx["build"], "bulkhead")
        t0 = time.monotonic()
        rc, out, err, _ = h.run_cmd([cli, "submit", "--socket", d.sock_path, "--pool", "main",
                                     "--run", "builtin:spin", "--arg", "us=100", "--count",
                                     str(n)], env=d.env, stdout=subprocess.DEVNULL)
        if rc != 0:
            return None, f"submit: exit {rc}: {err.strip()[-200:]}"
        rc, _, err, _ = h.run_cmd([cli, "wait", "--socket", d.sock_path, "--group", "spin@1"],
                                  env=d.env, stdout=subprocess.DEVNULL)
        if rc != 0:
            return None, f"wait: exit {rc}: {err.strip()[-200:]}"
        return n / (time.monotonic() - t0), None
    finally:
        d.stop()
        d.close()


def _restart(h, ctx, notes):
    """Builds the store, kills its daemon, and times the next one to its first start."""
    shrink = ctx["cfg"]["durable_shrink"]
    total, unfinished = BIG_TOTAL // shrink, BIG_UNFINISHED // shrink
    state = tempfile.mkdtemp(prefix="big-", dir=ctx["tmp"])
    extra = "[pool hold]\nworkers = 1\nthreads = 1\n"
    sup = f"keep_ended = {total}\n"
    cli = os.path.join(ctx["build"], "bulkhead")
    res = {"total": total, "unfinished": unfinished}
    d, err = _daemon(h, ctx, state_dir=state, extra=extra, supervisor=sup)
    if d is None:
        return None, err
    try:
        done = total - unfinished
        while done > 0:
            n = min(done, 100000)
            rc, _, err, _ = h.run_cmd([cli, "submit", "--socket", d.sock_path, "--pool", "main",
                                       "--run", "builtin:noop", "--count", str(n)], env=d.env,
                                      stdout=subprocess.DEVNULL)
            if rc != 0:
                return None, f"submit: exit {rc}: {err.strip()[-200:]}"
            done -= n
        rc, _, err, _ = h.run_cmd([cli, "wait", "--socket", d.sock_path, "--group", "noop@1"],
                                  env=d.env, stdout=subprocess.DEVNULL)
        if rc != 0:
            return None, f"wait: exit {rc}: {err.strip()[-200:]}"
        rc, _, err, _ = h.run_cmd([cli, "submit", "--socket", d.sock_path, "--pool", "hold",
                                   "--run", "builtin:sleep", "--arg", "ms=600000", "--count",
                                   str(unfinished)], env=d.env, stdout=subprocess.DEVNULL)
        if rc != 0:
            return None, f"submit: exit {rc}: {err.strip()[-200:]}"
        st = _status(h, d)
        res["before"] = st["jobs"] if st else None
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait()
    finally:
        d.close()
    db = os.path.join(state, "jobs.db")
    res["file_mb"] = sum(os.path.getsize(p) for p in (db, db + "-wal") if os.path.exists(p)) / 2**20
    wall0 = time.time()
    d, err = _daemon(h, ctx, state_dir=state, extra=extra, supervisor=sup)
    if d is None:
        return None, err
    try:
        res["ready_s"] = time.monotonic() - d.t0
        deadline = time.monotonic() + 60
        first = None
        while first is None and time.monotonic() < deadline:
            rc, out, err, _ = h.run_cmd([cli, "jobs", "--socket", d.sock_path, "--state",
                                         "running", "--limit", "1", "--json"], env=d.env)
            if rc == 0:
                jobs = json.loads(out)["jobs"]
                if jobs and jobs[0].get("started_at", 0) >= wall0:
                    first = jobs[0]["started_at"] - wall0
            if first is None:
                d.wait_for(None, 0.02)  # takes in notify messages; the wait is a poll's
        res["first_start_s"] = first
        st = _status(h, d)
        res["after"] = st["jobs"] if st else None
        s = h.proc_status(d.proc.pid)
        res["rssanon_kb"] = h.kb(s.get("RssAnon"))
    finally:
        d.stop()
        d.close()
        shutil.rmtree(state, ignore_errors=True)
    return res, None


def run(ctx, h):
    cfg = ctx["cfg"]
    runs, shrink = cfg["durable_runs"], cfg["durable_shrink"]
    summary, notes, rows = [], [], []
    for label, clients, inflight, total in SHAPES:
        total = max(total // shrink, clients * inflight)
        raw, bh = [], []
        for i in range(runs):
            h.progress(f"  {label}: run {i + 1} of {runs}")
            r, err = _raw_run(h, ctx, clients, inflight, total)
            if r is None:
                h.failed(ctx, notes, f"{label}, raw: {err}")
            else:
                raw.append(r)
            r, err = _bulkheadd_run(h, ctx, clients, inflight, total)
            if r is None:
                h.failed(ctx, notes, f"{label}, bulkheadd: {err}")
            else:
                bh.append(r)

        def med(rs, f):
            return statistics.median(f(r) for r in rs) if rs else None
        rate = lambda r: r["acked"] / r["seconds"]
        per_commit = lambda r: r["acked"] / r["commits"] if r["commits"] else None
        raw_rate, bh_rate = med(raw, rate), med(bh, rate)
        raw_p99, bh_p99 = med(raw, lambda r: r["p99_us"]), med(bh, lambda r: r["p99_us"])
        bh_pc, raw_pc = med(bh, per_commit), med(raw, per_commit)
        ratio = bh_rate / raw_rate if raw_rate and bh_rate else None
        p99_ratio = bh_p99 / raw_p99 if raw_p99 and bh_p99 else None
        in_flight = clients * inflight
        rows.append([label, total, h.fmt_num(raw_rate), h.fmt_num(bh_rate), h.fmt_ratio(ratio),
                     h.fmt_num(med(raw, lambda r: r["p50_us"])),
                     h.fmt_num(med(bh, lambda r: r["p50_us"])), h.fmt_num(raw_p99),
                     h.fmt_num(bh_p99), h.fmt_ratio(p99_ratio), h.fmt_num(raw_pc, 1),
                     h.fmt_num(bh_pc, 1)])
        summary.append(("durable", f"submit+end {label}: bulkheadd / raw SQLite jobs/s",
                        h.fmt_ratio(ratio), "≥ 0.8", h.yes_no(ratio is not None and ratio >= 0.8)))
        summary.append(("durable", f"submit+end {label}: ack p99 bulkheadd / raw",
                        h.fmt_ratio(p99_ratio), "≤ 2",
                        h.yes_no(p99_ratio is not None and p99_ratio <= 2)))
        if in_flight > 1:
            share = bh_pc / in_flight if bh_pc else None
            summary.append(("durable", f"submit+end {label}: jobs per commit / in flight",
                            h.fmt_ratio(share), "≥ 0.8",
                            h.yes_no(share is not None and share >= 0.8)))

    mem, sq = [], []
    for i in range(runs):
        h.progress(f"  spin 100 µs: run {i + 1} of {runs}")
        for store, acc in (("memory", mem), (None, sq)):
            r, err = _spin_run(h, ctx, store)
            if r is None:
                h.failed(ctx, notes, f"spin 100 µs, store {store or 'sqlite'}: {err}")
            else:
                acc.append(r)
    mem_rate = statistics.median(mem) if mem else None
    sq_rate = statistics.median(sq) if sq else None
    spin_ratio = sq_rate / mem_rate if mem_rate and sq_rate else None
    summary.append(("durable", "100 µs jobs: SQLite store / memory jobs/s",
                    h.fmt_ratio(spin_ratio), "≥ 0.95",
                    h.yes_no(spin_ratio is not None and spin_ratio >= 0.95)))

    h.progress(f"  restart on {BIG_TOTAL // shrink} jobs, {BIG_UNFINISHED // shrink} unfinished")
    big, err = _restart(h, ctx, notes)
    if big is None:
        h.failed(ctx, notes, f"restart: {err}")
        big = {}
    first = big.get("first_start_s")
    summary.append(("durable", f"restart, {BIG_UNFINISHED // shrink} unfinished of "
                    f"{BIG_TOTAL // shrink}: spawn → first job started",
                    f"{first:.3f} s" if first is not None else "—", "≤ 1 s",
                    h.yes_no(first is not None and first <= 1)))

    body = ("bulkheadd (`[pool main] workers = 2, threads = 4`, the default store: jobs.db in a "
            "STATE_DIRECTORY of its own on the machine's disk) against "
            "`BUILD/bench/bench-durable raw-server` (bench/bench-durable.c: a poll() loop that "
            "inserts each request's row and ends the rows it acknowledged the pass before, one "
            "transaction per pass, WAL, synchronous=FULL, replies after the commit). The same "
            "clients (`bench-durable clients SOCK CLIENTS INFLIGHT TOTAL`) drive both: one "
            "`submit` of one `builtin:noop` job per request, INFLIGHT requests sent ahead per "
            "connection. Jobs/s: first request to the reply that says every job has ended "
            "(bulkheadd: `wait --group`, held until its ends are on disk; raw: a `sync` answered "
            "after the commit of the last end). Latency: a request to its reply (the ack, after "
            f"the commit that holds the job). Medians of {runs} runs each, alternating.\n\n")
    body += h.table(["clients × in flight", "jobs", "raw jobs/s", "bulkheadd jobs/s", "ratio",
                     "raw p50 µs", "bulkheadd p50 µs", "raw p99 µs", "bulkheadd p99 µs",
                     "p99 ratio", "raw jobs/commit", "bulkheadd jobs/commit"], rows,
                    "lrrrrrrrrrrr")
    body += ("\n## 100 µs jobs\n\n"
             f"`bulkhead submit --pool main --run builtin:spin --arg us=100 --count "
             f"{SPIN_JOBS // shrink}` then `bulkhead wait --group spin@1`, wall time, with "
             f"`store = memory` and with the SQLite store; medians of {runs} runs each.\n\n")
    body += h.table(["store", "jobs/s", "ratio to memory"],
                    [["memory", h.fmt_num(mem_rate), "1.00"],
                     ["sqlite", h.fmt_num(sq_rate), h.fmt_ratio(spin_ratio)]], "lrr")
    body += ("\n## Restart\n\n"
             f"A bulkheadd with `keep_ended = {BIG_TOTAL // shrink}` ran "
             f"{(BIG_TOTAL - BIG_UNFINISHED) // shrink} noop jobs to their end, then took "
             f"{BIG_UNFINISHED // shrink} `builtin:sleep ms=600000` jobs on a pool of one worker "
             "× one thread (one running, the others queued), and was SIGKILLed. Then a new "
             "bulkheadd on the same store: READY=1, and its first job started (the started_at of "
             "the first running one, against the wall clock at spawn).\n\n")
    body += h.table(["jobs", "not ended", "file MiB", "ready s", "first job started s",
                     "RssAnon KiB after"],
                    [[h.fmt_num(big.get("total")), h.fmt_num(big.get("unfinished")),
                      h.fmt_num(big.get("file_mb"), 1),
                      h.fmt_num(big.get("ready_s"), 3), h.fmt_num(first, 3),
                      h.fmt_num(big.get("rssanon_kb"))]], "rrrrrr")
    return body, summary, notes
