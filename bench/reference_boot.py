"""Benchmark: the reference platform, end to end, and boot times under QEMU.

Builds the reference snaps (Debian packages from the cache after the first run),
runs the whole chain (store, brand, signed model, ``ucimage snap``), then boots
the image BIOS and UEFI ``--runs`` times each and prints, per boot, the wall time
to the device's marker and the milestones (GRUB, kernel, initramfs, base).

The reference recipe measured 12-17 s (BIOS) and 15-21 s (UEFI) to the marker
under TCG on 2 cores. Run: ``.venv/bin/python bench/reference_boot.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from ucimage.boot.qemu import plan_boot, run_boot  # noqa: E402
from ucimage.reference.chain import ChainPaths, Ucimage, prepare_image  # noqa: E402
from ucimage.reference.console import EXPECT, parse_device_report  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=1, help="boots per firmware (1)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ucimage-bench-") as tmp:
        paths = ChainPaths(Path(tmp))
        start = time.monotonic()
        prepare_image(Ucimage(cache_dir=paths.cache), paths)
        print(f"chain (reference build .. ucimage snap): {time.monotonic() - start:.1f} s")
        for firmware in ("bios", "uefi"):
            times = []
            for run in range(1, args.runs + 1):
                plan = plan_boot(paths.image, uefi=firmware == "uefi", expect=EXPECT, timeout=300)
                result = run_boot(plan)
                if not result.ok:
                    print(f"{firmware} run {run}: FAIL {result.reason}")
                    return 1
                parse_device_report(result.console)
                marks = ", ".join(f"{name} {t:.1f}" for name, t in result.milestones)
                print(f"{firmware} run {run}: marker after {result.elapsed:.1f} s ({marks})")
                times.append(result.elapsed)
            print(
                f"{firmware}: median {statistics.median(times):.1f} s over {len(times)} run(s), "
                f"accel {plan.accel}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
