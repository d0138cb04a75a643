"""The example pipeline's pytest target: each test becomes a sub-result of the `unit` case."""

import os


def test_addition() -> None:
    assert 1 + 1 == 2


def test_attachments_directory_is_given() -> None:
    directory = os.environ["TESTLEDGER_ATTACHMENTS_DIR"]
    with open(os.path.join(directory, "note.txt"), "w") as note:
        note.write("files written here are recorded as the case's attachments\n")


def test_text() -> None:
    assert "testledger".startswith("test")
