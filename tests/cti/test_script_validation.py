"""A broken script is refused at load, with every problem named by file, step and (where known) line."""

from __future__ import annotations

from textwrap import dedent

from cti.scripts import Loaded, load_script

HEAD = """\
name = "t"
title = "Test"
start = "a"
"""


def load(body: str, head: str = HEAD, file: str = "broken.toml") -> Loaded:
    return load_script(head + dedent(body), file)


def messages(loaded: Loaded) -> list[str]:
    return [str(p) for p in loaded.problems]


def test_a_clean_script_loads_with_no_problem() -> None:
    loaded = load("""
        [[steps]]
        id = "a"
        kind = "prompt"
        text = "Hello"
        next = "b"

        [[steps]]
        id = "b"
        kind = "register"
    """)
    assert loaded.problems == () and loaded.script is not None
    assert loaded.script.start == "a" and loaded.script.steps["b"].final


def test_a_broken_step_reference_names_the_file_the_step_and_its_line() -> None:
    loaded = load("""
        [[steps]]
        id = "a"
        kind = "prompt"
        text = "Hello"
        next = "bye"

        [[steps]]
        id = "b"
        kind = "end"
    """)
    assert loaded.script is None
    assert "broken.toml:6: step 'a': next: 'bye' is no step of this script" in messages(loaded)


def test_a_cycle_without_exit_is_refused_naming_its_steps() -> None:
    loaded = load("""
        [[steps]]
        id = "a"
        kind = "choice"
        options = [ { label = "Go on", value = "on", next = "loop1" }, { label = "Stop", value = "stop", next = "z" } ]

        [[steps]]
        id = "loop1"
        kind = "prompt"
        text = "One"
        next = "loop2"

        [[steps]]
        id = "loop2"
        kind = "prompt"
        text = "Two"
        next = { if = "a", equals = "on", then = "loop1", else = "loop1" }

        [[steps]]
        id = "z"
        kind = "end"
    """)
    assert loaded.script is None
    [problem] = loaded.errors
    assert problem.step == "loop1" and problem.line == 11
    assert "the steps 'loop1', 'loop2' form a loop with no way to an end or register step" in problem.message


def test_a_loop_with_an_exit_is_fine() -> None:
    loaded = load("""
        [[steps]]
        id = "a"
        kind = "choice"
        options = [ { label = "Again", value = "again", next = "a" }, { label = "Done", value = "done", next = "z" } ]

        [[steps]]
        id = "z"
        kind = "register"
    """)
    assert loaded.errors == () and loaded.script is not None


def test_a_self_loop_without_exit_is_refused() -> None:
    loaded = load("""
        [[steps]]
        id = "a"
        kind = "prompt"
        text = "Again and again"
        next = "a"
    """)
    assert [p.message for p in loaded.errors] == ["the steps 'a' form a loop with no way to an end or register step"]


def test_a_duplicate_step_id_is_refused_at_its_second_line() -> None:
    loaded = load("""
        [[steps]]
        id = "a"
        kind = "prompt"
        text = "One"
        next = "z"

        [[steps]]
        id = "a"
        kind = "prompt"
        text = "Two"
        next = "z"

        [[steps]]
        id = "z"
        kind = "end"
    """)
    assert loaded.script is None
    assert messages(loaded) == ["broken.toml:12: step 'a': duplicate step id 'a' (each step needs its own)"]


def test_an_unknown_field_type_is_refused_listing_the_known_ones() -> None:
    loaded = load("""
        [[steps]]
        id = "a"
        kind = "fields"
        fields = [ { name = "colour", type = "colour", label = "Colour" } ]
        next = "z"

        [[steps]]
        id = "z"
        kind = "end"
    """)
    [problem] = loaded.errors
    assert problem.step == "a" and problem.line == 6
    assert problem.message.startswith("field 'colour': unknown field type 'colour' (known: text, phone, plate, make")


def test_a_choice_option_leading_nowhere_is_refused() -> None:
    loaded = load("""
        [[steps]]
        id = "a"
        kind = "choice"
        options = [ { label = "Yes", value = "yes", next = "z" }, { label = "No", value = "no" } ]

        [[steps]]
        id = "z"
        kind = "end"
    """)
    assert messages(loaded) == ["broken.toml:6: step 'a': option 'no' leads nowhere: give it a next (or the step one)"]


def test_bad_toml_is_refused_with_its_line() -> None:
    loaded = load("""
        [[steps]]
        id = "a"
        kind = "prompt
        next = "z"
    """)
    [problem] = loaded.problems
    assert problem.line == 7 and problem.file == "broken.toml"
    assert str(problem).startswith("broken.toml:7: TOML syntax error:")


def test_a_missing_start_and_missing_steps_are_both_reported() -> None:
    loaded = load_script('name = "t"\ntitle = "T"\n', "empty.toml")
    assert [p.message for p in loaded.errors] == ["steps: required, one [[steps]] table per step",
                                                  "start: required, the id of the first step"]


def test_a_start_that_is_no_step_is_refused() -> None:
    loaded = load("""
        [[steps]]
        id = "b"
        kind = "end"
    """)
    assert [p.message for p in loaded.errors] == ["start: 'a' is no step of this script"]


def test_several_problems_are_reported_at_once() -> None:
    loaded = load("""
        [[steps]]
        id = "a"
        kind = "choice"
        options = [ { label = "One", value = "one", next = "nowhere" }, { label = "Two", value = "two" } ]

        [[steps]]
        id = "b"
        kind = "fields"
        fields = [ { name = "x", type = "colour" }, { name = "who", type = "employee", list = "nobody" } ]
        next = "c"

        [[steps]]
        id = "b"
        kind = "end"

        [[steps]]
        id = "c"
        kind = "transfer"
        list = "masters"
        answered = "c"

        [[steps]]
        id = "d"
        kind = "teleport"
    """)
    assert loaded.script is None
    found = messages(loaded)
    expected = [
        "broken.toml:6: step 'a': option 'two' leads nowhere: give it a next (or the step one)",
        "broken.toml:11: step 'b': field 'x': unknown field type 'colour' (known: text, phone, plate, make, date, "
        "time, datetime, employee, number)",
        "broken.toml:17: step 'b': duplicate step id 'b' (each step needs its own)",
        "broken.toml:21: step 'c': not_answered: required (the step it leads to)",
        "broken.toml:27: step 'd': kind: 'teleport' is not a step kind (known: prompt, choice, fields, identify, "
        "pick_earlier, transfer, reminder, register, end)",
        "broken.toml:6: step 'a': option 'one': 'nowhere' is no step of this script",
        "broken.toml:11: step 'b': field 'who': no employee list 'nobody' (declare it under [employees])",
        "broken.toml:21: step 'c': list: no employee list 'masters' (declare it under [employees])",
        "broken.toml:11: warning: step 'b': no path from the start reaches this step",
        "broken.toml:21: warning: step 'c': no path from the start reaches this step",
    ]
    assert found == expected


def test_an_unreachable_step_is_a_warning_and_the_script_loads() -> None:
    loaded = load("""
        [[steps]]
        id = "a"
        kind = "register"

        [[steps]]
        id = "parked"
        kind = "prompt"
        text = "Later"
        next = "a"
    """)
    assert loaded.script is not None and loaded.errors == ()
    assert [str(w) for w in loaded.warnings] == [
        "broken.toml:10: warning: step 'parked': no path from the start reaches this step"]


def test_branch_facts_and_employee_sources_are_checked() -> None:
    loaded = load("""
        [employees]
        masters = [ { id = "m", name = "M", extension = "104" } ]

        [[steps]]
        id = "a"
        kind = "choice"
        options = [ { label = "X", value = "x" } ]
        next = { if = "a", equals = "y", then = "t", else = { if = "ghost.new", then = "t", else = "t" } }

        [[steps]]
        id = "t"
        kind = "transfer"
        employee = "a.value"
        answered = { if = "t.answerd", then = "z", else = "z" }
        not_answered = { if = "reason", equals = "nope", then = "z", else = "z" }

        [[steps]]
        id = "z"
        kind = "end"
    """)
    assert [p.message for p in loaded.errors] == [
        "next: if: 'a' is never 'y' (its options: x)",
        "next: if: 'ghost.new' names no step of this script",
        "answered: if: 't.answerd': a transfer step sets t.answered, t.employee",
        "not_answered: if reason equals 'nope': no option sets that reason",
        "employee: 'a.value' holds no employee (e.g. \"earlier.employee\", a transfer's \"<step>.employee\", "
        "or an employee field)",
    ]


def test_typos_in_keys_are_caught() -> None:
    loaded = load("""
        titel = "x"

        [[steps]]
        id = "a"
        kind = "prompt"
        text = "Hi"
        nxt = "z"

        [[steps]]
        id = "z"
        kind = "end"
    """)
    assert [p.message for p in loaded.errors] == [
        "unknown key 'titel' (known: description, employees, language, name, start, steps, title, version)",
        "unknown key 'nxt' for a prompt step",
        "next: required (the step it leads to)",
    ]


def test_the_version_follows_the_content_not_the_layout() -> None:
    body = """
        [[steps]]
        id = "a"
        kind = "register"
    """
    one = load(body).script
    reformatted = load("# a comment\n" + body.replace('id = "a"', 'id   =   "a"   # the only step')).script
    changed = load(body.replace('kind = "register"', 'kind = "register"\nstages = ["request"]')).script
    assert one is not None and reformatted is not None and changed is not None
    assert one.version == reformatted.version != changed.version
