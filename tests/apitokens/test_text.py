"""A token's text: the `rft_` prefix, 256 random bits, a checksum that refuses typos."""

import re

import pytest

from apitokens import text
from tests.apitokens.conftest import get_with

pytestmark = pytest.mark.django_db


def test_a_token_is_the_prefix_the_random_part_and_the_checksum():
    token = text.generate()

    assert re.fullmatch(r"rft_[0-9A-Za-z]{49}", token)
    assert text.is_well_formed(token)


def test_the_random_part_holds_at_least_256_bits():
    assert 62**text.BODY_LENGTH >= 2**256
    assert len({text.generate() for _ in range(1000)}) == 1000


def test_every_single_character_typo_is_refused_by_the_checksum():
    token = text.generate()
    for position in range(len(text.PREFIX), len(token)):
        replacement = "a" if token[position] != "a" else "b"
        typo = token[:position] + replacement + token[position + 1 :]
        assert not text.is_well_formed(typo), position


@pytest.mark.parametrize(
    "bad",
    ["", "rft_", "rft_short", "ghp_" + "a" * 49, "0" * 39, "G" * 40, "x' OR '1'='1"],
)
def test_malformed_texts_are_refused(bad):
    assert not text.is_well_formed(bad)


def test_a_typo_costs_no_database_query(token, django_assert_num_queries):
    typo = token[:-1] + ("a" if token[-1] != "a" else "b")
    with django_assert_num_queries(0):
        response = get_with(typo)

    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token."}


def test_the_database_keeps_the_sha256_of_the_text():
    # FIPS 180-2's test vector for "abc".
    expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert text.digest("abc") == expected
