"""engine.templates.shell and shell rendering: every value substituted into `run` reaches the command
as exactly itself, whatever its context (unquoted, inside the author's quotes, a heredoc,
a comment), or the step is refused where one level of quoting cannot protect it (a nested
shell). Checked by /bin/sh itself: a corpus of real attacks never creates its marker file,
and random values round-trip through every context."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import TemplateError
from engine.templates import templating
from engine.templates.shell import MARK, Slot, scan

# -- the scanner -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("command", "kinds"), [
    ("echo @", ["plain"]),
    ('echo "a @ b" \'c @\' @', ["double", "single", "plain"]),
    ('echo "$(echo @ "@")" `echo @`', ["plain", "double", "nested"]),
    ("cat <<EOF\n@ x\n  @\nEOF\necho @", ["heredoc", "heredoc", "plain"]),
    ("cat <<'EOF' >f\n@\nEOF", ["literal"]),
    ("cat <<-END; echo @\n\t@\n\tEND\n@", ["plain", "heredoc", "plain"]),
    ("bash -s <<EOF\n@\nEOF", ["nested"]),
    ("echo @ # @ 'unclosed\necho @", ["plain", "comment", "plain"]),
    ('sh -c "x @" && bash -lc \'@\' ; sudo -u pg timeout 5 dash -ec @', ["nested", "nested", "nested"]),
    ('kubectl exec pod -- sh -c "@"; ssh host ls @; eval "@"; watch @', ["nested"] * 4),
    ("echo $((1 + @)) ${X:-@} $'@' \\@", ["nested"] * 4),
    ('A=1 env B=2 echo "@"; sh script.sh @; echo sh -x @', ["double", "plain", "plain"]),
    ("(cd /tmp && echo @); x=$(sh -c '@')", ["plain", "nested"]),
])
def test_each_value_gets_the_context_the_shell_reads_it_in(command: str, kinds: list[str]) -> None:
    assert [s.kind for s in scan(command.replace("@", MARK))] == kinds


def test_heredoc_slots_name_their_delimiter() -> None:
    assert scan(f"cat <<'STOP'\n{MARK}\nSTOP") == (Slot("literal", "STOP"),)


# -- rendering, executed by /bin/sh -------------------------------------------------------------------

def sh(command: str, cwd: Path) -> str:
    done = subprocess.run(["/bin/sh", "-c", command], cwd=cwd, capture_output=True, timeout=20)
    return done.stdout.decode("utf-8", "surrogateescape")


# Each template prints the value it is given; `expect` says what exactly.
ROUND_TRIPS = {
    "printf '%s' {{ v }}": lambda v: v,
    "printf '%s' \"{{ v }}\"": lambda v: v,
    "printf '%s' 'before {{ v }} after'": lambda v: f"before {v} after",
    "x=\"[{{ v }}]\"; printf '%s' \"$x\"": lambda v: f"[{v}]",
    "cat <<EOF\n{{ v }}\nEOF": lambda v: v + "\n",
    "cat <<'EOF'\n{{ v }}\nEOF": lambda v: v + "\n",
    "cat <<-EOF\n\t{{ v }}\n\tEOF": lambda v: v + "\n",
    "printf '%s' \"$(printf '%s' {{ v }})\"": lambda v: v.rstrip("\n"),
    "printf '%s' {{ v }} # and {{ v }}": lambda v: v,
    "sh -c \"printf '%s' {{ v }}\"": lambda v: v,
}
NASTY = "$`'\"\\!*?[]{}()<>|&;#~ \t\nEOF-x"
VALUES = st.one_of(
    st.text(alphabet=st.sampled_from(NASTY), max_size=12),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=12),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=VALUES)
def test_any_value_round_trips_through_every_context_or_is_refused(value: str, tmp_path: Path) -> None:
    for template, expect in ROUND_TRIPS.items():
        try:
            command = templating.render(template, {"v": value}, shell=True)
        except TemplateError as exc:
            assert "unsafe in the shell command" in str(exc), (template, value, exc)
            assert ("sh -c" in template and value) or "EOF" in value or any(c in value for c in "\n\r\t") or (
                "EOF" in template and "dash" in str(exc)), (template, value, exc)
            continue
        assert sh(command, tmp_path) == expect(value), (template, value, command)


@pytest.mark.parametrize("value", ["E\x80", "Eé", "EOé", "EOFé"])
def test_a_heredoc_line_dash_would_garble_is_refused(value: str, tmp_path: Path) -> None:
    """dash drops the non-ASCII byte after a line's start that looks like the delimiter."""
    with pytest.raises(TemplateError, match="dash"):
        templating.render("cat <<EOF\n{{ v }}\nEOF", {"v": value}, shell=True)
    assert sh(templating.render("cat <<EOF\nx{{ v }}\nEOF", {"v": value}, shell=True), tmp_path) == f"x{value}\n"


PAYLOADS = [
    "$(touch {m})", "`touch {m}`", "'; touch {m}; '", "\"; touch {m}; \"", "\\\"; touch {m}; \\\"",
    "' ; touch {m} #", "\\'; touch {m}; #", "$(touch {m})'", "x\ntouch {m}\n", "EOF\ntouch {m}\nEOF",
    "x\nEOF\ntouch {m}\ncat <<EOF", "'\"$(touch {m})\"'", "$'\\x27'; touch {m}", "\\$(touch {m})",
    "\\`touch {m}\\`", "'\\''; touch {m}; '\\''", "\"'\"'\"'; touch {m}; #", "; touch {m}", "| touch {m}",
    "&& touch {m}", "$( touch {m} )", "$((1))$(touch {m})", "${{x:-$(touch {m})}}", "`; touch {m}; `",
    "a\\", "\\", "'", "\"", "\\\"; touch {m} #", "\ttouch {m}", "\\\ntouch {m}", "\"$(touch {m})\"",
    "\\'$(touch {m})\\'", "' \"$(touch {m})\" '", "\r\ntouch {m}\r\n", "END\ntouch {m}", "\tEOF\ntouch {m}",
    "}}; touch {m}; {{", ")$(touch {m})(", "1)); touch {m}; ((1", "x' '$(touch {m})", "$(IFS=_;x=touch_{m};$x)",
]
ATTACKED = [
    "echo {{ v }}", "echo \"{{ v }}\"", "echo '{{ v }}'", "echo \"a {{ v }} b\" 'c {{ v }} d'",
    "cat <<EOF\n{{ v }}\nEOF", "cat <<'EOF'\n{{ v }}\nEOF", "cat <<-EOF\n\t{{ v }}\n\tEOF",
    "x=\"{{ v }}\"; echo \"$x\"", "echo \"$(echo \"{{ v }}\")\"", "echo {{ v }} # {{ v }}",
    "sh -c \"echo {{ v }}\"", "sh -c 'echo {{ v }}'", "bash -c \"echo '{{ v }}'\"", "eval \"echo {{ v }}\"",
    "echo `echo {{ v }}`", "echo $(( {{ v }} ))", "echo ${UNSET:-{{ v }}}", "echo \"${UNSET:-{{ v }}}\"",
    "echo \\{{ v }}", "for a in {{ v }}; do echo \"$a\"; done", "sh <<EOF\necho {{ v }}\nEOF",
    "echo \"$(echo '{{ v }}')\"", "cat <<EOF\n$(echo {{ v }})\nEOF",
]


def test_no_attack_in_the_corpus_runs_a_command(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    tried = refused = 0
    for template in ATTACKED:
        for payload in PAYLOADS:
            value = payload.format(m=marker)
            tried += 1
            try:
                command = templating.render(template, {"v": value}, shell=True)
            except TemplateError:
                refused += 1
                continue
            sh(command, tmp_path)
            assert not marker.exists(), f"{template!r} with {value!r} ran: {command!r}"
    assert tried == len(ATTACKED) * len(PAYLOADS) and refused < tried


def test_raw_is_the_authors_own_text_and_quote_is_not_quoted_twice(tmp_path: Path) -> None:
    ctx = {"opts": "-n", "v": "a b"}
    assert templating.render("echo {{ opts | raw }} {{ v }}", ctx, shell=True) == "echo -n 'a b'"
    assert templating.render('echo "{{ v | quote }}"', ctx, shell=True) == "echo \"'a b'\""
    # a raw quote changes where the next value lands, and that value is escaped for it
    command = templating.render("echo {{ q | raw }}{{ v }}{{ q | raw }}", {"q": '"', "v": "$(id)"}, shell=True)
    assert command == 'echo "\\$(id)"' and sh(command, tmp_path) == "$(id)\n"


def test_a_refusal_names_the_expression_and_the_safe_way() -> None:
    with pytest.raises(TemplateError) as refused:
        templating.render('sh -c "systemctl restart {{ inputs.unit }}"', {"inputs": {"unit": "a;b"}}, shell=True)
    message = str(refused.value)
    assert "{{ inputs.unit }} lands inside sh -c" in message and "env:" in message and "\"$VALUE\"" in message
    plain = templating.render('sh -c "systemctl restart {{ inputs.unit }}"', {"inputs": {"unit": "app-1.service"}},
                              shell=True)
    assert plain == 'sh -c "systemctl restart app-1.service"'
    with pytest.raises(TemplateError, match=r"\{\{ v \}\} holds a line EOF, which would end the heredoc early"):
        templating.render("cat <<EOF\n{{ v }}\nEOF", {"v": "x\nEOF\nid"}, shell=True)
    with pytest.raises(TemplateError, match="NUL byte"):
        templating.render("echo {{ v }}", {"v": "a\0b"}, shell=True)


def test_dry_run_placeholders_go_in_as_they_are() -> None:
    ctx = {"steps": {"x": templating.Placeholder("steps.x")}}
    assert templating.render('echo "{{ steps.x.stdout }}" {{ steps.x.stdout }}', ctx, shell=True) == \
        'echo "<steps.x.stdout>" <steps.x.stdout>'
