"""Print, one per line, the uv options that carry over pip's configuration (find-links, constraints, indexes).

uv reads no pip.conf and no PIP_* variables; a machine that points pip at local wheels or caps versions
must point uv there too, or the two would install different things.
"""

from __future__ import annotations

import os
import subprocess
import sys

OPTIONS = {
    "find-links": "--find-links",
    "constraint": "--constraint",
    "index-url": "--index-url",
    "extra-index-url": "--extra-index-url",
}


def usable(value: str) -> bool:
    """Return whether a location exists: a URL uv can reach, or a file or folder on this machine."""
    if value.startswith(("http://", "https://")):
        return True
    path = value.removeprefix("file://")
    return os.path.exists(path)


def main() -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=False
    ).stdout
    seen: set[tuple[str, str]] = set()
    # pip takes the best version from every index; uv's default takes the first index that has the package.
    print("--index-strategy")
    print("unsafe-best-match")
    for line in listed.splitlines():
        key, _, raw = line.partition("=")
        name = key.rsplit(".", 1)[-1]
        if name not in OPTIONS:
            continue
        for value in raw.strip().strip("'\"").split():
            if usable(value) and (name, value) not in seen:
                seen.add((name, value))
                print(OPTIONS[name])
                print(value)


if __name__ == "__main__":
    main()
