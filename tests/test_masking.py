"""engine.run.masking: secret values become *** in text, bytes and nested data."""

from __future__ import annotations

from engine.run.bus import EventBus
from engine.run.events import StepFinished
from engine.run.masking import MASK, MaskedStream, Masker
from engine.testing import Recorder


def test_every_occurrence_of_a_secret_is_masked() -> None:
    masker = Masker(["hunter2"])
    assert masker.text("pw=hunter2 again hunter2") == f"pw={MASK} again {MASK}"
    assert masker.bytes(b"x hunter2 y") == b"x *** y"


def test_the_longest_secret_is_masked_first_so_nothing_leaks() -> None:
    masker = Masker(["abc", "abcdef"])
    assert masker.text("key=abcdef") == "key=***"


def test_nested_data_is_masked_keys_and_other_types_kept() -> None:
    masker = Masker(["s3cret"])
    data = {"cmd": "curl -u s3cret", "list": ["s3cret", 1, None], "tuple": ("x s3cret",), "n": 3}
    assert masker.data(data) == {"cmd": "curl -u ***", "list": ["***", 1, None], "tuple": ["x ***"], "n": 3}


def test_a_secret_is_masked_at_any_length_and_text_derived_from_one_when_long_enough() -> None:
    """A one-character secret is still a secret; a one-character piece of one (an item of
    `inputs.token | list`) would mask ordinary text everywhere: it is masked by construction."""
    masker = Masker(["¤", ""])
    assert masker.text("price ¤5") == "price ***5"
    masker.add("a", derived=True)
    masker.add("abc", derived=True)
    assert masker.text("a b abc") == "a b ***"
    assert not Masker([""])


def test_non_string_secrets_are_masked_by_their_text() -> None:
    masker = Masker()
    masker.add(123456)
    assert masker.text("pin 123456") == "pin ***"


def test_an_empty_masker_returns_data_untouched() -> None:
    data = {"a": ["b"]}
    assert Masker().data(data) is data


def test_the_event_bus_masks_events_before_any_observer_sees_them() -> None:
    recorder = Recorder()

    class Clock:
        def monotonic(self) -> float:
            return 0.0

        def now(self) -> float:
            return 0.0

    bus = EventBus(Clock(), [recorder], Masker(["tok-123"]))
    bus.emit(StepFinished("s", "triage", "run", "failed", stdout="got tok-123", error="bad tok-123",
                          outputs={"t": "tok-123"}))
    [(event, _)] = recorder.events
    assert "tok-123" not in repr(event.record())
    assert isinstance(event, StepFinished) and event.stdout == "got ***" and event.outputs == {"t": "***"}


def test_a_secret_split_across_chunks_is_still_masked() -> None:
    stream = MaskedStream(Masker(["tok-ABCD-xyz"]))
    shown = stream.feed("key: tok-AB") + stream.feed("CD-") + stream.feed("xyz done\n") + stream.flush()
    assert shown == "key: *** done\n"


def test_only_a_possible_start_of_a_secret_is_held_back() -> None:
    stream = MaskedStream(Masker(["secret"]))
    assert stream.feed("plain text se") == "plain text "
    assert stream.feed("ven\n") == "seven\n"
    assert stream.feed("ends with sec") == "ends with "
    assert stream.flush() == "sec"  # the stream ended: what was held back is shown


def test_a_stream_without_secrets_holds_nothing_back() -> None:
    stream = MaskedStream(Masker())
    assert stream.feed("anything") == "anything" and stream.flush() == ""


# -- every encoding the engine writes ---------------------------------------------------------------

SECRET = "it's \"s3cret\" $x\\y ü&=/+"


def leaked(text: str, secret: str = SECRET) -> list[str]:
    """The forms of `secret` found in `text` (what an attacker reading the text would try)."""
    import base64
    import json as json_
    import shlex
    from urllib.parse import quote, quote_plus

    forms = {"raw": secret, "shell": shlex.quote(secret), "json": json_.dumps(secret)[1:-1],
             "json-ascii": json_.dumps(secret, ensure_ascii=True)[1:-1], "url": quote(secret, safe=""),
             "form": quote_plus(secret), "repr": repr(secret)[1:-1],
             "basic-auth": base64.b64encode(f"ops:{secret}".encode()).decode()[8:-4]}
    return [name for name, form in forms.items() if form and form in text]


def test_a_secret_is_masked_in_every_encoding_the_engine_writes() -> None:
    import base64
    import json as json_
    import shlex
    from urllib.parse import quote, quote_plus, urlencode

    masker = Masker([SECRET])
    for written in [shlex.quote(SECRET), shlex.quote(f"x-{SECRET}-y"), json_.dumps({"token": SECRET}),
                    json_.dumps([SECRET], ensure_ascii=False), f"https://h/?t={quote(SECRET, safe='')}",
                    urlencode({"t": SECRET, "u": "x"}), quote_plus(SECRET), repr(SECRET),
                    f"ValueError: cannot convert {SECRET!r} to an integer",
                    "Basic " + base64.b64encode(f"ops:{SECRET}".encode()).decode(),
                    "Basic " + base64.b64encode(f"o:{SECRET}".encode()).decode(),
                    "Basic " + base64.b64encode(f"root:{SECRET}".encode()).decode(),
                    templating_render('echo "{{ t }}"'), templating_render("echo 'a {{ t }}'"),
                    templating_render("cat <<EOF\n{{ t }}\nEOF")]:
        assert leaked(masker.text(written)) == [], written


def templating_render(template: str) -> str:
    from engine.templates import templating

    return templating.render(template, {"t": SECRET}, shell=True)


def test_a_stream_holds_back_the_start_of_an_encoded_secret() -> None:
    import shlex

    quoted = shlex.quote(SECRET)
    stream = MaskedStream(Masker([SECRET]))
    shown = stream.feed("cmd " + quoted[:6]) + stream.feed(quoted[6:] + " done") + stream.flush()
    assert shown == "cmd '***' done"
