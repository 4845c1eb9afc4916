"""The shared service models (``api.service_models``): botocore's, less the prose, one copy."""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest

from strato.api.service_models import service_model


def _without_prose(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_prose(item) for key, item in value.items()
                if not (key in ("documentation", "documentationUrl") and isinstance(item, str))}
    if isinstance(value, list):
        return [_without_prose(item) for item in value]
    return value


@pytest.mark.parametrize("name", ["lambda", "logs", "sqs"])
def test_the_model_is_botocores_without_its_prose(name: str) -> None:
    theirs = botocore.session.get_session().get_service_model(name)
    ours = service_model(name)
    assert ours.api_version == theirs.api_version
    assert ours.metadata == theirs.metadata
    assert ours.operation_names == theirs.operation_names
    assert list(ours.shape_names) == list(theirs.shape_names)
    for shape in theirs.shape_names:
        assert ours.shape_for(shape)._shape_model == _without_prose(theirs.shape_for(shape)._shape_model)
    for operation in theirs.operation_names:
        theirs_op, ours_op = theirs.operation_model(operation), service_model(name).operation_model(operation)
        assert ours_op._operation_model == _without_prose(theirs_op._operation_model)
        assert ours_op.http == theirs_op.http
        assert [e.name for e in ours_op.error_shapes] == [e.name for e in theirs_op.error_shapes]


def test_no_prose_is_kept() -> None:
    model = service_model("lambda")
    assert model.operation_model("Invoke").documentation == ""
    assert model.shape_for("InvocationRequest").members["FunctionName"].documentation == ""


def test_one_copy_per_process() -> None:
    assert service_model("lambda") is service_model("lambda")
