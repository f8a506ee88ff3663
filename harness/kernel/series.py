"""Patch series: load them from an mbox, a directory of patches or a message-id.

An mbox may come straight from a mailing-list archive, so cover letters ([PATCH 0/N]) and
replies ("Re: ...") are dropped and the patches are ordered by their n/N numbers. The
series hash covers the patch texts in apply order, so the same series from an mbox or a
directory hashes the same. Parsing and the `git am` failure analysis are pure functions;
only `fetch_message_id` runs a program (b4).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from harness import proc
from harness.errors import InfraError, MissingToolError, UserError

log = logging.getLogger(__name__)

_FROM_LINE = re.compile(r"^From \S+ .*\d{4}\s*$")
_TAG = re.compile(r"^\[([^\]]*)\]")
_VERSION = re.compile(r"\bv(\d+)\b", re.IGNORECASE)
_NUMBER = re.compile(r"\b(\d+)/(\d+)\b")
_MSGID = re.compile(r"^<?[^\s/<>@]+@[^\s/<>@]+>?$")
PATCH_SUFFIXES = (".patch", ".diff", ".mbox", ".mbx", ".eml")


@dataclass(frozen=True)
class Patch:
    """One patch mail: its subject and the full message text (headers and diff)."""

    subject: str
    text: str
    number: int | None = None  # n of [PATCH n/N], None for an unnumbered patch
    total: int | None = None
    version: int = 1


@dataclass(frozen=True)
class Series:
    """Patches in apply order, plus where they came from."""

    source: str
    patches: tuple[Patch, ...]

    @property
    def sha256(self) -> str:
        digest = hashlib.sha256()
        for patch in self.patches:
            digest.update(_body(patch.text).encode())
            digest.update(b"\0")
        return digest.hexdigest()

    @property
    def patchset_hash(self) -> str:
        """KCIDB's patchset hash: sha256 over the sha256 of each whole patch, one a line."""
        hashes = "".join(hashlib.sha256(p.text.encode()).hexdigest() + "\n" for p in self.patches)
        return hashlib.sha256(hashes.encode()).hexdigest()

    def mbox(self) -> str:
        """The patches as one mbox, ready for `git am`."""
        return "".join(p.text if p.text.endswith("\n") else p.text + "\n" for p in self.patches)


@dataclass(frozen=True)
class ApplyFailure:
    """Where `git am` stopped: the patch, and (when known) the file and hunk."""

    patch: str
    file: str | None = None
    line: int | None = None
    hunk: str | None = None

    def __str__(self) -> str:
        where = f" in {self.file}" if self.file else ""
        if self.hunk:
            where += f" at hunk {self.hunk}"
        elif self.line:
            where += f" near line {self.line}"
        return f"patch {self.patch!r} does not apply{where}"


def split_mbox(text: str) -> list[str]:
    """Split mbox text into messages at their 'From <id> <date>' separator lines."""
    messages: list[list[str]] = []
    for line in text.splitlines(keepends=True):
        if _FROM_LINE.match(line) or not messages:
            messages.append([])
        messages[-1].append(line)
    return ["".join(m) for m in messages if any(x.strip() for x in m)]


def subject_of(message: str) -> str:
    """The Subject header, unfolded ('' when there is none)."""
    headers = message.split("\n\n", 1)[0]
    match = re.search(r"^Subject:[ \t]*(.*(?:\n[ \t]+.*)*)", headers, re.MULTILINE | re.IGNORECASE)
    return " ".join(match.group(1).split()) if match else ""


def _has_diff(message: str) -> bool:
    return bool(re.search(r"^(diff --git |--- \S.*\n\+\+\+ )", message, re.MULTILINE))


def _body(message: str) -> str:
    """Subject plus diff, without the mail envelope and signature.

    The same patch exported by git format-patch, saved from lore or fetched by b4 differs
    in From/Date lines, trailers and the '-- ' signature; the hash must not.
    """
    start = re.search(r"^diff --git |^--- \S", message, re.MULTILINE)
    diff = message[start.start() :] if start else message
    diff = re.split(r"^-- \n", diff, maxsplit=1, flags=re.MULTILINE)[0]
    subject = re.sub(r"^\[[^\]]*\]\s*", "", subject_of(message))
    return subject + "\n" + diff.rstrip() + "\n"


def parse_patches(text: str) -> list[Patch]:
    """Patch mails in an mbox, without cover letters and replies, in file order."""
    patches = []
    for message in split_mbox(text):
        subject = subject_of(message)
        if subject.lower().startswith(("re:", "aw:")) or not _has_diff(message):
            continue
        tag = _TAG.match(subject)
        number, total, version = None, None, 1
        if tag:
            found_version = _VERSION.search(tag.group(1))
            version = int(found_version.group(1)) if found_version else 1
            found_number = _NUMBER.search(tag.group(1))
            if found_number:
                number, total = int(found_number.group(1)), int(found_number.group(2))
            if number == 0:
                continue
        patches.append(Patch(subject, message, number, total, version))
    return patches


def order_patches(patches: list[Patch], source: str) -> tuple[Patch, ...]:
    """Sort numbered patches by n/N; refuse mixed versions or gaps (an incomplete series)."""
    if not patches:
        raise UserError(f"no patches found in {source}: expected git format-patch mails")
    versions = sorted({p.version for p in patches})
    if len(versions) > 1:
        raise UserError(
            f"{source} mixes series versions {versions}: save one version (b4 am -v N) and retry"
        )
    if any(p.number is None for p in patches):
        return tuple(patches)
    ordered = sorted(patches, key=lambda p: p.number or 0)
    total = ordered[-1].total or len(ordered)
    have = [p.number for p in ordered]
    if have != list(range(1, total + 1)):
        raise UserError(
            f"{source} holds patches {have} of a {total}-patch series: save the whole series"
        )
    return tuple(ordered)


def load_series(ref: str) -> Series:
    """A series from an mbox file, a directory of patch files, or a message-id (via b4)."""
    path = Path(ref).expanduser()
    if path.is_dir():
        files = sorted(f for f in path.iterdir() if f.suffix in PATCH_SUFFIXES)
        if not files:
            raise UserError(f"no *.patch files in {path}: write them with git format-patch -o")
        patches = [p for f in files for p in parse_patches(f.read_text(errors="replace"))]
        return Series(str(path.resolve()), order_patches(patches, str(path)))
    if path.is_file():
        patches = parse_patches(path.read_text(errors="replace"))
        return Series(str(path.resolve()), order_patches(patches, str(path)))
    if is_message_id(ref):
        return load_series(str(fetch_message_id(ref)))
    raise UserError(
        f"series {ref!r} not found: give an mbox file, a patch directory or a message-id"
    )


def is_message_id(ref: str) -> bool:
    return bool(_MSGID.match(ref)) and not ref.startswith(("/", ".", "~"))


def b4_argv(message_id: str, outdir: Path) -> list[str]:
    """b4 fetching a whole thread's latest series into outdir/series.mbx."""
    return ["b4", "am", "--no-cover", "-o", str(outdir), "-n", "series", message_id.strip("<>")]


def fetch_message_id(message_id: str, cache: Path | None = None) -> Path:
    """Fetch a series by message-id with b4 into the cache (once) and return the mbox path."""
    from harness.paths import cache_subdir

    mid = message_id.strip("<>")
    outdir = (cache or cache_subdir("kbuild/series")) / re.sub(r"[^A-Za-z0-9_.@-]", "_", mid)
    mbox = outdir / "series.mbx"
    if mbox.is_file():
        return mbox
    alternative = (
        f"save the series as an mbox (e.g. https://lore.kernel.org/all/{mid}/t.mbox.gz, "
        "gunzipped, or `b4 am` on a networked machine) and pass +series=/path/to/file.mbox"
    )
    try:
        proc.require_tool("b4")
    except MissingToolError:
        raise UserError(
            f"fetching message-id {mid} needs b4 (pip install b4); or {alternative}"
        ) from None
    outdir.mkdir(parents=True, exist_ok=True)
    try:
        proc.run(b4_argv(mid, outdir), timeout=120)
    except InfraError as exc:
        raise UserError(f"could not fetch {mid} with b4 (offline?): {alternative}") from exc
    if not mbox.is_file():
        raise UserError(f"b4 found no series for {mid}: {alternative}")
    return mbox


def failed_patch_number(am_output: str) -> str | None:
    """'0002 loop: ...' from git am's 'Patch failed at 0002 loop: ...' line."""
    match = re.search(r"^Patch failed at (.*)$", am_output, re.MULTILINE)
    return match.group(1).strip() if match else None


def analyse_apply_failure(patch_label: str, patch_text: str, apply_output: str) -> ApplyFailure:
    """Name the file and hunk from `git apply --check -v` output on the failing patch."""
    match = re.search(r"^error: patch failed: (.+):(\d+)$", apply_output, re.MULTILINE)
    if match:
        file, line = match.group(1), int(match.group(2))
        return ApplyFailure(patch_label, file, line, hunk_at(patch_text, file, line))
    match = re.search(
        r"^error: (?:(.+): does not exist in index|(.+): No such file or directory"
        r"|could not build fake ancestor)",
        apply_output,
        re.MULTILINE,
    )
    file = (match.group(1) or match.group(2)) if match else None
    if not file:
        conflict = re.search(r"Merge conflict in (\S+)", apply_output)
        file = conflict.group(1) if conflict else None
    return ApplyFailure(patch_label, file)


def hunk_at(patch_text: str, file: str, line: int) -> str | None:
    """'#2 (@@ -692,12 +692,18 @@ ...)' for the hunk of `file` that starts at old `line`."""
    current, index = None, 0
    for raw in patch_text.splitlines():
        if raw.startswith("+++ "):
            current, index = raw[4:].strip().removeprefix("b/"), 0
        elif raw.startswith("@@ ") and current == file:
            index += 1
            match = re.match(r"@@ -(\d+)", raw)
            if match and int(match.group(1)) == line:
                return f"#{index} ({raw.strip()})"
    return None
