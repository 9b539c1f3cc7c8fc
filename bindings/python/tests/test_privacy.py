"""crow.scrub (bindings/python/src/privacy.rs)."""

import pytest

import crow


def test_scrubs_emails_phones_and_cards() -> None:
    out = crow.scrub("mail jane.doe@example.com or call +1 (415) 555-2671, card 4111 1111 1111 1111")
    assert "jane.doe@example.com" not in out
    assert "555-2671" not in out
    assert "4111" not in out
    assert "[email]" in out and "[phone]" in out and "[card]" in out


def test_clean_text_is_unchanged() -> None:
    text = "Order 100234 costs $19.99 and arrived on time"
    assert crow.scrub(text) == text
    assert crow.scrub("") == ""
    assert crow.scrub("héllo wörld ✓") == "héllo wörld ✓"


def test_non_text_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        crow.scrub(42)  # type: ignore[arg-type]
