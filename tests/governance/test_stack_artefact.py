"""The served-forecast choice (stack.json) is part of the model artefact the board approved."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

from governance.evidence import model_artefact_sha256, sha256_file
from governance.servable import check_servable
from tests.governance.governed import MODEL, govern, make_project
from tests.governance.mlflow_helpers import log_candidate
from training.errors import NotApproved
from training.forecaster import STACK_FILE, ServedStack

STACK = ServedStack("stacked", ("model", "poisson_glm"), {1: (0.6, 0.4)}, {1: 0.1})


def test_the_hash_covers_stack_json_only_when_it_is_there(tmp_path):
    (tmp_path / "model.lgb").write_text("tree")
    alone = model_artefact_sha256(tmp_path)
    assert alone == sha256_file(tmp_path / "model.lgb")  # old directories keep their hash
    (tmp_path / STACK_FILE).write_text(json.dumps(STACK.to_json()))
    with_stack = model_artefact_sha256(tmp_path)
    assert with_stack != alone
    swapped = ServedStack("stacked", ("model", "poisson_glm"), {1: (0.1, 0.9)}, {1: 0.1})
    (tmp_path / STACK_FILE).write_text(json.dumps(swapped.to_json()))
    assert model_artefact_sha256(tmp_path) not in (alone, with_stack)


def test_a_swapped_stack_json_is_refused_as_a_changed_artefact(tmp_path):
    project = make_project(tmp_path / "root")
    run_id, model_uri = log_candidate(project.uri)
    model_id = model_uri.removeprefix("models:/")
    staged = tmp_path / STACK_FILE
    staged.write_text(json.dumps(STACK.to_json()))
    MlflowClient(project.uri).log_model_artifact(model_id, str(staged))
    version = govern(project, run_id, model_uri)
    check_servable(project.gov, MODEL, version)
    location = MlflowClient(project.uri).get_logged_model(model_id).artifact_location
    logged = Path(location.removeprefix("file://")) / STACK_FILE
    assert logged.is_file()
    swapped = ServedStack("poisson_glm", ("model", "poisson_glm"), {1: (0.0, 1.0)}, {1: 0.1})
    logged.write_text(json.dumps(swapped.to_json()))
    with pytest.raises(NotApproved, match="model"):
        check_servable(project.gov, MODEL, version)
