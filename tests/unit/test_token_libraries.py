"""Only the live channel's authorizer loads the token libraries (joserfc, cryptography and what they
need): they ship in a layer of their own that no other function carries (layers/build_layer.py), so
a module any other function imports, at its cold start or first use, must never reach for them."""

from __future__ import annotations

from benchmarks.latency import FIRST_USE
from layers.build_layer import REQUIREMENTS_LIVE_AUTH
from tests.function_imports import LIVE_AUTHORIZER, distributions_required, modules_loaded_by, top_level_modules

TOKEN_LIBRARIES = top_level_modules(distributions_required(REQUIREMENTS_LIVE_AUTH))


def _top_level(modules: dict) -> set[str]:
    return {name.split(".", 1)[0] for name in modules}


def test_the_token_libraries_are_joserfc_and_cryptography_with_what_they_need():
    assert {"joserfc", "cryptography", "cffi", "_cffi_backend"} <= TOKEN_LIBRARIES
    assert not TOKEN_LIBRARIES & {"pydantic", "aws_lambda_powertools", "urllib3", "botocore"}


def test_no_function_but_the_live_authorizer_loads_the_token_libraries():
    others = sorted(set(FIRST_USE) - {LIVE_AUTHORIZER})
    assert len(others) >= 16  # every function but the authorizer, in one fresh interpreter
    loaded = _top_level(modules_loaded_by(others))
    assert {"coexist", "pydantic", "aws_lambda_powertools"} <= loaded  # they did load the library
    leaked = loaded & TOKEN_LIBRARIES
    assert not leaked, f"loaded outside the live authorizer: {sorted(leaked)}"


def test_the_live_authorizer_loads_them_at_its_cold_start():
    """The check above would see them: the one function that needs them has them once imported."""
    loaded = _top_level(modules_loaded_by([LIVE_AUTHORIZER]))
    assert {"joserfc", "cryptography"} <= loaded & TOKEN_LIBRARIES
