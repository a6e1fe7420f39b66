"""A use case's training module, as small as one can be: `python -m` it in script mode's contract."""

import argparse
import os
from pathlib import Path

import joblib
import pandas as pd
from sklearn.linear_model import LogisticRegression

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--C", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    frame = pd.concat(pd.read_csv(p) for p in sorted(Path(os.environ["SM_CHANNEL_TRAIN"]).glob("*.csv")))
    model = LogisticRegression(C=args.C, random_state=args.seed).fit(
        frame[["x1", "x2"]].to_numpy(), frame["y"]
    )
    joblib.dump(model, Path(os.environ["SM_MODEL_DIR"]) / "model.joblib")
    print(f"trained on {len(frame)} rows")
