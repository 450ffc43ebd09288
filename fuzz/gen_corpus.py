#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/<target>/ (run from anywhere)."""
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# parser: flags, max_control_line u16, max_payload u16, split count, splits u16..., bytes
def parser_seed(name, proto, headers=True, mcl=4096, mp=1024, splits=()):
    hdr = bytes([1 if headers else 0]) + struct.pack("<HHB", mcl - 1, mp, len(splits))
    hdr += b"".join(struct.pack("<H", s) for s in splits)
    write("parser", name, hdr + proto)


P = [
    ("connect", b'CONNECT {"verbose":false,"pedantic":false,"headers":true,"name":"c"}\r\nPING\r\n'),
    ("pub", b"PUB foo 5\r\nhello\r\n"),
    ("pub_reply", b"PUB foo.bar _INBOX.1 11\r\nhello world\r\n", (3, 12, 26)),
    ("pub_empty", b"PUB foo 0\r\n\r\n"),
    ("hpub", b"HPUB foo 18 23\r\nNATS/1.0\r\nA: b\r\n\r\nhello\r\n"),
    ("hpub_reply", b"HPUB foo rep 12 12\r\nNATS/1.0\r\n\r\n\r\n"),
    ("sub", b"SUB foo.* 1\r\nSUB foo.> q 2\r\nUNSUB 1\r\nUNSUB 2 10\r\n", (5, 20)),
    ("ping_pong", b"PING\r\nPONG\r\n+OK\r\nping\r\n"),
    ("err", b"-ERR 'Unknown Protocol Operation'\r\n"),
    ("info", b'INFO {"server_id":"x"}\r\n'),
    ("lowercase", b"pub foo 3\r\nabc\r\nsub bar 7\r\n"),
    ("tabs", b"PUB\tfoo\t\t3\r\nabc\r\nSUB\tfoo\t1\n"),
    ("bad_size", b"PUB foo 1x\r\nabc\r\n"),
    ("too_big", b"PUB foo 99999\r\n"),
    ("missing_crlf", b"PUB foo 3\r\nabcd\r\n"),
    ("unknown_op", b"FOO bar\r\n"),
    ("long_line", b"SUB " + b"a." * 40 + b"b 1\r\n"),
    ("unsub_nonnum", b"UNSUB 1 x\r\n"),
    ("pipeline", b"SUB a 1\r\nPUB a 2\r\nhi\r\nPUB a 2\r\nho\r\nPING\r\n", (1, 9, 17, 18, 30)),
    ("partial", b"PUB foo 10\r\nhel"),
]
for item in P:
    name, proto = item[0], item[1]
    splits = item[2] if len(item) > 2 else ()
    parser_seed(name, proto, splits=splits)
parser_seed("hpub_no_headers", b"HPUB foo 12 12\r\nNATS/1.0\r\n\r\n\r\n", headers=False)
parser_seed("small_limits", b"PUB foo.bar 5\r\nhello\r\nSUB foo.bar.baz 1\r\n", mcl=8, mp=4, splits=(2, 9))

# matcher: flags, then ops. kind (0 ins, 1 rem, 2 match); ins/rem: key byte
# (key | queue << 3), len byte (tokens - 1), tokens (0 a, 1 b, 2 c, 3 *, 4 >, 5 empty)
A, B, C, STAR, GT, EMPTY = range(6)


def subj(*toks):
    return bytes([len(toks) - 1, *toks])


def ins(key, q, *toks):
    return bytes([0, key | q << 3]) + subj(*toks)


def rem(key, q, *toks):
    return bytes([1, key | q << 3]) + subj(*toks)


def mat(*toks):
    return bytes([2]) + subj(*toks)


M = {
    "basic": ins(1, 0, A, B) + mat(A, B) + mat(A, C) + rem(1, 0, A, B) + mat(A, B),
    "wildcards": ins(1, 0, A, STAR) + ins(2, 0, A, GT) + ins(3, 0, GT) + mat(A, B) + mat(A, B, C) + mat(A),
    "queues": ins(1, 1, A, B) + ins(2, 1, A, STAR) + ins(3, 2, A, GT) + ins(4, 0, A, B) + mat(A, B)
    + rem(2, 1, A, STAR) + mat(A, B),
    "dup": ins(1, 0, A) + ins(1, 0, A) + rem(1, 0, A) + mat(A) + rem(1, 0, A),
    "literal_wild": ins(1, 0, A, STAR) + mat(A, STAR) + mat(A, GT) + mat(GT),
    "empty_tokens": ins(1, 0, GT) + mat(A, EMPTY) + mat(EMPTY) + mat(A, EMPTY, B),
    "prune": ins(1, 0, A, B, C) + ins(2, 0, A, B) + rem(1, 0, A, B, C) + mat(A, B, C) + mat(A, B),
    "cache": mat(A, B) + ins(1, 0, A, STAR) + mat(A, B) + rem(1, 0, A, STAR) + mat(A, B),
}
for name, ops in M.items():
    write("matcher", name, bytes([0]) + ops)
    write("matcher", name + "_nocache", bytes([1]) + ops)

# config: realistic configuration files
CFG = {
    "simple.conf": "port: 4222\nmax_payload: 1MB\nmax_control_line: 4096\n",
    "auth.conf": """authorization {
  user: alice
  password: "s3cret"
  timeout: 2
}
""",
    "users.conf": """authorization {
  users = [
    {user: a, password: b, permissions: {publish: "foo.>", subscribe: {allow: ["bar.*"], deny: ["bar.x"]}}}
    {user: c, password: d, permissions: {publish: {deny: ">"}, allow_responses: {max: 1, expires: "1s"}}}
  ]
}
""",
    "vars.conf": "PASS: x\nauthorization { user: u, password: $PASS }\nping_interval: \"2m\"\n",
    "accounts.conf": """accounts {
  A { users: [{user: a, password: a}], exports: [{stream: "a.>"}, {service: "svc"}] }
  B { users: [{user: b, password: b}], imports: [{stream: {account: A, subject: "a.>"}, prefix: x}] }
}
system_account: A
no_auth_user: a
""",
    "include.conf": "include ./other.conf\nport = 4223\n",
    "comments.conf": "# comment\n// another\nlisten: 127.0.0.1:4222 ; debug: true\ntrace = false\n",
    "block.conf": "server_name: srv\nhttp: localhost:8222\nlimits {\n  max_connections: 100\n}\nlog_file: \"/tmp/x.log\"\npid_file: /tmp/x.pid\n",
    "heredoc.conf": "text = <<EOF\nsome text\nEOF\nlist = [1, 2, 3]\n",
    "bad_unclosed.conf": "authorization {\n  user: a\n",
    "bad_value.conf": "port: [1, 2\nmax_payload: -1\n",
    "bad_types.conf": "port: \"abc\"\nmax_payload: true\nunknown_field: 1\n",
    "nkey.conf": "authorization { users: [{nkey: UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4}] }\n",
    "token.conf": "authorization { token: abc, timeout: 0.5 }\nwrite_deadline: \"10s\"\n",
}
for name, text in CFG.items():
    write("config", name, text)

# permissions: counts (pub allow, pub deny, sub allow, sub deny), entries, probes.
# pattern: len byte (tokens - 1), token bytes (0 a, 1 b, 2 *, 3 >, 255 empty);
# sub entries add a queue byte (0 none, 4 x, 5 *, 6 >, 7 x.y).
pa, pb, ps, pg = 0, 1, 2, 3


def pat(*t):
    return bytes([len(t) - 1, *t])


def pub_probe(*t):  # 0 a 1 b 2 c 13 * 14 > 15 empty
    return bytes([0, len(t) - 1, *t])


def sub_probe(q, *t):  # q: 0 none, 3 x, 4 y, 5 z, 6 x.y, 7 *
    return bytes([1 | q << 1, len(t) - 1, *t])


PROBES_PUB = b"".join(pub_probe(*t) for t in [(0,), (0, 1), (0, 0), (1, 2), (0, 13), (0, 14), (0, 15), (2, 2, 2, 2), (0, 1)])
PROBES_SUB = b"".join(sub_probe(q, *t) for q, t in [(0, (pa,)), (0, (pa, ps)), (0, (pa, pg)), (3, (pa, pb)), (5, (pg,)), (7, (pb, ps)), (6, (ps, pa))])
PERMS = {
    "pub_allow": bytes([2, 0, 0, 0]) + pat(pa, pg) + pat(pb) + PROBES_PUB,
    "pub_allow_deny": bytes([1, 1, 0, 0]) + pat(pa, pg) + pat(pa, pb) + PROBES_PUB,
    "pub_deny_only": bytes([0, 2, 0, 0]) + pat(ps, pb) + pat(pg) + PROBES_PUB,
    "pub_invalid": bytes([1, 1, 0, 0]) + pat(pa, 255) + pat(pb, 255) + PROBES_PUB,
    "sub_allow": bytes([0, 0, 2, 0]) + pat(pa, pg) + b"\x00" + pat(pb, ps) + b"\x00" + PROBES_SUB,
    "sub_queues": bytes([0, 0, 3, 0]) + pat(pa, pg) + b"\x00" + pat(pa, pb) + b"\x04" + pat(pb) + b"\x07" + PROBES_SUB,
    "sub_deny": bytes([0, 0, 1, 2]) + pat(pg) + b"\x00" + pat(pa, pb) + b"\x00" + pat(pb, ps) + b"\x05" + PROBES_SUB,
    "sub_deny_only": bytes([0, 0, 0, 1]) + pat(pa, pg) + b"\x06" + PROBES_SUB,
    "mixed": bytes([2, 1, 2, 1]) + pat(pa, pg) + pat(pb, ps) + pat(pa, pb)
    + pat(pa, pg) + b"\x00" + pat(pb) + b"\x04" + pat(ps, pa) + b"\x00" + PROBES_PUB + PROBES_SUB,
}
for name, data in PERMS.items():
    write("permissions", name, data)
