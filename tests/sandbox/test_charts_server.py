"""The chart repository server: serves the folder on 127.0.0.1 and leaves nothing behind."""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

import pytest
import yaml

from sandbox.charts.build import INDEX_FILE, build_repository
from sandbox.charts.server import ChartRepository

pytestmark = pytest.mark.sandbox


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return build_repository(tmp_path_factory.mktemp("repo"))


def get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.headers["Content-Type"], response.read()


def accepts_connections(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port), timeout=0.5):
            return True
    except OSError:
        return False


def test_serves_the_index_and_archives_on_a_free_local_port(folder):
    with ChartRepository(folder) as repository:
        assert urlparse(repository.url).hostname == "127.0.0.1"
        assert urlparse(repository.url).port > 0
        status, _, body = get(f"{repository.url}/{INDEX_FILE}")
        assert status == 200
        index = yaml.safe_load(body)
        (entry,) = index["entries"]["grafana"]
        status, content_type, archive = get(f"{repository.url}/{entry['urls'][0]}")
        assert status == 200
        assert content_type == "application/gzip"
        assert archive == (folder / entry["urls"][0]).read_bytes()


def test_unknown_paths_are_404(folder):
    with ChartRepository(folder) as repository:
        with pytest.raises(urllib.error.HTTPError) as error:
            get(f"{repository.url}/no-such-chart-1.0.0.tgz")
        assert error.value.code == 404


def test_concurrent_downloads(folder):
    with ChartRepository(folder) as repository:
        urls = [f"{repository.url}/{path.name}" for path in sorted(folder.glob("*.tgz"))]
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = [status for status, _, _ in pool.map(get, urls)]
    assert statuses == [200] * len(urls)


def test_stop_closes_the_port_and_ends_every_thread(folder):
    before = set(threading.enumerate())
    repository = ChartRepository(folder).start()
    url = repository.url
    get(f"{url}/{INDEX_FILE}")
    repository.stop()
    assert not accepts_connections(url)
    deadline = time.monotonic() + 2
    while set(threading.enumerate()) - before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not set(threading.enumerate()) - before
    repository.stop()  # stopping twice is harmless


def test_url_before_start_and_missing_folder_are_errors(tmp_path):
    repository = ChartRepository(tmp_path / "missing")
    with pytest.raises(RuntimeError):
        _ = repository.url
    with pytest.raises(FileNotFoundError):
        repository.start()
