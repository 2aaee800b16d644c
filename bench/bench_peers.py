"""bench/run's "peers" benchmark (issue 17): bulkhead next to what people use instead.

Same job counts, same parallelism (2, the machine's cores), in one run, alternating:

1. Tiny in-process jobs (N no-op jobs): `bulkhead run` (2 workers × 1 thread, builtin:noop),
   a bare pthread pool (`bulkhead experiment --modes threads`: `bulkhead-worker --standalone
   threads`, no supervisor), Python's concurrent.futures.ProcessPoolExecutor(2) (map,
   chunksize 1) and multiprocessing.Pool(2) (map with chunksize 1, and with its default
   chunks), each calling a no-op function.
2. Commands (M runs of /bin/true): `bulkhead run` (exec:/bin/true, 2 workers × 1 thread),
   `xargs -P2 -n1 /bin/true` and GNU parallel (`parallel -j2 /bin/true`).

Wall time: the whole `bulkhead run` command (config load, workers started, report written);
for Python, from before the pool is made to after it is shut down, inside one interpreter
(its own start-up, about 20 ms, left out); for xargs and parallel, the whole command. Figures
are medians over the runs; bulkhead's ratio to each peer is its jobs/s over the peer's.
Every bulkhead run's report is checked: every job done, 0 lost. The chart (peers.svg) shows
them side by side on a log scale.
"""
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

PARALLEL = 2
JOBS = 20000  # no-op jobs (ProcessPoolExecutor does about 5 000 a second here)
COMMANDS = 2000  # /bin/true runs
PY_PEERS = [
    ("ProcessPoolExecutor(2), chunksize 1", "ppe"),
    ("multiprocessing.Pool(2), chunksize 1", "pool1"),
    ("multiprocessing.Pool(2), default chunks", "pool"),
]
PY_SCRIPT = r"""
import concurrent.futures, multiprocessing, sys, time
def noop(i):
    return i
if __name__ == "__main__":
    kind, n, p = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    t0 = time.monotonic()
    if kind == "ppe":
        with concurrent.futures.ProcessPoolExecutor(p) as ex:
            got = sum(1 for _ in ex.map(noop, range(n), chunksize=1))
    else:
        with multiprocessing.Pool(p) as pool:
            got = len(pool.map(noop, range(n), chunksize=1) if kind == "pool1"
                      else pool.map(noop, range(n)))
    print(f"{got} {time.monotonic() - t0:.6f}")
"""


def _bulkhead_run(h, ctx, tmp, run, count):
    """`bulkhead run` of count jobs of run on 2 workers × 1 thread: (seconds, error)."""
    conf = os.path.join(tmp, "peers.conf")
    report = os.path.join(tmp, "peers-report.json")
    with open(conf, "w") as f:
        f.write(f"[supervisor]\nlog_level = warning\n[pool main]\nworkers = {PARALLEL}\n"
                f"threads = 1\n[job peers]\npool = main\nrun = {run}\ncount = {count}\n")
    t0 = time.monotonic()
    rc, _, err, _ = h.run_cmd([ctx["bulkhead"], "run", conf, "--quiet", "--report-json", report])
    secs = time.monotonic() - t0
    try:
        with open(report) as f:
            rep = json.load(f)
    except (OSError, ValueError):
        return None, f"bulkhead run: exit {rc}: {err.strip()[-300:]}"
    jobs = rep.get("jobs", {})
    if rc != 0 or jobs.get("done") != count or jobs.get("lost") != 0:
        return None, (f"bulkhead run: exit {rc}, {jobs.get('done')} of {count} done, "
                      f"{jobs.get('lost')} lost")
    return secs, None


def _bare_pool(h, ctx, n):
    data, err, _ = h.experiment(ctx["bulkhead"], ("noop", "builtin:noop", [], n, None), PARALLEL,
                                ["threads"], "0", 1, n, ctx["tmp"])
    m = h.mode_entry(data, "threads")
    if err or not m or m.get("completed") != n:
        return None, err or "the bare pool did not complete every job"
    return m["wall_s"], None


def _python(h, script, kind, n):
    rc, out, err, _ = h.run_cmd([sys.executable, script, kind, str(n), str(PARALLEL)])
    try:
        got, secs = out.split()
        if rc == 0 and int(got) == n:
            return float(secs), None
    except ValueError:
        pass
    return None, f"python {kind}: exit {rc}: {err.strip()[-300:]}"


def _command(h, argv, n):
    """argv reads n lines (1..n) on stdin: (seconds, error)."""
    t0 = time.monotonic()
    try:
        p = subprocess.run(argv, input="".join(f"{i}\n" for i in range(1, n + 1)), text=True,
                           capture_output=True, timeout=h.CMD_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"{argv[0]}: {e}"
    secs = time.monotonic() - t0
    if p.returncode != 0:
        return None, f"{' '.join(argv)}: exit {p.returncode}: {p.stderr.strip()[-300:]}"
    return secs, None


def _svg(path, sections):
    """A horizontal bar chart, log scale: sections = [(title, [(label, jobs/s, ours)])]."""
    rows = sum(len(s[1]) for s in sections)
    w, left, right, bar_h, gap = 960, 330, 120, 22, 8
    height = 90 + rows * (bar_h + gap) + len(sections) * 44
    vals = [v for _, items in sections for _, v, _ in items if v]
    lo = 10 ** math.floor(math.log10(min(vals))) if vals else 1
    hi = 10 ** math.ceil(math.log10(max(vals))) if vals else 10
    span = max(math.log10(hi) - math.log10(lo), 1)
    plot = w - left - right

    def x_of(v):
        return left + plot * (math.log10(v) - math.log10(lo)) / span

    out = [f'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" '
           f'width="{w}" height="{height}" viewBox="0 0 {w} {height}" '
           'font-family="DejaVu Sans, Helvetica, Arial, sans-serif" fill="#333333">',
           '<rect width="100%" height="100%" fill="#ffffff"/>',
           '<text x="24" y="34" font-size="20" font-weight="bold">bulkhead and its peers: '
           f'the same jobs, {PARALLEL} at a time</text>',
           '<text x="24" y="56" font-size="13" fill="#666666">jobs per second (log scale; '
           'higher is better); medians of the runs of one `make bench`</text>']
    y = 80
    for title, items in sections:
        out.append(f'<text x="24" y="{y + 16}" font-size="15" font-weight="bold">{title}</text>')
        y += 30
        for label, v, ours in items:
            color = "#4e79a7" if ours else "#bab0ac"
            out.append(f'<text x="{left - 10}" y="{y + 16}" font-size="13" '
                       f'text-anchor="end">{label}</text>')
            if v:
                xe = x_of(v)
                out.append(f'<rect x="{left}" y="{y}" width="{max(xe - left, 1):.1f}" '
                           f'height="{bar_h}" fill="{color}"/>')
                out.append(f'<text x="{xe + 6:.1f}" y="{y + 16}" font-size="12">'
                           f'{v:,.0f}</text>')
            else:
                out.append(f'<text x="{left + 6}" y="{y + 16}" font-size="12" '
                           'fill="#e15759">not measured</text>')
            y += bar_h + gap
        y += 14
    k = lo
    while k <= hi:
        out.append(f'<line x1="{x_of(k):.1f}" y1="80" x2="{x_of(k):.1f}" y2="{y - 10}" '
                   'stroke="#dddddd"/>')
        out.append(f'<text x="{x_of(k):.1f}" y="{y + 4}" font-size="11" text-anchor="middle" '
                   f'fill="#666666">{k:,.0f}</text>')
        k *= 10
    out.append("</svg>\n")
    with open(path, "w") as f:
        f.write("\n".join(out))


def run(ctx, h):
    shrink, runs = ctx["cfg"]["shrink"], ctx["cfg"]["runs"]
    n, m = max(JOBS // shrink, 200), max(COMMANDS // shrink, 100)
    summary, notes = [], []
    tmp = tempfile.mkdtemp(prefix="peers-", dir=ctx["tmp"])
    script = os.path.join(tmp, "peers.py")
    with open(script, "w") as f:
        f.write(PY_SCRIPT)
    parallel = shutil.which("parallel")
    jobs = {k: [] for k in ["bulkhead", "bare"] + [p[1] for p in PY_PEERS]}
    cmds = {"bulkhead": [], "xargs": [], "parallel": []}
    try:
        for i in range(runs):
            h.progress(f"  no-op jobs ×{n} and /bin/true ×{m}: run {i + 1} of {runs}")
            steps = [(jobs, "bulkhead", lambda: _bulkhead_run(h, ctx, tmp, "builtin:noop", n)),
                     (jobs, "bare", lambda: _bare_pool(h, ctx, n))]
            steps += [(jobs, k, (lambda k=k: _python(h, script, k, n))) for _, k in PY_PEERS]
            steps += [(cmds, "bulkhead", lambda: _bulkhead_run(h, ctx, tmp, "exec:/bin/true", m)),
                      (cmds, "xargs", lambda: _command(h, ["xargs", f"-P{PARALLEL}", "-n1",
                                                           "/bin/true"], m))]
            if parallel:
                steps.append((cmds, "parallel",
                              lambda: _command(h, [parallel, f"-j{PARALLEL}", "/bin/true"], m)))
            for into, key, fn in steps:
                secs, err = fn()
                if err:
                    h.failed(ctx, notes, err)
                elif secs:
                    into[key].append(secs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not parallel:
        notes.append("GNU parallel is not installed (scripts/install-deps --bench installs "
                     "it): not measured")

    def rate(d, k, count):
        return count / statistics.median(d[k]) if d[k] else None

    def ratio(a, b):
        return a / b if a and b else None

    bh_jobs, bh_cmds = rate(jobs, "bulkhead", n), rate(cmds, "bulkhead", m)
    job_rows = [("bulkhead run, 2 × 1", bh_jobs, True),
                ("bare pthread pool, 2 threads", rate(jobs, "bare", n), False)]
    job_rows += [(label, rate(jobs, k, n), False) for label, k in PY_PEERS]
    cmd_rows = [("bulkhead run, exec:, 2 × 1", bh_cmds, True),
                ("xargs -P2", rate(cmds, "xargs", m), False),
                ("GNU parallel -j2", rate(cmds, "parallel", m), False)]
    body = (f"No-op jobs: {n} per run; commands: {m} runs of /bin/true per run; parallelism "
            f"{PARALLEL}; medians of {runs} runs, alternating. See the top of "
            "bench/bench_peers.py for what each wall time covers. Chart: "
            "[peers.svg](peers.svg).\n\n")
    rows = [["no-op jobs", lab, h.fmt_num(v), "—" if ours else h.fmt_ratio(ratio(bh_jobs, v))]
            for lab, v, ours in job_rows]
    rows += [["/bin/true", lab, h.fmt_num(v), "—" if ours else h.fmt_ratio(ratio(bh_cmds, v))]
             for lab, v, ours in cmd_rows]
    body += h.table(["jobs", "who", "median jobs/s", "bulkhead / it"], rows, "llrr")
    for lab, v, ours in job_rows[1:]:
        summary.append(("peers", f"no-op jobs: bulkhead run / {lab}",
                        h.fmt_ratio(ratio(bh_jobs, v)), "— (reported)", "reported"))
    r_x, r_p = ratio(bh_cmds, cmd_rows[1][1]), ratio(bh_cmds, cmd_rows[2][1])
    summary.append(("peers", "/bin/true ×2: bulkhead run / xargs -P2", h.fmt_ratio(r_x), "≥ 1",
                    h.yes_no(r_x is not None and r_x >= 1)))
    summary.append(("peers", "/bin/true ×2: bulkhead run / GNU parallel -j2", h.fmt_ratio(r_p),
                    "≥ 3", h.yes_no(r_p is not None and r_p >= 3)))
    _svg(os.path.join(ctx["results"], "peers.svg"),
         [(f"{n:,} no-op jobs", job_rows), (f"{m:,} runs of /bin/true", cmd_rows)])
    return body, summary, notes
