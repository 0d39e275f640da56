"""A short libFuzzer run of each target in tests/fuzz (a smoke test, not a
fuzzing campaign): seeded with the API fixtures (tests/fixtures) and the
inputs of bugs the fuzzer found (tests/fuzz/regress), new inputs go to a
temporary corpus. Skipped unless a fuzz build exists:

    CC=clang meson setup build-fuzz -Dfuzz=true \\
        -Db_sanitize=address,undefined -Db_lundef=false
    ninja -C build-fuzz

Environment: PRIMEFS_FUZZ_BUILD (default build-fuzz), PRIMEFS_FUZZ_TIME
(seconds per target, default 20).
"""

import os
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FUZZ_BUILD = Path(os.environ.get("PRIMEFS_FUZZ_BUILD",
                                 ROOT / "build-fuzz")).resolve()
SECONDS = int(os.environ.get("PRIMEFS_FUZZ_TIME", "20"))
TARGETS = ["fuzz_model", "fuzz_errmap", "fuzz_sftp"]


@pytest.mark.parametrize("name", TARGETS)
def test_fuzz_smoke(name, tmp_path):
    exe = FUZZ_BUILD / "tests" / "fuzz" / name
    if not exe.exists():
        pytest.skip(f"no fuzz build ({exe} missing)")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    env = dict(os.environ,
               UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1",
               ASAN_OPTIONS="detect_leaks=1:abort_on_error=0")
    # A fixed seed: CI runs the same inputs every time, so a red run is a
    # bug to reproduce, not luck. Campaigns (see tests/fuzz/meson.build)
    # use random seeds.
    cmd = [str(exe), f"-max_total_time={SECONDS}", "-seed=1", "-timeout=10",
           "-rss_limit_mb=2048", "-print_final_stats=1",
           f"-artifact_prefix={tmp_path}/",
           str(corpus), str(HERE / "fixtures"), str(HERE / "fuzz" / "regress")]
    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True,
                       errors="replace", timeout=SECONDS + 120)
    artifacts = sorted(p.name for p in tmp_path.iterdir()
                       if p.name.startswith(("crash-", "leak-", "timeout-", "oom-")))
    assert r.returncode == 0 and not artifacts, (
        f"{name} exited {r.returncode}; artifacts {artifacts} in {tmp_path}\n"
        + r.stderr[-6000:])
    assert "Done" in r.stderr or "DONE" in r.stderr, r.stderr[-2000:]
