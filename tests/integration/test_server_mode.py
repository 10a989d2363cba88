"""Serving benchmarks: a server in each trial's container, polled until ready, a client timed
against it, the server stopped after. Fixture: a 30-line HTTP server and its client."""

import json

import pytest

from tests.conftest import run_cli
from tests.integration.fixture_repos import make_repo

pytestmark = [pytest.mark.docker]

TASK = """
    name = "server-fixture"
    repo = "."
    install_command = "true"
    server_command = "python3 server.py 8765 1.0"
    server_ready_url = "http://127.0.0.1:8765/v1/models"
    server_ready_timeout_s = 60
    bench_command = "python3 client.py 8765"

    [metric]
    kind = "json_path"
    field = "median_ms"
    lower_is_better = true
    output_file = "/tmp/isobench_bench.json"
    """
SERVER = """
    import http.server
    import json
    import signal
    import sys
    import time

    port, startup_s = int(sys.argv[1]), float(sys.argv[2])


    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/v1/models":
                body = json.dumps({"data": [{"id": "tiny"}]}).encode()
            else:
                body = json.dumps({"text": str(sum(i * i for i in range(WORK)))}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *args):
            print("request", self.path, flush=True)


    def stop(*_):
        print("server stopping on SIGTERM", flush=True)
        sys.exit(0)


    WORK = 20000
    signal.signal(signal.SIGTERM, stop)
    print("server loading", flush=True)
    time.sleep(startup_s)  # a model load: readiness has to be polled, not assumed
    http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
    """
CLIENT = """
    import json
    import statistics
    import sys
    import time
    import urllib.request

    port = int(sys.argv[1])
    latencies = []
    for _ in range(20):
        start = time.perf_counter()
        urllib.request.urlopen(f"http://127.0.0.1:{port}/generate").read()
        latencies.append((time.perf_counter() - start) * 1000)
    json.dump({"median_ms": statistics.median(latencies)}, open("/tmp/isobench_bench.json", "w"))
    print("client done")
    """


@pytest.fixture(scope="module")
def server_repo(tmp_path_factory):
    path = tmp_path_factory.mktemp("server") / "repo"
    shas = make_repo(path, [{"isobench.toml": TASK, "server.py": SERVER, "client.py": CLIENT},
                            {"server.py": SERVER.replace("WORK = 20000", "WORK = 2000")}])
    return path, shas[-1]


def test_server_is_started_polled_used_and_stopped_in_every_trial(docker_engine, base_image,
                                                                   server_repo, tmp_path):
    path, human = server_repo
    out = run_cli("bench", human, "--repo", str(path), "--trials", "2", "--warmup", "0",
                  "--state-dir", str(tmp_path), "--run-id", "serve", "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    results = json.loads(out.stdout)
    assert results["verdict"] != "bench_failed", results["verdict_reason"]
    assert all(t["ok"] for t in results["trials"]) and len(results["trials"]) == 4
    logs = tmp_path / "bench" / "server-fixture" / "serve" / human[:12] / "logs"
    for trial in results["trials"]:
        stem = logs / f"trial-{trial['index']:03d}-{trial['variant']}"
        server_log = stem.with_suffix(".server.log").read_text()
        assert "request /v1/models" in server_log  # the readiness probe reached it
        assert server_log.count("request /generate") == 20  # the client ran against it
        assert server_log.rstrip().endswith("server stopping on SIGTERM")  # and it was stopped
        assert "client done" in stem.with_suffix(".log").read_text()


def test_server_that_dies_is_a_failed_trial_with_its_log(docker_engine, base_image,
                                                         server_repo, tmp_path):
    path, human = server_repo
    task = tmp_path / "dying.toml"
    task.write_text(TASK.replace('"python3 server.py 8765 1.0"',
                                 """ "python3 -c 'print(\\"no model\\"); raise SystemExit(3)'" """)
                    .replace('repo = "."', f'repo = "{path}"'))
    out = run_cli("bench", human, "--task", str(task), "--trials", "2", "--warmup", "0",
                  "--state-dir", str(tmp_path), "--run-id", "dying", "--json")
    assert out.returncode == 15, out.stderr[-2000:]
    results = json.loads(out.stdout)
    assert results["verdict"] == "bench_failed"
    assert "server not ready" in results["verdict_reason"]
    assert "server process exited" in results["verdict_reason"]
    assert "no model" in results["verdict_reason"]  # the server's own last words
