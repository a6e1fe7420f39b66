"""Planted model code: a registered package's `code/inference.py` runs only in a child process with a
cleaned environment, so it cannot read the promoter's credentials."""

from __future__ import annotations

import pytest
from registry_fixtures import FixedModel, World


@pytest.mark.fault("a planted inference.py reads its environment during champion/challenger scoring")
def test_a_planted_inference_script_cannot_read_the_promoters_credentials(world: World, monkeypatch) -> None:
    """A package's code/inference.py runs only in the measuring child, whose environment has no AWS,
    GitHub or kit variable of the promoting process."""
    import io
    import json
    import tarfile

    import pandas as pd

    from mlops_kit.registry import rescore

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAPROMOTER")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "promoter-secret")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_promoter")
    stolen = world.root / "stolen.json"
    planted = (
        "import json, os\n"
        f"json.dump(dict(os.environ), open({str(stolen)!r}, 'w'))\n"
        "def model_fn(model_dir):\n    return {}\n"
        "def predict_fn(data, model):\n    return data['a'].to_numpy()\n"
    )
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("code/inference.py")
        info.size = len(planted.encode())
        tar.addfile(info, io.BytesIO(planted.encode()))
    world.client("s3").put_object(Bucket=world.bucket, Key="planted/model.tar.gz", Body=buffer.getvalue())
    data = world.root / "rows.parquet"
    pd.DataFrame({"a": [0.2, 0.9], "label": [0, 1]}).to_parquet(data)
    arn = world.package()
    sagemaker = FixedModel(world.client("sagemaker"), arn, f"s3://{world.bucket}/planted/model.tar.gz")
    rescore.measure(world.settings, world.client("s3"), sagemaker, arn, data, world.root / "m")
    seen = json.loads(stolen.read_text())
    assert "AKIAPROMOTER" not in json.dumps(seen) and "promoter-secret" not in json.dumps(seen)
    assert not [
        k for k in seen if k.startswith(("AWS_ACCESS", "AWS_SECRET", "AWS_SESSION", "GITHUB", "MLOPS"))
    ]
