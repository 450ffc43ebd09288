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

# server: byte 0 flags (bit 0 no sublist cache, bit 1 logs, bits 2-3
# max_pending 4K/16K/64K, bits 4-7 seed), then steps: op byte, slot byte,
# operands (see fuzz_targets/server.rs). Users by index: g, a, a_resp, b,
# b_deny, c, c2; 7 is a wrong password, 8 no credentials.
S_TOKENS = ["a", "b", "c", "x", "q", "pub", "secret", "hidden", "deny", "svc", "asvc", "stream", "fromA",
            "fromb", "bs", "cb", "bsvc", "inbox", "_R_", "_GR_", "$JS", "ACK", "*", ">", ""]
S_PRESETS = ["a.pub.x", "a.pub.>", "a.pub.deny", "a.c.q", "a.c.hidden", "a.fromb.*", "b.x.y", "b.secret",
             "b.deny.x", "svc.q", "asvc.q", "asvc.deny", "svc.stream.q", "bsvc.q", "cb.q", "fromA.a.pub",
             "bs.b.x", "bs.b.secret", "a.secret.x", "a.hidden", ">", "inbox.*", "_R_.>", "c.x",
             "asvc.stream.q"]
S_USERS = ["g", "a", "a_resp", "b", "b_deny", "c", "c2"]


def s_subject(s):
    if s in S_PRESETS:
        return bytes([0x80 | S_PRESETS.index(s)])
    toks = s.split(".")
    assert 1 <= len(toks) <= 4, s
    return bytes([len(toks) - 1] + [S_TOKENS.index(t) for t in toks])


def connect(slot, user, echo=True, verbose=False, pedantic=False, headers=False, no_responders=False, proto0=False):
    u = S_USERS.index(user) if user in S_USERS else {"wrong": 7, "none": 8}[user]
    flags = (0 if echo else 1) | verbose << 1 | pedantic << 2 | headers << 3 | no_responders << 4 | proto0 << 5
    return bytes([4, slot, u, flags])


def sub(slot, subject, sid, queue=None):
    q = {None: 0, "q1": 5, "q2": 6, "_sys_": 7}[queue]
    return bytes([2, slot]) + s_subject(subject) + bytes([q, sid - 1])


def unsub(slot, sid, max_=None):
    return bytes([3, slot, sid - 1, 0 if max_ is None else (max_ - 1) or 3])


def pub(slot, subject, reply=None, size=1, hpub=False):
    if reply is None:
        r = bytes([0])
    elif reply == "inbox":
        r = bytes([2])
    else:
        r = bytes([3]) + s_subject(reply)
    return bytes([0, slot]) + s_subject(subject) + r + bytes([size, 1 if hpub else 0])


def answer(slot, pick=0):
    return bytes([5, slot, pick])


def raw(slot, data, split=0):
    return bytes([6, slot, len(data), split]) + data


ADV_1MS, ADV_10MS, ADV_100MS, ADV_1S, ADV_2500MS, ADV_10S, ADV_121S, ADV_3MIN = range(8)


def advance(which):
    return bytes([7, which])


def close(slot):
    return bytes([8, slot])


SHUTDOWN = bytes([8, 255])


def stick(slot):
    return bytes([9, slot])


def partial(slot, n):
    return bytes([10, slot, n])


def ping(slot, pong=False):
    return bytes([11, slot, 1 if pong else 0])


def server_seed(name, *steps, flags=0):
    write("server", name, bytes([flags]) + b"".join(steps))


server_seed(
    "streams",
    connect(0, "a"), connect(1, "b"), connect(2, "c"),
    sub(0, "a.fromb.*", 1), sub(1, ">", 1), sub(2, ">", 1), sub(1, "fromA.>", 2),
    pub(0, "a.pub.x"), pub(0, "a.c.q", reply="inbox"), pub(0, "a.pub.x.q"),
    pub(1, "b.x.y", reply="inbox"), pub(1, "a.pub.x"), pub(2, "c.x"),
)
server_seed(
    "service_request_answer",
    connect(0, "a_resp"), connect(1, "b"), sub(0, "svc.>", 1), sub(1, "inbox.*", 1),
    pub(1, "asvc.q", reply="inbox"), answer(0), answer(0),
    pub(1, "svc.stream.q", reply="inbox"), answer(0, 1), pub(0, "a.x"),
    pub(1, "asvc.q"), advance(ADV_2500MS), answer(0, 2),
)
server_seed(
    "service_chain",
    connect(0, "a"), connect(1, "b"), connect(2, "c"),
    sub(0, ">", 1), sub(1, ">", 1), sub(2, "inbox.*", 1),
    pub(2, "cb.q", reply="inbox"), answer(1), pub(1, "asvc.x", reply="inbox"), answer(0), answer(1),
    advance(ADV_121S), pub(2, "cb.q", reply="inbox"), answer(1, 1),
)
server_seed(
    "service_chain_through_b",
    connect(0, "a"), connect(1, "b"), connect(2, "c"), connect(3, "g"),
    sub(0, "svc.>", 1), sub(1, ">", 1), sub(2, "inbox.*", 1), sub(3, ">", 1),
    pub(2, "asvc.q", reply="inbox"), answer(0), answer(0),
    pub(2, "asvc.stream.q", reply="inbox"), answer(0, 1), answer(0, 1), answer(1),
)
server_seed(
    "permissions",
    connect(0, "a"), connect(1, "b_deny"), connect(2, "c"), connect(3, "a_resp"),
    sub(1, "fromA.>", 1), sub(1, ">", 2), sub(1, "a.pub.*", 3), sub(2, "bs.>", 1), sub(3, "a.hidden", 1),
    sub(3, "a.*", 2), sub(3, "b.x", 3),
    pub(0, "a.pub.deny"), pub(0, "a.pub.x"), pub(0, "a.hidden"), pub(1, "b.deny.x"), pub(1, "b.secret"),
    pub(2, "a.x"), pub(2, "c.x"), pub(3, "a.secret.x"), pub(3, "a.x"), pub(1, "asvc.deny", reply="inbox"),
)
server_seed(
    "queues",
    connect(0, "b"), connect(1, "b"), connect(2, "b_deny"), connect(3, "a"),
    sub(0, ">", 1, "q1"), sub(1, "b.*", 1, "q1"), sub(2, "b.x", 1, "q1"), sub(0, "b.x", 2, "q2"),
    sub(2, "fromA.a.pub", 2, "q2"), sub(1, "x", 3, "_sys_"),
    pub(0, "b.x"), pub(0, "b.x"), pub(3, "a.pub.x"), pub(1, "b.x", reply="inbox"), unsub(0, 1), pub(0, "b.x"),
)
server_seed(
    "slow_consumer",
    connect(0, "b"), connect(1, "c"), sub(1, "bs.>", 1), stick(1),
    pub(0, "b.x", size=150), pub(0, "b.x", size=150), pub(0, "b.x", size=150), advance(ADV_10MS),
    pub(0, "b.x", size=150), partial(1, 20), pub(0, "b.x", size=150), stick(1), pub(0, "b.x", size=10),
    flags=0 << 2,
)
server_seed(
    "stall_resume",
    connect(0, "a"), connect(1, "a"), sub(1, ">", 1), stick(1),
    *[pub(0, "a.x", size=160) for _ in range(8)], advance(ADV_10MS), pub(0, "a.x"), stick(1), pub(0, "a.q"),
    flags=1 << 2,
)
server_seed(
    "relogin",
    connect(0, "a"), connect(1, "a"), sub(0, ">", 1), pub(1, "a.x"),
    connect(0, "a_resp"), pub(1, "a.hidden"), pub(1, "a.q"),
    connect(0, "b"), pub(1, "a.b"), sub(0, ">", 2), pub(1, "a.pub.x"), connect(0, "wrong"),
)
server_seed(
    "raw_bytes",
    raw(0, b'CONNECT {"user":"g","pass":"pw","verbose":false}\r\nSUB > 1\r\nPUB x 2\r\nhi\r\n', split=13),
    connect(1, "g"), sub(1, ">", 1), pub(1, "x"), raw(1, b"PUB y 5\r\nab"), pub(1, "q"),
    raw(2, b"sub foo 1\r\n"), raw(3, b"conn"), raw(3, b'ect {"user":"b","pass":"pw"}\r\nSUB > 9\r\n'),
    connect(4, "b"), pub(4, "b.x"), raw(5, b"\x00\xff garbage\r\n"),
)
server_seed(
    "timers",
    connect(0, "a"), connect(1, "b"), raw(2, b"PING\r\n"), advance(ADV_2500MS), ping(0, pong=True),
    advance(ADV_10S), ping(1), advance(ADV_10S), ping(0, pong=True), advance(ADV_10S), advance(ADV_3MIN),
)
server_seed(
    "headers_no_responders",
    connect(0, "a", headers=True, no_responders=True), connect(1, "b", headers=True), connect(2, "b"),
    sub(0, "inbox.*", 1), sub(1, ">", 1), sub(2, ">", 1),
    pub(0, "a.pub.x", reply="inbox", hpub=True), pub(0, "x.q", reply="inbox"),
    pub(2, "b.x", hpub=True), connect(3, "c", no_responders=True),
)
server_seed(
    "pedantic_reserved",
    connect(0, "a", pedantic=True, verbose=True), connect(1, "a"), sub(1, ">", 1),
    pub(0, "a.*"), pub(0, "a..b"), pub(1, "a.*"), pub(1, "_GR_.x"), pub(1, "a.x", reply="_R_.x"),
    pub(1, "a.x", reply="$JS.ACK.x"), sub(0, "a..b", 2), sub(0, "a.>.b", 3), unsub(0, 3, 2), ping(0),
)
server_seed(
    "limits",
    connect(0, "c2"), connect(1, "c"), sub(1, ">", 1), pub(0, "c.x", size=30), pub(0, "c.x", size=100),
    *[sub(1, "c.x", i) for i in range(2, 9)], connect(2, "a"), connect(3, "a"), connect(4, "a"),
    connect(5, "a"), connect(6, "a_resp"), connect(7, "g"), connect(2, "none"), pub(3, "a.x", size=200),
)
server_seed(
    "auto_unsub_shutdown",
    connect(0, "a"), connect(1, "a", echo=False), sub(0, "a.*", 1), unsub(0, 1, 2), sub(1, "a.*", 1),
    pub(1, "a.x"), pub(1, "a.x"), pub(1, "a.x"), close(0), pub(1, "a.x"), SHUTDOWN, pub(1, "a.x"),
    flags=2 | 1,
)

# jetstream_api: steps. An op byte (op | account << 4 | mode << 5; mode 2 reads
# a header block first, 3 raw header bytes, 7 sends no reply subject), then
# its operands; a body byte 0 builds the body from the bytes after it.
API_A, API_B = 0, 1 << 4
NO_HDR, HDR, GARBAGE, NO_REPLY = 0, 2 << 5, 3 << 5, 7 << 5
S, T, U, ORDERS = range(4)  # stream names
C0, C1, DUR = range(3)  # consumer names
SUBJ_S_ALL, SUBJ_S_AB, SUBJ_T = 1, 2, 3  # subject sets
PUB_S_A, PUB_S_B, PUB_S_C_D, PUB_T_X = range(4)  # publish subjects
H_MSG_ID, H_LAST_SEQ = 0, 1  # header keys
V_0, V_1, V_2, V_M1 = 0, 1, 2, 9  # header values


def api_create(acc, name, memory=True, subjects=SUBJ_S_ALL, retention=0, max_msgs=0, max_bytes=0,
               flags=0, update=False, mode=NO_HDR):
    f = (1 if memory else 0) | retention << 1 | max_msgs << 3 | max_bytes << 5
    h = subjects | flags
    return bytes([(1 if update else 0) | acc | mode, name, 0, f, 0, h, 0])


def api_pub(acc, subject, size=5, mode=NO_HDR, hdr=b""):
    return bytes([11 | acc | mode]) + hdr + bytes([subject, size])


def api_hdr(*lines):  # (key, value) pairs
    return bytes([len(lines)]) + b"".join(bytes(line) for line in lines)


def api_raw(n, data):
    return bytes([n]) + data


def api_body_raw(data):
    return bytes([2, len(data)]) + data


API = {
    "memory_stream": api_create(API_A, S) + api_pub(API_A, PUB_S_A) + api_pub(API_A, PUB_S_B, 20)
    + api_pub(API_A, PUB_T_X) + bytes([15 | API_A, 3])  # account INFO
    + bytes([2 | API_A, 0, S, 0, 0x05])  # STREAM.INFO with a subjects filter
    + bytes([5 | API_A, 1 << 2, S, 0, 0, 0])  # MSG.GET seq 1
    + bytes([6 | API_A, 0, S, 0, 2 << 3, 0])  # DIRECT.GET seq 2
    + bytes([6 | API_A, 1 | 2 << 1, S, PUB_S_A, 3])  # DIRECT.GET.S.s.a
    + bytes([5 | API_A, 1 | 1 << 2, S, 0])  # MSG.DELETE seq 1
    + bytes([3 | API_A, S, 0, 0x01])  # PURGE s.a
    + bytes([4 | API_A, 1, 3])  # LIST
    + bytes([2 | API_A, 1, S, 3]),  # DELETE
    "two_accounts": api_create(API_A, S, memory=False) + api_create(API_B, S, subjects=SUBJ_T)
    + api_pub(API_A, PUB_S_A) + api_pub(API_B, PUB_T_X, 30) + api_pub(API_B, PUB_S_A)
    + bytes([4 | API_A, 0, 3, 4 | API_B, 1, 3])  # NAMES in A, LIST in B
    + api_create(API_B, T, subjects=SUBJ_S_ALL, max_bytes=2) + api_pub(API_B, PUB_S_C_D, 40)
    + bytes([2 | API_B, 1, S, 3]) + bytes([6 | API_B, 0, S, 0, 1 << 3, 0]),
    "consumers": api_create(API_A, S, memory=False) + api_pub(API_A, PUB_S_A) + api_pub(API_A, PUB_S_B)
    + bytes([7 | API_A, 1, S, C0, 0, 0, 0, 0, 0, 0])  # CREATE.S.c0, pull, explicit ack
    + bytes([7 | API_A, 2, S, C1, 0, 0, 0, 0, 1, 0])  # CREATE.S.c1.s.a, push to d.1
    + bytes([7 | API_A, 3 | 4, S, DUR, 0, 0, 1, 0, 0, 0])  # DURABLE.CREATE.S.dur, ack all
    + bytes([7 | API_A, 0 | 8, S, C0, 0, 0, 2, 0, 0, 0])  # CREATE.S (ephemeral), ack none
    + bytes([9 | API_A, S, C0, 0, 1, 1])  # MSG.NEXT batch 2
    + bytes([13 | API_A, 0, 0]) + bytes([13 | API_A, 1, 2])  # +ACK, -NAK
    + bytes([8 | API_A, 0, S, C0, 3, 8 | API_A, 1, S, C0, 3, 8 | API_A, 2, S, C0, 0, 0])
    + bytes([14 | API_A, 4]) + bytes([8 | API_A, 3, S, C1, 3])  # 1.1 s, DELETE c1
    + bytes([9 | API_A | NO_REPLY, S, DUR, 3]),
    "headers": api_create(API_A, S, flags=0x10)  # roll-ups allowed
    + api_pub(API_A, PUB_S_A, mode=HDR, hdr=api_hdr((H_MSG_ID, V_M1)))
    + api_pub(API_A, PUB_S_A, mode=HDR, hdr=api_hdr((H_MSG_ID, V_M1)))  # a duplicate
    + api_pub(API_A, PUB_S_B, mode=HDR, hdr=api_hdr((H_LAST_SEQ, V_1)))  # wrong: it is 1... then 2
    + api_pub(API_A, PUB_S_B, mode=HDR, hdr=api_hdr((5, 7)))  # Nats-Rollup: sub
    + api_pub(API_A, PUB_S_A, mode=GARBAGE, hdr=api_raw(3, b"X\r\n"))
    + api_pub(API_A, PUB_S_A, mode=GARBAGE, hdr=api_raw(1, b"Z"))
    + bytes([6 | API_A | HDR, 0x41, 0, 6, 1 | 2 << 1, S, PUB_S_A, 3])  # DIRECT.GET.S.s.a with headers
    + bytes([2 | API_A | GARBAGE, 4, 0xab, 0xcd, 0x0d, 0x0a, 0, S, 3]),  # STREAM.INFO, raw headers
    "limits_b": api_create(API_B, S, retention=3, max_msgs=1)  # workqueue
    + bytes([7 | API_B, 1, S, C0, 0, 0, 0, 0, 0, 0])
    + b"".join(api_pub(API_B, PUB_S_A, 0xe0) for _ in range(6))
    + bytes([9 | API_B, S, C0, 0, 2, 1]) + bytes([13 | API_B, 0, 0])
    + api_create(API_B, T, subjects=SUBJ_T, memory=False, max_bytes=3)
    + api_create(API_B, U, subjects=5) + api_create(API_B, ORDERS, subjects=6)
    + bytes([14 | API_B, 7]),
    "raw_and_unknown": bytes([0 | API_A, S]) + api_body_raw(b'{"name":"S","subjects":["s.*"],"allow_direct":true}')
    + bytes([0 | API_A | NO_REPLY, T]) + api_body_raw(b'{"name":"T","storage":"memory"}')
    + bytes([10 | API_A, 0, 0, 10 | API_A, 14, 3, 10 | API_A, 0x11, S, 3, 10 | API_B, 15, 3])
    + bytes([1 | API_A, S]) + api_body_raw(b'{"name":"S","subjects":["s.*"],"max_msgs":1}')
    + bytes([7 | API_A, 1, S, 0xe3, ord("a") % 20, 2, 5, 0, 2]) + api_body_raw(b'{"stream_name":"S"}')
    + api_pub(API_A, PUB_S_A) + bytes([0 | API_A, 0xe2, 9, 15, 2, 0])  # a made-up name
    + bytes([2 | API_A | NO_REPLY, 1, T, 3]),
}
for name, data in API.items():
    write("jetstream_api", name, data)
