"""Sample messages and API helpers shared by the message and search API tests.

`corpus()` gives 20 uploads covering what mail looks like: plain text, HTML with an inline
image, multipart messages with attachments (one shared by several), a forwarded message, broken
MIME, messages composed from fields and from user storage files, and a `message/rfc822` body.
Each has unique words, so searches can name exactly the messages they should find.
"""

from __future__ import annotations

import base64
import email
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from typing import Any

from conftest import Api

PASSWORD = "correct horse 1"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 80 + b"\n%%EOF\n"
SHARED = b"shared attachment body " * 2000  # big enough to be stored once and shared
BASE = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class Sample:
    """One upload: how to send it, and what the API should show for it."""

    name: str
    subject: str
    #: the JSON body of the upload (raw or fields)
    body: dict[str, Any] = field(default_factory=dict)
    #: sent as a message/rfc822 request body instead of JSON
    rfc822: bytes | None = None
    query: dict[str, str] = field(default_factory=dict)
    #: decoded attachment contents expected, in order (None: not checked)
    attachments: list[bytes] | None = None
    #: a word only this message contains in its text
    word: str = ""
    from_address: str = ""
    to_address: str = ""

    @property
    def raw(self) -> bytes | None:
        """The exact bytes uploaded, when the upload carries them."""
        if self.rfc822 is not None:
            return self.rfc822
        raw = self.body.get("raw")
        return raw.encode("utf-8") if isinstance(raw, str) else None


def _crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def plain(n: int, word: str, *, sender: str, to: str, subject: str) -> str:
    return _crlf(
        f"From: Sender {n} <{sender}>\n"
        f"To: Reader <{to}>\n"
        f"Cc: Copy <copy{n}@example.net>\n"
        f"Subject: {subject}\n"
        f"Message-ID: <plain{n}.{uuid.uuid4().hex}@example.com>\n"
        f"Date: {email.utils.format_datetime(BASE + timedelta(days=n))}\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "\n"
        f"Hello, this is message {n} about {word}.\n"
        "Second line with ünïcödé.\n"
    )


def html_with_image(n: int, word: str, subject: str) -> str:
    png = base64.encodebytes(PNG).decode()
    return _crlf(
        f"From: Designer <designer@example.org>\n"
        f"To: reader@example.com\n"
        f"Subject: {subject}\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/related; boundary="rel"\n'
        "\n"
        "--rel\n"
        "Content-Type: text/html; charset=utf-8\n"
        "\n"
        f'<html><body><p>Look at {word}</p><img src="cid:logo{n}@example.org"></body></html>\n'
        "--rel\n"
        "Content-Type: image/png\n"
        "Content-Transfer-Encoding: base64\n"
        f"Content-ID: <logo{n}@example.org>\n"
        'Content-Disposition: inline; filename="logo.png"\n'
        "\n"
        f"{png}"
        "--rel--\n"
    )


def mixed(n: int, word: str, subject: str, parts: list[tuple[str, str, bytes]]) -> str:
    """multipart/mixed with a text body and base64 attachments (filename, type, content)."""
    lines = [
        f"From: Accountant <accounts{n}@example.com>",
        "To: reader@example.com",
        f"Subject: {subject}",
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="mix"',
        "",
        "--mix",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        f"Please find {word} attached.",
    ]
    for filename, content_type, content in parts:
        lines += [
            "--mix",
            f"Content-Type: {content_type}",
            "Content-Transfer-Encoding: base64",
            f'Content-Disposition: attachment; filename="{filename}"',
            "",
            base64.encodebytes(content).decode().rstrip("\n"),
        ]
    lines += ["--mix--", ""]
    return _crlf("\n".join(lines))


def forwarded(word: str, inner: str) -> str:
    return _crlf(
        "From: Forwarder <fwd@example.com>\n"
        "To: reader@example.com\n"
        "Subject: Fwd: the original\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="fw"\n'
        "\n"
        "--fw\n"
        "Content-Type: text/plain\n"
        "\n"
        f"See the {word} below.\n"
        "--fw\n"
        "Content-Type: message/rfc822\n"
        'Content-Disposition: attachment; filename="original.eml"\n'
        "\n"
        f"{inner}"
        "--fw--\n"
    )


def broken(word: str) -> str:
    # no closing boundary, a header without a colon, an unknown transfer encoding
    return _crlf(
        "From: broken@example.com\n"
        "Subject: Broken mime\n"
        "this line is not a header\n"
        'Content-Type: multipart/mixed; boundary="never-closed"\n'
        "\n"
        "--never-closed\n"
        "Content-Type: text/plain\n"
        "Content-Transfer-Encoding: x-unknown\n"
        "\n"
        f"Body of the {word} message\n"
        "--never-closed\n"
        "Content-Type: application/octet-stream\n"
        'Content-Disposition: attachment; filename="half.bin"\n'
        "Content-Transfer-Encoding: base64\n"
        "\n"
        "AAECAwQF\n"
    )


def corpus(file_id: str) -> list[Sample]:
    """The 20 uploads; `file_id` is a storage file of the user (composed message 17)."""
    samples: list[Sample] = []
    for n in range(1, 7):
        word = f"plainword{n}"
        sender, to = f"alice{n}@example.com", f"bob{n}@example.net"
        subject = f"Plain message {n}"
        samples.append(
            Sample(
                f"plain{n}",
                subject,
                {"raw": plain(n, word, sender=sender, to=to, subject=subject)},
                attachments=[],
                word=word,
                from_address=sender,
                to_address=to,
            )
        )
    for n in range(7, 10):
        word = f"htmlword{n}"
        subject = f"Html message {n}"
        samples.append(
            Sample(
                f"html{n}",
                subject,
                {"raw": html_with_image(n, word, subject)},
                attachments=[PNG],
                word=word,
            )
        )
    for n in range(10, 14):
        word = f"attachword{n}"
        subject = f"Invoice {n}"
        parts = [
            ("report.pdf", "application/pdf", PDF),
            ("notes.txt", "text/plain", f"notes for {n}\n".encode()),
            ("shared.bin", "application/octet-stream", SHARED),
        ]
        samples.append(
            Sample(
                f"mixed{n}",
                subject,
                {"raw": mixed(n, word, subject, parts)},
                attachments=[content for _, _, content in parts],
                word=word,
            )
        )
    inner = plain(99, "innerword", sender="orig@example.com", to="x@example.com", subject="Inner")
    samples.append(
        Sample(
            "forward14",
            "Fwd: the original",
            {"raw": forwarded("forwardword14", inner)},
            # the line break before the boundary belongs to the boundary (RFC 2046)
            attachments=[inner.encode()[:-2]],
            word="forwardword14",
        )
    )
    samples.append(
        Sample("broken15", "Broken mime", {"raw": broken("brokenword15")}, word="brokenword15")
    )
    samples.append(
        Sample(
            "composed16",
            "Composed message 16",
            {
                "from": {"name": "Composer", "address": "composer@example.com"},
                "to": [{"name": "Reader", "address": "reader16@example.net"}],
                "cc": [{"address": "cc16@example.net"}],
                "subject": "Composed message 16",
                "text": "Composed text with composedword16",
                "html": '<p>Composed html <img src="data:image/png;base64,'
                + base64.b64encode(PNG).decode()
                + '"></p>',
                "headers": [{"key": "X-Campaign", "value": "spring"}],
                "attachments": [
                    {
                        "filename": "data.csv",
                        "contentType": "text/csv",
                        "content": base64.b64encode(b"a,b\n1,2\n").decode(),
                    }
                ],
            },
            attachments=[PNG, b"a,b\n1,2\n"],
            word="composedword16",
            from_address="composer@example.com",
            to_address="reader16@example.net",
        )
    )
    samples.append(
        Sample(
            "files17",
            "With a stored file",
            {
                "to": [{"address": "reader17@example.net"}],
                "subject": "With a stored file",
                "text": "See filesword17",
                "files": [file_id],
            },
            attachments=[b"stored file content\n"],
            word="filesword17",
        )
    )
    raw18 = plain(18, "rfcword18", sender="rfc@example.com", to="r@example.com", subject="Raw body")
    samples.append(
        Sample(
            "rfc18",
            "Raw body",
            rfc822=raw18.encode(),
            query={"unseen": "true"},
            attachments=[],
            word="rfcword18",
        )
    )
    raw19 = plain(19, "metaword19", sender="meta@example.com", to="m@example.com", subject="Meta")
    samples.append(
        Sample(
            "meta19",
            "Meta",
            {"raw": raw19, "metaData": {"kind": "meta", "n": 19}, "flagged": True},
            word="metaword19",
        )
    )
    raw20 = plain(20, "oldword20", sender="old@example.com", to="o@example.com", subject="Old")
    samples.append(
        Sample(
            "old20",
            "Old",
            {"raw": raw20, "date": "2020-01-02T03:04:05.000Z", "unseen": True},
            word="oldword20",
        )
    )
    return samples


# ---------------------------------------------------------------------------------- API


async def new_user(api: Api, **fields: Any) -> str:
    username = fields.pop("username", "msg" + uuid.uuid4().hex[:10])
    status, body = await api.post("/users", {"username": username, "password": PASSWORD, **fields})
    assert status == 200, body
    return str(body["id"])


async def stored_file(api: Api, user: str) -> str:
    content = base64.b64encode(b"stored file content\n").decode()
    status, body = await api.post(
        f"/users/{user}/storage",
        {
            "filename": "stored.txt",
            "contentType": "text/plain",
            "content": content,
            "encoding": "base64",
        },
    )
    assert status == 200, body
    return str(body["id"])


async def mailbox_ids(api: Api, user: str) -> dict[str, str]:
    """Mailbox id by path, and by special use (`\\Trash`...)."""
    status, body = await api.get(f"/users/{user}/mailboxes")
    assert status == 200, body
    out: dict[str, str] = {}
    for row in body["results"]:
        out[row["path"]] = row["id"]
        if row.get("specialUse"):
            out[row["specialUse"]] = row["id"]
    return out


async def send(api: Api, user: str, mailbox: str, sample: Sample) -> tuple[int, dict[str, Any]]:
    path = f"/users/{user}/mailboxes/{mailbox}/messages"
    if sample.rfc822 is not None:
        return await api.post(
            path,
            params=sample.query,
            data=sample.rfc822,
            headers={"Content-Type": "message/rfc822"},
        )
    return await api.post(path, sample.body, params=sample.query or None)


async def upload(api: Api, user: str, mailbox: str, sample: Sample) -> int:
    status, body = await send(api, user, mailbox, sample)
    assert status == 200, (sample.name, body)
    return int(body["message"]["id"])


async def upload_raw(api: Api, user: str, mailbox: str, raw: str, **fields: Any) -> int:
    status, body = await api.post(
        f"/users/{user}/mailboxes/{mailbox}/messages", {"raw": raw, **fields}
    )
    assert status == 200, body
    return int(body["message"]["id"])


async def fetch(api: Api, path: str, **params: str) -> tuple[int, Mapping[str, str], bytes]:
    """A binary download: status, headers (case-insensitive), body."""
    headers = {"X-Access-Token": api.token} if api.token else {}
    response = await api.client.get(path, headers=headers, params=params)
    return response.status, response.headers, await response.read()


def decoded_attachments(raw: bytes) -> list[bytes]:
    """What the standard library finds as attachment contents of `raw`, in order."""
    message = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    out = []
    for part in message.walk():
        if part.is_multipart() or part is message:
            continue
        if part.get_content_maintype() == "text" and part.get_content_disposition() is None:
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            out.append(payload)
    return out


async def listing(api: Api, user: str, mailbox: str, **params: Any) -> dict[str, Any]:
    status, body = await api.get(
        f"/users/{user}/mailboxes/{mailbox}/messages",
        params={k: str(v) for k, v in params.items()},
    )
    assert status == 200, body
    return body


async def all_pages(api: Api, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every result of a paged listing, following nextCursor."""
    rows: list[dict[str, Any]] = []
    query = {k: str(v) for k, v in params.items()}
    while True:
        status, body = await api.get(path, params=query)
        assert status == 200, body
        rows += body["results"]
        if not body["nextCursor"]:
            return rows
        query["next"] = body["nextCursor"]
