from __future__ import annotations

import pytest

from aiexport.intel._normalize import (
    address_key,
    compact_key,
    email_domain,
    name_tokens,
    officer_keys,
    person_keys,
    phone_key,
)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Huawei Technologies Co., Ltd.", "HUAWEI TECHNOLOGIES LIMITED"),
        ("Kepler Data Tech F.Z.E.", "Kepler Data Tech FZE"),
        ("Lion Gate Compute Pte. Ltd.", "Lion Gate Compute Pte Ltd"),
        ("PT Merdeka Tech", "P.T. Merdeka Tech"),
    ],
)
def test_legal_forms_and_punctuation_do_not_matter(a: str, b: str) -> None:
    assert name_tokens(a) == name_tokens(b)


def test_transliteration_and_spacing() -> None:
    assert compact_key("华为") == compact_key("Hua Wei") == compact_key("Huawei")
    assert name_tokens("ООО «Технологии Будущего»") == ("tekhnologii", "budushchego")


def test_person_keys_ignore_written_order() -> None:
    forms = ["WANG Wei", "Wang, Wei", "Wei Wang", "Wang Wei"]
    assert len({person_keys(f) for f in forms}) == 1
    assert person_keys("W. Wang") == frozenset({"wang|w"})
    assert officer_keys("Wang Wei; LI Na") == ["li~na", "wang~wei"]


def test_identifier_forms() -> None:
    assert phone_key("(65) 6123-4567") == phone_key("+65 61234567") == phone_key("0065 6123 4567")
    assert phone_key("123") is None
    assert email_domain("Sales@Example.COM") == "example.com"
    assert address_key("12 Station Rd, Manchester") == address_key("12 STATION ROAD, MANCHESTER")
