"""How parameters reach a shell: as environment variables, referenced from the command text, never pasted in.

Every parameter is in each case's environment as `TL_PARAM_<NAME>` (upper case, other characters
than letters and digits as `_`). In a `command`, `${{ params.x }}` becomes a reference to that
variable, written for the quoting context it sits in, so it is always one word of data:

    unquoted           echo ${{ params.x }}          ->  echo "${TL_PARAM_X}"
    double quotes      echo "v=${{ params.x }}"      ->  echo "v=${TL_PARAM_X}"
    single quotes      echo 'v=${{ params.x }}'      ->  echo 'v='"${TL_PARAM_X}"''
    here-document      <<EOF ... ${{ params.x }}     ->  ${TL_PARAM_X} (no quotes: they would be text)
    arithmetic         $(( ${{ params.x }} + 1 ))    ->  refused (bash evaluates `a[$(cmd)]` there)

A shell expands a variable's value without ever reading it as code, so whatever the value holds
(`$(...)`, quotes, `;`, new lines) stays data; and because the command line holds only the
variable's name, a secret never shows in `ps`. Misjudging the context (an exotic construct the
scanner below does not follow) can only make a reference come out literally, never run a value.
"""

from __future__ import annotations

import re

#: `${{ params.base_url }}`; the only interpolation a pipeline file knows.
PARAM_REF = re.compile(r"\$\{\{\s*params\.([A-Za-z_][A-Za-z0-9_-]*)\s*\}\}")
_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]")
_HEREDOC = re.compile(r"<<(-?)[ \t]*(\\?'[^'\n]*'|\"[^\"\n]*\"|[^\s;&|<>()]+)")
ENV_PREFIX = "TL_PARAM_"


def env_name(name: str) -> str:
    """The environment variable that carries parameter `name`: `base-url` -> `TL_PARAM_BASE_URL`."""
    return ENV_PREFIX + _NOT_ALNUM.sub("_", name).upper()


def parameter_environment(values: dict[str, str]) -> dict[str, str]:
    return {env_name(name): value for name, value in values.items()}


def _braced(match: re.Match[str]) -> str:
    return "${" + env_name(match[1]) + "}"


class _Scanner:
    """Walks a POSIX shell text once, tracking quotes, `$(...)`, backticks and here-documents."""

    def __init__(self, text: str) -> None:
        self.text, self.at = text, 0
        self.out: list[str] = []
        #: Open contexts: "sh" (unquoted: the top level, `$(...)`, backticks), "dq" (double quotes) or
        #: "ar" (`$((...))`), each with its count of open plain parentheses.
        self.stack: list[list[str | int]] = [["sh", 0]]
        self.heredocs: list[tuple[str, bool, bool]] = []

    def run(self) -> str:
        text = self.text
        while self.at < len(text):
            ref = PARAM_REF.match(text, self.at)
            if ref and self.stack[-1][0] == "ar":
                raise ValueError(
                    "a parameter cannot be used inside $((...)), where some shells evaluate a value as code; "
                    f"check that ${env_name(ref[1])} is a number first, then use the variable"
                )
            if ref:
                quoted = self.stack[-1][0] == "dq"
                self.out.append(_braced(ref) if quoted else f'"{_braced(ref)}"')
                self.at = ref.end()
            elif self.stack[-1][0] == "dq":
                self._double_quoted(text[self.at])
            else:
                self._unquoted(text[self.at])
        return "".join(self.out)

    def _emit(self, piece: str) -> None:
        self.out.append(piece)
        self.at += len(piece)

    def _double_quoted(self, char: str) -> None:
        if char == "\\":
            self._emit(self.text[self.at:self.at + 2])
            return
        if char == '"':
            self.stack.pop()
        elif self.text.startswith("$(", self.at):
            self._open_substitution()
            return
        self._emit(char)

    def _open_substitution(self) -> None:
        arithmetic = self.text.startswith("$((", self.at)
        self.stack.append(["ar" if arithmetic else "sh", 0])
        self._emit("$((" if arithmetic else "$(")

    def _unquoted(self, char: str) -> None:
        text, frame = self.text, self.stack[-1]
        if char == "\\":
            self._emit(text[self.at:self.at + 2])
        elif char == "'":
            end = text.find("'", self.at + 1)
            end = len(text) if end < 0 else end + 1
            inner = text[self.at:end]
            self.out.append(PARAM_REF.sub(lambda m: "'\"" + _braced(m) + "\"'", inner))
            self.at = end
        elif char == '"':
            self.stack.append(["dq", 0])
            self._emit(char)
        elif text.startswith("$(", self.at):
            self._open_substitution()
        elif char == "(":
            frame[1] = int(frame[1]) + 1
            self._emit(char)
        elif char == ")":
            if int(frame[1]):
                frame[1] = int(frame[1]) - 1
            elif len(self.stack) > 1:
                closed = self.stack.pop()[0]
                char = "))" if closed == "ar" and text.startswith("))", self.at) else char
            self._emit(char)
        elif char == "<" and text.startswith("<<", self.at) and not text.startswith("<<<", self.at):
            self._heredoc_operator()
        elif char == "\n" and self.heredocs:
            self._emit(char)
            self._heredoc_bodies()
        elif char == "#" and (self.at == 0 or text[self.at - 1] in " \t\n;&|("):
            end = text.find("\n", self.at)
            end = len(text) if end < 0 else end
            self.out.append(PARAM_REF.sub(_braced, text[self.at:end]))  # a comment: nothing in it runs
            self.at = end
        else:
            self._emit(char)

    def _heredoc_operator(self) -> None:
        match = _HEREDOC.match(self.text, self.at)
        if not match:
            self._emit("<<")
            return
        word = match[2]
        quoted = any(q in word for q in "'\"\\")
        self.heredocs.append((re.sub(r"[\\'\"]", "", word), quoted, match[1] == "-"))
        self.out.append(PARAM_REF.sub(_braced, match[0]))
        self.at = match.end()

    def _heredoc_bodies(self) -> None:
        text = self.text
        for delimiter, quoted, strip_tabs in self.heredocs:
            while self.at < len(text):
                end = text.find("\n", self.at)
                end = len(text) if end < 0 else end + 1
                line = text[self.at:end]
                self.at = end
                body = line.rstrip("\n")
                if (body.lstrip("\t") if strip_tabs else body) == delimiter:
                    self.out.append(line)
                    break
                if quoted and PARAM_REF.search(line):
                    raise ValueError(
                        f"a parameter cannot be used inside a quoted here-document (<<'{delimiter}'), where "
                        f"nothing expands; write <<{delimiter} or read ${env_name(PARAM_REF.search(line)[1])}"  # type: ignore[index]
                    )
                self.out.append(PARAM_REF.sub(_braced, line))
        self.heredocs = []


def shell_text(command: str) -> str:
    """`command` with each `${{ params.x }}` replaced by a quoted reference to `$TL_PARAM_X`.

    Raises ValueError for a reference inside a quoted here-document, where it could not expand.
    """
    if "${{" not in command:
        return command
    return _Scanner(command).run()
