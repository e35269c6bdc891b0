"""Container name validation and made-up names."""

from __future__ import annotations

import pytest

from controller import names
from kran import errors


@pytest.mark.parametrize("name, stored", [
    ("web", "web"), ("/web", "web"), ("a1", "a1"), ("My_App.v2-b", "My_App.v2-b"),
    ("0" * 64, "0" * 64),
])
def test_valid_names(name: str, stored: str) -> None:
    assert names.validate(name) == stored


@pytest.mark.parametrize("name", ["a", "_web", "-web", ".web", "we b", "web/1", "wéb", "//web", ""])
def test_invalid_names_get_dockers_message(name: str) -> None:
    with pytest.raises(errors.InvalidArgument) as caught:
        names.validate(name)
    assert str(caught.value) == (
        f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")


def test_word_lists_are_ours_and_valid() -> None:
    assert len(set(names.ADJECTIVES)) == len(names.ADJECTIVES) >= 100
    assert len(set(names.SURNAMES)) == len(names.SURNAMES) >= 150
    for word in names.ADJECTIVES + names.SURNAMES:
        assert word.isalpha() and word.islower(), word


def test_generated_names_are_adjective_surname() -> None:
    seen = {names.generate() for _ in range(200)}
    assert len(seen) > 150  # 15,000 combinations: repeats are rare
    for name in seen:
        adjective, surname = name.split("_")
        assert adjective in names.ADJECTIVES and surname in names.SURNAMES
        assert names.validate(name) == name


def test_retries_add_a_digit() -> None:
    name = names.generate(attempt=1)
    assert name[-1].isdigit() and name[:-1].split("_")[1] in names.SURNAMES
