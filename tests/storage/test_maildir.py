"""storage.maildir: name encoding and path safety (no database needed)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from storage.maildir import (
    Maildir,
    account_path,
    decode_folder_level,
    encode_folder_level,
    folder_path,
)


@pytest.mark.parametrize(
    ("name", "encoded"),
    [
        ("Entwürfe", "Entw&APw-rfe"),  # Dovecot's on-disk name
        ("台北", "&U,BTFw-"),  # RFC 3501 section 5.1.3 example
        ("a.b", "a&AC4-b"),
        ("&", "&-"),
        ("Hộp thư", "H&Htk-p th&AbA-"),
    ],
)
def test_folder_level_encoding(name: str, encoded: str) -> None:
    assert encode_folder_level(name) == encoded
    assert decode_folder_level(encoded) == name


def test_folder_path_layout() -> None:
    assert folder_path("annv@dongnai.gov.vn", "INBOX") == PurePosixPath("dongnai.gov.vn/annv")
    assert folder_path("annv@dongnai.gov.vn", "Sent/2025") == PurePosixPath("dongnai.gov.vn/annv/.Sent.2025")
    with pytest.raises(ValueError):
        folder_path("a@b", "/".join(["x" * 200] * 3))


@pytest.mark.parametrize("address", ["../../x@..", "/abs@/", "a\x00@b", ".hidden@.", "@", "a/b@c/d"])
def test_account_path_is_two_safe_components(address: str) -> None:
    path = account_path(address)
    assert len(path.parts) == 2
    for part in path.parts:
        assert part not in ("", ".", "..") and "/" not in part and "\0" not in part
        assert not part.startswith(".")


def test_account_path_is_injective() -> None:
    assert account_path("%2e@x") != account_path(".@x")
    assert account_path("a@b") == account_path("A@B")


def test_absolute_refuses_escape(tmp_path: Path) -> None:
    maildir = Maildir(tmp_path)
    for bad in ("../x", "/etc/passwd", "a/../../b"):
        with pytest.raises(ValueError):
            maildir.absolute(bad)


async def test_write_link_move_read(tmp_path: Path) -> None:
    maildir = Maildir(tmp_path)
    inbox = folder_path("a@b.c", "INBOX")
    blob = await maildir.write(inbox, b"hello\r\n")
    assert blob.startswith("b.c/a/cur/") and blob.endswith(":2,")
    assert await maildir.read(blob) == b"hello\r\n"
    assert not any((tmp_path / "b.c/a/tmp").iterdir())
    (copy,) = await maildir.link([blob], folder_path("a@b.c", "Sent"))
    assert await maildir.read(copy) == b"hello\r\n"
    (moved,) = await maildir.move([copy], folder_path("a@b.c", "Trash"))
    assert await maildir.read(moved) == b"hello\r\n"
    await maildir.remove([blob, moved])
    assert not (tmp_path / blob).exists()


async def test_place_staged_batch(tmp_path: Path) -> None:
    """A batch of staged files, several to the same folder and some to several
    folders: each renamed into its first folder's ``cur/`` (the relative path
    pathlib would give), linked into the others, staging left empty."""
    maildir = Maildir(tmp_path)
    inbox = folder_path("a@example.org", "INBOX")
    junk = folder_path("a@example.org", "Junk")
    other = folder_path("b@example.org", "INBOX")
    targets = [[inbox], [inbox, other], [junk], [inbox], [other, junk, inbox], [junk]]
    names = [await maildir.stage(f"message {i}".encode()) for i in range(len(targets))]
    blobs = maildir.place_staged(list(zip(names, targets, strict=True)))
    for i, (name, folders, these) in enumerate(zip(names, targets, blobs, strict=True)):
        assert these[0] == str(folders[0] / "cur" / f"{name}:2,")
        assert len(these) == len(folders)
        for blob, folder in zip(these, folders, strict=True):
            assert PurePosixPath(blob).parent == folder / "cur"
            assert maildir.absolute(blob).read_bytes() == f"message {i}".encode()
    assert not any(maildir.staging.iterdir())
    # Undone: every file back in staging under its name, the links gone.
    maildir.unplace(list(zip(names, blobs, strict=True)))
    assert sorted(p.name for p in maildir.staging.iterdir()) == sorted(names)
    assert not any((tmp_path / inbox / "cur").iterdir())
