#!/usr/bin/python3
"""Tiny smtplib client used by rekey-testkit's own tests.

Usage: client.py JSON-SPEC

The spec is an object with:
  host, port          where to connect ("localhost" by default)
  mode                "plain" | "starttls" | "implicit"
  cafile              CA to trust for TLS (the hostname is checked too)
  user, password      AUTH credentials (omit to skip AUTH)
  mech                "PLAIN" | "LOGIN" to force one mechanism
                      (default: smtplib's login(), which tries PLAIN then LOGIN)
  from, to, message   envelope sender, recipient list, raw message text
  timeout             seconds (default 3)

Prints one JSON line: {"ok": true} or
{"ok": false, "error": "<exception class>", "code": int|null, "detail": "..."}
and always exits 0 (exit 1 only for a bad spec).
"""

import json
import smtplib
import ssl
import sys


def run(spec):
    host = spec.get("host", "localhost")
    port = int(spec["port"])
    mode = spec.get("mode", "plain")
    timeout = float(spec.get("timeout", 3))
    context = None
    if mode in ("starttls", "implicit"):
        context = ssl.create_default_context(cafile=spec.get("cafile"))

    if mode == "implicit":
        smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
    else:
        smtp = smtplib.SMTP(host, port, timeout=timeout)
    try:
        smtp.ehlo("client.test")
        if mode == "starttls":
            smtp.starttls(context=context)
            smtp.ehlo("client.test")
        if spec.get("user") is not None:
            mech = spec.get("mech")
            if mech is None:
                smtp.login(spec["user"], spec["password"])
            else:
                smtp.user, smtp.password = spec["user"], spec["password"]
                method = {"PLAIN": smtp.auth_plain, "LOGIN": smtp.auth_login}[mech]
                smtp.auth(mech, method)
        smtp.sendmail(spec["from"], spec["to"], spec["message"].encode("utf-8"))
        smtp.quit()
    finally:
        smtp.close()


def main():
    if len(sys.argv) != 2:
        sys.stderr.write(__doc__)
        sys.exit(1)
    spec = json.loads(sys.argv[1])
    try:
        run(spec)
        result = {"ok": True}
    except smtplib.SMTPRecipientsRefused as exc:
        code, text = next(iter(exc.recipients.values()))
        result = {"ok": False, "error": type(exc).__name__, "code": code,
                  "detail": text.decode("utf-8", "replace")}
    except smtplib.SMTPResponseException as exc:
        detail = exc.smtp_error
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        result = {"ok": False, "error": type(exc).__name__, "code": exc.smtp_code,
                  "detail": str(detail)}
    except Exception as exc:  # timeouts, TLS verification, refused connection...
        result = {"ok": False, "error": type(exc).__name__, "code": None,
                  "detail": str(exc)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
