"""Whole bulkheadd nodes on PostgreSQL, for bench/bench_pg.py (run under with-postgres).

N bulkheadd processes (2 workers × 4 threads each, `store = postgresql:` on the server's
socket) are started on a fresh database and wait until each has joined (its row in
bulkhead.nodes) and is ready (its control socket answers). Then one `bulkhead submit` of
JOBS noop jobs goes to the first node; the clock runs from the submit's answer (every job
committed) to the moment the table has every job ended (polled with psql every 20 ms).
CPU per job, from the submit to the last end: every node's (its master, its workers and fork
server, from /proc) plus every server process's.
"""
import json
import os
import shutil
import subprocess
import tempfile
import time

WORKERS, THREADS = 2, 4


def _psql(db, sql):
    return subprocess.run(["psql", "-X", "-At", "-d", db, "-c", sql], capture_output=True,
                          text=True, timeout=60).stdout.strip()


def _server_cpu():
    hz = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if os.stat(f"/proc/{pid}").st_uid == os.getuid():
                continue
            with open(f"/proc/{pid}/comm") as f:
                if not f.read().startswith("postgres"):
                    continue
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / hz
        except OSError:
            continue
    return total


def _tree_cpu(roots):
    """CPU seconds of processes roots and every descendant (what they reaped included)."""
    hz = os.sysconf("SC_CLK_TCK")
    stats = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(pid)] = (int(fields[1]), sum(int(x) for x in fields[11:15]) / hz)
    total, todo = 0.0, list(roots)
    while todo:
        pid = todo.pop()
        total += stats.get(pid, (0, 0.0))[1]
        todo.extend(c for c, (ppid, _) in stats.items() if ppid == pid)
    return total


def measure(build, nodes, jobs, db, run="builtin:noop", arg=None):
    """One run: {"jobs", "seconds", "jobs_per_s", "submit_s", "cpu_us_per_job"} or error.
    With run = a long builtin:sleep (arg ms=...) only the submit is measured: the workers
    take a window each and are busy, so nothing but the submit uses the machine."""
    daemon = os.path.join(build, "bulkheadd")
    cli = os.path.join(build, "bulkhead")
    work = tempfile.mkdtemp(prefix="bench-pgd.")
    subprocess.run(["psql", "-X", "-q", "-c", f"CREATE DATABASE {db}"], check=True,
                   capture_output=True, timeout=60)
    procs = []
    try:
        for i in range(nodes):
            d = os.path.join(work, f"n{i}")
            os.makedirs(os.path.join(d, "run"))
            with open(os.path.join(d, "conf"), "w") as f:
                f.write("[supervisor]\n"
                        f"store = postgresql:host={os.environ['PGHOST']} "
                        f"port={os.environ['PGPORT']} user={os.environ['PGUSER']} "
                        f"dbname={db}\n"
                        f"node = n{i}\nlog_level = warning\n"
                        f"[pool main]\nworkers = {WORKERS}\nthreads = {THREADS}\n")
            env = dict(os.environ, RUNTIME_DIRECTORY=os.path.join(d, "run"))
            procs.append(subprocess.Popen([daemon, "-c", os.path.join(d, "conf")], env=env,
                                          stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 60
        for i in range(nodes):
            sock = os.path.join(work, f"n{i}", "run", "control.sock")
            while subprocess.run([cli, "--socket", sock, "status", "--json"],
                                 capture_output=True).returncode != 0:
                if time.monotonic() > deadline or procs[i].poll() is not None:
                    return {"error": f"node n{i} did not come up"}
                time.sleep(0.02)
        sock = os.path.join(work, "n0", "run", "control.sock")
        cpu0 = _server_cpu()
        nodes0 = _tree_cpu([pr.pid for pr in procs])
        t0 = time.monotonic()
        p = subprocess.run([cli, "--socket", sock, "submit", "--pool", "main", "--run", run,
                            "--count", str(jobs), "--json"] + (["--arg", arg] if arg else []),
                           capture_output=True, text=True, timeout=120)
        t1 = time.monotonic()
        if p.returncode != 0:
            return {"error": "submit: " + p.stderr.strip()[-200:]}
        if arg:
            return {"jobs": jobs, "submit_s": t1 - t0, "submit_jobs_per_s": jobs / (t1 - t0)}
        while int(_psql(db, "SELECT count(*) FROM bulkhead.jobs WHERE state >= 2") or 0) < jobs:
            if time.monotonic() > t1 + 300:
                return {"error": "not every job ended within 300 s"}
            time.sleep(0.02)
        t2 = time.monotonic()
        server = _server_cpu() - cpu0
        node_cpu = _tree_cpu([pr.pid for pr in procs]) - nodes0
        ran = _psql(db, "SELECT count(DISTINCT node) FROM bulkhead.jobs")
        for pr in procs:
            pr.terminate()
            pr.wait(timeout=60)
        return {"jobs": jobs, "seconds": t2 - t1, "jobs_per_s": jobs / (t2 - t1),
                "submit_s": t1 - t0, "submit_jobs_per_s": jobs / (t1 - t0),
                "nodes_that_ran": int(ran or 0),
                "cpu_us_per_job": (node_cpu + server) * 1e6 / jobs,
                "server_us_per_job": server * 1e6 / jobs}
    finally:
        for pr in procs:
            if pr.returncode is None:
                pr.kill()
                pr.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    import sys
    print(json.dumps(measure(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])))
