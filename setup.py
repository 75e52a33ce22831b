"""The one compiled part of aiexport: the ledger's batch loop (`src/aiexport/ledger/_chainc.c`).

Everything else is in `pyproject.toml`. The extension is optional: where it cannot be built (no
C compiler, or no OpenSSL headers - Debian's `libssl-dev`), the install still succeeds and the
ledger runs the same loop in Python.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "aiexport.ledger._chainc",
            ["src/aiexport/ledger/_chainc.c"],
            libraries=["crypto"],
            extra_compile_args=["-O2"],
            optional=True,
        )
    ]
)
