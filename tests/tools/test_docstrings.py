"""Tests for iccm_network.docstrings: Google, NumPy and Sphinx styles."""

from __future__ import annotations

import pytest

from iccm_network.tools.docstrings import Docstring, parse_docstring

GOOGLE = """Get detailed metadata
    for a specific file.

    Looks the file up by id.
    Versions are optional.

    Args:
        file_id (str): The file's id,
            as returned by register.
        include_versions: Also return the
            version history.
        *args: Ignored.

    Returns:
        dict: The metadata.

    Raises:
        ToolError: The file does not exist.
    """

NUMPY = """Get detailed metadata for a specific file.

    Looks the file up by id.

    Parameters
    ----------
    file_id : str
        The file's id,
        as returned by register.
    include_versions : bool, optional
        Also return the version history.
    x, y : int
        Coordinates.

    Returns
    -------
    dict
        The metadata.

    Raises
    ------
    ToolError
        The file does not exist.
    """

SPHINX = """Get detailed metadata for a specific file.

    Looks the file up by id.

    :param file_id: The file's id,
        as returned by register.
    :param bool include_versions: Also return the version history.
    :type file_id: str
    :returns: The metadata.
    :rtype: dict
    :raises ToolError: The file does not exist.
    """


@pytest.mark.parametrize("doc", [GOOGLE, NUMPY, SPHINX], ids=["google", "numpy", "sphinx"])
def test_every_style_yields_parameter_descriptions_and_returns(doc: str) -> None:
    parsed = parse_docstring(doc)
    assert parsed.params["file_id"] == "The file's id, as returned by register."
    assert parsed.params["include_versions"] == "Also return the version history."
    assert parsed.returns == "The metadata."


@pytest.mark.parametrize("doc", [NUMPY, SPHINX], ids=["numpy", "sphinx"])
def test_summary_and_description_stop_at_the_first_section(doc: str) -> None:
    parsed = parse_docstring(doc)
    assert parsed.summary == "Get detailed metadata for a specific file."
    assert parsed.description == (
        "Get detailed metadata for a specific file.\n\nLooks the file up by id."
    )


def test_a_multi_line_summary_is_joined_into_one_line() -> None:
    parsed = parse_docstring(GOOGLE)
    assert parsed.summary == "Get detailed metadata for a specific file."
    assert parsed.description == (
        "Get detailed metadata for a specific file.\n\n"
        "Looks the file up by id.\nVersions are optional."
    )


def test_google_star_args_are_named_without_stars() -> None:
    assert parse_docstring(GOOGLE).params["args"] == "Ignored."


def test_numpy_entries_naming_several_parameters_describe_each() -> None:
    params = parse_docstring(NUMPY).params
    assert params["x"] == params["y"] == "Coordinates."


def test_google_returns_without_a_type_prefix_is_kept_whole() -> None:
    doc = """Count.

    Returns:
        The number of files: zero when empty.
    """
    assert parse_docstring(doc).returns == "The number of files: zero when empty."


def test_google_alternative_headings_are_parameter_sections() -> None:
    doc = """Thing.

    Arguments:
        a: First.

    Keyword Arguments:
        b: Second.

    Attributes:
        c: Third.
    """
    assert dict(parse_docstring(doc).params) == {"a": "First.", "b": "Second.", "c": "Third."}


def test_sphinx_typed_param_puts_the_name_last() -> None:
    assert parse_docstring(":param int count: How many.").params == {"count": "How many."}


@pytest.mark.parametrize("doc", [None, "", "   \n  "])
def test_a_missing_docstring_parses_as_empty(doc: str | None) -> None:
    assert parse_docstring(doc) == Docstring()


def test_a_summary_only_docstring_has_no_params() -> None:
    parsed = parse_docstring("Echo text back.")
    assert parsed.summary == parsed.description == "Echo text back."
    assert parsed.params == {}
    assert parsed.returns is None


def test_a_heading_that_is_not_a_section_stays_prose() -> None:
    doc = """Summary.

    Beware:
        this is not a known section.
    """
    parsed = parse_docstring(doc)
    assert "Beware:" in parsed.description
    assert parsed.params == {}


def test_params_cannot_be_modified() -> None:
    params = parse_docstring(GOOGLE).params
    with pytest.raises(TypeError):
        params["x"] = "y"  # type: ignore[index]
