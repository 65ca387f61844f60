"""What an SQS message can carry: text, of the characters SQS accepts.

A message body is Unicode text, and SQS refuses one holding a character outside XML's
(#x9, #xA, #xD, #x20-#xD7FF, #xE000-#xFFFD, #x10000-#x10FFFF). A webhook body is JSON: it may come
in UTF-16 or UTF-32 (RFC 8259 asks for UTF-8; `json.loads` reads all three) and may hold U+FFFE or
U+FFFF unescaped in a string. Such a body cannot travel in a message: it is archived as an object of
its own and travels as a pointer to it, like a body too big for a message. Sent as it was, SQS
would refuse it on every delivery and the body would never be kept.
"""

from __future__ import annotations

import re

# What SQS refuses of text decoded from UTF-8, which holds no surrogate (#xD800-#xDFFF): the control
# characters but tab, line feed and carriage return, and U+FFFE and U+FFFF. Written as what is
# refused rather than what is accepted: compiling the accepted ranges took some 12 ms of every cold
# start that imports this (the webhook's among them), this a fraction of one.
_REFUSED_BY_SQS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def queue_text(body: bytes) -> str | None:
    """The body as a message's text, or None when no message can carry it as it is."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if _REFUSED_BY_SQS.search(text) else text
