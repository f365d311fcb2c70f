"""EMQX 5's accounts, ACL and settings as `gridwatch mqtt gen-auth --emqx` writes them.

EMQX cannot be installed here, so the files are checked by their formats instead of by a
broker: ``acl.conf`` is parsed as Erlang terms and each rule checked against the grammar of
EMQX's file authorizer (``emqx_authz_rule:compile``), then evaluated the way EMQX matches it
(first match wins, ``${username}`` rendered, ``#`` never matching a ``$`` topic) for a table of
who may do what; ``users.json`` against the ``import_users`` format with each hash recomputed
the way ``emqx_passwd`` does for pbkdf2; ``gridwatch.hocon`` as JSON against the values EMQX's
schema allows. The Mosquitto files come from the same rules (tests/test_mqtt_auth.py runs
those against a real broker)."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import pytest
from click.testing import CliRunner

from center.cli import mqtt_group
from center.transport.emqx_auth import EmqxFiles
from center.transport.mqtt_auth import (
    CENTER_USER,
    MAX_PACKET_BYTES,
    OWN_USER,
    AuthFiles,
    acl_text,
    topic_rules,
)

EDGES = ("edge-a", "edge-b")
REPLICA_2 = f"{CENTER_USER}-2"

# --- a reader for the Erlang terms of acl.conf ---------------------------------------------

_TOKEN = re.compile(r'\s+|%[^\n]*|(?P<str>"(?:[^"\\]|\\.)*")|(?P<atom>[a-z][A-Za-z0-9_]*)'
                    r"|(?P<punct>[{}\[\],.])")


def _tokens(text: str) -> list[tuple[str, str]]:
    found, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        assert m, f"acl.conf: cannot read {text[pos:pos + 40]!r}"
        pos = m.end()
        kind = m.lastgroup
        if kind is not None:
            found.append((kind, m.group(kind)))
    return found


def parse_terms(text: str) -> list[Any]:
    """Erlang terms each ending with ``.``: tuples as Python tuples, lists as lists, strings as
    ``str`` and atoms as ``Atom``; anything else fails the test."""
    toks = [*_tokens(text), ("end", "")]
    i = 0

    def term() -> Any:
        nonlocal i
        kind, value = toks[i]
        i += 1
        if kind == "str":
            return json.loads(value)
        if kind == "atom":
            return Atom(value)
        if value in "{[":
            close = "}" if value == "{" else "]"
            items: list[Any] = []
            while toks[i][1] != close:
                items.append(term())
                if toks[i][1] == ",":
                    i += 1
                else:
                    assert toks[i][1] == close, f"expected {close!r}, got {toks[i][1]!r}"
            i += 1
            return tuple(items) if close == "}" else items
        raise AssertionError(f"acl.conf: unexpected {value or 'end'!r}")

    terms = []
    while toks[i][0] != "end":
        terms.append(term())
        assert toks[i] == ("punct", "."), f"a term must end with '.', not {toks[i][1]!r}"
        i += 1
    return terms


class Atom(str):
    """An Erlang atom (a ``str`` that compares unequal to a string of the same letters)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Atom) and str.__eq__(self, other)

    __hash__ = str.__hash__


A = Atom
#: What emqx_authz_rule:compile accepts (the parts gridwatch could write).
PLACEHOLDERS = {"${username}", "${clientid}", "${cert_common_name}", "${zone}"}


def check_topic_filter(topic: str) -> None:
    for var in re.findall(r"\$\{[^}]*\}", topic):
        assert var in PLACEHOLDERS, f"{topic}: EMQX does not render {var}"
    levels = topic.split("/")
    for n, level in enumerate(levels):
        if "#" in level:
            assert level == "#" and n == len(levels) - 1, f"{topic}: '#' only as the last level"
        if "+" in level:
            assert level == "+", f"{topic}: '+' only as a whole level"
    if topic.startswith("$share/"):
        assert len(levels) >= 3 and levels[1] not in ("", "+", "#"), f"{topic}: bad share group"


def check_rule(rule: Any) -> None:
    """One term against emqx_authz_rule:compile's grammar."""
    assert isinstance(rule, tuple), rule
    assert rule[0] in (A("allow"), A("deny")), rule
    if len(rule) == 2:
        assert rule[1] == A("all"), rule
        return
    assert len(rule) == 4, rule
    who, action, topics = rule[1:]
    if who != A("all"):
        assert isinstance(who, tuple) and len(who) == 2, who
        assert who[0] in (A("username"), A("user"), A("clientid"), A("client")), who
        assert isinstance(who[1], str) and not isinstance(who[1], Atom), who
    assert action in (A("publish"), A("subscribe"), A("all")), action
    assert isinstance(topics, list) and topics, topics
    for t in topics:
        assert isinstance(t, str) and not isinstance(t, Atom), t
        check_topic_filter(t)


# --- EMQX's matching, as emqx_authz_rule:match does it ---------------------------------------

def topic_matches(topic: str, filt: str) -> bool:
    """emqx_topic:match: MQTT wildcards, and a ``$`` topic is never matched by a wildcard at
    the filter's first level."""
    t, f = topic.split("/"), filt.split("/")
    if t[0].startswith("$") and f[0] in ("#", "+"):
        return False
    for n, level in enumerate(f):
        if level == "#":
            return True
        if n >= len(t) or (level != "+" and level != t[n]):
            return False
    return len(t) == len(f)


def emqx_allows(rules: list[Any], username: str, action: str, topic: str,
                *, unwrap_share: bool) -> bool:
    """Whether EMQX lets ``username`` ``action`` (publish/subscribe) ``topic``. With
    ``unwrap_share`` a ``$share/<group>/t`` subscription is checked as ``t`` (EMQX since 5.x);
    without, as written (a broker that checks the whole filter)."""
    if unwrap_share and topic.startswith("$share/"):
        topic = topic.split("/", 2)[2]
    for rule in rules:
        if len(rule) == 2:
            return rule[0] == A("allow")
        permission, who, act, topics = rule
        if who != A("all") and who[1] != username:
            continue
        if act not in (A("all"), A(action)):
            continue
        if any(topic_matches(topic, t.replace("${username}", username)) for t in topics):
            return permission == A("allow")
    return False  # no_match = deny


#: Who may do what: the protocol's rights (docs/security.md), for both brokers.
CASES = [
    ("edge-a", "publish", "gridwatch/v1/alerts/edge-a/cam-1", True),
    ("edge-a", "publish", "gridwatch/v1/alerts/edge-a", True),
    ("edge-a", "publish", "gridwatch/v1/heartbeat/edge-a", True),
    ("edge-a", "publish", "gridwatch/v1/clips/edge-a/cam-1/x", True),
    ("edge-a", "publish", "gridwatch/v1/alerts/edge-b/cam-1", False),
    ("edge-a", "publish", "gridwatch/v1/config/edge-a", False),
    ("edge-a", "publish", "elsewhere/edge-a", False),
    ("edge-a", "subscribe", "gridwatch/v1/config/edge-a", True),
    ("edge-a", "subscribe", "gridwatch/v1/model/edge-a", True),
    ("edge-a", "subscribe", "gridwatch/v1/live/edge-a", True),
    ("edge-a", "subscribe", "gridwatch/v1/config/edge-b", False),
    ("edge-a", "subscribe", "gridwatch/v1/#", False),
    ("edge-a", "subscribe", "#", False),
    ("edge-a", "subscribe", f"$share/{CENTER_USER}/gridwatch/v1/alerts/+/+", False),
    (CENTER_USER, "subscribe", "gridwatch/v1/#", True),
    (CENTER_USER, "subscribe", f"$share/{CENTER_USER}/gridwatch/v1/alerts/+/+", True),
    (REPLICA_2, "subscribe", f"$share/{CENTER_USER}/gridwatch/v1/alerts/#", True),
    (REPLICA_2, "subscribe", "gridwatch/v1/status/+/+", True),
    (CENTER_USER, "publish", "gridwatch/v1/config/edge-a", True),
    (REPLICA_2, "publish", "gridwatch/v1/model/edge-b", True),
    (CENTER_USER, "publish", "gridwatch/v1/alerts/edge-a/cam-1", False),
    (CENTER_USER, "subscribe", "$SYS/#", False),
    ("stranger", "subscribe", "gridwatch/v1/#", False),
]


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[AuthFiles, EmqxFiles]:
    out = tmp_path_factory.mktemp("emqx-auth")
    cli = mqtt_group(lambda path: path.stem)
    result = CliRunner().invoke(cli, ["gen-auth", "--out", str(out), "--edges",
                                      ",".join(EDGES), "--center-replicas", "2", "--emqx"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "EMQX: import" in result.output
    return AuthFiles(out, CENTER_USER, EDGES, 2), EmqxFiles(out / "emqx")


def test_the_acl_is_emqx_file_syntax_and_grants_exactly_the_protocols_rights(made) -> None:
    _, emqx = made
    rules = parse_terms(emqx.acl.read_text(encoding="utf-8"))
    for rule in rules:
        check_rule(rule)
    assert rules[-1] == (A("deny"), A("all")), "anything not granted is denied"
    for unwrap in (True, False):
        got = [(u, a, t, emqx_allows(rules, u, a, t, unwrap_share=unwrap))
               for u, a, t, _ in CASES]
        assert got == CASES, f"unwrap_share={unwrap}"


def test_both_brokers_acls_come_from_one_list_of_rules(made) -> None:
    _, emqx = made
    emqx_acl = emqx.acl.read_text(encoding="utf-8")
    mosquitto_acl = acl_text(CENTER_USER, 2)
    for rule in topic_rules(CENTER_USER, 2):
        assert f'"{rule.topic.replace(OWN_USER, "${username}")}"' in emqx_acl, rule
        mosquitto_line = (f"pattern {rule.access} {rule.topic.replace(OWN_USER, '%u')}"
                          if rule.user is None else f"topic {rule.access} {rule.topic}")
        assert mosquitto_line in mosquitto_acl, rule


def test_users_import_file_holds_hashes_emqx_accepts_for_every_account(made) -> None:
    files, emqx = made
    assert emqx.users.stat().st_mode & 0o077 == 0
    users = json.loads(emqx.users.read_text(encoding="utf-8"))
    assert [u["user_id"] for u in users] == [CENTER_USER, REPLICA_2, *EDGES]
    settings = _settings(emqx)
    algo = settings["authentication"][0]["password_hash_algorithm"]
    for user in users:
        assert set(user) == {"user_id", "password_hash", "salt", "is_superuser"}
        assert user["is_superuser"] is False
        assert re.fullmatch(r"[0-9a-f]{32}", user["salt"])
        assert re.fullmatch(r"[0-9a-f]{64}", user["password_hash"])
        assert emqx_check(algo, user, files.password(user["user_id"]))
        assert not emqx_check(algo, user, files.password(user["user_id"]) + "x")
    assert len({u["salt"] for u in users}) == len(users), "a salt per account"
    assert all(files.password(u["user_id"]) not in emqx.users.read_text() for u in users)


def emqx_check(algo: dict[str, Any], user: dict[str, Any], password: str) -> bool:
    """emqx_passwd:check_pass({pbkdf2, MacFun, Salt, Iterations, DKLength}, Hash, Password):
    the salt string's bytes as the salt, the derived key compared as lowercase hex."""
    derived = hashlib.pbkdf2_hmac(algo["mac_fun"], password.encode(), user["salt"].encode(),
                                  algo["iterations"], algo["dk_length"])
    return derived.hex() == user["password_hash"]


def _settings(emqx: EmqxFiles) -> dict[str, Any]:
    text = emqx.settings.read_text(encoding="utf-8")
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    return json.loads(body)


def test_settings_are_valid_hocon_with_values_emqx_allows(made) -> None:
    _, emqx = made
    s = _settings(emqx)
    assert set(s) == {"authentication", "authorization", "mqtt"}
    (authn,) = s["authentication"]
    assert authn["mechanism"] == "password_based"
    assert authn["backend"] == "built_in_database"
    assert authn["user_id_type"] in ("username", "clientid")
    algo = authn["password_hash_algorithm"]
    assert algo["name"] == "pbkdf2"
    assert algo["mac_fun"] in ("md4", "md5", "ripemd160", "sha", "sha224", "sha256", "sha384",
                               "sha512")
    assert isinstance(algo["iterations"], int) and algo["iterations"] > 0
    assert isinstance(algo["dk_length"], int) and algo["dk_length"] > 0
    authz = s["authorization"]
    assert authz["no_match"] == "deny" and authz["deny_action"] in ("ignore", "disconnect")
    (source,) = authz["sources"]
    assert source == {"type": "file", "enable": True,
                      "path": "/opt/emqx/etc/gridwatch-acl.conf"}
    assert s["mqtt"]["use_username_as_clientid"] is True
    size = re.fullmatch(r"(\d+)KB", s["mqtt"]["max_packet_size"])
    assert size and int(size.group(1)) * 1024 >= MAX_PACKET_BYTES


def test_the_reader_refuses_what_emqx_would() -> None:
    """The checks above can fail: broken terms and rules outside the grammar are caught."""
    with pytest.raises(AssertionError):
        parse_terms('{allow, all, publish, ["a"]}')  # no final '.'
    with pytest.raises(AssertionError):
        check_rule(parse_terms('{permit, all, publish, ["a"]}.')[0])
    with pytest.raises(AssertionError):
        check_rule(parse_terms('{allow, all, pubsub, ["a"]}.')[0])
    with pytest.raises(AssertionError):
        check_topic_filter("a/${user}")
    with pytest.raises(AssertionError):
        check_topic_filter("a/#/b")
