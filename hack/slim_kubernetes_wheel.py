"""Drop from the kubernetes client's wheel the parts regcred never imports (the image's builder runs this).

`python slim_kubernetes_wheel.py WHEEL_DIR` rewrites WHEEL_DIR's one kubernetes wheel in place:

- kubernetes/aio/: the asyncio client, a second generated client that nothing imports
  (68 MB on disk, of the package's 128 MB);
- kubernetes/client/api/: the generated API classes (CoreV1Api, ...), which
  kubernetes.client loads lazily, by name, on first use (34 MB on disk). regcred sends every
  request through regcred.kube.KubeClient and names none of them.

The models stay: kubernetes.config and kubernetes.watch import some at start. RECORD
loses the dropped files' lines, so pip installs a package consistent with its record.
docs/install.md ("What the image carries") has the figures and the tests that run the
operator from the slimmed image.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

DROPPED = ("kubernetes/aio/", "kubernetes/client/api/")


def slim(wheel: Path) -> int:
    """Rewrite `wheel` without the DROPPED folders; return how many files went."""
    slimmed = wheel.with_suffix(".slim")
    dropped = 0
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(slimmed, "w", zipfile.ZIP_DEFLATED) as target:
        for entry in source.infolist():
            if entry.filename.startswith(DROPPED):
                dropped += 1
                continue
            data = source.read(entry)
            if entry.filename.endswith(".dist-info/RECORD"):
                lines = data.decode().splitlines(keepends=True)
                data = "".join(line for line in lines if not line.startswith(DROPPED)).encode()
            target.writestr(entry, data)
    slimmed.replace(wheel)
    return dropped


def main(argv: list[str]) -> int:
    (folder,) = argv
    (wheel,) = Path(folder).glob("kubernetes-*.whl")
    print(f"{wheel.name}: dropped {slim(wheel)} files under {', '.join(DROPPED)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
