"""What the soak reads of a process: RSS and fds from /proc, the gateway's task gauge from its
metrics, and the sampler that reads them through the window and reports every interval."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from loadtest.benches.soak_probe import SoakSampler, Watched, read_figures
from loadtest.benches.soak_trend import Reading
from loadtest.probes.procfs import (
    ESTABLISHED,
    count_fds,
    established_on,
    parse_tcp_states,
    parse_vm_rss,
    read_proc,
)

STATUS = "Name:\tgateway\nVmPeak:\t  300000 kB\nVmRSS:\t  123456 kB\nThreads:\t4\n"


def test_vm_rss_is_read_in_bytes() -> None:
    assert parse_vm_rss(STATUS) == 123456 * 1024


def test_a_status_without_vm_rss_is_an_error() -> None:
    with pytest.raises(ValueError, match="VmRSS"):
        parse_vm_rss("Name:\tzombie\nState:\tZ (zombie)\n")


def test_this_process_has_memory_and_an_open_file_counts(tmp_path: Path) -> None:
    stats = read_proc(os.getpid())
    assert stats is not None and stats.rss_bytes > 0
    before = count_fds(os.getpid())
    with (tmp_path / "f").open("w"):
        assert count_fds(os.getpid()) == before + 1


def test_a_process_that_has_gone_reads_as_nothing() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert read_proc(child.pid) is None


TCP = (
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid\n"
    "   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0\n"
    "   1: 0100007F:1F40 0100007F:E8E9 01 00000000:00000000 00:00000000 00000000     0\n"
    "   2: 0100007F:1F40 0100007F:E8EA 08 00000000:00000000 00:00000000 00000000     0\n"
)


def test_the_tcp_table_gives_each_sockets_local_port_and_state() -> None:
    assert parse_tcp_states(TCP) == [(2024, 0x0A), (8000, ESTABLISHED), (8000, 0x08)]


def test_the_established_connections_of_a_listening_port_are_counted() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert established_on(port) == 0
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
        accepted = [server.accept()[0] for _ in clients]
        try:
            assert established_on(port) == 2
        finally:
            for s in (*clients, *accepted):
                s.close()


@pytest.fixture
def metrics_url() -> Iterator[str]:
    """A server of a gateway-like exposition with ``gateway_event_loop_tasks 7``."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"# TYPE gateway_event_loop_tasks gauge\ngateway_event_loop_tasks 7.0\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    finally:
        server.shutdown()
        server.server_close()


def test_the_gateway_task_count_comes_from_its_metrics(metrics_url: str) -> None:
    port = int(metrics_url.split(":")[2].split("/")[0])
    figures = read_figures(Watched("gateway", os.getpid(), metrics_url, port))
    assert figures["tasks"] == 7.0
    assert figures["rss_bytes"] is not None and figures["fds"] is not None
    assert figures["http_conns"] is not None  # counted for a process with an HTTP port


def test_what_cannot_be_read_is_none() -> None:
    assert read_figures(Watched("gone", None, "http://127.0.0.1:1/metrics")) == {
        "rss_bytes": None,
        "fds": None,
        "tasks": None,
    }


def test_every_interval_is_reported_once_in_order_the_last_at_the_close() -> None:
    told: list[tuple[int, Reading]] = []
    sampler = SoakSampler(
        [Watched("me", os.getpid())],
        interval_s=0.05,
        window_s=0.15,
        sample_s=0.01,
        on_interval=lambda k, r: told.append((k, r)),
    )
    sampler.start()
    time.sleep(0.12)  # however far the thread got, stop() reports what is left
    sampler.stop()
    assert [k for k, _ in told] == [0, 1, 2]
    assert told[-1][1] is sampler.readings[-1]
    assert len(sampler.readings) >= 2 and sampler.readings[0].t_s < sampler.readings[-1].t_s
    assert all(r.procs["me"]["rss_bytes"] for r in sampler.readings)


def test_readings_come_every_period_and_last_just_before_the_window_closes() -> None:
    assert SoakSampler([], interval_s=1.0, window_s=3.0).schedule() == [1.0, 2.0, 2.9]
    long = SoakSampler([], interval_s=30.0, window_s=180.0)
    assert long.intervals == 6
    assert long.schedule() == [float(k) for k in range(1, 180)] + [179.9]
    assert SoakSampler([], interval_s=40.0, window_s=180.0).intervals == 5


def test_a_sampler_needs_a_positive_period_interval_and_window() -> None:
    for kwargs in ({"interval_s": 0.0}, {"window_s": 0.0}, {"sample_s": 0.0}):
        with pytest.raises(ValueError):
            SoakSampler([], **{"interval_s": 1.0, "window_s": 1.0, **kwargs})
