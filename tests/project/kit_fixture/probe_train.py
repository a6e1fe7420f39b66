"""A training module for the executor's tests (not the use case's): what script mode gives it, written
into the model; `--fail true` makes it fail."""

import json
import os
import sys

if __name__ == "__main__":
    args = dict(zip(sys.argv[1::2], sys.argv[2::2], strict=True))
    if args.get("--fail") == "true":
        sys.exit("probe_train: asked to fail")
    with open(os.path.join(os.environ["SM_CHANNEL_TRAIN"], "data.txt")) as f:
        data = f.read()
    with open(os.path.join(os.environ["SM_MODEL_DIR"], "model.json"), "w") as f:
        json.dump(
            {
                "data": data,
                "args": args,
                "hps": json.loads(os.environ["SM_HPS"]),
                "job": os.environ.get("TRAINING_JOB_NAME", ""),
                "aws": os.environ.get("AWS_ENDPOINT_URL", ""),
            },
            f,
        )
