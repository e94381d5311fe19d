"""The functions shipped to Globus Compute endpoints.

Each is self-contained: it imports what it needs inside its body and refers to no global of
this module, so it survives serialization by source text (`PureSourceTextInspect`) and runs
on an endpoint whose Python differs from the caller's. They take and return JSON-safe data
(`servable.remote.jsondata`: arrays as tagged base64 records), so no pickle is needed either
way and an endpoint restricted to source-text code and JSON data accepts them. The endpoint
needs the `servable` package installed (the project's container images carry it); the logic
lives in `servable.remote.worker`, which is tested like the rest of the package.
"""


def predict(bundle_ref, jets, runtime="auto", batch_size=None):
    """Class probabilities for `jets` (dict of arrays: tracks, vertices, optional
    jet_features and feature-name lists) with the bundle at `bundle_ref` (path on the
    endpoint, or a name or DOI found under $SERVABLE_BUNDLE_PATH there).

    Returns (JSON-safe) {"probabilities": (n, classes) float32, "runtime": str, "worker": {...}}.
    """
    from servable.remote.jsondata import from_json_safe, to_json_safe
    from servable.remote.worker import predict_arrays

    return to_json_safe(predict_arrays(bundle_ref, from_json_safe(jets, "jets"),
                                       runtime=runtime, batch_size=batch_size))


def explain(bundle_ref, jets, method, target=1, **params):
    """An explanation of `method` for `jets` with the bundle at `bundle_ref`.

    Returns {"explanation": summary dict, per-jet relevance per field
    ("tracks"/"vertices"/"jet") and "output" arrays or None, "n_jets": int, "worker": {...}}.
    """
    from servable.remote.jsondata import from_json_safe, to_json_safe
    from servable.remote.worker import explain_arrays

    return to_json_safe(explain_arrays(bundle_ref, from_json_safe(jets, "jets"), method,
                                       target, from_json_safe(params, "params")))


def train(options):
    """One training run (a seed of a stability study) from the `servable train` options
    dict; writes the bundle where `options["out"]` says and returns its summary."""
    from servable.remote.jsondata import to_json_safe
    from servable.remote.worker import train_options

    return to_json_safe(train_options(options))


SHIPPED = {"predict": predict, "explain": explain, "train": train}
