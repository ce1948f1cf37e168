"""known_hosts, indexed by host name: the same answers as paramiko's HostKeys (which scans
every line per lookup), and keys decoded only for the hosts looked up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import paramiko
import pytest

from engine.fleet._known_hosts import HostKeyIndex, KnownHosts
from engine.fleet._ssh_config import ConnectFailed, Endpoint, SshOptions

P256 = paramiko.ECDSAKey.generate(bits=256)
P384 = paramiko.ECDSAKey.generate(bits=384)
OTHER = paramiko.ECDSAKey.generate(bits=256)


def line(names: str, key: Any) -> str:
    return f"{names} {key.get_name()} {key.get_base64()}"


def sample_file(tmp_path: Path) -> Path:
    hashed = paramiko.HostKeys.hash_host("secret.example")
    lines = [
        "# a comment", "",
        line("web-1,10.0.0.1", P256),
        line("[web-2]:2222", P384),
        line(hashed, P256),
        line("web-1", OTHER),  # a second key of the same type: the first one wins
        line("web-1", P384),  # another type for web-1: merged
        "web-4 ssh-unknown AAAA",
        "web-5 only-two-fields",
        f"web-6\t{P256.get_name()}\t{P256.get_base64()}",
    ]
    path = tmp_path / "known_hosts"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


NAMES = ["web-1", "10.0.0.1", "[web-2]:2222", "web-2", "secret.example", "web-3", "web-4", "web-5", "web-6",
         "nowhere"]


@pytest.mark.parametrize("name", NAMES)
def test_lookups_answer_as_paramikos_host_keys(tmp_path: Path, name: str) -> None:
    path = sample_file(tmp_path)
    theirs = paramiko.HostKeys(str(path)).lookup(name)
    index = HostKeyIndex()
    index.load(str(path))
    ours = index.lookup(name)
    assert (ours is None) == (theirs is None)
    if theirs is not None:
        assert ours is not None
        assert {k: v.asbytes() for k, v in ours.items()} == {k: theirs[k].asbytes() for k in theirs}


def test_only_the_keys_of_hosts_looked_up_are_decoded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """500 hosts in known_hosts, one connection: one key decoded (paramiko decoded all 500,
    and compared every line with every other while loading)."""
    path = tmp_path / "known_hosts"
    path.write_text("".join(line(f"[10.1.{n // 250}.{n % 250}]:2222", P256) + "\n" for n in range(500)),
                    encoding="utf-8")
    decoded: list[str] = []
    real = paramiko.PKey.from_type_string

    def counting(kind: str, data: bytes) -> Any:
        decoded.append(kind)
        return real(kind, data)

    monkeypatch.setattr(paramiko.PKey, "from_type_string", counting)
    known = KnownHosts(SshOptions(known_hosts=(path,)))
    ep = Endpoint("db", "10.1.1.7", 2222, "ops")
    known.verify(ep, P256)
    assert known.known_types(ep) == [P256.get_name()]
    assert len(decoded) == 1
    with pytest.raises(ConnectFailed, match="HOST KEY CHANGED"):
        known.verify(ep, OTHER)


def test_a_recorded_key_is_found_at_once(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    known = KnownHosts(SshOptions(known_hosts=(path,), write_known_hosts=path, accept_new=True))
    ep = Endpoint("new", "10.9.9.9", 22, "ops")
    known.verify(ep, P256)  # unknown: accepted and recorded
    assert path.read_text() == line("10.9.9.9", P256) + "\n"
    known.verify(ep, P256)
    with pytest.raises(ConnectFailed, match="HOST KEY CHANGED"):
        known.verify(ep, OTHER)


def test_malformed_lines_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    path.write_text(f"bad {P256.get_name()} !!!notbase64\n|1|nope web ssh-ed25519 AAAA\n{line('good', P256)}\n",
                    encoding="utf-8")
    index = HostKeyIndex()
    index.load(str(path))
    assert index.lookup("bad") is None
    found = index.lookup("good")
    assert found is not None and list(found) == [P256.get_name()]


def test_a_revoked_key_is_refused_and_markers_do_not_break_loading(tmp_path: Path) -> None:
    """paramiko failed on any @revoked or @cert-authority line (InvalidHostKey)."""
    path = tmp_path / "known_hosts"
    path.write_text(f"{line('a,b', P256)}\n{line('c', P384)}\n@revoked * {P256.get_name()} {P256.get_base64()}\n"
                    f"@cert-authority *.example {P384.get_name()} {P384.get_base64()}\n", encoding="utf-8")
    known = KnownHosts(SshOptions(known_hosts=(path,)))
    with pytest.raises(ConnectFailed, match="revoked"):
        known.verify(Endpoint("a", "a", 22, "ops"), P256)
    known.verify(Endpoint("c", "c", 22, "ops"), P384)
