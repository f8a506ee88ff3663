"""--guest-root: which root a guest gets, how it is built and cached, and how the boot
reaches it (virtme-ng argv, the agent's paths in the guest)."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest

from harness.cli.main import build_parser
from harness.cli.run import requests_from
from harness.errors import InfraError, UserError
from harness.kernel.apt_sources import archive_uri, parse_deb822
from harness.kernel.model import Kernel
from harness.run import vm as run_vm
from harness.run.request import RunRequest
from harness.vm import guestroot
from harness.vm.guestroot import GuestRoot, default_for, parse
from harness.vm.launch import BootSpec, Share, vng_argv

SERIES = "src:debian:linux-source-6.12+series=tests/data/series/harness-probe.mbox"
# this machine's /etc/apt/sources.list.d/debian.sources (deb822), as Debian 12 installs it
SOURCES = """\
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""


@pytest.mark.parametrize(
    ("specs", "workflow", "expected"),
    [
        (["debian:6.12"], "run", GuestRoot.HOST),
        ([SERIES], "run", GuestRoot.MINIMAL),
        (["debian:6.12", "git:/srv/linux@v6.18+series=123@example.org"], "run", GuestRoot.MINIMAL),
        (["debian:6.12", "debian:6.12"], "ab", GuestRoot.HOST),
        (["src:debian:linux-source-6.12", SERIES], "ab", GuestRoot.MINIMAL),
        (["git:/srv/linux@v6.18"], "backport", GuestRoot.MINIMAL),
        (["git:/srv/linux@v6.1", "git:/srv/linux@v6.2"], "bisect", GuestRoot.HOST),
        (["git:/l@v6.1+series=/p.mbox", "git:/l@v6.2+series=/p.mbox"], "bisect", GuestRoot.MINIMAL),
        (["git:/srv/linux@v6.18+revert=abc123"], "run", GuestRoot.HOST),
    ],
)
def test_default_minimal_where_the_series_comes_from_outside(specs, workflow, expected) -> None:
    assert default_for(specs, workflow) is expected


def test_parse_explicit_wins_and_refuses_other_words() -> None:
    assert parse("host", [SERIES], "run") is GuestRoot.HOST
    assert parse("minimal", ["debian:6.12"], "run") is GuestRoot.MINIMAL
    assert parse(None, [SERIES], "run") is GuestRoot.MINIMAL
    with pytest.raises(UserError, match="use one of host, minimal"):
        parse("chroot", ["debian:6.12"], "run")


def test_cli_run_picks_the_root(tmp_path: Path) -> None:
    def roots(*argv: str) -> set[str]:
        ns = build_parser().parse_args(["run", "--out", str(tmp_path), *argv])
        return {r.guest_root for r in requests_from(ns)}

    assert roots() == {"host"}
    assert roots("--kernel", SERIES) == {"minimal"}
    assert roots("--kernel", SERIES, "--guest-root", "host") == {"host"}
    assert roots("--guest-root", "minimal") == {"minimal"}


def test_cli_ab_backport_bisect_pick_the_root(tmp_path: Path) -> None:
    from harness.cli import ab, backport, bisect

    out = ["--out", str(tmp_path)]
    parse_args = build_parser().parse_args
    ns = parse_args(["ab", "--base", "debian:6.12", "--candidate", SERIES, *out])
    assert ab.request_from_args(ns).guest_root == "minimal"
    ns = parse_args(["ab", "--base", "debian:6.12", "--candidate", "debian:6.12", *out])
    assert ab.request_from_args(ns).guest_root == "host"
    ns = parse_args(["backport", "--series", "s.mbox", "--base", "git:/srv/linux@v6.1", *out])
    assert backport.request_from_args(ns).guest_root == "minimal"
    ns = parse_args(["bisect", "--kernels", f"debian:6.12,{SERIES}", "--test", "splat:any", *out])
    assert bisect.request_from_args(ns).guest_root == "minimal"
    ns = parse_args(["bisect", "--kernels", "debian:6.1,debian:6.12", "--test", "splat:any", *out])
    assert bisect.request_from_args(ns).guest_root == "host"


def test_request_carries_it_and_refuses_other_words(tmp_path: Path) -> None:
    req = RunRequest(kernel=SERIES, out_dir=tmp_path, guest_root="minimal")
    assert RunRequest.from_dict(req.to_dict()) == req
    assert RunRequest.from_dict(req.to_dict()).guest_root == "minimal"
    # a request.json from before the option boots the host's root, as it did
    old = {k: v for k, v in req.to_dict().items() if k != "guest_root"}
    assert RunRequest.from_dict(old).guest_root == "host"
    with pytest.raises(UserError, match="--guest-root"):
        RunRequest(kernel="debian:6.12", out_dir=tmp_path, guest_root="/")


def test_mmdebstrap_argv_and_mirror_from_apt(tmp_path: Path) -> None:
    mirror = archive_uri(parse_deb822(SOURCES), "bookworm")
    assert mirror == "http://deb.debian.org/debian"  # not the -security one
    argv = guestroot.mmdebstrap_argv("bookworm", ("python3", "fio"), Path("/c/r.tmp"), mirror)
    assert argv == [
        "mmdebstrap",
        "--variant=minbase",
        "--include=python3,fio",
        "bookworm",
        "/c/r.tmp",
        "http://deb.debian.org/debian",
    ]
    trixie = parse_deb822(SOURCES.replace("bookworm", "trixie"))
    assert archive_uri(trixie, "bookworm") is None
    with pytest.raises(InfraError, match="--guest-root host"):
        guestroot.ensure(lambda suite: archive_uri(trixie, suite), tmp_path)


def test_the_package_list_covers_what_the_agent_runs() -> None:
    # guest/agent.py TOOLS and the checks' commands, by the package that ships them
    for package in ("python3", "fio", "xfsprogs", "e2fsprogs", "btrfs-progs", "dmsetup", "kmod"):
        assert package in guestroot.PACKAGES
    assert guestroot.root_key("bookworm", ("a", "b")) == guestroot.root_key("bookworm", ("b", "a"))
    assert guestroot.root_key("bookworm", ("a",)) != guestroot.root_key("bookworm", ("a", "b"))


def _mirror(suite: str) -> str:
    return "http://deb.debian.org/debian"


def _fake_mmdebstrap(calls: list[list[str]], rc: int = 0):
    def run(argv, **kw):
        calls.append(list(argv))
        if argv[0] == "mmdebstrap" and rc == 0:
            (Path(argv[4]) / "usr/bin").mkdir(parents=True)
        return subprocess.CompletedProcess(argv, rc, "", "E: mirror unreachable" if rc else "")

    return run


def test_ensure_builds_once_into_the_cache(tmp_path: Path, monkeypatch) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr(guestroot.proc, "run", _fake_mmdebstrap(calls))
    monkeypatch.setattr(guestroot.shutil, "which", lambda name: f"/usr/bin/{name}")
    root = guestroot.ensure(_mirror, tmp_path)
    assert root.parent == tmp_path and root.name.startswith("bookworm-")
    assert calls[0][4] != str(root)  # built beside it, then renamed into place
    for mount_point in ("harness/shared", "opt/harness", "usr/lib/modules"):
        assert (root / mount_point).is_dir()
    assert guestroot.ensure(_mirror, tmp_path) == root and len(calls) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", root.name]


def test_ensure_failure_names_the_fix_and_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(guestroot.proc, "run", _fake_mmdebstrap([], rc=1))
    monkeypatch.setattr(guestroot.shutil, "which", lambda name: f"/usr/bin/{name}")
    with pytest.raises(InfraError, match="mirror unreachable.*--guest-root host"):
        guestroot.ensure(_mirror, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [".lock"]
    monkeypatch.setattr(guestroot.shutil, "which", lambda name: None)
    with pytest.raises(InfraError, match="apt-get install mmdebstrap"):
        guestroot.ensure(_mirror, tmp_path)


def test_stage_agent_copies_the_package_and_bundles_with_the_roots_python(
    tmp_path: Path, monkeypatch
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    calls: list[list[str]] = []

    def run(argv, **kw):
        calls.append(list(argv))
        return subprocess.CompletedProcess(argv, 0, "fio-3.33\n", "")

    monkeypatch.setattr(guestroot.proc, "run", run)
    from harness.paths import GUEST_DIR

    staged = guestroot.stage_agent(root, GUEST_DIR)
    agent_dir = staged.package.removesuffix("/guest")
    assert agent_dir.startswith("/opt/harness/agent-")
    assert (root / staged.package.lstrip("/") / "agent.py").is_file()
    assert calls[0] == [
        "chroot",
        str(root),
        "/usr/bin/python3",
        "-S",
        "-E",
        f"{agent_dir}/guest/boot/bundle_build.py",
        f"{agent_dir}/guest",
        agent_dir,
        "agent",
    ]
    assert staged.argv == ("/usr/bin/python3", "-S", "-E", f"{agent_dir}/agent.py")
    assert staged.fio_version == "fio-3.33"
    assert guestroot.stage_agent(root, GUEST_DIR) == staged and len(calls) == 2  # once


def test_stage_agent_without_chroot_starts_from_source(tmp_path: Path, monkeypatch) -> None:
    def run(argv, **kw):
        return subprocess.CompletedProcess(argv, 1, "", "chroot: cannot change root: EPERM")

    monkeypatch.setattr(guestroot.proc, "run", run)
    from harness.paths import GUEST_DIR

    staged = guestroot.stage_agent(tmp_path, GUEST_DIR)
    assert staged.argv[-1] == f"{staged.package}/agent.py" and staged.fio_version == ""


def test_vng_argv_with_a_root_of_its_own() -> None:
    spec = BootSpec(
        image=Path("/k/vmlinuz"),
        exec_argv=("/usr/bin/python3", "/opt/harness/agent-1/agent.py"),
        rw_dirs=(),
        vng="/v/vng",
        root=Path("/c/guest-root/bookworm-1"),
        shares=(
            Share("/harness/shared", Path("/o/shared"), writable=True),
            Share("/usr/lib/modules/6.12", Path("/c/deb/lib/modules/6.12"), writable=False),
        ),
    )
    argv = vng_argv(spec)
    i = argv.index("--root")
    assert argv[i : i + 6] == [
        "--root",
        "/c/guest-root/bookworm-1",
        "--rwdir=/harness/shared=/o/shared",
        "--rodir=/usr/lib/modules/6.12=/c/deb/lib/modules/6.12",
        "--cwd",
        "/c/guest-root/bookworm-1",  # virtme-ng wants it inside the root
    ]
    assert not any(a.startswith("--rwdir=/o") for a in argv)
    with pytest.raises(UserError, match="guest root"):
        vng_argv(BootSpec(image=Path("/k/vmlinuz"), exec_argv=(), rw_dirs=(), root=Path("/a b")))


def test_guest_side_minimal_hides_host_paths(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "root"
    modules = tmp_path / "deb/lib/modules/6.12.48+deb13-amd64"
    modules.mkdir(parents=True)
    argv = ("/usr/bin/python3", "-S", "-E", "/opt/harness/agent-1/agent.py")
    staged = guestroot.StagedAgent(argv, "/opt/harness/agent-1/guest", "fio-3.33")
    monkeypatch.setattr(run_vm.guestroot, "ensure", lambda mirror: root)
    monkeypatch.setattr(run_vm.guestroot, "stage_agent", lambda r, g: staged)
    kernel = Kernel(
        spec="debian:6.12", image=tmp_path / "vmlinuz", release=modules.name, modules_dir=modules
    )
    req = RunRequest(kernel="debian:6.12", out_dir=tmp_path, guest_root="minimal")
    side = run_vm.guest_side(req, kernel, tmp_path / "shared")
    assert side.root == root and side.rw_dirs == () and side.shared == "/harness/shared"
    assert side.shares == (
        Share("/harness/shared", tmp_path / "shared", True),
        Share(f"/usr/lib/modules/{modules.name}", modules, False),
    )
    assert (root / "usr/lib/modules" / modules.name).is_dir()  # the mount point
    assert side.agent == staged.argv and side.fio_version == "fio-3.33"
    host = run_vm.guest_side(
        RunRequest(kernel="debian:6.12", out_dir=tmp_path), kernel, tmp_path / "shared"
    )
    assert host.root is None and host.rw_dirs == (tmp_path / "shared",) and host.shares == ()


def test_ab_reproducer_keeps_the_root(tmp_path: Path) -> None:
    """reproduce.sh pins each side's spec (a +series= becomes the built image): the root
    must travel explicitly or the re-run would boot the host's."""
    from harness.cli import ab as ab_cli
    from harness.workflows.ab import workflow as ab

    ns = build_parser().parse_args(
        ["ab", "--base", "debian:6.12", "--candidate", SERIES, "--out", str(tmp_path)]
    )
    req = ab_cli.request_from_args(ns)
    pinned = dataclasses.replace(req, candidate=ab.Side(ab.CANDIDATE, "image:/k/vmlinuz"))
    argv = ab.ab_argv(pinned)
    assert argv[argv.index("--guest-root") + 1] == "minimal"
    again = ab_cli.request_from_args(build_parser().parse_args([*argv, "--out", str(tmp_path)]))
    assert again.guest_root == "minimal"


# /proc/self/mountinfo lines (the format of this machine's): a partial root with a proc and a
# bind-mounted device node still in it, as a killed chroot build can leave them
MOUNTINFO = """\
25 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
612 25 0:5 /null /c/guest-root/bookworm-1.tmp-999/dev/null rw,nosuid shared:2 - devtmpfs udev rw
613 25 0:22 / /c/guest-root/bookworm-1.tmp-999/proc rw,nosuid,nodev,noexec - proc proc rw
"""


def test_a_half_built_root_with_mounts_in_it_is_never_deleted(tmp_path: Path, monkeypatch) -> None:
    tmp = Path("/c/guest-root/bookworm-1.tmp-999")
    assert guestroot.mounts_under(MOUNTINFO, tmp) == [f"{tmp}/dev/null", f"{tmp}/proc"]
    assert guestroot.mounts_under(MOUNTINFO, Path("/c/guest-root/bookworm-1.tmp-9")) == []
    # a stale partial build (a killed run) is removed by the next build, under the lock
    stale = tmp_path / f"bookworm-{guestroot.root_key(guestroot.SUITE, guestroot.PACKAGES)}.tmp-1"
    (stale / "usr").mkdir(parents=True)
    monkeypatch.setattr(guestroot.proc, "run", _fake_mmdebstrap([]))
    monkeypatch.setattr(guestroot.shutil, "which", lambda name: f"/usr/bin/{name}")
    guestroot.ensure(_mirror, tmp_path)
    assert not stale.exists()


def test_peer_suites_need_the_hosts_root_said_explicitly(tmp_path: Path) -> None:
    suite = "blktests:/src/blktests@loop"
    with pytest.raises(UserError, match="--guest-root host"):
        RunRequest(kernel=SERIES, out_dir=tmp_path, guest_root="minimal", suites=(suite,))
    ok = RunRequest(kernel=SERIES, out_dir=tmp_path, guest_root="host", suites=(suite,))
    assert ok.suites == (suite,)
    ns = build_parser().parse_args(
        ["run", "--kernel", SERIES, "--suite", suite, "--out", str(tmp_path)]
    )
    with pytest.raises(UserError, match="--guest-root host"):
        requests_from(ns)
    from harness.workflows.ab import workflow as ab

    with pytest.raises(UserError, match="--guest-root host"):
        ab.AbRequest(
            ab.Side(ab.BASE, "debian:6.12"),
            ab.Side(ab.CANDIDATE, SERIES),
            tmp_path,
            suites=(suite,),
            guest_root="minimal",
        )
