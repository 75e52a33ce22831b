"""Property-based tests over the OpenAPI schema: whatever the input, never a 5xx.

Schemathesis generates requests for every operation from the schema (valid and invalid), sent
with an admin key so that every route is exercised past authentication. The app is built at
import, over a database in a temporary folder, because schemathesis parametrises at collection.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings

from aiexport.api import create_app
from aiexport.api.auth import create_key

_DIR = tempfile.TemporaryDirectory(prefix="aiexport-schema-")
_APP = create_app(f"sqlite:///{Path(_DIR.name) / 'api.db'}", dashboard=False)
_KEY = create_key(_APP.state.services.ledger, role="admin", name="fuzz", created_by="test").key
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    schema = schemathesis.openapi.from_asgi("/openapi.json", _APP)


@schema.parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_makes_the_server_fail(case: Any) -> None:
    response = case.call(headers={"Authorization": f"Bearer {_KEY}"})
    assert response.status_code < 500, (case.method, case.path, response.text[:500])
