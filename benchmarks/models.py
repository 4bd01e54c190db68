"""Benchmark: the risk models' full trainings on the public data sets, by the same code
as `redline ml train`, against the published results.

Self-contained: no service is needed. The data sets in ``datasets/`` are loaded as their
silver tables (``streaming.replay.silver_offline``: what a replay through Kafka lands),
the real gold jobs build the features, and each task is trained with its default
settings, logging to an MLflow tracking store in a scratch folder (SQLite, with the model
registry). For every C-MAPSS subset the script writes the test engines' predictions
(``<out>/predictions_FD00x.csv``, ``unit,rul_pred``): the test figures are computed from
them by whoever holds the true RUL files (``redline ml evaluate``); this repository never
needs them.

Prints, per task, the validation figures and training time beside the published test
results, and writes ``benchmarks/results/models.json``.

    .venv/bin/python benchmarks/models.py                       # FD001-FD004 and AI4I
    .venv/bin/python benchmarks/models.py --subsets FD001 --no-ai4i
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Published test-set results (RMSE, PHM08 score): ../shared/datasets/cmapss/SOURCE.md.
PUBLISHED = {
    "FD001": {"LSTM (Zheng et al. 2017)": (16.14, 338), "DCNN (Li et al. 2018)": (12.61, 273.7)},
    "FD002": {"LSTM (Zheng et al. 2017)": (24.49, 4450), "DCNN (Li et al. 2018)": (22.36, 10412)},
    "FD003": {"LSTM (Zheng et al. 2017)": (16.18, 852), "DCNN (Li et al. 2018)": (12.64, 284.1)},
    "FD004": {"LSTM (Zheng et al. 2017)": (28.17, 5550), "DCNN (Li et al. 2018)": (23.31, 12466)},
}
TARGETS = {"FD001": (12.0, 260.0), "FD002": (22.36, None), "FD003": (12.64, None),
           "FD004": (23.31, None)}
AI4I_PUBLISHED_F1 = 0.8952  # XGBoost, stratified CV (Rismawan & Nirmala 2026)
AI4I_TARGET_F1 = 0.92


def _shown(path: Path) -> str:
    """``path`` relative to the repository when inside it (results stay portable)."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--subsets", nargs="*", default=["FD001", "FD002", "FD003", "FD004"])
    p.add_argument("--no-ai4i", action="store_true")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="redline-models-"))
    os.environ.setdefault("REDLINE_HOME", str(scratch / "home"))
    os.chdir(scratch)  # MLflow's SQLite store keeps artifacts in ./mlruns

    from redline import catalog, lake
    from redline.config import load
    from redline.jobs import runner
    from redline.ml import cmapss_task, run
    from redline.spark import build_session
    from redline.streaming.replay import silver_offline

    cfg = load()
    cfg = dataclasses.replace(
        cfg, lake=dataclasses.replace(cfg.lake, root=str(scratch / "lake")),
        mlflow=dataclasses.replace(cfg.mlflow, tracking_uri=f"sqlite:///{scratch}/mlflow.db",
                                   experiment="benchmark"))
    spark = build_session(cfg, app_name="redline-benchmark-models")
    datasets = cfg.replay.datasets_dir

    def say(line: str) -> None:
        print(line, flush=True)

    results: dict = {"machine": {"python": platform.python_version(),
                                 "cpus": os.cpu_count(), "platform": platform.platform()},
                     "cmapss": {}, "ai4i": None}
    began = time.monotonic()
    if args.subsets:
        files = [f"{split}_{s}" for s in args.subsets for split in ("train", "test")]
        say(f"loading C-MAPSS {', '.join(files)} as silver, building features ...")
        lake.overwrite(silver_offline(spark, datasets, "cmapss", files), cfg.lake_root,
                       catalog.silver("cmapss_cycles"))
        runner.run(spark, cfg.lake_root, runner.get("gold_cmapss_features"), "bench",
                   record=False)
    for subset in args.subsets:
        say(f"\n== C-MAPSS {subset}")
        trained = run.train(spark, cfg, "cmapss", subset, progress=say)
        run.promote(spark, cfg, "cmapss", subset, progress=say)
        predictions = out / f"predictions_{subset}.csv"
        written = cmapss_task.predict_file(spark, cfg, subset, predictions, progress=say)
        m = trained.metrics
        results["cmapss"][subset] = {
            "validation_rmse": m["rmse"], "validation_phm08": m["phm08_score"],
            "validation_trajectories": int(cmapss_task.held_out(
                spark, cfg, subset)["engine_id"].nunique()),
            "mean_spread": m["mean_spread"], "train_seconds": m["train_seconds"],
            "epochs_run": m["epochs_run"],
            "baseline_validation_rmse": m["baseline_rmse"],
            "baseline_validation_phm08": m["baseline_phm08_score"],
            "baseline_train_seconds": m["baseline_train_seconds"],
            "test_predictions": _shown(predictions), "test_engines": written["rows"],
            "published_test": PUBLISHED[subset], "target_test": TARGETS[subset]}
    if not args.no_ai4i:
        say("\n== AI4I 2020")
        lake.overwrite(silver_offline(spark, datasets, "ai4i"), cfg.lake_root,
                       catalog.silver("ai4i_process"))
        runner.run(spark, cfg.lake_root, runner.get("gold_ai4i_features"), "bench",
                   record=False)
        trained = run.train(spark, cfg, "ai4i", progress=say)
        results["ai4i"] = {**trained.metrics, "published_f1": AI4I_PUBLISHED_F1,
                           "target_f1": AI4I_TARGET_F1}
    results["seconds"] = round(time.monotonic() - began, 1)
    spark.stop()

    say("\nC-MAPSS (validation: 20 % of the training engines, seed 0, each cut 5 times the "
        "way the test set is; RMSE / PHM08 score summed over the cut trajectories)")
    say(f"{'subset':<7} {'GRU ensemble':>16} {'train s':>8} {'GBT baseline':>16} "
        f"{'published DCNN (test)':>22} {'target (test)':>14}")
    for subset, r in results["cmapss"].items():
        dcnn = r["published_test"]["DCNN (Li et al. 2018)"]
        target = r["target_test"]
        say(f"{subset:<7} {r['validation_rmse']:>7.2f} / {r['validation_phm08']:>6.1f} "
            f"{r['train_seconds']:>8.0f} {r['baseline_validation_rmse']:>7.2f} / "
            f"{r['baseline_validation_phm08']:>6.1f} {dcnn[0]:>12.2f} / {dcnn[1]:>7.1f} "
            f"{'<= ' + str(target[0]):>14}")
    if results["ai4i"]:
        a = results["ai4i"]
        say(f"\nAI4I (fixed stratified 80/20 split, seed 0; {int(a['n'])} test runs, "
            f"{int(a['positives'])} failures): F1 {a['f1']:.3f}, precision "
            f"{a['precision']:.3f}, recall {a['recall']:.3f}, PR-AUC {a['pr_auc']:.3f}, "
            f"threshold {a['threshold']:.3f}, {a['train_seconds']:.0f}s; published XGBoost "
            f"F1 {AI4I_PUBLISHED_F1}, target {AI4I_TARGET_F1}")
    path = out / "models.json"
    path.write_text(json.dumps(results, indent=2, default=str))
    say(f"\nwrote {_shown(path)} in {results['seconds']:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
