"""One function's execution environment, laid out the way Lambda lays out python3.12's.

The function zip unpacked read-only at /var/task, its layers at /opt, CPython at /var/lang (its site-packages
holding the SDK the runtime bundles, and nothing else), awslambdaric at /var/runtime, a 512 MB tmpfs at /tmp, and
nothing writable besides. bubblewrap builds it as root (so that it can mount), then `setpriv` drops to Lambda's
unprivileged sandbox user (uid 993) without capabilities, so a file the zip left unreadable to others is as
unreadable as on Lambda. The network is the rehearsal's namespace, which has a loopback interface only. The memory
size is a cgroup limit (no swap), which is also where Max Memory Used is read: the peak of everything the sandbox
ran, as Lambda reports it.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shlex
import shutil
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

from scripts.rehearse.package import Function, PackageError
from scripts.rehearse.tools import PYTHON_VERSION, Interpreter, Missing

LAMBDA_UID, LAMBDA_GID = 993, 990  # sbx_user1051, the user a managed runtime runs as
TASK_ROOT, RUNTIME_DIR, LANG_DIR, TMP_BYTES = "/var/task", "/var/runtime", "/var/lang", 512 * 1024 * 1024
SITE_PACKAGES = f"{LANG_DIR}/lib/python{PYTHON_VERSION}/site-packages"
# The module search path AWS documents for python3.12 ("dependency search path", python-package.html): the function,
# the layer's two folders, the runtime-included libraries, the runtime, then the standard library. The runtime is
# started with `-m` from /var/task, which puts /var/task first; PYTHONPATH supplies the rest in that order.
PYTHONPATH = f"/opt/python/lib/python{PYTHON_VERSION}/site-packages:/opt/python:{SITE_PACKAGES}:{RUNTIME_DIR}"
LD_LIBRARY_PATH = "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib"
# Set by Lambda and refused in a function's configuration.
RESERVED = frozenset({
    "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
})  # fmt: skip
# What /etc a managed runtime's programs read (libraries, users, TLS roots); the rest of the host's /etc stays out.
ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "passwd", "group", "nsswitch.conf", "hosts", "ssl",
       "ca-certificates", "localtime")  # fmt: skip


def lambda_environment(
    fn: Function, *, region: str, credentials: dict[str, str], extra: dict[str, str]
) -> dict[str, str]:
    """The environment the runtime starts with: Lambda's defaults, the template's variables, what Lambda reserves.
    ``extra`` is what only the rehearsal adds (the local S3's endpoint, the emulator's timeout)."""
    clash = sorted(RESERVED & set(fn.environment))
    if clash:
        raise PackageError(f"{fn.name}: Lambda refuses reserved environment variables {clash}")
    env = {
        "PATH": "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
        "LD_LIBRARY_PATH": LD_LIBRARY_PATH,
        "PYTHONPATH": PYTHONPATH,
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000",
        "_AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129",
        "_AWS_XRAY_DAEMON_PORT": "2000",
    }
    env |= fn.environment
    env |= {
        "_HANDLER": fn.handler,
        "LAMBDA_TASK_ROOT": TASK_ROOT,
        "LAMBDA_RUNTIME_DIR": RUNTIME_DIR,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.runtime}",
        "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{fn.function_name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": time.strftime("%Y/%m/%d/[$LATEST]") + os.urandom(16).hex(),
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
    }
    return env | credentials | extra


def unzip(archive: Path, dest: Path) -> None:
    """As Lambda unpacks a deployment package: every member, with the permissions and times the zip records (a file
    left unreadable to others stays unreadable to the sandbox user)."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    try:
        with zipfile.ZipFile(archive) as z:
            for info in z.infolist():
                target = dest / info.filename
                if not target.resolve().is_relative_to(dest.resolve()):
                    raise PackageError(f"{archive.name}: member {info.filename!r} points outside the archive")
                z.extract(info, dest)
                mode = (info.external_attr >> 16) & 0o7777
                if mode:
                    target.chmod(mode | (0o700 if info.is_dir() else 0))
                elif not info.is_dir():
                    target.chmod(0o644)
                # The zip's times, as unzip keeps them: a timestamp-checked .pyc shipped beside its source stays valid.
                stamp = time.mktime((*info.date_time, 0, 0, -1))
                os.utime(target, (stamp, stamp))
    except zipfile.BadZipFile as e:
        raise PackageError(f"{archive}: not a zip ({e})") from None
    for folder in [dest, *(p for p in dest.rglob("*") if p.is_dir())]:
        folder.chmod(folder.stat().st_mode | 0o755)


def lay_out(fn: Function, layers: tuple[Path, ...], work: Path) -> tuple[Path, Path]:
    """The function zip and its layers unpacked (later layers over earlier ones, as Lambda merges them)."""
    task, opt = work / "task", work / "opt"
    unzip(fn.code, task)
    shutil.rmtree(opt, ignore_errors=True)
    opt.mkdir(parents=True)
    for i, layer in enumerate(layers):
        unzip(layer, work / f"layer-{i}")
        shutil.copytree(work / f"layer-{i}", opt, dirs_exist_ok=True, symlinks=True)
    return task, opt


def bwrap_command(task: Path, opt: Path, interpreter: Interpreter, runtime: Path, sdk: Path) -> list[str]:
    """The sandbox, then the runtime inside it as Lambda's user. Ends where the handler argument goes."""
    command = ["bwrap", "--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
               "--hostname", "localhost", "--ro-bind", "/usr", "/usr"]  # fmt: skip
    # Merged /usr (Debian 12, Amazon Linux 2023): /bin, /lib… are links into it; otherwise they are their own trees.
    for top in ("bin", "sbin", "lib", "lib64"):
        host = Path("/") / top
        if host.is_symlink():
            command += ["--symlink", os.readlink(host), f"/{top}"]
        elif host.is_dir():
            command += ["--ro-bind", str(host), f"/{top}"]
    # Directories bwrap makes itself are 0700 when it runs as root: unusable to the sandbox user.
    command += ["--perms", "0755", "--dir", "/etc", "--perms", "0755", "--dir", "/var"]
    for name in ETC:
        command += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    command += [
        "--ro-bind", str(interpreter.prefix), LANG_DIR,
        "--ro-bind", str(sdk), SITE_PACKAGES,
        "--ro-bind", str(runtime), RUNTIME_DIR,
        "--ro-bind", str(task), TASK_ROOT,
        "--ro-bind", str(opt), "/opt",
        "--proc", "/proc", "--dev", "/dev",
        "--perms", "01777", "--size", str(TMP_BYTES), "--tmpfs", "/tmp",
        "--remount-ro", "/",
        "--chdir", TASK_ROOT,
        "--",
        "setpriv", f"--reuid={LAMBDA_UID}", f"--regid={LAMBDA_GID}", "--clear-groups", "--inh-caps=-all",
        "--bounding-set=-all", "--",
        f"{LANG_DIR}/bin/python{PYTHON_VERSION}", "-m", "awslambdaric",
    ]  # fmt: skip
    return command


def write_bootstrap(path: Path, cgroup_procs: Path, command: list[str]) -> Path:
    """A script, not an argument list: the emulator parses its own command line and would eat a ``--``."""
    path.write_text(
        "#!/bin/sh\n"
        '# Written by scripts/rehearse: the runtime\'s memory cgroup, then its sandbox (the handler is "$1").\n'
        f"echo $$ > {shlex.quote(str(cgroup_procs))} || exit 1\n"
        f'exec {" ".join(shlex.quote(a) for a in command)} "$@"\n'
    )
    path.chmod(0o755)
    return path


def _mounts() -> list[tuple[str, str, str, str]]:
    """(root, mount point, filesystem type, super options) of every mount."""
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        sep = fields.index("-")
        mounts.append((fields[3], fields[4], fields[sep + 1], fields[sep + 3]))
    return mounts


def _own_cgroup(v1_controller: str | None) -> str:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if (v1_controller is None and controllers == "") or (v1_controller in controllers.split(",")):
            return path
    raise Missing("this process is in no memory cgroup")


def _under(mount_root: str, mount_point: str, path: str) -> Path:
    relative = path[len(mount_root) :] if mount_root != "/" and path.startswith(mount_root) else path
    return Path(mount_point) / relative.lstrip("/")


class MemoryCgroup:
    """A cgroup of its own for one sandbox: the memory size as a hard limit (swap included), its peak, its OOM kills.
    cgroup v1 (a `memory` hierarchy) or v2 (the unified one, with the memory controller delegated here)."""

    def __init__(self, name: str, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        mounts = _mounts()
        v1 = [(r, p) for r, p, fs, opts in mounts if fs == "cgroup" and "memory" in opts.split(",")]
        v2 = [(r, p) for r, p, fs, _ in mounts if fs == "cgroup2"]
        if v1:
            self.v2 = False
            parent = _under(*v1[0], _own_cgroup("memory"))
        elif v2:
            self.v2 = True
            parent = _under(*v2[0], _own_cgroup(None))
            controls = parent / "cgroup.subtree_control"
            if "memory" not in controls.read_text().split():
                try:
                    controls.write_text("+memory")
                except OSError as e:
                    raise Missing(
                        f"the memory controller cannot be delegated below {parent} ({e.strerror}): run under"
                        " `systemd-run --scope -p Delegate=yes`"
                    ) from None
        else:
            raise Missing("no memory cgroup is mounted (/sys/fs/cgroup): the memory size cannot be enforced")
        self.path = parent / name
        try:
            self.path.mkdir()
        except OSError as e:
            raise Missing(f"cannot create the memory cgroup {self.path} ({e.strerror}): run as root") from None
        if self.v2:
            self._write("memory.max", limit_bytes)
            self._write("memory.swap.max", 0, optional=True)
        else:
            self._write("memory.limit_in_bytes", limit_bytes)
            self._write("memory.memsw.limit_in_bytes", limit_bytes, optional=True)

    def _write(self, name: str, value: int, optional: bool = False) -> None:
        try:
            (self.path / name).write_text(str(value))
        except FileNotFoundError:
            if not optional:
                raise

    @property
    def procs(self) -> Path:
        return self.path / "cgroup.procs"

    def peak_bytes(self) -> int:
        return int((self.path / ("memory.peak" if self.v2 else "memory.max_usage_in_bytes")).read_text())

    def oom_kills(self) -> int:
        text = (self.path / ("memory.events" if self.v2 else "memory.oom_control")).read_text()
        match = re.search(r"^oom_kill (\d+)$", text, re.MULTILINE)
        return int(match.group(1)) if match else 0

    def close(self) -> None:
        """Kills what is left in it (the emulator normally has) and removes it."""
        for _ in range(50):
            pids = [int(p) for p in self.procs.read_text().split()]
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 9)
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"could not remove {self.path}: processes {self.procs.read_text().split()} remain")


@contextlib.contextmanager
def memory_cgroup(name: str, memory_mb: int) -> Iterator[MemoryCgroup]:
    cgroup = MemoryCgroup(name, memory_mb * 1024 * 1024)
    try:
        yield cgroup
    finally:
        cgroup.close()


def megabytes(n_bytes: int) -> int:
    """As Lambda reports memory: whole MB (MiB), rounded up."""
    return math.ceil(n_bytes / (1024 * 1024))
