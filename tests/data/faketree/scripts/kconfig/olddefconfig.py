"""olddefconfig for the fake tree: last value wins; ARM64 options do not exist on x86."""

import re
import sys

path = sys.argv[1]
values: dict[str, str] = {}
for line in open(path).read().splitlines():
    m = re.match(r"^(CONFIG_\w+)=(.*)$", line) or re.match(r"^# (CONFIG_\w+) is not set$", line)
    if m and not m.group(1).startswith("CONFIG_ARM64"):
        values[m.group(1)] = m.group(2) if "=" in line else "n"
out = [f"{k}={v}" if v != "n" else f"# {k} is not set" for k, v in sorted(values.items())]
open(path, "w").write("\n".join(out) + "\n")
