#!/usr/bin/python3
"""SMTP capture server for Rekey's integration tests.

Listens on 127.0.0.1 on three ports:

* ``starttls``: STARTTLS offered and required before MAIL; AUTH (PLAIN, LOGIN)
  required and only allowed once TLS is up.
* ``implicit``: TLS from the first byte (like smtps/465); AUTH required.
* ``plain``: no TLS, no AUTH (a "loopback relay").

Every accepted message is written atomically to ``DIR/NNNNNN.json``.  Faults
are injected through the control file ``DIR/../fault``; counters are kept in
``DIR/../stats.json``.  See ``--help`` and crates/rekey-testkit for details.

Only the standard library and aiosmtpd 1.4.x (Debian: python3-aiosmtpd) are
used.
"""

import argparse
import asyncio
import email
import email.policy
import json
import logging
import os
import re
import signal
import ssl
import sys
import warnings

try:
    from aiosmtpd.smtp import SMTP, AuthResult
except ImportError as exc:  # pragma: no cover - environment problem
    sys.stderr.write(
        f"capture.py: cannot import aiosmtpd ({exc}); "
        "aiosmtpd missing: apt-get install python3-aiosmtpd\n"
    )
    sys.exit(3)

PORT_KINDS = ("starttls", "implicit", "plain")
MESSAGE_RE = re.compile(r"^(\d+)\.json$")

log = logging.getLogger("capture")


def write_json_atomic(path, data):
    """Write ``data`` as JSON to ``path`` via a temp file + rename."""
    directory, name = os.path.split(path)
    tmp = os.path.join(directory, f".{name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, path)


class Fault:
    """One parsed line of the fault control file."""

    def __init__(self, kind="accept", code=None, text="", address=None):
        self.kind = kind
        self.code = code
        self.text = text
        # For reject-rcpt: the one recipient refused (others are accepted).
        self.address = address

    def reply(self):
        return f"{self.code} {self.text}".strip()

    @classmethod
    def parse(cls, content):
        content = content.strip()
        if not content:
            return cls()
        word, _, rest = content.partition(" ")
        word = word.strip().lower()
        rest = rest.strip()
        if word in ("accept", "silent", "auth-fail"):
            return cls(word)
        address = None
        if word == "reject-rcpt":
            address, _, rest = rest.partition(" ")
            rest = rest.strip()
        if word in ("reject", "reject-data", "reject-rcpt", "greeting"):
            code_s, _, text = rest.partition(" ")
            if not (code_s.isdigit() and len(code_s) == 3 and code_s[0] in "2345"):
                log.error("bad code in fault file: %r; using 451", content)
                return cls(word, 451, "4.3.0 bad fault file: " + content)
            code = int(code_s)
            if not text.strip():
                text = "rejected by fault injection"
            return cls(word, code, text.strip(), address)
        log.error("unknown fault %r; accepting", content)
        return cls()


class Capture:
    """State shared by all ports: storage, faults, statistics, credentials."""

    def __init__(self, mail_dir, user, password):
        self.mail_dir = os.path.abspath(mail_dir)
        os.makedirs(self.mail_dir, exist_ok=True)
        parent = os.path.dirname(self.mail_dir)
        self.fault_path = os.path.join(parent, "fault")
        self.stats_path = os.path.join(parent, "stats.json")
        self.user = user.encode("utf-8")
        self.password = password.encode("utf-8")
        self.counter = self._highest_existing()
        self.stats = self._load_stats()
        self._write_stats()

    # -- storage --------------------------------------------------------

    def _highest_existing(self):
        highest = 0
        for name in os.listdir(self.mail_dir):
            m = MESSAGE_RE.match(name)
            if m:
                highest = max(highest, int(m.group(1)))
        return highest

    def _load_stats(self):
        keys = ("connections", "messages", "rejected", "auth_failures")
        stats = {k: {p: 0 for p in PORT_KINDS} for k in keys}
        try:
            with open(self.stats_path, encoding="utf-8") as f:
                old = json.load(f)
            for k in keys:
                for p in PORT_KINDS:
                    stats[k][p] = int(old.get(k, {}).get(p, 0))
        except (OSError, ValueError, AttributeError):
            pass
        return stats

    def _write_stats(self):
        write_json_atomic(self.stats_path, self.stats)

    def count(self, what, port_kind):
        self.stats[what][port_kind] += 1
        self._write_stats()

    def store(self, record):
        # Runs on the event loop thread without awaiting: the counter cannot race.
        self.counter += 1
        number = self.counter
        path = os.path.join(self.mail_dir, f"{number:06d}.json")
        write_json_atomic(path, record)
        return number

    # -- faults ---------------------------------------------------------

    def fault(self):
        """Read the fault file afresh (tests change it while we run)."""
        try:
            with open(self.fault_path, encoding="utf-8") as f:
                return Fault.parse(f.read())
        except FileNotFoundError:
            return Fault()
        except OSError as exc:
            log.error("cannot read fault file: %s", exc)
            return Fault()

    # -- auth -----------------------------------------------------------

    def authenticator(self, server, session, envelope, mechanism, auth_data):
        ok = (
            self.fault().kind != "auth-fail"
            and auth_data is not None
            and getattr(auth_data, "login", None) == self.user
            and getattr(auth_data, "password", None) == self.password
        )
        if not ok:
            self.count("auth_failures", server.port_kind)
            return AuthResult(success=False, handled=False)
        # auth_data ends up in session.auth_data; keep the user name there.
        return AuthResult(success=True, auth_data=self.user.decode("utf-8"))


async def stall_forever():
    """Never return; the task is cancelled when the client goes away."""
    await asyncio.Event().wait()


def parse_message(raw_bytes):
    """Return (headers, text, html) decoded with the email package."""
    msg = email.message_from_bytes(raw_bytes, policy=email.policy.default)
    headers = {}
    seen = set()
    for name, raw_value in msg.raw_items():
        if name.lower() in seen:
            continue
        seen.add(name.lower())
        try:
            value = str(msg[name])
        except Exception:  # malformed header: fall back to the raw value
            value = str(raw_value)
        headers[name] = value

    def body(subtype):
        try:
            part = msg.get_body(preferencelist=(subtype,))
        except Exception:
            return None
        if part is None:
            return None
        try:
            content = part.get_content()
        except Exception:
            payload = part.get_payload(decode=True) or b""
            content = payload.decode(part.get_content_charset() or "utf-8", "replace")
        # SMTP line ends are CRLF; hand tests plain "\n" (raw keeps CRLF).
        return content.replace("\r\n", "\n")

    return headers, body("plain"), body("html")


class Handler:
    """aiosmtpd handler.

    NB: aiosmtpd treats *every* attribute whose name starts with ``handle_``
    as a hook and every one starting with ``auth_`` as an AUTH mechanism, so
    no other attribute here may use those prefixes.
    """

    def __init__(self, capture):
        self.capture = capture

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.capture.fault().kind == "silent":
            await stall_forever()
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        fault = self.capture.fault()
        if fault.kind == "silent":
            await stall_forever()
        if fault.kind == "reject" or (
            fault.kind == "reject-rcpt" and address.lower() == (fault.address or "").lower()
        ):
            self.capture.count("rejected", server.port_kind)
            return fault.reply()
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        fault = self.capture.fault()
        if fault.kind == "silent":
            await stall_forever()
        if fault.kind == "reject-data":
            self.capture.count("rejected", server.port_kind)
            return fault.reply()
        raw_bytes = envelope.original_content or b""
        headers, text, html = parse_message(raw_bytes)
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_to": list(envelope.rcpt_tos),
            "port": server.port_kind,
            "tls": server.transport_is_tls(),
            "auth_user": session.auth_data if session.authenticated else None,
            "raw": raw_bytes.decode("utf-8", "replace"),
            "headers": headers,
            "text": text,
            "html": html,
        }
        number = self.capture.store(record)
        self.capture.count("messages", server.port_kind)
        return f"250 2.0.0 OK queued as {number:06d}"


class CaptureSMTP(SMTP):
    """aiosmtpd SMTP session that knows its port and counts connections."""

    def __init__(self, handler, capture, port_kind, **kwargs):
        super().__init__(handler, **kwargs)
        self.capture = capture
        self.port_kind = port_kind

    def transport_is_tls(self):
        # After STARTTLS self.transport is the SSL app transport; on the
        # implicit port it is SSL from the start (and self._tls_protocol and
        # session.ssl stay None there!), so ask the transport itself.
        transport = self.transport
        return bool(transport and transport.get_extra_info("ssl_object") is not None)

    async def _handle_client(self):
        # Called once per TCP connection (not again after STARTTLS).
        self.capture.count("connections", self.port_kind)
        fault = self.capture.fault()
        if fault.kind == "silent":
            # Not even a greeting.  Cancelled on disconnect; aiosmtpd's idle
            # timeout (300 s) closes the socket eventually.
            await stall_forever()
            return
        if fault.kind == "greeting":
            # Turned away before the session starts (e.g. "421 too busy"):
            # the reply replaces the 220 banner, then the connection closes.
            self.capture.count("rejected", self.port_kind)
            await self.push(fault.reply())
            self.transport.close()
            return
        await super()._handle_client()


class DropNoise(logging.Filter):
    """Drop aiosmtpd warnings that fire on every (expected) session."""

    NOISE = ("login_data is deprecated", "auth_required == True but auth_require_tls")

    def filter(self, record):
        message = record.getMessage()
        return not any(n in message for n in self.NOISE)


async def serve(args):
    capture = Capture(args.dir, args.user, args.password)
    handler = Handler(capture)
    loop = asyncio.get_running_loop()

    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(args.cert, args.key)

    # hostname given explicitly: the default socket.getfqdn() can stall on DNS.
    # Without an authenticator aiosmtpd silently uses login_always_fail.
    common = dict(hostname="localhost", ident="Rekey capture", enable_SMTPUTF8=True,
                  authenticator=capture.authenticator)
    factories = {
        "starttls": lambda: CaptureSMTP(
            handler, capture, "starttls", tls_context=tls, require_starttls=True,
            auth_required=True, auth_require_tls=True, **common),
        # aiosmtpd only knows about STARTTLS: on an implicit-TLS socket it thinks
        # the session is plain, so auth_require_tls=True would refuse every AUTH
        # with 538.  The socket *is* TLS, so switching the check off is safe.
        "implicit": lambda: CaptureSMTP(
            handler, capture, "implicit", auth_required=True,
            auth_require_tls=False, **common),
        "plain": lambda: CaptureSMTP(handler, capture, "plain", **common),
    }
    ssl_for = {"starttls": None, "implicit": tls, "plain": None}

    wanted = dict.fromkeys(PORT_KINDS, 0)
    if args.ports:
        parts = [int(p) for p in args.ports.split(",")]
        if len(parts) != 3:
            raise SystemExit("--ports wants STARTTLS,IMPLICIT,PLAIN")
        wanted = dict(zip(PORT_KINDS, parts))

    servers = {}
    for kind in PORT_KINDS:
        servers[kind] = await loop.create_server(
            factories[kind], host="127.0.0.1", port=wanted[kind],
            ssl=ssl_for[kind], reuse_address=True)
    ports = {k: s.sockets[0].getsockname()[1] for k, s in servers.items()}
    ports["pid"] = os.getpid()
    write_json_atomic(os.path.abspath(args.ports_file), ports)
    log.info("listening: %s", ports)

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    parent = os.getppid()

    async def watch_parent():
        # If the test process dies without killing us, don't linger.
        while True:
            await asyncio.sleep(0.5)
            if os.getppid() != parent:
                log.warning("parent %d went away; exiting", parent)
                stop.set()
                return

    watcher = asyncio.create_task(watch_parent())
    await stop.wait()
    watcher.cancel()
    for s in servers.values():
        s.close()
    # asyncio.run() cancels the remaining session tasks on the way out.


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", required=True, help="directory for NNNNNN.json messages")
    ap.add_argument("--cert", required=True, help="server certificate (PEM)")
    ap.add_argument("--key", required=True, help="server private key (PEM)")
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--ports-file", required=True, help="where to write the chosen ports")
    ap.add_argument("--ports", help="fixed ports STARTTLS,IMPLICIT,PLAIN (0 = any)")
    ap.add_argument("--verbose", action="store_true", help="log SMTP sessions")
    args = ap.parse_args()

    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("mail.log").addFilter(DropNoise())
    # "Requiring AUTH while not requiring TLS" (the implicit port, see above).
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    try:
        asyncio.run(serve(args))
    except OSError as exc:
        sys.stderr.write(f"capture.py: {exc}\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
