"""Variable substitution in Dockerfile words, as Docker's shell lexer does it.

`$VAR`, `${VAR}`, `${VAR:-word}` (word if unset or empty), `${VAR-word}`
(word if unset), `${VAR:+word}` (word if set and not empty), `${VAR+word}`
(word if set), `${VAR:?msg}` and `${VAR?msg}` (an error when unset, or
empty with the colon). Single quotes keep everything literal; in double
quotes the escape character escapes only `"`, `$` and itself; outside
quotes it escapes any character. Quotes are removed. `process_words`
also splits into words on unquoted whitespace (whitespace that a variable
brings splits too, as in the shell).
"""

from __future__ import annotations

from collections.abc import Mapping

from kran import errors

_SPECIAL = frozenset("@*#?-$!0")


class _Words:
    """The words of one input, split on whitespace outside quotes."""

    def __init__(self) -> None:
        self.words: list[str] = []
        self.word = ""
        self.in_word = False

    def char(self, ch: str) -> None:
        if ch.isspace():
            if self.in_word and self.word:
                self.words.append(self.word)
                self.word = ""
                self.in_word = False
        else:
            self.raw_char(ch)

    def raw_char(self, ch: str) -> None:
        self.word += ch
        self.in_word = True

    def text(self, text: str) -> None:
        for ch in text:
            self.char(ch)

    def raw_text(self, text: str) -> None:
        self.word += text
        self.in_word = True

    def done(self) -> list[str]:
        if self.word:
            self.words.append(self.word)
            self.word = ""
            self.in_word = False
        return self.words


class _Lexer:
    def __init__(self, source: str, env: Mapping[str, str | None], escape: str) -> None:
        self.source = source
        self.pos = 0
        self.env = env
        self.escape = escape

    def peek(self) -> str:
        return self.source[self.pos] if self.pos < len(self.source) else ""

    def next(self) -> str:
        ch = self.peek()
        self.pos += 1 if ch else 0
        return ch

    def lookup(self, name: str) -> tuple[str, bool]:
        value = self.env.get(name)
        return ("", False) if value is None else (value, True)

    def process(self, stop: str = "") -> tuple[str, list[str]]:
        """Read up to `stop` (or the end): the text and its words."""
        result: list[str] = []
        words = _Words()
        while self.peek():
            ch = self.peek()
            if stop and ch == stop:
                self.next()
                return "".join(result), words.done()
            if ch == "'":
                text = self.single_quote()
                words.raw_text(text)
            elif ch == '"':
                text = self.double_quote()
                words.raw_text(text)
            elif ch == "$":
                text = self.dollar()
                words.text(text)
            else:
                self.next()
                if ch == self.escape:
                    ch = self.next()
                    if not ch:
                        break
                    words.raw_char(ch)
                else:
                    words.char(ch)
                text = ch
            result.append(text)
        if stop:
            raise errors.InvalidArgument(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.done()

    def single_quote(self) -> str:
        self.next()
        out = []
        while True:
            ch = self.next()
            if not ch:
                raise errors.InvalidArgument("unexpected end of statement while looking for matching single-quote")
            if ch == "'":
                return "".join(out)
            out.append(ch)

    def double_quote(self) -> str:
        self.next()
        out = []
        while True:
            ch = self.peek()
            if not ch:
                raise errors.InvalidArgument("unexpected end of statement while looking for matching double-quote")
            if ch == '"':
                self.next()
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
                continue
            self.next()
            if ch == self.escape:
                following = self.peek()
                if not following:
                    continue
                if following in ('"', "$", self.escape):
                    ch = self.next()
            out.append(ch)

    def name(self) -> str:
        """A variable name: letters, digits and _, or digits alone, or one special parameter."""
        first = self.peek()
        if first.isdigit():
            digits = ""
            while self.peek().isdigit():
                digits += self.next()
            return digits
        if first and first in _SPECIAL:
            return self.next()
        name = ""
        while self.peek() and (self.peek().isalnum() or self.peek() == "_"):
            name += self.next()
        return name

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            return self.lookup(name)[0] if name else "$"
        self.next()
        if not self.peek():
            raise errors.InvalidArgument("syntax error: missing '}'")
        if self.peek() in "{}:":
            raise errors.InvalidArgument("syntax error: bad substitution")
        name = self.name()
        ch = self.next()
        if ch == "}":
            return self.lookup(name)[0]
        colon = ch == ":"
        modifier = self.next() if colon else ch
        if modifier not in ("-", "+", "?"):
            if not modifier:
                raise errors.InvalidArgument("syntax error: missing '}'")
            raise errors.InvalidArgument(f"unsupported modifier ({modifier}) in substitution")
        word, _ = self.process("}")
        value, is_set = self.lookup(name)
        present = is_set and (value != "" or not colon)
        if modifier == "-":
            return value if present else word
        if modifier == "+":
            return word if present else ""
        if not present:
            reason = word or ("is not allowed to be empty" if is_set else "is not allowed to be unset")
            raise errors.InvalidArgument(f"{name}: {reason}")
        return value


def process_word(word: str, env: Mapping[str, str | None], escape: str = "\\") -> str:
    """`word` with its variables expanded and its quotes and escapes removed.

    `env` maps names to values (None: declared but unset). A syntax error
    raises errors.InvalidArgument.
    """
    return _Lexer(word, env, escape).process()[0]


def process_words(text: str, env: Mapping[str, str | None], escape: str = "\\") -> list[str]:
    """Like process_word, then split into words on whitespace outside quotes."""
    return _Lexer(text, env, escape).process()[1]
