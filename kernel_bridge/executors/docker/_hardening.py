"""The Docker executor's hardened container defaults: user, home, network, privileges.

Code in a session is untrusted, so a container starts with as little as a notebook
needs (docs/docker.md has the table of settings, defaults, reasons and how to relax
each): a non-root user that owns /workspace and has a writable home on a tmpfs, no
capabilities, ``no-new-privileges``, memory and process limits, and a network that
reaches nothing outside the container -- a kernel_bridge-managed *internal* bridge
network with no address on the host and no traffic between containers. The ``strict``
profile removes the network entirely and mounts the root file system read-only.

Called by ``DockerCommandLineCodeExecutor`` when it builds a container's settings, and
by the ACA emulator's Docker backend to make its session directories writable.
Blocking (the docker SDK is): call in a thread.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from ...errors import ConfigurationError, ExecutorStartError

__all__ = [
    "DEFAULT_MEM_LIMIT",
    "HOME_DIR",
    "ISOLATED_NETWORK",
    "PROFILES",
    "USER_SITE_PRELUDE",
    "check_work_dir",
    "default_user",
    "ensure_isolated_network",
    "make_writable_for",
    "numeric_owner",
    "profile_network",
    "profile_read_only",
]

DEFAULT_MEM_LIMIT = "2g"
"""Memory limit of a container unless ``mem_limit`` says otherwise (None: no limit)."""

HOME_DIR = "/home/kernel-bridge"
"""HOME of a non-root code user: a tmpfs owned by that user (``pip install --user`` works)."""

HOME_TMPFS_SIZE = "1g"
"""Upper bound of the home tmpfs (its pages count against the memory limit)."""

ISOLATED_NETWORK = "kernel-bridge-isolated"
"""The default network: internal, no host address, no inter-container traffic."""

_NETWORK_OPTIONS = {
    # No address for the host on the bridge: nothing on the host is reachable through it.
    "com.docker.network.bridge.inhibit_ipv4": "true",
    # Containers on the network cannot talk to each other (one kernel cannot reach another).
    "com.docker.network.bridge.enable_icc": "false",
}

PROFILES = ("default", "strict")
"""``default``: isolated network, writable root. ``strict``: no network, read-only root."""

USER_SITE_PRELUDE = (
    "import os,site,sys\n"
    "try:\n"
    " p=site.getusersitepackages()\n"
    " os.makedirs(p,exist_ok=True)\n"
    " if site.ENABLE_USER_SITE and p not in sys.path:site.addsitedir(p)\n"
    "except Exception:pass\n"
)
"""Run before the runtime: the empty tmpfs home gets the user site directory at once, so
packages installed later with ``pip install --user`` (or ``%pip install``, which falls
back to ``--user`` for a non-root user) import without a restart."""


def default_user(work_dir: Path | None) -> str:
    """The code's user when none is configured (never root).

    A non-root host user runs the code under their own uid:gid, so files in a
    bind-mounted work_dir stay theirs. A root host uses the owner of an existing
    ``work_dir`` when that is not root, and otherwise 1000:1000.
    """
    uid, gid = os.getuid(), os.getgid()
    if uid != 0:
        return f"{uid}:{gid}"
    if work_dir is not None:
        with contextlib.suppress(OSError):
            info = os.stat(work_dir)
            if info.st_uid != 0:
                return f"{info.st_uid}:{info.st_gid}"
    return "1000:1000"


def check_work_dir(work_dir: Path, user: str) -> None:
    """Refuse a ``work_dir`` the code's ``user`` could not write (it is /workspace, the cwd).

    Only decidable for numeric users; names are left to the engine. Raises
    :class:`ConfigurationError` saying which directory, which user, and what to do.
    """
    owner = (0, 0) if is_root(user) else numeric_owner(user)
    if owner is None:
        return
    try:
        info = os.stat(work_dir)
    except OSError:
        return
    uid, gid = owner
    mode = info.st_mode
    if uid == 0:
        ok = info.st_uid == 0 or mode & 0o003 == 0o003
    elif info.st_uid == uid:
        ok = mode & 0o300 == 0o300
    elif info.st_gid == gid:
        ok = mode & 0o030 == 0o030
    else:
        ok = mode & 0o003 == 0o003
    if not ok:
        raise ConfigurationError(
            f"docker executor: the code runs as user {user} in the container, which cannot "
            f"write work_dir {str(work_dir)!r} (owner uid {info.st_uid}, mode "
            f"{oct(mode & 0o777)}), its /workspace. Give it to that user "
            f"(`chown {uid}:{gid} {work_dir}`), choose user= the directory's owner, or leave "
            "work_dir unset for a private temporary directory."
        )


def numeric_owner(user: str | None) -> tuple[int, int] | None:
    """``(uid, gid)`` of a numeric ``uid[:gid]`` user (gid defaults to uid); None for names."""
    if not user:
        return None
    uid_text, _, gid_text = user.partition(":")
    if not uid_text.isdigit() or (gid_text and not gid_text.isdigit()):
        return None
    uid = int(uid_text)
    return uid, int(gid_text) if gid_text else uid


def is_root(user: str | None) -> bool:
    """True when ``user`` is root (by name or uid 0)."""
    if not user:
        return False
    name = user.partition(":")[0]
    return name in ("root", "0")


def make_writable_for(path: Path, user: str | None) -> None:
    """Let the container user ``user`` write in ``path`` (a directory this process made).

    As root the directory is given to a numeric user; when the user is this process's
    own uid nothing is needed; otherwise (a user name, or another uid without root) the
    directory is opened to everyone, which is the only way left.
    """
    owner = (0, 0) if is_root(user) else numeric_owner(user)
    if owner is not None and owner[0] == os.getuid():
        return
    if owner is not None and os.geteuid() == 0:
        os.chown(path, *owner)
        return
    os.chmod(path, 0o777)


def profile_network(profile: str, network_mode: str | None) -> str:
    """The network a container joins: ``network_mode`` when given, else the profile's."""
    if profile not in PROFILES:
        raise ConfigurationError(f"profile must be one of {', '.join(PROFILES)}, not {profile!r}")
    if network_mode:
        return network_mode
    return "none" if profile == "strict" else ISOLATED_NETWORK


def profile_read_only(profile: str, read_only: bool | None) -> bool:
    """Whether the root file system is read-only: ``read_only`` when given, else the profile's."""
    if read_only is not None:
        return bool(read_only)
    return profile == "strict"


def home_tmpfs(user: str, environment: dict[str, str]) -> dict[str, str]:
    """The tmpfs mount giving a non-root ``user`` a writable home (none for root or own HOME)."""
    owner = numeric_owner(user)
    if is_root(user) or "HOME" in environment:
        return {}
    options = f"rw,exec,nosuid,nodev,size={HOME_TMPFS_SIZE}"
    if owner is not None:
        options += f",mode=0700,uid={owner[0]},gid={owner[1]}"
    else:  # a user name: its uid is only known inside the image
        options += ",mode=1777"
    return {HOME_DIR: options}


def ensure_isolated_network(client: Any) -> str:
    """Return the name of kernel_bridge's isolated network, creating it on first use.

    Created as an *internal* bridge (no route out), with no IPv4 address for the host on
    it and inter-container traffic disabled. An existing network of that name that is
    not internal is refused rather than used (it might reach the host).
    """
    from docker.errors import APIError, DockerException

    def existing() -> Any | None:
        found = [
            n for n in client.networks.list(names=[ISOLATED_NETWORK]) if n.name == ISOLATED_NETWORK
        ]
        return found[0] if found else None

    try:
        network = existing()
        if network is None:
            with contextlib.suppress(APIError):  # another kernel may create it at the same time
                client.networks.create(
                    ISOLATED_NETWORK,
                    driver="bridge",
                    internal=True,
                    options=dict(_NETWORK_OPTIONS),
                    labels={"kernel_bridge.network": "isolated"},
                    check_duplicate=True,
                )
            network = existing()
        if network is None:
            raise ExecutorStartError(
                f"docker executor: could not create the network {ISOLATED_NETWORK!r}"
            )
        network.reload()
    except DockerException as exc:
        raise ExecutorStartError(
            f"docker executor: could not set up the isolated network {ISOLATED_NETWORK!r}: {exc}. "
            "Set network_mode (e.g. 'none') to run without it."
        ) from exc
    attrs = network.attrs or {}
    options = attrs.get("Options") or {}
    if not attrs.get("Internal") or any(options.get(k) != v for k, v in _NETWORK_OPTIONS.items()):
        raise ExecutorStartError(
            f"docker executor: a Docker network named {ISOLATED_NETWORK!r} exists but is not "
            "kernel_bridge's isolated network (internal, no host address, no inter-container "
            f"traffic), so it might reach the host. Remove it (`docker network rm "
            f"{ISOLATED_NETWORK}`) and kernel_bridge recreates it, or set network_mode."
        )
    return ISOLATED_NETWORK
