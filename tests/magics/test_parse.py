"""Which lines of a cell are %bridge magics, and how their arguments are read."""

from __future__ import annotations

import pytest

from kernel_bridge.magics._parse import (
    HelpRequested,
    MagicUsageError,
    parse_line,
    split_cell,
    use_overrides,
)


def test_leading_magics_are_split_from_the_code() -> None:
    split = split_cell("# set up\n%bridge use local\n\n%bridge info\nx = 1\nprint(x)\n")
    assert split.magics == ["%bridge use local", "%bridge info"]
    assert split.code == "x = 1\nprint(x)\n"


def test_a_cell_without_magics_is_left_untouched() -> None:
    cell = "%time x = 1\ny = '%bridge'\n"
    assert split_cell(cell).magics == []
    assert split_cell(cell).code == cell


def test_a_magic_after_code_is_refused() -> None:
    with pytest.raises(MagicUsageError, match="line 2: %bridge lines must come first"):
        split_cell("x = 1\n%bridge info\n")


def test_bare_bridge_means_info_and_help_is_text() -> None:
    assert parse_line("%bridge").command == "info"
    with pytest.raises(HelpRequested, match="usage: %bridge upload"):
        parse_line("%bridge upload --help")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("%bridge frob", "invalid choice: 'frob'"),
        ("%bridge upload", "the following arguments are required: PATH"),
        ("%bridge use docker --nope", "unrecognized arguments: --nope"),
        ("%bridge use podman", "invalid choice: 'podman'"),
        ("%bridge upload 'unclosed", "check its quotes"),
    ],
)
def test_bad_lines_say_what_is_wrong(line: str, message: str) -> None:
    with pytest.raises(MagicUsageError, match=message):
        parse_line(line)


def test_use_options_map_to_the_executor_traits_and_refuse_other_kinds() -> None:
    args = parse_line("%bridge use docker --image img:1 --memory 1g --mount-notebook-dir")
    assert use_overrides(args) == {"image": "img:1", "mem_limit": "1g", "mount_notebook_dir": True}
    with pytest.raises(
        MagicUsageError, match="--image applies to the docker executor, not to local"
    ):
        use_overrides(parse_line("%bridge use local --image img:1"))
