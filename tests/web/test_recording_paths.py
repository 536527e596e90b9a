"""A recording row's path cannot name a file outside the recordings directory: `..`, absolute
paths elsewhere and symlinks pointing out are all refused (cti.recording_files.inside, used by the
wallboard's and the quality page's players)."""

from __future__ import annotations

from cti.recording_files import inside


def test_paths_cannot_escape_the_recordings_directory(tmp_path):
    root = tmp_path / "monitor"
    (root / "2026/11/29").mkdir(parents=True)
    good = root / "2026/11/29/1764380000.1.wav"
    good.write_bytes(b"RIFF")
    secret = tmp_path / "etc-shadow"
    secret.write_text("root:x")
    (root / "2026/11/29/link.wav").symlink_to(secret)
    assert inside(root, good) == good.resolve()
    assert inside(root, "2026/11/29/1764380000.1.wav") == good.resolve()
    for bad in (root / "../etc-shadow", "../etc-shadow", "2026/../../etc-shadow", str(secret), "/etc/passwd",
                root / "2026/11/29/link.wav", root, ".", "2026/11/29/missing.wav"):  # fmt: skip
        assert inside(root, bad) is None, bad
