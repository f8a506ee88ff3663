"""Transient infrastructure: an apt mirror caught mid-sync is retried, then reported in one
line. Real apt-get against a flat repository served by an HTTP server of our own on
127.0.0.1, through the harness's PrivateApt argv and proc.run_retrying (the path
harness.kernel.debian.fetch and harness.kernel.source take). The .deb on the "mirror"
has a different size from the one its index promises for the first N requests, which is
exactly apt's "File has unexpected size ... Mirror sync in progress?"."""

from __future__ import annotations

import hashlib
import http.server
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.errors import InfraError
from harness.kernel.debian import PrivateApt
from harness.proc import run_retrying

PACKAGE = "harness-fetch-probe"

pytestmark = pytest.mark.skipif(not shutil.which("apt-get"), reason="needs apt-get (Debian)")


def build_deb(tmp: Path) -> Path:
    root = tmp / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN/control").write_text(
        f"Package: {PACKAGE}\nVersion: 1.0\nArchitecture: all\n"
        "Maintainer: harness <harness@localhost>\nDescription: fetch retry probe\n"
    )
    (root / "usr/share").mkdir(parents=True)
    (root / "usr/share/probe.txt").write_text("x" * 20000)
    deb = tmp / "repo" / f"{PACKAGE}_1.0_all.deb"
    deb.parent.mkdir()
    subprocess.run(
        ["dpkg-deb", "--build", "-Zgzip", str(root), str(deb)], check=True, capture_output=True
    )
    return deb


def write_index(repo: Path, deb: Path) -> None:
    data = deb.read_bytes()
    (repo / "Packages").write_text(
        f"Package: {PACKAGE}\nVersion: 1.0\nArchitecture: all\nMaintainer: harness\n"
        f"Filename: ./{deb.name}\nSize: {len(data)}\n"
        f"SHA256: {hashlib.sha256(data).hexdigest()}\nDescription: fetch retry probe\n\n"
    )
    packages = (repo / "Packages").read_bytes()
    (repo / "Release").write_text(
        "Origin: harness-test\nLabel: harness-test\nSuite: ./\nCodename: ./\n"
        f"SHA256:\n {hashlib.sha256(packages).hexdigest()} {len(packages)} Packages\n"
    )


class Mirror(http.server.ThreadingHTTPServer):
    """Serves `repo`; the first `syncing` requests for a .deb get a shorter file."""

    def __init__(self, repo: Path, syncing: int) -> None:
        self.repo, self.syncing, self.deb_requests = repo, syncing, 0
        super().__init__(("127.0.0.1", 0), MirrorHandler)


class MirrorHandler(http.server.BaseHTTPRequestHandler):
    server: Mirror

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        path = self.server.repo / self.path.lstrip("/").removeprefix("./")
        if not path.is_file():
            self.send_error(404)
            return
        body = path.read_bytes()
        if path.suffix == ".deb":
            self.server.deb_requests += 1
            if self.server.deb_requests <= self.server.syncing:
                body = body[: len(body) // 2]  # the mirror is mid-sync: a different file
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def mirror(tmp: Path, syncing: int) -> Iterator[tuple[Mirror, PrivateApt]]:
    deb = build_deb(tmp)
    write_index(deb.parent, deb)
    server = Mirror(deb.parent, syncing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    apt = PrivateApt(tmp / "apt")
    port = server.server_address[1]
    (apt.root / "etc/sources.list").write_text(f"deb [trusted=yes] http://127.0.0.1:{port}/ ./\n")
    subprocess.run(apt.update_argv(), check=True, capture_output=True, timeout=60)
    try:
        yield server, apt
    finally:
        server.shutdown()


@pytest.fixture
def syncing_once(tmp_path: Path) -> Iterator[tuple[Mirror, PrivateApt]]:
    yield from mirror(tmp_path, syncing=1)


@pytest.fixture
def syncing_always(tmp_path: Path) -> Iterator[tuple[Mirror, PrivateApt]]:
    yield from mirror(tmp_path, syncing=99)


def test_mirror_mid_sync_is_retried_and_the_download_completes(syncing_once, caplog):
    server, apt = syncing_once
    archives = apt.root / "archives"
    run_retrying(apt.download_argv((PACKAGE,)), attempts=3, backoff_s=0.2, timeout=60, cwd=archives)
    assert server.deb_requests == 2
    assert list(archives.glob(f"{PACKAGE}_1.0_all.deb"))
    (warning,) = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert "unexpected size" in warning or "Size mismatch" in warning


def test_a_mirror_that_stays_mid_sync_is_one_line_naming_what_failed(syncing_always):
    server, apt = syncing_always
    with pytest.raises(InfraError) as exc:
        run_retrying(
            apt.download_argv((PACKAGE,)),
            attempts=2,
            backoff_s=0.2,
            timeout=60,
            cwd=apt.root / "archives",
        )
    message = str(exc.value)
    assert "\n" not in message and "(failed 2 times)" in message
    assert "apt-get" in message and ("unexpected size" in message or "Size mismatch" in message)
    assert server.deb_requests == 2
