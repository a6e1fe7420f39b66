"""Serving: SageMaker's inference contract, data capture, local deployment and batch inference.

- `contract`: content types, the container's default handlers, the errors a request can get (pure)
- `handler`: loads a model directory (`code/inference.py` + model files, or model.tar.gz) and runs a
  request through it; the hook for filling features from the online store (`feature_lookup`)
- `server`: the HTTP server (`mlops serve`), `metrics`: its Prometheus counters
- `capture`: SageMaker-format data capture to S3 or a folder, off the request path
- `local`: `mlops deploy --env local` (an approved package served in the background) and `invoke`
- `batch`: `mlops batch` (locally through the same handler; in AWS a batch transform job)

Modules are imported on use: the server's start-up must not pay for boto3 or pandas it does not need.
"""
