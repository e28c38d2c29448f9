"""The stateful chains of Rekey's API, driven with the token and code read from the mail,
every answer checked against the OpenAPI document the server serves (schemathesis' checks:
no 5xx, a documented status, content type and headers, and the answer's schema).

    chains.py URL MAILBOX_DIR

URL is a running `rekeyd serve` (http://127.0.0.1:PORT); MAILBOX_DIR its local mailbox
(`<data_dir>/mailbox`, where mail goes when no SMTP server is configured). Run by the
`api_schema` test in crates/rekeyd/tests; exits non-zero on the first failed step.
"""

import email
import email.policy
import pathlib
import re
import secrets
import sys
import time

import requests
import schemathesis
from schemathesis.checks import (
    content_type_conformance,
    load_all_checks,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
PASSWORD = "quiet river under the old mill"
NEW_PASSWORD = "a brand new passphrase for zoe"
CHANGED_PASSWORD = "lanterns swaying over the harbour"


class Api:
    def __init__(self, url: str):
        load_all_checks()
        self.url = url.rstrip("/")
        self.schema = schemathesis.openapi.from_url(f"{self.url}/openapi.json")
        self.http = requests.Session()
        self.steps = 0

    def call(self, method: str, path: str, expect: int, body=None, bearer=None):
        """One request, its answer validated against the document; returns the JSON body."""
        operation = self.schema[path][method]
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else None
        case = operation.Case(body=body, headers=headers) if body is not None else operation.Case(headers=headers)
        response = case.call(base_url=self.url, session=self.http)
        case.validate_response(response, checks=CHECKS)
        self.steps += 1
        if response.status_code != expect:
            raise AssertionError(f"{method} {path}: expected {expect}, got {response.status_code}: {response.text}")
        return response.json() if response.content else None


def mail_text(path: pathlib.Path):
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    part = message.get_body(preferencelist=("plain",))
    return message["To"], message["Subject"], part.get_content() if part else ""


def wait_for_mail(mailbox: pathlib.Path, to: str, pattern: str, seen: set, timeout=60.0):
    """The first match of `pattern` in a mail to `to` not read before (the outbox worker
    delivers a moment after the answer)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted(mailbox.glob("*.eml")) if mailbox.is_dir() else []:
            if path.name in seen:
                continue
            rcpt, _, text = mail_text(path)
            found = re.search(pattern, text)
            if rcpt and rcpt.strip().lower() == to and found:
                seen.add(path.name)
                return found.group(1)
        time.sleep(0.05)
    raise AssertionError(f"no mail to {to} matching {pattern} within {timeout} s")


def main(url: str, mailbox_dir: str) -> None:
    api = Api(url)
    mailbox = pathlib.Path(mailbox_dir)
    seen: set = set()
    address = f"chain-{secrets.token_hex(4)}@example.com"
    token_re = r"rekey://{}\?token=([A-Za-z0-9_.-]+)"
    code_re = r"\b([A-Z2-9]{4}-[A-Z2-9]{4})\b"

    # register → verify → sign in
    api.call("POST", "/users", 202, {"email": address, "password": PASSWORD})
    verify = wait_for_mail(mailbox, address, token_re.format("verify"), seen)
    target = api.call("POST", "/users/verify/inspect", 200, {"token": verify})
    assert target["email"] == address, target
    api.call("POST", "/sessions", 401, {"email": address, "password": PASSWORD})  # not yet
    api.call("POST", "/users/verify", 400, {"token": verify, "password": NEW_PASSWORD})
    account = api.call("POST", "/users/verify", 201, {"token": verify, "password": PASSWORD})
    assert account["email"] == address, account
    api.call("POST", "/users/verify", 409, {"token": verify, "password": PASSWORD})
    session = api.call("POST", "/sessions", 200, {"email": address, "password": PASSWORD})["token"]
    me = api.call("GET", "/sessions/current", 200, bearer=session)
    assert me == account, (me, account)

    # forgot → reset with the link's token (as Bearer) from the mail
    api.call("POST", "/users/password/forgot", 202, {"email": address})
    reset = wait_for_mail(mailbox, address, token_re.format("reset"), seen)
    target = api.call("POST", "/users/password/inspect", 200, {"token": reset})
    assert target["email"] == address, target
    api.call("POST", "/users/password/reset", 400, {"new_password": "short"}, bearer=reset)
    api.call("POST", "/users/password/reset", 204, {"new_password": NEW_PASSWORD}, bearer=reset)
    refused = api.call("POST", "/users/password/reset", 400, {"new_password": NEW_PASSWORD}, bearer=reset)
    assert refused["code"] == "token_used", refused
    refused = api.call("GET", "/sessions/current", 401, bearer=session)
    assert refused["code"] == "session_invalid", refused
    api.call("POST", "/sessions", 401, {"email": address, "password": PASSWORD})
    session = api.call("POST", "/sessions", 200, {"email": address, "password": NEW_PASSWORD})["token"]

    # forgot → reset with the address and the typed code from the mail
    api.call("POST", "/users/password/forgot", 202, {"email": address})
    code = wait_for_mail(mailbox, address, code_re, seen)
    refused = api.call(
        "POST", "/users/password/reset", 400, {"email": address, "code": "AAAA-AAAA", "new_password": PASSWORD}
    )
    assert refused["code"] == "code_invalid", refused
    api.call("POST", "/users/password/reset", 204, {"email": address, "code": code, "new_password": PASSWORD})
    session = api.call("POST", "/sessions", 200, {"email": address, "password": PASSWORD})["token"]

    # change password → sign out
    fresh = api.call(
        "POST",
        "/sessions/current/password",
        200,
        {"current": PASSWORD, "new_password": CHANGED_PASSWORD},
        bearer=session,
    )["token"]
    api.call("GET", "/sessions/current", 200, bearer=fresh)
    api.call("DELETE", "/sessions/current", 204, bearer=fresh)
    api.call("GET", "/sessions/current", 401, bearer=fresh)
    print(f"chains: {api.steps} steps, every answer as documented")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
