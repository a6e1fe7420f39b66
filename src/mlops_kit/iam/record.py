"""Record every AWS call a process makes, with who makes it: a botocore client plugin.

botocore loads the client plugins named in `BOTOCORE_EXPERIMENTAL__PLUGINS` (`name=module`) into every
client it creates, in any process whose environment holds the variable: the kit's own process, each
job the executor starts, the local endpoint's server. This module is such a plugin. With
`MLOPS_ACCESS_LEDGER` naming a file, each API call appends one JSON line to it (one `write` on a file
opened for appending, so processes never interleave lines): the service, the operation, its
parameters (bodies left out), the caller's identity and where in the code the call was made.

The identity is the credentials' own, as AWS sees it: `sts:GetCallerIdentity` with the client's
credentials, once per access key and process. So a job run with its role's credentials (the executor
assumes the role its request names, as SageMaker does) is recorded as that role. Recording observes
and changes nothing: the call goes on exactly as it would.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

LEDGER_VARIABLE = "MLOPS_ACCESS_LEDGER"
PLUGIN_VARIABLE = "BOTOCORE_EXPERIMENTAL__PLUGINS"
PLUGIN = "mlops_access_ledger=mlops_kit.iam.record"
_MAX_TEXT = 2048  # longer strings (definitions, bodies) are cut: the ledger needs names, not contents
_LIBRARIES = ("botocore", "boto3", "s3transfer", "urllib3")
_local = threading.local()
_identities: dict[str, str] = {}
_identity_lock = threading.Lock()


def environ(path: Path | str) -> dict[str, str]:
    """The variables that turn recording on, for this process or a child's environment."""
    return {LEDGER_VARIABLE: str(path), PLUGIN_VARIABLE: PLUGIN}


def active(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The recording variables of `env` (default: this process), to hand on to a child process."""
    env = os.environ if env is None else env
    if not env.get(LEDGER_VARIABLE):
        return {}
    return {LEDGER_VARIABLE: env[LEDGER_VARIABLE], PLUGIN_VARIABLE: env.get(PLUGIN_VARIABLE, PLUGIN)}


@contextlib.contextmanager
def unrecorded() -> Iterator[None]:
    """Calls in this block are not the kit's own (the emulator standing in for AWS's services)."""
    before = getattr(_local, "off", False)
    _local.off = True
    try:
        yield
    finally:
        _local.off = before


def initialize_client_plugin(client: Any) -> None:
    """botocore's plugin entry point: called for every new client."""
    client.meta.events.register("before-parameter-build", lambda **kw: _record(client, **kw))


def _record(client: Any, params: Mapping[str, Any] | None = None, model: Any = None, **_: Any) -> None:
    path = os.environ.get(LEDGER_VARIABLE)
    if not path or getattr(_local, "off", False) or model is None:
        return
    try:
        _append(path, client, params, model)
    except Exception as exc:  # observing must never change the call: it goes on, the ledger says why not
        if not getattr(_local, "warned", False):
            _local.warned = True
            print(f"mlops access ledger: cannot record to {path}: {exc}", file=sys.stderr)


def _append(path: str, client: Any, params: Mapping[str, Any] | None, model: Any) -> None:
    entry = {
        "service": client.meta.service_model.service_name,
        "operation": model.name,
        "region": client.meta.region_name,
        "params": _plain(dict(params or {})),
        "caller": _caller(client),
        "site": _site(),
        "pid": os.getpid(),
        "process": " ".join(sys.argv[:3])[:200],
    }
    line = (json.dumps(entry, sort_keys=True, default=str) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def _plain(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return value if len(value) <= _MAX_TEXT else value[:_MAX_TEXT] + "..."
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    if depth > 6:
        return "..."
    if isinstance(value, Mapping):
        return {str(k): _plain(v, depth + 1) for k, v in value.items() if _keeps(v)}
    if isinstance(value, (list, tuple)):
        return [_plain(v, depth + 1) for v in value[:1000] if _keeps(v)]
    return f"<{type(value).__name__}>"


def _keeps(value: Any) -> bool:
    return not isinstance(value, (bytes, bytearray, memoryview)) and not hasattr(value, "read")


def _caller(client: Any) -> str:
    """The ARN AWS sees for the client's credentials (an assumed role's session, or a user)."""
    signer = getattr(client, "_request_signer", None)
    credentials = getattr(signer, "_credentials", None)
    if credentials is None:
        return "(unsigned)"
    frozen = credentials.get_frozen_credentials()
    with _identity_lock:
        known = _identities.get(frozen.access_key)
    if known is not None:
        return known
    import boto3

    endpoint = client.meta.endpoint_url
    with unrecorded():
        sts = boto3.session.Session(
            aws_access_key_id=frozen.access_key,
            aws_secret_access_key=frozen.secret_key,
            aws_session_token=frozen.token,
            region_name=client.meta.region_name,
        ).client("sts", endpoint_url=None if "amazonaws.com" in endpoint else endpoint)
        try:
            arn = sts.get_caller_identity()["Arn"]
        except Exception as exc:  # the call itself goes on; the ledger says it could not tell
            arn = f"(unknown: {type(exc).__name__})"
    with _identity_lock:
        _identities[frozen.access_key] = arn
    return arn


def _site() -> str:
    """The first frame outside the AWS SDK: the code that made the call."""
    frame = sys._getframe(2)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        top = module.split(".")[0]
        if top not in _LIBRARIES and module != __name__ and top not in ("concurrent", "threading"):
            return f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"
        frame = frame.f_back
    return "(an SDK thread: a managed transfer)"
