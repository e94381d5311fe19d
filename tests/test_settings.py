"""The settings objects behind the study and training verbs refuse what the verbs refuse, with
the same one-line message: `reproduce.Settings`, `xai_benchmark.Settings`, `TrainConfig`.

Each case gives a value the CLI refuses, the same value given to the API, and the message
written out here; the CLI must exit 2 with exactly the API's message and write nothing.
"""

import numpy as np
import pytest

from servable.cli import main
from servable.errors import ServableError
from servable.models.training import TrainConfig
from servable.study import reproduce as R
from servable.study import xai_benchmark as X


def _cli_error(capsys, *args) -> str:
    """The one line a CLI run prints on stderr, after checking it exits 2."""
    code = main([str(a) for a in args])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def _api_error(cls, **kwargs) -> str:
    with pytest.raises(ServableError) as caught:
        cls(**kwargs)
    return str(caught.value)


REPRODUCE = [
    (["--seeds", 1], {"seeds": 1}, "seeds must be an integer >= 2, not 1"),
    (["--jets", 5], {"jets": 5}, "jets must be an integer >= 10, not 5"),
    (["--test-jets", 9], {"test_jets": 9}, "test_jets must be an integer >= 10, not 9"),
    (["--epochs", 0], {"epochs": 0}, "epochs must be an integer >= 1, not 0"),
    (["--patience", 0], {"patience": 0}, "patience must be an integer >= 1, not 0"),
    (["--folds", 1], {"folds": 1}, "folds must be an integer >= 2, not 1"),
    (["--folds", 11], {"folds": 11}, "folds (11) cannot exceed files (10)"),
    (["--explain-jets", 3], {"explain_jets": 3}, "explain_jets must be an integer >= 10"),
    (["--workers", 0], {"workers": 0}, "workers must be an integer >= 1, not 0"),
    (["--threads", 0], {"threads": 0}, "threads must be an integer >= 1, not 0"),
    (["--sizes", "60/20"], {"sizes": ((60, 20),)}, "IN sizes are hidden/De/Do triples"),
    (["--sizes", "60/0/24"], {"sizes": ((60, 0, 24),)}, "of positive integers"),
    (["--thresholds", "0.05,0.01"], {"thresholds": (0.05, 0.01)},
     "thresholds are increasing positive percentages"),
    (["--train-data", "missing.h5"], {"train_data": "missing.h5"}, "missing.h5: no such file"),
    (["--test-data", "missing.h5"], {"test_data": "missing.h5"}, "missing.h5: no such file"),
    (["--published", "nowhere"], {"published": "nowhere"},
     "nowhere: not a folder of published checkpoints"),
    (["--reference-auc", 1.5], {"reference_auc": 1.5},
     "reference_auc must be an AUC in (0, 1], not 1.5"),
]


@pytest.mark.parametrize("args, given, message", REPRODUCE)
def test_reproduce_settings_refuse_what_the_cli_refuses(capsys, tmp_path, monkeypatch, args,
                                                        given, message):
    monkeypatch.chdir(tmp_path)
    api = _api_error(R.Settings, **given)
    assert message in api
    out = tmp_path / "out"
    assert _cli_error(capsys, "reproduce", "--out", out, *args) == f"error: {api}"
    assert not out.exists()


def test_reproduce_settings_keep_valid_values_and_the_quick_run():
    s = R.Settings(sizes=[[32, 8, 8]], thresholds=[0.01, 1], train_data=None, threads=2)
    assert s.sizes == ((32, 8, 8),) and s.thresholds == (0.01, 1.0) and s.threads == 2
    quick = R.Settings(**R.QUICK)
    assert quick.seeds == 2 and quick.sizes == ((60, 20, 24), (16, 8, 8))
    assert (quick.files, quick.folds) == (4, 2)
    default = R.Settings()  # early stopping, not the cap, ends the default trainings
    assert default.patience == 8 and default.epochs >= 150 and default.folds == 5


def test_random_files_validate_on_files_that_are_no_k_fold_fold():
    for files, folds in ((4, 2), (10, 5), (6, 3), (10, 2)):
        seed = R.files_split_seed(files, folds)
        n_val = max(1, round(0.2 * files))
        chosen = set(np.random.default_rng(seed).choice(files, n_val, replace=False).tolist())
        assert chosen not in [{i for i in range(files) if i % folds == k} for k in range(folds)]


XAI = [
    (["--n-jets", 5], {"n_jets": 5}, "n_jets must be an integer >= 20, not 5"),
    (["--bootstraps", 1], {"bootstraps": 1}, "bootstraps must be an integer >= 2, not 1"),
    (["--methods", "lrp,tarot"], {"methods": ("lrp", "tarot")}, "unknown methods tarot"),
    # a count given with --quick overrides quick's (it once raised TypeError, a traceback)
    (["--quick", "--n-jets", 5], {"n_jets": 5}, "n_jets must be an integer >= 20, not 5"),
]


@pytest.mark.parametrize("args, given, message", XAI)
def test_xai_benchmark_settings_refuse_what_the_cli_refuses(capsys, tmp_path, args, given,
                                                            message):
    api = _api_error(X.Settings, **given)
    assert message in api
    data = tmp_path / "jets.h5"
    data.write_bytes(b"")  # refused before the data or any bundle is read
    out = tmp_path / "out"
    err = _cli_error(capsys, "xai-benchmark", "--bundles", "never-loaded", "--data", data,
                     "-o", out, *args)
    assert err == f"error: {api}"
    assert not out.exists()


@pytest.mark.parametrize("given, message", [
    ({"target": -1}, "target must be an integer >= 0, not -1"),
    ({"captum_jets": 0}, "captum_jets must be an integer >= 1, not 0"),
    ({"curve_points": 1.5}, "curve_points must be an integer >= 2, not 1.5"),
    ({"correlation_threshold": 1.2}, "correlation_threshold must be a number in (0, 1]"),
    ({"methods": ()}, "unknown methods (none given)"),
])
def test_xai_benchmark_settings_refuse_what_no_run_can_use(given, message):
    assert message in _api_error(X.Settings, **given)


TRAIN = [
    (["--epochs", 0], {"epochs": 0}, "epochs must be an integer >= 1, not 0"),
    (["--batch-size", 0], {"batch_size": 0}, "batch_size must be an integer >= 1, not 0"),
    (["--patience", 0], {"patience": 0}, "patience must be an integer >= 1, not 0"),
    (["--lr", 0], {"lr": 0.0}, "lr must be a positive learning rate, not 0.0"),
    (["--seed", -1], {"seed": -1}, "seed must be an integer from 0 to 4294967295, not -1"),
    (["--split", "halves"], {"split": "halves"}, "split must be one of random, files, kfold"),
    (["--split", "kfold", "--folds", 1], {"split": "kfold", "folds": 1},
     "folds must be an integer >= 2, not 1"),
    (["--split", "kfold", "--fold", 5], {"split": "kfold", "fold": 5},
     "fold must be an integer from 0 to 4, not 5"),
]


@pytest.mark.slow
@pytest.mark.parametrize("args, given, message", TRAIN)
def test_train_config_refuses_what_the_cli_refuses(capsys, train_file, tmp_path, args, given,
                                                   message):
    api = _api_error(TrainConfig, model="mlp", **given)
    assert message in api
    out = tmp_path / "out"
    err = _cli_error(capsys, "train", "--model", "mlp", "--data", train_file, "-o", out, *args)
    assert err == f"error: {api}"
    assert not out.exists()


def test_a_train_config_changed_after_it_was_built_is_checked_again():
    from servable.models.training import train

    cfg = TrainConfig(model="mlp")
    cfg.epochs = 0
    with pytest.raises(ServableError, match="epochs must be an integer >= 1, not 0"):
        train(["never-read.h5"], cfg)
