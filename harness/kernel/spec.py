"""Kernel spec strings -> Kernel. One grammar, usable wherever a kernel is expected.

debian:VERSION              Debian's package (6.1, 6.12, 7.3, 6.12.117+deb12, ...)
image:PATH[,modules=DIR]    a kernel image you already have
host                        the running kernel: no VM, the agent runs here
git:TREE@REF[+...] / src:.. built from source (see harness.kernel.build)
"""

from __future__ import annotations

import os

from harness.errors import UserError
from harness.kernel import debian, image
from harness.kernel.model import Kernel

DEFAULT_KERNEL = "debian:6.12"

FORMS = "debian:VERSION, image:PATH[,modules=DIR], host, git:TREE@REF[+series=..], src:.."


def kernel_for_spec(text: str) -> Kernel:
    """Turn a spec string into a bootable Kernel (fetching or building as needed)."""
    text = text.strip()
    if text == "host":
        return Kernel(
            spec="host", image=None, release=os.uname().release, provenance={"source": "host"}
        )
    if text.startswith("debian:"):
        version = text.removeprefix("debian:")
        if not version:
            raise UserError("'debian:' needs a version, e.g. debian:6.12 or debian:7.3")
        return debian.fetch(version, spec=text)
    if text.startswith("image:"):
        return image.from_spec(text)
    if text.startswith(("git:", "src:")):
        from harness.kernel import build  # heavy: only when building

        return build.kernel_from_spec(text)
    raise UserError(f"unknown kernel spec '{text}': use one of {FORMS}")
