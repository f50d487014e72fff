"""What an extId may be (contract section 8): the one rule the body schemas and the URL
converter share, so that a path segment no body could have created names nothing.

An extId travels in URL paths and is shown to people: 1 to 255 characters, no ``/``, no
surrounding blanks, not ``.`` or ``..`` (a path's dot segments), in Unicode NFC (so that two
spellings of one text are not two ids), and without characters of the categories Cc
(controls), Cf (format: bidi overrides, zero-width characters), Co (private use), Cs
(surrogates), Zl and Zp (line and paragraph separators).

This module imports nothing of the app: app/extensions.py uses it.
"""

from __future__ import annotations

import re
import unicodedata

MAX_LENGTH = 255

# The categories an extId never holds.
FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Zl", "Zp"})

# 1 to 255 characters, no '/', no surrounding blanks, no ASCII control character, not a dot
# segment. For an ASCII text (the usual case) this is the whole rule; the OpenAPI document
# gives it as the pattern of every extId.
SHAPE = re.compile(r"(?=\S)(?!.*\s\Z)(?!\.\.?\Z)[^/\x00-\x1f\x7f]{1,255}\Z")

SHAPE_MESSAGE = (
    "Must be 1 to 255 characters, without '/', control characters or surrounding blanks, "
    "and not '.' or '..'."
)


def ext_id_problem(text: str) -> str | None:
    """Why ``text`` cannot be an extId, for the caller to read; None when it can be one.

    The message names an offending character by its code point only: it may be invisible,
    or turn the message's text around (U+202E)."""
    if not SHAPE.match(text):
        return SHAPE_MESSAGE
    if text.isascii():
        return None
    for character in text:
        if unicodedata.category(character) in FORBIDDEN_CATEGORIES:
            return (
                f"Must not contain U+{ord(character):04X}: no control, format, private-use, "
                "surrogate, line or paragraph separator characters."
            )
    if not unicodedata.is_normalized("NFC", text):
        return "Must be in Unicode normalization form NFC."
    return None


def is_ext_id(text: str) -> bool:
    return ext_id_problem(text) is None
