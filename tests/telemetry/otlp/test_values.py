import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList

from telemetry.otlp import any_value_to_python, attributes_to_dict, hex_id


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (AnyValue(string_value="voice"), "voice"),
        (AnyValue(bool_value=False), False),
        (AnyValue(int_value=-9_007_199_254_740_993), -9_007_199_254_740_993),
        (AnyValue(double_value=0.25), 0.25),
        (AnyValue(bytes_value=b"\x00\xff"), b"\x00\xff"),
        (AnyValue(), None),
    ],
)
def test_scalar_any_values_become_python_scalars(value, expected):
    converted = any_value_to_python(value)
    assert converted == expected
    assert type(converted) is type(expected)


def test_arrays_and_kvlists_become_lists_and_dicts_recursively():
    inner = KeyValueList(values=[KeyValue(key="codec", value=AnyValue(string_value="opus"))])
    array = ArrayValue(values=[AnyValue(int_value=1), AnyValue(kvlist_value=inner), AnyValue()])
    assert any_value_to_python(AnyValue(array_value=array)) == [1, {"codec": "opus"}, None]


def test_attributes_become_a_dict_where_a_repeated_key_keeps_the_last_value():
    attributes = [
        KeyValue(key="http.route", value=AnyValue(string_value="/api/guilds/{id}")),
        KeyValue(key="http.response.status_code", value=AnyValue(int_value=404)),
        KeyValue(key="http.route", value=AnyValue(string_value="/api/users/{id}")),
    ]
    assert attributes_to_dict(attributes) == {
        "http.route": "/api/users/{id}",
        "http.response.status_code": 404,
    }


def test_hex_id_is_lower_case_hex_and_none_when_absent():
    assert hex_id(bytes.fromhex("5B8EFFF798038103D269B633813FC60C")) == "5b8efff798038103d269b633813fc60c"
    assert hex_id(bytes.fromhex("00000000000000ff")) == "00000000000000ff"
    assert hex_id(b"") is None
    assert hex_id(bytes(16)) is None
