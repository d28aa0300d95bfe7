"""The Python source that installs the functions module inside a running runtime.

:func:`render_setup_code` is called through ``FunctionsModule.setup_code()`` by every
executor at session start (first use, restart, a replaced remote session). The code it
returns is stdlib-only, runs on Python 3.8+, is executed in the user namespace and
leaves nothing there but the functions themselves.
"""

from __future__ import annotations

import re

__all__ = ["render_setup_code"]

_TEMPLATE = """\
def __kb_functions_setup(namespace):
    import atexit
    import importlib
    import os
    import re
    import shutil
    import subprocess
    import sys
    import tempfile

    module_name = @MODULE_NAME@
    source = @SOURCE@
    names = @NAMES@
    packages = @PACKAGES@
    install = @INSTALL@
    prefix = "kb-functions-"

    def normalise(spec):
        match = re.match(r"\\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)", spec)
        name = match.group(1) if match else spec.strip()
        return re.sub(r"[-_.]+", "-", name).lower()

    if packages:
        try:
            from importlib import metadata
        except ImportError:
            raise RuntimeError(
                "kernel_bridge functions: cannot check the required packages "
                "(importlib.metadata needs Python 3.8+); use a newer Python where the code runs"
            )
        installed = set()
        for dist in metadata.distributions():
            try:
                dist_name = dist.metadata["Name"]
            except Exception:
                dist_name = None
            if dist_name:
                installed.add(normalise(dist_name))
        missing = [p for p in packages if normalise(p) not in installed]
        if missing and not install:
            raise ImportError(
                "kernel_bridge functions: required packages are not installed where the "
                "code runs: " + ", ".join(missing) + ". Install them there (pip install "
                + " ".join(missing) + "), use an image or environment that has them, or "
                "enable package installation."
            )
        if missing:
            sys.stdout.write("kernel_bridge functions: installing " + ", ".join(missing) + "\\n")
            sys.stdout.flush()
            command = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check"]
            try:
                process = subprocess.Popen(
                    command + missing, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
                )
            except OSError as exc:
                raise RuntimeError(
                    "kernel_bridge functions: could not run pip to install "
                    + ", ".join(missing) + " (" + str(exc) + "); install them yourself"
                )
            for line in iter(process.stdout.readline, b""):
                sys.stdout.write(line.decode("utf-8", "replace"))
                sys.stdout.flush()
            process.stdout.close()
            status = process.wait()
            if status != 0:
                raise RuntimeError(
                    "kernel_bridge functions: pip install failed (exit code " + str(status)
                    + ") for: " + ", ".join(missing) + "; see pip's output above"
                )
            importlib.invalidate_caches()

    def is_ours(path):
        return os.path.basename(path.rstrip("/\\\\")).startswith(prefix)

    directory = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, directory, True)
    with open(os.path.join(directory, module_name + ".py"), "w", encoding="utf-8") as handle:
        handle.write(source)
    sys.path[:] = [directory] + [p for p in sys.path if not is_ours(p)]
    old = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and not is_ours(p)]
    os.environ["PYTHONPATH"] = os.pathsep.join([directory] + old)
    sys.modules.pop(module_name, None)
    importlib.invalidate_caches()
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ImportError(
            "kernel_bridge functions: the module " + repr(module_name) + " failed to import: "
            + type(exc).__name__ + ": " + str(exc)
            + ". Fix the function or its global_imports/python_packages."
        ) from exc
    for name in names:
        namespace[name] = getattr(module, name)


try:
    __kb_functions_setup(globals())
finally:
    del __kb_functions_setup
"""


def render_setup_code(
    module_name: str,
    source: str,
    function_names: tuple[str, ...],
    python_packages: tuple[str, ...],
    install_packages: bool,
) -> str:
    """Return the setup source for one functions module (see the module docstring)."""
    values = {
        "@MODULE_NAME@": repr(module_name),
        "@SOURCE@": repr(source),
        "@NAMES@": repr(list(function_names)),
        "@PACKAGES@": repr(list(python_packages)),
        "@INSTALL@": repr(bool(install_packages)),
    }
    # one pass, so placeholder-like text inside the source is never substituted
    return re.sub(r"@[A-Z_]+@", lambda match: values[match.group(0)], _TEMPLATE)
