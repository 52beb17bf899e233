"""WAL positions: what a consistency token carries, read and written as PostgreSQL does."""

import pytest
from pg_runtime.wal import MAX_LENGTH, InvalidPositionError, format_position, parse_position


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("0/0", 0),
        ("0/3000148", 0x3000148),
        ("16/B374D848", 0x16_B374D848),
        ("FFFFFFFF/FFFFFFFF", 2**64 - 1),
    ],
)
def test_positions_read_and_write_back(text: str, position: int) -> None:
    assert parse_position(text) == position
    assert format_position(position) == text


def test_lower_case_is_read() -> None:
    assert parse_position("16/b374d848") == parse_position("16/B374D848")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "16",
        "16/",
        "/1",
        "16/B374D848/1",
        "G/1",
        "1/-1",
        " 1/1",
        "1/1 ",
        "123456789/1",
        "1/1" + "0" * 100,
        "\uff11/1",  # a full-width digit
    ],
)
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(InvalidPositionError):
        parse_position(text)


def test_a_position_is_bounded_in_length() -> None:
    assert len(format_position(2**64 - 1)) == MAX_LENGTH
