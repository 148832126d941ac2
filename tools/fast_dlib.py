"""Swap the venv's dlib between the prebuilt ``dlib-bin`` wheel and a dlib
built here from its sdist against OpenBLAS, with AVX2/FMA code (the "fast
build": face encoding ~4x faster and HOG detection ~12-18% faster than
dlib-bin here, same embeddings to 3e-7; ``benchmarks/dlib_build.py``).

Run by the Makefile (``make install FAST=1`` / ``FAST=0``), with the venv's
Python (standard library only)::

    .venv/bin/python tools/fast_dlib.py apply   [--venv .venv] [--uv UV] [--cache DIR]
    .venv/bin/python tools/fast_dlib.py reapply [...]  # after a `uv sync`: the venv's fast wheel again, never a build
    .venv/bin/python tools/fast_dlib.py revert  [...]  # back to dlib-bin
    .venv/bin/python tools/fast_dlib.py status  [...]

``apply``: if the cache (``--cache``, default ``$XDG_CACHE_HOME`` or
``~/.cache``, then ``facesearch/wheels``) holds a wheel for this dlib version,
Python, platform, CPU level, BLAS and compiler, install it (under a
second); else build it (6.5 minutes on the 2 cores here with clang, 11.6
with GCC; the log is kept beside the wheel), cache it, install it.
Installing means: uninstall ``dlib-bin`` from the venv, install
the wheel with ``--no-deps``, then check that ``import dlib`` works, that
BLAS is on and that the HOG detector runs; if not, dlib-bin is put back.
Whatever fails (no AVX2, no compiler, no OpenBLAS and no apt-get, a build
error), the venv is left with a working dlib-bin, a warning says why, and
the exit status is 0: ``make install FAST=1`` never leaves a broken venv.

The build: ``pip wheel --no-binary dlib dlib==<dlib-bin's version without
.postN>`` in a throwaway venv (pip's build isolation brings cmake from PyPI),
compiled by clang (``CC=clang CXX=clang++``; Debian's ``clang`` is installed
with apt-get when missing and we are root; else GCC) with
``CXXFLAGS=CFLAGS=-march=x86-64-v3`` (AVX2, FMA, BMI; on top of dlib's
Release ``-O3``) and ``DLIB_USE_BLAS=ON``, ``DLIB_USE_LAPACK=ON``,
``DLIB_USE_CUDA=OFF``, ``DLIB_NO_GUI_SUPPORT=ON``. Why, measured on the
2-core EPYC here (HOG on a 640x480 photo, ``benchmarks/dlib_build.py`` and
C++ micro-benchmarks): with GCC 12, dlib's own choice for a Python build
(``-mavx``) makes HOG 2x slower than dlib-bin (GCC 14, ``-mavx``), and with
``-march=x86-64-v3`` detection is as fast but the image upsampling
(``pyramid_up``, upsample 1) is ~50% slower (the whole call ~4%); clang (14
or 16) makes both faster than dlib-bin's (in a C++ micro-benchmark, clang's
``-mavx`` code is as fast as its x86-64-v3 code; x86-64-v3 is kept for GCC). The face descriptor (~15 ms,
nearly all OpenBLAS sgemm) is the same with either compiler or flag. A CPU
without AVX2/FMA keeps dlib-bin. OpenBLAS is the system's (Debian
``libopenblas-dev``, installed with apt-get when missing and we are root);
the wheel links to it, so it needs ``libopenblas0`` at run time, which the
check after installing verifies.

The venv remembers the swap in ``<venv>/.fast-dlib`` (the cache key and the
wheel), so that the Makefile can re-apply it from the cache after a
``uv sync`` (which, being exact, removes the ``dlib`` distribution and puts
dlib-bin back) and undo it with ``FAST=0``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CPU_LEVEL = "x86-64-v3"
CPU_FLAGS = f"-march={CPU_LEVEL}"
# /proc/cpuinfo flags that -march=x86-64-v3 code may use.
REQUIRED_CPU_FEATURES = {"avx", "avx2", "fma", "bmi1", "bmi2", "f16c", "movbe"}
BLAS = "openblas"
DLIB_CMAKE_ENV = {
    "DLIB_USE_BLAS": "ON",
    "DLIB_USE_LAPACK": "ON",
    "DLIB_USE_CUDA": "OFF",
    "DLIB_NO_GUI_SUPPORT": "ON",
}
APT_PACKAGES = {"make": "make"}  # package: command it provides (plus a compiler, OpenBLAS, Python.h)
MARKER = ".fast-dlib"
CHECK = (
    "import json, numpy, dlib\n"
    "dlib.get_frontal_face_detector()(numpy.zeros((80, 80, 3), numpy.uint8), 0)\n"
    "print(json.dumps({'version': dlib.__version__, 'blas': bool(dlib.DLIB_USE_BLAS)}))\n"
)


class Failure(Exception):
    """A step that could not be done; the message says why."""


def say(message: str) -> None:
    print(f"fast-dlib: {message}", flush=True)


def warn(message: str) -> None:
    print(f"fast-dlib: WARNING: {message}", file=sys.stderr, flush=True)


class Venv:
    def __init__(self, path: Path, uv: str) -> None:
        self.path = path
        self.python = path / "bin" / "python"
        self.uv = uv
        if not self.python.exists():
            raise Failure(f"no venv at {path} (run `make install` first)")

    def run_python(self, code: str) -> subprocess.CompletedProcess:
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
        return subprocess.run([str(self.python), "-c", code], capture_output=True, text=True, env=env)

    def tags(self) -> dict[str, str]:
        out = self.run_python(
            "import json, sys, sysconfig; print(json.dumps({'py': 'cp%d%d' % sys.version_info[:2], "
            "'platform': sysconfig.get_platform().replace('-', '_').replace('.', '_'), "
            "'include': sysconfig.get_paths()['include']}))"
        )
        if out.returncode:
            raise Failure(f"the venv's Python does not run: {out.stderr.strip()}")
        return json.loads(out.stdout)

    def dists(self) -> dict[str, str]:
        """Installed distributions that provide the ``dlib`` module: name -> version."""
        found = {}
        for info in self.path.glob("lib/python*/site-packages/*.dist-info"):
            name, _, version = info.name[: -len(".dist-info")].partition("-")
            if name.lower().replace("_", "-") in ("dlib", "dlib-bin"):
                found[name.lower().replace("_", "-")] = version
        return found

    def uv_pip(self, *args: str) -> None:
        # --no-config: the project's [tool.uv] override-dependencies turns
        # every `dlib` requirement off, which would make `uv pip install dlib.whl` a no-op.
        cmd = [self.uv, "pip", *args[:1], "--no-config", "--python", str(self.python), *args[1:]]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            raise Failure(f"`{' '.join(cmd)}` failed: {done.stderr.strip()[-800:]}")

    def check(self) -> dict:
        """Import dlib in the venv and run the HOG detector once; BLAS must be on."""
        out = self.run_python(CHECK)
        if out.returncode:
            raise Failure(f"dlib does not work in the venv: {out.stderr.strip()[-600:]}")
        info = json.loads(out.stdout.strip().splitlines()[-1])
        if not info["blas"]:
            raise Failure("the installed dlib has no BLAS (DLIB_USE_BLAS is false)")
        return info

    @property
    def marker(self) -> Path:
        return self.path / MARKER

    def read_marker(self) -> dict | None:
        try:
            return json.loads(self.marker.read_text())
        except (OSError, ValueError):
            return None


def dlib_bin_version() -> str:
    """dlib-bin's version in uv.lock (the source build uses the same dlib)."""
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    for package in lock.get("package", []):
        if package["name"] == "dlib-bin":
            return package["version"]
    raise Failure("dlib-bin is not in uv.lock")


def cpu_problem() -> str | None:
    """Why this machine cannot run the fast build, or None."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return f"the fast build is made for Linux x86_64 (this is {platform.system()} {platform.machine()})"
    try:
        flags = set()
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError as exc:
        return f"cannot read /proc/cpuinfo: {exc}"
    missing = REQUIRED_CPU_FEATURES - flags
    if missing:
        return f"this CPU lacks {', '.join(sorted(missing))}, which the fast build ({CPU_LEVEL}) needs"
    return None


def cache_root(arg: str | None) -> Path:
    if arg:
        return Path(arg).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "facesearch" / "wheels"


def can_apt() -> bool:
    return bool(shutil.which("apt-get")) and os.geteuid() == 0


def compiler() -> str:
    """``clang`` when clang is there or can be installed (it makes faster
    HOG code than GCC 12), else ``gcc``."""
    if shutil.which("clang++") and shutil.which("clang") or can_apt():
        return "clang"
    return "gcc"


def cache_key(version: str, tags: dict[str, str], cc: str) -> str:
    return f"dlib-{version}-{tags['py']}-{tags['platform']}-{CPU_LEVEL}-{BLAS}-{cc}"


def cached_wheel(folder: Path) -> Path | None:
    wheels = sorted(folder.glob("dlib-*.whl"))
    return wheels[-1] if wheels else None


# --- building ---------------------------------------------------------------

def ensure_build_tools(include_dir: str, cc: str) -> None:
    """The compiler, make, Python headers and OpenBLAS the build needs;
    missing ones are installed with apt-get when we can."""
    needed = [pkg for pkg, cmd in APT_PACKAGES.items() if not shutil.which(cmd)]
    if cc == "clang" and not (shutil.which("clang") and shutil.which("clang++")):
        needed.append("clang")
    if cc == "gcc" and not shutil.which("g++"):
        needed.append("g++")
    if not has_openblas():
        needed.append("libopenblas-dev")
    if not (Path(include_dir) / "Python.h").exists():
        if not include_dir.startswith("/usr/"):
            raise Failure(f"the Python headers are missing ({include_dir}/Python.h)")
        needed.append("python3-dev")
    if not needed:
        return
    if not can_apt():
        raise Failure(f"missing {', '.join(needed)} and cannot install them (needs apt-get as root)")
    say(f"installing {' '.join(needed)} with apt-get")
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", *needed]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if subprocess.run(cmd, capture_output=True, env=env).returncode:
        subprocess.run(["apt-get", "update"], capture_output=True, env=env)
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if done.returncode:
            raise Failure(f"apt-get install {' '.join(needed)} failed: {done.stderr.strip()[-500:]}")


def has_openblas() -> bool:
    """Is there an OpenBLAS to link with (libopenblas.so, the -dev symlink)?"""
    dirs = ["/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib"]
    return any(Path(d, "libopenblas.so").exists() for d in dirs)


def build_wheel(venv: Venv, version: str, tags: dict[str, str], cc: str, folder: Path) -> Path:
    """Build the dlib wheel with compiler ``cc`` into ``folder`` (with
    ``build.log`` and ``build.json``); returns the wheel."""
    ensure_build_tools(tags["include"], cc)
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / "build.log"
    compilers = {"CC": "clang", "CXX": "clang++"} if cc == "clang" else {"CC": "gcc", "CXX": "g++"}
    env = dict(os.environ, CXXFLAGS=CPU_FLAGS, CFLAGS=CPU_FLAGS, **compilers, **DLIB_CMAKE_ENV)
    env.pop("PIP_REQUIRE_VIRTUALENV", None)
    started = time.monotonic()
    say(f"building dlib {version} with OpenBLAS, {cc} and {CPU_FLAGS} (about 7 minutes on 2 cores); log: {log_path}")
    with tempfile.TemporaryDirectory(prefix="fast-dlib-") as tmp, open(log_path, "w") as log:
        build_venv, out = Path(tmp) / "venv", Path(tmp) / "out"
        steps = [
            [venv.uv, "venv", "--no-config", "--seed", "--quiet", "--python", str(venv.python), str(build_venv)],
            [str(build_venv / "bin" / "python"), "-m", "pip", "wheel", "--no-deps", "--no-cache-dir",
             "--no-binary", "dlib", "--disable-pip-version-check", "-v", "-w", str(out), f"dlib=={version}"],
        ]
        for cmd in steps:
            log.write(f"$ {' '.join(cmd)}\n")
            log.flush()
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
            stop = threading.Event()
            threading.Thread(target=_progress, args=(log_path, started, stop), daemon=True).start()
            try:
                code = proc.wait()
            finally:
                stop.set()
            if code:
                tail = log_path.read_text(errors="replace").splitlines()[-15:]
                raise Failure(f"the build failed (exit {code}); end of {log_path}:\n  " + "\n  ".join(tail))
        built = sorted(out.glob("dlib-*.whl"))
        if not built:
            raise Failure(f"pip made no wheel; see {log_path}")
        wheel = folder / built[0].name
        shutil.move(str(built[0]), wheel)
    seconds = time.monotonic() - started
    (folder / "build.json").write_text(json.dumps({
        "dlib": version, "python": tags["py"], "platform": tags["platform"], "cxxflags": CPU_FLAGS,
        "cmake": DLIB_CMAKE_ENV, "blas": BLAS, "build_seconds": round(seconds, 1),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "compiler": _compiler_version(compilers["CXX"]),
    }, indent=2) + "\n")
    say(f"built {wheel.name} in {seconds / 60:.1f} min, cached in {folder}")
    return wheel


def _progress(log_path: Path, started: float, stop: threading.Event) -> None:
    """Every 60 s, print the build's last "[ NN%]" line."""
    while not stop.wait(60):
        percent = ""
        try:
            for line in reversed(log_path.read_text(errors="replace").splitlines()[-40:]):
                if line.lstrip().startswith("[") and "%]" in line:
                    percent = line.strip()[:7]
                    break
        except OSError:
            pass
        say(f"  still building ({(time.monotonic() - started) / 60:.0f} min) {percent}")


def _compiler_version(cxx: str) -> str:
    try:
        return subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        return "?"


# --- installing -------------------------------------------------------------

def install_wheel(venv: Venv, wheel: Path, key: str) -> dict:
    """Replace dlib-bin (and any dlib) by ``wheel``; put dlib-bin back if
    the result does not work."""
    dists = venv.dists()
    bin_version = dists.get("dlib-bin") or dlib_bin_version()
    try:
        if dists:
            venv.uv_pip("uninstall", *sorted(dists))
        venv.uv_pip("install", "--no-deps", str(wheel))
        info = venv.check()
    except Failure:
        restore_dlib_bin(venv, bin_version)
        raise
    venv.marker.write_text(json.dumps({"key": key, "wheel": str(wheel)}) + "\n")
    return info


def restore_dlib_bin(venv: Venv, version: str | None = None) -> None:
    dists = venv.dists()
    if "dlib" in dists:
        venv.uv_pip("uninstall", *sorted(dists))
        dists = {}
    if "dlib-bin" not in dists:
        venv.uv_pip("install", "--no-deps", f"dlib-bin=={version or dlib_bin_version()}")
    venv.marker.unlink(missing_ok=True)


# --- commands ---------------------------------------------------------------

def reapply(venv: Venv, marker: dict) -> None:
    """Install again the wheel the venv had (after a `uv sync` removed it)."""
    wheel = Path(marker.get("wheel", ""))
    if set(venv.dists()) == {"dlib"}:
        return  # still there (the sync did not touch it)
    if not wheel.is_file():
        raise Failure(f"the fast build this venv had is no longer cached ({wheel}); "
                      "`make install FAST=1` builds it again")
    started = time.monotonic()
    install_wheel(venv, wheel, marker["key"])
    say(f"re-applied the fast build {marker['key']} in {time.monotonic() - started:.1f} s")


def apply(venv: Venv, cache: Path) -> None:
    problem = cpu_problem()
    if problem:
        raise Failure(problem)
    version = dlib_bin_version().split(".post")[0]
    tags = venv.tags()
    cc = compiler()
    key = cache_key(version, tags, cc)
    folder = cache / key
    marker = venv.read_marker()
    if marker and marker.get("key") == key and set(venv.dists()) == {"dlib"}:
        try:
            venv.check()
            say(f"already installed: {key}")
            return
        except Failure:
            pass
    wheel = cached_wheel(folder)
    if wheel is None:
        wheel = build_wheel(venv, version, tags, cc, folder)
    else:
        say(f"using the cached {wheel}")
    started = time.monotonic()
    try:
        info = install_wheel(venv, wheel, key)
    except Failure as exc:
        raise Failure(f"{exc}\n(to build it again: rm -r {folder})") from None
    say(f"installed dlib {info['version']} (OpenBLAS, {CPU_LEVEL}, {cc}) in {time.monotonic() - started:.1f} s "
        f"in place of dlib-bin; `make install FAST=0` goes back")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["apply", "reapply", "revert", "status"])
    parser.add_argument("--venv", default=str(REPO / ".venv"))
    parser.add_argument("--uv", default=shutil.which("uv") or str(REPO / ".tools" / "bin" / "uv"))
    parser.add_argument("--cache", default=None, help="wheel cache (default ~/.cache/facesearch/wheels)")
    args = parser.parse_args(argv)
    cache = cache_root(args.cache)
    try:
        venv = Venv(Path(args.venv), args.uv)
    except Failure as exc:
        warn(str(exc))
        return 0 if args.command in ("reapply", "revert") else 1
    if args.command == "status":
        marker = venv.read_marker()
        print(json.dumps({"dists": venv.dists(), "fast_build": marker, "cache": str(cache)}, indent=2))
        return 0
    if args.command == "revert":
        if venv.read_marker() or "dlib" in venv.dists():
            restore_dlib_bin(venv)
            say("back to dlib-bin")
        return 0
    marker = venv.read_marker()
    if args.command == "reapply" and not marker:
        return 0  # the venv did not have the fast build: nothing to do
    try:
        if args.command == "reapply":
            reapply(venv, marker)
        else:
            apply(venv, cache)
    except Failure as exc:
        warn(f"{exc}\nfast-dlib: keeping dlib-bin (no BLAS: face encoding ~4x slower).")
        try:
            restore_dlib_bin(venv)
        except Failure as again:
            warn(f"could not restore dlib-bin either: {again}; run `make install FAST=0`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
