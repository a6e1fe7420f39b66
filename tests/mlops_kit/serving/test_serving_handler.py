"""Model directories as SageMaker's scikit-learn container loads them, and the contract's pure rules."""

from __future__ import annotations

import gzip
import io
import json
import logging
import tarfile
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest
from serving_helpers import OWN_DECODER, fitted_model, pack, write_model_dir

from mlops_kit.serving import contract, metrics
from mlops_kit.serving import handler as handler_module
from mlops_kit.serving.handler import Handler, ModelLoadError, unpack_limit

# --- contract ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "chosen"),
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("text/csv", "text/csv"),
        ("text/*", "text/csv"),
        ("text/html, application/x-npy;q=0.2, text/csv;q=0.9", "text/csv"),
        ("text/csv;q=0, application/json", "application/json"),
    ],
)
def test_choose_accept(header: str | None, chosen: str) -> None:
    assert contract.choose_accept(header) == chosen


def test_choose_accept_refuses_what_it_cannot_produce() -> None:
    with pytest.raises(contract.NotAcceptable) as caught:
        contract.choose_accept("text/html, image/png")
    assert caught.value.status == 406


def test_csv_empty_fields_are_missing_values() -> None:
    assert np.isnan(contract.decode_csv(b"1,,3\r\n4,5,6\r\n")[0, 1])
    assert contract.decode_csv("1,2\n\n3,4\n").tolist() == [[1, 2], [3, 4]]


def test_bodies_that_are_not_utf8_are_400() -> None:
    with pytest.raises(contract.BadInput, match="not UTF-8"):
        contract.decode_csv(b"1,2,\xff")


def test_json_records_follow_the_models_feature_names() -> None:
    model = fitted_model(names=["a", "b", "c"])
    data = contract.check_columns(contract.decode_json(b'[{"c": 3, "a": 1, "b": 2}]'), model)
    assert list(data.columns) == ["a", "b", "c"] and data.iloc[0].tolist() == [1, 2, 3]
    with pytest.raises(contract.BadInput, match="lack the model's feature"):
        contract.check_columns(contract.decode_json(b'[{"a": 1}]'), model)
    with pytest.raises(contract.BadInput, match="not a scalar"):
        contract.decode_json(b'[{"a": [1]}]')


def test_encoders_round_trip() -> None:
    assert contract.encode_csv(np.array([[1, 2], [3, 4]])) == b"1,2\n3,4\n"
    assert contract.encode_csv(np.array([0.5, 1.0])) == b"0.5\n1.0\n"
    assert contract.encode_json(np.array([1, 0])) == b"[1,0]"
    with pytest.raises(contract.NotAcceptable):
        contract.default_output_fn([1], "text/html")


# --- handler -------------------------------------------------------------------------------------


def answer(handler: Handler, body: str | bytes, content_type: str = "text/csv", accept: str | None = None):
    response = handler.invoke(body.encode() if isinstance(body, str) else body, content_type, accept)
    return response.status, json.loads(
        response.body
    ) if response.content_type == "application/json" else response.body


def test_a_directory_without_a_script_serves_its_joblib_file(tmp_path: Path) -> None:
    handler = Handler(write_model_dir(tmp_path / "m", script=None))
    assert answer(handler, "3,0,0\n-3,0,0") == (200, [1, 0])


def test_model_tar_gz_is_unpacked_and_served(tmp_path: Path) -> None:
    archive = pack(write_model_dir(tmp_path / "m"), tmp_path / "model.tar.gz")
    status, body = answer(Handler(archive), "1,2,3")
    assert status == 200 and body == pytest.approx(fitted_model().predict_proba([[1, 2, 3]])[:, 1].tolist())


def test_a_full_script_replaces_every_default(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import json, os, joblib, numpy as np
        from helper import SCALE  # code/ is importable, as in SageMaker

        def model_fn(model_dir):
            return joblib.load(os.path.join(model_dir, "model.joblib"))

        def input_fn(body, content_type):
            if content_type != "application/vnd.rows":
                raise ValueError("only application/vnd.rows here")
            return np.array(json.loads(body)["r"], dtype=float) * SCALE

        def predict_fn(data, model):
            return model.predict(data)

        def output_fn(prediction, accept):
            return json.dumps({"labels": prediction.tolist(), "accept": accept}), "application/vnd.labels"
        """
    )
    folder = write_model_dir(tmp_path / "m", script=script)
    (folder / "code" / "helper.py").write_text("SCALE = 1.0\n")
    handler = Handler(folder)
    response = handler.invoke(b'{"r": [[3, 0, 0]]}', "application/vnd.rows", None)
    assert response.status == 200 and response.content_type == "application/vnd.labels"
    assert json.loads(response.body) == {"labels": [1], "accept": "application/json"}
    status, body = answer(handler, "1,2,3")
    assert status == 400 and "only application/vnd.rows here" in body["error"]


def test_transform_fn_handles_the_whole_request(tmp_path: Path) -> None:
    script = "def model_fn(d):\n    return 'm'\n\ndef transform_fn(model, body, content_type, accept):\n    return body[::-1]\n"
    handler = Handler(write_model_dir(tmp_path / "m", script=script))
    response = handler.invoke(b"abc", "text/plain", "text/plain")
    assert (response.status, response.body, response.content_type) == (200, b"cba", "text/plain")


def test_unsupported_format_error_from_a_script_is_415(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        class UnsupportedFormatError(Exception):
            pass

        def model_fn(d):
            return object()

        def input_fn(body, content_type):
            raise UnsupportedFormatError(f"{content_type} is not for me")
        """
    )
    status, body = answer(Handler(write_model_dir(tmp_path / "m", script=script)), "1")
    assert status == 415 and "not for me" in body["error"]


def test_model_error_is_500_with_an_error_id_logged(
    model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    handler = Handler(model_dir)
    with caplog.at_level(logging.ERROR, logger="mlops_kit.serving"):
        response = handler.invoke(b"-999,0,0", "text/csv", None)
    assert response.status == 500 and response.error_id in json.loads(response.body)["error"]
    assert response.error_id in caplog.text and "sentinel row" in caplog.text


def test_feature_lookup_fills_missing_features_before_predict(tmp_path: Path) -> None:
    """The hook the online feature store plugs into: entity id in, the model's features out."""
    store = {7: [3.0, 0.0, 0.0], 8: [-3.0, 0.0, 0.0]}

    def lookup(data: object) -> np.ndarray:
        ids = np.asarray(data)[:, 0].astype(int)
        missing = [i for i in ids if i not in store]
        if missing:
            raise KeyError(f"no features for entity {missing[0]}")
        return np.array([store[i] for i in ids])

    handler = Handler(write_model_dir(tmp_path / "m", script=None), feature_lookup=lookup)
    assert answer(handler, "7\n8") == (200, [1, 0])
    status, body = answer(handler, "9")
    assert status == 400 and "feature lookup" in body["error"] and "entity 9" in body["error"]


@pytest.mark.parametrize(
    ("script", "files", "problem"),
    [
        (None, [], "exactly one model file"),
        (None, ["other.pkl"], "exactly one model file"),
        ("import not_a_module\n", [], "import failed: ModuleNotFoundError"),
        ("def model_fn(d):\n    raise OSError('disk gone')\n", [], "model_fn failed: OSError: disk gone"),
        ("def model_fn(d):\n    return None\n", [], "model_fn returned None"),
        ("model_fn = 3\n", [], "model_fn is not a function"),
        (
            "def model_fn(d):\n    return 1\ndef transform_fn(*a):\n    return b''\ndef input_fn(*a):\n    pass\n",
            [],
            "not both",
        ),
    ],
)
def test_unservable_directories_fail_naming_the_file(
    tmp_path: Path, script: str | None, files: list[str], problem: str
) -> None:
    folder = write_model_dir(tmp_path / "m", script=script)
    for name in files:
        (folder / name).write_bytes(b"")
    if script is None and not files:
        (folder / "model.joblib").unlink()
    with pytest.raises(ModelLoadError, match=problem) as caught:
        Handler(folder)
    assert str(folder) in str(caught.value)


def test_a_missing_or_bogus_source_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no such model directory"):
        Handler(tmp_path / "nope")
    (tmp_path / "model.tar.gz").write_bytes(b"not a tar")
    with pytest.raises(ModelLoadError, match="not a tar archive"):
        Handler(tmp_path / "model.tar.gz")


def test_records_frame_reaches_a_named_model(tmp_path: Path) -> None:
    handler = Handler(write_model_dir(tmp_path / "m", script=None, model=fitted_model(names=["a", "b", "c"])))
    status, body = answer(handler, json.dumps({"instances": [{"a": 3, "b": 0, "c": 0}]}), "application/json")
    assert status == 200 and body == [1]
    assert answer(handler, "3,0,0") == (200, [1])  # a headerless row is positional
    assert isinstance(contract.check_columns(np.zeros((1, 3)), handler.model), np.ndarray)


# --- metrics -------------------------------------------------------------------------------------


def test_metrics_sum_every_workers_row() -> None:
    shared = metrics.Metrics(workers=2, info={"package": "arn:p/3", "model": "p/3", "endpoint": "ep"})
    shared.for_worker(0).observe(b"POST", b"/invocations", 200, 0.0004)
    shared.for_worker(1).observe(b"POST", b"/invocations", 200, 0.004)
    shared.for_worker(1).observe(b"POST", b"/invocations", 500, 3.0)
    shared.for_worker(1).observe(b"PUT", b"/elsewhere", 299, 0.1)
    shared.for_worker(0).observe(b"GET", b"/nowhere", 404, 0.001)
    shared.for_worker(1).predicted(0.0007)
    shared.for_worker(0).captured(5)
    values = metrics.parse(shared.render().decode())
    name = "mlops_http_request_duration_seconds"
    ok = 'method="POST",path="/invocations",status="200"'
    assert values[f"{name}_count{{{ok}}}"] == 2
    assert values[f'{name}_bucket{{{ok},le="0.0005"}}'] == 1
    assert values[f'{name}_bucket{{{ok},le="0.005"}}'] == 2
    assert values[f'{name}_bucket{{{ok},le="+Inf"}}'] == 2
    assert values[f"{name}_sum{{{ok}}}"] == pytest.approx(0.0044)
    assert values[f'{name}_bucket{{method="POST",path="/invocations",status="500",le="2.5"}}'] == 0
    assert values[f'{name}_bucket{{method="POST",path="/invocations",status="500",le="5"}}'] == 1
    # a method, path or status outside the fixed lists is still counted, as "other"
    assert values[f'{name}_count{{method="other",path="other",status="other"}}'] == 1
    assert values[f'{name}_count{{method="GET",path="other",status="404"}}'] == 1
    assert metrics.total(values, f"{name}_count") == 5
    assert metrics.total(values, f"{name}_count", status="4xx") == 1
    assert metrics.total(values, f"{name}_count", status="5xx", path="/invocations") == 1
    assert values['mlops_predict_duration_seconds_bucket{le="0.0005"}'] == 0
    assert values['mlops_predict_duration_seconds_bucket{le="0.001"}'] == 1
    assert values["mlops_predict_duration_seconds_count"] == 1
    assert values['mlops_model_info{endpoint="ep",model="p/3",package="arn:p/3"}'] == 1
    assert values["mlops_serving_capture_records_total"] == 5 and values["mlops_serving_workers"] == 2


def test_metrics_buckets_hold_their_bound() -> None:
    """Prometheus' `le` is "at most": an answer of exactly 1 ms is in the 0.001 bucket, one just over is not."""
    at, over = metrics.Metrics(), metrics.Metrics()
    at.observe(b"POST", b"/invocations", 200, 0.001)
    over.observe(b"POST", b"/invocations", 200, 0.001 + 1e-12)
    key = 'mlops_http_request_duration_seconds_bucket{method="POST",path="/invocations",status="200",le="0.001"}'
    assert metrics.parse(at.render().decode())[key] == 1
    assert metrics.parse(over.render().decode())[key] == 0


def test_every_rendered_family_is_declared_and_typed() -> None:
    text = metrics.Metrics().render().decode()
    typed = dict(line.split()[2:4] for line in text.splitlines() if line.startswith("# TYPE"))
    assert typed == metrics.FAMILIES


# --- values no model can use, and answers no client asked for -------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"1,2,inf", "CSV row 1, column 3: 'inf' is not a finite number"),
        (b"1,2,3\n-Infinity,0,0", "CSV row 2, column 1: '-Infinity' is not a finite number"),
        (b"1,NaN,3", "'NaN' is not a finite number"),
        (b"1,2,1e309", "CSV row 1, column 3: '1e309' is beyond the range of a double"),
        (b"1,,1e309", "'1e309' is beyond the range of a double"),  # the slow path (an empty field) too
        (b"1,2,0.12345678901234567,nan", "'nan' is not a finite number"),
    ],
)
def test_csv_refuses_non_finite_values(body: bytes, reason: str) -> None:
    with pytest.raises(contract.BadInput, match=reason):
        contract.decode_csv(body)


def test_csv_takes_the_largest_double_and_empty_fields() -> None:
    values = contract.decode_csv(b"1.7976931348623157e308,,-1.7976931348623157e308\n")
    assert values[0, 0] == np.finfo(np.float64).max and np.isnan(values[0, 1])


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[[1, 2, NaN]]", "'NaN' is not a finite number"),
        (b'{"instances": [[Infinity, 2, 3]]}', "'Infinity' is not a finite number"),
        (b"[[1, 2, 1e309]]", "JSON row 1, column 3: a number is beyond the range of a double"),
        (b"[[1, 2, 3], [1, -1e400, 3]]", "JSON row 2, column 2: a number is beyond the range"),
        (b"[[1, 2, 1" + b"0" * 400 + b"]]", "JSON row 1, column 3: a number is beyond the range"),
        (b'[{"a": 1e309}]', "JSON record 1, field 'a': a number is beyond the range"),
        (b'[{"a": 1' + b"0" * 400 + b"}]", "JSON record 1, field 'a': a number is beyond the range"),
    ],
)
def test_json_refuses_non_finite_values(body: bytes, reason: str) -> None:
    with pytest.raises(contract.BadInput, match=reason):
        contract.decode_json(body)


def test_json_null_is_a_missing_value_and_big_finite_numbers_pass() -> None:
    values = contract.decode_json(b"[[null, 1.7976931348623157e308, " + str(2**1000).encode() + b"]]")
    assert np.isnan(values[0, 0]) and np.isfinite(values[0, 1:]).all()


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("array", "reason"),
    [
        (np.array([[1.0, np.inf, 3.0]]), "holds inf at index \\(0, 1\\)"),
        (np.array([["a", "b", "c"]]), "holds <U1 values"),
        (np.array([[1 + 2j, 2, 3]]), "holds complex128 values"),
        (np.zeros((0, 3)), "holds no values"),
    ],
)
def test_npy_refuses_what_is_not_finite_numbers(array: np.ndarray, reason: str) -> None:
    with pytest.raises(contract.BadInput, match=reason):
        contract.decode_npy(_npy(array))


def test_npy_takes_nan_as_missing_and_integers() -> None:
    assert np.isnan(contract.decode_npy(_npy(np.array([[1.0, np.nan]])))[0, 1])
    assert contract.decode_npy(_npy(np.array([1, 2, 3]))).tolist() == [[1, 2, 3]]


def test_nul_bytes_in_text_and_deep_json_are_refused_by_the_kit_and_before_a_script() -> None:
    depth = contract.MAX_JSON_DEPTH
    for body, kind, reason in (
        (b"1,2,\x003", "text/csv", "NUL byte \\(byte 4\\)"),
        (b'[[1, "\x00"]]', "application/json; charset=utf-8", "NUL byte \\(byte 6\\)"),
        (b"[" * (depth + 1) + b"]" * (depth + 1), "application/json", f"nests deeper than {depth} levels"),
    ):
        with pytest.raises(contract.BadInput, match=reason):
            contract.default_input_fn(body, kind)  # the container's decoders
        with pytest.raises(contract.BadInput, match=reason):
            contract.screen(body, kind)  # before a script's own
    at_limit = b"[" * depth + b"]" * depth
    contract.screen(at_limit, "application/json")
    with pytest.raises(contract.BadInput, match="holds no rows|row 1"):  # deep enough to be decoded
        contract.decode_json(at_limit)
    contract.screen(_npy(np.zeros((1, 3))), "application/x-npy")  # binary: NUL bytes are data


def test_screen_holds_a_scripts_decoder_to_the_kits_rules() -> None:
    for body, reason in (
        (b"1,2,3\n4,5", "CSV row 2 has 2 columns, row 1 has 3"),
        (b"1,inf,3", "'inf' is not a finite number"),
        (b'[{"a": 1e999}]', "the JSON body, byte 7: '1e999' is beyond the range"),
    ):
        kind = "application/json" if body.startswith(b"[") else "text/csv"
        with pytest.raises(contract.BadInput, match=reason):
            contract.screen(body, kind)
    contract.screen(b"1,2,3\n,5,6\nx,y,z\n", "text/csv")  # words and missing values: the script's call
    contract.screen(b'[{"a": "NaN", "b": null}]', "application/json")


@pytest.mark.parametrize(
    ("header", "content_type", "accepted"),
    [
        (None, "image/png", True),
        ("", "text/csv", True),
        ("*/*", "application/vnd.labels", True),
        ("text/*", "text/csv; charset=utf-8", True),
        ("application/json", "text/csv", False),
        ("image/png", "text/csv", False),
        ("text/*, text/csv;q=0", "text/csv", False),
        ("text/csv;q=0, */*", "text/csv", False),
        ("text/csv;q=0.1", "text/csv", True),
    ],
)
def test_accepts_follows_the_most_specific_range(
    header: str | None, content_type: str, accepted: bool
) -> None:
    assert contract.accepts(header, content_type) is accepted


@pytest.fixture
def own_decoder(tmp_path: Path) -> Handler:
    return Handler(write_model_dir(tmp_path / "m", script=OWN_DECODER))


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b"1,2,3\n4,5", "text/csv", "CSV row 2 has 2 columns, row 1 has 3"),
        (b"1,2,inf", "text/csv", "'inf' is not a finite number"),
        (b'1,2,"1e309"', "text/csv", "'\"1e309\"' is beyond the range of a double"),
        (b"[[1, 2, NaN]]", "application/json", "'NaN' is not a finite number"),
        (b"[[1, 2, 1e309]]", "application/json", "'1e309' is beyond the range of a double"),
        (b"[" * 1000 + b"]" * 1000, "application/json", "nests deeper than 64 levels"),
        (b"1,2,3\x00", "text/csv", "NUL byte"),
    ],
)
def test_a_scripts_own_input_fn_never_sees_what_the_kit_refuses(
    own_decoder: Handler, body: bytes, content_type: str, reason: str
) -> None:
    status, answer_body = answer(own_decoder, body, content_type)
    assert status == 400 and reason in answer_body["error"]
    assert own_decoder.script.CALLS == []
    assert answer(own_decoder, b"1,2,3\n4,5,6", "text/csv")[0] == 200  # what it takes still reaches it
    assert len(own_decoder.script.CALLS) == 1


def test_predict_fn_value_error_is_400_with_its_first_line(own_decoder: Handler) -> None:
    status, body = answer(own_decoder, b"1,2,3,4", "text/csv")  # 4 columns for a 3-feature model
    assert status == 400
    assert body["error"].startswith("the model refused the input: X has 4 features")
    assert "\n" not in body["error"]
    status, body = answer(own_decoder, b"1,,3", "text/csv")  # a missing value this model cannot take
    assert status == 400 and "Input X contains NaN" in body["error"]


def test_a_scripts_answer_type_is_held_to_accept(own_decoder: Handler) -> None:
    for accept in (None, "*/*", "text/csv", "text/*", "image/png;q=0.5, text/csv"):
        response = own_decoder.invoke(b"1,2,3", "text/csv", accept)
        assert (response.status, response.content_type) == (200, "text/csv"), accept
    status, body = answer(own_decoder, b"1,2,3", "text/csv", accept="image/png")
    assert status == 406 and body["error"] == "cannot answer in image/png; this model answers in text/csv"
    status, body = answer(own_decoder, b"1,2,3", "text/csv", accept="application/x-unsupported")
    assert status == 406 and "no application/x-unsupported here" in body["error"]
    responses = own_decoder.invoke_many([(b"1,2,3", "text/csv", "image/png"), (b"1,2,3", "text/csv", None)])
    assert [r.status for r in responses] == [406, 200]


# --- how far a model.tar.gz may unpack -------------------------------------------------------------


def test_the_unpack_limit_is_a_multiple_of_the_archive_with_a_floor() -> None:
    floor, times = handler_module.EXPANSION_FLOOR, handler_module.EXPANSION
    assert unpack_limit(0) == floor == 64 * 2**20
    assert unpack_limit(floor // times) == floor  # where the multiple reaches the floor
    assert unpack_limit(floor // times + 1) == (floor // times + 1) * times
    assert unpack_limit(11 * 10**5) == 110 * 10**6 < 2**30  # the reported 1.1 MB bomb may not reach 1 GiB
    assert unpack_limit(10**9) == 100 * 10**9
    assert unpack_limit(10**9, max_model_mb=0.5) == 2**19  # a setting replaces the rule


def bomb(target: Path, zeros: int, model_dir: Path | None = None) -> Path:
    """A model.tar.gz with `zeros` bytes of zeros beside the model's files (gzip shrinks them ~1000x)."""
    with tarfile.open(target, "w:gz") as archive:
        if model_dir is not None:
            for path in sorted(model_dir.rglob("*")):
                archive.add(path, arcname=str(path.relative_to(model_dir)), recursive=False)
        member = tarfile.TarInfo("weights.bin")
        member.size = zeros
        archive.addfile(member, io.BytesIO(bytes(zeros)))
    return target


def unpacked_size(archive: Path) -> int:
    with tarfile.open(archive) as members:
        return sum(m.size for m in members)


def test_a_gzip_bomb_is_refused_before_anything_is_extracted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = bomb(tmp_path / "model.tar.gz", 4 * 2**20, write_model_dir(tmp_path / "m"))
    assert archive.stat().st_size < 64 * 2**10  # 4 MiB of zeros in a few KB
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    with pytest.raises(ModelLoadError, match="unpacks to more than 1,048,576 bytes") as caught:
        Handler(archive, max_model_mb=1)
    assert "weights.bin alone is 4,194,304" in str(caught.value) and "MLOPS_MAX_MODEL_MB" in str(caught.value)
    assert list(scratch.iterdir()) == []  # nothing was unpacked
    assert answer(Handler(archive), "1,2,3")[0] == 200  # within the default rule: 64 MiB here


def test_the_limit_holds_at_the_byte(tmp_path: Path) -> None:
    archive = bomb(tmp_path / "model.tar.gz", 2**20, write_model_dir(tmp_path / "m"))
    total = unpacked_size(archive)
    assert answer(Handler(archive, max_model_mb=total / 2**20), "1,2,3")[0] == 200
    with pytest.raises(ModelLoadError, match=f"unpacks to more than {total - 1:,} bytes"):
        Handler(archive, max_model_mb=(total - 1) / 2**20)


def test_a_member_that_claims_a_gibibyte_is_refused_from_its_header(tmp_path: Path) -> None:
    """The default rule, on the reported shape of bomb: the header says 1 GiB; no byte of it is read."""
    header = tarfile.TarInfo("weights.bin")
    header.size = 2**30
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(gzip.compress(header.tobuf() + bytes(512)))  # the data itself is not even there
    with pytest.raises(ModelLoadError, match="unpacks to more than 67,108,864 bytes"):
        Handler(archive)


def test_a_local_deploy_refuses_a_bomb_too(tmp_path: Path) -> None:
    from mlops_kit.serving import local

    data = bomb(tmp_path / "model.tar.gz", 4 * 2**20).read_bytes()

    class S3:
        def get_object(self, Bucket: str, Key: str) -> dict:
            return {"Body": io.BytesIO(data)}

    with pytest.raises(local.DeployError, match="s3://b/model.tar.gz: unpacks to more than 1,048,576"):
        local.download_model(S3(), "s3://b/model.tar.gz", tmp_path / "target", max_model_mb=1)
    assert not (tmp_path / "target" / "model.partial").exists()
    assert (local.download_model(S3(), "s3://b/model.tar.gz", tmp_path / "target") / "weights.bin").is_file()
