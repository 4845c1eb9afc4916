"""Model validation: AWS's exact ValidationException texts against Lambda's real input shapes."""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest
from botocore.model import ServiceModel, Shape

from strato.api.validation import validate, validation_error
from strato.domain.errors import ValidationException

ROLE = "arn:aws:iam::123456789012:role/r"


@pytest.fixture(scope="module")
def model() -> ServiceModel:
    return botocore.session.get_session().get_service_model("lambda")


def _input(model: ServiceModel, operation: str) -> Shape:
    shape = model.operation_model(operation).input_shape
    assert shape is not None
    return shape


def _create(**extra: Any) -> dict[str, Any]:
    return {"FunctionName": "f", "Role": ROLE, "Code": {"ZipFile": b"PK"}, **extra}


def _pattern(model: ServiceModel, operation: str, member: str) -> str:
    pattern = _input(model, operation).members[member].metadata["pattern"]
    assert isinstance(pattern, str)
    return pattern


def test_valid_input_has_no_violations(model: ServiceModel) -> None:
    params = _create(
        Runtime="python3.12",
        Handler="app.handler",
        MemorySize=128,
        Timeout=3,
        Architectures=["arm64"],
        Environment={"Variables": {"A_1": "x"}},
        Layers=["arn:aws:lambda:us-east-1:123456789012:layer:l:1"],
        Tags={"k": "v"},
    )
    assert validate(_input(model, "CreateFunction"), params) == []


def test_pattern(model: ServiceModel) -> None:
    pattern = _pattern(model, "GetFunction", "FunctionName")
    assert validate(_input(model, "GetFunction"), {"FunctionName": "my-function!"}) == [
        "Value 'my-function!' at 'functionName' failed to satisfy constraint: "
        f"Member must satisfy regular expression pattern: {pattern}"
    ]


def test_full_arn_and_dotted_names_match_pattern(model: ServiceModel) -> None:
    shape = _input(model, "Invoke")
    arn = "arn:aws:lambda:us-east-1:123456789012:function:f:1"
    assert validate(shape, {"FunctionName": arn, "Qualifier": "$LATEST"}) == []


def test_string_length(model: ServiceModel) -> None:
    qualifier = "a" * 129
    assert validate(
        _input(model, "GetFunction"), {"FunctionName": "f", "Qualifier": qualifier}
    ) == [
        f"Value '{qualifier}' at 'qualifier' failed to satisfy constraint: "
        "Member must have length less than or equal to 128"
    ]
    assert validate(_input(model, "GetFunction"), {"FunctionName": "f", "Qualifier": ""}) == [
        "Value '' at 'qualifier' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: "
        + _pattern(model, "GetFunction", "Qualifier"),
        "Value '' at 'qualifier' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1",
    ]


def test_numeric_bounds(model: ServiceModel) -> None:
    shape = _input(model, "CreateFunction")
    maximum = shape.members["MemorySize"].metadata["max"]
    assert validate(shape, _create(MemorySize=maximum + 1)) == [
        f"Value '{maximum + 1}' at 'memorySize' failed to satisfy constraint: "
        f"Member must have value less than or equal to {maximum}"
    ]
    assert validate(shape, _create(MemorySize=127)) == [
        "Value '127' at 'memorySize' failed to satisfy constraint: "
        "Member must have value greater than or equal to 128"
    ]


def test_enum(model: ServiceModel) -> None:
    assert validate(_input(model, "ListFunctions"), {"FunctionVersion": "invalid"}) == [
        "Value 'invalid' at 'functionVersion' failed to satisfy constraint: "
        "Member must satisfy enum value set: [ALL]"
    ]
    assert validate(
        _input(model, "Invoke"), {"FunctionName": "f", "InvocationType": "Sometimes"}
    ) == [
        "Value 'Sometimes' at 'invocationType' failed to satisfy constraint: "
        "Member must satisfy enum value set: [Event, RequestResponse, DryRun]"
    ]


def test_list_length_rendered_java_style(model: ServiceModel) -> None:
    assert validate(
        _input(model, "CreateFunction"), _create(Architectures=["x86_64", "arm64"])
    ) == [
        "Value '[x86_64, arm64]' at 'architectures' failed to satisfy constraint: "
        "Member must have length less than or equal to 1"
    ]


def test_list_element_constraints_reported_for_whole_list(model: ServiceModel) -> None:
    assert validate(_input(model, "CreateFunction"), _create(Architectures=["sparc"])) == [
        "Value '[sparc]' at 'architectures' failed to satisfy constraint: "
        "Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64], "
        "Member must not be null]"
    ]
    shape = _input(model, "CreateFunctionUrlConfig")
    params = {
        "FunctionName": "f",
        "AuthType": "NONE",
        "Cors": {"AllowMethods": ["GET", "OPTIONSX"]},
    }
    assert validate(shape, params) == [
        "Value '[GET, OPTIONSX]' at 'cors.allowMethods' failed to satisfy constraint: "
        "Member must satisfy constraint: [Member must have length less than or equal to 6, "
        "Member must have length greater than or equal to 0, "
        "Member must satisfy regular expression pattern: .*, Member must not be null]"
    ]


def test_map_keys_and_values(model: ServiceModel) -> None:
    shape = _input(model, "UpdateAlias")
    params = {
        "FunctionName": "f",
        "Name": "live",
        "RoutingConfig": {"AdditionalVersionWeights": {"x": 2.0}},
    }
    assert validate(shape, params) == [
        "Value '{x=2.0}' at 'routingConfig.additionalVersionWeights' failed to satisfy "
        "constraint: Map keys must satisfy constraint: [Member must have length less than or "
        "equal to 1024, Member must have length greater than or equal to 1, Member must satisfy "
        "regular expression pattern: [0-9]+]",
        "Value '{x=2.0}' at 'routingConfig.additionalVersionWeights' failed to satisfy "
        "constraint: Map value must satisfy constraint: [Member must have value less than or "
        "equal to 1.0, Member must have value greater than or equal to 0.0, "
        "Member must not be null]",
    ]


def test_sensitive_values_are_not_echoed(model: ServiceModel) -> None:
    params = _create(Environment={"Variables": {"1abc": "secret"}})
    assert validate(_input(model, "CreateFunction"), params) == [
        "Value at 'environment.variables' failed to satisfy constraint: Map keys must satisfy "
        "constraint: [Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+]"
    ]


def test_required(model: ServiceModel) -> None:
    assert validate(_input(model, "GetFunction"), {}) == [
        "Value null at 'functionName' failed to satisfy constraint: Member must not be null"
    ]
    assert validate(_input(model, "CreateFunction"), {"FunctionName": "f", "Role": None}) == [
        "Value null at 'role' failed to satisfy constraint: Member must not be null",
        "Value null at 'code' failed to satisfy constraint: Member must not be null",
    ]


def test_nested_structures_and_list_members(model: ServiceModel) -> None:
    shape = _input(model, "CreateFunction")
    params = _create(
        EphemeralStorage={},
        FileSystemConfigs=[{"Arn": None, "LocalMountPath": "/mnt/ok"}],
    )
    assert validate(shape, params) == [
        "Value null at 'fileSystemConfigs.1.member.arn' failed to satisfy constraint: "
        "Member must not be null",
        "Value null at 'ephemeralStorage.size' failed to satisfy constraint: "
        "Member must not be null",
    ]


def test_many_violations_make_one_exception(model: ServiceModel) -> None:
    items = validate(
        _input(model, "CreateFunction"),
        {"FunctionName": "bad name", "Timeout": 0, "Role": ROLE, "Code": {}},
    )
    assert len(items) == 2
    error = validation_error(items)
    assert isinstance(error, ValidationException)
    assert error.message == "2 validation errors detected: " + "; ".join(items)


def test_python_incompatible_pattern_is_skipped(model: ServiceModel) -> None:
    shape = ServiceModel(
        {
            "metadata": {"protocol": "rest-json", "apiVersion": "1"},
            "operations": {},
            "shapes": {
                "In": {
                    "type": "structure",
                    "members": {
                        "Java": {"shape": "Java"},
                        "Nested": {"shape": "Nested"},
                        "Plain": {"shape": "Plain"},
                    },
                },
                "Java": {"type": "string", "pattern": "[\\p{L}\\p{Z}]+"},
                "Nested": {"type": "string", "pattern": "[[a-z]&&[^b]]+"},
                "Plain": {"type": "string", "pattern": "[a-z]+", "min": 2},
            },
        }
    ).shape_for("In")
    assert validate(shape, {"Java": "!!", "Nested": "!!", "Plain": "ok"}) == []
    assert validate(shape, {"Plain": "A"}) == [
        "Value 'A' at 'plain' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-z]+",
        "Value 'A' at 'plain' failed to satisfy constraint: "
        "Member must have length greater than or equal to 2",
    ]


def test_length_counts_utf16_units_like_java(model: ServiceModel) -> None:
    shape = _input(model, "CreateFunction")
    assert validate(shape, _create(Description="\U0001f600" * 128)) == []
    too_long = "\U0001f600" * 129
    assert validate(shape, _create(Description=too_long)) == [
        f"Value '{too_long}' at 'description' failed to satisfy constraint: "
        "Member must have length less than or equal to 256"
    ]
