"""Load a model directory the way SageMaker's scikit-learn container does, and run one request through it.

A model directory (or a `model.tar.gz` holding one) has the model's files and, optionally,
`code/inference.py` with `model_fn(model_dir)` and any of `input_fn(body, content_type)`,
`predict_fn(data, model)`, `output_fn(prediction, accept)`, or `transform_fn(model, body, content_type,
accept)` in place of all three. What the script lacks falls back to the container's defaults
(`contract`). Without a script, the model is the directory's single `*.joblib` / `*.pkl` file.

`Handler.invoke` is the whole request path with no HTTP in it: the server, batch inference and the
benchmark's in-process rate all go through it. Where each failure lands:
  a NUL byte, JSON nested too deep (refused before -> 400: the kit's decoders refuse them; before a
  any recursion), nan / inf / 1e309, a ragged row     script's own input_fn, `contract.screen` does
  input_fn raises ValueError/TypeError/KeyError    -> 400 with its message (the request was bad)
  the kit's default decoding or column check       -> 400 / 415 with row and column
  feature_lookup raises LookupError                -> 400 (an entity the store does not know)
  predict_fn raises ValueError                     -> 400 with its first line: scikit-learn's word for
                                                      input it cannot use (NaN, text, the wrong width)
  an Accept the answer cannot meet                 -> 406 naming what can be answered: before predicting
                                                      for the container's output_fn, after for a script's
  predict_fn or output_fn raises anything else     -> 500 with an error id (logged with the traceback)
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import logging
import sys
import tarfile
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from mlops_kit.serving import contract, trees

log = logging.getLogger("mlops_kit.serving")

# A model fitted on a DataFrame warns on every positional (headerless) batch; the columns are checked by
# count in `contract.check_columns`, and a warning per request would cost more than the prediction.
warnings.filterwarnings("ignore", message="X does not have valid feature names", category=UserWarning)

SCRIPT = Path("code") / "inference.py"
MODEL_SUFFIXES = (".joblib", ".pkl", ".pickle")

# A hook that fills features the request lacks, e.g. from the online feature store by entity id: it takes
# what input_fn decoded and returns the data predict_fn gets.
FeatureLookup = Callable[[Any], Any]


class ModelLoadError(RuntimeError):
    """The model directory cannot be served: says which file and what is wrong with it."""


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str
    error_id: str = ""


def _unsupported_format(exc: BaseException) -> bool:
    # sagemaker-containers' and the inference toolkit's UnsupportedFormatError mean 415, by name
    return type(exc).__name__ == "UnsupportedFormatError"


class Handler:
    """One loaded model and the four functions that serve it."""

    def __init__(
        self,
        model_dir: Path | str,
        feature_lookup: FeatureLookup | None = None,
        default_accept: str = contract.DEFAULT_ACCEPT,
        compile_trees: bool = True,
        max_model_mb: float = 0.0,  # how far a model.tar.gz may unpack; 0: `unpack_limit`'s rule
    ):
        self.source = Path(model_dir)
        # told how long each call of the model took (predict_fn, or transform_fn: the script's whole
        # answer); the server sets it to its metrics (`mlops_predict_duration_seconds`)
        self.on_predict: Callable[[float], None] | None = None
        self.model_dir = materialize(self.source, max_model_mb)
        self.feature_lookup = feature_lookup
        self.default_accept = default_accept
        module = load_script(self.model_dir)
        self.script = module
        self.model_fn = getattr(module, "model_fn", None) or default_model_fn
        self.transform_fn = getattr(module, "transform_fn", None)
        self.input_fn = getattr(module, "input_fn", None)
        self.predict_fn = getattr(module, "predict_fn", None) or contract.default_predict_fn
        self.output_fn = getattr(module, "output_fn", None)
        try:
            with trees.serving(compile_trees):
                self.model = self.model_fn(str(self.model_dir))
        except ModelLoadError:
            raise
        except Exception as exc:
            where = (
                self.model_dir / SCRIPT
                if module is not None and hasattr(module, "model_fn")
                else self.model_dir
            )
            raise ModelLoadError(f"{where}: model_fn failed: {type(exc).__name__}: {exc}") from exc
        if self.model is None:
            raise ModelLoadError(f"{self.model_dir / SCRIPT}: model_fn returned None")
        if compile_trees and self.predict_fn is contract.default_predict_fn:
            # the container's predict_fn calls model.predict: give it compiled trees where they apply
            self.model = trees.accelerate(self.model)

    # The request path: keep it lean, it runs once per request.
    def invoke(self, body: bytes, content_type: str, accept: str | None) -> Response:
        if self.transform_fn is not None:
            try:
                response = self._transform(body, content_type, accept)
            except Exception as exc:
                return self._refusal(exc, content_type)
            return self._acceptable(response, accept)
        prepared = self._prepare(body, content_type, accept)
        if isinstance(prepared, Response):
            return prepared
        response = self._predict_and_answer(*prepared)
        return response if self.output_fn is None else self._acceptable(response, accept)

    def _acceptable(self, response: Response, accept: str | None) -> Response:
        """A script's own output_fn / transform_fn answers as it likes: a 406 if that is not what the
        client accepts (the container's output_fn is held to Accept before predicting)."""
        if response.status != 200 or contract.accepts(accept, response.content_type):
            return response
        return error_response(
            406,
            f"cannot answer in {accept}; this model answers in {contract.media_type(response.content_type)}",
        )

    def _prepare(self, body: bytes, content_type: str, accept: str | None) -> tuple[Any, str] | Response:
        """(data for predict_fn, the answer's type), or the refusal to send instead."""
        try:
            answer_as = self._requested(accept)
            return self._decode(body, content_type), answer_as
        except Exception as exc:
            return self._refusal(exc, content_type)

    @property
    def batches(self) -> bool:
        """Whether requests may share one predict call: only with the container's predict_fn, which is
        `model.predict` and answers row by row; a script's own predict_fn may look at the whole input."""
        return self.transform_fn is None and self.predict_fn is contract.default_predict_fn

    def invoke_many(
        self,
        requests: Sequence[tuple[bytes, str, str | None]],
        on_shared: Callable[[int], None] | None = None,
    ) -> list[Response]:
        """Answer requests that arrived together, with one predict call for all whose rows stack.

        A scikit-learn predict costs about the same for eight rows as for one (its input checks dominate),
        so a server that has several requests waiting answers them all for the price of one. Each request
        is still decoded, refused and encoded on its own; if the shared predict fails, each request is
        predicted alone, so only the one that caused it gets the 500. `on_shared(n)` is told of each
        predict call that answered n > 1 requests.
        """
        if len(requests) == 1 or not self.batches:
            return [self.invoke(*request) for request in requests]
        responses: list[Response | None] = [None] * len(requests)
        stacks: dict[int, list[tuple[int, np.ndarray, str]]] = {}  # width -> (index, rows, answer type)
        for index, request in enumerate(requests):
            prepared = self._prepare(*request)
            if isinstance(prepared, Response):
                responses[index] = prepared
                continue
            data, answer_as = prepared
            if type(data) is np.ndarray and data.ndim == 2 and data.dtype == np.float64:
                stacks.setdefault(data.shape[1], []).append((index, data, answer_as))
            else:
                responses[index] = self._predict_and_answer(data, answer_as)
        for group in stacks.values():
            rows = np.concatenate([data for _, data, _ in group]) if len(group) > 1 else group[0][1]
            try:
                began = time.perf_counter()
                predictions = self.predict_fn(rows, self.model)
                if self.on_predict is not None:
                    self.on_predict(time.perf_counter() - began)
                if len(group) > 1 and (not hasattr(predictions, "shape") or len(predictions) != len(rows)):
                    raise ValueError("the batch's predictions do not line up with its rows")
            except Exception:
                for index, data, answer_as in group:
                    responses[index] = self._predict_and_answer(data, answer_as)
                continue
            if len(group) > 1 and on_shared is not None:
                on_shared(len(group))
            start = 0
            for index, data, answer_as in group:
                responses[index] = self._answer(predictions[start : start + len(data)], answer_as)
                start += len(data)
        if self.output_fn is not None:
            responses = [
                self._acceptable(response, request[2])  # type: ignore[arg-type]
                for response, request in zip(responses, requests, strict=True)
            ]
        return responses  # type: ignore[return-value]  # every slot is filled above

    def _predict_and_answer(self, data: Any, answer_as: str) -> Response:
        try:
            began = time.perf_counter()
            prediction = self.predict_fn(data, self.model)
            if self.on_predict is not None:
                self.on_predict(time.perf_counter() - began)
        except ValueError as exc:  # the input, not the model: NaN where none is taken, text, a bad width
            return error_response(400, f"the model refused the input: {_first_line(exc)}")
        except Exception as exc:
            return self._refusal(exc, "")
        return self._answer(prediction, answer_as)

    def _answer(self, prediction: Any, answer_as: str) -> Response:
        try:
            if self.output_fn is None:
                out, out_type = contract.default_output_fn(prediction, answer_as)
            else:
                out, out_type = _normalize_output(self.output_fn(prediction, answer_as), answer_as)
        except Exception as exc:
            if _unsupported_format(exc):  # the toolkit's error for an Accept output_fn cannot produce
                return error_response(406, str(exc) or f"cannot answer in {answer_as}")
            return self._refusal(exc, "")
        return Response(200, out, out_type)

    def _refusal(self, exc: BaseException, content_type: str) -> Response:
        if isinstance(exc, contract.InferenceError):
            return error_response(exc.status, exc.reason)
        if _unsupported_format(exc):
            return error_response(415, str(exc) or f"content type {content_type} is not supported")
        return self.server_error(exc)

    def _requested(self, accept: str | None) -> str:
        """The response type: negotiated for the default output_fn; a script's own gets Accept as sent."""
        if self.output_fn is None and self.transform_fn is None:
            return contract.choose_accept(accept, default=self.default_accept)
        accept = (accept or "").strip()
        return accept if accept and accept != "*/*" else self.default_accept

    def _decode(self, body: bytes, content_type: str) -> Any:
        if self.input_fn is None:
            data = contract.default_input_fn(body, content_type)
            data = self._lookup(data)
            return contract.check_columns(data, self.model)
        contract.screen(body, content_type)  # what the kit's decoders refuse, a script's never sees
        try:
            data = self.input_fn(body, content_type)
        except contract.InferenceError:
            raise
        except (ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
            if _unsupported_format(exc):
                raise
            raise contract.BadInput(f"input_fn refused the body: {exc}") from None
        return self._lookup(data)

    def _lookup(self, data: Any) -> Any:
        if self.feature_lookup is None:
            return data
        try:
            return self.feature_lookup(data)
        except LookupError as exc:
            raise contract.BadInput(f"feature lookup: {exc}") from None

    def _transform(self, body: bytes, content_type: str, accept: str | None) -> Response:
        answer_as = self._requested(accept)
        contract.screen(body, content_type)
        try:
            began = time.perf_counter()
            result = self.transform_fn(self.model, body, content_type, answer_as)
            if self.on_predict is not None:
                self.on_predict(time.perf_counter() - began)
        except (ValueError, TypeError, KeyError) as exc:
            if _unsupported_format(exc):
                raise
            raise contract.BadInput(f"transform_fn refused the body: {exc}") from None
        out, out_type = _normalize_output(result, answer_as)
        return Response(200, out, out_type)

    def server_error(self, exc: BaseException) -> Response:
        error_id = uuid.uuid4().hex[:16]
        log.error("model error %s: %s: %s", error_id, type(exc).__name__, exc, exc_info=exc)
        response = error_response(
            500, f"the model failed on this request; error id {error_id} is in the server log"
        )
        response.error_id = error_id
        return response


def error_response(status: int, reason: str) -> Response:
    return Response(status, contract.encode_json({"error": reason}), contract.JSON)


def _first_line(exc: BaseException, limit: int = 300) -> str:
    """An exception's message for a client: its first line (scikit-learn adds paragraphs of advice)."""
    text = str(exc).strip().split("\n", 1)[0] or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _normalize_output(result: Any, accept: str) -> tuple[bytes, str]:
    """A script's output_fn may return bytes, str, or (body, content_type), as the container allows."""
    if isinstance(result, tuple) and len(result) == 2:
        body, kind = result
    else:
        body, kind = result, accept
    if isinstance(body, str):
        body = body.encode()
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise TypeError(f"output_fn returned {type(body).__name__}; it must return bytes or str")
    return bytes(body), kind


def default_model_fn(model_dir: str) -> Any:
    """No `model_fn` in the directory: load its single joblib/pickle file."""
    import joblib

    folder = Path(model_dir)
    found = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in MODEL_SUFFIXES)
    if len(found) != 1:
        listed = ", ".join(p.name for p in sorted(folder.iterdir())) or "nothing"
        raise ModelLoadError(
            f"{folder}: without {SCRIPT} (model_fn) the directory needs exactly one model file "
            f"({', '.join(MODEL_SUFFIXES)}); it holds {listed}"
        )
    return joblib.load(found[0])


def load_script(model_dir: Path) -> Any:
    """Import `code/inference.py`, with `code/` on sys.path so it can import its own modules."""
    script = model_dir / SCRIPT
    if not script.is_file():
        return None
    code_dir = str(script.parent)
    if code_dir not in sys.path:
        sys.path.insert(0, code_dir)
    name = "mlops_inference_" + hashlib.sha1(str(script.resolve()).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, script)
    if spec is None or spec.loader is None:
        raise ModelLoadError(f"{script}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise ModelLoadError(f"{script}: import failed: {type(exc).__name__}: {exc}") from exc
    for fn in ("model_fn", "input_fn", "predict_fn", "output_fn", "transform_fn"):
        value = getattr(module, fn, None)
        if value is not None and not callable(value):
            raise ModelLoadError(f"{script}: {fn} is not a function")
    if getattr(module, "transform_fn", None) and any(
        getattr(module, fn, None) for fn in ("input_fn", "predict_fn", "output_fn")
    ):
        raise ModelLoadError(f"{script}: define transform_fn or input_fn/predict_fn/output_fn, not both")
    if (fn := getattr(module, "model_fn", None)) is not None and len(inspect.signature(fn).parameters) < 1:
        raise ModelLoadError(f"{script}: model_fn must take the model directory")
    return module


_extracted: dict[Path, tempfile.TemporaryDirectory] = {}

# How far a model.tar.gz may unpack, unless `max_model_mb` says: 100 times its own size, and at least
# 64 MiB. Model files are mostly numbers that deflate barely compresses (weights 1.1-2x, trees and
# vocabularies 3-10x), while deflate's ceiling is about 1,030x, which only long runs of one byte reach:
# a gzip bomb (1.1 MB unpacking to 1 GiB is 950x). 100x keeps an order of magnitude from each; the floor
# lets a small archive hold a mostly-zero array. A fixed limit instead (say 4 GiB) would either let a
# 1 MB archive fill gigabytes of disk or refuse a large model that is honestly large.
EXPANSION = 100
EXPANSION_FLOOR = 64 * 2**20


def unpack_limit(archive_bytes: int, max_model_mb: float = 0.0) -> int:
    """The bytes a model archive of `archive_bytes` may unpack to: `max_model_mb` if set, else the rule."""
    if max_model_mb > 0:
        return int(max_model_mb * 2**20)
    return max(EXPANSION_FLOOR, EXPANSION * archive_bytes)


def check_unpacked_size(archive: IO[bytes], where: str, limit: int) -> int:
    """The bytes `archive` (a tar, compressed or not) unpacks to, read from its members' headers as a
    stream, nothing written; `ModelLoadError` as soon as they pass `limit`, before the member that
    would pass it is even decompressed."""
    total = 0
    try:
        with tarfile.open(fileobj=archive, mode="r|*") as members:
            for member in members:
                total += member.size
                if total > limit:
                    raise ModelLoadError(
                        f"{where}: unpacks to more than {limit:,} bytes ({member.name} alone is "
                        f"{member.size:,}); nothing was extracted. A model archive may unpack to "
                        f"{EXPANSION}x its size (at least {EXPANSION_FLOOR // 2**20} MiB); for a model "
                        "that needs more, set MLOPS_MAX_MODEL_MB (--max-model-mb)"
                    )
    except tarfile.TarError as exc:
        raise ModelLoadError(f"{where}: not a readable model.tar.gz ({exc})") from None
    return total


def materialize(source: Path, max_model_mb: float = 0.0) -> Path:
    """A model directory: `source` itself, or `model.tar.gz` unpacked into a temporary one (after its
    unpacked size is checked against `unpack_limit`)."""
    if source.is_dir():
        return source
    if not source.is_file():
        raise ModelLoadError(f"{source}: no such model directory or model.tar.gz")
    if not tarfile.is_tarfile(source):
        raise ModelLoadError(f"{source}: not a directory and not a tar archive (expected model.tar.gz)")
    with source.open("rb") as stream:
        check_unpacked_size(stream, str(source), unpack_limit(source.stat().st_size, max_model_mb))
    tmp = tempfile.TemporaryDirectory(prefix="mlops-model-")
    with tarfile.open(source) as archive:
        archive.extractall(tmp.name, filter="data")  # "data" refuses absolute paths and links out
    _extracted[source.resolve()] = tmp  # kept for the life of the process
    return Path(tmp.name)
